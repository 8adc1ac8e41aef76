// The collection in its fixed order, and lookup by name.
#include <stdexcept>
#include <string>
#include <vector>

#include "bench/problems/detail.h"

namespace feasible {
namespace problems {

const std::vector<TestProblem>& collection() {
  static const std::vector<TestProblem> problems = [] {
    std::vector<TestProblem> out;
    detail::add_hs_a(out);
    detail::add_hs_b(out);
    detail::add_hs_c(out);
    detail::add_tp(out);
    return out;
  }();
  return problems;
}

const TestProblem& find(const std::string& name) {
  for (const TestProblem& p : collection()) {
    if (p.name == name) return p;
  }
  throw std::out_of_range("feasible::problems::find: no problem named '" + name + "'");
}

}  // namespace problems
}  // namespace feasible
