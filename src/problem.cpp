// Problem, constraints, multipliers and penalty coefficients.
#include "feasible/problem.h"

#include <atomic>
#include <limits>
#include <sstream>

#include "feasible/multiplier.h"
#include "feasible/penalty.h"
#include "src/detail.h"

namespace feasible {

// ---------------------------------------------------------------- multipliers

Multiplier::Multiplier(ConstraintKind kind, int64_t size) : kind_(kind), size_(size) {
  TORCH_CHECK(size >= 1, "Multiplier: size must be >= 1, got ", size);
}

void Multiplier::write_ascent(const torch::Tensor&, const torch::Tensor&) {
  TORCH_CHECK(false, "Multiplier::write_ascent is not supported by this multiplier");
}

void Multiplier::clear_gradient() {
  for (auto& p : parameters()) {
    if (p.grad().defined()) p.mutable_grad() = torch::Tensor();
  }
}

void Multiplier::set_max_value(c10::optional<double> max_value) {
  TORCH_CHECK(!max_value || (*max_value > 0 && std::isfinite(*max_value)),
              "Multiplier.max_value must be finite and > 0 (or unset), got ",
              max_value ? *max_value : 0.0);
  max_value_ = max_value;
}

void Multiplier::project() {
  torch::NoGradGuard no_grad;
  for (auto& p : parameters()) {
    if (kind_ == ConstraintKind::kInequality) {
      if (max_value_) {
        p.clamp_(0.0, *max_value_);
      } else {
        p.clamp_min_(0.0);
      }
    } else if (max_value_) {
      p.clamp_(-*max_value_, *max_value_);
    }
  }
}

DenseMultiplier::DenseMultiplier(ConstraintKind kind, int64_t size, torch::Tensor init)
    : Multiplier(kind, size) {
  TORCH_CHECK(init.defined() && init.is_floating_point(),
              "DenseMultiplier: init must be a floating-point tensor");
  torch::Tensor value = init.detach().clone().reshape({-1});
  if (value.numel() == 1 && size != 1) value = value.expand({size}).clone();
  TORCH_CHECK(value.numel() == size, "DenseMultiplier: init has ", value.numel(),
              " entries, expected ", size);
  value_ = register_parameter("value", value.contiguous());
}

torch::Tensor DenseMultiplier::evaluate(const torch::Tensor&, const torch::Tensor&) {
  return value_.detach();
}

void DenseMultiplier::write_ascent(const torch::Tensor&, const torch::Tensor& ascent) {
  // The gradient is the negated ascent direction; each conversion only when needed.
  torch::Tensor a = ascent.detach();
  if (a.scalar_type() != value_.scalar_type() || a.device() != value_.device()) {
    a = a.to(value_.options());
  }
  if (a.dim() != 1) a = a.reshape({-1});
  auto& grad = value_.mutable_grad();
  if (grad.defined()) {
    grad.sub_(a);
  } else {
    grad = a.neg();
  }
}

IndexedMultiplier::IndexedMultiplier(ConstraintKind kind, int64_t size, torch::Tensor init,
                                     bool lazy, bool sparse_gradient)
    : DenseMultiplier(kind, size, std::move(init)), lazy_(lazy), sparse_(sparse_gradient) {}

torch::Tensor IndexedMultiplier::evaluate(const torch::Tensor& indices, const torch::Tensor&) {
  return value_.detach().index_select(0, indices);
}

void DenseMultiplier::clear_gradient() {
  if (value_.grad().defined()) value_.mutable_grad() = torch::Tensor();
}

void DenseMultiplier::project() {
  torch::NoGradGuard no_grad;
  if (kind_ == ConstraintKind::kInequality) {
    if (max_value_) {
      value_.clamp_(0.0, *max_value_);
    } else {
      value_.clamp_min_(0.0);
    }
  } else if (max_value_) {
    value_.clamp_(-*max_value_, *max_value_);
  }
}

void IndexedMultiplier::write_ascent(const torch::Tensor& indices, const torch::Tensor& ascent) {
  torch::Tensor g = -ascent.detach().to(value_.options()).reshape({-1});
  auto& grad = value_.mutable_grad();
  if (sparse_) {
    torch::Tensor sg = torch::sparse_coo_tensor(indices.reshape({1, -1}), g, {size_});
    grad = grad.defined() ? (grad + sg).coalesce() : sg.coalesce();
  } else {
    if (!buffer_.defined()) buffer_ = torch::zeros_like(value_);
    grad = buffer_;
    grad.index_add_(0, indices, g);
  }
  observed_ = observed_.defined() ? torch::cat({observed_, indices}) : indices;
}

void IndexedMultiplier::clear_gradient() {
  // Zero only the rows written in the previous step, so the cost does not grow with size();
  // the gradient itself becomes undefined, so an unobserved constraint does not move at all.
  if (buffer_.defined() && observed_.defined()) buffer_.index_fill_(0, observed_, 0.0);
  value_.mutable_grad() = torch::Tensor();
  observed_ = torch::Tensor();
}

void IndexedMultiplier::project() {
  if (!(lazy_ || sparse_)) {
    DenseMultiplier::project();
    return;
  }
  if (!observed_.defined()) return;  // unobserved: the optimizer skipped it
  if (kind_ == ConstraintKind::kEquality && !max_value_) return;
  torch::NoGradGuard no_grad;
  torch::Tensor rows = value_.index_select(0, observed_);
  const double lo = kind_ == ConstraintKind::kInequality ? 0.0 : -*max_value_;
  rows = max_value_ ? rows.clamp(lo, *max_value_) : rows.clamp_min(lo);
  value_.index_copy_(0, observed_, rows);
}

void IndexedMultiplier::before_dual_step() {
  if (!lazy_ || !observed_.defined()) return;
  if (!backup_.defined()) backup_ = torch::empty_like(value_);
  backup_.copy_(value_.detach());
}

void IndexedMultiplier::after_dual_step() {
  if (!lazy_ || !observed_.defined()) return;
  torch::NoGradGuard no_grad;
  // Duplicate indices copy identical rows, so index_copy_ is well defined here.
  torch::Tensor moved = value_.index_select(0, observed_);
  value_.copy_(backup_);
  value_.index_copy_(0, observed_, moved);
}

ImplicitMultiplier::ImplicitMultiplier(ConstraintKind kind, int64_t size,
                                       torch::nn::AnyModule model)
    : Multiplier(kind, size), model_(std::move(model)) {
  TORCH_CHECK(!model_.is_empty(), "ImplicitMultiplier: the model is empty");
  register_module("model", model_.ptr());
}

torch::Tensor ImplicitMultiplier::evaluate(const torch::Tensor&, const torch::Tensor& features) {
  torch::Tensor out = model_.forward(features).reshape({-1});
  if (kind_ == ConstraintKind::kInequality) {
    TORCH_CHECK((out.detach() >= 0).all().item<bool>(),
                "ImplicitMultiplier: the model returned a negative multiplier for an inequality "
                "constraint (min ",
                out.detach().min().item<double>(),
                "); make its output non-negative, e.g. with softplus");
  }
  return out;
}

// ---------------------------------------------------------------- penalties

PenaltyCoefficient::PenaltyCoefficient(double init, int64_t size, bool per_entry,
                                       torch::TensorOptions options)
    : init_(init), per_entry_(per_entry) {
  TORCH_CHECK(init > 0 && std::isfinite(init),
              "PenaltyCoefficient.init must be finite and > 0, got ", init);
  value_ = per_entry ? torch::full({size}, init, options) : torch::full({}, init, options);
  TORCH_CHECK((value_ > 0).all().item<bool>(),
              "PenaltyCoefficient.init must be > 0 once stored as ", value_.scalar_type(),
              " (it underflows to 0), got ", init);
}

torch::Tensor PenaltyCoefficient::observed(const torch::Tensor& indices) const {
  if (!per_entry_ || !indices.defined()) return value_;
  return value_.index_select(0, indices);
}

void PenaltyCoefficient::set_value(const torch::Tensor& value) {
  TORCH_CHECK(value.sizes() == value_.sizes(), "PenaltyCoefficient::set_value: shape ",
              value.sizes(), " does not match ", value_.sizes());
  TORCH_CHECK((value > 0).all().item<bool>(),
              "PenaltyCoefficient::set_value: every value must be > 0");
  value_.copy_(value);
}

PenaltyUpdater::PenaltyUpdater(PenaltyUpdaterOptions options) : options_(options) {
  TORCH_CHECK(options.tolerance() >= 0 && std::isfinite(options.tolerance()),
              "PenaltyUpdaterOptions.tolerance must be finite and >= 0, got ", options.tolerance());
  TORCH_CHECK(
      !options.max_value() || (*options.max_value() > 0 && std::isfinite(*options.max_value())),
      "PenaltyUpdaterOptions.max_value must be finite and > 0 (or unset), got ",
      options.max_value() ? *options.max_value() : 0.0);
}

namespace {
double largest_finite(torch::ScalarType type) {
  switch (type) {
    case torch::kFloat:
      return std::numeric_limits<float>::max();
    case torch::kHalf:
      return 65504.0;
    case torch::kBFloat16:
      return 3.3895313892515355e38;
    default:
      return std::numeric_limits<double>::max();
  }
}
}  // namespace

bool PenaltyUpdater::update(PenaltyCoefficient& penalty, const torch::Tensor& strict,
                            const torch::Tensor& indices, ConstraintKind kind) const {
  torch::NoGradGuard no_grad;
  if (strict.numel() == 0) return false;  // nothing observed: nothing to grow or restart
  torch::Tensor s = strict.detach().reshape({-1}).to(penalty.value().options());
  torch::Tensor magnitude = kind == ConstraintKind::kInequality ? s.clamp_min(0.0) : s.abs();
  torch::Tensor violated = magnitude > options_.tolerance();
  torch::Tensor satisfied =
      kind == ConstraintKind::kInequality ? (s <= 0) : torch::zeros_like(violated);
  torch::Tensor c = penalty.observed(indices);
  torch::Tensor next;
  if (!penalty.per_entry()) {
    violated = violated.any();
    satisfied = options_.restart_on_feasible() ? satisfied.all() : torch::zeros_like(violated);
  } else if (!options_.restart_on_feasible()) {
    satisfied = torch::zeros_like(violated);
  }
  // Growth stops at the largest finite value of the dtype: c never becomes Inf.
  torch::Tensor grown = grow(c).clamp_max(largest_finite(c.scalar_type()));
  bool capped = false;
  if (options_.max_value()) {
    capped = ((grown > *options_.max_value()) & violated).any().item<bool>();
    grown = grown.clamp_max(*options_.max_value());
  }
  next = torch::where(violated, grown, c);
  next = torch::where(satisfied & ~violated, torch::full_like(c, penalty.init()), next);
  if (!penalty.per_entry() || !indices.defined()) {
    penalty.mutable_value().copy_(next);
  } else {
    penalty.mutable_value().index_copy_(0, indices, next);
  }
  return capped;
}

MultiplicativePenaltyUpdater::MultiplicativePenaltyUpdater(double growth,
                                                           PenaltyUpdaterOptions options)
    : PenaltyUpdater(options), growth_(growth) {
  TORCH_CHECK(growth > 1 && std::isfinite(growth),
              "MultiplicativePenaltyUpdater.growth must be finite and > 1, got ", growth);
}

torch::Tensor MultiplicativePenaltyUpdater::grow(const torch::Tensor& c) const {
  return c * growth_;
}

AdditivePenaltyUpdater::AdditivePenaltyUpdater(double increment, PenaltyUpdaterOptions options)
    : PenaltyUpdater(options), increment_(increment) {
  TORCH_CHECK(increment > 0 && std::isfinite(increment),
              "AdditivePenaltyUpdater.increment must be finite and > 0, got ", increment);
}

torch::Tensor AdditivePenaltyUpdater::grow(const torch::Tensor& c) const { return c + increment_; }

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
