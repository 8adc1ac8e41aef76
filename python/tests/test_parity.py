"""Parity: the same problem driven from Python and from C++ (parity_driver.cpp) gives
bit-identical iterates (x and the multipliers after every step, compared as exact floats) for
200 steps, for every scheme, with dense and indexed multipliers; and a Python
torch.optim.Adam primal gives the C++ Adam's iterates."""
import pytest

feasible = pytest.importorskip("feasible")
import parity_problem as pp  # noqa: E402

STEPS = 200


def first_difference(a, b):
    for i, (ra, rb) in enumerate(zip(a, b)):
        if ra != rb:
            return f"step {i}: C++ {ra} vs Python {rb}"
    return f"lengths {len(a)} vs {len(b)}" if len(a) != len(b) else None


@pytest.mark.parametrize("kind", ["dense", "indexed"])
@pytest.mark.parametrize("scheme", pp.SCHEMES)
def test_bit_identical_to_cpp(scheme, kind):
    cpp = pp.run_driver(scheme, kind, "sgd", STEPS)
    py = pp.run_python(scheme, kind, "sgd", STEPS)
    assert len(cpp) == STEPS
    # Exact equality of every float (x, then the multipliers): bit for bit, no tolerance.
    assert cpp == py, first_difference(cpp, py)
    # The run moved: the last x differs from the start (zeros), so equality is not vacuous.
    assert any(v != 0.0 for v in cpp[-1][1:11])


@pytest.mark.parametrize("kind", ["dense", "indexed"])
def test_python_adam_matches_cpp_adam(kind):
    cpp = pp.run_driver("simultaneous", kind, "adam", STEPS)
    py_cpp_adam = pp.run_python("simultaneous", kind, "adam", STEPS)
    py_torch_adam = pp.run_python("simultaneous", kind, "torch_adam", STEPS)
    assert cpp == py_cpp_adam, first_difference(cpp, py_cpp_adam)
    # torch.optim.Adam (Python) through the adapter: the same iterates as LibTorch's C++ Adam.
    assert cpp == py_torch_adam, first_difference(cpp, py_torch_adam)
