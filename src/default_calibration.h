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
/// -P * gradient. SGD: lr (1 - dampening) / (1 - momentum), exactly. Adam, AdamW, RMSprop, Adagrad
/// normalise the gradient by its own running size, and that size includes the multipliers' terms,
/// so a P read from their second moments would shrink as the penalty grows and the penalty c = p /
/// ||a||_P^2 would grow with it without end. For them P = lr / rms(grad f) over each parameter
/// tensor (the optimizer's tensors together when the loss does not reach the tensor, the second
/// moments' rms when it reaches none of them): the step per unit gradient that the loss alone would
/// give (scale free, like the optimizer). RMSprop's momentum buffer sums past steps, so its P is
/// divided by 1 - momentum as SGD's; Adam's and AdamW's first moment is an average, so theirs is
/// not. Per tensor, because the optimizer normalises each coordinate by its own gradient: L0 gates
/// whose loss gradient is far smaller than the weights' move far more per unit gradient than an rms
/// over all parameters says.
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
  /// P per parameter (of the last prepare()), in the order of parameters().
  const std::vector<double>& weights() const { return weight_; }
  /// Whether every primal optimizer is SGD, whose P is exact.
  bool exact() const;
  /// sum_k P_k sum_i (grad f)_ki^2 [grads_ki != 0]: the squared P-norm of the loss gradient of
  /// the last prepare() on the coordinates that `grads` reaches (0 when prepare() took no loss
  /// gradient, i.e. with SGD only).
  double loss_norm_on(const std::vector<torch::Tensor>& grads) const;
  /// Drops the loss gradient kept by prepare() (called at the end of a calibration, so that no
  /// parameter-sized copy is held between calibrations).
  void release() { loss_grads_.clear(); }

 private:
  c10::optional<double> second_moment_rms(torch::optim::Optimizer* optimizer) const;
  std::vector<PrimalParameter> params_;
  std::vector<torch::Tensor> tensors_;
  std::vector<double> weight_;             // P per parameter
  std::vector<torch::Tensor> loss_grads_;  // of the last prepare() (adaptive optimizers only)
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
  /// The position in the sequence of the last calibration due() answered for (0 for step 0):
  /// a function of t alone, so a resumed run agrees with an uninterrupted one.
  int64_t index() const { return index_; }
  /// Whether the calibration at index() also measures the curvature (the first 9, then every
  /// 4th).
  bool measures() const { return index_ < 9 || index_ % 4 == 0; }

 private:
  int64_t cap_;
  int64_t next_ = 0;
  int64_t index_ = 0;
};

/// One penalty direction: a constraint entry's gradient (one tensor per parameter of the
/// metric) and its penalty c.
struct PenaltyNormal {
  std::vector<torch::Tensor> grads;
  double penalty = 0;
};

/// The largest factor theta in [0.05, 1] such that the primal step's curvature along the
/// penalties' directions, with the penalties theta c, stays within a margin of the step's
/// stability limit `limit` (in the metric P): the largest eigenvalue of
/// P^1/2 (H_L + theta sum_j c_j a_j a_j^T) P^1/2 on the span of the directions and two Krylov
/// extensions, with H_L the Lagrangian's Hessian at the current multipliers (Hessian-vector
/// products: one double backward pass each), at most 0.9 limit, or halfway from its value at
/// theta = 0 to the limit when that is past 0.8 limit. `curvature` (optional) receives each
/// direction's curvature d^T H_y d / |d|^2 (0 for a zero direction). Throws what autograd
/// throws when the closure's operations have no double backward.
double stability_factor(const Evaluation& eval, const PrimalMetric& metric,
                        const std::vector<PenaltyNormal>& normals, double limit,
                        std::vector<double>* curvature = nullptr);

/// The constants of the curvature rule (DefaultOptimizer).
struct CurvatureOptions {
  double fraction = 0;  ///< p, the penalty fraction
  double beta = 0;      ///< the base share, the integral gain's floor (q >= beta p)
  double momentum = 0;  ///< the primal optimizers' largest momentum m
  bool warned = false;  ///< whether the warning "no double backward" was given (once)
};

/// The per-visit rule of indexed inequality constraints (DefaultOptimizer::kVisitStep,
/// kVisitCap; docs/defaults.md, "Indexed constraints"): in units of u = ||grad f||_P /
/// ||grad sum_i g_i||_P, the weight at which one observed entry's term equals its share of a
/// mean loss, the penalty is `step` u and the multipliers stay within [0, `cap` u].
struct VisitRule {
  double step = 0;  ///< the penalty in units of u (the base multiplier moves by it per visit)
  double cap = 0;   ///< the multipliers' upper end in units of u
};

/// Whether the per-visit rule drives `item`: an indexed inequality constraint.
bool visit_rule_applies(const Evaluation::Item& item);

/// Replaces the dual gradient that write_dual_gradients() left on each observed entry of the
/// constraints the per-visit rule drives by a unit step: up (ascent 1) for an entry whose
/// violation is positive and at most the median of the batch's positive violations, down
/// (ascent -1, toward 0) for every other finite entry; non-finite entries keep theirs, for the
/// engine's non-finite check. With the rule's penalty c and share 1 the multiplier then moves by
/// c per visit, whatever the violations' scale. StepEngine::dual_directions of the default
/// optimizer (called by write_dual_gradients(), in step() and dual_step()).
void visit_directions(const Evaluation& eval);

/// Sets the penalties of every observed constraint of `eval` in `dual` (see DefaultOptimizer).
/// `seed` drives the random signs of the shared-penalty estimate. With `curvature` and an exact
/// metric (SGD), the penalties are scaled by the stability factor theta and each entry's base
/// share set for critical damping of the local loop (docs/defaults.md): measured when `measure`,
/// else the factor and shares kept in the dual's state (checkpointed) are reused. With an
/// adaptive metric and `balance_cap` > 0, the multipliers of a dense constraint of up to 32
/// entries get the interval [-cap, cap] (intersected with their own bounds), cap =
/// balance_cap * the largest entry's ||grad f||_P / ||grad g||_P on g's coordinates. Returns
/// false when P is not known yet (nothing set). With `visit`, the constraints that
/// visit_rule_applies() names get its penalty, share 1 and interval (no stability factor; their
/// directions are left out of the curvature measure); without it, the shared-penalty rule.
bool calibrate_penalties(const Evaluation& eval, PrimalMetric& metric, optim::AugmentedDual& dual,
                         double fraction, uint64_t seed, CurvatureOptions* curvature = nullptr,
                         bool measure = false, double balance_cap = 0,
                         const VisitRule* visit = nullptr);
}  // namespace detail
}  // namespace feasible
