// The default optimizer's calibration (internal): the primal optimizers' step per unit gradient
// and the penalties c = p / ||grad g||_P^2 it sets (include/feasible/defaults.h).
#pragma once
#include <torch/torch.h>

#include <memory>
#include <vector>

#include "feasible/optim/augmented_dual.h"
#include "feasible/problem.h"
#include "src/step_engine.h"

namespace feasible {
namespace detail {

/// One primal parameter and the optimizer (and group) that steps it.
struct PrimalParameter {
  torch::Tensor param;
  torch::optim::Optimizer* optimizer = nullptr;
  size_t group = 0;  // the index of its group (options are looked up at each use: a checkpoint
                     // load replaces them)
  /// The options of its group.
  const torch::optim::OptimizerOptions& options() const {
    return optimizer->param_groups()[group].options();
  }
};

/// The primal optimizers' step per unit gradient, P: one primal step moves a parameter by about
/// -P * gradient. SGD: lr / (1 - momentum), exactly. Adam, AdamW, RMSprop, Adagrad normalise
/// the gradient by its own running size, and that size includes the multipliers' terms, so a
/// P read from their second moments would shrink as the penalty grows and the penalty
/// c = p / ||a||_P^2 would grow with it without end. For them P = lr / rms(grad f) over each
/// parameter tensor (the optimizer's tensors together when the loss does not reach the tensor,
/// the second moments' rms when it reaches none of them): the step per unit gradient that the
/// loss alone would give (scale free, like the optimizer). Per tensor, because the optimizer
/// normalises each coordinate by its own gradient: L0 gates whose loss gradient is far smaller
/// than the weights' move far more per unit gradient than an rms over all parameters says.
class PrimalMetric {
 public:
  /// Throws (naming the optimizer) unless every optimizer is a supported type.
  explicit PrimalMetric(const std::vector<std::shared_ptr<torch::optim::Optimizer>>& primal);
  /// The parameters that require a gradient, in optimizer and group order.
  const std::vector<torch::Tensor>& parameters() const { return tensors_; }
  /// Computes P for the evaluation's loss (one backward pass when an optimizer is adaptive);
  /// false when P cannot be told yet (nothing depends on the loss and no second moments yet).
  bool prepare(const torch::Tensor& loss);
  /// sum_k P_k grads_k^2 (grads: one per parameter, undefined for unused ones), with the P of
  /// the last prepare().
  double squared_norm(const std::vector<torch::Tensor>& grads) const;

 private:
  c10::optional<double> second_moment_rms(torch::optim::Optimizer* optimizer) const;
  std::vector<PrimalParameter> params_;
  std::vector<torch::Tensor> tensors_;
  std::vector<double> weight_;  // P per parameter
};

/// The largest momentum among the primal optimizers' groups (SGD: momentum; Adam, AdamW:
/// beta1; RMSprop: momentum; Adagrad: 0).
double primal_momentum(const std::vector<std::shared_ptr<torch::optim::Optimizer>>& primal);

/// When calibrations are due: steps 0..8, then every max(1, t/4) steps, at most `cap` apart.
class CalibrationSchedule {
 public:
  explicit CalibrationSchedule(int64_t cap) : cap_(cap) {}
  /// Whether a calibration is due at iteration t (t never decreases, except after a resume).
  bool due(int64_t t);

 private:
  int64_t cap_;
  int64_t next_ = 0;
};

/// Sets the penalties of every observed constraint of `eval` in `dual` (see DefaultOptimizer).
/// `seed` drives the random signs of the shared-penalty estimate. Returns false when P is not
/// known yet (nothing set).
bool calibrate_penalties(const Evaluation& eval, PrimalMetric& metric, optim::AugmentedDual& dual,
                         double fraction, uint64_t seed);

}  // namespace detail
}  // namespace feasible
