// Invalid input -> message text. Every bad input must throw a c10::Error whose message names
// the constraint (or option), the value received and the rule, and it must throw BEFORE any
// primal parameter, multiplier, penalty coefficient or optimizer state is modified. Also the
// non-finite policies (throw / skip the step), including the extragradient half point, and the
// validation of optimizer options, projections and lookups.
#include <feasible/feasible.h>
#include <gtest/gtest.h>

#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "test_util.h"

namespace {

using feasible_test::error_of;

using feasible::ConstraintKind;
using feasible::ConstraintOptions;
using feasible::ConstraintState;
using feasible::MultiplierKind;
using feasible::NonFinitePolicy;
using feasible::ProblemState;

const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

// Runs `f`, expects a c10::Error, and returns its message (without the backtrace).

void expect_has_all(const std::string& msg, const std::vector<std::string>& pieces) {
  for (const auto& p : pieces) EXPECT_HAS(msg, p);
}

// Everything a step could modify, cloned.
struct Snapshot {
  torch::Tensor x;
  std::vector<torch::Tensor> multipliers;
  std::vector<torch::Tensor> penalties;
  size_t adam_states = 0;
  std::vector<int64_t> adam_steps;
  std::vector<torch::Tensor> adam_tensors;
  std::vector<bool> nupi_has_state;
  std::vector<int64_t> nupi_steps;
  std::vector<torch::Tensor> nupi_tensors;
  int64_t iteration = 0;
};

// A problem with three kinds of constraints (dense inequality with a Lagrangian, equality with an
// Augmented Lagrangian and a penalty updater, indexed inequality), Adam for x and NuPI (with a
// proportional term, so it keeps state) for the multipliers.
struct Rig {
  torch::Tensor x = torch::tensor({1.0, -0.5, 2.0}).requires_grad_();
  feasible::Problem problem;
  feasible::Constraint ineq, eq, idx;
  std::shared_ptr<torch::optim::Adam> primal;
  std::shared_ptr<feasible::optim::NuPI> dual;
  std::unique_ptr<feasible::ConstrainedOptimizer> opt;

  Rig() {
    ineq =
        problem.add_constraint("ineq", ConstraintOptions(ConstraintKind::kInequality, 3).init(0.5));
    eq = problem.add_constraint(
        "eq", ConstraintOptions(ConstraintKind::kEquality, 1)
                  .formulation(std::make_shared<feasible::AugmentedLagrangian>())
                  .penalty(1.0)
                  .penalty_updater(std::make_shared<feasible::MultiplicativePenaltyUpdater>(2.0)));
    idx = problem.add_constraint("idx", ConstraintOptions(ConstraintKind::kInequality, 5)
                                            .multiplier(MultiplierKind::kIndexed)
                                            .init(0.25));
  }

  // Builds the optimizers and takes one good step so that every state exists.
  void build(NonFinitePolicy policy = NonFinitePolicy::kThrow, bool warm = true) {
    primal = std::make_shared<torch::optim::Adam>(std::vector<torch::Tensor>{x},
                                                  torch::optim::AdamOptions(0.1));
    dual = std::make_shared<feasible::optim::NuPI>(
        problem.dual_parameters(), feasible::optim::NuPIOptions(0.1).kp(0.5).nu(0.3));
    opt = std::make_unique<feasible::SimultaneousOptimizer>(
        problem, std::vector<std::shared_ptr<torch::optim::Optimizer>>{primal}, dual,
        feasible::ConstrainedOptimizerOptions().non_finite(policy));
    if (warm) {
      auto r = opt->step([&] { return good_state(); });
      EXPECT_FALSE(r.skipped);
      // Every state now exists, so the snapshots below compare real optimizer state.
      EXPECT_EQ(primal->state().size(), 1u);
      for (const auto& p : problem.dual_parameters()) EXPECT_NE(dual->state_of(p), nullptr);
    }
  }

  torch::Tensor ineq_violation() const { return x - 0.5; }
  torch::Tensor eq_violation() const { return x.sum() - 1.0; }  // 0-d, size 1
  torch::Tensor idx_indices() const { return torch::tensor({1, 3}, torch::kLong); }
  torch::Tensor idx_violation() const {
    return x.index_select(0, torch::tensor({0, 2}, torch::kLong)) - 0.1;
  }

  // A valid state observing all three constraints, every one of them violated somewhere.
  ProblemState good_state() const {
    ProblemState st(x.pow(2).sum());
    st.observe(ineq, ConstraintState(ineq_violation()));
    st.observe(eq, ConstraintState(eq_violation()));
    st.observe(idx, ConstraintState(idx_violation()).indices(idx_indices()));
    return st;
  }

  Snapshot snapshot() const {
    Snapshot s;
    s.x = x.detach().clone();
    for (const auto& c : problem.constraints()) {
      if (c.multiplier()) s.multipliers.push_back(c.multiplier()->values().clone());
      if (c.penalty()) s.penalties.push_back(c.penalty()->value().clone());
    }
    if (primal) {
      s.adam_states = primal->state().size();
      // The state map's key type differs between LibTorch 1.x and 2.x: iterate instead of
      // looking parameters up (the set of keys is compared through adam_states).
      for (const auto& entry : primal->state()) {
        const auto& st = static_cast<const torch::optim::AdamParamState&>(*entry.second);
        s.adam_steps.push_back(st.step());
        s.adam_tensors.push_back(st.exp_avg().clone());
        s.adam_tensors.push_back(st.exp_avg_sq().clone());
      }
    }
    if (dual) {
      for (const auto& p : problem.dual_parameters()) {
        const auto* st = dual->state_of(p);
        s.nupi_has_state.push_back(st != nullptr);
        if (!st) continue;
        s.nupi_steps.push_back(st->step());
        s.nupi_tensors.push_back(st->xi().clone());
        s.nupi_tensors.push_back(st->seen().clone());
      }
    }
    if (opt) s.iteration = opt->iteration();
    return s;
  }
};

void expect_tensors_equal(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b,
                          const char* what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(torch::equal(a[i], b[i])) << what << " " << i << " changed:\n"
                                          << a[i] << "\nvs\n"
                                          << b[i];
  }
}

// Bit-for-bit equality of everything but the iteration counter (compared by the callers).
void expect_same_state(const Snapshot& a, const Snapshot& b) {
  EXPECT_TRUE(torch::equal(a.x, b.x)) << "primal parameters changed:\n" << a.x << "\nvs\n" << b.x;
  expect_tensors_equal(a.multipliers, b.multipliers, "multiplier");
  expect_tensors_equal(a.penalties, b.penalties, "penalty");
  EXPECT_EQ(a.adam_states, b.adam_states) << "Adam state size changed";
  EXPECT_EQ(a.adam_steps, b.adam_steps) << "Adam step counts changed";
  expect_tensors_equal(a.adam_tensors, b.adam_tensors, "Adam moment");
  EXPECT_EQ(a.nupi_has_state, b.nupi_has_state) << "NuPI state presence changed";
  EXPECT_EQ(a.nupi_steps, b.nupi_steps) << "NuPI step counts changed";
  expect_tensors_equal(a.nupi_tensors, b.nupi_tensors, "NuPI state tensor");
}

// The step with `closure` must throw a message holding every piece and change nothing.
void expect_step_rejected(Rig& r, const feasible::Closure& closure,
                          const std::vector<std::string>& pieces) {
  const Snapshot before = r.snapshot();
  const std::string msg = error_of([&] { r.opt->step(closure); });
  expect_has_all(msg, pieces);
  const Snapshot after = r.snapshot();
  expect_same_state(before, after);
  EXPECT_EQ(before.iteration, after.iteration) << "a rejected step must not count";
}

// The rig was built with kSkipStep: the step is skipped, the reason holds every piece, nothing
// changes but the iteration counter, which advances by one.
void expect_step_skipped(Rig& r, const feasible::Closure& closure,
                         const std::vector<std::string>& pieces) {
  const Snapshot before = r.snapshot();
  feasible::StepResult result;
  EXPECT_NO_THROW(result = r.opt->step(closure));
  EXPECT_TRUE(result.skipped);
  expect_has_all(result.skip_reason, pieces);
  EXPECT_EQ(result.iteration, before.iteration);
  const Snapshot after = r.snapshot();
  expect_same_state(before, after);
  EXPECT_EQ(after.iteration, before.iteration + 1);
  // The next good step is taken normally and moves x.
  feasible::StepResult next = r.opt->step([&] { return r.good_state(); });
  EXPECT_FALSE(next.skipped);
  EXPECT_FALSE(torch::equal(r.x.detach(), after.x));
}

// A tensor equal to `t` with entry `i` replaced by `value` (keeps the autograd link).
torch::Tensor poison(const torch::Tensor& t, int64_t i, double value) {
  auto mask = torch::zeros_like(t.detach());
  mask.reshape({-1})[i] = 1.0;
  return torch::where(mask.to(torch::kBool), torch::full_like(t.detach(), value), t);
}

// ----------------------------------------------------------------------------- the loss

TEST(ErrorsLoss, NonScalarLossIsRejected) {
  Rig r;
  r.build();
  expect_step_rejected(r,
                       [&] {
                         ProblemState st = r.good_state();
                         st.loss = r.x.slice(0, 0, 2).pow(2);  // shape [2]
                         return st;
                       },
                       {"loss must be a scalar", "[2]"});
}

TEST(ErrorsLoss, NonFloatingLossIsRejected) {
  Rig r;
  r.build();
  expect_step_rejected(r,
                       [&] {
                         ProblemState st = r.good_state();
                         st.loss = torch::tensor(3, torch::kLong);
                         return st;
                       },
                       {"loss must be a floating-point tensor", "Long"});
}

TEST(ErrorsLoss, ClosureReturningNoLossIsRejected) {
  Rig r;
  r.build();
  expect_step_rejected(r,
                       [&] {
                         ProblemState st;  // no loss
                         st.observe(r.ineq, ConstraintState(r.ineq_violation()));
                         return st;
                       },
                       {"no loss"});
}

// ----------------------------------------------------------------------------- dense shapes

TEST(ErrorsShapes, DenseViolationShapeMismatchIsRejected) {
  Rig r;
  r.build();
  expect_step_rejected(r,
                       [&] {
                         ProblemState st(r.x.pow(2).sum());
                         st.observe(r.ineq, ConstraintState(r.x.slice(0, 0, 2)));  // [2], size 3
                         return st;
                       },
                       {"constraint 'ineq'", "violation has shape [2]", "expected [3]"});
  // A 0-d violation is only accepted for constraints of size 1.
  expect_step_rejected(r,
                       [&] {
                         ProblemState st(r.x.pow(2).sum());
                         st.observe(r.ineq, ConstraintState(r.x.sum()));
                         return st;
                       },
                       {"constraint 'ineq'", "violation has shape []", "expected [3]"});
}

TEST(ErrorsShapes, ZeroDimViolationAcceptedForSizeOne) {
  auto x = torch::tensor({1.0, 1.0}).requires_grad_();
  feasible::Problem problem;
  auto c = problem.add_constraint("sum", ConstraintOptions(ConstraintKind::kInequality, 1));
  auto primal = std::make_shared<torch::optim::SGD>(std::vector<torch::Tensor>{x},
                                                    torch::optim::SGDOptions(0.1));
  auto dual =
      std::make_shared<torch::optim::SGD>(problem.dual_parameters(), torch::optim::SGDOptions(0.5));
  feasible::SimultaneousOptimizer opt(problem, {primal}, dual);
  feasible::StepResult result;
  ASSERT_NO_THROW(result = opt.step([&] {
    ProblemState st(torch::zeros({}));
    st.observe(c, ConstraintState(x.sum() - 1.0));  // 0-d violation = 1
    return st;
  }));
  // Dual SGD: lambda_1 = [0 + 0.5 * 1]+ = 0.5. Primal: lambda_0 = 0, so x does not move.
  EXPECT_NEAR(problem.multiplier_values("sum")[0].item<double>(), 0.5, 1e-7);
  EXPECT_TRUE(torch::allclose(x.detach(), torch::tensor({1.0, 1.0})));
  EXPECT_EQ(result.at("sum").violation.sizes(), torch::IntArrayRef({1}));
  // Second step, violation still 1 (x unchanged): primal gradient lambda_1 * 1 per entry.
  opt.step([&] {
    ProblemState st(torch::zeros({}));
    st.observe(c, ConstraintState(x.sum() - 1.0));
    return st;
  });
  EXPECT_TRUE(torch::allclose(x.detach(), torch::tensor({0.95, 0.95}), 1e-6, 1e-6));
}

// ----------------------------------------------------------------------------- indices

TEST(ErrorsIndices, WrongDtypeIsRejected) {
  Rig r;
  r.build();
  // Integer types other than int64 are converted (tests/nothing_silent_test.cpp); a floating
  // or boolean index tensor is refused.
  expect_step_rejected(
      r,
      [&] {
        ProblemState st(r.x.pow(2).sum());
        st.observe(
            r.idx,
            ConstraintState(r.idx_violation()).indices(torch::tensor({1.0, 3.0}, torch::kFloat)));
        return st;
      },
      {"constraint 'idx'", "indices must be an integer tensor", "Float"});
}

TEST(ErrorsIndices, NegativeIndexIsRejected) {
  Rig r;
  r.build();
  expect_step_rejected(
      r,
      [&] {
        ProblemState st(r.x.pow(2).sum());
        st.observe(
            r.idx,
            ConstraintState(r.idx_violation()).indices(torch::tensor({-1, 2}, torch::kLong)));
        return st;
      },
      {"constraint 'idx'", "[0, 5)", "[-1, 2]"});
}

TEST(ErrorsIndices, IndexAtOrBeyondSizeIsRejected) {
  Rig r;
  r.build();
  expect_step_rejected(
      r,
      [&] {
        ProblemState st(r.x.pow(2).sum());
        st.observe(r.idx,
                   ConstraintState(r.idx_violation()).indices(torch::tensor({1, 5}, torch::kLong)));
        return st;
      },
      {"constraint 'idx'", "[0, 5)", "[1, 5]"});
}

TEST(ErrorsIndices, TwoDimensionalIndicesAreRejected) {
  Rig r;
  r.build();
  expect_step_rejected(
      r,
      [&] {
        ProblemState st(r.x.pow(2).sum());
        st.observe(r.idx, ConstraintState(r.idx_violation())
                              .indices(torch::tensor({1, 3}, torch::kLong).reshape({2, 1})));
        return st;
      },
      {"constraint 'idx'", "indices must be 1-D", "[2, 1]"});
}

TEST(ErrorsIndices, IndicesForDenseConstraintAreRejected) {
  Rig r;
  r.build();
  expect_step_rejected(
      r,
      [&] {
        ProblemState st(r.x.pow(2).sum());
        st.observe(
            r.ineq,
            ConstraintState(r.ineq_violation()).indices(torch::tensor({0, 1, 2}, torch::kLong)));
        return st;
      },
      {"constraint 'ineq'", "indices were given for a dense constraint", "kIndexed"});
}

TEST(ErrorsIndices, MissingIndicesForIndexedConstraintAreRejected) {
  Rig r;
  r.build();
  expect_step_rejected(r,
                       [&] {
                         ProblemState st(r.x.pow(2).sum());
                         st.observe(r.idx, ConstraintState(r.idx_violation()));
                         return st;
                       },
                       {"constraint 'idx'", "indices are required"});
}

TEST(ErrorsIndices, ViolationLengthNotMatchingIndicesIsRejected) {
  Rig r;
  r.build();
  expect_step_rejected(r,
                       [&] {
                         ProblemState st(r.x.pow(2).sum());
                         st.observe(r.idx, ConstraintState(r.x - 0.1)  // [3] for 2 indices
                                               .indices(r.idx_indices()));
                         return st;
                       },
                       {"constraint 'idx'", "violation has shape [3]", "expected [2]"});
}

TEST(ErrorsIndices, StrictViolationShapeMismatchIsRejected) {
  Rig r;
  r.build();
  // Dense: strict violation [2] for a constraint of size 3.
  expect_step_rejected(
      r,
      [&] {
        ProblemState st(r.x.pow(2).sum());
        st.observe(r.ineq, ConstraintState(r.ineq_violation()).strict_violation(torch::zeros({2})));
        return st;
      },
      {"constraint 'ineq'", "strict violation has shape [2]", "expected [3]"});
  // Indexed: strict violation [3] for 2 indices.
  expect_step_rejected(r,
                       [&] {
                         ProblemState st(r.x.pow(2).sum());
                         st.observe(r.idx, ConstraintState(r.idx_violation())
                                               .indices(r.idx_indices())
                                               .strict_violation(torch::zeros({3})));
                         return st;
                       },
                       {"constraint 'idx'", "strict violation has shape [3]", "expected [2]"});
}

// ----------------------------------------------------------------------------- ownership

TEST(ErrorsObserve, ConstraintOfAnotherProblemIsRejected) {
  Rig r;
  r.build();
  feasible::Problem other;
  auto foreign = other.add_constraint("foreign", ConstraintOptions(ConstraintKind::kInequality, 3));
  expect_step_rejected(r,
                       [&] {
                         ProblemState st = r.good_state();
                         st.observe(foreign, ConstraintState(r.ineq_violation()));
                         return st;
                       },
                       {"constraint 'foreign'", "belongs to another problem"});
}

TEST(ErrorsObserve, ObservingTheSameConstraintTwiceIsRejected) {
  Rig r;
  r.build();
  {
    ProblemState st(torch::zeros({}));
    st.observe(r.ineq, ConstraintState(r.ineq_violation()));
    const std::string msg =
        error_of([&] { st.observe(r.ineq, ConstraintState(r.ineq_violation())); });
    expect_has_all(msg, {"constraint 'ineq'", "observed twice"});
    EXPECT_EQ(st.observed.size(), 1u);
  }
  // The same error raised inside the closure leaves the optimizer untouched.
  expect_step_rejected(r,
                       [&] {
                         ProblemState st = r.good_state();
                         st.observe(r.eq, ConstraintState(r.eq_violation()));
                         return st;
                       },
                       {"constraint 'eq'", "observed twice"});
}

// ----------------------------------------------------------------------------- registration

// The problem is unchanged after a rejected add_constraint.
void expect_add_rejected(Rig& r, const std::string& name, const ConstraintOptions& options,
                         const std::vector<std::string>& pieces) {
  const Snapshot before = r.snapshot();
  const size_t n = r.problem.constraints().size();
  const size_t duals = r.problem.dual_parameters().size();
  const std::string msg = error_of([&] { r.problem.add_constraint(name, options); });
  expect_has_all(msg, pieces);
  EXPECT_EQ(r.problem.constraints().size(), n);
  EXPECT_EQ(r.problem.dual_parameters().size(), duals);
  expect_same_state(before, r.snapshot());
}

TEST(ErrorsRegistration, DuplicateNameIsRejected) {
  Rig r;
  expect_add_rejected(r, "eq", ConstraintOptions(), {"'eq'", "already exists", "unique"});
  // The original keeps its options.
  EXPECT_EQ(r.problem.constraint("eq").kind(), ConstraintKind::kEquality);
}

TEST(ErrorsRegistration, EmptyNameIsRejected) {
  Rig r;
  expect_add_rejected(r, "", ConstraintOptions(), {"name must not be empty"});
}

TEST(ErrorsRegistration, SizeZeroIsRejected) {
  Rig r;
  expect_add_rejected(r, "empty", ConstraintOptions(ConstraintKind::kInequality, 0),
                      {"'empty'", "ConstraintOptions.size", ">= 1", "got 0"});
  expect_add_rejected(r, "negative", ConstraintOptions(ConstraintKind::kInequality, -2),
                      {"'negative'", "ConstraintOptions.size", ">= 1", "got -2"});
}

TEST(ErrorsRegistration, NegativeInitForInequalityIsRejected) {
  Rig r;
  expect_add_rejected(r, "neg", ConstraintOptions(ConstraintKind::kInequality, 2).init(-1.0),
                      {"'neg'", "ConstraintOptions.init", ">= 0", "inequality", "got -1"});
  expect_add_rejected(
      r, "neg_values",
      ConstraintOptions(ConstraintKind::kInequality, 2).init_values(torch::tensor({0.5, -0.5})),
      {"'neg_values'", "ConstraintOptions.init_values", ">= 0", "inequality", "-0.5"});
}

TEST(ErrorsRegistration, NegativeInitForEqualityIsAccepted) {
  feasible::Problem problem;
  ASSERT_NO_THROW(
      problem.add_constraint("a", ConstraintOptions(ConstraintKind::kEquality, 2).init(-1.0)));
  ASSERT_NO_THROW(problem.add_constraint(
      "b",
      ConstraintOptions(ConstraintKind::kEquality, 2).init_values(torch::tensor({-2.0, 3.0}))));
  EXPECT_TRUE(torch::equal(problem.multiplier_values("a"), torch::tensor({-1.0f, -1.0f})));
  EXPECT_TRUE(torch::equal(problem.multiplier_values("b"), torch::tensor({-2.0f, 3.0f})));
}

TEST(ErrorsPenalty, MultiplicativeGrowthMustExceedOne) {
  std::string msg = error_of([] { feasible::MultiplicativePenaltyUpdater u(1.0); });
  expect_has_all(msg, {"MultiplicativePenaltyUpdater", "growth", "> 1", "got 1"});
  msg = error_of([] { feasible::MultiplicativePenaltyUpdater u(0.5); });
  expect_has_all(msg, {"MultiplicativePenaltyUpdater", "growth", "> 1", "got 0.5"});
}

TEST(ErrorsPenalty, AdditiveIncrementMustBePositive) {
  std::string msg = error_of([] { feasible::AdditivePenaltyUpdater u(-1.0); });
  expect_has_all(msg, {"AdditivePenaltyUpdater", "increment", "> 0", "got -1"});
  msg = error_of([] { feasible::AdditivePenaltyUpdater u(0.0); });
  expect_has_all(msg, {"AdditivePenaltyUpdater", "increment", "> 0", "got 0"});
}

TEST(ErrorsPenalty, NegativeToleranceIsRejected) {
  const std::string msg = error_of([] {
    feasible::MultiplicativePenaltyUpdater u(2.0,
                                             feasible::PenaltyUpdaterOptions().tolerance(-0.1));
  });
  expect_has_all(msg, {"tolerance", ">= 0", "got -0.1"});
  const std::string msg2 = error_of([] {
    feasible::AdditivePenaltyUpdater u(1.0, feasible::PenaltyUpdaterOptions().tolerance(-2.0));
  });
  expect_has_all(msg2, {"tolerance", ">= 0", "got -2"});
}

TEST(ErrorsPenalty, NonPositivePenaltyCoefficientIsRejected) {
  Rig r;
  const std::vector<std::shared_ptr<feasible::Formulation>> formulations = {
      std::make_shared<feasible::AugmentedLagrangian>(),
      std::make_shared<feasible::QuadraticPenalty>(), std::make_shared<feasible::FixedPenalty>()};
  for (const auto& f : formulations) {
    for (double c : {0.0, -1.0}) {
      SCOPED_TRACE(f->name() + " c = " + std::to_string(c));
      expect_add_rejected(
          r, "pen", ConstraintOptions().formulation(f).penalty(c),
          {"'pen'", "ConstraintOptions.penalty", "> 0", f->name(), c == 0.0 ? "got 0" : "got -1"});
    }
  }
}

TEST(ErrorsPenalty, PenaltyUpdaterOnFixedPenaltyIsRejected) {
  Rig r;
  expect_add_rejected(
      r, "fixed",
      ConstraintOptions()
          .formulation(std::make_shared<feasible::FixedPenalty>())
          .penalty_updater(std::make_shared<feasible::MultiplicativePenaltyUpdater>(2.0)),
      {"'fixed'", "penalty_updater", "not allowed", "FixedPenalty"});
}

TEST(ErrorsPenalty, PenaltyUpdaterOnLagrangianIsRejected) {
  Rig r;
  expect_add_rejected(
      r, "lag",
      ConstraintOptions().penalty_updater(std::make_shared<feasible::AdditivePenaltyUpdater>(1.0)),
      {"'lag'", "penalty_updater", "not allowed", "Lagrangian", "no penalty coefficient"});
}

// ----------------------------------------------------------------------------- optimizers

std::shared_ptr<torch::optim::Adam> adam_on(std::vector<torch::Tensor> params) {
  return std::make_shared<torch::optim::Adam>(std::move(params), torch::optim::AdamOptions(0.1));
}

TEST(ErrorsOptimizer, DualOptimizerMissingAMultiplierIsRejected) {
  Rig r;
  std::vector<torch::Tensor> duals;
  for (const auto& c : {r.ineq, r.idx}) {
    for (const auto& p : c.multiplier()->parameters()) duals.push_back(p);
  }
  const Snapshot before = r.snapshot();
  const std::string msg = error_of(
      [&] { feasible::SimultaneousOptimizer opt(r.problem, {adam_on({r.x})}, adam_on(duals)); });
  expect_has_all(
      msg, {"dual optimizer must hold exactly", "3 tensors", "holds 2", "missing those of 'eq'"});
  expect_same_state(before, r.snapshot());
}

TEST(ErrorsOptimizer, DualOptimizerWithAnExtraTensorIsRejected) {
  Rig r;
  auto duals = r.problem.dual_parameters();
  duals.push_back(torch::zeros({2}, torch::requires_grad()));
  const std::string msg = error_of(
      [&] { feasible::SimultaneousOptimizer opt(r.problem, {adam_on({r.x})}, adam_on(duals)); });
  expect_has_all(msg, {"dual optimizer must hold exactly", "3 tensors", "holds 4",
                       "plus 1 that are not dual parameters"});
}

TEST(ErrorsOptimizer, MissingDualOptimizerIsRejected) {
  Rig r;
  const std::string msg =
      error_of([&] { feasible::SimultaneousOptimizer opt(r.problem, {adam_on({r.x})}, nullptr); });
  expect_has_all(msg, {"'ineq'", "'eq'", "'idx'", "have multipliers", "no dual optimizer"});
  // The unconstrained scheme passes no dual optimizer: same rule.
  const std::string msg2 =
      error_of([&] { feasible::UnconstrainedOptimizer opt(r.problem, {adam_on({r.x})}); });
  expect_has_all(msg2, {"have multipliers", "no dual optimizer"});
}

TEST(ErrorsOptimizer, ParameterBothPrimalAndDualIsRejected) {
  Rig r;
  const auto duals = r.problem.dual_parameters();
  const std::string msg = error_of([&] {
    feasible::SimultaneousOptimizer opt(r.problem, {adam_on({r.x, duals[1]})}, adam_on(duals));
  });
  expect_has_all(msg, {"primal optimizer 0", "holds a dual parameter", "both primal and dual"});
}

TEST(ErrorsOptimizer, ExtragradientNeedsExtrapolationOptimizers) {
  Rig r;
  auto sgd_primal = std::make_shared<torch::optim::SGD>(std::vector<torch::Tensor>{r.x},
                                                        torch::optim::SGDOptions(0.1));
  auto sgd_dual = std::make_shared<torch::optim::SGD>(r.problem.dual_parameters(),
                                                      torch::optim::SGDOptions(0.1));
  auto extra_primal = std::make_shared<feasible::optim::ExtraSGD>(
      std::vector<torch::Tensor>{r.x}, feasible::optim::ExtraSGDOptions(0.1));
  auto extra_dual = std::make_shared<feasible::optim::ExtraSGD>(
      r.problem.dual_parameters(), feasible::optim::ExtraSGDOptions(0.1));
  std::string msg =
      error_of([&] { feasible::ExtragradientOptimizer opt(r.problem, {sgd_primal}, extra_dual); });
  expect_has_all(
      msg, {"ExtragradientOptimizer", "primal optimizer has no extrapolation step", "ExtraSGD"});
  msg =
      error_of([&] { feasible::ExtragradientOptimizer opt(r.problem, {extra_primal}, sgd_dual); });
  expect_has_all(
      msg, {"ExtragradientOptimizer", "dual optimizer has no extrapolation step", "ExtraSGD"});
  // Both extrapolation-capable: accepted.
  EXPECT_NO_THROW(feasible::ExtragradientOptimizer(r.problem, {extra_primal}, extra_dual));
}

TEST(ErrorsRegistration, LazyOnDenseConstraintIsRejected) {
  Rig r;
  expect_add_rejected(r, "lazy_dense", ConstraintOptions(ConstraintKind::kInequality, 4).lazy(true),
                      {"'lazy_dense'", "ConstraintOptions.lazy", "indexed multiplier"});
}

TEST(ErrorsRegistration, SparseGradientOnDenseConstraintIsRejected) {
  Rig r;
  expect_add_rejected(
      r, "sparse_dense", ConstraintOptions(ConstraintKind::kInequality, 4).sparse_gradient(true),
      {"'sparse_dense'", "ConstraintOptions.sparse_gradient", "indexed multiplier"});
}

TEST(ErrorsRegistration, ImplicitWithoutModelIsRejected) {
  Rig r;
  expect_add_rejected(
      r, "implicit",
      ConstraintOptions(ConstraintKind::kInequality, 4).multiplier(MultiplierKind::kImplicit),
      {"'implicit'", "kImplicit", "implicit_model"});
}

TEST(ErrorsOptimizer, ConstraintsAddedAfterTheOptimizerAreRejectedAtStep) {
  Rig r;
  r.build();
  auto late = r.problem.add_constraint("late", ConstraintOptions(ConstraintKind::kInequality, 1));
  expect_step_rejected(r, [&] { return r.good_state(); },
                       {"added to the problem after the optimizer was built"});
  // Also when the closure observes the late constraint.
  expect_step_rejected(r,
                       [&] {
                         ProblemState st = r.good_state();
                         st.observe(late, ConstraintState(r.x.sum()));
                         return st;
                       },
                       {"added to the problem after the optimizer was built"});
}

// ----------------------------------------------------------------------------- non-finite

TEST(ErrorsNonFinite, NaNLossThrowsAndChangesNothing) {
  Rig r;
  r.build();
  expect_step_rejected(r,
                       [&] {
                         ProblemState st = r.good_state();
                         st.loss = st.loss * kNaN;
                         return st;
                       },
                       {"the loss is", "NonFinitePolicy::kThrow", "nothing was changed"});
  expect_step_rejected(r,
                       [&] {
                         ProblemState st = r.good_state();
                         st.loss = st.loss + kInf;
                         return st;
                       },
                       {"the loss is inf"});
}

TEST(ErrorsNonFinite, NaNOrInfViolationThrowsNamingTheConstraint) {
  Rig r;
  r.build();
  expect_step_rejected(r,
                       [&] {
                         ProblemState st(r.x.pow(2).sum());
                         st.observe(r.ineq, ConstraintState(poison(r.ineq_violation(), 1, kNaN)));
                         st.observe(r.eq, ConstraintState(r.eq_violation()));
                         return st;
                       },
                       {"the violation of constraint 'ineq'", "NaN or Inf"});
  expect_step_rejected(r,
                       [&] {
                         ProblemState st(r.x.pow(2).sum());
                         st.observe(r.ineq, ConstraintState(r.ineq_violation()));
                         st.observe(r.eq, ConstraintState(r.eq_violation() + kInf));
                         return st;
                       },
                       {"the violation of constraint 'eq'", "NaN or Inf"});
  expect_step_rejected(
      r,
      [&] {
        ProblemState st(r.x.pow(2).sum());
        st.observe(r.idx,
                   ConstraintState(poison(r.idx_violation(), 0, -kInf)).indices(r.idx_indices()));
        return st;
      },
      {"the violation of constraint 'idx'", "NaN or Inf"});
}

TEST(ErrorsNonFinite, NaNStrictViolationThrowsNamingTheConstraint) {
  Rig r;
  r.build();
  expect_step_rejected(
      r,
      [&] {
        ProblemState st(r.x.pow(2).sum());
        st.observe(
            r.ineq,
            ConstraintState(r.ineq_violation()).strict_violation(torch::tensor({0.0, kNaN, 1.0})));
        return st;
      },
      {"the strict violation of constraint 'ineq'", "NaN or Inf"});
  expect_step_rejected(r,
                       [&] {
                         ProblemState st(r.x.pow(2).sum());
                         st.observe(r.idx, ConstraintState(r.idx_violation())
                                               .indices(r.idx_indices())
                                               .strict_violation(torch::tensor({kInf, 0.0})));
                         return st;
                       },
                       {"the strict violation of constraint 'idx'", "NaN or Inf"});
}

TEST(ErrorsNonFinite, SkipPolicySkipsNaNLoss) {
  Rig r;
  r.build(NonFinitePolicy::kSkipStep);
  expect_step_skipped(r,
                      [&] {
                        ProblemState st = r.good_state();
                        st.loss = st.loss * kNaN;
                        return st;
                      },
                      {"the loss"});
}

TEST(ErrorsNonFinite, SkipPolicySkipsNaNViolation) {
  Rig r;
  r.build(NonFinitePolicy::kSkipStep);
  expect_step_skipped(r,
                      [&] {
                        ProblemState st(r.x.pow(2).sum());
                        st.observe(r.ineq, ConstraintState(r.ineq_violation()));
                        st.observe(r.eq, ConstraintState(r.eq_violation() * kNaN));
                        st.observe(r.idx,
                                   ConstraintState(r.idx_violation()).indices(r.idx_indices()));
                        return st;
                      },
                      {"the violation of constraint 'eq'"});
}

TEST(ErrorsNonFinite, SkipPolicySkipsInfStrictViolation) {
  Rig r;
  r.build(NonFinitePolicy::kSkipStep);
  expect_step_skipped(r,
                      [&] {
                        ProblemState st(r.x.pow(2).sum());
                        st.observe(r.ineq, ConstraintState(r.ineq_violation()));
                        st.observe(r.idx, ConstraintState(r.idx_violation())
                                              .indices(r.idx_indices())
                                              .strict_violation(torch::tensor({0.5, kInf})));
                        return st;
                      },
                      {"the strict violation of constraint 'idx'"});
}

// Extragradient rig: ExtraSGD on both players, x and one dense inequality.
struct ExtraRig {
  torch::Tensor x = torch::tensor({1.0, 2.0}).requires_grad_();
  feasible::Problem problem;
  feasible::Constraint c;
  std::shared_ptr<feasible::optim::ExtraSGD> primal, dual;
  std::unique_ptr<feasible::ExtragradientOptimizer> opt;
  int calls = 0;

  explicit ExtraRig(NonFinitePolicy policy) {
    c = problem.add_constraint("budget",
                               ConstraintOptions(ConstraintKind::kInequality, 1).init(0.5));
    primal = std::make_shared<feasible::optim::ExtraSGD>(std::vector<torch::Tensor>{x},
                                                         feasible::optim::ExtraSGDOptions(0.1));
    dual = std::make_shared<feasible::optim::ExtraSGD>(problem.dual_parameters(),
                                                       feasible::optim::ExtraSGDOptions(0.1));
    opt = std::make_unique<feasible::ExtragradientOptimizer>(
        problem, std::vector<std::shared_ptr<torch::optim::Optimizer>>{primal}, dual,
        feasible::ConstrainedOptimizerOptions().non_finite(policy));
  }
  // Good at the first call of each step; at the second call (the half point) the loss or the
  // violation is NaN when `poison_loss` / `poison_violation` are set.
  ProblemState state(bool poison_loss, bool poison_violation) {
    ++calls;
    const bool half = calls % 2 == 0;
    ProblemState st(x.pow(2).sum() * ((half && poison_loss) ? kNaN : 1.0));
    st.observe(c, ConstraintState((x.sum() - 1.0) * ((half && poison_violation) ? kNaN : 1.0)));
    return st;
  }
};

TEST(ErrorsNonFinite, ExtragradientHalfPointNaNSkipReturnsToStart) {
  for (bool loss : {true, false}) {
    SCOPED_TRACE(loss ? "NaN loss at the half point" : "NaN violation at the half point");
    ExtraRig r(NonFinitePolicy::kSkipStep);
    const auto x0 = r.x.detach().clone();
    const auto lambda0 = r.problem.multiplier_values("budget").clone();
    feasible::StepResult result;
    ASSERT_NO_THROW(result = r.opt->step([&] { return r.state(loss, !loss); }));
    EXPECT_EQ(r.calls, 2);  // the half point was evaluated
    EXPECT_TRUE(result.skipped);
    EXPECT_HAS(result.skip_reason, loss ? "the loss" : "the violation of constraint 'budget'");
    EXPECT_TRUE(torch::equal(r.x.detach(), x0)) << r.x;
    EXPECT_TRUE(torch::equal(r.problem.multiplier_values("budget"), lambda0));
    EXPECT_FALSE(r.primal->extrapolated());
    EXPECT_FALSE(r.dual->extrapolated());
    EXPECT_EQ(r.opt->iteration(), 1);
    // A following good step works (no pending extrapolation) and moves x.
    ASSERT_NO_THROW(result = r.opt->step([&] { return r.state(false, false); }));
    EXPECT_FALSE(result.skipped);
    EXPECT_FALSE(torch::equal(r.x.detach(), x0));
  }
}

// With the default policy a NaN at the half point throws; by the kThrow contract (kinds.h:
// "Nothing is modified") the parameters and multipliers must be back at the starting point and
// the optimizer must be usable again.
TEST(ErrorsNonFinite, ExtragradientHalfPointNaNThrowLeavesStartingPoint) {
  ExtraRig r(NonFinitePolicy::kThrow);
  const auto x0 = r.x.detach().clone();
  const auto lambda0 = r.problem.multiplier_values("budget").clone();
  const std::string msg = error_of([&] { r.opt->step([&] { return r.state(false, true); }); });
  expect_has_all(msg, {"the violation of constraint 'budget'", "NaN or Inf"});
  EXPECT_TRUE(torch::equal(r.x.detach(), x0)) << "x left at " << r.x;
  EXPECT_TRUE(torch::equal(r.problem.multiplier_values("budget"), lambda0))
      << "lambda left at " << r.problem.multiplier_values("budget");
  EXPECT_FALSE(r.primal->extrapolated());
  EXPECT_FALSE(r.dual->extrapolated());
  EXPECT_NO_THROW(r.opt->step([&] { return r.state(false, false); }));
}

// ----------------------------------------------------------------------------- options

TEST(ErrorsOptions, NuPIOptionsAreValidated) {
  const std::vector<torch::Tensor> params = {torch::zeros({2}, torch::requires_grad())};
  std::string msg =
      error_of([&] { feasible::optim::NuPI opt(params, feasible::optim::NuPIOptions(-0.1)); });
  expect_has_all(msg, {"NuPIOptions", "lr", ">= 0", "got -0.1"});
  msg = error_of(
      [&] { feasible::optim::NuPI opt(params, feasible::optim::NuPIOptions(0.1).nu(1.0)); });
  expect_has_all(msg, {"NuPIOptions", "nu", "[0, 1)", "got 1"});
  msg = error_of(
      [&] { feasible::optim::NuPI opt(params, feasible::optim::NuPIOptions(0.1).kp(-1.0)); });
  expect_has_all(msg, {"NuPIOptions", "kp", ">= 0", "got -1"});
}

TEST(ErrorsOptions, ExtraAdamBeta1MustBeBelowOne) {
  const std::vector<torch::Tensor> params = {torch::zeros({2}, torch::requires_grad())};
  const std::string msg = error_of([&] {
    feasible::optim::ExtraAdam opt(params, feasible::optim::ExtraAdamOptions(0.1).beta1(1.0));
  });
  expect_has_all(msg, {"ExtraAdamOptions", "beta1", "[0, 1)", "got 1"});
}

TEST(ErrorsOptions, ProjectionArgumentsAreValidated) {
  std::string msg = error_of([] { feasible::projection::box(2.0, 1.0); });
  expect_has_all(msg, {"projection::box", "lower must be <= upper", "lower = 2", "upper = 1"});
  for (double radius : {0.0, -1.0}) {
    const std::string got = radius == 0.0 ? "got 0" : "got -1";
    msg = error_of([&] { feasible::projection::simplex(radius); });
    expect_has_all(msg, {"projection::simplex", "radius must be > 0", got});
    msg = error_of([&] { feasible::projection::l2_ball(radius); });
    expect_has_all(msg, {"projection::l2_ball", "radius must be > 0", got});
  }
  EXPECT_NO_THROW(feasible::projection::box(1.0, 1.0));  // lower == upper is a valid box
}

// ----------------------------------------------------------------------------- lookups

TEST(ErrorsLookup, MissingConstraintListsTheRegisteredNames) {
  Rig r;
  const std::string msg = error_of([&] { r.problem.constraint("missing"); });
  expect_has_all(msg, {"no constraint named 'missing'", "'ineq', 'eq', 'idx'"});
  EXPECT_FALSE(r.problem.has_constraint("missing"));
  feasible::Problem empty;
  expect_has_all(error_of([&] { empty.constraint("x"); }), {"'x'", "none"});
}

TEST(ErrorsLookup, MultiplierValuesOfAPenaltyConstraintExplainsThereIsNone) {
  feasible::Problem problem;
  problem.add_constraint(
      "quad", ConstraintOptions().formulation(std::make_shared<feasible::QuadraticPenalty>()));
  const std::string msg = error_of([&] { problem.multiplier_values("quad"); });
  expect_has_all(msg, {"'quad'", "QuadraticPenalty", "has no multiplier"});
  EXPECT_EQ(problem.multipliers().size(), 0u);
  EXPECT_TRUE(problem.dual_parameters().empty());
}

}  // namespace
