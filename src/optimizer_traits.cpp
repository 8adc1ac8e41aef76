// The table of optimizer traits (src/optimizer_traits.h).
#include "src/optimizer_traits.h"

#include <sstream>

#include "feasible/optim/augmented_dual.h"
#include "feasible/optim/extra.h"
#include "feasible/optim/nupi.h"
#include "feasible/optim/optimistic.h"

namespace feasible {
namespace detail {

namespace {

using torch::optim::Optimizer;
using torch::optim::OptimizerParamState;
using Fields = std::vector<StateField>;

StateField required(torch::Tensor& t) { return {&t, true, false}; }
StateField optional(torch::Tensor& t) { return {&t, false, false}; }
StateField required_flags(torch::Tensor& t) { return {&t, true, true}; }

// An optimizer type `Opt` whose per-parameter state is a `State` with the tensors `fields` lists.
template <typename Opt, typename State>
OptimizerTraits with_state(std::string name, Fields (*fields)(State&)) {
  return {std::move(name),
          [](const Optimizer& o) { return dynamic_cast<const Opt*>(&o) != nullptr; },
          [](const OptimizerParamState& s) { return dynamic_cast<const State*>(&s) != nullptr; },
          [] { return std::unique_ptr<OptimizerParamState>(std::make_unique<State>()); },
          [fields](OptimizerParamState& s) { return fields(static_cast<State&>(s)); }};
}

// An optimizer type `Opt` that keeps no per-parameter state.
template <typename Opt>
OptimizerTraits stateless(std::string name) {
  return {std::move(name),
          [](const Optimizer& o) { return dynamic_cast<const Opt*>(&o) != nullptr; },
          [](const OptimizerParamState&) { return false; }, nullptr, nullptr};
}

std::vector<OptimizerTraits> make_table() {
  using namespace torch::optim;
  // The registration lines: one per optimizer type.
  return {
      with_state<SGD, SGDParamState>(
          "torch::optim::SGD",
          [](SGDParamState& s) { return Fields{optional(s.momentum_buffer())}; }),
      with_state<Adam, AdamParamState>("torch::optim::Adam",
                                       [](AdamParamState& s) {
                                         return Fields{required(s.exp_avg()),
                                                       required(s.exp_avg_sq()),
                                                       optional(s.max_exp_avg_sq())};
                                       }),
      with_state<AdamW, AdamWParamState>("torch::optim::AdamW",
                                         [](AdamWParamState& s) {
                                           return Fields{required(s.exp_avg()),
                                                         required(s.exp_avg_sq()),
                                                         optional(s.max_exp_avg_sq())};
                                         }),
      with_state<RMSprop, RMSpropParamState>("torch::optim::RMSprop",
                                             [](RMSpropParamState& s) {
                                               return Fields{required(s.square_avg()),
                                                             optional(s.momentum_buffer()),
                                                             optional(s.grad_avg())};
                                             }),
      with_state<Adagrad, AdagradParamState>(
          "torch::optim::Adagrad", [](AdagradParamState& s) { return Fields{required(s.sum())}; }),
      with_state<optim::NuPI, optim::NuPIParamState>(
          "feasible::optim::NuPI",
          [](optim::NuPIParamState& s) {
            return Fields{required(s.xi()), required_flags(s.seen())};
          }),
      with_state<optim::OptimisticGradient, optim::OptimisticGradientParamState>(
          "feasible::optim::OptimisticGradient",
          [](optim::OptimisticGradientParamState& s) { return Fields{required(s.previous())}; }),
      stateless<optim::ExtraSGD>("feasible::optim::ExtraSGD"),
      with_state<optim::AugmentedDual, optim::AugmentedDualParamState>(
          "feasible::optim::AugmentedDual",
          [](optim::AugmentedDualParamState& s) {
            return Fields{required(s.base()), required(s.penalty()), optional(s.share())};
          }),
      with_state<optim::ExtraAdam, optim::ExtraAdamParamState>(
          "feasible::optim::ExtraAdam",
          [](optim::ExtraAdamParamState& s) {
            return Fields{required(s.exp_avg()), required(s.exp_avg_sq())};
          }),
  };
}

// "torch::optim::SGD, Adam, ...": a name's namespace is written only where it changes.
std::string list_names(const std::vector<OptimizerTraits>& table) {
  std::string out, previous_ns;
  for (const auto& t : table) {
    const size_t cut = t.name.rfind("::");
    const std::string ns = cut == std::string::npos ? "" : t.name.substr(0, cut + 2);
    out += (out.empty() ? "" : ", ") + (ns == previous_ns ? t.name.substr(ns.size()) : t.name);
    previous_ns = ns;
  }
  return out;
}

}  // namespace

const std::vector<OptimizerTraits>& optimizer_traits() {
  static const std::vector<OptimizerTraits> table = make_table();
  return table;
}

const OptimizerTraits* traits_of(const torch::optim::Optimizer& optimizer) {
  for (const auto& t : optimizer_traits()) {
    if (t.is_type(optimizer)) return &t;
  }
  return nullptr;
}

const std::string& supported_optimizers() {
  static const std::string names = list_names(optimizer_traits());
  return names;
}

std::unique_ptr<OptimizerParamState> deep_copy_state(const OptimizerParamState& state) {
  std::unique_ptr<OptimizerParamState> copy = state.clone();
  for (const auto& t : optimizer_traits()) {
    if (!t.is_state(state)) continue;
    for (const StateField& f : t.fields(*copy)) {
      if (f.tensor->defined()) *f.tensor = f.tensor->clone();
    }
    return copy;
  }
  torch::serialize::OutputArchive out;
  state.serialize(out);
  std::ostringstream bytes;
  out.save_to(bytes);
  std::istringstream in_bytes(bytes.str());
  torch::serialize::InputArchive in;
  in.load_from(in_bytes);
  copy->serialize(in);
  return copy;
}

}  // namespace detail
}  // namespace feasible
