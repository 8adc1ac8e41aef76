"""pytest set-up for the Python module's tests (python/tests).

The module is found on PYTHONPATH (CMake's build puts it in <build>/python; CTest sets the
path). Each test file skips itself when `import feasible` fails (module not built).
"""
import sys
import pathlib

# parity_problem.py (shared by several test files) sits next to the tests.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
