// Problem registry and per-constraint behaviour: deterministic registration order (constraints,
// multipliers, dual parameters), mixed kinds and sizes, dtype and initial values of multipliers,
// max_multiplier clamping, equality + inequality and Lagrangian + Augmented Lagrangian problems
// trained together (closed-form KKT points), contributes_to_primal / contributes_to_dual,
// unobserved constraints, implicit multipliers, and StepResult::at / max_violation.
#include <feasible/feasible.h>
#include <gtest/gtest.h>

#include <cmath>
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
using feasible::ProblemState;

using Optimizers = std::vector<std::shared_ptr<torch::optim::Optimizer>>;

std::shared_ptr<torch::optim::SGD> sgd(std::vector<torch::Tensor> params, double lr) {
  return std::make_shared<torch::optim::SGD>(std::move(params), torch::optim::SGDOptions(lr));
}

torch::Tensor f64(std::vector<double> v) { return torch::tensor(v, torch::kFloat64); }

// A multiplier model: softplus (or, with softplus = false, the identity) of a linear map.
struct LinearMultiplierImpl : torch::nn::Module {
  LinearMultiplierImpl(int64_t in, bool softplus)
      : linear(register_module("linear", torch::nn::Linear(in, 1))), softplus(softplus) {}
  torch::Tensor forward(torch::Tensor features) {
    torch::Tensor z = linear(features).squeeze(-1);
    return softplus ? torch::softplus(z) : z;
  }
  torch::nn::Linear linear;
  bool softplus;
};
TORCH_MODULE(LinearMultiplier);

// Sets the model's weight [1, in] and bias [1].
void set_linear(LinearMultiplier& m, std::vector<double> w, double b) {
  torch::NoGradGuard no_grad;
  m->linear->weight.copy_(torch::tensor(w).reshape({1, -1}));
  m->linear->bias.fill_(b);
}

double softplus(double z) { return std::log1p(std::exp(z)); }
double sigmoid(double z) { return 1.0 / (1.0 + std::exp(-z)); }

// Restores torch's default dtype when it goes out of scope.
struct DefaultDtypeGuard {
  caffe2::TypeMeta saved = torch::get_default_dtype();
  ~DefaultDtypeGuard() { torch::set_default_dtype(saved); }
};

// ----------------------------------------------------------------------------- registry

TEST(ProblemRegistry, RegistrationOrderIsDeterministic) {
  feasible::Problem problem;
  LinearMultiplier model(2, true);
  // Names deliberately not in alphabetical order; one constraint without a multiplier.
  auto zeta = problem.add_constraint("zeta", ConstraintOptions(ConstraintKind::kInequality, 2));
  auto alpha = problem.add_constraint("alpha", ConstraintOptions(ConstraintKind::kEquality, 1));
  auto quad = problem.add_constraint(
      "quad", ConstraintOptions().formulation(std::make_shared<feasible::QuadraticPenalty>()));
  auto mid = problem.add_constraint("mid", ConstraintOptions(ConstraintKind::kInequality, 4)
                                               .multiplier(MultiplierKind::kImplicit)
                                               .implicit_model(torch::nn::AnyModule(model)));
  auto beta = problem.add_constraint(
      "beta",
      ConstraintOptions(ConstraintKind::kInequality, 7).multiplier(MultiplierKind::kIndexed));

  const std::vector<std::string> expected = {"zeta", "alpha", "quad", "mid", "beta"};
  ASSERT_EQ(problem.constraints().size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(problem.constraints()[i].name(), expected[i]);
    EXPECT_EQ(problem.constraints()[i].index(), i);
    EXPECT_EQ(problem.constraint(expected[i]), problem.constraints()[i]);
    EXPECT_TRUE(problem.has_constraint(expected[i]));
  }
  EXPECT_EQ(problem.constraints()[0], zeta);
  EXPECT_EQ(problem.constraints()[2], quad);
  EXPECT_EQ(quad.multiplier(), nullptr);

  // multipliers(): registration order, skipping the penalty-only constraint.
  const auto ms = problem.multipliers();
  ASSERT_EQ(ms.size(), 4u);
  EXPECT_EQ(ms[0], zeta.multiplier());
  EXPECT_EQ(ms[1], alpha.multiplier());
  EXPECT_EQ(ms[2], mid.multiplier());
  EXPECT_EQ(ms[3], beta.multiplier());

  // dual_parameters(): the multipliers' parameters, same order (the implicit model has two).
  const auto duals = problem.dual_parameters();
  ASSERT_EQ(duals.size(), 5u);
  EXPECT_TRUE(duals[0].is_same(zeta.multiplier()->parameters()[0]));
  EXPECT_TRUE(duals[1].is_same(alpha.multiplier()->parameters()[0]));
  EXPECT_TRUE(duals[2].is_same(model->linear->weight));
  EXPECT_TRUE(duals[3].is_same(model->linear->bias));
  EXPECT_TRUE(duals[4].is_same(beta.multiplier()->parameters()[0]));
  EXPECT_EQ(problem.dual_parameters("mid").size(), 2u);
  EXPECT_TRUE(problem.dual_parameters("quad").empty());

  // Another problem built the same way lists the same names in the same order.
  feasible::Problem again;
  for (const auto& name : {"zeta", "alpha", "mid"}) again.add_constraint(name);
  EXPECT_EQ(again.constraints()[0].name(), "zeta");
  EXPECT_EQ(again.constraints()[2].name(), "mid");
  EXPECT_NE(again.id(), problem.id());
}

TEST(ProblemRegistry, MixedKindsAndSizes) {
  feasible::Problem problem;
  auto a = problem.add_constraint("a", ConstraintOptions(ConstraintKind::kInequality, 3));
  auto b = problem.add_constraint(
      "b", ConstraintOptions(ConstraintKind::kEquality, 2)
               .formulation(std::make_shared<feasible::AugmentedLagrangian>())
               .penalty(2.5)
               .penalty_per_entry(true));
  auto c = problem.add_constraint("c", ConstraintOptions(ConstraintKind::kInequality, 1000)
                                           .multiplier(MultiplierKind::kIndexed)
                                           .lazy(true));
  auto d =
      problem.add_constraint("d", ConstraintOptions(ConstraintKind::kEquality, 4)
                                      .formulation(std::make_shared<feasible::FixedPenalty>()));

  EXPECT_EQ(a.kind(), ConstraintKind::kInequality);
  EXPECT_EQ(b.kind(), ConstraintKind::kEquality);
  EXPECT_EQ(c.kind(), ConstraintKind::kInequality);
  EXPECT_EQ(d.kind(), ConstraintKind::kEquality);
  EXPECT_EQ(a.size(), 3);
  EXPECT_EQ(b.size(), 2);
  EXPECT_EQ(c.size(), 1000);
  EXPECT_EQ(d.size(), 4);
  EXPECT_EQ(a.formulation()->name(), "Lagrangian");
  EXPECT_EQ(b.formulation()->name(), "AugmentedLagrangian");

  // Multipliers: dense [3] and [2], indexed [1000] (lazy), none for FixedPenalty.
  EXPECT_NE(std::dynamic_pointer_cast<feasible::DenseMultiplier>(a.multiplier()), nullptr);
  EXPECT_EQ(std::dynamic_pointer_cast<feasible::IndexedMultiplier>(a.multiplier()), nullptr);
  auto indexed = std::dynamic_pointer_cast<feasible::IndexedMultiplier>(c.multiplier());
  ASSERT_NE(indexed, nullptr);
  EXPECT_TRUE(indexed->lazy());
  EXPECT_EQ(d.multiplier(), nullptr);
  EXPECT_EQ(problem.multiplier_values("a").sizes(), torch::IntArrayRef({3}));
  EXPECT_EQ(problem.multiplier_values("b").sizes(), torch::IntArrayRef({2}));
  EXPECT_EQ(problem.multiplier_values("c").sizes(), torch::IntArrayRef({1000}));
  EXPECT_EQ(a.multiplier()->kind(), ConstraintKind::kInequality);
  EXPECT_EQ(b.multiplier()->kind(), ConstraintKind::kEquality);

  // Penalties: none for the Lagrangian, per entry [2] for b, one scalar for d.
  EXPECT_EQ(a.penalty(), nullptr);
  EXPECT_TRUE(torch::allclose(problem.penalty_values("b"), torch::tensor({2.5f, 2.5f})));
  EXPECT_EQ(problem.penalty_values("d").dim(), 0);
  EXPECT_FLOAT_EQ(problem.penalty_values("d").item<float>(), 1.0f);  // default penalty 1
  EXPECT_EQ(problem.dual_parameters().size(), 3u);
}

TEST(ProblemRegistry, DtypeOptionAndDefault) {
  DefaultDtypeGuard guard;
  feasible::Problem problem;
  problem.add_constraint("f64", ConstraintOptions(ConstraintKind::kInequality, 2)
                                    .formulation(std::make_shared<feasible::AugmentedLagrangian>())
                                    .dtype(torch::kFloat64));
  problem.add_constraint("default_f32", ConstraintOptions().formulation(
                                            std::make_shared<feasible::AugmentedLagrangian>()));
  torch::set_default_dtype(caffe2::TypeMeta::Make<double>());
  problem.add_constraint("default_f64", ConstraintOptions().formulation(
                                            std::make_shared<feasible::AugmentedLagrangian>()));
  torch::set_default_dtype(caffe2::TypeMeta::Make<float>());
  problem.add_constraint("f64_under_f32", ConstraintOptions().dtype(torch::kFloat64));
  problem.add_constraint("f32", ConstraintOptions().dtype(torch::kFloat32));

  EXPECT_EQ(problem.multiplier_values("f64").scalar_type(), torch::kFloat64);
  EXPECT_EQ(problem.penalty_values("f64").scalar_type(), torch::kFloat64);
  EXPECT_EQ(problem.multiplier_values("default_f32").scalar_type(), torch::kFloat32);
  EXPECT_EQ(problem.penalty_values("default_f32").scalar_type(), torch::kFloat32);
  EXPECT_EQ(problem.multiplier_values("default_f64").scalar_type(), torch::kFloat64);
  EXPECT_EQ(problem.penalty_values("default_f64").scalar_type(), torch::kFloat64);
  EXPECT_EQ(problem.multiplier_values("f64_under_f32").scalar_type(), torch::kFloat64);
  EXPECT_EQ(problem.multiplier_values("f32").scalar_type(), torch::kFloat32);
  for (const auto& p : problem.dual_parameters()) EXPECT_TRUE(p.requires_grad());
}

TEST(ProblemRegistry, InitAndInitValues) {
  feasible::Problem problem;
  problem.add_constraint("zero",
                         ConstraintOptions(ConstraintKind::kInequality, 2).dtype(torch::kFloat64));
  problem.add_constraint(
      "init", ConstraintOptions(ConstraintKind::kInequality, 3).init(0.75).dtype(torch::kFloat64));
  problem.add_constraint("values", ConstraintOptions(ConstraintKind::kInequality, 3)
                                       .init(9.0)  // overridden by init_values
                                       .init_values(f64({0.1, 0.2, 0.3}))
                                       .dtype(torch::kFloat64));
  // init_values in another dtype are converted to the multiplier's dtype.
  problem.add_constraint("eq_values", ConstraintOptions(ConstraintKind::kEquality, 2)
                                          .init_values(torch::tensor({-1.5f, 2.0f}))
                                          .dtype(torch::kFloat64));
  problem.add_constraint("indexed", ConstraintOptions(ConstraintKind::kInequality, 4)
                                        .multiplier(MultiplierKind::kIndexed)
                                        .init_values(f64({0.0, 1.0, 2.0, 3.0}))
                                        .dtype(torch::kFloat64));
  EXPECT_TRUE(torch::equal(problem.multiplier_values("zero"), f64({0.0, 0.0})));
  EXPECT_TRUE(torch::equal(problem.multiplier_values("init"), f64({0.75, 0.75, 0.75})));
  EXPECT_TRUE(torch::equal(problem.multiplier_values("values"), f64({0.1, 0.2, 0.3})));
  EXPECT_TRUE(torch::equal(problem.multiplier_values("eq_values"), f64({-1.5, 2.0})));
  EXPECT_TRUE(torch::equal(problem.multiplier_values("indexed"), f64({0.0, 1.0, 2.0, 3.0})));

  // The multiplier is a copy: editing the tensor passed as init_values changes nothing.
  auto source = f64({0.5, 0.5});
  problem.add_constraint(
      "copy",
      ConstraintOptions(ConstraintKind::kInequality, 2).init_values(source).dtype(torch::kFloat64));
  source.fill_(7.0);
  EXPECT_TRUE(torch::equal(problem.multiplier_values("copy"), f64({0.5, 0.5})));
}

TEST(ProblemRegistry, MaxMultiplierClampsAfterADualStep) {
  auto x = torch::zeros({1}, torch::requires_grad());
  feasible::Problem problem;
  auto ineq = problem.add_constraint("ineq", ConstraintOptions(ConstraintKind::kInequality, 3)
                                                 .init(0.1)
                                                 .max_multiplier(0.5)
                                                 .dtype(torch::kFloat64));
  auto eq = problem.add_constraint("eq", ConstraintOptions(ConstraintKind::kEquality, 3)
                                             .init(0.1)
                                             .max_multiplier(0.5)
                                             .dtype(torch::kFloat64));
  feasible::SimultaneousOptimizer opt(problem, {sgd({x}, 0.1)},
                                      sgd(problem.dual_parameters(), 1.0));
  const auto s = f64({2.0, -3.0, 0.2});
  opt.step([&] {
    ProblemState st(x.sum());
    st.observe(ineq, ConstraintState(s).contributes_to_primal(false));  // constant: dual only
    st.observe(eq, ConstraintState(s).contributes_to_primal(false));
    return st;
  });
  // Dual SGD with step 1: 0.1 + s = [2.1, -2.9, 0.3], then the projection:
  // inequality onto [0, 0.5] -> [0.5, 0, 0.3]; equality onto [-0.5, 0.5] -> [0.5, -0.5, 0.3].
  EXPECT_TRUE(torch::allclose(problem.multiplier_values("ineq"), f64({0.5, 0.0, 0.3}), 0, 1e-12));
  EXPECT_TRUE(torch::allclose(problem.multiplier_values("eq"), f64({0.5, -0.5, 0.3}), 0, 1e-12));
  EXPECT_EQ(ineq.multiplier()->max_value(), c10::optional<double>(0.5));
}

// A multiplier that keeps the base class's project() (over its parameters()).
class PlainMultiplier : public feasible::Multiplier {
 public:
  PlainMultiplier(ConstraintKind kind, torch::Tensor init) : Multiplier(kind, init.numel()) {
    value_ = register_parameter("value", init.clone());
  }
  torch::Tensor evaluate(const torch::Tensor&, const torch::Tensor&) override {
    return value_.detach();
  }
  torch::Tensor values() const override { return value_.detach(); }

 private:
  torch::Tensor value_;
};

// project() of every multiplier class onto bounds(): [0, max] or [0, inf) for inequalities,
// [-max, max] or no change for equalities; lazy and sparse indexed multipliers only in the rows
// observed in the step, plain indexed ones in every row.
TEST(ProblemRegistry, ProjectionOntoTheBoundsForEveryMultiplierClass) {
  const auto start = f64({2.0, -3.0, 0.3, -0.2});
  struct Case {
    ConstraintKind kind;
    c10::optional<double> max;
    std::vector<double> want;  // every row projected
  };
  const Case cases[] = {
      {ConstraintKind::kInequality, c10::nullopt, {2.0, 0.0, 0.3, 0.0}},
      {ConstraintKind::kInequality, 0.5, {0.5, 0.0, 0.3, 0.0}},
      {ConstraintKind::kEquality, c10::nullopt, {2.0, -3.0, 0.3, -0.2}},
      {ConstraintKind::kEquality, 0.5, {0.5, -0.5, 0.3, -0.2}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(c.kind == ConstraintKind::kInequality ? "inequality" : "equality") +
                 (c.max ? ", max 0.5" : ", no max"));
    PlainMultiplier plain(c.kind, start);
    feasible::DenseMultiplier dense(c.kind, 4, start);
    feasible::IndexedMultiplier indexed(c.kind, 4, start);
    for (feasible::Multiplier* m : std::vector<feasible::Multiplier*>{&plain, &dense, &indexed}) {
      m->set_max_value(c.max);
      EXPECT_EQ(m->bounds().first,
                c.kind == ConstraintKind::kInequality ? 0.0 : (c.max ? -0.5 : -INFINITY));
      EXPECT_EQ(m->bounds().second, c.max ? 0.5 : INFINITY);
      m->project();
      EXPECT_TRUE(torch::equal(m->values(), f64(c.want)));
    }
    // Lazy or sparse: rows 0 and 1 observed; rows 2 and 3 keep their values.
    for (bool lazy : {true, false}) {
      feasible::IndexedMultiplier rows(c.kind, 4, start, lazy, /*sparse_gradient=*/!lazy);
      rows.set_max_value(c.max);
      rows.write_ascent(torch::tensor({0, 1}, torch::kLong), f64({0.0, 0.0}));
      rows.project();
      EXPECT_TRUE(torch::equal(rows.values(), f64({c.want[0], c.want[1], 0.3, -0.2})))
          << (lazy ? "lazy" : "sparse gradient");
    }
  }
}

// ----------------------------------------------------------------------------- training

// minimize x^2 + y^2  s.t.  x + y = 1 (equality),  x <= 0.25 (inequality).
// KKT: 2x + mu + lambda = 0, 2y + mu = 0, x = 0.25 active -> y = 0.75, mu = -1.5, lambda = 1.
TEST(ProblemTraining, EqualityAndInequalityTogether) {
  auto xy = torch::zeros({2}, torch::dtype(torch::kFloat64).requires_grad(true));
  feasible::Problem problem;
  auto sum = problem.add_constraint(
      "sum", ConstraintOptions(ConstraintKind::kEquality).dtype(torch::kFloat64));
  auto cap = problem.add_constraint(
      "cap", ConstraintOptions(ConstraintKind::kInequality).dtype(torch::kFloat64));
  feasible::SimultaneousOptimizer opt(problem, {sgd({xy}, 0.2)},
                                      sgd(problem.dual_parameters(), 0.2));
  auto closure = [&] {
    ProblemState st(xy.pow(2).sum());
    st.observe(sum, ConstraintState(xy.sum() - 1.0));
    st.observe(cap, ConstraintState(xy[0] - 0.25));
    return st;
  };
  // Step 0 at (0, 0), lambda = mu = 0: no primal gradient; mu = 0.2 * (-1) = -0.2,
  // lambda = [0 + 0.2 * (-0.25)]+ = 0.
  opt.step(closure);
  EXPECT_TRUE(torch::allclose(xy.detach(), f64({0.0, 0.0}), 0, 1e-12));
  EXPECT_NEAR(problem.multiplier_values("sum")[0].item<double>(), -0.2, 1e-12);
  EXPECT_NEAR(problem.multiplier_values("cap")[0].item<double>(), 0.0, 1e-12);
  // Step 1: gradient (2x + mu + lambda, 2y + mu) = (-0.2, -0.2) -> (0.04, 0.04); mu = -0.4;
  // lambda = [0 + 0.2 * (0 - 0.25)]+ = 0.
  opt.step(closure);
  EXPECT_TRUE(torch::allclose(xy.detach(), f64({0.04, 0.04}), 0, 1e-12));
  EXPECT_NEAR(problem.multiplier_values("sum")[0].item<double>(), -0.4, 1e-12);
  EXPECT_NEAR(problem.multiplier_values("cap")[0].item<double>(), 0.0, 1e-12);
  feasible::StepResult last;
  for (int t = 0; t < 300; ++t) last = opt.step(closure);
  // Simultaneous GDA on this strongly convex problem with linear constraints converges
  // linearly: the same iteration in exact arithmetic is within 3e-6 of the KKT point after
  // 300 steps at these step sizes, so 1e-4 has a wide margin.
  EXPECT_NEAR(xy[0].item<double>(), 0.25, 1e-4);
  EXPECT_NEAR(xy[1].item<double>(), 0.75, 1e-4);
  EXPECT_NEAR(problem.multiplier_values("sum")[0].item<double>(), -1.5, 1e-4);
  EXPECT_NEAR(problem.multiplier_values("cap")[0].item<double>(), 1.0, 1e-4);
  EXPECT_LT(last.max_violation(), 1e-4);
}

// minimize ||x - t||^2, t = (2, 0, 1, 3), subject to
//   group A (Lagrangian, inequality, size 2): x0 <= 1, x1 <= 1
//   group B (Augmented Lagrangian, equality, size 1, c = 1): x2 + x3 = 2.
// KKT: x = (1, 0, 0, 2); lambda = (2, 0) from 2(x0 - 2) + lambda0 = 0 and x1 inactive;
// mu = 2 from 2(x2 - 1) + mu = 0 = 2(x3 - 3) + mu.
TEST(ProblemTraining, TwoGroupsWithDifferentFormulations) {
  auto x = torch::zeros({4}, torch::dtype(torch::kFloat64).requires_grad(true));
  const auto t = f64({2.0, 0.0, 1.0, 3.0});
  feasible::Problem problem;
  auto a = problem.add_constraint(
      "A", ConstraintOptions(ConstraintKind::kInequality, 2).dtype(torch::kFloat64));
  auto b = problem.add_constraint(
      "B", ConstraintOptions(ConstraintKind::kEquality, 1)
               .formulation(std::make_shared<feasible::AugmentedLagrangian>())
               .penalty(1.0)
               .dtype(torch::kFloat64));
  feasible::SimultaneousOptimizer opt(problem, {sgd({x}, 0.1)},
                                      sgd(problem.dual_parameters(), 0.1));
  auto closure = [&] {
    ProblemState st((x - t).pow(2).sum());
    st.observe(a, ConstraintState(x.slice(0, 0, 2) - 1.0));
    st.observe(b, ConstraintState(x.slice(0, 2, 4).sum() - 2.0));
    return st;
  };
  // Step 0 at x = 0 with lambda = mu = 0: primal gradient 2(x - t) + (mu + c v) on x2, x3 with
  // v = -2: (-4, 0, -2 - 2, -6 - 2) -> x = 0.1 * (4, 0, 4, 8) = (0.4, 0, 0.4, 0.8).
  // Dual: lambda = [0.1 * (-1, -1)]+ = 0; mu = 0.1 * (-2) = -0.2.
  opt.step(closure);
  EXPECT_TRUE(torch::allclose(x.detach(), f64({0.4, 0.0, 0.4, 0.8}), 0, 1e-12));
  EXPECT_TRUE(torch::allclose(problem.multiplier_values("A"), f64({0.0, 0.0}), 0, 1e-12));
  EXPECT_NEAR(problem.multiplier_values("B")[0].item<double>(), -0.2, 1e-12);
  feasible::StepResult last;
  for (int t_ = 0; t_ < 300; ++t_) last = opt.step(closure);
  // Linear convergence of GDA on a strongly convex quadratic with linear constraints: the same
  // iteration in exact arithmetic is within 1e-7 of the KKT point after 300 steps at step 0.1.
  EXPECT_TRUE(torch::allclose(x.detach(), f64({1.0, 0.0, 0.0, 2.0}), 0, 1e-4)) << x;
  EXPECT_TRUE(torch::allclose(problem.multiplier_values("A"), f64({2.0, 0.0}), 0, 1e-4))
      << problem.multiplier_values("A");
  EXPECT_NEAR(problem.multiplier_values("B")[0].item<double>(), 2.0, 1e-4);
  EXPECT_LT(last.max_violation(), 1e-4);
}

// ----------------------------------------------------------------------------- flags

// Loss 0.5 ||x||^2 at x = (1, 2); constraint x0 + x1 - 1 <= 0 (violation 2), lambda_0 = 1.
// Primal SGD step 0.1, dual SGD step 0.5.
struct FlagRig {
  torch::Tensor x = f64({1.0, 2.0}).requires_grad_();
  feasible::Problem problem;
  feasible::Constraint c;
  std::unique_ptr<feasible::SimultaneousOptimizer> opt;
  FlagRig() {
    c = problem.add_constraint(
        "c", ConstraintOptions(ConstraintKind::kInequality).init(1.0).dtype(torch::kFloat64));
    opt = std::make_unique<feasible::SimultaneousOptimizer>(problem, Optimizers{sgd({x}, 0.1)},
                                                            sgd(problem.dual_parameters(), 0.5));
  }
  feasible::StepResult step(bool primal, bool dual) {
    return opt->step([&] {
      ProblemState st(0.5 * x.pow(2).sum());
      st.observe(
          c,
          ConstraintState(x.sum() - 1.0).contributes_to_primal(primal).contributes_to_dual(dual));
      return st;
    });
  }
};

TEST(ProblemFlags, ContributesToPrimalFalseLeavesTheTermOut) {
  FlagRig r;
  const auto result = r.step(/*primal=*/false, /*dual=*/true);
  // Loss-only update: x - 0.1 x = (0.9, 1.8) (with the term it would be x - 0.1 (x + 1)).
  EXPECT_TRUE(torch::allclose(r.x.detach(), f64({0.9, 1.8}), 0, 1e-12)) << r.x;
  // The Lagrangian reported is the loss alone: 0.5 * (1 + 4) = 2.5.
  EXPECT_NEAR(result.lagrangian.item<double>(), 2.5, 1e-12);
  // The multiplier still moves: 1 + 0.5 * 2 = 2.
  EXPECT_NEAR(r.problem.multiplier_values("c")[0].item<double>(), 2.0, 1e-12);

  // Reference: the same step with the term included moves x differently.
  FlagRig ref;
  ref.step(true, true);
  EXPECT_TRUE(torch::allclose(ref.x.detach(), f64({0.8, 1.7}), 0, 1e-12)) << ref.x;
}

TEST(ProblemFlags, ContributesToDualFalseLeavesTheMultiplierUnchanged) {
  FlagRig r;
  r.step(/*primal=*/true, /*dual=*/false);
  EXPECT_NEAR(r.problem.multiplier_values("c")[0].item<double>(), 1.0, 0.0);
  // The primal term still acts with lambda = 1: x - 0.1 (x + 1) = (0.8, 1.7).
  EXPECT_TRUE(torch::allclose(r.x.detach(), f64({0.8, 1.7}), 0, 1e-12)) << r.x;

  // With an Augmented Lagrangian and a penalty updater, the penalty does not grow either.
  auto y = f64({1.0}).requires_grad_();
  feasible::Problem problem;
  auto al = problem.add_constraint(
      "al", ConstraintOptions()
                .formulation(std::make_shared<feasible::AugmentedLagrangian>())
                .penalty(1.0)
                .penalty_updater(std::make_shared<feasible::MultiplicativePenaltyUpdater>(2.0))
                .dtype(torch::kFloat64));
  feasible::SimultaneousOptimizer opt(problem, {sgd({y}, 0.1)},
                                      sgd(problem.dual_parameters(), 0.5));
  auto closure = [&](bool dual) {
    return [&, dual] {
      ProblemState st(y.sum() * 0.0);
      st.observe(al, ConstraintState(y.sum() + 1.0).contributes_to_dual(dual));  // violation 2
      return st;
    };
  };
  opt.step(closure(false));
  EXPECT_NEAR(problem.multiplier_values("al")[0].item<double>(), 0.0, 0.0);
  EXPECT_NEAR(problem.penalty_values("al").item<double>(), 1.0, 0.0);
  // Control: with contributes_to_dual the penalty doubles (violation > tolerance).
  opt.step(closure(true));
  EXPECT_NEAR(problem.penalty_values("al").item<double>(), 2.0, 0.0);
  EXPECT_GT(problem.multiplier_values("al")[0].item<double>(), 0.0);
}

TEST(ProblemFlags, UnobservedDenseConstraintKeepsItsMultiplierUnderAdam) {
  auto x = f64({0.5, 0.5}).requires_grad_();
  feasible::Problem problem;
  auto a = problem.add_constraint(
      "a", ConstraintOptions(ConstraintKind::kInequality, 2).dtype(torch::kFloat64));
  auto b = problem.add_constraint(
      "b", ConstraintOptions(ConstraintKind::kEquality, 2).dtype(torch::kFloat64));
  auto dual = std::make_shared<torch::optim::Adam>(problem.dual_parameters(),
                                                   torch::optim::AdamOptions(0.1));
  feasible::SimultaneousOptimizer opt(problem, {sgd({x}, 0.1)}, dual);
  auto observe = [&](bool with_b) {
    return opt.step([&, with_b] {
      ProblemState st(x.pow(2).sum());
      st.observe(a, ConstraintState(x + 1.0));  // violated: (1.5, 1.5)
      if (with_b) st.observe(b, ConstraintState(x - 2.0));
      return st;
    });
  };
  observe(true);  // both move; Adam now has momentum for b
  const auto a1 = problem.multiplier_values("a").clone();
  const auto b1 = problem.multiplier_values("b").clone();
  EXPECT_FALSE(torch::equal(b1, torch::zeros({2}, torch::kFloat64)));
  const auto result = observe(false);
  // Adam with momentum would keep moving b if its gradient were zero; it must not move at all.
  EXPECT_TRUE(torch::equal(problem.multiplier_values("b"), b1)) << problem.multiplier_values("b");
  EXPECT_FALSE(torch::equal(problem.multiplier_values("a"), a1));
  EXPECT_TRUE(result.at("a").observed);
  EXPECT_FALSE(result.at("b").observed);
  EXPECT_FALSE(result.at("b").violation.defined());
}

// ----------------------------------------------------------------------------- implicit

// One step with lambda(F) = softplus(F w + b), one-hot features, loss 0.5 ||x||^2,
// constraint x_i - 0.5 <= 0 at x = (1, 2) (violations s = (0.5, 1.5)). Primal SGD 0.1, dual
// SGD 0.5 on (w, b). The dual descent loss is -sum_i lambda_i s_i, so SGD moves
//   w_j <- w_j + 0.5 s_j sigmoid(z_j),  b <- b + 0.5 sum_i s_i sigmoid(z_i),  z = w + b,
// all upwards (ascent) since s > 0; x <- x - 0.1 (x + lambda).
TEST(ProblemImplicit, ImplicitMultiplierTrainsInTheAscentDirection) {
  auto x = torch::tensor({1.0f, 2.0f}).requires_grad_();
  LinearMultiplier model(2, true);
  set_linear(model, {0.2, -0.3}, 0.1);
  feasible::Problem problem;
  auto c = problem.add_constraint("implicit", ConstraintOptions(ConstraintKind::kInequality, 2)
                                                  .multiplier(MultiplierKind::kImplicit)
                                                  .implicit_model(torch::nn::AnyModule(model)));
  EXPECT_FALSE(c.multiplier()->writes_gradient_directly());
  feasible::SimultaneousOptimizer opt(problem, {sgd({x}, 0.1)},
                                      sgd(problem.dual_parameters(), 0.5));
  const auto features = torch::eye(2);
  auto closure = [&] {
    ProblemState st(0.5 * x.pow(2).sum());
    st.observe(c, ConstraintState(x - 0.5).features(features));
    return st;
  };
  const double z0 = 0.2 + 0.1, z1 = -0.3 + 0.1;
  const double s0 = 0.5, s1 = 1.5;
  const auto result = opt.step(closure);

  // Float32 throughout: 1e-5 covers rounding of a handful of operations on O(1) values.
  EXPECT_TRUE(torch::allclose(result.at("implicit").multiplier,
                              torch::tensor({softplus(z0), softplus(z1)}).to(torch::kFloat), 0,
                              1e-5));
  const auto w = model->linear->weight.detach().reshape({-1});
  EXPECT_NEAR(w[0].item<double>(), 0.2 + 0.5 * s0 * sigmoid(z0), 1e-5);
  EXPECT_NEAR(w[1].item<double>(), -0.3 + 0.5 * s1 * sigmoid(z1), 1e-5);
  EXPECT_NEAR(model->linear->bias.item<double>(), 0.1 + 0.5 * (s0 * sigmoid(z0) + s1 * sigmoid(z1)),
              1e-5);
  EXPECT_NEAR(x[0].item<double>(), 1.0 - 0.1 * (1.0 + softplus(z0)), 1e-5);
  EXPECT_NEAR(x[1].item<double>(), 2.0 - 0.1 * (2.0 + softplus(z1)), 1e-5);
  // Ascent: both (violated) entries now get larger multipliers than before the step.
  const auto lambda_after = model->forward(features).detach();
  EXPECT_GT(lambda_after[0].item<double>(), softplus(z0) + 0.1);
  EXPECT_GT(lambda_after[1].item<double>(), softplus(z1) + 0.1);
}

// Training an implicit multiplier: minimize 0.5 ||x - (3, 2)||^2 s.t. x_i <= 1, with
// lambda_i = softplus(w_i + b) (one-hot features), from w = b = 0 and x = 0.
// KKT: x = (1, 1), lambda = (2, 1).
TEST(ProblemImplicit, ImplicitMultiplierConvergesToTheKKTMultipliers) {
  auto x = torch::zeros({2}, torch::requires_grad());
  LinearMultiplier model(2, true);
  set_linear(model, {0.0, 0.0}, 0.0);
  feasible::Problem problem;
  auto c = problem.add_constraint("implicit", ConstraintOptions(ConstraintKind::kInequality, 2)
                                                  .multiplier(MultiplierKind::kImplicit)
                                                  .implicit_model(torch::nn::AnyModule(model)));
  feasible::SimultaneousOptimizer opt(problem, {sgd({x}, 0.3)},
                                      sgd(problem.dual_parameters(), 0.3));
  const auto features = torch::eye(2);
  const auto target = torch::tensor({3.0f, 2.0f});
  feasible::StepResult last;
  for (int t = 0; t < 300; ++t) {
    last = opt.step([&] {
      ProblemState st(0.5 * (x - target).pow(2).sum());
      st.observe(c, ConstraintState(x - 1.0).features(features));
      return st;
    });
  }
  const auto lambda = model->forward(features).detach();
  // The same iteration in double-precision exact arithmetic is within 1e-9 of the KKT point
  // after 300 steps at these step sizes; 1e-4 leaves room for float32 rounding.
  EXPECT_TRUE(torch::allclose(x.detach(), torch::tensor({1.0f, 1.0f}), 0, 1e-4)) << x;
  EXPECT_TRUE(torch::allclose(lambda, torch::tensor({2.0f, 1.0f}), 0, 1e-4)) << lambda;
  EXPECT_LT(last.max_violation(), 1e-4);
}

TEST(ProblemImplicit, NegativeImplicitMultiplierForAnInequalityThrows) {
  auto x = torch::tensor({1.0f, 2.0f}).requires_grad_();
  LinearMultiplier model(2, /*softplus=*/false);
  set_linear(model, {-1.0, -2.0}, -0.5);  // outputs (-1.5, -2.5) on one-hot features
  feasible::Problem problem;
  auto c = problem.add_constraint("raw", ConstraintOptions(ConstraintKind::kInequality, 2)
                                             .multiplier(MultiplierKind::kImplicit)
                                             .implicit_model(torch::nn::AnyModule(model)));
  feasible::SimultaneousOptimizer opt(problem, {sgd({x}, 0.1)},
                                      sgd(problem.dual_parameters(), 0.5));
  const auto x0 = x.detach().clone();
  const auto w0 = model->linear->weight.detach().clone();
  const auto b0 = model->linear->bias.detach().clone();
  const std::string msg = error_of([&] {
    opt.step([&] {
      ProblemState st(0.5 * x.pow(2).sum());
      st.observe(c, ConstraintState(x - 0.5).features(torch::eye(2)));
      return st;
    });
  });
  EXPECT_HAS(msg, "negative");
  EXPECT_HAS(msg, "softplus");
  EXPECT_HAS(msg, "-2.5");  // the most negative value
  EXPECT_TRUE(torch::equal(x.detach(), x0));
  EXPECT_TRUE(torch::equal(model->linear->weight.detach(), w0));
  EXPECT_TRUE(torch::equal(model->linear->bias.detach(), b0));

  // The same model is fine for an equality constraint (free multipliers).
  feasible::Problem eq_problem;
  auto e = eq_problem.add_constraint("raw_eq", ConstraintOptions(ConstraintKind::kEquality, 2)
                                                   .multiplier(MultiplierKind::kImplicit)
                                                   .implicit_model(torch::nn::AnyModule(model)));
  feasible::SimultaneousOptimizer eq_opt(eq_problem, {sgd({x}, 0.1)},
                                         sgd(eq_problem.dual_parameters(), 0.5));
  EXPECT_NO_THROW(eq_opt.step([&] {
    ProblemState st(0.5 * x.pow(2).sum());
    st.observe(e, ConstraintState(x - 0.5).features(torch::eye(2)));
    return st;
  }));
}

// ----------------------------------------------------------------------------- StepResult

TEST(ProblemStepResult, AtAndMaxViolation) {
  auto x = f64({0.3, -2.0}).requires_grad_();
  feasible::Problem problem;
  auto a = problem.add_constraint("a", ConstraintOptions(ConstraintKind::kInequality, 2)
                                           .init_values(f64({1.0, 2.0}))
                                           .dtype(torch::kFloat64));
  auto b = problem.add_constraint(
      "b", ConstraintOptions(ConstraintKind::kEquality, 1)
               .formulation(std::make_shared<feasible::AugmentedLagrangian>())
               .penalty(3.0)
               .penalty_updater(std::make_shared<feasible::MultiplicativePenaltyUpdater>(2.0))
               .dtype(torch::kFloat64));
  // Never observed, and marked so: max_violation() then reads the observed ones only.
  problem.add_constraint("c", ConstraintOptions().dtype(torch::kFloat64).occasional(true));
  auto d =
      problem.add_constraint("d", ConstraintOptions()
                                      .formulation(std::make_shared<feasible::QuadraticPenalty>())
                                      .penalty(2.0)
                                      .dtype(torch::kFloat64));
  feasible::SimultaneousOptimizer opt(problem, {sgd({x}, 0.1)},
                                      sgd(problem.dual_parameters(), 0.5));
  const auto result = opt.step([&] {
    ProblemState st(x.pow(2).sum());                               // 0.09 + 4 = 4.09
    st.observe(d, ConstraintState(x[0] - 0.5));                    // -0.2: satisfied
    st.observe(a, ConstraintState(x * 1.0));                       // (0.3, -2)
    st.observe(b, ConstraintState((x.sum() + 1.0).reshape({1})));  // -0.7
    st.metrics["accuracy"] = 0.5;
    return st;
  });
  EXPECT_FALSE(result.skipped);
  EXPECT_EQ(result.iteration, 0);
  // One entry per registered constraint, in registration order (not observation order).
  ASSERT_EQ(result.constraints.size(), 4u);
  EXPECT_EQ(result.constraints[0].name, "a");
  EXPECT_EQ(result.constraints[3].name, "d");
  EXPECT_EQ(&result.at("b"), &result.constraints[1]);

  const auto& ra = result.at("a");
  EXPECT_TRUE(ra.observed);
  EXPECT_EQ(ra.kind, ConstraintKind::kInequality);
  EXPECT_TRUE(torch::allclose(ra.violation, f64({0.3, -2.0}), 0, 1e-12));
  EXPECT_TRUE(torch::allclose(ra.strict_violation, f64({0.3, -2.0}), 0, 1e-12));
  EXPECT_FALSE(ra.violation.requires_grad());
  EXPECT_EQ(ra.multiplier.sizes(), torch::IntArrayRef({2}));  // values: RecordsTheValuesUsed
  EXPECT_FALSE(ra.penalty.defined());
  EXPECT_FALSE(ra.indices.defined());

  const auto& rb = result.at("b");
  EXPECT_EQ(rb.kind, ConstraintKind::kEquality);
  EXPECT_NEAR(rb.violation[0].item<double>(), -0.7, 1e-12);
  EXPECT_TRUE(rb.multiplier.defined());
  EXPECT_EQ(rb.penalty.dim(), 0);

  EXPECT_FALSE(result.at("c").observed);
  EXPECT_FALSE(result.at("c").violation.defined());
  const auto& rd = result.at("d");
  EXPECT_TRUE(rd.observed);
  EXPECT_FALSE(rd.multiplier.defined());
  EXPECT_NEAR(rd.penalty.item<double>(), 2.0, 1e-12);

  // Lagrangian: 4.09 + (1 * 0.3 + 2 * (-2)) + (0 * (-0.7) + 3/2 * 0.49) + 0 = 1.125.
  EXPECT_NEAR(result.loss.item<double>(), 4.09, 1e-12);
  EXPECT_NEAR(result.lagrangian.item<double>(), 1.125, 1e-12);
  EXPECT_EQ(result.metrics.at("accuracy"), 0.5);

  // max over observed constraints of [s]+ (inequalities) and |s| (equalities): max(0.3, 0.7, 0).
  EXPECT_NEAR(result.max_violation(), 0.7, 1e-12);

  const std::string msg = error_of([&] { result.at("nope"); });
  EXPECT_HAS(msg, "'nope'");

  // Only 'a' observed: 'b' and 'd' are expected in every step, so the step cannot vouch.
  const auto partial = opt.step([&] {
    ProblemState st(x.pow(2).sum());
    st.observe(a, ConstraintState(x).strict_violation(f64({-1.0, -2.0})));
    return st;
  });
  EXPECT_EQ(partial.iteration, 1);
  EXPECT_TRUE(std::isnan(partial.max_violation()));
  EXPECT_EQ(partial.unobserved(), (std::vector<std::string>{"b", "d"}));

  // All observed constraints satisfied (inequalities negative, the equality exact) -> 0, not
  // negative; 'c' is occasional, so its absence does not count.
  const auto feasible_result = opt.step([&] {
    ProblemState st(x.pow(2).sum());
    st.observe(a, ConstraintState(x).strict_violation(f64({-1.0, -2.0})));
    st.observe(b, ConstraintState((x.sum() + 1.0).reshape({1})).strict_violation(f64({0.0})));
    st.observe(d, ConstraintState(x[0] - 0.5).strict_violation(f64({-1.0})));
    return st;
  });
  EXPECT_EQ(feasible_result.iteration, 2);
  EXPECT_EQ(feasible_result.max_violation(), 0.0);
  EXPECT_TRUE(torch::allclose(feasible_result.at("a").strict_violation, f64({-1.0, -2.0})));
}

// StepResult documents "the violation used by the primal update" and "multiplier values /
// penalty coefficient used in the primal term": the values at the evaluation, even when the
// step then updates the tensors they came from in place (a violation that is the parameter
// itself, a dense multiplier, a scalar penalty grown by its updater).
TEST(ProblemStepResult, RecordsTheValuesUsedNotTheUpdatedOnes) {
  auto x = f64({0.3, -2.0}).requires_grad_();
  feasible::Problem problem;
  auto a = problem.add_constraint("a", ConstraintOptions(ConstraintKind::kInequality, 2)
                                           .init_values(f64({1.0, 2.0}))
                                           .dtype(torch::kFloat64));
  auto b = problem.add_constraint(
      "b", ConstraintOptions(ConstraintKind::kEquality, 1)
               .formulation(std::make_shared<feasible::AugmentedLagrangian>())
               .penalty(3.0)
               .penalty_updater(std::make_shared<feasible::MultiplicativePenaltyUpdater>(2.0))
               .dtype(torch::kFloat64));
  auto idx = problem.add_constraint("idx", ConstraintOptions(ConstraintKind::kInequality, 4)
                                               .multiplier(MultiplierKind::kIndexed)
                                               .init_values(f64({0.5, 1.5, 2.5, 3.5}))
                                               .dtype(torch::kFloat64));
  feasible::SimultaneousOptimizer opt(problem, {sgd({x}, 0.1)},
                                      sgd(problem.dual_parameters(), 0.5));
  const auto result = opt.step([&] {
    ProblemState st(x.pow(2).sum());
    st.observe(a, ConstraintState(x));  // the parameter itself: (0.3, -2)
    st.observe(b, ConstraintState((x.sum() + 1.0).reshape({1})));  // -0.7
    st.observe(idx, ConstraintState(x * 1.0).indices(torch::tensor({2, 0}, torch::kLong)));
    return st;
  });
  // The step did move everything (so the checks below can tell the two apart).
  EXPECT_FALSE(torch::allclose(x.detach(), f64({0.3, -2.0})));
  EXPECT_TRUE(torch::allclose(problem.multiplier_values("a"), f64({1.15, 1.0}), 0, 1e-12));
  EXPECT_NEAR(problem.multiplier_values("b")[0].item<double>(), -0.35, 1e-12);
  EXPECT_NEAR(problem.penalty_values("b").item<double>(), 6.0, 1e-12);

  const auto& ra = result.at("a");
  EXPECT_TRUE(torch::allclose(ra.violation, f64({0.3, -2.0}), 0, 1e-12)) << ra.violation;
  EXPECT_TRUE(torch::allclose(ra.strict_violation, f64({0.3, -2.0}), 0, 1e-12))
      << ra.strict_violation;
  EXPECT_TRUE(torch::allclose(ra.multiplier, f64({1.0, 2.0}), 0, 1e-12)) << ra.multiplier;
  const auto& rb = result.at("b");
  EXPECT_NEAR(rb.multiplier[0].item<double>(), 0.0, 1e-12);
  EXPECT_NEAR(rb.penalty.item<double>(), 3.0, 1e-12);
  // Indexed multipliers: the values at the observed entries (2, 0) before the step.
  EXPECT_TRUE(torch::allclose(result.at("idx").multiplier, f64({2.5, 0.5}), 0, 1e-12));
  EXPECT_TRUE(torch::equal(result.at("idx").indices, torch::tensor({2, 0}, torch::kLong)));
}

}  // namespace
