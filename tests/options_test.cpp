// Option validation, table-driven: every field of every option struct (ConstraintOptions,
// ConstrainedOptimizerOptions, PenaltyUpdaterOptions and the updaters' growth / increment,
// NuPIOptions, ExtraSGDOptions, ExtraAdamOptions, the projections' parameters, the multiplier
// bound and the penalty coefficient) gets out-of-range values (NaN, Inf, negative, zero, wrong
// shape, invalid enum value, forbidden combination); each must throw a c10::Error whose message
// names the struct, the field, the value received and the rule. AugmentedLagrangianOptions has
// one bool field (scale_dual_by_penalty) with no invalid value, so it has no row. A second table
// checks that the boundary values the rules allow are accepted.
#include <feasible/feasible.h>
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "test_util.h"

namespace {

using feasible::ConstraintKind;
using feasible::ConstraintOptions;
using feasible::MultiplierKind;
using feasible_test::error_of;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

// One row: what is built, and the four pieces its message must hold.
struct Case {
  std::string name;            // for the failure trace
  std::function<void()> make;  // builds the object with the bad value (must throw)
  std::string type;            // the struct (or function) name
  std::string field;           // the field name
  std::string value;           // the value received, as printed
  std::string rule;            // the rule
};

// ConstraintOptions are checked by Problem::add_constraint, which must also leave the problem
// unchanged (no constraint, no dual parameter).
std::function<void()> add(ConstraintOptions options) {
  return [options]() {
    feasible::Problem problem;
    try {
      problem.add_constraint("c", options);
    } catch (...) {
      EXPECT_TRUE(problem.constraints().empty()) << "a rejected constraint was registered";
      EXPECT_TRUE(problem.dual_parameters().empty());
      throw;
    }
  };
}

std::shared_ptr<feasible::Formulation> al() {
  return std::make_shared<feasible::AugmentedLagrangian>();
}

std::vector<torch::Tensor> params2() { return {torch::zeros({2}, torch::requires_grad())}; }

void nupi(feasible::optim::NuPIOptions o) { feasible::optim::NuPI opt(params2(), o); }
void extra_sgd(feasible::optim::ExtraSGDOptions o) { feasible::optim::ExtraSGD opt(params2(), o); }
void extra_adam(feasible::optim::ExtraAdamOptions o) {
  feasible::optim::ExtraAdam opt(params2(), o);
}
void mult(double growth, feasible::PenaltyUpdaterOptions o = feasible::PenaltyUpdaterOptions()) {
  feasible::MultiplicativePenaltyUpdater u(growth, o);
}
void addi(double increment, feasible::PenaltyUpdaterOptions o = feasible::PenaltyUpdaterOptions()) {
  feasible::AdditivePenaltyUpdater u(increment, o);
}

std::vector<Case> cases() {
  using feasible::PenaltyUpdaterOptions;
  using feasible::optim::ExtraAdamOptions;
  using feasible::optim::ExtraSGDOptions;
  using feasible::optim::NuPIOptions;
  // Fresh options per row (the setters modify in place).
  auto ineq2 = [] { return ConstraintOptions(ConstraintKind::kInequality, 2); };
  auto eq2 = [] { return ConstraintOptions(ConstraintKind::kEquality, 2); };
  auto implicit = [] {
    return ConstraintOptions()
        .multiplier(MultiplierKind::kImplicit)
        .implicit_model(torch::nn::AnyModule(torch::nn::Linear(1, 1)));
  };
  const std::string co = "ConstraintOptions";
  std::vector<Case> t;
  // ---------------------------------------------------------------- ConstraintOptions
  t.push_back({"kind enum", add(ConstraintOptions(static_cast<ConstraintKind>(7), 1)), co, "kind",
               "got 7", "must be ConstraintKind::kInequality or kEquality"});
  t.push_back({"size 0", add(ConstraintOptions(ConstraintKind::kInequality, 0)), co, "size",
               "got 0", "must be >= 1"});
  t.push_back({"size -3", add(ConstraintOptions(ConstraintKind::kEquality, -3)), co, "size",
               "got -3", "must be >= 1"});
  t.push_back({"formulation null", add(ConstraintOptions().formulation(nullptr)), co, "formulation",
               "got nullptr", "must not be null"});
  t.push_back({"multiplier enum",
               add(ConstraintOptions().multiplier(static_cast<MultiplierKind>(9))), co,
               "multiplier", "got 9", "must be MultiplierKind::kDense, kIndexed or kImplicit"});
  t.push_back({"init NaN", add(ineq2().init(kNaN)), co, "init", "got nan", "must be finite"});
  t.push_back({"init Inf", add(eq2().init(kInf)), co, "init", "got inf", "must be finite"});
  t.push_back({"init -Inf", add(eq2().init(-kInf)), co, "init", "got -inf", "must be finite"});
  t.push_back({"init negative (inequality)", add(ineq2().init(-1.0)), co, "init", "got -1",
               "must be >= 0 for an inequality constraint"});
  t.push_back({"init_values length", add(ineq2().init_values(torch::ones({3}))), co, "init_values",
               "got shape [3]", "must have shape [2]"});
  t.push_back({"init_values 2-D", add(ineq2().init_values(torch::ones({2, 1}))), co, "init_values",
               "got shape [2, 1]", "must have shape [2]"});
  t.push_back({"init_values NaN", add(eq2().init_values(torch::tensor({1.0, kNaN}))), co,
               "init_values", "got nan at entry 1", "must be finite"});
  t.push_back({"init_values Inf", add(eq2().init_values(torch::tensor({-kInf, 0.0}))), co,
               "init_values", "got -inf at entry 0", "must be finite"});
  t.push_back({"init_values negative", add(ineq2().init_values(torch::tensor({0.5, -0.5}))), co,
               "init_values", "got min -0.5", "must be >= 0 for an inequality constraint"});
  t.push_back({"max_multiplier 0", add(ConstraintOptions().max_multiplier(0.0)), co,
               "max_multiplier", "got 0", "must be finite and > 0"});
  t.push_back({"max_multiplier -1", add(ConstraintOptions().max_multiplier(-1.0)), co,
               "max_multiplier", "got -1", "must be finite and > 0"});
  t.push_back({"max_multiplier NaN", add(ConstraintOptions().max_multiplier(kNaN)), co,
               "max_multiplier", "got nan", "must be finite and > 0"});
  t.push_back({"max_multiplier Inf", add(ConstraintOptions().max_multiplier(kInf)), co,
               "max_multiplier", "got inf", "must be finite and > 0"});
  t.push_back({"max_multiplier implicit", add(implicit().max_multiplier(3.0)), co, "max_multiplier",
               "got 3", "cannot bound an implicit multiplier"});
  t.push_back({"lazy on dense", add(ineq2().lazy(true)), co, "lazy", "got true",
               "must be false without an indexed multiplier"});
  t.push_back({"sparse_gradient on dense", add(ineq2().sparse_gradient(true)), co,
               "sparse_gradient", "got true", "must be false without an indexed multiplier"});
  t.push_back({"sparse_gradient with lazy",
               add(ineq2().multiplier(MultiplierKind::kIndexed).lazy(true).sparse_gradient(true)),
               co, "sparse_gradient", "got true", "must be false when lazy is true"});
  t.push_back({"implicit_model missing",
               add(ConstraintOptions().multiplier(MultiplierKind::kImplicit)), co, "implicit_model",
               "got an empty model", "must be set for MultiplierKind::kImplicit"});
  t.push_back(
      {"implicit_model on dense",
       add(ConstraintOptions().implicit_model(torch::nn::AnyModule(torch::nn::Linear(1, 1)))), co,
       "implicit_model", "got a model", "must be empty unless"});
  t.push_back({"implicit multiplier without a multiplier",
               add(implicit().formulation(std::make_shared<feasible::QuadraticPenalty>())), co,
               "multiplier", "got kImplicit",
               "must not be MultiplierKind::kImplicit with QuadraticPenalty"});
  t.push_back({"penalty 0", add(ConstraintOptions().formulation(al()).penalty(0.0)), co, "penalty",
               "got 0", "must be finite and > 0"});
  t.push_back({"penalty -2",
               add(ConstraintOptions()
                       .formulation(std::make_shared<feasible::QuadraticPenalty>())
                       .penalty(-2.0)),
               co, "penalty", "got -2", "must be finite and > 0"});
  t.push_back({"penalty NaN",
               add(ConstraintOptions()
                       .formulation(std::make_shared<feasible::FixedPenalty>())
                       .penalty(kNaN)),
               co, "penalty", "got nan", "must be finite and > 0"});
  t.push_back({"penalty Inf", add(ConstraintOptions().formulation(al()).penalty(kInf)), co,
               "penalty", "got inf", "must be finite and > 0"});
  t.push_back({"penalty_per_entry without penalty", add(ineq2().penalty_per_entry(true)), co,
               "penalty_per_entry", "got true", "must be false with Lagrangian"});
  t.push_back(
      {"penalty_updater on FixedPenalty",
       add(ConstraintOptions()
               .formulation(std::make_shared<feasible::FixedPenalty>())
               .penalty_updater(std::make_shared<feasible::MultiplicativePenaltyUpdater>(2.0))),
       co, "penalty_updater", "got an updater (multiplicative)", "must be null with FixedPenalty"});
  t.push_back({"penalty_updater on Lagrangian",
               add(ConstraintOptions().penalty_updater(
                   std::make_shared<feasible::AdditivePenaltyUpdater>(1.0))),
               co, "penalty_updater", "got an updater (additive)", "must be null with Lagrangian"});
  t.push_back({"updater cap below penalty",
               add(ConstraintOptions().formulation(al()).penalty(10.0).penalty_updater(
                   std::make_shared<feasible::AdditivePenaltyUpdater>(
                       1.0, PenaltyUpdaterOptions().max_value(5.0)))),
               "PenaltyUpdaterOptions", "max_value", "max_value (5)",
               "must be >= ConstraintOptions.penalty (10)"});
  t.push_back({"restart_on_feasible on equality",
               add(ConstraintOptions(ConstraintKind::kEquality, 1)
                       .formulation(al())
                       .penalty_updater(std::make_shared<feasible::MultiplicativePenaltyUpdater>(
                           2.0, PenaltyUpdaterOptions().restart_on_feasible(true)))),
               "PenaltyUpdaterOptions", "restart_on_feasible", "got true",
               "must be false for an equality constraint"});
  t.push_back({"dtype Long", add(ConstraintOptions().dtype(torch::kLong)), co, "dtype", "got Long",
               "must be a floating-point type"});
  t.push_back({"dtype Bool", add(ConstraintOptions().dtype(torch::kBool)), co, "dtype", "got Bool",
               "must be a floating-point type"});
  t.push_back({"device cuda:99", add(ConstraintOptions().device(torch::Device(torch::kCUDA, 99))),
               co, "device", "got cuda:99", "must be an available device"});
  // ---------------------------------------------------------------- ConstrainedOptimizerOptions
  t.push_back({"non_finite enum",
               [] {
                 feasible::Problem problem;
                 auto x = torch::zeros({1}, torch::requires_grad());
                 feasible::UnconstrainedOptimizer opt(
                     problem,
                     {std::make_shared<torch::optim::SGD>(std::vector<torch::Tensor>{x},
                                                          torch::optim::SGDOptions(0.1))},
                     feasible::ConstrainedOptimizerOptions().non_finite(
                         static_cast<feasible::NonFinitePolicy>(5)));
               },
               "ConstrainedOptimizerOptions", "non_finite", "got 5",
               "must be NonFinitePolicy::kThrow or kSkipStep"});
  // ---------------------------------------------------------------- penalty updaters
  const std::string pu = "PenaltyUpdaterOptions";
  for (double v : {-0.1, kNaN, kInf}) {
    t.push_back({"tolerance " + c10::str(v),
                 [v] { mult(2.0, PenaltyUpdaterOptions().tolerance(v)); }, pu, "tolerance",
                 "got " + c10::str(v), "must be finite and >= 0"});
  }
  for (double v : {0.0, -1.0, kNaN, kInf}) {
    t.push_back({"max_value " + c10::str(v),
                 [v] { addi(1.0, PenaltyUpdaterOptions().max_value(v)); }, pu, "max_value",
                 "got " + c10::str(v), "must be finite and > 0"});
  }
  for (double v : {1.0, 0.5, -2.0, kNaN, kInf}) {
    t.push_back({"growth " + c10::str(v), [v] { mult(v); }, "MultiplicativePenaltyUpdater",
                 "growth", "got " + c10::str(v), "must be finite and > 1"});
  }
  for (double v : {0.0, -1.0, kNaN, kInf}) {
    t.push_back({"increment " + c10::str(v), [v] { addi(v); }, "AdditivePenaltyUpdater",
                 "increment", "got " + c10::str(v), "must be finite and > 0"});
  }
  // ---------------------------------------------------------------- NuPIOptions
  const std::string no = "NuPIOptions";
  for (double v : {-0.1, kNaN, kInf}) {
    const std::string got = "got " + c10::str(v);
    t.push_back({"nupi lr " + got, [v] { nupi(NuPIOptions(v)); }, no, "lr", got,
                 "must be finite and >= 0"});
    t.push_back({"nupi kp " + got, [v] { nupi(NuPIOptions(0.1).kp(v)); }, no, "kp", got,
                 "must be finite and >= 0"});
    t.push_back({"nupi ki " + got, [v] { nupi(NuPIOptions(0.1).ki(v)); }, no, "ki", got,
                 "must be finite and >= 0"});
  }
  for (double v : {-0.1, 1.0, 1.5, kNaN}) {
    t.push_back({"nupi nu " + c10::str(v), [v] { nupi(NuPIOptions(0.1).nu(v)); }, no, "nu",
                 "got " + c10::str(v), "must be in [0, 1)"});
  }
  t.push_back({"kp_per_entry negative",
               [] {
                 nupi(NuPIOptions(0.1).kp_per_entry(torch::tensor({1.0, -1.0})));
               },
               no, "kp_per_entry", "got -1 at entry 1", "must be finite and >= 0 everywhere"});
  t.push_back({"kp_per_entry NaN",
               [] {
                 nupi(NuPIOptions(0.1).kp_per_entry(torch::tensor({kNaN, 1.0})));
               },
               no, "kp_per_entry", "got nan at entry 0", "must be finite and >= 0 everywhere"});
  t.push_back({"kp_per_entry shape", [] { nupi(NuPIOptions(0.1).kp_per_entry(torch::ones({3}))); },
               no, "kp_per_entry", "got shape [3]", "must broadcast to the parameter's shape [2]"});
  t.push_back({"ki_per_entry negative",
               [] { nupi(NuPIOptions(0.1).ki_per_entry(torch::tensor({-0.5}))); }, no,
               "ki_per_entry", "got -0.5 at entry 0", "must be finite and >= 0 everywhere"});
  t.push_back({"ki_per_entry Inf",
               [] {
                 nupi(NuPIOptions(0.1).ki_per_entry(torch::tensor({1.0, kInf})));
               },
               no, "ki_per_entry", "got inf at entry 1", "must be finite and >= 0 everywhere"});
  t.push_back({"ki_per_entry shape",
               [] {
                 nupi(NuPIOptions(0.1).ki_per_entry(torch::ones({2, 2})));
               },
               no, "ki_per_entry", "got shape [2, 2]",
               "must broadcast to the parameter's shape [2]"});
  t.push_back({"nupi init enum",
               [] { nupi(NuPIOptions(0.1).init(static_cast<feasible::optim::NuPIInit>(4))); }, no,
               "init", "got 4", "must be NuPIInit::kSGD or kZero"});
  t.push_back({"nupi group kp",
               [] {
                 std::vector<torch::optim::OptimizerParamGroup> groups;
                 groups.emplace_back(params2(),
                                     std::make_unique<NuPIOptions>(NuPIOptions(0.1).kp(-2.0)));
                 feasible::optim::NuPI opt(std::move(groups), NuPIOptions(0.1));
               },
               no, "kp", "got -2", "must be finite and >= 0"});
  // ---------------------------------------------------------------- ExtraSGDOptions
  for (double v : {-1.0, kNaN, kInf}) {
    t.push_back({"extra sgd lr " + c10::str(v), [v] { extra_sgd(ExtraSGDOptions(v)); },
                 "ExtraSGDOptions", "lr", "got " + c10::str(v), "must be finite and >= 0"});
  }
  t.push_back({"extra sgd group lr",
               [] {
                 std::vector<torch::optim::OptimizerParamGroup> groups;
                 groups.emplace_back(params2(),
                                     std::make_unique<ExtraSGDOptions>(ExtraSGDOptions(-3.0)));
                 feasible::optim::ExtraSGD opt(std::move(groups), ExtraSGDOptions(0.1));
               },
               "ExtraSGDOptions", "lr", "got -3", "must be finite and >= 0"});
  // ---------------------------------------------------------------- ExtraAdamOptions
  const std::string ea = "ExtraAdamOptions";
  for (double v : {-1.0, kNaN, kInf}) {
    t.push_back({"extra adam lr " + c10::str(v), [v] { extra_adam(ExtraAdamOptions(v)); }, ea, "lr",
                 "got " + c10::str(v), "must be finite and >= 0"});
  }
  for (double v : {-0.1, 1.0, kNaN}) {
    t.push_back({"beta1 " + c10::str(v), [v] { extra_adam(ExtraAdamOptions(0.1).beta1(v)); }, ea,
                 "beta1", "got " + c10::str(v), "must be in [0, 1)"});
    t.push_back({"beta2 " + c10::str(v), [v] { extra_adam(ExtraAdamOptions(0.1).beta2(v)); }, ea,
                 "beta2", "got " + c10::str(v), "must be in [0, 1)"});
  }
  for (double v : {0.0, -1.0, kNaN, kInf}) {
    t.push_back({"eps " + c10::str(v), [v] { extra_adam(ExtraAdamOptions(0.1).eps(v)); }, ea, "eps",
                 "got " + c10::str(v), "must be finite and > 0"});
  }
  t.push_back({"extra adam group beta1",
               [] {
                 std::vector<torch::optim::OptimizerParamGroup> groups;
                 groups.emplace_back(params2(), std::make_unique<ExtraAdamOptions>(
                                                    ExtraAdamOptions(0.1).beta1(1.0)));
                 feasible::optim::ExtraAdam opt(std::move(groups), ExtraAdamOptions(0.1));
               },
               ea, "beta1", "got 1", "must be in [0, 1)"});
  // ---------------------------------------------------------------- projections
  t.push_back({"box lower NaN", [] { feasible::projection::box(kNaN, 1.0); }, "projection::box",
               "lower", "got nan", "must not be NaN"});
  t.push_back({"box upper NaN", [] { feasible::projection::box(0.0, kNaN); }, "projection::box",
               "upper", "got nan", "must not be NaN"});
  t.push_back({"box lower > upper", [] { feasible::projection::box(2.0, 1.0); }, "projection::box",
               "lower", "got lower = 2, upper = 1", "must be <= upper"});
  for (double v : {0.0, -1.0, kNaN, kInf}) {
    t.push_back({"simplex radius " + c10::str(v), [v] { feasible::projection::simplex(v); },
                 "projection::simplex", "radius", "got " + c10::str(v), "must be > 0 and finite"});
    t.push_back({"l2_ball radius " + c10::str(v), [v] { feasible::projection::l2_ball(v); },
                 "projection::l2_ball", "radius", "got " + c10::str(v), "must be > 0 and finite"});
  }
  // ---------------------------------------------------------------- multiplier bound, penalty
  for (double v : {0.0, -1.0, kNaN, kInf}) {
    t.push_back({"Multiplier max_value " + c10::str(v),
                 [v] {
                   feasible::DenseMultiplier m(ConstraintKind::kInequality, 2, torch::zeros({2}));
                   m.set_max_value(v);
                 },
                 "Multiplier", "max_value", "got " + c10::str(v), "must be finite and > 0"});
  }
  for (double v : {0.0, -1.0, kNaN, kInf}) {
    t.push_back({"PenaltyCoefficient init " + c10::str(v),
                 [v] { feasible::PenaltyCoefficient c(v, 2, true, torch::TensorOptions()); },
                 "PenaltyCoefficient", "init", "got " + c10::str(v), "must be finite and > 0"});
  }
  t.push_back({"PenaltyCoefficient init underflows in float32",
               [] {
                 feasible::PenaltyCoefficient c(1e-50, 1, false,
                                                torch::TensorOptions().dtype(torch::kFloat32));
               },
               "PenaltyCoefficient", "init", "got 1e-50", "must be > 0 once stored as Float"});
  return t;
}

TEST(Options, EveryFieldRejectsOutOfRangeValuesWithStructFieldValueAndRule) {
  const auto table = cases();
  for (const auto& c : table) {
    SCOPED_TRACE(c.name);
    const std::string msg = error_of(c.make);
    for (const std::string& piece : {c.type, c.field, c.value, c.rule}) {
      EXPECT_NE(msg.find(piece), std::string::npos) << "message: " << msg << "\nmissing: " << piece;
    }
    // The struct and the field appear together, as "<Struct>.<field>" (projections: "fn: field").
    const bool projection = c.type.rfind("projection::", 0) == 0;
    const std::string joined = projection ? c.type + ": " + c.field : c.type + "." + c.field;
    EXPECT_NE(msg.find(joined), std::string::npos) << "message: " << msg << "\nmissing: " << joined;
  }
  // The number of rows, printed so that a run's log shows how many cases were checked.
  std::cout << "[options_test] " << table.size() << " bad-option cases\n";
  EXPECT_GE(table.size(), 100u);
}

// Every options struct has validate(): the defaults pass, a bad field throws the common message
// "<Struct>.<field> must <rule>, got <value>", and ConstraintOptions prefixes the context it is
// given (Problem::add_constraint passes "Problem::add_constraint('<name>')").
TEST(Options, ValidateOnEveryStructUsesTheCommonMessage) {
  using namespace feasible;
  using namespace feasible::optim;
  EXPECT_NO_THROW(ConstraintOptions().validate());
  EXPECT_NO_THROW(ConstrainedOptimizerOptions().validate());
  EXPECT_NO_THROW(PenaltyUpdaterOptions().validate());
  EXPECT_NO_THROW(AugmentedLagrangianOptions().validate());
  EXPECT_NO_THROW(NuPIOptions().validate());
  EXPECT_NO_THROW(ExtraSGDOptions(0.1).validate());
  EXPECT_NO_THROW(ExtraAdamOptions().validate());
  EXPECT_NO_THROW(L0GateOptions().validate());
  EXPECT_NO_THROW(L0LinearOptions(2, 3).validate());
  const std::vector<std::pair<std::string, std::function<void()>>> bad = {
      {"ConstraintOptions.size must be >= 1, got 0",
       [] { ConstraintOptions(ConstraintKind::kInequality, 0).validate(); }},
      {"ctx: ConstraintOptions.size must be >= 1, got 0",
       [] { ConstraintOptions(ConstraintKind::kInequality, 0).validate("ctx"); }},
      {"Problem::add_constraint('c'): ConstraintOptions.size must be >= 1, got 0",
       add(ConstraintOptions(ConstraintKind::kInequality, 0))},
      {"ConstrainedOptimizerOptions.non_finite must be NonFinitePolicy::kThrow or kSkipStep, got 7",
       [] {
         ConstrainedOptimizerOptions().non_finite(static_cast<NonFinitePolicy>(7)).validate();
       }},
      {"PenaltyUpdaterOptions.tolerance must be finite and >= 0, got -1",
       [] { PenaltyUpdaterOptions().tolerance(-1).validate(); }},
      {"NuPIOptions.nu must be in [0, 1), got 1", [] { NuPIOptions().nu(1).validate(); }},
      {"NuPIOptions.kp_per_entry must broadcast to the parameter's shape [2], got shape [3]",
       [] { NuPIOptions().kp_per_entry(torch::ones({3})).validate({torch::zeros({2})}); }},
      {"ExtraSGDOptions.lr must be finite and >= 0, got -1",
       [] { ExtraSGDOptions(-1).validate(); }},
      {"ExtraAdamOptions.eps must be finite and > 0, got 0",
       [] { ExtraAdamOptions().eps(0).validate(); }},
      {"L0GateOptions.noise_eps must be in (0, 0.5), got 0.5",
       [] { L0GateOptions().noise_eps(0.5).validate(); }},
      {"L0LinearOptions.in_features must be >= 1, got 0", [] { L0LinearOptions(0, 3).validate(); }},
  };
  for (const auto& [want, make] : bad) {
    const std::string msg = error_of(make);
    EXPECT_EQ(msg.rfind(want, 0), 0u)
        << "message: " << msg << "\nwanted it to start with: " << want;
  }
}

// The boundary values that the rules allow are accepted (the rules are not stricter than
// documented).
TEST(Options, BoundaryValuesAreAccepted) {
  using feasible::PenaltyUpdaterOptions;
  using feasible::optim::ExtraAdamOptions;
  using feasible::optim::ExtraSGDOptions;
  using feasible::optim::NuPIOptions;
  const std::vector<std::pair<std::string, std::function<void()>>> ok = {
      {"size 1, init 0", add(ConstraintOptions(ConstraintKind::kInequality, 1).init(0.0))},
      {"equality init -5", add(ConstraintOptions(ConstraintKind::kEquality, 2).init(-5.0))},
      {"init_values [size]", add(ConstraintOptions(ConstraintKind::kEquality, 2)
                                     .init_values(torch::tensor({-1.0, 1.0})))},
      {"init_values scalar for size 1",
       add(ConstraintOptions(ConstraintKind::kInequality, 1).init_values(torch::tensor(0.5)))},
      {"tiny max_multiplier", add(ConstraintOptions().max_multiplier(1e-300))},
      {"indexed lazy", add(ConstraintOptions(ConstraintKind::kInequality, 3)
                               .multiplier(MultiplierKind::kIndexed)
                               .lazy(true))},
      {"cap equal to penalty", add(ConstraintOptions().formulation(al()).penalty(2.0).penalty_updater(
                                   std::make_shared<feasible::AdditivePenaltyUpdater>(
                                       1.0, PenaltyUpdaterOptions().max_value(2.0))))},
      {"restart on inequality",
       add(ConstraintOptions().formulation(al()).penalty_updater(
           std::make_shared<feasible::MultiplicativePenaltyUpdater>(
               2.0, PenaltyUpdaterOptions().restart_on_feasible(true))))},
      {"dtype float64", add(ConstraintOptions().dtype(torch::kFloat64))},
      {"tolerance 0", [] { mult(1.0000001, PenaltyUpdaterOptions().tolerance(0.0)); }},
      {"increment tiny", [] { addi(1e-300); }},
      {"nupi zeros", [] { nupi(NuPIOptions(0.0).kp(0.0).ki(0.0).nu(0.0)); }},
      {"nupi nu just below 1", [] { nupi(NuPIOptions(0.1).nu(0.999999)); }},
      {"nupi scalar per-entry gains",
       [] { nupi(NuPIOptions(0.1).kp_per_entry(torch::tensor(2.0)).ki_per_entry(torch::zeros({2}))); }},
      {"extra sgd lr 0", [] { extra_sgd(ExtraSGDOptions(0.0)); }},
      {"extra adam betas 0", [] { extra_adam(ExtraAdamOptions(0.0).beta1(0.0).beta2(0.0).eps(1e-300)); }},
      {"box lower == upper", [] { feasible::projection::box(1.0, 1.0); }},
      {"box unbounded", [] { feasible::projection::box(-kInf, kInf); }},
      {"simplex tiny radius", [] { feasible::projection::simplex(1e-300); }},
      {"l2_ball large radius", [] { feasible::projection::l2_ball(1e300); }},
  };
  for (const auto& c : ok) {
    SCOPED_TRACE(c.first);
    EXPECT_NO_THROW(c.second());
  }
}

}  // namespace
