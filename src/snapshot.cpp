// The copies behind NonFinitePolicy::kSkipStep: Snapshot, the Transaction that restores it, and
// what each half-step copies.
#include <sstream>
#include <unordered_set>

#include "feasible/optim/extra.h"
#include "feasible/optim/nupi.h"
#include "src/optimizer_traits.h"
#include "src/step_engine.h"

namespace feasible {
namespace detail {

// ------------------------------------------------------------------ Snapshot

void Snapshot::tensor(const torch::Tensor& t) {
  tensors_.push_back({t, torch::Tensor(), t.detach().clone()});
}

void Snapshot::rows(const torch::Tensor& t, const torch::Tensor& idx) {
  tensors_.push_back({t, idx, t.detach().index_select(0, idx)});
}

void Snapshot::optimizer(torch::optim::Optimizer& opt, bool all) {
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
      states_.push_back(std::move(s));
    }
  }
}

void Snapshot::restore() {
  torch::NoGradGuard no_grad;
  for (auto it = tensors_.rbegin(); it != tensors_.rend(); ++it) {
    torch::Tensor target = it->target.detach();
    if (it->rows.defined()) {
      target.index_copy_(0, it->rows, it->values);
    } else {
      target.copy_(it->values);
    }
  }
  for (auto it = states_.rbegin(); it != states_.rend(); ++it) {
    auto& map = it->optimizer->state();
    if (!it->state) {
      map.erase(it->key);
      continue;
    }
    map[it->key] = std::move(it->state);
    for (auto& r : it->rows) r.target.index_copy_(0, r.rows, r.values);
  }
  tensors_.clear();
  states_.clear();
}

// ------------------------------------------------------------------ Transaction

Transaction::~Transaction() noexcept(false) {
  if (committed_) return;
  const bool unwinding = std::uncaught_exceptions() > exceptions_;
  try {
    if (rollback_) rollback_();
    snapshot_.restore();
  } catch (...) {
    if (!unwinding) throw;  // during unwinding, the first error is the one to report
  }
}

// ------------------------------------------------------------------ what a half-step copies

void StepEngine::snapshot_dual(Evaluation& eval, Snapshot& snapshot, bool all) {
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
      const torch::Tensor rows = m->movable_rows(item.sidx);
      if (rows.defined()) {
        // Only these rows can move (the multiplier's rule, e.g. lazy or sparse indexed rows).
        if (rows.numel() > 0) snapshot.rows(m->parameters()[0], rows);
      } else {
        for (const auto& p : m->parameters()) snapshot.tensor(p);
      }
    }
  }
  snapshot.optimizer(*dual_, all);
}

void StepEngine::snapshot_penalties(Evaluation& eval, Snapshot& snapshot) {
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

void StepEngine::snapshot_primal(Snapshot& snapshot, bool parameters, bool all_states) {
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

}  // namespace detail
}  // namespace feasible
