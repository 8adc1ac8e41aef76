#pragma once
/// \file defaults.h
/// The constrained optimizer a user gets without choosing a dual step: make_default_optimizer.
/// The recipe, its measurements and its limits: docs/defaults.md.
#include <torch/torch.h>

#include <memory>
#include <vector>

#include "feasible/kinds.h"
#include "feasible/optimizer.h"
#include "feasible/problem.h"

namespace feasible {

/// What a user may say to make_default_optimizer. No step sizes: the recipe sets the dual
/// update from the primal optimizers and the constraints' gradients (docs/defaults.md).
struct DefaultOptions {
  /// Throws c10::Error ("DefaultOptions.<field> must <rule>, got <value>") unless every field
  /// is in range.
  void validate() const;
  /// What to do with NaN or Inf (ConstrainedOptimizerOptions::non_finite). Default kThrow.
  TORCH_ARG(NonFinitePolicy, non_finite) = NonFinitePolicy::kThrow;
  /// The longest interval, in steps, between two calibrations of the penalties (each costs one
  /// backward pass per entry of a dense constraint of up to 32 entries, one per constraint
  /// otherwise). Calibrations come at steps 0, 1, ..., 8, then every max(1, t/4) steps, at
  /// most this many apart. Range >= 1. Default 500.
  TORCH_ARG(int64_t, max_calibration_interval) = 500;
};

/// The default constrained optimizer (docs/defaults.md): AlternatingDualPrimalOptimizer's step
/// with the Lagrangian formulation and the dual optimizer feasible::optim::AugmentedDual, which
/// makes the primal step the Augmented Lagrangian's. Per entry, the penalty is
///
///   c = p / ||grad g||_P^2,   p = 0.4,
///
/// where ||a||_P^2 = sum_k P_k a_k^2 and P is the primal optimizers' step per unit gradient
/// (SGD: lr (1 - dampening) / (1 - momentum); Adam, AdamW, RMSprop, Adagrad: lr / rms(grad f) over
/// each parameter tensor, RMSprop's divided by 1 - momentum as SGD's, Adam's first moment being an
/// average that adds no such factor):
/// one primal step along the constraint's own gradient then removes about a fraction p of its
/// violation, whatever the scale of the constraint, of the loss or of the step. The base
/// multiplier moves by beta c g per step, beta = 0.25 (1 - m) with m the largest momentum of
/// the primal optimizers (SGD's momentum, Adam's beta1): a primal step that answers over about
/// 1 / (1 - m) steps needs a gentler integral term. Indexed constraints, and dense ones of
/// more than 32 entries, take one penalty for all entries, from the gradient of a random-sign
/// sum of the observed entries (which also weighs the entries' primal terms like a mean), except
/// indexed inequality constraints, which take the per-visit rule (kVisitStep, kVisitCap): each
/// entry's multiplier moves by one unit per visit, up for the batch's milder half of the
/// violators, down for the rest, in step() and dual_step() alike. The unit is measured against
/// the loss's gradient: where the loss has none, these multipliers hold.
///
/// With an adaptive primal optimizer (Adam, AdamW, RMSprop, Adagrad), each entry's multiplier
/// of a dense constraint of up to 32 entries is held within kBalanceCap times its balance
/// multiplier ||grad f||_P / ||grad g||_P (the loss gradient taken on the coordinates that g
/// reaches): past it the constraint's force dominates the loss's, the optimizer's normalised
/// step no longer grows with the multiplier, and what the multiplier gains is windup.
///
/// Supported: constraints with the default options' formulation (Lagrangian) and a dense or
/// indexed multiplier; primal optimizers torch::optim::SGD, Adam, AdamW, RMSprop, Adagrad.
/// The constructor names the first constraint or optimizer outside this.
class DefaultOptimizer : public ConstrainedOptimizer {
 public:
  /// \param problem  the problem (constraints registered; Lagrangian, dense or indexed).
  /// \param primal   the primal optimizers (>= 1).
  DefaultOptimizer(Problem problem, std::vector<std::shared_ptr<torch::optim::Optimizer>> primal,
                   DefaultOptions options = DefaultOptions());
  ~DefaultOptimizer() override;
  /// Calibrates the penalties when due, then one AlternatingDualPrimal step.
  StepResult step(const Closure& closure) override;
  /// The penalty c of each entry of a constraint (shape [size]; zeros before the first
  /// calibration that saw it). Detached copy.
  torch::Tensor penalty(const Constraint& constraint) const;
  /// Number of calibrations done so far.
  int64_t calibrations() const;
  /// The recipe's constants (docs/defaults.md): the fraction p of a violation that one primal
  /// step along the constraint's gradient removes, and the base multiplier's share beta for a
  /// primal optimizer without momentum. The dual's windup guard is 1 - p
  /// (optim::AugmentedDualOptions::windup_guard).
  static constexpr double kPenaltyFraction = 0.4;
  static constexpr double kBaseShare = 0.25;
  /// With adaptive primal optimizers: the multipliers of a small dense constraint stay within
  /// this multiple of the largest entry's balance multiplier ||grad f||_P / ||grad g||_P
  /// (measured at each calibration; docs/defaults.md, "The saturation cap"). At a KKT point of
  /// one active constraint grad f = -lambda* grad g, so lambda* is the balance multiplier
  /// itself; the factor 2 leaves room for coupled constraints and minibatch noise.
  static constexpr double kBalanceCap = 2.0;
  /// Indexed inequality constraints (a per-example bound; docs/defaults.md, "Indexed
  /// constraints"): in units of u = ||grad f||_P / ||grad sum_i g_i||_P over the batch's observed
  /// entries (for a mean loss over a batch of B examples and per-example g_i = that example's
  /// loss, u = 1 / B: one example's weight in the mean), each entry's multiplier moves by
  /// kVisitStep u at each visit, up when its violation is positive and at most the median of the
  /// batch's positive violations, down toward 0 otherwise, and stays within [0, kVisitCap u].
  static constexpr double kVisitStep = 1.0;
  static constexpr double kVisitCap = 4.0;

 private:
  struct Calibration;
  std::unique_ptr<Calibration> calibration_;
  DefaultOptions options_;
};

/// The optimizer a user gets without choosing a dual step (docs/defaults.md).
/// \param problem  constraints registered with the default formulation (dense or indexed).
/// \param primal   the primal optimizers (any number >= 1, each over its own parameters).
std::unique_ptr<DefaultOptimizer> make_default_optimizer(
    Problem problem, std::vector<std::shared_ptr<torch::optim::Optimizer>> primal,
    DefaultOptions options = DefaultOptions());
/// The same with one primal optimizer.
std::unique_ptr<DefaultOptimizer> make_default_optimizer(
    Problem problem, std::shared_ptr<torch::optim::Optimizer> primal,
    DefaultOptions options = DefaultOptions());

}  // namespace feasible
