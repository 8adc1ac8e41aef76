#!/usr/bin/env bash
# Builds the library, the program, the examples and every test with AddressSanitizer +
# UndefinedBehaviorSanitizer (gcc; FEASIBLE_SANITIZE=ON, see cmake/Sanitize.cmake) in their own
# build directory, then runs the whole CTest suite there. Any memory error, leak or undefined
# behaviour in feasible's code fails the test that hit it. LibTorch is not instrumented.
#
# Usage: scripts/test-sanitize.sh [BUILD_DIR]      (default: build-sanitize)
# Environment: JOBS (parallel build and test jobs, default nproc); CTEST_ARGS (extra ctest
# arguments, e.g. "-R checkpoint_test"); SANITIZE_TARGETS (a subset: build only these test
# executables, e.g. "checkpoint_test nonfinite_test", and run each whole instead of ctest;
# .ci/run uses it to keep CI within its time limit). The sanitizer settings below are exported for the build too,
# because with -DFEASIBLE_TEST_PER_CASE=ON gtest_discover_tests runs each test binary at build time.
# Suppressions (each one documented in its file): tools/sanitize/lsan.supp, ubsan.supp.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(realpath -m "${1:-$root/build-sanitize}")
jobs=${JOBS:-$(nproc)}
supp=$root/tools/sanitize

export ASAN_OPTIONS="detect_leaks=1:check_initialization_order=1:strict_init_order=1:detect_stack_use_after_return=1:halt_on_error=1"
export LSAN_OPTIONS="suppressions=$supp/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:suppressions=$supp/ubsan.supp"

t0=$(date +%s)
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DFEASIBLE_SANITIZE=ON \
  -DFEASIBLE_BUILD_BENCHMARKS=OFF >/dev/null
status=0
if [ -n "${SANITIZE_TARGETS:-}" ]; then
  # shellcheck disable=SC2086
  cmake --build "$build" -j "$jobs" --target ${SANITIZE_TARGETS}
  t1=$(date +%s)
  for t in ${SANITIZE_TARGETS}; do
    echo "test-sanitize: $t"
    (cd "$build/tests" && "./$t" --gtest_brief=1) || status=$?
  done
else
  cmake --build "$build" -j "$jobs"
  t1=$(date +%s)
  # shellcheck disable=SC2086
  (cd "$build" && ctest --output-on-failure -j "$jobs" ${CTEST_ARGS:-}) || status=$?
fi
t2=$(date +%s)
echo "test-sanitize: build $((t1 - t0)) s, tests $((t2 - t1)) s (ASan + UBSan, $jobs jobs)"
exit "$status"
