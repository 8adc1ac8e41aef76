// The key of a parameter in torch::optim::Optimizer::state(), for LibTorch 1.x and 2.x.
#pragma once
#include <torch/torch.h>

#include <sstream>
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
    std::ostringstream os;
    os << p.unsafeGetTensorImpl();
    return os.str();
  } else {
    return static_cast<Key>(p.unsafeGetTensorImpl());
  }
}

}  // namespace detail
}  // namespace feasible
