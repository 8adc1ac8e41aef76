#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ with clang (a separate, torch-free CMake project) and
# runs each for a bounded time, starting from the seed corpus in fuzz/corpus/<target>/.
#
# Usage: scripts/fuzz.sh [BUILD_DIR]        (default: build-fuzz)
# Environment:
#   FUZZ_SECONDS   seconds of fuzzing per target (default 15; `make fuzz` uses 300)
#   FUZZ_TARGETS   targets to run (default "checkpoint_format cli")
#   FUZZ_CXX       the clang++ to use (default: clang++, else clang++-14)
# Exit status: 0 clean; 1 a crash, a violated property or a build failure (the crashing input
# is kept in BUILD_DIR/artifacts/ and the command to replay it is printed); 77 skipped, when
# clang or its libFuzzer runtime is missing (CTest reports the test as skipped).
# Inputs that found new coverage go to BUILD_DIR/corpus/<target>/, never into the repository;
# to keep some, merge them: <fuzzer> -merge=1 fuzz/corpus/<target> BUILD_DIR/corpus/<target>
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(realpath -m "${1:-$root/build-fuzz}")
seconds=${FUZZ_SECONDS:-15}
read -r -a targets <<<"${FUZZ_TARGETS:-checkpoint_format cli}"

skip() {
  echo "fuzz: SKIPPED: $*" >&2
  echo "fuzz: on Debian 12: apt-get install clang libclang-rt-14-dev" >&2
  exit 77
}

cxx=${FUZZ_CXX:-}
if [ -z "$cxx" ]; then
  for c in clang++ clang++-14; do
    if command -v "$c" >/dev/null 2>&1; then cxx=$(command -v "$c"); break; fi
  done
fi
[ -n "$cxx" ] || skip "no clang++ found (libFuzzer needs clang)"

mkdir -p "$build"
probe_dir=$(mktemp -d)
trap 'rm -rf "$probe_dir"' EXIT
echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }' \
  >"$probe_dir/probe.cpp"
if ! "$cxx" -fsanitize=fuzzer,address,undefined "$probe_dir/probe.cpp" -o "$probe_dir/probe" \
  >"$probe_dir/probe.log" 2>&1; then
  cat "$probe_dir/probe.log" >&2
  skip "$cxx cannot link a libFuzzer target (missing compiler-rt: libclang-rt-14-dev)"
fi

for f in src/checkpoint_format.cpp apps/feasible/cli.cpp; do
  [ -f "$root/$f" ] || { echo "fuzz: $root/$f is missing" >&2; exit 1; }
done

start=$(date +%s)
if ! { cmake -S "$root/fuzz" -B "$build" -DCMAKE_CXX_COMPILER="$cxx" &&
  cmake --build "$build" -j "${JOBS:-$(nproc)}"; } >"$build/build.log" 2>&1; then
  tail -50 "$build/build.log" >&2
  echo "fuzz: building the fuzzers failed (log: $build/build.log)" >&2
  exit 1
fi
echo "fuzz: built the fuzzers with $("$cxx" --version | head -1) in $(($(date +%s) - start)) s"

# The fuzzers' own sanitizer settings, not those of a surrounding `make test-sanitize`.
unset ASAN_OPTIONS LSAN_OPTIONS UBSAN_OPTIONS
export UBSAN_OPTIONS=print_stacktrace=1

status=0
mkdir -p "$build/artifacts"
for t in "${targets[@]}"; do
  exe="$build/${t}_fuzzer"
  [ -x "$exe" ] || { echo "fuzz: unknown target '$t'" >&2; exit 1; }
  case $t in
    cli) max_len=512 ;;
    *) max_len=4096 ;;
  esac
  work="$build/corpus/$t"
  mkdir -p "$work"
  log="$build/$t.log"
  rm -f "$build/artifacts/$t-"*
  set +e
  "$exe" -max_total_time="$seconds" -print_final_stats=1 -timeout=25 -rss_limit_mb=2048 \
    -max_len="$max_len" -dict="$root/fuzz/$t.dict" -artifact_prefix="$build/artifacts/$t-" \
    "$work" "$root/fuzz/corpus/$t" >"$log" 2>&1
  rc=$?
  set -e
  runs=$(awk '/stat::number_of_executed_units:/ {print $2}' "$log")
  rate=$(awk '/stat::average_exec_per_sec:/ {print $2}' "$log")
  corpus=$(find "$work" "$root/fuzz/corpus/$t" -type f | wc -l)
  if [ "$rc" -eq 0 ]; then
    echo "fuzz: $t: OK, ${seconds} s, ${runs:-?} executions, ${rate:-?} exec/s, $corpus corpus inputs"
  else
    status=1
    echo "fuzz: $t: FAILED (exit $rc) after ${runs:-?} executions; log: $log" >&2
    grep -v -e '^#' -e '^INFO:' "$log" | tail -60 >&2
    for a in "$build/artifacts/$t-"*; do
      [ -e "$a" ] && echo "fuzz: crashing input: $a (replay: $exe $a)" >&2
    done
  fi
done
exit "$status"
