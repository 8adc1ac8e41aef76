// The key of a parameter in torch::optim::Optimizer::state(), for LibTorch 1.x and 2.x.
#pragma once
#include <torch/torch.h>

#include <cstdio>
#include <string>
#include <type_traits>

namespace feasible {
namespace detail {

/// The key type of Optimizer::state(): LibTorch 1.x uses the TensorImpl address printed as a
/// string, 2.x the address itself. Taking the type from the map keeps both working.
using StateKey = std::decay_t<decltype(std::declval<torch::optim::Optimizer&>().state())>::key_type;

/// The key of parameter `p` in Optimizer::state() (a template, so that only the branch of the
/// LibTorch in use is compiled).
template <typename Key = StateKey>
Key key_of(const torch::Tensor& p) {
  if constexpr (std::is_same<Key, std::string>::value) {
    // LibTorch prints the address with an ostream ("0x" and lowercase hex); glibc's %p writes
    // the same for a non-null pointer, without an ostringstream's construction per lookup.
    char text[2 + 2 * sizeof(void*) + 1];
    const int n =
        std::snprintf(text, sizeof text, "%p", static_cast<const void*>(p.unsafeGetTensorImpl()));
    return std::string(text, static_cast<size_t>(n));
  } else {
    return static_cast<Key>(p.unsafeGetTensorImpl());
  }
}

/// The state of parameter `p` in an optimizer's state map, as its own state type State; nullptr
/// when the optimizer holds none for it (the state_of() getters of feasible's dual optimizers).
template <typename State, typename StateMap>
const State* state_in(const StateMap& state, const torch::Tensor& p) {
  auto it = state.find(key_of(p));
  return it == state.end() ? nullptr : static_cast<const State*>(it->second.get());
}

}  // namespace detail
}  // namespace feasible
