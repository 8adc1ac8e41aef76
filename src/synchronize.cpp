// The step engine's side of data-parallel training: what an evaluation and a backward pass hand
// to the synchronizer (feasible/synchronizer.h), and what they take back.
#include "src/step_engine.h"

namespace feasible {
namespace detail {

void StepEngine::begin_exchange(Evaluation& eval, int64_t bad, SyncedEvaluation& ex) {
  const auto& constraints = problem_.constraints();
  ex.constraints.resize(constraints.size());
  for (size_t i = 0; i < constraints.size(); ++i) {
    const Constraint& c = constraints[i];
    auto& sc = ex.constraints[i];
    sc.name = c.name();
    sc.size = c.size();
    sc.indexed = c.options().multiplier() == MultiplierKind::kIndexed;
    sc.implicit = c.options().multiplier() == MultiplierKind::kImplicit;
  }
  for (auto& item : eval.items) {
    auto& sc = ex.constraints[item.constraint.index()];
    sc.observed = true;
    sc.strict = item.s;
    sc.indices = item.sidx;
  }
  ex.first_bad = bad;
  sync_->begin_evaluation(ex);
}

int64_t StepEngine::finish_exchange(Evaluation& eval, SyncedEvaluation& ex, int& bad_rank) {
  sync_->finish_evaluation(ex);
  for (auto& item : eval.items) {
    auto& sc = ex.constraints[item.constraint.index()];
    item.s = sc.strict;
    if (sc.indexed) item.sidx = sc.indices;
  }
  bad_rank = ex.bad_rank;
  return ex.first_bad;
}

int64_t StepEngine::synchronize_evaluation(Evaluation& eval, int64_t bad, int& bad_rank) {
  SyncedEvaluation ex;
  begin_exchange(eval, bad, ex);
  return finish_exchange(eval, ex, bad_rank);
}

std::vector<torch::Tensor> StepEngine::primal_parameters() const {
  std::vector<torch::Tensor> params;
  for (const auto& opt : primal_) {
    for (const auto& g : opt->param_groups()) {
      for (const auto& p : g.params()) {
        if (p.requires_grad()) params.push_back(p);
      }
    }
  }
  return params;
}

void StepEngine::synchronize_gradients() {
  std::vector<torch::Tensor> params = primal_parameters();
  sync_->synchronize_gradients(params);
}

}  // namespace detail
}  // namespace feasible
