// The held-out audit (include/feasible/audit.h): the bounds against closed forms and hand
// computations, their coverage in simulation, the multiple-testing corrections, the verdicts,
// the accumulation across batches, the errors, and the JSON and Markdown reports.
#include "feasible/audit.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <random>
#include <vector>

#include "feasible/data.h"
#include "feasible/rates.h"
#include "src/audit_bounds.h"
#include "test_util.h"

namespace {

using feasible::AuditOptions;
using feasible::Auditor;
using feasible::AuditReport;
using feasible::ConstraintKind;
using feasible::ConstraintOptions;
using feasible::Correction;
using feasible::MeanBound;
using feasible::Problem;
using feasible::Verdict;
using feasible::detail::TermStats;
using feasible_test::error_of;
namespace rates = feasible::rates;
namespace detail = feasible::detail;

// A 0-1 rate of hits out of total examples, per entry ([K] tensors; a 0-d one when K = 1 and
// `scalar`). The surrogate is unused by the audit and set to the rate.
rates::Rate counts(const std::vector<double>& hits, const std::vector<double>& total,
                   bool scalar = false) {
  rates::Rate r;
  r.hits = feasible_test::dvec(hits);
  r.total = feasible_test::dvec(total);
  if (scalar) {
    r.hits = r.hits.reshape({});
    r.total = r.total.reshape({});
  }
  r.surrogate = r.hits / r.total.clamp_min(1);
  return r;
}

rates::Rate count(double hits, double total) { return counts({hits}, {total}, true); }

// A bounded mean of n values in [a, b] with the given sum and sum of squares.
rates::Rate bounded(double sum, double squares, double n, double a, double b) {
  rates::Rate r = count(sum, n);
  r.squares = torch::tensor(squares, torch::kFloat64);
  r.counts = false;
  r.lower = a;
  r.upper = b;
  r.surrogate = r.hits / r.total;
  return r;
}

// P(Binomial(n, p) <= k) by direct summation, an independent check of the Beta quantiles
// (I_p(k + 1, n - k) = P(Binomial(n, p) >= k + 1) for integers).
double binomial_cdf(int k, int n, double p) {
  double total = 0.0;
  for (int i = 0; i <= k; ++i) {
    const double log_term = std::lgamma(n + 1.0) - std::lgamma(i + 1.0) - std::lgamma(n - i + 1.0) +
                            i * std::log(p) + (n - i) * std::log1p(-p);
    total += std::exp(log_term);
  }
  return total;
}

// ---- the bounds ----

TEST(AuditBounds, ClopperPearsonClosedFormsAtZeroAndAllHits) {
  // k = 0: Beta(1, n) has upper tail (1 - x)^n, so UCB = 1 - alpha^(1/n); k = n: Beta(n, 1) has
  // CDF x^n, so LCB = alpha^(1/n). Boost's inverses are accurate to about 1e-15; 1e-12 leaves
  // room.
  for (const int n : {1, 7, 20, 1000}) {
    for (const double alpha : {0.05, 0.01, 1e-6}) {
      EXPECT_NEAR(detail::clopper_pearson_upper(0, n, alpha), 1 - std::pow(alpha, 1.0 / n), 1e-12)
          << n << " " << alpha;
      EXPECT_NEAR(detail::clopper_pearson_lower(n, n, alpha), std::pow(alpha, 1.0 / n), 1e-12)
          << n << " " << alpha;
    }
  }
  // The trivial ends: UCB = 1 when k = n, LCB = 0 when k = 0, [0, 1] without examples.
  EXPECT_EQ(detail::clopper_pearson_upper(5, 5, 0.05), 1.0);
  EXPECT_EQ(detail::clopper_pearson_lower(0, 5, 0.05), 0.0);
  EXPECT_EQ(detail::clopper_pearson_upper(0, 0, 0.05), 1.0);
  EXPECT_EQ(detail::clopper_pearson_lower(0, 0, 0.05), 0.0);
}

TEST(AuditBounds, ClopperPearsonInteriorSolvesTheBinomialTails) {
  // The upper bound u solves P(Bin(n, u) <= k) = alpha, the lower bound l solves
  // P(Bin(n, l) >= k) = alpha (Clopper & Pearson 1934); checked by summing the binomial terms.
  // The sums are accurate to about 1e-14; 1e-10 leaves room.
  const double alpha = 0.05;
  for (const auto& kn : std::vector<std::pair<int, int>>{{3, 20}, {1, 10}, {37, 80}}) {
    const int k = kn.first, n = kn.second;
    const double u = detail::clopper_pearson_upper(k, n, alpha);
    const double l = detail::clopper_pearson_lower(k, n, alpha);
    EXPECT_NEAR(binomial_cdf(k, n, u), alpha, 1e-10) << k << "/" << n;
    EXPECT_NEAR(1 - binomial_cdf(k - 1, n, l), alpha, 1e-10) << k << "/" << n;
    EXPECT_LT(l, static_cast<double>(k) / n);
    EXPECT_GT(u, static_cast<double>(k) / n);
  }
  // A published value: 1 of 10 has the exact two-sided 95% interval (0.0025, 0.4450), i.e. the
  // one-sided bounds at alpha = 0.025 (rounded to 4 digits, hence the tolerance 5e-5).
  EXPECT_NEAR(detail::clopper_pearson_lower(1, 10, 0.025), 0.0025, 5e-5);
  EXPECT_NEAR(detail::clopper_pearson_upper(1, 10, 0.025), 0.4450, 5e-5);
}

// Small counts at the tiny levels the p-value search visits (down to kMinAlpha): Boost's inverse
// incomplete beta gives up there ("Root finding evaluation exceeded 200 iterations", e.g. 1 of
// 8 at alpha 1e-149), so below 1e-20 the bounds are found by bisection on the incomplete beta.
TEST(AuditBounds, ClopperPearsonAtTinyLevels) {
  for (const double alpha : {1e-25, 1e-149, 1e-300}) {
    // k = n: LCB = alpha^(1/n) in closed form; the bisection ends within one double of it.
    EXPECT_NEAR(detail::clopper_pearson_lower(8, 8, alpha) / std::pow(alpha, 1.0 / 8), 1.0, 1e-12);
    // Interior counts: 1 - UCB is below the double's resolution near 1 at these levels, so only
    // the order is checked: the bounds widen as alpha shrinks, so none is tighter than at the
    // floor 1e-20, where Boost's inverse still answers.
    for (const auto& kn : std::vector<std::pair<int, int>>{{1, 8}, {4, 8}, {7, 15}, {8, 16}}) {
      const double u = detail::clopper_pearson_upper(kn.first, kn.second, alpha);
      EXPECT_GE(u, detail::clopper_pearson_upper(kn.first, kn.second, 1e-20));
      EXPECT_LE(u, 1.0);
      const double l = detail::clopper_pearson_lower(kn.first, kn.second, alpha);
      EXPECT_LE(l, detail::clopper_pearson_lower(kn.first, kn.second, 1e-20));
      EXPECT_GE(l, 0.0);
    }
  }
  // The p-values of those counts against eps = 0.6 are the exact binomial test's
  // P(Bin(n, 0.6) <= k) (see PValuesMatchClosedForms); the search no longer throws.
  for (const auto& kn : std::vector<std::pair<int, int>>{{1, 8}, {4, 8}, {7, 15}, {8, 16}}) {
    const std::vector<TermStats> rate = {
        {1.0, true, 0, 1, static_cast<double>(kn.second), static_cast<double>(kn.first), 0}};
    EXPECT_NEAR(detail::entry_p_value(rate, -0.6, MeanBound::kHoeffding),
                binomial_cdf(kn.first, kn.second, 0.6), 1e-12)
        << kn.first << " of " << kn.second;
  }
}

TEST(AuditBounds, HoeffdingByHand) {
  // 30 of 50 values summing to 30 in [0, 1], alpha = 0.05: 0.6 +- sqrt(log(20) / 100)
  // = 0.6 +- sqrt(0.0299573) = 0.6 +- 0.1730818. Hand values to 7 digits: tolerance 1e-6.
  EXPECT_NEAR(detail::hoeffding_bound(30, 50, 0, 1, 0.05, true), 0.7730818, 1e-6);
  EXPECT_NEAR(detail::hoeffding_bound(30, 50, 0, 1, 0.05, false), 0.4269182, 1e-6);
  // The same values mapped to [-1, 3] (x -> 4 x - 1): mean 1.4, radius 4 * 0.1730818 = 0.6923272.
  EXPECT_NEAR(detail::hoeffding_bound(4 * 30 - 50, 50, -1, 3, 0.05, true), 2.0923272, 1e-6);
  // Clipped to the range: one value at 1 gives 1 + sqrt(log(20) / 2) > 1.
  EXPECT_EQ(detail::hoeffding_bound(1, 1, 0, 1, 0.05, true), 1.0);
  EXPECT_EQ(detail::hoeffding_bound(0, 0, -1, 3, 0.05, false), -1.0);  // no value: vacuous
}

TEST(AuditBounds, EmpiricalBernsteinByHand) {
  // 100 each of 0.2, 0.4, 0.6, 0.8 in [0, 2]: n = 400, sum = 200, sum of squares = 100 * 1.2
  // = 120, mean 0.5, V = (120 - 200^2 / 400) / 399 = 0.05012531. At alpha = 0.05, log(2 / alpha)
  // = log(40) = 3.6888795:
  //   sqrt(2 V log(40) / 400) = sqrt(0.00092453) = 0.0304061,
  //   7 (2 - 0) log(40) / (3 * 399) = 51.644313 / 1197 = 0.0431448,
  // so the bounds are 0.5 +- 0.0735509. Hand values to 7 digits: tolerance 1e-6.
  EXPECT_NEAR(detail::empirical_bernstein_bound(200, 120, 400, 0, 2, 0.05, true), 0.5735509, 1e-6);
  EXPECT_NEAR(detail::empirical_bernstein_bound(200, 120, 400, 0, 2, 0.05, false), 0.4264491, 1e-6);
  // The variance from the values themselves (two passes) gives the same bound: the sums' formula
  // (squares - sum^2 / n) / (n - 1) is the unbiased sample variance.
  std::vector<double> values;
  for (const double v : {0.2, 0.4, 0.6, 0.8}) values.insert(values.end(), 100, v);
  double variance = 0.0;
  for (const double v : values) variance += (v - 0.5) * (v - 0.5) / 399.0;
  const double radius =
      std::sqrt(2 * variance * std::log(40.0) / 400) + 7 * 2 * std::log(40.0) / (3 * 399.0);
  EXPECT_NEAR(detail::empirical_bernstein_bound(200, 120, 400, 0, 2, 0.05, true), 0.5 + radius,
              1e-12);
  // Fewer than two values: vacuous.
  EXPECT_EQ(detail::empirical_bernstein_bound(0.5, 0.25, 1, 0, 1, 0.05, true), 1.0);
}

TEST(AuditBounds, TwoTermsTakeOppositeSidesAtHalfTheLevel) {
  // e = a - b - 0.05 with a = 5 of 50, b = 20 of 60, at alpha = 0.1: each term at 0.05;
  // UCB(e) = UCB(a) - LCB(b) - 0.05 and LCB(e) = LCB(a) - UCB(b) - 0.05.
  const std::vector<TermStats> terms = {{1.0, true, 0, 1, 50, 5, 0}, {-1.0, true, 0, 1, 60, 20, 0}};
  const double upper = detail::entry_bound(terms, -0.05, 0.1, MeanBound::kHoeffding, true);
  const double lower = detail::entry_bound(terms, -0.05, 0.1, MeanBound::kHoeffding, false);
  EXPECT_DOUBLE_EQ(upper, detail::clopper_pearson_upper(5, 50, 0.05) -
                              detail::clopper_pearson_lower(20, 60, 0.05) - 0.05);
  EXPECT_DOUBLE_EQ(lower, detail::clopper_pearson_lower(5, 50, 0.05) -
                              detail::clopper_pearson_upper(20, 60, 0.05) - 0.05);
  // A bounded-mean term with a negative coefficient: -2 m with m Hoeffding-bounded at 0.05.
  const std::vector<TermStats> mixed = {{1.0, true, 0, 1, 50, 5, 0},
                                        {-2.0, false, 0, 1, 40, 10, 4}};
  EXPECT_DOUBLE_EQ(
      detail::entry_bound(mixed, 0.0, 0.1, MeanBound::kHoeffding, true),
      detail::clopper_pearson_upper(5, 50, 0.05) - 2 * (0.25 - std::sqrt(std::log(20.0) / 80)));
}

TEST(AuditBounds, PValuesMatchClosedForms) {
  // k = 0 of n = 100, requirement r <= 0.05: UCB(alpha) = 1 - alpha^(1/100) <= 0.05 exactly
  // when alpha >= 0.95^100 = 0.0059205; the bisection is accurate to ~1e-15 relative.
  const std::vector<TermStats> none_of_100 = {{1.0, true, 0, 1, 100, 0, 0}};
  EXPECT_NEAR(detail::entry_p_value(none_of_100, -0.05, MeanBound::kHoeffding), std::pow(0.95, 100),
              1e-12);
  // Hoeffding, mean 0.1 of n = 200 in [0, 1], requirement m <= 0.2: mean + sqrt(log(1/alpha) /
  // (2n)) <= 0.2 exactly when alpha >= exp(-2 n 0.1^2) = exp(-4).
  const std::vector<TermStats> mean = {{1.0, false, 0, 1, 200, 20, 2}};
  EXPECT_NEAR(detail::entry_p_value(mean, -0.2, MeanBound::kHoeffding), std::exp(-4.0), 1e-12);
  // For one 0-1 rate, p is the exact binomial test's P(Bin(n, eps) <= k) (UCB(alpha) <= eps
  // exactly when P(Bin(n, eps) <= k) <= alpha); here k = 10 of n = 100 against eps = 0.05, an
  // estimate above eps, so p is close to 1.
  EXPECT_NEAR(detail::entry_p_value({{1.0, true, 0, 1, 100, 10, 0}}, -0.05, MeanBound::kHoeffding),
              binomial_cdf(10, 100, 0.05), 1e-12);
  EXPECT_NEAR(detail::entry_p_value({{1.0, true, 0, 1, 60, 1, 0}}, -0.1, MeanBound::kHoeffding),
              binomial_cdf(1, 60, 0.1), 1e-12);
  // A Hoeffding bound never falls below the mean: a mean above the threshold gives p = 1.
  EXPECT_EQ(detail::entry_p_value({{1.0, false, 0, 1, 100, 30, 10}}, -0.2, MeanBound::kHoeffding),
            1.0);
  // Overwhelming evidence reaches the floor.
  EXPECT_EQ(detail::entry_p_value({{1.0, true, 0, 1, 1e6, 0, 0}}, -0.5, MeanBound::kHoeffding),
            detail::kMinAlpha);
}

TEST(AuditBounds, HolmRejectsMoreThanBonferroni) {
  // m = 3, delta = 0.05. Bonferroni compares each p with 0.05 / 3 = 0.0167; Holm compares the
  // sorted p-values with 0.05 / 3, 0.05 / 2, 0.05 / 1 and stops at the first failure.
  const std::vector<double> p = {0.04, 0.01, 0.02};
  const auto holm = detail::correct(p, 0.05, Correction::kHolm);
  const auto bonferroni = detail::correct(p, 0.05, Correction::kBonferroni);
  const auto none = detail::correct(p, 0.05, Correction::kNone);
  EXPECT_EQ(holm.holds, (std::vector<bool>{true, true, true}));  // 0.01, 0.02 <= 0.025, 0.04
  EXPECT_EQ(bonferroni.holds, (std::vector<bool>{false, true, false}));
  EXPECT_EQ(none.holds, (std::vector<bool>{true, true, true}));
  EXPECT_NEAR(holm.levels[0], 0.05, 1e-15);
  EXPECT_NEAR(holm.levels[1], 0.05 / 3, 1e-15);
  EXPECT_NEAR(holm.levels[2], 0.025, 1e-15);
  // Holm stops at the first failure: 0.03 > 0.025, so 0.04 is not rejected either.
  const auto stopped = detail::correct({0.01, 0.03, 0.04}, 0.05, Correction::kHolm);
  EXPECT_EQ(stopped.holds, (std::vector<bool>{true, false, false}));
}

// ---- coverage in simulation ----
//
// Each bound at delta = 0.05 must cover the true value in at least 95% of samples. With 2,000
// seeded draws the observed coverage is a binomial fraction whose standard deviation at exactly
// 95% coverage is sqrt(0.05 * 0.95 / 2000) = 0.0049; a valid bound falls more than 3 of them
// (0.0146) below 0.95 with probability about 0.13% (normal approximation), so the tests require
// coverage >= 0.95 - 0.0146. Each also checks that the bound is not trivially wide.

constexpr int kDraws = 2000;
constexpr double kDelta = 0.05;
const double kSlack = 3 * std::sqrt(kDelta * (1 - kDelta) / kDraws);

// A Beta(2, 5) draw (mean 2/7) as X / (X + Y) with X ~ Gamma(2), Y ~ Gamma(5).
double beta_2_5(std::mt19937_64& rng) {
  std::gamma_distribution<double> x(2.0, 1.0), y(5.0, 1.0);
  const double a = x(rng);
  return a / (a + y(rng));
}

TEST(AuditCoverage, ClopperPearson) {
  std::mt19937_64 rng(11);
  const double p = 0.3;
  const int n = 50;
  std::bernoulli_distribution coin(p);
  int covered = 0, covered_lower = 0;
  double width = 0.0;
  for (int d = 0; d < kDraws; ++d) {
    int k = 0;
    for (int i = 0; i < n; ++i) k += coin(rng);
    const double upper = detail::clopper_pearson_upper(k, n, kDelta);
    covered += upper >= p;
    covered_lower += detail::clopper_pearson_lower(k, n, kDelta) <= p;
    width += (upper - static_cast<double>(k) / n) / kDraws;
  }
  EXPECT_GE(covered / double(kDraws), 1 - kDelta - kSlack);
  EXPECT_GE(covered_lower / double(kDraws), 1 - kDelta - kSlack);
  // Not vacuous: the one-sided radius near p = 0.3, n = 50 is about 1.645 * sqrt(0.21 / 50)
  // = 0.107; the exact bound is a little wider, far below 0.2.
  EXPECT_LT(width, 0.2);
}

TEST(AuditCoverage, Hoeffding) {
  // Values -1 or 3 with probability 1/2 each (mean 1): the largest variance in [-1, 3], where
  // Hoeffding's bound is least conservative (its radius 4 sqrt(log(20) / 80) = 0.77 is 2.4
  // standard deviations 2 / sqrt(40) = 0.32 of the mean, so a bound half as wide would cover
  // only about 89% and fail).
  std::mt19937_64 rng(12);
  std::bernoulli_distribution coin(0.5);
  const int n = 40;
  int covered = 0;
  for (int d = 0; d < kDraws; ++d) {
    double sum = 0.0;
    for (int i = 0; i < n; ++i) sum += coin(rng) ? 3.0 : -1.0;
    covered += detail::hoeffding_bound(sum, n, -1, 3, kDelta, true) >= 1.0;
  }
  EXPECT_GE(covered / double(kDraws), 1 - kDelta - kSlack);
}

TEST(AuditCoverage, EmpiricalBernsteinOnAShiftedRange) {
  // Values 4 B - 1 with B ~ Beta(2, 5), in [-1, 3]; the mean is 4 * 2/7 - 1.
  std::mt19937_64 rng(13);
  const int n = 200;
  const double truth = 4 * 2.0 / 7.0 - 1;
  int covered = 0;
  double width = 0.0;
  for (int d = 0; d < kDraws; ++d) {
    double sum = 0.0, squares = 0.0;
    for (int i = 0; i < n; ++i) {
      const double v = 4 * beta_2_5(rng) - 1;
      sum += v;
      squares += v * v;
    }
    const double upper = detail::empirical_bernstein_bound(sum, squares, n, -1, 3, kDelta, true);
    covered += upper >= truth;
    width += (upper - sum / n) / kDraws;
  }
  EXPECT_GE(covered / double(kDraws), 1 - kDelta - kSlack);
  // Narrower than Hoeffding's radius 4 sqrt(log(20) / 400) = 0.346 here: the variance of
  // 4 B is 16 * 10 / 392 = 0.408, so sqrt(2 * 0.408 * log(40) / 200) + 28 log(40) / 597 = 0.296.
  EXPECT_LT(width, 4 * std::sqrt(std::log(20.0) / 400));
}

TEST(AuditCoverage, DifferenceOfTwoRates) {
  // e = a - b with a ~ Bernoulli(0.3) on 80 examples and b ~ Bernoulli(0.2) on 120: the upper
  // bound of e (each term at delta / 2) must cover 0.1.
  std::mt19937_64 rng(14);
  std::bernoulli_distribution coin_a(0.3), coin_b(0.2);
  int covered = 0;
  for (int d = 0; d < kDraws; ++d) {
    int ka = 0, kb = 0;
    for (int i = 0; i < 80; ++i) ka += coin_a(rng);
    for (int i = 0; i < 120; ++i) kb += coin_b(rng);
    const std::vector<TermStats> terms = {{1.0, true, 0, 1, 80, double(ka), 0},
                                          {-1.0, true, 0, 1, 120, double(kb), 0}};
    covered += detail::entry_bound(terms, 0.0, kDelta, MeanBound::kHoeffding, true) >= 0.1;
  }
  EXPECT_GE(covered / double(kDraws), 1 - kDelta - kSlack);
}

// ---- the Auditor ----

TEST(Auditor, PoolsBatchesAndBoundsThePooledCounts) {
  Problem problem;
  auto c = problem.add_constraint("fnr");
  Auditor auditor(problem, AuditOptions().correction(Correction::kBonferroni));
  auditor.observe(c, rates::at_most(count(3, 50), 0.2));
  auditor.observe(c, rates::at_most(count(2, 50), 0.2));
  const AuditReport report = auditor.report();
  ASSERT_EQ(report.entries.size(), 1u);
  const auto& e = report.entries[0];
  // Pooled: 5 of 100; e = 0.05 - 0.2; m = 1, so both bounds at delta = 0.05.
  EXPECT_EQ(report.tested, 1);
  EXPECT_EQ(e.constraint, "fnr");
  EXPECT_EQ(e.examples, 100);
  EXPECT_NEAR(e.estimate, 0.05 - 0.2, 1e-15);
  EXPECT_NEAR(e.quantity, 0.05, 1e-15);
  EXPECT_EQ(e.relation, "<=");
  EXPECT_NEAR(e.threshold, 0.2, 1e-15);
  EXPECT_DOUBLE_EQ(e.upper, detail::clopper_pearson_upper(5, 100, 0.05) - 0.2);
  EXPECT_DOUBLE_EQ(e.lower, detail::clopper_pearson_lower(5, 100, 0.05) - 0.2);
  EXPECT_EQ(e.upper_alpha, 0.05);
  EXPECT_EQ(e.method, "Clopper-Pearson");
  EXPECT_EQ(e.verdict, Verdict::kHolds);  // UCB(5 of 100) ~ 0.10 < 0.2
}

TEST(Auditor, RoundsCountsWithinFloatRounding) {
  // A float32 count can be off by a rounding (2.9999998 for 3): accepted (within a relative
  // 1e-5) and rounded, so the rate is exactly 3 / 10.
  Problem problem;
  auto c = problem.add_constraint("c");
  Auditor auditor(problem);
  auditor.observe(c, rates::at_most(count(2.9999998, 10.0000001), 0.5));
  EXPECT_EQ(auditor.report().entries[0].quantity, 3.0 / 10.0);
  EXPECT_EQ(auditor.report().entries[0].examples, 10);
}

TEST(Auditor, AtLeastReadsAsAThresholdAndTwoTermsUseTheSum) {
  Problem problem;
  auto recall = problem.add_constraint("recall");
  auto parity = problem.add_constraint("parity", ConstraintOptions().size(2));
  Auditor auditor(problem);
  auditor.observe(recall, rates::at_least(count(90, 100), 0.8));
  auditor.observe(parity, rates::within(count(30, 100), count(20, 80), 0.1));
  const AuditReport report = auditor.report();
  ASSERT_EQ(report.entries.size(), 3u);
  // at_least(r, 0.8) is 0.8 - r <= 0: threshold form r >= 0.8.
  EXPECT_EQ(report.entries[0].relation, ">=");
  EXPECT_NEAR(report.entries[0].quantity, 0.9, 1e-15);
  EXPECT_NEAR(report.entries[0].threshold, 0.8, 1e-15);
  // within: part 0 is a - b <= 0.1 (0.3 - 0.25), part 1 b - a <= 0.1.
  EXPECT_EQ(report.entries[1].part, 0);
  EXPECT_EQ(report.entries[2].part, 1);
  EXPECT_EQ(report.entries[2].entry, 1);
  EXPECT_NEAR(report.entries[1].quantity, 0.05, 1e-15);
  EXPECT_NEAR(report.entries[2].quantity, -0.05, 1e-15);
  EXPECT_EQ(report.entries[1].examples, 80);
  EXPECT_HAS(report.entries[1].assumption, "union bound");
}

TEST(Auditor, HolmAndBonferroniDifferOnThreeEntries) {
  // Three entries r_k <= 0.05 with no hit in n = 90, 77, 63 examples: p_k = 0.95^n =
  // 0.00989, 0.01928, 0.03947 (see PValuesMatchClosedForms). Holm (levels 0.0167, 0.025, 0.05)
  // shows all three; Bonferroni (0.0167 each) only the first. The others are inconclusive:
  // their lower bounds are 0 - 0.05 < 0.
  Problem problem;
  auto c = problem.add_constraint("rates", ConstraintOptions().size(3));
  const auto requirement = rates::at_most(counts({0, 0, 0}, {90, 77, 63}), 0.05);
  Auditor holm(problem);
  Auditor bonferroni(problem, AuditOptions().correction(Correction::kBonferroni));
  holm.observe(c, requirement);
  bonferroni.observe(c, requirement);
  const AuditReport h = holm.report(), b = bonferroni.report();
  ASSERT_EQ(h.entries.size(), 3u);
  for (int k = 0; k < 3; ++k) {
    const double n = std::vector<double>{90, 77, 63}[k];
    EXPECT_NEAR(h.entries[k].p_value, std::pow(0.95, n), 1e-12) << k;
    EXPECT_EQ(h.entries[k].verdict, Verdict::kHolds) << k;
    EXPECT_EQ(b.entries[k].verdict, k == 0 ? Verdict::kHolds : Verdict::kInconclusive) << k;
    EXPECT_NEAR(b.entries[k].lower_alpha, 0.05 / 3, 1e-15);
  }
  // Holm's levels by rank: the smallest p at 0.05/3, then 0.05/2, then 0.05.
  EXPECT_NEAR(h.entries[0].upper_alpha, 0.05 / 3, 1e-15);
  EXPECT_NEAR(h.entries[1].upper_alpha, 0.025, 1e-15);
  EXPECT_NEAR(h.entries[2].upper_alpha, 0.05, 1e-15);
  EXPECT_TRUE(h.all_hold());
  EXPECT_FALSE(b.all_hold());
}

TEST(Auditor, VerdictsHoldsViolatedInconclusiveNotObserved) {
  Problem problem;
  auto holds = problem.add_constraint("holds");
  auto violated = problem.add_constraint("violated");
  auto unsure = problem.add_constraint("unsure");
  problem.add_constraint("unseen", ConstraintOptions().size(2));
  problem.add_constraint("equal", ConstraintOptions(ConstraintKind::kEquality));
  Auditor auditor(problem);
  auditor.observe(holds, rates::at_most(count(0, 1000), 0.05));       // UCB ~ 0.004
  auditor.observe(violated, rates::at_most(count(500, 1000), 0.05));  // LCB ~ 0.47
  auditor.observe(unsure, rates::at_most(count(5, 100), 0.05));       // estimate on the line
  const AuditReport report = auditor.report();
  // The equality constraint is not audited; the unseen one has both of its entries.
  ASSERT_EQ(report.entries.size(), 5u);
  EXPECT_EQ(report.tested, 3);
  EXPECT_EQ(report.entries[0].verdict, Verdict::kHolds);
  EXPECT_EQ(report.entries[1].verdict, Verdict::kViolated);
  EXPECT_GT(report.entries[1].lower, 0.0);
  EXPECT_EQ(report.entries[2].verdict, Verdict::kInconclusive);
  EXPECT_EQ(report.entries[3].verdict, Verdict::kNotObserved);
  EXPECT_EQ(report.entries[4].constraint, "unseen");
  EXPECT_EQ(report.entries[4].entry, 1);
  EXPECT_TRUE(std::isnan(report.entries[4].upper));
  EXPECT_FALSE(report.all_hold());
  EXPECT_EQ(feasible::to_string(Verdict::kNotObserved), "not observed");
  EXPECT_EQ(feasible::to_string(Verdict::kInconclusive), "inconclusive");
}

TEST(Auditor, BoundedMeansUseTheChosenBound) {
  Problem problem;
  auto c = problem.add_constraint("loss");
  // 400 values in [0, 2] (sum 200, squares 120; EmpiricalBernsteinByHand): mean 0.5 <= 0.6.
  const auto requirement = rates::at_most(bounded(200, 120, 400, 0, 2), 0.6);
  Auditor bernstein(problem);
  Auditor hoeffding(problem, AuditOptions().mean_bound(MeanBound::kHoeffding));
  bernstein.observe(c, requirement);
  hoeffding.observe(c, requirement);
  const auto eb = bernstein.report().entries[0], h = hoeffding.report().entries[0];
  EXPECT_EQ(eb.method, "empirical Bernstein");
  EXPECT_EQ(h.method, "Hoeffding");
  EXPECT_NEAR(eb.upper, 0.5735509 - 0.6, 1e-6);  // hand value of EmpiricalBernsteinByHand
  // Hoeffding: 0.5 + 2 sqrt(log(20) / 800) - 0.6 = 0.5 + 0.1223870 - 0.6.
  EXPECT_NEAR(h.upper, 0.0223870, 1e-6);
  EXPECT_EQ(eb.verdict, Verdict::kHolds);
  EXPECT_EQ(h.verdict, Verdict::kInconclusive);
}

TEST(Auditor, AuditRunsOnePassWithoutGradients) {
  // 10 examples, targets 1 for the first 3: the positive share, batch by batch (sizes 4, 4, 2),
  // pools to 3 of 10.
  feasible::data::Dataset dataset;
  dataset.inputs = torch::zeros({10, 1});
  dataset.targets = (torch::arange(10) < 3).to(torch::kLong);
  feasible::data::BatchLoader loader(dataset, 4, /*seed=*/0);
  Problem problem;
  auto c = problem.add_constraint("share");
  int batches = 0;
  const AuditReport report =
      feasible::audit(problem, loader, [&](const feasible::data::Batch& batch, Auditor& auditor) {
        EXPECT_FALSE(torch::GradMode::is_enabled());
        ++batches;
        const double hits = batch.targets.sum().item<double>();
        auditor.observe(c, rates::at_most(count(hits, batch.targets.size(0)), 0.5));
      });
  EXPECT_EQ(batches, 3);
  ASSERT_EQ(report.entries.size(), 1u);
  EXPECT_EQ(report.entries[0].examples, 10);
  EXPECT_NEAR(report.entries[0].quantity, 0.3, 1e-15);
  EXPECT_TRUE(torch::GradMode::is_enabled());
}

// ---- errors ----

TEST(AuditErrors, BadOptions) {
  EXPECT_HAS(error_of([] { AuditOptions().delta(0).validate(); }),
             "AuditOptions.delta must be in (0, 1), got 0");
  EXPECT_HAS(error_of([] {
               Auditor auditor{Problem(), AuditOptions().delta(1.5)};
             }),
             "AuditOptions.delta must be in (0, 1), got 1.5");
  EXPECT_HAS(error_of([] { AuditOptions().correction(static_cast<Correction>(7)).validate(); }),
             "AuditOptions.correction must be Correction::kHolm");
  feasible::data::Dataset dataset{torch::zeros({2, 1}), torch::zeros({2}, torch::kLong)};
  feasible::data::BatchLoader loader(dataset, 1, 0);
  EXPECT_HAS(error_of([&] { feasible::audit(Problem(), loader, nullptr); }), "evaluate is empty");
}

TEST(AuditErrors, RefusedObservations) {
  Problem problem, other;
  auto c = problem.add_constraint("c");
  auto pair = problem.add_constraint("pair", ConstraintOptions().size(2));
  auto eq = problem.add_constraint("eq", ConstraintOptions(ConstraintKind::kEquality));
  auto foreign = other.add_constraint("foreign");
  Auditor auditor(problem);
  const auto one = rates::at_most(count(1, 10), 0.1);
  EXPECT_HAS(error_of([&] { auditor.observe(foreign, one); }), "belongs to another problem");
  EXPECT_HAS(error_of([&] { auditor.observe(eq, one); }), "an equality constraint cannot be");
  EXPECT_HAS(error_of([&] { auditor.observe(pair, one); }),
             "Auditor::observe('pair'): the requirement has 1 entries, the constraint 2");
  EXPECT_HAS(error_of([&] { auditor.observe(feasible::Constraint(), one); }), "handle is empty");
  // Changed structure after the first batch: another eps (offset), another kind of requirement.
  auditor.observe(c, one);
  EXPECT_HAS(error_of([&] { auditor.observe(c, rates::at_most(count(1, 10), 0.2)); }),
             "part 0: offset -0.2, not -0.1 as in the first batch");
  EXPECT_HAS(error_of([&] { auditor.observe(c, rates::at_least(count(1, 10), -0.1)); }),
             "part 0, term 0: coefficient -1");
  EXPECT_HAS(error_of([&] {
               auditor.observe(c, rates::difference_at_most(count(1, 10), count(1, 10), -0.1));
             }),
             "part 0: 2 terms, not 1");
  // Counts that are not counts.
  EXPECT_HAS(error_of([&] { auditor.observe(c, rates::at_most(count(2.5, 10), 0.1)); }),
             "hits 2.5 at entry 0 must be a whole number in [0, total = 10]");
  EXPECT_HAS(error_of([&] { auditor.observe(c, rates::at_most(count(11, 10), 0.1)); }),
             "hits 11 at entry 0 must be a whole number");
  EXPECT_HAS(error_of([&] { auditor.observe(c, rates::at_most(count(1, 9.5), 0.1)); }),
             "total 9.5 at entry 0 is not a whole number");
}

TEST(AuditErrors, BoundedMeansOutOfRangeOrWithoutSquares) {
  Problem problem;
  auto c = problem.add_constraint("loss");
  Auditor auditor(problem);
  rates::Rate no_squares = bounded(5, 3, 10, 0, 1);
  no_squares.squares = torch::Tensor();
  EXPECT_HAS(error_of([&] { auditor.observe(c, rates::at_most(no_squares, 0.5)); }),
             "the empirical Bernstein bound needs Rate::squares");
  EXPECT_HAS(error_of([&] { auditor.observe(c, rates::at_most(bounded(12, 3, 10, 0, 1), 0.5)); }),
             "hits (the sum of the values) 12 at entry 0 is outside [0, 1] * total = 10");
  // Hoeffding does not need the squares.
  Auditor hoeffding(problem, AuditOptions().mean_bound(MeanBound::kHoeffding));
  hoeffding.observe(c, rates::at_most(no_squares, 0.5));
  EXPECT_EQ(hoeffding.report().entries[0].method, "Hoeffding");
}

// ---- the margin ----

TEST(AuditMargin, OneRateAndTwoGroups) {
  // sqrt(log(20) / 200) = sqrt(0.01497866) = 0.1223870.
  EXPECT_NEAR(feasible::audit_margin(100, 0.05), 0.1223870, 1e-6);
  EXPECT_DOUBLE_EQ(feasible::audit_margin(100, 0.05), rates::hoeffding_margin(100, 0.05));
  // n_a = 100, n_b = 400, delta = 0.1: each group at 0.05, 0.1223870 + sqrt(log(20) / 800)
  // = 0.1223870 + 0.0611935 = 0.1835805.
  EXPECT_NEAR(feasible::audit_margin(100, 400, 0.1), 0.1835805, 1e-6);
  EXPECT_HAS(error_of([] { feasible::audit_margin(0, 0.05); }), "n must be >= 1, got 0");
  EXPECT_HAS(error_of([] { feasible::audit_margin(10, 0, 0.05); }), "n_b must be >= 1, got 0");
  EXPECT_HAS(error_of([] { feasible::audit_margin(10, 1.0); }), "delta must be in (0, 1), got 1");
}

// ---- the report's forms ----

TEST(AuditReportForms, JsonParsesBackAndMarkdownHasTheRows) {
  Problem problem;
  auto a = problem.add_constraint("fpr");
  problem.add_constraint("unseen");
  Auditor auditor(problem, AuditOptions().delta(0.1));
  auditor.observe(a, rates::at_most(count(2, 200), 0.05));
  const AuditReport report = auditor.report();
  const auto json = nlohmann::json::parse(report.to_json());
  EXPECT_EQ(json["delta"].get<double>(), 0.1);
  EXPECT_EQ(json["correction"], "Holm");
  EXPECT_EQ(json["mean_bound"], "empirical Bernstein");
  EXPECT_EQ(json["tested"], 1);
  EXPECT_EQ(json["all_hold"], false);
  ASSERT_EQ(json["entries"].size(), 2u);
  const auto& e = json["entries"][0];
  EXPECT_EQ(e["constraint"], "fpr");
  EXPECT_EQ(e["entry"], 0);
  EXPECT_EQ(e["verdict"], "holds");
  EXPECT_EQ(e["method"], "Clopper-Pearson");
  EXPECT_EQ(e["examples"], 200);
  EXPECT_EQ(e["relation"], "<=");
  EXPECT_DOUBLE_EQ(e["upper"].get<double>(), report.entries[0].upper);
  EXPECT_DOUBLE_EQ(e["p_value"].get<double>(), report.entries[0].p_value);
  EXPECT_NEAR(e["quantity"].get<double>(), 0.01, 1e-15);
  EXPECT_HAS(e["assumption"].get<std::string>(), "independent");
  EXPECT_TRUE(json["entries"][1]["upper"].is_null());  // not observed: unknown numbers are null
  EXPECT_EQ(json["entries"][1]["verdict"], "not observed");

  const std::string md = report.to_markdown();
  EXPECT_HAS(md, "| constraint | entry | measured |");
  EXPECT_HAS(md, "| fpr | 0 | 0.01 <= 0.05 | -0.04 |");
  EXPECT_HAS(md, "| Clopper-Pearson | 200 | holds |");
  EXPECT_HAS(md, "| unseen | 0 | n/a |");
  EXPECT_HAS(md, "| not observed |");
  EXPECT_HAS(md, "Assumptions:");
}

}  // namespace
