// The default constrained optimizer (include/feasible/defaults.h).
#include "feasible/defaults.h"

#include "feasible/formulation.h"
#include "feasible/synchronizer.h"
#include "src/default_calibration.h"
#include "src/step_engine.h"
#include "src/validate.h"

namespace feasible {

using detail::Evaluation;
using detail::Stage;
using detail::StepEngine;
using detail::Taken;
using detail::Transaction;

void DefaultOptions::validate() const {
  const detail::Validator check("DefaultOptions");
  check.at_least("max_calibration_interval", max_calibration_interval(), int64_t{1});
  check.one_of(
      "non_finite",
      non_finite() == NonFinitePolicy::kThrow || non_finite() == NonFinitePolicy::kSkipStep,
      "NonFinitePolicy::kThrow or kSkipStep", non_finite());
}

struct DefaultOptimizer::Calibration {
  Calibration(const std::vector<std::shared_ptr<torch::optim::Optimizer>>& primal,
              std::shared_ptr<optim::AugmentedDual> dual, int64_t cap)
      : metric(primal), schedule(cap), dual(std::move(dual)) {
    curvature.fraction = kPenaltyFraction;
    curvature.momentum = detail::primal_momentum(primal);
    curvature.beta = kBaseShare * (1.0 - curvature.momentum);
  }
  detail::PrimalMetric metric;
  detail::CalibrationSchedule schedule;
  std::shared_ptr<optim::AugmentedDual> dual;
  detail::CurvatureOptions curvature;
  int64_t count = 0;
};

namespace {

const detail::VisitRule kVisit{DefaultOptimizer::kVisitStep, DefaultOptimizer::kVisitCap};

// Every rank's penalties (and the multipliers' intervals, which the saturation cap sets from the
// batch) become rank 0's (the calibration read each rank's own batch). The list has the same
// length on every rank: make_dual() gives every multiplier a state with a (zero) penalty at
// construction, and shares are set only at the measuring calibrations of an SGD primal, which
// the step alone decides (the schedule), and for the indexed inequality constraints the closure
// observed, which every rank observes alike (a constraint observed on some ranks only is
// refused), never from the rank's data.
void share_penalties(Synchronizer& sync, const Problem& problem, optim::AugmentedDual& dual) {
  std::vector<torch::Tensor> penalties;
  std::vector<torch::Tensor> params;
  for (const auto& p : problem.dual_parameters()) {
    const auto* state = dual.state_of(p);
    if (state == nullptr) continue;
    params.push_back(p);
    if (state->penalty().defined()) penalties.push_back(state->penalty());
    if (state->share().defined()) penalties.push_back(state->share());
    penalties.push_back(torch::tensor({state->lower(), state->upper()}, torch::kFloat64));
  }
  sync.share_from_root(penalties);
  size_t k = 0;
  for (const auto& p : params) {
    const auto* state = dual.state_of(p);
    k += static_cast<size_t>(state->penalty().defined()) + state->share().defined();
    const torch::Tensor& range = penalties[k++];
    dual.set_penalty(p, state->penalty(), range[0].item<double>(), range[1].item<double>(),
                     torch::Tensor(), state->factor());
  }
}

// Checks that every constraint is one the default handles; the dual optimizer over the
// multipliers (nullptr when there are none), every penalty 0 until the first calibration.
std::shared_ptr<optim::AugmentedDual> make_dual(
    const Problem& problem, const std::vector<std::shared_ptr<torch::optim::Optimizer>>& primal) {
  for (const auto& c : problem.constraints()) {
    const auto& o = c.options();
    TORCH_CHECK(dynamic_cast<const Lagrangian*>(o.formulation().get()) != nullptr,
                "make_default_optimizer: constraint '", c.name(), "' uses ",
                o.formulation()->name(),
                "; the default sets the penalty itself: register it with the default "
                "formulation (Lagrangian)");
    TORCH_CHECK(o.multiplier() != MultiplierKind::kImplicit, "make_default_optimizer: constraint '",
                c.name(),
                "' has an implicit multiplier; the default supports dense and indexed ones");
    TORCH_CHECK(!o.sparse_gradient(), "make_default_optimizer: constraint '", c.name(),
                "' has sparse_gradient(true); the default needs dense gradient rows");
  }
  std::vector<torch::Tensor> duals = problem.dual_parameters();
  if (duals.empty()) return nullptr;
  const double beta = DefaultOptimizer::kBaseShare * (1.0 - detail::primal_momentum(primal));
  auto dual = std::make_shared<optim::AugmentedDual>(
      duals,
      optim::AugmentedDualOptions(beta).windup_guard(1.0 - DefaultOptimizer::kPenaltyFraction));
  for (const auto& c : problem.constraints()) {
    const auto range = c.multiplier()->bounds();
    dual->set_penalty(c.multiplier()->parameters()[0], torch::zeros({}), range.first, range.second);
  }
  return dual;
}

ConstrainedOptimizerOptions engine_options(const DefaultOptions& options) {
  options.validate();
  return ConstrainedOptimizerOptions().non_finite(options.non_finite());
}

}  // namespace

DefaultOptimizer::DefaultOptimizer(Problem problem,
                                   std::vector<std::shared_ptr<torch::optim::Optimizer>> primal,
                                   DefaultOptions options)
    : ConstrainedOptimizer(problem, primal, make_dual(problem, primal), engine_options(options)),
      options_(options) {
  calibration_ = std::make_unique<Calibration>(
      primal, std::static_pointer_cast<optim::AugmentedDual>(dual_optimizer()),
      options.max_calibration_interval());
  if (calibration_->dual) engine().dual_directions = detail::visit_directions;
}

DefaultOptimizer::~DefaultOptimizer() = default;

StepResult DefaultOptimizer::step(const Closure& closure) {
  StepEngine& e = engine();
  StepResult result = e.start_result();
  Evaluation eval;
  Transaction tx;  // the primal gradient comes after the dual step
  if (e.evaluate(closure, eval, result, Stage::kFirst, Taken::kNothing)) {
    Calibration& cal = *calibration_;
    if (cal.dual && cal.schedule.due(e.iteration_)) {
      if (detail::calibrate_penalties(eval, cal.metric, *cal.dual, kPenaltyFraction,
                                      static_cast<uint64_t>(e.iteration_), &cal.curvature,
                                      cal.schedule.measures(), kBalanceCap, &kVisit)) {
        ++cal.count;
      }
      // Data-parallel: each rank calibrated on its own batch; all use rank 0's penalties.
      if (e.sync_) share_penalties(*e.sync_, problem(), *cal.dual);
    }
    e.write_dual_gradients(eval);  // with the per-visit directions (the constructor sets them)
    if (e.checked_dual_step(eval, result, tx, Taken::kDual) &&
        e.backward(eval, result, Stage::kFirst, Taken::kDual)) {  // uses lambda_{t+1}
      e.record(eval, result);
      e.primal_step();
      tx.commit();
    }
  }
  e.finish();
  return result;
}

torch::Tensor DefaultOptimizer::penalty(const Constraint& constraint) const {
  TORCH_CHECK(constraint.defined() && constraint.problem_id() == problem().id(),
              "DefaultOptimizer::penalty: the constraint is not one of this optimizer's problem");
  const auto& dual = calibration_->dual;
  if (!dual || !constraint.multiplier()) return torch::zeros({constraint.size()});
  const auto* st = dual->state_of(constraint.multiplier()->parameters()[0]);
  return st->penalty().detach().clone();
}

int64_t DefaultOptimizer::calibrations() const { return calibration_->count; }

std::unique_ptr<DefaultOptimizer> make_default_optimizer(
    Problem problem, std::vector<std::shared_ptr<torch::optim::Optimizer>> primal,
    DefaultOptions options) {
  return std::make_unique<DefaultOptimizer>(std::move(problem), std::move(primal), options);
}

std::unique_ptr<DefaultOptimizer> make_default_optimizer(
    Problem problem, std::shared_ptr<torch::optim::Optimizer> primal, DefaultOptions options) {
  return make_default_optimizer(
      std::move(problem), std::vector<std::shared_ptr<torch::optim::Optimizer>>{primal}, options);
}

}  // namespace feasible
