"""Errors reach Python as exceptions: ValueError for bad options and misuse, with the
library's message and without the C++ backtrace; feasible.NonFiniteError (a RuntimeError) for
NaN and Inf; the closure's own Python exceptions unchanged. One case per class of bad input of
tests/errors_test.cpp, with the same message pieces."""
import math

import pytest

feasible = pytest.importorskip("feasible")
import torch  # noqa: E402

NAN = float("nan")


class Rig:
    """tests/errors_test.cpp's rig: a dense inequality of 3 entries (init 0.5), an equality
    with an Augmented Lagrangian and a penalty updater, an indexed inequality of 5 entries; Adam
    for x, NuPI for the multipliers. Float32, as torch's default dtype."""

    def __init__(self, policy=feasible.NonFinitePolicy.THROW):
        self.x = torch.tensor([1.0, -0.5, 2.0], dtype=torch.float32, requires_grad=True)
        self.problem = feasible.Problem()
        p = self.problem
        self.ineq = p.add_constraint("ineq", size=3, init=0.5)
        self.eq = p.add_constraint(
            "eq", kind=feasible.EQUALITY, formulation=feasible.AugmentedLagrangian(),
            penalty=1.0, penalty_updater=feasible.MultiplicativePenaltyUpdater(2.0))
        self.idx = p.add_constraint("idx", size=5, multiplier=feasible.MultiplierKind.INDEXED,
                                    init=0.25)
        self.primal = feasible.optim.Adam([self.x], 0.1)
        self.dual = feasible.optim.NuPI(p.dual_parameters(), 0.1, kp=0.5, nu=0.3)
        self.opt = feasible.SimultaneousOptimizer(p, self.primal, self.dual, non_finite=policy)

    def good_state(self):
        x = self.x
        st = feasible.ProblemState(x.pow(2).sum())
        st.observe(self.ineq, x - 0.5)
        st.observe(self.eq, x.sum() - 1.0)
        st.observe(self.idx, x.index_select(0, torch.tensor([0, 2])) - 0.1,
                   indices=torch.tensor([1, 3]))
        return st


def message(excinfo):
    text = str(excinfo.value)
    # The C++ backtrace stays out of the message.
    assert "Exception raised from" not in text
    assert "frame #" not in text
    return text


def expect(exc_type, fn, *pieces):
    with pytest.raises(exc_type) as excinfo:
        fn()
    text = message(excinfo)
    for piece in pieces:
        assert piece in text, f"{piece!r} not in {text!r}"
    return excinfo.value


def step_rejected(rig, make_state, *pieces):
    x_before = rig.x.detach().clone()
    expect(ValueError, lambda: rig.opt.step(make_state), *pieces)
    assert torch.equal(rig.x.detach(), x_before)  # rejected before anything moved


# ---------------------------------------------------------------------------- the loss

def test_loss_errors():
    r = Rig()

    def non_scalar():
        st = r.good_state()
        st.loss = r.x[:2].pow(2)
        return st

    def non_floating():
        st = r.good_state()
        st.loss = torch.tensor(3)
        return st

    def no_loss():
        st = feasible.ProblemState(None)
        st.observe(r.ineq, r.x - 0.5)
        return st

    step_rejected(r, non_scalar, "loss must be a scalar", "[2]")
    step_rejected(r, non_floating, "loss must be a floating-point tensor", "Long")
    step_rejected(r, no_loss, "no loss")


def test_shape_and_index_errors():
    r = Rig()
    x = r.x

    def dense(v, **kw):
        def make():
            st = feasible.ProblemState(x.pow(2).sum())
            st.observe(r.ineq, v(), **kw)
            return st
        return make

    def indexed(v, idx, **kw):
        def make():
            st = feasible.ProblemState(x.pow(2).sum())
            st.observe(r.idx, v(), indices=idx, **kw)
            return st
        return make

    step_rejected(r, dense(lambda: x[:2]), "constraint 'ineq'", "violation has shape [2]",
                  "expected [3]")
    step_rejected(r, dense(lambda: x.sum()), "violation has shape []", "expected [3]")
    step_rejected(r, dense(lambda: x - 0.5, strict_violation=torch.zeros(2)),
                  "constraint 'ineq'", "strict violation has shape [2]", "expected [3]")
    step_rejected(r, dense(lambda: x - 0.5, indices=torch.tensor([0, 1, 2])),
                  "constraint 'ineq'", "indices were given for a dense constraint")
    two = lambda: x[:2] - 0.1  # noqa: E731
    step_rejected(r, indexed(two, torch.tensor([0.0, 1.0], dtype=torch.float32)), "constraint 'idx'",
                  "indices must be an integer tensor", "Float")
    step_rejected(r, indexed(two, torch.tensor([-1, 2])), "[0, 5)", "[-1, 2]")
    step_rejected(r, indexed(two, torch.tensor([1, 5])), "[0, 5)", "[1, 5]")
    step_rejected(r, indexed(two, torch.tensor([[1], [2]])), "indices must be 1-D", "[2, 1]")
    step_rejected(r, indexed(lambda: x - 0.1, torch.tensor([1, 2])), "constraint 'idx'",
                  "violation has shape [3]", "expected [2]")

    def missing_indices():
        st = feasible.ProblemState(x.pow(2).sum())
        st.observe(r.idx, x[:2] - 0.1)
        return st

    step_rejected(r, missing_indices, "constraint 'idx'", "indices are required")


def test_observe_errors():
    r = Rig()
    other = feasible.Problem()
    foreign = other.add_constraint("foreign")

    def make():
        st = feasible.ProblemState(r.x.pow(2).sum())
        st.observe(foreign, r.x.sum())
        return st

    step_rejected(r, make, "constraint 'foreign'", "belongs to another problem")
    st = feasible.ProblemState(r.x.pow(2).sum())
    st.observe(r.ineq, r.x - 0.5)
    expect(ValueError, lambda: st.observe(r.ineq, r.x - 0.5), "constraint 'ineq'",
           "observed twice")


def test_registration_errors():
    r = Rig()
    add = r.problem.add_constraint
    expect(ValueError, lambda: add("eq"), "'eq'", "already exists", "unique")
    expect(ValueError, lambda: add(""), "name must not be empty")
    expect(ValueError, lambda: add("empty", size=0), "'empty'", "ConstraintOptions.size", ">= 1",
           "got 0")
    expect(ValueError, lambda: add("neg", init=-1.0), "'neg'", "ConstraintOptions.init", ">= 0",
           "inequality", "got -1")
    expect(ValueError, lambda: add("neg_values", size=2, init_values=torch.tensor([0.5, -0.5])),
           "ConstraintOptions.init_values", ">= 0", "-0.5")
    expect(ValueError, lambda: add("lazy_dense", lazy=True), "ConstraintOptions.lazy",
           "indexed multiplier")
    expect(ValueError, lambda: add("sparse_dense", sparse_gradient=True),
           "ConstraintOptions.sparse_gradient", "indexed multiplier")
    expect(ValueError, lambda: add("implicit", multiplier=feasible.MultiplierKind.IMPLICIT),
           "'implicit'", "ConstraintOptions.implicit_model", "be set for MultiplierKind::kImplicit")
    # Both an options object and keyword arguments: refused by the Python layer.
    expect(ValueError, lambda: add("both", feasible.ConstraintOptions(), size=2), "not both")
    # A wrong keyword is a TypeError, as for any Python function.
    with pytest.raises(TypeError):
        add("typo", sise=2)


def test_penalty_errors():
    expect(ValueError, lambda: feasible.MultiplicativePenaltyUpdater(1.0),
           "MultiplicativePenaltyUpdater", "growth", "> 1", "got 1")
    expect(ValueError, lambda: feasible.AdditivePenaltyUpdater(-1.0), "AdditivePenaltyUpdater",
           "increment", "> 0", "got -1")
    expect(ValueError, lambda: feasible.AdditivePenaltyUpdater(1.0, tolerance=-0.1),
           "tolerance", ">= 0", "got -0.1")
    p = feasible.Problem()
    expect(ValueError, lambda: p.add_constraint("pen", formulation=feasible.QuadraticPenalty(),
                                                penalty=0.0),
           "'pen'", "ConstraintOptions.penalty", "> 0", "got 0")
    expect(ValueError, lambda: p.add_constraint(
        "fixed", formulation=feasible.FixedPenalty(),
        penalty_updater=feasible.AdditivePenaltyUpdater(1.0)),
        "'fixed'", "penalty_updater", "not allowed", "FixedPenalty")
    expect(ValueError, lambda: p.add_constraint(
        "lag", penalty_updater=feasible.AdditivePenaltyUpdater(1.0)),
        "'lag'", "penalty_updater", "not allowed", "Lagrangian")


def test_optimizer_errors():
    r = Rig()
    p = r.problem
    duals = p.dual_parameters()
    expect(ValueError, lambda: feasible.SimultaneousOptimizer(
        p, r.primal, feasible.optim.SGD(duals[:1] + duals[2:], 0.1)),
        "dual optimizer must hold exactly", "3 tensors", "holds 2", "missing those of 'eq'")
    expect(ValueError, lambda: feasible.SimultaneousOptimizer(p, r.primal),
           "'ineq'", "'eq'", "'idx'", "have multipliers", "no dual optimizer")
    expect(ValueError, lambda: feasible.SimultaneousOptimizer(
        p, feasible.optim.SGD([r.x, duals[0]], 0.1), r.dual),
        "primal optimizer 0", "holds a dual parameter", "both primal and dual")
    expect(ValueError, lambda: feasible.ExtragradientOptimizer(
        p, r.primal, feasible.optim.ExtraSGD(duals, 0.1)),
        "ExtragradientOptimizer", "primal optimizer has no extrapolation step", "ExtraSGD")
    # The dual player must be a C++ optimizer; anything else is not an optimizer at all.
    expect(ValueError, lambda: feasible.SimultaneousOptimizer(
        p, r.primal, torch.optim.SGD(duals, lr=0.1)), "dual optimizer", "feasible.optim")
    expect(ValueError, lambda: feasible.SimultaneousOptimizer(p, "sgd", r.dual),
           "feasible.optim optimizer or a torch.optim.Optimizer")
    p.add_constraint("late")
    step_rejected(r, r.good_state, "added to the problem after the optimizer was built")


def test_options_errors():
    x = [torch.zeros(2, requires_grad=True)]
    expect(ValueError, lambda: feasible.optim.NuPI(x, -0.1), "NuPIOptions", "lr", ">= 0",
           "got -0.1")
    expect(ValueError, lambda: feasible.optim.NuPI(x, 0.1, nu=1.0), "NuPIOptions", "nu",
           "[0, 1)", "got 1")
    expect(ValueError, lambda: feasible.optim.NuPI(x, 0.1, kp=-1.0), "NuPIOptions", "kp", ">= 0",
           "got -1")
    expect(ValueError, lambda: feasible.optim.ExtraAdam(x, 0.1, betas=(1.0, 0.999)),
           "ExtraAdamOptions", "beta1", "[0, 1)", "got 1")
    expect(ValueError, lambda: feasible.projection.box(2.0, 1.0), "projection::box",
           "lower must be <= upper", "lower = 2", "upper = 1")
    expect(ValueError, lambda: feasible.projection.simplex(0.0), "projection::simplex",
           "radius must be > 0")
    expect(ValueError, lambda: feasible.projection.l2_ball(-1.0), "projection::l2_ball",
           "radius must be > 0")
    expect(ValueError, lambda: feasible.DefaultOptimizer(
        feasible.Problem(), feasible.optim.SGD(x, 0.1), max_calibration_interval=0),
        "DefaultOptions.max_calibration_interval")


def test_lookup_errors():
    r = Rig()
    expect(ValueError, lambda: r.problem.constraint("missing"), "no constraint named 'missing'",
           "'ineq', 'eq', 'idx'")
    p = feasible.Problem()
    p.add_constraint("quad", formulation=feasible.QuadraticPenalty())
    expect(ValueError, lambda: p.multiplier_values("quad"), "'quad'", "QuadraticPenalty",
           "has no multiplier")


def test_non_finite_throw_and_skip():
    r = Rig()
    r.opt.step(r.good_state)
    x_before = r.x.detach().clone()

    def nan_loss():
        st = r.good_state()
        st.loss = st.loss * NAN
        return st

    def nan_violation():
        st = feasible.ProblemState(r.x.pow(2).sum())
        st.observe(r.eq, (r.x.sum() - 1.0) * NAN)
        return st

    err = expect(feasible.NonFiniteError, lambda: r.opt.step(nan_loss), "the loss is",
                 "NonFinitePolicy::kThrow", "nothing was changed")
    assert isinstance(err, RuntimeError)
    expect(feasible.NonFiniteError, lambda: r.opt.step(nan_violation),
           "the violation of constraint 'eq'", "NaN or Inf")
    assert torch.equal(r.x.detach(), x_before)

    s = Rig(feasible.NonFinitePolicy.SKIP_STEP)
    s.opt.step(s.good_state)
    before = s.x.detach().clone()
    result = s.opt.step(lambda: (lambda st: (setattr(st, "loss", st.loss * NAN), st)[1])(
        s.good_state()))
    assert result.skipped
    assert result.skip_quantity == feasible.NonFiniteQuantity.LOSS
    assert "the loss" in result.skip_reason
    assert math.isnan(result.max_violation())
    assert torch.equal(s.x.detach(), before)


def test_python_exceptions_pass_through():
    r = Rig()

    class Mine(Exception):
        pass

    def raising():
        raise Mine("from the closure")

    with pytest.raises(Mine, match="from the closure"):
        r.opt.step(raising)
    with pytest.raises(TypeError, match="must return a feasible.ProblemState"):
        r.opt.step(lambda: 3)
    # A torch error raised inside the closure stays a RuntimeError.
    with pytest.raises(RuntimeError):
        r.opt.step(lambda: feasible.ProblemState(torch.ones(2) @ torch.ones(3)))


def test_non_finite_strict_violation_names_the_constraint():
    r = Rig()

    def nan_strict():
        st = feasible.ProblemState(r.x.pow(2).sum())
        st.observe(r.idx, r.x[:2] - 0.1, indices=torch.tensor([1, 3]),
                   strict_violation=torch.tensor([NAN, 0.0]))
        return st

    err = expect(feasible.NonFiniteError, lambda: r.opt.step(nan_strict),
                 "the strict violation of constraint 'idx'", "NaN or Inf")
    # The exception says which quantity and which constraint.
    assert err.quantity == feasible.NonFiniteQuantity.STRICT_VIOLATION
    assert err.constraint == "idx"


def test_extragradient_half_point_nan_skip_returns_to_start():
    # min ||x||^2 s.t. sum x - 1 <= 0 with ExtraSGD for both players; the closure poisons its
    # second evaluation (the half point) with a NaN violation.
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    problem = feasible.Problem()
    budget = problem.add_constraint("budget")
    opt = feasible.ExtragradientOptimizer(
        problem, feasible.optim.ExtraSGD([x], 0.1),
        feasible.optim.ExtraSGD(problem.dual_parameters(), 0.1),
        non_finite=feasible.NonFinitePolicy.SKIP_STEP)
    calls = []

    def closure():
        calls.append(1)
        poison = NAN if len(calls) == 2 else 1.0
        st = feasible.ProblemState(x.pow(2).sum())
        st.observe(budget, (x.sum() - 1.0) * poison)
        return st

    x0 = x.detach().clone()
    result = opt.step(closure)
    assert len(calls) == 2  # the half point was evaluated
    assert result.skipped
    assert "half point: " in result.skip_reason
    assert "the violation of constraint 'budget'" in result.skip_reason
    assert torch.equal(x.detach(), x0)  # back at the start
    assert torch.equal(problem.multiplier_values("budget"), torch.zeros(1))
    good = opt.step(closure)  # calls 3 and 4 are finite
    assert not good.skipped
    assert not torch.equal(x.detach(), x0)


def test_accepted_inputs_of_the_error_classes():
    # A 0-d violation for a constraint of size 1, and a negative initial multiplier for an
    # equality (free sign), are accepted.
    r = Rig()
    st = feasible.ProblemState(r.x.pow(2).sum())
    st.observe(r.eq, r.x.sum() - 1.0)  # 0-d, size 1
    assert not r.opt.step(lambda: st).skipped
    p = feasible.Problem()
    c = p.add_constraint("free", kind=feasible.EQUALITY, init=-1.0)
    assert p.multiplier_values(c).tolist() == [-1.0]


def test_public_names_have_docstrings():
    # Every class and function the package exports documents itself (from the headers' ///).
    for name in dir(feasible):
        if name.startswith("_"):
            continue
        obj = getattr(feasible, name)
        if callable(obj):
            assert obj.__doc__ and obj.__doc__.strip(), f"feasible.{name} has no docstring"
