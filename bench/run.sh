#!/usr/bin/env bash
# Runs the benchmark executables of a build directory (used by `make bench`).
#
#   bench/run.sh [BUILD_DIR] [NAME...]
#
# BUILD_DIR defaults to "build" (relative to the repository root, or absolute). Without NAMEs,
# every bench_* executable in BUILD_DIR/bench runs, in name order; with NAMEs (e.g.
# bench_overhead), only those. Each runs with its default flags; run a binary directly for
# others (e.g. BUILD_DIR/bench/bench_overhead --help). docs/performance.md explains the output.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-build}"
shift || true
case "$build" in
  /*) ;;
  *) build="$root/$build" ;;
esac
dir="$build/bench"
if [[ ! -d "$dir" ]]; then
  echo "bench/run.sh: no $dir; build the benchmarks first (make bench, or cmake --build $build --target benchmarks)" >&2
  exit 1
fi

names=("$@")
if [[ ${#names[@]} -eq 0 ]]; then
  for exe in "$dir"/bench_*; do
    [[ -f "$exe" && -x "$exe" ]] && names+=("$(basename "$exe")")
  done
fi
if [[ ${#names[@]} -eq 0 ]]; then
  echo "bench/run.sh: no bench_* executables in $dir; build them first (cmake --build $build --target benchmarks)" >&2
  exit 1
fi

echo "feasible benchmarks, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPU(s)," \
  "commit $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
status=0
for name in "${names[@]}"; do
  exe="$dir/$name"
  if [[ ! -x "$exe" ]]; then
    echo "bench/run.sh: $exe is not an executable" >&2
    status=1
    continue
  fi
  echo
  echo "==================== $name"
  "$exe" || status=$?
done
exit "$status"
