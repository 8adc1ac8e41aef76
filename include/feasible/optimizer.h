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
#include <unordered_set>
#include <vector>

#include "feasible/kinds.h"
#include "feasible/problem.h"
#include "feasible/projection.h"

namespace feasible {

/// The closure evaluated by step(): computes the loss and the observed constraints.
using Closure = std::function<ProblemState()>;

/// Options shared by every scheme.
struct ConstrainedOptimizerOptions {
  /// What to do with NaN or Inf in the loss, a violation or a strict violation. Default: throw.
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
  /// f(x) at the first evaluation of the step (0-d, detached).
  torch::Tensor loss;
  /// The primal Lagrangian f(x) + primal terms at that evaluation (0-d, detached).
  torch::Tensor lagrangian;
  /// One entry per registered constraint, in registration order.
  std::vector<ConstraintResult> constraints;
  /// True when the step was skipped (NonFinitePolicy::kSkipStep); nothing was changed.
  bool skipped = false;
  /// Why the step was skipped: names the quantity and the constraint.
  std::string skip_reason;
  /// The closure's metrics.
  std::map<std::string, double> metrics;

  /// The result of the constraint with this name (throws if none).
  const ConstraintResult& at(const std::string& name) const;
  /// The largest violation among observed constraints: max over entries of the strict
  /// violation's positive part (inequalities) or absolute value (equalities); 0 if none.
  double max_violation() const;
};

/// Base class of the schemes. Holds the problem, the primal optimizers (any number, each over
/// its own parameters), the dual optimizer, and the projections of primal parameters.
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
  virtual ~ConstrainedOptimizer() = default;

  /// One whole iteration (see the scheme's documentation).
  virtual StepResult step(const Closure& closure) = 0;

  /// Projects `params` with `projection` after every primal step (and extrapolation).
  void add_projection(std::vector<torch::Tensor> params, Projection projection);

  /// The problem.
  const Problem& problem() const { return problem_; }
  /// The primal optimizers.
  const std::vector<std::shared_ptr<torch::optim::Optimizer>>& primal_optimizers() const {
    return primal_;
  }
  /// The dual optimizer (may be nullptr).
  const std::shared_ptr<torch::optim::Optimizer>& dual_optimizer() const { return dual_; }
  /// The options.
  const ConstrainedOptimizerOptions& options() const { return options_; }
  /// Number of step() calls completed (skipped steps included).
  int64_t iteration() const { return iteration_; }
  /// Sets the iteration counter (used when resuming from a checkpoint).
  void set_iteration(int64_t iteration) { iteration_ = iteration; }

  /// Internal: one validated evaluation of the closure.
  struct Evaluation;

 protected:
  /// Calls the closure and validates what it returned (shapes, dtypes, indices, ownership).
  /// Returns false (and fills `result`) when the step must be skipped for non-finite values.
  bool evaluate(const Closure& closure, Evaluation& eval, StepResult& result);
  /// The primal Lagrangian of an evaluation, with the current multipliers and penalties.
  torch::Tensor primal_lagrangian(Evaluation& eval);
  /// Zeroes primal gradients; computes the Lagrangian; one backward pass.
  torch::Tensor primal_backward(Evaluation& eval);
  /// Writes the dual gradients of every observed constraint (negated ascent direction).
  void write_dual_gradients(Evaluation& eval);
  /// Steps the dual optimizer, projects multipliers, runs penalty updaters.
  void dual_step(Evaluation& eval, StepResult& result);
  /// Steps every primal optimizer and applies the projections.
  void primal_step();
  /// Applies the projections of primal parameters.
  void project_primal();
  /// Fills the per-constraint entries of `result` from an evaluation.
  void record(Evaluation& eval, StepResult& result);
  /// Runs the penalty updaters on an evaluation (after the dual step).
  void update_penalties(Evaluation& eval, StepResult& result);
  /// Starts a result (iteration number, registered constraints).
  StepResult start_result() const;

  Problem problem_;
  std::vector<std::shared_ptr<torch::optim::Optimizer>> primal_;
  std::shared_ptr<torch::optim::Optimizer> dual_;
  ConstrainedOptimizerOptions options_;
  std::vector<std::pair<std::vector<torch::Tensor>, Projection>> projections_;
  int64_t iteration_ = 0;
  size_t constraint_count_ = 0;
  std::vector<std::shared_ptr<Multiplier>> multipliers_;
  std::unordered_set<const void*> parameter_storages_;  // to detect violations that alias them
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
/// Lagrangian with lambda_{t+1} (e.g. an implicit multiplier gone negative) comes after it.
class AlternatingDualPrimalOptimizer : public ConstrainedOptimizer {
 public:
  using ConstrainedOptimizer::ConstrainedOptimizer;
  StepResult step(const Closure& closure) override;
};

/// Alternating, primal first: primal step at (x_t, lambda_t); re-evaluate the constraints at
/// x_{t+1} (with `constraint_closure` when given, else the full closure, under no-grad); dual
/// step from that evaluation. The result's per-constraint values are the first evaluation's.
/// A bad second evaluation is reported after the primal step has been taken: it throws, or
/// with NonFinitePolicy::kSkipStep the result is `skipped` with the primal step kept (the
/// skip_reason then starts with "second evaluation:").
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
/// parameters and multipliers to (x_t, lambda_t); ExtraAdam's moments keep the extrapolation's
/// update. Indexed multipliers with sparse_gradient are rejected.
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
