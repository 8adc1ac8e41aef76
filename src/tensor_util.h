// Small tensor helpers of the step (internal) that spare a dispatcher call where the general
// operation would do work the tensor does not need.
#pragma once
#include <torch/torch.h>

#include <cstring>

namespace feasible {
namespace detail {

/// `t.detach()` when `t` requires a gradient, else `t` itself, which then has no autograd history
/// already (a tensor without requires_grad has no grad_fn).
inline torch::Tensor detached(const torch::Tensor& t) { return t.requires_grad() ? t.detach() : t; }

/// A copy of `t` with its own storage, as t.clone() makes it; a contiguous CPU tensor without
/// autograd history is copied with one allocation and a memcpy instead of clone's three
/// dispatcher calls.
inline torch::Tensor copy_of(const torch::Tensor& t) {
  if (!t.device().is_cpu() || t.layout() != torch::kStrided || !t.is_contiguous() ||
      t.requires_grad() || t.is_conj() || t.is_neg()) {
    return t.clone();
  }
  torch::Tensor c = torch::empty(t.sizes(), t.options());
  if (t.numel() > 0) std::memcpy(c.data_ptr(), t.data_ptr(), t.nbytes());
  return c;
}

}  // namespace detail
}  // namespace feasible
