// Problem and its constraints (include/feasible/problem.h).
#include "feasible/problem.h"

#include <atomic>
#include <cmath>
#include <sstream>

#include "feasible/multiplier.h"
#include "feasible/penalty.h"
#include "src/detail.h"
#include "src/validate.h"

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

// ---------------------------------------------------------------- ConstraintOptions

namespace {
using detail::Validator;

// kind, size, formulation and multiplier: the fields the others are checked against.
void validate_kinds(const ConstraintOptions& o, const Validator& check) {
  check.one_of("kind",
               o.kind() == ConstraintKind::kInequality || o.kind() == ConstraintKind::kEquality,
               "ConstraintKind::kInequality or kEquality", o.kind());
  check.at_least("size", o.size(), int64_t{1});
  check.require(o.formulation() != nullptr, "formulation", "not be null", "nullptr");
  const auto kind = o.multiplier();
  check.one_of("multiplier",
               kind == MultiplierKind::kDense || kind == MultiplierKind::kIndexed ||
                   kind == MultiplierKind::kImplicit,
               "MultiplierKind::kDense, kIndexed or kImplicit", kind);
}

// init and init_values: finite, and >= 0 for an inequality.
void validate_init(const ConstraintOptions& o, const Validator& check) {
  const bool inequality = o.kind() == ConstraintKind::kInequality;
  check.finite("init", o.init());
  check.require(!inequality || o.init() >= 0, "init",
                "be >= 0 for an inequality constraint (multipliers of inequalities are "
                "non-negative)",
                o.init());
  if (!o.init_values().defined()) return;
  const torch::Tensor& iv = o.init_values();
  if (!(iv.numel() == o.size() && iv.dim() <= 1)) {
    check.fail("init_values", c10::str("have shape [", o.size(), "] (the constraint's size)"),
               "shape ", iv.sizes());
  }
  const torch::Tensor d = iv.detach().to(torch::kCPU, torch::kFloat64).reshape({-1});
  const torch::Tensor bad = torch::nonzero(~torch::isfinite(d));
  if (bad.numel() != 0) {
    const int64_t i = bad[0][0].item<int64_t>();
    check.fail("init_values", "be finite", d[i].item<double>(), " at entry ", i);
  }
  check.require(!inequality || (d >= 0).all().item<bool>(), "init_values",
                "be >= 0 for an inequality constraint", "min ", d.min().item<double>());
}

// max_multiplier, lazy, sparse_gradient and implicit_model, against the multiplier kind.
void validate_multiplier(const ConstraintOptions& o, const Validator& check) {
  const bool implicit = o.multiplier() == MultiplierKind::kImplicit;
  const bool indexed = o.multiplier() == MultiplierKind::kIndexed;
  check.positive_or_unset("max_multiplier", o.max_multiplier());
  check.require(!o.max_multiplier() || !implicit, "max_multiplier",
                "be unset: it cannot bound an implicit multiplier (bound its model's output "
                "instead, e.g. with a scaled sigmoid)",
                o.max_multiplier() ? *o.max_multiplier() : 0.0);
  check.require(!o.lazy() || indexed, "lazy",
                "be false without an indexed multiplier (MultiplierKind::kIndexed)", "true");
  check.require(!o.sparse_gradient() || indexed, "sparse_gradient",
                "be false without an indexed multiplier (MultiplierKind::kIndexed)", "true");
  check.require(!(o.sparse_gradient() && o.lazy()), "sparse_gradient",
                "be false when lazy is true (sparse gradients are already lazy with optimizers "
                "that accept them)",
                "true");
  check.require(!implicit || !o.implicit_model().is_empty(), "implicit_model",
                "be set for MultiplierKind::kImplicit", "an empty model");
  check.require(implicit || o.implicit_model().is_empty(), "implicit_model",
                "be empty unless multiplier is MultiplierKind::kImplicit", "a model");
}

// penalty, penalty_per_entry and penalty_updater, against the formulation; the updater's
// options against the constraint.
void validate_penalty(const ConstraintOptions& o, const Validator& check,
                      const std::string& context) {
  const Formulation& f = *o.formulation();
  if (f.uses_penalty() && !(o.penalty() > 0 && std::isfinite(o.penalty()))) {
    check.fail("penalty", c10::str("be finite and > 0 for ", f.name()), o.penalty());
  }
  if (o.penalty_per_entry() && !f.uses_penalty()) {
    check.fail("penalty_per_entry",
               c10::str("be false with ", f.name(), " (it has no penalty coefficient)"), "true");
  }
  const auto& updater = o.penalty_updater();
  if (updater == nullptr) return;
  if (!f.allows_penalty_updater()) {
    check.fail("penalty_updater",
               c10::str("be null with ", f.name(),
                        f.uses_penalty() ? " (not allowed: its coefficient is fixed by definition)"
                                         : " (not allowed: it has no penalty coefficient)"),
               "an updater (", updater->name(), ")");
  }
  const PenaltyUpdaterOptions& u = updater->options();
  // Not "<field> must <rule>, got <value>": the rule relates two structs' fields.
  TORCH_CHECK(!u.max_value() || *u.max_value() >= o.penalty(), context, context.empty() ? "" : ": ",
              "PenaltyUpdaterOptions.max_value (", u.max_value() ? *u.max_value() : 0.0,
              ") must be >= ConstraintOptions.penalty (", o.penalty(),
              "), else the first update would shrink the coefficient");
  Validator("PenaltyUpdaterOptions", context)
      .require(!u.restart_on_feasible() || o.kind() == ConstraintKind::kInequality,
               "restart_on_feasible",
               "be false for an equality constraint (it restarts entries whose inequality holds)",
               "true");
}

// dtype and device.
void validate_placement(const ConstraintOptions& o, const Validator& check) {
  check.require(!o.dtype() || c10::isFloatingType(*o.dtype()), "dtype", "be a floating-point type",
                o.dtype() ? c10::toString(*o.dtype()) : "none");
  const bool cuda = torch::cuda::is_available();
  if (o.device().is_cuda() &&
      !(cuda && o.device().index() < static_cast<int64_t>(torch::cuda::device_count()))) {
    check.fail("device", "be an available device", o.device().str(),
               cuda ? "" : " (CUDA is not available)");
  }
}
}  // namespace

void ConstraintOptions::validate(const std::string& context) const {
  // Every field, in declaration order.
  const Validator check("ConstraintOptions", context);
  validate_kinds(*this, check);
  validate_init(*this, check);
  validate_multiplier(*this, check);
  validate_penalty(*this, check, context);
  validate_placement(*this, check);
  if (!formulation()->uses_multiplier() && multiplier() == MultiplierKind::kImplicit) {
    check.fail("multiplier",
               c10::str("not be MultiplierKind::kImplicit with ", formulation()->name(),
                        " (it has no multiplier)"),
               "kImplicit");
  }
}

// ---------------------------------------------------------------- problem

namespace {
// The multiplier of a constraint whose options are valid and whose formulation has one.
std::shared_ptr<Multiplier> make_multiplier(const ConstraintOptions& o,
                                            const torch::TensorOptions& topts,
                                            const std::string& where) {
  std::shared_ptr<Multiplier> m;
  if (o.multiplier() == MultiplierKind::kImplicit) {
    m = std::make_shared<ImplicitMultiplier>(o.kind(), o.size(), o.implicit_model());
  } else {
    torch::Tensor init;
    if (o.init_values().defined()) {
      init = o.init_values().detach().to(topts).reshape({-1});  // validated
      TORCH_CHECK(torch::isfinite(init).all().item<bool>(), where,
                  ": ConstraintOptions.init_values must be finite once stored as ",
                  c10::typeMetaToScalarType(topts.dtype()), " (it overflows)");
    } else {
      init = torch::full({o.size()}, o.init(), topts);
    }
    if (o.multiplier() == MultiplierKind::kIndexed) {
      m = std::make_shared<IndexedMultiplier>(o.kind(), o.size(), init, o.lazy(),
                                              o.sparse_gradient());
    } else {
      m = std::make_shared<DenseMultiplier>(o.kind(), o.size(), init);
    }
  }
  m->set_max_value(o.max_multiplier());
  return m;
}
}  // namespace

Constraint Problem::add_constraint(std::string name, ConstraintOptions options) {
  const std::string where = "Problem::add_constraint('" + name + "')";
  TORCH_CHECK(!name.empty(), "Problem::add_constraint: the name must not be empty");
  TORCH_CHECK(!has_constraint(name), where, ": a constraint named '", name,
              "' already exists; names must be unique");
  options.validate(where);

  auto impl = std::make_shared<detail::ConstraintImpl>();
  impl->name = name;
  impl->problem_id = impl_->id;
  impl->index = impl_->constraints.size();
  const auto dtype =
      options.dtype() ? *options.dtype() : c10::typeMetaToScalarType(torch::get_default_dtype());
  const auto topts = torch::TensorOptions().dtype(dtype).device(options.device());
  const auto& formulation = options.formulation();
  if (formulation->uses_multiplier()) impl->multiplier = make_multiplier(options, topts, where);
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
