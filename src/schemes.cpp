// The five schemes, each written with the step engine (src/step_engine.h): a Transaction undoes
// a half-step when a later part of the step is skipped or throws (under kSkipStep; under kThrow
// it holds no copies).
#include "feasible/optim/extra.h"
#include "feasible/optimizer.h"
#include "src/step_engine.h"

namespace feasible {

using detail::After;
using detail::Evaluation;
using detail::Stage;
using detail::StepEngine;
using detail::Taken;
using detail::Transaction;

StepResult SimultaneousOptimizer::step(const Closure& closure) {
  StepEngine& e = engine();
  StepResult result = e.start_result();
  Evaluation eval;
  Transaction tx;
  if (e.evaluate_backward(closure, eval, result, Stage::kFirst, Taken::kNothing)) {
    e.record(eval, result);
    e.write_dual_gradients(eval);
    // The dual step first: both steps read this evaluation, so the order does not change the
    // iterates, and a bad multiplier is found before the primal step (nothing to undo there).
    // A later throw (e.g. a user projection) undoes the dual step too.
    if (e.checked_dual_step(eval, result, tx, Taken::kDual)) {
      e.update_penalties(eval, result);
      e.primal_step();
      tx.commit();
    }
  }
  e.finish();
  return result;
}

StepResult AlternatingDualPrimalOptimizer::step(const Closure& closure) {
  StepEngine& e = engine();
  StepResult result = e.start_result();
  Evaluation eval;
  Transaction tx;  // the primal gradient comes after the dual step and the penalty update
  if (e.evaluate(closure, eval, result, Stage::kFirst, Taken::kNothing)) {
    e.write_dual_gradients(eval);
    if (e.skipping()) e.snapshot_penalties(eval, tx.snapshot());
    if (e.checked_dual_step(eval, result, tx, Taken::kDual)) {
      e.update_penalties(eval, result);
      if (e.backward(eval, result, Stage::kFirst, Taken::kDualPenalty)) {  // uses lambda_{t+1}
        e.record(eval, result);
        e.primal_step();
        tx.commit();
      }
    }
  }
  e.finish();
  return result;
}

namespace {

// Runs `f`, AlternatingPrimalDual's work at x_{t+1} (the second evaluation and the dual
// gradients it gives, which may evaluate an implicit multiplier's model). A misuse error is
// prefixed with what became of the primal step; a NonFiniteError already says it.
template <class F>
bool after_primal_step(StepEngine& e, F&& f) {
  try {
    return f();
  } catch (const NonFiniteError&) {
    throw;
  } catch (const c10::Error& err) {
    TORCH_CHECK(!e.skipping(),
                "AlternatingPrimalDualOptimizer: second evaluation (the primal step was "
                "undone): ",
                err.msg());
    TORCH_CHECK(false,
                "AlternatingPrimalDualOptimizer: second evaluation, after the primal step was "
                "taken: ",
                err.msg());
  }
}

// AlternatingPrimalDual's evaluation at x_{t+1} (no-grad).
bool evaluate_after_primal_step(StepEngine& e, const Closure& closure,
                                const Closure& constraint_closure, Evaluation& second,
                                StepResult& result) {
  torch::NoGradGuard no_grad;
  if (!constraint_closure) {
    return e.evaluate(closure, second, result, Stage::kSecond, Taken::kPrimal);
  }
  const Closure wrapped = [&]() {
    ProblemState st = constraint_closure();
    if (!st.loss.defined()) st.loss = torch::zeros({}, torch::kFloat64);
    return st;
  };
  return e.evaluate(wrapped, second, result, Stage::kSecond, Taken::kPrimal);
}

}  // namespace

StepResult AlternatingPrimalDualOptimizer::step(const Closure& closure) {
  return step(closure, nullptr);
}

StepResult AlternatingPrimalDualOptimizer::step(const Closure& closure,
                                                const Closure& constraint_closure) {
  StepEngine& e = engine();
  StepResult result = e.start_result();
  Evaluation first;
  Evaluation second;
  Transaction tx;  // under kSkipStep, undoes the primal step if the rest of the step fails
  if (e.evaluate_backward(closure, first, result, Stage::kFirst, Taken::kNothing)) {
    e.record(first, result);
    if (e.skipping()) e.snapshot_primal(tx.snapshot(), /*parameters=*/true, /*all_states=*/false);
    e.primal_step();
    const bool evaluated = after_primal_step(e, [&] {
      if (!evaluate_after_primal_step(e, closure, constraint_closure, second, result)) {
        return false;
      }
      e.write_dual_gradients(second);
      return true;
    });
    if (evaluated && e.checked_dual_step(second, result, tx, Taken::kPrimalDual)) {
      tx.commit();  // the penalty update is not undone
      e.update_penalties(second, result);
    }
  }
  e.finish();
  return result;
}

namespace {
void check_extrapolation(const std::shared_ptr<torch::optim::Optimizer>& opt,
                         const std::string& which) {
  TORCH_CHECK(std::dynamic_pointer_cast<optim::ExtrapolationOptimizer>(opt) != nullptr,
              "ExtragradientOptimizer: the ", which,
              " optimizer has no extrapolation step; use feasible::optim::ExtraSGD or "
              "ExtraAdam (any feasible::optim::ExtrapolationOptimizer)");
}
}  // namespace

ExtragradientOptimizer::ExtragradientOptimizer(
    Problem problem, std::vector<std::shared_ptr<torch::optim::Optimizer>> primal,
    std::shared_ptr<torch::optim::Optimizer> dual, ConstrainedOptimizerOptions options)
    : ConstrainedOptimizer(std::move(problem), std::move(primal), std::move(dual), options) {
  for (const auto& opt : primal_optimizers()) check_extrapolation(opt, "primal");
  if (dual_optimizer()) check_extrapolation(dual_optimizer(), "dual");
  for (const auto& c : this->problem().constraints()) {
    TORCH_CHECK(!c.options().sparse_gradient(), "ExtragradientOptimizer: constraint '", c.name(),
                "' uses ConstraintOptions.sparse_gradient, which the extrapolation optimizers do "
                "not support; use dense-row gradients (the default) or lazy(true)");
  }
}

StepResult ExtragradientOptimizer::step(const Closure& closure) {
  StepEngine& e = engine();
  StepResult result = e.start_result();
  Evaluation first;
  Evaluation half;
  if (e.evaluate_backward(closure, first, result, Stage::kFirst, Taken::kNothing)) {
    e.write_dual_gradients(first);
    e.record(first, result);
    // Any throw or skip from here returns both players to (x_t, lambda_t) through the
    // extrapolation optimizers' saved point; under kSkipStep the copies (the whole state of both
    // players' optimizers and every multiplier) restore the rest.
    Transaction tx;
    tx.on_rollback([&e] { e.restore_extrapolation(); });
    if (e.skipping()) {
      e.snapshot_primal(tx.snapshot(), /*parameters=*/false, /*all_states=*/true);
      e.snapshot_dual(first, tx.snapshot(), /*all=*/true);
    }
    e.primal_extrapolate();
    e.dual_extrapolate();
    if (e.check_multipliers(first, result, Stage::kHalf, After::kExtrapolation,
                            Taken::kHalfReturned) &&
        e.evaluate_backward(closure, half, result, Stage::kHalf, Taken::kHalfReturned)) {
      e.write_dual_gradients(half);
      // The dual update first, from lambda_t (so that lazy indexed multipliers keep lambda_t in
      // rows the half point did not observe), with the half-point gradients: a bad multiplier
      // is then found while x_t is still the saved point.
      e.restore_dual_extrapolation();
      e.dual_step();
      if (e.check_multipliers(half, result, Stage::kFirst, After::kDualStep,
                              Taken::kFinalReturned)) {
        if (e.skipping()) e.snapshot_penalties(half, tx.snapshot());
        e.update_penalties(half, result);
        e.primal_step();  // restores x_t, steps with the half-point gradients, projects
        tx.commit();
      }
    }
  }
  e.finish();
  return result;
}

UnconstrainedOptimizer::UnconstrainedOptimizer(
    Problem problem, std::vector<std::shared_ptr<torch::optim::Optimizer>> primal,
    ConstrainedOptimizerOptions options)
    : ConstrainedOptimizer(std::move(problem), std::move(primal), nullptr, options) {}

StepResult UnconstrainedOptimizer::step(const Closure& closure) {
  StepEngine& e = engine();
  StepResult result = e.start_result();
  Evaluation eval;
  if (e.evaluate_backward(closure, eval, result, Stage::kFirst, Taken::kNothing)) {
    e.record(eval, result);
    e.primal_step();
    e.update_penalties(eval, result);
  }
  e.finish();
  return result;
}

}  // namespace feasible
