// The constrained optimizers: validation of the closure's output, the non-finite policy (checks,
// and the copies that let a skipped step restore everything) and the five schemes.
#include <algorithm>
#include <cstring>
#include <limits>
#include <sstream>
#include <type_traits>
#include <unordered_set>

#include "feasible/optim/extra.h"
#include "feasible/optim/nupi.h"
#include "feasible/optimizer.h"
#include "src/optimizer_traits.h"
#include "src/state_key.h"

namespace feasible {

struct ConstrainedOptimizer::Evaluation {
  struct Item {
    Constraint constraint;
    const ConstraintState* state = nullptr;
    torch::Tensor v;              // [n], differentiable
    torch::Tensor s;              // [m], detached
    bool strict_is_copy = false;  // s is the violation (no strict violation given)
    torch::Tensor idx;            // [n] int64, undefined for dense
    torch::Tensor sidx;           // [m] int64, undefined for dense
    torch::Tensor features;       // implicit multipliers (detached)
    torch::Tensor lambda;         // multiplier values used in the primal term
    torch::Tensor penalty;        // penalty used in the primal term
    bool penalty_capped = false;
  };
  ProblemState state;
  std::vector<Item> items;
  torch::Tensor lagrangian;
};

// Copies of what a half-step changes, taken only under NonFinitePolicy::kSkipStep.
struct ConstrainedOptimizer::Snapshot {
  struct Copy {
    torch::Tensor target;  // the live tensor
    torch::Tensor rows;    // the copied rows (undefined: the whole tensor)
    torch::Tensor values;  // their values
  };
  struct State {
    torch::optim::Optimizer* optimizer = nullptr;
    std::decay_t<decltype(std::declval<torch::optim::Optimizer&>().state())>::key_type key;
    std::unique_ptr<torch::optim::OptimizerParamState> state;  // null: there was none
    std::vector<Copy> rows;  // rows of the state's tensors (when `state` shares them)
  };
  std::vector<Copy> tensors;
  std::vector<State> states;

  void tensor(const torch::Tensor& t) {
    tensors.push_back({t, torch::Tensor(), t.detach().clone()});
  }
  void rows(const torch::Tensor& t, const torch::Tensor& idx) {
    tensors.push_back({t, idx, t.detach().index_select(0, idx)});
  }
  // The state of the parameters of `opt` that have a gradient (`all`: of every parameter).
  void optimizer(torch::optim::Optimizer& opt, bool all);
  // Puts everything back (newest copy first, so the oldest wins); then forgets it.
  void restore();
};

namespace {

std::string shape_of(const torch::Tensor& t) {
  std::ostringstream os;
  os << t.sizes();
  return os.str();
}

bool is_indexed(const Constraint& c) {
  return c.options().multiplier() == MultiplierKind::kIndexed;
}

// Whether n IEEE-754 values are all finite: a value is NaN or Inf exactly when all its exponent
// bits are set. The test is an integer OR-reduction over blocks, which the compiler vectorizes
// (no tensor operation, no dispatch, no allocation), with an early exit between blocks.
template <typename Bits, Bits kExponent, typename T>
bool finite_bits(const T* p, int64_t n) {
  static_assert(sizeof(Bits) == sizeof(T), "bit pattern of the wrong width");
  constexpr int64_t kBlock = 4096;
  for (int64_t start = 0; start < n; start += kBlock) {
    const int64_t end = std::min(n, start + kBlock);
    Bits bad = 0;
    for (int64_t i = start; i < end; ++i) {
      Bits b;
      std::memcpy(&b, p + i, sizeof(Bits));
      bad |= static_cast<Bits>((b & kExponent) == kExponent);
    }
    if (bad != 0) return false;
  }
  return true;
}

// Whether every entry of a CPU tensor is finite (read-only host scan).
bool all_finite_cpu(const torch::Tensor& t) {
  const torch::Tensor c = t.contiguous();
  const int64_t n = c.numel();
  if (n == 0) return true;
  switch (c.scalar_type()) {
    case torch::kFloat:
      return finite_bits<uint32_t, 0x7f800000u>(c.data_ptr<float>(), n);
    case torch::kDouble:
      return finite_bits<uint64_t, 0x7ff0000000000000ull>(c.data_ptr<double>(), n);
    case torch::kHalf:
    case torch::kBFloat16: {
      bool ok = true;
      AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, c.scalar_type(), "finite", [&] {
        const scalar_t* p = c.data_ptr<scalar_t>();
        for (int64_t i = 0; i < n && ok; ++i) ok = std::isfinite(static_cast<double>(p[i]));
      });
      return ok;
    }
    default:
      return !c.is_floating_point() && !c.is_complex() ? true
                                                       : torch::isfinite(c).all().item<bool>();
  }
}

// The position of the first tensor that has a NaN or Inf entry, or -1. CPU tensors are scanned
// on the host; the others are reduced on their device and read back together, with one
// synchronization when they share a device (the slow search for the culprit runs only on
// failure).
int64_t first_non_finite(const std::vector<torch::Tensor>& tensors) {
  int64_t first = -1;
  std::vector<torch::Tensor> flags;
  std::vector<int64_t> where;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const torch::Tensor& t = tensors[i];
    if (t.device().is_cpu()) {
      if (!all_finite_cpu(t)) {
        first = static_cast<int64_t>(i);
        break;
      }
    } else {
      flags.push_back(torch::isfinite(t).all());
      where.push_back(static_cast<int64_t>(i));
    }
  }
  if (flags.empty()) return first;
  bool same_device = true;
  for (const auto& f : flags) same_device = same_device && f.device() == flags[0].device();
  if (same_device && torch::stack(flags).all().item<bool>()) return first;
  for (size_t k = 0; k < flags.size(); ++k) {
    if (first >= 0 && where[k] > first) break;
    if (!flags[k].item<bool>()) return where[k];
  }
  return first;
}

using detail::key_of;

// The smallest and largest index (host loop on the CPU, one reduction elsewhere).
std::pair<int64_t, int64_t> index_range(const torch::Tensor& idx) {
  if (!idx.device().is_cpu()) {
    auto mm = torch::aminmax(idx);
    auto both = torch::stack({std::get<0>(mm), std::get<1>(mm)}).cpu();
    return {both[0].item<int64_t>(), both[1].item<int64_t>()};
  }
  const torch::Tensor c = idx.contiguous();
  const int64_t* p = c.data_ptr<int64_t>();
  int64_t lo = p[0], hi = p[0];
  for (int64_t i = 1, n = c.numel(); i < n; ++i) {
    lo = std::min(lo, p[i]);
    hi = std::max(hi, p[i]);
  }
  return {lo, hi};
}

// Checks an index tensor of an indexed constraint; returns it as int64 (other integer types,
// e.g. int32, are converted).
torch::Tensor checked_indices(const torch::Tensor& given, const Constraint& c, const char* field) {
  const auto type = given.scalar_type();
  TORCH_CHECK(c10::isIntegralType(type, /*includeBool=*/false), "constraint '", c.name(),
              "': ", field,
              " must be an integer tensor (int64; int32 and other integer types are "
              "converted), got dtype ",
              type);
  const torch::Tensor idx = type == torch::kLong ? given : given.to(torch::kLong);
  TORCH_CHECK(idx.dim() == 1, "constraint '", c.name(), "': ", field, " must be 1-D, got shape ",
              shape_of(idx));
  if (idx.numel() > 0) {
    const auto range = index_range(idx);
    const int64_t lo = range.first;
    const int64_t hi = range.second;
    TORCH_CHECK(lo >= 0 && hi < c.size(), "constraint '", c.name(), "': ", field,
                " must lie in [0, ", c.size(), "), got values in [", lo, ", ", hi, "]");
  }
  return idx;
}

// Precision rank of a floating dtype: a multiplier must rank at least as high as the strict
// violations it integrates.
int precision_rank(torch::ScalarType t) {
  switch (t) {
    case torch::kDouble:
      return 3;
    case torch::kFloat:
      return 2;
    default:
      return 1;  // half, bfloat16
  }
}

// Brings a dense violation to shape [size], or explains the mismatch.
torch::Tensor dense_shape(const torch::Tensor& t, const Constraint& c, const char* field) {
  const bool ok = (t.dim() == 1 && t.size(0) == c.size()) || (t.dim() == 0 && c.size() == 1);
  TORCH_CHECK(ok, "constraint '", c.name(), "': ", field, " has shape ", shape_of(t),
              ", expected [", c.size(), "] (the constraint's size)");
  return t.dim() == 1 ? t : t.reshape({c.size()});
}

// Refuses an observation that would make the step silently wrong: a violation that cannot move
// the primal parameters (`grad_expected`: autograd is on and a primal parameter requires a
// gradient), and a dense or indexed multiplier less precise than the strict violation it reads.
void check_usable(const Constraint& c, const ConstraintState& cs, const torch::Tensor& s,
                  bool grad_expected, c10::optional<torch::ScalarType> multiplier_dtype) {
  TORCH_CHECK(!grad_expected || !cs.contributes_to_primal() || cs.violation().requires_grad(),
              "constraint '", c.name(),
              "': the violation does not require a gradient, so it cannot move the primal "
              "parameters while its multiplier keeps growing. Put a non-differentiable quantity "
              "(e.g. a 0-1 rate) in ConstraintState::strict_violation and a differentiable "
              "surrogate in violation (proxy constraints), or set contributes_to_primal(false) "
              "to update only the multiplier from this observation");
  if (!multiplier_dtype || !cs.contributes_to_dual()) return;
  TORCH_CHECK(precision_rank(*multiplier_dtype) >= precision_rank(s.scalar_type()), "constraint '",
              c.name(), "': the strict violation is ", s.scalar_type(), " but the multiplier is ",
              *multiplier_dtype,
              ", which would lose precision in every dual step; register the constraint with "
              "ConstraintOptions().dtype(",
              s.scalar_type() == torch::kDouble ? "torch::kFloat64" : "torch::kFloat32",
              ") (the default is torch's default dtype when the constraint is registered)");
}

}  // namespace

// ------------------------------------------------------------------ Snapshot

void ConstrainedOptimizer::Snapshot::optimizer(torch::optim::Optimizer& opt, bool all) {
  auto& map = opt.state();
  for (auto& group : opt.param_groups()) {
    for (auto& p : group.params()) {
      const torch::Tensor& g = p.grad();
      if (!all && !g.defined()) continue;  // optimizers leave such parameters alone
      State s;
      s.optimizer = &opt;
      s.key = key_of(p);
      auto it = map.find(s.key);
      if (it != map.end()) {
        auto* nupi = dynamic_cast<optim::NuPIParamState*>(it->second.get());
        if (!all && nupi != nullptr && g.is_sparse()) {
          // NuPI's sparse update changes only the listed rows of its memory and seen mask (and
          // the step count): copy those rows, O(batch) instead of O(size).
          torch::Tensor idx = g._indices().reshape({-1});
          s.state = it->second->clone();  // shares xi and seen; keeps the step count
          s.rows.push_back({nupi->xi(), idx, nupi->xi().index_select(0, idx)});
          s.rows.push_back({nupi->seen(), idx, nupi->seen().index_select(0, idx)});
        } else {
          s.state = detail::deep_copy_state(*it->second);
        }
      }
      states.push_back(std::move(s));
    }
  }
}

void ConstrainedOptimizer::Snapshot::restore() {
  torch::NoGradGuard no_grad;
  for (auto it = tensors.rbegin(); it != tensors.rend(); ++it) {
    torch::Tensor target = it->target.detach();
    if (it->rows.defined()) {
      target.index_copy_(0, it->rows, it->values);
    } else {
      target.copy_(it->values);
    }
  }
  for (auto it = states.rbegin(); it != states.rend(); ++it) {
    auto& map = it->optimizer->state();
    if (!it->state) {
      map.erase(it->key);
      continue;
    }
    map[it->key] = std::move(it->state);
    for (auto& r : it->rows) r.target.index_copy_(0, r.rows, r.values);
  }
  tensors.clear();
  states.clear();
}

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

// ------------------------------------------------------------------ base

ConstrainedOptimizer::ConstrainedOptimizer(
    Problem problem, std::vector<std::shared_ptr<torch::optim::Optimizer>> primal,
    std::shared_ptr<torch::optim::Optimizer> dual, ConstrainedOptimizerOptions options)
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
  for (const auto& opt : primal_) {
    if (!opt) continue;
    for (const auto& g : opt->param_groups()) {
      for (const auto& p : g.params()) {
        if (p.has_storage()) parameter_storages_.insert(p.storage().unsafeGetStorageImpl());
      }
    }
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
      for (const auto& p : g.params())
        primal_requires_grad_ = primal_requires_grad_ || p.requires_grad();
    }
  }
  if (dual_) check_learning_rates(*dual_, "the dual optimizer (" + dual_holders() + ")");
  std::unordered_set<const void*> dual_set;
  for (const auto& p : duals) dual_set.insert(p.unsafeGetTensorImpl());

  // No parameter may be both primal and dual.
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
  if (!dual_) {
    std::ostringstream names;
    for (const auto& c : problem_.constraints()) {
      if (c.multiplier()) names << (names.tellp() > 0 ? ", " : "") << "'" << c.name() << "'";
    }
    TORCH_CHECK(duals.empty(), "ConstrainedOptimizer: constraints ", names.str(),
                " have multipliers, but no dual optimizer was given");
    return;
  }
  // The dual optimizer must hold exactly the problem's dual parameters.
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
  projections_.emplace_back(std::move(params), std::move(projection));
}

std::string ConstrainedOptimizer::dual_holders() const {
  std::ostringstream names;
  for (const auto& c : problem_.constraints()) {
    if (c.multiplier()) names << (names.tellp() > 0 ? ", " : "") << "'" << c.name() << "'";
  }
  return names.tellp() > 0 ? "the multipliers of " + names.str() : std::string("no multipliers");
}

void ConstrainedOptimizer::check_learning_rates(torch::optim::Optimizer& opt,
                                                const std::string& who) {
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

StepResult ConstrainedOptimizer::start_result() const {
  StepResult r;
  r.iteration = iteration_;
  r.problem_id = problem_.id();
  for (const auto& c : problem_.constraints()) {
    ConstraintResult cr;
    cr.name = c.name();
    cr.kind = c.kind();
    cr.occasional = c.options().occasional();
    r.constraints.push_back(std::move(cr));
  }
  return r;
}

bool ConstrainedOptimizer::evaluate(const Closure& closure, Evaluation& eval, StepResult& result,
                                    const char* stage, const char* taken) {
  TORCH_CHECK(problem_.constraints().size() == constraint_count_,
              "ConstrainedOptimizer::step: constraints were added to the problem after the "
              "optimizer was built (",
              constraint_count_, " then, ", problem_.constraints().size(),
              " now); build the dual optimizer and the constrained optimizer after registering "
              "every constraint");
  eval.state = closure();
  const auto& loss = eval.state.loss;
  {
    TORCH_CHECK(loss.defined(), "ConstrainedOptimizer::step: the closure returned no loss");
    TORCH_CHECK(loss.is_floating_point(),
                "ConstrainedOptimizer::step: the loss must be a floating-point tensor, got dtype ",
                loss.scalar_type());
    TORCH_CHECK(loss.numel() == 1,
                "ConstrainedOptimizer::step: the loss must be a scalar (one element), got shape ",
                shape_of(loss));
  }
  // The strict violation defaults to the violation itself; it is copied only when it shares
  // storage with a parameter that the step changes in place (e.g. a violation that is a view
  // of x), so that the dual step and the penalty updater read the values at x_t.
  auto detached_copy_if_alias = [this](const torch::Tensor& v) {
    torch::Tensor d = v.detach();
    if (d.has_storage() && parameter_storages_.count(d.storage().unsafeGetStorageImpl())) {
      return d.clone();
    }
    return d;
  };
  eval.items.clear();
  const bool grad_expected = primal_requires_grad_ && at::GradMode::is_enabled();
  for (const auto& entry : eval.state.observed) {
    const Constraint& c = entry.first;
    const ConstraintState& cs = entry.second;
    TORCH_CHECK(c.defined(), "ConstrainedOptimizer::step: an observed constraint handle is empty");
    TORCH_CHECK(c.problem_id() == problem_.id(), "ConstrainedOptimizer::step: constraint '",
                c.name(), "' belongs to another problem");
    Evaluation::Item item;
    item.constraint = c;
    item.state = &cs;
    const auto& v = cs.violation();
    TORCH_CHECK(v.defined(), "constraint '", c.name(), "': the violation is undefined");
    TORCH_CHECK(v.is_floating_point(), "constraint '", c.name(),
                "': the violation must be a floating-point tensor, got dtype ", v.scalar_type());
    const auto& s_in = cs.strict_violation();
    if (s_in.defined()) {
      TORCH_CHECK(s_in.is_floating_point(), "constraint '", c.name(),
                  "': the strict violation must be a floating-point tensor, got dtype ",
                  s_in.scalar_type());
    }
    const bool implicit = c.options().multiplier() == MultiplierKind::kImplicit;
    if (is_indexed(c)) {
      TORCH_CHECK(cs.indices().defined(), "constraint '", c.name(),
                  "': indices are required for an indexed constraint");
      item.idx = checked_indices(cs.indices(), c, "indices");
      TORCH_CHECK(v.dim() == 1 && v.size(0) == item.idx.size(0), "constraint '", c.name(),
                  "': violation has shape ", shape_of(v), ", expected [", item.idx.size(0),
                  "] (one entry per index)");
      item.v = v;
      item.sidx = cs.strict_indices().defined()
                      ? checked_indices(cs.strict_indices(), c, "strict_indices")
                      : item.idx;
      if (s_in.defined()) {
        TORCH_CHECK(s_in.dim() == 1 && s_in.size(0) == item.sidx.size(0), "constraint '", c.name(),
                    "': strict violation has shape ", shape_of(s_in), ", expected [",
                    item.sidx.size(0), "] (one entry per strict index)");
        item.s = detached_copy_if_alias(s_in);
      } else {
        TORCH_CHECK(!cs.strict_indices().defined(), "constraint '", c.name(),
                    "': strict_indices given without a strict violation");
        item.s = detached_copy_if_alias(v);
        item.strict_is_copy = true;
      }
    } else if (implicit) {
      TORCH_CHECK(cs.features().defined(), "constraint '", c.name(),
                  "': features are required for an implicit multiplier");
      TORCH_CHECK(v.dim() == 1 && v.size(0) == cs.features().size(0), "constraint '", c.name(),
                  "': violation has shape ", shape_of(v), ", expected [", cs.features().size(0),
                  "] (one entry per row of features)");
      item.v = v;
      item.s =
          s_in.defined() ? detached_copy_if_alias(s_in).reshape({-1}) : detached_copy_if_alias(v);
      item.strict_is_copy = !s_in.defined();
      TORCH_CHECK(item.s.numel() == v.numel(), "constraint '", c.name(), "': strict violation has ",
                  item.s.numel(), " entries, expected ", v.numel());
      item.features = cs.features().detach();
    } else {
      TORCH_CHECK(!cs.indices().defined() && !cs.strict_indices().defined(), "constraint '",
                  c.name(),
                  "': indices were given for a dense constraint (use "
                  "MultiplierKind::kIndexed to observe a subset of entries)");
      item.v = dense_shape(v, c, "violation");
      item.s = s_in.defined() ? dense_shape(detached_copy_if_alias(s_in), c, "strict violation")
                              : detached_copy_if_alias(item.v);
      item.strict_is_copy = !s_in.defined();
    }
    check_usable(c, cs, item.s, grad_expected, multiplier_dtypes_[c.index()]);
    eval.items.push_back(std::move(item));
  }
  std::sort(eval.items.begin(), eval.items.end(), [](const auto& a, const auto& b) {
    return a.constraint.index() < b.constraint.index();
  });
  if (*stage == '\0') warn_unobserved(eval);

  // Non-finite values, in order: the loss, then each constraint's violation and strict
  // violation (a strict violation that is the violation itself is not checked twice).
  result.metrics = eval.state.metrics;
  std::vector<torch::Tensor> checked;
  checked.reserve(1 + 2 * eval.items.size());
  checked.push_back(loss.detach());
  for (const auto& item : eval.items) {
    checked.push_back(item.v.detach());
    if (!item.strict_is_copy) checked.push_back(item.s);
  }
  const int64_t bad = first_non_finite(checked);
  if (bad < 0) return true;
  if (bad == 0) {
    return non_finite(result, NonFiniteQuantity::kLoss, "",
                      "the loss is " + std::to_string(loss.detach().item<double>()), stage, taken);
  }
  int64_t position = 1;
  for (const auto& item : eval.items) {
    const auto& name = item.constraint.name();
    if (position++ == bad) {
      return non_finite(result, NonFiniteQuantity::kViolation, name,
                        "the violation of constraint '" + name + "' has a NaN or Inf entry", stage,
                        taken);
    }
    if (!item.strict_is_copy && position++ == bad) {
      return non_finite(result, NonFiniteQuantity::kStrictViolation, name,
                        "the strict violation of constraint '" + name + "' has a NaN or Inf entry",
                        stage, taken);
    }
  }
  return true;  // not reached
}

void ConstrainedOptimizer::warn_unobserved(const Evaluation& eval) {
  if (warned_unobserved_ || eval.items.size() == constraint_count_) return;
  std::vector<bool> seen(constraint_count_, false);
  for (const auto& item : eval.items) seen[item.constraint.index()] = true;
  std::ostringstream names;
  for (const auto& c : problem_.constraints()) {
    if (seen[c.index()] || c.options().occasional()) continue;
    names << (names.tellp() > 0 ? ", " : "") << "'" << c.name() << "'";
  }
  if (names.tellp() == 0) return;
  warned_unobserved_ = true;
  TORCH_WARN("ConstrainedOptimizer::step: the closure did not observe constraint(s) ", names.str(),
             " in step ", iteration_,
             ": their multipliers do not move, and StepResult::max_violation() is NaN while they "
             "go unobserved (StepResult::unobserved() lists them). Observe every constraint in "
             "every step, or mark those observed only now and then with "
             "ConstraintOptions().occasional(true). (Said once per optimizer.)");
}

bool ConstrainedOptimizer::non_finite(StepResult& result, NonFiniteQuantity quantity,
                                      const std::string& constraint, const std::string& what,
                                      const char* stage, const char* taken) {
  TORCH_CHECK(options_.non_finite() != NonFinitePolicy::kThrow,
              "ConstrainedOptimizer::step: ", stage, what, " (NonFinitePolicy::kThrow; ", taken,
              ")");
  std::map<std::string, double> metrics = std::move(result.metrics);
  result = start_result();  // a skipped result reports no evaluation
  result.metrics = std::move(metrics);
  result.skipped = true;
  result.skip_quantity = quantity;
  result.skip_constraint = constraint;
  result.skip_reason = std::string(stage) + what;
  return false;
}

bool ConstrainedOptimizer::check_gradients(StepResult& result, const char* stage,
                                           const char* taken) {
  std::vector<torch::Tensor> grads;
  for (const auto& opt : primal_) {
    for (const auto& group : opt->param_groups()) {
      for (const auto& p : group.params()) {
        const torch::Tensor& g = p.grad();
        if (g.defined()) grads.push_back(g.is_sparse() ? g._values() : g);
      }
    }
  }
  const int64_t bad = first_non_finite(grads);
  if (bad < 0) return true;
  int64_t position = 0;
  for (size_t i = 0; i < primal_.size(); ++i) {
    const auto& groups = primal_[i]->param_groups();
    for (size_t j = 0; j < groups.size(); ++j) {
      const auto& params = groups[j].params();
      for (size_t k = 0; k < params.size(); ++k) {
        if (!params[k].grad().defined() || position++ != bad) continue;
        std::ostringstream what;
        what << "the gradient of primal optimizer " << i << ", group " << j << ", parameter " << k
             << " (shape " << params[k].sizes() << ") has a NaN or Inf entry";
        return non_finite(result, NonFiniteQuantity::kPrimalGradient, "", what.str(), stage, taken);
      }
    }
  }
  return true;  // not reached
}

bool ConstrainedOptimizer::check_multipliers(Evaluation& eval, StepResult& result,
                                             const char* stage, const char* when,
                                             const char* taken) {
  if (!dual_) return true;
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> values;  // the parameters themselves: a scan needs no detach
  std::vector<const Evaluation::Item*> owners;
  for (const auto& item : eval.items) {
    const auto& c = item.constraint;
    const auto& m = c.multiplier();
    if (!m || !item.state->contributes_to_dual()) continue;  // its multiplier did not move
    if (m->writes_gradient_directly() && is_indexed(c) &&
        (c.options().lazy() || c.options().sparse_gradient())) {
      // Only the observed rows can have moved: O(batch), not O(size).
      values.push_back(m->parameters()[0].index_select(0, item.sidx));
      owners.push_back(&item);
    } else {
      for (const auto& p : m->parameters()) {
        values.push_back(p);
        owners.push_back(&item);
      }
    }
  }
  const int64_t bad = first_non_finite(values);
  if (bad < 0) return true;
  const auto& c = owners[bad]->constraint;
  const std::string what =
      c.multiplier()->writes_gradient_directly()
          ? "the multiplier of constraint '" + c.name() + "' has a NaN or Inf entry " + when
          : "a parameter of the implicit multiplier model of constraint '" + c.name() +
                "' has a NaN or Inf entry " + when;
  return non_finite(result, NonFiniteQuantity::kMultiplier, c.name(), what, stage, taken);
}

void ConstrainedOptimizer::snapshot_dual(Evaluation& eval, Snapshot& snapshot, bool all) {
  if (!dual_) return;
  if (all) {
    for (const auto& m : multipliers_) {
      for (const auto& p : m->parameters()) snapshot.tensor(p);
    }
  } else {
    for (const auto& item : eval.items) {
      const auto& c = item.constraint;
      const auto& m = c.multiplier();
      if (!m || !item.state->contributes_to_dual()) continue;
      if (is_indexed(c) && (c.options().lazy() || c.options().sparse_gradient())) {
        // Only the observed rows can move (lazy restores the others; sparse touches none).
        if (item.sidx.numel() > 0) snapshot.rows(m->parameters()[0], item.sidx);
      } else {
        for (const auto& p : m->parameters()) snapshot.tensor(p);
      }
    }
  }
  snapshot.optimizer(*dual_, all);
}

void ConstrainedOptimizer::snapshot_penalties(Evaluation& eval, Snapshot& snapshot) {
  for (const auto& item : eval.items) {
    const auto& c = item.constraint;
    if (!c.penalty() || !c.options().penalty_updater() || !item.state->contributes_to_dual()) {
      continue;
    }
    torch::Tensor& value = c.penalty()->mutable_value();
    if (c.penalty()->per_entry() && item.sidx.defined()) {
      snapshot.rows(value, item.sidx);
    } else {
      snapshot.tensor(value);
    }
  }
}

void ConstrainedOptimizer::snapshot_primal(Snapshot& snapshot, bool parameters, bool all_states) {
  std::unordered_set<const void*> copied;
  auto copy = [&](const torch::Tensor& p) {
    if (copied.insert(p.unsafeGetTensorImpl()).second) snapshot.tensor(p);
  };
  for (const auto& opt : primal_) {
    if (parameters) {
      for (const auto& group : opt->param_groups()) {
        for (const auto& p : group.params()) copy(p);
      }
    }
    snapshot.optimizer(*opt, all_states);
  }
  if (parameters) {
    for (const auto& entry : projections_) {
      for (const auto& p : entry.first) copy(p);
    }
  }
}

torch::Tensor ConstrainedOptimizer::primal_lagrangian(Evaluation& eval) {
  const torch::Tensor& loss = eval.state.loss;
  torch::Tensor lagrangian = loss.dim() == 0 ? loss : loss.reshape({});
  for (auto& item : eval.items) {
    const auto& c = item.constraint;
    const auto& f = c.formulation();
    if (c.multiplier()) {
      torch::Tensor lam;
      {
        torch::NoGradGuard no_grad;
        // A copy: the dual step may change the multiplier in place before record() reads it.
        lam = c.multiplier()->evaluate(item.idx, item.features).detach().clone();
      }
      item.lambda = lam;
    }
    if (c.penalty()) {
      // A copy only when an updater may change the coefficient in place before record().
      item.penalty = c.penalty()->observed(item.idx);
      if (c.options().penalty_updater()) item.penalty = item.penalty.clone();
    }
    if (!item.state->contributes_to_primal()) continue;
    lagrangian = lagrangian + f->primal_term(item.v, item.lambda, item.penalty, c.kind());
  }
  eval.lagrangian = lagrangian;
  return lagrangian;
}

torch::Tensor ConstrainedOptimizer::primal_backward(Evaluation& eval) {
  for (auto& opt : primal_) opt->zero_grad();
  torch::Tensor lagrangian = primal_lagrangian(eval);
  if (lagrangian.requires_grad()) lagrangian.backward();
  return lagrangian;
}

void ConstrainedOptimizer::write_dual_gradients(Evaluation& eval) {
  for (const auto& m : multipliers_) m->clear_gradient();
  torch::Tensor implicit_loss;
  for (auto& item : eval.items) {
    const auto& c = item.constraint;
    if (!c.multiplier() || !item.state->contributes_to_dual()) continue;
    torch::Tensor pen = c.penalty() ? c.penalty()->observed(item.sidx) : torch::Tensor();
    torch::Tensor ascent = c.formulation()->dual_ascent(item.s, pen, c.kind());
    if (c.multiplier()->writes_gradient_directly()) {
      c.multiplier()->write_ascent(item.sidx, ascent);
    } else {
      at::AutoGradMode enable_grad(true);
      torch::Tensor lam = c.multiplier()->evaluate(item.sidx, item.features);
      torch::Tensor term = -(lam * ascent.to(lam.dtype())).sum();
      implicit_loss = implicit_loss.defined() ? implicit_loss + term : term;
    }
  }
  if (implicit_loss.defined() && implicit_loss.requires_grad()) {
    at::AutoGradMode enable_grad(true);
    implicit_loss.backward();
  }
}

void ConstrainedOptimizer::update_penalties(Evaluation& eval, StepResult& result) {
  for (auto& item : eval.items) {
    const auto& c = item.constraint;
    const auto& updater = c.options().penalty_updater();
    if (!updater || !c.penalty() || !item.state->contributes_to_dual()) continue;
    item.penalty_capped = updater->update(*c.penalty(), item.s, item.sidx, c.kind());
    result.constraints[c.index()].penalty_capped = item.penalty_capped;
  }
}

void ConstrainedOptimizer::dual_step() {
  if (!dual_) return;
  for (const auto& m : multipliers_) m->before_dual_step();
  try {
    dual_->step();
  } catch (const c10::Error& e) {
    TORCH_CHECK(false, "ConstrainedOptimizer::step: the dual optimizer (", dual_holders(),
                ") failed: ", e.msg());
  }
  for (const auto& m : multipliers_) {
    m->project();
    m->after_dual_step();
  }
}

bool ConstrainedOptimizer::checked_dual_step(Evaluation& eval, StepResult& result,
                                             Snapshot& snapshot, const char* taken) {
  if (!dual_) return true;
  try {
    if (skipping()) snapshot_dual(eval, snapshot, /*all=*/false);
    dual_step();
    if (check_multipliers(eval, result, "", "after the dual step", taken)) return true;
  } catch (...) {
    if (skipping()) snapshot.restore();
    throw;
  }
  snapshot.restore();  // reached only under kSkipStep (kThrow threw)
  return false;
}

void ConstrainedOptimizer::project_primal() {
  if (projections_.empty()) return;
  torch::NoGradGuard no_grad;
  for (auto& entry : projections_) {
    for (auto& p : entry.first) entry.second(p);
  }
}

void ConstrainedOptimizer::primal_step() {
  for (size_t i = 0; i < primal_.size(); ++i) {
    try {
      primal_[i]->step();
    } catch (const c10::Error& e) {
      TORCH_CHECK(false, "ConstrainedOptimizer::step: primal optimizer ", i, " failed: ", e.msg());
    }
  }
  project_primal();
}

void ConstrainedOptimizer::record(Evaluation& eval, StepResult& result) {
  result.loss = eval.state.loss.detach();
  if (result.loss.dim() != 0) result.loss = result.loss.reshape({});
  if (eval.lagrangian.defined()) result.lagrangian = eval.lagrangian.detach();
  for (auto& item : eval.items) {
    auto& cr = result.constraints[item.constraint.index()];
    cr.observed = true;
    // Copies: a violation may alias a parameter that the step then changes in place.
    // The strict violation, when it is the violation, is already a safe detached copy.
    cr.violation = item.strict_is_copy ? item.s : item.v.detach().clone();
    cr.strict_violation = item.s;
    cr.indices = item.idx;
    cr.strict_indices = item.sidx;
    cr.multiplier = item.lambda;
    cr.penalty = item.penalty;
  }
}

// ------------------------------------------------------------------ schemes

namespace {
// What a kThrow message says was already changed when the bad value was found.
constexpr const char* kNothing = "nothing was changed";
constexpr const char* kDualTaken =
    "the dual step was taken and the multipliers hold its values; the primal step and the "
    "penalty update were not taken";
}  // namespace

StepResult SimultaneousOptimizer::step(const Closure& closure) {
  StepResult result = start_result();
  Evaluation eval;
  if (evaluate(closure, eval, result)) {
    primal_backward(eval);
    if (check_gradients(result, "", kNothing)) {
      record(eval, result);
      write_dual_gradients(eval);
      // The dual step first: both steps read this evaluation, so the order does not change the
      // iterates, and a bad multiplier is found before the primal step (nothing to undo there).
      Snapshot snapshot;
      if (checked_dual_step(eval, result, snapshot, kDualTaken)) {
        try {
          update_penalties(eval, result);
          primal_step();
        } catch (...) {  // e.g. a user projection that throws: undo the dual step too
          if (skipping()) snapshot.restore();
          throw;
        }
      }
    }
  }
  ++iteration_;
  return result;
}

StepResult AlternatingDualPrimalOptimizer::step(const Closure& closure) {
  StepResult result = start_result();
  Evaluation eval;
  if (evaluate(closure, eval, result)) {
    write_dual_gradients(eval);
    Snapshot snapshot;  // the primal gradient comes after the dual step and penalty update
    if (skipping()) snapshot_penalties(eval, snapshot);
    if (checked_dual_step(eval, result, snapshot, kDualTaken)) {
      bool ok = false;
      try {
        update_penalties(eval, result);
        primal_backward(eval);  // uses lambda_{t+1}
        ok = check_gradients(result, "",
                             "the dual step and the penalty update were taken; the primal step "
                             "was not");
      } catch (...) {
        if (skipping()) snapshot.restore();
        throw;
      }
      if (ok) {
        record(eval, result);
        try {
          primal_step();
        } catch (...) {
          if (skipping()) snapshot.restore();
          throw;
        }
      } else {
        snapshot.restore();
      }
    }
  }
  ++iteration_;
  return result;
}

StepResult AlternatingPrimalDualOptimizer::step(const Closure& closure) {
  return step(closure, nullptr);
}

StepResult AlternatingPrimalDualOptimizer::step(const Closure& closure,
                                                const Closure& constraint_closure) {
  static constexpr const char* kStage = "second evaluation: ";
  static constexpr const char* kPrimalTaken = "the primal step was taken";
  StepResult result = start_result();
  Evaluation first;
  if (evaluate(closure, first, result)) {
    primal_backward(first);
    if (check_gradients(result, "", kNothing)) {
      record(first, result);
      // Under kSkipStep the primal step is undone if the rest of the step fails.
      Snapshot snapshot;
      bool ok = false;
      try {
        if (skipping()) snapshot_primal(snapshot, /*parameters=*/true, /*all_states=*/false);
        primal_step();
      } catch (...) {
        if (skipping()) snapshot.restore();
        throw;
      }
      Evaluation second;
      try {
        torch::NoGradGuard no_grad;
        if (constraint_closure) {
          const Closure wrapped = [&]() {
            ProblemState st = constraint_closure();
            if (!st.loss.defined()) st.loss = torch::zeros({}, torch::kFloat64);
            return st;
          };
          ok = evaluate(wrapped, second, result, kStage, kPrimalTaken);
        } else {
          ok = evaluate(closure, second, result, kStage, kPrimalTaken);
        }
      } catch (const c10::Error& e) {
        if (skipping()) {
          snapshot.restore();
          TORCH_CHECK(false,
                      "AlternatingPrimalDualOptimizer: second evaluation (the primal step was "
                      "undone): ",
                      e.msg());
        }
        // A non-finite value under kThrow already says where it was found and what was taken.
        if (e.msg().rfind(std::string("ConstrainedOptimizer::step: ") + kStage, 0) == 0) throw;
        TORCH_CHECK(false,
                    "AlternatingPrimalDualOptimizer: second evaluation, after the primal step was "
                    "taken: ",
                    e.msg());
      } catch (...) {  // any other exception from the user's closure
        if (skipping()) snapshot.restore();
        throw;
      }
      if (!ok) {
        snapshot.restore();  // skipped: undo the primal step
      } else {
        try {
          write_dual_gradients(second);
        } catch (...) {
          if (skipping()) snapshot.restore();
          throw;
        }
        if (checked_dual_step(second, result, snapshot,
                              "the primal and dual steps were taken and the multipliers hold "
                              "the dual step's values; the penalty update was not taken")) {
          update_penalties(second, result);
        }
      }
    }
  }
  ++iteration_;
  return result;
}

namespace {
std::shared_ptr<optim::ExtrapolationOptimizer> as_extra(
    const std::shared_ptr<torch::optim::Optimizer>& opt, const std::string& which) {
  auto extra = std::dynamic_pointer_cast<optim::ExtrapolationOptimizer>(opt);
  TORCH_CHECK(extra != nullptr, "ExtragradientOptimizer: the ", which,
              " optimizer has no extrapolation step; use feasible::optim::ExtraSGD or "
              "ExtraAdam (any feasible::optim::ExtrapolationOptimizer)");
  return extra;
}
}  // namespace

ExtragradientOptimizer::ExtragradientOptimizer(
    Problem problem, std::vector<std::shared_ptr<torch::optim::Optimizer>> primal,
    std::shared_ptr<torch::optim::Optimizer> dual, ConstrainedOptimizerOptions options)
    : ConstrainedOptimizer(std::move(problem), std::move(primal), std::move(dual), options) {
  for (size_t i = 0; i < primal_.size(); ++i) as_extra(primal_[i], "primal");
  if (dual_) as_extra(dual_, "dual");
  for (const auto& c : problem_.constraints()) {
    TORCH_CHECK(!c.options().sparse_gradient(), "ExtragradientOptimizer: constraint '", c.name(),
                "' uses ConstraintOptions.sparse_gradient, which the extrapolation optimizers do "
                "not support; use dense-row gradients (the default) or lazy(true)");
  }
}

StepResult ExtragradientOptimizer::step(const Closure& closure) {
  static constexpr const char* kStage = "half point: ";
  static constexpr const char* kHalfTaken =
      "the parameters and multipliers were returned to (x_t, lambda_t); the optimizers' moments "
      "keep the extrapolation's update";
  static constexpr const char* kFinalTaken =
      "the primal parameters were returned to x_t; the multipliers hold the dual update's "
      "values; the optimizers' moments keep their updates";
  StepResult result = start_result();
  Evaluation first;
  if (evaluate(closure, first, result)) {
    primal_backward(first);
    if (check_gradients(result, "", kNothing)) {
      write_dual_gradients(first);
      record(first, result);
      // Under kSkipStep: the whole state of both players' optimizers and every multiplier
      // (the extrapolation and the update may touch different parameters and rows); the
      // primal parameters come back through the extrapolation optimizers' saved point.
      Snapshot snapshot;
      auto back_to_start = [&] {
        for (auto& opt : primal_) as_extra(opt, "primal")->restore();
        if (dual_) as_extra(dual_, "dual")->restore();
        snapshot.restore();
      };
      bool ok = false;
      try {
        if (skipping()) {
          snapshot_primal(snapshot, /*parameters=*/false, /*all_states=*/true);
          snapshot_dual(first, snapshot, /*all=*/true);
        }
        // Extrapolate both players to the half point.
        for (auto& opt : primal_) as_extra(opt, "primal")->extrapolate();
        project_primal();
        if (dual_) {
          for (const auto& m : multipliers_) m->before_dual_step();
          as_extra(dual_, "dual")->extrapolate();
          for (const auto& m : multipliers_) {
            m->project();
            m->after_dual_step();
          }
        }
        Evaluation half;
        ok = check_multipliers(first, result, kStage, "after the extrapolation", kHalfTaken) &&
             evaluate(closure, half, result, kStage, kHalfTaken);
        if (ok) {
          primal_backward(half);
          ok = check_gradients(result, kStage, kHalfTaken);
        }
        if (ok) {
          write_dual_gradients(half);
          // The dual update first (both read the half point, so the order does not change the
          // iterates): a bad multiplier is then found while x_t is still the saved point.
          // Back to lambda_t before the update, so that lazy indexed multipliers keep lambda_t
          // (not lambda_{t+1/2}) in rows the first evaluation observed and the half point did
          // not; the update then steps from there with the half-point gradients and projects.
          if (dual_) as_extra(dual_, "dual")->restore();
          dual_step();
          ok = check_multipliers(half, result, "", "after the dual step", kFinalTaken);
          if (ok) {
            if (skipping()) snapshot_penalties(half, snapshot);
            update_penalties(half, result);
            primal_step();  // restores x_t, steps with the half-point gradients, projects
          }
        }
      } catch (...) {
        // Any throw leaves (x_t, lambda_t) as they were (and, under kSkipStep, all state).
        back_to_start();
        throw;
      }
      if (!ok) back_to_start();  // skipped
    }
  }
  ++iteration_;
  return result;
}

UnconstrainedOptimizer::UnconstrainedOptimizer(
    Problem problem, std::vector<std::shared_ptr<torch::optim::Optimizer>> primal,
    ConstrainedOptimizerOptions options)
    : ConstrainedOptimizer(std::move(problem), std::move(primal), nullptr, options) {}

StepResult UnconstrainedOptimizer::step(const Closure& closure) {
  StepResult result = start_result();
  Evaluation eval;
  if (evaluate(closure, eval, result)) {
    primal_backward(eval);
    if (check_gradients(result, "", kNothing)) {
      record(eval, result);
      primal_step();
      update_penalties(eval, result);
    }
  }
  ++iteration_;
  return result;
}

}  // namespace feasible
