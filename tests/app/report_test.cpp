// Tests of what each experiment of `feasible reproduce` concludes from its outcome: the checks'
// verdicts and the report's key sentences, on outcomes built by hand (no training, no files), one
// where a check must hold and one where it must fail.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "apps/feasible/concave.h"
#include "apps/feasible/fairness.h"
#include "apps/feasible/fashion.h"
#include "apps/feasible/overhead.h"
#include "apps/feasible/per_example.h"
#include "apps/feasible/rate.h"
#include "apps/feasible/recall.h"
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

/// Whether `text` contains `part`.
bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
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

/// One eps (0.5), a tail of 4 iterations: nuPI, the AL and the default end at x*, GDA oscillates
/// around it, the penalty at lambda* (0.577 > tan(0.5)) ends at 0, the fixed penalties 0.1 (pi/2)
/// and 10 (0).
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
  o.default_runs = {concave_run(M::kDefault, 0.5, 0, {0.5, 0.55, xs}, {0, 0.4, ls})};
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
  EXPECT_EQ(checks.size(), 10u);
  EXPECT_EQ(failing(checks), 0);
  EXPECT_EQ(find_check(checks, "default: x within 1e-3 of arcsin(eps) for every eps").measured,
            "1 of 1 eps; largest |x - x*| = 0");
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

// The default stuck at the endpoint 0 (a stationary point of the Lagrangian with lambda = 0)
// fails its check, and the report, results.json and the figure's title say where it ended.
TEST(ConcaveReport, ADefaultThatMissesArcsinFailsItsCheck) {
  app::ConcaveOutcome o = concave_outcome();
  o.default_runs[0].x.back() = 0.0;
  o.default_runs[0].lambda.back() = 0.0;
  const std::vector<Check> checks = app::concave_checks(o);
  const Check d = find_check(checks, "default: x within 1e-3 of arcsin(eps) for every eps");
  EXPECT_FALSE(d.holds);
  EXPECT_HAS(d.name, "same primal step and 10000 iterations, no dual step");
  EXPECT_EQ(d.measured, "0 of 1 eps; largest |x - x*| = 0.52");
  EXPECT_EQ(failing(checks), 1);
  EXPECT_EQ(app::concave_default_text(o, 0), "ends at x = 0.0000, |x - x*| = 0.52");
  EXPECT_EQ(app::concave_default_text(concave_outcome(), 0), "converges to x*");
  const std::string md = app::concave_report(o, no_figures());
  EXPECT_HAS(md, "| default x | default error |");
  EXPECT_HAS(md, "| 0.5236 | 0 | 0.0000 | 0.52 |");  // AL x and error, then the default's
  EXPECT_HAS(md, "- Default: `feasible::make_default_optimizer` with the same gradient descent");
  const nlohmann::json row = app::concave_results(o)["table1"][0]["default"];
  EXPECT_EQ(row["x"], 0.0);
  EXPECT_NEAR(row["error"].get<double>(), std::asin(0.5), 1e-12);
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
/// meets 70% from 2.15e-3 on; the surrogate variant meets 70% on the surrogate only; the default
/// ends at 70.75%.
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
  // The default: below the goal at 5,000, at or above it from 7,500 on.
  o.default_run = rate_run(M::kDefault, 0, 70.75);
  o.default_run.penalty = 1000;
  o.default_run.multiplier = 3;
  o.default_run.series = {{0, 50, 99, 0.1, 0.5, 0},
                          {2500, 69.75, 80, 0.3, 0.6, 1},
                          {5000, 69.5, 80, 0.3, 0.6, 2},
                          {7500, 70, 80, 0.3, 0.6, 3},
                          {10000, 70.75, 79.25, 0.3, 0.6, 3}};
  return o;
}

TEST(RateReport, EveryCheckHoldsWhenTheLagrangianMeetsTheRate) {
  const std::vector<Check> checks = app::rate_checks(rate_outcome());
  EXPECT_EQ(checks.size(), 7u);
  EXPECT_EQ(failing(checks), 0);
  const Check d = find_check(checks, "default: >= 69.75% class 0 within 10,000 steps");
  EXPECT_EQ(d.measured,
            "class 0: 70.75% at the end, accuracy 79.25%; first at iteration 2500; at or above "
            "it from iteration 7500 on (recorded every 50 iterations)");
  const Check at_1e2 = find_check(checks, "the Lagrangian at dual step 1e-2 meets the rate");
  EXPECT_EQ(at_1e2.measured, "class 0: 70.25%");
  EXPECT_EQ(find_check(checks, "the Lagrangian meets 70%").measured, "2 of 2 dual steps");
  const std::string md = app::rate_report(rate_outcome(), {"figure2", "Figure 2", false, "none"});
  EXPECT_HAS(md,
             "## Table 4: fixed penalty\n\nWithin one point of the published class-0 "
             "percentage: 4 of 4 values.");
  EXPECT_HAS(md, "| 0.01 | 70.25 | 70.00 |");
  EXPECT_HAS(md, "| **default** (no dual step) | 70.75 |  | 79.25 |  | 3 |");
  EXPECT_HAS(md,
             "its penalty calibrated to c = 1000; class 0 reached the goal first at iteration "
             "2500; at or above it from iteration 7500 on (goal 69.75%).");
  EXPECT_EQ(md.find("Quick mode"), std::string::npos);
  const nlohmann::json d_json = app::rate_results(rate_outcome())["default"];
  EXPECT_EQ(d_json["class0_pct"], 70.75);
  EXPECT_EQ(d_json["first_reached_goal_at_iteration"], 2500);
  EXPECT_EQ(d_json["holds_goal_from_iteration"], 7500);
}

TEST(RateReport, ADefaultBelowTheGoalFailsItsCheck) {
  app::RateOutcome o = rate_outcome();
  o.default_run.class0 = 69.5;
  o.default_run.series.back().class0 = 69.5;
  EXPECT_EQ(app::rate_reached_at(o.default_run, app::kRateDefaultGoalPct), -1);
  const std::vector<Check> checks = app::rate_checks(o);
  const Check d = find_check(checks, "default: >= 69.75% class 0 within 10,000 steps");
  EXPECT_FALSE(d.holds);
  EXPECT_HAS(d.measured,
             "class 0: 69.50% at the end, accuracy 79.25%; first at iteration 2500; below it at "
             "the end");
  EXPECT_EQ(failing(checks), 1);
  EXPECT_TRUE(app::rate_results(o)["default"]["holds_goal_from_iteration"].is_null());
  EXPECT_EQ(app::rate_results(o)["default"]["first_reached_goal_at_iteration"], 2500);
  // A run that never reaches the goal says so.
  for (auto& p : o.default_run.series) p.class0 = 60;
  EXPECT_EQ(app::rate_first_at(o.default_run, app::kRateDefaultGoalPct), -1);
  EXPECT_HAS(find_check(app::rate_checks(o), "default: >= 69.75%").measured,
             "; never at or above it (recorded every 50 iterations)");
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
  EXPECT_EQ(checks.size(), 6u);
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

/// Default mode, target 50%: every constrained run (and the default optimizer's) within one
/// point, gradient ascent at one step of three, a bisection of three runs (10 s each) that ends
/// at 50.2%, a proxy run of 10 s.
app::SparsityOutcome sparsity_outcome() {
  app::SparsityOutcome o;
  o.mode = app::sparsity_mode(feasible::app::RunConfig{});
  o.data_dir = "/data";
  o.train_examples = 60000;
  o.test_examples = 10000;
  using M = app::SparsityMethod;
  o.constrained = sparsity_run(M::kNuPI, 3e-4, 0.50, 0.45, 10);
  o.proxy = sparsity_run(M::kNuPIProxy, 1e-4, 0.55, 0.505, 10);
  o.default_run = sparsity_run(M::kDefault, 0, 0.505, 0.47, 10);
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
  EXPECT_EQ(checks.size(), 8u);
  EXPECT_EQ(failing(checks), 0);
  const Check d = find_check(checks, "default: within 1 point of the 50.0% target");
  EXPECT_HAS(d.name,
             "(MLP 784-300-100-10, input_units gates, the default schedule: 15 epochs on "
             "60000 examples; no dual step)");
  EXPECT_EQ(d.measured, "expected density 50.5%, test-time 47.0%, test accuracy 0.00%");
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
  EXPECT_EQ(headline["rows"][3]["method"], "default optimizer (no dual step)");
  EXPECT_EQ(headline["rows"][3]["met"], true);
  EXPECT_HAS(md,
             "The default optimizer, with the same Adam and no dual step, also ends within one "
             "point: expected density **50.5%**");
  EXPECT_HAS(md, "| **default optimizer**: no dual step | default | 0 | 50.5 | 47.0 |");
  EXPECT_EQ(app::sparsity_results(o)["default"]["method"], "default");
}

TEST(SparsityReport, ADefaultThatMissesTheTargetFailsItsCheck) {
  app::SparsityOutcome o = sparsity_outcome();
  o.default_run.expected_density = 0.52;
  const std::vector<Check> checks = app::sparsity_checks(o);
  const Check d = find_check(checks, "default: within 1 point of the 50.0% target");
  EXPECT_FALSE(d.holds);
  EXPECT_HAS(d.measured, "expected density 52.0%");
  EXPECT_EQ(failing(checks), 1);
  EXPECT_EQ(app::sparsity_headline(o)["rows"][3]["met"], false);
  EXPECT_HAS(app::sparsity_report(o, sparsity_figures()),
             "The default optimizer, with the same Adam and no dual step, **misses** the target by "
             "more than one point: expected density **52.0%**");
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
  EXPECT_EQ(checks.size(), 7u);
  EXPECT_HAS(find_check(checks, "default: within 1 point").name,
             "the quick schedule: 12 epochs on 60000 examples");
  for (const Check& c : checks) EXPECT_NE(c.name.rfind("the proxy run", 0), 0u) << c.name;
  EXPECT_HAS(app::sparsity_report(o, sparsity_figures()), "so its end is reported, not checked.");
}

// ---- recall ------------------------------------------------------------------------------------

app::RecallEpoch recall_epoch(int64_t epoch, std::vector<double> recall, double accuracy,
                              std::vector<double> validation = {}, double validation_loss = 0) {
  app::RecallEpoch e;
  e.epoch = epoch;
  e.recall = std::move(recall);
  e.accuracy = accuracy;
  e.validation_recall = std::move(validation);
  e.validation_loss = validation_loss;
  return e;
}

/// A class's audit: the verdict, the test recall and its bounds (levels 0.005 each: Holm's level
/// of the first class tested is delta / 10 too).
app::RecallAuditClass audit_class(const std::string& verdict, double recall, double lower,
                                  double upper) {
  return {verdict, recall, lower, 0.005, upper, 0.005, 1000};
}

/// An audit where every class holds, recall 0.9 in [0.87, 0.93].
app::RecallAudit holding_audit() {
  app::RecallAudit a;
  a.delta = 0.05;
  a.correction = "Holm";
  a.classes.assign(10, audit_class("holds", 0.9, 0.87, 0.93));
  return a;
}

/// Quick mode on 20,000 examples (5,000 held out), 2 epochs: the default ends with every class
/// >= 0.80 on training (Shirt the lowest, 0.81), unconstrained training leaves Shirt at 0.62;
/// the validated run's best epoch (1) has every class >= 0.80 on the test set (Shirt 0.82), and
/// both audits give every class a verdict.
app::RecallOutcome recall_outcome() {
  app::RecallOutcome o;
  feasible::app::RunConfig config;
  config.quick = true;
  o.settings = app::recall_settings(config);
  o.settings.epochs = 2;
  o.data_dir = "/data";
  o.train_examples = 20000;
  o.validation_examples = 5000;
  o.test_examples = 10000;
  o.validation_class_sizes = {519, 509, 513, 508, 510, 494, 499, 523, 461, 464};
  // sqrt(ln(10 / 0.05) / (2 * 461)) = sqrt(5.2983 / 922) = 0.0758.
  o.margin = 0.0758;
  const std::vector<double> start(10, 0.1);
  const std::vector<double> d1 = {0.85, 0.97, 0.8, 0.9, 0.82, 0.95, 0.7, 0.95, 0.96, 0.95};
  const std::vector<double> d2 = {0.84, 0.97, 0.82, 0.9, 0.83, 0.95, 0.81, 0.95, 0.96, 0.95};
  const std::vector<double> u2 = {0.88, 0.98, 0.84, 0.92, 0.85, 0.97, 0.62, 0.97, 0.98, 0.96};
  const std::vector<double> v1 = {0.86, 0.97, 0.84, 0.9, 0.85, 0.95, 0.82, 0.95, 0.96, 0.95};
  const std::vector<double> v2 = {0.86, 0.97, 0.83, 0.9, 0.84, 0.95, 0.79, 0.95, 0.96, 0.95};
  o.default_run.method = "default";
  o.default_run.epochs = {recall_epoch(0, start, 10, start, 2.3), recall_epoch(1, d1, 87, d1, 0.45),
                          recall_epoch(2, d2, 88, d2, 0.41)};
  o.default_run.test_recall = d2;
  o.default_run.test_accuracy = 86;
  o.default_run.multiplier = std::vector<double>(10, 0.0);
  o.default_run.multiplier[6] = 1.5;
  o.default_run.penalty = std::vector<double>(10, 20.0);
  o.default_run.best_epoch = 2;
  o.default_run.best_reason = "step 2: least violation";
  o.default_run.best_test_recall = d2;
  o.default_run.best_test_accuracy = 86;
  o.default_run.audit = holding_audit();
  o.validated = o.default_run;
  o.validated.method = "validated";
  o.validated.epochs = {recall_epoch(0, start, 10, start, 2.3), recall_epoch(1, v1, 86, v1, 0.47),
                        recall_epoch(2, v2, 87, v2, 0.44)};
  o.validated.test_recall = v2;
  o.validated.best_epoch = 1;
  o.validated.best_test_recall = v1;
  o.validated.dual_steps = 158;
  o.unconstrained.method = "unconstrained";
  o.unconstrained.epochs = {recall_epoch(0, start, 10, start, 2.3),
                            recall_epoch(1, u2, 88, u2, 0.4), recall_epoch(2, u2, 89, u2, 0.38)};
  o.unconstrained.test_recall = u2;
  o.unconstrained.test_accuracy = 87;
  return o;
}

const app::FigureFile kNoFigure = {"min_recall", "min recall", false, "none"};

TEST(RecallReport, EveryCheckHoldsWhenTheDefaultLiftsEveryClass) {
  const app::RecallOutcome o = recall_outcome();
  const std::vector<Check> checks = app::recall_checks(o);
  EXPECT_EQ(checks.size(), 4u);
  EXPECT_EQ(failing(checks), 0);
  const Check d = find_check(checks, "default: every class >= 0.80 training recall at the end");
  EXPECT_HAS(d.name, "(2 epochs on 20000 examples)");
  EXPECT_EQ(d.measured, "smallest 0.810 (Shirt); 10 of 10 classes >= 0.80");
  EXPECT_EQ(find_check(checks, "unconstrained training leaves some class below 0.80").measured,
            "smallest 0.620 (Shirt); 9 of 10 classes >= 0.80");
  EXPECT_EQ(find_check(checks, "validated: every class >= 0.80 on the test set").measured,
            "smallest 0.820 (Shirt); 10 of 10 classes >= 0.80; epoch 1");
  EXPECT_EQ(find_check(checks, "test audit: a verdict").measured,
            "default: 10 hold, 0 violated, 0 inconclusive; validated: 10 hold, 0 violated, 0 "
            "inconclusive");
  const std::string md = app::recall_report(o, kNoFigure);
  EXPECT_HAS(md, "| 6 Shirt | 0.810 | 0.620 | 0.810 | 0.620 | 1.5 | 20 |");
  EXPECT_HAS(md, "| 1 | 0.700 (Shirt) | 0.620 (Shirt) | 87.00 | 88.00 |");
  EXPECT_HAS(md, "| 0 | 0.100 (T-shirt/top) |");
  EXPECT_HAS(md, "- Mode: quick. Data: Fashion-MNIST from `/data`, the first 20000 training");
  EXPECT_HAS(md, "the next 5000 as the validation split (never trained on)");
  EXPECT_HAS(md, "m = sqrt(ln(10 / delta) / (2 n_min)) = 0.076 with delta = 0.05 and n_min = 461");
  EXPECT_EQ(md.find("This margin is large"), std::string::npos);
  // The validation table marks each run's best epoch: the default's 2, the validated run's 1.
  EXPECT_HAS(md, "| 1 | 0.700 (Shirt) | 0.45 | 0.820 (Shirt) | 0.820 (Shirt) **best** | 0.47 |");
  EXPECT_HAS(md, "| 2 | 0.810 (Shirt) **best** | 0.41 | 0.790 (Shirt) | 0.790 (Shirt) | 0.44 |");
  // Test recall, last and best epoch; the validated run's last Shirt (0.79) is below the target.
  EXPECT_HAS(md, "| 6 Shirt | 0.810 | 0.810 | **0.790** | 0.820 | **0.620** | 1.5 |");
  EXPECT_HAS(md, "| 6 Shirt | holds | 0.900 [0.870, 0.930] | holds | 0.900 [0.870, 0.930] |");
  EXPECT_HAS(md, "- Default: every class holds.\n- Validated: every class holds.\n");
  EXPECT_HAS(md, "The largest multiplier at the end: default 1.5 (Shirt), validated 1.5 (Shirt).");
  const nlohmann::json r = app::recall_results(o);
  EXPECT_EQ(r["default"]["min_train_recall"], 0.81);
  EXPECT_EQ(r["default"]["epochs"].size(), 3u);
  EXPECT_EQ(r["default"]["epochs"][2]["validation_min_recall"], 0.81);
  EXPECT_EQ(r["unconstrained"].count("multiplier"), 0u);
  EXPECT_EQ(r["unconstrained"].count("best"), 0u);
  EXPECT_EQ(r["unconstrained"].count("audit"), 0u);
  EXPECT_EQ(r["validated"]["best"]["epoch"], 1);
  EXPECT_EQ(r["validated"]["best"]["min_test_recall"], 0.82);
  EXPECT_EQ(r["validated"]["min_test_recall"], 0.79);
  EXPECT_EQ(r["validated"]["dual_steps"], 158);
  EXPECT_EQ(r["default"].count("dual_steps"), 0u);
  EXPECT_EQ(r["validated"]["audit"]["classes"].size(), 10u);
  EXPECT_EQ(r["validated"]["audit"]["classes"][6]["verdict"], "holds");
  EXPECT_EQ(r["validated"]["audit"]["not_shown_to_hold"].size(), 0u);
  EXPECT_EQ(r["margin"], 0.0758);
  EXPECT_EQ(r["settings"]["data"]["validation_examples"], 5000);
  EXPECT_EQ(r["settings"]["data"]["validation_class_sizes"][8], 461);
  EXPECT_EQ(r["class_names"][6], "Shirt");
}

TEST(RecallReport, AClassBelowTheTargetFailsTheDefaultsCheck) {
  app::RecallOutcome o = recall_outcome();
  o.default_run.epochs.back().recall[4] = 0.795;  // Coat
  o.unconstrained.epochs.back().recall[6] = 0.8;  // nothing binds
  const std::vector<Check> checks = app::recall_checks(o);
  const Check d = find_check(checks, "default: every class >= 0.80 training recall");
  EXPECT_FALSE(d.holds);
  EXPECT_EQ(d.measured, "smallest 0.795 (Coat); 9 of 10 classes >= 0.80");
  EXPECT_FALSE(find_check(checks, "unconstrained training leaves some class below").holds);
  EXPECT_HAS(app::recall_report(o, kNoFigure), "| 4 Coat | **0.795** |");
}

// The goal's check reads the best epoch's test recall, not the last epoch's: a class of the best
// at 0.799 fails it; the last epoch's 0.79 alone does not (recall_outcome's first test).
TEST(RecallReport, TheValidatedCheckReadsTheBestEpochsTestRecall) {
  app::RecallOutcome o = recall_outcome();
  o.validated.best_test_recall[2] = 0.799;  // Pullover
  const Check v =
      find_check(app::recall_checks(o), "validated: every class >= 0.80 on the test set");
  EXPECT_FALSE(v.holds);
  EXPECT_EQ(v.measured, "smallest 0.799 (Pullover); 9 of 10 classes >= 0.80; epoch 1");
  o.validated.best_test_recall.clear();  // not measured: fails, never holds vacuously
  EXPECT_FALSE(
      find_check(app::recall_checks(o), "validated: every class >= 0.80 on the test set").holds);
}

// The report names every class not shown to hold, with the bound that decides.
TEST(RecallReport, TheAuditFindingsNameTheClassesNotShownToHold) {
  app::RecallOutcome o = recall_outcome();
  app::RecallAudit& a = o.validated.audit;
  a.classes[6] = audit_class("inconclusive", 0.78, 0.745, 0.812);  // Shirt, below the target
  a.classes[4] = audit_class("inconclusive", 0.81, 0.78, 0.84);    // Coat, above it
  a.classes[2] = audit_class("violated", 0.7, 0.66, 0.74);         // Pullover
  const std::vector<std::string> found = app::recall_audit_findings(a, 0.8);
  ASSERT_EQ(found.size(), 3u);  // in class order; the seven that hold are not named
  EXPECT_EQ(found[0],
            "Pullover: test recall 0.700, upper bound 0.740 (level 0.005) below 0.80: violated "
            "at delta = 0.05 with 1000 test examples");
  EXPECT_EQ(found[1],
            "Coat: test recall 0.810 >= 0.80, but lower bound 0.780 (level 0.005) below 0.80: "
            "inconclusive at delta = 0.05 with 1000 test examples");
  EXPECT_EQ(found[2],
            "Shirt: test recall 0.780 < 0.80, but upper bound 0.812 (level 0.005) not below "
            "0.80: inconclusive at delta = 0.05 with 1000 test examples");
  const std::string md = app::recall_report(o, kNoFigure);
  EXPECT_HAS(md, "- Validated, the classes not shown to hold:\n  - Pullover: test recall 0.700");
  EXPECT_HAS(md, "  - Shirt: test recall 0.780 < 0.80, but upper bound 0.812");
  EXPECT_HAS(md,
             "| 6 Shirt | holds | 0.900 [0.870, 0.930] | inconclusive | 0.780 [0.745, 0.812] |");
  const nlohmann::json r = app::recall_results(o);
  EXPECT_EQ(r["validated"]["audit"]["not_shown_to_hold"][2], found[2]);
  EXPECT_EQ(r["validated"]["audit"]["classes"][6]["upper"], 0.812);
  // Verdicts that are reported count for the audit's check, whatever they are.
  const Check c = find_check(app::recall_checks(o), "test audit: a verdict");
  EXPECT_TRUE(c.holds);
  EXPECT_EQ(c.measured,
            "default: 10 hold, 0 violated, 0 inconclusive; validated: 7 hold, 1 violated, 2 "
            "inconclusive");
}

// The audit's check fails when a class has no verdict or no bounds, or a run was not audited.
TEST(RecallReport, TheAuditCheckFailsWithoutAVerdictForEveryClass) {
  const auto audit_check = [](const app::RecallOutcome& o) {
    return find_check(app::recall_checks(o), "test audit: a verdict");
  };
  app::RecallOutcome o = recall_outcome();
  o.default_run.audit.classes[3].verdict = "not observed";
  Check c = audit_check(o);
  EXPECT_FALSE(c.holds);
  EXPECT_EQ(c.measured,
            "default: 9 hold, 0 violated, 0 inconclusive, 1 not audited; validated: 10 hold, 0 "
            "violated, 0 inconclusive");
  EXPECT_EQ(app::recall_audit_findings(o.default_run.audit, 0.8),
            std::vector<std::string>{"Dress: not audited (not observed)"});
  o = recall_outcome();
  o.validated.audit.classes[0].upper = std::nan("");
  EXPECT_FALSE(audit_check(o).holds);
  o = recall_outcome();
  o.validated.audit.classes.pop_back();
  c = audit_check(o);
  EXPECT_FALSE(c.holds);
  EXPECT_HAS(c.measured, "validated: 9 hold, 0 violated, 0 inconclusive, 1 not audited");
  o.validated.audit.classes.clear();
  EXPECT_HAS(app::recall_report(o, kNoFigure), "- Validated: not audited.\n");
}

// A margin above 0.1 is said to be large in the report.
TEST(RecallReport, ALargeMarginIsSaidToBe) {
  app::RecallOutcome o = recall_outcome();
  o.margin = 0.12;
  EXPECT_HAS(app::recall_report(o, kNoFigure),
             "This margin is large: the aim 0.920 may be out of reach");
}

/// Writes a plain IDX file of uint8 values: the magic (0, 0, 0x08 for uint8, the number of
/// dimensions), the dimensions as big-endian int32, the values.
void write_idx(const std::string& path, const std::vector<int32_t>& dims,
               const std::vector<uint8_t>& values) {
  std::ofstream f(path, std::ios::binary);
  f.put(0).put(0).put(0x08).put(static_cast<char>(dims.size()));
  for (int32_t d : dims) {
    for (int shift = 24; shift >= 0; shift -= 8) f.put(static_cast<char>((d >> shift) & 0xff));
  }
  f.write(reinterpret_cast<const char*>(values.data()),
          static_cast<std::streamsize>(values.size()));
}

/// A Fashion-MNIST folder of 10 training examples (example i: every pixel i, label i) and 2 test
/// examples, in a fresh folder under the test's temporary directory.
std::string tiny_fashion_dir() {
  const std::string dir = ::testing::TempDir() + "recall_split_fashion";
  std::filesystem::create_directories(dir);
  for (const auto& [stem, n] : {std::pair<std::string, int>{"train", 10}, {"t10k", 2}}) {
    std::vector<uint8_t> pixels, labels;
    for (int i = 0; i < n; ++i) {
      pixels.insert(pixels.end(), 28 * 28, static_cast<uint8_t>(i));
      labels.push_back(static_cast<uint8_t>(i));
    }
    write_idx(dir + "/" + stem + "-images-idx3-ubyte", {n, 28, 28}, pixels);
    write_idx(dir + "/" + stem + "-labels-idx1-ubyte", {n}, labels);
  }
  return dir;
}

// The validation split is the examples right after the training subset: disjoint from it, never
// trained on; too few examples for both is an error naming the counts.
TEST(RecallSplit, TheValidationExamplesFollowTheTrainingSubset) {
  const std::string dir = tiny_fashion_dir();
  app::FashionData d = app::load_fashion(dir, 6, 3);
  EXPECT_EQ(d.train.size(), 6);
  EXPECT_EQ(d.validation.size(), 3);
  EXPECT_EQ(d.test.size(), 2);
  EXPECT_TRUE(d.train.targets.equal(torch::arange(0, 6, torch::kLong)));
  EXPECT_TRUE(d.validation.targets.equal(torch::arange(6, 9, torch::kLong)));
  // Example 7's pixels are all 7, scaled to [0, 1] by 1 / 255.
  EXPECT_FLOAT_EQ(d.validation.inputs[1][100].item<float>(), 7.0f / 255.0f);
  // 0 training examples with a validation split: all the others are trained on.
  d = app::load_fashion(dir, 0, 4);
  EXPECT_TRUE(d.train.targets.equal(torch::arange(0, 6, torch::kLong)));
  EXPECT_TRUE(d.validation.targets.equal(torch::arange(6, 10, torch::kLong)));
  // No validation split by default.
  EXPECT_EQ(app::load_fashion(dir, 6).validation.size(), 0);
  try {
    app::load_fashion(dir, 8, 3);
    ADD_FAILURE() << "8 + 3 > 10 examples must be refused";
  } catch (const std::runtime_error& e) {
    EXPECT_HAS(e.what(),
               "load_fashion: 8 training and 3 validation examples need more than the "
               "10 in " +
                   dir);
  }
}

// ---- per-example -------------------------------------------------------------------------------

app::PerExampleEpoch per_example_epoch(int64_t epoch, double above, double mean_loss) {
  app::PerExampleEpoch e;
  e.epoch = epoch;
  e.above = above;
  e.mean_loss = mean_loss;
  e.accuracy = 100 * (1 - above);
  return e;
}

/// Quick mode, 5,000 examples, 2 epochs: the default ends with 5% above the bound, unconstrained
/// training with 20%.
app::PerExampleOutcome per_example_outcome() {
  app::PerExampleOutcome o;
  feasible::app::RunConfig config;
  config.quick = true;
  o.settings = app::per_example_settings(config);
  o.settings.epochs = 2;
  o.data_dir = "/data";
  o.train_examples = 5000;
  o.test_examples = 10000;
  o.default_run.method = "default";
  o.default_run.epochs = {per_example_epoch(0, 1.0, 2.3), per_example_epoch(1, 0.2, 0.4),
                          per_example_epoch(2, 0.05, 0.2)};
  o.default_run.mean_multiplier = 0.1;
  o.default_run.max_multiplier = 3;
  o.default_run.penalty = 0.02;
  o.unconstrained.method = "unconstrained";
  o.unconstrained.epochs = {per_example_epoch(0, 1.0, 2.3), per_example_epoch(1, 0.3, 0.5),
                            per_example_epoch(2, 0.2, 0.35)};
  return o;
}

TEST(PerExampleReport, TheCheckHoldsWhenTheDefaultLeavesFewerAboveTheBound) {
  const app::PerExampleOutcome o = per_example_outcome();
  const std::vector<Check> checks = app::per_example_checks(o);
  ASSERT_EQ(checks.size(), 1u);
  EXPECT_TRUE(checks[0].holds);
  EXPECT_HAS(checks[0].name,
             "default: fewer examples above the bound than unconstrained "
             "training, at equal epochs (2, on the whole training subset)");
  EXPECT_EQ(checks[0].measured, "default 5.0% (250 of 5000), unconstrained 20.0% (1000 of 5000)");
  const std::string md = app::per_example_report(o, {"above_bound", "above", false, "none"});
  EXPECT_HAS(md, "| **default** (no dual step) | 5.0% (250 of 5000) | 0.200 |");
  EXPECT_HAS(md, "| 1 | 20.0 | 30.0 | 0.400 | 0.500 |");
  EXPECT_HAS(md, "largest 3; its calibrated penalty is 0.02");
  EXPECT_HAS(md, "That is 5000 constraints, one multiplier per example");
  const nlohmann::json r = app::per_example_results(o);
  EXPECT_EQ(r["default"]["fraction_above"], 0.05);
  EXPECT_EQ(r["default"]["max_multiplier"], 3);
  EXPECT_EQ(r["unconstrained"].count("penalty"), 0u);
  EXPECT_EQ(r["settings"]["bound"], 0.5);
}

TEST(PerExampleReport, ADefaultNoBetterThanUnconstrainedFailsTheCheck) {
  app::PerExampleOutcome o = per_example_outcome();
  o.default_run.epochs.back().above = 0.25;
  const std::vector<Check> checks = app::per_example_checks(o);
  EXPECT_FALSE(checks[0].holds);
  EXPECT_EQ(checks[0].measured, "default 25.0% (1250 of 5000), unconstrained 20.0% (1000 of 5000)");
  o.default_run.epochs.back().above = 0.2;  // equal is not fewer
  EXPECT_FALSE(app::per_example_checks(o)[0].holds);
}

// ---- statistics --------------------------------------------------------------------------------

// ---- fairness ------------------------------------------------------------------------------

namespace {

app::FairnessRun fairness_run(const std::string& method, double fresh_gap, double accuracy,
                              const std::string& verdict) {
  app::FairnessRun r;
  r.method = method;
  r.train_gap = fresh_gap;
  r.fresh_gap = fresh_gap;
  r.fresh_accuracy = accuracy;
  r.verdict = verdict;
  return r;
}

/// 20 draws per requirement: unconstrained always at gap 0.19; penalty at 0.01; constrained
/// meets eps = 0.05 in the even draws only (0.045, then 0.055); validated at 0.02 in every draw.
app::FairnessOutcome fairness_outcome() {
  app::FairnessOutcome o;
  app::RunConfig config;
  config.quick = true;
  o.settings = app::fairness_settings(config);
  for (auto r : {app::FairnessRequirement::kParity, app::FairnessRequirement::kOpportunity}) {
    app::FairnessStudy study;
    study.requirement = r;
    for (int64_t d = 0; d < 20; ++d) {
      app::FairnessDraw draw;
      draw.draw = d;
      draw.runs = {fairness_run("unconstrained", 0.19, 79.0, "violated"),
                   fairness_run("penalty", -0.01, 77.0, "holds"),
                   fairness_run("constrained", d % 2 == 0 ? 0.045 : 0.055, 78.0, "inconclusive"),
                   fairness_run("validated", 0.02, 77.5, "inconclusive")};
      study.draws.push_back(draw);
    }
    o.studies.push_back(study);
  }
  return o;
}

}  // namespace

// Counts by hand: validated 20 of 20, constrained 10 of 20 (the even draws), unconstrained 0.
TEST(FairnessReport, EveryCheckHoldsWhenTheValidatedMethodMeetsTheRequirement) {
  const app::FairnessOutcome o = fairness_outcome();
  EXPECT_EQ(o.studies[0].meets("validated", 0.05), 20);
  EXPECT_EQ(o.studies[0].meets("constrained", 0.05), 10);
  EXPECT_EQ(o.studies[1].meets("unconstrained", 0.05), 0);
  EXPECT_DOUBLE_EQ(o.studies[0].mean_accuracy("penalty"), 77.0);
  EXPECT_EQ(o.studies[0].verdicts("penalty", "holds"), 20);
  const std::vector<Check> checks = app::fairness_checks(o);
  EXPECT_EQ(failing(checks), 0);
  EXPECT_TRUE(contains(find_check(checks, "validated").measured, "parity 20 of 20 (100%)"));
  EXPECT_TRUE(contains(find_check(checks, "constrained").measured, "10 of 20 (50%)"));
  const std::string md = app::fairness_report(o, {"fresh_gap", "gap", false, "none"});
  EXPECT_TRUE(contains(md, "## demographic parity"));
  EXPECT_TRUE(contains(md, "## equal opportunity"));
  EXPECT_TRUE(contains(md, "| validated | 20 of 20 (100%) |"));
  const nlohmann::json r = app::fairness_results(o);
  EXPECT_EQ(r.at("studies").at("parity").at("methods").at("constrained").at("meets_on_fresh_data"),
            10);
  EXPECT_EQ(r.at("studies").at("opportunity").at("runs").size(), 80u);
}

// One validated draw outside eps (19 of 20 = 95% still holds; 18 of 20 does not), constrained
// meeting it in 17 of 20 (85% > 80%), and a "holds" verdict on a model outside eps: each fails
// its own check.
TEST(FairnessReport, MissesAndAWrongVerdictFailTheirChecks) {
  app::FairnessOutcome o = fairness_outcome();
  o.studies[0].draws[0].runs[3].fresh_gap = 0.06;
  EXPECT_TRUE(find_check(app::fairness_checks(o), "validated").holds);
  o.studies[0].draws[1].runs[3].fresh_gap = -0.07;
  EXPECT_FALSE(find_check(app::fairness_checks(o), "validated").holds);
  for (int64_t d : {1, 3, 5, 7, 9, 11, 13}) o.studies[1].draws[d].runs[2].fresh_gap = 0.03;
  EXPECT_FALSE(find_check(app::fairness_checks(o), "constrained").holds);
  EXPECT_TRUE(find_check(app::fairness_checks(o), "the audit never").holds);
  o.studies[1].draws[0].runs[0].verdict = "holds";
  const Check wrong = find_check(app::fairness_checks(o), "the audit never");
  EXPECT_FALSE(wrong.holds);
  EXPECT_EQ(wrong.measured, "1 such verdicts");
}

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
