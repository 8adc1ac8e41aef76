// Hock and Schittkowski (1981), problems 6 to 44. Each comment states the problem as in the book
// (inequalities g(x) >= 0); the code negates the inequalities (g(x) <= 0 here).
#include <cmath>
#include <vector>

#include "bench/problems/detail.h"

namespace feasible {
namespace problems {
namespace detail {
namespace {

using torch::Tensor;

// HS 6. min (1 - x1)^2  s.t.  10 (x2 - x1^2) = 0.
// Start (-1.2, 1). Optimum (1, 1), f* = 0. Unique: f = 0 forces x1 = 1, then h forces x2 = 1.
TestProblem hs006() {
  TestProblem p = hs(6, 2);
  p.n_eq = 1;
  p.x0 = {-1.2, 1.0};
  p.x_star = {1.0, 1.0};
  p.f_star = 0.0;
  p.f = [](const Tensor& x) { return sq(1.0 - x[0]); };
  p.h = [](const Tensor& x) { return torch::stack({(x[1] - sq(x[0])) * 10.0}); };
  return p;
}

// HS 7. min log(1 + x1^2) - x2  s.t.  (1 + x1^2)^2 + x2^2 - 4 = 0.
// Start (2, 2). Optimum (0, sqrt(3)), f* = -sqrt(3). Unique: on the constraint x2 <= sqrt(3),
// with equality only at x1 = 0, where log(1 + x1^2) is smallest too.
TestProblem hs007() {
  TestProblem p = hs(7, 2);
  p.n_eq = 1;
  p.x0 = {2.0, 2.0};
  p.x_star = {0.0, std::sqrt(3.0)};
  p.f_star = -std::sqrt(3.0);
  p.f = [](const Tensor& x) { return torch::log1p(sq(x[0])) - x[1]; };
  p.h = [](const Tensor& x) { return torch::stack({sq(1.0 + sq(x[0])) + sq(x[1]) - 4.0}); };
  return p;
}

// HS 10. min x1 - x2  s.t.  -3 x1^2 + 2 x1 x2 - x2^2 + 1 >= 0 (an ellipse).
// Start (-10, 10). Optimum (0, 1), f* = -1. Convex.
TestProblem hs010() {
  TestProblem p = hs(10, 2);
  p.n_ineq = 1;
  p.convex = true;
  p.x0 = {-10.0, 10.0};
  p.x_star = {0.0, 1.0};
  p.f_star = -1.0;
  p.f = [](const Tensor& x) { return x[0] - x[1]; };
  p.g = [](const Tensor& x) {
    return torch::stack({sq(x[0]) * 3.0 - x[0] * x[1] * 2.0 + sq(x[1]) - 1.0});
  };
  return p;
}

// HS 11. min (x1 - 5)^2 + x2^2 - 25  s.t.  -x1^2 + x2 >= 0.
// Start (4.9, 0.1). Optimum ((b - 1/b)/sqrt(6), (b^2 - 2 + b^-2)/6) with b the cube root of
// 7.5 sqrt(6) + sqrt(338.5) (x1 is the real root of 2 x1^3 + x1 - 5 = 0, x2 = x1^2);
// f* = -8.498464223. Convex.
TestProblem hs011() {
  TestProblem p = hs(11, 2);
  p.n_ineq = 1;
  p.convex = true;
  p.x0 = {4.9, 0.1};
  const double b = std::cbrt(7.5 * std::sqrt(6.0) + std::sqrt(338.5));
  p.x_star = {(b - 1.0 / b) / std::sqrt(6.0), (b * b - 2.0 + 1.0 / (b * b)) / 6.0};
  p.f_star = -8.498464223;
  p.f_star_tol = 1e-9;
  p.f = [](const Tensor& x) { return sq(x[0] - 5.0) + sq(x[1]) - 25.0; };
  p.g = [](const Tensor& x) { return torch::stack({sq(x[0]) - x[1]}); };
  return p;
}

// HS 12. min 0.5 x1^2 + x2^2 - x1 x2 - 7 x1 - 7 x2  s.t.  25 - 4 x1^2 - x2^2 >= 0.
// Start (0, 0). Optimum (2, 3), f* = -30. Convex.
TestProblem hs012() {
  TestProblem p = hs(12, 2);
  p.n_ineq = 1;
  p.convex = true;
  p.x0 = {0.0, 0.0};
  p.x_star = {2.0, 3.0};
  p.f_star = -30.0;
  p.f = [](const Tensor& x) {
    return sq(x[0]) * 0.5 + sq(x[1]) - x[0] * x[1] - x[0] * 7.0 - x[1] * 7.0;
  };
  p.g = [](const Tensor& x) { return torch::stack({sq(x[0]) * 4.0 + sq(x[1]) - 25.0}); };
  return p;
}

// HS 14. min (x1 - 2)^2 + (x2 - 1)^2  s.t.  -x1^2/4 - x2^2 + 1 >= 0,  x1 - 2 x2 + 1 = 0.
// Start (2, 2). Optimum ((sqrt(7) - 1)/2, (sqrt(7) + 1)/4), f* = 9 - 23 sqrt(7)/8. Convex.
TestProblem hs014() {
  TestProblem p = hs(14, 2);
  p.n_ineq = 1;
  p.n_eq = 1;
  p.convex = true;
  p.x0 = {2.0, 2.0};
  p.x_star = {(std::sqrt(7.0) - 1.0) / 2.0, (std::sqrt(7.0) + 1.0) / 4.0};
  p.f_star = 9.0 - 23.0 * std::sqrt(7.0) / 8.0;
  p.f = [](const Tensor& x) { return sq(x[0] - 2.0) + sq(x[1] - 1.0); };
  p.g = [](const Tensor& x) { return torch::stack({sq(x[0]) * 0.25 + sq(x[1]) - 1.0}); };
  p.h = [](const Tensor& x) { return torch::stack({x[0] - x[1] * 2.0 + 1.0}); };
  return p;
}

// HS 18. min 0.01 x1^2 + x2^2  s.t.  x1 x2 - 25 >= 0,  x1^2 + x2^2 - 25 >= 0,
// 2 <= x1 <= 50, 0 <= x2 <= 50. Start (2, 2). Optimum (sqrt(250), sqrt(2.5)), f* = 5.
// The feasible set is convex (the second constraint is implied by the first in the box),
// though the constraint functions are not.
TestProblem hs018() {
  TestProblem p = hs(18, 2);
  p.n_ineq = 2;
  p.convex = true;
  p.x0 = {2.0, 2.0};
  p.x_star = {std::sqrt(250.0), std::sqrt(2.5)};
  p.f_star = 5.0;
  p.lower = {2.0, 0.0};
  p.upper = {50.0, 50.0};
  p.f = [](const Tensor& x) { return sq(x[0]) * 0.01 + sq(x[1]); };
  p.g = [](const Tensor& x) {
    return torch::stack({25.0 - x[0] * x[1], 25.0 - sq(x[0]) - sq(x[1])});
  };
  return p;
}

// HS 21. min 0.01 x1^2 + x2^2 - 100  s.t.  10 x1 - x2 - 10 >= 0,  2 <= x1 <= 50,
// -50 <= x2 <= 50. Start (-1, -1) (outside the box). Optimum (2, 0), f* = -99.96. Convex.
TestProblem hs021() {
  TestProblem p = hs(21, 2);
  p.n_ineq = 1;
  p.convex = true;
  p.x0 = {-1.0, -1.0};
  p.x_star = {2.0, 0.0};
  p.f_star = -99.96;
  p.lower = {2.0, -50.0};
  p.upper = {50.0, 50.0};
  p.f = [](const Tensor& x) { return sq(x[0]) * 0.01 + sq(x[1]) - 100.0; };
  p.g = [](const Tensor& x) { return torch::stack({10.0 - x[0] * 10.0 + x[1]}); };
  return p;
}

// HS 22. min (x1 - 2)^2 + (x2 - 1)^2  s.t.  -x1 - x2 + 2 >= 0,  -x1^2 + x2 >= 0.
// Start (2, 2). Optimum (1, 1), f* = 1. Convex.
TestProblem hs022() {
  TestProblem p = hs(22, 2);
  p.n_ineq = 2;
  p.convex = true;
  p.x0 = {2.0, 2.0};
  p.x_star = {1.0, 1.0};
  p.f_star = 1.0;
  p.f = [](const Tensor& x) { return sq(x[0] - 2.0) + sq(x[1] - 1.0); };
  p.g = [](const Tensor& x) { return torch::stack({x[0] + x[1] - 2.0, sq(x[0]) - x[1]}); };
  return p;
}

// HS 23. min x1^2 + x2^2  s.t.  x1 + x2 - 1 >= 0,  x1^2 + x2^2 - 1 >= 0,
// 9 x1^2 + x2^2 - 9 >= 0,  x1^2 - x2 >= 0,  x2^2 - x1 >= 0,  -50 <= x1, x2 <= 50.
// Start (3, 1). Optimum (1, 1), f* = 2. Unique: a feasible point with x1, x2 > 0 has
// x1, x2 >= 1 (x1 < 1 would give x1 <= x2^2 <= x1^4); one with a coordinate <= 0 has
// the other >= 2.6, so f > 6.
TestProblem hs023() {
  TestProblem p = hs(23, 2);
  p.n_ineq = 5;
  p.x0 = {3.0, 1.0};
  p.x_star = {1.0, 1.0};
  p.f_star = 2.0;
  p.lower = {-50.0, -50.0};
  p.upper = {50.0, 50.0};
  p.f = [](const Tensor& x) { return sq(x[0]) + sq(x[1]); };
  p.g = [](const Tensor& x) {
    return torch::stack({1.0 - x[0] - x[1], 1.0 - sq(x[0]) - sq(x[1]),
                         9.0 - sq(x[0]) * 9.0 - sq(x[1]), x[1] - sq(x[0]), x[0] - sq(x[1])});
  };
  return p;
}

// HS 24. min ((x1 - 3)^2 - 9) x2^3 / (27 sqrt(3))  s.t.  x1/sqrt(3) - x2 >= 0,
// x1 + sqrt(3) x2 >= 0,  -x1 - sqrt(3) x2 + 6 >= 0,  x1, x2 >= 0.
// Start (1, 0.5). Optimum (3, sqrt(3)), f* = -1. Unique: the feasible set is the triangle
// (0, 0), (6, 0), (3, sqrt(3)), where (x1 - 3)^2 - 9 <= 0 is smallest at x1 = 3, as is -x2^3.
TestProblem hs024() {
  TestProblem p = hs(24, 2);
  p.n_ineq = 3;
  p.x0 = {1.0, 0.5};
  p.x_star = {3.0, std::sqrt(3.0)};
  p.f_star = -1.0;
  p.lower = {0.0, 0.0};
  p.f = [](const Tensor& x) {
    return (sq(x[0] - 3.0) - 9.0) * cube(x[1]) / (27.0 * std::sqrt(3.0));
  };
  p.g = [](const Tensor& x) {
    const double s = std::sqrt(3.0);
    return torch::stack({x[1] - x[0] / s, -x[0] - x[1] * s, x[0] + x[1] * s - 6.0});
  };
  return p;
}

// HS 28. min (x1 + x2)^2 + (x2 + x3)^2  s.t.  x1 + 2 x2 + 3 x3 - 1 = 0.
// Start (-4, 1, 1). Optimum (0.5, -0.5, 0.5), f* = 0. Convex.
TestProblem hs028() {
  TestProblem p = hs(28, 3);
  p.n_eq = 1;
  p.convex = true;
  p.x0 = {-4.0, 1.0, 1.0};
  p.x_star = {0.5, -0.5, 0.5};
  p.f_star = 0.0;
  p.f = [](const Tensor& x) { return sq(x[0] + x[1]) + sq(x[1] + x[2]); };
  p.h = [](const Tensor& x) { return torch::stack({x[0] + x[1] * 2.0 + x[2] * 3.0 - 1.0}); };
  return p;
}

// HS 31. min 9 x1^2 + x2^2 + 9 x3^2  s.t.  x1 x2 - 1 >= 0,  -10 <= x1 <= 10,  1 <= x2 <= 10,
// -10 <= x3 <= 1. Start (1, 1, 1). Optimum (1/sqrt(3), sqrt(3), 0), f* = 6. Convex (x2 > 0 in
// the box, so x1 >= 1/x2 is a convex set).
TestProblem hs031() {
  TestProblem p = hs(31, 3);
  p.n_ineq = 1;
  p.convex = true;
  p.x0 = {1.0, 1.0, 1.0};
  p.x_star = {1.0 / std::sqrt(3.0), std::sqrt(3.0), 0.0};
  p.f_star = 6.0;
  p.lower = {-10.0, 1.0, -10.0};
  p.upper = {10.0, 10.0, 1.0};
  p.f = [](const Tensor& x) { return sq(x[0]) * 9.0 + sq(x[1]) + sq(x[2]) * 9.0; };
  p.g = [](const Tensor& x) { return torch::stack({1.0 - x[0] * x[1]}); };
  return p;
}

// HS 32. min (x1 + 3 x2 + x3)^2 + 4 (x1 - x2)^2  s.t.  6 x2 + 4 x3 - x1^3 - 3 >= 0,
// 1 - x1 - x2 - x3 = 0,  x >= 0. Start (0.1, 0.7, 0.2). Optimum (0, 0, 1), f* = 1. Convex.
// The bound of x1 is active with multiplier 0 at the optimum.
TestProblem hs032() {
  TestProblem p = hs(32, 3);
  p.n_ineq = 1;
  p.n_eq = 1;
  p.convex = true;
  p.x0 = {0.1, 0.7, 0.2};
  p.x_star = {0.0, 0.0, 1.0};
  p.f_star = 1.0;
  p.lower = {0.0, 0.0, 0.0};
  p.f = [](const Tensor& x) { return sq(x[0] + x[1] * 3.0 + x[2]) + sq(x[0] - x[1]) * 4.0; };
  p.g = [](const Tensor& x) { return torch::stack({cube(x[0]) - x[1] * 6.0 - x[2] * 4.0 + 3.0}); };
  p.h = [](const Tensor& x) { return torch::stack({1.0 - x[0] - x[1] - x[2]}); };
  return p;
}

// HS 35. min 9 - 8 x1 - 6 x2 - 4 x3 + 2 x1^2 + 2 x2^2 + x3^2 + 2 x1 x2 + 2 x1 x3
// s.t.  3 - x1 - x2 - 2 x3 >= 0,  x >= 0. Start (0.5, 0.5, 0.5).
// Optimum (4/3, 7/9, 4/9), f* = 1/9. Convex.
TestProblem hs035() {
  TestProblem p = hs(35, 3);
  p.n_ineq = 1;
  p.convex = true;
  p.x0 = {0.5, 0.5, 0.5};
  p.x_star = {4.0 / 3.0, 7.0 / 9.0, 4.0 / 9.0};
  p.f_star = 1.0 / 9.0;
  p.lower = {0.0, 0.0, 0.0};
  p.f = [](const Tensor& x) {
    return 9.0 - x[0] * 8.0 - x[1] * 6.0 - x[2] * 4.0 + sq(x[0]) * 2.0 + sq(x[1]) * 2.0 + sq(x[2]) +
           x[0] * x[1] * 2.0 + x[0] * x[2] * 2.0;
  };
  p.g = [](const Tensor& x) { return torch::stack({x[0] + x[1] + x[2] * 2.0 - 3.0}); };
  return p;
}

// HS 36. min -x1 x2 x3  s.t.  72 - x1 - 2 x2 - 2 x3 >= 0,  0 <= x1 <= 20,  0 <= x2 <= 11,
// 0 <= x3 <= 42. Start (10, 10, 10). Optimum (20, 11, 15), f* = -3300. Unique: with the
// constraint active, x1 x2 (72 - x1 - 2 x2) / 2 increases in x2 up to (72 - x1)/4 > 11 and then
// in x1 up to 25 > 20, so both bounds are active.
TestProblem hs036() {
  TestProblem p = hs(36, 3);
  p.n_ineq = 1;
  p.x0 = {10.0, 10.0, 10.0};
  p.x_star = {20.0, 11.0, 15.0};
  p.f_star = -3300.0;
  p.lower = {0.0, 0.0, 0.0};
  p.upper = {20.0, 11.0, 42.0};
  p.f = [](const Tensor& x) { return -(x[0] * x[1] * x[2]); };
  p.g = [](const Tensor& x) { return torch::stack({x[0] + x[1] * 2.0 + x[2] * 2.0 - 72.0}); };
  return p;
}

// HS 37. min -x1 x2 x3  s.t.  72 - x1 - 2 x2 - 2 x3 >= 0,  x1 + 2 x2 + 2 x3 >= 0,
// 0 <= x <= 42. Start (10, 10, 10). Optimum (24, 12, 12), f* = -3456. Unique: the largest
// product x1 (2 x2) (2 x3) with sum 72 has equal factors.
TestProblem hs037() {
  TestProblem p = hs(37, 3);
  p.n_ineq = 2;
  p.x0 = {10.0, 10.0, 10.0};
  p.x_star = {24.0, 12.0, 12.0};
  p.f_star = -3456.0;
  p.lower = {0.0, 0.0, 0.0};
  p.upper = {42.0, 42.0, 42.0};
  p.f = [](const Tensor& x) { return -(x[0] * x[1] * x[2]); };
  p.g = [](const Tensor& x) {
    Tensor s = x[0] + x[1] * 2.0 + x[2] * 2.0;
    return torch::stack({s - 72.0, -s});
  };
  return p;
}

// HS 39. min -x1  s.t.  x2 - x1^3 - x3^2 = 0,  x1^2 - x2 - x4^2 = 0.
// Start (2, 2, 2, 2). Optimum (1, 1, 0, 0), f* = -1. Unique: the constraints give
// x1^2 (1 - x1) = x3^2 + x4^2 >= 0, so x1 <= 1, with equality only at x3 = x4 = 0.
TestProblem hs039() {
  TestProblem p = hs(39, 4);
  p.n_eq = 2;
  p.x0 = {2.0, 2.0, 2.0, 2.0};
  p.x_star = {1.0, 1.0, 0.0, 0.0};
  p.f_star = -1.0;
  p.f = [](const Tensor& x) { return -x[0]; };
  p.h = [](const Tensor& x) {
    return torch::stack({x[1] - cube(x[0]) - sq(x[2]), sq(x[0]) - x[1] - sq(x[3])});
  };
  return p;
}

// HS 41. min 2 - x1 x2 x3  s.t.  x1 + 2 x2 + 2 x3 - x4 = 0,  0 <= x1, x2, x3 <= 1,
// 0 <= x4 <= 2. Start (2, 2, 2, 2) (outside the box). Optimum (2/3, 1/3, 1/3, 2), f* = 52/27.
// Unique: the product is largest at x4 = 2, with equal factors x1 = 2 x2 = 2 x3.
TestProblem hs041() {
  TestProblem p = hs(41, 4);
  p.n_eq = 1;
  p.x0 = {2.0, 2.0, 2.0, 2.0};
  p.x_star = {2.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0, 2.0};
  p.f_star = 52.0 / 27.0;
  p.lower = {0.0, 0.0, 0.0, 0.0};
  p.upper = {1.0, 1.0, 1.0, 2.0};
  p.f = [](const Tensor& x) { return 2.0 - x[0] * x[1] * x[2]; };
  p.h = [](const Tensor& x) { return torch::stack({x[0] + x[1] * 2.0 + x[2] * 2.0 - x[3]}); };
  return p;
}

// HS 42. min (x1 - 1)^2 + (x2 - 2)^2 + (x3 - 3)^2 + (x4 - 4)^2  s.t.  x1 - 2 = 0,
// x3^2 + x4^2 - 2 = 0. Start (1, 1, 1, 1). Optimum (2, 2, 0.6 sqrt(2), 0.8 sqrt(2)),
// f* = 28 - 10 sqrt(2). Unique: (x3, x4) is the point of the circle of radius sqrt(2) nearest
// to (3, 4).
TestProblem hs042() {
  TestProblem p = hs(42, 4);
  p.n_eq = 2;
  p.x0 = {1.0, 1.0, 1.0, 1.0};
  p.x_star = {2.0, 2.0, 0.6 * std::sqrt(2.0), 0.8 * std::sqrt(2.0)};
  p.f_star = 28.0 - 10.0 * std::sqrt(2.0);
  p.f = [](const Tensor& x) {
    return sq(x[0] - 1.0) + sq(x[1] - 2.0) + sq(x[2] - 3.0) + sq(x[3] - 4.0);
  };
  p.h = [](const Tensor& x) { return torch::stack({x[0] - 2.0, sq(x[2]) + sq(x[3]) - 2.0}); };
  return p;
}

// HS 43 (Rosen-Suzuki). min x1^2 + x2^2 + 2 x3^2 + x4^2 - 5 x1 - 5 x2 - 21 x3 + 7 x4  s.t.
//   8 - x1^2 - x2^2 - x3^2 - x4^2 - x1 + x2 - x3 + x4 >= 0,
//   10 - x1^2 - 2 x2^2 - x3^2 - 2 x4^2 + x1 + x4 >= 0,
//   5 - 2 x1^2 - x2^2 - x3^2 - 2 x1 + x2 + x4 >= 0.
// Start (0, 0, 0, 0). Optimum (0, 1, 2, -1), f* = -44. Convex.
TestProblem hs043() {
  TestProblem p = hs(43, 4);
  p.n_ineq = 3;
  p.convex = true;
  p.x0 = {0.0, 0.0, 0.0, 0.0};
  p.x_star = {0.0, 1.0, 2.0, -1.0};
  p.f_star = -44.0;
  p.f = [](const Tensor& x) {
    return sq(x[0]) + sq(x[1]) + sq(x[2]) * 2.0 + sq(x[3]) - x[0] * 5.0 - x[1] * 5.0 - x[2] * 21.0 +
           x[3] * 7.0;
  };
  p.g = [](const Tensor& x) {
    return torch::stack(
        {sq(x[0]) + sq(x[1]) + sq(x[2]) + sq(x[3]) + x[0] - x[1] + x[2] - x[3] - 8.0,
         sq(x[0]) + sq(x[1]) * 2.0 + sq(x[2]) + sq(x[3]) * 2.0 - x[0] - x[3] - 10.0,
         sq(x[0]) * 2.0 + sq(x[1]) + sq(x[2]) + x[0] * 2.0 - x[1] - x[3] - 5.0});
  };
  return p;
}

// HS 44. min x1 - x2 - x3 - x1 x3 + x1 x4 + x2 x3 - x2 x4  s.t.  8 - x1 - 2 x2 >= 0,
// 12 - 4 x1 - x2 >= 0,  12 - 3 x1 - 4 x2 >= 0,  8 - 2 x3 - x4 >= 0,  8 - x3 - 2 x4 >= 0,
// 5 - x3 - x4 >= 0,  x >= 0. Start (0, 0, 0, 0). Optimum (0, 3, 0, 4), f* = -15 (a vertex;
// the problem has other local minima at other vertices). Unique: f = d (1 - x3 + x4) - x3 with
// d = x1 - x2 in [-3, 3] is linear in d and in (x3, x4); over the vertices, -15 is reached only
// at d = -3 (x1 = 0, x2 = 3) and (x3, x4) = (0, 4), the next best being -13.
TestProblem hs044() {
  TestProblem p = hs(44, 4);
  p.n_ineq = 6;
  p.x0 = {0.0, 0.0, 0.0, 0.0};
  p.x_star = {0.0, 3.0, 0.0, 4.0};
  p.f_star = -15.0;
  p.lower = {0.0, 0.0, 0.0, 0.0};
  p.f = [](const Tensor& x) {
    return x[0] - x[1] - x[2] - x[0] * x[2] + x[0] * x[3] + x[1] * x[2] - x[1] * x[3];
  };
  p.g = [](const Tensor& x) {
    return torch::stack({x[0] + x[1] * 2.0 - 8.0, x[0] * 4.0 + x[1] - 12.0,
                         x[0] * 3.0 + x[1] * 4.0 - 12.0, x[2] * 2.0 + x[3] - 8.0,
                         x[2] + x[3] * 2.0 - 8.0, x[2] + x[3] - 5.0});
  };
  return p;
}

}  // namespace

void add_hs_a(std::vector<TestProblem>& out) {
  for (auto make : {hs006, hs007, hs010, hs011, hs012, hs014, hs018, hs021, hs022, hs023, hs024,
                    hs028, hs031, hs032, hs035, hs036, hs037, hs039, hs041, hs042, hs043, hs044}) {
    out.push_back(make());
  }
}

}  // namespace detail
}  // namespace problems
}  // namespace feasible
