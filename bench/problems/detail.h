// Internal helpers of the problem definitions (not installed, not for the benchmark's use).
#pragma once

#include <torch/torch.h>

#include <algorithm>
#include <limits>
#include <string>
#include <vector>

#include "bench/problems/problems.h"

namespace feasible {
namespace problems {
namespace detail {

/// +infinity, for absent bounds.
constexpr double kInf = std::numeric_limits<double>::infinity();

/// t * t.
inline torch::Tensor sq(const torch::Tensor& t) { return t * t; }

/// t * t * t.
inline torch::Tensor cube(const torch::Tensor& t) { return t * t * t; }

/// A problem skeleton: name "<prefix>NNN", `source`, n, and no bounds (lower -inf, upper +inf).
inline TestProblem skeleton(const std::string& prefix, const std::string& source, int number,
                            int64_t n) {
  TestProblem p;
  std::string digits = std::to_string(number);
  p.name = prefix + std::string(3 - std::min<size_t>(3, digits.size()), '0') + digits;
  p.source = source + ", problem " + std::to_string(number);
  p.n = n;
  p.lower.assign(n, -kInf);
  p.upper.assign(n, kInf);
  return p;
}

/// Problem `number` of Hock and Schittkowski (1981), named "hsNNN".
inline TestProblem hs(int number, int64_t n) {
  return skeleton("hs", "Hock and Schittkowski (1981)", number, n);
}

/// Problem `number` of Schittkowski (1987), named "tpNNN".
inline TestProblem tp(int number, int64_t n) {
  return skeleton("tp", "Schittkowski (1987)", number, n);
}

/// Appends hs006 ... hs044 (problems_hs_a.cpp).
void add_hs_a(std::vector<TestProblem>& out);
/// Appends hs048 ... hs065 (problems_hs_b.cpp).
void add_hs_b(std::vector<TestProblem>& out);
/// Appends hs071 ... hs113 (problems_hs_c.cpp).
void add_hs_c(std::vector<TestProblem>& out);
/// Appends the problems of the 1987 book (problems_tp.cpp).
void add_tp(std::vector<TestProblem>& out);

}  // namespace detail
}  // namespace problems
}  // namespace feasible
