#pragma once
/// \file bench_util.h
/// What the benchmark programs share: the summary statistics of apps/feasible/stats.h (median,
/// linear-interpolation quantile, sample standard deviation, minimum) and integer flag parsing.

#include <cstdio>
#include <cstdlib>
#include <vector>

#include "apps/feasible/stats.h"

namespace feasible_bench {

// The summary statistics live in apps/feasible/stats.h, shared with the `feasible` program.
using feasible::stats::median_of;
using feasible::stats::quantile_of;
using feasible::stats::Stats;
using feasible::stats::stats_of;

/// The integer value after the flag argv[i] (advancing i past it); prints "missing value after
/// <flag>" and exits with status 2 when there is none.
inline int int_flag(int& i, int argc, char** argv) {
  if (i + 1 >= argc) {
    std::fprintf(stderr, "missing value after %s\n", argv[i]);
    std::exit(2);
  }
  return std::atoi(argv[++i]);
}

}  // namespace feasible_bench
