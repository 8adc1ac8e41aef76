"""Checkpoints written from Python load in C++ and the other way round: a run interrupted at
step 100 by a checkpoint and resumed in the other language gives, bit for bit, the iterates of
an uninterrupted 200-step run."""
import pytest

feasible = pytest.importorskip("feasible")
import torch  # noqa: E402

import parity_problem as pp  # noqa: E402


@pytest.mark.parametrize("scheme,kind", [("simultaneous", "dense"), ("primal_dual", "indexed"),
                                         ("default", "dense")])
def test_python_checkpoint_resumes_in_cpp(tmp_path, scheme, kind):
    path = tmp_path / "run.ckpt"
    whole = pp.run_driver(scheme, kind, "adam", 200)
    model, problem, opt, pairs, total = pp.build(scheme, kind, "adam")
    first = pp.run_python(scheme, kind, "adam", 100, model, problem, opt, (pairs, total))
    info = feasible.save(str(path), modules={"model": model}, optimizer=opt)
    assert info.removed_temporaries == []
    resumed = pp.run_driver(scheme, kind, "adam", 100, "--load", path)
    assert first == whole[:100]
    assert resumed == whole[100:]


@pytest.mark.parametrize("scheme,kind", [("simultaneous", "indexed"), ("extragradient", "dense"),
                                         ("default", "indexed")])
def test_cpp_checkpoint_resumes_in_python(tmp_path, scheme, kind):
    path = tmp_path / "run.ckpt"
    whole = pp.run_driver(scheme, kind, "adam", 200, "--save-at", 100, path)
    model, problem, opt, pairs, total = pp.build(scheme, kind, "adam")
    info = feasible.load(str(path), modules={"model": model}, optimizer=opt)
    assert info.iteration == 100
    assert info.modules == ["model"]
    assert info.constraints == ["pairs", "total"]
    assert opt.iteration == 100
    resumed = pp.run_python(scheme, kind, "adam", 100, model, problem, opt, (pairs, total))
    assert resumed == whole[100:]


def test_load_refuses_another_problem_and_changes_nothing(tmp_path):
    path = tmp_path / "run.ckpt"
    model, problem, opt, pairs, total = pp.build("simultaneous", "dense", "sgd")
    pp.run_python("simultaneous", "dense", "sgd", 3, model, problem, opt, (pairs, total))
    feasible.save(str(path), modules={"model": model}, optimizer=opt)
    other_model, other_problem, other_opt, _, _ = pp.build("simultaneous", "indexed", "sgd")
    before = other_model.x.detach().clone()
    with pytest.raises(ValueError) as excinfo:
        feasible.load(str(path), modules={"model": other_model}, optimizer=other_opt)
    assert str(path) in str(excinfo.value)
    assert torch.equal(other_model.x.detach(), before)
    assert other_opt.iteration == 0


def test_corrupted_file_is_a_runtime_error(tmp_path):
    path = tmp_path / "bad.ckpt"
    path.write_bytes(b"not a checkpoint")
    model = pp.Model()
    with pytest.raises(RuntimeError) as excinfo:
        feasible.load(str(path), modules={"model": model})
    assert not isinstance(excinfo.value, ValueError)
    assert str(path) in str(excinfo.value)


def test_python_optimizer_is_refused_by_save(tmp_path):
    model, problem, opt, _, _ = pp.build("simultaneous", "dense", "torch_adam")
    with pytest.raises(ValueError) as excinfo:
        feasible.save(str(tmp_path / "x.ckpt"), modules={"model": model}, optimizer=opt)
    text = str(excinfo.value)
    assert "feasible::python::PythonOptimizer" in text
    assert "which checkpoints do not support" in text
    assert "supported: torch::optim::SGD, Adam" in text  # the list of supported optimizers
