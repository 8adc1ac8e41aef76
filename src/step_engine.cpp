// The step engine's half-steps: the primal Lagrangian and its backward pass, the dual gradients,
// the dual and primal steps (and extrapolations), the penalty updates and the step's result.
#include "src/step_engine.h"

#include "feasible/optim/extra.h"
#include "src/tensor_util.h"

namespace feasible {
namespace detail {
namespace {

// Whether the optimizers' zero_grad() fills the gradients with zeros (LibTorch 1.x) rather than
// setting them to none (2.x, where set_to_none defaults to true).
#if TORCH_VERSION_MAJOR >= 2
constexpr bool kZeroGradKeepsGradients = false;
#else
constexpr bool kZeroGradKeepsGradients = true;
#endif

optim::ExtrapolationOptimizer& as_extra(torch::optim::Optimizer& opt) {
  // The scheme's constructor checked the type.
  return dynamic_cast<optim::ExtrapolationOptimizer&>(opt);
}

}  // namespace

const char* text(Stage stage) {
  switch (stage) {
    case Stage::kSecond:
      return "second evaluation: ";
    case Stage::kHalf:
      return "half point: ";
    default:
      return "";
  }
}

const char* caller(Stage stage) {
  return stage == Stage::kValidation ? "ConstrainedOptimizer::dual_step: "
                                     : "ConstrainedOptimizer::step: ";
}

const char* text(Taken taken) {
  switch (taken) {
    case Taken::kDual:
      return "the dual step was taken and the multipliers hold its values; the primal step and "
             "the penalty update were not taken";
    case Taken::kDualPenalty:
      return "the dual step and the penalty update were taken; the primal step was not";
    case Taken::kPrimal:
      return "the primal step was taken";
    case Taken::kPrimalDual:
      return "the primal and dual steps were taken and the multipliers hold the dual step's "
             "values; the penalty update was not taken";
    case Taken::kHalfReturned:
      return "the parameters and multipliers were returned to (x_t, lambda_t); the optimizers' "
             "moments keep the extrapolation's update";
    case Taken::kFinalReturned:
      return "the primal parameters were returned to x_t; the multipliers hold the dual "
             "update's values; the optimizers' moments keep their updates";
    default:
      return "nothing was changed";
  }
}

const char* text(After after) {
  return after == After::kDualStep ? "after the dual step" : "after the extrapolation";
}

StepResult StepEngine::start_result() const {
  StepResult r = blank_;
  r.iteration = iteration_;
  return r;
}

void StepEngine::read_coefficients(Evaluation::Item& item) {
  const auto& c = item.constraint;
  if (c.multiplier()) {
    // Read, not copied: the backward pass comes before any change to the multiplier, and
    // record() or the dual step copies values that are the multiplier's own storage.
    torch::NoGradGuard no_grad;
    item.lambda = c.multiplier()->evaluate(item.idx, item.features);
    item.lambda_is_live = item.lambda.has_storage() &&
                          parameter_storages_.count(item.lambda.storage().unsafeGetStorageImpl());
  }
  if (c.penalty()) {
    // A copy only when an updater may change the coefficient in place before record().
    item.penalty = c.penalty()->observed(item.idx);
    if (c.options().penalty_updater()) item.penalty = item.penalty.clone();
  }
}

torch::Tensor StepEngine::primal_lagrangian(Evaluation& eval) {
  const torch::Tensor& loss = eval.state.loss;
  torch::Tensor lagrangian = loss.dim() == 0 ? loss : loss.reshape({});
  for (auto& item : eval.items) {
    read_coefficients(item);
    if (!item.state->contributes_to_primal()) continue;
    const auto& c = item.constraint;
    lagrangian =
        lagrangian + c.formulation()->primal_term(item.v, item.lambda, item.penalty, c.kind());
  }
  eval.lagrangian = lagrangian;
  return lagrangian;
}

void StepEngine::zero_primal_gradients() {
  for (auto& opt : primal_) opt->zero_grad();
}

void StepEngine::release_primal_gradients() {
  released_.clear();
  dropped_.clear();
  if (!kZeroGradKeepsGradients) {  // LibTorch 2.x: zero_grad() sets them to none itself
    zero_primal_gradients();
    return;
  }
  for (auto& opt : primal_) {
    for (auto& group : opt->param_groups()) {
      for (auto& p : group.params()) {
        torch::Tensor& g = p.mutable_grad();
        released_.push_back(std::move(g));
        g = torch::Tensor();
      }
    }
  }
}

void StepEngine::drop_released_gradients() {
  dropped_.assign(released_.size(), 0);
  size_t k = 0;
  for (auto& opt : primal_) {
    for (auto& group : opt->param_groups()) {
      for (auto& p : group.params()) {
        if (k == released_.size()) return;
        torch::Tensor& old = released_[k];
        // Only a gradient that zeros_like(p) gives back exactly (dense, as p, no history).
        if (old.defined() && old.layout() == torch::kStrided && !old.grad_fn() &&
            old.scalar_type() == p.scalar_type() && old.device() == p.device() &&
            p.is_non_overlapping_and_dense() && old.strides() == p.strides()) {
          old = torch::Tensor();
          dropped_[k] = 1;
        }
        ++k;
      }
    }
  }
}

void StepEngine::restore_unreached_gradients() {
  if (released_.empty()) return;
  size_t k = 0;
  for (auto& opt : primal_) {
    for (auto& group : opt->param_groups()) {
      for (auto& p : group.params()) {
        if (k == released_.size()) break;
        const bool dropped = k < dropped_.size() && dropped_[k] != 0;
        torch::Tensor& old = released_[k++];
        if (p.grad().defined()) continue;
        if (dropped) {
          p.mutable_grad() = torch::zeros_like(p);
        } else if (old.defined()) {
          torch::Tensor zeroed = old.grad_fn() ? old.detach() : std::move(old);  // as zero_grad()
          zeroed.zero_();
          p.mutable_grad() = std::move(zeroed);
        }
      }
    }
  }
  released_.clear();  // frees the gradients kept (those not dropped) that were replaced
  dropped_.clear();
}

StepEngine::ReleasedGradients::~ReleasedGradients() {
  if (engine.released_.empty()) return;  // the normal paths have restored them
  try {
    engine.restore_unreached_gradients();  // unwinding: the first error is the one reported
  } catch (...) {
    engine.released_.clear();
    engine.dropped_.clear();
  }
}

void StepEngine::local_backward(Evaluation& eval, bool zeroed) {
  ReleasedGradients guard{*this};  // restores on unwind what the caller or this call released
  if (!zeroed) {
    if (sync_) {
      zero_primal_gradients();
    } else {
      release_primal_gradients();
    }
  }
  torch::Tensor lagrangian = primal_lagrangian(eval);
  drop_released_gradients();
  if (lagrangian.requires_grad()) lagrangian.backward();
  restore_unreached_gradients();
}

bool StepEngine::backward(Evaluation& eval, StepResult& result, Stage stage, Taken taken,
                          bool zeroed) {
  local_backward(eval, zeroed);
  if (sync_) synchronize_gradients();
  return check_gradients(result, stage, taken);
}

bool StepEngine::evaluate_backward(const Closure& closure, Evaluation& eval, StepResult& result,
                                   Stage stage, Taken taken) {
  if (!sync_) {
    ReleasedGradients guard{*this};
    release_primal_gradients();
    const bool ok = evaluate(closure, eval, result, stage, taken) &&
                    backward(eval, result, stage, taken, /*zeroed=*/true);
    restore_unreached_gradients();  // done by backward() unless the evaluation was skipped
    return ok;
  }
  zero_primal_gradients();
  read_evaluation(closure, eval, result, stage);
  const int64_t bad = local_bad(eval);
  SyncedEvaluation ex;
  ex.backward_between = true;
  ex.parameters = primal_parameters();
  begin_exchange(eval, bad, ex);
  // The backward pass reads the loss, the violations, the multipliers and the penalties, not
  // the strict violations that the exchange replaces. A rank with a bad value skips it.
  if (bad < 0) local_backward(eval, /*zeroed=*/true);
  int bad_rank = -1;
  const int64_t agreed = finish_exchange(eval, ex, bad_rank);
  if (agreed >= 0) {
    // Every rank leaves the same (zero) gradients, whether or not it ran the backward pass.
    zero_primal_gradients();
    return report_bad(eval, result, stage, taken, agreed, bad_rank);
  }
  if (!ex.gradients_synchronized) sync_->synchronize_gradients(ex.parameters);
  return check_gradients(result, stage, taken);
}

void StepEngine::write_dual_gradients(Evaluation& eval) {
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
  if (dual_directions) dual_directions(eval);
}

void StepEngine::update_penalties(Evaluation& eval, StepResult& result) {
  for (auto& item : eval.items) {
    const auto& c = item.constraint;
    const auto& updater = c.options().penalty_updater();
    if (!updater || !c.penalty() || !item.state->contributes_to_dual()) continue;
    item.penalty_capped = updater->update(*c.penalty(), item.s, item.sidx, c.kind());
    result.constraints[c.index()].penalty_capped = item.penalty_capped;
  }
}

void StepEngine::run_dual_optimizer() {
  try {
    dual_->step();
  } catch (const c10::Error& e) {
    TORCH_CHECK(false, "ConstrainedOptimizer::step: the dual optimizer (", dual_holders(),
                ") failed: ", e.msg());
  }
}

void StepEngine::dual_step() {
  if (!dual_) return;
  for (const auto& m : multipliers_) m->before_dual_step();
  run_dual_optimizer();
  for (const auto& m : multipliers_) {
    m->project();
    m->after_dual_step();
  }
}

void StepEngine::dual_extrapolate() {
  if (!dual_) return;
  for (const auto& m : multipliers_) m->before_dual_step();
  as_extra(*dual_).extrapolate();
  for (const auto& m : multipliers_) {
    m->project();
    m->after_dual_step();
  }
}

bool StepEngine::checked_dual_step(Evaluation& eval, StepResult& result, Transaction& tx,
                                   Taken taken, Stage stage) {
  if (!dual_) return true;
  if (skipping()) snapshot_dual(eval, tx.snapshot(), /*all=*/false);
  copy_live_multipliers(eval);
  const Constraint* bad = nullptr;
  if (fused_dual_step(eval, bad)) {
    return bad == nullptr || multiplier_not_finite(*bad, result, stage, After::kDualStep, taken);
  }
  dual_step();
  return check_multipliers(eval, result, stage, After::kDualStep, taken);
}

// Multiplier values that the primal term read in place are copied (for the result) before a
// dual step changes them.
void StepEngine::copy_live_multipliers(Evaluation& eval) {
  for (auto& item : eval.items) {
    if (!item.lambda_is_live) continue;
    item.lambda = copy_of(item.lambda);
    item.lambda_is_live = false;
  }
}

void StepEngine::project_primal() {
  if (projections_.empty()) return;
  torch::NoGradGuard no_grad;
  for (auto& entry : projections_) {
    for (auto& p : entry.first) entry.second(p);
  }
}

void StepEngine::primal_step() {
  for (size_t i = 0; i < primal_.size(); ++i) {
    try {
      primal_[i]->step();
    } catch (const c10::Error& e) {
      TORCH_CHECK(false, "ConstrainedOptimizer::step: primal optimizer ", i, " failed: ", e.msg());
    }
  }
  project_primal();
}

void StepEngine::primal_extrapolate() {
  for (auto& opt : primal_) as_extra(*opt).extrapolate();
  project_primal();
}

void StepEngine::restore_extrapolation() {
  for (auto& opt : primal_) as_extra(*opt).restore();
  restore_dual_extrapolation();
}

void StepEngine::restore_dual_extrapolation() {
  if (dual_) as_extra(*dual_).restore();
}

void StepEngine::record(Evaluation& eval, StepResult& result, bool watch) {
  result.loss = detached(eval.state.loss);
  if (result.loss.dim() != 0) result.loss = one_element_view(result.loss, {});
  if (eval.lagrangian.defined()) result.lagrangian = detached(eval.lagrangian);
  for (auto& item : eval.items) {
    auto& cr = result.constraints[item.constraint.index()];
    cr.observed = true;
    // A violation that aliases a parameter (which the step then changes in place) is copied;
    // the strict violation, when it is the violation, already is [n] and detached.
    if (item.strict_is_copy) {
      cr.violation = item.s;
    } else {
      cr.violation = detached_copy_if_alias(item.v);
      if (cr.violation.dim() == 0) cr.violation = one_element_view(cr.violation, {1});
    }
    cr.strict_violation = item.s;
    cr.indices = item.idx;
    cr.strict_indices = item.sidx;
    if (item.lambda_is_live) {  // the multiplier's storage: the step may change it
      item.lambda = copy_of(item.lambda);
      item.lambda_is_live = false;
    }
    cr.multiplier = item.lambda;
    cr.penalty = item.penalty;
  }
  if (watch && DivergenceMonitor::samples(iteration_)) watch_divergence(eval, result);
}

namespace {
// max |t| (0 for an empty or undefined tensor).
double magnitude(const torch::Tensor& t) {
  return t.defined() && t.numel() > 0 ? t.detach().abs().max().item<double>() : 0.0;
}
}  // namespace

void StepEngine::watch_divergence(const Evaluation& eval, StepResult& result) {
  for (const auto& item : eval.items) {
    const Constraint& c = item.constraint;
    // The positive part's size for an inequality, without a clamp: max(0, max s).
    const double size =
        c.kind() == ConstraintKind::kInequality
            ? (item.s.numel() > 0 ? std::max(0.0, item.s.max().item<double>()) : 0.0)
            : magnitude(item.s);
    if (divergence_.violation(c.index()).add(size)) {
      result.diverging.push_back("'" + c.name() + "': violation");
    }
    if (item.lambda.defined() && divergence_.multiplier(c.index()).add(magnitude(item.lambda))) {
      result.diverging.push_back("'" + c.name() + "': multiplier");
    }
  }
  if (eval.lagrangian.defined()) {
    result.lagrangian_diverging = divergence_.lagrangian().add(magnitude(eval.lagrangian));
  }
  divergence_.warn_once(result);
}

}  // namespace detail
}  // namespace feasible
