// Multipliers (include/feasible/multiplier.h): one block per class, in header order.
#include "feasible/multiplier.h"

#include <cmath>
#include <utility>

#include "src/tensor_util.h"
#include "src/validate.h"

namespace feasible {
namespace {

// Whether the interval `bounds` (Multiplier::bounds()) constrains anything.
bool bounded(const std::pair<double, double>& bounds) {
  return std::isfinite(bounds.first) || std::isfinite(bounds.second);
}

// Clamps `t` in place onto `bounds` (Multiplier::bounds()): [lo, hi] when both are finite,
// [lo, inf) when only lo is; nothing when neither is. NaN stays NaN.
void clamp_to(torch::Tensor& t, const std::pair<double, double>& bounds) {
  if (std::isfinite(bounds.second)) {
    t.clamp_(bounds.first, bounds.second);
  } else if (std::isfinite(bounds.first)) {
    t.clamp_min_(bounds.first);
  }
}

}  // namespace

// ---------------------------------------------------------------- Multiplier

Multiplier::Multiplier(ConstraintKind kind, int64_t size) : kind_(kind), size_(size) {
  TORCH_CHECK(size >= 1, "Multiplier: size must be >= 1, got ", size);
}

void Multiplier::write_ascent(const torch::Tensor&, const torch::Tensor&) {
  TORCH_CHECK(false, "Multiplier::write_ascent is not supported by this multiplier");
}

void Multiplier::clear_gradient() {
  for (auto& p : parameters()) {
    if (p.grad().defined()) p.mutable_grad() = torch::Tensor();
  }
}

void Multiplier::project() {
  torch::NoGradGuard no_grad;
  const auto range = bounds();
  for (auto& p : parameters()) clamp_to(p, range);
}

void Multiplier::set_max_value(c10::optional<double> max_value) {
  detail::Validator("Multiplier").positive_or_unset("max_value", max_value);
  max_value_ = max_value;
}

// ---------------------------------------------------------------- DenseMultiplier

DenseMultiplier::DenseMultiplier(ConstraintKind kind, int64_t size, torch::Tensor init)
    : Multiplier(kind, size) {
  TORCH_CHECK(init.defined() && init.is_floating_point(),
              "DenseMultiplier: init must be a floating-point tensor");
  torch::Tensor value = init.detach().clone().reshape({-1});
  if (value.numel() == 1 && size != 1) value = value.expand({size}).clone();
  TORCH_CHECK(value.numel() == size, "DenseMultiplier: init has ", value.numel(),
              " entries, expected ", size);
  value_ = register_parameter("value", value.contiguous());
}

torch::Tensor DenseMultiplier::evaluate(const torch::Tensor&, const torch::Tensor&) {
  // One detached alias of the values, made again only when the parameter's storage, shape or
  // dtype changed (e.g. Module::to): the same values as value_.detach(), without its dispatch.
  if (!detached_.defined() || !detached_.is_alias_of(value_) ||
      detached_.sizes() != value_.sizes() || detached_.dtype() != value_.dtype()) {
    detached_ = value_.detach();
  }
  return detached_;
}

void DenseMultiplier::write_ascent(const torch::Tensor&, const torch::Tensor& ascent) {
  // The gradient is the negated ascent direction; each conversion only when needed.
  torch::Tensor a = detail::detached(ascent);
  if (a.scalar_type() != value_.scalar_type() || a.device() != value_.device()) {
    a = a.to(value_.options());
  }
  if (a.dim() != 1) a = a.reshape({-1});
  auto& grad = value_.mutable_grad();
  if (grad.defined()) {
    grad.sub_(a);
  } else {
    grad = detail::negated(a);
  }
}

void DenseMultiplier::clear_gradient() {
  if (value_.grad().defined()) value_.mutable_grad() = torch::Tensor();
}

void DenseMultiplier::project() {
  torch::NoGradGuard no_grad;
  clamp_to(value_, bounds());
}

// ---------------------------------------------------------------- IndexedMultiplier

IndexedMultiplier::IndexedMultiplier(ConstraintKind kind, int64_t size, torch::Tensor init,
                                     bool lazy, bool sparse_gradient)
    : DenseMultiplier(kind, size, std::move(init)), lazy_(lazy), sparse_(sparse_gradient) {}

torch::Tensor IndexedMultiplier::evaluate(const torch::Tensor& indices, const torch::Tensor&) {
  return value_.detach().index_select(0, indices);
}

void IndexedMultiplier::write_ascent(const torch::Tensor& indices, const torch::Tensor& ascent) {
  torch::Tensor g = -ascent.detach().to(value_.options()).reshape({-1});
  auto& grad = value_.mutable_grad();
  if (sparse_) {
    torch::Tensor sg = torch::sparse_coo_tensor(indices.reshape({1, -1}), g, {size_});
    grad = grad.defined() ? (grad + sg).coalesce() : sg.coalesce();
  } else {
    if (!buffer_.defined()) buffer_ = torch::zeros_like(value_);
    grad = buffer_;
    grad.index_add_(0, indices, g);
  }
  observed_ = observed_.defined() ? torch::cat({observed_, indices}) : indices;
}

void IndexedMultiplier::clear_gradient() {
  // Zero only the rows written in the previous step, so the cost does not grow with size();
  // the gradient itself becomes undefined, so an unobserved constraint does not move at all.
  if (buffer_.defined() && observed_.defined()) buffer_.index_fill_(0, observed_, 0.0);
  value_.mutable_grad() = torch::Tensor();
  observed_ = torch::Tensor();
}

void IndexedMultiplier::project() {
  if (!(lazy_ || sparse_)) {
    DenseMultiplier::project();
    return;
  }
  if (!observed_.defined()) return;  // unobserved: the optimizer skipped it
  const auto range = bounds();
  if (!bounded(range)) return;
  torch::NoGradGuard no_grad;
  torch::Tensor rows = value_.index_select(0, observed_);  // a copy: clamped in place
  clamp_to(rows, range);
  value_.index_copy_(0, observed_, rows);
}

void IndexedMultiplier::before_dual_step() {
  if (!lazy_ || !observed_.defined()) return;
  if (!backup_.defined()) backup_ = torch::empty_like(value_);
  backup_.copy_(value_.detach());
}

void IndexedMultiplier::after_dual_step() {
  if (!lazy_ || !observed_.defined()) return;
  torch::NoGradGuard no_grad;
  // Duplicate indices copy identical rows, so index_copy_ is well defined here.
  torch::Tensor moved = value_.index_select(0, observed_);
  value_.copy_(backup_);
  value_.index_copy_(0, observed_, moved);
}

// ---------------------------------------------------------------- ImplicitMultiplier

ImplicitMultiplier::ImplicitMultiplier(ConstraintKind kind, int64_t size,
                                       torch::nn::AnyModule model)
    : Multiplier(kind, size), model_(std::move(model)) {
  TORCH_CHECK(!model_.is_empty(), "ImplicitMultiplier: the model is empty");
  register_module("model", model_.ptr());
}

torch::Tensor ImplicitMultiplier::evaluate(const torch::Tensor&, const torch::Tensor& features) {
  torch::Tensor out = model_.forward(features).reshape({-1});
  const int64_t entries = features.dim() == 0 ? 1 : features.size(0);
  TORCH_CHECK(out.numel() == entries, "ImplicitMultiplier: the model returned ", out.numel(),
              " values for ", entries,
              " observed entries (one row of features each); it must return one multiplier per "
              "row, shape [n] or [n, 1]");
  if (kind_ == ConstraintKind::kInequality) {
    TORCH_CHECK((out.detach() >= 0).all().item<bool>(),
                "ImplicitMultiplier: the model returned a negative multiplier for an inequality "
                "constraint (min ",
                out.detach().min().item<double>(),
                "); make its output non-negative, e.g. with softplus");
  }
  return out;
}

}  // namespace feasible
