// Problem and its constraints (include/feasible/problem.h).
#include "feasible/problem.h"

#include <atomic>
#include <cmath>
#include <sstream>

#include "feasible/multiplier.h"
#include "feasible/penalty.h"
#include "src/detail.h"

namespace feasible {

// ---------------------------------------------------------------- constraints

const detail::ConstraintImpl& Constraint::impl() const {
  TORCH_CHECK(impl_ != nullptr, "Constraint: the handle is empty (use Problem::add_constraint)");
  return *impl_;
}
const std::string& Constraint::name() const { return impl().name; }
const ConstraintOptions& Constraint::options() const { return impl().options; }
ConstraintKind Constraint::kind() const { return impl().options.kind(); }
int64_t Constraint::size() const { return impl().options.size(); }
size_t Constraint::index() const { return impl().index; }
const std::shared_ptr<Formulation>& Constraint::formulation() const {
  return impl().options.formulation();
}
const std::shared_ptr<Multiplier>& Constraint::multiplier() const { return impl().multiplier; }
const std::shared_ptr<PenaltyCoefficient>& Constraint::penalty() const { return impl().penalty; }
uint64_t Constraint::problem_id() const { return impl().problem_id; }

ProblemState& ProblemState::observe(const Constraint& constraint, ConstraintState state) {
  TORCH_CHECK(constraint.defined(), "ProblemState::observe: the constraint handle is empty");
  for (const auto& entry : observed) {
    TORCH_CHECK(entry.first != constraint, "ProblemState::observe: constraint '", constraint.name(),
                "' is observed twice in one state");
  }
  observed.emplace_back(constraint, std::move(state));
  return *this;
}

// ---------------------------------------------------------------- problem

namespace {
std::atomic<uint64_t> next_problem_id{1};
}

Problem::Problem() : impl_(std::make_shared<detail::ProblemImpl>()) {
  impl_->id = next_problem_id++;
}

uint64_t Problem::id() const { return impl_->id; }

Constraint Problem::add_constraint(std::string name, ConstraintOptions options) {
  const std::string where = "Problem::add_constraint('" + name + "')";
  TORCH_CHECK(!name.empty(), "Problem::add_constraint: the name must not be empty");
  TORCH_CHECK(!has_constraint(name), where, ": a constraint named '", name,
              "' already exists; names must be unique");
  // Every field, in declaration order; messages read "<Struct>.<field> must <rule>, got <value>".
  const bool inequality = options.kind() == ConstraintKind::kInequality;
  TORCH_CHECK(inequality || options.kind() == ConstraintKind::kEquality, where,
              ": ConstraintOptions.kind must be ConstraintKind::kInequality or kEquality, got ",
              static_cast<int>(options.kind()));
  TORCH_CHECK(options.size() >= 1, where, ": ConstraintOptions.size must be >= 1, got ",
              options.size());
  TORCH_CHECK(options.formulation() != nullptr, where,
              ": ConstraintOptions.formulation must not be null, got nullptr");
  const auto& formulation = options.formulation();
  const auto kind = options.multiplier();
  TORCH_CHECK(kind == MultiplierKind::kDense || kind == MultiplierKind::kIndexed ||
                  kind == MultiplierKind::kImplicit,
              where,
              ": ConstraintOptions.multiplier must be MultiplierKind::kDense, kIndexed or "
              "kImplicit, got ",
              static_cast<int>(kind));
  TORCH_CHECK(std::isfinite(options.init()), where, ": ConstraintOptions.init must be finite, got ",
              options.init());
  TORCH_CHECK(!inequality || options.init() >= 0, where,
              ": ConstraintOptions.init must be >= 0 for an inequality constraint "
              "(multipliers of inequalities are non-negative), got ",
              options.init());
  if (options.init_values().defined()) {
    const torch::Tensor& iv = options.init_values();
    TORCH_CHECK(iv.numel() == options.size() && iv.dim() <= 1, where,
                ": ConstraintOptions.init_values must have shape [", options.size(),
                "] (the constraint's size), got shape ", iv.sizes());
    const torch::Tensor d = iv.detach().to(torch::kCPU, torch::kFloat64).reshape({-1});
    const torch::Tensor bad = torch::nonzero(~torch::isfinite(d));
    TORCH_CHECK(bad.numel() == 0, where, ": ConstraintOptions.init_values must be finite, got ",
                bad.numel() ? d[bad[0][0].item<int64_t>()].item<double>() : 0.0, " at entry ",
                bad.numel() ? bad[0][0].item<int64_t>() : 0);
    TORCH_CHECK(!inequality || (d >= 0).all().item<bool>(), where,
                ": ConstraintOptions.init_values must be >= 0 for an inequality constraint, "
                "got min ",
                d.min().item<double>());
  }
  TORCH_CHECK(!options.max_multiplier() ||
                  (*options.max_multiplier() > 0 && std::isfinite(*options.max_multiplier())),
              where, ": ConstraintOptions.max_multiplier must be finite and > 0 (or unset), got ",
              options.max_multiplier() ? *options.max_multiplier() : 0.0);
  TORCH_CHECK(!options.max_multiplier() || options.multiplier() != MultiplierKind::kImplicit, where,
              ": ConstraintOptions.max_multiplier cannot bound an implicit multiplier (bound its "
              "model's output instead, e.g. with a scaled sigmoid): must be unset, got ",
              options.max_multiplier() ? *options.max_multiplier() : 0.0);
  TORCH_CHECK(!options.lazy() || options.multiplier() == MultiplierKind::kIndexed, where,
              ": ConstraintOptions.lazy must be false without an indexed multiplier "
              "(MultiplierKind::kIndexed), got true");
  TORCH_CHECK(!options.sparse_gradient() || options.multiplier() == MultiplierKind::kIndexed, where,
              ": ConstraintOptions.sparse_gradient must be false without an indexed multiplier "
              "(MultiplierKind::kIndexed), got true");
  TORCH_CHECK(!(options.sparse_gradient() && options.lazy()), where,
              ": ConstraintOptions.sparse_gradient and lazy cannot be combined (sparse "
              "gradients are already lazy with optimizers that accept them): sparse_gradient "
              "must be false when lazy is true, got true");
  TORCH_CHECK(
      options.multiplier() != MultiplierKind::kImplicit || !options.implicit_model().is_empty(),
      where,
      ": ConstraintOptions.implicit_model must be set for MultiplierKind::kImplicit, got an "
      "empty model");
  TORCH_CHECK(
      options.multiplier() == MultiplierKind::kImplicit || options.implicit_model().is_empty(),
      where,
      ": ConstraintOptions.implicit_model must be empty unless multiplier is "
      "MultiplierKind::kImplicit, got a model");
  TORCH_CHECK(
      !formulation->uses_penalty() || (options.penalty() > 0 && std::isfinite(options.penalty())),
      where, ": ConstraintOptions.penalty must be finite and > 0 for ", formulation->name(),
      ", got ", options.penalty());
  TORCH_CHECK(!options.penalty_per_entry() || formulation->uses_penalty(), where,
              ": ConstraintOptions.penalty_per_entry must be false with ", formulation->name(),
              " (it has no penalty coefficient), got true");
  TORCH_CHECK(
      options.penalty_updater() == nullptr || formulation->allows_penalty_updater(), where,
      ": ConstraintOptions.penalty_updater must be null with ", formulation->name(),
      (formulation->uses_penalty() ? " (not allowed: its coefficient is fixed by definition)"
                                   : " (not allowed: it has no penalty coefficient)"),
      ", got an updater (",
      options.penalty_updater() ? options.penalty_updater()->name() : std::string(), ")");
  TORCH_CHECK(!options.penalty_updater() || !options.penalty_updater()->options().max_value() ||
                  *options.penalty_updater()->options().max_value() >= options.penalty(),
              where, ": PenaltyUpdaterOptions.max_value (",
              options.penalty_updater() && options.penalty_updater()->options().max_value()
                  ? *options.penalty_updater()->options().max_value()
                  : 0.0,
              ") must be >= ConstraintOptions.penalty (", options.penalty(),
              "), else the first update would shrink the coefficient");
  TORCH_CHECK(!options.penalty_updater() ||
                  !options.penalty_updater()->options().restart_on_feasible() || inequality,
              where,
              ": PenaltyUpdaterOptions.restart_on_feasible must be false for an equality "
              "constraint (it restarts entries whose inequality holds), got true");
  TORCH_CHECK(!options.dtype() || c10::isFloatingType(*options.dtype()), where,
              ": ConstraintOptions.dtype must be a floating-point type, got ",
              options.dtype() ? c10::toString(*options.dtype()) : "none");
  TORCH_CHECK(!options.device().is_cuda() ||
                  (torch::cuda::is_available() &&
                   options.device().index() < static_cast<int64_t>(torch::cuda::device_count())),
              where, ": ConstraintOptions.device must be an available device, got ",
              options.device().str(),
              torch::cuda::is_available() ? "" : " (CUDA is not available)");

  auto impl = std::make_shared<detail::ConstraintImpl>();
  impl->name = name;
  impl->problem_id = impl_->id;
  impl->index = impl_->constraints.size();
  const auto dtype =
      options.dtype() ? *options.dtype() : c10::typeMetaToScalarType(torch::get_default_dtype());
  const auto topts = torch::TensorOptions().dtype(dtype).device(options.device());

  if (formulation->uses_multiplier()) {
    std::shared_ptr<Multiplier> m;
    if (options.multiplier() == MultiplierKind::kImplicit) {
      m = std::make_shared<ImplicitMultiplier>(options.kind(), options.size(),
                                               options.implicit_model());
    } else {
      torch::Tensor init;
      if (options.init_values().defined()) {
        init = options.init_values().detach().to(topts).reshape({-1});  // validated above
        TORCH_CHECK(torch::isfinite(init).all().item<bool>(), where,
                    ": ConstraintOptions.init_values must be finite once stored as ", dtype,
                    " (it overflows)");
      } else {
        init = torch::full({options.size()}, options.init(), topts);
      }
      if (options.multiplier() == MultiplierKind::kIndexed) {
        m = std::make_shared<IndexedMultiplier>(options.kind(), options.size(), init,
                                                options.lazy(), options.sparse_gradient());
      } else {
        m = std::make_shared<DenseMultiplier>(options.kind(), options.size(), init);
      }
    }
    m->set_max_value(options.max_multiplier());
    impl->multiplier = m;
  } else {
    TORCH_CHECK(options.multiplier() != MultiplierKind::kImplicit, where,
                ": MultiplierKind::kImplicit needs a formulation with a multiplier, but ",
                formulation->name(), " has none");
  }
  if (formulation->uses_penalty()) {
    impl->penalty = std::make_shared<PenaltyCoefficient>(options.penalty(), options.size(),
                                                         options.penalty_per_entry(), topts);
  }
  impl->options = std::move(options);
  Constraint constraint(impl);
  impl_->constraints.push_back(constraint);
  return constraint;
}

const std::vector<Constraint>& Problem::constraints() const { return impl_->constraints; }

bool Problem::has_constraint(const std::string& name) const {
  for (const auto& c : impl_->constraints) {
    if (c.name() == name) return true;
  }
  return false;
}

Constraint Problem::constraint(const std::string& name) const {
  std::ostringstream names;
  for (const auto& c : impl_->constraints) {
    if (c.name() == name) return c;
    names << (names.tellp() > 0 ? ", " : "") << "'" << c.name() << "'";
  }
  TORCH_CHECK(false, "Problem::constraint: no constraint named '", name,
              "' (registered: ", names.str().empty() ? std::string("none") : names.str(), ")");
}

std::vector<std::shared_ptr<Multiplier>> Problem::multipliers() const {
  std::vector<std::shared_ptr<Multiplier>> out;
  for (const auto& c : impl_->constraints) {
    if (c.multiplier()) out.push_back(c.multiplier());
  }
  return out;
}

std::vector<torch::Tensor> Problem::dual_parameters() const {
  std::vector<torch::Tensor> out;
  for (const auto& m : multipliers()) {
    for (const auto& p : m->parameters()) out.push_back(p);
  }
  return out;
}

std::vector<torch::Tensor> Problem::dual_parameters(const std::string& name) const {
  const auto& m = constraint(name).multiplier();
  return m ? m->parameters() : std::vector<torch::Tensor>{};
}

torch::Tensor Problem::multiplier_values(const std::string& name) const {
  const auto c = constraint(name);
  TORCH_CHECK(c.multiplier() != nullptr, "Problem::multiplier_values: constraint '", name,
              "' uses ", c.formulation()->name(), ", which has no multiplier");
  return c.multiplier()->values();
}

namespace {
// The name of a handle that must belong to `problem` (for the getters that take handles).
const std::string& own_name(const Constraint& c, uint64_t problem, const char* where) {
  TORCH_CHECK(c.defined(), "Problem::", where, ": the constraint handle is empty");
  TORCH_CHECK(c.problem_id() == problem, "Problem::", where, ": constraint '", c.name(),
              "' belongs to another problem");
  return c.name();
}
}  // namespace

torch::Tensor Problem::multiplier_values(const Constraint& constraint) const {
  return multiplier_values(own_name(constraint, impl_->id, "multiplier_values"));
}

torch::Tensor Problem::penalty_values(const Constraint& constraint) const {
  return penalty_values(own_name(constraint, impl_->id, "penalty_values"));
}

torch::Tensor Problem::penalty_values(const std::string& name) const {
  const auto c = constraint(name);
  TORCH_CHECK(c.penalty() != nullptr, "Problem::penalty_values: constraint '", name, "' uses ",
              c.formulation()->name(), ", which has no penalty coefficient");
  return c.penalty()->value().detach();
}

}  // namespace feasible
