#pragma once
/// \file kinds.h
/// Small enumerations shared by the whole library.

#include <string>

namespace feasible {

/// Whether a constraint is an inequality g(x) - eps <= 0 or an equality h(x) - eps = 0.
///
/// Sign convention (DESIGN.md section 1): a constraint reports its *violation*. For an
/// inequality a positive violation means infeasible and a non-positive one feasible; for an
/// equality any non-zero violation is infeasible. Inequality multipliers are kept >= 0
/// (projected after every dual step); equality multipliers are free.
enum class ConstraintKind {
  kInequality,  ///< g(x) - eps <= 0; multiplier lambda >= 0.
  kEquality,    ///< h(x) - eps == 0; multiplier mu free.
};

/// What the optimizer does when a NaN or Inf appears in the loss, a violation, a strict
/// violation, a gradient of the primal parameters (after the backward pass, before any
/// optimizer step) or a multiplier (after a dual step or extrapolation) (DESIGN.md section 6).
/// Which state each scheme restores, and at what cost, is documented in optimizer.h.
enum class NonFinitePolicy {
  /// Throw a c10::Error naming the quantity (default). Costs nothing beyond the checks
  /// themselves. A bad loss, violation or strict violation of the first evaluation, or a bad
  /// primal gradient found before any step, changes nothing; for a bad quantity found later in
  /// the step the message says which half-steps were already taken (see optimizer.h).
  kThrow,
  /// Skip the whole step: parameters, multipliers, penalty coefficients and every optimizer's
  /// state are exactly as before the step, and StepResult::skipped, skip_quantity and
  /// skip_reason say why. Schemes that find the bad quantity after a half-step copy the state
  /// that half-step changes before taking it (only under this policy; see optimizer.h).
  kSkipStep,
};

/// The quantity that was NaN or Inf (StepResult::skip_quantity).
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
