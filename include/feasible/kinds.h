#pragma once
/// \file kinds.h
/// Small enumerations shared by the whole library.

#include <string>

namespace feasible {

/// Whether a constraint is an inequality g(x) - eps <= 0 or an equality h(x) - eps = 0.
///
/// Sign convention (docs/design.md, section 4): a constraint reports its *violation*. For an
/// inequality a positive violation means infeasible and a non-positive one feasible; for an
/// equality any non-zero violation is infeasible. Inequality multipliers are kept >= 0
/// (projected after every dual step); equality multipliers are free.
enum class ConstraintKind {
  kInequality,  ///< g(x) - eps <= 0; multiplier lambda >= 0.
  kEquality,    ///< h(x) - eps == 0; multiplier mu free.
};

/// What the optimizer does when a NaN or Inf appears in the loss, a violation, a strict
/// violation, a primal gradient or a multiplier (ConstrainedOptimizerOptions::non_finite).
/// The whole contract (what is checked and when, what each scheme leaves or restores, what it
/// copies): docs/guide.md, section 10, "Non-finite values".
enum class NonFinitePolicy {
  /// Throw a c10::Error naming the quantity and what the step had already changed (default).
  /// Copies no state for it.
  kThrow,
  /// Skip the step and leave everything as it was before it; StepResult::skipped says so and
  /// skip_quantity, skip_constraint and skip_reason say why. Copies, before each half-step,
  /// what that half-step changes.
  kSkipStep,
};

/// The quantity that was NaN or Inf (StepResult::skip_quantity; docs/guide.md, section 10).
enum class NonFiniteQuantity {
  kNone,             ///< Nothing (the step was not skipped).
  kLoss,             ///< The loss f(x).
  kViolation,        ///< A constraint's violation.
  kStrictViolation,  ///< A constraint's strict violation.
  kPrimalGradient,   ///< A gradient of a primal parameter, after the backward pass.
  kMultiplier,       ///< A multiplier (or a parameter of an implicit multiplier's model)
                     ///< after a dual step or extrapolation.
};

/// "none", "loss", "violation", "strict violation", "primal gradient" or "multiplier".
inline std::string to_string(NonFiniteQuantity quantity) {
  switch (quantity) {
    case NonFiniteQuantity::kLoss:
      return "loss";
    case NonFiniteQuantity::kViolation:
      return "violation";
    case NonFiniteQuantity::kStrictViolation:
      return "strict violation";
    case NonFiniteQuantity::kPrimalGradient:
      return "primal gradient";
    case NonFiniteQuantity::kMultiplier:
      return "multiplier";
    default:
      return "none";
  }
}

/// "inequality" or "equality".
inline std::string to_string(ConstraintKind kind) {
  return kind == ConstraintKind::kInequality ? "inequality" : "equality";
}

}  // namespace feasible
