#pragma once
/// \file bench_util.h
/// What the benchmark programs share: summary statistics of a series of timings (median,
/// linear-interpolation quantile, sample standard deviation, minimum) and integer flag parsing.

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace feasible_bench {

/// Median, sample standard deviation and minimum of a series.
struct Stats {
  double median = 0, stddev = 0, min = 0;
};

/// Median of a non-empty series (mean of the two middle values for an even count).
inline double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/// Quantile q in [0, 1] of a non-empty series, interpolating linearly between order statistics.
inline double quantile_of(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const size_t lo = static_cast<size_t>(pos);
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (pos - static_cast<double>(lo)) * (v[hi] - v[lo]);
}

/// Median, sample standard deviation (0 for one value) and minimum of a non-empty series.
inline Stats stats_of(const std::vector<double>& v) {
  Stats s;
  s.median = median_of(v);
  double mean = 0;
  for (double x : v) mean += x;
  mean /= static_cast<double>(v.size());
  double ss = 0;
  for (double x : v) ss += (x - mean) * (x - mean);
  s.stddev = v.size() > 1 ? std::sqrt(ss / static_cast<double>(v.size() - 1)) : 0.0;
  s.min = *std::min_element(v.begin(), v.end());
  return s;
}

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
