// Exact math of the formulations (docs/design.md, section 5.1): for Lagrangian, AugmentedLagrangian
// (inequality and equality, with and without scale_dual_by_penalty), QuadraticPenalty
// (inequality and equality) and FixedPenalty, the primal term, its gradient with respect to the
// violation v, and the dual ascent direction, against values computed by hand in the test, in
// float32 and float64. Also: the AL inequality term stays finite for tiny c and tends to the
// Lagrangian term as c -> 0; formulations report their properties; penalty-only formulations
// have no dual ascent.
#include <feasible/feasible.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "src/tensor_util.h"

namespace {

using feasible::ConstraintKind;

// Hand versions of the formulas, written with the textbook expressions (division by c
// included: every c used with them here is >= 0.5, so the division is harmless).
double al_ineq_term(double lam, double c, double v) {
  const double z = std::max(lam + c * v, 0.0);
  return (z * z - lam * lam) / (2.0 * c);
}
double al_ineq_grad(double lam, double c, double v) { return std::max(lam + c * v, 0.0); }

// Non-template accessors (inside the typed tests, member templates of dependent expressions
// would need the `template` keyword).
double num(const torch::Tensor& t) { return t.item<double>(); }
bool flag(const torch::Tensor& t) { return t.item<bool>(); }

template <typename T>
class FormulationTest : public ::testing::Test {
 protected:
  static torch::Dtype dtype() {
    return std::is_same<T, float>::value ? torch::kFloat32 : torch::kFloat64;
  }
  // Tolerance relative to max(1, |expected|): the hand values are O(1..10) and come from a
  // handful of operations, so float32 rounding (2^-24 ~ 6e-8 per op) stays far below 1e-5 and
  // float64 rounding (~1e-16 per op) far below 1e-12.
  static double tol() { return std::is_same<T, float>::value ? 1e-5 : 1e-12; }

  static torch::Tensor vec(const std::vector<double>& values, bool requires_grad = false) {
    return torch::tensor(values, torch::dtype(torch::kFloat64))
        .to(dtype())
        .set_requires_grad(requires_grad);
  }
  static torch::Tensor scalar(double value) {
    return torch::full({}, value, torch::dtype(dtype()));
  }

  static void expect_close(const torch::Tensor& got, double want, const char* what) {
    ASSERT_TRUE(got.defined()) << what;
    ASSERT_EQ(got.numel(), 1) << what;
    EXPECT_EQ(got.scalar_type(), dtype()) << what;
    const double g = num(got);
    EXPECT_NEAR(g, want, tol() * std::max(1.0, std::abs(want))) << what;
  }
  static void expect_close(const torch::Tensor& got, const std::vector<double>& want,
                           const char* what) {
    ASSERT_TRUE(got.defined()) << what;
    ASSERT_EQ(got.numel(), static_cast<int64_t>(want.size())) << what;
    EXPECT_EQ(got.scalar_type(), dtype()) << what;
    const torch::Tensor g = got.detach().to(torch::kFloat64).reshape({-1});
    for (size_t i = 0; i < want.size(); ++i) {
      EXPECT_NEAR(num(g[i]), want[i], tol() * std::max(1.0, std::abs(want[i])))
          << what << " entry " << i;
    }
  }

  // Primal term and its gradient in v, for a given formulation.
  static std::pair<torch::Tensor, torch::Tensor> term_and_grad(const feasible::Formulation& f,
                                                               const std::vector<double>& v,
                                                               const torch::Tensor& lam,
                                                               const torch::Tensor& c,
                                                               ConstraintKind kind) {
    torch::Tensor vt = vec(v, /*requires_grad=*/true);
    torch::Tensor term = f.primal_term(vt, lam, c, kind);
    EXPECT_EQ(term.dim(), 0) << f.name() << ": the primal term must be a 0-d tensor";
    term.backward();
    return {term.detach(), vt.grad()};
  }
};

using Dtypes = ::testing::Types<float, double>;
TYPED_TEST_SUITE(FormulationTest, Dtypes);

// ------------------------------------------------------------------------ Lagrangian

TYPED_TEST(FormulationTest, LagrangianPrimalTermAndGradient) {
  feasible::Lagrangian f;
  const std::vector<double> v = {0.5, -1.0, 2.0};
  const std::vector<double> lam = {1.5, 0.0, 0.25};
  for (auto kind : {ConstraintKind::kInequality, ConstraintKind::kEquality}) {
    auto [term, grad] = this->term_and_grad(f, v, this->vec(lam), torch::Tensor(), kind);
    // sum lambda v = 0.75 + 0 + 0.5
    this->expect_close(term, 1.5 * 0.5 + 0.0 * -1.0 + 0.25 * 2.0, "Lagrangian term");
    // d/dv sum lambda v = lambda
    this->expect_close(grad, lam, "Lagrangian gradient");
  }
}

TYPED_TEST(FormulationTest, LagrangianDualAscentIsStrictViolation) {
  feasible::Lagrangian f;
  const std::vector<double> s = {0.5, -1.0, 2.0};
  torch::Tensor st = this->vec(s, /*requires_grad=*/true);
  for (auto kind : {ConstraintKind::kInequality, ConstraintKind::kEquality}) {
    torch::Tensor d = f.dual_ascent(st, torch::Tensor(), kind);
    EXPECT_FALSE(d.requires_grad()) << "the dual ascent direction must be detached";
    this->expect_close(d, s, "Lagrangian dual ascent");
  }
}

TYPED_TEST(FormulationTest, LagrangianProperties) {
  feasible::Lagrangian f;
  EXPECT_EQ(f.name(), "Lagrangian");
  EXPECT_TRUE(f.uses_multiplier());
  EXPECT_FALSE(f.uses_penalty());
  EXPECT_FALSE(f.allows_penalty_updater());
}

// ------------------------------------------------------------- AugmentedLagrangian, <=

TYPED_TEST(FormulationTest, AugmentedLagrangianInequalityActiveAndInactiveEntries) {
  feasible::AugmentedLagrangian f;
  const double c = 2.0;
  // lambda + c v = [1.6, -0.5, -0.2, 1.5, 0.4]: entries 0, 3, 4 active, 1 and 2 inactive
  // (entry 2 has lambda = 0; entry 1 has lambda > 0, where the term is -lambda^2 / (2c)).
  const std::vector<double> lam = {1.0, 0.5, 0.0, 2.0, 0.0};
  const std::vector<double> v = {0.3, -0.5, -0.1, -0.25, 0.2};
  double want = 0.0;
  std::vector<double> want_grad;
  for (size_t i = 0; i < v.size(); ++i) {
    want += al_ineq_term(lam[i], c, v[i]);
    want_grad.push_back(al_ineq_grad(lam[i], c, v[i]));
  }
  // Spot-check the hand helper itself on two entries:
  // entry 0: (1.6^2 - 1) / 4 = 0.39 = lambda v + c v^2 / 2 = 0.3 + 0.09.
  EXPECT_NEAR(al_ineq_term(1.0, 2.0, 0.3), 0.39, 1e-15);
  // entry 1: inactive, -lambda^2 / (2c) = -0.25 / 4.
  EXPECT_NEAR(al_ineq_term(0.5, 2.0, -0.5), -0.0625, 1e-15);

  auto [term, grad] =
      this->term_and_grad(f, v, this->vec(lam), this->scalar(c), ConstraintKind::kInequality);
  this->expect_close(term, want, "AL inequality term");
  // d/dv = [lambda + c v]+ = [1.6, 0, 0, 1.5, 0.4]
  this->expect_close(grad, want_grad, "AL inequality gradient");
  this->expect_close(grad, std::vector<double>{1.6, 0.0, 0.0, 1.5, 0.4}, "AL inequality gradient");
}

TYPED_TEST(FormulationTest, AugmentedLagrangianInequalityBoundaryEntry) {
  // lambda + c v = 0 exactly: both branches give -lambda^2/(2c) = lambda v + c v^2 / 2 = -0.25,
  // and the gradient [0]+ = 0.
  feasible::AugmentedLagrangian f;
  auto [term, grad] = this->term_and_grad(f, {-0.5}, this->vec({1.0}), this->scalar(2.0),
                                          ConstraintKind::kInequality);
  this->expect_close(term, -0.25, "AL inequality term on the boundary");
  this->expect_close(grad, std::vector<double>{0.0}, "AL inequality gradient on the boundary");
}

TYPED_TEST(FormulationTest, AugmentedLagrangianInequalityPerEntryPenalty) {
  feasible::AugmentedLagrangian f;
  const std::vector<double> lam = {1.0, 0.5, 0.2};
  const std::vector<double> v = {0.3, -0.5, -0.1};
  const std::vector<double> c = {0.5, 4.0, 1.0};  // lambda + c v = [1.15, -1.5, 0.1]
  double want = 0.0;
  std::vector<double> want_grad;
  for (size_t i = 0; i < v.size(); ++i) {
    want += al_ineq_term(lam[i], c[i], v[i]);
    want_grad.push_back(al_ineq_grad(lam[i], c[i], v[i]));
  }
  auto [term, grad] =
      this->term_and_grad(f, v, this->vec(lam), this->vec(c), ConstraintKind::kInequality);
  this->expect_close(term, want, "AL inequality term, per-entry c");
  this->expect_close(grad, want_grad, "AL inequality gradient, per-entry c");
}

TYPED_TEST(FormulationTest, AugmentedLagrangianInequalityTinyPenaltyTendsToLagrangian) {
  feasible::AugmentedLagrangian al;
  feasible::Lagrangian lagrangian;
  // Entries: active (lambda > 0, v > 0), active (lambda > 0, v < 0), inactive with lambda = 0
  // (the inactive case with lambda > 0, which needs lambda < c |v|, is the next test).
  const std::vector<double> lam = {1.0, 0.5, 0.0};
  const std::vector<double> v = {0.3, -0.2, -0.4};
  double sum_v2 = 0.0;
  for (double x : v) sum_v2 += x * x;
  const double lag = 1.0 * 0.3 + 0.5 * -0.2 + 0.0;  // sum lambda v = 0.2
  for (double c : {1e-2, 1e-4, 1e-6, 1e-8, 1e-10, 1e-12}) {
    auto [term, grad] =
        this->term_and_grad(al, v, this->vec(lam), this->scalar(c), ConstraintKind::kInequality);
    ASSERT_TRUE(std::isfinite(num(term))) << "c = " << c;
    ASSERT_TRUE(flag(torch::isfinite(grad).all())) << "c = " << c;
    // For lambda >= 0 the AL inequality term differs from sum lambda v by at most
    // (c/2) sum v^2 (active: exactly c v^2 / 2; inactive: lambda (|v| - lambda/(2c)) with
    // 0 <= lambda < c|v|, which is in [0, c v^2 / 2)). Plus rounding of the sum.
    EXPECT_LE(std::abs(num(term) - lag), 0.5 * c * sum_v2 + this->tol()) << "c = " << c;
    // Gradient [lambda + c v]+ -> [lambda]+ = lambda where lambda > 0; 0 where lambda = 0 and
    // v < 0.
    for (size_t i = 0; i < v.size(); ++i) {
      EXPECT_NEAR(num(grad[i]), al_ineq_grad(lam[i], c, v[i]), this->tol())
          << "c = " << c << " entry " << i;
    }
  }
  // At c = 1e-12 the term equals the Lagrangian term to rounding, and so does the library's
  // own Lagrangian.
  auto [term, grad] =
      this->term_and_grad(al, v, this->vec(lam), this->scalar(1e-12), ConstraintKind::kInequality);
  auto [lterm, lgrad] = this->term_and_grad(lagrangian, v, this->vec(lam), torch::Tensor(),
                                            ConstraintKind::kInequality);
  this->expect_close(term, num(lterm), "AL(c = 1e-12) vs Lagrangian");
  this->expect_close(grad, std::vector<double>{1.0, 0.5, 0.0}, "AL(c = 1e-12) gradient");
}

TYPED_TEST(FormulationTest, AugmentedLagrangianInequalityInactiveWithTinyPenaltyIsFinite) {
  // Inactive with lambda > 0 at tiny c: lambda = 1e-13 < c |v| = 1e-12. The textbook form
  // would compute ([lambda + c v]+^2 - lambda^2) / (2c) = -1e-26 / 2e-12 = -5e-15; the term
  // must be that finite number (no NaN, no Inf), and the gradient 0.
  feasible::AugmentedLagrangian f;
  const double lam = 1e-13, c = 1e-12, v = -1.0;
  auto [term, grad] =
      this->term_and_grad(f, {v}, this->vec({lam}), this->scalar(c), ConstraintKind::kInequality);
  ASSERT_TRUE(std::isfinite(num(term)));
  // Relative tolerance 1e-5 in float32 (a few roundings of numbers that are all normal
  // floats), 1e-12 in float64.
  EXPECT_NEAR(num(term), -lam * lam / (2 * c), 5e-15 * this->tol());
  EXPECT_EQ(num(grad[0]), 0.0);
  // lambda = 0, v < 0 and c = 1e-30 (float32: a subnormal-free tiny number): term exactly 0.
  auto [t0, g0] = this->term_and_grad(f, {-3.0}, this->vec({0.0}), this->scalar(1e-30),
                                      ConstraintKind::kInequality);
  EXPECT_EQ(num(t0), 0.0);
  EXPECT_EQ(num(g0[0]), 0.0);
}

// ------------------------------------------------------------- AugmentedLagrangian, =

TYPED_TEST(FormulationTest, AugmentedLagrangianEquality) {
  feasible::AugmentedLagrangian f;
  const std::vector<double> lam = {1.0, -2.0, 0.0};
  const std::vector<double> v = {0.5, -0.25, -1.0};
  {
    const double c = 3.0;
    // sum lambda v + (c/2) sum v^2 = (0.5 + 0.5 + 0) + 1.5 * (0.25 + 0.0625 + 1)
    const double want = 1.0 + 1.5 * 1.3125;
    auto [term, grad] =
        this->term_and_grad(f, v, this->vec(lam), this->scalar(c), ConstraintKind::kEquality);
    this->expect_close(term, want, "AL equality term");
    // d/dv = lambda + c v (negative entries stay negative: no positive part for equalities)
    this->expect_close(grad, std::vector<double>{1.0 + 1.5, -2.0 - 0.75, -3.0},
                       "AL equality gradient");
  }
  {
    const std::vector<double> c = {1.0, 2.0, 4.0};
    const double want = 1.0 + 0.5 * (1.0 * 0.25 + 2.0 * 0.0625 + 4.0 * 1.0);
    auto [term, grad] =
        this->term_and_grad(f, v, this->vec(lam), this->vec(c), ConstraintKind::kEquality);
    this->expect_close(term, want, "AL equality term, per-entry c");
    this->expect_close(grad, std::vector<double>{1.5, -2.5, -4.0}, "AL equality gradient");
  }
}

TYPED_TEST(FormulationTest, AugmentedLagrangianDualAscent) {
  const std::vector<double> s = {0.5, -1.0, 2.0};
  feasible::AugmentedLagrangian plain;
  feasible::AugmentedLagrangian scaled(
      feasible::AugmentedLagrangianOptions().scale_dual_by_penalty(true));
  EXPECT_FALSE(plain.options().scale_dual_by_penalty());
  EXPECT_TRUE(scaled.options().scale_dual_by_penalty());
  torch::Tensor st = this->vec(s, /*requires_grad=*/true);
  for (auto kind : {ConstraintKind::kInequality, ConstraintKind::kEquality}) {
    // Without scaling: s, whatever c is.
    torch::Tensor d = plain.dual_ascent(st, this->scalar(3.0), kind);
    EXPECT_FALSE(d.requires_grad());
    this->expect_close(d, s, "AL dual ascent (unscaled)");
    // Scaled, scalar c = 3: 3 s.
    d = scaled.dual_ascent(st, this->scalar(3.0), kind);
    EXPECT_FALSE(d.requires_grad());
    this->expect_close(d, std::vector<double>{1.5, -3.0, 6.0}, "AL dual ascent (scaled)");
    // Scaled, per-entry c.
    d = scaled.dual_ascent(st, this->vec({2.0, 0.5, 0.25}), kind);
    this->expect_close(d, std::vector<double>{1.0, -0.5, 0.5}, "AL dual ascent (per-entry)");
  }
}

TYPED_TEST(FormulationTest, AugmentedLagrangianProperties) {
  feasible::AugmentedLagrangian f;
  EXPECT_EQ(f.name(), "AugmentedLagrangian");
  EXPECT_TRUE(f.uses_multiplier());
  EXPECT_TRUE(f.uses_penalty());
  EXPECT_TRUE(f.allows_penalty_updater());
}

// ------------------------------------------------------------------- QuadraticPenalty

TYPED_TEST(FormulationTest, QuadraticPenaltyInequality) {
  feasible::QuadraticPenalty f;
  const std::vector<double> v = {0.5, -1.0, 2.0, 0.0};
  // (c/2) sum [v]+^2 = 2 * (0.25 + 0 + 4 + 0); gradient c [v]+.
  auto [term, grad] =
      this->term_and_grad(f, v, torch::Tensor(), this->scalar(4.0), ConstraintKind::kInequality);
  this->expect_close(term, 2.0 * 4.25, "QP inequality term");
  this->expect_close(grad, std::vector<double>{2.0, 0.0, 8.0, 0.0}, "QP inequality gradient");
  // Per-entry c.
  auto [t2, g2] = this->term_and_grad(f, v, torch::Tensor(), this->vec({1.0, 3.0, 0.5, 2.0}),
                                      ConstraintKind::kInequality);
  this->expect_close(t2, 0.5 * (1.0 * 0.25 + 0.5 * 4.0), "QP inequality term, per-entry c");
  this->expect_close(g2, std::vector<double>{0.5, 0.0, 1.0, 0.0}, "QP inequality gradient");
}

TYPED_TEST(FormulationTest, QuadraticPenaltyEquality) {
  feasible::QuadraticPenalty f;
  const std::vector<double> v = {0.5, -1.0, 2.0};
  // (c/2) sum v^2 = 2 * (0.25 + 1 + 4); gradient c v.
  auto [term, grad] =
      this->term_and_grad(f, v, torch::Tensor(), this->scalar(4.0), ConstraintKind::kEquality);
  this->expect_close(term, 2.0 * 5.25, "QP equality term");
  this->expect_close(grad, std::vector<double>{2.0, -4.0, 8.0}, "QP equality gradient");
}

TYPED_TEST(FormulationTest, QuadraticPenaltyHasNoMultiplier) {
  feasible::QuadraticPenalty f;
  EXPECT_EQ(f.name(), "QuadraticPenalty");
  EXPECT_FALSE(f.uses_multiplier());
  EXPECT_TRUE(f.uses_penalty());
  EXPECT_TRUE(f.allows_penalty_updater());
  EXPECT_THROW(f.dual_ascent(this->vec({1.0}), this->scalar(1.0), ConstraintKind::kInequality),
               c10::Error);
}

// ----------------------------------------------------------------------- FixedPenalty

TYPED_TEST(FormulationTest, FixedPenaltyIsWeightedSum) {
  feasible::FixedPenalty f;
  const std::vector<double> v = {0.5, -1.0, 2.0};
  for (auto kind : {ConstraintKind::kInequality, ConstraintKind::kEquality}) {
    // c sum v = 4 * 1.5 (negative entries count with their sign: no positive part);
    // gradient c everywhere.
    auto [term, grad] = this->term_and_grad(f, v, torch::Tensor(), this->scalar(4.0), kind);
    this->expect_close(term, 6.0, "FixedPenalty term");
    this->expect_close(grad, std::vector<double>{4.0, 4.0, 4.0}, "FixedPenalty gradient");
    auto [t2, g2] = this->term_and_grad(f, v, torch::Tensor(), this->vec({1.0, 2.0, 3.0}), kind);
    this->expect_close(t2, 0.5 - 2.0 + 6.0, "FixedPenalty term, per-entry c");
    this->expect_close(g2, std::vector<double>{1.0, 2.0, 3.0}, "FixedPenalty gradient");
  }
}

// A 0-d violation with a one-entry coefficient takes a shorter path (one product, no sum); it
// must give the general formula's value bit for bit, a 0-d term and the same gradient.
TYPED_TEST(FormulationTest, ZeroDimViolationGivesTheGeneralFormulasValue) {
  const feasible::FixedPenalty penalty;
  const feasible::Lagrangian lagrangian;
  const torch::Tensor coef = this->vec({0.3});  // [1], like a dense multiplier or coefficient
  for (const double value : {0.7, -1.9}) {
    for (const bool is_penalty : {true, false}) {
      const feasible::Formulation& f =
          is_penalty ? static_cast<const feasible::Formulation&>(penalty) : lagrangian;
      torch::Tensor v = this->scalar(value).set_requires_grad(true);
      torch::Tensor term =
          is_penalty ? f.primal_term(v, torch::Tensor(), coef, ConstraintKind::kInequality)
                     : f.primal_term(v, coef, torch::Tensor(), ConstraintKind::kInequality);
      EXPECT_EQ(term.dim(), 0) << f.name();
      const torch::Tensor general = (coef * v.detach()).sum();
      EXPECT_TRUE(torch::equal(term.detach(), general)) << f.name() << " at v = " << value;
      term.backward();
      EXPECT_TRUE(torch::equal(v.grad(), coef.reshape({}))) << f.name() << ": gradient c";
    }
  }
}

TYPED_TEST(FormulationTest, FixedPenaltyProperties) {
  feasible::FixedPenalty f;
  EXPECT_EQ(f.name(), "FixedPenalty");
  EXPECT_FALSE(f.uses_multiplier());
  EXPECT_TRUE(f.uses_penalty());
  EXPECT_FALSE(f.allows_penalty_updater());
  EXPECT_THROW(f.dual_ascent(this->vec({1.0}), this->scalar(1.0), ConstraintKind::kEquality),
               c10::Error);
}

// The step views a one-element tensor as 0-d or [1] (a 0-d violation's multiplier in the
// primal term, the strict violation and the result's violation) without a reshape call: the
// view has the new shape, the same value, storage and offset, and shares the version counter
// (an in-place change shows through it and counts for autograd's checks), and it is not one of
// reshape's tracked views; a tensor with autograd metadata (one that requires a gradient, or a
// view that autograd tracks), with names, or with more than one element still goes through
// reshape. (The 0-d primal terms built on it are checked with their gradients in
// ZeroDimViolationGivesTheGeneralFormulasValue above.)
TEST(OneElementView, ViewsWithoutAReshapeAndSharesTheVersion) {
  using feasible::detail::one_element_view;
  const torch::Tensor base = torch::tensor({1.0, 2.5, 4.0}, torch::kFloat64);
  // [1] at offset 1 of base's storage, with no autograd metadata (set_, not a tracked view).
  torch::Tensor t = torch::empty({0}, torch::kFloat64);
  t.set_(base.storage(), 1, {1}, {1});
  ASSERT_EQ(t.data_ptr(), base.slice(0, 1, 2).data_ptr());
  const torch::Tensor s = one_element_view(t, {});
  EXPECT_EQ(s.dim(), 0);
  EXPECT_EQ(s.item<double>(), 2.5);
  EXPECT_EQ(s.data_ptr(), t.data_ptr());
  EXPECT_FALSE(s.is_view());  // not made by reshape (whose result is a tracked view)
  EXPECT_TRUE(t.reshape({}).is_view());
  const torch::Tensor v = one_element_view(s, {1});
  EXPECT_EQ(v.sizes(), (std::vector<int64_t>{1}));
  EXPECT_EQ(v.data_ptr(), t.data_ptr());
  EXPECT_FALSE(v.is_view());
  const auto version = v._version();
  t.add_(1.0);
  EXPECT_EQ(v.item<double>(), 3.5);
  EXPECT_GT(v._version(), version);
  EXPECT_EQ(v._version(), t._version());
  // A slice at a non-zero offset is a tracked view: reshape, the value at its offset.
  const torch::Tensor at_offset = one_element_view(base.slice(0, 1, 2), {});
  EXPECT_TRUE(at_offset.is_view());
  EXPECT_EQ(at_offset.item<double>(), 3.5);  // t shares base's storage: 2.5 + 1
  const torch::Tensor g = torch::tensor({2.0}).requires_grad_();
  const torch::Tensor r = one_element_view(g, {});
  EXPECT_TRUE(r.requires_grad());
  EXPECT_TRUE(r.grad_fn() != nullptr);                 // reshape's view, with its autograd node
  EXPECT_TRUE(one_element_view(base, {3}).is_view());  // three elements: reshape
  // A named tensor goes to reshape, which refuses it (a 0-d tensor cannot keep a name).
  const auto name = at::Dimname::fromSymbol(c10::Symbol::dimname("n"));
  const torch::Tensor named = torch::tensor({5.0}).refine_names({name});
  EXPECT_THROW(one_element_view(named, {}), c10::Error);
  EXPECT_THROW(named.reshape({}), c10::Error);
}

}  // namespace
