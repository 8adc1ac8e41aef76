"""The parity problem of python/tests/parity_driver.cpp, built and run from Python.

minimize 0.5 ||x - a||^2 over x in R^10, a_i = (i + 1) / 4, subject to "pairs":
x_{2j} + x_{2j+1} - 1 <= 0 (j = 0..4; indexed: entries t % 5 and (t + 2) % 5 at step t) and
"total": sum x - 2 = 0.
"""
import contextlib
import os
import pathlib
import subprocess

import torch

import feasible

SCHEMES = ["simultaneous", "dual_primal", "primal_dual", "extragradient", "unconstrained",
           "default"]


@contextlib.contextmanager
def float64_default():
    """The driver runs with float64 as torch's default dtype (the multipliers and the default
    optimizer's tensors take it); so do the Python runs, and the default is restored after."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


def driver_path():
    """The C++ driver, built next to the package by CMake (or FEASIBLE_PARITY_DRIVER)."""
    env = os.environ.get("FEASIBLE_PARITY_DRIVER")
    if env:
        return pathlib.Path(env)
    return pathlib.Path(feasible.__file__).resolve().parent.parent / "feasible_parity_driver"


def run_driver(*args):
    """Runs the C++ driver; returns its lines as lists of floats (exact)."""
    out = subprocess.run([str(driver_path()), *map(str, args)], check=True,
                         capture_output=True, text=True).stdout
    return [parse(line) for line in out.splitlines()]


def parse(line):
    t, *values = line.split()
    return [int(t)] + [float.fromhex(v) for v in values]


class Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.x = torch.nn.Parameter(torch.zeros(10, dtype=torch.float64))


def primal_of(scheme, primal, model):
    if scheme == "extragradient":
        return feasible.optim.ExtraSGD(model.parameters(), 0.05)
    if primal == "adam":
        return feasible.optim.Adam(model.parameters(), 0.05)
    if primal == "torch_adam":
        return torch.optim.Adam(model.parameters(), lr=0.05)
    return feasible.optim.SGD(model.parameters(), 0.05)


def build(scheme, kind, primal):
    """The model, problem and constrained optimizer, as the driver builds them."""
    with float64_default():
        return _build(scheme, kind, primal)


def _build(scheme, kind, primal):
    model = Model()
    problem = feasible.Problem()
    penalty = scheme == "unconstrained"
    extra = dict(formulation=feasible.QuadraticPenalty(), penalty=2.0) if penalty else {}
    multiplier = feasible.MultiplierKind.INDEXED if kind == "indexed" else \
        feasible.MultiplierKind.DENSE
    pairs = problem.add_constraint("pairs", size=5, multiplier=multiplier, **extra)
    total = problem.add_constraint("total", kind=feasible.EQUALITY, **extra)
    p = primal_of(scheme, primal, model)
    if scheme == "default":
        opt = feasible.make_default_optimizer(problem, p)
    elif penalty:
        opt = feasible.UnconstrainedOptimizer(problem, p)
    else:
        duals = problem.dual_parameters()
        if scheme == "extragradient":
            dual = feasible.optim.ExtraSGD(duals, 0.05)
        elif scheme == "primal_dual":
            dual = feasible.optim.NuPI(duals, 0.05, kp=0.5, ki=1.0)
        else:
            dual = feasible.optim.SGD(duals, 0.05)
        cls = {"simultaneous": feasible.SimultaneousOptimizer,
               "dual_primal": feasible.AlternatingDualPrimalOptimizer,
               "primal_dual": feasible.AlternatingPrimalDualOptimizer,
               "extragradient": feasible.ExtragradientOptimizer}[scheme]
        opt = cls(problem, p, dual)
    return model, problem, opt, pairs, total


def row(t, model, problem):
    values = model.x.detach().tolist()
    for c in problem.constraints:
        if c.formulation.uses_multiplier:
            values += problem.multiplier_values(c).tolist()
    return [t] + values


def run_python(scheme, kind, primal, steps, model=None, problem=None, opt=None, handles=None):
    """Runs `steps` steps from Python; returns the rows the driver prints."""
    with float64_default():
        return _run_python(scheme, kind, primal, steps, model, problem, opt, handles)


def _run_python(scheme, kind, primal, steps, model, problem, opt, handles):
    if model is None:
        model, problem, opt, pairs, total = _build(scheme, kind, primal)
    else:
        pairs, total = handles
    a = torch.arange(1, 11, dtype=torch.float64) * 0.25
    rows = []
    for _ in range(steps):
        t = opt.iteration

        def closure():
            state = feasible.ProblemState(0.5 * (model.x - a).pow(2).sum())
            v = model.x.view(5, 2).sum(1) - 1.0
            if kind == "indexed":
                idx = torch.tensor([t % 5, (t + 2) % 5], dtype=torch.int64)
                state.observe(pairs, v.index_select(0, idx), indices=idx)
            else:
                state.observe(pairs, v)
            state.observe(total, (model.x.sum() - 2.0).reshape(1))
            return state

        opt.step(closure)
        rows.append(row(t, model, problem))
    return rows
