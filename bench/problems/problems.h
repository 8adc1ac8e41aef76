// Small constrained optimization problems with known optima, from the Hock-Schittkowski
// collection (1981) and Schittkowski's later set (1987), for benchmarks and tests; and a KKT
// check of a point. The list, the conventions and the citations: docs/problems.md.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace feasible {
namespace problems {

/// One problem: minimize f(x) subject to g(x) <= 0, h(x) = 0 and lower <= x <= upper.
///
/// Sign convention: the books write inequalities as g(x) >= 0; here they are negated, so that
/// every inequality reads g(x) <= 0. Bounds are not inequality constraints: they are kept in
/// `lower` and `upper` only (a benchmark enforces them by projection onto the box).
///
/// The functions take a 1-d tensor x of size n, of any floating dtype (float32 and float64 are
/// tested) on any device, and return tensors of that dtype, differentiable by autograd. They are
/// finite everywhere (polynomials, and log(1 + x^2) and sin in two problems) short of
/// floating-point overflow far from the start point and the optimum.
struct TestProblem {
  /// Identifier: "hs" and the three-digit number of the problem in the 1981 book ("hs021"),
  /// "tp" and the number in the 1987 book ("tp224"). Unique within the collection.
  std::string name;
  /// Citation of the source: book, year and problem number, e.g. "Hock and Schittkowski (1981),
  /// problem 21". The full references are in docs/problems.md.
  std::string source;
  /// Number of variables, >= 1.
  int64_t n = 0;
  /// The source's standard start point, size n. It may lie outside the box or be infeasible (the
  /// books' start points are not always feasible); project it when the method needs that.
  std::vector<double> x0;
  /// The optimum, size n: the unique global minimizer (and a strict local minimizer). Either
  /// the source's values (exact where the source gives a closed form), or the KKT point refined
  /// from them by Newton's method where they are not accurate to their last digit (the
  /// problem's comment says which). Its accuracy is `x_star_tol`.
  std::vector<double> x_star;
  /// Bound on |x_star - exact optimum|_inf: one unit of the last digit given by the source (the
  /// books round or truncate); 0 for closed forms and refined values, which are exact up to
  /// double rounding (tests floor it at 1e-12 (1 + ||x_star||_inf)).
  double x_star_tol = 0;
  /// Objective value at the optimum as stated by the source (units of f).
  double f_star = 0;
  /// Bound on |f_star - f(exact optimum)|: one unit of the last digit given by the source (the
  /// books round or truncate); 0 when f_star is exact.
  double f_star_tol = 0;
  /// Lower bounds, size n; -infinity where a variable has none.
  std::vector<double> lower;
  /// Upper bounds, size n; +infinity where a variable has none. lower[i] <= upper[i].
  std::vector<double> upper;
  /// Number of inequality constraints g(x) <= 0 (bounds not counted), >= 0.
  int64_t n_ineq = 0;
  /// Number of equality constraints h(x) = 0, >= 0.
  int64_t n_eq = 0;
  /// Objective: x [n] -> 0-d tensor, same dtype as x.
  std::function<torch::Tensor(const torch::Tensor& x)> f;
  /// Inequality constraints: x [n] -> [n_ineq], feasible where every entry is <= 0. An empty
  /// function when n_ineq == 0.
  std::function<torch::Tensor(const torch::Tensor& x)> g;
  /// Equality constraints: x [n] -> [n_eq], feasible where every entry is 0. An empty function
  /// when n_eq == 0.
  std::function<torch::Tensor(const torch::Tensor& x)> h;
  /// Whether the problem is convex: f convex on the box and the feasible set convex. (A convex
  /// feasible set may still be written with nonconvex functions, e.g. hs018; see the docs.)
  bool convex = false;
};

/// The collection, in a fixed order (by book, then by number). Built on first use; the
/// reference stays valid for the program's lifetime. Thread-safe.
const std::vector<TestProblem>& collection();

/// The problem of the collection named `name`; throws std::out_of_range when there is none.
const TestProblem& find(const std::string& name);

/// x as a 1-d tensor of the given dtype (float64 by default), for the problem functions.
torch::Tensor to_tensor(const std::vector<double>& x, torch::Dtype dtype = torch::kFloat64);

/// The KKT check of a point x, computed in float64 with autograd.
///
/// Active set: inequality i is active when g_i(x) >= -active_tol; the lower bound of variable j
/// when x_j - lower_j <= active_tol, the upper bound when upper_j - x_j <= active_tol (both can
/// be active only when upper_j - lower_j <= 2 active_tol); equalities are always included.
/// Multipliers: the least-squares solution (minimum norm where the gradients are dependent) of
///
///   grad f(x) + sum_{i active} mu_i grad g_i(x) + sum_j nu_j grad h_j(x)
///             - sum_{j lower-active} lambda_j e_j + sum_{j upper-active} lambda_j e_j = 0,
///
/// with no sign constraint imposed: `min_active_multiplier` reports whether mu and lambda came
/// out >= 0, as they must at a KKT point (a caller checks it >= -tolerance).
struct KktReport {
  /// ||residual of the equation above||_inf at the fitted multipliers (units of grad f).
  double stationarity = 0;
  /// Largest violation: max over max(g_i, 0), |h_j|, max(lower_j - x_j, 0), max(x_j - upper_j, 0);
  /// 0 for a feasible point.
  double max_violation = 0;
  /// Smallest of the fitted mu and lambda (inequalities and bounds); +infinity when none is
  /// active. Negative values beyond rounding mean x is not a KKT point.
  double min_active_multiplier = 0;
  /// Number of active inequalities plus active bounds (equalities not counted).
  int64_t active = 0;
  /// The fitted multipliers, in this order: mu of the active inequalities (ascending index), nu
  /// of all equalities, lambda of the active lower bounds, lambda of the active upper bounds
  /// (ascending variable index each); size active + n_eq.
  std::vector<double> multipliers;
  /// Indices of the active inequalities, ascending.
  std::vector<int64_t> active_ineq;
  /// Variables whose lower bound is active, ascending.
  std::vector<int64_t> active_lower;
  /// Variables whose upper bound is active, ascending.
  std::vector<int64_t> active_upper;
  /// ||grad f(x)||_inf: the scale of the stationarity residual.
  double gradient_norm = 0;
  /// Largest ||grad c(x)||_1 over the inequalities and equalities (0 when there are none): a
  /// change of x by delta in the inf-norm changes any constraint by at most this times delta.
  double constraint_gradient_norm = 0;
  /// ||Hessian of the Lagrangian f + mu.g_active + nu.h at x||_inf (row-sum norm), with the
  /// fitted multipliers: the stationarity residual moves by at most about this times delta when
  /// x moves by delta.
  double lagrangian_hessian_norm = 0;
  /// Smallest eigenvalue of that Hessian on the null space of the gradients of the equalities,
  /// of the active inequalities whose multiplier exceeds active_tol and of the bounds whose
  /// multiplier exceeds active_tol; +infinity when that null space is {0}. Positive at a KKT
  /// point: x is a strict local minimizer (second-order sufficient condition).
  double reduced_curvature = 0;
};

/// The KKT report of `x` (size n) for `p`, with activity threshold `active_tol` >= 0 (see
/// KktReport). Throws std::invalid_argument when x has the wrong size or active_tol < 0.
KktReport kkt(const TestProblem& p, const std::vector<double>& x, double active_tol);

/// Result of refine().
struct Refinement {
  /// The refined point, size n.
  std::vector<double> x;
  /// Its multipliers, in KktReport's order for the active set of the start point.
  std::vector<double> multipliers;
  /// Newton iterations taken.
  int64_t iterations = 0;
  /// ||x - start||_inf: how far the refinement moved.
  double moved = 0;
  /// Whether the last Newton step was below 1e-14 (1 + ||x||_inf).
  bool converged = false;
};

/// Newton's method on the KKT system, from `x` (size n), with the active set of x held fixed
/// (the KktReport's, with `active_tol`): variables at an active bound are set to that bound,
/// and the free variables and the multipliers of the active inequalities and of the equalities
/// solve grad_x L = 0 (free components), g_active = 0, h = 0. Each step solves the linear KKT
/// system by least squares (minimum norm), so dependent gradients do not stop it. For digits beyond
/// a source's: start it at the source's optimum. Throws std::invalid_argument like kkt().
Refinement refine(const TestProblem& p, const std::vector<double>& x, double active_tol,
                  int64_t max_iterations = 50);

}  // namespace problems
}  // namespace feasible
