// Small tensor helpers of the step (internal) that spare a dispatcher call where the general
// operation would do work the tensor does not need.
#pragma once
#include <ATen/Dispatch.h>
#include <ATen/EmptyTensor.h>
#include <c10/core/impl/TorchDispatchModeTLS.h>
#include <torch/torch.h>

#include <cstring>
#include <typeinfo>
#include <vector>

namespace feasible {
namespace detail {

/// `t.detach()` when `t` requires a gradient, else `t` itself, which then has no autograd history
/// already (a tensor without requires_grad has no grad_fn).
inline torch::Tensor detached(const torch::Tensor& t) { return t.requires_grad() ? t.detach() : t; }

/// Whether `t` is a contiguous CPU tensor of plain values without autograd history: one the
/// helpers below read and write on the host.
inline bool plain_cpu(const torch::Tensor& t) {
  return t.device().is_cpu() && t.layout() == torch::kStrided && t.is_contiguous() &&
         !t.requires_grad() && !t.is_conj() && !t.is_neg();
}

/// A new contiguous CPU tensor of `t`'s shape and dtype, allocated without a dispatcher call.
inline torch::Tensor empty_cpu_like(const torch::Tensor& t) {
  return torch::Tensor(at::detail::empty_cpu(t.sizes(), t.scalar_type()));
}

/// A copy of `t` with its own storage, as t.clone() makes it; a plain CPU tensor is copied with
/// one allocation and a memcpy instead of clone's three dispatcher calls.
inline torch::Tensor copy_of(const torch::Tensor& t) {
  if (!plain_cpu(t)) return t.clone();
  torch::Tensor c = empty_cpu_like(t);
  if (t.numel() > 0) std::memcpy(c.data_ptr(), t.data_ptr(), t.nbytes());
  return c;
}

/// -t, as t.neg() computes it (a sign flip, exact); a plain float or double CPU tensor is negated
/// in a host loop without a dispatcher call.
inline torch::Tensor negated(const torch::Tensor& t) {
  if (!plain_cpu(t) || (t.scalar_type() != torch::kFloat && t.scalar_type() != torch::kDouble)) {
    return t.neg();
  }
  torch::Tensor r = empty_cpu_like(t);
  AT_DISPATCH_FLOATING_TYPES(t.scalar_type(), "negated", [&] {
    const scalar_t* in = t.data_ptr<scalar_t>();
    scalar_t* out = r.data_ptr<scalar_t>();
    for (int64_t i = 0, n = t.numel(); i < n; ++i) out[i] = -in[i];
  });
  return r;
}

/// `t.reshape(sizes)` for a tensor of one element (`sizes` of one element: {} or {1}): a plain
/// CPU tensor without autograd metadata (no gradient, no forward-mode tangent, not a view that
/// autograd tracks) and without names, outside any Python dispatch mode, is viewed (the same
/// storage, offset and version counter) through a shallow copy of its TensorImpl with the new
/// sizes, without a dispatcher call; any other tensor goes through reshape().
inline torch::Tensor one_element_view(const torch::Tensor& t, c10::IntArrayRef sizes) {
  c10::TensorImpl* impl = t.unsafeGetTensorImpl();
  if (t.numel() != 1 || c10::multiply_integers(sizes) != 1 || impl->autograd_meta() != nullptr ||
      t.has_names() || t.layout() != torch::kStrided || !t.device().is_cpu() || t.is_conj() ||
      t.is_neg() || typeid(*impl) != typeid(c10::TensorImpl) || impl->is_python_dispatch() ||
      c10::impl::dispatch_mode_enabled()) {
    return t.reshape(sizes);
  }
  auto view = impl->shallow_copy_and_detach(impl->version_counter(),
                                            /*allow_tensor_metadata_change=*/true);
  const std::vector<int64_t> strides(sizes.size(), 1);
  view->set_sizes_and_strides(sizes, strides);
  return torch::Tensor(std::move(view));
}

}  // namespace detail
}  // namespace feasible
