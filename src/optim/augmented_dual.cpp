// AugmentedDual (include/feasible/optim/augmented_dual.h): options, parameter state, optimizer.
#include "feasible/optim/augmented_dual.h"

#include <ATen/Dispatch.h>
#include <torch/optim/serialize.h>

#include <algorithm>
#include <cmath>

#include "src/state_key.h"
#include "src/validate.h"

namespace feasible {
namespace optim {

namespace {
using detail::key_of;

double read_double(torch::serialize::InputArchive& archive, const char* key) {
  torch::Tensor t;
  archive.read(key, t, true);
  return t.item<double>();
}
}  // namespace

AugmentedDualOptions::AugmentedDualOptions(double beta) : beta_(beta) {}

void AugmentedDualOptions::validate() const {
  const detail::Validator check("AugmentedDualOptions");
  check.require(beta() > 0 && beta() <= 1, "beta", "be in (0, 1]", beta());
  check.require(windup_guard() >= 0 && windup_guard() < 1, "windup_guard", "be in [0, 1)",
                windup_guard());
}

void AugmentedDualOptions::serialize(torch::serialize::OutputArchive& archive) const {
  archive.write("beta", torch::tensor(beta_, torch::kFloat64));
  archive.write("windup_guard", torch::tensor(windup_guard_, torch::kFloat64));
}

void AugmentedDualOptions::serialize(torch::serialize::InputArchive& archive) {
  beta_ = read_double(archive, "beta");
  windup_guard_ = read_double(archive, "windup_guard");
}

void AugmentedDualParamState::serialize(torch::serialize::OutputArchive& archive) const {
  archive.write("base", base_, true);
  archive.write("penalty", penalty_, true);
  archive.write("previous", previous_, true);
  archive.write("lower", torch::tensor(lower_, torch::kFloat64), true);
  archive.write("upper", torch::tensor(upper_, torch::kFloat64), true);
  archive.write("step", torch::tensor(step_), true);
  if (share_.defined()) archive.write("share", share_, true);
  archive.write("factor", torch::tensor(factor_, torch::kFloat64), true);
}

void AugmentedDualParamState::serialize(torch::serialize::InputArchive& archive) {
  archive.read("base", base_, true);
  archive.read("penalty", penalty_, true);
  archive.read("previous", previous_, true);
  lower_ = read_double(archive, "lower");
  upper_ = read_double(archive, "upper");
  torch::Tensor t;
  archive.read("step", t, true);
  step_ = t.item<int64_t>();
  torch::Tensor share;
  share_ = archive.try_read("share", share, true) ? share : torch::Tensor();
  torch::Tensor factor;
  factor_ = archive.try_read("factor", factor, true) ? factor.item<double>() : 1.0;
}

namespace {

// The windup guard's weight of one entry (1 with the guard off, r0 = 0): see
// AugmentedDualOptions::windup_guard.
double windup_weight(double g, double g_prev, double r0) {
  if (r0 == 0 || g_prev == 0) return 1.0;
  const double r = g / g_prev;
  if (r < 0) return 1.0;
  return std::min(1.0, std::max(0.0, (r - r0) / (1 - r0)));
}

// The weights of a whole tensor, as windup_weight per entry (tensor path).
torch::Tensor windup_weights(const torch::Tensor& g, const torch::Tensor& g_prev, double r0) {
  const torch::Tensor r = g / g_prev;
  const torch::Tensor w = ((r - r0) / (1 - r0)).clamp_(0, 1);
  return torch::where((g_prev == 0).logical_or_(r < 0), torch::ones_like(w), w);
}

// The update in one pass over the values (contiguous CPU tensors of one floating dtype, as a
// dense multiplier's are): the same arithmetic as the tensor expressions of step(), in the same
// order (ATen's kernels may fuse a multiply-add there, so the last bit may differ). False
// (nothing done) when the tensors do not qualify.
bool update_in_place(torch::Tensor& p, AugmentedDualParamState& st, double beta, double r0) {
  const torch::Tensor& g = p.grad();
  const torch::Tensor& base = st.base();
  const torch::Tensor& c = st.penalty();
  const torch::Tensor& prev = st.previous();
  const torch::Tensor& share = st.share();  // undefined: beta for every entry
  for (const torch::Tensor* t : {&g, &base, &c, &prev, &share}) {
    if (t == &share && !share.defined()) continue;
    if (!t->is_cpu() || !t->is_contiguous() || t->scalar_type() != p.scalar_type() ||
        t->numel() != p.numel()) {
      return false;
    }
  }
  if (!p.is_cpu() || !p.is_contiguous()) return false;
  bool done = false;
  AT_DISPATCH_FLOATING_TYPES(p.scalar_type(), "AugmentedDual", [&] {
    scalar_t* lam = p.data_ptr<scalar_t>();
    scalar_t* bar = base.data_ptr<scalar_t>();
    const scalar_t* grad = g.data_ptr<scalar_t>();
    const scalar_t* pen = c.data_ptr<scalar_t>();
    scalar_t* last = prev.data_ptr<scalar_t>();
    const scalar_t* shares = share.defined() ? share.data_ptr<scalar_t>() : nullptr;
    const auto b = static_cast<scalar_t>(beta);
    const auto lo = static_cast<scalar_t>(st.lower()), hi = static_cast<scalar_t>(st.upper());
    auto clamp = [&](scalar_t x) { return x < lo ? lo : (x > hi ? hi : x); };
    for (int64_t i = 0; i < p.numel(); ++i) {
      const scalar_t step = pen[i] * grad[i];
      lam[i] = clamp(bar[i] - step);
      const scalar_t w = static_cast<scalar_t>(windup_weight(grad[i], last[i], r0));
      bar[i] = clamp(bar[i] - w * (shares ? shares[i] : b) * step);
      if (grad[i] != 0) last[i] = grad[i];
    }
    done = true;
  });
  return done;
}

}  // namespace

AugmentedDual::AugmentedDual(std::vector<torch::Tensor> params, AugmentedDualOptions defaults)
    : torch::optim::Optimizer({torch::optim::OptimizerParamGroup(std::move(params))},
                              std::make_unique<AugmentedDualOptions>(defaults)) {
  defaults.validate();
}

torch::Tensor AugmentedDual::step(LossClosure closure) {
  torch::NoGradGuard no_grad;
  torch::Tensor loss;
  if (closure != nullptr) {
    at::AutoGradMode enable_grad(true);
    loss = closure();
  }
  for (auto& group : param_groups_) {
    const auto& options = static_cast<const AugmentedDualOptions&>(group.options());
    const double beta = options.beta(), r0 = options.windup_guard();
    for (size_t i = 0; i < group.params().size(); ++i) {
      torch::Tensor& p = group.params()[i];
      if (!p.grad().defined()) continue;
      TORCH_CHECK(!p.grad().is_sparse(), "AugmentedDual: parameter ", i,
                  " has a sparse gradient; use dense gradients (sparse_gradient(false))");
      auto it = state_.find(key_of(p));
      TORCH_CHECK(it != state_.end(), "AugmentedDual: parameter ", i,
                  " has no penalty; call set_penalty before its first step");
      auto& st = static_cast<AugmentedDualParamState&>(*it->second);
      if (!update_in_place(p, st, beta, r0)) {
        const torch::Tensor step = st.penalty() * p.grad();  // -c g
        p.copy_((st.base() - step).clamp_(st.lower(), st.upper()));
        const torch::Tensor weighted =
            r0 > 0 ? step * windup_weights(p.grad(), st.previous(), r0) : step;
        if (st.share().defined()) {
          st.base().sub_(weighted * st.share());
        } else {
          st.base().sub_(weighted, beta);
        }
        st.base().clamp_(st.lower(), st.upper());
        st.previous().copy_(torch::where(p.grad() != 0, p.grad(), st.previous()));
      }
      st.step(st.step() + 1);
    }
  }
  return loss;
}

void AugmentedDual::set_penalty(const torch::Tensor& param, const torch::Tensor& penalty,
                                double lower, double upper, const torch::Tensor& share,
                                double factor) {
  torch::NoGradGuard no_grad;
  const torch::Tensor c = penalty.detach().to(param.options()).expand_as(param).clone();
  TORCH_CHECK(torch::isfinite(c).all().item<bool>() && (c >= 0).all().item<bool>(),
              "AugmentedDual::set_penalty: the penalty must be finite and >= 0 everywhere, got ",
              penalty);
  TORCH_CHECK(lower <= upper, "AugmentedDual::set_penalty: lower (", lower, ") > upper (", upper,
              ")");
  TORCH_CHECK(std::isfinite(factor) && factor > 0,
              "AugmentedDual::set_penalty: the factor must be finite and > 0, got ", factor);
  torch::Tensor b;
  if (share.defined()) {
    b = share.detach().to(param.options()).expand_as(param).clone();
    TORCH_CHECK(torch::isfinite(b).all().item<bool>() && (b > 0).all().item<bool>(),
                "AugmentedDual::set_penalty: the share must be finite and > 0 everywhere, got ",
                share);
  }
  auto it = state_.find(key_of(param));
  if (it == state_.end()) {
    auto st = std::make_unique<AugmentedDualParamState>();
    st->base(param.detach().clone());
    st->previous(torch::zeros_like(param.detach()));
    it = state_.emplace(key_of(param), std::move(st)).first;
  }
  auto& st = static_cast<AugmentedDualParamState&>(*it->second);
  st.penalty(c);
  if (b.defined()) st.share(b);
  st.factor(factor);
  st.lower(lower);
  st.upper(upper);
}

void AugmentedDual::save(torch::serialize::OutputArchive& archive) const {
  torch::optim::serialize<AugmentedDualParamState, AugmentedDualOptions>(archive, *this);
}

void AugmentedDual::load(torch::serialize::InputArchive& archive) {
  torch::optim::serialize<AugmentedDualParamState, AugmentedDualOptions>(archive, *this);
}

const AugmentedDualParamState* AugmentedDual::state_of(const torch::Tensor& param) const {
  return detail::state_in<AugmentedDualParamState>(state_, param);
}

}  // namespace optim
}  // namespace feasible
