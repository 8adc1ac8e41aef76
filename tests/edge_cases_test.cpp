// Edge cases found in review: lazy multipliers under extragradient, throws and skips at the
// extragradient half point, strict violations that alias a parameter, empty batches, penalty
// caps and overflow, options that cannot work together, and the primal-dual second evaluation.
#include <feasible/feasible.h>
#include <gtest/gtest.h>

#include <cfloat>
#include <string>

#include "test_util.h"

namespace {

using feasible_test::error_of;

auto f64() { return torch::TensorOptions().dtype(torch::kFloat64); }

}  // namespace

// An indexed lazy multiplier under ExtraAdam: an entry observed once keeps its value exactly
// in later steps that do not observe it (extrapolation and update both restore it).
TEST(EdgeCases, LazyIndexedMultiplierUnderExtragradientKeepsUnobservedRows) {
  auto x = torch::zeros({4}, f64()).requires_grad_(true);
  feasible::Problem problem;
  auto c = problem.add_constraint(
      "c", feasible::ConstraintOptions(feasible::ConstraintKind::kEquality, 4)
               .multiplier(feasible::MultiplierKind::kIndexed)
               .lazy(true)
               .dtype(torch::kFloat64));
  auto primal = std::make_shared<feasible::optim::ExtraSGD>(std::vector<torch::Tensor>{x},
                                                            feasible::optim::ExtraSGDOptions(0.1));
  auto dual = std::make_shared<feasible::optim::ExtraAdam>(problem.dual_parameters(),
                                                           feasible::optim::ExtraAdamOptions(0.1));
  feasible::ExtragradientOptimizer opt(problem, {primal}, dual);
  auto step = [&](int64_t i) {
    opt.step([&] {
      auto idx = torch::tensor({i}, torch::kLong);
      feasible::ProblemState s(x.pow(2).sum());
      s.observe(c, feasible::ConstraintState(x.index_select(0, idx) - 1.0).indices(idx));
      return s;
    });
  };
  step(1);
  const double after_first = problem.multiplier_values("c")[1].item<double>();
  EXPECT_NE(after_first, 0.0);  // it was observed, so it moved
  step(2);
  step(2);
  // Adam's momentum would move entry 1 without the lazy restore.
  EXPECT_EQ(problem.multiplier_values("c")[1].item<double>(), after_first);
}

// A throw raised after the half-point evaluation (here: an implicit multiplier that the
// extrapolation made negative) returns x and the multiplier model to the starting point.
TEST(EdgeCases, ExtragradientThrowAfterHalfPointRestoresTheStart) {
  auto x = torch::tensor({1.0}, f64()).requires_grad_(true);
  torch::nn::Linear model(torch::nn::LinearOptions(1, 1).bias(false));
  model->to(torch::kFloat64);
  {
    torch::NoGradGuard g;
    model->weight.fill_(0.05);
  }
  feasible::Problem problem;
  auto c = problem.add_constraint("c", feasible::ConstraintOptions()
                                           .multiplier(feasible::MultiplierKind::kImplicit)
                                           .implicit_model(torch::nn::AnyModule(model)));
  auto primal = std::make_shared<feasible::optim::ExtraSGD>(std::vector<torch::Tensor>{x},
                                                            feasible::optim::ExtraSGDOptions(0.01));
  auto dual = std::make_shared<feasible::optim::ExtraSGD>(problem.dual_parameters(),
                                                          feasible::optim::ExtraSGDOptions(1.0));
  feasible::ExtragradientOptimizer opt(problem, {primal}, dual);
  const auto features = torch::ones({1, 1}, f64());
  // The constraint holds (violation -1), so the dual ascent lowers the weight: 0.05 - 1.
  const std::string msg = error_of([&] {
    opt.step([&] {
      feasible::ProblemState s(x.pow(2).sum());
      s.observe(c, feasible::ConstraintState((x - 2.0).reshape({1})).features(features));
      return s;
    });
  });
  EXPECT_NE(msg.find("negative multiplier"), std::string::npos) << msg;
  EXPECT_EQ(x.item<double>(), 1.0);
  EXPECT_EQ(model->weight.item<double>(), 0.05);
  EXPECT_FALSE(primal->extrapolated());
  EXPECT_FALSE(dual->extrapolated());
}

// A model that returns one value for three observed entries would be broadcast in the
// Lagrangian term; it is refused, naming both counts, before anything moves.
TEST(EdgeCases, AnImplicitModelMustReturnOneMultiplierPerEntry) {
  auto x = torch::tensor({1.0, 2.0, 3.0}, f64()).requires_grad_(true);
  struct Pooled : torch::nn::Module {
    torch::Tensor w = register_parameter("w", torch::ones({2}, f64()));
    torch::Tensor forward(const torch::Tensor& f) { return (f.matmul(w)).mean().reshape({1}); }
  };
  auto model = std::make_shared<Pooled>();
  feasible::Problem problem;
  auto c = problem.add_constraint(
      "c", feasible::ConstraintOptions(feasible::ConstraintKind::kEquality, 3)
               .multiplier(feasible::MultiplierKind::kImplicit)
               .implicit_model(torch::nn::AnyModule(model))
               .dtype(torch::kFloat64));
  auto primal = std::make_shared<torch::optim::SGD>(std::vector<torch::Tensor>{x},
                                                    torch::optim::SGDOptions(0.1));
  auto dual =
      std::make_shared<torch::optim::SGD>(problem.dual_parameters(), torch::optim::SGDOptions(0.1));
  feasible::SimultaneousOptimizer opt(problem, {primal}, dual);
  const std::string msg = error_of([&] {
    opt.step([&] {
      feasible::ProblemState s(x.pow(2).sum());
      s.observe(c, feasible::ConstraintState(x - 1.0).features(torch::ones({3, 2}, f64())));
      return s;
    });
  });
  EXPECT_HAS(msg, "the model returned 1 values for 3 observed entries");
  EXPECT_HAS(msg, "shape [n] or [n, 1]");
  EXPECT_TRUE(torch::equal(x.detach(), torch::tensor({1.0, 2.0, 3.0}, f64())));
  EXPECT_TRUE(torch::equal(model->w.detach(), torch::ones({2}, f64())));
}

// AlternatingPrimalDual: an implicit model that turns negative at x_{t+1} fails while the dual
// gradients of the second evaluation are written. The message says what became of the primal
// step: taken under kThrow (x moved), undone under kSkipStep (x restored).
TEST(EdgeCases, AlternatingPrimalDualSaysWhatBecameOfThePrimalStepWhenTheModelFails) {
  for (const auto policy :
       {feasible::NonFinitePolicy::kThrow, feasible::NonFinitePolicy::kSkipStep}) {
    auto x = torch::tensor({0.5}, f64()).requires_grad_(true);
    torch::nn::Linear model(torch::nn::LinearOptions(1, 1).bias(false));
    model->to(torch::kFloat64);
    {
      torch::NoGradGuard g;
      model->weight.fill_(1.0);  // lambda = x: 0.5 at x_t, -1.65 after the primal step
    }
    feasible::Problem problem;
    auto c = problem.add_constraint("c", feasible::ConstraintOptions()
                                             .multiplier(feasible::MultiplierKind::kImplicit)
                                             .implicit_model(torch::nn::AnyModule(model))
                                             .dtype(torch::kFloat64));
    auto primal = std::make_shared<torch::optim::SGD>(std::vector<torch::Tensor>{x},
                                                      torch::optim::SGDOptions(0.1));
    auto dual = std::make_shared<torch::optim::SGD>(problem.dual_parameters(),
                                                    torch::optim::SGDOptions(0.1));
    feasible::AlternatingPrimalDualOptimizer opt(
        problem, {primal}, dual, feasible::ConstrainedOptimizerOptions().non_finite(policy));
    const std::string msg = error_of([&] {
      opt.step([&] {
        feasible::ProblemState s((x + 10.0).pow(2).sum());
        s.observe(c, feasible::ConstraintState(x - 1.0).features(x.detach().reshape({1, 1})));
        return s;
      });
    });
    EXPECT_HAS(msg, "negative multiplier");
    if (policy == feasible::NonFinitePolicy::kThrow) {
      EXPECT_HAS(msg, "second evaluation, after the primal step was taken");
      // grad = 2 (x + 10) + lambda = 21 + 0.5.
      EXPECT_DOUBLE_EQ(x.item<double>(), 0.5 - 0.1 * (2.0 * 10.5 + 0.5));
    } else {
      EXPECT_HAS(msg, "second evaluation (the primal step was undone)");
      EXPECT_EQ(x.item<double>(), 0.5);
    }
    EXPECT_EQ(model->weight.item<double>(), 1.0);  // no dual step
  }
}

// A strict violation that is the parameter itself is read at x_t by the penalty updater and in
// the result, although the primal step changes x in place.
TEST(EdgeCases, StrictViolationAliasingAParameterIsReadBeforeTheStep) {
  auto x = torch::tensor({0.5}, f64()).requires_grad_(true);
  feasible::Problem problem;
  auto c = problem.add_constraint(
      "c", feasible::ConstraintOptions()
               .formulation(std::make_shared<feasible::QuadraticPenalty>())
               .penalty_updater(std::make_shared<feasible::MultiplicativePenaltyUpdater>(
                   2.0, feasible::PenaltyUpdaterOptions().tolerance(0.0)))
               .dtype(torch::kFloat64));
  auto primal = std::make_shared<torch::optim::SGD>(std::vector<torch::Tensor>{x},
                                                    torch::optim::SGDOptions(10.0));
  feasible::UnconstrainedOptimizer opt(problem, {primal});
  auto r = opt.step([&] {
    feasible::ProblemState s(torch::zeros({}, f64()));
    s.observe(c, feasible::ConstraintState(x * 1.0).strict_violation(x));
    return s;
  });
  // x_1 = 0.5 - 10 * c * [x]+ = -4.5; the updater must have seen s = 0.5 > 0 and doubled c.
  EXPECT_DOUBLE_EQ(x.item<double>(), -4.5);
  EXPECT_DOUBLE_EQ(r.at("c").strict_violation.item<double>(), 0.5);
  EXPECT_DOUBLE_EQ(problem.penalty_values("c").item<double>(), 2.0);
}

// A step that observes no entry of an indexed constraint neither grows nor restarts its
// scalar penalty (an empty "all satisfied" is not a reason to restart).
TEST(EdgeCases, EmptyBatchDoesNotRestartAScalarPenalty) {
  feasible::PenaltyCoefficient penalty(1.0, 4, false, f64());
  feasible::MultiplicativePenaltyUpdater updater(
      2.0, feasible::PenaltyUpdaterOptions().restart_on_feasible(true));
  updater.update(penalty, torch::tensor({0.5}, f64()), torch::tensor({1}, torch::kLong),
                 feasible::ConstraintKind::kInequality);
  EXPECT_DOUBLE_EQ(penalty.value().item<double>(), 2.0);
  updater.update(penalty, torch::zeros({0}, f64()), torch::zeros({0}, torch::kLong),
                 feasible::ConstraintKind::kInequality);
  EXPECT_DOUBLE_EQ(penalty.value().item<double>(), 2.0);
}

// Growth stops at the largest finite value of the dtype instead of reaching Inf.
TEST(EdgeCases, PenaltyGrowthStaysFinite) {
  feasible::PenaltyCoefficient penalty(1.0, 1, false, torch::TensorOptions(torch::kFloat32));
  feasible::MultiplicativePenaltyUpdater updater(1e30);
  for (int i = 0; i < 3; ++i) {
    updater.update(penalty, torch::tensor({1.0f}), torch::Tensor(),
                   feasible::ConstraintKind::kEquality);
  }
  EXPECT_EQ(penalty.value().item<float>(), FLT_MAX);
}

TEST(EdgeCases, PenaltyCapBelowInitialValueIsRejected) {
  feasible::Problem problem;
  const std::string msg = error_of([&] {
    problem.add_constraint("c",
                           feasible::ConstraintOptions()
                               .formulation(std::make_shared<feasible::AugmentedLagrangian>())
                               .penalty(10.0)
                               .penalty_updater(std::make_shared<feasible::AdditivePenaltyUpdater>(
                                   1.0, feasible::PenaltyUpdaterOptions().max_value(5.0))));
  });
  EXPECT_NE(msg.find("'c'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("max_value (5)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("penalty (10)"), std::string::npos) << msg;
}

TEST(EdgeCases, PenaltyThatUnderflowsInItsDtypeIsRejected) {
  feasible::Problem problem;
  const std::string msg = error_of([&] {
    problem.add_constraint("c", feasible::ConstraintOptions()
                                    .formulation(std::make_shared<feasible::QuadraticPenalty>())
                                    .penalty(1e-50)
                                    .dtype(torch::kFloat32));
  });
  EXPECT_NE(msg.find("underflows"), std::string::npos) << msg;
}

TEST(EdgeCases, MaxMultiplierOnAnImplicitMultiplierIsRejected) {
  feasible::Problem problem;
  const std::string msg = error_of([&] {
    problem.add_constraint("c", feasible::ConstraintOptions()
                                    .multiplier(feasible::MultiplierKind::kImplicit)
                                    .implicit_model(torch::nn::AnyModule(torch::nn::Linear(1, 1)))
                                    .max_multiplier(3.0));
  });
  EXPECT_NE(msg.find("max_multiplier"), std::string::npos) << msg;
  EXPECT_NE(msg.find("implicit"), std::string::npos) << msg;
}

TEST(EdgeCases, SparseGradientWithExtragradientIsRejected) {
  auto x = torch::zeros({2}, f64()).requires_grad_(true);
  feasible::Problem problem;
  problem.add_constraint("rows", feasible::ConstraintOptions(feasible::ConstraintKind::kEquality, 2)
                                     .multiplier(feasible::MultiplierKind::kIndexed)
                                     .sparse_gradient(true));
  auto primal = std::make_shared<feasible::optim::ExtraSGD>(std::vector<torch::Tensor>{x},
                                                            feasible::optim::ExtraSGDOptions(0.1));
  auto dual = std::make_shared<feasible::optim::ExtraSGD>(problem.dual_parameters(),
                                                          feasible::optim::ExtraSGDOptions(0.1));
  const std::string msg =
      error_of([&] { feasible::ExtragradientOptimizer opt(problem, {primal}, dual); });
  EXPECT_NE(msg.find("'rows'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("sparse_gradient"), std::string::npos) << msg;
}

// Primal-dual: a NaN in the second evaluation is reported as such, and under kSkipStep the
// primal step already taken is undone.
TEST(EdgeCases, PrimalDualSecondEvaluationSkipSaysSo) {
  auto x = torch::tensor({1.0}, f64()).requires_grad_(true);
  feasible::Problem problem;
  auto c = problem.add_constraint("c", feasible::ConstraintOptions().dtype(torch::kFloat64));
  auto primal = std::make_shared<torch::optim::SGD>(std::vector<torch::Tensor>{x},
                                                    torch::optim::SGDOptions(0.1));
  auto dual =
      std::make_shared<torch::optim::SGD>(problem.dual_parameters(), torch::optim::SGDOptions(0.1));
  feasible::AlternatingPrimalDualOptimizer opt(
      problem, {primal}, dual,
      feasible::ConstrainedOptimizerOptions().non_finite(feasible::NonFinitePolicy::kSkipStep));
  auto result = opt.step(
      [&] {
        feasible::ProblemState s(x.pow(2).sum());
        s.observe(c, feasible::ConstraintState(x - 2.0));
        return s;
      },
      [&] {
        feasible::ProblemState s;
        s.observe(c, feasible::ConstraintState(torch::full({1}, NAN, f64())));
        return s;
      });
  EXPECT_TRUE(result.skipped);
  EXPECT_EQ(result.skip_reason.rfind("second evaluation: ", 0), 0u) << result.skip_reason;
  EXPECT_DOUBLE_EQ(x.item<double>(), 1.0);  // the primal step (to 1 - 0.1 * 2) was undone
  EXPECT_EQ(problem.multiplier_values("c")[0].item<double>(), 0.0);
}

// The step clears the primal gradients with the primal optimizers' zero_grad() before it calls
// the closure (zeros under LibTorch 1.x, none under 2.x): the closure sees no leftover, a
// parameter the Lagrangian reaches gets this step's gradient alone (not added to a leftover
// one), and one it does not reach is left with no gradient, or a zero one, and unchanged.
TEST(EdgeCases, StepClearsThePrimalGradientsBeforeTheClosure) {
  auto x = torch::tensor({1.0}, f64()).requires_grad_(true);
  auto y = torch::tensor({3.0}, f64()).requires_grad_(true);
  x.mutable_grad() = torch::full({1}, 100.0, f64());  // leftovers of the user's own code
  y.mutable_grad() = torch::full({1}, 7.0, f64());
  feasible::Problem problem;
  auto c = problem.add_constraint("c", feasible::ConstraintOptions().dtype(torch::kFloat64));
  auto primal = std::make_shared<torch::optim::SGD>(std::vector<torch::Tensor>{x, y},
                                                    torch::optim::SGDOptions(0.1));
  auto dual =
      std::make_shared<torch::optim::SGD>(problem.dual_parameters(), torch::optim::SGDOptions(0.1));
  feasible::SimultaneousOptimizer opt(problem, {primal}, dual);
  auto cleared = [](const torch::Tensor& p) {
    return !p.grad().defined() || p.grad().abs().max().item<double>() == 0.0;
  };
  bool saw_leftover = true;
  opt.step([&] {
    saw_leftover = !cleared(x) || !cleared(y);
    feasible::ProblemState s(x.pow(2).sum());
    s.observe(c, feasible::ConstraintState(x - 2.0));
    return s;
  });
  EXPECT_FALSE(saw_leftover);
  ASSERT_TRUE(x.grad().defined());
  EXPECT_EQ(x.grad().item<double>(), 2.0);  // d x^2 / dx at 1 (lambda starts at 0)
  EXPECT_EQ(x.item<double>(), 1.0 - 0.1 * 2.0);
  EXPECT_TRUE(cleared(y));
  EXPECT_EQ(y.item<double>(), 3.0);
}
