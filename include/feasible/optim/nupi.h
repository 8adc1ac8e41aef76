#pragma once
/// \file optim/nupi.h
/// nuPI: the PI-controller update for multipliers of Sohrabi, Ramirez, Zhang,
/// Lacoste-Julien & Gallego-Posada, "On PI Controllers for Updating Lagrange Multipliers in
/// Constrained Optimization", ICML 2024.

#include <torch/torch.h>

#include <memory>
#include <vector>

namespace feasible {
namespace optim {

/// How nuPI takes its first step on a parameter (or, for sparse updates, on each entry).
enum class NuPIInit {
  /// "SGD start" (default): treat the memory before the first step as equal to the first
  /// error, xi_{-1} = e_0. Then xi_0 = e_0 and the first update is u_0 = K_i e_0, a plain
  /// gradient step, and the proportional term starts acting from the second step.
  kSGD,
  /// Zero memory: xi_{-1} = 0, so the first update is (K_i + K_p (1 - nu)) e_0.
  kZero,
};

/// Options of NuPI. Defaults: K_p = 0, K_i = 1, nu = 0, SGD start (plain gradient descent).
/// Every field is checked by the NuPI constructor, for the defaults and for each parameter
/// group, with messages "NuPIOptions.<field> must <rule>, got <value>".
struct NuPIOptions : public torch::optim::OptimizerCloneableOptions<NuPIOptions> {
  /// \param lr  the step size eta, >= 0.
  NuPIOptions(double lr = 1e-2);  // NOLINT(google-explicit-constructor)
  /// Throws c10::Error ("NuPIOptions.<field> must <rule>, got <value>") unless every field is in
  /// range and, for each tensor in `params`, the per-entry gains broadcast to its shape.
  void validate(const std::vector<torch::Tensor>& params = {}) const;
  /// Step size eta (finite, >= 0).
  TORCH_ARG(double, lr);
  /// Proportional gain K_p (finite, >= 0). Default 0.
  TORCH_ARG(double, kp) = 0.0;
  /// Integral gain K_i (finite, >= 0). Default 1.
  TORCH_ARG(double, ki) = 1.0;
  /// EMA factor nu of the error memory, in [0, 1). Default 0.
  TORCH_ARG(double, nu) = 0.0;
  /// Per-entry proportional gains (finite, >= 0, broadcastable to each parameter of its group);
  /// overrides kp if defined.
  TORCH_ARG(torch::Tensor, kp_per_entry) = torch::Tensor();
  /// Per-entry integral gains (finite, >= 0, broadcastable to each parameter of its group);
  /// overrides ki if defined.
  TORCH_ARG(torch::Tensor, ki_per_entry) = torch::Tensor();
  /// First-step mode (NuPIInit::kSGD or kZero). Default kSGD.
  TORCH_ARG(NuPIInit, init) = NuPIInit::kSGD;

 public:
  void serialize(torch::serialize::InputArchive& archive) override;
  void serialize(torch::serialize::OutputArchive& archive) const override;
  double get_lr() const override { return lr(); }
  void set_lr(const double lr) override { this->lr(lr); }
};

/// State of one parameter: the error memory xi_{t-1}, and which entries have been updated at
/// least once (a bool tensor of the parameter's shape; all true after a dense update).
struct NuPIParamState : public torch::optim::OptimizerCloneableParamState<NuPIParamState> {
  /// xi_{t-1}, the EMA of past errors (same shape as the parameter).
  TORCH_ARG(torch::Tensor, xi);
  /// Entries that have taken at least one step.
  TORCH_ARG(torch::Tensor, seen);
  /// Number of steps taken on this parameter.
  TORCH_ARG(int64_t, step) = 0;

 public:
  void serialize(torch::serialize::InputArchive& archive) override;
  void serialize(torch::serialize::OutputArchive& archive) const override;
};

/// The nuPI optimizer. With error e_t = the gradient in `.grad()` (for multipliers: the
/// negated dual ascent direction, docs/design.md, section 4):
///
///   xi_t        = nu xi_{t-1} + (1 - nu) e_t
///   theta_{t+1} = theta_t - eta (K_i e_t + K_p (xi_t - xi_{t-1}))
///
/// K_p = 0, K_i = 1 is gradient descent; K_p = K_i = 1, nu = 0 is the optimistic gradient
/// (2 e_t - e_{t-1}). For multipliers, nuPI damps the oscillations of gradient descent-ascent
/// (Sohrabi et al. 2024, where nuPI with nu = 0 is shown equivalent to the Augmented
/// Lagrangian's damping on the linear-quadratic problem).
///
/// Sparse gradients (a 1-D parameter whose `.grad()` is a sparse COO tensor, as written by an
/// indexed multiplier with `sparse_gradient`) update only the listed entries, in O(entries):
/// the memory and the "seen" mask of the other entries stay untouched, and the first-step mode
/// applies per entry. Parameters whose gradient is undefined are skipped.
class NuPI : public torch::optim::Optimizer {
 public:
  explicit NuPI(std::vector<torch::optim::OptimizerParamGroup> param_groups,
                NuPIOptions defaults = NuPIOptions());
  explicit NuPI(std::vector<torch::Tensor> params, NuPIOptions defaults = NuPIOptions());

  torch::Tensor step(LossClosure closure = nullptr) override;
  void save(torch::serialize::OutputArchive& archive) const override;
  void load(torch::serialize::InputArchive& archive) override;

  /// The state of a parameter (nullptr before its first step): for inspection.
  const NuPIParamState* state_of(const torch::Tensor& param) const;
};

}  // namespace optim
}  // namespace feasible
