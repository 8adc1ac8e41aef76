// NuPI (include/feasible/optim/nupi.h): options, parameter state, optimizer, in header order.
#include "feasible/optim/nupi.h"

#include <torch/optim/serialize.h>

#include <cmath>

#include "src/state_key.h"
#include "src/validate.h"

namespace feasible {
namespace optim {

namespace {
using detail::key_of;
}  // namespace

NuPIOptions::NuPIOptions(double lr) : lr_(lr) {}

namespace {
// A per-entry gain: finite, >= 0 everywhere, and broadcastable to every parameter it will scale.
void check_gain(const detail::Validator& check, const torch::Tensor& gain, const char* field,
                const std::vector<torch::Tensor>& params) {
  if (!gain.defined()) return;
  const torch::Tensor d = gain.detach().to(torch::kCPU, torch::kFloat64).reshape({-1});
  const torch::Tensor bad = torch::nonzero(~(torch::isfinite(d) & (d >= 0)));
  if (bad.numel() != 0) {
    const int64_t i = bad[0][0].item<int64_t>();
    check.fail(field, "be finite and >= 0 everywhere", d[i].item<double>(), " at entry ", i);
  }
  for (const auto& p : params) {
    if (!(gain.dim() <= p.dim() && at::is_expandable_to(gain.sizes(), p.sizes()))) {
      check.fail(field, c10::str("broadcast to the parameter's shape ", p.sizes()), "shape ",
                 gain.sizes());
    }
  }
}
}  // namespace

void NuPIOptions::validate(const std::vector<torch::Tensor>& params) const {
  const detail::Validator check("NuPIOptions");
  check.at_least("lr", lr(), 0.0);
  check.at_least("kp", kp(), 0.0);
  check.at_least("ki", ki(), 0.0);
  check.in_range("nu", nu(), 0.0, 1.0, detail::Validator::Interval::kClosedOpen);
  check_gain(check, kp_per_entry(), "kp_per_entry", params);
  check_gain(check, ki_per_entry(), "ki_per_entry", params);
  check.one_of("init", init() == NuPIInit::kSGD || init() == NuPIInit::kZero,
               "NuPIInit::kSGD or kZero", init());
}

void NuPIOptions::serialize(torch::serialize::OutputArchive& archive) const {
  archive.write("lr", torch::tensor(lr_, torch::kFloat64));
  archive.write("kp", torch::tensor(kp_, torch::kFloat64));
  archive.write("ki", torch::tensor(ki_, torch::kFloat64));
  archive.write("nu", torch::tensor(nu_, torch::kFloat64));
  archive.write("init", torch::tensor(static_cast<int64_t>(init_)));
  if (kp_per_entry_.defined()) archive.write("kp_per_entry", kp_per_entry_, true);
  if (ki_per_entry_.defined()) archive.write("ki_per_entry", ki_per_entry_, true);
}

void NuPIOptions::serialize(torch::serialize::InputArchive& archive) {
  torch::Tensor t;
  archive.read("lr", t);
  lr_ = t.item<double>();
  archive.read("kp", t);
  kp_ = t.item<double>();
  archive.read("ki", t);
  ki_ = t.item<double>();
  archive.read("nu", t);
  nu_ = t.item<double>();
  archive.read("init", t);
  init_ = static_cast<NuPIInit>(t.item<int64_t>());
  torch::Tensor g;
  if (archive.try_read("kp_per_entry", g, true)) kp_per_entry_ = g;
  if (archive.try_read("ki_per_entry", g, true)) ki_per_entry_ = g;
}

void NuPIParamState::serialize(torch::serialize::OutputArchive& archive) const {
  archive.write("xi", xi_, true);
  archive.write("seen", seen_, true);
  archive.write("step", torch::tensor(step_), true);
}

void NuPIParamState::serialize(torch::serialize::InputArchive& archive) {
  archive.read("xi", xi_, true);
  archive.read("seen", seen_, true);
  torch::Tensor t;
  archive.read("step", t, true);
  step_ = t.item<int64_t>();
}

NuPI::NuPI(std::vector<torch::optim::OptimizerParamGroup> param_groups, NuPIOptions defaults)
    : torch::optim::Optimizer(std::move(param_groups), std::make_unique<NuPIOptions>(defaults)) {
  defaults.validate();
  for (const auto& g : param_groups_) {
    static_cast<const NuPIOptions&>(g.options()).validate(g.params());
  }
}

NuPI::NuPI(std::vector<torch::Tensor> params, NuPIOptions defaults)
    : NuPI({torch::optim::OptimizerParamGroup(std::move(params))}, std::move(defaults)) {}

torch::Tensor NuPI::step(LossClosure closure) {
  torch::NoGradGuard no_grad;
  torch::Tensor loss;
  if (closure != nullptr) {
    at::AutoGradMode enable_grad(true);
    loss = closure();
  }
  for (auto& group : param_groups_) {
    const auto& o = static_cast<const NuPIOptions&>(group.options());
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      const torch::Tensor& grad = p.grad();
      auto it = state_.find(key_of(p));
      if (it == state_.end()) {
        auto st = std::make_unique<NuPIParamState>();
        st->xi(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        st->seen(torch::zeros(p.sizes(), p.options().dtype(torch::kBool)));
        it = state_.emplace(key_of(p), std::move(st)).first;
      }
      auto& st = static_cast<NuPIParamState&>(*it->second);
      const bool sgd_start = o.init() == NuPIInit::kSGD;
      if (grad.is_sparse()) {
        TORCH_CHECK(p.dim() == 1, "NuPI: sparse gradients are supported for 1-D parameters only");
        torch::Tensor g = grad.coalesce();
        torch::Tensor idx = g.indices().reshape({-1});
        torch::Tensor e = g.values().to(p.scalar_type());
        torch::Tensor xi_prev = st.xi().index_select(0, idx);
        if (sgd_start) {
          torch::Tensor seen = st.seen().index_select(0, idx);
          xi_prev = torch::where(seen, xi_prev, e);
        }
        torch::Tensor xi = o.nu() * xi_prev + (1.0 - o.nu()) * e;
        torch::Tensor ki = o.ki_per_entry().defined()
                               ? o.ki_per_entry().to(p.options()).expand_as(p).index_select(0, idx)
                               : torch::full({}, o.ki(), p.options());
        torch::Tensor kp = o.kp_per_entry().defined()
                               ? o.kp_per_entry().to(p.options()).expand_as(p).index_select(0, idx)
                               : torch::full({}, o.kp(), p.options());
        torch::Tensor update = ki * e + kp * (xi - xi_prev);
        p.index_add_(0, idx, -o.lr() * update);
        st.xi().index_copy_(0, idx, xi);
        st.seen().index_fill_(0, idx, true);
      } else {
        torch::Tensor e = grad;
        torch::Tensor xi_prev = st.xi();
        if (sgd_start) xi_prev = torch::where(st.seen(), xi_prev, e);
        torch::Tensor xi = o.nu() * xi_prev + (1.0 - o.nu()) * e;
        torch::Tensor update =
            (o.ki_per_entry().defined() ? o.ki_per_entry().to(p.options()) * e : o.ki() * e) +
            (o.kp_per_entry().defined() ? o.kp_per_entry().to(p.options()) * (xi - xi_prev)
                                        : o.kp() * (xi - xi_prev));
        p.add_(update, -o.lr());
        st.xi(xi);
        st.seen().fill_(true);
      }
      st.step(st.step() + 1);
    }
  }
  return loss;
}

void NuPI::save(torch::serialize::OutputArchive& archive) const {
  torch::optim::serialize<NuPIParamState, NuPIOptions>(archive, *this);
}

void NuPI::load(torch::serialize::InputArchive& archive) {
  torch::optim::serialize<NuPIParamState, NuPIOptions>(archive, *this);
}

const NuPIParamState* NuPI::state_of(const torch::Tensor& param) const {
  return detail::state_in<NuPIParamState>(state_, param);
}

}  // namespace optim
}  // namespace feasible
