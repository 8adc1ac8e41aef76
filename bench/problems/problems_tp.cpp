// Schittkowski (1987), "More Test Examples for Nonlinear Programming Codes": a few small
// problems. Each comment states the problem as in the book (inequalities g(x) >= 0); the code
// negates the inequalities (g(x) <= 0 here).
#include <cmath>
#include <vector>

#include "bench/problems/detail.h"

namespace feasible {
namespace problems {
namespace detail {
namespace {

using torch::Tensor;

// TP 217. min -x2  s.t.  1 + x1 - 2 x2 >= 0,  x1^2 + x2^2 - 1 = 0,  x >= 0.
// Start (10, 10). Optimum (0.6, 0.8), f* = -0.8. Unique: the largest x2 on the quarter circle
// with x2 <= (1 + x1)/2, where the line meets the circle.
TestProblem tp217() {
  TestProblem p = tp(217, 2);
  p.n_ineq = 1;
  p.n_eq = 1;
  p.x0 = {10.0, 10.0};
  p.x_star = {0.6, 0.8};
  p.f_star = -0.8;
  p.lower = {0.0, 0.0};
  p.f = [](const Tensor& x) { return -x[1]; };
  p.g = [](const Tensor& x) { return torch::stack({x[1] * 2.0 - x[0] - 1.0}); };
  p.h = [](const Tensor& x) { return torch::stack({sq(x[0]) + sq(x[1]) - 1.0}); };
  return p;
}

// TP 224. min 2 x1^2 + x2^2 - 48 x1 - 40 x2  s.t.  x1 + 3 x2 >= 0,  18 - x1 - 3 x2 >= 0,
// x1 + x2 >= 0,  8 - x1 - x2 >= 0,  0 <= x <= 6. Start (0.1, 0.1). Optimum (4, 4),
// f* = -304. Convex.
TestProblem tp224() {
  TestProblem p = tp(224, 2);
  p.n_ineq = 4;
  p.convex = true;
  p.x0 = {0.1, 0.1};
  p.x_star = {4.0, 4.0};
  p.f_star = -304.0;
  p.lower = {0.0, 0.0};
  p.upper = {6.0, 6.0};
  p.f = [](const Tensor& x) { return sq(x[0]) * 2.0 + sq(x[1]) - x[0] * 48.0 - x[1] * 40.0; };
  p.g = [](const Tensor& x) {
    return torch::stack(
        {-x[0] - x[1] * 3.0, x[0] + x[1] * 3.0 - 18.0, -x[0] - x[1], x[0] + x[1] - 8.0});
  };
  return p;
}

// TP 227. min (x1 - 2)^2 + (x2 - 1)^2  s.t.  -x1^2 + x2 >= 0,  x1 - x2^2 >= 0.
// Start (0.5, 0.5). Optimum (1, 1), f* = 1. Convex.
TestProblem tp227() {
  TestProblem p = tp(227, 2);
  p.n_ineq = 2;
  p.convex = true;
  p.x0 = {0.5, 0.5};
  p.x_star = {1.0, 1.0};
  p.f_star = 1.0;
  p.f = [](const Tensor& x) { return sq(x[0] - 2.0) + sq(x[1] - 1.0); };
  p.g = [](const Tensor& x) { return torch::stack({sq(x[0]) - x[1], sq(x[1]) - x[0]}); };
  return p;
}

// TP 228. min x1^2 + x2  s.t.  -x1 - x2 + 1 >= 0,  -(x1^2 + x2^2) + 9 >= 0.
// Start (0, 0). Optimum (0, -3), f* = -3. Convex.
TestProblem tp228() {
  TestProblem p = tp(228, 2);
  p.n_ineq = 2;
  p.convex = true;
  p.x0 = {0.0, 0.0};
  p.x_star = {0.0, -3.0};
  p.f_star = -3.0;
  p.f = [](const Tensor& x) { return sq(x[0]) + x[1]; };
  p.g = [](const Tensor& x) {
    return torch::stack({x[0] + x[1] - 1.0, sq(x[0]) + sq(x[1]) - 9.0});
  };
  return p;
}

}  // namespace

void add_tp(std::vector<TestProblem>& out) {
  for (auto make : {tp217, tp224, tp227, tp228}) out.push_back(make());
}

}  // namespace detail
}  // namespace problems
}  // namespace feasible
