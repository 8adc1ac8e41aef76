// Tests of the Hard Concrete L0 gates (include/feasible/l0.h): the probability that a gate is
// non-zero against a Monte Carlo estimate and its closed form, the test-time gates, the forward
// pass in training and eval mode for both gate kinds, gradients with respect to log_alpha, the
// density helpers on a hand-built model, make_l0_mlp, option validation and initialisation.
// Expected values are computed in the tests from the formulas of Louizos et al. (2018).

#include "feasible/l0.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "test_util.h"

namespace {

using feasible::L0GateKind;
using feasible::L0GateOptions;
using feasible::L0Linear;
using feasible::L0LinearOptions;
using feasible_test::error_of;
using feasible_test::to_vec;

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// P(z != 0) of a Hard Concrete gate, computed from its definition rather than quoted: z > 0 iff
// s (zeta - gamma) + gamma > 0 iff s > t = -gamma / (zeta - gamma). With s = sigmoid((L + a) / b)
// for a logistic L, this is L > b logit(t) - a, of probability sigmoid(a - b logit(t)), and
// logit(t) = log(t / (1 - t)) = log(-gamma / zeta).
double open_probability(double log_alpha, double beta, double gamma, double zeta) {
  const double t = -gamma / (zeta - gamma);
  return sigmoid(log_alpha - beta * std::log(t / (1 - t)));
}

// P(z == 1): z = 1 iff s >= t1 = (1 - gamma) / (zeta - gamma), probability
// sigmoid(a - b logit(t1)).
double one_probability(double log_alpha, double beta, double gamma, double zeta) {
  const double t1 = (1 - gamma) / (zeta - gamma);
  return sigmoid(log_alpha - beta * std::log(t1 / (1 - t1)));
}

// The deterministic test-time gate clamp(sigmoid(a) (zeta - gamma) + gamma, 0, 1).
double test_gate(double log_alpha, double gamma, double zeta) {
  return std::min(1.0, std::max(0.0, sigmoid(log_alpha) * (zeta - gamma) + gamma));
}

// Sets a layer's log_alpha to `values` (row-major, of log_alpha's shape).
void set_log_alpha(feasible::L0LinearImpl& layer, const std::vector<double>& values) {
  torch::NoGradGuard no_grad;
  ASSERT_EQ(layer.log_alpha.numel(), static_cast<int64_t>(values.size()));
  layer.log_alpha.copy_(torch::tensor(values, torch::kFloat64)
                            .reshape(layer.log_alpha.sizes())
                            .to(layer.log_alpha.scalar_type()));
}

const std::vector<double> kSpread = {-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0};

TEST(L0Gates, ClosedFormOpenProbabilityMatchesPaper) {
  // The layer's P(z != 0) against the formula of the header, sigmoid(a - beta log(-gamma/zeta)),
  // written here with std:: math, and against the derivation in open_probability(), for the
  // default stretch and a non-default one.
  for (const auto& [beta, gamma, zeta] :
       std::vector<std::tuple<double, double, double>>{{2.0 / 3.0, -0.1, 1.1}, {0.5, -0.3, 1.05}}) {
    L0Linear layer(L0LinearOptions(7, 2).gate(
        L0GateOptions().temperature(beta).stretch_low(gamma).stretch_high(zeta)));
    layer->to(torch::kFloat64);
    set_log_alpha(*layer, kSpread);
    const auto p = to_vec(layer->gate_open_probabilities());
    ASSERT_EQ(p.size(), kSpread.size());
    for (size_t i = 0; i < kSpread.size(); ++i) {
      const double paper = sigmoid(kSpread[i] - beta * std::log(-gamma / zeta));
      EXPECT_NEAR(p[i], paper, 1e-12) << "log_alpha " << kSpread[i];
      EXPECT_NEAR(p[i], open_probability(kSpread[i], beta, gamma, zeta), 1e-12);
    }
  }
}

TEST(L0Gates, MonteCarloOpenFractionMatchesClosedForm) {
  // One gate per weight of a [rows, 7] layer whose every row has log_alpha = -3..3: each call of
  // sample_gates() gives `rows` independent samples of each of the 7 gates; `calls` calls give
  // n = rows * calls samples. The fraction of non-zero samples of a gate with P(z != 0) = p has
  // standard deviation sqrt(p (1 - p) / n) <= 0.5 / sqrt(n); we allow 5 of them (a false failure
  // has probability below 1e-6 per gate), 5 * 0.5 / sqrt(40000) = 0.0125 in the worst case.
  // The fraction of gates exactly at 1 is checked the same way against P(z == 1).
  // noise_eps = 1e-6 truncates the logistic noise, shifting the probabilities by ~1e-6 at most.
  const int64_t rows = 4000;
  const int calls = 10;
  const double n = static_cast<double>(rows * calls);
  const int64_t gates = static_cast<int64_t>(kSpread.size());
  L0Linear layer(L0LinearOptions(gates, rows).gate(L0GateOptions().kind(L0GateKind::kWeights)));
  std::vector<double> values;
  for (int64_t r = 0; r < rows; ++r) values.insert(values.end(), kSpread.begin(), kSpread.end());
  set_log_alpha(*layer, values);
  torch::manual_seed(7);
  torch::Tensor nonzero = torch::zeros({gates}, torch::kFloat64);
  torch::Tensor ones = torch::zeros({gates}, torch::kFloat64);
  torch::NoGradGuard no_grad;
  for (int c = 0; c < calls; ++c) {
    const auto z = layer->sample_gates();
    ASSERT_EQ(z.sizes(), (std::vector<int64_t>{rows, gates}));
    ASSERT_GE(z.min().item<double>(), 0.0);
    ASSERT_LE(z.max().item<double>(), 1.0);
    nonzero += (z > 0).to(torch::kFloat64).sum(0);
    ones += (z == 1).to(torch::kFloat64).sum(0);
  }
  const auto p = to_vec(layer->gate_open_probabilities());
  const auto frac = to_vec(nonzero / n);
  const auto frac_one = to_vec(ones / n);
  for (int64_t g = 0; g < gates; ++g) {
    const double want = open_probability(kSpread[g], 2.0 / 3.0, -0.1, 1.1);
    const double tol = 5 * std::sqrt(want * (1 - want) / n);
    EXPECT_NEAR(frac[g], want, tol) << "log_alpha " << kSpread[g];
    EXPECT_NEAR(p[g], want, 1e-6) << "log_alpha " << kSpread[g];  // float32 parameters
    const double want_one = one_probability(kSpread[g], 2.0 / 3.0, -0.1, 1.1);
    EXPECT_NEAR(frac_one[g], want_one, 5 * std::sqrt(want_one * (1 - want_one) / n))
        << "log_alpha " << kSpread[g];
  }
}

TEST(L0Gates, MonteCarloInputUnitGatesAcrossCalls) {
  // kInputUnits: 7 gates per sample; n = 5000 calls of sample_gates(). Same 5-sigma tolerance
  // as above (<= 5 * 0.5 / sqrt(5000) = 0.035). Also checks that successive calls draw fresh
  // noise: the sample must not repeat.
  const int n = 5000;
  L0Linear layer(L0LinearOptions(7, 3));
  set_log_alpha(*layer, kSpread);
  torch::manual_seed(11);
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> samples;
  samples.reserve(n);
  for (int i = 0; i < n; ++i) samples.push_back(layer->sample_gates());
  const auto z = torch::stack(samples);
  ASSERT_EQ(z.sizes(), (std::vector<int64_t>{n, 7}));
  EXPECT_FALSE(torch::equal(samples[0], samples[1]));
  const auto frac = to_vec((z > 0).to(torch::kFloat64).mean(0));
  for (size_t g = 0; g < kSpread.size(); ++g) {
    const double want = open_probability(kSpread[g], 2.0 / 3.0, -0.1, 1.1);
    EXPECT_NEAR(frac[g], want, 5 * std::sqrt(want * (1 - want) / n)) << "log_alpha " << kSpread[g];
  }
}

TEST(L0Gates, ExpectedL0IsSumOfProbabilitiesTimesWeightsPerGate) {
  // kInputUnits: each of the in_features gates controls out_features weights.
  L0Linear units(L0LinearOptions(7, 5));
  units->to(torch::kFloat64);
  set_log_alpha(*units, kSpread);
  double sum_p = 0;
  for (double a : kSpread) sum_p += open_probability(a, 2.0 / 3.0, -0.1, 1.1);
  EXPECT_NEAR(units->expected_l0().item<double>(), 5 * sum_p, 1e-10);
  EXPECT_EQ(units->num_weights(), 35);
  EXPECT_EQ(units->expected_l0().dim(), 0);

  // kWeights: one gate per weight, log_alpha [2, 3].
  L0Linear weights(L0LinearOptions(3, 2).gate(L0GateOptions().kind(L0GateKind::kWeights)));
  weights->to(torch::kFloat64);
  const std::vector<double> a = {-2.5, 0.0, 4.0, 1.0, -1.0, 0.5};
  set_log_alpha(*weights, a);
  double sum_w = 0;
  for (double v : a) sum_w += open_probability(v, 2.0 / 3.0, -0.1, 1.1);
  EXPECT_NEAR(weights->expected_l0().item<double>(), sum_w, 1e-10);
  EXPECT_EQ(weights->num_weights(), 6);
}

TEST(L0Gates, TestTimeGateValuesAtKnownParameters) {
  // With gamma = -0.1, zeta = 1.1 the gate is sigmoid(a) * 1.2 - 0.1, clamped: 0 for
  // a <= log(1/11) ~ -2.398, 1 for a >= log(11) ~ 2.398, in between otherwise.
  L0Linear layer(L0LinearOptions(6, 2));
  layer->to(torch::kFloat64);
  const std::vector<double> a = {-5.0, -2.5, 0.0, 1.0, 2.0, 5.0};
  set_log_alpha(*layer, a);
  const auto z = to_vec(layer->test_time_gates());
  ASSERT_EQ(z.size(), a.size());
  EXPECT_EQ(z[0], 0.0);
  EXPECT_EQ(z[1], 0.0);  // sigmoid(-2.5) = 0.0759 < 1/12
  EXPECT_NEAR(z[2], 0.5, 1e-12);
  EXPECT_NEAR(z[3], 1.2 / (1 + std::exp(-1.0)) - 0.1, 1e-12);  // 0.7773
  EXPECT_NEAR(z[4], 1.2 / (1 + std::exp(-2.0)) - 0.1, 1e-12);  // 0.9568
  EXPECT_EQ(z[5], 1.0);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(z[i], test_gate(a[i], -0.1, 1.1), 1e-12);
  // 4 gates open, each controlling out_features = 2 weights.
  EXPECT_EQ(layer->test_time_l0(), 8);
}

TEST(L0Gates, TestTimeGateValuesWideStretch) {
  // gamma = -0.5, zeta = 1.5: z = clamp(2 sigmoid(a) - 0.5, 0, 1); 0 for sigmoid(a) <= 1/4
  // (a <= -log 3 ~ -1.0986), 1 for sigmoid(a) >= 3/4 (a >= log 3).
  L0Linear wide(L0LinearOptions(4, 1).gate(L0GateOptions().stretch_low(-0.5).stretch_high(1.5)));
  wide->to(torch::kFloat64);
  const std::vector<double> a = {-1.2, -1.0, 0.3, 1.2};
  set_log_alpha(*wide, a);
  const auto w = to_vec(wide->test_time_gates());
  EXPECT_EQ(w[0], 0.0);
  EXPECT_NEAR(w[1], 2 * sigmoid(-1.0) - 0.5, 1e-12);  // 0.0379
  EXPECT_GT(w[1], 0.0);
  EXPECT_NEAR(w[2], 2 * sigmoid(0.3) - 0.5, 1e-12);
  EXPECT_EQ(w[3], 1.0);
}

// x W_gated^T + b computed entry by entry with doubles.
std::vector<double> affine(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
  const auto xv = to_vec(x), wv = to_vec(w), bv = to_vec(b);
  const int64_t batch = x.size(0), in = x.size(1), out = w.size(0);
  std::vector<double> y(batch * out);
  for (int64_t r = 0; r < batch; ++r) {
    for (int64_t o = 0; o < out; ++o) {
      double s = bv[o];
      for (int64_t i = 0; i < in; ++i) s += xv[r * in + i] * wv[o * in + i];
      y[r * out + o] = s;
    }
  }
  return y;
}

TEST(L0Forward, EvalModeUsesTestTimeWeights) {
  for (const auto kind : {L0GateKind::kInputUnits, L0GateKind::kWeights}) {
    SCOPED_TRACE(feasible::to_string(kind));
    torch::manual_seed(3);
    L0Linear layer(L0LinearOptions(4, 3).gate(L0GateOptions().kind(kind)));
    layer->to(torch::kFloat64);
    if (kind == L0GateKind::kInputUnits) {
      set_log_alpha(*layer, {-5.0, 0.0, 1.0, 5.0});
    } else {
      set_log_alpha(*layer, {-5, 0, 1, 5, 5, -5, 0.5, -0.5, 2, -3, 3, 0});
    }
    layer->eval();
    // The gated weight by hand: W[o][i] times the gate of column i (kInputUnits) or of (o, i).
    const auto w = to_vec(layer->weight);
    const auto a = to_vec(layer->log_alpha);
    std::vector<double> gated(12);
    for (int o = 0; o < 3; ++o) {
      for (int i = 0; i < 4; ++i) {
        const double la = kind == L0GateKind::kInputUnits ? a[i] : a[o * 4 + i];
        gated[o * 4 + i] = w[o * 4 + i] * test_gate(la, -0.1, 1.1);
      }
    }
    feasible_test::expect_vec_near(layer->test_time_weight(), gated, 1e-12, "test_time_weight");
    const auto x = torch::randn({5, 4}, torch::kFloat64);
    const auto y = layer->forward(x);
    ASSERT_EQ(y.sizes(), (std::vector<int64_t>{5, 3}));
    feasible_test::expect_vec_near(y, affine(x, layer->test_time_weight(), layer->bias), 1e-12,
                                   "eval forward");
    // Eval mode is deterministic.
    EXPECT_TRUE(torch::equal(layer->forward(x), y));
  }
}

TEST(L0Forward, EvalModeWithoutBias) {
  L0Linear layer(L0LinearOptions(3, 2).bias(false));
  layer->to(torch::kFloat64);
  EXPECT_FALSE(layer->bias.defined());
  EXPECT_EQ(layer->parameters().size(), 2u);  // weight, log_alpha
  layer->eval();
  const auto x = torch::randn({4, 3}, torch::kFloat64);
  feasible_test::expect_vec_near(layer->forward(x),
                                 affine(x, layer->test_time_weight(), torch::zeros({2})), 1e-12,
                                 "forward without bias");
}

TEST(L0Forward, TrainingModeWithSaturatedGatesIsDeterministic) {
  // With |log_alpha| = 30 the training gates are exactly 0 or 1 whatever the noise: the logistic
  // noise log(u / (1 - u)) lies within +-log((1 - eps) / eps) ~ +-13.8, so (L + a) / beta is
  // below -24 or above 24, s is within 4e-11 of 0 or 1, and the stretched value is clamped.
  // The forward pass must then be x (W * mask)^T + b for any seed, for both gate kinds.
  for (const auto kind : {L0GateKind::kInputUnits, L0GateKind::kWeights}) {
    SCOPED_TRACE(feasible::to_string(kind));
    L0Linear layer(L0LinearOptions(4, 2).gate(L0GateOptions().kind(kind)));
    layer->to(torch::kFloat64);
    const std::vector<double> a = kind == L0GateKind::kInputUnits
                                      ? std::vector<double>{30, -30, -30, 30}
                                      : std::vector<double>{30, -30, 30, 30, -30, -30, 30, -30};
    set_log_alpha(*layer, a);
    layer->train();
    const auto w = to_vec(layer->weight);
    std::vector<double> masked(8);
    for (int o = 0; o < 2; ++o) {
      for (int i = 0; i < 4; ++i) {
        const double la = kind == L0GateKind::kInputUnits ? a[i] : a[o * 4 + i];
        masked[o * 4 + i] = la > 0 ? w[o * 4 + i] : 0.0;
      }
    }
    const auto x = torch::randn({3, 4}, torch::kFloat64);
    const auto want =
        affine(x, torch::tensor(masked, torch::kFloat64).reshape({2, 4}), layer->bias);
    for (int rep = 0; rep < 5; ++rep) {
      feasible_test::expect_vec_near(layer->forward(x), want, 1e-9, "saturated training forward");
    }
  }
}

TEST(L0Forward, TrainingModeDrawsOneSampleSharedByTheBatch) {
  // The header says: in training mode every forward pass draws one gate sample, shared by the
  // batch. Reseeding the global generator before sample_gates() and before forward() therefore
  // reproduces the sample, and the output must be linear(x * z) (kInputUnits) or
  // x (W * z)^T + b (kWeights) with that z.
  for (const auto kind : {L0GateKind::kInputUnits, L0GateKind::kWeights}) {
    SCOPED_TRACE(feasible::to_string(kind));
    L0Linear layer(L0LinearOptions(5, 3).gate(L0GateOptions().kind(kind)));
    layer->to(torch::kFloat64);
    layer->train();
    const auto x = torch::randn({6, 5}, torch::kFloat64);
    torch::manual_seed(1234);
    const auto z = layer->sample_gates().detach();
    torch::manual_seed(1234);
    const auto y = layer->forward(x);
    const auto wz =
        kind == L0GateKind::kInputUnits ? layer->weight * z.unsqueeze(0) : layer->weight * z;
    feasible_test::expect_vec_near(y, affine(x, wz.detach(), layer->bias), 1e-12,
                                   "training forward");
    if (kind == L0GateKind::kInputUnits) {
      const auto direct = torch::nn::functional::linear(x * z, layer->weight, layer->bias);
      EXPECT_TRUE(torch::allclose(y, direct, 0, 1e-12));
    }
    // A different draw gives a different output (the gates are not all saturated at a ~ 0).
    EXPECT_FALSE(torch::allclose(layer->forward(x), y));
  }
}

TEST(L0Gradients, ExpectedL0GradientIsAnalytic) {
  // d/da sigmoid(a - c) = P (1 - P); expected_l0 multiplies by the weights per gate.
  for (const auto kind : {L0GateKind::kInputUnits, L0GateKind::kWeights}) {
    SCOPED_TRACE(feasible::to_string(kind));
    L0Linear layer(L0LinearOptions(7, 4).gate(L0GateOptions().kind(kind)));
    layer->to(torch::kFloat64);
    std::vector<double> a;
    const int64_t gates = layer->log_alpha.numel();
    for (int64_t g = 0; g < gates; ++g) a.push_back(kSpread[g % 7] + 0.1 * (g / 7));
    set_log_alpha(*layer, a);
    layer->expected_l0().backward();
    ASSERT_TRUE(layer->log_alpha.grad().defined());
    const double per_gate = kind == L0GateKind::kInputUnits ? 4.0 : 1.0;
    std::vector<double> want;
    for (double v : a) {
      const double p = open_probability(v, 2.0 / 3.0, -0.1, 1.1);
      want.push_back(p * (1 - p) * per_gate);
    }
    feasible_test::expect_vec_near(layer->log_alpha.grad(), want, 1e-12, "d expected_l0 / da");
    // The weights do not enter the expected L0.
    EXPECT_TRUE(!layer->weight.grad().defined() ||
                layer->weight.grad().abs().max().item<double>() == 0);
  }
}

TEST(L0Gradients, TrainingLossGradientReachesLogAlphaAndWeight) {
  // loss = sum(y) for y = linear(x * z, W, b) (kInputUnits). For a gate strictly inside (0, 1),
  // z = s (zeta - gamma) + gamma with s = sigmoid((L + a) / beta), so
  // dz/da = (zeta - gamma) s (1 - s) / beta and d loss / da_i = (sum_b x_bi)(sum_o W_oi) dz_i/da_i;
  // a clamped gate has zero gradient. The sample is reproduced by reseeding (see above).
  L0Linear layer(L0LinearOptions(8, 3));
  layer->to(torch::kFloat64);
  layer->train();
  const auto x = torch::randn({4, 8}, torch::kFloat64);
  torch::manual_seed(99);
  const auto z = to_vec(layer->sample_gates());
  torch::manual_seed(99);
  layer->forward(x).sum().backward();
  ASSERT_TRUE(layer->log_alpha.grad().defined());
  ASSERT_TRUE(layer->weight.grad().defined());
  EXPECT_GT(layer->weight.grad().abs().max().item<double>(), 0.0);
  EXPECT_GT(layer->log_alpha.grad().abs().max().item<double>(), 0.0);
  const auto colx = to_vec(x.sum(0));
  const auto colw = to_vec(layer->weight.detach().sum(0));
  std::vector<double> want(8);
  int interior = 0;
  for (int i = 0; i < 8; ++i) {
    if (z[i] > 0 && z[i] < 1) {
      ++interior;
      const double s = (z[i] + 0.1) / 1.2;
      want[i] = colx[i] * colw[i] * 1.2 * s * (1 - s) / (2.0 / 3.0);
    }
  }
  // At a ~ 0 a gate is inside (0, 1) with probability P(z != 0) - P(z == 1) ~ 0.79.
  EXPECT_GT(interior, 0);
  feasible_test::expect_vec_near(layer->log_alpha.grad(), want, 1e-9, "d loss / da");
  // Weight gradient: d loss / dW_oi = sum_b x_bi z_i.
  std::vector<double> want_w(24);
  for (int o = 0; o < 3; ++o) {
    for (int i = 0; i < 8; ++i) want_w[o * 8 + i] = colx[i] * z[i];
  }
  feasible_test::expect_vec_near(layer->weight.grad(), want_w, 1e-9, "d loss / dW");
}

TEST(L0Gradients, TestTimeGatesDifferentiableInside) {
  // d/da clamp(1.2 sigmoid(a) - 0.1) = 1.2 sigmoid(a)(1 - sigmoid(a)) inside, 0 where clamped.
  L0Linear layer(L0LinearOptions(3, 1));
  layer->to(torch::kFloat64);
  set_log_alpha(*layer, {-5.0, 0.5, 5.0});
  layer->test_time_gates().sum().backward();
  const double s = sigmoid(0.5);
  feasible_test::expect_vec_near(layer->log_alpha.grad(), {0.0, 1.2 * s * (1 - s), 0.0}, 1e-12,
                                 "d test_time_gates / da");
}

// A model with two gated layers and an ungated one:
//   L0Linear(4 -> 3, kInputUnits), ReLU, L0Linear(3 -> 2, kWeights), Linear(2 -> 2).
struct HandModel {
  torch::nn::Sequential seq;
  L0Linear first{nullptr};
  L0Linear second{nullptr};
  torch::nn::Linear plain{nullptr};
  std::vector<double> a1 = {-5.0, 5.0, 0.0, -5.0};              // open: 1, 2 -> 2 * 3 = 6 weights
  std::vector<double> a2 = {5.0, -5.0, 0.0, -5.0, -5.0, -4.0};  // open: (0,0), (0,2) -> 2
  HandModel() {
    first = L0Linear(L0LinearOptions(4, 3));
    second = L0Linear(L0LinearOptions(3, 2).gate(L0GateOptions().kind(L0GateKind::kWeights)));
    plain = torch::nn::Linear(2, 2);
    seq = torch::nn::Sequential(first, torch::nn::ReLU(), second, plain);
    seq->to(torch::kFloat64);
    set_log_alpha(*first, a1);
    set_log_alpha(*second, a2);
  }
};

TEST(L0Density, HandBuiltModel) {
  HandModel m;
  const auto layers = feasible::l0_layers(*m.seq);
  ASSERT_EQ(layers.size(), 2u);
  EXPECT_EQ(layers[0].get(), m.first.get());
  EXPECT_EQ(layers[1].get(), m.second.get());
  // Gated weights: 12 + 6 = 18; the plain Linear's 4 weights do not count.
  double expected = 0;
  for (double a : m.a1) expected += 3 * open_probability(a, 2.0 / 3.0, -0.1, 1.1);
  for (double a : m.a2) expected += open_probability(a, 2.0 / 3.0, -0.1, 1.1);
  expected /= 18.0;
  const auto density = feasible::expected_density(*m.seq);
  EXPECT_EQ(density.dim(), 0);
  EXPECT_NEAR(density.item<double>(), expected, 1e-12);
  EXPECT_EQ(m.first->test_time_l0(), 6);
  EXPECT_EQ(m.second->test_time_l0(), 2);
  EXPECT_DOUBLE_EQ(feasible::test_time_density(*m.seq), 8.0 / 18.0);
  // The density is differentiable in every log_alpha: d/da_i of the density is
  // weights_per_gate * P (1 - P) / 18.
  density.backward();
  std::vector<double> g1, g2;
  for (double a : m.a1) {
    const double p = open_probability(a, 2.0 / 3.0, -0.1, 1.1);
    g1.push_back(3 * p * (1 - p) / 18.0);
  }
  for (double a : m.a2) {
    const double p = open_probability(a, 2.0 / 3.0, -0.1, 1.1);
    g2.push_back(p * (1 - p) / 18.0);
  }
  feasible_test::expect_vec_near(m.first->log_alpha.grad(), g1, 1e-12, "first layer");
  feasible_test::expect_vec_near(m.second->log_alpha.grad(), g2, 1e-12, "second layer");
  // A single layer is its own model.
  EXPECT_DOUBLE_EQ(feasible::test_time_density(*m.first), 6.0 / 12.0);
  EXPECT_DOUBLE_EQ(feasible::test_time_density(*m.second), 2.0 / 6.0);
  EXPECT_EQ(feasible::l0_gate_parameters(*m.first).size(), 1u);
}

TEST(L0Density, LayerNotOwnedBySharedPtr) {
  // A layer on the stack (not made by a module holder) is its own model too.
  feasible::L0LinearImpl layer(L0LinearOptions(4, 2));
  layer.to(torch::kFloat64);
  set_log_alpha(layer, {-5.0, 5.0, 5.0, 0.0});
  EXPECT_DOUBLE_EQ(feasible::test_time_density(layer), 6.0 / 8.0);
  double expected = 0;
  for (double a : {-5.0, 5.0, 5.0, 0.0}) expected += 2 * open_probability(a, 2.0 / 3.0, -0.1, 1.1);
  EXPECT_NEAR(feasible::expected_density(layer).item<double>(), expected / 8.0, 1e-12);
  const auto gates = feasible::l0_gate_parameters(layer);
  ASSERT_EQ(gates.size(), 1u);
  EXPECT_TRUE(gates[0].is_same(layer.log_alpha));
  EXPECT_EQ(feasible::l0_weight_parameters(layer).size(), 2u);
}

TEST(L0Forward, BatchDimensionsBeforeFeatures) {
  // Input [2, 3, in]: the same as applying the layer to the [6, in] rows (eval mode).
  for (const auto kind : {L0GateKind::kInputUnits, L0GateKind::kWeights}) {
    SCOPED_TRACE(feasible::to_string(kind));
    L0Linear layer(L0LinearOptions(4, 3).gate(L0GateOptions().kind(kind)));
    layer->to(torch::kFloat64);
    layer->eval();
    const auto x = torch::randn({2, 3, 4}, torch::kFloat64);
    const auto y = layer->forward(x);
    ASSERT_EQ(y.sizes(), (std::vector<int64_t>{2, 3, 3}));
    feasible_test::expect_vec_near(
        y, affine(x.reshape({6, 4}), layer->test_time_weight(), layer->bias), 1e-12, "3-D input");
  }
}

TEST(L0Density, NestedModulesAreFound) {
  // An L0Linear nested two levels down is found; the order is registration order.
  HandModel m;
  torch::nn::Module outer;
  outer.register_module("pre", torch::nn::Linear(3, 4));
  outer.register_module("inner", m.seq);
  const auto layers = feasible::l0_layers(outer);
  ASSERT_EQ(layers.size(), 2u);
  EXPECT_EQ(layers[0].get(), m.first.get());
  EXPECT_EQ(layers[1].get(), m.second.get());
  EXPECT_DOUBLE_EQ(feasible::test_time_density(outer), 8.0 / 18.0);
  EXPECT_EQ(feasible::l0_weight_parameters(outer).size(), 8u);
}

TEST(L0Density, GateAndWeightParametersPartitionTheModel) {
  HandModel m;
  const auto gates = feasible::l0_gate_parameters(*m.seq);
  const auto rest = feasible::l0_weight_parameters(*m.seq);
  ASSERT_EQ(gates.size(), 2u);
  EXPECT_TRUE(gates[0].is_same(m.first->log_alpha));
  EXPECT_TRUE(gates[1].is_same(m.second->log_alpha));
  // weights + biases of the two L0Linear layers and the plain Linear.
  ASSERT_EQ(rest.size(), 6u);
  std::set<const void*> seen;
  for (const auto& p : gates) EXPECT_TRUE(seen.insert(p.unsafeGetTensorImpl()).second);
  for (const auto& p : rest) EXPECT_TRUE(seen.insert(p.unsafeGetTensorImpl()).second);
  const auto all = m.seq->parameters();
  EXPECT_EQ(all.size(), seen.size());
  for (const auto& p : all) EXPECT_EQ(seen.count(p.unsafeGetTensorImpl()), 1u);
  for (const auto& p : rest) {
    EXPECT_FALSE(p.is_same(m.first->log_alpha));
    EXPECT_FALSE(p.is_same(m.second->log_alpha));
  }
}

TEST(L0Mlp, ShapesReluAndOutput) {
  torch::manual_seed(5);
  auto mlp = feasible::make_l0_mlp({784, 300, 100, 10}, {L0GateOptions()});
  ASSERT_EQ(mlp->size(), 5u);
  const std::vector<std::pair<int64_t, int64_t>> shapes = {{784, 300}, {300, 100}, {100, 10}};
  std::vector<std::shared_ptr<feasible::L0LinearImpl>> layers;
  for (size_t i = 0; i < 5; ++i) {
    if (i % 2 == 0) {
      auto layer = mlp->ptr(i)->as<feasible::L0LinearImpl>();
      ASSERT_NE(layer, nullptr) << "module " << i;
      layers.push_back(std::dynamic_pointer_cast<feasible::L0LinearImpl>(mlp->ptr(i)));
    } else {
      EXPECT_NE(mlp->ptr(i)->as<torch::nn::ReLUImpl>(), nullptr) << "module " << i;
    }
  }
  ASSERT_EQ(layers.size(), 3u);
  for (size_t l = 0; l < 3; ++l) {
    EXPECT_EQ(layers[l]->weight.sizes(), (std::vector<int64_t>{shapes[l].second, shapes[l].first}));
    EXPECT_EQ(layers[l]->bias.sizes(), (std::vector<int64_t>{shapes[l].second}));
    EXPECT_EQ(layers[l]->log_alpha.sizes(), (std::vector<int64_t>{shapes[l].first}));
  }
  EXPECT_EQ(feasible::l0_layers(*mlp).size(), 3u);
  EXPECT_EQ(feasible::l0_gate_parameters(*mlp).size(), 3u);
  EXPECT_EQ(feasible::l0_weight_parameters(*mlp).size(), 6u);
  EXPECT_EQ(mlp->parameters().size(), 9u);
  // Forward in eval mode equals the composition with ReLU in between.
  mlp->eval();
  const auto x = torch::rand({8, 784});
  const auto y = mlp->forward(x);
  EXPECT_EQ(y.sizes(), (std::vector<int64_t>{8, 10}));
  const auto h1 = torch::relu(layers[0]->forward(x));
  const auto h2 = torch::relu(layers[1]->forward(h1));
  EXPECT_TRUE(torch::allclose(y, layers[2]->forward(h2), 1e-5, 1e-6));
  // Training mode gives the same shape.
  mlp->train();
  EXPECT_EQ(mlp->forward(x).sizes(), (std::vector<int64_t>{8, 10}));
  // Gated weights: 784*300 + 300*100 + 100*10.
  int64_t total = 0;
  for (const auto& layer : layers) total += layer->num_weights();
  EXPECT_EQ(total, 784 * 300 + 300 * 100 + 100 * 10);
}

TEST(L0Mlp, PerLayerGateOptions) {
  auto mlp = feasible::make_l0_mlp({5, 4, 3},
                                   {L0GateOptions().kind(L0GateKind::kWeights).init_drop_rate(0.2),
                                    L0GateOptions().init_drop_rate(0.5).init_noise(0)});
  ASSERT_EQ(mlp->size(), 3u);
  const auto layers = feasible::l0_layers(*mlp);
  ASSERT_EQ(layers.size(), 2u);
  EXPECT_EQ(layers[0]->log_alpha.sizes(), (std::vector<int64_t>{4, 5}));
  EXPECT_EQ(layers[0]->options.gate().init_drop_rate(), 0.2);
  EXPECT_EQ(layers[1]->log_alpha.sizes(), (std::vector<int64_t>{4}));
  // init_noise 0, drop rate 0.5: log_alpha = log(0.5 / 0.5) = 0 exactly.
  EXPECT_EQ(layers[1]->log_alpha.abs().max().item<double>(), 0.0);
}

TEST(L0Errors, GateOptionsValidation) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  struct Case {
    L0GateOptions options;
    const char* field;
  };
  const std::vector<Case> cases = {
      {L0GateOptions().temperature(0), "temperature"},
      {L0GateOptions().temperature(-1), "temperature"},
      {L0GateOptions().temperature(nan), "temperature"},
      {L0GateOptions().temperature(inf), "temperature"},
      {L0GateOptions().stretch_low(0), "stretch_low"},
      {L0GateOptions().stretch_low(0.1), "stretch_low"},
      {L0GateOptions().stretch_low(-inf), "stretch_low"},
      {L0GateOptions().stretch_low(nan), "stretch_low"},
      {L0GateOptions().stretch_high(1), "stretch_high"},
      {L0GateOptions().stretch_high(0.9), "stretch_high"},
      {L0GateOptions().stretch_high(inf), "stretch_high"},
      {L0GateOptions().stretch_high(nan), "stretch_high"},
      {L0GateOptions().init_drop_rate(0), "init_drop_rate"},
      {L0GateOptions().init_drop_rate(1), "init_drop_rate"},
      {L0GateOptions().init_drop_rate(-0.1), "init_drop_rate"},
      {L0GateOptions().init_drop_rate(nan), "init_drop_rate"},
      {L0GateOptions().init_noise(-1e-3), "init_noise"},
      {L0GateOptions().init_noise(nan), "init_noise"},
      {L0GateOptions().init_noise(inf), "init_noise"},
      {L0GateOptions().noise_eps(0), "noise_eps"},
      {L0GateOptions().noise_eps(0.5), "noise_eps"},
      {L0GateOptions().noise_eps(nan), "noise_eps"},
      {L0GateOptions().kind(static_cast<L0GateKind>(7)), "kind"},
  };
  for (const auto& c : cases) {
    const std::string want = std::string("L0GateOptions.") + c.field + " must";
    const auto msg = error_of([&] { c.options.validate(); });
    EXPECT_NE(msg.find(want), std::string::npos) << "want '" << want << "' in: " << msg;
    // The layer constructor validates too.
    const auto from_layer = error_of([&] { L0Linear(L0LinearOptions(2, 2).gate(c.options)); });
    EXPECT_NE(from_layer.find(want), std::string::npos) << from_layer;
    // make_l0_mlp passes the options on.
    const auto from_mlp = error_of([&] { feasible::make_l0_mlp({2, 2}, {c.options}); });
    EXPECT_NE(from_mlp.find(want), std::string::npos) << from_mlp;
  }
  // The message quotes the offending value.
  const auto msg = error_of([] { L0GateOptions().temperature(-2.5).validate(); });
  EXPECT_NE(msg.find("-2.5"), std::string::npos) << msg;
  // Valid limits pass.
  L0GateOptions().init_noise(0).validate();
  L0GateOptions().temperature(1e-3).stretch_low(-1e-3).stretch_high(1.001).validate();
}

TEST(L0Errors, LayerAndMlpArguments) {
  auto msg = error_of([] { L0Linear(L0LinearOptions(0, 3)); });
  EXPECT_NE(msg.find("L0LinearOptions.in_features must be >= 1, got 0"), std::string::npos) << msg;
  msg = error_of([] { L0Linear(L0LinearOptions(3, -2)); });
  EXPECT_NE(msg.find("L0LinearOptions.out_features must be >= 1, got -2"), std::string::npos)
      << msg;
  msg = error_of([] { feasible::make_l0_mlp({784}, {L0GateOptions()}); });
  EXPECT_NE(msg.find("sizes must hold at least 2 entries, got 1"), std::string::npos) << msg;
  msg = error_of([] { feasible::make_l0_mlp({}, {L0GateOptions()}); });
  EXPECT_NE(msg.find("sizes must hold at least 2 entries, got 0"), std::string::npos) << msg;
  msg = error_of([] {
    feasible::make_l0_mlp({784, 300, 100, 10}, {L0GateOptions(), L0GateOptions()});
  });
  EXPECT_NE(msg.find("gates must hold 1 or 3 entries"), std::string::npos) << msg;
  EXPECT_NE(msg.find("got 2"), std::string::npos) << msg;
  msg = error_of([] { feasible::make_l0_mlp({4, 2}, {}); });
  EXPECT_NE(msg.find("gates must hold 1 or 1 entries"), std::string::npos) << msg;
  msg = error_of([] { feasible::make_l0_mlp({4, 0, 2}, {L0GateOptions()}); });
  EXPECT_NE(msg.find("sizes[1] must be >= 1, got 0"), std::string::npos) << msg;
}

TEST(L0Errors, DensityOfModuleWithoutL0Layers) {
  torch::nn::Sequential seq(torch::nn::Linear(3, 2), torch::nn::ReLU());
  auto msg = error_of([&] { feasible::expected_density(*seq); });
  EXPECT_NE(msg.find("expected_density"), std::string::npos) << msg;
  EXPECT_NE(msg.find("no feasible::L0Linear"), std::string::npos) << msg;
  msg = error_of([&] { feasible::test_time_density(*seq); });
  EXPECT_NE(msg.find("test_time_density"), std::string::npos) << msg;
  EXPECT_NE(msg.find("no feasible::L0Linear"), std::string::npos) << msg;
  // The other helpers return empty lists / every parameter.
  EXPECT_TRUE(feasible::l0_layers(*seq).empty());
  EXPECT_TRUE(feasible::l0_gate_parameters(*seq).empty());
  EXPECT_EQ(feasible::l0_weight_parameters(*seq).size(), 2u);
}

TEST(L0Init, LogAlphaMeanAndSpread) {
  // log_alpha ~ N(m, sigma^2) with m = log((1 - d) / d). Over n = 100 * 100 = 10^4 gates the
  // sample mean has standard deviation sigma / sqrt(n); we allow 5 of them plus 1e-6 for float32
  // rounding. The sample standard deviation has relative standard deviation ~ 1 / sqrt(2 n)
  // ~ 0.0071; we allow 5 of them (3.5%).
  torch::manual_seed(21);
  for (const double d : {0.5, 0.2, 0.01}) {
    for (const double sigma : {1e-2, 0.5}) {
      SCOPED_TRACE("d = " + std::to_string(d) + ", sigma = " + std::to_string(sigma));
      L0Linear layer(L0LinearOptions(100, 100).gate(
          L0GateOptions().kind(L0GateKind::kWeights).init_drop_rate(d).init_noise(sigma)));
      const double n = 1e4;
      const double m = std::log((1 - d) / d);
      const auto a = layer->log_alpha.detach().to(torch::kFloat64);
      EXPECT_NEAR(a.mean().item<double>(), m, 5 * sigma / std::sqrt(n) + 1e-6);
      EXPECT_NEAR(a.std().item<double>(), sigma, 5 * sigma / std::sqrt(2 * n));
    }
  }
  // Without noise every gate starts exactly at m, so sigmoid(log_alpha) = 1 - d.
  L0Linear exact(L0LinearOptions(6, 2).gate(L0GateOptions().init_drop_rate(0.2).init_noise(0)));
  for (double v : to_vec(exact->log_alpha)) EXPECT_NEAR(v, std::log(4.0), 1e-6);
  for (double v : to_vec(torch::sigmoid(exact->log_alpha))) EXPECT_NEAR(v, 0.8, 1e-6);
}

TEST(L0Init, WeightsLikeTorchLinear) {
  // W, b ~ U(-1/sqrt(in), 1/sqrt(in)) as torch::nn::Linear. With 64 * 256 weights the observed
  // maximum |W| is within 1% of the bound with probability 1 - 0.99^16384 ~ 1.
  torch::manual_seed(8);
  L0Linear layer(L0LinearOptions(256, 64));
  const double bound = 1.0 / 16.0;
  const double wmax = layer->weight.abs().max().item<double>();
  EXPECT_LE(wmax, bound + 1e-7);
  EXPECT_GT(wmax, 0.99 * bound);
  EXPECT_LE(layer->bias.abs().max().item<double>(), bound + 1e-7);
  EXPECT_EQ(layer->log_alpha.sizes(), (std::vector<int64_t>{256}));
  EXPECT_TRUE(layer->log_alpha.requires_grad());
  EXPECT_EQ(layer->named_parameters().size(), 3u);
  EXPECT_NE(layer->named_parameters().find("log_alpha"), nullptr);
  // The same seed gives the same initialisation; another seed another one.
  torch::manual_seed(8);
  L0Linear same(L0LinearOptions(256, 64));
  EXPECT_TRUE(torch::equal(same->weight, layer->weight));
  EXPECT_TRUE(torch::equal(same->log_alpha, layer->log_alpha));
  torch::manual_seed(9);
  L0Linear other(L0LinearOptions(256, 64));
  EXPECT_FALSE(torch::equal(other->weight, layer->weight));
}

TEST(L0Misc, NamesPrintAndClone) {
  EXPECT_STREQ(feasible::to_string(L0GateKind::kInputUnits), "input_units");
  EXPECT_STREQ(feasible::to_string(L0GateKind::kWeights), "weights");
  L0Linear layer(L0LinearOptions(5, 2).gate(L0GateOptions().kind(L0GateKind::kWeights)));
  std::ostringstream os;
  os << *layer;
  const std::string text = os.str();
  EXPECT_NE(text.find("feasible::L0Linear"), std::string::npos) << text;
  EXPECT_NE(text.find("in_features=5"), std::string::npos) << text;
  EXPECT_NE(text.find("out_features=2"), std::string::npos) << text;
  EXPECT_NE(text.find("weights"), std::string::npos) << text;
  // clone() copies the parameters into new storage.
  auto copy = std::dynamic_pointer_cast<feasible::L0LinearImpl>(layer->clone());
  ASSERT_NE(copy, nullptr);
  EXPECT_TRUE(torch::equal(copy->log_alpha, layer->log_alpha));
  EXPECT_FALSE(copy->log_alpha.is_same(layer->log_alpha));
  {
    torch::NoGradGuard no_grad;
    copy->log_alpha.fill_(3.0);
  }
  EXPECT_FALSE(torch::equal(copy->log_alpha, layer->log_alpha));
}

}  // namespace
