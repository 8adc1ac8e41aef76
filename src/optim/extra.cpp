// Extrapolation optimizers (include/feasible/optim/extra.h): one block per class, in header order.
#include "feasible/optim/extra.h"

#include <torch/optim/serialize.h>

#include <cmath>

#include "src/state_key.h"
#include "src/validate.h"

namespace feasible {
namespace optim {

namespace {
using detail::key_of;
}  // namespace

// ---------------------------------------------------------------- ExtrapolationOptimizer

void ExtrapolationOptimizer::extrapolate() {
  torch::NoGradGuard no_grad;
  TORCH_CHECK(saved_.empty(),
              "ExtrapolationOptimizer::extrapolate: called twice without a step() in between");
  for (auto& group : param_groups_) {
    for (auto& p : group.params()) saved_.push_back(p.detach().clone());
  }
  update_all();
}

torch::Tensor ExtrapolationOptimizer::step(LossClosure closure) {
  torch::NoGradGuard no_grad;
  torch::Tensor loss;
  if (closure != nullptr) {
    at::AutoGradMode enable_grad(true);
    loss = closure();
  }
  restore();
  update_all();
  return loss;
}

void ExtrapolationOptimizer::restore() {
  torch::NoGradGuard no_grad;
  if (saved_.empty()) return;
  size_t i = 0;
  for (auto& group : param_groups_) {
    for (auto& p : group.params()) p.copy_(saved_[i++]);
  }
  saved_.clear();
}

void ExtrapolationOptimizer::set_saved_point(const std::vector<torch::Tensor>& point) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> params;
  for (auto& group : param_groups_) {
    for (auto& p : group.params()) params.push_back(p);
  }
  TORCH_CHECK(point.empty() || point.size() == params.size(),
              "ExtrapolationOptimizer::set_saved_point: got ", point.size(),
              " tensors, expected 0 or ", params.size(), " (one per parameter)");
  std::vector<torch::Tensor> saved;
  for (size_t i = 0; i < point.size(); ++i) {
    TORCH_CHECK(point[i].defined() && point[i].sizes() == params[i].sizes(),
                "ExtrapolationOptimizer::set_saved_point: tensor ", i, " has shape ",
                point[i].defined() ? point[i].sizes() : c10::IntArrayRef{},
                ", expected the parameter's shape ", params[i].sizes());
    saved.push_back(point[i].detach().to(params[i].options()).clone());
  }
  saved_ = std::move(saved);
}

void ExtrapolationOptimizer::update_all() {
  for (auto& group : param_groups_) {
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      update(p, p.grad(), group);
    }
  }
}

// ---------------------------------------------------------------- ExtraSGDOptions

ExtraSGDOptions::ExtraSGDOptions(double lr) : lr_(lr) {}

void ExtraSGDOptions::validate() const {
  detail::Validator("ExtraSGDOptions").at_least("lr", lr(), 0.0);
}

void ExtraSGDOptions::serialize(torch::serialize::OutputArchive& archive) const {
  archive.write("lr", torch::tensor(lr_, torch::kFloat64));
}
void ExtraSGDOptions::serialize(torch::serialize::InputArchive& archive) {
  torch::Tensor t;
  archive.read("lr", t);
  lr_ = t.item<double>();
}

// ---------------------------------------------------------------- ExtraSGD

ExtraSGD::ExtraSGD(std::vector<torch::Tensor> params, ExtraSGDOptions options)
    : ExtraSGD({torch::optim::OptimizerParamGroup(std::move(params))}, options) {}

ExtraSGD::ExtraSGD(std::vector<torch::optim::OptimizerParamGroup> groups, ExtraSGDOptions options)
    : ExtrapolationOptimizer(std::move(groups), std::make_unique<ExtraSGDOptions>(options)) {
  options.validate();
  for (const auto& g : param_groups_) static_cast<const ExtraSGDOptions&>(g.options()).validate();
}

void ExtraSGD::update(torch::Tensor& param, const torch::Tensor& grad,
                      torch::optim::OptimizerParamGroup& group) {
  const auto& o = static_cast<const ExtraSGDOptions&>(group.options());
  param.add_(grad, -o.lr());
}

// ---------------------------------------------------------------- ExtraAdamOptions

ExtraAdamOptions::ExtraAdamOptions(double lr) : lr_(lr) {}

void ExtraAdamOptions::validate() const {
  const detail::Validator check("ExtraAdamOptions");
  using Interval = detail::Validator::Interval;
  check.at_least("lr", lr(), 0.0);
  check.in_range("beta1", beta1(), 0.0, 1.0, Interval::kClosedOpen);
  check.in_range("beta2", beta2(), 0.0, 1.0, Interval::kClosedOpen);
  check.positive("eps", eps());
}

void ExtraAdamOptions::serialize(torch::serialize::OutputArchive& archive) const {
  archive.write("lr", torch::tensor(lr_, torch::kFloat64));
  archive.write("beta1", torch::tensor(beta1_, torch::kFloat64));
  archive.write("beta2", torch::tensor(beta2_, torch::kFloat64));
  archive.write("eps", torch::tensor(eps_, torch::kFloat64));
}
void ExtraAdamOptions::serialize(torch::serialize::InputArchive& archive) {
  torch::Tensor t;
  archive.read("lr", t);
  lr_ = t.item<double>();
  archive.read("beta1", t);
  beta1_ = t.item<double>();
  archive.read("beta2", t);
  beta2_ = t.item<double>();
  archive.read("eps", t);
  eps_ = t.item<double>();
}

// ---------------------------------------------------------------- ExtraAdamParamState

void ExtraAdamParamState::serialize(torch::serialize::OutputArchive& archive) const {
  archive.write("step", torch::tensor(step_), true);
  archive.write("exp_avg", exp_avg_, true);
  archive.write("exp_avg_sq", exp_avg_sq_, true);
}
void ExtraAdamParamState::serialize(torch::serialize::InputArchive& archive) {
  torch::Tensor t;
  archive.read("step", t, true);
  step_ = t.item<int64_t>();
  archive.read("exp_avg", exp_avg_, true);
  archive.read("exp_avg_sq", exp_avg_sq_, true);
}

// ---------------------------------------------------------------- ExtraAdam

ExtraAdam::ExtraAdam(std::vector<torch::Tensor> params, ExtraAdamOptions options)
    : ExtraAdam({torch::optim::OptimizerParamGroup(std::move(params))}, options) {}

ExtraAdam::ExtraAdam(std::vector<torch::optim::OptimizerParamGroup> groups,
                     ExtraAdamOptions options)
    : ExtrapolationOptimizer(std::move(groups), std::make_unique<ExtraAdamOptions>(options)) {
  options.validate();
  for (const auto& g : param_groups_) static_cast<const ExtraAdamOptions&>(g.options()).validate();
}

void ExtraAdam::update(torch::Tensor& param, const torch::Tensor& grad,
                       torch::optim::OptimizerParamGroup& group) {
  const auto& o = static_cast<const ExtraAdamOptions&>(group.options());
  auto it = state_.find(key_of(param));
  if (it == state_.end()) {
    auto st = std::make_unique<ExtraAdamParamState>();
    st->exp_avg(torch::zeros_like(param, torch::MemoryFormat::Preserve));
    st->exp_avg_sq(torch::zeros_like(param, torch::MemoryFormat::Preserve));
    it = state_.emplace(key_of(param), std::move(st)).first;
  }
  auto& st = static_cast<ExtraAdamParamState&>(*it->second);
  st.step(st.step() + 1);
  st.exp_avg().mul_(o.beta1()).add_(grad, 1 - o.beta1());
  st.exp_avg_sq().mul_(o.beta2()).addcmul_(grad, grad, 1 - o.beta2());
  const double bc1 = 1 - std::pow(o.beta1(), static_cast<double>(st.step()));
  const double bc2 = 1 - std::pow(o.beta2(), static_cast<double>(st.step()));
  torch::Tensor denom = (st.exp_avg_sq() / bc2).sqrt_().add_(o.eps());
  param.addcdiv_(st.exp_avg(), denom, -o.lr() / bc1);
}

}  // namespace optim
}  // namespace feasible
