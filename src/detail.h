// Internal state behind the Problem and Constraint handles.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "feasible/problem.h"

namespace feasible {
namespace detail {

struct ConstraintImpl {
  std::string name;
  ConstraintOptions options;
  std::shared_ptr<Multiplier> multiplier;
  std::shared_ptr<PenaltyCoefficient> penalty;
  uint64_t problem_id = 0;
  size_t index = 0;
};

struct ProblemImpl {
  uint64_t id = 0;
  std::vector<Constraint> constraints;
};

}  // namespace detail
}  // namespace feasible
