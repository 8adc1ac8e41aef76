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

/// What the optimizer does when the loss, a violation or a strict violation contains NaN or
/// Inf (DESIGN.md section 6).
enum class NonFinitePolicy {
  kThrow,     ///< Throw a c10::Error naming the quantity (default). Nothing is modified.
  kSkipStep,  ///< Skip the whole step, change nothing, and report it in StepResult.
};

/// "inequality" or "equality".
inline std::string to_string(ConstraintKind kind) {
  return kind == ConstraintKind::kInequality ? "inequality" : "equality";
}

}  // namespace feasible
