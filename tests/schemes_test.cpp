// Several primal optimizers in one scheme (SGD for some parameters, Adam for others), checked
// against hand-written updates; and the version constant.
#include <feasible/feasible.h>
#include <gtest/gtest.h>

#include <cmath>

namespace {
auto f64() { return torch::TensorOptions().dtype(torch::kFloat64); }
}  // namespace

// min ||x - a||^2 + ||y - b||^2  s.t.  x_0 + y_0 - 1 <= 0, Lagrangian, lambda_0 = 0.5.
// One simultaneous step with SGD(0.1) on x, Adam(0.01) on y and SGD(0.2) on lambda.
TEST(Schemes, SgdForSomeParametersAdamForOthers) {
  const double ax[2] = {2.0, -1.0}, by[2] = {3.0, 0.5};
  auto x = torch::tensor({0.5, 0.25}, f64()).requires_grad_(true);
  auto y = torch::tensor({1.0, -2.0}, f64()).requires_grad_(true);
  const auto a = torch::tensor({ax[0], ax[1]}, f64());
  const auto b = torch::tensor({by[0], by[1]}, f64());

  feasible::Problem problem;
  auto g =
      problem.add_constraint("g", feasible::ConstraintOptions().init(0.5).dtype(torch::kFloat64));
  auto sgd = std::make_shared<torch::optim::SGD>(std::vector<torch::Tensor>{x},
                                                 torch::optim::SGDOptions(0.1));
  auto adam = std::make_shared<torch::optim::Adam>(std::vector<torch::Tensor>{y},
                                                   torch::optim::AdamOptions(0.01));
  auto dual =
      std::make_shared<torch::optim::SGD>(problem.dual_parameters(), torch::optim::SGDOptions(0.2));
  feasible::SimultaneousOptimizer opt(problem, {sgd, adam}, dual);
  auto result = opt.step([&] {
    feasible::ProblemState s((x - a).pow(2).sum() + (y - b).pow(2).sum());
    s.observe(g, feasible::ConstraintState(x[0] + y[0] - 1.0));
    return s;
  });

  // Hand computation. Gradients of L = f + 0.5 (x0 + y0 - 1):
  const double lam = 0.5;
  const double gx0 = 2 * (0.5 - ax[0]) + lam, gx1 = 2 * (0.25 - ax[1]);
  const double gy0 = 2 * (1.0 - by[0]) + lam, gy1 = 2 * (-2.0 - by[1]);
  // SGD: x - 0.1 g.  Adam, first step: m_hat = g, v_hat = g^2, so y - 0.01 g / (|g| + 1e-8).
  EXPECT_NEAR(x[0].item<double>(), 0.5 - 0.1 * gx0, 1e-14);
  EXPECT_NEAR(x[1].item<double>(), 0.25 - 0.1 * gx1, 1e-14);
  EXPECT_NEAR(y[0].item<double>(), 1.0 - 0.01 * gy0 / (std::abs(gy0) + 1e-8), 1e-12);
  EXPECT_NEAR(y[1].item<double>(), -2.0 - 0.01 * gy1 / (std::abs(gy1) + 1e-8), 1e-12);
  // Dual: lambda + 0.2 * (x0 + y0 - 1) at the evaluation point, projected onto >= 0.
  const double v = 0.5 + 1.0 - 1.0;
  EXPECT_NEAR(problem.multiplier_values("g")[0].item<double>(), std::max(0.0, lam + 0.2 * v),
              1e-14);
  EXPECT_NEAR(result.at("g").violation.item<double>(), v, 1e-14);
  EXPECT_NEAR(result.at("g").multiplier.item<double>(), lam, 1e-14);
}

// Both primal optimizers are stepped even when one of them holds parameters that the
// Lagrangian does not reach (their gradient stays undefined and they do not move).
TEST(Schemes, UnreachedPrimalParametersDoNotMove) {
  auto x = torch::tensor({1.0}, f64()).requires_grad_(true);
  auto unused = torch::tensor({7.0}, f64()).requires_grad_(true);
  feasible::Problem problem;
  auto g = problem.add_constraint("g", feasible::ConstraintOptions().dtype(torch::kFloat64));
  auto sgd = std::make_shared<torch::optim::SGD>(std::vector<torch::Tensor>{x},
                                                 torch::optim::SGDOptions(0.1));
  auto adam = std::make_shared<torch::optim::Adam>(std::vector<torch::Tensor>{unused},
                                                   torch::optim::AdamOptions(0.1));
  auto dual =
      std::make_shared<torch::optim::SGD>(problem.dual_parameters(), torch::optim::SGDOptions(0.1));
  feasible::AlternatingDualPrimalOptimizer opt(problem, {sgd, adam}, dual);
  for (int t = 0; t < 3; ++t) {
    opt.step([&] {
      feasible::ProblemState s(x.pow(2).sum());
      s.observe(g, feasible::ConstraintState(0.5 - x.sum()));
      return s;
    });
  }
  EXPECT_EQ(unused.item<double>(), 7.0);
  EXPECT_NE(x.item<double>(), 1.0);
}

TEST(Version, IsSemantic) {
  const std::string v = feasible::kVersion;
  EXPECT_EQ(std::count(v.begin(), v.end(), '.'), 2) << v;
}

// Backward passes per step, counted by a hook on the primal parameter: dense and indexed
// multipliers get their dual gradient written directly, so the simultaneous and dual-primal
// schemes need one; primal-dual one (its second evaluation is under no-grad); extragradient two.
template <typename Scheme>
int backward_passes_per_step(bool extra) {
  auto x = torch::tensor({1.0, -1.0}, f64()).requires_grad_(true);
  int calls = 0;
  x.register_hook([&calls](torch::Tensor) { ++calls; });
  feasible::Problem problem;
  auto dense =
      problem.add_constraint("dense", feasible::ConstraintOptions().dtype(torch::kFloat64));
  auto indexed = problem.add_constraint(
      "indexed", feasible::ConstraintOptions(feasible::ConstraintKind::kEquality, 2)
                     .multiplier(feasible::MultiplierKind::kIndexed)
                     .dtype(torch::kFloat64));
  std::shared_ptr<torch::optim::Optimizer> primal, dual;
  if (extra) {
    primal = std::make_shared<feasible::optim::ExtraSGD>(std::vector<torch::Tensor>{x},
                                                         feasible::optim::ExtraSGDOptions(0.1));
    dual = std::make_shared<feasible::optim::ExtraSGD>(problem.dual_parameters(),
                                                       feasible::optim::ExtraSGDOptions(0.1));
  } else {
    primal = std::make_shared<torch::optim::SGD>(std::vector<torch::Tensor>{x},
                                                 torch::optim::SGDOptions(0.1));
    dual = std::make_shared<torch::optim::SGD>(problem.dual_parameters(),
                                               torch::optim::SGDOptions(0.1));
  }
  Scheme opt(problem, {primal}, dual);
  const int steps = 4;
  for (int t = 0; t < steps; ++t) {
    opt.step([&] {
      feasible::ProblemState s(x.pow(2).sum());
      s.observe(dense, feasible::ConstraintState(1.0 - x.sum()));
      auto idx = torch::tensor({t % 2}, torch::kLong);
      s.observe(indexed, feasible::ConstraintState(x.index_select(0, idx) - 0.2).indices(idx));
      return s;
    });
  }
  EXPECT_EQ(calls % steps, 0);
  return calls / steps;
}

TEST(Schemes, BackwardPassesPerStep) {
  EXPECT_EQ(backward_passes_per_step<feasible::SimultaneousOptimizer>(false), 1);
  EXPECT_EQ(backward_passes_per_step<feasible::AlternatingDualPrimalOptimizer>(false), 1);
  EXPECT_EQ(backward_passes_per_step<feasible::AlternatingPrimalDualOptimizer>(false), 1);
  EXPECT_EQ(backward_passes_per_step<feasible::ExtragradientOptimizer>(true), 2);
}

// Under LibTorch 1.x the optimizers' zero_grad() fills defined gradients with zeros; under 2.x it
// sets them to none. The step's gradients match the linked version's either way.
constexpr bool kZeroGradKeeps = TORCH_VERSION_MAJOR < 2;

// The gradients a step leaves are those of the optimizers' zero_grad() followed by the backward
// pass: the step hands each parameter the gradient tensor that the backward pass computed
// instead of adding it to zeros, and (LibTorch 1.x) gives the parameters it did not reach their
// zeroed gradient back, so that Adam moves them by their momentum exactly as after zero_grad().
// Checked against the hand-written simultaneous loop for three steps: x always reached, u
// reached in the first step only.
TEST(Schemes, GradientsAreThoseOfZeroGradThenBackward) {
  auto run = [](bool library, torch::Tensor& x, torch::Tensor& u) {
    x = torch::tensor({1.0, -0.5}, f64()).requires_grad_(true);
    u = torch::tensor({2.0}, f64()).requires_grad_(true);
    auto adam = std::make_shared<torch::optim::Adam>(std::vector<torch::Tensor>{x, u},
                                                     torch::optim::AdamOptions(0.1));
    auto loss = [&](int t) {
      torch::Tensor f = x.pow(2).sum();
      return t == 0 ? f + 3.0 * u.sum() : f;
    };
    auto violation = [&] { return 0.5 - x.sum(); };
    if (library) {
      feasible::Problem problem;
      auto g = problem.add_constraint("g", feasible::ConstraintOptions().dtype(torch::kFloat64));
      auto dual = std::make_shared<torch::optim::SGD>(problem.dual_parameters(),
                                                      torch::optim::SGDOptions(0.1));
      feasible::SimultaneousOptimizer opt(problem, {adam}, dual);
      for (int t = 0; t < 3; ++t) {
        opt.step([&] {
          feasible::ProblemState s(loss(t));
          s.observe(g, feasible::ConstraintState(violation()));
          return s;
        });
      }
      return;
    }
    auto lam = torch::zeros({}, f64());
    for (int t = 0; t < 3; ++t) {
      adam->zero_grad();
      torch::Tensor v = violation();
      (loss(t) + lam * v).backward();
      adam->step();
      torch::NoGradGuard no_grad;
      lam.add_(v.detach(), 0.1).clamp_min_(0.0);
    }
  };
  torch::Tensor x, u, hx, hu;
  run(true, x, u);
  run(false, hx, hu);
  ASSERT_EQ(u.grad().defined(), kZeroGradKeeps);
  if (kZeroGradKeeps) {
    EXPECT_EQ(u.grad().item<double>(), 0.0);
    EXPECT_LT(u.item<double>(), 2.0 - 0.1 - 0.1);  // moved on by momentum after the first step
  }
  EXPECT_TRUE(torch::equal(x.grad(), hx.grad()));
  EXPECT_TRUE(torch::allclose(u, hu, 0.0, 1e-14));
  EXPECT_TRUE(torch::allclose(x, hx, 0.0, 1e-14));
}

// A step that ends early, by an exception from the closure or by a skipped non-finite loss,
// leaves the primal gradients as zero_grad() does: zeroed (LibTorch 1.x) or none (2.x).
TEST(Schemes, AStepThatEndsEarlyLeavesTheGradientsOfZeroGrad) {
  auto x = torch::tensor({1.0, -0.5}, f64()).requires_grad_(true);
  x.mutable_grad() = torch::tensor({4.0, 5.0}, f64());
  feasible::Problem problem;
  auto sgd = std::make_shared<torch::optim::SGD>(std::vector<torch::Tensor>{x},
                                                 torch::optim::SGDOptions(0.1));
  feasible::UnconstrainedOptimizer opt(
      problem, {sgd},
      feasible::ConstrainedOptimizerOptions().non_finite(feasible::NonFinitePolicy::kSkipStep));
  auto expect_zero_grad = [&] {
    ASSERT_EQ(x.grad().defined(), kZeroGradKeeps);
    if (kZeroGradKeeps) {
      EXPECT_TRUE(torch::equal(x.grad(), torch::zeros({2}, f64())));
    }
  };
  EXPECT_THROW(opt.step([&]() -> feasible::ProblemState { throw std::runtime_error("user"); }),
               std::runtime_error);
  expect_zero_grad();
  x.mutable_grad() = torch::tensor({7.0, 7.0}, f64());
  const auto r = opt.step([&] { return feasible::ProblemState(x.sum() * NAN); });
  EXPECT_TRUE(r.skipped);
  expect_zero_grad();
  EXPECT_TRUE(torch::equal(x, torch::tensor({1.0, -0.5}, f64())));
}

// A released gradient that zeros_like(p) would not give back exactly (here strides other than
// p's) is kept through the backward pass and, for a parameter the pass did not reach, given
// back zeroed: the same tensor, as zero_grad() leaves it (LibTorch 1.x).
TEST(Schemes, AnUnreachedGradientOfItsOwnLayoutIsZeroedInPlace) {
  if (!kZeroGradKeeps) GTEST_SKIP() << "LibTorch 2.x: zero_grad() sets gradients to none";
  auto x = torch::tensor({1.0}, f64()).requires_grad_(true);
  auto u = torch::ones({2, 3}, f64()).requires_grad_(true);
  u.mutable_grad() = torch::full({3, 2}, 5.0, f64()).t();  // strides {1, 2}; u has {3, 1}
  const void* storage = u.grad().data_ptr();
  feasible::Problem problem;
  auto sgd = std::make_shared<torch::optim::SGD>(std::vector<torch::Tensor>{x, u},
                                                 torch::optim::SGDOptions(0.1));
  feasible::UnconstrainedOptimizer opt(problem, {sgd});
  opt.step([&] { return feasible::ProblemState(x.pow(2).sum()); });
  ASSERT_TRUE(u.grad().defined());
  EXPECT_EQ(u.grad().data_ptr(), storage);
  EXPECT_EQ(u.grad().strides(), (std::vector<int64_t>{1, 2}));  // [3, 2] transposed
  EXPECT_TRUE(torch::equal(u.grad(), torch::zeros({2, 3}, f64())));
  EXPECT_TRUE(torch::equal(u, torch::ones({2, 3}, f64())));
  EXPECT_NEAR(x.item<double>(), 1.0 - 0.1 * 2.0, 1e-15);
}

// Every scheme leaves the gradients of zero_grad() and backward(): after a step whose
// Lagrangian does not reach u (it did in the first step), u's gradient is defined and zero under
// LibTorch 1.x (none under 2.x), and x's is the last backward pass's alone, not a sum. The
// constraint x0 + x1 <= 100 holds throughout, so lambda stays 0 and the Lagrangian's gradient
// is 2 x at the point of the last backward pass: x_t for one pass with SGD(0.1), so x_{t+1} =
// 0.8 x_t and the gradient is 2.5 x_{t+1}; for extragradient the extrapolated point 0.8 x_t,
// x_{t+1} = x_t - 0.1 * 1.6 x_t = 0.84 x_t, so the gradient is (1.6 / 0.84) x_{t+1}.
template <typename Scheme>
void expect_gradients_of_zero_grad(bool extra) {
  auto x = torch::tensor({1.0, 2.0}, f64()).requires_grad_(true);
  auto u = torch::tensor({3.0}, f64()).requires_grad_(true);
  feasible::Problem problem;
  auto g = problem.add_constraint("g", feasible::ConstraintOptions().dtype(torch::kFloat64));
  std::shared_ptr<torch::optim::Optimizer> primal, dual;
  const std::vector<torch::Tensor> params{x, u};
  if (extra) {
    primal =
        std::make_shared<feasible::optim::ExtraSGD>(params, feasible::optim::ExtraSGDOptions(0.1));
    dual = std::make_shared<feasible::optim::ExtraSGD>(problem.dual_parameters(),
                                                       feasible::optim::ExtraSGDOptions(0.1));
  } else {
    primal = std::make_shared<torch::optim::SGD>(params, torch::optim::SGDOptions(0.1));
    dual = std::make_shared<torch::optim::SGD>(problem.dual_parameters(),
                                               torch::optim::SGDOptions(0.1));
  }
  Scheme opt(problem, {primal}, dual);
  for (int t = 0; t < 2; ++t) {
    opt.step([&] {
      torch::Tensor f = x.pow(2).sum();
      feasible::ProblemState s(t == 0 ? f + u.sum() : f);
      s.observe(g, feasible::ConstraintState(x.sum() - 100.0));
      return s;
    });
  }
  ASSERT_EQ(u.grad().defined(), kZeroGradKeeps);
  if (kZeroGradKeeps) {
    EXPECT_EQ(u.grad().item<double>(), 0.0);
  }
  ASSERT_TRUE(x.grad().defined());
  const double factor = extra ? 1.6 / 0.84 : 2.5;
  EXPECT_TRUE(torch::allclose(x.grad(), factor * x.detach(), 1e-14, 0.0));
}

TEST(Schemes, EverySchemeLeavesTheGradientsOfZeroGradThenBackward) {
  expect_gradients_of_zero_grad<feasible::SimultaneousOptimizer>(false);
  expect_gradients_of_zero_grad<feasible::AlternatingDualPrimalOptimizer>(false);
  expect_gradients_of_zero_grad<feasible::AlternatingPrimalDualOptimizer>(false);
  expect_gradients_of_zero_grad<feasible::ExtragradientOptimizer>(true);
}
