// Misuse that used to pass without a word: unobserved constraints, violations without a
// gradient, a start outside a projection's set, multipliers less precise than the violations,
// scalar-only box bounds, LibTorch's messages without the player, int32 indices, and getters
// that took names only. Each test fails on the old behaviour.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <string>
#include <vector>

#include "feasible/feasible.h"
#include "test_util.h"

namespace {

using feasible::ConstraintKind;
using feasible::ConstraintOptions;
using feasible::ConstraintState;
using feasible::Problem;
using feasible::ProblemState;
using feasible_test::dvec;
using feasible_test::error_of;
using feasible_test::to_vec;

std::shared_ptr<torch::optim::SGD> sgd(std::vector<torch::Tensor> params, double lr) {
  return std::make_shared<torch::optim::SGD>(std::move(params), torch::optim::SGDOptions(lr));
}

torch::Tensor f64_param(const std::vector<double>& v) { return dvec(v).requires_grad_(true); }

// Collects the warnings raised while it is installed.
struct WarningCollector : c10::WarningHandler {
  std::vector<std::string> messages;
  void process(const c10::SourceLocation&, const std::string& msg, const bool) override {
    messages.push_back(msg);
  }
};

ConstraintOptions f64_options(ConstraintKind kind = ConstraintKind::kInequality, int64_t size = 1) {
  return ConstraintOptions(kind, size).dtype(torch::kFloat64);
}

// ------------------------------------------------------------- 1. unobserved constraints

TEST(Unobserved, MaxViolationIsNaNAndTheRunIsWarnedOnceNamingThem) {
  Problem problem;
  auto seen = problem.add_constraint("seen", f64_options());
  problem.add_constraint("forgotten", f64_options());
  problem.add_constraint("also_forgotten", f64_options());
  auto x = f64_param({4.0});
  feasible::SimultaneousOptimizer opt(problem, {sgd({x}, 0.1)},
                                      sgd(problem.dual_parameters(), 0.1));
  WarningCollector warnings;
  c10::Warning::WarningHandlerGuard guard(&warnings);
  feasible::StepResult last;
  for (int t = 0; t < 3; ++t) {
    last = opt.step([&] {
      ProblemState st(x.pow(2).sum());
      st.observe(seen, ConstraintState(x - 10.0));  // satisfied: -6
      return st;
    });
  }
  // The observed constraint alone is feasible, but the step cannot vouch for the others.
  EXPECT_TRUE(std::isnan(last.max_violation()));
  EXPECT_FALSE(last.max_violation() <= 1e-3);
  EXPECT_EQ(last.unobserved(), (std::vector<std::string>{"forgotten", "also_forgotten"}));
  ASSERT_EQ(warnings.messages.size(), 1u) << "said once per optimizer, not once per step";
  EXPECT_HAS(warnings.messages[0], "'forgotten', 'also_forgotten'");
  EXPECT_HAS(warnings.messages[0], "occasional(true)");
  EXPECT_HAS(warnings.messages[0], "step 0");
}

TEST(Unobserved, OccasionalConstraintsAreExpectedToBeMissing) {
  Problem problem;
  auto every = problem.add_constraint("every", f64_options());
  auto sometimes = problem.add_constraint("sometimes", f64_options().occasional(true));
  auto x = f64_param({1.0});
  feasible::SimultaneousOptimizer opt(problem, {sgd({x}, 0.1)},
                                      sgd(problem.dual_parameters(), 0.1));
  WarningCollector warnings;
  c10::Warning::WarningHandlerGuard guard(&warnings);
  for (int t = 0; t < 4; ++t) {
    const auto r = opt.step([&] {
      ProblemState st(x.pow(2).sum());
      st.observe(every, ConstraintState(x - 0.5));  // 0.5 at t = 0
      if (t % 2 == 1) st.observe(sometimes, ConstraintState(x - 10.0));
      return st;
    });
    EXPECT_TRUE(r.unobserved().empty());
    EXPECT_FALSE(std::isnan(r.max_violation())) << "t = " << t;
    EXPECT_EQ(r.at("sometimes").observed, t % 2 == 1);
    EXPECT_TRUE(r.at("sometimes").occasional);
    if (t == 0) {
      EXPECT_NEAR(r.max_violation(), 0.5, 1e-12);
    }
  }
  EXPECT_TRUE(warnings.messages.empty());
  // A step that observes nothing at all vouches for nothing, occasional or not.
  Problem only_occasional;
  auto rare = only_occasional.add_constraint("rare", f64_options().occasional(true));
  feasible::SimultaneousOptimizer opt2(only_occasional, {sgd({x}, 0.1)},
                                       sgd(only_occasional.dual_parameters(), 0.1));
  const auto none = opt2.step([&] { return ProblemState(x.pow(2).sum()); });
  EXPECT_TRUE(std::isnan(none.max_violation()));
  const auto some = opt2.step([&] {
    ProblemState st(x.pow(2).sum());
    st.observe(rare, ConstraintState(x - 10.0));
    return st;
  });
  EXPECT_EQ(some.max_violation(), 0.0);
}

TEST(Unobserved, SkippedStepVouchesForNothing) {
  Problem problem;
  auto c = problem.add_constraint("c", f64_options());
  auto x = f64_param({1.0});
  feasible::SimultaneousOptimizer opt(
      problem, {sgd({x}, 0.1)}, sgd(problem.dual_parameters(), 0.1),
      feasible::ConstrainedOptimizerOptions().non_finite(feasible::NonFinitePolicy::kSkipStep));
  const auto r = opt.step([&] {
    ProblemState st(x.pow(2).sum() * std::numeric_limits<double>::quiet_NaN());
    st.observe(c, ConstraintState(x - 10.0));
    return st;
  });
  ASSERT_TRUE(r.skipped);
  EXPECT_TRUE(std::isnan(r.max_violation()));  // was 0: read as feasible
  EXPECT_TRUE(r.unobserved().empty());
}

// ------------------------------------------------------- 2. a violation without a gradient

TEST(ViolationWithoutGradient, IsRefusedNamingTheConstraintAndTheFix) {
  Problem problem;
  auto rate = problem.add_constraint("rate", f64_options());
  auto w = f64_param({0.3, -0.2});
  feasible::SimultaneousOptimizer opt(problem, {sgd({w}, 0.1)},
                                      sgd(problem.dual_parameters(), 0.1));
  const auto before = w.detach().clone();
  const std::string msg = error_of([&] {
    opt.step([&] {
      ProblemState st(w.pow(2).sum());
      // The classic mistake: a 0-1 rate (no gradient) as the violation.
      const auto hits = (w > 0).to(torch::kFloat64).mean();
      st.observe(rate, ConstraintState((hits - 0.3).reshape({1})));
      return st;
    });
  });
  EXPECT_HAS(msg, "constraint 'rate'");
  EXPECT_HAS(msg, "does not require a gradient");
  EXPECT_HAS(msg, "strict_violation");
  EXPECT_HAS(msg, "contributes_to_primal(false)");
  EXPECT_TRUE(torch::equal(w.detach(), before)) << "nothing was changed";
  EXPECT_EQ(problem.multiplier_values("rate").item<double>(), 0.0);

  // The proxy pairing is accepted, and so is a dual-only observation.
  const auto ok = opt.step([&] {
    ProblemState st(w.pow(2).sum());
    const auto hits = (w > 0).to(torch::kFloat64).mean();
    const auto surrogate = torch::sigmoid(w * 10).mean();
    st.observe(rate, ConstraintState((surrogate - 0.3).reshape({1}))
                         .strict_violation((hits - 0.3).reshape({1})));
    return st;
  });
  EXPECT_NEAR(ok.at("rate").strict_violation.item<double>(), 0.2, 1e-12);
  EXPECT_NO_THROW(opt.step([&] {
    ProblemState st(w.pow(2).sum());
    const auto hits = (w > 0).to(torch::kFloat64).mean();
    st.observe(rate, ConstraintState((hits - 0.3).reshape({1})).contributes_to_primal(false));
    return st;
  }));
}

TEST(ViolationWithoutGradient, ANoGradSecondEvaluationIsFine) {
  // AlternatingPrimalDual re-evaluates under no-grad: no gradient is expected there.
  Problem problem;
  auto c = problem.add_constraint("c", f64_options());
  auto x = f64_param({2.0});
  feasible::AlternatingPrimalDualOptimizer opt(problem, {sgd({x}, 0.1)},
                                               sgd(problem.dual_parameters(), 0.1));
  const auto r = opt.step([&] {
    ProblemState st(x.pow(2).sum());
    st.observe(c, ConstraintState(x - 1.0));
    return st;
  });
  // x_1 = 2 - 0.1 * 4 = 1.6; the dual step reads the second evaluation, 0.6.
  EXPECT_NEAR(x.item<double>(), 1.6, 1e-12);
  EXPECT_NEAR(problem.multiplier_values("c").item<double>(), 0.06, 1e-12);
  EXPECT_NEAR(r.at("c").violation.item<double>(), 1.0, 1e-12);
}

// ------------------------------------------------------------- 3. the start point

TEST(Projection, TheStartIsProjectedWhenTheProjectionIsAdded) {
  Problem problem;
  auto c = problem.add_constraint("c", f64_options());
  auto x = f64_param({5.0, -3.0});
  feasible::SimultaneousOptimizer opt(problem, {sgd({x}, 0.1)},
                                      sgd(problem.dual_parameters(), 0.1));
  opt.add_projection({x}, feasible::projection::box(0.0, 1.0));
  EXPECT_EQ(to_vec(x), (std::vector<double>{1.0, 0.0}));  // before any step
  EXPECT_TRUE(x.requires_grad());
  std::vector<double> seen;
  opt.step([&] {
    seen = to_vec(x);
    ProblemState st(x.pow(2).sum());
    st.observe(c, ConstraintState((x.sum() - 10.0).reshape({1})));
    return st;
  });
  EXPECT_EQ(seen, (std::vector<double>{1.0, 0.0})) << "the first evaluation is inside the set";
}

// ------------------------------------------------------------- 4. multiplier precision

TEST(MultiplierDtype, ALessPreciseMultiplierIsRefusedWithTheFix) {
  Problem problem;
  auto c = problem.add_constraint("budget");  // default dtype: float32
  auto x = f64_param({2.0});
  feasible::SimultaneousOptimizer opt(problem, {sgd({x}, 0.1)},
                                      sgd(problem.dual_parameters(), 0.1));
  const std::string msg = error_of([&] {
    opt.step([&] {
      ProblemState st(x.pow(2).sum());
      st.observe(c, ConstraintState(x - 1.0));
      return st;
    });
  });
  EXPECT_HAS(msg, "constraint 'budget'");
  EXPECT_HAS(msg, "the strict violation is Double but the multiplier is Float");
  EXPECT_HAS(msg, "ConstraintOptions().dtype(torch::kFloat64)");
  EXPECT_EQ(x.item<double>(), 2.0);
}

TEST(MultiplierDtype, AMatchingOrMorePreciseMultiplierIsAccepted) {
  // float64 multiplier with float64 violations: the dual step is exact to float64.
  Problem problem;
  auto c = problem.add_constraint("budget", f64_options());
  auto x = f64_param({2.0});
  feasible::SimultaneousOptimizer opt(problem, {sgd({x}, 0.1)},
                                      sgd(problem.dual_parameters(), 0.1));
  opt.step([&] {
    ProblemState st(x.pow(2).sum());
    st.observe(c, ConstraintState(x - 1.0 + 1e-9));
    return st;
  });
  EXPECT_NEAR(problem.multiplier_values("budget").item<double>(), 0.1 * (1.0 + 1e-9), 1e-16);
  // float64 multiplier with float32 violations: allowed (more precise than needed).
  Problem p32;
  auto c32 = p32.add_constraint("c", f64_options());
  auto y = torch::tensor({2.0f}, torch::requires_grad());
  feasible::SimultaneousOptimizer opt32(p32, {sgd({y}, 0.1)}, sgd(p32.dual_parameters(), 0.1));
  EXPECT_NO_THROW(opt32.step([&] {
    ProblemState st(y.pow(2).sum());
    st.observe(c32, ConstraintState(y - 1.0f));
    return st;
  }));
}

// ------------------------------------------------------------- 5. per-coordinate boxes

TEST(BoxProjection, PerCoordinateBoundsFromTensorsAndVectors) {
  auto p = dvec({-5.0, 0.5, 7.0});
  feasible::projection::box(dvec({0.0, 0.0, -1.0}), dvec({1.0, 0.25, 2.0}))(p);
  EXPECT_EQ(to_vec(p), (std::vector<double>{0.0, 0.25, 2.0}));

  // Vectors along the last dimension of a matrix, in float32; an open side with infinity.
  const double inf = std::numeric_limits<double>::infinity();
  auto m = torch::tensor({{-5.0f, 3.0f}, {0.5f, -9.0f}});
  feasible::projection::box(std::vector<double>{-1.0, -inf}, std::vector<double>{0.0, 2.0})(m);
  EXPECT_EQ(to_vec(m), (std::vector<double>{-1.0, 2.0, 0.0, -9.0}));
  EXPECT_EQ(m.scalar_type(), torch::kFloat);
}

TEST(BoxProjection, BadBoundsAreRefused) {
  using feasible::projection::box;
  EXPECT_HAS(error_of([] {
               box(dvec({0.0, 2.0}), dvec({1.0, 1.0}));
             }),
             "lower must be <= upper entry-wise, got lower = 2 > upper = 1 at flat entry 1");
  EXPECT_HAS(error_of([] {
               box(std::vector<double>{0.0}, std::vector<double>{1.0, 2.0});
             }),
             "lower has 1 entries and upper has 2");
  EXPECT_HAS(error_of([] { box(dvec({0.0, NAN}), dvec({1.0, 1.0})); }), "lower must not be NaN");
  EXPECT_HAS(error_of([] {
               box(dvec({0.0, 0.0}), dvec({1.0, 1.0, 1.0}));
             }),
             "do not broadcast to each other");
  // A shape that does not fit the parameter is refused when the projection is added.
  Problem problem;
  problem.add_constraint("c", f64_options());
  auto x = f64_param({1.0, 2.0, 3.0});
  feasible::SimultaneousOptimizer opt(problem, {sgd({x}, 0.1)},
                                      sgd(problem.dual_parameters(), 0.1));
  EXPECT_HAS(error_of([&] {
               opt.add_projection({x}, box(dvec({0.0, 0.0}), dvec({1.0, 1.0})));
             }),
             "do not broadcast to the parameter's shape [3]");
}

// ------------------------------------------------- 6. LibTorch's messages name the player

TEST(PlayerNamed, ANegativeGroupLearningRateNamesThePlayer) {
  Problem problem;
  problem.add_constraint("fairness", f64_options());
  auto x = f64_param({1.0});
  auto dual = sgd(problem.dual_parameters(), 0.1);
  dual->param_groups()[0].options().set_lr(-0.1);  // torch checks only its constructor's value
  EXPECT_HAS(error_of([&] { feasible::SimultaneousOptimizer(problem, {sgd({x}, 0.1)}, dual); }),
             "the dual optimizer (the multipliers of 'fairness'), parameter group 0: the "
             "learning rate must be finite and >= 0, got -0.1");
  auto primal = sgd({x}, 0.1);
  primal->param_groups()[0].options().set_lr(std::nan(""));
  EXPECT_HAS(error_of([&] {
               feasible::SimultaneousOptimizer(problem, {sgd({x}, 0.1), primal},
                                               sgd(problem.dual_parameters(), 0.1));
             }),
             "primal optimizer 1, parameter group 0: the learning rate must be finite");
}

TEST(PlayerNamed, AFailingDualStepNamesTheDualPlayerAndItsConstraints) {
  Problem problem;
  auto c = problem.add_constraint("per_example", f64_options(ConstraintKind::kInequality, 10)
                                                     .multiplier(feasible::MultiplierKind::kIndexed)
                                                     .sparse_gradient(true));
  auto x = f64_param({1.0});
  auto adam = std::make_shared<torch::optim::Adam>(problem.dual_parameters(),
                                                   torch::optim::AdamOptions(0.1));
  feasible::SimultaneousOptimizer opt(problem, {sgd({x}, 0.1)}, adam);
  const std::string msg = error_of([&] {
    opt.step([&] {
      ProblemState st(x.pow(2).sum());
      st.observe(c, ConstraintState(x.expand({2}) - 0.5).indices(torch::tensor({1, 4})));
      return st;
    });
  });
  EXPECT_HAS(msg, "the dual optimizer (the multipliers of 'per_example') failed: ");
  EXPECT_HAS(msg, "sparse");  // LibTorch's own reason follows
}

// ------------------------------------------------------------- 7. int32 indices

TEST(Indices, Int32IsConvertedAndGivesTheInt64Result) {
  std::vector<std::vector<double>> finals;
  for (auto type : {torch::kLong, torch::kInt, torch::kShort}) {
    Problem problem;
    auto c = problem.add_constraint(
        "rows",
        f64_options(ConstraintKind::kInequality, 6).multiplier(feasible::MultiplierKind::kIndexed));
    auto x = f64_param({1.0, 2.0});
    feasible::SimultaneousOptimizer opt(problem, {sgd({x}, 0.1)},
                                        sgd(problem.dual_parameters(), 0.5));
    const auto r = opt.step([&] {
      ProblemState st(x.pow(2).sum());
      st.observe(c, ConstraintState(x - 0.5).indices(torch::tensor({4, 1}, type)));
      return st;
    });
    EXPECT_EQ(r.at("rows").indices.scalar_type(), torch::kLong);
    finals.push_back(to_vec(problem.multiplier_values("rows")));
  }
  // lambda = 0.5 * (0.5, 1.5) at rows 4 and 1, for every index type.
  EXPECT_EQ(finals[0], (std::vector<double>{0.0, 0.75, 0.0, 0.0, 0.25, 0.0}));
  EXPECT_EQ(finals[1], finals[0]);
  EXPECT_EQ(finals[2], finals[0]);
}

// ------------------------------------------------------------- 8. getters take handles

TEST(Handles, GettersAcceptTheConstraintHandle) {
  Problem problem;
  auto lag = problem.add_constraint("lag", f64_options().init(0.25));
  auto al = problem.add_constraint(
      "al", f64_options(ConstraintKind::kEquality)
                .formulation(std::make_shared<feasible::AugmentedLagrangian>())
                .penalty(3.0));
  auto x = f64_param({1.0});
  feasible::SimultaneousOptimizer opt(problem, {sgd({x}, 0.1)},
                                      sgd(problem.dual_parameters(), 0.1));
  EXPECT_TRUE(torch::equal(problem.multiplier_values(lag), problem.multiplier_values("lag")));
  EXPECT_EQ(problem.multiplier_values(lag).item<double>(), 0.25);
  EXPECT_EQ(problem.penalty_values(al).item<double>(), 3.0);
  const auto r = opt.step([&] {
    ProblemState st(x.pow(2).sum());
    st.observe(al, ConstraintState(x - 2.0));
    st.observe(lag, ConstraintState(x - 0.5));
    return st;
  });
  EXPECT_EQ(&r.at(lag), &r.at("lag"));
  EXPECT_EQ(&r.at(al), &r.constraints[1]);

  Problem other;
  auto foreign = other.add_constraint("lag", f64_options());
  EXPECT_HAS(error_of([&] { problem.multiplier_values(foreign); }),
             "Problem::multiplier_values: constraint 'lag' belongs to another problem");
  EXPECT_HAS(error_of([&] { problem.penalty_values(feasible::Constraint()); }),
             "Problem::penalty_values: the constraint handle is empty");
  EXPECT_HAS(error_of([&] { r.at(feasible::Constraint()); }), "the constraint handle is empty");
  EXPECT_HAS(error_of([&] { r.at(foreign); }), "constraint 'lag' is not in this result");
  auto third = other.add_constraint("x", f64_options());
  EXPECT_HAS(error_of([&] { r.at(third); }), "constraint 'x' is not in this result");
}

}  // namespace
