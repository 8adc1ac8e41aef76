// Formulations (docs/design.md, section 5.1).
#include "feasible/formulation.h"

#include "src/tensor_util.h"

namespace feasible {

torch::Tensor Formulation::dual_ascent(const torch::Tensor&, const torch::Tensor&,
                                       ConstraintKind) const {
  TORCH_CHECK(false, name(), "::dual_ascent: this formulation has no multiplier");
}

torch::Tensor Lagrangian::primal_term(const torch::Tensor& v, const torch::Tensor& lambda,
                                      const torch::Tensor&, ConstraintKind) const {
  if (v.dim() == 1 && lambda.dim() == 1 && v.scalar_type() == lambda.scalar_type()) {
    return torch::dot(lambda, v);  // one operation instead of two
  }
  if (v.dim() == 0 && lambda.numel() == 1 && v.scalar_type() == lambda.scalar_type()) {
    // A 0-d violation: lambda's 0-d view needs no autograd node (nor a dispatcher call).
    return detail::one_element_view(lambda, {}) * v;
  }
  return (lambda * v).sum();
}

torch::Tensor Lagrangian::dual_ascent(const torch::Tensor& s, const torch::Tensor&,
                                      ConstraintKind) const {
  return detail::detached(s);
}

torch::Tensor AugmentedLagrangian::primal_term(const torch::Tensor& v, const torch::Tensor& lambda,
                                               const torch::Tensor& c, ConstraintKind kind) const {
  if (kind == ConstraintKind::kEquality) {
    return (lambda * v).sum() + (0.5 * c * v.pow(2)).sum();
  }
  // (1/(2c)) ([lambda + c v]+^2 - lambda^2), split so that no branch divides by c where the
  // argument is active: lambda v + (c/2) v^2 when lambda + c v >= 0, else -lambda^2 / (2c).
  // c > 0 is guaranteed by PenaltyCoefficient, and in the inactive branch lambda < c |v|, so
  // lambda^2 / (2c) < c v^2 / 2 stays finite as c -> 0.
  torch::Tensor active = (lambda + c * v.detach()) >= 0;
  torch::Tensor on = lambda * v + 0.5 * c * v.pow(2);
  torch::Tensor off = -(lambda.pow(2) / (2.0 * c)).expand_as(on);
  return torch::where(active, on, off).sum();
}

torch::Tensor AugmentedLagrangian::dual_ascent(const torch::Tensor& s, const torch::Tensor& c,
                                               ConstraintKind) const {
  if (options_.scale_dual_by_penalty()) return detail::detached(c * s);
  return detail::detached(s);
}

torch::Tensor QuadraticPenalty::primal_term(const torch::Tensor& v, const torch::Tensor&,
                                            const torch::Tensor& c, ConstraintKind kind) const {
  torch::Tensor r = kind == ConstraintKind::kInequality ? v.clamp_min(0.0) : v;
  return (0.5 * c * r.pow(2)).sum();
}

torch::Tensor FixedPenalty::primal_term(const torch::Tensor& v, const torch::Tensor&,
                                        const torch::Tensor& c, ConstraintKind) const {
  if (v.dim() == 0 && c.numel() == 1 && v.scalar_type() == c.scalar_type()) {
    // A 0-d violation: one product, no sum node (the same value).
    return detail::one_element_view(c, {}) * v;
  }
  return (c * v).sum();
}

}  // namespace feasible
