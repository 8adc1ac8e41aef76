// The constrained optimizers: validation of the closure's output and the five schemes.
#include <algorithm>
#include <sstream>
#include <unordered_set>

#include "feasible/optim/extra.h"
#include "feasible/optimizer.h"

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

namespace {

std::string shape_of(const torch::Tensor& t) {
  std::ostringstream os;
  os << t.sizes();
  return os.str();
}

bool is_indexed(const Constraint& c) {
  return c.options().multiplier() == MultiplierKind::kIndexed;
}

// Whether every entry of a floating-point tensor is finite. On the CPU the data are scanned on
// the host (no tensor operation, no dispatch); elsewhere one reduction and one read.
bool all_finite(const torch::Tensor& t) {
  if (!t.device().is_cpu()) return torch::isfinite(t).all().item<bool>();
  const torch::Tensor c = t.contiguous();
  bool ok = true;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, c.scalar_type(), "all_finite", [&] {
    const scalar_t* p = c.data_ptr<scalar_t>();
    for (int64_t i = 0, n = c.numel(); i < n && ok; ++i) {
      ok = std::isfinite(static_cast<double>(p[i]));
    }
  });
  return ok;
}

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

// Checks an index tensor of an indexed constraint.
void check_indices(const torch::Tensor& idx, const Constraint& c, const char* field) {
  TORCH_CHECK(idx.scalar_type() == torch::kLong, "constraint '", c.name(), "': ", field,
              " must be an int64 tensor, got dtype ", idx.scalar_type());
  TORCH_CHECK(idx.dim() == 1, "constraint '", c.name(), "': ", field, " must be 1-D, got shape ",
              shape_of(idx));
  if (idx.numel() > 0) {
    const auto range = index_range(idx);
    const int64_t lo = range.first;
    const int64_t hi = range.second;
    TORCH_CHECK(lo >= 0 && hi < c.size(), "constraint '", c.name(), "': ", field,
                " must lie in [0, ", c.size(), "), got values in [", lo, ", ", hi, "]");
  }
}

// Brings a dense violation to shape [size], or explains the mismatch.
torch::Tensor dense_shape(const torch::Tensor& t, const Constraint& c, const char* field) {
  const bool ok = (t.dim() == 1 && t.size(0) == c.size()) || (t.dim() == 0 && c.size() == 1);
  TORCH_CHECK(ok, "constraint '", c.name(), "': ", field, " has shape ", shape_of(t),
              ", expected [", c.size(), "] (the constraint's size)");
  return t.dim() == 1 ? t : t.reshape({c.size()});
}

}  // namespace

// ------------------------------------------------------------------ StepResult

const ConstraintResult& StepResult::at(const std::string& name) const {
  for (const auto& c : constraints) {
    if (c.name == name) return c;
  }
  TORCH_CHECK(false, "StepResult::at: no constraint named '", name, "'");
}

double StepResult::max_violation() const {
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
  projections_.emplace_back(std::move(params), std::move(projection));
}

StepResult ConstrainedOptimizer::start_result() const {
  StepResult r;
  r.iteration = iteration_;
  for (const auto& c : problem_.constraints()) {
    ConstraintResult cr;
    cr.name = c.name();
    cr.kind = c.kind();
    r.constraints.push_back(std::move(cr));
  }
  return r;
}

bool ConstrainedOptimizer::evaluate(const Closure& closure, Evaluation& eval, StepResult& result) {
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
      check_indices(cs.indices(), c, "indices");
      TORCH_CHECK(v.dim() == 1 && v.size(0) == cs.indices().size(0), "constraint '", c.name(),
                  "': violation has shape ", shape_of(v), ", expected [", cs.indices().size(0),
                  "] (one entry per index)");
      item.v = v;
      item.idx = cs.indices();
      item.sidx = cs.strict_indices().defined() ? cs.strict_indices() : cs.indices();
      if (cs.strict_indices().defined()) check_indices(cs.strict_indices(), c, "strict_indices");
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
    eval.items.push_back(std::move(item));
  }
  std::sort(eval.items.begin(), eval.items.end(), [](const auto& a, const auto& b) {
    return a.constraint.index() < b.constraint.index();
  });

  // Non-finite values (a strict violation that is the violation itself is not checked twice).
  std::string what;
  if (!all_finite(loss.detach())) {
    what = "the loss is " + std::to_string(loss.item<double>());
  } else {
    for (const auto& item : eval.items) {
      const auto& name = item.constraint.name();
      if (!all_finite(item.v.detach())) {
        what = "the violation of constraint '" + name + "' has a NaN or Inf entry";
        break;
      }
      if (!item.strict_is_copy && !all_finite(item.s)) {
        what = "the strict violation of constraint '" + name + "' has a NaN or Inf entry";
        break;
      }
    }
  }
  if (!what.empty()) {
    TORCH_CHECK(options_.non_finite() != NonFinitePolicy::kThrow,
                "ConstrainedOptimizer::step: ", what,
                " (NonFinitePolicy::kThrow; nothing was changed)");
    result.skipped = true;
    result.skip_reason = what;
    result.metrics = eval.state.metrics;
    return false;
  }
  result.metrics = eval.state.metrics;
  return true;
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

void ConstrainedOptimizer::dual_step(Evaluation& eval, StepResult& result) {
  if (dual_) {
    for (const auto& m : multipliers_) m->before_dual_step();
    dual_->step();
    for (const auto& m : multipliers_) {
      m->project();
      m->after_dual_step();
    }
  }
  update_penalties(eval, result);
}

void ConstrainedOptimizer::project_primal() {
  if (projections_.empty()) return;
  torch::NoGradGuard no_grad;
  for (auto& entry : projections_) {
    for (auto& p : entry.first) entry.second(p);
  }
}

void ConstrainedOptimizer::primal_step() {
  for (auto& opt : primal_) opt->step();
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

StepResult SimultaneousOptimizer::step(const Closure& closure) {
  StepResult result = start_result();
  Evaluation eval;
  if (evaluate(closure, eval, result)) {
    primal_backward(eval);
    record(eval, result);
    write_dual_gradients(eval);
    primal_step();
    dual_step(eval, result);
  }
  ++iteration_;
  return result;
}

StepResult AlternatingDualPrimalOptimizer::step(const Closure& closure) {
  StepResult result = start_result();
  Evaluation eval;
  if (evaluate(closure, eval, result)) {
    write_dual_gradients(eval);
    dual_step(eval, result);
    primal_backward(eval);  // uses lambda_{t+1}
    record(eval, result);
    primal_step();
  }
  ++iteration_;
  return result;
}

StepResult AlternatingPrimalDualOptimizer::step(const Closure& closure) {
  return step(closure, nullptr);
}

StepResult AlternatingPrimalDualOptimizer::step(const Closure& closure,
                                                const Closure& constraint_closure) {
  StepResult result = start_result();
  Evaluation first;
  if (evaluate(closure, first, result)) {
    primal_backward(first);
    record(first, result);
    primal_step();
    Evaluation second;
    bool ok;
    try {
      torch::NoGradGuard no_grad;
      if (constraint_closure) {
        const Closure wrapped = [&]() {
          ProblemState st = constraint_closure();
          if (!st.loss.defined()) st.loss = torch::zeros({}, torch::kFloat64);
          return st;
        };
        ok = evaluate(wrapped, second, result);
      } else {
        ok = evaluate(closure, second, result);
      }
    } catch (const c10::Error& e) {
      TORCH_CHECK(false,
                  "AlternatingPrimalDualOptimizer: second evaluation, after the primal step was "
                  "taken: ",
                  e.msg());
    }
    if (!ok) result.skip_reason = "second evaluation: " + result.skip_reason;
    if (ok) {
      write_dual_gradients(second);
      dual_step(second, result);
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
  StepResult result = start_result();
  Evaluation first;
  if (evaluate(closure, first, result)) {
    primal_backward(first);
    write_dual_gradients(first);
    record(first, result);
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
    bool ok = false;
    try {
      ok = evaluate(closure, half, result);
      if (ok) {
        primal_backward(half);
        write_dual_gradients(half);
      }
    } catch (...) {
      // A throw at the half point must leave (x_t, lambda_t) as they were.
      for (auto& opt : primal_) as_extra(opt, "primal")->restore();
      if (dual_) as_extra(dual_, "dual")->restore();
      throw;
    }
    if (ok) {
      primal_step();  // restores x_t, steps with the half-point gradients
      dual_step(half, result);
    } else {
      // Skipped at the half point: return to (x_t, lambda_t).
      for (auto& opt : primal_) as_extra(opt, "primal")->restore();
      if (dual_) as_extra(dual_, "dual")->restore();
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
    record(eval, result);
    primal_step();
    update_penalties(eval, result);
  }
  ++iteration_;
  return result;
}

}  // namespace feasible
