// Hock and Schittkowski (1981), problems 48 to 113. Each comment states the problem as in the
// book (inequalities g(x) >= 0); the code negates the inequalities (g(x) <= 0 here).
#include <cmath>
#include <vector>

#include "bench/problems/detail.h"

namespace feasible {
namespace problems {
namespace detail {
namespace {

using torch::Tensor;

// HS 48. min (x1 - 1)^2 + (x2 - x3)^2 + (x4 - x5)^2  s.t.  x1 + x2 + x3 + x4 + x5 - 5 = 0,
// x3 - 2 (x4 + x5) + 3 = 0. Start (3, 5, -3, 2, -2). Optimum (1, 1, 1, 1, 1), f* = 0. Convex.
TestProblem hs048() {
  TestProblem p = hs(48, 5);
  p.n_eq = 2;
  p.convex = true;
  p.x0 = {3.0, 5.0, -3.0, 2.0, -2.0};
  p.x_star = {1.0, 1.0, 1.0, 1.0, 1.0};
  p.f_star = 0.0;
  p.f = [](const Tensor& x) { return sq(x[0] - 1.0) + sq(x[1] - x[2]) + sq(x[3] - x[4]); };
  p.h = [](const Tensor& x) {
    return torch::stack({x.sum() - 5.0, x[2] - (x[3] + x[4]) * 2.0 + 3.0});
  };
  return p;
}

// HS 50. min (x1 - x2)^2 + (x2 - x3)^2 + (x3 - x4)^4 + (x4 - x5)^2  s.t.
// x1 + 2 x2 + 3 x3 - 6 = 0,  x2 + 2 x3 + 3 x4 - 6 = 0,  x3 + 2 x4 + 3 x5 - 6 = 0.
// Start (35, -31, 11, 5, -5). Optimum (1, 1, 1, 1, 1), f* = 0. Convex.
TestProblem hs050() {
  TestProblem p = hs(50, 5);
  p.n_eq = 3;
  p.convex = true;
  p.x0 = {35.0, -31.0, 11.0, 5.0, -5.0};
  p.x_star = {1.0, 1.0, 1.0, 1.0, 1.0};
  p.f_star = 0.0;
  p.f = [](const Tensor& x) {
    return sq(x[0] - x[1]) + sq(x[1] - x[2]) + sq(sq(x[2] - x[3])) + sq(x[3] - x[4]);
  };
  p.h = [](const Tensor& x) {
    return torch::stack({x[0] + x[1] * 2.0 + x[2] * 3.0 - 6.0, x[1] + x[2] * 2.0 + x[3] * 3.0 - 6.0,
                         x[2] + x[3] * 2.0 + x[4] * 3.0 - 6.0});
  };
  return p;
}

// HS 51. min (x1 - x2)^2 + (x2 + x3 - 2)^2 + (x4 - 1)^2 + (x5 - 1)^2  s.t.  x1 + 3 x2 - 4 = 0,
// x3 + x4 - 2 x5 = 0,  x2 - x5 = 0. Start (2.5, 0.5, 2, -1, 0.5). Optimum (1, 1, 1, 1, 1),
// f* = 0. Convex.
TestProblem hs051() {
  TestProblem p = hs(51, 5);
  p.n_eq = 3;
  p.convex = true;
  p.x0 = {2.5, 0.5, 2.0, -1.0, 0.5};
  p.x_star = {1.0, 1.0, 1.0, 1.0, 1.0};
  p.f_star = 0.0;
  p.f = [](const Tensor& x) {
    return sq(x[0] - x[1]) + sq(x[1] + x[2] - 2.0) + sq(x[3] - 1.0) + sq(x[4] - 1.0);
  };
  p.h = [](const Tensor& x) {
    return torch::stack({x[0] + x[1] * 3.0 - 4.0, x[2] + x[3] - x[4] * 2.0, x[1] - x[4]});
  };
  return p;
}

// HS 52. min (4 x1 - x2)^2 + (x2 + x3 - 2)^2 + (x4 - 1)^2 + (x5 - 1)^2  s.t.  x1 + 3 x2 = 0,
// x3 + x4 - 2 x5 = 0,  x2 - x5 = 0. Start (2, 2, 2, 2, 2).
// Optimum (-33, 11, 180, -158, 11)/349, f* = 1859/349. Convex.
TestProblem hs052() {
  TestProblem p = hs(52, 5);
  p.n_eq = 3;
  p.convex = true;
  p.x0 = {2.0, 2.0, 2.0, 2.0, 2.0};
  p.x_star = {-33.0 / 349.0, 11.0 / 349.0, 180.0 / 349.0, -158.0 / 349.0, 11.0 / 349.0};
  p.f_star = 1859.0 / 349.0;
  p.f = [](const Tensor& x) {
    return sq(x[0] * 4.0 - x[1]) + sq(x[1] + x[2] - 2.0) + sq(x[3] - 1.0) + sq(x[4] - 1.0);
  };
  p.h = [](const Tensor& x) {
    return torch::stack({x[0] + x[1] * 3.0, x[2] + x[3] - x[4] * 2.0, x[1] - x[4]});
  };
  return p;
}

// HS 53. min (x1 - x2)^2 + (x2 + x3 - 2)^2 + (x4 - 1)^2 + (x5 - 1)^2  s.t.  x1 + 3 x2 = 0,
// x3 + x4 - 2 x5 = 0,  x2 - x5 = 0,  -10 <= x <= 10. Start (2, 2, 2, 2, 2).
// Optimum (-33, 11, 27, -5, 11)/43, f* = 176/43 (no bound active). Convex.
TestProblem hs053() {
  TestProblem p = hs(53, 5);
  p.n_eq = 3;
  p.convex = true;
  p.x0 = {2.0, 2.0, 2.0, 2.0, 2.0};
  p.x_star = {-33.0 / 43.0, 11.0 / 43.0, 27.0 / 43.0, -5.0 / 43.0, 11.0 / 43.0};
  p.f_star = 176.0 / 43.0;
  p.lower.assign(5, -10.0);
  p.upper.assign(5, 10.0);
  p.f = [](const Tensor& x) {
    return sq(x[0] - x[1]) + sq(x[1] + x[2] - 2.0) + sq(x[3] - 1.0) + sq(x[4] - 1.0);
  };
  p.h = [](const Tensor& x) {
    return torch::stack({x[0] + x[1] * 3.0, x[2] + x[3] - x[4] * 2.0, x[1] - x[4]});
  };
  return p;
}

// HS 60. min (x1 - 1)^2 + (x1 - x2)^2 + (x2 - x3)^4  s.t.
// x1 (1 + x2^2) + x3^4 - 4 - 3 sqrt(2) = 0,  -10 <= x <= 10. Start (2, 2, 2).
// f* = 0.03256820025. x_star: refined by Newton's method on the KKT system from the book's x*
// as transcribed here, (1.104859024, 1.196674194, 1.535262257), which is a KKT point only to
// about 1.2e-8 (no bound is active).
TestProblem hs060() {
  TestProblem p = hs(60, 3);
  p.n_eq = 1;
  p.x0 = {2.0, 2.0, 2.0};
  p.x_star = {1.1048590197333166, 1.1966741822882572, 1.5352622603253261};
  p.f_star = 0.03256820025;
  p.f_star_tol = 1e-11;
  p.lower.assign(3, -10.0);
  p.upper.assign(3, 10.0);
  p.f = [](const Tensor& x) { return sq(x[0] - 1.0) + sq(x[0] - x[1]) + sq(sq(x[1] - x[2])); };
  p.h = [](const Tensor& x) {
    return torch::stack({x[0] * (1.0 + sq(x[1])) + sq(sq(x[2])) - 4.0 - 3.0 * std::sqrt(2.0)});
  };
  return p;
}

// HS 61. min 4 x1^2 + 2 x2^2 + 2 x3^2 - 33 x1 + 16 x2 - 24 x3  s.t.  3 x1 - 2 x2^2 - 7 = 0,
// 4 x1 - x3^2 - 11 = 0. Start (0, 0, 0). f* = -143.6461422. x_star: refined by Newton's method
// on the KKT system from the book's x* as transcribed here, (5.326770157, -2.118998639,
// 3.210464239), which is a KKT point only to about 2.1e-8.
TestProblem hs061() {
  TestProblem p = hs(61, 3);
  p.n_eq = 2;
  p.x0 = {0.0, 0.0, 0.0};
  p.x_star = {5.3267701355639279, -2.1189986322189762, 3.2104642253505506};
  p.f_star = -143.6461422;
  p.f_star_tol = 1e-7;
  p.f = [](const Tensor& x) {
    return sq(x[0]) * 4.0 + sq(x[1]) * 2.0 + sq(x[2]) * 2.0 - x[0] * 33.0 + x[1] * 16.0 -
           x[2] * 24.0;
  };
  p.h = [](const Tensor& x) {
    return torch::stack({x[0] * 3.0 - sq(x[1]) * 2.0 - 7.0, x[0] * 4.0 - sq(x[2]) - 11.0});
  };
  return p;
}

// HS 63. min 1000 - x1^2 - 2 x2^2 - x3^2 - x1 x2 - x1 x3  s.t.  8 x1 + 14 x2 + 7 x3 - 56 = 0,
// x1^2 + x2^2 + x3^2 - 25 = 0,  x >= 0. Start (2, 2, 2). f* = 961.7151721. x_star: refined by
// Newton's method on the KKT system from the book's x* as transcribed here, (3.512118414,
// 0.2169881741, 3.552174034), which is a KKT point only to about 3e-6 (no bound is active).
TestProblem hs063() {
  TestProblem p = hs(63, 3);
  p.n_eq = 2;
  p.x0 = {2.0, 2.0, 2.0};
  p.x_star = {3.5121213418747197, 0.21698794151522313, 3.552171154827017};
  p.f_star = 961.7151721;
  p.f_star_tol = 1e-7;
  p.lower = {0.0, 0.0, 0.0};
  p.f = [](const Tensor& x) {
    return 1000.0 - sq(x[0]) - sq(x[1]) * 2.0 - sq(x[2]) - x[0] * x[1] - x[0] * x[2];
  };
  p.h = [](const Tensor& x) {
    return torch::stack(
        {x[0] * 8.0 + x[1] * 14.0 + x[2] * 7.0 - 56.0, sq(x[0]) + sq(x[1]) + sq(x[2]) - 25.0});
  };
  return p;
}

// HS 65. min (x1 - x2)^2 + (x1 + x2 - 10)^2 / 9 + (x3 - 5)^2  s.t.  48 - x1^2 - x2^2 - x3^2 >= 0,
// -4.5 <= x1, x2 <= 4.5,  -5 <= x3 <= 5. Start (-5, 5, 0) (outside the box). Convex.
// f* = 0.9535288567. x_star: refined by Newton's method on the KKT system from the book's x* as
// transcribed here, (3.650461821, 3.650461821, 4.620417162), which is a KKT point only to about
// 4e-7 (x1 = x2 by symmetry; no bound is active). f at x_star is 0.953528856805, 1.05 units of
// the last digit of f* above it: f_star_tol is two units.
TestProblem hs065() {
  TestProblem p = hs(65, 3);
  p.n_ineq = 1;
  p.convex = true;
  p.x0 = {-5.0, 5.0, 0.0};
  p.x_star = {3.6504617252130362, 3.6504617252130362, 4.6204175553200084};
  p.f_star = 0.9535288567;
  p.f_star_tol = 2e-10;
  p.lower = {-4.5, -4.5, -5.0};
  p.upper = {4.5, 4.5, 5.0};
  p.f = [](const Tensor& x) {
    return sq(x[0] - x[1]) + sq(x[0] + x[1] - 10.0) / 9.0 + sq(x[2] - 5.0);
  };
  p.g = [](const Tensor& x) { return torch::stack({sq(x[0]) + sq(x[1]) + sq(x[2]) - 48.0}); };
  return p;
}

}  // namespace

void add_hs_b(std::vector<TestProblem>& out) {
  for (auto make : {hs048, hs050, hs051, hs052, hs053, hs060, hs061, hs063, hs065}) {
    out.push_back(make());
  }
}

}  // namespace detail
}  // namespace problems
}  // namespace feasible
