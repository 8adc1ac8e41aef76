// Validation-based dual updates (ConstrainedOptimizer::dual_step; Cotter, Gupta, Jiang, Srebro,
// Sridharan, Wang, Woodworth & You, ICML 2019):
//  - dual_step with an SGD dual is lambda <- proj(lambda + lr s) on the validation closure's
//    strict violations (dense, indexed, equality; fused and general paths), with NuPI the
//    nuPI recurrence over the validation observations only; a constraint observed with
//    contributes_to_dual(false) keeps its multiplier;
//  - in every scheme dual_step leaves the primal parameters, their gradients, the primal
//    optimizers' state, the projections and iteration() untouched, and step() with every
//    constraint contributes_to_dual(false) leaves the multipliers and the dual optimizer's
//    state untouched, without a warning;
//  - the default optimizer: dual_step moves the multiplier toward feasibility (by hand);
//  - NaN / Inf under kThrow (NonFiniteError naming dual_step and the constraint) and kSkipStep
//    (everything restored); misuse messages;
//  - end to end: a problem whose validation constraint differs from the training one, where the
//    multiplier converges to the value that makes the validation constraint hold.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "feasible/feasible.h"
#include "test_util.h"

namespace {

using feasible::Closure;
using feasible::ConstrainedOptimizer;
using feasible::Constraint;
using feasible::ConstraintKind;
using feasible::ConstraintOptions;
using feasible::ConstraintState;
using feasible::MultiplierKind;
using feasible::NonFinitePolicy;
using feasible::NonFiniteQuantity;
using feasible::Problem;
using feasible::ProblemState;
using feasible::StepResult;
using feasible_test::dvec;
using feasible_test::error_of;
using feasible_test::to_vec;

ConstraintOptions f64(ConstraintKind kind = ConstraintKind::kInequality, int64_t size = 1) {
  return ConstraintOptions(kind, size).dtype(torch::kFloat64);
}

std::shared_ptr<torch::optim::SGD> sgd(std::vector<torch::Tensor> params, double lr,
                                       double momentum = 0.0) {
  return std::make_shared<torch::optim::SGD>(std::move(params),
                                             torch::optim::SGDOptions(lr).momentum(momentum));
}

// Collects the warnings raised while it is installed.
struct WarningCollector : c10::WarningHandler {
  std::vector<std::string> messages;
  void process(const c10::SourceLocation&, const std::string& msg, const bool) override {
    messages.push_back(msg);
  }
};

// Every tensor of an optimizer's per-parameter state (SGD, Adam, NuPI, ExtraAdam, AugmentedDual;
// without AugmentedDual's penalty when `penalty` is false), copied, in parameter order; a
// parameter without state gives an empty tensor. A state of another type fails the test.
std::vector<torch::Tensor> state_of(const torch::optim::Optimizer& o, bool penalty = true) {
  std::vector<torch::Tensor> out;
  auto count = [](int64_t n) { return torch::tensor(n); };
  for (const auto& group : o.param_groups()) {
    for (const auto& p : group.params()) {
      auto it = o.state().find(feasible_test::key_of(p));
      if (it == o.state().end()) {
        out.push_back(torch::zeros({0}));
        continue;
      }
      const auto* st = it->second.get();
      if (auto* s = dynamic_cast<const torch::optim::SGDParamState*>(st)) {
        out.push_back(s->momentum_buffer());
      } else if (auto* s = dynamic_cast<const torch::optim::AdamParamState*>(st)) {
        out.insert(out.end(), {count(s->step()), s->exp_avg(), s->exp_avg_sq()});
      } else if (auto* s = dynamic_cast<const feasible::optim::NuPIParamState*>(st)) {
        out.insert(out.end(), {count(s->step()), s->xi(), s->seen()});
      } else if (auto* s = dynamic_cast<const feasible::optim::ExtraAdamParamState*>(st)) {
        out.insert(out.end(), {count(s->step()), s->exp_avg(), s->exp_avg_sq()});
      } else if (auto* s = dynamic_cast<const feasible::optim::AugmentedDualParamState*>(st)) {
        out.insert(out.end(), {count(s->step()), s->base(), s->previous()});
        if (penalty) out.push_back(s->penalty());
      } else {
        ADD_FAILURE() << "unexpected optimizer state type";
      }
    }
  }
  for (auto& t : out) t = t.detach().clone();
  return out;
}

// Bit-for-bit equality of two lists of tensors (dtypes, shapes, values).
bool same(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].scalar_type() != b[i].scalar_type() || !a[i].sizes().equals(b[i].sizes()) ||
        !torch::equal(a[i], b[i])) {
      return false;
    }
  }
  return true;
}

// ------------------------------------------------------------- hand-computed dual steps

// SGD dual (lr 0.5, the fused path): lambda <- max(0, lambda + 0.5 s) for inequalities,
// mu <- mu + 0.5 s for equalities; every value below is a dyadic rational, exact in float64.
TEST(DualStep, SgdIsProjectedAscentOnTheValidationStrictViolations) {
  Problem problem;
  auto rate = problem.add_constraint(
      "rate", f64(ConstraintKind::kInequality, 2).init_values(dvec({0.0, 0.25})));
  auto balance = problem.add_constraint("balance", f64(ConstraintKind::kEquality));
  auto ignored = problem.add_constraint("ignored", f64().init(0.5));
  auto x = dvec({1.0, 2.0}).requires_grad_(true);
  feasible::SimultaneousOptimizer opt(problem, {sgd({x}, 0.1)},
                                      sgd(problem.dual_parameters(), 0.5));
  const StepResult r = opt.dual_step([&] {
    // No gradient anywhere: dual_step evaluates under NoGradGuard, and a violation without a
    // gradient (which step() would refuse with contributes_to_primal true) is accepted.
    EXPECT_FALSE(torch::GradMode::is_enabled());
    ProblemState st;  // no loss: a validation closure need not compute one
    st.observe(rate, ConstraintState(dvec({0.25, -0.75})).contributes_to_primal(false));
    st.observe(balance, ConstraintState(dvec({-0.5})).contributes_to_primal(false));
    // Observed, but not for the dual: its multiplier stays at 0.5 whatever s says.
    st.observe(ignored, ConstraintState(dvec({1.0})).contributes_to_dual(false));
    return st;
  });
  // rate: [max(0, 0 + 0.5 * 0.25), max(0, 0.25 + 0.5 * -0.75)] = [0.125, max(0, -0.125)] = [0.125,
  // 0]
  EXPECT_EQ(to_vec(problem.multiplier_values(rate)), (std::vector<double>{0.125, 0.0}));
  // balance: 0 + 0.5 * -0.5 = -0.25 (equality: no projection)
  EXPECT_EQ(to_vec(problem.multiplier_values(balance)), (std::vector<double>{-0.25}));
  EXPECT_EQ(to_vec(problem.multiplier_values(ignored)), (std::vector<double>{0.5}));
  // The result: the values before the step, the strict violations read, no Lagrangian, no
  // iteration counted, and the primal parameter as it was.
  EXPECT_EQ(r.iteration, 0);
  EXPECT_EQ(opt.iteration(), 0);
  EXPECT_FALSE(r.skipped);
  EXPECT_TRUE(r.at(rate).observed);
  EXPECT_EQ(to_vec(r.at(rate).multiplier), (std::vector<double>{0.0, 0.25}));
  EXPECT_EQ(to_vec(r.at(rate).strict_violation), (std::vector<double>{0.25, -0.75}));
  EXPECT_FALSE(r.lagrangian.defined());
  EXPECT_EQ(r.loss.item<double>(), 0.0);
  EXPECT_TRUE(r.unobserved().empty());
  // The largest violation of the validation observations: rate's 0.25, |balance| = 0.5, ignored 1.
  EXPECT_EQ(r.max_violation(), 1.0);
  EXPECT_EQ(to_vec(x), (std::vector<double>{1.0, 2.0}));
  EXPECT_FALSE(x.grad().defined());
}

// SGD with momentum 0.5 (the general, non-fused path) on an indexed multiplier:
//   step 1: buf = g1, lambda1 = lambda0 - lr buf;  step 2: buf = 0.5 buf + g2, lambda2 = ...
// with g = -s written into the observed rows (zero in the others).
TEST(DualStep, SgdMomentumOnIndexedRowsByHand) {
  Problem problem;
  auto per_example = problem.add_constraint(
      "per_example", f64(ConstraintKind::kInequality, 4).multiplier(MultiplierKind::kIndexed));
  auto x = dvec({0.0}).requires_grad_(true);
  auto dual = sgd(problem.dual_parameters(), 0.5, /*momentum=*/0.5);
  feasible::AlternatingDualPrimalOptimizer opt(problem, {sgd({x}, 0.1)}, dual);
  auto observe = [&](std::vector<int64_t> idx, std::vector<double> s) {
    return opt.dual_step([&] {
      ProblemState st;
      st.observe(per_example, ConstraintState(dvec(s))
                                  .indices(torch::tensor(idx, torch::kLong))
                                  .contributes_to_primal(false));
      return st;
    });
  };
  observe({2, 0}, {0.5, 0.25});
  // g1 = [-0.25, 0, -0.5, 0]; lambda1 = 0 - 0.5 g1 = [0.125, 0, 0.25, 0]
  EXPECT_EQ(to_vec(problem.multiplier_values(per_example)),
            (std::vector<double>{0.125, 0.0, 0.25, 0.0}));
  const StepResult r = observe({1, 2}, {1.0, 0.5});
  // g2 = [0, -1, -0.5, 0]; buf = 0.5 g1 + g2 = [-0.125, -1, -0.75, 0];
  // lambda2 = lambda1 - 0.5 buf = [0.1875, 0.5, 0.625, 0]
  EXPECT_EQ(to_vec(problem.multiplier_values(per_example)),
            (std::vector<double>{0.1875, 0.5, 0.625, 0.0}));
  EXPECT_EQ(to_vec(r.at(per_example).indices), (std::vector<double>{1.0, 2.0}));
  EXPECT_EQ(to_vec(r.at(per_example).multiplier), (std::vector<double>{0.0, 0.25}));
}

// NuPI (lr 0.5, ki 1, kp 2, nu 0.5, kSGD start) reads the validation stream only: with e = -s,
//   step 1: xi = e1 (kSGD start), update = ki e1        -> lambda1 = lr ki s1
//   step 2: xi = nu e1 + (1 - nu) e2, update = ki e2 + kp (xi - e1) = -ki s2 - kp (1 - nu)(s2 - s1)
//           lambda2 = lambda1 + lr (ki s2 + kp (1 - nu)(s2 - s1))
// with s1 = 0.25, s2 = 0.75: lambda1 = 0.125, lambda2 = 0.125 + 0.5 (0.75 + 0.5) = 0.75.
// Training steps in between (contributes_to_dual(false), strict violation 8) do not touch the
// memory: if they did, xi would hold e = -8 and lambda2 would differ.
TEST(DualStep, NuPIMemoryFollowsTheValidationStreamOnly) {
  Problem problem;
  auto c = problem.add_constraint("c", f64());
  auto x = dvec({3.0}).requires_grad_(true);
  auto nupi = std::make_shared<feasible::optim::NuPI>(
      problem.dual_parameters(), feasible::optim::NuPIOptions(0.5).ki(1.0).kp(2.0).nu(0.5));
  feasible::SimultaneousOptimizer opt(problem, {sgd({x}, 0.01)}, nupi);
  auto train = [&] {
    opt.step([&] {
      ProblemState st(x.pow(2).sum());
      st.observe(
          c,
          ConstraintState(x.sum() - 1.0).strict_violation(dvec({8.0})).contributes_to_dual(false));
      return st;
    });
  };
  auto validate = [&](double s) {
    opt.dual_step([&] {
      ProblemState st;
      st.observe(c, ConstraintState(dvec({s})).contributes_to_primal(false));
      return st;
    });
  };
  train();
  validate(0.25);
  EXPECT_EQ(problem.multiplier_values(c).item<double>(), 0.125);
  train();
  train();
  EXPECT_EQ(problem.multiplier_values(c).item<double>(), 0.125);
  validate(0.75);
  EXPECT_EQ(problem.multiplier_values(c).item<double>(), 0.75);
  const auto* st = nupi->state_of(problem.dual_parameters()[0]);
  ASSERT_NE(st, nullptr);
  EXPECT_EQ(st->step(), 2) << "two dual steps, however many training steps";
  EXPECT_EQ(opt.iteration(), 3);
}

// The penalty updater reads the validation stream: step() with contributes_to_dual(false) does
// not run it (training strict violation 1: it would double c), dual_step does. AugmentedLagrangian
// with scale_dual_by_penalty (ascent c s), c = 1, growth 2, dual SGD lr 0.5:
//   dual_step 1, s = 0.5: lambda = 0.5 * 1 * 0.5 = 0.25 (read with c before the update),
//                         c = 2 (|s| > tolerance 1e-4);
//   dual_step 2, s = 0:   lambda = 0.25 + 0.5 * 2 * 0 = 0.25; c stays 2 (s within tolerance).
TEST(DualStep, PenaltyUpdatersRunOnTheValidationStrictViolations) {
  Problem problem;
  auto c = problem.add_constraint(
      "c", f64()
               .formulation(std::make_shared<feasible::AugmentedLagrangian>(
                   feasible::AugmentedLagrangianOptions().scale_dual_by_penalty(true)))
               .penalty(1.0)
               .penalty_updater(std::make_shared<feasible::MultiplicativePenaltyUpdater>(2.0)));
  auto x = dvec({0.0}).requires_grad_(true);
  feasible::SimultaneousOptimizer opt(problem, {sgd({x}, 0.1)},
                                      sgd(problem.dual_parameters(), 0.5));
  for (int t = 0; t < 2; ++t) {
    opt.step([&] {
      ProblemState st(x.pow(2).sum());
      st.observe(c, ConstraintState(x.sum() + 1.0).contributes_to_dual(false));
      return st;
    });
  }
  EXPECT_EQ(problem.penalty_values(c).item<double>(), 1.0);
  auto validate = [&](double s) {
    return opt.dual_step([&] {
      ProblemState st;
      st.observe(c, ConstraintState(dvec({s})).contributes_to_primal(false));
      return st;
    });
  };
  const StepResult r = validate(0.5);
  EXPECT_EQ(problem.multiplier_values(c).item<double>(), 0.25);
  EXPECT_EQ(problem.penalty_values(c).item<double>(), 2.0);
  EXPECT_EQ(r.at(c).penalty.item<double>(), 1.0) << "the coefficient before the update";
  validate(0.0);
  EXPECT_EQ(problem.multiplier_values(c).item<double>(), 0.25);
  EXPECT_EQ(problem.penalty_values(c).item<double>(), 2.0);
}

// An implicit multiplier: its dual gradient flows through autograd, which dual_step turns back
// on for that pass although the closure ran under NoGradGuard. Model lambda(f) = w f (no bias),
// w = 0.5, features f = [[1], [2]], strict violations s = [0.25, 0.25]: the dual loss
// -sum(lambda(f) s) has gradient -(1 * 0.25 + 2 * 0.25) = -0.75 in w; SGD lr 0.5:
// w <- 0.5 + 0.5 * 0.75 = 0.875.
TEST(DualStep, ImplicitMultiplierModelIsUpdatedThroughAutograd) {
  torch::nn::Linear model(torch::nn::LinearOptions(1, 1).bias(false));
  model->to(torch::kFloat64);
  {
    torch::NoGradGuard no_grad;
    model->weight.fill_(0.5);
  }
  Problem problem;
  auto c = problem.add_constraint("c", f64(ConstraintKind::kInequality, 2)
                                           .multiplier(MultiplierKind::kImplicit)
                                           .implicit_model(torch::nn::AnyModule(model)));
  auto x = dvec({0.0}).requires_grad_(true);
  feasible::SimultaneousOptimizer opt(problem, {sgd({x}, 0.1)},
                                      sgd(problem.dual_parameters(), 0.5));
  const StepResult r = opt.dual_step([&] {
    ProblemState st;
    st.observe(c, ConstraintState(dvec({0.25, 0.25}))
                      .features(torch::tensor({{1.0}, {2.0}}, torch::kFloat64))
                      .contributes_to_primal(false));
    return st;
  });
  EXPECT_EQ(model->weight.item<double>(), 0.875);
  // The result holds the model's values before the step: w f = [0.5, 1].
  EXPECT_EQ(to_vec(r.at(c).multiplier), (std::vector<double>{0.5, 1.0}));
  EXPECT_FALSE(x.grad().defined());
}

// ------------------------------------------------------------- every scheme

enum class Scheme { kSimultaneous, kDualPrimal, kPrimalDual, kExtragradient, kDefault };

const char* name_of(Scheme s) {
  const char* names[] = {"Simultaneous", "AlternatingDualPrimal", "AlternatingPrimalDual",
                         "Extragradient", "Default"};
  return names[static_cast<int>(s)];
}

const Scheme kSchemes[] = {Scheme::kSimultaneous, Scheme::kDualPrimal, Scheme::kPrimalDual,
                           Scheme::kExtragradient, Scheme::kDefault};

// f = |x - (1, 2)|^2; rate: x0 + x1 - 1 <= 0; balance: x0 - x1 = 0. The validation closure
// measures both shifted by `shift` (a validation set on which they come out worse).
struct SchemeRun {
  torch::Tensor x = dvec({0.5, 0.25}).requires_grad_(true);
  Problem problem;
  Constraint rate = problem.add_constraint("rate", f64().init(0.5));
  Constraint balance = problem.add_constraint("balance", f64(ConstraintKind::kEquality).init(0.25));
  std::shared_ptr<torch::optim::Optimizer> primal, dual;
  std::unique_ptr<ConstrainedOptimizer> opt;
  int projections = 0;

  explicit SchemeRun(Scheme s) {
    using feasible::optim::ExtraAdam;
    const auto duals = problem.dual_parameters();
    if (s == Scheme::kExtragradient) {
      primal = std::make_shared<ExtraAdam>(std::vector<torch::Tensor>{x}, 0.1);
    } else {
      primal = std::make_shared<torch::optim::Adam>(std::vector<torch::Tensor>{x},
                                                    torch::optim::AdamOptions(0.1));
    }
    const std::vector<std::shared_ptr<torch::optim::Optimizer>> primals{primal};
    switch (s) {
      case Scheme::kSimultaneous:
        dual = std::make_shared<torch::optim::Adam>(duals, torch::optim::AdamOptions(0.1));
        opt = std::make_unique<feasible::SimultaneousOptimizer>(problem, primals, dual);
        break;
      case Scheme::kDualPrimal:
        dual = std::make_shared<feasible::optim::NuPI>(
            duals, feasible::optim::NuPIOptions(0.1).kp(0.5).nu(0.3));
        opt = std::make_unique<feasible::AlternatingDualPrimalOptimizer>(problem, primals, dual);
        break;
      case Scheme::kPrimalDual:
        dual = sgd(duals, 0.1, /*momentum=*/0.5);
        opt = std::make_unique<feasible::AlternatingPrimalDualOptimizer>(problem, primals, dual);
        break;
      case Scheme::kExtragradient:
        dual = std::make_shared<ExtraAdam>(duals, 0.1);
        opt = std::make_unique<feasible::ExtragradientOptimizer>(problem, primals, dual);
        break;
      case Scheme::kDefault:
        opt = feasible::make_default_optimizer(problem, primals);
        dual = opt->dual_optimizer();
        break;
    }
    opt->add_projection({x}, [this](torch::Tensor& p) {
      ++projections;
      p.clamp_(-10.0, 10.0);
    });
  }

  StepResult train() {
    return opt->step([&] {
      ProblemState st((x - dvec({1.0, 2.0})).pow(2).sum());
      st.observe(rate, ConstraintState(x.sum() - 1.0).contributes_to_dual(false));
      st.observe(balance, ConstraintState(x[0] - x[1]).contributes_to_dual(false));
      return st;
    });
  }

  StepResult validate(double shift = 0.5) {
    return opt->dual_step([&] {
      ProblemState st;
      st.observe(rate, ConstraintState(x.sum() - 1.0 + shift).contributes_to_primal(false));
      st.observe(balance, ConstraintState(x[0] - x[1] + shift).contributes_to_primal(false));
      return st;
    });
  }

  // The dual state that a step must not change: the whole state, except the default's
  // penalties, which its calibration in step() sets from the training closure (by design).
  std::vector<torch::Tensor> dual_state() const { return state_of(*dual, /*penalty=*/false); }
};

// In every scheme: dual_step does not touch the primal side (parameters, gradients, optimizer
// state, projections, iteration counter), and it moves the multipliers the right way.
TEST(DualStep, LeavesThePrimalSideUntouchedInEveryScheme) {
  for (Scheme s : kSchemes) {
    SCOPED_TRACE(name_of(s));
    SchemeRun run(s);
    for (int t = 0; t < 3; ++t) run.train();  // primal state and gradients exist now
    const torch::Tensor x = run.x.detach().clone();
    const torch::Tensor grad = run.x.grad().clone();
    const auto primal = state_of(*run.primal);
    ASSERT_FALSE(primal.empty());
    const int projections = run.projections;
    const double rate0 = run.problem.multiplier_values(run.rate).item<double>();
    const StepResult r = run.validate(/*shift=*/0.5);
    EXPECT_TRUE(torch::equal(run.x.detach(), x));
    EXPECT_TRUE(torch::equal(run.x.grad(), grad));
    EXPECT_TRUE(same(state_of(*run.primal), primal));
    EXPECT_EQ(run.projections, projections);
    EXPECT_EQ(run.opt->iteration(), 3);
    EXPECT_EQ(r.iteration, 3);
    // The validation rate violation x0 + x1 - 0.5 is positive here (x stays near its start,
    // sum 0.75, after three steps of at most 0.1 per coordinate): the multiplier grows.
    ASSERT_GT(r.at(run.rate).strict_violation.item<double>(), 0.0);
    EXPECT_GT(run.problem.multiplier_values(run.rate).item<double>(), rate0);
  }
}

// In every scheme: step() with every constraint contributes_to_dual(false) keeps the
// multipliers and the dual optimizer's state exactly, warns about nothing and reports every
// constraint observed, while the primal parameters move. The dual state is made non-trivial
// first (a dual_step: Adam moments, NuPI memory, momentum buffers) so that an optimizer that
// stepped on a zero gradient would move the multipliers.
TEST(ContributesToDualFalse, StepKeepsTheMultipliersAndTheDualStateInEveryScheme) {
  for (Scheme s : kSchemes) {
    SCOPED_TRACE(name_of(s));
    SchemeRun run(s);
    WarningCollector warnings;
    c10::Warning::WarningHandlerGuard guard(&warnings);
    run.train();  // the default optimizer calibrates its penalties here
    run.validate();
    const torch::Tensor lambda = run.problem.multiplier_values(run.rate).clone();
    const torch::Tensor mu = run.problem.multiplier_values(run.balance).clone();
    const auto dual = run.dual_state();
    const torch::Tensor x = run.x.detach().clone();
    for (int t = 0; t < 3; ++t) {
      const StepResult r = run.train();
      EXPECT_TRUE(r.unobserved().empty());
      EXPECT_FALSE(std::isnan(r.max_violation()));
      EXPECT_TRUE(torch::equal(r.at(run.rate).multiplier, lambda)) << "the primal term's value";
    }
    EXPECT_TRUE(torch::equal(run.problem.multiplier_values(run.rate), lambda));
    EXPECT_TRUE(torch::equal(run.problem.multiplier_values(run.balance), mu));
    EXPECT_TRUE(same(run.dual_state(), dual));
    EXPECT_FALSE(torch::equal(run.x.detach(), x)) << "the primal player moved";
    EXPECT_TRUE(warnings.messages.empty()) << warnings.messages.front();
    // The comparison can fail: a further dual step changes the state it reads.
    run.validate();
    EXPECT_FALSE(same(run.dual_state(), dual));
  }
}

// A validation closure that forgets a constraint with a multiplier is warned about once
// (dual_step's own message); an occasional one, or one without a multiplier, is not.
TEST(DualStep, AnUnobservedConstraintIsWarnedOnceNamingDualStep) {
  Problem problem;
  auto seen = problem.add_constraint("seen", f64());
  problem.add_constraint("forgotten", f64());
  problem.add_constraint("rare", f64().occasional(true));
  problem.add_constraint("fixed", f64().formulation(std::make_shared<feasible::FixedPenalty>()));
  auto x = dvec({0.0}).requires_grad_(true);
  feasible::SimultaneousOptimizer opt(problem, {sgd({x}, 0.1)},
                                      sgd(problem.dual_parameters(), 0.1));
  WarningCollector warnings;
  c10::Warning::WarningHandlerGuard guard(&warnings);
  StepResult r;
  for (int k = 0; k < 3; ++k) {
    r = opt.dual_step([&] {
      ProblemState st;
      st.observe(seen, ConstraintState(dvec({0.5})));
      return st;
    });
  }
  ASSERT_EQ(warnings.messages.size(), 1u);
  EXPECT_HAS(warnings.messages[0], "ConstrainedOptimizer::dual_step:");
  EXPECT_HAS(warnings.messages[0], "'forgotten'");
  EXPECT_EQ(warnings.messages[0].find("'rare'"), std::string::npos);
  EXPECT_EQ(warnings.messages[0].find("'fixed'"), std::string::npos);
  // The result lists every constraint that should have been observed (fixed included).
  EXPECT_EQ(r.unobserved(), (std::vector<std::string>{"forgotten", "fixed"}));
  EXPECT_TRUE(std::isnan(r.max_violation()));
}

// ------------------------------------------------------------- the default optimizer

// make_default_optimizer with SGD (lr 0.5): the calibration of step() sets, for g = x - 1
// (gradient 1), c = p / (P |grad g|^2) = 0.4 / (0.5 * 1) = 0.8, and starts lambda_bar at the
// multiplier (0). AugmentedDual then sets, per dual step with s the validation strict violation,
//   lambda = max(0, lambda_bar + c s),  lambda_bar <- max(0, lambda_bar + w beta c s),
// beta = 0.25 (no momentum), w = 1 at a first observation and at a sign change (windup guard).
//   dual_step 1, s = 0.5:   lambda = 0.8 * 0.5 = 0.4;   lambda_bar = 0.25 * 0.4 = 0.1
//   dual_step 2, s = -0.25: lambda = max(0, 0.1 - 0.2) = 0;  lambda_bar = max(0, 0.1 - 0.05) = 0.05
TEST(DualStep, DefaultOptimizerMovesTheMultiplierTowardValidationFeasibility) {
  Problem problem;
  auto c = problem.add_constraint("c", ConstraintOptions().dtype(torch::kFloat64));
  auto x = dvec({3.0}).requires_grad_(true);
  auto opt = feasible::make_default_optimizer(problem, sgd({x}, 0.5));
  auto validate = [&](double s) {
    return opt->dual_step([&] {
      ProblemState st;
      st.observe(c, ConstraintState(dvec({s})).contributes_to_primal(false));
      return st;
    });
  };
  // Before any step() the penalty is 0: the dual step is well defined and moves nothing.
  validate(0.5);
  EXPECT_EQ(problem.multiplier_values(c).item<double>(), 0.0);
  opt->step([&] {
    ProblemState st(x.pow(2).sum());  // SGD's step per unit gradient does not read the loss
    st.observe(c, ConstraintState(x.sum() - 1.0).contributes_to_dual(false));
    return st;
  });
  EXPECT_EQ(opt->calibrations(), 1);
  // 1e-12: c = 0.4 / 0.5 is one division away from 0.8 (the rest is exact).
  EXPECT_NEAR(opt->penalty(c).item<double>(), 0.8, 1e-12);
  EXPECT_EQ(problem.multiplier_values(c).item<double>(), 0.0) << "step() kept the multiplier";
  validate(0.5);
  EXPECT_NEAR(problem.multiplier_values(c).item<double>(), 0.4, 1e-12);
  auto* dual = dynamic_cast<feasible::optim::AugmentedDual*>(opt->dual_optimizer().get());
  ASSERT_NE(dual, nullptr);
  // The base multiplier's share (docs/defaults.md, "The integral gain"): the step's curvature
  // along the constraint is s = P f'' = 0.5 * 2 = 1, the penalty fraction p = 0.4 (1 + 0.4 is
  // below 90% of the limit 2, so no stability factor), and critical damping asks for the gain
  // q = (s + p)^2 / 4 = 0.49 > beta p = 0.1: share = q / p = 1.225. The base moves by
  // share c g = 1.225 * 0.8 * 0.5 = 0.49.
  EXPECT_NEAR(dual->state_of(problem.dual_parameters()[0])->share().item<double>(), 1.225, 1e-12);
  EXPECT_NEAR(dual->state_of(problem.dual_parameters()[0])->base().item<double>(), 0.49, 1e-12);
  // lambda = [base + c g]+ = [0.49 - 0.8 * 0.25]+ = 0.29; base = 0.49 - 1.225 * 0.8 * 0.25 = 0.245.
  validate(-0.25);
  EXPECT_NEAR(problem.multiplier_values(c).item<double>(), 0.29, 1e-12);
  EXPECT_NEAR(dual->state_of(problem.dual_parameters()[0])->base().item<double>(), 0.245, 1e-12);
}

// ------------------------------------------------------------- bad numbers and misuse

struct Overflow {
  Problem problem;
  Constraint rate = problem.add_constraint("rate", f64());
  Constraint other = problem.add_constraint("other", f64());
  torch::Tensor x = dvec({0.0}).requires_grad_(true);
  std::shared_ptr<torch::optim::SGD> dual;
  std::unique_ptr<feasible::SimultaneousOptimizer> opt;

  explicit Overflow(NonFinitePolicy policy) {
    // Momentum: the general (non-fused) path, and a dual state to restore.
    dual = sgd(problem.dual_parameters(), 10.0, /*momentum=*/0.5);
    opt = std::make_unique<feasible::SimultaneousOptimizer>(
        problem, std::vector<std::shared_ptr<torch::optim::Optimizer>>{sgd({x}, 0.1)}, dual,
        feasible::ConstrainedOptimizerOptions().non_finite(policy));
  }
  StepResult validate(double rate_s, double other_s = 0.125) {
    return opt->dual_step([&] {
      ProblemState st;
      st.observe(rate, ConstraintState(dvec({rate_s})));
      st.observe(other, ConstraintState(dvec({other_s})));
      return st;
    });
  }
};

TEST(DualStepNonFinite, ThrowNamesDualStepAndTheConstraint) {
  Overflow run(NonFinitePolicy::kThrow);
  run.validate(0.125);  // lambda = 10 * 0.125 = 1.25 for both
  const torch::Tensor before = run.problem.multiplier_values(run.rate).clone();
  const auto state = state_of(*run.dual);
  try {
    run.opt->dual_step([&] {
      ProblemState st;
      st.observe(run.rate, ConstraintState(dvec({0.0}))
                               .strict_violation(dvec({std::nan("")}))
                               .contributes_to_primal(false));
      return st;
    });
    ADD_FAILURE() << "did not throw";
  } catch (const feasible::NonFiniteError& e) {
    EXPECT_EQ(e.quantity(), NonFiniteQuantity::kStrictViolation);
    EXPECT_EQ(e.constraint(), "rate");
    const std::string msg = e.what_without_backtrace();
    EXPECT_EQ(msg.rfind("ConstrainedOptimizer::dual_step: ", 0), 0u) << msg;
    EXPECT_HAS(msg, "the strict violation of constraint 'rate'");
    EXPECT_HAS(msg, "nothing was changed");
  }
  EXPECT_TRUE(torch::equal(run.problem.multiplier_values(run.rate), before));
  EXPECT_TRUE(same(state_of(*run.dual), state));
  // A multiplier that overflows: 1.25 + 10 * 1e308 = inf.
  try {
    run.validate(1e308);
    ADD_FAILURE() << "did not throw";
  } catch (const feasible::NonFiniteError& e) {
    EXPECT_EQ(e.quantity(), NonFiniteQuantity::kMultiplier);
    EXPECT_EQ(e.constraint(), "rate");
    EXPECT_HAS(e.what_without_backtrace(),
               "ConstrainedOptimizer::dual_step: the multiplier of "
               "constraint 'rate' has a NaN or Inf entry after the "
               "dual step");
  }
  EXPECT_TRUE(std::isinf(run.problem.multiplier_values(run.rate).item<double>()))
      << "kThrow keeps the dual step, as its message says";
}

TEST(DualStepNonFinite, SkipRestoresTheMultipliersAndTheDualState) {
  Overflow run(NonFinitePolicy::kSkipStep);
  run.validate(0.125);
  const torch::Tensor rate = run.problem.multiplier_values(run.rate).clone();
  const torch::Tensor other = run.problem.multiplier_values(run.other).clone();
  const auto state = state_of(*run.dual);
  const StepResult bad_s = run.validate(std::numeric_limits<double>::infinity());
  EXPECT_TRUE(bad_s.skipped);
  EXPECT_EQ(bad_s.skip_quantity, NonFiniteQuantity::kViolation);
  EXPECT_EQ(bad_s.skip_constraint, "rate");
  const StepResult overflow = run.validate(1e308);
  EXPECT_TRUE(overflow.skipped);
  EXPECT_EQ(overflow.skip_quantity, NonFiniteQuantity::kMultiplier);
  EXPECT_HAS(overflow.skip_reason, "constraint 'rate'");
  // Both constraints stepped (other's multiplier moved by 10 * 0.125 before the check): both
  // are restored, and so is the momentum buffer.
  EXPECT_TRUE(torch::equal(run.problem.multiplier_values(run.rate), rate));
  EXPECT_TRUE(torch::equal(run.problem.multiplier_values(run.other), other));
  EXPECT_TRUE(same(state_of(*run.dual), state));
  // And the run goes on as if the skipped steps never happened: buf = 0.5 (-0.125) - 0.125,
  // lambda = 1.25 + 10 * 0.1875 = 3.125.
  run.validate(0.125);
  EXPECT_EQ(run.problem.multiplier_values(run.rate).item<double>(), 3.125);
}

TEST(DualStepMisuse, UnconstrainedOptimizerHasNoDualPlayer) {
  Problem problem;
  auto c = problem.add_constraint(
      "c", f64().formulation(std::make_shared<feasible::QuadraticPenalty>()));
  auto x = dvec({0.0}).requires_grad_(true);
  feasible::UnconstrainedOptimizer opt(problem, {sgd({x}, 0.1)});
  const Closure closure = [&] {
    ProblemState st;
    st.observe(c, ConstraintState(dvec({1.0})));
    return st;
  };
  const std::string msg = error_of([&] { opt.dual_step(closure); });
  EXPECT_HAS(msg, "ConstrainedOptimizer::dual_step: UnconstrainedOptimizer has no dual player");
  EXPECT_HAS(msg, "penalty updaters run in step()");
  // Another scheme without a dual optimizer (no constraint has a multiplier) says so too.
  feasible::SimultaneousOptimizer sim(problem, {sgd({x}, 0.1)}, nullptr);
  EXPECT_HAS(error_of([&] { sim.dual_step(closure); }),
             "ConstrainedOptimizer::dual_step: this optimizer has no dual optimizer");
}

TEST(DualStepMisuse, MessagesNameDualStepAndTheConstraint) {
  Problem problem;
  auto c = problem.add_constraint("rate", f64(ConstraintKind::kInequality, 2));
  auto x = dvec({0.0}).requires_grad_(true);
  feasible::SimultaneousOptimizer opt(problem, {sgd({x}, 0.1)},
                                      sgd(problem.dual_parameters(), 0.1));
  EXPECT_HAS(error_of([&] { opt.dual_step(nullptr); }),
             "ConstrainedOptimizer::dual_step: the closure is empty");
  const std::string shape = error_of([&] {
    opt.dual_step([&] {
      ProblemState st;
      st.observe(c, ConstraintState(dvec({1.0, 2.0})).strict_violation(dvec({1.0})));
      return st;
    });
  });
  EXPECT_HAS(shape,
             "ConstrainedOptimizer::dual_step: constraint 'rate': strict violation has "
             "shape [1], expected [2]");
  const std::string loss = error_of([&] {
    opt.dual_step([&] {
      ProblemState st(dvec({1.0, 2.0}));
      st.observe(c, ConstraintState(dvec({1.0, 2.0})));
      return st;
    });
  });
  // The shared check's "ConstrainedOptimizer::step: " is replaced, not doubled.
  EXPECT_EQ(loss.rfind("ConstrainedOptimizer::dual_step: the loss must be a scalar", 0), 0u)
      << loss;
  EXPECT_EQ(to_vec(problem.multiplier_values(c)), (std::vector<double>{0.0, 0.0}));
}

// ------------------------------------------------------------- end to end

// min f(x) = (x - 2)^2 / 2 subject to E[a x] <= 1, where the training batch has a = {0.5, 1.5}
// (mean 1: g_train = x - 1) and the validation batch a = {1.5, 2.5} (mean 2: g_val = 2x - 1);
// the validation set says the constraint binds harder than training shows.
// The primal player follows the training Lagrangian: x - 2 + lambda * 1 = 0, x = 2 - lambda.
//  - dual on the validation stream: 2x - 1 = 0, so x* = 0.5 and lambda* = 1.5;
//  - dual on the training stream (the control): x - 1 = 0, so x = 1 and lambda = 1, where the
//    validation constraint is violated by 2 * 1 - 1 = 1.
struct Stream {
  torch::Tensor x = dvec({0.0}).requires_grad_(true);
  Problem problem;
  Constraint mean = problem.add_constraint("mean", f64());
  feasible::SimultaneousOptimizer opt{
      problem, {sgd({x}, 0.1)}, sgd(problem.dual_parameters(), 0.2)};
  const torch::Tensor train_a = dvec({0.5, 1.5});
  const torch::Tensor val_a = dvec({1.5, 2.5});

  void train(bool dual_from_training) {
    opt.step([&] {
      ProblemState st((x - 2.0).pow(2).sum() / 2);
      st.observe(
          mean,
          ConstraintState((train_a * x).mean() - 1.0).contributes_to_dual(dual_from_training));
      return st;
    });
  }
  StepResult validate() {
    return opt.dual_step([&] {
      ProblemState st;
      st.observe(mean, ConstraintState((val_a * x).mean() - 1.0).contributes_to_primal(false));
      return st;
    });
  }
  double lambda() const { return problem.multiplier_values(mean).item<double>(); }
};

TEST(ValidationEndToEnd, TheMultiplierMakesTheValidationConstraintHold) {
  // Every 5 training steps one dual step (primal lr 0.1, dual lr 0.2). In the errors
  // (x - 0.5, lambda - 1.5) one round is linear (while lambda > 0): five primal steps give
  // x - 0.5 <- 0.9^5 (x - 0.5) - (1 - 0.9^5)(lambda - 1.5), then lambda - 1.5 gains
  // 0.2 * 2 (x - 0.5); the round's matrix [[0.59, -0.41], [0.236, 0.836]] has complex
  // eigenvalues of modulus sqrt(det) = sqrt(0.59) ~ 0.77, so 300 rounds leave an error at
  // rounding level, far below the tolerance 1e-9. The control's step matrix
  // [[0.9, -0.1], [0.2, 1]] has modulus sqrt(0.92) ~ 0.96: 0.96^1500 ~ 1e-27.
  Stream run;
  StepResult last;
  for (int round = 0; round < 300; ++round) {
    for (int k = 0; k < 5; ++k) run.train(/*dual_from_training=*/false);
    last = run.validate();
  }
  EXPECT_NEAR(run.lambda(), 1.5, 1e-9);
  EXPECT_NEAR(run.x.item<double>(), 0.5, 1e-9);
  EXPECT_NEAR(last.at(run.mean).strict_violation.item<double>(), 0.0, 1e-9);
  EXPECT_EQ(run.opt.iteration(), 5 * 300);

  // The control: the usual loop, the multiplier fed by the training stream.
  Stream control;
  for (int t = 0; t < 5 * 300; ++t) control.train(/*dual_from_training=*/true);
  EXPECT_NEAR(control.lambda(), 1.0, 1e-9);
  EXPECT_NEAR(control.x.item<double>(), 1.0, 1e-9);
  EXPECT_NEAR(control.validate().at(control.mean).strict_violation.item<double>(), 1.0, 1e-8);
}

}  // namespace
