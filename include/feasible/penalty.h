#pragma once
/// \file penalty.h
/// Penalty coefficients c > 0 (for AugmentedLagrangian, QuadraticPenalty and FixedPenalty)
/// and the rules that grow them during training.

#include <torch/torch.h>

#include <memory>
#include <string>

#include "feasible/kinds.h"

namespace feasible {

/// A penalty coefficient: one scalar shared by all entries of a constraint, or one value per
/// entry (also for indexed constraints, where only observed entries are read and updated).
/// Values are kept > 0. Not a trainable parameter: it is changed only by a PenaltyUpdater.
class PenaltyCoefficient {
 public:
  /// \param init       initial value, > 0 (checked).
  /// \param size       number of entries of the constraint.
  /// \param per_entry  one value per entry (true) or one scalar (false).
  PenaltyCoefficient(double init, int64_t size, bool per_entry, torch::TensorOptions options);

  /// Values at the observed entries: a 0-d tensor when scalar, else shape [n] (indices
  /// undefined means all entries).
  torch::Tensor observed(const torch::Tensor& indices) const;
  /// All values: 0-d (scalar) or [size] (per entry). Detached.
  const torch::Tensor& value() const { return value_; }
  /// Direct access to the values, for updaters and checkpoints (keep them > 0).
  torch::Tensor& mutable_value() { return value_; }
  /// Overwrites the values (shape as value(); all > 0, checked).
  void set_value(const torch::Tensor& value);
  /// The initial value (what restart-on-feasibility returns to).
  double init() const { return init_; }
  /// Whether there is one value per entry.
  bool per_entry() const { return per_entry_; }

 private:
  double init_;
  bool per_entry_;
  torch::Tensor value_;
};

/// Options common to the penalty updaters. Defaults: tolerance 1e-4, no cap, no restart.
struct PenaltyUpdaterOptions {
  /// Throws c10::Error ("PenaltyUpdaterOptions.<field> must <rule>, got <value>") unless every
  /// field is in range (the PenaltyUpdater constructor calls it). The checks against the constraint
  /// (max_value >= its penalty, restart_on_feasible only for inequalities) are
  /// ConstraintOptions::validate's.
  void validate() const;
  /// An entry counts as violated when |strict violation| > tolerance (for inequalities the
  /// positive part is used). Range: finite, >= 0 (checked). Default 1e-4.
  TORCH_ARG(double, tolerance) = 1e-4;
  /// Upper bound on the coefficient (std::nullopt: none, the default). Range: finite, > 0, and
  /// >= the constraint's initial penalty (checked by Problem::add_constraint). Growth past it
  /// stops there and StepResult reports ConstraintResult::penalty_capped.
  TORCH_ARG(c10::optional<double>, max_value) = c10::nullopt;
  /// For inequalities: reset an entry's coefficient to its initial value whenever its strict
  /// violation is <= 0 (the constraint is satisfied). Default false; must stay false for an
  /// equality constraint (checked by Problem::add_constraint).
  TORCH_ARG(bool, restart_on_feasible) = false;
};

/// Grows penalty coefficients where the constraint is violated. Run by the
/// ConstrainedOptimizer after the dual step on the observed entries, never by hand.
///
/// Rule (docs/design.md, section 5.4), per observed entry with strict violation s
/// (s+ = max(s, 0) for inequalities, s for equalities): if |s| > tolerance then c <- grow(c),
/// capped at max_value; else if restart_on_feasible and the inequality holds (s <= 0) then
/// c <- init. A scalar coefficient of a multi-entry constraint grows when any observed entry is
/// violated and restarts only when every observed entry is satisfied.
class PenaltyUpdater {
 public:
  explicit PenaltyUpdater(PenaltyUpdaterOptions options);
  virtual ~PenaltyUpdater() = default;

  /// Applies the rule. `strict` are the observed strict violations ([n]); `indices` the
  /// observed entries (undefined: all entries, in order). Returns true when some entry wanted
  /// to grow past max_value (and was held there).
  bool update(PenaltyCoefficient& penalty, const torch::Tensor& strict,
              const torch::Tensor& indices, ConstraintKind kind) const;

  /// The growth rule c -> grow(c), applied to a tensor of values.
  virtual torch::Tensor grow(const torch::Tensor& c) const = 0;
  /// A short name, e.g. "multiplicative".
  virtual std::string name() const = 0;
  /// The common options.
  const PenaltyUpdaterOptions& options() const { return options_; }

 protected:
  PenaltyUpdaterOptions options_;
};

/// c <- c * growth where violated. growth finite and > 1 (checked); there is no default: factors
/// between 2 and 10 are common in the method-of-multipliers literature (Bertsekas 1982; Nocedal &
/// Wright 2006, section 17.4).
class MultiplicativePenaltyUpdater : public PenaltyUpdater {
 public:
  /// \param growth  the factor, > 1.
  explicit MultiplicativePenaltyUpdater(double growth,
                                        PenaltyUpdaterOptions options = PenaltyUpdaterOptions());
  torch::Tensor grow(const torch::Tensor& c) const override;
  std::string name() const override { return "multiplicative"; }
  /// The growth factor.
  double growth() const { return growth_; }

 private:
  double growth_;
};

/// c <- c + increment where violated. increment finite and > 0 (checked).
class AdditivePenaltyUpdater : public PenaltyUpdater {
 public:
  /// \param increment  the amount added, > 0.
  explicit AdditivePenaltyUpdater(double increment,
                                  PenaltyUpdaterOptions options = PenaltyUpdaterOptions());
  torch::Tensor grow(const torch::Tensor& c) const override;
  std::string name() const override { return "additive"; }
  /// The increment.
  double increment() const { return increment_; }

 private:
  double increment_;
};

}  // namespace feasible
