// The table of optimizer traits (internal): the one list of the optimizers whose per-parameter
// state feasible knows field by field. Checkpoints (src/checkpoint_optimizers.cpp) use it to name
// an optimizer in files and to make, check and place its state; the skip-step copies
// (src/constrained_optimizer.cpp) use it to copy a state without sharing a tensor. To support
// another optimizer, add one line to the table in src/optimizer_traits.cpp.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace feasible {
namespace detail {

/// One tensor of a per-parameter state.
struct StateField {
  /// The tensor inside the state object.
  torch::Tensor* tensor;
  /// Whether every stored state must hold it (else it may be undefined).
  bool required;
  /// Whether it is a bool tensor (else it has the parameter's dtype).
  bool is_bool;
};

/// What feasible knows about one optimizer type.
struct OptimizerTraits {
  /// The name written in checkpoints, e.g. "torch::optim::SGD".
  std::string name;
  /// Whether an optimizer is of this type.
  std::function<bool(const torch::optim::Optimizer&)> is_type;
  /// Whether a per-parameter state is of this type's state type (false when it has none).
  std::function<bool(const torch::optim::OptimizerParamState&)> is_state;
  /// An empty per-parameter state; null when the type keeps no per-parameter state.
  std::function<std::unique_ptr<torch::optim::OptimizerParamState>()> make_state;
  /// The tensors of a state of this type (null when it keeps none).
  std::function<std::vector<StateField>(torch::optim::OptimizerParamState&)> fields;

  /// Whether the type keeps a per-parameter state.
  bool has_state() const { return make_state != nullptr; }
};

/// The table, in lookup order.
const std::vector<OptimizerTraits>& optimizer_traits();

/// The entry of `optimizer`'s type, or nullptr when the table does not hold it.
const OptimizerTraits* traits_of(const torch::optim::Optimizer& optimizer);

/// The table's names for messages: "torch::optim::SGD, Adam, ..., feasible::optim::NuPI, ...".
const std::string& supported_optimizers();

/// A copy of a per-parameter state that shares no tensor with it: the table's state types are
/// copied field by field, any other type through its own serialization.
std::unique_ptr<torch::optim::OptimizerParamState> deep_copy_state(
    const torch::optim::OptimizerParamState& state);

}  // namespace detail
}  // namespace feasible
