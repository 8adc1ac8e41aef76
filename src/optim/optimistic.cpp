// OptimisticGradient (include/feasible/optim/optimistic.h): options, parameter state, optimizer,
// in header order.
#include "feasible/optim/optimistic.h"

#include <torch/optim/serialize.h>

#include "src/state_key.h"
#include "src/validate.h"

namespace feasible {
namespace optim {

namespace {
using detail::key_of;
}  // namespace

OptimisticGradientOptions::OptimisticGradientOptions(double lr) : lr_(lr) {}

void OptimisticGradientOptions::validate() const {
  const detail::Validator check("OptimisticGradientOptions");
  check.at_least("lr", lr(), 0.0);
  check.at_least("optimism", optimism(), 0.0);
}

void OptimisticGradientOptions::serialize(torch::serialize::OutputArchive& archive) const {
  archive.write("lr", torch::tensor(lr_, torch::kFloat64));
  archive.write("optimism", torch::tensor(optimism_, torch::kFloat64));
}

void OptimisticGradientOptions::serialize(torch::serialize::InputArchive& archive) {
  torch::Tensor t;
  archive.read("lr", t);
  lr_ = t.item<double>();
  archive.read("optimism", t);
  optimism_ = t.item<double>();
}

void OptimisticGradientParamState::serialize(torch::serialize::OutputArchive& archive) const {
  archive.write("previous", previous_, true);
  archive.write("step", torch::tensor(step_), true);
}

void OptimisticGradientParamState::serialize(torch::serialize::InputArchive& archive) {
  archive.read("previous", previous_, true);
  torch::Tensor t;
  archive.read("step", t, true);
  step_ = t.item<int64_t>();
}

OptimisticGradient::OptimisticGradient(std::vector<torch::optim::OptimizerParamGroup> param_groups,
                                       OptimisticGradientOptions defaults)
    : torch::optim::Optimizer(std::move(param_groups),
                              std::make_unique<OptimisticGradientOptions>(defaults)) {
  defaults.validate();
  for (const auto& g : param_groups_) {
    static_cast<const OptimisticGradientOptions&>(g.options()).validate();
  }
}

OptimisticGradient::OptimisticGradient(std::vector<torch::Tensor> params,
                                       OptimisticGradientOptions defaults)
    : OptimisticGradient({torch::optim::OptimizerParamGroup(std::move(params))}, defaults) {}

torch::Tensor OptimisticGradient::step(LossClosure closure) {
  torch::NoGradGuard no_grad;
  torch::Tensor loss;
  if (closure != nullptr) {
    at::AutoGradMode enable_grad(true);
    loss = closure();
  }
  for (auto& group : param_groups_) {
    const auto& o = static_cast<const OptimisticGradientOptions&>(group.options());
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      const torch::Tensor& e = p.grad();
      TORCH_CHECK(!e.is_sparse(),
                  "OptimisticGradient: sparse gradients are not supported; use "
                  "NuPI(NuPIOptions(lr).kp(optimism).ki(1).nu(0)), the same update with sparse "
                  "support");
      auto it = state_.find(key_of(p));
      if (it == state_.end()) {
        auto st = std::make_unique<OptimisticGradientParamState>();
        st->previous(e);  // e_{-1} = e_0: the first step is a plain gradient step
        it = state_.emplace(key_of(p), std::move(st)).first;
      }
      auto& st = static_cast<OptimisticGradientParamState&>(*it->second);
      // e + omega (e - e_prev), as NuPI computes K_i e + K_p (xi - xi_prev) with K_i = 1, nu = 0.
      const torch::Tensor update = e + o.optimism() * (e - st.previous());
      p.add_(update, -o.lr());
      st.previous(e.clone());  // a copy: the gradient's storage may be reused (indexed rows)
      st.step(st.step() + 1);
    }
  }
  return loss;
}

void OptimisticGradient::save(torch::serialize::OutputArchive& archive) const {
  torch::optim::serialize<OptimisticGradientParamState, OptimisticGradientOptions>(archive, *this);
}

void OptimisticGradient::load(torch::serialize::InputArchive& archive) {
  torch::optim::serialize<OptimisticGradientParamState, OptimisticGradientOptions>(archive, *this);
}

const OptimisticGradientParamState* OptimisticGradient::state_of(const torch::Tensor& param) const {
  return detail::state_in<OptimisticGradientParamState>(state_, param);
}

}  // namespace optim
}  // namespace feasible
