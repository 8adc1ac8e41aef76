// make_default_optimizer (include/feasible/defaults.h): known optima without a dual step, scale
// invariance, the AugmentedDual update against hand computation, checkpoints, bad input; and the
// report of divergence that stays finite (StepResult::diverging).
#include <feasible/feasible.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include "test_util.h"

namespace {

using feasible::Constraint;
using feasible::ConstraintKind;
using feasible::ConstraintOptions;
using feasible::ConstraintState;
using feasible::Problem;
using feasible::ProblemState;
using feasible_test::dvec;
using feasible_test::error_of;
using Optimizers = std::vector<std::shared_ptr<torch::optim::Optimizer>>;

ConstraintOptions f64(ConstraintKind kind = ConstraintKind::kInequality, int64_t size = 1) {
  return ConstraintOptions(kind, size).dtype(torch::kFloat64);
}

struct WarningCollector : c10::WarningHandler {
  std::vector<std::string> messages;
  void process(const c10::SourceLocation&, const std::string& msg, const bool) override {
    messages.push_back(msg);
  }
};

// The paper's concave example: min cos(x) s.t. sin(x) <= eps on [0, pi/2]; x* = arcsin(eps),
// where the objective's curvature is negative (-cos x* < 0), so plain gradient descent-ascent
// on the Lagrangian has no stable point there. No dual step is given.
TEST(Default, ReachesTheConcaveExamplesOptimum) {
  for (double eps : {0.1, 0.5, 0.9}) {
    torch::Tensor x = dvec({0.3}).requires_grad_(true);
    Problem problem;
    Constraint c = problem.add_constraint("sin", f64());
    auto sgd = std::make_shared<torch::optim::SGD>(std::vector<torch::Tensor>{x},
                                                   torch::optim::SGDOptions(0.05));
    auto opt = feasible::make_default_optimizer(problem, sgd);
    opt->add_projection({x}, feasible::projection::box(0.0, M_PI / 2));
    feasible::StepResult r;
    for (int t = 0; t < 3000; ++t) {
      r = opt->step([&] {
        ProblemState st(torch::cos(x).sum());
        st.observe(c, ConstraintState(torch::sin(x) - eps));
        return st;
      });
      ASSERT_TRUE(r.diverging.empty()) << "a converging run is not reported as diverging";
    }
    // 1e-6: far above the float64 rounding of the iteration, far below the benchmark's 1e-3.
    EXPECT_NEAR(x.item<double>(), std::asin(eps), 1e-6) << "eps " << eps;
    // KKT: -sin x* + lambda cos x* = 0, so lambda* = tan(x*).
    EXPECT_NEAR(problem.multiplier_values(c).item<double>(), std::tan(std::asin(eps)), 1e-5);
    EXPECT_GT(opt->calibrations(), 8);
  }
}

// The setting of `feasible reproduce concave` at eps = 0.1: x0 = 0.5, step 0.01. The penalty
// pulls x from 0.5 towards 0.1 in a few steps; a base multiplier that integrated that transient
// (the windup guard off) carried x past x* to 0, a stationary point of cos on the box where it
// stayed (measured: x = 0 after 3000 steps).
TEST(Default, TheConcaveExampleFromTheExperimentsStartDoesNotOvershoot) {
  torch::Tensor x = dvec({0.5}).requires_grad_(true);
  Problem problem;
  Constraint c = problem.add_constraint("sin", f64());
  auto sgd = std::make_shared<torch::optim::SGD>(std::vector<torch::Tensor>{x},
                                                 torch::optim::SGDOptions(0.01));
  auto opt = feasible::make_default_optimizer(problem, sgd);
  opt->add_projection({x}, feasible::projection::box(0.0, M_PI / 2));
  double lowest = 1.0;
  for (int t = 0; t < 3000; ++t) {
    opt->step([&] {
      ProblemState st(torch::cos(x).sum());
      st.observe(c, ConstraintState(torch::sin(x) - 0.1));
      return st;
    });
    lowest = std::min(lowest, x.item<double>());
  }
  EXPECT_GT(lowest, 0.0) << "x never reaches the stationary endpoint 0";
  EXPECT_NEAR(x.item<double>(), std::asin(0.1), 1e-6);
}

// min ||x - a||^2 s.t. sum(x) = 1 and x_0 <= 0.1 (two groups): x* and lambda* by hand.
struct SmallQp {
  torch::Tensor x = dvec({0.0, 0.0, 0.0}).requires_grad_(true);
  torch::Tensor a = dvec({1.0, 0.5, -0.2});
  Problem problem;
  Constraint sum, cap;
  double loss_scale = 1, constraint_scale = 1;
  SmallQp() {
    sum = problem.add_constraint("sum", f64(ConstraintKind::kEquality));
    cap = problem.add_constraint("cap", f64());
  }
  ProblemState operator()() {
    ProblemState st((x - a).square().sum() * loss_scale);
    st.observe(sum, ConstraintState((x.sum() - 1.0).reshape({1}) * constraint_scale));
    st.observe(cap, ConstraintState((x[0] - 0.1).reshape({1}) * constraint_scale));
    return st;
  }
};

// With x_0 = 0.1 active: x_1 - a_1 = x_2 - a_2 = -nu/2 and x_1 + x_2 = 0.9, so x_1 = 0.8,
// x_2 = 0.1, nu = -0.6 (the equality's multiplier, from 2 (x_1 - a_1) + nu = 0), and the cap's
// multiplier mu = -2 (0.1 - 1) - nu = 2.4 >= 0. SGD and Adam both reach them to 1e-8 by step
// 3,000 (far above float64 rounding, far below either step size: a run that hovered at Adam's
// step size would miss by 1e-3). Adam does not stay there exactly: its second moment decays with
// the gradient, its effective step grows again, and by step 8,000 the multipliers are 1e-4 off
// (measured); the iterate stays within 1e-4 and the multipliers within 1e-3.
TEST(Default, SolvesASmallQpWithAnEqualityAndAnActiveInequality) {
  for (const bool adam : {false, true}) {
    SCOPED_TRACE(adam ? "Adam" : "SGD");
    SmallQp qp;
    std::shared_ptr<torch::optim::Optimizer> primal;
    if (adam) {
      primal = std::make_shared<torch::optim::Adam>(std::vector<torch::Tensor>{qp.x},
                                                    torch::optim::AdamOptions(0.01));
    } else {
      primal = std::make_shared<torch::optim::SGD>(std::vector<torch::Tensor>{qp.x},
                                                   torch::optim::SGDOptions(0.1));
    }
    auto opt = feasible::make_default_optimizer(qp.problem, primal);
    const auto expect_kkt = [&](double tolerance) {
      EXPECT_TRUE(torch::allclose(qp.x.detach(), dvec({0.1, 0.8, 0.1}), 0, tolerance)) << qp.x;
      EXPECT_NEAR(qp.problem.multiplier_values(qp.sum).item<double>(), -0.6, 10 * tolerance);
      EXPECT_NEAR(qp.problem.multiplier_values(qp.cap).item<double>(), 2.4, 10 * tolerance);
    };
    for (int t = 0; t < 3000; ++t) opt->step([&] { return qp(); });
    expect_kkt(1e-8);
    if (!adam) continue;
    for (int t = 3000; t < 8000; ++t) opt->step([&] { return qp(); });
    expect_kkt(1e-4);
  }
}

// The step per unit gradient P per optimizer, by hand. At x = (0, 0, 0) the loss gradient is
// 2 (x - a) = (-2, -1, 0.4), rms r = sqrt(5.16 / 3). Adam's and AdamW's first moment is an
// average (beta1 m + (1 - beta1) g): a steady gradient moves lr g / sqrt(v), P = lr / r, with no
// 1 / (1 - beta1). RMSprop's momentum buffer sums steps: P = lr / (r (1 - momentum)). SGD's
// buffer fills to (1 - dampening) g / (1 - momentum): P = lr (1 - dampening) / (1 - momentum).
// The cap's gradient is (1, 0, 0), so c = 0.4 / P; the sum's is (1, 1, 1), so c = 0.4 / (3 P).
// SGD's stability factor (docs/defaults.md) is 1 on this well-conditioned problem, so its penalty
// is the plain rule's. Tolerance 1e-9 relative: float64 rounding of a few operations, far below the
// factors of 2-10 that the rules differ by.
TEST(Default, ReadsEachOptimizersStepPerUnitGradient) {
  const double r = std::sqrt(5.16 / 3), lr = 0.01;
  using namespace torch::optim;
  const std::vector<std::pair<std::string, double>> cases = {
      {"Adam", lr / r}, {"AdamW", lr / r}, {"RMSprop", lr / r / 0.1}, {"SGD", lr * 0.5 / 0.1}};
  for (const auto& [name, P] : cases) {
    SCOPED_TRACE(name);
    SmallQp qp;
    const std::vector<torch::Tensor> x{qp.x};
    std::shared_ptr<Optimizer> primal;
    if (name == "Adam") primal = std::make_shared<Adam>(x, AdamOptions(lr));
    if (name == "AdamW") primal = std::make_shared<AdamW>(x, AdamWOptions(lr));
    if (name == "RMSprop") primal = std::make_shared<RMSprop>(x, RMSpropOptions(lr).momentum(0.9));
    if (name == "SGD")
      primal = std::make_shared<SGD>(x, SGDOptions(lr).momentum(0.9).dampening(0.5));
    auto opt = feasible::make_default_optimizer(qp.problem, primal);
    opt->step([&] { return qp(); });
    EXPECT_NEAR(opt->penalty(qp.cap).item<double>(), 0.4 / P, 1e-9 * 0.4 / P);
    EXPECT_NEAR(opt->penalty(qp.sum).item<double>(), 0.4 / (3 * P), 1e-9 * 0.4 / P);
  }
}

// Runs SmallQp for `steps` with SGD at `lr`; the iterates.
torch::Tensor run_qp(double loss_scale, double constraint_scale, double lr, int steps,
                     bool adam = false, torch::Tensor* multipliers = nullptr) {
  SmallQp qp;
  qp.loss_scale = loss_scale;
  qp.constraint_scale = constraint_scale;
  std::shared_ptr<torch::optim::Optimizer> primal;
  if (adam) {
    primal = std::make_shared<torch::optim::Adam>(std::vector<torch::Tensor>{qp.x},
                                                  torch::optim::AdamOptions(lr));
  } else {
    primal = std::make_shared<torch::optim::SGD>(std::vector<torch::Tensor>{qp.x},
                                                 torch::optim::SGDOptions(lr));
  }
  auto opt = feasible::make_default_optimizer(qp.problem, primal);
  for (int t = 0; t < steps; ++t) opt->step([&] { return qp(); });
  if (multipliers) {
    *multipliers =
        torch::cat({qp.problem.multiplier_values(qp.sum), qp.problem.multiplier_values(qp.cap)});
  }
  return qp.x.detach().clone();
}

// The recipe is invariant to the scale of a constraint: c scales as 1/s^2, so c * v and the
// primal step do not change, and the multipliers scale as 1/s. 30 steps, mid-run (not yet
// converged), so the comparison is of whole trajectories, not of the shared optimum.
// Tolerance: a few hundred float64 roundings of O(1) values.
TEST(Default, IsInvariantToTheScaleOfAConstraint) {
  torch::Tensor lam1, lam1000;
  const torch::Tensor x1 = run_qp(1, 1, 0.1, 30, false, &lam1);
  const torch::Tensor x1000 = run_qp(1, 1000, 0.1, 30, false, &lam1000);
  EXPECT_TRUE(torch::allclose(x1, x1000, 0, 1e-12)) << x1 << x1000;
  EXPECT_TRUE(torch::allclose(lam1, lam1000 * 1000, 1e-10, 1e-12)) << lam1 << lam1000;
  EXPECT_FALSE(torch::allclose(x1, run_qp(1, 1, 0.1, 15), 0, 1e-6)) << "still moving at 30";
}

// Loss scaled by 1e-3 with a plain-SGD step scaled by 1000: the primal step is unchanged, and
// c = p / (lr ||grad g||^2) scales by 1e-3, as do the multipliers.
TEST(Default, IsInvariantToTheLossScaleWithTheSgdStepScaledInversely) {
  const torch::Tensor x1 = run_qp(1, 1, 0.1, 30);
  const torch::Tensor x2 = run_qp(1e-3, 1, 100.0, 30);
  EXPECT_TRUE(torch::allclose(x1, x2, 0, 1e-12)) << x1 << x2;
}

// Adam is scale-free itself, so the loss alone is scaled. Adam's eps (1e-8) against
// sqrt(second moment) (about 1e-3 here after scaling) breaks exact invariance at about 1e-5
// relative per step, so the tolerance is 1e-4.
TEST(Default, IsInvariantToTheLossScaleWithAdam) {
  const torch::Tensor x1 = run_qp(1, 1, 0.01, 300, true);
  const torch::Tensor x2 = run_qp(1e-3, 1, 0.01, 300, true);
  EXPECT_TRUE(torch::allclose(x1, x2, 0, 1e-4)) << x1 << x2;
  EXPECT_TRUE(torch::allclose(x1, dvec({0.1, 0.8, 0.1}), 0, 2e-2))
      << "near x* after 300 steps: " << x1;
}

// AugmentedDual by hand: lambda_{t+1} = [lambda_bar + c g]+, lambda_bar += beta c g.
TEST(AugmentedDual, FollowsTheFormulaByHand) {
  torch::Tensor lam = dvec({0.5, 0.0}).requires_grad_(true);
  feasible::optim::AugmentedDual dual({lam}, feasible::optim::AugmentedDualOptions(0.25));
  dual.set_penalty(lam, dvec({2.0, 4.0}), 0.0, INFINITY);
  double bar0 = 0.5, bar1 = 0.0;
  const std::vector<std::vector<double>> gs = {{0.1, -0.3}, {-0.4, 0.2}, {0.05, 0.05}};
  for (const auto& g : gs) {
    lam.mutable_grad() = -dvec(g);  // the engine writes the negated ascent direction
    dual.step();
    const double l0 = std::max(0.0, bar0 + 2.0 * g[0]), l1 = std::max(0.0, bar1 + 4.0 * g[1]);
    bar0 = std::max(0.0, bar0 + 0.25 * 2.0 * g[0]);
    bar1 = std::max(0.0, bar1 + 0.25 * 4.0 * g[1]);
    EXPECT_DOUBLE_EQ(lam[0].item<double>(), l0);
    EXPECT_DOUBLE_EQ(lam[1].item<double>(), l1);
    EXPECT_DOUBLE_EQ(dual.state_of(lam)->base()[0].item<double>(), bar0);
    EXPECT_DOUBLE_EQ(dual.state_of(lam)->base()[1].item<double>(), bar1);
  }
}

// The windup guard by hand (r0 = 0.6, c = 2, beta = 0.5): the base moves by
// w beta c g with w = clamp((r - r0) / (1 - r0), 0, 1), r = g / g_prev; w = 1 for the first
// observation and a sign change; an entry's zero gradient keeps its g_prev. Both update paths.
TEST(AugmentedDual, TheWindupGuardByHand) {
  const std::vector<double> gs = {1.0, 0.5, 0.9, 0.72, -0.1, 0.0, -0.05};
  const std::vector<double> ws = {1.0, 0.0, 1.0, 0.5, 1.0, 0.0, 0.0};  // by hand from gs
  for (bool contiguous : {true, false}) {
    torch::Tensor lam = contiguous
                            ? dvec({0.0, 0.0}).requires_grad_(true)
                            : torch::zeros({2, 2}, torch::kFloat64).t()[0].requires_grad_(true);
    ASSERT_EQ(lam.is_contiguous(), contiguous);
    feasible::optim::AugmentedDual dual(
        {lam}, feasible::optim::AugmentedDualOptions(0.5).windup_guard(0.6));
    dual.set_penalty(lam, dvec({2.0, 2.0}), -INFINITY, INFINITY);
    double bar = 0.0;
    for (size_t t = 0; t < gs.size(); ++t) {
      lam.mutable_grad() = -dvec({gs[t], gs[t]});
      dual.step();
      EXPECT_NEAR(lam[0].item<double>(), bar + 2.0 * gs[t], 1e-15) << t;
      bar += ws[t] * 0.5 * 2.0 * gs[t];
      EXPECT_NEAR(dual.state_of(lam)->base()[1].item<double>(), bar, 1e-15)
          << "step " << t << (contiguous ? " (in place)" : " (tensor path)");
    }
    EXPECT_DOUBLE_EQ(dual.state_of(lam)->previous()[0].item<double>(), 0.05);
  }
}

TEST(AugmentedDual, RefusesBadInput) {
  torch::Tensor lam = dvec({0.0}).requires_grad_(true);
  EXPECT_HAS(error_of([&] {
               feasible::optim::AugmentedDual d({lam}, feasible::optim::AugmentedDualOptions(0));
             }),
             "AugmentedDualOptions.beta must be in (0, 1], got 0");
  EXPECT_HAS(error_of([&] {
               feasible::optim::AugmentedDual d(
                   {lam}, feasible::optim::AugmentedDualOptions(0.5).windup_guard(1.0));
             }),
             "AugmentedDualOptions.windup_guard must be in [0, 1), got 1");
  feasible::optim::AugmentedDual dual({lam});
  lam.mutable_grad() = dvec({1.0});
  EXPECT_HAS(error_of([&] { dual.step(); }), "call set_penalty before its first step");
  EXPECT_HAS(error_of([&] { dual.set_penalty(lam, dvec({-1.0}), 0, 1); }),
             "finite and >= 0 everywhere");
}

// A per-entry share replaces beta (lambda_bar += w share c g), by hand on both update paths;
// a share that is not > 0 is refused; a call without a share keeps the one set before.
TEST(AugmentedDual, ThePerEntryShareByHand) {
  for (bool contiguous : {true, false}) {
    torch::Tensor lam = contiguous
                            ? dvec({0.0, 0.0}).requires_grad_(true)
                            : torch::zeros({2, 2}, torch::kFloat64).t()[0].requires_grad_(true);
    feasible::optim::AugmentedDual dual({lam}, feasible::optim::AugmentedDualOptions(0.25));
    dual.set_penalty(lam, dvec({2.0, 4.0}), -INFINITY, INFINITY, dvec({3.0, 0.5}));
    dual.set_penalty(lam, dvec({2.0, 4.0}), -INFINITY, INFINITY);  // the shares stay
    lam.mutable_grad() = -dvec({0.1, -0.2});
    dual.step();
    // lambda = bar + c g = (0.2, -0.8); bar = share c g = (3 * 0.2, 0.5 * -0.8) = (0.6, -0.4)
    EXPECT_NEAR(lam[0].item<double>(), 0.2, 1e-15);
    EXPECT_NEAR(lam[1].item<double>(), -0.8, 1e-15);
    EXPECT_NEAR(dual.state_of(lam)->base()[0].item<double>(), 0.6, 1e-15) << contiguous;
    EXPECT_NEAR(dual.state_of(lam)->base()[1].item<double>(), -0.4, 1e-15) << contiguous;
    EXPECT_HAS(error_of([&] { dual.set_penalty(lam, dvec({1.0}), 0, 1, dvec({0.0})); }),
               "the share must be finite and > 0 everywhere");
  }
}

// HS 28 with the step of its tuned gradient descent-ascent run (SGD, lr 0.3): min (x1 + x2)^2 +
// (x2 + x3)^2 s.t. x1 + 2 x2 + 3 x3 = 1, from (-4, 1, 1); x* = (0.5, -0.5, 0.5). The objective's
// curvature times the step is already 1.8 (Hessian eigenvalues 0, 2, 6), so the plain penalty
// (p = 0.4 along the normal a = (1, 2, 3)) would take the step's largest curvature to 2.12 > 2
// (the eigenvalues of 0.3 H + 0.4 a a^T / |a|^2, computed with numpy) and the run diverged.
// The stability factor theta makes it 1.9, halfway from 1.8 to the limit 2: by bisection on
// that 3x3 matrix, theta = 0.3213754647, so the first calibration's penalty is
// theta 0.4 / (0.3 |a|^2) = 0.03060718711 (|a|^2 = 14). The curvature along the normal is
// 0.3 a^T H a / |a|^2 = 1.4571428571, so the integral gain for critical damping is
// q = (1.457142857 + 0.4 theta)^2 / 4 = 0.628612 and the base share q / (0.4 theta) = 4.889963.
// Tolerance 1e-9: the Krylov basis spans the whole space here, so only roundings and the
// bisection's 2^-40 remain.
TEST(Default, StaysStableWhereTheStepIsNearItsLimit) {
  torch::Tensor x = dvec({-4.0, 1.0, 1.0}).requires_grad_(true);
  Problem problem;
  Constraint h = problem.add_constraint("h", f64(ConstraintKind::kEquality));
  auto sgd = std::make_shared<torch::optim::SGD>(std::vector<torch::Tensor>{x},
                                                 torch::optim::SGDOptions(0.3));
  auto opt = feasible::make_default_optimizer(problem, sgd);
  const auto closure = [&] {
    ProblemState state((x[0] + x[1]).square() + (x[1] + x[2]).square());
    state.observe(h, ConstraintState((x[0] + 2 * x[1] + 3 * x[2] - 1).reshape({1})));
    return state;
  };
  opt->step(closure);
  EXPECT_NEAR(opt->penalty(h).item<double>(), 0.03060718711276324, 1e-9);
  const auto& dual = static_cast<const feasible::optim::AugmentedDual&>(*opt->dual_optimizer());
  const auto* st = dual.state_of(h.multiplier()->parameters()[0]);
  ASSERT_TRUE(st->share().defined());
  EXPECT_NEAR(st->share().item<double>(), 4.889962642961606, 1e-8);
  for (int t = 1; t < 200; ++t) opt->step(closure);
  EXPECT_TRUE(torch::allclose(x.detach(), dvec({0.5, -0.5, 0.5}), 0, 1e-8)) << x;
}

// The saturation cap: with Adam the multiplier of x0 <= 1 is held within kBalanceCap = 2 times
// the balance multiplier |df/dx0| / |dg/dx0| (P is one number for the one tensor x, so it
// cancels; the loss gradient counts only on x0, the coordinate g reaches): f = -2 x0 + (x1 - 1)^2
// gives df/dx0 = -2 everywhere, so the interval is [0, 4] at every calibration, and the KKT
// multiplier lambda* = 2 lies inside it. With SGD there is no cap.
TEST(Default, HoldsAnAdamMultiplierWithinTwiceTheBalanceMultiplier) {
  for (const bool adam : {true, false}) {
    SCOPED_TRACE(adam ? "Adam" : "SGD");
    torch::Tensor x = dvec({0.0, 0.0}).requires_grad_(true);
    Problem problem;
    Constraint c = problem.add_constraint("c", f64(ConstraintKind::kInequality));
    std::shared_ptr<torch::optim::Optimizer> primal;
    if (adam) {
      primal = std::make_shared<torch::optim::Adam>(std::vector<torch::Tensor>{x},
                                                    torch::optim::AdamOptions(0.05));
    } else {
      primal = std::make_shared<torch::optim::SGD>(std::vector<torch::Tensor>{x},
                                                   torch::optim::SGDOptions(0.05));
    }
    auto opt = feasible::make_default_optimizer(problem, primal);
    const auto closure = [&] {
      ProblemState state(-2 * x[0] + (x[1] - 1).square());
      state.observe(c, ConstraintState((x[0] - 1).reshape({1})));
      return state;
    };
    const auto& dual = static_cast<const feasible::optim::AugmentedDual&>(*opt->dual_optimizer());
    const auto* st = [&] {
      opt->step(closure);
      return dual.state_of(c.multiplier()->parameters()[0]);
    }();
    const auto expect_cap = [&](double upper) {
      if (adam) {
        EXPECT_NEAR(upper, 4.0, 1e-12);
      } else {
        EXPECT_EQ(upper, std::numeric_limits<double>::infinity());
      }
    };
    EXPECT_EQ(st->lower(), 0.0);
    expect_cap(st->upper());
    double largest = 0;
    for (int t = 1; t < 400; ++t) {
      opt->step(closure);
      largest = std::max(largest, problem.multiplier_values("c").item<double>());
      expect_cap(dual.state_of(c.multiplier()->parameters()[0])->upper());
    }
    if (adam) {
      EXPECT_LE(largest, 4.0);
    }
    // Both reach the constrained optimum x = (1, 1); Adam's fixed step keeps it moving by up to
    // about its step size 0.05, hence the tolerance.
    EXPECT_NEAR(x[0].item<double>(), 1.0, adam ? 0.05 : 1e-6);
    EXPECT_NEAR(x[1].item<double>(), 1.0, adam ? 0.05 : 1e-6);
  }
}

// A checkpoint in the middle of a run, loaded into a fresh optimizer, continues the same run.
TEST(Default, CheckpointResumesTheSameTrajectory) {
  const std::string path = ::testing::TempDir() + "/defaults_test.ckpt";
  auto make = [](SmallQp& qp, torch::nn::Module& holder) {
    holder.register_parameter("x", qp.x);
    auto sgd = std::make_shared<torch::optim::SGD>(std::vector<torch::Tensor>{qp.x},
                                                   torch::optim::SGDOptions(0.1));
    return feasible::make_default_optimizer(qp.problem, sgd);
  };
  SmallQp a;
  torch::nn::Module ma;
  auto oa = make(a, ma);
  for (int t = 0; t < 37; ++t) oa->step([&] { return a(); });
  feasible::save(path, feasible::CheckpointContents().module("m", ma).optimizer(*oa));
  for (int t = 37; t < 80; ++t) oa->step([&] { return a(); });
  SmallQp b;
  torch::nn::Module mb;
  auto ob = make(b, mb);
  feasible::load(path, feasible::CheckpointContents().module("m", mb).optimizer(*ob));
  for (int t = 37; t < 80; ++t) ob->step([&] { return b(); });
  EXPECT_TRUE(torch::equal(a.x.detach(), b.x.detach())) << a.x << b.x;
  EXPECT_TRUE(torch::equal(ob->penalty(b.cap), oa->penalty(a.cap)));
  std::remove(path.c_str());
}

// On a problem whose Lagrangian's curvature moves with the multipliers (HS 42: a circle as an
// equality), a checkpoint taken between curvature measurements resumes exactly: the stability
// factor and the shares live in the dual's state. Saved at step 40 (last measured at 38, the
// 17th calibration); the calibrations at 47, 58 and 72 reuse them, 90 would measure again.
TEST(Default, CheckpointBetweenCurvatureMeasurementsResumesExactly) {
  const std::string path = ::testing::TempDir() + "/defaults_curvature.ckpt";
  struct Run {
    torch::nn::Module holder;
    torch::Tensor x = dvec({1.0, 1.0, 1.0, 1.0}).requires_grad_(true);
    Problem problem;
    Constraint h = problem.add_constraint("h", f64(ConstraintKind::kEquality, 2));
    std::unique_ptr<feasible::DefaultOptimizer> opt;
    Run() {
      holder.register_parameter("x", x);
      opt = feasible::make_default_optimizer(
          problem, std::make_shared<torch::optim::SGD>(std::vector<torch::Tensor>{x},
                                                       torch::optim::SGDOptions(0.1)));
    }
    void step() {
      opt->step([&] {
        ProblemState state((x - dvec({1.0, 2.0, 3.0, 4.0})).square().sum());
        state.observe(h,
                      ConstraintState(torch::stack({x[0] - 2, x[2].square() + x[3].square() - 2})));
        return state;
      });
    }
    torch::Tensor share() const {
      const auto& dual = static_cast<const feasible::optim::AugmentedDual&>(*opt->dual_optimizer());
      return dual.state_of(h.multiplier()->parameters()[0])->share().clone();
    }
  };
  Run a;
  for (int t = 0; t < 10; ++t) a.step();
  const torch::Tensor early = a.share();
  for (int t = 10; t < 40; ++t) a.step();
  EXPECT_FALSE(torch::allclose(early, a.share())) << "the curvature moved: " << a.share();
  feasible::save(path, feasible::CheckpointContents().module("m", a.holder).optimizer(*a.opt));
  for (int t = 40; t < 80; ++t) a.step();
  Run b;
  feasible::load(path, feasible::CheckpointContents().module("m", b.holder).optimizer(*b.opt));
  for (int t = 40; t < 80; ++t) b.step();
  EXPECT_TRUE(torch::equal(a.x.detach(), b.x.detach())) << a.x << b.x;
  EXPECT_TRUE(torch::equal(a.share(), b.share()));
  std::remove(path.c_str());
}

TEST(Default, RefusesWhatItCannotCalibrate) {
  torch::Tensor x = dvec({0.0}).requires_grad_(true);
  auto sgd = std::make_shared<torch::optim::SGD>(std::vector<torch::Tensor>{x},
                                                 torch::optim::SGDOptions(0.1));
  {
    Problem p;
    p.add_constraint("quad", f64().formulation(std::make_shared<feasible::QuadraticPenalty>()));
    EXPECT_HAS(error_of([&] { feasible::make_default_optimizer(p, sgd); }),
               "constraint 'quad' uses QuadraticPenalty");
  }
  {
    Problem p;
    p.add_constraint("c", f64());
    auto lbfgs = std::make_shared<torch::optim::LBFGS>(std::vector<torch::Tensor>{x});
    EXPECT_HAS(error_of([&] { feasible::make_default_optimizer(p, lbfgs); }),
               "primal optimizer 0 is not one whose step per unit gradient the default knows");
    EXPECT_HAS(error_of([&] {
                 feasible::make_default_optimizer(
                     p, sgd, feasible::DefaultOptions().max_calibration_interval(0));
               }),
               "DefaultOptions.max_calibration_interval must be >= 1, got 0");
  }
}

// A constraint through an operation without a double backward (cdist's backward has none in
// LibTorch): the curvature rule cannot measure, says so once, and the plain penalty rule still
// solves min |x - (2, 0)|^2 s.t. |x| <= 1, whose solution is (1, 0).
TEST(Default, WarnsOnceWhenTheClosureHasNoDoubleBackward) {
  torch::Tensor x = dvec({0.0, 0.5}).requires_grad_(true);
  Problem problem;
  Constraint c = problem.add_constraint("disk", f64());
  auto sgd = std::make_shared<torch::optim::SGD>(std::vector<torch::Tensor>{x},
                                                 torch::optim::SGDOptions(0.1));
  auto opt = feasible::make_default_optimizer(problem, sgd);
  WarningCollector warnings;
  c10::Warning::WarningHandlerGuard guard(&warnings);
  for (int t = 0; t < 600; ++t) {
    opt->step([&] {
      ProblemState st((x - dvec({2.0, 0.0})).square().sum());
      const torch::Tensor radius = torch::cdist(x.view({1, 2}), torch::zeros({1, 2}, x.options()));
      st.observe(c, ConstraintState((radius.reshape({1}) - 1)));
      return st;
    });
  }
  ASSERT_EQ(warnings.messages.size(), 1u);
  EXPECT_HAS(warnings.messages[0], "no double backward");
  EXPECT_HAS(warnings.messages[0], "_cdist_backward");
  // Tolerance: the plain rule converges linearly; 600 steps leave far less than 1e-6.
  EXPECT_TRUE(torch::allclose(x.detach(), dvec({1.0, 0.0}), 0, 1e-6)) << x;
}

// Simultaneous gradient descent-ascent on min 0 s.t. x = 0 spirals outwards by a factor
// sqrt(1 + lr^2) per step: finite, unbounded. It is reported, named, and warned about once.
TEST(Divergence, FiniteGrowthIsReportedAndWarnedOnceNamingTheConstraint) {
  torch::Tensor x = dvec({1.0}).requires_grad_(true);
  Problem problem;
  Constraint h = problem.add_constraint("h", f64(ConstraintKind::kEquality));
  auto sgd = std::make_shared<torch::optim::SGD>(std::vector<torch::Tensor>{x},
                                                 torch::optim::SGDOptions(0.5));
  auto dual =
      std::make_shared<torch::optim::SGD>(problem.dual_parameters(), torch::optim::SGDOptions(0.5));
  feasible::SimultaneousOptimizer opt(problem, {sgd}, dual);
  WarningCollector warnings;
  c10::Warning::WarningHandlerGuard guard(&warnings);
  int first = -1;
  feasible::StepResult r;
  for (int t = 0; t < 400; ++t) {
    r = opt.step([&] {
      ProblemState st(x.sum() * 0.0);
      st.observe(h, ConstraintState(x.clone()));
      return st;
    });
    if (first < 0 && !r.diverging.empty()) first = t;
  }
  ASSERT_GE(first, 0) << "never reported; |x| = " << x.abs().item<double>();
  EXPECT_LE(first, 240) << "growth of 1.118x a step is found within the sampling rule's delay";
  EXPECT_EQ(first % 20, 0) << "sampled every 20 steps";
  ASSERT_EQ(warnings.messages.size(), 1u);
  EXPECT_HAS(warnings.messages[0], "'h': violation");
  EXPECT_HAS(warnings.messages[0], "while finite");
}

// A multiplier that winds up linearly (an unreachable constraint under plain dual SGD) grows
// without bound too, but not geometrically: not reported.
TEST(Divergence, LinearWindUpIsNotReported) {
  torch::Tensor x = dvec({0.0}).requires_grad_(true);
  Problem problem;
  Constraint c = problem.add_constraint("unreachable", f64());
  auto sgd = std::make_shared<torch::optim::SGD>(std::vector<torch::Tensor>{x},
                                                 torch::optim::SGDOptions(0.1));
  auto dual =
      std::make_shared<torch::optim::SGD>(problem.dual_parameters(), torch::optim::SGDOptions(0.1));
  feasible::SimultaneousOptimizer opt(problem, {sgd}, dual);
  for (int t = 0; t < 1000; ++t) {
    const auto r = opt.step([&] {
      ProblemState st(x.square().sum());
      st.observe(c, ConstraintState(x.sum() * 0.0 + 1.0));  // always violated by 1
      return st;
    });
    ASSERT_TRUE(r.diverging.empty()) << "step " << t;
  }
  EXPECT_GT(problem.multiplier_values(c).item<double>(), 90.0) << "it did wind up";
}

}  // namespace

namespace {

// AugmentedDual updates contiguous CPU values in one pass and other tensors with tensor
// expressions (a strided leaf takes the second path). ATen's vectorised kernels may fuse
// base - beta * step into one multiply-add, so the two may differ in the last bit per step:
// over 50 steps of O(1) values, 1e-13 absolute bounds that and fails on any real difference.
TEST(AugmentedDual, TheInPlacePathEqualsTheTensorPath) {
  for (double guard : {0.0, 0.6}) {
    torch::manual_seed(5);
    const torch::Tensor start = torch::rand({3, 2}, torch::kFloat64);
    torch::Tensor fast = start.clone().requires_grad_(true);
    torch::Tensor slow = start.t().contiguous().t().requires_grad_(true);  // same values, strided
    ASSERT_FALSE(slow.is_contiguous());
    feasible::optim::AugmentedDual a(
        {fast}, feasible::optim::AugmentedDualOptions(0.3).windup_guard(guard));
    feasible::optim::AugmentedDual b(
        {slow}, feasible::optim::AugmentedDualOptions(0.3).windup_guard(guard));
    const torch::Tensor c = torch::rand({3, 2}, torch::kFloat64) * 3;
    a.set_penalty(fast, c, 0.0, 2.0);
    b.set_penalty(slow, c, 0.0, 2.0);
    for (int t = 0; t < 50; ++t) {
      const torch::Tensor g = torch::randn({3, 2}, torch::kFloat64);
      fast.mutable_grad() = g.clone();
      slow.mutable_grad() = g.t().contiguous().t();
      a.step();
      b.step();
      ASSERT_TRUE(torch::allclose(fast.detach(), slow.detach().contiguous(), 0, 1e-13))
          << "step " << t << ", guard " << guard;
      ASSERT_TRUE(torch::allclose(a.state_of(fast)->base(), b.state_of(slow)->base().contiguous(),
                                  0, 1e-13))
          << "step " << t << ", guard " << guard;
    }
  }
}

}  // namespace

// The problem of the per-visit tests, by hand: f = x (gradient 1), g_i = w_i x - e_i on five
// entries, all observed, with w = (1, 2, 1, 1, 1), so u = |grad f| / |sum_i w_i| = 1/6 (P
// cancels). At x = 1 the violations are (0.5, 0.2, 0.8, -0.5, 0.1). The primal step is 1e-9, too
// small to reorder the violations.
struct PerVisitByHand {
  static constexpr double kU = 1.0 / 6.0;
  Problem problem;
  Constraint c = problem.add_constraint(
      "per_example",
      f64(ConstraintKind::kInequality, 5).multiplier(feasible::MultiplierKind::kIndexed));
  torch::Tensor x = torch::ones({1}, torch::kFloat64).requires_grad_();
  torch::Tensor w = dvec({1, 2, 1, 1, 1}), e = dvec({0.5, 1.8, 0.2, 1.5, 0.9});
  torch::Tensor idx = torch::arange(5);
  std::unique_ptr<feasible::DefaultOptimizer> opt = feasible::make_default_optimizer(
      problem, std::make_shared<torch::optim::SGD>(std::vector<torch::Tensor>{x},
                                                   torch::optim::SGDOptions(1e-9)));
  ProblemState operator()() {
    ProblemState s(x.sum());
    s.observe(c, ConstraintState(w * x - e).indices(idx));
    return s;
  }
  void step() {
    opt->step([this] { return (*this)(); });
  }
  // Expects the multipliers to be u times `units`.
  void expect_lambda(const std::vector<double>& units, const char* when) {
    EXPECT_TRUE(torch::allclose(problem.multiplier_values(c), kU * dvec(units), 0, 1e-15))
        << when << ": " << problem.multiplier_values(c) / kU << " (in units of u)";
  }
};

// The per-visit rule by hand (PerVisitByHand): the positive violations' median (torch's lower
// median of four) is 0.2, so entries 1 and 4 go up by u per visit and the others stay at 0
// (down, clamped). After 3 steps lambda = 3u on entries 1 and 4. Then entry 1 is satisfied
// (-0.1): the positives (0.5, 0.8, 0.1) have median 0.5, so entries 0 and 4 go up, entry 1 down;
// after 3 more steps entry 0 is at 3u, entry 1 back at 0 and entry 4 held at the cap 4u.
TEST(Default, AnIndexedConstraintsPerVisitRuleByHand) {
  PerVisitByHand h;
  const double k = feasible::DefaultOptimizer::kVisitCap;
  h.step();
  h.expect_lambda({0, 1, 0, 0, 1}, "after one step");
  EXPECT_NEAR(h.opt->penalty(h.c).max().item<double>(),
              feasible::DefaultOptimizer::kVisitStep * PerVisitByHand::kU, 1e-15);
  for (int t = 0; t < 2; ++t) h.step();
  h.expect_lambda({0, 3, 0, 0, 3}, "after three steps");
  h.e[1] = 2.1;  // g_1 = -0.1
  h.step();
  h.expect_lambda({1, 2, 0, 0, k}, "entry 1 satisfied, one step");
  for (int t = 0; t < 2; ++t) h.step();
  h.expect_lambda({3, 0, 0, 0, k}, "entry 1 satisfied, three steps");
}

// dual_step (a validation batch feeding the multipliers) takes the same per-visit directions:
// after one training step lambda = u (0, 1, 0, 0, 1) as above; validation violations (0.3,
// -0.2, 0.1, 0.9, 0.4) have positive median 0.3 (lower median of four), so entries 0 and 2 go
// up and the others down: lambda = u (1, 0, 1, 0, 0).
TEST(Default, DualStepTakesTheIndexedConstraintsPerVisitDirections) {
  PerVisitByHand h;
  h.step();
  h.opt->dual_step([&] {
    ProblemState s;
    s.observe(h.c, ConstraintState(dvec({0.3, -0.2, 0.1, 0.9, 0.4})).indices(h.idx));
    return s;
  });
  h.expect_lambda({1, 0, 1, 0, 0}, "after dual_step");
}

// Runs a per-example bound ((a_i x - y_i)^2 <= 0.05, eight examples in two batches of four, f
// the batch's mean of the same losses) for 40 SGD steps; the iterates and the multipliers.
torch::Tensor run_per_example(double loss_scale, double constraint_scale, double lr,
                              torch::Tensor* multipliers) {
  Problem problem;
  const Constraint c = problem.add_constraint(
      "per_example",
      f64(ConstraintKind::kInequality, 8).multiplier(feasible::MultiplierKind::kIndexed));
  auto x = dvec({0.5, -0.3}).requires_grad_();
  const torch::Tensor i = torch::arange(8, torch::kFloat64);
  const torch::Tensor a = torch::stack({torch::cos(i), torch::sin(1.7 * i)}, 1);
  const torch::Tensor y = 0.3 * i - 1;
  auto opt = feasible::make_default_optimizer(
      problem, std::make_shared<torch::optim::SGD>(std::vector<torch::Tensor>{x},
                                                   torch::optim::SGDOptions(lr)));
  for (int t = 0; t < 40; ++t) {
    const torch::Tensor idx = torch::arange(4) + 4 * (t % 2);
    opt->step([&] {
      const torch::Tensor loss = (a.index_select(0, idx).matmul(x) - y.index_select(0, idx)).pow(2);
      ProblemState s(loss_scale * loss.mean());
      s.observe(c, ConstraintState(constraint_scale * loss - constraint_scale * 0.05).indices(idx));
      return s;
    });
  }
  *multipliers = problem.multiplier_values(c);
  return x.detach().clone();
}

// The rule is invariant to the scale of the constraint (u scales as 1/s, the median rule reads
// only the order of the violations) and to the loss scale with the SGD step scaled inversely (u
// scales with the loss). Tolerance: as IsInvariantToTheScaleOfAConstraint.
TEST(Default, AnIndexedConstraintsRuleIsScaleInvariant) {
  torch::Tensor lam1, lam1000, lam_loss;
  const torch::Tensor x1 = run_per_example(1, 1, 0.1, &lam1);
  ASSERT_GT(lam1.max().item<double>(), 0) << "the rule moved no multiplier";
  const torch::Tensor x1000 = run_per_example(1, 1000, 0.1, &lam1000);
  EXPECT_TRUE(torch::allclose(x1, x1000, 0, 1e-12)) << x1 << x1000;
  EXPECT_TRUE(torch::allclose(lam1, lam1000 * 1000, 1e-10, 1e-12)) << lam1 << lam1000;
  const torch::Tensor x_loss = run_per_example(1e-3, 1, 100.0, &lam_loss);
  EXPECT_TRUE(torch::allclose(x1, x_loss, 0, 1e-12)) << x1 << x_loss;
  EXPECT_TRUE(torch::allclose(lam1 * 1e-3, lam_loss, 1e-10, 1e-15)) << lam1 << lam_loss;
  torch::Tensor unused;
  EXPECT_FALSE(torch::allclose(x1, run_per_example(1, 0, 0.1, &unused), 0, 1e-6))
      << "the constraint changed the trajectory";
}
