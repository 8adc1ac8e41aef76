"""Implicit multipliers from Python: a torch.nn.Module maps each observed entry's features to its
multiplier; its parameters are the dual parameters, stepped in place and checkpointed.

The problem (float64): minimize ||x - 1||^2 over x in R^3 subject to the equality
v(x) = x - roll(x, -1) - 0.1 = 0, observed with features f_i = (x_i, i) and multipliers
lambda = f w for a linear model without bias. With primal SGD (step a) and dual SGD (step b), a
simultaneous step is, by hand:
    x' = x - a (2 (x - 1) + lambda - roll(lambda, 1))     (d(lambda . v)/dx_k = lambda_k - lambda_{k-1})
    w' = w + b f^T v                                      (gradient ascent on lambda . v)
"""
import pytest

feasible = pytest.importorskip("feasible")
import torch  # noqa: E402

A, B = 0.05, 0.1  # primal and dual step sizes
X0 = [0.3, -0.2, 0.5]
W0 = [[0.2, -0.1]]


class Rig:
    """The problem above, with a fresh model and multiplier model."""

    def __init__(self, dual="sgd", w0=W0, kind=feasible.EQUALITY, lam=None,
                 scheme=feasible.SimultaneousOptimizer):
        self.x = torch.nn.Parameter(torch.tensor(X0, dtype=torch.float64))
        self.model = torch.nn.Module()
        self.model.x = self.x
        self.lam = torch.nn.Linear(2, 1, bias=False).double() if lam is None else lam
        with torch.no_grad():
            self.lam.weight.copy_(torch.tensor(w0, dtype=torch.float64))
        self.problem = feasible.Problem()
        self.c = self.problem.add_constraint(
            "balance", kind=kind, size=3, multiplier=feasible.MultiplierKind.IMPLICIT,
            implicit_model=self.lam, dtype=torch.float64)
        duals = self.problem.dual_parameters()
        self.dual = feasible.optim.Adam(duals, 0.1) if dual == "adam" else \
            feasible.optim.SGD(duals, B)
        if scheme is feasible.ExtragradientOptimizer:
            self.dual = feasible.optim.ExtraSGD(duals, B)
            primal = feasible.optim.ExtraSGD([self.x], A)
        else:
            primal = feasible.optim.SGD([self.x], A)
        self.opt = scheme(self.problem, primal, self.dual)

    def features(self):
        return torch.stack([self.x.detach(), torch.arange(3, dtype=torch.float64)], 1)

    def state(self):
        st = feasible.ProblemState((self.x - 1).pow(2).sum())
        st.observe(self.c, self.x - self.x.roll(-1) - 0.1, features=self.features())
        return st

    def steps(self, n):
        for _ in range(n):
            self.opt.step(self.state)


def hand_step(x, w, order):
    """One step by hand: "sim" (both at x), "dual_primal" (the dual step, then the primal step
    with the new multipliers at the same features), "primal_dual" (the primal step, then the
    dual step at the new point)."""
    def at(x):
        f = torch.stack([x, torch.arange(3, dtype=torch.float64)], 1)
        return f, x - x.roll(-1) - 0.1

    def primal(x, w):
        f, _ = at(x)
        lam = f @ w
        return x - A * (2 * (x - 1) + lam - lam.roll(1))

    def dual(x, w):
        f, v = at(x)
        return w + B * (f.t() @ v)

    if order == "sim":
        return primal(x, w), dual(x, w)
    if order == "dual_primal":
        w2 = dual(x, w)
        return primal(x, w2), w2
    x2 = primal(x, w)
    return x2, dual(x2, w)


def test_steps_match_the_hand_computation():
    rig = Rig()
    x = torch.tensor(X0, dtype=torch.float64)
    w = torch.tensor(W0, dtype=torch.float64).reshape(2)
    for _ in range(20):
        x, w = hand_step(x, w, "sim")
        rig.steps(1)
        # A few float64 operations per step, summed in another order: rounding only (~1e-16
        # relative per step, not amplified over 20 contracting steps).
        torch.testing.assert_close(rig.x.detach(), x, rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(rig.lam.weight.detach().reshape(2), w, rtol=1e-12, atol=1e-14)
    assert not torch.equal(w, torch.tensor(W0, dtype=torch.float64).reshape(2))  # it moved


@pytest.mark.parametrize("scheme,order", [
    (feasible.AlternatingDualPrimalOptimizer, "dual_primal"),
    (feasible.AlternatingPrimalDualOptimizer, "primal_dual")])
def test_alternating_schemes_match_the_hand_computation(scheme, order):
    rig = Rig(scheme=scheme)
    x = torch.tensor(X0, dtype=torch.float64)
    w = torch.tensor(W0, dtype=torch.float64).reshape(2)
    for _ in range(10):
        x, w = hand_step(x, w, order)
        rig.steps(1)
        torch.testing.assert_close(rig.x.detach(), x, rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(rig.lam.weight.detach().reshape(2), w, rtol=1e-12, atol=1e-14)


def test_extragradient_moves_the_model_and_stays_finite():
    rig = Rig(scheme=feasible.ExtragradientOptimizer)
    before = rig.lam.weight.detach().clone()
    rig.steps(10)
    assert not torch.equal(rig.lam.weight.detach(), before)
    assert torch.isfinite(rig.x).all() and torch.isfinite(rig.lam.weight).all()


def test_a_model_must_return_one_multiplier_per_entry():
    class Pooled(torch.nn.Linear):
        def forward(self, f):
            return super().forward(f).mean().reshape(1)

    rig = Rig(lam=Pooled(2, 1, bias=False).double())
    before = rig.x.detach().clone()
    with pytest.raises(ValueError, match="the model returned 1 values for 3 observed entries"):
        rig.steps(1)
    assert torch.equal(rig.x.detach(), before)


def test_dual_parameters_are_the_models_own_tensors():
    rig = Rig()
    duals = rig.problem.dual_parameters()
    assert all(a is b for a, b in zip(duals, rig.lam.parameters()))
    assert [p.data_ptr() for p in duals] == [p.data_ptr() for p in rig.lam.parameters()]
    where = rig.lam.weight.data_ptr()
    before = rig.lam.weight.detach().clone()
    rig.steps(3)
    assert rig.lam.weight.data_ptr() == where  # stepped in place, no copy
    assert not torch.equal(rig.lam.weight.detach(), before)


def test_inequality_checks_the_sign_of_the_models_output():
    # w = (-1, 0) gives lambda_i = -x_i < 0 where x_i > 0: refused before anything moves.
    rig = Rig(w0=[[-1.0, 0.0]], kind=feasible.INEQUALITY)
    before = rig.x.detach().clone()
    with pytest.raises(ValueError) as excinfo:
        rig.steps(1)
    assert "negative multiplier for an inequality constraint" in str(excinfo.value)
    assert "softplus" in str(excinfo.value)
    assert torch.equal(rig.x.detach(), before)
    assert rig.opt.iteration == 0


def test_option_errors():
    add = feasible.Problem().add_constraint
    implicit = feasible.MultiplierKind.IMPLICIT
    with pytest.raises(ValueError) as excinfo:
        add("no_model", multiplier=implicit)
    assert "ConstraintOptions.implicit_model" in str(excinfo.value)
    assert "be set for MultiplierKind::kImplicit" in str(excinfo.value)
    with pytest.raises(ValueError) as excinfo:
        add("dense_with_model", implicit_model=torch.nn.Linear(2, 1))
    assert "be empty unless multiplier is MultiplierKind::kImplicit" in str(excinfo.value)
    with pytest.raises(TypeError, match="implicit_model must be a torch.nn.Module"):
        add("not_a_module", multiplier=implicit, implicit_model=lambda f: f.sum(1))


def test_exceptions_of_the_model_pass_through():
    class Mine(Exception):
        pass

    class Raising(torch.nn.Linear):
        def forward(self, f):
            raise Mine("from the model")

    class NotATensor(torch.nn.Linear):
        def forward(self, f):
            return 3.0

    for cls, error, text in [(Raising, Mine, "from the model"),
                             (NotATensor, TypeError, "must return a torch.Tensor, got")]:
        rig = Rig(lam=cls(2, 1, bias=False).double())
        before = rig.x.detach().clone()
        with pytest.raises(error, match=text):
            rig.steps(1)
        assert torch.equal(rig.x.detach(), before)


def test_checkpoint_resumes_exactly(tmp_path):
    path = tmp_path / "implicit.ckpt"
    straight = Rig(dual="adam")
    straight.steps(10)
    first = Rig(dual="adam")
    first.steps(5)
    feasible.save(str(path), modules={"model": first.model}, optimizer=first.opt)
    resumed = Rig(dual="adam", w0=[[0.7, 0.4]])  # another model: the load must replace it
    info = feasible.load(str(path), modules={"model": resumed.model}, optimizer=resumed.opt)
    assert info.constraints == ["balance"]
    assert torch.equal(resumed.lam.weight, first.lam.weight)
    resumed.steps(5)
    assert torch.equal(resumed.x, straight.x)
    assert torch.equal(resumed.lam.weight, straight.lam.weight)
