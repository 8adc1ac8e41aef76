// The fused dual steps (StepEngine::fused_dual_step): when the dual optimizer is a plain
// torch::optim::SGD, a feasible::optim::NuPI or a feasible::optim::AugmentedDual (the default
// optimizer's, whose own step is already one pass per multiplier) over dense CPU multipliers,
// its update, the projection onto the multipliers' bounds and the non-finite check take a few
// passes over each multiplier instead of a dozen tensor operations. The iterates are bit for bit
// those of the general path (optimizer step, Multiplier::project, check_multipliers): every value
// is computed by the same IEEE operations in the same order (this file is compiled with
// -ffp-contract=off, so no multiply-add is fused), and the final `p += -lr * update` is LibTorch's
// own add_. tests/fused_dual_test.cpp runs both paths side by side.
#include <cmath>
#include <typeinfo>

#include "feasible/optim/augmented_dual.h"
#include "feasible/optim/nupi.h"
#include "src/step_engine.h"

namespace feasible {
namespace detail {
namespace {

using optim::NuPI;
using optim::NuPIInit;
using optim::NuPIOptions;
using optim::NuPIParamState;

// Projects n values onto [lo, hi] in place (NaN stays NaN, as with clamp_); whether all are
// finite afterwards.
template <typename T>
bool project_and_check(T* p, int64_t n, T lo, T hi) {
  bool finite = true;
  for (int64_t i = 0; i < n; ++i) {
    T x = p[i];
    if (x < lo) {
      x = lo;
    } else if (x > hi) {
      x = hi;
    }
    p[i] = x;
    finite = finite && std::isfinite(x);
  }
  return finite;
}

// Whether every group of the SGD is plain gradient descent (no momentum, no weight decay).
bool sgd_is_plain(const torch::optim::Optimizer& dual) {
  for (const auto& group : dual.param_groups()) {
    const auto& o = static_cast<const torch::optim::SGDOptions&>(group.options());
    if (o.momentum() != 0 || o.weight_decay() != 0 || o.nesterov()) return false;
  }
  return true;
}

// SGD's own update, p += -lr * grad (as torch::optim::SGD::step computes it).
void sgd_update(torch::optim::Optimizer& dual) {
  for (auto& group : dual.param_groups()) {
    const double lr = group.options().get_lr();
    for (auto& p : group.params()) {
      if (p.grad().defined()) p.add_(p.grad(), -1 * lr);
    }
  }
}

// Whether `t` is a contiguous CPU tensor of `type` with `n` entries.
bool plain_tensor(const torch::Tensor& t, torch::ScalarType type, int64_t n) {
  return t.defined() && t.device().is_cpu() && !t.is_sparse() && t.is_contiguous() &&
         t.scalar_type() == type && t.numel() == n;
}

// Whether NuPI's dense update of every parameter with a gradient can be fused: scalar gains,
// dense gradients and states (if any) of the parameter's dtype, contiguous, on the CPU.
bool nupi_fusable(NuPI& dual) {
  auto& states = dual.state();
  for (const auto& group : dual.param_groups()) {
    const auto& o = static_cast<const NuPIOptions&>(group.options());
    if (o.kp_per_entry().defined() || o.ki_per_entry().defined()) return false;
    for (const auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      const auto type = p.scalar_type();
      if (!plain_tensor(p.grad(), type, p.numel())) return false;
      auto it = states.find(key_of(p));
      if (it == states.end()) continue;
      const auto* st = dynamic_cast<const NuPIParamState*>(it->second.get());
      if (st == nullptr || !plain_tensor(st->xi(), type, p.numel()) ||
          !plain_tensor(st->seen(), torch::kBool, p.numel())) {
        return false;
      }
    }
  }
  return true;
}

// The nuPI recurrence of one parameter, entry by entry, with the operations (and roundings) of
// NuPI::step's dense branch:
//   xi_prev = e where not seen yet (SGD start), else xi;  xi = nu xi_prev + (1 - nu) e
//   update  = ki e + kp (xi - xi_prev)
// xi and seen are updated in place; the update goes to `update`.
template <typename T>
void nupi_entries(const T* e, T* xi, bool* seen, T* update, int64_t n, const NuPIOptions& o) {
  const bool sgd_start = o.init() == NuPIInit::kSGD;
  const T nu = static_cast<T>(o.nu());
  const T one_minus_nu = static_cast<T>(1.0 - o.nu());
  const T ki = static_cast<T>(o.ki());
  const T kp = static_cast<T>(o.kp());
  for (int64_t i = 0; i < n; ++i) {
    const T xi_prev = sgd_start && !seen[i] ? e[i] : xi[i];
    const T a = nu * xi_prev;
    const T b = one_minus_nu * e[i];
    const T xi_new = a + b;
    const T c = ki * e[i];
    const T d = xi_new - xi_prev;
    const T f = kp * d;
    update[i] = c + f;
    xi[i] = xi_new;
    seen[i] = true;
  }
}

// NuPI's step over every parameter with a gradient (nupi_fusable holds): the recurrence in one
// pass, then p.add_(update, -lr) as NuPI::step does it. `scratch` keeps the update buffers.
void nupi_update(NuPI& dual, std::vector<torch::Tensor>& scratch) {
  auto& states = dual.state();
  size_t k = 0;
  for (auto& group : dual.param_groups()) {
    const auto& o = static_cast<const NuPIOptions&>(group.options());
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      auto it = states.find(key_of(p));
      if (it == states.end()) {
        auto st = std::make_unique<NuPIParamState>();
        st->xi(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        st->seen(torch::zeros(p.sizes(), p.options().dtype(torch::kBool)));
        it = states.emplace(key_of(p), std::move(st)).first;
      }
      auto& st = static_cast<NuPIParamState&>(*it->second);
      if (k == scratch.size()) scratch.emplace_back();
      torch::Tensor& update = scratch[k++];
      if (!plain_tensor(update, p.scalar_type(), p.numel())) update = torch::empty_like(p.detach());
      const torch::Tensor& g = p.grad();
      AT_DISPATCH_FLOATING_TYPES(p.scalar_type(), "nupi", [&] {
        nupi_entries<scalar_t>(g.data_ptr<scalar_t>(), st.xi().data_ptr<scalar_t>(),
                               st.seen().data_ptr<bool>(), update.data_ptr<scalar_t>(), p.numel(),
                               o);
      });
      p.add_(update, -o.lr());
      st.step(st.step() + 1);
    }
  }
}

}  // namespace

// Whether the dual step can take a fused path: a plain torch::optim::SGD, feasible::optim::NuPI
// or feasible::optim::AugmentedDual (exactly these types; SGD's and NuPI's options are checked at
// each step) over dense multipliers of float or double on the CPU.
StepEngine::FusedDual StepEngine::fusable_dual() const {
  if (!dual_) return FusedDual::kNone;
  FusedDual kind = FusedDual::kNone;
  if (typeid(*dual_) == typeid(torch::optim::SGD)) kind = FusedDual::kSGD;
  if (typeid(*dual_) == typeid(NuPI)) kind = FusedDual::kNuPI;
  if (typeid(*dual_) == typeid(optim::AugmentedDual)) kind = FusedDual::kAugmented;
  if (kind == FusedDual::kNone) return kind;
  for (const auto& m : multipliers_) {
    if (typeid(*m) != typeid(DenseMultiplier)) return FusedDual::kNone;
    const torch::Tensor& v = static_cast<const DenseMultiplier&>(*m).parameter();
    const auto type = v.scalar_type();
    if (!v.device().is_cpu() || !v.is_contiguous() ||
        (type != torch::kFloat && type != torch::kDouble)) {
      return FusedDual::kNone;
    }
  }
  return kind;
}

// The fused dual step: the optimizer's update, then the projection onto each multiplier's
// bounds and the finite check in one pass over it. `bad`: the first observed constraint (in
// evaluation order) whose multiplier is not finite. False (nothing done) when the path does not
// apply; then the general path runs.
bool StepEngine::fused_dual_step(Evaluation& eval, const Constraint*& bad) {
  if (fused_ == FusedDual::kNone) return false;
  for (const auto& params : multiplier_parameters_) {
    // Checked when the optimizer was built; a module moved since (Module::to) is not fused.
    if (!params.empty() && !plain_tensor(params[0], params[0].scalar_type(), params[0].numel())) {
      return false;
    }
  }
  torch::NoGradGuard no_grad;
  if (fused_ == FusedDual::kSGD) {
    if (!sgd_is_plain(*dual_)) return false;
    sgd_update(*dual_);
  } else if (fused_ == FusedDual::kAugmented) {
    run_dual_optimizer();  // one pass per multiplier of its own (it clamps to the same bounds)
  } else {
    auto& nupi = static_cast<NuPI&>(*dual_);
    if (!nupi_fusable(nupi)) return false;
    nupi_update(nupi, fused_scratch_);
  }
  std::vector<bool>& finite = fused_finite_;
  finite.assign(multiplier_parameters_.size(), true);
  for (const auto& c : problem_.constraints()) {
    const auto& m = c.multiplier();
    if (!m) continue;
    const auto range = m->bounds();
    torch::Tensor& v = multiplier_parameters_[c.index()][0];
    AT_DISPATCH_FLOATING_TYPES(v.scalar_type(), "project", [&] {
      finite[c.index()] = project_and_check<scalar_t>(v.data_ptr<scalar_t>(), v.numel(),
                                                      static_cast<scalar_t>(range.first),
                                                      static_cast<scalar_t>(range.second));
    });
  }
  for (const auto& item : eval.items) {
    if (!item.constraint.multiplier() || !item.state->contributes_to_dual()) continue;
    if (!finite[item.constraint.index()]) {
      bad = &item.constraint;
      break;
    }
  }
  return true;
}

}  // namespace detail
}  // namespace feasible
