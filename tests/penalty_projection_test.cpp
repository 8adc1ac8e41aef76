// Penalty updaters, projections, lazy/non-lazy indexed multipliers under Adam, and state
// inspection by name.
//  - MultiplicativePenaltyUpdater / AdditivePenaltyUpdater: growth only where |violation| >
//    tolerance (positive part for inequalities), the cap (max_value) and the returned flag,
//    restart_on_feasible, scalar vs per-entry coefficients, indexed updates of observed entries
//    only; and the same through the optimizer (AugmentedLagrangian, QuadraticPenalty).
//  - Projections: box, nonnegative, simplex (hand example, optimality conditions, brute force),
//    l2_ball, custom, and through add_projection in Unconstrained, Simultaneous and
//    Extragradient optimizers.
//  - Indexed multipliers under Adam: lazy keeps unobserved rows exactly; non-lazy lets rows with
//    momentum move (documented behaviour, checked against Adam written by hand). A dense
//    multiplier of an unobserved constraint does not move under Adam.
//  - Problem::multiplier_values / penalty_values / dual_parameters / constraint by name.
#include <feasible/feasible.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "test_util.h"

namespace {

using feasible_test::dvec;
using feasible_test::expect_vec_near;
using feasible_test::to_vec;

using feasible::ConstraintKind;
using feasible::MultiplicativePenaltyUpdater;
using feasible::PenaltyCoefficient;
using feasible::PenaltyUpdaterOptions;

// Values are O(1) results of a few float64 operations: 1e-12 is far above the rounding.
constexpr double kTol = 1e-12;

PenaltyCoefficient coefficient(double init, int64_t size, bool per_entry) {
  return PenaltyCoefficient(init, size, per_entry, torch::dtype(torch::kFloat64));
}

// ================================================================ penalty updaters

TEST(PenaltyUpdater, MultiplicativeGrowsOnlyViolatedInequalityEntries) {
  auto c = coefficient(1.0, 5, true);
  MultiplicativePenaltyUpdater up(3.0, PenaltyUpdaterOptions().tolerance(1e-4));
  // Violated: 0.5 and 2e-4 (> tol). Not: 1e-5 (<= tol), -0.3 and -5 (the positive part of a
  // satisfied inequality is 0, however large |s| is).
  const auto strict = dvec({0.5, 1e-5, -0.3, 2e-4, -5.0});
  EXPECT_FALSE(up.update(c, strict, torch::Tensor(), ConstraintKind::kInequality));
  expect_vec_near(c.value(), {3, 1, 1, 3, 1}, kTol, "after one update");
  EXPECT_FALSE(up.update(c, strict, torch::Tensor(), ConstraintKind::kInequality));
  expect_vec_near(c.value(), {9, 1, 1, 9, 1}, kTol, "after two updates");
}

TEST(PenaltyUpdater, MultiplicativeEqualityUsesAbsoluteValue) {
  auto c = coefficient(1.0, 5, true);
  MultiplicativePenaltyUpdater up(3.0, PenaltyUpdaterOptions().tolerance(1e-4));
  // |s| > tol: -0.5, -2e-4 and 3 (negative equality violations count); 5e-5 and 0 do not.
  up.update(c, dvec({-0.5, 5e-5, -2e-4, 0.0, 3.0}), torch::Tensor(), ConstraintKind::kEquality);
  expect_vec_near(c.value(), {3, 1, 3, 1, 3}, kTol, "equality");
}

TEST(PenaltyUpdater, ZeroToleranceGrowsOnAnyPositiveViolation) {
  auto c = coefficient(2.0, 3, true);
  MultiplicativePenaltyUpdater up(2.0, PenaltyUpdaterOptions().tolerance(0.0));
  up.update(c, dvec({0.0, 1e-12, -1e-12}), torch::Tensor(), ConstraintKind::kInequality);
  expect_vec_near(c.value(), {2, 4, 2}, kTol, "tolerance 0");
}

TEST(PenaltyUpdater, ScalarCoefficientGrowsOnceWhenAnyEntryIsViolated) {
  auto c = coefficient(2.0, 3, false);
  EXPECT_EQ(c.value().dim(), 0);
  MultiplicativePenaltyUpdater up(3.0);  // default tolerance 1e-4
  EXPECT_EQ(up.options().tolerance(), 1e-4);
  up.update(c, dvec({-1.0, 0.5, 0.7}), torch::Tensor(), ConstraintKind::kInequality);
  EXPECT_NEAR(c.value().item<double>(), 6.0, kTol) << "two violated entries, one growth";
  up.update(c, dvec({-1.0, -1.0, 5e-5}), torch::Tensor(), ConstraintKind::kInequality);
  EXPECT_NEAR(c.value().item<double>(), 6.0, kTol) << "nothing violated";
}

TEST(PenaltyUpdater, AdditiveGrowth) {
  auto c = coefficient(1.0, 4, true);
  feasible::AdditivePenaltyUpdater up(0.5, PenaltyUpdaterOptions().tolerance(1e-3));
  up.update(c, dvec({0.5, 1e-4, -2.0, 0.002}), torch::Tensor(), ConstraintKind::kInequality);
  expect_vec_near(c.value(), {1.5, 1, 1, 1.5}, kTol, "additive, inequality");
  up.update(c, dvec({-0.5, 1e-4, -2.0, 0.0}), torch::Tensor(), ConstraintKind::kEquality);
  expect_vec_near(c.value(), {2.0, 1, 1.5, 1.5}, kTol, "additive, equality");
  auto s = coefficient(1.0, 2, false);
  up.update(s, dvec({0.5, 0.5}), torch::Tensor(), ConstraintKind::kInequality);
  EXPECT_NEAR(s.value().item<double>(), 1.5, kTol) << "scalar: one increment";
}

TEST(PenaltyUpdater, CapHoldsAtMaxValueAndReportsIt) {
  auto c = coefficient(1.0, 3, true);
  MultiplicativePenaltyUpdater up(3.0, PenaltyUpdaterOptions().max_value(5.0));
  const auto violated = dvec({1.0, 1.0, -1.0});
  EXPECT_FALSE(up.update(c, violated, torch::Tensor(), ConstraintKind::kInequality));
  expect_vec_near(c.value(), {3, 3, 1}, kTol, "below the cap");
  EXPECT_TRUE(up.update(c, violated, torch::Tensor(), ConstraintKind::kInequality));
  expect_vec_near(c.value(), {5, 5, 1}, kTol, "9 capped at 5");
  EXPECT_TRUE(up.update(c, violated, torch::Tensor(), ConstraintKind::kInequality));
  expect_vec_near(c.value(), {5, 5, 1}, kTol, "held at the cap");
  EXPECT_FALSE(
      up.update(c, dvec({-1.0, -1.0, -1.0}), torch::Tensor(), ConstraintKind::kInequality));
  expect_vec_near(c.value(), {5, 5, 1}, kTol, "nothing violated");
}

TEST(PenaltyUpdater, CapFlagOnlyCountsViolatedEntries) {
  // Entry 0 would grow past the cap (4 * 3 = 12 > 5) but is not violated: no flag.
  auto c = coefficient(1.0, 2, true);
  c.set_value(dvec({4.0, 1.0}));
  MultiplicativePenaltyUpdater up(3.0, PenaltyUpdaterOptions().max_value(5.0));
  EXPECT_FALSE(up.update(c, dvec({-1.0, 1.0}), torch::Tensor(), ConstraintKind::kInequality));
  expect_vec_near(c.value(), {4, 3}, kTol, "values");
  // Additive cap and scalar cap.
  auto a = coefficient(1.0, 1, false);
  feasible::AdditivePenaltyUpdater add(2.0, PenaltyUpdaterOptions().max_value(4.5));
  EXPECT_FALSE(add.update(a, dvec({1.0}), torch::Tensor(), ConstraintKind::kEquality));
  EXPECT_NEAR(a.value().item<double>(), 3.0, kTol);
  EXPECT_TRUE(add.update(a, dvec({1.0}), torch::Tensor(), ConstraintKind::kEquality));
  EXPECT_NEAR(a.value().item<double>(), 4.5, kTol);
}

TEST(PenaltyUpdater, RestartOnFeasiblePerEntry) {
  // s = 0.5: violated, grows; s = -0.2 and s = 0: satisfied (s <= 0), restart to init 1;
  // s = 5e-5: neither violated (<= tol) nor satisfied (> 0): unchanged.
  const auto strict = dvec({0.5, -0.2, 0.0, 5e-5});
  auto c = coefficient(1.0, 4, true);
  c.set_value(dvec({3, 3, 3, 3}));
  MultiplicativePenaltyUpdater restart(2.0, PenaltyUpdaterOptions().restart_on_feasible(true));
  restart.update(c, strict, torch::Tensor(), ConstraintKind::kInequality);
  expect_vec_near(c.value(), {6, 1, 1, 3}, kTol, "with restart");
  EXPECT_EQ(c.init(), 1.0);

  auto d = coefficient(1.0, 4, true);
  d.set_value(dvec({3, 3, 3, 3}));
  MultiplicativePenaltyUpdater plain(2.0);
  plain.update(d, strict, torch::Tensor(), ConstraintKind::kInequality);
  expect_vec_near(d.value(), {6, 3, 3, 3}, kTol, "without restart");

  // Equalities never restart (restart is for a satisfied inequality).
  auto e = coefficient(1.0, 2, true);
  e.set_value(dvec({3, 3}));
  restart.update(e, dvec({0.0, -5e-5}), torch::Tensor(), ConstraintKind::kEquality);
  expect_vec_near(e.value(), {3, 3}, kTol, "equality with restart");
}

TEST(PenaltyUpdater, RestartOnFeasibleScalarNeedsEveryEntrySatisfied) {
  MultiplicativePenaltyUpdater restart(2.0, PenaltyUpdaterOptions().restart_on_feasible(true));
  auto c = coefficient(1.0, 2, false);
  c.set_value(torch::full({}, 3.0, torch::kFloat64));
  restart.update(c, dvec({-1.0, 5e-5}), torch::Tensor(), ConstraintKind::kInequality);
  EXPECT_NEAR(c.value().item<double>(), 3.0, kTol) << "one entry not satisfied: no restart";
  restart.update(c, dvec({-1.0, -0.5}), torch::Tensor(), ConstraintKind::kInequality);
  EXPECT_NEAR(c.value().item<double>(), 1.0, kTol) << "all satisfied: restart";
  restart.update(c, dvec({-1.0, 0.5}), torch::Tensor(), ConstraintKind::kInequality);
  EXPECT_NEAR(c.value().item<double>(), 2.0, kTol) << "one violated: growth";
}

TEST(PenaltyUpdater, IndexedUpdatesOnlyObservedEntries) {
  MultiplicativePenaltyUpdater up(2.0, PenaltyUpdaterOptions().restart_on_feasible(true));
  auto c = coefficient(1.0, 6, true);
  c.set_value(dvec({3, 3, 3, 3, 3, 3}));
  // Observed (unsorted): entry 4 satisfied -> restart; entry 1 violated -> grows.
  up.update(c, dvec({-1.0, 1.0}), torch::tensor({4, 1}, torch::kLong), ConstraintKind::kInequality);
  expect_vec_near(c.value(), {3, 6, 3, 3, 1, 3}, kTol, "indexed per-entry");
  EXPECT_NEAR(c.observed(torch::tensor({1, 4}, torch::kLong))[0].item<double>(), 6.0, kTol);
  // A scalar coefficient of an indexed constraint grows when an observed entry is violated.
  auto s = coefficient(1.0, 6, false);
  up.update(s, dvec({1.0, -1.0}), torch::tensor({1, 4}, torch::kLong), ConstraintKind::kInequality);
  EXPECT_NEAR(s.value().item<double>(), 2.0, kTol);
}

TEST(PenaltyUpdater, GrowNameAndValidation) {
  MultiplicativePenaltyUpdater m(2.5);
  feasible::AdditivePenaltyUpdater a(0.5);
  expect_vec_near(m.grow(dvec({1.0, 2.0})), {2.5, 5.0}, kTol, "multiplicative grow");
  expect_vec_near(a.grow(dvec({1.0, 2.0})), {1.5, 2.5}, kTol, "additive grow");
  EXPECT_EQ(m.name(), "multiplicative");
  EXPECT_EQ(a.name(), "additive");
  EXPECT_EQ(m.growth(), 2.5);
  EXPECT_EQ(a.increment(), 0.5);
  EXPECT_THROW(MultiplicativePenaltyUpdater(1.0), c10::Error);
  EXPECT_THROW(MultiplicativePenaltyUpdater(0.5), c10::Error);
  EXPECT_THROW(feasible::AdditivePenaltyUpdater(0.0), c10::Error);
  EXPECT_THROW(feasible::AdditivePenaltyUpdater(-1.0), c10::Error);
  EXPECT_THROW(MultiplicativePenaltyUpdater(2.0, PenaltyUpdaterOptions().tolerance(-1.0)),
               c10::Error);
  EXPECT_THROW(MultiplicativePenaltyUpdater(2.0, PenaltyUpdaterOptions().max_value(0.0)),
               c10::Error);
  EXPECT_THROW(coefficient(0.0, 2, true), c10::Error);
  auto c = coefficient(1.0, 2, true);
  EXPECT_THROW(c.set_value(dvec({1.0, 0.0})), c10::Error);
  EXPECT_THROW(c.set_value(dvec({1.0})), c10::Error);
}

// ------------------------------------------------- penalty updaters through the optimizer

TEST(PenaltyUpdaterInOptimizer, AugmentedLagrangianPenaltyGrowsAfterTheDualStep) {
  // minimize x^2 s.t. x - 0.5 <= 0, AL with c0 = 1.5, scale_dual_by_penalty, growth 2.
  // Hand (Simultaneous, primal SGD 0.1, dual SGD 0.5), with the penalty updated after the
  // dual step (so the dual step uses the old c):
  //   x'   = x - 0.1 (2 x + [lam + c v]+)
  //   lam' = max(0, lam + 0.5 c v)
  //   c'   = 2 c if v > 1e-4 else c
  feasible::Problem problem;
  auto g = problem.add_constraint(
      "g", feasible::ConstraintOptions()
               .formulation(std::make_shared<feasible::AugmentedLagrangian>(
                   feasible::AugmentedLagrangianOptions().scale_dual_by_penalty(true)))
               .penalty(1.5)
               .penalty_updater(std::make_shared<MultiplicativePenaltyUpdater>(2.0))
               .dtype(torch::kFloat64));
  torch::Tensor xt = torch::ones({1}, torch::dtype(torch::kFloat64)).requires_grad_();
  auto primal = std::make_shared<torch::optim::SGD>(std::vector<torch::Tensor>{xt},
                                                    torch::optim::SGDOptions(0.1));
  auto dual =
      std::make_shared<torch::optim::SGD>(problem.dual_parameters(), torch::optim::SGDOptions(0.5));
  feasible::SimultaneousOptimizer opt(problem, {primal}, dual);
  double x = 1.0, lam = 0.0, c = 1.5;
  int grew = 0;
  for (int t = 0; t < 4; ++t) {
    SCOPED_TRACE("step " + std::to_string(t + 1));
    const auto r = opt.step([&] {
      feasible::ProblemState st(xt.pow(2).sum());
      st.observe(g, feasible::ConstraintState(xt[0] - 0.5));
      return st;
    });
    const double v = x - 0.5;
    EXPECT_NEAR(r.at("g").penalty.item<double>(), c, kTol) << "penalty used";
    EXPECT_FALSE(r.at("g").penalty_capped);
    const double z = std::max(lam + c * v, 0.0);
    x = x - 0.1 * (2.0 * x + z);
    lam = std::max(lam + 0.5 * c * v, 0.0);
    if (v > 1e-4) {
      c *= 2.0;
      ++grew;
    }
    EXPECT_NEAR(xt.item<double>(), x, kTol);
    EXPECT_NEAR(problem.multiplier_values("g").item<double>(), lam, kTol);
    EXPECT_NEAR(problem.penalty_values("g").item<double>(), c, kTol) << "penalty after step";
  }
  EXPECT_GE(grew, 2) << "the test must exercise growth";
  EXPECT_LT(grew, 4) << "the test must exercise a step without growth";
}

TEST(PenaltyUpdaterInOptimizer, CapIsReportedInStepResult) {
  feasible::Problem problem;
  auto g = problem.add_constraint(
      "g", feasible::ConstraintOptions()
               .formulation(std::make_shared<feasible::AugmentedLagrangian>())
               .penalty(1.5)
               .penalty_updater(std::make_shared<MultiplicativePenaltyUpdater>(
                   2.0, PenaltyUpdaterOptions().max_value(2.5)))
               .dtype(torch::kFloat64));
  torch::Tensor x = torch::ones({1}, torch::dtype(torch::kFloat64)).requires_grad_();
  auto primal = std::make_shared<torch::optim::SGD>(std::vector<torch::Tensor>{x},
                                                    torch::optim::SGDOptions(0.1));
  auto dual =
      std::make_shared<torch::optim::SGD>(problem.dual_parameters(), torch::optim::SGDOptions(0.5));
  feasible::SimultaneousOptimizer opt(problem, {primal}, dual);
  const auto r = opt.step([&] {
    feasible::ProblemState st(x.pow(2).sum());
    st.observe(g, feasible::ConstraintState(x[0] - 0.5));  // v = 0.5
    return st;
  });
  EXPECT_TRUE(r.at("g").penalty_capped);
  EXPECT_NEAR(problem.penalty_values("g").item<double>(), 2.5, kTol);  // 3.0 capped at 2.5
}

TEST(PenaltyUpdaterInOptimizer, IndexedPerEntryPenaltyGrowsOnlyObservedViolatedEntries) {
  feasible::Problem problem;
  auto g = problem.add_constraint(
      "g", feasible::ConstraintOptions(ConstraintKind::kInequality, 4)
               .formulation(std::make_shared<feasible::AugmentedLagrangian>())
               .multiplier(feasible::MultiplierKind::kIndexed)
               .penalty(1.0)
               .penalty_per_entry(true)
               .penalty_updater(std::make_shared<MultiplicativePenaltyUpdater>(3.0))
               .dtype(torch::kFloat64));
  torch::Tensor x = torch::ones({1}, torch::dtype(torch::kFloat64)).requires_grad_();
  auto primal = std::make_shared<torch::optim::SGD>(std::vector<torch::Tensor>{x},
                                                    torch::optim::SGDOptions(0.1));
  auto dual =
      std::make_shared<torch::optim::SGD>(problem.dual_parameters(), torch::optim::SGDOptions(0.5));
  feasible::SimultaneousOptimizer opt(problem, {primal}, dual);
  const auto r = opt.step([&] {
    feasible::ProblemState st(x.pow(2).sum());
    st.observe(g, feasible::ConstraintState(dvec({0.5, -0.5}) * x[0])
                      .indices(torch::tensor({1, 3}, torch::kLong)));
    return st;
  });
  expect_vec_near(problem.penalty_values("g"), {1, 3, 1, 1}, kTol, "per-entry penalties");
  expect_vec_near(r.at("g").penalty, {1, 1}, kTol, "penalties used (observed entries)");
  // Multipliers: SGD on the observed rows, max(0, 0 + 0.5 s) = [0.25, 0] at entries 1, 3.
  expect_vec_near(problem.multiplier_values("g"), {0, 0.25, 0, 0}, kTol, "multipliers");
}

TEST(PenaltyUpdaterInOptimizer, UnconstrainedQuadraticPenaltyWithAdditiveUpdater) {
  feasible::Problem problem;
  auto g = problem.add_constraint(
      "g", feasible::ConstraintOptions()
               .formulation(std::make_shared<feasible::QuadraticPenalty>())
               .penalty(1.0)
               .penalty_updater(std::make_shared<feasible::AdditivePenaltyUpdater>(0.5))
               .dtype(torch::kFloat64));
  torch::Tensor x = torch::ones({1}, torch::dtype(torch::kFloat64)).requires_grad_();
  auto primal = std::make_shared<torch::optim::SGD>(std::vector<torch::Tensor>{x},
                                                    torch::optim::SGDOptions(0.1));
  feasible::UnconstrainedOptimizer opt(problem, {primal});
  bool to_dual = true;
  auto closure = [&] {
    feasible::ProblemState st(x.pow(2).sum());
    st.observe(g, feasible::ConstraintState(x[0] - 0.5).contributes_to_dual(to_dual));
    return st;
  };
  opt.step(closure);  // v = 0.5 > tol
  EXPECT_NEAR(problem.penalty_values("g").item<double>(), 1.5, kTol);
  // x' = 1 - 0.1 (2 + 1.0 * 0.5) = 0.75
  EXPECT_NEAR(x.item<double>(), 0.75, kTol);
  to_dual = false;  // an observation that does not drive the dual side leaves c alone
  opt.step(closure);
  EXPECT_NEAR(problem.penalty_values("g").item<double>(), 1.5, kTol);
}

TEST(PenaltyUpdaterInOptimizer, UpdaterRejectedWhereNotAllowed) {
  feasible::Problem problem;
  auto up = std::make_shared<MultiplicativePenaltyUpdater>(2.0);
  EXPECT_THROW(
      problem.add_constraint("fixed", feasible::ConstraintOptions()
                                          .formulation(std::make_shared<feasible::FixedPenalty>())
                                          .penalty_updater(up)),
      c10::Error);
  EXPECT_THROW(
      problem.add_constraint("lagrangian", feasible::ConstraintOptions().penalty_updater(up)),
      c10::Error);
  EXPECT_TRUE(problem.constraints().empty());
}

// ================================================================ projections

torch::Tensor projected(const feasible::Projection& proj, torch::Tensor t) {
  torch::NoGradGuard no_grad;
  proj(t);
  return t;
}

TEST(Projection, Box) {
  expect_vec_near(projected(feasible::projection::box(-1.0, 2.0), dvec({-3.0, 0.5, 5.0, 2.0})),
                  {-1.0, 0.5, 2.0, 2.0}, 0.0, "box");
  EXPECT_THROW(feasible::projection::box(2.0, 1.0), c10::Error);
}

TEST(Projection, Nonnegative) {
  expect_vec_near(projected(feasible::projection::nonnegative(), dvec({-1.0, 0.0, 3.0, -1e-300})),
                  {0.0, 0.0, 3.0, 0.0}, 0.0, "nonnegative");
}

TEST(Projection, SimplexHandExamples) {
  // [0.5, 0.2, -0.3] -> [0.65, 0.35, 0]: theta = -0.15 (the two positive entries shifted up
  // equally until they sum to 1; the third stays clamped since -0.3 + 0.15 < 0).
  // [1, 1, 1] -> [1/3, 1/3, 1/3]; [0.2, 0.3, 0.5] is on the simplex already.
  torch::Tensor rows = dvec({0.5, 0.2, -0.3, 1.0, 1.0, 1.0, 0.2, 0.3, 0.5}).reshape({3, 3});
  torch::Tensor p = projected(feasible::projection::simplex(), rows);
  EXPECT_EQ(p.sizes(), torch::IntArrayRef({3, 3}));
  expect_vec_near(p, {0.65, 0.35, 0.0, 1.0 / 3, 1.0 / 3, 1.0 / 3, 0.2, 0.3, 0.5}, kTol, "simplex");
  // Radius 2: [3, 0, 0] -> [2, 0, 0]; [0.5, 0.5] (sum 1 < 2) -> [1, 1].
  expect_vec_near(projected(feasible::projection::simplex(2.0), dvec({3.0, 0.0, 0.0})), {2, 0, 0},
                  kTol, "radius 2");
  expect_vec_near(projected(feasible::projection::simplex(2.0), dvec({0.5, 0.5})), {1, 1}, kTol,
                  "radius 2, inside the positive orthant");
  EXPECT_THROW(feasible::projection::simplex(0.0), c10::Error);
}

// The Euclidean projection p of z onto the simplex S = conv{r e_1, ..., r e_n} is characterized
// by p in S and (z - p) . (q - p) <= 0 for all q in S; since that is linear in q, checking the
// n vertices q = r e_j suffices.
void expect_simplex_projection(const std::vector<double>& z, const std::vector<double>& p,
                               double radius) {
  double sum = 0.0;
  for (double v : p) {
    EXPECT_GE(v, 0.0);
    sum += v;
  }
  EXPECT_NEAR(sum, radius, 1e-12);
  for (size_t j = 0; j < z.size(); ++j) {
    double inner = 0.0;
    for (size_t i = 0; i < z.size(); ++i) {
      const double q = (i == j ? radius : 0.0);
      inner += (z[i] - p[i]) * (q - p[i]);
    }
    EXPECT_LE(inner, 1e-12) << "vertex " << j;
  }
}

TEST(Projection, SimplexRowsSatisfyOptimalityConditions) {
  torch::manual_seed(7);
  for (double radius : {1.0, 2.5}) {
    // A 3-D tensor: 2 x 4 rows of 5 entries, projected along the last dimension.
    torch::Tensor z = 2.0 * torch::randn({2, 4, 5}, torch::dtype(torch::kFloat64));
    torch::Tensor p = projected(feasible::projection::simplex(radius), z.clone());
    ASSERT_EQ(p.sizes(), z.sizes());
    const auto zf = to_vec(z.reshape({-1, 5}));
    const auto pf = to_vec(p.reshape({-1, 5}));
    for (size_t row = 0; row < 8; ++row) {
      SCOPED_TRACE("row " + std::to_string(row));
      expect_simplex_projection(std::vector<double>(zf.begin() + 5 * row, zf.begin() + 5 * row + 5),
                                std::vector<double>(pf.begin() + 5 * row, pf.begin() + 5 * row + 5),
                                radius);
    }
  }
}

TEST(Projection, SimplexMatchesBruteForceIn3D) {
  // Grid search over the simplex (step 1/200): no grid point may be closer to z than the
  // projection (up to the rounding of the distances).
  const std::vector<std::vector<double>> points = {
      {0.5, 0.2, -0.3}, {2.0, -1.0, 0.4}, {0.1, 0.1, 0.1}};
  for (const auto& z : points) {
    const auto p = to_vec(projected(feasible::projection::simplex(), dvec(z)));
    auto dist2 = [&](double a, double b, double c) {
      return (a - z[0]) * (a - z[0]) + (b - z[1]) * (b - z[1]) + (c - z[2]) * (c - z[2]);
    };
    const double best = dist2(p[0], p[1], p[2]);
    const int n = 200;
    double grid_best = 1e300;
    for (int i = 0; i <= n; ++i) {
      for (int j = 0; j <= n - i; ++j) {
        grid_best = std::min(grid_best, dist2(double(i) / n, double(j) / n, double(n - i - j) / n));
      }
    }
    EXPECT_LE(best, grid_best + 1e-12);
    // ... and the grid gets within its resolution of the projection.
    EXPECT_LE(grid_best - best, 3e-4);
  }
}

TEST(Projection, L2Ball) {
  expect_vec_near(projected(feasible::projection::l2_ball(1.0), dvec({3.0, 4.0})), {0.6, 0.8}, kTol,
                  "outside");
  expect_vec_near(projected(feasible::projection::l2_ball(1.0), dvec({0.3, 0.4})), {0.3, 0.4}, 0.0,
                  "inside: unchanged");
  // The whole tensor is one vector: [[3, 0], [0, 4]] has norm 5; radius 2.5 halves it.
  expect_vec_near(projected(feasible::projection::l2_ball(2.5), dvec({3, 0, 0, 4}).reshape({2, 2})),
                  {1.5, 0, 0, 2}, kTol, "matrix");
  EXPECT_THROW(feasible::projection::l2_ball(0.0), c10::Error);
}

TEST(Projection, Custom) {
  auto zero_first = feasible::projection::custom([](torch::Tensor& t) { t[0].fill_(0.0); });
  expect_vec_near(projected(zero_first, dvec({1.0, 2.0})), {0.0, 2.0}, 0.0, "custom");
}

TEST(Projection, AddProjectionInUnconstrainedOptimizer) {
  // SGD with lr 0.5 on ||x - a||^2 lands exactly on a: x - 0.5 * 2 (x - a) = a; the simplex
  // projection then gives proj(a) = [0.65, 0.35, 0] for a = [0.5, 0.2, -0.3].
  feasible::Problem problem;
  torch::Tensor x = torch::zeros({3}, torch::dtype(torch::kFloat64)).requires_grad_();
  const torch::Tensor a = dvec({0.5, 0.2, -0.3});
  auto primal = std::make_shared<torch::optim::SGD>(std::vector<torch::Tensor>{x},
                                                    torch::optim::SGDOptions(0.5));
  feasible::UnconstrainedOptimizer opt(problem, {primal});
  opt.add_projection({x}, feasible::projection::simplex());
  for (int t = 0; t < 2; ++t) {
    opt.step([&] { return feasible::ProblemState((x - a).pow(2).sum()); });
    expect_vec_near(x, {0.65, 0.35, 0.0}, kTol, "projected iterate");
  }
}

TEST(Projection, AddProjectionInSimultaneousOptimizer) {
  // minimize ||x - a||^2, a = (-1, 2), s.t. x0 + x1 - 1 <= 0 (lam0 = 0.5), x >= 0 by projection.
  // x' = max(0, x - 0.25 (2 (x - a) + lam (1, 1))); lam' = max(0, lam + 0.5 g(x)).
  feasible::Problem problem;
  auto g =
      problem.add_constraint("g", feasible::ConstraintOptions().init(0.5).dtype(torch::kFloat64));
  torch::Tensor x = dvec({0.1, 0.1}).requires_grad_();
  const torch::Tensor a = dvec({-1.0, 2.0});
  auto primal = std::make_shared<torch::optim::SGD>(std::vector<torch::Tensor>{x},
                                                    torch::optim::SGDOptions(0.25));
  auto dual =
      std::make_shared<torch::optim::SGD>(problem.dual_parameters(), torch::optim::SGDOptions(0.5));
  feasible::SimultaneousOptimizer opt(problem, {primal}, dual);
  opt.add_projection({x}, feasible::projection::nonnegative());
  double x0 = 0.1, x1 = 0.1, lam = 0.5;
  bool clamped = false;
  for (int t = 0; t < 2; ++t) {
    opt.step([&] {
      feasible::ProblemState st((x - a).pow(2).sum());
      st.observe(g, feasible::ConstraintState(x[0] + x[1] - 1.0));
      return st;
    });
    const double gv = x0 + x1 - 1.0;
    const double n0 = x0 - 0.25 * (2.0 * (x0 + 1.0) + lam);
    const double n1 = x1 - 0.25 * (2.0 * (x1 - 2.0) + lam);
    clamped |= n0 < 0.0;
    x0 = std::max(n0, 0.0);
    x1 = std::max(n1, 0.0);
    lam = std::max(lam + 0.5 * gv, 0.0);
    expect_vec_near(x, {x0, x1}, kTol, "x");
    EXPECT_NEAR(problem.multiplier_values("g").item<double>(), lam, kTol);
  }
  EXPECT_TRUE(clamped) << "the test must exercise the projection";
}

TEST(Projection, ExtragradientProjectsTheHalfPoint) {
  // ||x - a||^2 with a = (3, -3), box [-1, 1], ExtraSGD lr 0.25 from x = 0:
  //   half point: box(0 - 0.5 (0 - a)) = box(1.5, -1.5) = (1, -1)
  //   step:       box(0 - 0.5 ((1, -1) - a)) = box(1, -1) = (1, -1)
  // (an unprojected half point (1.5, -1.5) would give (0.75, -0.75)).
  feasible::Problem problem;
  torch::Tensor x = torch::zeros({2}, torch::dtype(torch::kFloat64)).requires_grad_();
  const torch::Tensor a = dvec({3.0, -3.0});
  auto primal = std::make_shared<feasible::optim::ExtraSGD>(std::vector<torch::Tensor>{x},
                                                            feasible::optim::ExtraSGDOptions(0.25));
  feasible::ExtragradientOptimizer opt(problem, {primal}, nullptr);
  opt.add_projection({x}, feasible::projection::box(-1.0, 1.0));
  opt.step([&] { return feasible::ProblemState((x - a).pow(2).sum()); });
  expect_vec_near(x, {1.0, -1.0}, kTol, "extragradient with a projected half point");
}

// ======================================================= indexed multipliers under Adam

// Adam written out per entry (torch's defaults: betas 0.9, 0.999; eps 1e-8; no weight decay).
struct HandAdamRow {
  double m = 0.0, v = 0.0;
  double step(double theta, double g, int t, double lr) {
    const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
    m = b1 * m + (1.0 - b1) * g;
    v = b2 * v + (1.0 - b2) * g * g;
    const double mhat = m / (1.0 - std::pow(b1, t));
    const double vhat = v / (1.0 - std::pow(b2, t));
    return theta - lr * mhat / (std::sqrt(vhat) + eps);
  }
};

// Indexed equality multipliers (no projection) under Adam (lr 0.1). Step 1 observes rows
// {0, 1, 2} with s = (0.5, -1, 2); step 2 observes row 0 only with s = 0.3. The dual gradient
// of an observed row is -s; non-lazy rows not observed get a 0 gradient row.
std::vector<double> run_indexed_adam(bool lazy, std::vector<double>* after_step1) {
  const std::vector<double> init = {0.1, 0.2, 0.3, 0.4, 0.5};
  feasible::Problem problem;
  auto c = problem.add_constraint("c", feasible::ConstraintOptions(ConstraintKind::kEquality, 5)
                                           .multiplier(feasible::MultiplierKind::kIndexed)
                                           .lazy(lazy)
                                           .init_values(dvec(init))
                                           .dtype(torch::kFloat64));
  torch::Tensor x = torch::ones({1}, torch::dtype(torch::kFloat64)).requires_grad_();
  auto primal = std::make_shared<torch::optim::SGD>(std::vector<torch::Tensor>{x},
                                                    torch::optim::SGDOptions(0.1));
  auto dual = std::make_shared<torch::optim::Adam>(problem.dual_parameters(),
                                                   torch::optim::AdamOptions(0.1));
  feasible::SimultaneousOptimizer opt(problem, {primal}, dual);
  auto observe = [&](std::vector<int64_t> idx, std::vector<double> s) {
    opt.step([&] {
      feasible::ProblemState st(x.pow(2).sum());
      // Constant violations: dual-only observations (they could not move x anyway).
      st.observe(c, feasible::ConstraintState(dvec(s))
                        .indices(torch::tensor(idx, torch::kLong))
                        .contributes_to_primal(false));
      return st;
    });
  };
  observe({0, 1, 2}, {0.5, -1.0, 2.0});
  *after_step1 = to_vec(problem.multiplier_values("c"));
  observe({0}, {0.3});
  return to_vec(problem.multiplier_values("c"));
}

TEST(IndexedAdam, LazyKeepsUnobservedRowsExactly) {
  std::vector<double> step1;
  const auto step2 = run_indexed_adam(/*lazy=*/true, &step1);
  std::vector<HandAdamRow> rows(5);
  const std::vector<double> init = {0.1, 0.2, 0.3, 0.4, 0.5};
  const std::vector<double> s1 = {0.5, -1.0, 2.0};
  for (int i = 0; i < 3; ++i) {
    EXPECT_NEAR(step1[i], rows[i].step(init[i], -s1[i], 1, 0.1), kTol) << "row " << i;
  }
  EXPECT_NEAR(step2[0], rows[0].step(step1[0], -0.3, 2, 0.1), kTol) << "row 0, step 2";
  // Rows 1, 2 have momentum but were not observed in step 2: exactly their step-1 values.
  EXPECT_EQ(step2[1], step1[1]);
  EXPECT_EQ(step2[2], step1[2]);
  // Rows 3, 4 were never observed.
  EXPECT_EQ(step2[3], init[3]);
  EXPECT_EQ(step2[4], init[4]);
}

TEST(IndexedAdam, NonLazyRowsWithMomentumMove) {
  // Documented behaviour (multiplier.h, IndexedMultiplier): without lazy, an unobserved row has
  // a zero gradient row, and Adam still moves it by its momentum: m = 0.9 m1, so the step is
  // lr * mhat / (sqrt(vhat) + eps) with t = 2. Rows never observed have m = 0 and stay put.
  std::vector<double> step1;
  const auto step2 = run_indexed_adam(/*lazy=*/false, &step1);
  std::vector<HandAdamRow> rows(5);
  const std::vector<double> init = {0.1, 0.2, 0.3, 0.4, 0.5};
  const std::vector<double> s1 = {0.5, -1.0, 2.0};
  for (int i = 0; i < 3; ++i) {
    EXPECT_NEAR(step1[i], rows[i].step(init[i], -s1[i], 1, 0.1), kTol) << "row " << i;
  }
  EXPECT_NEAR(step2[0], rows[0].step(step1[0], -0.3, 2, 0.1), kTol) << "row 0";
  for (int i = 1; i < 3; ++i) {
    const double want = rows[i].step(step1[i], 0.0, 2, 0.1);
    EXPECT_NEAR(step2[i], want, kTol) << "row " << i << " moves by momentum";
    EXPECT_GT(std::abs(step2[i] - step1[i]), 0.01) << "row " << i;
  }
  EXPECT_EQ(step2[3], init[3]);
  EXPECT_EQ(step2[4], init[4]);
}

TEST(DenseAdam, UnobservedConstraintDoesNotMove) {
  feasible::Problem problem;
  auto a = problem.add_constraint(
      "a", feasible::ConstraintOptions(ConstraintKind::kEquality, 2).dtype(torch::kFloat64));
  auto b = problem.add_constraint(
      "b", feasible::ConstraintOptions(ConstraintKind::kEquality).init(0.3).dtype(torch::kFloat64));
  torch::Tensor x = torch::ones({1}, torch::dtype(torch::kFloat64)).requires_grad_();
  auto primal = std::make_shared<torch::optim::SGD>(std::vector<torch::Tensor>{x},
                                                    torch::optim::SGDOptions(0.1));
  auto dual = std::make_shared<torch::optim::Adam>(problem.dual_parameters(),
                                                   torch::optim::AdamOptions(0.1));
  feasible::SimultaneousOptimizer opt(problem, {primal}, dual);
  bool observe_b = true;
  auto closure = [&] {
    feasible::ProblemState st(x.pow(2).sum());
    // Constant violations: dual-only observations.
    st.observe(a, feasible::ConstraintState(dvec({0.5, -0.5})).contributes_to_primal(false));
    if (observe_b) {
      st.observe(b, feasible::ConstraintState(dvec({1.0})).contributes_to_primal(false));
    }
    return st;
  };
  opt.step(closure);
  const torch::Tensor b1 = problem.multiplier_values("b").clone();
  const torch::Tensor a1 = problem.multiplier_values("a").clone();
  // Adam's first step moves each observed entry by lr * sign(s) (to within eps): b = 0.3 + 0.1.
  EXPECT_NEAR(b1.item<double>(), 0.4, 1e-8);
  observe_b = false;
  const auto r = opt.step(closure);
  EXPECT_FALSE(r.at("b").observed);
  EXPECT_TRUE(r.at("a").observed);
  EXPECT_TRUE(torch::equal(problem.multiplier_values("b"), b1)) << "b was not observed";
  EXPECT_FALSE(torch::equal(problem.multiplier_values("a"), a1)) << "a was observed";
}

// ======================================================= state inspection by name

TEST(StateByName, MultiplierPenaltyDualParametersConstraint) {
  feasible::Problem problem;
  auto g = problem.add_constraint(
      "g",
      feasible::ConstraintOptions(ConstraintKind::kInequality, 3).init(0.5).dtype(torch::kFloat64));
  auto q =
      problem.add_constraint("q", feasible::ConstraintOptions()
                                      .formulation(std::make_shared<feasible::QuadraticPenalty>())
                                      .penalty(1.25)
                                      .dtype(torch::kFloat64));
  auto al = problem.add_constraint(
      "al", feasible::ConstraintOptions(ConstraintKind::kEquality, 2)
                .formulation(std::make_shared<feasible::AugmentedLagrangian>())
                .init_values(dvec({-1.0, 2.0}))
                .penalty(2.0)
                .penalty_per_entry(true)
                .dtype(torch::kFloat64));
  // Values by name.
  expect_vec_near(problem.multiplier_values("g"), {0.5, 0.5, 0.5}, 0.0, "g multipliers");
  expect_vec_near(problem.multiplier_values("al"), {-1.0, 2.0}, 0.0, "al multipliers");
  EXPECT_FALSE(problem.multiplier_values("g").requires_grad());
  EXPECT_EQ(problem.penalty_values("q").dim(), 0);
  EXPECT_EQ(problem.penalty_values("q").item<double>(), 1.25);
  expect_vec_near(problem.penalty_values("al"), {2.0, 2.0}, 0.0, "al penalties");
  EXPECT_THROW(problem.multiplier_values("q"), c10::Error);  // no multiplier
  EXPECT_THROW(problem.penalty_values("g"), c10::Error);     // no penalty
  EXPECT_THROW(problem.multiplier_values("missing"), c10::Error);

  // Dual parameters by name: the multiplier's own tensors, in registration order overall.
  const auto dg = problem.dual_parameters("g");
  const auto dal = problem.dual_parameters("al");
  ASSERT_EQ(dg.size(), 1u);
  ASSERT_EQ(dal.size(), 1u);
  EXPECT_TRUE(problem.dual_parameters("q").empty());
  const auto all = problem.dual_parameters();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_TRUE(all[0].is_same(dg[0]));
  EXPECT_TRUE(all[1].is_same(dal[0]));
  EXPECT_TRUE(g.multiplier()->parameters().at(0).is_same(dg[0]));

  // Constraints by name.
  EXPECT_TRUE(problem.constraint("g") == g);
  EXPECT_TRUE(problem.constraint("al") == al);
  EXPECT_TRUE(problem.constraint("q") != g);
  EXPECT_EQ(problem.constraint("q").index(), 1u);
  EXPECT_EQ(q.penalty()->value().item<double>(), 1.25);
  EXPECT_TRUE(problem.has_constraint("al"));
  EXPECT_FALSE(problem.has_constraint("missing"));
  EXPECT_THROW(problem.constraint("missing"), c10::Error);

  // After a dual step the values by name follow: SGD lr 0.5, lam = max(0, 0.5 + 0.5 s).
  torch::Tensor x = torch::ones({1}, torch::dtype(torch::kFloat64)).requires_grad_();
  auto primal = std::make_shared<torch::optim::SGD>(std::vector<torch::Tensor>{x},
                                                    torch::optim::SGDOptions(0.1));
  auto dual =
      std::make_shared<torch::optim::SGD>(problem.dual_parameters(), torch::optim::SGDOptions(0.5));
  feasible::SimultaneousOptimizer opt(problem, {primal}, dual);
  opt.step([&] {
    feasible::ProblemState st(x.pow(2).sum());
    st.observe(g, feasible::ConstraintState(dvec({1.0, -2.0, 0.2})).contributes_to_primal(false));
    return st;
  });
  expect_vec_near(problem.multiplier_values("g"), {1.0, 0.0, 0.6}, kTol, "g after a step");
  expect_vec_near(problem.multiplier_values("al"), {-1.0, 2.0}, 0.0, "al (unobserved)");
}

}  // namespace
