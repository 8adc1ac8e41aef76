// Tests of the rate helpers (include/feasible/rates.h): hand counts and hand surrogates (sigmoid
// and hinge) of the binary rates, the hinge bound, gradients against hand derivatives, per-class
// recall and precision on a 5x3 example, bounded means, the states of every Requirement builder,
// RunningRate (pooled over an epoch with decay 1, a two-batch hand computation with decay < 1,
// empty batches), the error messages, and one step of a Problem with a within() observation.
#include <feasible/feasible.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <memory>
#include <vector>

#include "test_util.h"

namespace {

namespace rates = feasible::rates;
using feasible::ConstraintKind;
using feasible::ConstraintOptions;
using feasible::ProblemState;
using feasible_test::dvec;
using feasible_test::error_of;
using feasible_test::expect_vec_near;
using feasible_test::to_vec;
using rates::Rate;
using rates::RateOptions;
using rates::Surrogate;

double sig(double z) { return 1.0 / (1.0 + std::exp(-z)); }
// sigmoid'(z) = sigmoid(z) (1 - sigmoid(z)).
double dsig(double z) { return sig(z) * (1.0 - sig(z)); }

// Float64 sums of a handful of terms: the hand values and the library's agree to a few ulps.
constexpr double kTol = 1e-12;

// The six scores of the binary tests, their groups and labels:
//   example  0     1     2     3     4    5
//   score    2.0  -1.0   0.5  -0.5   3.0  0.0
//   group    0     0     0     1     1    1
//   label    1     0     1     1     0    0
// With threshold 0 the predicted positives are examples 0, 2, 4 (0.0 is not > 0).
torch::Tensor six_scores(bool requires_grad = false) {
  return dvec({2.0, -1.0, 0.5, -0.5, 3.0, 0.0}).requires_grad_(requires_grad);
}
torch::Tensor six_groups() { return torch::tensor({0, 0, 0, 1, 1, 1}, torch::kLong); }
torch::Tensor six_labels() { return torch::tensor({1, 0, 1, 1, 0, 0}, torch::kLong); }

double scalar(const torch::Tensor& t) { return t.item<double>(); }

RateOptions hinge_options(double temperature = 1.0) {
  return RateOptions().surrogate(Surrogate::kHinge).temperature(temperature);
}

TEST(BinaryRates, PositiveAndNegativeRateCountsByGroup) {
  const auto s = six_scores();
  const auto g = six_groups();
  // Group 0 (examples 0, 1, 2): positives 0 and 2 -> hits 2, total 3.
  const Rate a = rates::positive_rate(s, g == 0);
  EXPECT_EQ(scalar(a.hits), 2.0);
  EXPECT_EQ(scalar(a.total), 3.0);
  EXPECT_EQ(scalar(a.value()), 2.0 / 3.0);
  EXPECT_EQ(a.hits.dim(), 0);
  EXPECT_EQ(a.hits.scalar_type(), torch::kFloat64);
  EXPECT_FALSE(a.hits.requires_grad());
  EXPECT_TRUE(a.counts);
  EXPECT_FALSE(a.squares.defined());
  // Group 1 (examples 3, 4, 5): positive 4 only (0.0 is not > 0) -> hits 1, total 3.
  const Rate b = rates::positive_rate(s, g == 1);
  EXPECT_EQ(scalar(b.hits), 1.0);
  EXPECT_EQ(scalar(b.total), 3.0);
  // Negative rate of group 1: examples 3 and 5 -> 2 of 3.
  const Rate n = rates::negative_rate(s, g == 1);
  EXPECT_EQ(scalar(n.hits), 2.0);
  EXPECT_EQ(scalar(n.total), 3.0);
  // Without a mask: every example, 3 positives of 6.
  const Rate all = rates::positive_rate(s);
  EXPECT_EQ(scalar(all.hits), 3.0);
  EXPECT_EQ(scalar(all.total), 6.0);
  // Threshold 0.5: in group 0 only 2.0 > 0.5 (0.5 is not) -> 1 of 3; negatives 2 of 3.
  const auto half = RateOptions().threshold(0.5);
  EXPECT_EQ(scalar(rates::positive_rate(s, g == 0, half).hits), 1.0);
  EXPECT_EQ(scalar(rates::negative_rate(s, g == 0, half).hits), 2.0);
  // Float32 scores give float32 counts.
  const Rate f = rates::positive_rate(s.to(torch::kFloat32), g == 0);
  EXPECT_EQ(f.hits.scalar_type(), torch::kFloat32);
  EXPECT_EQ(f.total.scalar_type(), torch::kFloat32);
  EXPECT_EQ(f.surrogate.scalar_type(), torch::kFloat32);
}

TEST(BinaryRates, SigmoidAndHingeSurrogatesByHand) {
  const auto s = six_scores();
  const auto g = six_groups();
  // Sigmoid, tau = 1: group 0 mean of sig(2), sig(-1), sig(0.5).
  EXPECT_NEAR(scalar(rates::positive_rate(s, g == 0).surrogate),
              (sig(2.0) + sig(-1.0) + sig(0.5)) / 3.0, kTol);
  // tau = 2, threshold 0.5: z = score - 0.5 over 2.
  EXPECT_NEAR(
      scalar(
          rates::positive_rate(s, g == 0, RateOptions().temperature(2).threshold(0.5)).surrogate),
      (sig(0.75) + sig(-0.75) + sig(0.0)) / 3.0, kTol);
  // Negative rate of group 1: z = -score: sig(0.5), sig(-3), sig(0).
  EXPECT_NEAR(scalar(rates::negative_rate(s, g == 1).surrogate),
              (sig(0.5) + sig(-3.0) + sig(0.0)) / 3.0, kTol);
  // Hinge, tau = 1, group 0: max(0, 1 + z) = 3, 0, 1.5 -> 4.5 / 3 = 1.5.
  EXPECT_NEAR(scalar(rates::positive_rate(s, g == 0, hinge_options()).surrogate), 1.5, kTol);
  // Hinge, tau = 2, group 0: 1 + z / 2 = 2, 0.5, 1.25 -> 3.75 / 3 = 1.25.
  EXPECT_NEAR(scalar(rates::positive_rate(s, g == 0, hinge_options(2)).surrogate), 1.25, kTol);
  // Hinge negative rate of group 1: z = 0.5, -3, 0 -> 1.5, 0, 1 -> 2.5 / 3.
  EXPECT_NEAR(scalar(rates::negative_rate(s, g == 1, hinge_options()).surrogate), 2.5 / 3.0, kTol);
}

TEST(BinaryRates, LabelledRatesByHand) {
  const auto s = six_scores();
  const auto y = six_labels();
  // Label 1: examples 0, 2, 3; predicted positive 0, 2 -> TPR 2/3, FNR 1/3.
  // Label 0: examples 1, 4, 5; predicted positive 4 -> FPR 1/3, TNR 2/3.
  struct Case {
    Rate rate;
    double hits, total, surrogate;
  };
  const std::vector<Case> cases = {
      {rates::true_positive_rate(s, y), 2, 3, (sig(2.0) + sig(0.5) + sig(-0.5)) / 3},
      {rates::false_negative_rate(s, y), 1, 3, (sig(-2.0) + sig(-0.5) + sig(0.5)) / 3},
      {rates::false_positive_rate(s, y), 1, 3, (sig(-1.0) + sig(3.0) + sig(0.0)) / 3},
      {rates::true_negative_rate(s, y), 2, 3, (sig(1.0) + sig(-3.0) + sig(0.0)) / 3},
      // Errors: example 3 (label 1, predicted negative) and 4 (label 0, predicted positive),
      // 2 of 6; margins (score)(1 - 2 label) = -2, -1, -0.5, 0.5, 3, 0.
      {rates::error_rate(s, y), 2, 6,
       (sig(-2.0) + sig(-1.0) + sig(-0.5) + sig(0.5) + sig(3.0) + sig(0.0)) / 6},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(scalar(cases[i].rate.hits), cases[i].hits);
    EXPECT_EQ(scalar(cases[i].rate.total), cases[i].total);
    EXPECT_NEAR(scalar(cases[i].rate.surrogate), cases[i].surrogate, kTol);
  }
  // Within group 0 (examples 0, 1, 2): label 1 = {0, 2}, both positive -> TPR 2/2;
  // label 0 = {1}, negative -> FPR 0/1; errors none -> 0/3.
  const auto g0 = six_groups() == 0;
  EXPECT_EQ(scalar(rates::true_positive_rate(s, y, g0).hits), 2.0);
  EXPECT_EQ(scalar(rates::true_positive_rate(s, y, g0).total), 2.0);
  EXPECT_EQ(scalar(rates::false_positive_rate(s, y, g0).hits), 0.0);
  EXPECT_EQ(scalar(rates::false_positive_rate(s, y, g0).total), 1.0);
  EXPECT_EQ(scalar(rates::error_rate(s, y, g0).hits), 0.0);
  EXPECT_EQ(scalar(rates::error_rate(s, y, g0).total), 3.0);
  // Hinge error rate in group 0: margins -2, -1, -0.5 -> 0, 0, 0.5 -> 0.5 / 3.
  EXPECT_NEAR(scalar(rates::error_rate(s, y, g0, hinge_options()).surrogate), 0.5 / 3, kTol);
}

TEST(BinaryRates, LabelsOfEveryTypeAgree) {
  const auto s = six_scores();
  const auto want = rates::true_positive_rate(s, six_labels());
  for (const auto dtype :
       {torch::kBool, torch::kInt32, torch::kUInt8, torch::kFloat32, torch::kFloat64}) {
    SCOPED_TRACE(c10::toString(dtype));
    const Rate r = rates::true_positive_rate(s, six_labels().to(dtype));
    EXPECT_EQ(scalar(r.hits), scalar(want.hits));
    EXPECT_EQ(scalar(r.total), scalar(want.total));
    EXPECT_EQ(scalar(r.surrogate), scalar(want.surrogate));
  }
}

TEST(BinaryRates, HingeSurrogateBoundsTheZeroOneRate) {
  // max(0, 1 + z / tau) >= 1[z > 0] for every z, so every hinge surrogate rate is >= its 0-1
  // rate (Cotter et al. 2019b, section 4); checked on 200 scores of a fixed generator.
  torch::manual_seed(3);
  const auto s = torch::randn({200}, torch::kFloat64) * 3;
  const auto y = torch::rand({200}, torch::kFloat64) < 0.4;
  const auto mask = torch::rand({200}, torch::kFloat64) < 0.5;
  for (double tau : {0.1, 1.0, 5.0}) {
    const auto o = hinge_options(tau).threshold(0.3);
    const std::vector<Rate> all = {
        rates::positive_rate(s, mask, o),         rates::negative_rate(s, mask, o),
        rates::true_positive_rate(s, y, mask, o), rates::false_positive_rate(s, y, mask, o),
        rates::true_negative_rate(s, y, mask, o), rates::false_negative_rate(s, y, mask, o),
        rates::error_rate(s, y, mask, o)};
    for (size_t i = 0; i < all.size(); ++i) {
      EXPECT_GE(scalar(all[i].surrogate), scalar(all[i].value())) << "rate " << i << " tau " << tau;
    }
  }
}

TEST(BinaryRates, GradientsMatchHandDerivatives) {
  // Sigmoid: d/ds_i of mean_{i in group 0} sig(s_i) = sig'(s_i) / 3 in group 0, 0 elsewhere.
  auto s = six_scores(true);
  rates::positive_rate(s, six_groups() == 0).surrogate.backward();
  expect_vec_near(s.grad(), {dsig(2.0) / 3, dsig(-1.0) / 3, dsig(0.5) / 3, 0, 0, 0}, kTol,
                  "sigmoid gradient");
  // Negative rate: z = -s, so d/ds_i = -sig'(-s_i) / 3 in group 1.
  s.mutable_grad() = torch::Tensor();
  rates::negative_rate(s, six_groups() == 1).surrogate.backward();
  expect_vec_near(s.grad(), {0, 0, 0, -dsig(0.5) / 3, -dsig(-3.0) / 3, -dsig(0.0) / 3}, kTol,
                  "negative-rate gradient");
  // Hinge, tau = 2: d/ds_i of max(0, 1 + s_i / 2) / 3 = 1 / 6 where 1 + s_i / 2 > 0; in group 0
  // all three (1 + s/2 = 2, 0.5, 1.25) are positive.
  s.mutable_grad() = torch::Tensor();
  rates::positive_rate(s, six_groups() == 0, hinge_options(2)).surrogate.backward();
  expect_vec_near(s.grad(), {1.0 / 6, 1.0 / 6, 1.0 / 6, 0, 0, 0}, kTol, "hinge gradient");
  // Hinge, tau = 1, group 1 (1 + s = 0.5, 4, 1): all active -> 1/3 each; scores 0..2 none.
  s.mutable_grad() = torch::Tensor();
  rates::positive_rate(s, six_groups() == 1, hinge_options()).surrogate.backward();
  expect_vec_near(s.grad(), {0, 0, 0, 1.0 / 3, 1.0 / 3, 1.0 / 3}, kTol, "hinge gradient 2");
  // Error rate: margin (s - t)(1 - 2y); d/ds_i = (1 - 2 y_i) sig'(margin_i) / 6.
  s.mutable_grad() = torch::Tensor();
  rates::error_rate(s, six_labels()).surrogate.backward();
  expect_vec_near(s.grad(),
                  {-dsig(-2.0) / 6, dsig(-1.0) / 6, -dsig(-0.5) / 6, -dsig(0.5) / 6, dsig(3.0) / 6,
                   dsig(0.0) / 6},
                  kTol, "error-rate gradient");
}

TEST(BinaryRates, EmptySubsetHasZeroSurrogateWithoutNaN) {
  auto s = six_scores(true);
  const auto none = torch::zeros({6}, torch::kBool);
  const Rate r = rates::positive_rate(s, none);
  EXPECT_EQ(scalar(r.hits), 0.0);
  EXPECT_EQ(scalar(r.total), 0.0);
  EXPECT_EQ(scalar(r.surrogate), 0.0);
  EXPECT_TRUE(std::isnan(scalar(r.value())));  // 0 / 0: undefined
  r.surrogate.backward();
  expect_vec_near(s.grad(), {0, 0, 0, 0, 0, 0}, 0.0, "gradient of an empty subset");
  // A subset with no example of the label: TPR over group 1 restricted to label 1 = {3} is
  // fine, FPR over {0, 2} & label 0 is empty.
  const auto g02 = torch::tensor({true, false, true, false, false, false});
  EXPECT_EQ(scalar(rates::false_positive_rate(s, six_labels(), g02).total), 0.0);
  EXPECT_EQ(scalar(rates::false_positive_rate(s, six_labels(), g02).surrogate), 0.0);
  // The hinge surrogate of an empty subset as well.
  EXPECT_EQ(scalar(rates::positive_rate(s, none, hinge_options()).surrogate), 0.0);
  // Requirement::state() refuses it, with its message.
  const auto msg = error_of([&] { rates::at_most(r, 0.1).state(); });
  EXPECT_HAS(msg, "rates::Requirement::state: part 0, term 0");
  EXPECT_HAS(msg, "total 0) at entry 0");
  EXPECT_HAS(msg, "RunningRate");
}

// The 5x3 example of the multiclass tests:
//   row  logits          target  arg max   margins z_ik = logit_ik - max_{j != k} logit_ij
//   0    [2, 1, 0]       0       0         [ 1,   -1,  -2]
//   1    [0, 3, 1]       1       1         [-3,    2,  -2]
//   2    [1, 0, 2]       1       2         [-1,   -2,   1]
//   3    [0.5, 2, 0]     0       1         [-1.5, 1.5, -2]
//   4    [0, 0, 1]       2       2         [-1,   -1,   1]
torch::Tensor five_logits(bool requires_grad = false) {
  return dvec({2, 1, 0, 0, 3, 1, 1, 0, 2, 0.5, 2, 0, 0, 0, 1})
      .reshape({5, 3})
      .requires_grad_(requires_grad);
}
torch::Tensor five_targets() { return torch::tensor({0, 1, 1, 0, 2}, torch::kLong); }
const double kMargins[5][3] = {{1, -1, -2}, {-3, 2, -2}, {-1, -2, 1}, {-1.5, 1.5, -2}, {-1, -1, 1}};

TEST(MulticlassRates, RecallByHand) {
  const Rate r = rates::recall(five_logits(), five_targets());
  // Class 0: targets {0, 3}, correct 0 -> 1/2. Class 1: {1, 2}, correct 1 -> 1/2.
  // Class 2: {4}, correct -> 1/1.
  expect_vec_near(r.hits, {1, 1, 1}, 0.0, "recall hits");
  expect_vec_near(r.total, {2, 2, 1}, 0.0, "recall total");
  expect_vec_near(r.value(), {0.5, 0.5, 1.0}, 0.0, "recall value");
  // Sigmoid surrogate: mean over the examples of class k of sig(z_{i,k}).
  const auto& z = kMargins;
  expect_vec_near(
      r.surrogate,
      {(sig(z[0][0]) + sig(z[3][0])) / 2, (sig(z[1][1]) + sig(z[2][1])) / 2, sig(z[4][2])}, kTol,
      "recall sigmoid surrogate");
  // Hinge: max(0, 1 + z): class 0 (2 + 0) / 2 = 1; class 1 (3 + 0) / 2 = 1.5; class 2: 2.
  const Rate h = rates::recall(five_logits(), five_targets(), {}, hinge_options());
  expect_vec_near(h.surrogate, {1.0, 1.5, 2.0}, kTol, "recall hinge surrogate");
  // Without row 2 (mask): class 1 = {1}, correct -> 1/1.
  const auto mask = torch::tensor({true, true, false, true, true});
  const Rate m = rates::recall(five_logits(), five_targets(), mask);
  expect_vec_near(m.hits, {1, 1, 1}, 0.0, "masked recall hits");
  expect_vec_near(m.total, {2, 1, 1}, 0.0, "masked recall total");
}

TEST(MulticlassRates, PrecisionByHand) {
  const Rate p = rates::precision(five_logits(), five_targets());
  // Predicted 0: {0}, target 0 -> 1/1. Predicted 1: {1, 3}, targets 1, 0 -> 1/2.
  // Predicted 2: {2, 4}, targets 1, 2 -> 1/2.
  expect_vec_near(p.hits, {1, 1, 1}, 0.0, "precision hits");
  expect_vec_near(p.total, {1, 2, 2}, 0.0, "precision total");
  // Sigmoid surrogate: sum_i [y_i = k] s_ik / sum_i s_ik.
  const auto& z = kMargins;
  std::vector<double> want(3);
  const int64_t y[5] = {0, 1, 1, 0, 2};
  for (int k = 0; k < 3; ++k) {
    double num = 0, den = 0;
    for (int i = 0; i < 5; ++i) {
      num += (y[i] == k) * sig(z[i][k]);
      den += sig(z[i][k]);
    }
    want[k] = num / den;
  }
  expect_vec_near(p.surrogate, want, kTol, "precision sigmoid surrogate");
  // Hinge surrogates max(0, 1 + z) per row: [2,0,0], [0,3,0], [0,0,2], [0,2.5,0], [0,0,2].
  // Class 0: 2 / 2 = 1; class 1: 3 / (3 + 2.5); class 2: 2 / (2 + 2) = 0.5.
  const Rate h = rates::precision(five_logits(), five_targets(), {}, hinge_options());
  expect_vec_near(h.surrogate, {1.0, 3.0 / 5.5, 0.5}, kTol, "precision hinge surrogate");
  // Without row 2: predicted 2 = {4}, target 2 -> 1/1.
  const auto mask = torch::tensor({true, true, false, true, true});
  const Rate m = rates::precision(five_logits(), five_targets(), mask);
  expect_vec_near(m.hits, {1, 1, 1}, 0.0, "masked precision hits");
  expect_vec_near(m.total, {1, 2, 1}, 0.0, "masked precision total");
}

TEST(MulticlassRates, GradientOfRecallAndEmptyClasses) {
  // Recall of class 2 (row 4 only): sig(z_42) with z_42 = l_42 - max(l_40, l_41); the tie
  // l_40 = l_41 = 0 sends the max's gradient to one of them, so check d/dl_42 = sig'(1) and the
  // sum over row 4's other entries, -sig'(1).
  auto logits = five_logits(true);
  rates::recall(logits, five_targets()).surrogate[2].backward();
  const auto g = to_vec(logits.grad());
  EXPECT_NEAR(g[4 * 3 + 2], dsig(1.0), kTol);
  EXPECT_NEAR(g[4 * 3 + 0] + g[4 * 3 + 1], -dsig(1.0), kTol);
  for (int i = 0; i < 12; ++i) EXPECT_EQ(g[i], 0.0) << "rows 0-3 entry " << i;
  // No example of class 2 (targets of rows 0-3 only): total 0, surrogate 0, no NaN gradient.
  auto four = five_logits(true);
  const auto rows = four.narrow(0, 0, 4);
  const Rate r = rates::recall(rows, five_targets().narrow(0, 0, 4));
  EXPECT_EQ(scalar(r.total[2]), 0.0);
  EXPECT_EQ(scalar(r.surrogate[2]), 0.0);
  EXPECT_HAS(error_of([&] { rates::at_least(r, 0.5).state(); }), "total 0) at entry 2");
  // Nothing predicted 0 when row 0 is masked out: precision's total 0, surrogate 0.
  const auto no_row0 = torch::tensor({false, true, true, true, true});
  const Rate p = rates::precision(four, five_targets(), no_row0, hinge_options());
  EXPECT_EQ(scalar(p.total[0]), 0.0);
  EXPECT_EQ(scalar(p.surrogate[0]), 0.0);
  (r.surrogate.sum() + p.surrogate.sum()).backward();
  EXPECT_FALSE(torch::isnan(four.grad()).any().item<bool>());
}

TEST(BoundedMean, ValuesCountsAndSquares) {
  auto v = dvec({0.2, 0.4, 0.9, 0.1}).requires_grad_(true);
  const auto mask = torch::tensor({true, true, false, true});
  const Rate m = rates::mean(v, 0.0, 1.0, mask);
  // Selected 0.2, 0.4, 0.1: sum 0.7, 3 values, squares 0.04 + 0.16 + 0.01 = 0.21.
  EXPECT_FALSE(m.counts);
  EXPECT_EQ(m.lower, 0.0);
  EXPECT_EQ(m.upper, 1.0);
  EXPECT_NEAR(scalar(m.hits), 0.7, kTol);
  EXPECT_EQ(scalar(m.total), 3.0);
  EXPECT_NEAR(scalar(m.squares), 0.21, kTol);
  EXPECT_NEAR(scalar(m.value()), 0.7 / 3, kTol);
  EXPECT_NEAR(scalar(m.surrogate), 0.7 / 3, kTol);
  m.surrogate.backward();
  expect_vec_near(v.grad(), {1.0 / 3, 1.0 / 3, 0, 1.0 / 3}, kTol, "mean gradient");
  // The range's ends are allowed; a value outside only when masked out.
  EXPECT_NO_THROW(rates::mean(dvec({-1.0, 2.0}), -1.0, 2.0));
  EXPECT_NO_THROW(rates::mean(dvec({0.5, 7.0}), 0.0, 1.0, torch::tensor({true, false})));
}

TEST(BoundedMean, Errors) {
  auto msg = error_of([] { rates::mean(dvec({0.5, 1.2}), 0.0, 1.0); });
  EXPECT_HAS(msg, "rates::mean: values must lie in [lower, upper] = [0, 1], got 1.2");
  msg = error_of([] { rates::mean(dvec({0.5, std::nan("")}), 0.0, 1.0); });
  EXPECT_HAS(msg, "got nan");
  msg = error_of([] { rates::mean(dvec({0.5}), 1.0, 1.0); });
  EXPECT_HAS(msg, "rates::mean: the range must be finite with lower < upper, got [1, 1]");
  msg = error_of([] { rates::mean(dvec({0.5}), 0.0, INFINITY); });
  EXPECT_HAS(msg, "lower < upper, got [0, inf]");
  msg = error_of([] { rates::mean(torch::tensor({1, 0}), 0.0, 1.0); });
  EXPECT_HAS(msg, "rates::mean: values must be floating point, got Long");
}

// Hand-made rates for the requirement tests: a = 1/4 (surrogate 0.3), b = 3/6 (surrogate 0.45).
Rate hand_rate(double hits, double total, double surrogate) {
  Rate r;
  r.hits = dvec({hits}).squeeze();
  r.total = dvec({total}).squeeze();
  r.surrogate = dvec({surrogate}).squeeze();
  return r;
}

void expect_state(const rates::Requirement& req, const std::vector<double>& violation,
                  const std::vector<double>& strict, const char* what) {
  const auto st = req.state();
  EXPECT_EQ(req.size(), static_cast<int64_t>(violation.size())) << what;
  expect_vec_near(st.violation(), violation, kTol, what);
  expect_vec_near(st.strict_violation(), strict, kTol, what);
}

TEST(Requirements, StatesOfEveryBuilder) {
  const Rate a = hand_rate(1, 4, 0.3), b = hand_rate(3, 6, 0.45);
  // a <= 0.2: surrogate 0.3 - 0.2 = 0.1, strict 0.25 - 0.2 = 0.05.
  expect_state(rates::at_most(a, 0.2), {0.1}, {0.05}, "at_most");
  // a >= 0.2: 0.2 - 0.3 = -0.1, 0.2 - 0.25 = -0.05.
  expect_state(rates::at_least(a, 0.2), {-0.1}, {-0.05}, "at_least");
  // a - b <= 0: 0.3 - 0.45 = -0.15, 0.25 - 0.5 = -0.25.
  expect_state(rates::difference_at_most(a, b, 0.0), {-0.15}, {-0.25}, "difference_at_most");
  // |a - b| <= 0.1, first a - b - 0.1 then b - a - 0.1:
  // surrogate [-0.25, 0.05], strict [-0.35, 0.15].
  expect_state(rates::within(a, b, 0.1), {-0.25, 0.05}, {-0.35, 0.15}, "within");
  expect_state(rates::within(b, a, 0.1), {0.05, -0.25}, {0.15, -0.35}, "within swapped");
  // a >= 0.8 b: 0.8 * 0.45 - 0.3 = 0.06, 0.8 * 0.5 - 0.25 = 0.15.
  expect_state(rates::ratio_at_least(a, b, 0.8), {0.06}, {0.15}, "ratio_at_least");
  // tightened(0.05): every entry 0.05 higher.
  expect_state(rates::at_most(a, 0.2).tightened(0.05), {0.15}, {0.1}, "tightened");
  expect_state(rates::within(a, b, 0.1).tightened(0.05), {-0.2, 0.1}, {-0.3, 0.2},
               "within tightened");
  // A [K] rate: at_least(recall, 0.6) of the 5x3 example has size 3, strict 0.6 - [.5, .5, 1].
  const Rate r = rates::recall(five_logits(), five_targets(), {}, hinge_options());
  expect_state(rates::at_least(r, 0.6), {0.6 - 1.0, 0.6 - 1.5, 0.6 - 2.0}, {0.1, 0.1, -0.4},
               "at_least recall");
  // The strict violation is detached, the violation is not.
  auto s = six_scores(true);
  const auto st = rates::within(rates::positive_rate(s, six_groups() == 0),
                                rates::positive_rate(s, six_groups() == 1), 0.05)
                      .state();
  EXPECT_TRUE(st.violation().requires_grad());
  EXPECT_FALSE(st.strict_violation().requires_grad());
  // Group 0: 2/3, group 1: 1/3 -> strict [1/3 - 0.05, -1/3 - 0.05].
  expect_vec_near(st.strict_violation(), {1.0 / 3 - 0.05, -1.0 / 3 - 0.05}, kTol, "parity");
}

TEST(RunningRates, DecayOneOverAnEpochEqualsTheFullBatch) {
  // 23 examples in batches of 5 (the last has 3): the pooled counts are the full batch's
  // exactly; the running surrogate sums the batch means times their sizes, which equals the
  // full batch's mean up to rounding (float32: a few ulps of values in (0, 1), so 1e-6;
  // float64: 1e-14).
  torch::manual_seed(11);
  feasible::data::Dataset ds;
  ds.inputs = torch::randn({23, 1}, torch::kFloat64) * 2;
  ds.targets = (torch::rand({23}) < 0.5).to(torch::kLong);
  ds.groups = (torch::rand({23}) < 0.3).to(torch::kLong);
  for (const auto dtype : {torch::kFloat32, torch::kFloat64}) {
    SCOPED_TRACE(c10::toString(dtype));
    const double tol = dtype == torch::kFloat32 ? 1e-6 : 1e-14;
    feasible::data::BatchLoader loader(ds, 5, /*seed=*/2);
    rates::RunningRate running(1.0), running_tpr(1.0);
    Rate last, last_tpr;
    while (auto batch = loader.next()) {
      const auto scores = batch->inputs.select(1, 0).to(dtype);
      last = running.update(rates::positive_rate(scores, batch->groups == 1));
      last_tpr = running_tpr.update(
          rates::true_positive_rate(scores, batch->targets, batch->groups == 0, hinge_options()));
    }
    const auto scores = ds.inputs.select(1, 0).to(dtype);
    const Rate full = rates::positive_rate(scores, ds.groups == 1);
    EXPECT_EQ(scalar(last.hits), scalar(full.hits));
    EXPECT_EQ(scalar(last.total), scalar(full.total));
    EXPECT_EQ(scalar(last.value()), scalar(full.value()));
    EXPECT_NEAR(scalar(last.surrogate), scalar(full.surrogate), tol);
    EXPECT_NEAR(scalar(running.current().surrogate), scalar(full.surrogate), tol);
    const Rate full_tpr =
        rates::true_positive_rate(scores, ds.targets, ds.groups == 0, hinge_options());
    EXPECT_EQ(scalar(last_tpr.value()), scalar(full_tpr.value()));
    EXPECT_NEAR(scalar(last_tpr.surrogate), scalar(full_tpr.surrogate), 4 * tol);  // values <= 5
  }
}

TEST(RunningRates, DecayHalfTwoBatchesByHand) {
  rates::RunningRate running(0.5);
  EXPECT_FALSE(running.current().hits.defined());
  // Batch 1: scores 1, -1, 2 -> hits 2, total 3, surrogate (sig(1) + sig(-1) + sig(2)) / 3.
  auto s1 = dvec({1.0, -1.0, 2.0}).requires_grad_(true);
  const double sur1 = (sig(1) + sig(-1) + sig(2)) / 3;
  const Rate r1 = running.update(rates::positive_rate(s1));
  EXPECT_EQ(scalar(r1.value()), 2.0 / 3);
  EXPECT_NEAR(scalar(r1.surrogate), sur1, kTol);
  // Batch 2: scores -2, 0.5 -> hits 1, total 2, surrogate (sig(-2) + sig(0.5)) / 2.
  // H = 0.5 * 2 + 1 = 2, T = 0.5 * 3 + 2 = 3.5, value 4/7;
  // S = 0.5 * 3 sur1 + 2 sur2, running surrogate S / 3.5.
  auto s2 = dvec({-2.0, 0.5}).requires_grad_(true);
  const double sur2 = (sig(-2) + sig(0.5)) / 2;
  const Rate r2 = running.update(rates::positive_rate(s2));
  EXPECT_EQ(scalar(r2.hits), 2.0);
  EXPECT_EQ(scalar(r2.total), 3.5);
  EXPECT_NEAR(scalar(r2.value()), 4.0 / 7, kTol);
  const double running_sur = (0.5 * 3 * sur1 + 2 * sur2) / 3.5;
  EXPECT_NEAR(scalar(r2.surrogate), running_sur, kTol);
  EXPECT_NEAR(scalar(running.current().surrogate), running_sur, kTol);
  EXPECT_FALSE(running.current().surrogate.requires_grad());
  // The gradient is batch 2's: sig'(s) / 2 on s2, none on s1.
  r2.surrogate.backward();
  expect_vec_near(s2.grad(), {dsig(-2) / 2, dsig(0.5) / 2}, kTol, "batch 2 gradient");
  EXPECT_FALSE(s1.grad().defined());
  // An empty batch: H = 1, T = 1.75 -> the value stays 4/7, the surrogate stays, no gradient.
  auto s3 = dvec({0.3, -0.3}).requires_grad_(true);
  const Rate r3 = running.update(rates::positive_rate(s3, torch::zeros({2}, torch::kBool)));
  EXPECT_NEAR(scalar(r3.value()), 4.0 / 7, kTol);
  EXPECT_NEAR(scalar(r3.surrogate), running_sur, kTol);
  r3.surrogate.backward();
  expect_vec_near(s3.grad(), {0, 0}, 0.0, "empty batch gradient");
  // The running rate's requirement has a state (the batch's alone would throw).
  EXPECT_NO_THROW(rates::at_most(r3, 0.5).state());
  // reset() forgets everything.
  running.reset();
  EXPECT_FALSE(running.current().hits.defined());
  EXPECT_EQ(scalar(running.update(rates::positive_rate(s2)).value()), 0.5);
}

TEST(RunningRates, EmptyFirstBatchAndBoundedMeans) {
  // A first batch without example: value 0 / 0 (NaN), surrogate 0, no NaN gradient.
  rates::RunningRate running(0.9);
  auto s = dvec({1.0, 2.0}).requires_grad_(true);
  const Rate r = running.update(rates::positive_rate(s, torch::zeros({2}, torch::kBool)));
  EXPECT_TRUE(std::isnan(scalar(r.value())));
  EXPECT_EQ(scalar(r.surrogate), 0.0);
  r.surrogate.backward();
  expect_vec_near(s.grad(), {0, 0}, 0.0, "empty first batch gradient");
  // Bounded means carry their squares: decay 1, batches {0.5, 1} and {0}: sum 1.5, total 3,
  // squares 0.25 + 1 + 0 = 1.25.
  rates::RunningRate means(1.0);
  means.update(rates::mean(dvec({0.5, 1.0}), 0.0, 1.0));
  const Rate m = means.update(rates::mean(dvec({0.0}), 0.0, 1.0));
  EXPECT_FALSE(m.counts);
  EXPECT_EQ(scalar(m.hits), 1.5);
  EXPECT_EQ(scalar(m.total), 3.0);
  EXPECT_EQ(scalar(m.squares), 1.25);
  EXPECT_EQ(scalar(m.value()), 0.5);
}

TEST(RunningRates, Errors) {
  auto msg = error_of([] { rates::RunningRate(0.0); });
  EXPECT_HAS(msg, "rates::RunningRate: decay must be in (0, 1], got 0");
  msg = error_of([] { rates::RunningRate(1.5); });
  EXPECT_HAS(msg, "decay must be in (0, 1], got 1.5");
  rates::RunningRate running;
  running.update(rates::positive_rate(six_scores()));
  msg = error_of([&] { running.update(rates::recall(five_logits(), five_targets())); });
  EXPECT_HAS(msg,
             "rates::RunningRate::update: the batch's rate has shape [3], the earlier "
             "batches' []");
  msg = error_of([&] { running.update(rates::mean(dvec({0.5}), 0.0, 1.0)); });
  EXPECT_HAS(msg, "the batch's rate is a bounded mean on [0, 1], the earlier batches' a 0-1 rate");
  msg = error_of([&] { running.update(Rate()); });
  EXPECT_HAS(msg, "needs surrogate, hits and total");
}

TEST(RateErrors, Options) {
  auto msg = error_of([] { RateOptions().temperature(0).validate(); });
  EXPECT_HAS(msg, "RateOptions.temperature must be finite and > 0, got 0");
  msg = error_of([] { RateOptions().temperature(INFINITY).validate(); });
  EXPECT_HAS(msg, "RateOptions.temperature must be finite and > 0, got inf");
  msg = error_of([] { RateOptions().threshold(std::nan("")).validate(); });
  EXPECT_HAS(msg, "RateOptions.threshold must be finite, got nan");
  msg = error_of([] { RateOptions().surrogate(static_cast<Surrogate>(7)).validate(); });
  EXPECT_HAS(msg, "RateOptions.surrogate must be Surrogate::kSigmoid or kHinge, got 7");
  // Every rate function validates its options.
  msg = error_of([] { rates::positive_rate(six_scores(), {}, RateOptions().temperature(-1)); });
  EXPECT_HAS(msg, "RateOptions.temperature must be finite and > 0, got -1");
  msg = error_of(
      [] { rates::recall(five_logits(), five_targets(), {}, RateOptions().temperature(0)); });
  EXPECT_HAS(msg, "RateOptions.temperature");
}

TEST(RateErrors, ShapesAndTypes) {
  const auto s4 = dvec({1, 2, 3, 4});
  auto msg = error_of([&] { rates::positive_rate(s4, torch::ones({5}, torch::kBool)); });
  EXPECT_HAS(msg, "rates::positive_rate: mask has 5 entries, scores 4");
  msg = error_of([&] { rates::negative_rate(s4, torch::ones({4}, torch::kLong)); });
  EXPECT_HAS(msg, "rates::negative_rate: mask must be bool (e.g. group == 0), got Long");
  msg = error_of([&] { rates::positive_rate(s4.reshape({2, 2})); });
  EXPECT_HAS(msg, "rates::positive_rate: scores must be 1-D ([N]), got shape [2, 2]");
  msg = error_of([&] { rates::positive_rate(torch::tensor({1, 2})); });
  EXPECT_HAS(msg, "rates::positive_rate: scores must be floating point, got Long");
  msg = error_of([&] { rates::positive_rate(torch::Tensor()); });
  EXPECT_HAS(msg, "rates::positive_rate: scores is undefined");
  msg = error_of([&] { rates::true_positive_rate(s4, torch::tensor({1, 0, 1})); });
  EXPECT_HAS(msg, "rates::true_positive_rate: labels has 3 entries, scores 4");
  msg = error_of([&] { rates::error_rate(s4, torch::tensor({1, 0, 2, 1})); });
  EXPECT_HAS(msg, "rates::error_rate: labels must be 0 or 1, got 2 at entry 2");
  msg = error_of([&] { rates::false_positive_rate(s4, dvec({1, 0, 0.5, 1})); });
  EXPECT_HAS(msg, "labels must be 0 or 1, got 0.5");
  msg = error_of([&] { rates::true_negative_rate(s4, torch::Tensor()); });
  EXPECT_HAS(msg, "rates::true_negative_rate: labels is undefined");
  // Multiclass.
  msg = error_of([&] { rates::recall(s4, five_targets()); });
  EXPECT_HAS(msg, "rates::recall: logits must be 2-D ([N, K]), got shape [4]");
  msg = error_of([&] { rates::precision(five_logits(), five_targets().to(torch::kInt)); });
  EXPECT_HAS(msg, "rates::precision: targets must be int64 class indices, got Int");
  msg = error_of([&] { rates::recall(five_logits(), torch::tensor({0, 1, 3, 0, 2})); });
  EXPECT_HAS(msg, "rates::recall: targets must be in [0, 3), got 3");
  msg = error_of([&] { rates::recall(five_logits(), torch::tensor({0, 1})); });
  EXPECT_HAS(msg, "rates::recall: targets has 2 entries, logits 5");
  msg = error_of([&] { rates::recall(dvec({1, 2}).reshape({2, 1}), torch::tensor({0, 0})); });
  EXPECT_HAS(msg, "rates::recall: logits must have >= 2 classes (columns), got 1");
  msg = error_of(
      [&] { rates::precision(five_logits(), five_targets(), torch::ones({4}, torch::kBool)); });
  EXPECT_HAS(msg, "rates::precision: mask has 4 entries, logits 5");
}

TEST(RatesInAProblem, SimultaneousStepWithWithinObservation) {
  // A logistic model score = w0 x + w1 on x = -1, 0, 1, 2 (groups 0, 0, 1, 1; labels 0, 0, 1, 1),
  // loss = the logistic loss, constraint |P(score > 0 | g 0) - P(score > 0 | g 1)| <= 0.05.
  const auto x = dvec({-1, 0, 1, 2});
  const auto group = torch::tensor({0, 0, 1, 1}, torch::kLong);
  const auto y = dvec({0, 0, 1, 1});
  auto w = dvec({1.0, 0.0}).requires_grad_(true);
  feasible::Problem problem;
  auto parity = problem.add_constraint(
      "parity", ConstraintOptions(ConstraintKind::kInequality, 2).dtype(torch::kFloat64));
  const double primal_lr = 0.1, dual_lr = 0.5;
  feasible::SimultaneousOptimizer opt(
      problem,
      {std::make_shared<torch::optim::SGD>(std::vector<torch::Tensor>{w},
                                           torch::optim::SGDOptions(primal_lr))},
      std::make_shared<torch::optim::SGD>(problem.dual_parameters(),
                                          torch::optim::SGDOptions(dual_lr)));
  auto closure = [&] {
    const auto scores = w[0] * x + w[1];
    ProblemState st(torch::binary_cross_entropy_with_logits(scores, y));
    st.observe(parity, rates::within(rates::positive_rate(scores, group == 0),
                                     rates::positive_rate(scores, group == 1), 0.05)
                           .state());
    return st;
  };
  // Step 1 at w = (1, 0): scores -1, 0, 1, 2; group 0 has no positive (0 / 2), group 1 two
  // (2 / 2): strict violation [0 - 1 - 0.05, 1 - 0 - 0.05] = [-1.05, 0.95]. The multipliers
  // (from 0) move by lr * strict: [0 - 0.525, 0.475], projected onto >= 0: [0, 0.475].
  // The primal step uses the multipliers before the step (0): only the logistic loss's gradient,
  // mean((sig(s_i) - y_i) x_i) and mean(sig(s_i) - y_i).
  const double s0[4] = {-1, 0, 1, 2}, xs[4] = {-1, 0, 1, 2}, ys[4] = {0, 0, 1, 1};
  double g0 = 0, g1 = 0;
  for (int i = 0; i < 4; ++i) {
    g0 += (sig(s0[i]) - ys[i]) * xs[i] / 4;
    g1 += (sig(s0[i]) - ys[i]) / 4;
  }
  opt.step(closure);
  expect_vec_near(problem.multiplier_values("parity"), {0.0, 0.475}, kTol, "multipliers 1");
  const double w0 = 1 - primal_lr * g0, w1 = -primal_lr * g1;
  expect_vec_near(w, {w0, w1}, kTol, "w after step 1");
  // Step 2: g1 = (sig(-1) + sig(0) + sig(1) + sig(2) - 2) / 4 = (sig(2) - 0.5) / 4 since
  // sig(-1) + sig(1) = 1, so w1 = -0.1 g1 ~ -0.0095 < 0 and w0 > 1 (g0 < 0): the scores keep
  // their signs, the strict violation stays [-1.05, 0.95] and the multipliers become
  // [0, 0.475 + 0.5 * 0.95] = [0, 0.95].
  EXPECT_NEAR(w1, -primal_lr * (sig(2) - 0.5) / 4, kTol);
  EXPECT_GT(w0, 1.0);
  opt.step(closure);
  expect_vec_near(problem.multiplier_values("parity"), {0.0, 0.95}, kTol, "multipliers 2");
  // The primal step used lambda = (0, 0.475) on the sigmoid surrogate of b - a - 0.05:
  // d/dw of (sig(s_2) + sig(s_3)) / 2 - (sig(s_0) + sig(s_1)) / 2, with s_i = w0 x_i + w1.
  double l0 = 0, l1 = 0, c0 = 0, c1 = 0;
  for (int i = 0; i < 4; ++i) {
    const double si = w0 * xs[i] + w1;
    l0 += (sig(si) - ys[i]) * xs[i] / 4;
    l1 += (sig(si) - ys[i]) / 4;
    const double sign = i < 2 ? -0.5 : 0.5;
    c0 += sign * dsig(si) * xs[i];
    c1 += sign * dsig(si);
  }
  expect_vec_near(w, {w0 - primal_lr * (l0 + 0.475 * c0), w1 - primal_lr * (l1 + 0.475 * c1)}, kTol,
                  "w after step 2");
}

}  // namespace
