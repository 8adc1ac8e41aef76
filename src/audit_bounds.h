// The audit's confidence bounds, p-values and multiple-testing levels (internal; the public
// interface is include/feasible/audit.h, the formulas are in docs/audit.md).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "feasible/audit.h"

namespace feasible {
namespace detail {

/// The pooled sums of one term of one scalar entry: coefficient * rate, the rate being a 0-1
/// rate (counts) or a mean of values in [lower, upper].
struct TermStats {
  double coefficient = 1.0;
  bool counts = true;
  double lower = 0.0;
  double upper = 1.0;
  double n = 0.0;        // the pooled total (number of examples)
  double sum = 0.0;      // the pooled hits (count, or sum of the values)
  double squares = 0.0;  // the pooled sum of squared values (bounded means)
};

/// The smallest level the p-values go down to (a p-value below it is reported as it).
constexpr double kMinAlpha = 1e-300;

/// Exact one-sided Clopper–Pearson bounds for a binomial proportion from k successes in n
/// trials at level alpha in (0, 1]: upper = Beta quantile(1 - alpha; k + 1, n - k) (1 when
/// k = n), lower = Beta quantile(alpha; k, n - k + 1) (0 when k = 0); [0, 1] when n = 0.
double clopper_pearson_upper(double k, double n, double alpha);
double clopper_pearson_lower(double k, double n, double alpha);

/// Hoeffding's one-sided bound mean +- (b - a) sqrt(log(1 / alpha) / (2 n)), clipped to [a, b]
/// (the vacuous bound when n = 0). `sum` is the sum of the n values.
double hoeffding_bound(double sum, double n, double a, double b, double alpha, bool upper);

/// Maurer and Pontil's empirical Bernstein bound (COLT 2009, Theorem 4) scaled to [a, b]:
/// mean +- (sqrt(2 V log(2 / alpha) / n) + 7 (b - a) log(2 / alpha) / (3 (n - 1))), V the
/// unbiased sample variance from the sums, clipped to [a, b] (vacuous when n < 2).
double empirical_bernstein_bound(double sum, double squares, double n, double a, double b,
                                 double alpha, bool upper);

/// One term's rate bounded at level alpha (Clopper–Pearson for counts, else `mean_bound`).
double term_bound(const TermStats& term, double alpha, MeanBound mean_bound, bool upper);

/// The bound of e = sum_i c_i r_i + offset at level alpha: each of the T terms at alpha / T,
/// its upper bound where c_i > 0 and its lower bound where c_i < 0 for the upper bound of e
/// (the reverse for the lower bound).
double entry_bound(const std::vector<TermStats>& terms, double offset, double alpha,
                   MeanBound mean_bound, bool upper);

/// The smallest alpha in [kMinAlpha, 1] with entry_bound(..., alpha, upper) <= 0, found by
/// bisection on log alpha (the bound decreases as alpha grows); 1 when none is. The returned
/// value is the bracket's upper end, at which the bound was checked to be <= 0.
double entry_p_value(const std::vector<TermStats>& terms, double offset, MeanBound mean_bound);

/// The bound's name ("Clopper-Pearson", "Hoeffding", "empirical Bernstein") for one term.
std::string method_name(const TermStats& term, MeanBound mean_bound);

/// The outcome of the multiple-testing correction over m p-values at level delta: per entry,
/// whether "e > 0" is rejected (the entry holds) and the level its p-value was compared with.
struct Tested {
  std::vector<bool> holds;
  std::vector<double> levels;
};
Tested correct(const std::vector<double>& p_values, double delta, Correction correction);

/// One scalar entry as the Auditor hands it to the report: its place and its pooled terms
/// (no term when the constraint was never observed).
struct EntryInput {
  std::string constraint;
  int64_t entry = 0;
  int64_t part = -1;
  double offset = 0.0;
  std::vector<TermStats> terms;
};

/// Bounds, p-values, the correction over the observed entries, and the verdicts
/// (src/audit_report.cpp).
AuditReport audit_entries(const std::vector<EntryInput>& inputs, const AuditOptions& options);

}  // namespace detail
}  // namespace feasible
