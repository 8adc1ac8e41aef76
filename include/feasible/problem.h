#pragma once
/// \file problem.h
/// The constrained problem: minimize f(x) subject to g(x) - eps <= 0 and h(x) - eps = 0.
///
/// A `Problem` is a registry of named constraints, in registration order. Each constraint owns
/// its formulation, its multiplier (when the formulation has one) and its penalty coefficient
/// (when the formulation reads one). In each training step the user's closure returns a
/// `ProblemState`: the loss plus a `ConstraintState` for each constraint it observed.
///
/// Sign convention: a constraint reports its violation, g(x) - eps for an inequality (feasible
/// when <= 0) and h(x) - eps for an equality (feasible when == 0).

#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "feasible/formulation.h"
#include "feasible/kinds.h"
#include "feasible/multiplier.h"
#include "feasible/penalty.h"

namespace feasible {

/// Which kind of multiplier a constraint uses.
enum class MultiplierKind {
  kDense,     ///< one value per entry, all entries observed together (default).
  kIndexed,   ///< one value per entry, a batch of entries observed through `indices`.
  kImplicit,  ///< a model maps `features` to multiplier values (ConstraintOptions::implicit_model).
};

/// Options of one constraint, validated by Problem::add_constraint with messages that name the
/// constraint, the field, the value and the rule.
struct ConstraintOptions {
  /// \param kind  inequality (default) or equality.  \param size  number of entries (>= 1).
  explicit ConstraintOptions(ConstraintKind kind = ConstraintKind::kInequality, int64_t size = 1)
      : kind_(kind), size_(size) {}

  /// Throws c10::Error ("<context>: ConstraintOptions.<field> must <rule>, got <value>"; without
  /// "<context>: " when `context` is empty) unless every field is in range and the fields fit
  /// together (with the formulation, and with the penalty updater's options).
  /// Problem::add_constraint calls it with the context "Problem::add_constraint('<name>')".
  void validate(const std::string& context = "") const;

  /// Inequality or equality. Default: inequality.
  TORCH_ARG(ConstraintKind, kind);
  /// Number of scalar constraints in this group, >= 1. Default 1.
  TORCH_ARG(int64_t, size);
  /// How the constraint enters training. Default: Lagrangian.
  TORCH_ARG(std::shared_ptr<Formulation>, formulation) = std::make_shared<Lagrangian>();
  /// Dense (default), indexed, or implicit multiplier.
  TORCH_ARG(MultiplierKind, multiplier) = MultiplierKind::kDense;
  /// Initial multiplier value for every entry; >= 0 for inequalities. Default 0.
  TORCH_ARG(double, init) = 0.0;
  /// Initial multiplier values, shape [size] (overrides `init` when defined).
  TORCH_ARG(torch::Tensor, init_values) = torch::Tensor();
  /// Upper bound on |multiplier| applied after every dual step (> 0). Default: none.
  TORCH_ARG(c10::optional<double>, max_multiplier) = c10::nullopt;
  /// Indexed multipliers: keep unobserved entries fixed under any optimizer. Default false.
  TORCH_ARG(bool, lazy) = false;
  /// Indexed multipliers: write the dual gradient as a sparse COO tensor holding only the
  /// observed entries, instead of dense rows. Per-step cost then does not grow with `size`;
  /// use it with feasible::optim::NuPI or torch::optim::SGD (without momentum), which
  /// update only the observed entries; torch's Adam rejects sparse gradients. Default false.
  TORCH_ARG(bool, sparse_gradient) = false;
  /// The model of an implicit multiplier (required for MultiplierKind::kImplicit).
  TORCH_ARG(torch::nn::AnyModule, implicit_model);
  /// Initial penalty coefficient c (> 0), read by AugmentedLagrangian, QuadraticPenalty and
  /// FixedPenalty. Default 1.
  TORCH_ARG(double, penalty) = 1.0;
  /// One penalty coefficient per entry (true) or one for the whole constraint (false, default).
  TORCH_ARG(bool, penalty_per_entry) = false;
  /// Grows c where the constraint is violated (not allowed for FixedPenalty). Default: none.
  TORCH_ARG(std::shared_ptr<PenaltyUpdater>, penalty_updater) = nullptr;
  /// Whether the closure observes this constraint only now and then (e.g. every k steps, or on
  /// the batches that hold a rare group). Default false: the constraint is expected in every
  /// step, and a step that does not observe it makes StepResult::max_violation() NaN and is
  /// warned about once per optimizer. With true, a step without it is expected: no warning,
  /// and max_violation() reads only the constraints that the step observed.
  TORCH_ARG(bool, occasional) = false;
  /// dtype of the multiplier and the penalty; default: torch's default dtype at creation. A
  /// dense or indexed multiplier must be at least as precise as the strict violations it
  /// reads (a float64 violation needs a float64 multiplier); ConstrainedOptimizer::step
  /// refuses a less precise one, naming this option.
  TORCH_ARG(c10::optional<torch::ScalarType>, dtype) = c10::nullopt;
  /// Device of the multiplier and the penalty. Default CPU.
  TORCH_ARG(torch::Device, device) = torch::kCPU;
};

namespace detail {
struct ConstraintImpl;
struct ProblemImpl;
}  // namespace detail

/// A handle to a registered constraint (cheap to copy; copies refer to the same constraint).
class Constraint {
 public:
  /// An empty handle; use Problem::add_constraint to get a real one.
  Constraint() = default;

  /// The unique name given at registration.
  const std::string& name() const;
  /// The options given at registration.
  const ConstraintOptions& options() const;
  /// Inequality or equality.
  ConstraintKind kind() const;
  /// Number of entries.
  int64_t size() const;
  /// Position in the problem's registration order (0-based).
  size_t index() const;
  /// The formulation.
  const std::shared_ptr<Formulation>& formulation() const;
  /// The multiplier, or nullptr when the formulation has none.
  const std::shared_ptr<Multiplier>& multiplier() const;
  /// The penalty coefficient, or nullptr when the formulation reads none.
  const std::shared_ptr<PenaltyCoefficient>& penalty() const;
  /// Whether the handle refers to a constraint.
  bool defined() const { return impl_ != nullptr; }
  /// Identity comparison.
  bool operator==(const Constraint& other) const { return impl_ == other.impl_; }
  bool operator!=(const Constraint& other) const { return impl_ != other.impl_; }

  /// Internal: the identity of the owning problem.
  uint64_t problem_id() const;

 private:
  friend class Problem;
  explicit Constraint(std::shared_ptr<detail::ConstraintImpl> impl) : impl_(std::move(impl)) {}
  const detail::ConstraintImpl& impl() const;
  std::shared_ptr<detail::ConstraintImpl> impl_;
};

/// What the closure observed of one constraint in one step.
struct ConstraintState {
  ConstraintState() = default;
  /// \param violation  g(x) - eps (or h(x) - eps), differentiable, shape [n] (a 0-d tensor is
  ///                   accepted for constraints of size 1).
  explicit ConstraintState(torch::Tensor violation) : violation_(std::move(violation)) {}

  /// Differentiable violation; drives the primal update. Shape [size] (dense) or [n] matching
  /// `indices` (indexed). While autograd is on and a primal parameter requires a gradient, a
  /// violation without one is refused when `contributes_to_primal` is true: it could not move
  /// the parameters while its multiplier grows. A non-differentiable quantity (a 0-1 rate)
  /// belongs in `strict_violation`, with a differentiable surrogate here.
  TORCH_ARG(torch::Tensor, violation);
  /// Optional strict violation, e.g. a non-differentiable 0-1 rate; drives the dual update and
  /// the penalty updater (proxy constraints, Cotter et al. 2019). Default: violation.detach().
  TORCH_ARG(torch::Tensor, strict_violation);
  /// Indexed constraints: the observed entries of `violation` (1-D, in [0, size)); int64, or
  /// any other integer type (e.g. int32), which is converted to int64 (one copy per step).
  TORCH_ARG(torch::Tensor, indices);
  /// Indexed constraints: the entries of `strict_violation` (default: `indices`); integer
  /// types as for `indices`.
  TORCH_ARG(torch::Tensor, strict_indices);
  /// Implicit multipliers: the inputs of the multiplier model, one row per observed entry.
  TORCH_ARG(torch::Tensor, features);
  /// Whether the constraint enters the primal Lagrangian in this step. Default true.
  TORCH_ARG(bool, contributes_to_primal) = true;
  /// Whether the multiplier is updated from this observation. Default true.
  TORCH_ARG(bool, contributes_to_dual) = true;
};

/// What the closure returns: the loss and the constraints it observed. A registered constraint
/// that is not observed in a step keeps its multiplier unchanged in that step.
struct ProblemState {
  ProblemState() = default;
  /// \param loss  the objective f(x), a 0-d floating tensor.
  explicit ProblemState(torch::Tensor loss) : loss(std::move(loss)) {}

  /// Records an observation (each constraint at most once per state).
  ProblemState& observe(const Constraint& constraint, ConstraintState state);

  /// The objective f(x): a 0-d floating-point tensor.
  torch::Tensor loss;
  /// The observed constraints, in the order observed.
  std::vector<std::pair<Constraint, ConstraintState>> observed;
  /// Free-form named metrics, copied into the StepResult.
  std::map<std::string, double> metrics;
};

/// The registry of constraints. Copies share the same problem.
class Problem {
 public:
  Problem();

  /// Registers a constraint and creates its multiplier and penalty coefficient.
  /// Throws when the name is empty or already used, or an option is invalid.
  Constraint add_constraint(std::string name, ConstraintOptions options = ConstraintOptions());

  /// All constraints, in registration order.
  const std::vector<Constraint>& constraints() const;
  /// The constraint with this name (throws, listing the names, when there is none).
  Constraint constraint(const std::string& name) const;
  /// Whether a constraint of this name exists.
  bool has_constraint(const std::string& name) const;

  /// The multipliers, in registration order (constraints without one are skipped).
  std::vector<std::shared_ptr<Multiplier>> multipliers() const;
  /// The dual parameters (what the dual optimizer must hold), in registration order.
  std::vector<torch::Tensor> dual_parameters() const;
  /// The dual parameters of one constraint.
  std::vector<torch::Tensor> dual_parameters(const std::string& name) const;
  /// Current multiplier values of a constraint (dense and indexed; [size], detached).
  torch::Tensor multiplier_values(const std::string& name) const;
  /// The same, by handle (throws when the handle is empty or belongs to another problem).
  torch::Tensor multiplier_values(const Constraint& constraint) const;
  /// Current penalty coefficient of a constraint (0-d or [size], detached).
  torch::Tensor penalty_values(const std::string& name) const;
  /// The same, by handle (throws when the handle is empty or belongs to another problem).
  torch::Tensor penalty_values(const Constraint& constraint) const;

  /// A process-unique identity.
  uint64_t id() const;

 private:
  std::shared_ptr<detail::ProblemImpl> impl_;
};

}  // namespace feasible
