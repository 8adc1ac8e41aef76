"""Time per training step from Python: feasible against Cooper and a hand-written PyTorch loop.

The workloads are those of bench/bench_overhead.cpp (docs/performance.md, section 1), built
here in Python with seeded data of the same shapes:
  tiny  x in R^10, loss ||x||^2, 5 linear inequalities A x <= b (A random, b = -0.5), SGD 1e-2
        for both players;
  rate  a 2-D linear classifier, 400 points from 4 Gaussians, BCE, SGD 2e-2; at least 70% of
        the points predicted as class 0 (surrogate 1 - sigmoid(logit), 0-1 rate as strict
        violation); dual SGD 1e-2;
  mlp   an MLP 784-300-100-10 (ReLU), batches of 256 random inputs and labels (4, cycled),
        cross-entropy, Adam 1e-3; mean predicted probability of class 0 <= 0.2; dual SGD 1e-2.
Variants: `feasible` (SimultaneousOptimizer, C++ primal optimizer), `feasible-torchopt` (the
same with the torch.optim primal optimizer through the adapter), `hand` (the gradient
descent-ascent step written by hand: torch.optim for x, the multiplier updated and clamped in
place) and `cooper` (Cooper's SimultaneousOptimizer, dual SGD with maximize=True), when
--cooper PATH points at Cooper's sources (the folder that holds the `cooper` package).

Method: the variants of a workload run in alternation, one block of steps per turn, after a
warm-up block each; the order of the variants is reversed every other round, so that no
variant always follows the same one. The figure is the median over rounds of the per-step
time, and each ratio is the median over rounds of the paired ratio (same round, adjacent
blocks), with its interquartile range (25th and 75th percentiles). One thread. As in
bench_overhead, glibc's malloc thresholds are fixed at start (mmap only above 32 MiB, trimming
only above 1 GiB; --adaptive-malloc leaves them adaptive): otherwise whether a block of MLP steps
pays page faults for its large tensors depends on what the variant before it freed.

    PYTHONPATH=build/python /usr/bin/python3 python/bench/bench_step.py --cooper /path/to/src
"""
import argparse
import ctypes
import ctypes.util
import statistics
import sys
import time

import torch

import feasible


def tiny_data():
    g = torch.Generator().manual_seed(0)
    return torch.randn(5, 10, generator=g), torch.full((5,), -0.5)


def rate_data():
    g = torch.Generator().manual_seed(1)
    centers = torch.tensor([[-1.0, -1.0], [1.0, 1.0], [-1.0, 1.0], [1.0, -1.0]])
    x = torch.cat([c + 0.6 * torch.randn(100, 2, generator=g) for c in centers])
    y = torch.cat([torch.zeros(100), torch.ones(100), torch.zeros(100), torch.ones(100)])
    return x, y


def mlp_data():
    g = torch.Generator().manual_seed(2)
    return [(torch.randn(256, 784, generator=g), torch.randint(0, 10, (256,), generator=g))
            for _ in range(4)]


class Workload:
    """One workload: `make(variant)` returns a step function."""

    def __init__(self, name):
        self.name = name
        if name == "tiny":
            self.a, self.b = tiny_data()
        elif name == "rate":
            self.x, self.y = rate_data()
        else:
            self.batches = mlp_data()
        self.t = 0

    def model(self):
        torch.manual_seed(3)
        if self.name == "tiny":
            m = torch.nn.Module()
            m.x = torch.nn.Parameter(torch.ones(10))
            return m
        if self.name == "rate":
            return torch.nn.Linear(2, 1)
        return torch.nn.Sequential(torch.nn.Linear(784, 300), torch.nn.ReLU(),
                                   torch.nn.Linear(300, 100), torch.nn.ReLU(),
                                   torch.nn.Linear(100, 10))

    def lr(self):
        return {"tiny": 1e-2, "rate": 2e-2, "mlp": 1e-3}[self.name]

    def evaluate(self, model):
        """(loss, violation [m], strict violation [m] or None)."""
        if self.name == "tiny":
            x = model.x
            return x.pow(2).sum(), self.a @ x - self.b, None
        if self.name == "rate":
            logit = model(self.x).squeeze(1)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logit, self.y)
            v = (0.7 - (1 - torch.sigmoid(logit)).mean()).reshape(1)
            s = (0.7 - (logit < 0).float().mean()).reshape(1)
            return loss, v, s
        inputs, labels = self.batches[self.t % 4]
        self.t += 1
        logits = model(inputs)
        loss = torch.nn.functional.cross_entropy(logits, labels)
        v = (torch.softmax(logits, 1)[:, 0].mean() - 0.2).reshape(1)
        return loss, v, None

    def primal(self, model, python):
        params = list(model.parameters())
        if self.name == "mlp":
            return torch.optim.Adam(params, lr=1e-3) if python else \
                feasible.optim.Adam(params, 1e-3)
        return torch.optim.SGD(params, lr=self.lr()) if python else \
            feasible.optim.SGD(params, self.lr())

    def size(self):
        return 5 if self.name == "tiny" else 1

    def make(self, variant):
        model = self.model()
        if variant == "hand":
            return self.hand(model)
        if variant == "cooper":
            return self.cooper(model)
        problem = feasible.Problem()
        c = problem.add_constraint("c", size=self.size())
        opt = feasible.SimultaneousOptimizer(
            problem, self.primal(model, variant == "feasible-torchopt"),
            feasible.optim.SGD(problem.dual_parameters(), 1e-2))

        def closure():
            loss, v, s = self.evaluate(model)
            state = feasible.ProblemState(loss)
            state.observe(c, v, strict_violation=s)
            return state

        return lambda: opt.step(closure)

    def hand(self, model):
        opt = self.primal(model, True)
        lam = torch.zeros(self.size())

        def step():
            opt.zero_grad()
            loss, v, s = self.evaluate(model)
            (loss + (lam * v).sum()).backward()
            opt.step()
            with torch.no_grad():
                lam.add_(v.detach() if s is None else s, alpha=1e-2).clamp_min_(0)

        return step

    def cooper(self, model):
        import cooper

        workload = self

        class CMP(cooper.ConstrainedMinimizationProblem):
            def __init__(self):
                super().__init__()
                self.c = cooper.Constraint(
                    constraint_type=cooper.ConstraintType.INEQUALITY,
                    formulation_type=cooper.formulations.Lagrangian,
                    multiplier=cooper.multipliers.DenseMultiplier(num_constraints=workload.size()))

            def compute_cmp_state(self):
                loss, v, s = workload.evaluate(model)
                state = cooper.ConstraintState(violation=v, strict_violation=s)
                return cooper.CMPState(loss=loss, observed_constraints={self.c: state})

        cmp = CMP()
        dual = torch.optim.SGD(cmp.dual_parameters(), lr=1e-2, maximize=True)
        opt = cooper.optim.SimultaneousOptimizer(cmp=cmp, primal_optimizers=self.primal(model, True),
                                                 dual_optimizers=dual)
        return lambda: opt.roll()


def time_block(step, steps):
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


def quartiles(values):
    """(25th percentile, median, 75th percentile), interpolated."""
    q = statistics.quantiles(values, n=4, method="inclusive")
    return q[0], q[1], q[2]


def run(name, variants, rounds, steps):
    w = Workload(name)
    fns = {v: w.make(v) for v in variants}
    for v in variants:
        time_block(fns[v], steps)  # warm-up
    times = {v: [] for v in variants}
    for r in range(rounds):
        for v in (variants if r % 2 == 0 else variants[::-1]):
            times[v].append(time_block(fns[v], steps))
    print(f"\n{name}: {rounds} rounds of {steps} steps per variant")
    print(f"  {'variant':<20} {'median us/step':>15} {'min':>10}")
    for v in variants:
        print(f"  {v:<20} {1e6 * statistics.median(times[v]):15.1f} "
              f"{1e6 * min(times[v]):10.1f}")
    for v in variants:
        if v == "feasible":
            continue
        q1, med, q3 = quartiles([a / b for a, b in zip(times[v], times["feasible"])])
        print(f"  {v} / feasible (paired): median {med:.3f}, IQR [{q1:.3f}, {q3:.3f}]")


def fix_allocator(fixed):
    """Holds glibc malloc's mmap and trim thresholds constant; returns what it did."""
    if not fixed:
        return "glibc malloc's adaptive thresholds (--adaptive-malloc)"
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return "the platform's allocator (no glibc mallopt: thresholds not fixed)"
    m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's malloc.h
    ok = mallopt(m_mmap_threshold, 32 * 1024 * 1024) == 1 and \
        mallopt(m_trim_threshold, 1 << 30) == 1
    return ("malloc thresholds fixed (mmap above 32 MiB, trim above 1 GiB)" if ok
            else "malloc thresholds NOT fixed (mallopt refused)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cooper", help="folder holding Cooper's `cooper` package")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--workloads", default="tiny,rate,mlp")
    parser.add_argument("--steps", default="tiny=200,rate=100,mlp=3",
                        help="steps per block, e.g. mlp=10 (the others keep their defaults)")
    parser.add_argument("--adaptive-malloc", action="store_true",
                        help="leave glibc malloc's thresholds adaptive")
    args = parser.parse_args()
    print(fix_allocator(not args.adaptive_malloc))
    torch.set_num_threads(1)
    variants = ["feasible", "feasible-torchopt", "hand"]
    if args.cooper:
        sys.path.insert(0, args.cooper)
        import cooper
        print(f"Cooper from {cooper.__file__}")
        variants.append("cooper")
    else:
        print("Cooper absent (no --cooper PATH): timing feasible and the hand-written loop only")
    print(f"torch {torch.__version__}, feasible {feasible.__version__}, 1 thread")
    steps = {"tiny": 200, "rate": 100, "mlp": 3}
    for item in args.steps.split(","):
        key, value = item.split("=")
        steps[key] = int(value)
    for name in args.workloads.split(","):
        run(name, variants, args.rounds, steps[name])


if __name__ == "__main__":
    main()
