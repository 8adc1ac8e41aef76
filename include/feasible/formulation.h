#pragma once
/// \file formulation.h
/// Formulations: how a constraint enters the primal objective and what drives its multiplier.
///
/// Notation (docs/design.md, section 5.1), per constraint over its observed entries: v = violation
/// (differentiable), s = strict violation (or v.detach()), lambda = multiplier values
/// (detached in the primal term), c = penalty coefficient (> 0), [z]+ = max(z, 0).
///
/// | formulation           | primal term                                  | dual ascent gradient |
/// |-----------------------|----------------------------------------------|----------------------|
/// | Lagrangian            | sum lambda v                                 | s                    |
/// | AugmentedLagrangian ≤ | (1/(2c)) sum([lambda + c v]+^2 - lambda^2)   | s, or c s            |
/// | AugmentedLagrangian = | sum lambda v + (c/2) sum v^2                 | s, or c s            |
/// | QuadraticPenalty      | (c/2) sum [v]+^2 (≤) or (c/2) sum v^2 (=)    | none                 |
/// | FixedPenalty          | c sum v (the fixed weighted sum f + c g)     | none                 |

#include <torch/torch.h>

#include <memory>
#include <string>

#include "feasible/kinds.h"

namespace feasible {

/// Base class of formulations. Subclass it to add one: implement primal_term and, when
/// uses_multiplier() is true, dual_ascent.
class Formulation {
 public:
  virtual ~Formulation() = default;

  /// A short name, e.g. "Lagrangian" (used in messages and reports).
  virtual std::string name() const = 0;
  /// Whether the formulation has a multiplier (and so needs a dual optimizer).
  virtual bool uses_multiplier() const = 0;
  /// Whether the formulation reads a penalty coefficient c.
  virtual bool uses_penalty() const = 0;
  /// Whether a PenaltyUpdater may change c (false for FixedPenalty, whose c is the point).
  virtual bool allows_penalty_updater() const { return uses_penalty(); }

  /// The term added to the loss for the primal update (a 0-d tensor).
  /// \param v       observed violations, shape [n], differentiable.
  /// \param lambda  observed multiplier values, shape [n], detached (undefined if no multiplier).
  /// \param c       penalty: 0-d or [n] (undefined if no penalty).
  virtual torch::Tensor primal_term(const torch::Tensor& v, const torch::Tensor& lambda,
                                    const torch::Tensor& c, ConstraintKind kind) const = 0;

  /// The ascent direction d/d(lambda) of the dual objective for the observed entries, shape
  /// [n], detached. \param s observed strict violations [n]; \param c penalty (may be undefined).
  virtual torch::Tensor dual_ascent(const torch::Tensor& s, const torch::Tensor& c,
                                    ConstraintKind kind) const;
};

/// The Lagrangian: primal term sum lambda * v; dual ascent s.
class Lagrangian : public Formulation {
 public:
  std::string name() const override { return "Lagrangian"; }
  bool uses_multiplier() const override { return true; }
  bool uses_penalty() const override { return false; }
  torch::Tensor primal_term(const torch::Tensor& v, const torch::Tensor& lambda,
                            const torch::Tensor& c, ConstraintKind kind) const override;
  torch::Tensor dual_ascent(const torch::Tensor& s, const torch::Tensor& c,
                            ConstraintKind kind) const override;
};

/// Options of the Augmented Lagrangian.
struct AugmentedLagrangianOptions {
  /// Accepts every value (the one field is a bool); here so that every options struct has one.
  void validate() const {}
  /// Scale the dual ascent direction by c: the classic method-of-multipliers update
  /// lambda <- [lambda + c s]+ is then a dual SGD step with step size 1 (Bertsekas 1982).
  /// Default false: the dual ascent direction is s and the dual optimizer's step size alone
  /// sets the multiplier's speed.
  TORCH_ARG(bool, scale_dual_by_penalty) = false;
};

/// The Augmented Lagrangian (Hestenes 1969; Powell 1969; Rockafellar 1973 for inequalities).
///
/// Inequality primal term (1/(2c)) sum([lambda + c v]+^2 - lambda^2), evaluated without dividing
/// by c where lambda + c v >= 0: it equals lambda v + (c/2) v^2 there and -lambda^2/(2c) else;
/// it tends to the Lagrangian term as c -> 0 and stays finite for every c > 0. Its gradient in v
/// is [lambda + c v]+. Equality: sum lambda v + (c/2) sum v^2. Needs a penalty coefficient.
class AugmentedLagrangian : public Formulation {
 public:
  explicit AugmentedLagrangian(AugmentedLagrangianOptions options = AugmentedLagrangianOptions())
      : options_(options) {}
  std::string name() const override { return "AugmentedLagrangian"; }
  bool uses_multiplier() const override { return true; }
  bool uses_penalty() const override { return true; }
  torch::Tensor primal_term(const torch::Tensor& v, const torch::Tensor& lambda,
                            const torch::Tensor& c, ConstraintKind kind) const override;
  torch::Tensor dual_ascent(const torch::Tensor& s, const torch::Tensor& c,
                            ConstraintKind kind) const override;
  /// The options.
  const AugmentedLagrangianOptions& options() const { return options_; }

 private:
  AugmentedLagrangianOptions options_;
};

/// The quadratic penalty: (c/2) sum [v]+^2 (inequality) or (c/2) sum v^2 (equality). No
/// multiplier; c may grow with a PenaltyUpdater.
class QuadraticPenalty : public Formulation {
 public:
  std::string name() const override { return "QuadraticPenalty"; }
  bool uses_multiplier() const override { return false; }
  bool uses_penalty() const override { return true; }
  torch::Tensor primal_term(const torch::Tensor& v, const torch::Tensor& lambda,
                            const torch::Tensor& c, ConstraintKind kind) const override;
};

/// The fixed weighted sum f + c g: primal term c sum v, with c fixed for the whole run. This is
/// the baseline that Ramirez et al. (2025, arXiv:2505.20628) argue against; it is here so the
/// two can be compared in one code base. No multiplier; no updater allowed.
class FixedPenalty : public Formulation {
 public:
  std::string name() const override { return "FixedPenalty"; }
  bool uses_multiplier() const override { return false; }
  bool uses_penalty() const override { return true; }
  bool allows_penalty_updater() const override { return false; }
  torch::Tensor primal_term(const torch::Tensor& v, const torch::Tensor& lambda,
                            const torch::Tensor& c, ConstraintKind kind) const override;
};

}  // namespace feasible
