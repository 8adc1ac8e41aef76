#pragma once
/// \file optim/augmented_dual.h
/// The Augmented Lagrangian's multiplier update, written as a dual optimizer for the Lagrangian
/// formulation (the dual optimizer of feasible::make_default_optimizer).
#include <torch/torch.h>

#include <limits>
#include <vector>

namespace feasible {
namespace optim {

/// Options of AugmentedDual. Default: beta = 0.25.
struct AugmentedDualOptions : public torch::optim::OptimizerCloneableOptions<AugmentedDualOptions> {
  /// \param beta  the fraction of the penalty that moves the base multiplier, in (0, 1].
  AugmentedDualOptions(double beta = 0.25);  // NOLINT(google-explicit-constructor)
  /// Throws c10::Error ("AugmentedDualOptions.beta must be in (0, 1], got <value>") unless
  /// 0 < beta <= 1, and likewise unless 0 <= windup_guard < 1.
  void validate() const;
  /// The base multiplier's step as a fraction of the penalty: lambda_bar += beta * c * g.
  /// Range (0, 1]. Default 0.25 (docs/defaults.md explains the choice).
  TORCH_ARG(double, beta);
  /// The windup guard r0, in [0, 1); 0 (the default) turns it off. With it on, the base
  /// multiplier's step is weighted per entry by w = clamp((r - r0) / (1 - r0), 0, 1), where
  /// r = g_t / g_prev is the ratio of the entry's violation to its last nonzero one: a violation
  /// that shrinks by the factor r0 or faster per step moves lambda_bar not at all (the penalty
  /// is already removing it: integrating that transient would overshoot), one that stalls or
  /// grows (r >= 1) moves it fully, and a sign change or a first observation (no g_prev) too.
  /// make_default_optimizer sets r0 = 1 - p = 0.6, the shrink factor the penalty alone gives
  /// per step (docs/defaults.md, "The windup guard").
  TORCH_ARG(double, windup_guard) = 0.0;

 public:
  void serialize(torch::serialize::InputArchive& archive) override;
  void serialize(torch::serialize::OutputArchive& archive) const override;
  /// beta stands in for the learning rate of torch's schedulers.
  double get_lr() const override { return beta(); }
  void set_lr(const double lr) override { this->beta(lr); }
};

/// State of one multiplier tensor: the base multiplier lambda_bar, the penalty c per entry and
/// the interval the multiplier lives in.
struct AugmentedDualParamState
    : public torch::optim::OptimizerCloneableParamState<AugmentedDualParamState> {
  /// lambda_bar, the Augmented Lagrangian's multiplier estimate (shape of the parameter).
  TORCH_ARG(torch::Tensor, base);
  /// The penalty c per entry (shape of the parameter), >= 0; 0 keeps an entry where it is.
  TORCH_ARG(torch::Tensor, penalty);
  /// Lower end of the interval (0 for inequalities, -inf for equalities).
  TORCH_ARG(double, lower) = -std::numeric_limits<double>::infinity();
  /// Upper end of the interval (+inf unless the multiplier has a maximum).
  TORCH_ARG(double, upper) = std::numeric_limits<double>::infinity();
  /// The last nonzero g (as the negated gradient, -g) per entry, 0 where none was seen yet: the
  /// windup guard's reference (kept up to date with the guard off too).
  TORCH_ARG(torch::Tensor, previous);
  /// The base multiplier's step per entry as a fraction of the penalty (lambda_bar += w share c
  /// g), > 0 and finite, in place of AugmentedDualOptions::beta; undefined (the default): beta
  /// for every entry. The default optimizer sets it from the curvature the primal step meets
  /// along the constraint (docs/defaults.md, "The integral gain").
  TORCH_ARG(torch::Tensor, share);
  /// The factor the caller scaled the penalty by, as given to set_penalty() (default 1); not
  /// read by the update. The default optimizer records its stability factor here, so that a
  /// calibration that does not measure it (or one after a checkpoint load) reuses it.
  TORCH_ARG(double, factor) = 1.0;
  /// Number of steps taken on this parameter.
  TORCH_ARG(int64_t, step) = 0;

 public:
  void serialize(torch::serialize::InputArchive& archive) override;
  void serialize(torch::serialize::OutputArchive& archive) const override;
};

/// The Augmented Lagrangian's multiplier update in one-step form. With the violation
/// g_t = -grad (the engine writes the negated ascent direction into `.grad()`), per entry:
///
///   lambda_{t+1}     = clamp(lambda_bar_t + c g_t,        lower, upper)   (the parameter)
///   lambda_bar_{t+1} = clamp(lambda_bar_t + w beta c g_t, lower, upper)   (the state)
///
/// where w = 1 unless the windup guard is on (AugmentedDualOptions::windup_guard), and beta is
/// the entry's share when set_penalty() gave one.
///
/// Under AlternatingDualPrimalOptimizer with the Lagrangian formulation, the primal step then
/// reads the gradient grad f(x_t) + [lambda_bar_t + c g(x_t)]+ grad g(x_t), which is the
/// gradient of the Augmented Lagrangian (Hestenes 1969; Powell 1969; Rockafellar 1973) at
/// (x_t, lambda_bar_t) with penalty c; lambda_bar follows the method of multipliers with step
/// beta * c. It is the proportional-integral form of the multiplier update (K_p = (1 - beta) c,
/// K_i = beta c; Sohrabi et al. 2024; Ramirez and Lacoste-Julien 2025, arXiv:2509.22500).
///
/// Every parameter needs set_penalty() before its first step (an error names it otherwise).
/// Entries whose gradient is zero stay at lambda_bar (an unobserved entry of an indexed
/// multiplier drops its proportional part). Sparse gradients are rejected.
class AugmentedDual : public torch::optim::Optimizer {
 public:
  explicit AugmentedDual(std::vector<torch::Tensor> params,
                         AugmentedDualOptions defaults = AugmentedDualOptions());
  torch::Tensor step(LossClosure closure = nullptr) override;
  void save(torch::serialize::OutputArchive& archive) const override;
  void load(torch::serialize::InputArchive& archive) override;
  /// Sets the penalty of a parameter (broadcast to its shape; finite, >= 0, checked) and its
  /// interval. The first call starts lambda_bar at the parameter's current values. `share`
  /// (broadcast; finite, > 0, checked), when defined, sets the base multiplier's step per entry
  /// as a fraction of the penalty in place of the options' beta (AugmentedDualParamState::share);
  /// undefined (the default) leaves the share as it was. `factor` (finite, > 0) is recorded in
  /// the state (AugmentedDualParamState::factor) for the caller.
  void set_penalty(const torch::Tensor& param, const torch::Tensor& penalty, double lower,
                   double upper, const torch::Tensor& share = torch::Tensor(), double factor = 1.0);
  /// The state of a parameter (nullptr before set_penalty): for inspection.
  const AugmentedDualParamState* state_of(const torch::Tensor& param) const;
};

}  // namespace optim
}  // namespace feasible
