"""The Python quick start (examples/quickstart.py) reaches the closed form x = 1, y = 0,
lambda = 2 of min (x - 2)^2 + (y - 1)^2 s.t. x + y <= 1."""
import importlib.util
import math
import pathlib

import pytest

feasible = pytest.importorskip("feasible")

EXAMPLE = pathlib.Path(__file__).resolve().parents[2] / "examples" / "quickstart.py"


def test_quickstart_reaches_the_closed_form():
    spec = importlib.util.spec_from_file_location("quickstart", EXAMPLE)
    quickstart = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(quickstart)
    x, y, lam, result = quickstart.main(verbose=False)
    # Tolerance 1e-3: float32 parameters (eps ~1.2e-7) after 2000 steps of a contraction; the
    # default optimizer's documented convergence on such problems is far tighter than this.
    assert abs(x - 1.0) < 1e-3
    assert abs(y - 0.0) < 1e-3
    assert abs(lam - 2.0) < 1e-2
    assert result.max_violation() < 1e-3
    text = repr(result)
    assert text.startswith("StepResult(iteration=1999")
    assert "'budget'" in text
    assert not math.isnan(result.max_violation())
