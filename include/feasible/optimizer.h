#pragma once
/// \file optimizer.h
/// Constrained optimizers: one call of step() does one whole primal-dual iteration.
///
/// The primal player minimizes the Lagrangian L(x, lambda) = f(x) + sum of the formulations'
/// primal terms over x; the dual player maximizes it over the multipliers. Dual gradients of
/// dense and indexed multipliers are written straight from the strict violations, so the
/// simultaneous and dual-primal schemes need one backward pass per step.

#include <torch/torch.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "feasible/kinds.h"
#include "feasible/problem.h"
#include "feasible/projection.h"

namespace feasible {

/// The closure evaluated by step(): computes the loss and the observed constraints.
using Closure = std::function<ProblemState()>;

/// Options shared by every scheme, validated by the ConstrainedOptimizer constructor.
struct ConstrainedOptimizerOptions {
  /// Throws c10::Error ("ConstrainedOptimizerOptions.<field> must <rule>, got <value>") unless
  /// every field is in range.
  void validate() const;
  /// What to do with NaN or Inf in the loss, a violation, a strict violation, a primal gradient
  /// or a multiplier after a dual step: NonFinitePolicy::kThrow (default: throw) or kSkipStep
  /// (skip and undo the step). The whole contract: docs/guide.md, section 10.
  TORCH_ARG(NonFinitePolicy, non_finite) = NonFinitePolicy::kThrow;
};

/// What one step did to one constraint (all tensors detached).
struct ConstraintResult {
  /// The constraint's name.
  std::string name;
  /// Inequality or equality.
  ConstraintKind kind = ConstraintKind::kInequality;
  /// Whether the closure observed the constraint in this step.
  bool observed = false;
  /// ConstraintOptions::occasional of the constraint (not observing it is expected).
  bool occasional = false;
  /// The violation used by the primal update ([n]).
  torch::Tensor violation;
  /// The strict violation used by the dual update and the penalty updater ([n]).
  torch::Tensor strict_violation;
  /// Observed entries of an indexed constraint, for `violation` (undefined for dense).
  torch::Tensor indices;
  /// Entries of `strict_violation` for an indexed constraint (undefined for dense).
  torch::Tensor strict_indices;
  /// Multiplier values used in the primal term ([n]; undefined without a multiplier).
  torch::Tensor multiplier;
  /// Penalty coefficient used in the primal term (0-d or [n]; undefined without a penalty).
  torch::Tensor penalty;
  /// Whether the penalty updater wanted to grow c past its cap in this step.
  bool penalty_capped = false;
};

/// What one step did.
struct StepResult {
  /// The iteration number of this step (0 for the first step).
  int64_t iteration = 0;
  /// The identity of the problem (Problem::id()) whose constraints this result lists.
  uint64_t problem_id = 0;
  /// f(x) at the first evaluation of the step (0-d, detached).
  torch::Tensor loss;
  /// The primal Lagrangian f(x) + primal terms at that evaluation (0-d, detached).
  torch::Tensor lagrangian;
  /// One entry per registered constraint, in registration order.
  std::vector<ConstraintResult> constraints;
  /// True when the step was skipped (NonFinitePolicy::kSkipStep): parameters, multipliers,
  /// penalty coefficients and optimizer states are as before the step. A skipped result holds
  /// only `iteration`, `metrics` and the skip fields (its constraints are not `observed`).
  bool skipped = false;
  /// Which quantity was NaN or Inf (NonFiniteQuantity::kNone unless skipped).
  NonFiniteQuantity skip_quantity = NonFiniteQuantity::kNone;
  /// The constraint whose violation, strict violation or multiplier was bad (empty for the
  /// loss and primal gradients).
  std::string skip_constraint;
  /// Why the step was skipped, in words: the quantity, the constraint or the parameter
  /// ("primal optimizer i, group j, parameter k"), prefixed by "second evaluation: "
  /// (AlternatingPrimalDual) or "half point: " (Extragradient) when found there.
  std::string skip_reason;
  /// The closure's metrics.
  std::map<std::string, double> metrics;
  /// Divergence that stays finite, found at this step (checked every 20 steps; docs/guide.md,
  /// section 10): one entry per constraint whose violation (positive part for inequalities) or
  /// multiplier has grown geometrically, by >= 1.25x every 20 steps over the last 100 steps, to
  /// >= 100x its largest value in the run's first 100 steps, as "'<name>': violation" or
  /// "'<name>': multiplier". The first report is also warned about (TORCH_WARN), once.
  std::vector<std::string> diverging;
  /// Whether the primal Lagrangian's magnitude diverges by the same rule.
  bool lagrangian_diverging = false;

  /// The result of the constraint with this name (throws if none).
  const ConstraintResult& at(const std::string& name) const;
  /// The result of this constraint (throws when the handle is empty or not in this result).
  const ConstraintResult& at(const Constraint& constraint) const;
  /// The names of the constraints that this step should have observed and did not: those
  /// without ConstraintOptions::occasional, in registration order. Empty for a skipped step.
  std::vector<std::string> unobserved() const;
  /// The largest violation among observed constraints: max over entries of the strict
  /// violation's positive part (inequalities) or absolute value (equalities); 0 when every
  /// observed entry is feasible, and 0 for a problem without constraints. NaN when the step
  /// cannot vouch for feasibility: it was skipped, or unobserved() is not empty, or it observed
  /// no constraint at all. NaN compares false with everything, so a test such as
  /// `max_violation() <= tol` never reads an unobserved constraint as feasible.
  double max_violation() const;
};

/// The error thrown under NonFinitePolicy::kThrow when the loss, a violation, a strict
/// violation, a primal gradient or a multiplier holds a NaN or Inf. A c10::Error whose message
/// starts with "ConstrainedOptimizer::step: " (or "ConstrainedOptimizer::dual_step: "), names
/// the quantity (and the stage, e.g. "second evaluation: ") and says what the step had already
/// changed; catch it to tell bad numbers from misuse, which throws a plain c10::Error.
class NonFiniteError : public c10::Error {
 public:
  /// \param quantity    which quantity was NaN or Inf.
  /// \param constraint  the constraint it belongs to (empty for the loss and primal gradients).
  NonFiniteError(c10::SourceLocation where, std::string message, NonFiniteQuantity quantity,
                 std::string constraint);
  /// Which quantity was NaN or Inf.
  NonFiniteQuantity quantity() const { return quantity_; }
  /// The constraint whose value was bad (empty for the loss and primal gradients).
  const std::string& constraint() const { return constraint_; }

 private:
  NonFiniteQuantity quantity_;
  std::string constraint_;
};

namespace detail {
class StepEngine;
}  // namespace detail
class Synchronizer;

/// Base class of the schemes. Holds the problem, the primal optimizers (any number, each over
/// its own parameters), the dual optimizer, and the projections of primal parameters; a scheme's
/// step() is written with the internal step engine. Every scheme checks the loss, the
/// violations, the primal gradients and the multipliers a dual step moves for NaN and Inf, and
/// throws a NonFiniteError or skips the step as ConstrainedOptimizerOptions::non_finite says;
/// what is checked when, and what each scheme leaves or restores: docs/guide.md, section 10.
class ConstrainedOptimizer {
 public:
  /// \param problem  the problem (its constraints must all be registered already).
  /// \param primal   primal optimizers (>= 1), e.g. SGD for some parameters and Adam for others.
  /// \param dual     the dual optimizer; must hold exactly problem.dual_parameters(). May be
  ///                 nullptr only when no constraint has a multiplier.
  ConstrainedOptimizer(Problem problem,
                       std::vector<std::shared_ptr<torch::optim::Optimizer>> primal,
                       std::shared_ptr<torch::optim::Optimizer> dual,
                       ConstrainedOptimizerOptions options = ConstrainedOptimizerOptions());
  virtual ~ConstrainedOptimizer();
  ConstrainedOptimizer(const ConstrainedOptimizer&) = delete;
  ConstrainedOptimizer& operator=(const ConstrainedOptimizer&) = delete;

  /// One whole iteration (see the scheme's documentation).
  virtual StepResult step(const Closure& closure) = 0;

  /// A step of the dual player alone, from a closure evaluated with autograd off: validation-
  /// based dual updates (Cotter, Gupta, Jiang, Srebro, Sridharan, Wang, Woodworth & You,
  /// "Training Well-Generalizing Classifiers for Fairness Metrics and Other Data-Dependent
  /// Constraints", ICML 2019). The training closure observes each constraint with
  /// `contributes_to_dual(false)` (step() then leaves the multipliers and the dual optimizer's
  /// state exactly as they are), and every k steps this function reads the strict violations
  /// measured on a validation batch (observed with `contributes_to_primal(false)`, a flag it
  /// ignores: it never touches the primal side). Loop and cadence: docs/guide.md, section 13.
  ///
  /// In order: evaluates `closure` under torch::NoGradGuard (its violations need no gradient;
  /// its loss may be undefined, else it is checked like step()'s); writes the dual gradients
  /// from the strict violations of the constraints observed with contributes_to_dual (true);
  /// steps the dual optimizer and projects the multipliers; runs their penalty updaters on the
  /// same strict violations (the validation stream measures the violation a penalty reacts
  /// to); records the result. NaN and Inf are checked as in step() (the closure's loss,
  /// violations and strict violations, then the multipliers the step moved) under
  /// ConstrainedOptimizerOptions::non_finite: kThrow throws a NonFiniteError whose message
  /// starts with "ConstrainedOptimizer::dual_step: "; kSkipStep undoes the dual step (the
  /// multipliers, the dual optimizer's state, the penalties) and returns a `skipped` result.
  ///
  /// Never touches the primal parameters, their gradients, the primal optimizers' state or the
  /// projections, and does not count as an iteration: iteration() and the result's `iteration`
  /// stay the number of step() calls so far, and the divergence monitor does not sample it.
  /// The result's `lagrangian` is undefined; per constraint, `multiplier` and `penalty` hold the
  /// values before this step; unobserved() and max_violation() read the validation closure's
  /// observations (a constraint with a multiplier or a penalty updater that it does not observe,
  /// unless `occasional`, is warned about once per optimizer).
  ///
  /// Per scheme: the same dual step for every scheme that has a dual optimizer (it is the
  /// scheme-free half of a step). ExtragradientOptimizer's dual ExtrapolationOptimizer takes
  /// an ordinary update (its step() without extrapolate(): the strict violations at fixed
  /// primal parameters do not depend on the multipliers, so an extrapolation would read the
  /// same gradient). DefaultOptimizer's AugmentedDual moves a multiplier only once a step() has
  /// calibrated its penalty from the training closure (before that the penalty is 0).
  /// Throws c10::Error ("ConstrainedOptimizer::dual_step: ...") for an optimizer without a dual
  /// optimizer (UnconstrainedOptimizer, or no constraint with a multiplier), for a dual
  /// ExtrapolationOptimizer with an extrapolation pending, for an empty closure, and for the
  /// misuse step() refuses (shapes, indices, dtypes), naming the constraint.
  StepResult dual_step(const Closure& closure);

  /// Projects `params` with `projection` at once (so that the first step starts inside the
  /// set) and after every primal step (and extrapolation). Projections are idempotent, so a
  /// start already inside the set does not change.
  void add_projection(std::vector<torch::Tensor> params, Projection projection);

  /// The problem.
  const Problem& problem() const;
  /// The primal optimizers.
  const std::vector<std::shared_ptr<torch::optim::Optimizer>>& primal_optimizers() const;
  /// The dual optimizer (may be nullptr).
  const std::shared_ptr<torch::optim::Optimizer>& dual_optimizer() const;
  /// The options.
  const ConstrainedOptimizerOptions& options() const;
  /// Number of step() calls completed (skipped steps included).
  int64_t iteration() const;
  /// Sets the iteration counter (used when resuming from a checkpoint).
  void set_iteration(int64_t iteration);
  /// Shares every evaluation's strict violations and every primal backward pass's gradients
  /// with other processes through `synchronizer` (feasible/synchronizer.h; data-parallel
  /// training: feasible::distributed::DataParallel, docs/distributed.md). nullptr (the default)
  /// turns sharing off; without one a step does no extra work.
  void set_synchronizer(std::shared_ptr<Synchronizer> synchronizer);
  /// The synchronizer (nullptr when none is set).
  const std::shared_ptr<Synchronizer>& synchronizer() const;

 protected:
  /// The step engine the schemes' step() is written with (internal, src/step_engine.h).
  detail::StepEngine& engine() { return *engine_; }

 private:
  std::unique_ptr<detail::StepEngine> engine_;
};

/// Simultaneous gradient descent-ascent: evaluate at (x_t, lambda_t); one backward pass; step
/// the primal and the dual players together; project.
class SimultaneousOptimizer : public ConstrainedOptimizer {
 public:
  using ConstrainedOptimizer::ConstrainedOptimizer;
  StepResult step(const Closure& closure) override;
};

/// Alternating, dual first: evaluate once at x_t; update the multipliers to lambda_{t+1}; then
/// the primal step uses lambda_{t+1} with the same evaluation. Same cost as simultaneous.
/// Input is validated before the dual step; an error raised while forming the primal
/// Lagrangian with lambda_{t+1} (e.g. an implicit multiplier gone negative), or a non-finite
/// primal gradient, comes after it: with NonFinitePolicy::kSkipStep the dual step and penalty
/// update are undone from the copy taken before them; with kThrow they are kept.
class AlternatingDualPrimalOptimizer : public ConstrainedOptimizer {
 public:
  using ConstrainedOptimizer::ConstrainedOptimizer;
  StepResult step(const Closure& closure) override;
};

/// Alternating, primal first: primal step at (x_t, lambda_t); re-evaluate the constraints at
/// x_{t+1} (with `constraint_closure` when given, else the full closure, under no-grad); dual
/// step from that evaluation. The result's per-constraint values are the first evaluation's.
/// A bad second evaluation is found after the primal step: with NonFinitePolicy::kSkipStep the
/// primal step is undone (the primal parameters and optimizer states are copied before it, at
/// the cost of one copy of each per step) and the result is `skipped` with a skip_reason that
/// starts with "second evaluation: "; with kThrow (and for misuse errors) the primal step is
/// kept and the message says so.
class AlternatingPrimalDualOptimizer : public ConstrainedOptimizer {
 public:
  using ConstrainedOptimizer::ConstrainedOptimizer;
  StepResult step(const Closure& closure) override;
  /// \param constraint_closure  evaluates the constraints only (its loss may be undefined).
  StepResult step(const Closure& closure, const Closure& constraint_closure);
};

/// Extragradient: gradients at (x_t, lambda_t); extrapolate both players to the half point
/// (projecting); gradients there; update from the saved (x_t, lambda_t) with the half-point
/// gradients (projecting). Every optimizer must be a feasible::optim::ExtrapolationOptimizer
/// (ExtraSGD, ExtraAdam). Two closure evaluations and two backward passes per step. Penalty
/// updaters read the half-point evaluation. A throw or a skip at the half point returns the
/// parameters and multipliers to (x_t, lambda_t); with NonFinitePolicy::kSkipStep the
/// optimizers' states (ExtraAdam moments and step counts) are restored too, from a copy taken
/// before the extrapolation (with kThrow they keep the extrapolation's update). Indexed
/// multipliers with sparse_gradient are rejected.
class ExtragradientOptimizer : public ConstrainedOptimizer {
 public:
  ExtragradientOptimizer(Problem problem,
                         std::vector<std::shared_ptr<torch::optim::Optimizer>> primal,
                         std::shared_ptr<torch::optim::Optimizer> dual,
                         ConstrainedOptimizerOptions options = ConstrainedOptimizerOptions());
  StepResult step(const Closure& closure) override;
};

/// Plain minimization of the loss plus penalty terms, for problems whose constraints all use
/// formulations without multipliers (FixedPenalty, QuadraticPenalty). Penalty updaters run
/// after each step.
class UnconstrainedOptimizer : public ConstrainedOptimizer {
 public:
  UnconstrainedOptimizer(Problem problem,
                         std::vector<std::shared_ptr<torch::optim::Optimizer>> primal,
                         ConstrainedOptimizerOptions options = ConstrainedOptimizerOptions());
  StepResult step(const Closure& closure) override;
};

}  // namespace feasible
