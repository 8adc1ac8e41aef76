// Penalty coefficients and their updaters (include/feasible/penalty.h): one block per class, in
// header order.
#include "feasible/penalty.h"

#include <cmath>
#include <limits>

#include "src/validate.h"

namespace feasible {

// ---------------------------------------------------------------- PenaltyCoefficient

PenaltyCoefficient::PenaltyCoefficient(double init, int64_t size, bool per_entry,
                                       torch::TensorOptions options)
    : init_(init), per_entry_(per_entry) {
  detail::Validator("PenaltyCoefficient").positive("init", init);
  value_ = per_entry ? torch::full({size}, init, options) : torch::full({}, init, options);
  TORCH_CHECK((value_ > 0).all().item<bool>(),
              "PenaltyCoefficient.init must be > 0 once stored as ", value_.scalar_type(),
              " (it underflows to 0), got ", init);
}

torch::Tensor PenaltyCoefficient::observed(const torch::Tensor& indices) const {
  if (!per_entry_ || !indices.defined()) return value_;
  return value_.index_select(0, indices);
}

void PenaltyCoefficient::set_value(const torch::Tensor& value) {
  TORCH_CHECK(value.sizes() == value_.sizes(), "PenaltyCoefficient::set_value: shape ",
              value.sizes(), " does not match ", value_.sizes());
  TORCH_CHECK((value > 0).all().item<bool>(),
              "PenaltyCoefficient::set_value: every value must be > 0");
  value_.copy_(value);
}

// ---------------------------------------------------------------- PenaltyUpdaterOptions

void PenaltyUpdaterOptions::validate() const {
  const detail::Validator check("PenaltyUpdaterOptions");
  check.at_least("tolerance", tolerance(), 0.0);
  check.positive_or_unset("max_value", max_value());
}

// ---------------------------------------------------------------- PenaltyUpdater

PenaltyUpdater::PenaltyUpdater(PenaltyUpdaterOptions options) : options_(options) {
  options.validate();
}

namespace {
double largest_finite(torch::ScalarType type) {
  switch (type) {
    case torch::kFloat:
      return std::numeric_limits<float>::max();
    case torch::kHalf:
      return 65504.0;
    case torch::kBFloat16:
      return 3.3895313892515355e38;
    default:
      return std::numeric_limits<double>::max();
  }
}
}  // namespace

bool PenaltyUpdater::update(PenaltyCoefficient& penalty, const torch::Tensor& strict,
                            const torch::Tensor& indices, ConstraintKind kind) const {
  torch::NoGradGuard no_grad;
  if (strict.numel() == 0) return false;  // nothing observed: nothing to grow or restart
  torch::Tensor s = strict.detach().reshape({-1}).to(penalty.value().options());
  torch::Tensor magnitude = kind == ConstraintKind::kInequality ? s.clamp_min(0.0) : s.abs();
  torch::Tensor violated = magnitude > options_.tolerance();
  torch::Tensor satisfied =
      kind == ConstraintKind::kInequality ? (s <= 0) : torch::zeros_like(violated);
  torch::Tensor c = penalty.observed(indices);
  torch::Tensor next;
  if (!penalty.per_entry()) {
    violated = violated.any();
    satisfied = options_.restart_on_feasible() ? satisfied.all() : torch::zeros_like(violated);
  } else if (!options_.restart_on_feasible()) {
    satisfied = torch::zeros_like(violated);
  }
  // Growth stops at the largest finite value of the dtype: c never becomes Inf.
  torch::Tensor grown = grow(c).clamp_max(largest_finite(c.scalar_type()));
  bool capped = false;
  if (options_.max_value()) {
    capped = ((grown > *options_.max_value()) & violated).any().item<bool>();
    grown = grown.clamp_max(*options_.max_value());
  }
  next = torch::where(violated, grown, c);
  next = torch::where(satisfied & ~violated, torch::full_like(c, penalty.init()), next);
  if (!penalty.per_entry() || !indices.defined()) {
    penalty.mutable_value().copy_(next);
  } else {
    penalty.mutable_value().index_copy_(0, indices, next);
  }
  return capped;
}

// ---------------------------------------------------------------- MultiplicativePenaltyUpdater

MultiplicativePenaltyUpdater::MultiplicativePenaltyUpdater(double growth,
                                                           PenaltyUpdaterOptions options)
    : PenaltyUpdater(options), growth_(growth) {
  detail::Validator("MultiplicativePenaltyUpdater").above("growth", growth, 1.0);
}

torch::Tensor MultiplicativePenaltyUpdater::grow(const torch::Tensor& c) const {
  return c * growth_;
}

// ---------------------------------------------------------------- AdditivePenaltyUpdater

AdditivePenaltyUpdater::AdditivePenaltyUpdater(double increment, PenaltyUpdaterOptions options)
    : PenaltyUpdater(options), increment_(increment) {
  detail::Validator("AdditivePenaltyUpdater").positive("increment", increment);
}

torch::Tensor AdditivePenaltyUpdater::grow(const torch::Tensor& c) const { return c + increment_; }

}  // namespace feasible
