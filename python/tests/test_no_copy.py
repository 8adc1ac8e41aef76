"""No copies: the tensors feasible steps are the module's own (storage pointers unchanged by
steps), and the Python optimizer adapter steps the same tensors."""
import pytest

feasible = pytest.importorskip("feasible")
import torch  # noqa: E402

import parity_problem as pp  # noqa: E402


@pytest.mark.parametrize("primal", ["sgd", "torch_adam"])
def test_parameter_storage_is_unchanged_by_steps(primal):
    model, problem, opt, pairs, total = pp.build("simultaneous", "dense", primal)
    pointer = model.x.data_ptr()
    before = model.x.detach().clone()
    pp.run_python("simultaneous", "dense", primal, 5, model, problem, opt, (pairs, total))
    assert model.x.data_ptr() == pointer
    assert not torch.equal(model.x.detach(), before)  # the steps moved x, in place


def test_dual_parameters_are_the_multipliers_storage():
    model, problem, opt, pairs, total = pp.build("simultaneous", "dense", "sgd")
    duals = problem.dual_parameters()
    pointers = [d.data_ptr() for d in duals]
    pp.run_python("simultaneous", "dense", "sgd", 5, model, problem, opt, (pairs, total))
    assert [d.data_ptr() for d in problem.dual_parameters()] == pointers
    # The dual parameter seen from Python holds the values the problem reports.
    assert torch.equal(duals[0].detach(), problem.multiplier_values("pairs"))


def test_optimizer_params_are_the_same_tensors():
    x = torch.zeros(3, requires_grad=True)
    sgd = feasible.optim.SGD([x], 0.1)
    assert sgd.params[0].data_ptr() == x.data_ptr()
    x.grad = torch.ones(3)
    sgd.step()
    assert torch.equal(x.detach(), torch.full((3,), -0.1))  # x - 0.1 * 1
