// OptimisticGradient (include/feasible/optim/optimistic.h), the dual optimistic ascent of
// Ramirez & Lacoste-Julien (arXiv:2509.22500):
//  - raw steps on a tensor against the formula theta -= eta (e_t + omega (e_t - e_{t-1})),
//    e_{-1} = e_0, written out in plain double arithmetic, with a skipped parameter;
//  - a short constrained run (SimultaneousOptimizer) against the hand recursion
//    lambda_{t+1} = max(0, lambda_t + eta (2 g_t - g_{t-1})), mu likewise without the max;
//  - the equivalence with NuPI (kp = omega, ki = 1, nu = 0, NuPIInit::kSGD), exact over 50
//    steps, for dense multipliers (NuPI's fused step) and indexed ones (its general step);
//  - a checkpoint round trip that resumes bit for bit;
//  - an overflowing multiplier: skipped with the state restored (kSkipStep), or thrown (kThrow);
//  - option validation and the refusal of sparse gradients.
#include <feasible/feasible.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "test_util.h"

namespace {

using feasible::ConstraintKind;
using feasible::ConstraintOptions;
using feasible::ConstraintState;
using feasible::NonFinitePolicy;
using feasible::optim::NuPI;
using feasible::optim::NuPIOptions;
using feasible::optim::OptimisticGradient;
using feasible::optim::OptimisticGradientOptions;
using feasible_test::dvec;
using feasible_test::error_of;
using feasible_test::expect_vec_near;
using feasible_test::to_vec;
using Optimizers = std::vector<std::shared_ptr<torch::optim::Optimizer>>;

// O(1) values from tens of float64 operations: 1e-12 is far above the rounding.
constexpr double kTol = 1e-12;

// ---------------------------------------------------------------- raw steps

TEST(OptimisticGradient, RawStepsFollowTheFormula) {
  // Gradients for five steps of a 3-entry parameter; in step 3 the gradient is undefined.
  const std::vector<std::vector<double>> errors = {
      {0.5, -1.0, 0.25}, {0.3, -0.2, 1.5}, {}, {-0.7, 0.4, 0.0}, {1.1, 0.9, -0.6}};
  for (double omega : {1.0, 0.5, 0.0}) {
    SCOPED_TRACE("optimism " + std::to_string(omega));
    const double lr = 0.1;
    torch::Tensor p = dvec({1.0, -2.0, 0.5}).requires_grad_();
    OptimisticGradient opt(std::vector<torch::Tensor>{p},
                           OptimisticGradientOptions(lr).optimism(omega));
    std::vector<double> theta = {1.0, -2.0, 0.5}, previous;
    int64_t steps = 0;
    for (const auto& e : errors) {
      p.mutable_grad() = e.empty() ? torch::Tensor() : dvec(e);
      opt.step();
      if (e.empty()) {
        expect_vec_near(p, theta, 0.0, "a parameter without a gradient does not move");
        continue;
      }
      if (previous.empty()) previous = e;  // e_{-1} = e_0
      for (size_t i = 0; i < theta.size(); ++i) {
        theta[i] -= lr * (e[i] + omega * (e[i] - previous[i]));
      }
      previous = e;
      ++steps;
      expect_vec_near(p, theta, kTol, "theta");
      ASSERT_NE(opt.state_of(p), nullptr);
      EXPECT_EQ(to_vec(opt.state_of(p)->previous()), e);  // the last gradient, kept exactly
      EXPECT_EQ(opt.state_of(p)->step(), steps);
    }
  }
}

// ---------------------------------------------------------------- a constrained run

// minimize (x0 - 2)^2 + (x1 - 1)^2  s.t.  g = x0 + x1 - 1 <= 0,  h = x0 - x1 - 0.5 = 0.
struct Tiny {
  torch::Tensor x;
  feasible::Problem problem;
  feasible::Constraint g, h;

  explicit Tiny(torch::ScalarType dtype = torch::kFloat64, double lam0 = 0.0, double mu0 = 0.0,
                std::vector<double> x0 = {1.5, 0.5}) {
    x = torch::tensor(x0, torch::dtype(dtype)).requires_grad_();
    g = problem.add_constraint(
        "g", ConstraintOptions(ConstraintKind::kInequality).init(lam0).dtype(dtype));
    h = problem.add_constraint("h",
                               ConstraintOptions(ConstraintKind::kEquality).init(mu0).dtype(dtype));
  }
  feasible::ProblemState closure(double g_override = NAN) {
    const auto a = torch::tensor({2.0, 1.0}, x.options().requires_grad(false));
    feasible::ProblemState st((x - a).pow(2).sum());
    torch::Tensor vg = x[0] + x[1] - 1.0;
    ConstraintState gs(vg);
    if (!std::isnan(g_override)) gs.strict_violation(torch::full({}, g_override, x.options()));
    st.observe(g, gs);
    st.observe(h, ConstraintState(x[0] - x[1] - 0.5));
    return st;
  }
  std::shared_ptr<torch::optim::Optimizer> primal(double lr) const {
    return std::make_shared<torch::optim::SGD>(std::vector<torch::Tensor>{x},
                                               torch::optim::SGDOptions(lr));
  }
};

TEST(OptimisticGradient, DualOptimisticAscentAgainstTheHandRecursion) {
  const double eta_x = 0.1, eta_l = 0.5;
  // x_0 = (0, 0) is feasible (g = -1): lam = 0.1 falls to the bound 0 in the first step (the
  // projection acts); then x heads for the unconstrained optimum (2, 1), g turns positive and
  // lam grows again.
  Tiny run(torch::kFloat64, 0.1, 0.2, {0.0, 0.0});
  feasible::SimultaneousOptimizer opt(
      run.problem, Optimizers{run.primal(eta_x)},
      std::make_shared<OptimisticGradient>(run.problem.dual_parameters(),
                                           OptimisticGradientOptions(eta_l)));
  double x0 = 0.0, x1 = 0.0, lam = 0.1, mu = 0.2;
  double g_prev = NAN, h_prev = NAN;
  bool reached_zero = false, grew = false;
  for (int t = 0; t < 12; ++t) {
    SCOPED_TRACE("step " + std::to_string(t));
    const double g = x0 + x1 - 1.0, h = x0 - x1 - 0.5;
    if (t == 0) {  // the first step is plain ascent: g_{-1} = g_0
      g_prev = g;
      h_prev = h;
    }
    const double nx0 = x0 - eta_x * (2.0 * (x0 - 2.0) + lam + mu);
    const double nx1 = x1 - eta_x * (2.0 * (x1 - 1.0) + lam - mu);
    const double nlam = std::max(0.0, lam + eta_l * (2.0 * g - g_prev));
    const double nmu = mu + eta_l * (2.0 * h - h_prev);
    const feasible::StepResult r = opt.step([&] { return run.closure(); });
    EXPECT_NEAR(r.at("g").multiplier.item<double>(), lam, kTol) << "lambda used";
    EXPECT_NEAR(r.at("h").multiplier.item<double>(), mu, kTol) << "mu used";
    x0 = nx0, x1 = nx1, lam = nlam, mu = nmu, g_prev = g, h_prev = h;
    expect_vec_near(run.x, {x0, x1}, kTol, "x");
    EXPECT_NEAR(run.problem.multiplier_values("g").item<double>(), lam, kTol) << "lambda";
    EXPECT_NEAR(run.problem.multiplier_values("h").item<double>(), mu, kTol) << "mu";
    if (t == 0) {
      EXPECT_EQ(lam, 0.0) << "the first step is projected";
      EXPECT_EQ(run.problem.multiplier_values("g").item<double>(), 0.0);
    }
    reached_zero = reached_zero || lam == 0.0;
    grew = grew || (reached_zero && lam > 0.0);
  }
  EXPECT_TRUE(reached_zero && grew) << "the run should meet the bound, then leave it";
}

// ---------------------------------------------------------------- equivalence with nuPI

// x in R^4 (float32), f = ||x - a||^2, a dense inequality [3], a dense equality [2] and, when
// `indexed`, an indexed inequality [6] (dense rows) observed at rotating indices.
struct Wide {
  torch::Tensor x, a, A, C;
  feasible::Problem problem;
  feasible::Constraint ineq, eq, rows;
  bool indexed;

  explicit Wide(bool indexed_) : indexed(indexed_) {
    torch::manual_seed(3);
    x = torch::randn({4}).requires_grad_();
    a = torch::randn({4});
    A = torch::randn({3, 4});
    C = torch::randn({2, 4});
    ineq = problem.add_constraint("ineq", ConstraintOptions(ConstraintKind::kInequality, 3));
    eq = problem.add_constraint("eq", ConstraintOptions(ConstraintKind::kEquality, 2).init(0.1));
    if (indexed) {
      rows = problem.add_constraint("rows", ConstraintOptions(ConstraintKind::kInequality, 6)
                                                .multiplier(feasible::MultiplierKind::kIndexed));
    }
  }
  feasible::ProblemState closure(int t) {
    feasible::ProblemState st((x - a).pow(2).sum());
    st.observe(ineq, ConstraintState(torch::mv(A, x) + 0.2));
    st.observe(eq, ConstraintState(torch::mv(C, x) - 0.3));
    if (indexed) {
      const torch::Tensor idx = torch::tensor({t % 6, (t + 2) % 6}, torch::kLong);
      st.observe(rows, ConstraintState(x.narrow(0, 0, 2) - 0.1 * (t % 3)).indices(idx));
    }
    return st;
  }
};

TEST(OptimisticGradient, SameIteratesAsNuPIWithKpOmegaKi1Nu0) {
  for (bool indexed : {false, true}) {
    for (double omega : {1.0, 0.4}) {
      SCOPED_TRACE(std::string(indexed ? "with an indexed constraint" : "dense") + ", optimism " +
                   std::to_string(omega));
      Wide og(indexed), nupi(indexed);
      auto og_dual = std::make_shared<OptimisticGradient>(
          og.problem.dual_parameters(), OptimisticGradientOptions(0.3).optimism(omega));
      auto nupi_dual = std::make_shared<NuPI>(nupi.problem.dual_parameters(),
                                              NuPIOptions(0.3).kp(omega).ki(1.0).nu(0.0));
      feasible::SimultaneousOptimizer o1(
          og.problem,
          Optimizers{std::make_shared<torch::optim::SGD>(std::vector<torch::Tensor>{og.x},
                                                         torch::optim::SGDOptions(0.05))},
          og_dual);
      feasible::SimultaneousOptimizer o2(
          nupi.problem,
          Optimizers{std::make_shared<torch::optim::SGD>(std::vector<torch::Tensor>{nupi.x},
                                                         torch::optim::SGDOptions(0.05))},
          nupi_dual);
      for (int t = 0; t < 50; ++t) {
        o1.step([&] { return og.closure(t); });
        o2.step([&] { return nupi.closure(t); });
        ASSERT_TRUE(torch::equal(og.x, nupi.x)) << "step " << t;
        for (const auto& c : og.problem.constraints()) {
          ASSERT_TRUE(torch::equal(og.problem.multiplier_values(c.name()),
                                   nupi.problem.multiplier_values(c.name())))
              << c.name() << ", step " << t;
        }
      }
      const auto p1 = og.problem.dual_parameters();
      const auto p2 = nupi.problem.dual_parameters();
      for (size_t i = 0; i < p1.size(); ++i) {
        // nu = 0: nuPI's memory xi is the last gradient, which is what ours keeps.
        EXPECT_TRUE(
            torch::equal(og_dual->state_of(p1[i])->previous(), nupi_dual->state_of(p2[i])->xi()));
        EXPECT_EQ(og_dual->state_of(p1[i])->step(), 50);
      }
      EXPECT_GT(og.problem.multiplier_values("ineq").sum().item<double>(), 0.0);
    }
  }
}

// ---------------------------------------------------------------- checkpoints

// The primal parameter in a module, as checkpoints require.
struct PointModule : torch::nn::Module {
  torch::Tensor x;
  explicit PointModule(const torch::Tensor& init) { x = register_parameter("x", init.clone()); }
};

struct Resumable {
  std::shared_ptr<PointModule> model;
  Tiny tiny;
  std::shared_ptr<OptimisticGradient> dual;
  std::unique_ptr<feasible::SimultaneousOptimizer> opt;

  Resumable() : tiny(torch::kFloat64, 0.4, -0.2) {
    model = std::make_shared<PointModule>(tiny.x.detach());
    tiny.x = model->x;
    dual = std::make_shared<OptimisticGradient>(tiny.problem.dual_parameters(),
                                                OptimisticGradientOptions(0.5).optimism(0.8));
    opt = std::make_unique<feasible::SimultaneousOptimizer>(tiny.problem,
                                                            Optimizers{tiny.primal(0.1)}, dual);
  }
  void steps(int n) {
    for (int i = 0; i < n; ++i) opt->step([&] { return tiny.closure(); });
  }
  feasible::CheckpointContents contents() {
    feasible::CheckpointContents c;
    c.module("model", *model).optimizer(*opt);
    return c;
  }
};

TEST(OptimisticGradient, CheckpointRoundTripResumesBitForBit) {
  const std::string path = ::testing::TempDir() + "optimistic_test.ckpt";
  Resumable reference;
  reference.steps(7);
  feasible::save(path, reference.contents());
  reference.steps(10);

  Resumable resumed;
  feasible::load(path, resumed.contents());
  EXPECT_EQ(resumed.opt->iteration(), 7);
  const auto duals = resumed.tiny.problem.dual_parameters();
  ASSERT_NE(resumed.dual->state_of(duals[0]), nullptr) << "the state was not restored";
  EXPECT_EQ(resumed.dual->state_of(duals[0])->step(), 7);
  EXPECT_DOUBLE_EQ(
      static_cast<const OptimisticGradientOptions&>(resumed.dual->param_groups()[0].options())
          .optimism(),
      0.8);
  resumed.steps(10);
  EXPECT_TRUE(torch::equal(resumed.model->x, reference.model->x));
  for (const char* name : {"g", "h"}) {
    EXPECT_TRUE(torch::equal(resumed.tiny.problem.multiplier_values(name),
                             reference.tiny.problem.multiplier_values(name)))
        << name;
  }
  const auto ref_duals = reference.tiny.problem.dual_parameters();
  for (size_t i = 0; i < duals.size(); ++i) {
    EXPECT_TRUE(torch::equal(resumed.dual->state_of(duals[i])->previous(),
                             reference.dual->state_of(ref_duals[i])->previous()));
  }

  // The checkpoint names the type: loading it into a NuPI-driven run is refused.
  Tiny other(torch::kFloat64, 0.4, -0.2);
  auto model = std::make_shared<PointModule>(other.x.detach());
  other.x = model->x;
  feasible::SimultaneousOptimizer with_nupi(
      other.problem, Optimizers{other.primal(0.1)},
      std::make_shared<NuPI>(other.problem.dual_parameters(), NuPIOptions(0.5)));
  feasible::CheckpointContents contents;
  contents.module("model", *model).optimizer(with_nupi);
  EXPECT_HAS(error_of([&] { feasible::load(path, contents); }),
             "feasible::optim::OptimisticGradient in the checkpoint, feasible::optim::NuPI here");
  std::remove(path.c_str());
}

// ---------------------------------------------------------------- non-finite multipliers

// Step 3 of each run sets g's strict violation to the largest double: e = -max, so
// e + (e - e_prev) = -2 max overflows and lambda becomes +Inf in the dual step.
constexpr double kHuge = std::numeric_limits<double>::max();

TEST(OptimisticGradient, OverflowingMultiplierIsSkippedWithTheStateRestored) {
  Tiny run(torch::kFloat64, 0.4, -0.2), clean(torch::kFloat64, 0.4, -0.2);
  auto make = [](Tiny& t) {
    auto dual = std::make_shared<OptimisticGradient>(t.problem.dual_parameters(),
                                                     OptimisticGradientOptions(0.5));
    return std::make_pair(
        dual, std::make_unique<feasible::SimultaneousOptimizer>(
                  t.problem, Optimizers{t.primal(0.1)}, dual,
                  feasible::ConstrainedOptimizerOptions().non_finite(NonFinitePolicy::kSkipStep)));
  };
  auto a = make(run);
  auto b = make(clean);
  for (int t = 0; t < 3; ++t) {
    a.second->step([&] { return run.closure(); });
    b.second->step([&] { return clean.closure(); });
  }
  const auto p = run.problem.dual_parameters();
  const torch::Tensor previous = a.first->state_of(p[0])->previous().clone();
  const torch::Tensor lam = run.problem.multiplier_values("g").clone();
  const feasible::StepResult r = a.second->step([&] { return run.closure(kHuge); });
  EXPECT_TRUE(r.skipped);
  EXPECT_EQ(r.skip_quantity, feasible::NonFiniteQuantity::kMultiplier);
  EXPECT_EQ(r.skip_constraint, "g");
  EXPECT_TRUE(torch::equal(run.problem.multiplier_values("g"), lam));
  EXPECT_TRUE(torch::equal(a.first->state_of(p[0])->previous(), previous));
  EXPECT_EQ(a.first->state_of(p[0])->step(), 3);
  // After the skip the run goes on as if the bad step had not happened.
  for (int t = 0; t < 5; ++t) {
    a.second->step([&] { return run.closure(); });
    b.second->step([&] { return clean.closure(); });
  }
  EXPECT_TRUE(torch::equal(run.x, clean.x));
  EXPECT_TRUE(
      torch::equal(run.problem.multiplier_values("g"), clean.problem.multiplier_values("g")));
  EXPECT_TRUE(
      torch::equal(run.problem.multiplier_values("h"), clean.problem.multiplier_values("h")));
}

TEST(OptimisticGradient, OverflowingMultiplierThrowsUnderKThrow) {
  Tiny run(torch::kFloat64, 0.4, -0.2);
  feasible::SimultaneousOptimizer opt(
      run.problem, Optimizers{run.primal(0.1)},
      std::make_shared<OptimisticGradient>(run.problem.dual_parameters(),
                                           OptimisticGradientOptions(0.5)));
  for (int t = 0; t < 3; ++t) opt.step([&] { return run.closure(); });
  try {
    opt.step([&] { return run.closure(kHuge); });
    ADD_FAILURE() << "no throw";
  } catch (const feasible::NonFiniteError& e) {
    EXPECT_EQ(e.quantity(), feasible::NonFiniteQuantity::kMultiplier);
    EXPECT_EQ(e.constraint(), "g");
    EXPECT_HAS(e.what_without_backtrace(), "the multiplier of constraint 'g' has a NaN or Inf");
  }
}

// ---------------------------------------------------------------- misuse

TEST(OptimisticGradient, OptionsAreValidated) {
  auto p = torch::zeros({2}, torch::requires_grad());
  EXPECT_HAS(error_of([&] { OptimisticGradient(std::vector<torch::Tensor>{p}, -1.0); }),
             "OptimisticGradientOptions.lr must be finite and >= 0, got -1");
  EXPECT_HAS(error_of([&] {
               OptimisticGradient(std::vector<torch::Tensor>{p},
                                  OptimisticGradientOptions(0.1).optimism(NAN));
             }),
             "OptimisticGradientOptions.optimism must be finite and >= 0, got nan");
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(
      std::vector<torch::Tensor>{p},
      std::make_unique<OptimisticGradientOptions>(OptimisticGradientOptions(0.1).optimism(-0.5)));
  EXPECT_HAS(error_of([&] { OptimisticGradient(std::move(groups)); }),
             "OptimisticGradientOptions.optimism must be finite and >= 0, got -0.5");
}

TEST(OptimisticGradient, SparseGradientsAreRefusedNamingTheAlternative) {
  auto p = torch::zeros({4}, torch::requires_grad());
  OptimisticGradient opt(std::vector<torch::Tensor>{p});
  p.mutable_grad() =
      torch::sparse_coo_tensor(torch::tensor({{1, 3}}, torch::kLong), torch::ones({2}), {4});
  EXPECT_HAS(error_of([&] { opt.step(); }), "sparse gradients are not supported; use NuPI");
}

}  // namespace
