// Convergence to known optima on a strictly convex quadratic program with linear constraints:
//
//   minimize ||x||^2  subject to  A x <= b  (inequality)  or  A x = b  (equality),
//
// A is 5 x n (n = 5 or 10) with singular values in [1.5, 2.5) and b has unit norm. The optimum
// and its multipliers are computed here in float64 from the KKT conditions (stationarity
// 2x + A^T lambda = 0 for L = ||x||^2 + lambda^T (A x - b); for inequalities, by enumerating all
// 2^5 active sets). Every scheme with multipliers (Simultaneous, AlternatingDualPrimal,
// AlternatingPrimalDual, Extragradient) x {Lagrangian, AugmentedLagrangian} x {dense, indexed}
// multiplier x {exact constraints, proxy constraints} x {inequality, equality} x n x 2 seeds is
// run with SGD for both players (ExtraSGD for extragradient) and must reach the optimum to 1e-4
// in x and in the multipliers. With proxy constraints (the primal update sees (A + N) x - b
// with a fixed noise N, the dual update the exact A x - b), the iterates must reach the point
// where the exact constraint holds (feasibility within 5e-4) and which is the fixed point of
// the proxy game, derived below in closed form. Also: QuadraticPenalty through
// UnconstrainedOptimizer with a MultiplicativePenaltyUpdater reaches x* within 1e-3.
//
// The indexed multiplier observes, in every step, all five rows in a random order for the
// primal term (indices) and a random subset of 2 to 5 rows, in random order, for the dual
// update (strict_indices / strict_violation computed for those rows only). The primal term
// keeps all rows because with a random subset there the primal gradient at the optimum,
// 2x* + sum over the batch of lambda_i a_i, is not zero, and constant-step SGD would only
// reach a noise ball, never 1e-4; the dual update has no such bias (s_i = 0 on every active
// row at the optimum), so a random dual subset still converges exactly.
//
// Grid size: 4 schemes x 2 formulations x 2 multipliers x 2 (exact/proxy) x 2 kinds x 2 n x
// 2 seeds = 256 runs, the whole grid (nothing dropped), plus 8 quadratic-penalty runs
// (2 kinds x 2 n x 2 seeds). Each test case (CTest runs one process per case) covers one grid
// point on all four (n, seed) instances: 64 + 2 cases. Starting a test process costs about
// 1 s of CPU (LibTorch's static initialization), more than a run of 300 steps, so one case
// per run would make CTest spend ~4 CPU-minutes on process start-up alone. Step sizes: SGD 0.2
// (primal) and 0.25 (dual) everywhere, except extragradient with the Augmented Lagrangian, whose
// primal step is 0.1 (kExtraAugmentedPrimalLr).
#include <feasible/feasible.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

namespace {

using feasible::ConstraintKind;
using feasible::MultiplierKind;

constexpr int kRows = 5;           // m: number of scalar constraints
constexpr double kNoise = 0.05;    // proxy noise: N = kNoise * randn(m, n), fixed
constexpr double kPrimalLr = 0.2;  // SGD step of x
// Extragradient with the Augmented Lagrangian: the primal curvature is 2 + c sigma^2, up to
// about 8.5 (sigma < 2.5, plus a little for the proxy noise), and extragradient on a quadratic
// of curvature L multiplies the error by 1 - h + h^2 with h = lr L, which exceeds 1 for h > 1
// (0.2 * 8.5 = 1.7 diverges: observed), so this pair uses 0.1 (h < 0.9, factor < 0.91).
constexpr double kExtraAugmentedPrimalLr = 0.1;
constexpr double kDualLr = 0.25;  // SGD step of the multipliers
constexpr double kPenalty = 1.0;  // Augmented Lagrangian coefficient c
// Fixed iteration count. Every case converges linearly. For simultaneous GDA on the Lagrangian
// (the slowest scheme here) the iteration matrix on each singular pair of A is
// [[1 - 2 lr, -lr s], [dual_lr s, 1]], whose eigenvalues are complex for s >= 1.5 with
// |z|^2 = 1 - 2 lr + lr dual_lr s^2 <= 0.9125 (s < 2.5), so |z| <= 0.955 and 300 steps shrink
// an O(1) start by 0.955^300 ~ 1e-6. Observed: the slowest case (simultaneous, Lagrangian,
// dense, n = 10) is within 1e-5 of its target after 173 steps, so 300 leave a wide margin.
constexpr int kIterations = 300;
// x and multipliers vs the target, max-abs. Far above float64 rounding (1e-15) and far below
// the distance the iteration starts from (O(1)), so only real convergence passes.
constexpr double kTolerance = 1e-4;
// |A x - b| on active (or equality) rows, (A x - b)+ on the others: the feasibility that proxy
// constraints promise, checked in every case (implied by kTolerance on x up to ||A|| < 2.5).
constexpr double kFeasibleTolerance = 5e-4;

// ---------------------------------------------------------------- small float64 linear algebra

// A row-major dense matrix.
struct Mat {
  Mat(int r, int c) : rows(r), cols(c), a(static_cast<size_t>(r) * c, 0.0) {}
  double& operator()(int i, int j) { return a[static_cast<size_t>(i) * cols + j]; }
  double operator()(int i, int j) const { return a[static_cast<size_t>(i) * cols + j]; }
  int rows;
  int cols;
  std::vector<double> a;
};

// A portable standard normal draw (Box-Muller on mt19937_64, whose output the standard fixes;
// std::normal_distribution differs between standard libraries).
double normal(std::mt19937_64& g) {
  const double u1 = (static_cast<double>(g() >> 11) + 1.0) * 0x1.0p-53;  // (0, 1]
  const double u2 = static_cast<double>(g() >> 11) * 0x1.0p-53;          // [0, 1)
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
}

double uniform(std::mt19937_64& g) { return static_cast<double>(g() >> 11) * 0x1.0p-53; }

// r x k matrix with orthonormal columns (k <= r): modified Gram-Schmidt, twice, on a Gaussian
// matrix, i.e. the Q factor of its QR decomposition.
Mat orthonormal_columns(int r, int k, std::mt19937_64& g) {
  Mat q(r, k);
  for (auto& v : q.a) v = normal(g);
  for (int pass = 0; pass < 2; ++pass) {
    for (int j = 0; j < k; ++j) {
      for (int p = 0; p < j; ++p) {
        double dot = 0;
        for (int i = 0; i < r; ++i) dot += q(i, p) * q(i, j);
        for (int i = 0; i < r; ++i) q(i, j) -= dot * q(i, p);
      }
      double norm = 0;
      for (int i = 0; i < r; ++i) norm += q(i, j) * q(i, j);
      norm = std::sqrt(norm);
      for (int i = 0; i < r; ++i) q(i, j) /= norm;
    }
  }
  return q;
}

// Solves M z = rhs (d x d) by Gaussian elimination with partial pivoting; false if singular.
bool solve(Mat m, std::vector<double> rhs, std::vector<double>& z) {
  const int d = m.rows;
  for (int col = 0; col < d; ++col) {
    int piv = col;
    for (int i = col + 1; i < d; ++i) {
      if (std::abs(m(i, col)) > std::abs(m(piv, col))) piv = i;
    }
    if (std::abs(m(piv, col)) < 1e-12) return false;
    if (piv != col) {
      for (int j = 0; j < d; ++j) std::swap(m(piv, j), m(col, j));
      std::swap(rhs[piv], rhs[col]);
    }
    for (int i = col + 1; i < d; ++i) {
      const double f = m(i, col) / m(col, col);
      if (f == 0.0) continue;
      for (int j = col; j < d; ++j) m(i, j) -= f * m(col, j);
      rhs[i] -= f * rhs[col];
    }
  }
  z.assign(d, 0.0);
  for (int i = d - 1; i >= 0; --i) {
    double acc = rhs[i];
    for (int j = i + 1; j < d; ++j) acc -= m(i, j) * z[j];
    z[i] = acc / m(i, i);
  }
  return true;
}

// y = M x - b.
std::vector<double> residual(const Mat& m, const std::vector<double>& x,
                             const std::vector<double>& b) {
  std::vector<double> r(m.rows);
  for (int i = 0; i < m.rows; ++i) {
    double acc = -b[i];
    for (int j = 0; j < m.cols; ++j) acc += m(i, j) * x[j];
    r[i] = acc;
  }
  return r;
}

double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b) {
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
  return worst;
}

std::string str(const std::vector<double>& v) {
  std::ostringstream os;
  os.precision(6);
  os << "[";
  for (size_t i = 0; i < v.size(); ++i) os << (i ? ", " : "") << v[i];
  os << "]";
  return os.str();
}

// ---------------------------------------------------------------- fixed points in closed form

struct FixedPoint {
  std::vector<double> x;
  std::vector<double> lambda;  // all kRows entries (0 off the active set for inequalities)
  std::vector<bool> active;    // rows with lambda free (all rows for equalities)
};

// All fixed points of the primal-dual iteration when the primal update sees the constraint
// matrix P (A, or A + N for proxies) and the dual update sees the exact A x - b, for the
// Lagrangian (c = 0) or the Augmented Lagrangian with coefficient c. With pv = P x - b:
//
//   primal stationarity  2x + P^T w = 0, where w = lambda (Lagrangian);
//     w = lambda + c pv (AL, equality); w_i = [lambda_i + c pv_i]+ (AL, inequality);
//   dual stationarity    A x = b (equality); for inequalities, per row either lambda_i > 0
//     and (A x - b)_i = 0 (row in the active set S) or lambda_i = 0 and (A x - b)_i <= 0.
//
// For inequalities, with S the active rows and T the inactive rows with pv_i > 0 (which still
// contribute c pv_i to w under AL), this is the linear system
//   (2I + c P_W^T P_W) x + P_S^T lambda_S = c P_W^T b_W,   A_S x = b_S,   W = S u T,
// whose solution counts when its signs agree with (S, T). Enumerating all S (and T for AL)
// finds every fixed point. With P = A and c = 0 it is the KKT system of the problem itself:
// x = A_S^T (A_S A_S^T)^{-1} b_S, lambda_S = -2 (A_S A_S^T)^{-1} b_S.
std::vector<FixedPoint> fixed_points(const Mat& a, const Mat& p, const std::vector<double>& b,
                                     ConstraintKind kind, double c) {
  const int n = a.cols;
  const double tol = 1e-12;
  const int all = (1 << kRows) - 1;
  std::vector<FixedPoint> found;
  for (int s_mask = 0; s_mask <= all; ++s_mask) {
    if (kind == ConstraintKind::kEquality && s_mask != all) continue;
    const int rest = all & ~s_mask;
    for (int t_mask = 0; t_mask <= rest; ++t_mask) {
      if ((t_mask & ~rest) != 0) continue;
      if (c == 0.0 && t_mask != 0) continue;
      const int w_mask = s_mask | t_mask;
      std::vector<int> s_rows;
      for (int i = 0; i < kRows; ++i) {
        if (s_mask >> i & 1) s_rows.push_back(i);
      }
      const int d = n + static_cast<int>(s_rows.size());
      Mat m(d, d);
      std::vector<double> rhs(d, 0.0);
      for (int j = 0; j < n; ++j) m(j, j) = 2.0;
      for (int i = 0; i < kRows; ++i) {
        if (!(w_mask >> i & 1) || c == 0.0) continue;
        for (int j = 0; j < n; ++j) {
          for (int k = 0; k < n; ++k) m(j, k) += c * p(i, j) * p(i, k);
          rhs[j] += c * b[i] * p(i, j);
        }
      }
      for (size_t k = 0; k < s_rows.size(); ++k) {
        const int i = s_rows[k];
        for (int j = 0; j < n; ++j) {
          m(j, n + static_cast<int>(k)) = p(i, j);
          m(n + static_cast<int>(k), j) = a(i, j);
        }
        rhs[n + k] = b[i];
      }
      std::vector<double> z;
      if (!solve(m, rhs, z)) continue;
      FixedPoint fp;
      fp.x.assign(z.begin(), z.begin() + n);
      fp.lambda.assign(kRows, 0.0);
      fp.active.assign(kRows, false);
      for (size_t k = 0; k < s_rows.size(); ++k) {
        fp.lambda[s_rows[k]] = z[n + k];
        fp.active[s_rows[k]] = true;
      }
      bool valid = true;
      if (kind == ConstraintKind::kInequality) {
        const auto v = residual(a, fp.x, b);
        const auto pv = residual(p, fp.x, b);
        for (int i = 0; i < kRows && valid; ++i) {
          if (s_mask >> i & 1) {
            valid = fp.lambda[i] >= -tol && (c == 0.0 || fp.lambda[i] + c * pv[i] >= -tol);
          } else {
            valid = v[i] <= tol;
            if (valid && c != 0.0) valid = (t_mask >> i & 1) ? pv[i] >= -tol : pv[i] <= tol;
          }
        }
      }
      if (!valid) continue;
      const bool duplicate = std::any_of(found.begin(), found.end(), [&](const FixedPoint& f) {
        return max_abs_diff(f.x, fp.x) < 1e-9 && max_abs_diff(f.lambda, fp.lambda) < 1e-9;
      });
      if (!duplicate) found.push_back(fp);
    }
  }
  return found;
}

// ---------------------------------------------------------------- the test problems

struct TestProblem {
  TestProblem(int n) : a(kRows, n), noisy(kRows, n) {}
  Mat a;      // A = U diag(s) V^T
  Mat noisy;  // A + N, the proxy's constraint matrix
  std::vector<double> b;
  std::vector<double> x0;  // starting point
  FixedPoint optimum;      // the KKT point of the problem itself
};

// A 5 x n matrix with singular values in [1.5, 2.5), a unit-norm b, a fixed noise and a start.
// For inequalities, b is redrawn until the optimum is non-degenerate with a margin (at least
// one active and one inactive row; active multipliers >= 0.05; inactive slack >= 0.05), so
// that each inequality case exercises both kinds of rows and converges at the linear rate.
TestProblem make_problem(int n, int seed, ConstraintKind kind) {
  std::mt19937_64 g(static_cast<uint64_t>(seed) * 1000003u + static_cast<uint64_t>(n) * 7919u +
                    (kind == ConstraintKind::kEquality ? 1u : 0u));
  TestProblem tp(n);
  const Mat u = orthonormal_columns(kRows, kRows, g);
  const Mat v = orthonormal_columns(n, kRows, g);
  std::vector<double> s(kRows);
  for (auto& si : s) si = 1.5 + uniform(g);
  for (int i = 0; i < kRows; ++i) {
    for (int j = 0; j < n; ++j) {
      double acc = 0;
      for (int k = 0; k < kRows; ++k) acc += u(i, k) * s[k] * v(j, k);
      tp.a(i, j) = acc;
      tp.noisy(i, j) = acc + kNoise * normal(g);
    }
  }
  tp.x0.resize(n);
  for (auto& xi : tp.x0) xi = 0.5 * normal(g);
  for (int attempt = 0; attempt < 1000; ++attempt) {
    tp.b.assign(kRows, 0.0);
    double norm = 0;
    for (auto& bi : tp.b) {
      bi = normal(g);
      norm += bi * bi;
    }
    for (auto& bi : tp.b) bi /= std::sqrt(norm);
    const auto kkt = fixed_points(tp.a, tp.a, tp.b, kind, 0.0);
    if (kkt.size() != 1) continue;  // cannot happen: the problem is strictly convex
    tp.optimum = kkt[0];
    if (kind == ConstraintKind::kEquality) return tp;
    const auto slack = residual(tp.a, tp.optimum.x, tp.b);
    int active = 0;
    bool margin = true;
    for (int i = 0; i < kRows; ++i) {
      if (tp.optimum.active[i]) {
        ++active;
        margin = margin && tp.optimum.lambda[i] >= 0.05;
      } else {
        margin = margin && slack[i] <= -0.05;
      }
    }
    if (margin && active >= 1 && active < kRows) return tp;
  }
  ADD_FAILURE() << "no non-degenerate right-hand side found";
  return tp;
}

torch::Tensor to_tensor(const Mat& m) {
  return torch::tensor(m.a, torch::kFloat64).reshape({m.rows, m.cols});
}
torch::Tensor to_tensor(const std::vector<double>& v) { return torch::tensor(v, torch::kFloat64); }
std::vector<double> to_vector(const torch::Tensor& t) {
  auto c = t.detach().to(torch::kFloat64).contiguous();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

// ---------------------------------------------------------------- the grid

enum class Scheme { kSimultaneous, kDualPrimal, kPrimalDual, kExtragradient };
enum class Form { kLagrangian, kAugmented };

// One run: the grid point plus the problem instance (n, seed).
using Params = std::tuple<Scheme, Form, MultiplierKind, bool /*proxy*/, ConstraintKind, int /*n*/,
                          int /*seed*/>;
// One CTest case: a grid point, run on the four instances n in {5, 10} x seed in {1, 2}.
using GridParams = std::tuple<Scheme, Form, MultiplierKind, bool /*proxy*/, ConstraintKind>;

std::string scheme_name(Scheme s) {
  switch (s) {
    case Scheme::kSimultaneous:
      return "Simultaneous";
    case Scheme::kDualPrimal:
      return "DualPrimal";
    case Scheme::kPrimalDual:
      return "PrimalDual";
    case Scheme::kExtragradient:
      return "Extragradient";
  }
  return "?";
}

std::string case_name(const testing::TestParamInfo<GridParams>& info) {
  const auto& [scheme, form, mult, proxy, kind] = info.param;
  std::ostringstream os;
  os << scheme_name(scheme) << "_" << (form == Form::kLagrangian ? "Lagrangian" : "AugLag") << "_"
     << (mult == MultiplierKind::kDense ? "Dense" : "Indexed") << "_" << (proxy ? "Proxy" : "Exact")
     << "_" << (kind == ConstraintKind::kInequality ? "Ineq" : "Eq");
  return os.str();
}

struct RunResult {
  std::vector<double> x;
  std::vector<double> lambda;
};

// Runs kIterations steps of the scheme from (x0, lambda = 0); returns the final iterate.
RunResult run(const TestProblem& tp, const Params& params) {
  const auto& [scheme, form, mult, proxy, kind, n, seed] = params;
  const torch::Tensor a = to_tensor(tp.a);
  const torch::Tensor p = proxy ? to_tensor(tp.noisy) : a;
  const torch::Tensor b = to_tensor(tp.b);
  torch::Tensor x = to_tensor(tp.x0).set_requires_grad(true);

  feasible::Problem problem;
  auto options = feasible::ConstraintOptions(kind, kRows).multiplier(mult).dtype(torch::kFloat64);
  if (form == Form::kAugmented) {
    options.formulation(std::make_shared<feasible::AugmentedLagrangian>()).penalty(kPenalty);
  }
  const auto rows = problem.add_constraint("rows", options);

  std::shared_ptr<torch::optim::Optimizer> primal;
  std::shared_ptr<torch::optim::Optimizer> dual;
  if (scheme == Scheme::kExtragradient) {
    const double lr = form == Form::kAugmented ? kExtraAugmentedPrimalLr : kPrimalLr;
    primal = std::make_shared<feasible::optim::ExtraSGD>(std::vector<torch::Tensor>{x}, lr);
    dual = std::make_shared<feasible::optim::ExtraSGD>(problem.dual_parameters(), kDualLr);
  } else {
    primal = std::make_shared<torch::optim::SGD>(std::vector<torch::Tensor>{x},
                                                 torch::optim::SGDOptions(kPrimalLr));
    dual = std::make_shared<torch::optim::SGD>(problem.dual_parameters(),
                                               torch::optim::SGDOptions(kDualLr));
  }
  std::unique_ptr<feasible::ConstrainedOptimizer> optimizer;
  switch (scheme) {
    case Scheme::kSimultaneous:
      optimizer =
          std::make_unique<feasible::SimultaneousOptimizer>(problem, std::vector{primal}, dual);
      break;
    case Scheme::kDualPrimal:
      optimizer = std::make_unique<feasible::AlternatingDualPrimalOptimizer>(
          problem, std::vector{primal}, dual);
      break;
    case Scheme::kPrimalDual:
      optimizer = std::make_unique<feasible::AlternatingPrimalDualOptimizer>(
          problem, std::vector{primal}, dual);
      break;
    case Scheme::kExtragradient:
      optimizer =
          std::make_unique<feasible::ExtragradientOptimizer>(problem, std::vector{primal}, dual);
      break;
  }

  std::mt19937_64 order(static_cast<uint64_t>(seed) + 12345u);
  std::vector<int64_t> perm(kRows);
  const auto closure = [&] {
    feasible::ProblemState state(x.pow(2).sum());
    if (mult == MultiplierKind::kDense) {
      feasible::ConstraintState cs(p.mv(x) - b);
      if (proxy) cs.strict_violation(a.mv(x.detach()) - b);
      state.observe(rows, cs);
    } else {
      // Primal: all rows, in a random order. Dual: a random subset of 2..5 rows, random order.
      std::iota(perm.begin(), perm.end(), 0);
      std::shuffle(perm.begin(), perm.end(), order);
      const torch::Tensor idx = torch::tensor(perm, torch::kLong);
      std::shuffle(perm.begin(), perm.end(), order);
      const int64_t k = 2 + static_cast<int64_t>(order() % (kRows - 1));
      const torch::Tensor sub = torch::tensor(perm, torch::kLong).slice(0, 0, k);
      state.observe(
          rows,
          feasible::ConstraintState(p.index_select(0, idx).mv(x) - b.index_select(0, idx))
              .indices(idx)
              .strict_indices(sub)
              .strict_violation(a.index_select(0, sub).mv(x.detach()) - b.index_select(0, sub)));
    }
    return state;
  };
  for (int t = 0; t < kIterations; ++t) optimizer->step(closure);
  return {to_vector(x), to_vector(problem.multiplier_values("rows"))};
}

// Runs one grid point on one instance and checks where it ended.
void check_convergence(const Params& params) {
  const auto& [scheme, form, mult, proxy, kind, n, seed] = params;
  const TestProblem tp = make_problem(n, seed, kind);
  const double c = form == Form::kAugmented ? kPenalty : 0.0;
  // The point the iteration must reach: the KKT point with exact constraints (every
  // formulation has it as its fixed point); the proxy game's fixed point otherwise.
  FixedPoint target = tp.optimum;
  if (proxy) {
    const auto points = fixed_points(tp.a, tp.noisy, tp.b, kind, c);
    ASSERT_EQ(points.size(), 1u) << "the proxy game should have exactly one fixed point";
    target = points[0];
    // The noise moves the fixed point away from the exact KKT point by much more than the
    // tolerance, so the checks below tell the two apart (for n = 5 and equalities A is square
    // and x* = A^{-1} b is unchanged; the multipliers still move).
    EXPECT_GT(std::max(max_abs_diff(target.x, tp.optimum.x),
                       max_abs_diff(target.lambda, tp.optimum.lambda)),
              10 * kTolerance);
  }
  const RunResult got = run(tp, params);

  // Linear convergence to 1e-4: see kIterations. Tolerances are far above float64 rounding.
  EXPECT_LE(max_abs_diff(got.x, target.x), kTolerance)
      << "x = " << str(got.x) << "\nexpected " << str(target.x);
  EXPECT_LE(max_abs_diff(got.lambda, target.lambda), kTolerance)
      << "lambda = " << str(got.lambda) << "\nexpected " << str(target.lambda);

  // Feasibility of the exact constraint (what proxies promise): |A x - b| on the rows that
  // are active at the target (all rows for equalities), (A x - b)+ on the others.
  const auto v = residual(tp.a, got.x, tp.b);
  for (int i = 0; i < kRows; ++i) {
    const double violation = target.active[i] ? std::abs(v[i]) : std::max(v[i], 0.0);
    EXPECT_LE(violation, kFeasibleTolerance) << "row " << i << ": A x - b = " << v[i];
  }
}

class Convergence : public testing::TestWithParam<GridParams> {};

TEST_P(Convergence, ReachesTheKnownFixedPoint) {
  const auto& [scheme, form, mult, proxy, kind] = GetParam();
  for (const int n : {5, 10}) {
    for (const int seed : {1, 2}) {
      SCOPED_TRACE("n = " + std::to_string(n) + ", seed = " + std::to_string(seed));
      check_convergence(Params{scheme, form, mult, proxy, kind, n, seed});
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Grid, Convergence,
    testing::Combine(testing::Values(Scheme::kSimultaneous, Scheme::kDualPrimal,
                                     Scheme::kPrimalDual, Scheme::kExtragradient),
                     testing::Values(Form::kLagrangian, Form::kAugmented),
                     testing::Values(MultiplierKind::kDense, MultiplierKind::kIndexed),
                     testing::Bool(),
                     testing::Values(ConstraintKind::kInequality, ConstraintKind::kEquality)),
    case_name);

// ---------------------------------------------------------------- quadratic penalty

// The minimizer x_c of ||x||^2 + (c/2) ||[A x - b]+||^2 (or ||A x - b||^2) lies in the row
// space of the rows A_S active at x*, as x* does, so x_c - x* = A_S^T (A_S A_S^T)^{-1} r_S with
// r_S = A_S x_c - b_S its violation, and ||x_c - x*|| <= ||r_S|| / sigma_min(A_S) <=
// sqrt(5) * tolerance / 1.5 = 3e-4 once c has grown until no row is violated by more than the
// updater's tolerance (c ~ |lambda*| / tolerance ~ 1e3). The step follows c (lr = 1 / L), and
// c grows slowly (2% per step, ~350 steps to 1e3) so that the directions of curvature 2
// (rows inactive at x*, the null space of A for n = 10), which contract by 1 - 2 lr per step,
// decay while lr is still large. x within 1e-3 leaves room for the remaining transient.
constexpr double kPenaltyGrowth = 1.02;     // c <- 1.02 c per step while violated
constexpr double kPenaltyTolerance = 2e-4;  // ... by more than this (any row)
constexpr int kPenaltyIterations = 500;
constexpr double kPenaltyXTolerance = 1e-3;

void check_penalty_convergence(ConstraintKind kind, int n, int seed) {
  const TestProblem tp = make_problem(n, seed, kind);
  const torch::Tensor a = to_tensor(tp.a);
  const torch::Tensor b = to_tensor(tp.b);
  torch::Tensor x = to_tensor(tp.x0).set_requires_grad(true);

  feasible::Problem problem;
  const auto rows = problem.add_constraint(
      "rows",
      feasible::ConstraintOptions(kind, kRows)
          .formulation(std::make_shared<feasible::QuadraticPenalty>())
          .penalty(1.0)
          .penalty_updater(std::make_shared<feasible::MultiplicativePenaltyUpdater>(
              kPenaltyGrowth, feasible::PenaltyUpdaterOptions().tolerance(kPenaltyTolerance)))
          .dtype(torch::kFloat64));
  auto sgd = std::make_shared<torch::optim::SGD>(std::vector<torch::Tensor>{x},
                                                 torch::optim::SGDOptions(0.1));
  feasible::UnconstrainedOptimizer optimizer(problem, {sgd});
  auto& sgd_options = static_cast<torch::optim::SGDOptions&>(sgd->param_groups()[0].options());
  for (int t = 0; t < kPenaltyIterations; ++t) {
    // lr = 1 / L with L = 2 + c ||A||^2 >= the curvature of ||x||^2 + (c/2) ||[A x - b]+||^2
    // (||A|| < 2.5), so gradient descent is stable for every c the updater reaches.
    const double c = problem.penalty_values("rows").item<double>();
    sgd_options.lr(1.0 / (2.0 + c * 6.25));
    optimizer.step([&] {
      feasible::ProblemState state(x.pow(2).sum());
      state.observe(rows, feasible::ConstraintState(a.mv(x) - b));
      return state;
    });
  }
  const auto got = to_vector(x);
  // The updater did the work: with c = 1 the error would be O(0.1), and c ~ 1e3 is needed.
  EXPECT_GT(problem.penalty_values("rows").item<double>(), 100.0);
  EXPECT_LE(max_abs_diff(got, tp.optimum.x), kPenaltyXTolerance)
      << "x = " << str(got) << "\nexpected " << str(tp.optimum.x);
}

class PenaltyConvergence : public testing::TestWithParam<ConstraintKind> {};

TEST_P(PenaltyConvergence, GrowingQuadraticPenaltyReachesTheOptimum) {
  for (const int n : {5, 10}) {
    for (const int seed : {1, 2}) {
      SCOPED_TRACE("n = " + std::to_string(n) + ", seed = " + std::to_string(seed));
      check_penalty_convergence(GetParam(), n, seed);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Grid, PenaltyConvergence,
                         testing::Values(ConstraintKind::kInequality, ConstraintKind::kEquality),
                         [](const testing::TestParamInfo<ConstraintKind>& info) {
                           return std::string(info.param == ConstraintKind::kInequality ? "Ineq"
                                                                                        : "Eq");
                         });

}  // namespace
