#!/usr/bin/env bash
# Installs the Debian 12 packages feasible needs. Idempotent: prints nothing and
# changes nothing when everything is present.
set -euo pipefail

packages=(
  build-essential cmake make
  libtorch-dev           # LibTorch 1.13.1 (CPU)
  libopenblas0-pthread   # fast BLAS; Debian selects it over the reference BLAS
  libgtest-dev googletest
  libbenchmark-dev
  ccache
  zlib1g-dev             # CRC-32 of checkpoints
  libglpk-dev            # GLPK: the linear programs of shrink() (selection.h)
  libcli11-dev           # the program's command line
  nlohmann-json3-dev     # results.json, the audit's JSON report
  libboost-math1.74-dev  # the audit's Clopper-Pearson bounds (Beta quantiles; header-only)
  gnuplot-nox            # the figures (PNG and SVG)
  clang libclang-rt-14-dev  # libFuzzer (the fuzz_smoke test and make fuzz)
  dataset-fashion-mnist  # Fashion-MNIST IDX files (the sparsity experiment, data tests)
  pybind11-dev           # the Python module's bindings (python/src)
  python3-dev            # Python headers for the module
  python3-torch          # PyTorch 1.13 for Debian's python3 (the same build as libtorch-dev): the Python module, and torchrun for data-parallel runs
  python3-pytest         # the Python module's tests (python/tests)
  python3-venv python3-pip  # pip-installing the module into a virtual environment (docs/python.md)
  libgloo-dev            # the headers of LibTorch's c10d Gloo group (distributed.h)
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO=sudo
  else
    echo "feasible setup: missing Debian packages: ${missing[*]}" >&2
    echo "Run as root: apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
else
  SUDO=
fi
echo "feasible setup: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
