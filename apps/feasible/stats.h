#pragma once
/// \file stats.h
/// Summary statistics of a series of measurements (timings), shared by the `feasible` program and
/// the benchmarks (bench/). Header-only and Torch-free.

#include <algorithm>
#include <cmath>
#include <vector>

namespace feasible::stats {

/// Median of a series: the middle value, or the mean of the two middle values for an even count;
/// 0 for an empty series.
inline double median_of(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/// Quantile q in [0, 1] of a series, interpolating linearly between order statistics; 0 for an
/// empty series.
inline double quantile_of(std::vector<double> v, double q) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const size_t lo = static_cast<size_t>(pos);
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (pos - static_cast<double>(lo)) * (v[hi] - v[lo]);
}

/// Sample standard deviation (divisor n - 1); 0 for fewer than two values.
inline double stddev_of(const std::vector<double>& v) {
  if (v.size() < 2) return 0.0;
  double mean = 0;
  for (double x : v) mean += x;
  mean /= static_cast<double>(v.size());
  double sum = 0;
  for (double x : v) sum += (x - mean) * (x - mean);
  return std::sqrt(sum / static_cast<double>(v.size() - 1));
}

/// Median, sample standard deviation and minimum of a series.
struct Stats {
  double median = 0;  ///< median_of()
  double stddev = 0;  ///< stddev_of()
  double min = 0;     ///< smallest value (0 for an empty series)
};

/// The Stats of a series.
inline Stats stats_of(const std::vector<double>& v) {
  Stats s;
  s.median = median_of(v);
  s.stddev = stddev_of(v);
  s.min = v.empty() ? 0.0 : *std::min_element(v.begin(), v.end());
  return s;
}

}  // namespace feasible::stats
