"""The binding's per-step path: ProblemState.observe in one call, and the closure's tensors,
held by the step until it is over, then released."""
import gc
import weakref

import pytest

feasible = pytest.importorskip("feasible")
import torch  # noqa: E402

from test_errors import expect  # noqa: E402


def small_problem():
    """x = [1, 2], loss ||x||^2, one inequality x_0 - 0.5 <= 0; SGD 0.1 for both players."""
    x = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    problem = feasible.Problem()
    c = problem.add_constraint("c")
    opt = feasible.SimultaneousOptimizer(problem, feasible.optim.SGD([x], 0.1),
                                         feasible.optim.SGD(problem.dual_parameters(), 0.1))
    return x, problem, c, opt


def test_observe_with_keywords_equals_a_constraint_state():
    x, _, c, _ = small_problem()
    v = (x[0] - 0.5).reshape(1)
    s = torch.tensor([0.25])
    by_keywords = feasible.ProblemState(x.sum()).observe(c, v, strict_violation=s,
                                                         contributes_to_dual=False)
    explicit = feasible.ProblemState(x.sum()).observe(
        c, feasible.ConstraintState(v, strict_violation=s, contributes_to_dual=False))
    for state in (by_keywords, explicit):
        (constraint, observed), = state.observed
        assert constraint == c
        assert observed.violation is not None and torch.equal(observed.violation, v)
        assert torch.equal(observed.strict_violation, s)
        assert observed.contributes_to_primal  # default True
        assert not observed.contributes_to_dual
    # Without keywords: the defaults (no strict violation given, both players).
    (_, plain), = feasible.ProblemState(x.sum()).observe(c, v).observed
    assert plain.strict_violation is None
    assert plain.contributes_to_primal and plain.contributes_to_dual


def test_observe_errors():
    x, _, c, _ = small_problem()
    v = (x[0] - 0.5).reshape(1)
    state = feasible.ProblemState(x.sum())
    expect(ValueError, lambda: state.observe(c, feasible.ConstraintState(v),
                                             strict_violation=v.detach()),
           "ProblemState.observe", "not both")
    expect(TypeError, lambda: state.observe(c, 0.5), "ProblemState.observe",
           "must be a feasible.ConstraintState or a tensor", "float")
    assert state.observed == []  # nothing recorded by the refused calls


def test_step_result_and_release_of_the_closures_tensors():
    x, problem, c, opt = small_problem()
    refs = []

    def closure():
        loss = x.pow(2).sum()
        v = (x[0] - 0.5).reshape(1)
        s = torch.tensor([0.25])
        refs.extend(weakref.ref(t) for t in (loss, v, s))
        return feasible.ProblemState(loss).observe(c, v, strict_violation=s)

    result = opt.step(closure)
    # By hand: loss = 1 + 4 = 5; v = 1 - 0.5 = 0.5; the strict violation as given, 0.25;
    # the multiplier used by the primal step is the initial 0. Exact in float32.
    assert result.loss.item() == 5.0
    assert result["c"].violation.tolist() == [0.5]
    assert result["c"].strict_violation.tolist() == [0.25]
    assert result["c"].multiplier.tolist() == [0.0]
    # Primal: x - 0.1 * 2x (lambda = 0) = [0.8, 1.6]; dual: 0 + 0.1 * 0.25 = 0.025
    # (float32 rounding: 1e-7 relative).
    assert torch.allclose(x.detach(), torch.tensor([0.8, 1.6]), rtol=1e-6, atol=0)
    assert torch.allclose(problem.multiplier_values("c"), torch.tensor([0.025]), rtol=1e-6,
                          atol=0)
    # The step held the tensors the closure returned only while it ran: none is alive now
    # (the result holds detached copies, or, for the strict violation, its own reference).
    del result
    gc.collect()
    assert [r() is None for r in refs] == [True, True, True]


def test_tensors_held_by_the_step_are_those_of_the_closure():
    """While the step runs (here: in the Python primal optimizer's step, called by the C++
    step), the closure's loss is alive, and the same Python object as the closure made."""
    x = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    problem = feasible.Problem()
    c = problem.add_constraint("c")
    seen = {}

    class Probe(torch.optim.SGD):
        def step(self, closure=None):
            seen["alive"] = seen["loss"]() is not None
            return super().step(closure)

    opt = feasible.SimultaneousOptimizer(problem, Probe([x], lr=0.1),
                                         feasible.optim.SGD(problem.dual_parameters(), 0.1))

    def closure():
        loss = x.pow(2).sum()
        seen["loss"] = weakref.ref(loss)
        return feasible.ProblemState(loss).observe(c, (x[0] - 0.5).reshape(1))

    opt.step(closure)
    assert seen["alive"]
    gc.collect()
    assert seen["loss"]() is None


def test_a_state_kept_by_the_caller_is_left_intact():
    """The step moves the closure's state out of its Python object only when nothing else
    refers to it; a state the caller keeps still holds its loss and observation after the
    step, and the step used the same values."""
    x, problem, c, opt = small_problem()
    kept = []

    def closure():
        state = feasible.ProblemState(x.pow(2).sum()).observe(c, (x[0] - 0.5).reshape(1))
        kept.append(state)
        return state

    result = opt.step(closure)
    (state,) = kept
    assert state.loss is not None and state.loss.item() == 5.0  # 1 + 4 at x = [1, 2]
    (constraint, observed), = state.observed
    assert constraint == c and observed.violation.tolist() == [0.5]  # 1 - 0.5
    assert result.loss.item() == 5.0 and result["c"].violation.tolist() == [0.5]
    # A state returned fresh each step is moved out and then dies: a second step works too,
    # with the moved parameters: x = [0.8, 1.6], loss 0.64 + 2.56 = 3.2 (float32: 1e-6).
    second = opt.step(lambda: feasible.ProblemState(x.pow(2).sum()).observe(
        c, (x[0] - 0.5).reshape(1)))
    assert abs(second.loss.item() - 3.2) < 1e-6
