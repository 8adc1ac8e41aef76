// Tests of what each experiment of `feasible reproduce` concludes from its outcome: the checks'
// verdicts and the report's key sentences, on outcomes built by hand (no training, no files), one
// where a check must hold and one where it must fail.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "apps/feasible/concave.h"
#include "apps/feasible/overhead.h"
#include "apps/feasible/rate.h"
#include "apps/feasible/sparsity.h"
#include "apps/feasible/stats.h"
#include "test_util.h"

namespace app = feasible::app;
using app::Check;

namespace {

/// The check whose name starts with `prefix` (a test failure, and an empty check, when none or
/// several do).
Check find_check(const std::vector<Check>& checks, const std::string& prefix) {
  std::vector<Check> found;
  for (const Check& c : checks) {
    if (c.name.rfind(prefix, 0) == 0) found.push_back(c);
  }
  EXPECT_EQ(found.size(), 1u) << "checks named \"" << prefix << "...\"";
  return found.size() == 1 ? found[0] : Check{};
}

/// The number of checks that do not hold.
int failing(const std::vector<Check>& checks) {
  int n = 0;
  for (const Check& c : checks) n += !c.holds;
  return n;
}

// ---- concave -----------------------------------------------------------------------------------

app::ConcaveRun concave_run(app::ConcaveMethod method, double eps, double c, std::vector<double> x,
                            std::vector<double> lambda) {
  return {method, eps, c, std::move(x), std::move(lambda)};
}

/// One eps (0.5), a tail of 4 iterations: nuPI and the AL end at x*, GDA oscillates around it,
/// the penalty at lambda* (0.577 > tan(0.5)) ends at 0, the fixed penalties 0.1 (pi/2) and 10 (0).
app::ConcaveOutcome concave_outcome() {
  app::ConcaveOutcome o;
  o.settings.eps = {0.5};
  o.settings.tail = 4;
  o.settings.penalty_c = {0.1, 10};
  const double xs = std::asin(0.5), ls = 0.5 / std::sqrt(0.75), pi2 = app::kConcaveHalfPi;
  using M = app::ConcaveMethod;
  o.nupi = {concave_run(M::kNuPI, 0.5, 0, {0.5, 0.6, xs}, {0, 0.3, ls})};
  o.al = {concave_run(M::kAugmentedLagrangian, 0.5, 10, {0.5, 0.6, xs}, {0, 0.3, ls})};
  o.gda = {concave_run(M::kGDA, 0.5, 0, {0.5, xs - 0.01, xs + 0.01, xs - 0.01, xs + 0.01},
                       {0, 0.5, 0.6, 0.5, 0.6})};
  o.penalty_at_lambda_star = {concave_run(M::kPenalty, 0.5, ls, {0.5, 0.2, 0.0}, {0, 0, 0})};
  o.penalty = {concave_run(M::kPenalty, 0, 0.1, {0.5, 1.0, pi2}, {0, 0, 0}),
               concave_run(M::kPenalty, 0, 10, {0.5, 0.1, 0.0}, {0, 0, 0})};
  return o;
}

app::ConcaveFigures no_figures() {
  app::ConcaveFigures f;
  f.figure3 = {"figure3", "Figure 3", false, "no gnuplot"};
  f.trajectories = {"trajectories", "trajectories", false, "no gnuplot"};
  return f;
}

TEST(ConcaveReport, EveryCheckHoldsWhenTheRunsBehaveAsThePaperSays) {
  const std::vector<Check> checks = app::concave_checks(concave_outcome());
  EXPECT_EQ(checks.size(), 9u);
  EXPECT_EQ(failing(checks), 0);
  const Check osc = find_check(checks, "plain GDA oscillates around x* at some eps");
  EXPECT_HAS(osc.measured, "at eps = 0.5 (1 of 1)");
  const std::string md = app::concave_report(concave_outcome(), no_figures());
  EXPECT_HAS(md, "| oscillates around x* |");
  EXPECT_HAS(md, "GDA: x range, last 4 its");
  EXPECT_HAS(md, "pi/2 (infeasible for every eps < 1)");
  EXPECT_HAS(md, "0 (feasible for every eps, f = 1: over-conservative)");
  EXPECT_EQ(md.find("Quick mode"), std::string::npos);
}

TEST(ConcaveReport, GdaStuckAtHalfPiIsAnEndpointNotAnOscillation) {
  app::ConcaveOutcome o = concave_outcome();
  const double pi2 = app::kConcaveHalfPi;
  o.gda[0].x = {0.5, pi2, pi2, pi2, pi2};
  o.gda[0].lambda = {0, 0.1, 0.2, 0.3, 0.4};
  EXPECT_EQ(app::classify_gda(o.gda[0], 4, std::asin(0.5)), app::GdaBehaviour::kStuckAtHalfPi);
  const std::vector<Check> checks = app::concave_checks(o);
  EXPECT_FALSE(find_check(checks, "plain GDA oscillates").holds);
  const Check stuck = find_check(checks, "plain GDA is stuck at an endpoint");
  EXPECT_TRUE(stuck.holds);
  EXPECT_HAS(stuck.measured, "at 0: eps = none; at pi/2: eps = 0.5; neither: eps = none");
  EXPECT_TRUE(find_check(checks, "plain GDA does not settle").holds);
  EXPECT_HAS(app::concave_report(o, no_figures()), "| is stuck at x = pi/2 (lambda grows) |");
  EXPECT_EQ(app::concave_results(o)["table1"][0]["gda"]["behaviour"], "stuck_at_half_pi");
}

TEST(ConcaveReport, GdaThatSettlesAndNuPIThatMissesFailTheirChecks) {
  app::ConcaveOutcome o = concave_outcome();
  const double xs = std::asin(0.5);
  o.gda[0].x = {0.5, xs, xs, xs, xs};
  o.nupi[0].x.back() = xs + 0.01;
  o.quick = true;
  const std::vector<Check> checks = app::concave_checks(o);
  EXPECT_FALSE(find_check(checks, "plain GDA does not settle").holds);
  EXPECT_FALSE(find_check(checks, "plain GDA is stuck at an endpoint").holds);
  const Check nupi = find_check(checks, "nuPI ends within 1e-3");
  EXPECT_FALSE(nupi.holds);
  EXPECT_EQ(nupi.measured, "0 of 1 eps");
  EXPECT_TRUE(find_check(checks, "the Augmented Lagrangian ends").holds);
  const std::string md = app::concave_report(o, no_figures());
  EXPECT_HAS(md, "| settles at x* |");
  EXPECT_HAS(md, "- **Quick mode**: 10000 iterations");
}

TEST(ConcaveReport, APenaltyOnTheWrongSideFailsThePropositionCheck) {
  app::ConcaveOutcome o = concave_outcome();
  o.penalty[1].x.back() = app::kConcaveHalfPi;  // c = 10 > tan(0.5) should end at 0
  const std::vector<Check> checks = app::concave_checks(o);
  EXPECT_TRUE(find_check(checks, "every fixed penalty ends at an endpoint").holds);
  const Check side = find_check(checks, "from x0 = 0.5 the endpoint is 0");
  EXPECT_FALSE(side.holds);
  EXPECT_EQ(side.measured, "2 of 3");
}

// ---- rate --------------------------------------------------------------------------------------

app::RateRun rate_run(app::RateMethod method, double value, double class0) {
  app::RateRun r;
  r.method = method;
  r.value = value;
  r.class0 = class0;
  r.accuracy = 100 - std::abs(class0 - 50);
  return r;
}

/// Sweep 0, 1e-3, 2.15, 1e-2: the penalty collapses to 50% except at 2.15 (76%); the Lagrangian
/// meets 70% from 2.15e-3 on; the surrogate variant meets 70% on the surrogate only.
app::RateOutcome rate_outcome() {
  app::RateOutcome o;
  o.settings = app::rate_settings(false, 0);
  const double c215 = std::pow(10.0, 1.0 / 3.0);
  o.settings.values = {0, 1e-3, c215, 1e-2};
  o.settings.surrogate_values = {1e-2};
  using M = app::RateMethod;
  const std::vector<double> pen = {50, 50.2, 76, 50}, lag = {50, 60, 70, 70.25};
  for (size_t i = 0; i < pen.size(); ++i) {
    o.penalty.push_back(rate_run(M::kPenalty, o.settings.values[i], pen[i]));
    o.lagrangian.push_back(rate_run(M::kLagrangianProxy, o.settings.values[i], lag[i]));
  }
  app::RateRun s = rate_run(M::kLagrangianSurrogate, 1e-2, 65);
  s.surrogate = 0.7;
  o.surrogate = {s};
  return o;
}

TEST(RateReport, EveryCheckHoldsWhenTheLagrangianMeetsTheRate) {
  const std::vector<Check> checks = app::rate_checks(rate_outcome());
  EXPECT_EQ(checks.size(), 6u);
  EXPECT_EQ(failing(checks), 0);
  const Check at_1e2 = find_check(checks, "the Lagrangian at dual step 1e-2 meets the rate");
  EXPECT_EQ(at_1e2.measured, "class 0: 70.25%");
  EXPECT_EQ(find_check(checks, "the Lagrangian meets 70%").measured, "2 of 2 dual steps");
  const std::string md = app::rate_report(rate_outcome(), {"figure2", "Figure 2", false, "none"});
  EXPECT_HAS(md,
             "## Table 4: fixed penalty\n\nWithin one point of the published class-0 "
             "percentage: 4 of 4 values.");
  EXPECT_HAS(md, "| 0.01 | 70.25 | 70.00 |");
  EXPECT_EQ(md.find("Quick mode"), std::string::npos);
}

TEST(RateReport, TheClass0RateCheckFailsWhenTheLagrangianFallsShort) {
  app::RateOutcome o = rate_outcome();
  o.lagrangian[3].class0 = 60;
  o.settings.quick = true;
  const std::vector<Check> checks = app::rate_checks(o);
  const Check at_1e2 = find_check(checks, "the Lagrangian at dual step 1e-2 meets the rate");
  EXPECT_FALSE(at_1e2.holds);
  EXPECT_EQ(at_1e2.measured, "class 0: 60.00%");
  const Check all = find_check(checks, "the Lagrangian meets 70%");
  EXPECT_FALSE(all.holds);
  EXPECT_EQ(all.measured, "1 of 2 dual steps");
  const std::string md = app::rate_report(o, {"figure2", "Figure 2", false, "none"});
  EXPECT_HAS(md, "Within one point of the published class-0 percentage: 3 of 4 values.");
  EXPECT_HAS(md, "- **Quick mode**: 4 of the 20 sweep values, 1 for the footnote variant");
}

TEST(RateReport, APenaltyThatDoesNotCollapseAndASurrogateThatMeetsTheRateFail) {
  app::RateOutcome o = rate_outcome();
  o.penalty[1].class0 = 60;  // c = 1e-3: neither 50% nor 100%
  o.surrogate[0].class0 = 70;
  const std::vector<Check> checks = app::rate_checks(o);
  EXPECT_FALSE(find_check(checks, "the penalty collapses").holds);
  EXPECT_FALSE(find_check(checks, "the penalty at c = 1e-3 stays").holds);
  EXPECT_TRUE(find_check(checks, "the penalty at c = 2.15").holds);
  const Check footnote = find_check(checks, "with the surrogate for the dual too");
  EXPECT_FALSE(footnote.holds);
  EXPECT_EQ(footnote.measured, "0 of 1 dual steps whose surrogate rate reached 70%");
}

TEST(RateReport, ChecksWithoutTheirSweepValueAreLeftOut) {
  app::RateOutcome o = rate_outcome();
  o.settings.values.pop_back();  // no 1e-2
  o.penalty.pop_back();
  o.lagrangian.pop_back();
  const std::vector<Check> checks = app::rate_checks(o);
  EXPECT_EQ(checks.size(), 5u);
  for (const Check& c : checks) EXPECT_EQ(c.name.find("dual step 1e-2"), std::string::npos);
}

// ---- overhead ----------------------------------------------------------------------------------

app::OverheadOutcome overhead_outcome(double no_proxy_seconds) {
  app::OverheadOutcome o;
  o.settings = app::overhead_settings(true);
  o.arms = {{"penalized", "A", {1.0, 1.1, 0.9}},
            {"constrained", "B", {1.2, 1.32, 1.08}},
            {"constrained_no_proxy", "C", {no_proxy_seconds, no_proxy_seconds, no_proxy_seconds}},
            {"hand_penalized", "D", {0.5, 0.5, 0.5}}};
  return o;
}

TEST(OverheadReport, TheLibrarysOwnCostIsCheckedAgainstTenPercent) {
  const std::vector<Check> within = app::overhead_checks(overhead_outcome(1.05));
  ASSERT_EQ(within.size(), 1u);
  EXPECT_TRUE(within[0].holds);
  EXPECT_EQ(within[0].measured, "ratio 1.050");
  const std::vector<Check> over = app::overhead_checks(overhead_outcome(1.2));
  EXPECT_FALSE(over[0].holds);
  EXPECT_EQ(over[0].measured, "ratio 1.200");
}

TEST(OverheadReport, TheReportGivesTheRatiosOfTheMedians) {
  const app::OverheadOutcome o = overhead_outcome(1.05);
  const app::OverheadRatios r = app::overhead_ratios(o);
  EXPECT_DOUBLE_EQ(r.constrained, 1.2);
  EXPECT_DOUBLE_EQ(r.median_round, 1.2);
  EXPECT_DOUBLE_EQ(r.hand, 0.5);
  const std::string md = app::overhead_report(o);
  EXPECT_HAS(md, "Constrained / penalized: **1.200** (median of per-round ratios 1.200)");
  EXPECT_HAS(md, "| B | 3 | 1.200 | 0.120 | 1.200 |");
  EXPECT_HAS(md, "The hand-written penalized loop costs 0.500 times the library's.");
  EXPECT_HAS(md, "- **Quick mode**: 3 runs per arm instead of 7, 4000 iterations");
  EXPECT_EQ(app::overhead_results(o)["table2"][1]["stddev_seconds"].get<double>(),
            feasible::stats::stddev_of({1.2, 1.32, 1.08}));
}

// ---- sparsity ----------------------------------------------------------------------------------

app::SparsityRun sparsity_run(app::SparsityMethod method, double value, double expected,
                              double test, double seconds) {
  app::SparsityRun r;
  r.spec.method = method;
  r.spec.value = value;
  r.expected_density = expected;
  r.test_density = test;
  r.train_seconds = seconds;
  return r;
}

/// Default mode, target 50%: every constrained run within one point, gradient ascent at one
/// step of three, a bisection of three runs (10 s each) that ends at 50.2%, a proxy run of 10 s.
app::SparsityOutcome sparsity_outcome() {
  app::SparsityOutcome o;
  o.mode = app::sparsity_mode(feasible::app::RunConfig{});
  o.data_dir = "/data";
  o.train_examples = 60000;
  o.test_examples = 10000;
  using M = app::SparsityMethod;
  o.constrained = sparsity_run(M::kNuPI, 3e-4, 0.50, 0.45, 10);
  o.proxy = sparsity_run(M::kNuPIProxy, 1e-4, 0.55, 0.505, 10);
  o.sweep_nupi = {sparsity_run(M::kNuPI, 1e-4, 0.495, 0.44, 10),
                  sparsity_run(M::kNuPI, 9e-4, 0.505, 0.46, 10)};
  o.sweep_ga = {sparsity_run(M::kGradientAscent, 1e-3, 0.7, 0.7, 10),
                sparsity_run(M::kGradientAscent, 3e-3, 0.5, 0.45, 10),
                sparsity_run(M::kGradientAscent, 1e-2, 0.3, 0.25, 10)};
  o.steps = {{1, "endpoint", sparsity_run(M::kPenalty, 1e-3, 0.9, 0.85, 10)},
             {2, "endpoint", sparsity_run(M::kPenalty, 1.0, 0.3, 0.25, 10)},
             {3, "bisection", sparsity_run(M::kPenalty, 3.16e-2, 0.55, 0.502, 10)}};
  o.found = true;
  o.timing = {{1.0, 1.0, 1.0}, {1.01, 1.01, 1.01}, {0.1, 0.1, 0.1}, {0.1, 0.1, 0.1}};
  return o;
}

app::SparsityFigures sparsity_figures() {
  app::SparsityFigures f;
  f.figure1 = {"figure1", "Figure 1", false, "none"};
  f.trajectory = {"trajectory", "trajectory", false, "none"};
  f.dual_sweep = {"dual_sweep", "dual sweep", false, "none"};
  return f;
}

TEST(SparsityReport, EveryCheckHoldsAndTheHeadlineComparesLikeWithLike) {
  const app::SparsityOutcome o = sparsity_outcome();
  const std::vector<Check> checks = app::sparsity_checks(o);
  EXPECT_EQ(checks.size(), 7u);
  EXPECT_EQ(failing(checks), 0);
  EXPECT_EQ(find_check(checks, "plain gradient ascent is delicate").measured,
            "1 of 3 steps within one point");
  const std::string md = app::sparsity_report(o, sparsity_figures());
  EXPECT_HAS(md,
             "Like with like, on the test-time density: 3 trainings for the bisection (30.0 s) "
             "against one for the proxy run (10.0 s), 3.0 times the training time; the proxy run "
             "ends within one point of the target (50.5%).");
  EXPECT_HAS(md, "One run reaches the target: expected density **50.0%**");
  EXPECT_HAS(md, "| 3 | bisection | 0.0316 | 50.2 | 55.0 |");
  EXPECT_HAS(md, "Data loading (shuffling and gathering batches) takes 9.9% of a constrained");
  const nlohmann::json headline = app::sparsity_headline(o);
  EXPECT_EQ(headline["rows"][0]["runs"], 3);
  EXPECT_EQ(headline["rows"][1]["met"], true);
  EXPECT_EQ(headline["rows"][2]["held_to"], "expected");
}

TEST(SparsityReport, AProxyRunThatMissesIsSaidAndFailsItsCheck) {
  app::SparsityOutcome o = sparsity_outcome();
  o.proxy.test_density = 0.6;
  o.constrained.expected_density = 0.53;
  const std::vector<Check> checks = app::sparsity_checks(o);
  EXPECT_FALSE(find_check(checks, "the proxy run ends within one point").holds);
  EXPECT_FALSE(find_check(checks, "the constrained run ends within one point").holds);
  EXPECT_FALSE(find_check(checks, "nuPI is not delicate").holds);
  const std::string md = app::sparsity_report(o, sparsity_figures());
  EXPECT_HAS(md, "the proxy run **misses** the target by more than one point (60.0%).");
  EXPECT_HAS(md,
             "One run, which **misses** the target by more than one point,: expected density "
             "**53.0%**");
  EXPECT_EQ(app::sparsity_headline(o)["rows"][1]["met"], false);
}

TEST(SparsityReport, AShortBisectionAndSlowDataLoadingFailTheirChecks) {
  app::SparsityOutcome o = sparsity_outcome();
  o.steps.erase(o.steps.begin() + 1);
  o.timing.data_constrained = {0.5, 0.5, 0.5};
  const std::vector<Check> checks = app::sparsity_checks(o);
  EXPECT_TRUE(find_check(checks, "the bisection ends within one point").holds);
  const Check several = find_check(checks, "on the test-time density, the bisection takes");
  EXPECT_FALSE(several.holds);
  EXPECT_HAS(several.measured, "2 penalized runs, 20.0 s of training");
  const Check data = find_check(checks, "data loading does not dominate");
  EXPECT_FALSE(data.holds);
  EXPECT_EQ(data.measured, "49.5% of a constrained epoch");
}

TEST(SparsityReport, QuickModeReportsTheProxyRunWithoutCheckingIt) {
  app::SparsityOutcome o = sparsity_outcome();
  feasible::app::RunConfig config;
  config.quick = true;
  o.mode = app::sparsity_mode(config);
  o.proxy.test_density = 0.6;
  const std::vector<Check> checks = app::sparsity_checks(o);
  EXPECT_EQ(checks.size(), 6u);
  for (const Check& c : checks) EXPECT_NE(c.name.rfind("the proxy run", 0), 0u) << c.name;
  EXPECT_HAS(app::sparsity_report(o, sparsity_figures()), "so its end is reported, not checked.");
}

// ---- statistics --------------------------------------------------------------------------------

TEST(Stats, MedianQuantileAndStandardDeviation) {
  using namespace feasible::stats;
  EXPECT_DOUBLE_EQ(median_of({3, 1, 2}), 2);
  EXPECT_DOUBLE_EQ(median_of({4, 1, 3, 2}), 2.5);
  EXPECT_DOUBLE_EQ(median_of({}), 0);
  EXPECT_DOUBLE_EQ(quantile_of({1, 2, 3, 4, 5}, 0.25), 2);
  EXPECT_DOUBLE_EQ(quantile_of({1, 2}, 0.5), 1.5);
  EXPECT_DOUBLE_EQ(stddev_of({2, 4, 4, 4, 5, 5, 7, 9}), std::sqrt(32.0 / 7.0));
  EXPECT_DOUBLE_EQ(stddev_of({5}), 0);
  const Stats s = stats_of({3, 1, 2});
  EXPECT_DOUBLE_EQ(s.min, 1);
  EXPECT_DOUBLE_EQ(s.median, 2);
  EXPECT_DOUBLE_EQ(s.stddev, 1);
}

}  // namespace
