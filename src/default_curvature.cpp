// The default optimizer's stability check (src/default_calibration.h): the primal step's
// curvature along the penalties' directions, and the factor that keeps the step stable.
#include <cmath>

#include "src/default_calibration.h"

namespace feasible {
namespace detail {

namespace {

// The smallest stability factor: a step already past its limit still gets some penalty.
constexpr double kSmallest = 0.05;

// A vector of the metric's y-space (y = P^{-1/2} x), flattened over the parameters, float64.
torch::Tensor to_y(const std::vector<torch::Tensor>& x, const PrimalMetric& metric) {
  const auto& params = metric.parameters();
  std::vector<torch::Tensor> parts;
  for (size_t k = 0; k < params.size(); ++k) {
    const double s = std::sqrt(metric.weights()[k]);
    parts.push_back(x[k].defined() ? x[k].detach().to(torch::kFloat64).reshape({-1}) * s
                                   : torch::zeros({params[k].numel()}, torch::kFloat64));
  }
  return torch::cat(parts);
}

// P^{1/2} y, split into the parameters' shapes and dtypes.
std::vector<torch::Tensor> from_y(const torch::Tensor& y, const PrimalMetric& metric) {
  const auto& params = metric.parameters();
  std::vector<torch::Tensor> out;
  int64_t at = 0;
  for (size_t k = 0; k < params.size(); ++k) {
    const int64_t n = params[k].numel();
    const double s = std::sqrt(metric.weights()[k]);
    out.push_back((y.slice(0, at, at + n) * s).reshape(params[k].sizes()).to(params[k].options()));
    at += n;
  }
  return out;
}

// The largest eigenvalue of a small symmetric matrix.
double largest_eigenvalue(const torch::Tensor& m) {
  return torch::linalg::eigvalsh((m + m.t()) / 2, "L").max().item<double>();
}

// The Lagrangian's gradient at the current multipliers, with a graph for Hessian products
// (empty when nothing depends on the parameters).
std::vector<torch::Tensor> lagrangian_gradient(const Evaluation& eval,
                                               const std::vector<torch::Tensor>& params) {
  torch::Tensor lagrangian = eval.state.loss;
  for (const auto& item : eval.items) {
    if (!item.constraint.multiplier() || !item.v.requires_grad()) continue;
    torch::Tensor lambda = item.constraint.multiplier()->values();
    if (!lambda.defined()) continue;
    lambda = item.idx.defined() ? lambda.index_select(0, item.idx) : lambda.reshape(item.v.sizes());
    const torch::Tensor term = (item.v * lambda.to(item.v.dtype())).sum();
    lagrangian = lagrangian.defined() ? lagrangian + term : term;
  }
  if (!lagrangian.defined() || !lagrangian.requires_grad()) return {};
  return torch::autograd::grad({lagrangian}, params, {}, /*retain_graph=*/true,
                               /*create_graph=*/true, /*allow_unused=*/true);
}

// The largest theta in [kSmallest, 1] with largest_eigenvalue(t + theta a) <= the target: 90% of
// the limit, or halfway from t's own largest eigenvalue to the limit when that is already past
// 80% of it (a tuned step near its edge). Bisection; the eigenvalue grows with theta (a >= 0).
double largest_factor(const torch::Tensor& t, const torch::Tensor& a, double limit) {
  const double l0 = largest_eigenvalue(t);
  const double target = l0 <= 0.8 * limit ? 0.9 * limit : 0.5 * (l0 + limit);
  if (largest_eigenvalue(t + a) <= target) return 1.0;
  if (l0 >= target) return kSmallest;
  double lo = 0, hi = 1;
  for (int i = 0; i < 40; ++i) {
    const double mid = 0.5 * (lo + hi);
    (largest_eigenvalue(t + a * mid) <= target ? lo : hi) = mid;
  }
  return std::max(lo, kSmallest);
}

}  // namespace

double stability_factor(const Evaluation& eval, const PrimalMetric& metric,
                        const std::vector<PenaltyNormal>& normals, double limit,
                        std::vector<double>* curvature) {
  const auto& params = metric.parameters();
  const std::vector<torch::Tensor> grad = lagrangian_gradient(eval, params);
  auto hessian_y = [&](const torch::Tensor& y) {  // P^1/2 H_L P^1/2 y
    const auto u = from_y(y, metric);
    torch::Tensor dot;
    for (size_t k = 0; k < grad.size(); ++k) {
      if (!grad[k].defined() || !grad[k].requires_grad()) continue;
      const auto term = (grad[k] * u[k]).sum();
      dot = dot.defined() ? dot + term : term;
    }
    if (!dot.defined()) return torch::zeros_like(y);
    return to_y(torch::autograd::grad({dot}, params, {}, true, false, true), metric);
  };
  // An orthonormal basis: the penalties' directions, then two Krylov extensions.
  std::vector<torch::Tensor> basis, images, directions;
  auto add = [&](torch::Tensor v) {
    for (const auto& b : basis) v = v - b * b.dot(v);
    const double n = v.norm().item<double>();
    if (!(n > 1e-10)) return false;
    basis.push_back(v / n);
    images.push_back(hessian_y(basis.back()));
    return true;
  };
  for (const auto& nrm : normals) {
    directions.push_back(to_y(nrm.grads, metric));
    add(directions.back());
  }
  for (int e = 0; e < 2 && !basis.empty(); ++e) {
    torch::Tensor r = torch::zeros_like(basis[0]);
    for (const auto& h : images) r = r + h;
    if (!add(r)) break;
  }
  if (curvature) curvature->assign(normals.size(), 0.0);
  if (basis.empty()) return 1.0;
  const auto q = torch::stack(basis, 1), hq = torch::stack(images, 1);
  const auto t = q.t().mm(hq);
  auto a = torch::zeros_like(t);
  for (size_t j = 0; j < normals.size(); ++j) {
    const auto c = q.t().mv(directions[j]);
    a = a + torch::outer(c, c) * normals[j].penalty;
    const double squared = directions[j].dot(directions[j]).item<double>();
    if (curvature && squared > 0) (*curvature)[j] = c.dot(t.mv(c)).item<double>() / squared;
  }
  return largest_factor(t, a, limit);
}

}  // namespace detail
}  // namespace feasible
