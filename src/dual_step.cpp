// ConstrainedOptimizer::dual_step (include/feasible/optimizer.h): the dual player's half-step
// alone, from a closure evaluated with autograd off (validation-based dual updates; Cotter et al.,
// ICML 2019), written with the step engine's half-steps like the schemes in src/schemes.cpp.
#include <string>

#include "feasible/optim/extra.h"
#include "feasible/optimizer.h"
#include "src/step_engine.h"

namespace feasible {

using detail::Evaluation;
using detail::Stage;
using detail::StepEngine;
using detail::Taken;
using detail::Transaction;

namespace {

constexpr const char* kWho = "ConstrainedOptimizer::dual_step: ";

// Refuses an optimizer whose dual player cannot take a step on its own.
void check_dual_player(const StepEngine& e, const ConstrainedOptimizer& opt,
                       const Closure& closure) {
  TORCH_CHECK(e.dual_ != nullptr, kWho,
              dynamic_cast<const UnconstrainedOptimizer*>(&opt) != nullptr
                  ? "UnconstrainedOptimizer has no dual player"
                  : "this optimizer has no dual optimizer",
              " (no constraint has a multiplier), so a dual-only step has nothing to update; "
              "penalty updaters run in step()");
  const auto* extra = dynamic_cast<const optim::ExtrapolationOptimizer*>(e.dual_.get());
  TORCH_CHECK(extra == nullptr || !extra->extrapolated(), kWho,
              "the dual optimizer has an extrapolation point pending (extrapolate() without "
              "step()); its step() would return to that point first");
  TORCH_CHECK(closure != nullptr, kWho, "the closure is empty");
}

// The closure with a zero loss when it returns none (a validation closure need not compute one).
Closure with_loss(const Closure& closure) {
  return [&closure]() {
    ProblemState st = closure();
    if (!st.loss.defined()) st.loss = torch::zeros({}, torch::kFloat64);
    return st;
  };
}

// The dual half-step, under NoGradGuard. Under kSkipStep the Transaction restores the
// multipliers, the dual optimizer's state and the penalties when a check fails or anything
// throws after the dual step.
StepResult dual_only_step(StepEngine& e, const Closure& closure) {
  torch::NoGradGuard no_grad;
  StepResult result = e.start_result();
  Evaluation eval;
  Transaction tx;
  if (!e.evaluate(with_loss(closure), eval, result, Stage::kValidation, Taken::kNothing)) {
    return result;
  }
  for (auto& item : eval.items) e.read_coefficients(item);  // the values before the step
  e.write_dual_gradients(eval);
  if (e.skipping()) e.snapshot_penalties(eval, tx.snapshot());
  if (e.checked_dual_step(eval, result, tx, Taken::kDual, Stage::kValidation)) {
    e.update_penalties(eval, result);
    e.record(eval, result, /*watch=*/false);
    tx.commit();
  }
  return result;
}

}  // namespace

StepResult ConstrainedOptimizer::dual_step(const Closure& closure) {
  StepEngine& e = *engine_;
  check_dual_player(e, *this, closure);
  try {
    return dual_only_step(e, closure);
  } catch (const NonFiniteError&) {
    throw;  // already names dual_step
  } catch (const c10::Error& err) {
    // The engine's checks are shared with step(): name the function that was called.
    std::string msg = err.msg();
    const std::string step_prefix = "ConstrainedOptimizer::step: ";
    if (msg.compare(0, step_prefix.size(), step_prefix) == 0) msg.erase(0, step_prefix.size());
    TORCH_CHECK(false, kWho, msg);
  }
}

}  // namespace feasible
