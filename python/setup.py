"""pip packaging of the Python module, from a CMake build (docs/python.md).

The extension is built by the project's CMake (it needs the C++ library, LibTorch and
pybind11); this script packages what the build put in <build>/python/feasible. Offline, into a
virtual environment that sees Debian's python3-torch:

    /usr/bin/python3 -m venv --system-site-packages .venv
    FEASIBLE_BUILD_DIR=$PWD/build .venv/bin/pip install --no-index --no-build-isolation ./python
"""
import os
import pathlib

from setuptools import setup
from setuptools.dist import Distribution

HERE = pathlib.Path(__file__).resolve().parent
BUILD = pathlib.Path(os.environ.get("FEASIBLE_BUILD_DIR", HERE.parent / "build")).resolve()
PACKAGE = BUILD / "python" / "feasible"

if not list(PACKAGE.glob("_feasible*.so")):
    raise SystemExit(f"feasible: no built module in {PACKAGE}; build it first "
                     "(cmake --build build --target _feasible) or set FEASIBLE_BUILD_DIR")


class BinaryDistribution(Distribution):
    """The wheel holds a compiled module: platform-specific."""

    def has_ext_modules(self):
        return True


setup(
    name="feasible",
    version="0.1.0",
    description="Constrained deep learning for PyTorch on feasible's C++ core",
    packages=["feasible"],
    package_dir={"feasible": os.path.relpath(PACKAGE, HERE)},
    package_data={"feasible": ["_feasible*.so"]},
    distclass=BinaryDistribution,
    python_requires=">=3.9",
    zip_safe=False,
)
