// ConstrainedOptimizer, its results and errors, and the construction of the step engine: the
// checks of the optimizers against the problem. The schemes are in src/schemes.cpp, the engine's
// half-steps in src/step_engine.cpp, its checks in src/evaluation.cpp and its copies in
// src/snapshot.cpp.
#include <limits>
#include <sstream>
#include <unordered_set>

#include "feasible/optimizer.h"
#include "feasible/synchronizer.h"
#include "src/step_engine.h"

namespace feasible {

NonFiniteError::NonFiniteError(c10::SourceLocation where, std::string message,
                               NonFiniteQuantity quantity, std::string constraint)
    : c10::Error(where, std::move(message)),
      quantity_(quantity),
      constraint_(std::move(constraint)) {}

// ------------------------------------------------------------------ StepResult

const ConstraintResult& StepResult::at(const std::string& name) const {
  for (const auto& c : constraints) {
    if (c.name == name) return c;
  }
  TORCH_CHECK(false, "StepResult::at: no constraint named '", name, "'");
}

const ConstraintResult& StepResult::at(const Constraint& constraint) const {
  TORCH_CHECK(constraint.defined(), "StepResult::at: the constraint handle is empty");
  const size_t i = constraint.index();
  TORCH_CHECK(constraint.problem_id() == problem_id && i < constraints.size() &&
                  constraints[i].name == constraint.name(),
              "StepResult::at: constraint '", constraint.name(),
              "' is not in this result (it belongs to another problem)");
  return constraints[i];
}

std::vector<std::string> StepResult::unobserved() const {
  std::vector<std::string> names;
  if (skipped) return names;
  for (const auto& c : constraints) {
    if (!c.observed && !c.occasional) names.push_back(c.name);
  }
  return names;
}

double StepResult::max_violation() const {
  if (constraints.empty()) return 0.0;
  if (skipped) return std::numeric_limits<double>::quiet_NaN();
  bool any = false;
  for (const auto& c : constraints) {
    if (!c.observed && !c.occasional) return std::numeric_limits<double>::quiet_NaN();
    any = any || c.observed;
  }
  if (!any) return std::numeric_limits<double>::quiet_NaN();
  double worst = 0.0;
  for (const auto& c : constraints) {
    if (!c.observed || !c.strict_violation.defined() || c.strict_violation.numel() == 0) continue;
    const auto& s = c.strict_violation;
    const double v = c.kind == ConstraintKind::kInequality ? s.max().item<double>()
                                                           : s.abs().max().item<double>();
    worst = std::max(worst, v);
  }
  return worst;
}

// ------------------------------------------------------------------ ConstrainedOptimizer

ConstrainedOptimizer::ConstrainedOptimizer(
    Problem problem, std::vector<std::shared_ptr<torch::optim::Optimizer>> primal,
    std::shared_ptr<torch::optim::Optimizer> dual, ConstrainedOptimizerOptions options)
    : engine_(std::make_unique<detail::StepEngine>(std::move(problem), std::move(primal),
                                                   std::move(dual), options)) {}

ConstrainedOptimizer::~ConstrainedOptimizer() = default;

const Problem& ConstrainedOptimizer::problem() const { return engine_->problem_; }

const std::vector<std::shared_ptr<torch::optim::Optimizer>>&
ConstrainedOptimizer::primal_optimizers() const {
  return engine_->primal_;
}

const std::shared_ptr<torch::optim::Optimizer>& ConstrainedOptimizer::dual_optimizer() const {
  return engine_->dual_;
}

const ConstrainedOptimizerOptions& ConstrainedOptimizer::options() const {
  return engine_->options_;
}

int64_t ConstrainedOptimizer::iteration() const { return engine_->iteration_; }

void ConstrainedOptimizer::set_iteration(int64_t iteration) { engine_->iteration_ = iteration; }

void ConstrainedOptimizer::set_synchronizer(std::shared_ptr<Synchronizer> synchronizer) {
  engine_->sync_ = std::move(synchronizer);
}

const std::shared_ptr<Synchronizer>& ConstrainedOptimizer::synchronizer() const {
  return engine_->sync_;
}

void ConstrainedOptimizer::add_projection(std::vector<torch::Tensor> params,
                                          Projection projection) {
  TORCH_CHECK(projection != nullptr, "ConstrainedOptimizer::add_projection: empty projection");
  for (size_t i = 0; i < params.size(); ++i) {
    TORCH_CHECK(params[i].defined(), "ConstrainedOptimizer::add_projection: parameter ", i,
                " is undefined");
  }
  {
    // The start point too: the first step must not start outside the set.
    torch::NoGradGuard no_grad;
    for (auto& p : params) projection(p);
  }
  engine_->projections_.emplace_back(std::move(params), std::move(projection));
}

// ------------------------------------------------------------------ the engine's construction

namespace detail {
namespace {

// Refuses a parameter group whose learning rate is negative or not finite, naming `who`.
void check_learning_rates(torch::optim::Optimizer& opt, const std::string& who) {
  const auto& groups = opt.param_groups();
  for (size_t j = 0; j < groups.size(); ++j) {
    double lr = 0.0;
    try {
      lr = groups[j].options().get_lr();
    } catch (const c10::Error&) {
      continue;  // an optimizer whose options have no learning rate
    }
    TORCH_CHECK(std::isfinite(lr) && lr >= 0, "ConstrainedOptimizer: ", who, ", parameter group ",
                j, ": the learning rate must be finite and >= 0, got ", lr,
                " (the dual player ascends through negated gradients, so a positive rate is right "
                "for both players)");
  }
}

std::unordered_set<const void*> impls_of(const std::vector<torch::Tensor>& tensors) {
  std::unordered_set<const void*> set;
  for (const auto& p : tensors) set.insert(p.unsafeGetTensorImpl());
  return set;
}

}  // namespace

StepEngine::StepEngine(Problem problem,
                       std::vector<std::shared_ptr<torch::optim::Optimizer>> primal,
                       std::shared_ptr<torch::optim::Optimizer> dual,
                       ConstrainedOptimizerOptions options)
    : problem_(std::move(problem)),
      primal_(std::move(primal)),
      dual_(std::move(dual)),
      options_(options) {
  options_.validate();
  TORCH_CHECK(!primal_.empty(), "ConstrainedOptimizer: at least one primal optimizer is needed");
  for (size_t i = 0; i < primal_.size(); ++i) {
    TORCH_CHECK(primal_[i] != nullptr, "ConstrainedOptimizer: primal optimizer ", i, " is null");
  }
  const auto duals = problem_.dual_parameters();
  constraint_count_ = problem_.constraints().size();
  for (const auto& p : duals) {
    if (p.has_storage()) parameter_storages_.insert(p.storage().unsafeGetStorageImpl());
  }
  multipliers_ = problem_.multipliers();
  for (const auto& c : problem_.constraints()) {
    const auto& m = c.multiplier();
    multiplier_dtypes_.push_back(m && m->writes_gradient_directly()
                                     ? c10::optional<torch::ScalarType>(m->values().scalar_type())
                                     : c10::nullopt);
  }
  for (size_t i = 0; i < primal_.size(); ++i) {
    check_learning_rates(*primal_[i], "primal optimizer " + std::to_string(i));
    for (const auto& g : primal_[i]->param_groups()) {
      for (const auto& p : g.params()) {
        if (p.has_storage()) parameter_storages_.insert(p.storage().unsafeGetStorageImpl());
        primal_requires_grad_ = primal_requires_grad_ || p.requires_grad();
      }
    }
  }
  if (dual_) check_learning_rates(*dual_, "the dual optimizer (" + dual_holders() + ")");
  const auto dual_set = impls_of(duals);
  for (size_t i = 0; i < primal_.size(); ++i) {
    for (const auto& g : primal_[i]->param_groups()) {
      for (const auto& p : g.params()) {
        TORCH_CHECK(!dual_set.count(p.unsafeGetTensorImpl()),
                    "ConstrainedOptimizer: primal optimizer ", i,
                    " holds a dual parameter (a multiplier of the problem); a parameter cannot "
                    "be both primal and dual");
      }
    }
  }
  check_duals_held(duals);
  blank_.problem_id = problem_.id();
  for (const auto& c : problem_.constraints()) {
    ConstraintResult cr;
    cr.name = c.name();
    cr.kind = c.kind();
    cr.occasional = c.options().occasional();
    blank_.constraints.push_back(std::move(cr));
    multiplier_parameters_.push_back(c.multiplier() ? c.multiplier()->parameters()
                                                    : std::vector<torch::Tensor>());
  }
  fused_ = fusable_dual();
}

// The dual optimizer must hold exactly the problem's dual parameters (none without one).
void StepEngine::check_duals_held(const std::vector<torch::Tensor>& duals) {
  if (!dual_) {
    std::ostringstream names;
    for (const auto& c : problem_.constraints()) {
      if (c.multiplier()) names << (names.tellp() > 0 ? ", " : "") << "'" << c.name() << "'";
    }
    TORCH_CHECK(duals.empty(), "ConstrainedOptimizer: constraints ", names.str(),
                " have multipliers, but no dual optimizer was given");
    return;
  }
  std::unordered_set<const void*> held;
  for (const auto& g : dual_->param_groups()) {
    for (const auto& p : g.params()) held.insert(p.unsafeGetTensorImpl());
  }
  std::ostringstream missing;
  for (const auto& c : problem_.constraints()) {
    if (!c.multiplier()) continue;
    for (const auto& p : c.multiplier()->parameters()) {
      if (!held.count(p.unsafeGetTensorImpl())) {
        missing << (missing.tellp() > 0 ? ", " : "") << "'" << c.name() << "'";
        break;
      }
    }
  }
  const auto dual_set = impls_of(duals);
  size_t extra = 0;
  for (const auto* p : held) extra += dual_set.count(p) ? 0 : 1;
  TORCH_CHECK(missing.str().empty() && extra == 0,
              "ConstrainedOptimizer: the dual optimizer must hold exactly the problem's dual "
              "parameters (problem.dual_parameters(), ",
              duals.size(), " tensors); it holds ", held.size(), " tensors",
              (missing.str().empty() ? std::string() : ", missing those of " + missing.str()),
              (extra ? ", plus " + std::to_string(extra) + " that are not dual parameters"
                     : std::string()));
}

std::string StepEngine::dual_holders() const {
  std::ostringstream names;
  for (const auto& c : problem_.constraints()) {
    if (c.multiplier()) names << (names.tellp() > 0 ? ", " : "") << "'" << c.name() << "'";
  }
  return names.tellp() > 0 ? "the multipliers of " + names.str() : std::string("no multipliers");
}

}  // namespace detail
}  // namespace feasible
