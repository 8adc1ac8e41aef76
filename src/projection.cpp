// Projections of primal parameters (include/feasible/projection.h).
#include "feasible/projection.h"

#include <cmath>
#include <memory>

namespace feasible {

namespace projection {

Projection box(double lower, double upper) {
  TORCH_CHECK(!std::isnan(lower), "projection::box: lower must not be NaN, got ", lower);
  TORCH_CHECK(!std::isnan(upper), "projection::box: upper must not be NaN, got ", upper);
  TORCH_CHECK(lower <= upper, "projection::box: lower must be <= upper, got lower = ", lower,
              ", upper = ", upper);
  return [lower, upper](torch::Tensor& p) { p.clamp_(lower, upper); };
}

Projection box(torch::Tensor lower, torch::Tensor upper) {
  TORCH_CHECK(lower.defined() && upper.defined(),
              "projection::box: lower and upper must be defined tensors");
  TORCH_CHECK(lower.is_floating_point() && upper.is_floating_point(),
              "projection::box: lower and upper must be floating-point tensors, got dtypes ",
              lower.scalar_type(), " and ", upper.scalar_type());
  const torch::Tensor lo = lower.detach().to(torch::kCPU, torch::kFloat64);
  const torch::Tensor hi = upper.detach().to(torch::kCPU, torch::kFloat64);
  TORCH_CHECK(!torch::isnan(lo).any().item<bool>(), "projection::box: lower must not be NaN");
  TORCH_CHECK(!torch::isnan(hi).any().item<bool>(), "projection::box: upper must not be NaN");
  torch::Tensor above;
  try {
    above = lo > hi;  // broadcasts, or throws for shapes that cannot be compared
  } catch (const c10::Error&) {
    TORCH_CHECK(false, "projection::box: lower (shape ", lower.sizes(), ") and upper (shape ",
                upper.sizes(), ") do not broadcast to each other");
  }
  if (above.any().item<bool>()) {
    const int64_t i = torch::nonzero(above.reshape({-1}))[0][0].item<int64_t>();
    const auto lb = torch::broadcast_tensors({lo, hi});
    TORCH_CHECK(false, "projection::box: lower must be <= upper entry-wise, got lower = ",
                lb[0].reshape({-1})[i].item<double>(),
                " > upper = ", lb[1].reshape({-1})[i].item<double>(), " at flat entry ", i);
  }
  // The bounds in the parameter's dtype and device (converted when those change), and the last
  // parameter shape found to be compatible (checked again only when the shape changes).
  struct Bounds {
    torch::Tensor lower, upper;
    std::vector<int64_t> shape_ok;
    bool checked = false;
  };
  auto b = std::make_shared<Bounds>();
  b->lower = lower.detach();
  b->upper = upper.detach();
  return [b](torch::Tensor& p) {
    if (b->lower.scalar_type() != p.scalar_type() || b->lower.device() != p.device()) {
      b->lower = b->lower.to(p.options());
      b->upper = b->upper.to(p.options());
    }
    if (!b->checked || p.sizes() != c10::IntArrayRef(b->shape_ok)) {
      bool ok = true;
      try {
        ok = torch::broadcast_tensors({p, b->lower, b->upper})[0].sizes() == p.sizes();
      } catch (const c10::Error&) {
        ok = false;
      }
      TORCH_CHECK(ok, "projection::box: bounds of shapes ", b->lower.sizes(), " and ",
                  b->upper.sizes(), " do not broadcast to the parameter's shape ", p.sizes());
      b->shape_ok = p.sizes().vec();
      b->checked = true;
    }
    p.copy_(torch::min(torch::max(p, b->lower), b->upper));
  };
}

Projection box(const std::vector<double>& lower, const std::vector<double>& upper) {
  TORCH_CHECK(lower.size() == upper.size(), "projection::box: lower has ", lower.size(),
              " entries and upper has ", upper.size(), "; they must have the same length");
  TORCH_CHECK(!lower.empty(), "projection::box: the bounds must not be empty");
  auto as_tensor = [](const std::vector<double>& v) {
    return torch::tensor(v, torch::TensorOptions().dtype(torch::kFloat64));
  };
  return box(as_tensor(lower), as_tensor(upper));
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
