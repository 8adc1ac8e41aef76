// The non-finite policy in every scheme: a NaN or Inf injected into the loss, a violation, a
// strict violation, a primal gradient (sqrt at 0 in the closure) or a multiplier after a dual
// step or extrapolation (a dual step that overflows), under NonFinitePolicy::kThrow and kSkipStep.
// Throw: the message names the quantity, and what the documentation says is untouched is
// bit-for-bit unchanged. Skip: parameters, multipliers, penalty coefficients and the state of
// every optimizer (SGD momentum, Adam / ExtraAdam moments and step counts, NuPI memory and seen
// mask, extrapolation points) are bit-for-bit as before, skip_quantity / skip_constraint /
// skip_reason say what was bad, and the run then continues exactly like a run in which the bad
// step never happened. Also: multiplier bounds (max_multiplier) for every multiplier kind in
// every scheme, penalty caps (penalty_capped) in every scheme, and lazy indexed rows under
// extragradient when the two evaluations observe different rows.
#include <feasible/feasible.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <functional>
#include <limits>
#include <memory>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "test_util.h"

namespace {

using feasible::ConstraintKind;
using feasible::ConstraintOptions;
using feasible::ConstraintState;
using feasible::MultiplierKind;
using feasible::NonFinitePolicy;
using feasible::NonFiniteQuantity;
using feasible::ProblemState;
using feasible::StepResult;
using feasible_test::error_of;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

auto f64() { return torch::TensorOptions().dtype(torch::kFloat64); }
torch::Tensor d(std::vector<double> v) { return torch::tensor(v, f64()); }

enum class Scheme { kSimultaneous, kDualPrimal, kPrimalDual, kExtragradient, kUnconstrained };
enum class Dual { kAdam, kNuPI, kExtraAdam, kExtraSGD, kNone };

const char* name_of(Scheme s) {
  switch (s) {
    case Scheme::kSimultaneous:
      return "Simultaneous";
    case Scheme::kDualPrimal:
      return "AlternatingDualPrimal";
    case Scheme::kPrimalDual:
      return "AlternatingPrimalDual";
    case Scheme::kExtragradient:
      return "Extragradient";
    default:
      return "Unconstrained";
  }
}
const char* name_of(Dual d) {
  switch (d) {
    case Dual::kAdam:
      return "Adam";
    case Dual::kNuPI:
      return "NuPI";
    case Dual::kExtraAdam:
      return "ExtraAdam";
    case Dual::kExtraSGD:
      return "ExtraSGD";
    default:
      return "none";
  }
}

// What to inject and where: `call` 0 is the step's first evaluation, 1 the second evaluation
// (primal-dual) or the half point (extragradient).
enum class Fault {
  kNone,
  kLoss,
  kViolation,
  kStrict,
  kGradient,
  kMultiplierDense,
  kMultiplierRows
};
struct Injection {
  Fault fault;
  int call;
};

using feasible_test::key_of;

// Everything a step may change, copied: named tensors and named counters, in a fixed order.
struct State {
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  std::vector<std::pair<std::string, int64_t>> counters;
};

// Which parts of a State to compare.
enum Part : unsigned {
  kPrimalParams = 1,
  kPrimalStates = 2,
  kMultipliers = 4,
  kDualStates = 8,
  kPenalties = 16,
  kAll = 31
};

// The test rig: x in R^3 (SGD with momentum, or ExtraSGD) and w in R^2 (Adam, or ExtraAdam),
// two primal optimizers; constraints
//   ineq  dense inequality [2], Lagrangian:     [x0 + x1 - 1, x2 - 0.5]
//   eq    dense equality [1], AugmentedLagrangian, per-entry c, multiplicative updater: [w0 - 0.3]
//   rows  indexed inequality [6] (lazy, or sparse_gradient under NuPI), Lagrangian: 2 rows
//   quad  QuadraticPenalty inequality [1], additive updater: [w0 + w1 - 0.1]
// Unconstrained: only quad and fixed (FixedPenalty [1]: [x2 - 1]).
struct Rig {
  Scheme scheme;
  Dual dual_kind;
  torch::Tensor x = d({0.2, 0.4, 0.9}).requires_grad_(true);
  torch::Tensor w = d({0.6, -0.1}).requires_grad_(true);
  feasible::Problem problem;
  feasible::Constraint ineq, eq, rows, quad, fixed;
  std::vector<std::shared_ptr<torch::optim::Optimizer>> primal;
  std::shared_ptr<torch::optim::Optimizer> dual;
  std::unique_ptr<feasible::ConstrainedOptimizer> opt;
  int call = 0;  // evaluations within the current step

  Rig(Scheme s, Dual dk, NonFinitePolicy policy) : scheme(s), dual_kind(dk) {
    const bool extra = s == Scheme::kExtragradient;
    quad = problem.add_constraint(
        "quad", ConstraintOptions(ConstraintKind::kInequality, 1)
                    .formulation(std::make_shared<feasible::QuadraticPenalty>())
                    .penalty(0.5)
                    .penalty_updater(std::make_shared<feasible::AdditivePenaltyUpdater>(0.25))
                    .dtype(torch::kFloat64));
    if (s == Scheme::kUnconstrained) {
      fixed = problem.add_constraint("fixed",
                                     ConstraintOptions(ConstraintKind::kInequality, 1)
                                         .formulation(std::make_shared<feasible::FixedPenalty>())
                                         .penalty(0.3)
                                         .dtype(torch::kFloat64));
    } else {
      ineq = problem.add_constraint(
          "ineq",
          ConstraintOptions(ConstraintKind::kInequality, 2).init(0.1).dtype(torch::kFloat64));
      eq = problem.add_constraint(
          "eq", ConstraintOptions(ConstraintKind::kEquality, 1)
                    .formulation(std::make_shared<feasible::AugmentedLagrangian>())
                    .penalty(1.0)
                    .penalty_per_entry(true)
                    .penalty_updater(std::make_shared<feasible::MultiplicativePenaltyUpdater>(2.0))
                    .dtype(torch::kFloat64));
      const bool sparse = dk == Dual::kNuPI;
      rows = problem.add_constraint("rows", ConstraintOptions(ConstraintKind::kInequality, 6)
                                                .multiplier(MultiplierKind::kIndexed)
                                                .lazy(!sparse)
                                                .sparse_gradient(bool(sparse))
                                                .dtype(torch::kFloat64));
    }
    if (extra) {
      primal.push_back(std::make_shared<feasible::optim::ExtraSGD>(
          std::vector<torch::Tensor>{x}, feasible::optim::ExtraSGDOptions(0.05)));
      primal.push_back(std::make_shared<feasible::optim::ExtraAdam>(
          std::vector<torch::Tensor>{w}, feasible::optim::ExtraAdamOptions(0.05)));
    } else {
      primal.push_back(std::make_shared<torch::optim::SGD>(
          std::vector<torch::Tensor>{x}, torch::optim::SGDOptions(0.05).momentum(0.9)));
      primal.push_back(std::make_shared<torch::optim::Adam>(std::vector<torch::Tensor>{w},
                                                            torch::optim::AdamOptions(0.05)));
    }
    const auto duals = problem.dual_parameters();
    switch (dk) {
      case Dual::kAdam:
        dual = std::make_shared<torch::optim::Adam>(duals, torch::optim::AdamOptions(0.05));
        break;
      case Dual::kNuPI:
        // lr 2: a strict violation of DBL_MAX overflows the multiplier in one step.
        dual = std::make_shared<feasible::optim::NuPI>(
            duals, feasible::optim::NuPIOptions(2.0).kp(1.0).ki(1.0).nu(0.3));
        break;
      case Dual::kExtraAdam:
        dual = std::make_shared<feasible::optim::ExtraAdam>(
            duals, feasible::optim::ExtraAdamOptions(0.05));
        break;
      case Dual::kExtraSGD:
        dual = std::make_shared<feasible::optim::ExtraSGD>(duals,
                                                           feasible::optim::ExtraSGDOptions(2.0));
        break;
      default:
        break;
    }
    const auto options = feasible::ConstrainedOptimizerOptions().non_finite(policy);
    switch (s) {
      case Scheme::kSimultaneous:
        opt = std::make_unique<feasible::SimultaneousOptimizer>(problem, primal, dual, options);
        break;
      case Scheme::kDualPrimal:
        opt = std::make_unique<feasible::AlternatingDualPrimalOptimizer>(problem, primal, dual,
                                                                         options);
        break;
      case Scheme::kPrimalDual:
        opt = std::make_unique<feasible::AlternatingPrimalDualOptimizer>(problem, primal, dual,
                                                                         options);
        break;
      case Scheme::kExtragradient:
        opt = std::make_unique<feasible::ExtragradientOptimizer>(problem, primal, dual, options);
        break;
      default:
        opt = std::make_unique<feasible::UnconstrainedOptimizer>(problem, primal, options);
    }
  }

  // The closure of good step `g` (which rows of `rows` it observes), with `inj` injected.
  ProblemState evaluate(int64_t g, Injection inj) {
    const int c = call++;
    auto bad = [&](Fault f) { return inj.fault == f && inj.call == c; };
    torch::Tensor loss = (x - d({1.0, 2.0, 3.0})).pow(2).sum() + (w - d({0.5, -0.5})).pow(2).sum();
    if (bad(Fault::kLoss)) loss = loss * kNaN;
    // sqrt at 0: the value is 0 (the loss is unchanged), the gradient 0 * Inf = NaN, on w.
    if (bad(Fault::kGradient)) loss = loss + torch::sqrt((w[0] - w[0].detach()).pow(2));
    ProblemState st(loss);
    st.observe(quad, ConstraintState((w[0] + w[1] - 0.1).reshape({1})));
    if (scheme == Scheme::kUnconstrained) {
      torch::Tensor v = (x[2] - 1.0).reshape({1});
      st.observe(fixed, ConstraintState(bad(Fault::kViolation) ? v + kInf : v));
      if (bad(Fault::kStrict)) {
        // The strict violation of a penalty constraint is read by its updater.
        st.observed[0].second.strict_violation(d({kNaN}));
      }
      return st;
    }
    ConstraintState si(torch::stack({x[0] + x[1] - 1.0, x[2] - 0.5}));
    if (bad(Fault::kMultiplierDense)) si.strict_violation(d({DBL_MAX, 0.0}));
    st.observe(ineq, si);
    torch::Tensor ve = (w[0] - 0.3).reshape({1});
    st.observe(eq, ConstraintState(bad(Fault::kViolation) ? ve + kInf : ve));
    // Good step g observes rows {g mod 6, (g + 3) mod 6}: the warm-up rows differ from later ones.
    torch::Tensor idx = torch::tensor({g % 6, (g + 3) % 6}, torch::kLong);
    ConstraintState sr(torch::stack({x[0] * w[1] - 0.2, x[1] - 0.1}));
    sr.indices(idx);
    if (bad(Fault::kStrict)) sr.strict_violation(d({0.5, kNaN}));
    if (bad(Fault::kMultiplierRows)) sr.strict_violation(d({DBL_MAX, DBL_MAX}));
    st.observe(rows, sr);
    return st;
  }

  StepResult step(int64_t g, Injection inj = {Fault::kNone, 0}) {
    call = 0;
    return opt->step([this, g, inj] { return evaluate(g, inj); });
  }

  // A deep copy of everything a step may change.
  State capture() const {
    State s;
    auto add = [&](const std::string& n, const torch::Tensor& t) {
      s.tensors.emplace_back(n, t.defined() ? t.detach().clone() : torch::Tensor());
    };
    add("P x", x);
    add("P w", w);
    for (const auto& c : problem.constraints()) {
      if (c.multiplier()) add("M " + c.name(), problem.multiplier_values(c.name()));
      if (c.penalty()) add("C " + c.name(), problem.penalty_values(c.name()));
    }
    auto optimizer = [&](const std::string& tag, const torch::optim::Optimizer& o) {
      int k = 0;
      for (const auto& group : o.param_groups()) {
        for (const auto& p : group.params()) {
          const std::string n = tag + std::to_string(k++) + " ";
          auto it = o.state().find(key_of(p));
          s.counters.emplace_back(n + "present", it != o.state().end());
          if (it == o.state().end()) continue;
          const auto* st = it->second.get();
          if (auto* a = dynamic_cast<const torch::optim::AdamParamState*>(st)) {
            s.counters.emplace_back(n + "step", a->step());
            add(n + "exp_avg", a->exp_avg());
            add(n + "exp_avg_sq", a->exp_avg_sq());
          } else if (auto* m = dynamic_cast<const torch::optim::SGDParamState*>(st)) {
            add(n + "momentum", m->momentum_buffer());
          } else if (auto* nu = dynamic_cast<const feasible::optim::NuPIParamState*>(st)) {
            s.counters.emplace_back(n + "step", nu->step());
            add(n + "xi", nu->xi());
            add(n + "seen", nu->seen());
          } else if (auto* e = dynamic_cast<const feasible::optim::ExtraAdamParamState*>(st)) {
            s.counters.emplace_back(n + "step", e->step());
            add(n + "exp_avg", e->exp_avg());
            add(n + "exp_avg_sq", e->exp_avg_sq());
          } else {
            ADD_FAILURE() << "unknown optimizer state type";
          }
        }
      }
      if (auto* e = dynamic_cast<const feasible::optim::ExtrapolationOptimizer*>(&o)) {
        s.counters.emplace_back(tag + "extrapolated", e->extrapolated());
      }
    };
    for (size_t i = 0; i < primal.size(); ++i)
      optimizer("S primal" + std::to_string(i) + "/", *primal[i]);
    if (dual) optimizer("D dual/", *dual);
    return s;
  }
};

bool in(const std::string& name, unsigned parts) {
  const char k = name[0];
  const bool dual_state = k == 'D';
  const bool primal_state = k == 'S';
  return (k == 'P' && (parts & kPrimalParams)) || (primal_state && (parts & kPrimalStates)) ||
         (k == 'M' && (parts & kMultipliers)) || (dual_state && (parts & kDualStates)) ||
         (k == 'C' && (parts & kPenalties));
}

// Bit-for-bit equality of the selected parts (torch::equal; NaN never equals anything, so a
// value that became NaN is caught).
void expect_same(const State& a, const State& b, unsigned parts, const std::string& what) {
  ASSERT_EQ(a.tensors.size(), b.tensors.size()) << what;
  for (size_t i = 0; i < a.tensors.size(); ++i) {
    const auto& n = a.tensors[i].first;
    ASSERT_EQ(n, b.tensors[i].first) << what;
    if (!in(n, parts)) continue;
    const auto& ta = a.tensors[i].second;
    const auto& tb = b.tensors[i].second;
    ASSERT_EQ(ta.defined(), tb.defined()) << what << ": " << n;
    if (ta.defined()) {
      EXPECT_TRUE(torch::equal(ta, tb)) << what << ": " << n << "\n" << ta << "\n" << tb;
    }
  }
  ASSERT_EQ(a.counters.size(), b.counters.size()) << what;
  for (size_t i = 0; i < a.counters.size(); ++i) {
    const auto& n = a.counters[i].first;
    if (!in(n, parts)) continue;
    EXPECT_EQ(a.counters[i].second, b.counters[i].second) << what << ": " << n;
  }
}

// One fault: where it is injected, what must be reported, and what a kThrow leaves untouched.
struct FaultCase {
  std::string label;
  Injection inj;
  NonFiniteQuantity quantity;
  std::string constraint;           // StepResult::skip_constraint
  std::vector<std::string> pieces;  // in skip_reason and in the kThrow message
  unsigned unchanged_on_throw;      // parts that a kThrow leaves bit-for-bit as before
  bool nothing_changed_on_throw;    // the kThrow message says "nothing was changed"
};

int g_injections = 0;  // faults injected by this process (printed at exit)

// Two good steps, the bad one, then two good steps; compared with a run of four good steps.
void run_case(Scheme scheme, Dual dual, const FaultCase& fc, NonFinitePolicy policy) {
  SCOPED_TRACE(std::string(name_of(scheme)) + " / dual " + name_of(dual) + " / " + fc.label +
               (policy == NonFinitePolicy::kThrow ? " / kThrow" : " / kSkipStep"));
  ++g_injections;
  Rig r(scheme, dual, policy);
  Rig ref(scheme, dual, policy);
  for (int64_t g = 0; g < 2; ++g) {
    ASSERT_FALSE(r.step(g).skipped);
    ASSERT_FALSE(ref.step(g).skipped);
  }
  const State before = r.capture();
  expect_same(before, ref.capture(), kAll, "the two runs agree before the fault");
  if (policy == NonFinitePolicy::kThrow) {
    const std::string msg = error_of([&] { r.step(2, fc.inj); });
    for (const auto& p : fc.pieces)
      EXPECT_NE(msg.find(p), std::string::npos) << msg << "\nmissing: " << p;
    EXPECT_NE(msg.find("NonFinitePolicy::kThrow"), std::string::npos) << msg;
    EXPECT_EQ(msg.find("nothing was changed") != std::string::npos, fc.nothing_changed_on_throw)
        << msg;
    expect_same(before, r.capture(), fc.unchanged_on_throw, "after the throw");
    if (fc.unchanged_on_throw != kAll) return;  // the documented partial update was taken
  } else {
    const StepResult result = r.step(2, fc.inj);
    EXPECT_TRUE(result.skipped);
    EXPECT_EQ(result.skip_quantity, fc.quantity) << result.skip_reason;
    EXPECT_EQ(result.skip_constraint, fc.constraint);
    for (const auto& p : fc.pieces) {
      EXPECT_NE(result.skip_reason.find(p), std::string::npos)
          << result.skip_reason << "\nmissing: " << p;
    }
    EXPECT_EQ(result.iteration, 2);
    EXPECT_EQ(r.opt->iteration(), 3);  // skipped steps count
    for (const auto& c : result.constraints) EXPECT_FALSE(c.observed) << c.name;
    expect_same(before, r.capture(), kAll, "after the skipped step");
  }
  // The run continues as if the bad step had never been taken.
  for (int64_t g = 2; g < 4; ++g) {
    const StepResult a = r.step(g);
    const StepResult b = ref.step(g);
    ASSERT_FALSE(a.skipped) << a.skip_reason;
    ASSERT_FALSE(b.skipped) << b.skip_reason;
    EXPECT_TRUE(torch::equal(a.loss, b.loss));
    EXPECT_TRUE(torch::equal(a.lagrangian, b.lagrangian));
  }
  expect_same(ref.capture(), r.capture(), kAll, "two good steps after the fault");
}

const std::string kGradientText = "the gradient of primal optimizer 1, group 0, parameter 0";

// The faults of the first evaluation, common to every scheme (constrained ones).
std::vector<FaultCase> first_evaluation_faults(unsigned multiplier_throw_parts,
                                               unsigned gradient_throw_parts) {
  return {
      {"NaN loss",
       {Fault::kLoss, 0},
       NonFiniteQuantity::kLoss,
       "",
       {"the loss is", "nan"},
       kAll,
       true},
      {"Inf violation",
       {Fault::kViolation, 0},
       NonFiniteQuantity::kViolation,
       "eq",
       {"the violation of constraint 'eq'", "NaN or Inf"},
       kAll,
       true},
      {"NaN strict violation",
       {Fault::kStrict, 0},
       NonFiniteQuantity::kStrictViolation,
       "rows",
       {"the strict violation of constraint 'rows'"},
       kAll,
       true},
      {"NaN primal gradient",
       {Fault::kGradient, 0},
       NonFiniteQuantity::kPrimalGradient,
       "",
       {kGradientText, "[2]"},
       gradient_throw_parts,
       gradient_throw_parts == kAll},
      {"dense multiplier overflow",
       {Fault::kMultiplierDense, 0},
       NonFiniteQuantity::kMultiplier,
       "ineq",
       {"the multiplier of constraint 'ineq'", "after the dual step"},
       multiplier_throw_parts,
       false},
      {"indexed multiplier overflow",
       {Fault::kMultiplierRows, 0},
       NonFiniteQuantity::kMultiplier,
       "rows",
       {"the multiplier of constraint 'rows'", "after the dual step"},
       multiplier_throw_parts,
       false},
  };
}

bool can_overflow(Dual d) { return d == Dual::kNuPI || d == Dual::kExtraSGD; }

void run_all(Scheme scheme, const std::vector<Dual>& duals, const std::vector<FaultCase>& faults) {
  for (Dual dual : duals) {
    for (const auto& fc : faults) {
      // Adam-like dual steps are bounded by their step size: they cannot overflow.
      if (fc.quantity == NonFiniteQuantity::kMultiplier && !can_overflow(dual)) continue;
      for (auto policy : {NonFinitePolicy::kThrow, NonFinitePolicy::kSkipStep}) {
        run_case(scheme, dual, fc, policy);
      }
    }
  }
}

TEST(NonFinite, Simultaneous) {
  // kThrow after a bad multiplier: the dual step was taken; primal and penalties untouched.
  run_all(Scheme::kSimultaneous, {Dual::kAdam, Dual::kNuPI},
          first_evaluation_faults(kPrimalParams | kPrimalStates | kPenalties, kAll));
}

TEST(NonFinite, AlternatingDualPrimal) {
  // The gradient is formed after the dual step and the penalty update: kThrow keeps them.
  run_all(Scheme::kDualPrimal, {Dual::kAdam, Dual::kNuPI},
          first_evaluation_faults(kPrimalParams | kPrimalStates | kPenalties,
                                  kPrimalParams | kPrimalStates));
}

// Removes the first evaluation's multiplier overflows, by kind (not by position, so adding a case
// to first_evaluation_faults drops nothing else): in schemes whose dual step does not read the
// first evaluation, those faults never reach a multiplier.
std::vector<FaultCase> without_first_evaluation_multiplier_faults(std::vector<FaultCase> faults) {
  const auto first_multiplier = [](const FaultCase& f) {
    return f.inj.call == 0 &&
           (f.inj.fault == Fault::kMultiplierDense || f.inj.fault == Fault::kMultiplierRows);
  };
  const size_t before = faults.size();
  faults.erase(std::remove_if(faults.begin(), faults.end(), first_multiplier), faults.end());
  EXPECT_EQ(before - faults.size(), 2u) << "the dense and the indexed multiplier overflow";
  return faults;
}

TEST(NonFinite, AlternatingPrimalDual) {
  auto faults =
      without_first_evaluation_multiplier_faults(first_evaluation_faults(kPenalties, kAll));
  // The second evaluation, after the primal step (kThrow keeps it; kSkipStep undoes it).
  const unsigned dual_side = kMultipliers | kDualStates | kPenalties;
  faults.push_back({"second evaluation: NaN loss",
                    {Fault::kLoss, 1},
                    NonFiniteQuantity::kLoss,
                    "",
                    {"second evaluation: the loss is", "nan"},
                    dual_side,
                    false});
  faults.push_back({"second evaluation: Inf violation",
                    {Fault::kViolation, 1},
                    NonFiniteQuantity::kViolation,
                    "eq",
                    {"second evaluation: the violation of constraint 'eq'"},
                    dual_side,
                    false});
  faults.push_back({"second evaluation: NaN strict violation",
                    {Fault::kStrict, 1},
                    NonFiniteQuantity::kStrictViolation,
                    "rows",
                    {"second evaluation: the strict violation of constraint 'rows'"},
                    dual_side,
                    false});
  faults.push_back({"multiplier overflow from the second evaluation",
                    {Fault::kMultiplierDense, 1},
                    NonFiniteQuantity::kMultiplier,
                    "ineq",
                    {"the multiplier of constraint 'ineq'", "after the dual step"},
                    kPenalties,
                    false});
  // (The first-evaluation multiplier faults, removed above, do not reach the dual step of this
  // scheme: it reads the second evaluation. The case above replaces them.)
  run_all(Scheme::kPrimalDual, {Dual::kAdam, Dual::kNuPI}, faults);
}

TEST(NonFinite, Extragradient) {
  // The first evaluation's multipliers are replaced by the extrapolation's (cases below).
  auto faults = without_first_evaluation_multiplier_faults(first_evaluation_faults(0, kAll));
  // At the half point kThrow returns x and lambda to (x_t, lambda_t).
  const unsigned start = kPrimalParams | kMultipliers | kPenalties;
  faults.push_back({"multiplier overflow at the extrapolation",
                    {Fault::kMultiplierDense, 0},
                    NonFiniteQuantity::kMultiplier,
                    "ineq",
                    {"half point: the multiplier of constraint 'ineq'", "after the extrapolation"},
                    start,
                    false});
  faults.push_back({"indexed multiplier overflow at the extrapolation",
                    {Fault::kMultiplierRows, 0},
                    NonFiniteQuantity::kMultiplier,
                    "rows",
                    {"half point: the multiplier of constraint 'rows'", "after the extrapolation"},
                    start,
                    false});
  faults.push_back({"half point: NaN loss",
                    {Fault::kLoss, 1},
                    NonFiniteQuantity::kLoss,
                    "",
                    {"half point: the loss is", "nan"},
                    start,
                    false});
  faults.push_back({"half point: Inf violation",
                    {Fault::kViolation, 1},
                    NonFiniteQuantity::kViolation,
                    "eq",
                    {"half point: the violation of constraint 'eq'"},
                    start,
                    false});
  faults.push_back({"half point: NaN strict violation",
                    {Fault::kStrict, 1},
                    NonFiniteQuantity::kStrictViolation,
                    "rows",
                    {"half point: the strict violation of constraint 'rows'"},
                    start,
                    false});
  faults.push_back({"half point: NaN primal gradient",
                    {Fault::kGradient, 1},
                    NonFiniteQuantity::kPrimalGradient,
                    "",
                    {"half point: " + kGradientText},
                    start,
                    false});
  // The final dual update overflows: kThrow returns x to x_t (lambda holds the bad value).
  faults.push_back({"multiplier overflow at the update",
                    {Fault::kMultiplierDense, 1},
                    NonFiniteQuantity::kMultiplier,
                    "ineq",
                    {"the multiplier of constraint 'ineq'", "after the dual step"},
                    kPrimalParams | kPenalties,
                    false});
  run_all(Scheme::kExtragradient, {Dual::kExtraAdam, Dual::kExtraSGD}, faults);
}

TEST(NonFinite, Unconstrained) {
  const std::vector<FaultCase> faults = {
      {"NaN loss",
       {Fault::kLoss, 0},
       NonFiniteQuantity::kLoss,
       "",
       {"the loss is", "nan"},
       kAll,
       true},
      {"Inf violation",
       {Fault::kViolation, 0},
       NonFiniteQuantity::kViolation,
       "fixed",
       {"the violation of constraint 'fixed'"},
       kAll,
       true},
      {"NaN strict violation",
       {Fault::kStrict, 0},
       NonFiniteQuantity::kStrictViolation,
       "quad",
       {"the strict violation of constraint 'quad'"},
       kAll,
       true},
      {"NaN primal gradient",
       {Fault::kGradient, 0},
       NonFiniteQuantity::kPrimalGradient,
       "",
       {kGradientText},
       kAll,
       true},
  };
  run_all(Scheme::kUnconstrained, {Dual::kNone}, faults);
}

// Printed so that a run's log shows how many faults were injected (runs last in this file).
// Prints how many faults the tests of this process injected (all of them when the binary runs
// whole; CTest runs one test per process). Every scheme test asserts its own injections.
class InjectionCount : public ::testing::Environment {
 public:
  void TearDown() override {
    std::cout << "[nonfinite_test] " << g_injections << " fault injections\n";
  }
};
const auto* const kInjectionCount =
    ::testing::AddGlobalTestEnvironment(new InjectionCount);  // NOLINT(cert-err58-cpp)

// Found while writing the extragradient restore: a lazy indexed multiplier whose first
// evaluation observes row 1 and whose half point observes row 2. The update starts from
// lambda_t = 0 and uses the half-point gradient only (row 2: violation x_2 - 1 = -1, so with
// ExtraSGD lr 1 the equality multiplier moves to 0 + 1 * (-1) = -1); row 1, unobserved by the
// update, must keep lambda_t = 0 exactly (not lambda_{t+1/2} = -1), as it does without `lazy`.
TEST(Extragradient, LazyRowsObservedOnlyAtTheFirstEvaluationKeepTheStartValue) {
  for (bool lazy : {false, true}) {
    SCOPED_TRACE(lazy ? "lazy" : "dense rows");
    torch::Tensor x = torch::zeros({4}, f64()).requires_grad_(true);
    feasible::Problem problem;
    auto c = problem.add_constraint("c", ConstraintOptions(ConstraintKind::kEquality, 4)
                                             .multiplier(MultiplierKind::kIndexed)
                                             .lazy(bool(lazy))
                                             .dtype(torch::kFloat64));
    auto primal = std::make_shared<feasible::optim::ExtraSGD>(
        std::vector<torch::Tensor>{x}, feasible::optim::ExtraSGDOptions(0.1));
    auto dual = std::make_shared<feasible::optim::ExtraSGD>(problem.dual_parameters(),
                                                            feasible::optim::ExtraSGDOptions(1.0));
    feasible::ExtragradientOptimizer opt(problem, {primal}, dual);
    int call = 0;
    opt.step([&] {
      auto idx = torch::tensor({call++ == 0 ? int64_t{1} : int64_t{2}}, torch::kLong);
      ProblemState s(x.pow(2).sum());
      s.observe(c, ConstraintState(x.index_select(0, idx) - 1.0).indices(idx));
      return s;
    });
    feasible_test::expect_vec_near(problem.multiplier_values("c"), {0.0, 0.0, -1.0, 0.0}, 0.0,
                                   "multipliers");
  }
}

// ----------------------------------------------------------------------------- bounds and caps

// max_multiplier = 0.25 with dual SGD (lr 1) and a constant strict violation s = +1
// (inequality) or -1 (equality): unbounded, one dual step would give lambda = 0 + 1 * s; the
// bound holds it at +0.25 (inequality: [0, 0.25]) or -0.25 (equality: [-0.25, 0.25]), exactly.
// In every scheme (extragradient: both the extrapolation and the update are projected) and for
// dense, indexed, lazy indexed and sparse-gradient indexed multipliers.
TEST(Bounds, MaxMultiplierHoldsForEveryMultiplierKindAndScheme) {
  struct Kind {
    const char* name;
    MultiplierKind kind;
    bool lazy, sparse;
  };
  const std::vector<Kind> kinds = {{"dense", MultiplierKind::kDense, false, false},
                                   {"indexed", MultiplierKind::kIndexed, false, false},
                                   {"lazy indexed", MultiplierKind::kIndexed, true, false},
                                   {"sparse indexed", MultiplierKind::kIndexed, false, true}};
  for (Scheme scheme :
       {Scheme::kSimultaneous, Scheme::kDualPrimal, Scheme::kPrimalDual, Scheme::kExtragradient}) {
    for (const auto& k : kinds) {
      if (scheme == Scheme::kExtragradient && k.sparse) continue;  // rejected by that scheme
      SCOPED_TRACE(std::string(name_of(scheme)) + " / " + k.name);
      torch::Tensor x = d({0.5}).requires_grad_(true);
      feasible::Problem problem;
      auto opts = [&](ConstraintKind kind) {
        return ConstraintOptions(kind, 3)
            .multiplier(k.kind)
            .lazy(bool(k.lazy))
            .sparse_gradient(bool(k.sparse))
            .max_multiplier(0.25)
            .dtype(torch::kFloat64);
      };
      auto g = problem.add_constraint("g", opts(ConstraintKind::kInequality));
      auto h = problem.add_constraint("h", opts(ConstraintKind::kEquality));
      const bool extra = scheme == Scheme::kExtragradient;
      std::shared_ptr<torch::optim::Optimizer> primal, dual;
      if (extra) {
        primal = std::make_shared<feasible::optim::ExtraSGD>(std::vector<torch::Tensor>{x},
                                                             feasible::optim::ExtraSGDOptions(0.1));
        dual = std::make_shared<feasible::optim::ExtraSGD>(problem.dual_parameters(),
                                                           feasible::optim::ExtraSGDOptions(1.0));
      } else {
        primal = std::make_shared<torch::optim::SGD>(std::vector<torch::Tensor>{x},
                                                     torch::optim::SGDOptions(0.1));
        dual = std::make_shared<torch::optim::SGD>(problem.dual_parameters(),
                                                   torch::optim::SGDOptions(1.0));
      }
      std::unique_ptr<feasible::ConstrainedOptimizer> opt;
      if (scheme == Scheme::kSimultaneous) {
        opt = std::make_unique<feasible::SimultaneousOptimizer>(problem, std::vector{primal}, dual);
      } else if (scheme == Scheme::kDualPrimal) {
        opt = std::make_unique<feasible::AlternatingDualPrimalOptimizer>(problem,
                                                                         std::vector{primal}, dual);
      } else if (scheme == Scheme::kPrimalDual) {
        opt = std::make_unique<feasible::AlternatingPrimalDualOptimizer>(problem,
                                                                         std::vector{primal}, dual);
      } else {
        opt =
            std::make_unique<feasible::ExtragradientOptimizer>(problem, std::vector{primal}, dual);
      }
      const bool indexed = k.kind == MultiplierKind::kIndexed;
      for (int step = 0; step < 3; ++step) {
        opt->step([&] {
          ProblemState st(x.pow(2).sum());
          // Violations that do not depend on x: s = +1 for g, -1 for h, at x_t and x_{t+1}.
          auto sg = x.sum() * 0.0 + 1.0;
          auto sh = x.sum() * 0.0 - 1.0;
          if (indexed) {
            auto idx = torch::tensor({0, 2}, torch::kLong);
            st.observe(g, ConstraintState(sg.expand({2})).indices(idx));
            st.observe(h, ConstraintState(sh.expand({2})).indices(idx));
          } else {
            st.observe(g, ConstraintState(sg.expand({3})));
            st.observe(h, ConstraintState(sh.expand({3})));
          }
          return st;
        });
        // Observed entries sit exactly at the bound; unobserved indexed entries stay 0 unless the
        // optimizer moves every row (plain indexed: its gradient row is 0, so SGD keeps it).
        const std::vector<double> gw =
            indexed ? std::vector<double>{0.25, 0.0, 0.25} : std::vector<double>{0.25, 0.25, 0.25};
        const std::vector<double> hw = indexed ? std::vector<double>{-0.25, 0.0, -0.25}
                                               : std::vector<double>{-0.25, -0.25, -0.25};
        feasible_test::expect_vec_near(problem.multiplier_values("g"), gw, 0.0, "g");
        feasible_test::expect_vec_near(problem.multiplier_values("h"), hw, 0.0, "h");
      }
    }
  }
}

// A penalty coefficient that grows past its cap stops there and the result says so, in every
// scheme. AugmentedLagrangian, c0 = 1, growth 10, cap 50, a violation that stays 1 > tolerance:
// c = 10 after step 1 (not capped), then 100 -> held at 50 (capped), then held at 50 (capped).
// Unconstrained: the same with QuadraticPenalty.
TEST(Bounds, PenaltyCapStopsGrowthAndIsReportedInEveryScheme) {
  for (Scheme scheme : {Scheme::kSimultaneous, Scheme::kDualPrimal, Scheme::kPrimalDual,
                        Scheme::kExtragradient, Scheme::kUnconstrained}) {
    for (bool per_entry : {false, true}) {
      SCOPED_TRACE(std::string(name_of(scheme)) + (per_entry ? " / per entry" : " / scalar"));
      torch::Tensor x = d({0.5}).requires_grad_(true);
      feasible::Problem problem;
      const bool unconstrained = scheme == Scheme::kUnconstrained;
      std::shared_ptr<feasible::Formulation> f =
          unconstrained ? std::shared_ptr<feasible::Formulation>(
                              std::make_shared<feasible::QuadraticPenalty>())
                        : std::make_shared<feasible::AugmentedLagrangian>();
      auto c = problem.add_constraint(
          "c", ConstraintOptions(ConstraintKind::kEquality, 2)
                   .formulation(f)
                   .penalty(1.0)
                   .penalty_per_entry(bool(per_entry))
                   .penalty_updater(std::make_shared<feasible::MultiplicativePenaltyUpdater>(
                       10.0, feasible::PenaltyUpdaterOptions().max_value(50.0)))
                   .dtype(torch::kFloat64));
      const bool extra = scheme == Scheme::kExtragradient;
      std::shared_ptr<torch::optim::Optimizer> primal, dual;
      if (extra) {
        primal = std::make_shared<feasible::optim::ExtraSGD>(std::vector<torch::Tensor>{x},
                                                             feasible::optim::ExtraSGDOptions(0.0));
        dual = std::make_shared<feasible::optim::ExtraSGD>(problem.dual_parameters(),
                                                           feasible::optim::ExtraSGDOptions(0.0));
      } else {
        primal = std::make_shared<torch::optim::SGD>(std::vector<torch::Tensor>{x},
                                                     torch::optim::SGDOptions(0.0));
        if (!unconstrained) {
          dual = std::make_shared<torch::optim::SGD>(problem.dual_parameters(),
                                                     torch::optim::SGDOptions(0.0));
        }
      }
      std::unique_ptr<feasible::ConstrainedOptimizer> opt;
      switch (scheme) {
        case Scheme::kSimultaneous:
          opt =
              std::make_unique<feasible::SimultaneousOptimizer>(problem, std::vector{primal}, dual);
          break;
        case Scheme::kDualPrimal:
          opt = std::make_unique<feasible::AlternatingDualPrimalOptimizer>(
              problem, std::vector{primal}, dual);
          break;
        case Scheme::kPrimalDual:
          opt = std::make_unique<feasible::AlternatingPrimalDualOptimizer>(
              problem, std::vector{primal}, dual);
          break;
        case Scheme::kExtragradient:
          opt = std::make_unique<feasible::ExtragradientOptimizer>(problem, std::vector{primal},
                                                                   dual);
          break;
        default:
          opt = std::make_unique<feasible::UnconstrainedOptimizer>(problem, std::vector{primal});
      }
      const std::vector<double> expect_c = {10.0, 50.0, 50.0};
      const std::vector<bool> expect_capped = {false, true, true};
      for (int step = 0; step < 3; ++step) {
        const StepResult r = opt->step([&] {
          ProblemState st(x.pow(2).sum());
          st.observe(c, ConstraintState(x.expand({2}) * 0.0 + 1.0));  // violation 1 everywhere
          return st;
        });
        EXPECT_EQ(r.at("c").penalty_capped, expect_capped[step]) << "step " << step;
        const auto pv = feasible_test::to_vec(problem.penalty_values("c"));
        for (double v : pv) EXPECT_EQ(v, expect_c[step]) << "step " << step;
      }
    }
  }
}

}  // namespace

// Under kThrow a bad value throws feasible::NonFiniteError (a c10::Error) that names the
// quantity and the constraint; misuse throws a plain c10::Error.
TEST(NonFiniteError, IsTypedAndNamesTheQuantity) {
  auto x = torch::tensor({1.0}, f64()).requires_grad_();
  feasible::Problem p;
  auto c = p.add_constraint(
      "c", ConstraintOptions(ConstraintKind::kInequality, 1).dtype(torch::kFloat64));
  feasible::SimultaneousOptimizer opt(
      p,
      {std::make_shared<torch::optim::SGD>(std::vector<torch::Tensor>{x},
                                           torch::optim::SGDOptions(0.1))},
      std::make_shared<torch::optim::SGD>(p.dual_parameters(), torch::optim::SGDOptions(0.1)));
  auto bad = [&] {
    ProblemState st(x.sum());
    st.observe(c, ConstraintState(x * kNaN));
    return st;
  };
  try {
    opt.step(bad);
    FAIL() << "no throw";
  } catch (const feasible::NonFiniteError& e) {
    EXPECT_EQ(e.quantity(), NonFiniteQuantity::kViolation);
    EXPECT_EQ(e.constraint(), "c");
    EXPECT_NE(std::string(e.what()).find("the violation of constraint 'c'"), std::string::npos);
  }
  auto misuse = [&] {
    ProblemState st(x.sum());
    st.observe(c, ConstraintState(torch::cat({x, x})));
    return st;
  };
  try {
    opt.step(misuse);
    FAIL() << "no throw";
  } catch (const feasible::NonFiniteError&) {
    FAIL() << "misuse is not a non-finite value";
  } catch (const c10::Error&) {
  }
}

// The gradient scan reads the bits of every entry in blocks of 4,096 (compiled for AVX-512,
// AVX2 and the baseline, picked at load time): one bad entry is found wherever it lies, at
// either end of a block, in float32 and float64, for NaN, +Inf and -Inf alike, and a gradient
// whose entries are all finite (including the largest finite value and subnormals) passes.
TEST(NonFiniteScan, FindsOneBadGradientEntryAnywhereInALargeTensor) {
  const int64_t n = 3 * 4096 + 5;
  for (auto dtype : {torch::kFloat32, torch::kFloat64}) {
    const double big = dtype == torch::kFloat32 ? FLT_MAX : DBL_MAX;
    const double tiny = dtype == torch::kFloat32 ? FLT_TRUE_MIN : DBL_TRUE_MIN;
    for (int64_t at : {int64_t{-1}, int64_t{0}, int64_t{4095}, int64_t{4096}, n - 1}) {
      for (double value : {kNaN, std::numeric_limits<double>::infinity(),
                           -std::numeric_limits<double>::infinity()}) {
        SCOPED_TRACE(std::string(c10::toString(dtype)) + " entry " + std::to_string(at) + " " +
                     std::to_string(value));
        auto x = torch::zeros({n}, torch::TensorOptions().dtype(dtype)).requires_grad_();
        // A hook makes x's gradient g while the loss x.sum() stays 0 (a loss g x would be NaN
        // itself): finite extremes everywhere, one bad entry at `at`.
        auto g = torch::full({n}, big, torch::TensorOptions().dtype(dtype));
        g.slice(0, 0, n, 2).fill_(-tiny);
        if (at >= 0) g[at] = value;
        feasible::Problem p;
        feasible::UnconstrainedOptimizer opt(
            p,
            {std::make_shared<torch::optim::SGD>(std::vector<torch::Tensor>{x},
                                                 torch::optim::SGDOptions(0.0))},
            feasible::ConstrainedOptimizerOptions().non_finite(NonFinitePolicy::kSkipStep));
        x.register_hook([g](const torch::Tensor&) { return g; });
        const StepResult r = opt.step([&] { return ProblemState(x.sum()); });
        if (at < 0) {
          EXPECT_FALSE(r.skipped);
        } else {
          EXPECT_TRUE(r.skipped);
          EXPECT_EQ(r.skip_quantity, NonFiniteQuantity::kPrimalGradient);
        }
      }
    }
  }
}
