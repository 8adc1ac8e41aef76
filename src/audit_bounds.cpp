// The audit's confidence bounds, p-values and multiple-testing levels (src/audit_bounds.h).
#include "src/audit_bounds.h"

#include <c10/util/Exception.h>

#include <algorithm>
#include <boost/math/special_functions/beta.hpp>
#include <cmath>
#include <numeric>

namespace feasible {
namespace detail {

namespace {

// Below this level Boost's inverse incomplete beta (Boost 1.74) can fail to converge ("Root
// finding evaluation exceeded 200 iterations") or assert for small counts (e.g. 1 of 8 at
// alpha 1e-149), so the quantile is found by bisection on the incomplete beta itself, which is
// robust there. Above it, a scan of n up to 1e5 and alpha down to 1e-20 found no failure.
constexpr double kBoostInverseFloor = 1e-20;

// The crossing point in [0, 1] of a monotone function, by bisection: `below(x)` tells whether x
// lies below it. Halving until the bracket holds no double between its ends (at most about
// 1,100 halvings near 0, where doubles are dense; 60 near 1). `upper` returns the bracket's
// upper end (a conservative upper bound), else its lower end.
template <typename Below>
double crossing(Below below, bool upper) {
  double lo = 0.0, hi = 1.0;
  for (;;) {
    const double mid = 0.5 * (lo + hi);
    if (mid <= lo || mid >= hi) break;
    (below(mid) ? lo : hi) = mid;
  }
  return upper ? hi : lo;
}

}  // namespace

double clopper_pearson_upper(double k, double n, double alpha) {
  if (n <= 0 || k >= n) return 1.0;
  // The (1 - alpha) quantile of Beta(k + 1, n - k), taken as the upper-tail inverse so that a
  // tiny alpha keeps its precision (1 - alpha would round to 1).
  if (alpha >= kBoostInverseFloor) return boost::math::ibetac_inv(k + 1.0, n - k, alpha);
  // P(Beta(k + 1, n - k) > x) decreases in x: x is below the quantile while it exceeds alpha.
  return crossing([&](double x) { return boost::math::ibetac(k + 1.0, n - k, x) > alpha; }, true);
}

double clopper_pearson_lower(double k, double n, double alpha) {
  if (n <= 0 || k <= 0) return 0.0;
  // The alpha quantile of Beta(k, n - k + 1).
  if (alpha >= kBoostInverseFloor) return boost::math::ibeta_inv(k, n - k + 1.0, alpha);
  // P(Beta(k, n - k + 1) <= x) increases in x: x is below the quantile while it is under alpha.
  return crossing([&](double x) { return boost::math::ibeta(k, n - k + 1.0, x) < alpha; }, false);
}

double hoeffding_bound(double sum, double n, double a, double b, double alpha, bool upper) {
  if (n <= 0) return upper ? b : a;
  const double radius = (b - a) * std::sqrt(std::log(1.0 / alpha) / (2.0 * n));
  const double mean = sum / n;
  return upper ? std::min(b, mean + radius) : std::max(a, mean - radius);
}

double empirical_bernstein_bound(double sum, double squares, double n, double a, double b,
                                 double alpha, bool upper) {
  if (n < 2) return upper ? b : a;
  const double mean = sum / n;
  // Unbiased sample variance (sum x^2 - (sum x)^2 / n) / (n - 1); rounding can make it
  // slightly negative when every value is the same.
  const double variance = std::max(0.0, (squares - sum * sum / n) / (n - 1.0));
  const double log_term = std::log(2.0 / alpha);
  const double radius =
      std::sqrt(2.0 * variance * log_term / n) + 7.0 * (b - a) * log_term / (3.0 * (n - 1.0));
  return upper ? std::min(b, mean + radius) : std::max(a, mean - radius);
}

double term_bound(const TermStats& term, double alpha, MeanBound mean_bound, bool upper) {
  if (term.counts) {
    return upper ? clopper_pearson_upper(term.sum, term.n, alpha)
                 : clopper_pearson_lower(term.sum, term.n, alpha);
  }
  if (mean_bound == MeanBound::kHoeffding) {
    return hoeffding_bound(term.sum, term.n, term.lower, term.upper, alpha, upper);
  }
  return empirical_bernstein_bound(term.sum, term.squares, term.n, term.lower, term.upper, alpha,
                                   upper);
}

double entry_bound(const std::vector<TermStats>& terms, double offset, double alpha,
                   MeanBound mean_bound, bool upper) {
  const double share = alpha / static_cast<double>(terms.size());  // union bound over the terms
  double bound = offset;
  for (const TermStats& term : terms) {
    if (term.coefficient == 0.0) continue;
    // c * r is largest at r's upper bound when c > 0 and at its lower bound when c < 0.
    const bool take_upper = (term.coefficient > 0) == upper;
    bound += term.coefficient * term_bound(term, share, mean_bound, take_upper);
  }
  return bound;
}

double entry_p_value(const std::vector<TermStats>& terms, double offset, MeanBound mean_bound) {
  const auto holds_at = [&](double log_alpha) {
    return entry_bound(terms, offset, std::exp(log_alpha), mean_bound, true) <= 0.0;
  };
  if (!holds_at(0.0)) return 1.0;
  double low = std::log(kMinAlpha);  // the bound is > 0 here ...
  double high = 0.0;                 // ... and <= 0 here
  if (holds_at(low)) return kMinAlpha;
  // 60 halvings of a bracket of width log(1e300) ~ 691 leave a width below 1e-15: the p-value
  // is found to a relative precision near the double's.
  for (int i = 0; i < 60; ++i) {
    const double middle = 0.5 * (low + high);
    (holds_at(middle) ? high : low) = middle;
  }
  return std::exp(high);
}

std::string method_name(const TermStats& term, MeanBound mean_bound) {
  if (term.counts) return "Clopper-Pearson";
  return mean_bound == MeanBound::kHoeffding ? "Hoeffding" : "empirical Bernstein";
}

Tested correct(const std::vector<double>& p_values, double delta, Correction correction) {
  const size_t m = p_values.size();
  Tested out{std::vector<bool>(m, false), std::vector<double>(m, delta)};
  if (correction == Correction::kNone) {
    for (size_t j = 0; j < m; ++j) out.holds[j] = p_values[j] <= delta;
    return out;
  }
  if (correction == Correction::kBonferroni) {
    for (size_t j = 0; j < m; ++j) {
      out.levels[j] = delta / static_cast<double>(m);
      out.holds[j] = p_values[j] <= out.levels[j];
    }
    return out;
  }
  // Holm: the j-th smallest p-value (0-based rank r) is compared with delta / (m - r); the
  // entries are rejected in order until the first comparison fails.
  std::vector<size_t> order(m);
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return p_values[a] < p_values[b]; });
  bool rejecting = true;
  for (size_t rank = 0; rank < m; ++rank) {
    const size_t j = order[rank];
    out.levels[j] = delta / static_cast<double>(m - rank);
    rejecting = rejecting && p_values[j] <= out.levels[j];
    out.holds[j] = rejecting;
  }
  return out;
}

}  // namespace detail
}  // namespace feasible
