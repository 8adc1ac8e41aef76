// The problem set of bench/problems (docs/problems.md). For every problem: sizes and bounds; at
// the stated optimum the objective value, feasibility, the KKT conditions with nonnegative
// multipliers, second-order sufficiency and an unambiguous active set; the digits of x* (Newton's
// method on the KKT system moves it by less than its stated accuracy); a point 1e-2 away fails
// the check; float32 evaluation. And the KKT check itself on points that are not optimal.
//
// Tolerances follow from the accuracy delta of x* (TestProblem::x_star_tol, floored at double
// rounding): a constraint moves by at most ||grad c||_1 delta, the objective by ||grad f||_1
// delta, the stationarity residual by about ||Hessian of the Lagrangian|| delta.
#include "bench/problems/problems.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <regex>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using feasible::problems::collection;
using feasible::problems::KktReport;
using feasible::problems::Refinement;
using feasible::problems::TestProblem;
using feasible::problems::to_tensor;

double inf_norm(const std::vector<double>& v) {
  double m = 0;
  for (double x : v) m = std::max(m, std::abs(x));
  return m;
}

// Accuracy delta of x_star: its stated bound, floored at double rounding amplified by the
// conditioning of the KKT system (1e-12 relative; the refinement moves exact values by 2e-16).
double accuracy(const TestProblem& p) {
  return std::max(p.x_star_tol, 1e-12 * (1 + inf_norm(p.x_star)));
}

// Activity threshold at x_star: an active constraint is within ||grad c||_1 delta of 0; ten
// times that (inactive constraints are at least 1e-3 away: ActiveSetIsUnambiguous).
double active_tol(const TestProblem& p) {
  const KktReport first = feasible::problems::kkt(p, p.x_star, 0.0);
  return std::max(1e-9, 10 * (1 + first.constraint_gradient_norm) * accuracy(p));
}

// Tolerances of the KKT check at a point within delta of x*.
struct Tolerances {
  double stationarity;
  double violation;
};

Tolerances tolerances(const TestProblem& p, const KktReport& r) {
  const double delta = accuracy(p);
  return {2 * r.lagrangian_hessian_norm * delta + 1e-11 * (1 + r.gradient_norm),
          2 * r.constraint_gradient_norm * delta + 1e-12};
}

class Problem : public ::testing::TestWithParam<size_t> {
 protected:
  const TestProblem& problem() const { return collection()[GetParam()]; }
  KktReport at_optimum() const {
    return feasible::problems::kkt(problem(), problem().x_star, active_tol(problem()));
  }
};

TEST_P(Problem, SizesAndShapes) {
  const TestProblem& p = problem();
  ASSERT_GE(p.n, 1);
  ASSERT_EQ(static_cast<int64_t>(p.x0.size()), p.n);
  ASSERT_EQ(static_cast<int64_t>(p.x_star.size()), p.n);
  ASSERT_EQ(static_cast<int64_t>(p.lower.size()), p.n);
  ASSERT_EQ(static_cast<int64_t>(p.upper.size()), p.n);
  ASSERT_GE(p.n_ineq, 0);
  ASSERT_GE(p.n_eq, 0);
  ASSERT_TRUE(p.f);
  EXPECT_EQ(static_cast<bool>(p.g), p.n_ineq > 0);
  EXPECT_EQ(static_cast<bool>(p.h), p.n_eq > 0);
  for (const auto* x : {&p.x0, &p.x_star}) {
    const torch::Tensor t = to_tensor(*x);
    EXPECT_EQ(p.f(t).dim(), 0);
    if (p.g) {
      EXPECT_EQ(p.g(t).sizes(), torch::IntArrayRef({p.n_ineq}));
    }
    if (p.h) {
      EXPECT_EQ(p.h(t).sizes(), torch::IntArrayRef({p.n_eq}));
    }
  }
  for (int64_t j = 0; j < p.n; ++j) {
    EXPECT_TRUE(std::isfinite(p.x0[j])) << "x0[" << j << "]";
    EXPECT_FALSE(std::isnan(p.lower[j]) || std::isnan(p.upper[j])) << "bound " << j;
    EXPECT_LE(p.lower[j], p.upper[j]) << "bounds of x" << j + 1;
  }
  EXPECT_GE(p.x_star_tol, 0);
  EXPECT_GE(p.f_star_tol, 0);
}

TEST_P(Problem, OptimumInsideBounds) {
  const TestProblem& p = problem();
  for (int64_t j = 0; j < p.n; ++j) {
    EXPECT_GE(p.x_star[j], p.lower[j]) << "x*" << j + 1;
    EXPECT_LE(p.x_star[j], p.upper[j]) << "x*" << j + 1;
  }
}

// |f(x*) - f*| <= ||grad f||_1 delta (x* within delta) + f_star_tol (digits of f*) + rounding.
TEST_P(Problem, ObjectiveAtOptimumIsStated) {
  const TestProblem& p = problem();
  const KktReport r = at_optimum();
  const double f = p.f(to_tensor(p.x_star)).item<double>();
  const double tol =
      2 * p.n * r.gradient_norm * accuracy(p) + p.f_star_tol + 1e-12 * (1 + std::abs(p.f_star));
  EXPECT_NEAR(f, p.f_star, tol);
}

TEST_P(Problem, OptimumIsFeasible) {
  const TestProblem& p = problem();
  const KktReport r = at_optimum();
  EXPECT_LE(r.max_violation, tolerances(p, r).violation);
}

// Stationarity with multipliers of the right sign. The multiplier bound -1e-6 lies far below
// the smallest positive multiplier of the set (0.02, hs113) and above the fit's rounding: it
// catches a wrong sign, not a small error.
TEST_P(Problem, KktConditionsHoldAtOptimum) {
  const TestProblem& p = problem();
  const KktReport r = at_optimum();
  EXPECT_LE(r.stationarity, tolerances(p, r).stationarity)
      << "gradient " << r.gradient_norm << ", Hessian " << r.lagrangian_hessian_norm;
  EXPECT_GE(r.min_active_multiplier, -1e-6);
  EXPECT_EQ(r.multipliers.size(), static_cast<size_t>(r.active + p.n_eq));
}

// Every inequality and bound is either active (within active_tol) or at least 1e-3 from being
// active, so the active set, and the check, do not hinge on the threshold.
TEST_P(Problem, ActiveSetIsUnambiguous) {
  const TestProblem& p = problem();
  const double tol = active_tol(p);
  if (p.n_ineq > 0) {
    const torch::Tensor g = p.g(to_tensor(p.x_star));
    for (int64_t i = 0; i < p.n_ineq; ++i) {
      const double gi = g[i].item<double>();
      EXPECT_TRUE(gi >= -tol || gi <= -1e-3) << "g" << i + 1 << " = " << gi;
    }
  }
  for (int64_t j = 0; j < p.n; ++j) {
    for (double gap : {p.x_star[j] - p.lower[j], p.upper[j] - p.x_star[j]}) {
      EXPECT_TRUE(gap <= tol || gap >= 1e-3) << "x" << j + 1 << " is " << gap << " from a bound";
    }
  }
}

// Second-order sufficient condition: positive curvature of the Lagrangian on the null space of
// the strongly active constraints, so x* is a strict (isolated) local minimizer.
TEST_P(Problem, OptimumIsStrictLocalMinimum) {
  const KktReport r = at_optimum();
  EXPECT_GT(r.reduced_curvature, 1e-6);
}

// The digits of x*: Newton's method on the KKT system, started at x*, converges and moves it by
// no more than its accuracy; the point it reaches passes the check to rounding.
TEST_P(Problem, NewtonRefinementConfirmsDigits) {
  const TestProblem& p = problem();
  const Refinement ref = feasible::problems::refine(p, p.x_star, active_tol(p));
  ASSERT_TRUE(ref.converged) << ref.iterations << " iterations";
  EXPECT_LE(ref.moved, accuracy(p));
  const KktReport r = feasible::problems::kkt(p, ref.x, active_tol(p));
  EXPECT_LE(r.stationarity, 1e-10 * (1 + r.gradient_norm));
  EXPECT_LE(r.max_violation, 1e-12 * (1 + r.constraint_gradient_norm * (1 + inf_norm(ref.x))));
}

// A point 1e-2 from x* along any coordinate (inside the box) fails the check: it violates a
// constraint or is not stationary, by more than the tolerances x* passes with.
TEST_P(Problem, CheckRejectsNearbyPoints) {
  const TestProblem& p = problem();
  const double tol = active_tol(p);
  const Tolerances t = tolerances(p, at_optimum());
  for (int64_t j = 0; j < p.n; ++j) {
    std::vector<double> x = p.x_star;
    x[j] += x[j] + 1e-2 <= p.upper[j] ? 1e-2 : -1e-2;
    const KktReport r = feasible::problems::kkt(p, x, tol);
    EXPECT_TRUE(r.stationarity > 10 * t.stationarity || r.max_violation > 10 * t.violation ||
                r.min_active_multiplier < -1e-6)
        << "x" << j + 1 << " moved: stationarity " << r.stationarity << ", violation "
        << r.max_violation;
  }
}

// Values and gradients in float32 match float64 at the same (float32-rounded) point.
TEST_P(Problem, WorksInFloat32) {
  const TestProblem& p = problem();
  for (const auto* x : {&p.x0, &p.x_star}) {
    const torch::Tensor x32 = to_tensor(*x, torch::kFloat32).requires_grad_(true);
    const torch::Tensor x64 = x32.detach().to(torch::kFloat64).requires_grad_(true);
    std::vector<torch::Tensor> in32{p.f(x32)}, in64{p.f(x64)};
    for (const auto* fn : {&p.g, &p.h}) {
      if (*fn) {
        in32.push_back((*fn)(x32));
        in64.push_back((*fn)(x64));
      }
    }
    for (size_t k = 0; k < in32.size(); ++k) {
      const torch::Tensor& v32 = in32[k];
      const torch::Tensor& v64 = in64[k];
      ASSERT_EQ(v32.scalar_type(), torch::kFloat32);
      ASSERT_TRUE(torch::isfinite(v32).all().item<bool>());
      const double scale = 1 + v64.abs().max().item<double>();
      EXPECT_LE((v32.to(torch::kFloat64) - v64).abs().max().item<double>(), 1e-5 * scale);
      const torch::Tensor g32 = torch::autograd::grad({v32.sum()}, {x32}, {}, true, false, true)[0];
      const torch::Tensor g64 = torch::autograd::grad({v64.sum()}, {x64}, {}, true, false, true)[0];
      if (!g64.defined()) continue;  // no dependence on x (cannot happen for these problems)
      ASSERT_TRUE(g32.defined());
      ASSERT_TRUE(torch::isfinite(g32).all().item<bool>());
      const double gscale = 1 + g64.abs().max().item<double>();
      EXPECT_LE((g32.to(torch::kFloat64) - g64).abs().max().item<double>(), 1e-4 * gscale);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Collection, Problem, ::testing::Range<size_t>(0, collection().size()),
                         [](const ::testing::TestParamInfo<size_t>& info) {
                           return collection()[info.param].name;
                         });

TEST(ProblemSet, AtLeastThirtyNamedAndCited) {
  const auto& all = collection();
  EXPECT_GE(all.size(), 30u);
  std::set<std::string> names;
  const std::regex pattern("(hs|tp)[0-9]{3}");
  for (const TestProblem& p : all) {
    EXPECT_TRUE(std::regex_match(p.name, pattern)) << p.name;
    EXPECT_TRUE(names.insert(p.name).second) << "duplicate " << p.name;
    const std::string book = p.name.substr(0, 2) == "hs" ? "Hock and Schittkowski (1981), problem "
                                                         : "Schittkowski (1987), problem ";
    EXPECT_EQ(p.source, book + std::to_string(std::stoi(p.name.substr(2)))) << p.name;
  }
}

// The mix the benchmark relies on: each kind of constraint set, bounds or none, convex or not.
TEST(ProblemSet, CoversTheKinds) {
  int ineq_only = 0, eq_only = 0, mixed = 0, bounded = 0, unbounded = 0, convex = 0;
  for (const TestProblem& p : collection()) {
    ineq_only += p.n_ineq > 0 && p.n_eq == 0;
    eq_only += p.n_ineq == 0 && p.n_eq > 0;
    mixed += p.n_ineq > 0 && p.n_eq > 0;
    const bool has_bounds =
        std::any_of(p.lower.begin(), p.lower.end(), [](double b) { return std::isfinite(b); }) ||
        std::any_of(p.upper.begin(), p.upper.end(), [](double b) { return std::isfinite(b); });
    bounded += has_bounds;
    unbounded += !has_bounds;
    convex += p.convex;
  }
  EXPECT_GE(ineq_only, 5);
  EXPECT_GE(eq_only, 5);
  EXPECT_GE(mixed, 3);
  EXPECT_GE(bounded, 5);
  EXPECT_GE(unbounded, 5);
  EXPECT_GE(convex, 5);
  EXPECT_GE(static_cast<int>(collection().size()) - convex, 5);
}

TEST(ProblemSet, FindByName) {
  EXPECT_EQ(feasible::problems::find("hs036").n, 3);
  EXPECT_EQ(&feasible::problems::find("tp224"), &collection()[collection().size() - 3]);
  EXPECT_THROW(feasible::problems::find("hs999"), std::out_of_range);
}

// An interior point that is not stationary: hs012 at its start (0, 0), where grad f = (-7, -7).
TEST(Kkt, InteriorPointIsNotStationary) {
  const KktReport r = feasible::problems::kkt(feasible::problems::find("hs012"), {0.0, 0.0}, 1e-8);
  EXPECT_EQ(r.active, 0);
  EXPECT_TRUE(r.multipliers.empty());
  EXPECT_DOUBLE_EQ(r.stationarity, 7.0);
  EXPECT_DOUBLE_EQ(r.gradient_norm, 7.0);
  EXPECT_EQ(r.max_violation, 0.0);
  EXPECT_EQ(r.min_active_multiplier, std::numeric_limits<double>::infinity());
}

// hs010 at the maximizer (0, -1) of x1 - x2 on its ellipse: stationary, but with multiplier -1/2.
TEST(Kkt, MaximizerHasNegativeMultiplier) {
  const KktReport r = feasible::problems::kkt(feasible::problems::find("hs010"), {0.0, -1.0}, 1e-8);
  EXPECT_EQ(r.active_ineq, std::vector<int64_t>{0});
  EXPECT_LE(r.stationarity, 1e-14);
  ASSERT_EQ(r.multipliers.size(), 1u);
  EXPECT_NEAR(r.multipliers[0], -0.5, 1e-14);
  EXPECT_NEAR(r.min_active_multiplier, -0.5, 1e-14);
}

// Bounds: in hs021 (10 - 10 x1 + x2 <= 0, x1 >= 2), the start (-1, -1) violates the inequality
// by 19 and the bound by 3; (1, 0) only the bound, by 1. At the optimum (2, 0) the active lower
// bound of x1 carries multiplier df/dx1 = 0.02 x1 = 0.04.
TEST(Kkt, BoundsAreViolationsAndMultipliers) {
  const TestProblem& p = feasible::problems::find("hs021");
  EXPECT_DOUBLE_EQ(feasible::problems::kkt(p, p.x0, 1e-8).max_violation, 19.0);
  EXPECT_DOUBLE_EQ(feasible::problems::kkt(p, {1.0, 0.0}, 1e-8).max_violation, 1.0);
  const KktReport r = feasible::problems::kkt(p, {2.0, 0.0}, 1e-8);
  EXPECT_TRUE(r.active_ineq.empty());
  EXPECT_EQ(r.active_lower, std::vector<int64_t>{0});
  EXPECT_TRUE(r.active_upper.empty());
  ASSERT_EQ(r.multipliers.size(), 1u);
  EXPECT_NEAR(r.multipliers[0], 0.04, 1e-15);
  EXPECT_LE(r.stationarity, 1e-15);
}

// Equality multipliers have either sign: hs042 at its optimum (exact values -2 and
// (5 - sqrt(2)) / sqrt(2) from grad f + nu1 e1 + nu2 (0, 0, 2 x3, 2 x4) = 0).
TEST(Kkt, EqualityMultipliers) {
  const TestProblem& p = feasible::problems::find("hs042");
  const KktReport r = feasible::problems::kkt(p, p.x_star, 1e-8);
  ASSERT_EQ(r.multipliers.size(), 2u);
  EXPECT_NEAR(r.multipliers[0], -2.0, 1e-12);
  EXPECT_NEAR(r.multipliers[1], (5.0 - std::sqrt(2.0)) / std::sqrt(2.0), 1e-12);
  EXPECT_EQ(r.min_active_multiplier, std::numeric_limits<double>::infinity());
}

TEST(Kkt, RejectsBadArguments) {
  const TestProblem& p = feasible::problems::find("hs036");
  EXPECT_THROW(feasible::problems::kkt(p, {1.0, 2.0}, 1e-8), std::invalid_argument);
  EXPECT_THROW(feasible::problems::kkt(p, p.x_star, -1.0), std::invalid_argument);
  EXPECT_THROW(feasible::problems::refine(p, {1.0}, 1e-8), std::invalid_argument);
}

// refine() from a point 1e-3 off hs065's optimum, with the constraint taken as active, lands on
// the optimum.
TEST(Refine, ConvergesFromNearby) {
  const TestProblem& p = feasible::problems::find("hs065");
  std::vector<double> x = p.x_star;
  for (double& v : x) v -= 1e-3;
  const Refinement ref = feasible::problems::refine(p, x, 0.1);
  ASSERT_TRUE(ref.converged);
  for (int64_t j = 0; j < p.n; ++j) EXPECT_NEAR(ref.x[j], p.x_star[j], 1e-12);
  ASSERT_EQ(ref.multipliers.size(), 1u);
  EXPECT_GT(ref.multipliers[0], 0);
}

}  // namespace
