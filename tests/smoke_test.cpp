#include <feasible/feasible.h>
#include <gtest/gtest.h>

TEST(Smoke, ProblemRegistersConstraints) {
  feasible::Problem problem;
  auto c = problem.add_constraint("c", feasible::ConstraintOptions().size(3));
  EXPECT_EQ(problem.constraints().size(), 1u);
  EXPECT_EQ(c.size(), 3);
  EXPECT_EQ(problem.dual_parameters().size(), 1u);
}
