#!/usr/bin/env bash
# Installs feasible into a temporary prefix, then builds and runs examples/ as a separate
# project that finds it with find_package(feasible): the install and package config work.
set -euo pipefail
build_dir=$1
source_dir=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build_dir" --prefix "$work/prefix" >/dev/null
cmake -S "$source_dir/examples" -B "$work/build" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$work/prefix" -DCMAKE_CXX_COMPILER_LAUNCHER="$(command -v ccache || true)" >/dev/null
cmake --build "$work/build" >/dev/null
out=$("$work/build/quickstart")
echo "$out"
grep -q "x = 0.5000, y = 0.5000, mu = -1.0000" <<<"$out"
grep -q "x = 1.0000, y = 0.0000, lambda = 2.0000" <<<"$out"
