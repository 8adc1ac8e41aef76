// Formulations (docs/design.md, section 5.1) and projections of primal parameters.
#include "feasible/formulation.h"

#include "feasible/projection.h"

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
  return (lambda * v).sum();
}

torch::Tensor Lagrangian::dual_ascent(const torch::Tensor& s, const torch::Tensor&,
                                      ConstraintKind) const {
  return s.detach();
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
  if (options_.scale_dual_by_penalty()) return (c * s).detach();
  return s.detach();
}

torch::Tensor QuadraticPenalty::primal_term(const torch::Tensor& v, const torch::Tensor&,
                                            const torch::Tensor& c, ConstraintKind kind) const {
  torch::Tensor r = kind == ConstraintKind::kInequality ? v.clamp_min(0.0) : v;
  return (0.5 * c * r.pow(2)).sum();
}

torch::Tensor FixedPenalty::primal_term(const torch::Tensor& v, const torch::Tensor&,
                                        const torch::Tensor& c, ConstraintKind) const {
  return (c * v).sum();
}

namespace projection {

Projection box(double lower, double upper) {
  TORCH_CHECK(!std::isnan(lower), "projection::box: lower must not be NaN, got ", lower);
  TORCH_CHECK(!std::isnan(upper), "projection::box: upper must not be NaN, got ", upper);
  TORCH_CHECK(lower <= upper, "projection::box: lower must be <= upper, got lower = ", lower,
              ", upper = ", upper);
  return [lower, upper](torch::Tensor& p) { p.clamp_(lower, upper); };
}

Projection nonnegative() {
  return [](torch::Tensor& p) { p.clamp_min_(0.0); };
}

Projection simplex(double radius) {
  TORCH_CHECK(radius > 0 && std::isfinite(radius),
              "projection::simplex: radius must be > 0 and finite, got ", radius);
  return [radius](torch::Tensor& p) {
    TORCH_CHECK(p.dim() >= 1, "projection::simplex: the tensor must have at least one dimension");
    const int64_t n = p.size(-1);
    torch::Tensor flat = p.reshape({-1, n});
    // Sort descending; rho = the largest k with u_k - (cumsum_k - radius) / k > 0;
    // theta = (cumsum_rho - radius) / rho; result = max(p - theta, 0).
    torch::Tensor u = std::get<0>(flat.sort(-1, /*descending=*/true));
    torch::Tensor css = u.cumsum(-1) - radius;
    torch::Tensor k = torch::arange(1, n + 1, p.options());
    torch::Tensor cond = (u - css / k) > 0;
    torch::Tensor rho =
        (cond.to(torch::kLong) * torch::arange(1, n + 1, p.options().dtype(torch::kLong)))
            .amax(-1, /*keepdim=*/true);
    torch::Tensor theta = css.gather(-1, rho - 1) / rho.to(p.scalar_type());
    p.copy_((flat - theta).clamp_min(0.0).reshape(p.sizes()));
  };
}

Projection l2_ball(double radius) {
  TORCH_CHECK(radius > 0 && std::isfinite(radius),
              "projection::l2_ball: radius must be > 0 and finite, got ", radius);
  return [radius](torch::Tensor& p) {
    const double norm = p.norm().item<double>();
    if (norm > radius) p.mul_(radius / norm);
  };
}

}  // namespace projection
}  // namespace feasible
