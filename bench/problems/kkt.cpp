// The KKT check of a point (kkt) and Newton's method on the KKT system (refine), in float64
// with autograd. Sizes are tiny (n <= 10), so dense linear algebra throughout.
#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "bench/problems/problems.h"

namespace feasible {
namespace problems {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// d y / d x for a 0-d y; zeros when y does not depend on x (a constant gradient of a linear
// function has no graph).
torch::Tensor gradient_of(const torch::Tensor& y, const torch::Tensor& x, bool create_graph) {
  if (!y.requires_grad()) return torch::zeros_like(x);
  torch::Tensor d = torch::autograd::grad({y}, {x}, {}, /*retain_graph=*/true, create_graph,
                                          /*allow_unused=*/true)[0];
  return d.defined() ? d : torch::zeros_like(x);
}

// The Jacobian [m, n] of y [m] with respect to x [n].
torch::Tensor jacobian_of(const torch::Tensor& y, const torch::Tensor& x) {
  std::vector<torch::Tensor> rows;
  for (int64_t i = 0; i < y.size(0); ++i) rows.push_back(gradient_of(y[i], x, false));
  if (rows.empty()) return torch::zeros({0, x.size(0)}, x.options());
  return torch::stack(rows);
}

// Values and first derivatives of a problem's functions at a float64 point.
struct Derivatives {
  torch::Tensor grad_f;  // [n]
  torch::Tensor g;       // [n_ineq]
  torch::Tensor h;       // [n_eq]
  torch::Tensor jac_g;   // [n_ineq, n]
  torch::Tensor jac_h;   // [n_eq, n]
};

Derivatives derivatives(const TestProblem& p, const std::vector<double>& x) {
  torch::Tensor t = to_tensor(x).requires_grad_(true);
  Derivatives d;
  d.grad_f = gradient_of(p.f(t), t, false);
  torch::Tensor g = p.n_ineq > 0 ? p.g(t) : torch::zeros({0}, t.options());
  torch::Tensor h = p.n_eq > 0 ? p.h(t) : torch::zeros({0}, t.options());
  d.jac_g = jacobian_of(g, t);
  d.jac_h = jacobian_of(h, t);
  d.g = g.detach();
  d.h = h.detach();
  return d;
}

// Hessian [n, n] of f + mu . g[active] + nu . h at x (symmetrized).
torch::Tensor lagrangian_hessian(const TestProblem& p, const std::vector<double>& x,
                                 const std::vector<int64_t>& active, const std::vector<double>& mu,
                                 const std::vector<double>& nu) {
  torch::Tensor t = to_tensor(x).requires_grad_(true);
  torch::Tensor lagrangian = p.f(t);
  if (!active.empty()) {
    torch::Tensor g = p.g(t).index({torch::tensor(active, torch::kLong)});
    lagrangian = lagrangian + (g * to_tensor(mu)).sum();
  }
  if (p.n_eq > 0) lagrangian = lagrangian + (p.h(t) * to_tensor(nu)).sum();
  torch::Tensor grad = gradient_of(lagrangian, t, /*create_graph=*/true);
  std::vector<torch::Tensor> rows;
  for (int64_t i = 0; i < p.n; ++i) rows.push_back(gradient_of(grad[i], t, false));
  torch::Tensor hessian = torch::stack(rows);
  return (hessian + hessian.t()) * 0.5;
}

std::vector<double> to_vector(const torch::Tensor& t) {
  torch::Tensor c = t.detach().to(torch::kFloat64).contiguous().reshape({-1});
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

void check_arguments(const TestProblem& p, const std::vector<double>& x, double active_tol) {
  if (static_cast<int64_t>(x.size()) != p.n) {
    throw std::invalid_argument("problems::kkt: x has size " + std::to_string(x.size()) +
                                ", problem " + p.name + " has n = " + std::to_string(p.n));
  }
  if (!(active_tol >= 0)) throw std::invalid_argument("problems::kkt: active_tol must be >= 0");
}

// The active set of x: fills report.active_ineq, active_lower, active_upper, active.
void find_active(const TestProblem& p, const std::vector<double>& x, const torch::Tensor& g,
                 double active_tol, KktReport& report) {
  std::vector<double> gv = to_vector(g);
  for (int64_t i = 0; i < p.n_ineq; ++i) {
    if (gv[i] >= -active_tol) report.active_ineq.push_back(i);
  }
  for (int64_t j = 0; j < p.n; ++j) {
    if (x[j] - p.lower[j] <= active_tol) report.active_lower.push_back(j);
    if (p.upper[j] - x[j] <= active_tol) report.active_upper.push_back(j);
  }
  report.active = static_cast<int64_t>(report.active_ineq.size() + report.active_lower.size() +
                                       report.active_upper.size());
}

// Columns [n, k] of the constraint gradients in KktReport's multiplier order.
torch::Tensor active_gradients(const TestProblem& p, const Derivatives& d, const KktReport& r) {
  std::vector<torch::Tensor> columns;
  for (int64_t i : r.active_ineq) columns.push_back(d.jac_g[i]);
  for (int64_t j = 0; j < p.n_eq; ++j) columns.push_back(d.jac_h[j]);
  torch::Tensor eye = torch::eye(p.n, torch::kFloat64);
  for (int64_t j : r.active_lower) columns.push_back(-eye[j]);
  for (int64_t j : r.active_upper) columns.push_back(eye[j]);
  if (columns.empty()) return torch::zeros({p.n, 0}, torch::kFloat64);
  return torch::stack(columns, 1);
}

double max_violation(const TestProblem& p, const std::vector<double>& x, const Derivatives& d) {
  double v = 0;
  for (double gi : to_vector(d.g)) v = std::max(v, gi);
  for (double hj : to_vector(d.h)) v = std::max(v, std::abs(hj));
  for (int64_t j = 0; j < p.n; ++j) v = std::max({v, p.lower[j] - x[j], x[j] - p.upper[j]});
  return v;
}

// Smallest eigenvalue of `hessian` on the null space of the rows of `normals` [r, n].
double reduced_curvature(const torch::Tensor& hessian, const torch::Tensor& normals) {
  const int64_t n = hessian.size(0);
  torch::Tensor basis = torch::eye(n, torch::kFloat64);  // columns span the null space
  if (normals.size(0) > 0) {
    auto [u, s, vh] = torch::linalg_svd(normals, /*full_matrices=*/true);
    const double cut = 1e-10 * std::max(1.0, s.max().item<double>());
    const int64_t rank = (s > cut).sum().item<int64_t>();
    if (rank == n) return kInf;
    basis = vh.slice(0, rank).t();
  }
  return torch::linalg_eigvalsh(basis.t().mm(hessian).mm(basis)).min().item<double>();
}

}  // namespace

torch::Tensor to_tensor(const std::vector<double>& x, torch::Dtype dtype) {
  return torch::tensor(x, torch::dtype(torch::kFloat64)).to(dtype);
}

KktReport kkt(const TestProblem& p, const std::vector<double>& x, double active_tol) {
  check_arguments(p, x, active_tol);
  const Derivatives d = derivatives(p, x);
  KktReport r;
  find_active(p, x, d.g, active_tol, r);
  r.max_violation = max_violation(p, x, d);
  r.gradient_norm = d.grad_f.abs().max().item<double>();
  torch::Tensor all_normals = torch::cat({d.jac_g, d.jac_h});
  if (all_normals.size(0) > 0) {
    r.constraint_gradient_norm = all_normals.abs().sum(1).max().item<double>();
  }
  const torch::Tensor columns = active_gradients(p, d, r);
  torch::Tensor residual = d.grad_f;
  if (columns.size(1) > 0) {
    torch::Tensor fit = std::get<0>(torch::linalg_lstsq(columns, -d.grad_f.unsqueeze(1),
                                                        /*rcond=*/1e-12, "gelsd"));
    residual = d.grad_f + columns.mm(fit).squeeze(1);
    r.multipliers = to_vector(fit);
  }
  r.stationarity = residual.abs().max().item<double>();
  const size_t n_mu = r.active_ineq.size();
  const size_t n_nu = static_cast<size_t>(p.n_eq);
  r.min_active_multiplier = kInf;
  for (size_t k = 0; k < r.multipliers.size(); ++k) {
    if (k < n_mu || k >= n_mu + n_nu) {
      r.min_active_multiplier = std::min(r.min_active_multiplier, r.multipliers[k]);
    }
  }
  const std::vector<double> mu(r.multipliers.begin(), r.multipliers.begin() + n_mu);
  const std::vector<double> nu(r.multipliers.begin() + n_mu, r.multipliers.begin() + n_mu + n_nu);
  const torch::Tensor hessian = lagrangian_hessian(p, x, r.active_ineq, mu, nu);
  r.lagrangian_hessian_norm = hessian.abs().sum(1).max().item<double>();
  // Normals of the strongly active constraints: columns whose multiplier exceeds active_tol.
  std::vector<torch::Tensor> normals;
  for (size_t k = 0; k < r.multipliers.size(); ++k) {
    const bool equality = k >= n_mu && k < n_mu + n_nu;
    if (equality || r.multipliers[k] > active_tol) normals.push_back(columns.select(1, k));
  }
  r.reduced_curvature = reduced_curvature(
      hessian, normals.empty() ? torch::zeros({0, p.n}, torch::kFloat64) : torch::stack(normals));
  return r;
}

namespace {

// One Newton step on the KKT system of refine(); returns the step in x (free variables).
torch::Tensor newton_step(const TestProblem& p, std::vector<double>& x, std::vector<double>& mu,
                          std::vector<double>& nu, const KktReport& active,
                          const std::vector<int64_t>& free) {
  const Derivatives d = derivatives(p, x);
  const torch::Tensor index = torch::tensor(free, torch::kLong);
  torch::Tensor normals = torch::zeros({0, p.n}, torch::kFloat64);
  torch::Tensor values = torch::zeros({0}, torch::kFloat64);
  if (!active.active_ineq.empty()) {
    const torch::Tensor rows = torch::tensor(active.active_ineq, torch::kLong);
    normals = d.jac_g.index({rows});
    values = d.g.index({rows});
  }
  normals = torch::cat({normals, d.jac_h});
  values = torch::cat({values, d.h});
  std::vector<double> lambda = mu;
  lambda.insert(lambda.end(), nu.begin(), nu.end());
  torch::Tensor grad = d.grad_f + normals.t().mv(to_tensor(lambda));
  const torch::Tensor hessian = lagrangian_hessian(p, x, active.active_ineq, mu, nu);
  const int64_t nf = static_cast<int64_t>(free.size());
  const int64_t nc = normals.size(0);
  torch::Tensor j = normals.index_select(1, index);  // [nc, nf]
  torch::Tensor m = torch::zeros({nf + nc, nf + nc}, torch::kFloat64);
  m.slice(0, 0, nf).slice(1, 0, nf).copy_(hessian.index_select(0, index).index_select(1, index));
  m.slice(0, 0, nf).slice(1, nf).copy_(j.t());
  m.slice(0, nf).slice(1, 0, nf).copy_(j);
  torch::Tensor rhs = -torch::cat({grad.index_select(0, index), values});
  torch::Tensor step =
      std::get<0>(torch::linalg_lstsq(m, rhs.unsqueeze(1), /*rcond=*/1e-14, "gelsd")).squeeze(1);
  std::vector<double> s = to_vector(step);
  for (int64_t k = 0; k < nf; ++k) x[free[k]] += s[k];
  for (size_t k = 0; k < mu.size(); ++k) mu[k] += s[nf + k];
  for (size_t k = 0; k < nu.size(); ++k) nu[k] += s[nf + mu.size() + k];
  return step.slice(0, 0, nf);
}

}  // namespace

Refinement refine(const TestProblem& p, const std::vector<double>& x, double active_tol,
                  int64_t max_iterations) {
  const KktReport start = kkt(p, x, active_tol);
  Refinement out;
  out.x = x;
  std::vector<bool> fixed(p.n, false);
  for (int64_t j : start.active_lower) out.x[j] = p.lower[j], fixed[j] = true;
  for (int64_t j : start.active_upper) out.x[j] = p.upper[j], fixed[j] = true;
  std::vector<int64_t> free;
  for (int64_t j = 0; j < p.n; ++j) {
    if (!fixed[j]) free.push_back(j);
  }
  const size_t n_mu = start.active_ineq.size();
  std::vector<double> mu(start.multipliers.begin(), start.multipliers.begin() + n_mu);
  std::vector<double> nu(start.multipliers.begin() + n_mu,
                         start.multipliers.begin() + n_mu + p.n_eq);
  while (!free.empty() && out.iterations < max_iterations && !out.converged) {
    const torch::Tensor step = newton_step(p, out.x, mu, nu, start, free);
    ++out.iterations;
    double size = 0;
    for (double xj : out.x) size = std::max(size, std::abs(xj));
    out.converged = step.abs().max().item<double>() <= 1e-14 * (1 + size);
  }
  if (free.empty()) out.converged = true;
  // Bound multipliers from the final gradient of the Lagrangian.
  const Derivatives d = derivatives(p, out.x);
  torch::Tensor grad = d.grad_f + d.jac_h.t().mv(to_tensor(nu));
  if (n_mu > 0) {
    grad = grad +
           d.jac_g.index({torch::tensor(start.active_ineq, torch::kLong)}).t().mv(to_tensor(mu));
  }
  const std::vector<double> gl = to_vector(grad);
  out.multipliers = mu;
  out.multipliers.insert(out.multipliers.end(), nu.begin(), nu.end());
  for (int64_t j : start.active_lower) out.multipliers.push_back(gl[j]);
  for (int64_t j : start.active_upper) out.multipliers.push_back(-gl[j]);
  for (size_t j = 0; j < x.size(); ++j) {
    out.moved = std::max(out.moved, std::abs(out.x[j] - x[j]));
  }
  return out;
}

}  // namespace problems
}  // namespace feasible
