#!/usr/bin/env bash
# Installs feasible into a temporary prefix, then builds and runs examples/ as a separate
# project that finds it with find_package(feasible): the install and package config work.
# Also checks what the installed package hands to consumers:
#  - LibTorch by its imported target (`torch`, found again by find_dependency(Torch)), never by
#    absolute library paths (a consumer that finds another LibTorch would link two c10s);
#  - the compile feature cxx_std_17, which raises a consumer that asks for C++14 to C++17;
#  - GLPK (the static library's private dependency), which examples/best_iterate needs to link.
#  - no header-only private dependency (nlohmann-json, Boost) among the exported libraries.
set -euo pipefail
build_dir=$1
source_dir=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() {
  echo "install_consumer: $*" >&2
  exit 1
}
cmake --install "$build_dir" --prefix "$work/prefix" >/dev/null

targets=$(find "$work/prefix" -name feasibleTargets.cmake | head -n 1)
config=$(find "$work/prefix" -name feasibleConfig.cmake | head -n 1)
[[ -f $targets && -f $config ]] || fail "feasibleTargets.cmake or feasibleConfig.cmake not installed"
links=$(grep 'INTERFACE_LINK_LIBRARIES' "$targets" || true)
echo "exported: $links"
[[ -n $links ]] || fail "no INTERFACE_LINK_LIBRARIES in $targets"
if grep -Eq '/[^;"]*\.so' <<<"$links"; then
  fail "an absolute library path is exported in INTERFACE_LINK_LIBRARIES: $links"
fi
if grep -Eiq 'c10|libtorch' <<<"$links"; then
  fail "c10 or libtorch is exported by file, not by the torch target: $links"
fi
# The header-only libraries used inside the library (nlohmann-json, Boost.Math) are build-time
# dependencies only: a consumer must not need them.
if grep -Eiq 'nlohmann|boost' <<<"$links"; then
  fail "a header-only private dependency is exported: $links"
fi
grep -Eq 'INTERFACE_LINK_LIBRARIES "([^"]*;)?torch(;|")' <<<"$links" ||
  fail "the torch target is not in INTERFACE_LINK_LIBRARIES: $links"
grep -Eq 'INTERFACE_COMPILE_FEATURES "([^"]*;)?cxx_std_17(;|")' "$targets" ||
  fail "the compile feature cxx_std_17 is not exported in $targets"
grep -q 'find_dependency(Torch' "$config" || fail "$config does not find Torch"

# The consumer asks for C++14; the package's compile feature must raise it to C++17.
cmake -S "$source_dir/examples" -B "$work/build" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CXX_STANDARD=14 -DCMAKE_EXPORT_COMPILE_COMMANDS=ON \
  -DCMAKE_PREFIX_PATH="$work/prefix" -DCMAKE_CXX_COMPILER_LAUNCHER="$(command -v ccache || true)" >/dev/null
grep -Eq -- '-std=(c|gnu)\+\+17' "$work/build/compile_commands.json" ||
  fail "the consumer is not compiled as C++17: $(grep -Eo -- '-std=[^ ]*' "$work/build/compile_commands.json" | sort -u)"
cmake --build "$work/build" >/dev/null
out=$("$work/build/quickstart")
echo "$out"
grep -q "x = 0.5000, y = 0.5000, mu = -1.0000" <<<"$out"
grep -q "x = 1.0000, y = 0.0000, lambda = 2.0000" <<<"$out"
# The selection example calls shrink(), so it links only when the package hands GLPK over too.
out=$("$work/build/best_iterate")
echo "$out"
grep -Eq "^best iterate: .* among [0-9]+ feasible candidates" <<<"$out" ||
  fail "best_iterate chose no feasible candidate"
grep -Eq "^mixture of [12] candidate" <<<"$out" || fail "best_iterate's mixture has no 1 or 2 members"
