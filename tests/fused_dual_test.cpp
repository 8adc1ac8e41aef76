// The fused dual steps (src/fused_dual_step.cpp) against the general path, bit for bit. The
// fused path takes exactly torch::optim::SGD, feasible::optim::NuPI and
// feasible::optim::AugmentedDual; subclasses that add nothing (GeneralSGD, GeneralNuPI,
// GeneralAugmentedDual) run the same optimizer through the general path (the optimizer's own
// step(), Multiplier::project, the multiplier check). Two optimizers, one per
// path, train the same problem from the same start for 50 steps: four dense constraints (an
// inequality with a bound on its multiplier, an equality, a 0-d inequality, and an occasional
// inequality observed every third step, so that NuPI meets parameters without a gradient and
// entries first seen late), two parameter groups with different settings, float32 and float64,
// plain SGD, nuPI in three settings (the SGD special case, a PI controller with memory, zero
// initial memory) and the default optimizer's AugmentedDual (windup guard on, per-entry shares).
// After every step the primal point, the multipliers, the nuPI states and the step results must be
// equal, exactly. Also: the fused path really runs (it makes no clamp call), and a multiplier that
// overflows in the dual step is skipped and rolled back (kSkipStep), or thrown with the same state
// left (kThrow), alike on both paths.
#include <ATen/record_function.h>
#include <feasible/feasible.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <limits>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

namespace {

using feasible::ConstraintKind;
using feasible::ConstraintOptions;
using feasible::ConstraintState;
using feasible::NonFinitePolicy;
using feasible::optim::AugmentedDual;
using feasible::optim::AugmentedDualOptions;
using feasible::optim::NuPI;
using feasible::optim::NuPIInit;
using feasible::optim::NuPIOptions;
using Optimizers = std::vector<std::shared_ptr<torch::optim::Optimizer>>;

// The same optimizers under another type: the fused path does not take them.
class GeneralSGD : public torch::optim::SGD {
 public:
  using torch::optim::SGD::SGD;
};
class GeneralNuPI : public NuPI {
 public:
  using NuPI::NuPI;
};
class GeneralAugmentedDual : public AugmentedDual {
 public:
  using AugmentedDual::AugmentedDual;
};

enum class Dual { kSGD, kNuPIPlain, kNuPIMemory, kNuPIZero, kAugmented };

struct Case {
  Dual dual;
  torch::ScalarType dtype;
};

std::string name_of(const Case& c) {
  const char* dual[] = {"SGD", "NuPIAsSGD", "NuPIWithMemory", "NuPIZeroStart", "AugmentedDual"};
  return std::string(dual[static_cast<int>(c.dual)]) +
         (c.dtype == torch::kFloat ? "Float32" : "Float64");
}
std::string test_name(const testing::TestParamInfo<Case>& info) { return name_of(info.param); }
void PrintTo(const Case& c, std::ostream* os) { *os << name_of(c); }

// The nuPI settings of the two parameter groups.
NuPIOptions nupi_options(Dual dual, int group) {
  const double lr = group == 0 ? 0.5 : 0.3;
  switch (dual) {
    case Dual::kNuPIPlain:
      return NuPIOptions(lr).kp(0.0).ki(1.0).nu(0.0);
    case Dual::kNuPIMemory:
      return NuPIOptions(lr).kp(group == 0 ? 2.0 : 0.7).ki(1.0).nu(group == 0 ? 0.3 : 0.6);
    default:
      return NuPIOptions(lr).kp(group == 0 ? 5.0 : 1.5).ki(0.5).nu(0.9).init(NuPIInit::kZero);
  }
}

// One training run: x in R^6, f(x) = ||x - a||^2, and the four constraints.
struct Training {
  torch::ScalarType dtype;
  torch::Tensor x, a, A, b, C, d;
  feasible::Problem problem;
  feasible::Constraint ineq, eq, scalar, rare;
  std::shared_ptr<torch::optim::Optimizer> dual;
  std::unique_ptr<feasible::SimultaneousOptimizer> opt;

  Training(const Case& c, bool general, NonFinitePolicy policy) : dtype(c.dtype) {
    torch::manual_seed(7);
    const auto f64 = torch::dtype(torch::kFloat64);
    x = torch::randn({6}, f64).to(dtype).requires_grad_();
    a = torch::randn({6}, f64).to(dtype);
    A = torch::randn({3, 6}, f64).to(dtype);
    b = torch::full({3}, -0.3, f64).to(dtype);
    C = torch::randn({2, 6}, f64).to(dtype);
    d = torch::randn({2}, f64).to(dtype);
    ineq = problem.add_constraint(
        "ineq", ConstraintOptions(ConstraintKind::kInequality, 3).max_multiplier(1.5).dtype(dtype));
    eq = problem.add_constraint(
        "eq", ConstraintOptions(ConstraintKind::kEquality, 2).init(0.2).dtype(dtype));
    scalar = problem.add_constraint("scalar", ConstraintOptions().dtype(dtype));
    rare = problem.add_constraint(
        "rare", ConstraintOptions(ConstraintKind::kInequality, 2).occasional(true).dtype(dtype));
    dual = make_dual(c.dual, general);
    auto primal = std::make_shared<torch::optim::SGD>(std::vector<torch::Tensor>{x},
                                                      torch::optim::SGDOptions(0.05));
    opt = std::make_unique<feasible::SimultaneousOptimizer>(
        problem, Optimizers{primal}, dual,
        feasible::ConstrainedOptimizerOptions().non_finite(policy));
  }

  // One group; penalties per constraint (eq's 1.5 > 1, so that its largest finite strict
  // violation overflows the multiplier), per-entry shares for eq, the multipliers' own bounds.
  std::shared_ptr<torch::optim::Optimizer> make_augmented(bool general) {
    const auto options = AugmentedDualOptions(0.25).windup_guard(0.6);
    const auto params = problem.dual_parameters();
    std::shared_ptr<AugmentedDual> dual =
        general ? std::make_shared<GeneralAugmentedDual>(params, options)
                : std::make_shared<AugmentedDual>(params, options);
    const auto f64 = torch::dtype(torch::kFloat64);
    const std::vector<torch::Tensor> penalties = {torch::tensor({0.5, 0.3, 0.9}, f64),
                                                  torch::tensor({1.5, 0.7}, f64),
                                                  torch::tensor(0.4, f64), torch::tensor(0.8, f64)};
    const feasible::Constraint* constraints[] = {&ineq, &eq, &scalar, &rare};
    for (size_t i = 0; i < 4; ++i) {
      const auto range = constraints[i]->multiplier()->bounds();
      const torch::Tensor share = i == 1 ? torch::tensor({0.3, 0.6}, f64) : torch::Tensor();
      dual->set_penalty(params[i], penalties[i], range.first, range.second, share);
    }
    return dual;
  }

  // Two groups: the multipliers of ineq and eq, and those of scalar and rare.
  std::shared_ptr<torch::optim::Optimizer> make_dual(Dual kind, bool general) {
    if (kind == Dual::kAugmented) return make_augmented(general);
    std::vector<torch::Tensor> first = ineq.multiplier()->parameters();
    first.push_back(eq.multiplier()->parameters()[0]);
    std::vector<torch::Tensor> second = scalar.multiplier()->parameters();
    second.push_back(rare.multiplier()->parameters()[0]);
    if (kind == Dual::kSGD) {
      std::vector<torch::optim::OptimizerParamGroup> groups;
      groups.emplace_back(first, std::make_unique<torch::optim::SGDOptions>(0.5));
      groups.emplace_back(second, std::make_unique<torch::optim::SGDOptions>(0.3));
      const torch::optim::SGDOptions defaults(0.5);
      if (general) return std::make_shared<GeneralSGD>(std::move(groups), defaults);
      return std::make_shared<torch::optim::SGD>(std::move(groups), defaults);
    }
    std::vector<torch::optim::OptimizerParamGroup> groups;
    groups.emplace_back(first, std::make_unique<NuPIOptions>(nupi_options(kind, 0)));
    groups.emplace_back(second, std::make_unique<NuPIOptions>(nupi_options(kind, 1)));
    if (general) return std::make_shared<GeneralNuPI>(std::move(groups), nupi_options(kind, 0));
    return std::make_shared<NuPI>(std::move(groups), nupi_options(kind, 0));
  }

  // Step t; with `overflow`, the first entry of eq's strict violation is the largest finite
  // value and the first group's step size 4, so that the equality multiplier overflows to Inf
  // in the dual step (and only there: every check before it passes).
  feasible::StepResult step(int t, bool overflow = false) {
    auto& group = dual->param_groups()[0];
    const double lr = group.options().get_lr();
    if (overflow) group.options().set_lr(4.0);
    struct Restore {
      torch::optim::OptimizerParamGroup& group;
      double lr;
      ~Restore() { group.options().set_lr(lr); }
    } restore{group, lr};
    return opt->step([&] {
      feasible::ProblemState st((x - a).pow(2).sum());
      st.observe(ineq, ConstraintState(torch::mv(A, x) - b));
      torch::Tensor v = torch::mv(C, x) - d;
      ConstraintState eq_state(v);
      if (overflow) {
        torch::Tensor s = v.detach().clone();
        s[0] = dtype == torch::kFloat ? std::numeric_limits<float>::max()
                                      : std::numeric_limits<double>::max();
        eq_state.strict_violation(s);
      }
      st.observe(eq, eq_state);
      st.observe(scalar, ConstraintState(x[0] - 0.2));
      if (t % 3 == 2) st.observe(rare, ConstraintState(x.narrow(0, 2, 2) - 0.1));
      return st;
    });
  }
};

// Exact equality of two tensors (both undefined counts as equal).
void expect_same(const torch::Tensor& fused, const torch::Tensor& general,
                 const std::string& what) {
  ASSERT_EQ(fused.defined(), general.defined()) << what;
  if (!fused.defined()) return;
  EXPECT_EQ(fused.scalar_type(), general.scalar_type()) << what;
  EXPECT_TRUE(torch::equal(fused, general))
      << what << "\nfused:   " << fused << "\ngeneral: " << general;
}

// The primal point, every multiplier and (for nuPI) every optimizer state.
void expect_same_state(Training& fused, Training& general) {
  expect_same(fused.x.detach(), general.x.detach(), "x");
  for (const auto& c : fused.problem.constraints()) {
    expect_same(fused.problem.multiplier_values(c.name()),
                general.problem.multiplier_values(c.name()), "multiplier of " + c.name());
  }
  const auto* af = dynamic_cast<const AugmentedDual*>(fused.dual.get());
  const auto* ag = dynamic_cast<const AugmentedDual*>(general.dual.get());
  if (af != nullptr) {
    const auto pf = fused.problem.dual_parameters();
    const auto pg = general.problem.dual_parameters();
    for (size_t i = 0; i < pf.size(); ++i) {
      const auto* sf = af->state_of(pf[i]);
      const auto* sg = ag->state_of(pg[i]);
      ASSERT_TRUE(sf != nullptr && sg != nullptr) << "state of dual parameter " << i;
      expect_same(sf->base(), sg->base(), "base multiplier " + std::to_string(i));
      expect_same(sf->previous(), sg->previous(), "last violation " + std::to_string(i));
      EXPECT_EQ(sf->step(), sg->step()) << "step count of dual parameter " << i;
    }
    return;
  }
  const auto* nf = dynamic_cast<const NuPI*>(fused.dual.get());
  const auto* ng = dynamic_cast<const NuPI*>(general.dual.get());
  if (nf == nullptr) return;
  const auto pf = fused.problem.dual_parameters();
  const auto pg = general.problem.dual_parameters();
  for (size_t i = 0; i < pf.size(); ++i) {
    const auto* sf = nf->state_of(pf[i]);
    const auto* sg = ng->state_of(pg[i]);
    ASSERT_EQ(sf == nullptr, sg == nullptr) << "nuPI state of dual parameter " << i;
    if (sf == nullptr) continue;
    expect_same(sf->xi(), sg->xi(), "nuPI memory of dual parameter " + std::to_string(i));
    expect_same(sf->seen(), sg->seen(), "nuPI seen mask of dual parameter " + std::to_string(i));
    EXPECT_EQ(sf->step(), sg->step()) << "nuPI step count of dual parameter " << i;
  }
}

void expect_same_result(const feasible::StepResult& f, const feasible::StepResult& g) {
  EXPECT_EQ(f.skipped, g.skipped);
  EXPECT_EQ(f.skip_quantity, g.skip_quantity);
  EXPECT_EQ(f.skip_constraint, g.skip_constraint);
  EXPECT_EQ(f.skip_reason, g.skip_reason);
  expect_same(f.loss, g.loss, "loss");
  expect_same(f.lagrangian, g.lagrangian, "lagrangian");
  ASSERT_EQ(f.constraints.size(), g.constraints.size());
  for (size_t i = 0; i < f.constraints.size(); ++i) {
    const auto& cf = f.constraints[i];
    const auto& cg = g.constraints[i];
    EXPECT_EQ(cf.observed, cg.observed) << cf.name;
    expect_same(cf.violation, cg.violation, "violation of " + cf.name);
    expect_same(cf.strict_violation, cg.strict_violation, "strict violation of " + cf.name);
    expect_same(cf.multiplier, cg.multiplier, "multiplier used for " + cf.name);
  }
}

// Counts calls of clamp operators on this thread: the general path projects with clamp_min_ and
// clamp_, the fused one with a loop of its own.
std::atomic<int> g_clamps{0};

int clamp_calls(const std::function<void()>& f) {
  g_clamps = 0;
  auto handle = at::addThreadLocalCallback(
      at::RecordFunctionCallback([](const at::RecordFunction& fn)
                                     -> std::unique_ptr<at::ObserverContext> {
        if (std::strncmp(fn.name(), "aten::clamp", 11) == 0) ++g_clamps;
        return nullptr;
      }).scopes({at::RecordScope::FUNCTION}));
  f();
  at::removeCallback(handle);
  return g_clamps;
}

class FusedDual : public testing::TestWithParam<Case> {};

TEST_P(FusedDual, SameIteratesAsTheGeneralPathFor50Steps) {
  Training fused(GetParam(), /*general=*/false, NonFinitePolicy::kThrow);
  Training general(GetParam(), /*general=*/true, NonFinitePolicy::kThrow);
  expect_same_state(fused, general);
  for (int t = 0; t < 50; ++t) {
    SCOPED_TRACE("step " + std::to_string(t));
    feasible::StepResult f, g;
    if (t == 0) {
      EXPECT_EQ(clamp_calls([&] { f = fused.step(t); }), 0) << "the fused path did not run";
      EXPECT_GT(clamp_calls([&] { g = general.step(t); }), 0) << "the general path did not run";
    } else {
      f = fused.step(t);
      g = general.step(t);
    }
    EXPECT_FALSE(f.skipped);
    expect_same_result(f, g);
    expect_same_state(fused, general);
    if (HasFailure()) return;
  }
  // The run moved the multipliers.
  EXPECT_FALSE(torch::equal(fused.problem.multiplier_values("eq"),
                            torch::full({2}, 0.2, torch::dtype(GetParam().dtype))));
}

TEST_P(FusedDual, OverflowingMultiplierIsSkippedAndRolledBackAlike) {
  Training fused(GetParam(), /*general=*/false, NonFinitePolicy::kSkipStep);
  Training general(GetParam(), /*general=*/true, NonFinitePolicy::kSkipStep);
  for (int t = 0; t < 50; ++t) {
    SCOPED_TRACE("step " + std::to_string(t));
    const bool overflow = t == 0 || t == 20;  // step 0: the nuPI states do not exist yet
    const torch::Tensor before = fused.problem.multiplier_values("eq").clone();
    const feasible::StepResult f = fused.step(t, overflow);
    const feasible::StepResult g = general.step(t, overflow);
    EXPECT_EQ(f.skipped, overflow);
    if (overflow) {
      EXPECT_EQ(f.skip_quantity, feasible::NonFiniteQuantity::kMultiplier);
      EXPECT_EQ(f.skip_constraint, "eq");
      EXPECT_TRUE(torch::equal(fused.problem.multiplier_values("eq"), before));
    }
    expect_same_result(f, g);
    expect_same_state(fused, general);
    if (HasFailure()) return;
  }
}

TEST_P(FusedDual, OverflowingMultiplierThrowsAndLeavesTheSameState) {
  Training fused(GetParam(), /*general=*/false, NonFinitePolicy::kThrow);
  Training general(GetParam(), /*general=*/true, NonFinitePolicy::kThrow);
  for (int t = 0; t < 5; ++t) {
    fused.step(t);
    general.step(t);
  }
  for (Training* run : {&fused, &general}) {
    try {
      run->step(5, /*overflow=*/true);
      ADD_FAILURE() << "no throw";
    } catch (const feasible::NonFiniteError& e) {
      EXPECT_EQ(e.quantity(), feasible::NonFiniteQuantity::kMultiplier);
      EXPECT_EQ(e.constraint(), "eq");
    }
  }
  // kThrow keeps the dual step: the multipliers hold its values, Inf included.
  EXPECT_TRUE(torch::isinf(fused.problem.multiplier_values("eq")).any().item<bool>());
  expect_same_state(fused, general);
}

// Per-entry gains are not fused: the general path runs (and clamps).
TEST(FusedDualNotTaken, NuPIWithPerEntryGains) {
  auto x = torch::zeros({2}, torch::requires_grad());
  feasible::Problem problem;
  auto c = problem.add_constraint("c", ConstraintOptions(ConstraintKind::kInequality, 2));
  auto dual = std::make_shared<NuPI>(problem.dual_parameters(),
                                     NuPIOptions(0.1).ki_per_entry(torch::tensor({1.0, 2.0})));
  feasible::SimultaneousOptimizer opt(
      problem,
      Optimizers{std::make_shared<torch::optim::SGD>(std::vector<torch::Tensor>{x},
                                                     torch::optim::SGDOptions(0.1))},
      dual);
  EXPECT_GT(clamp_calls([&] {
              opt.step([&] {
                feasible::ProblemState st(x.pow(2).sum());
                st.observe(c, ConstraintState(x + 1.0));
                return st;
              });
            }),
            0);
  EXPECT_TRUE(torch::equal(problem.multiplier_values("c"), torch::tensor({0.1f, 0.2f})));
}

INSTANTIATE_TEST_SUITE_P(
    DualOptimizers, FusedDual,
    testing::Values(Case{Dual::kSGD, torch::kFloat}, Case{Dual::kSGD, torch::kDouble},
                    Case{Dual::kNuPIPlain, torch::kFloat}, Case{Dual::kNuPIPlain, torch::kDouble},
                    Case{Dual::kNuPIMemory, torch::kFloat}, Case{Dual::kNuPIMemory, torch::kDouble},
                    Case{Dual::kNuPIZero, torch::kFloat}, Case{Dual::kNuPIZero, torch::kDouble},
                    Case{Dual::kAugmented, torch::kFloat}, Case{Dual::kAugmented, torch::kDouble}),
    test_name);

}  // namespace
