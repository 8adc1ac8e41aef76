#pragma once
/// \file l0.h
/// Hard Concrete L0 gates (C. Louizos, M. Welling, D. P. Kingma, "Learning Sparse Neural
/// Networks through L0 Regularization", ICLR 2018): linear layers whose weights pass through
/// stochastic gates z in [0, 1] that are exactly 0 with positive probability, the expected L0
/// norm of the gated weights in closed form (differentiable in the gate parameters), the
/// deterministic test-time gate, and helpers for a model's density.
///
/// Gate of parameter log_alpha, temperature beta, stretch interval (gamma, zeta):
///   training:  u ~ U(0, 1),  s = sigmoid((log u - log(1 - u) + log_alpha) / beta),
///              z = clamp(s (zeta - gamma) + gamma, 0, 1);
///   P(z != 0) = sigmoid(log_alpha - beta log(-gamma / zeta))          (Louizos et al., eq. 12);
///   test time: z = clamp(sigmoid(log_alpha) (zeta - gamma) + gamma, 0, 1) (Louizos et al., eq.
///   13).

#include <torch/torch.h>

#include <cstdint>
#include <ostream>
#include <vector>

namespace feasible {

/// Which weights one gate controls.
enum class L0GateKind {
  /// One gate per input feature of the layer, shared by the out_features weights that read it
  /// ("structured"; the default of Louizos et al.'s code and of the paper's experiment). A
  /// closed gate removes a whole column of the weight matrix.
  kInputUnits,
  /// One gate per weight ("unstructured").
  kWeights,
};

/// Name of a gate kind ("input_units", "weights").
const char* to_string(L0GateKind kind);

/// Options of the Hard Concrete gates of one layer.
struct L0GateOptions {
  /// Throws c10::Error ("L0GateOptions.<field> must <rule>, got <value>") unless
  /// every field is in range.
  void validate() const;
  /// Which weights one gate controls. Default kInputUnits.
  TORCH_ARG(L0GateKind, kind) = L0GateKind::kInputUnits;
  /// Temperature beta of the concrete distribution, finite, > 0. Default 2/3 (Louizos et al.).
  TORCH_ARG(double, temperature) = 2.0 / 3.0;
  /// Lower end gamma of the stretch interval, finite, < 0. Default -0.1.
  TORCH_ARG(double, stretch_low) = -0.1;
  /// Upper end zeta of the stretch interval, finite, > 1. Default 1.1.
  TORCH_ARG(double, stretch_high) = 1.1;
  /// Initial drop rate d in (0, 1): log_alpha starts at log(1 - d) - log(d) (plus noise), so that
  /// sigmoid(log_alpha) = 1 - d. Default 0.5. The paper's text uses 0.01; the authors' code uses
  /// 0.2 for the first layer and 0.5 for the others.
  TORCH_ARG(double, init_drop_rate) = 0.5;
  /// Standard deviation of the Gaussian noise added to the initial log_alpha, finite, >= 0.
  /// Default 1e-2 (as in Louizos et al.'s code).
  TORCH_ARG(double, init_noise) = 1e-2;
  /// u is drawn from U(eps, 1 - eps) to keep log u finite; eps in (0, 0.5). Default 1e-6.
  TORCH_ARG(double, noise_eps) = 1e-6;
};

/// Options of an L0Linear layer.
struct L0LinearOptions {
  /// \param in_features  inputs, >= 1.   \param out_features  outputs, >= 1.
  L0LinearOptions(int64_t in_features, int64_t out_features);
  /// Throws c10::Error ("L0LinearOptions.<field> must <rule>, got <value>") unless every field is
  /// in range, the gates' options included.
  void validate() const;
  /// Number of inputs, >= 1.
  TORCH_ARG(int64_t, in_features);
  /// Number of outputs, >= 1.
  TORCH_ARG(int64_t, out_features);
  /// Whether the layer has a bias (never gated). Default true.
  TORCH_ARG(bool, bias) = true;
  /// The gates' options.
  TORCH_ARG(L0GateOptions, gate) = L0GateOptions();
};

/// A linear layer y = x (W * z)^T + b whose weights W [out, in] pass through Hard Concrete gates
/// z. In training mode every forward pass draws one gate sample (shared by the batch); in eval
/// mode the deterministic test-time gates are used. Weights are initialised as torch::nn::Linear
/// (Kaiming uniform), log_alpha as L0GateOptions::init_drop_rate says.
class L0LinearImpl : public torch::nn::Cloneable<L0LinearImpl> {
 public:
  /// A layer with `options` (validated; throws c10::Error).
  explicit L0LinearImpl(L0LinearOptions options);
  /// Creates and initialises the parameters; called by the constructor and by clone() (a second
  /// call on a built layer throws, as for torch::nn::Linear).
  void reset() override;
  /// Prints "feasible::L0Linear(in_features=.., out_features=.., gates=.., kind=..)".
  void pretty_print(std::ostream& stream) const override;

  /// Applies the layer to `input` [..., in_features]: sampled gates in training mode,
  /// test-time gates in eval mode.
  torch::Tensor forward(const torch::Tensor& input);

  /// A training-time gate sample z, of the gates' shape (differentiable in log_alpha).
  torch::Tensor sample_gates() const;
  /// The deterministic test-time gates, of the gates' shape (differentiable in log_alpha where
  /// they are strictly inside (0, 1)).
  torch::Tensor test_time_gates() const;
  /// P(z != 0) for every gate, of the gates' shape (differentiable).
  torch::Tensor gate_open_probabilities() const;
  /// Expected number of weights with a non-zero gate: sum over gates of P(z != 0) times the
  /// number of weights each gate controls (a differentiable scalar).
  torch::Tensor expected_l0() const;
  /// Number of weights whose test-time gate is non-zero.
  int64_t test_time_l0() const;
  /// Number of gated weights (in_features * out_features).
  int64_t num_weights() const;
  /// The weight matrix with the test-time gates applied (what a deployed model uses).
  torch::Tensor test_time_weight() const;

  /// The layer's options.
  L0LinearOptions options;
  /// Weight W [out_features, in_features].
  torch::Tensor weight;
  /// Bias [out_features] (undefined without bias).
  torch::Tensor bias;
  /// Gate parameters log_alpha: [in_features] for kInputUnits, [out_features, in_features] for
  /// kWeights.
  torch::Tensor log_alpha;
};
/// Module holder of L0LinearImpl.
TORCH_MODULE(L0Linear);

/// Every L0Linear layer in `module` and its descendants, in registration order.
std::vector<std::shared_ptr<L0LinearImpl>> l0_layers(const torch::nn::Module& module);

/// The gate parameters (log_alpha) of every L0Linear layer in `module`.
std::vector<torch::Tensor> l0_gate_parameters(const torch::nn::Module& module);

/// Every parameter of `module` that is not a gate parameter (weights, biases, other layers).
std::vector<torch::Tensor> l0_weight_parameters(const torch::nn::Module& module);

/// Expected density of `module`'s gated weights: sum of expected_l0() over its L0Linear layers
/// divided by the number of gated weights (biases and ungated layers excluded). A
/// differentiable scalar in [0, 1]. Throws c10::Error if `module` has no L0Linear.
torch::Tensor expected_density(const torch::nn::Module& module);

/// Test-time density of `module`'s gated weights: the fraction whose deterministic gate is
/// non-zero, in [0, 1]. Throws c10::Error if `module` has no L0Linear.
double test_time_density(const torch::nn::Module& module);

/// A multi-layer perceptron of L0Linear layers with ReLU between them: sizes {784, 300, 100, 10}
/// gives 784-300-100-10. `gates[i]` are the gates of layer i; a single entry is used for every
/// layer. Throws c10::Error for fewer than two sizes, a size < 1, or a number of gate
/// options other than 1 or sizes.size() - 1. The output is the last layer's (logits).
torch::nn::Sequential make_l0_mlp(const std::vector<int64_t>& sizes,
                                  const std::vector<L0GateOptions>& gates);

}  // namespace feasible
