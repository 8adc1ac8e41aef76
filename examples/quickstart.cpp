// Quick start: two small constrained problems with known solutions.
//
//   1. minimize x^2 + y^2 subject to x + y = 1            -> x = y = 1/2, mu = -1
//   2. minimize (x - 2)^2 + (y - 1)^2 subject to x + y <= 1 -> x = 1, y = 0, lambda = 2
#include <feasible/feasible.h>

#include <cstdio>

int main() {
  torch::manual_seed(0);

  // ---- 1. an equality constraint -------------------------------------------------------
  {
    auto xy = torch::zeros({2}, torch::requires_grad());
    feasible::Problem problem;
    auto sum_is_one = problem.add_constraint(
        "sum_is_one", feasible::ConstraintOptions(feasible::ConstraintKind::kEquality));

    auto primal = std::make_shared<torch::optim::SGD>(std::vector<torch::Tensor>{xy},
                                                      torch::optim::SGDOptions(0.1));
    auto dual = std::make_shared<feasible::optim::NuPI>(problem.dual_parameters(),
                                                        feasible::optim::NuPIOptions(0.1));
    feasible::SimultaneousOptimizer optimizer(problem, {primal}, dual);

    for (int t = 0; t < 2000; ++t) {
      optimizer.step([&] {
        feasible::ProblemState state(xy.pow(2).sum());
        state.observe(sum_is_one, feasible::ConstraintState(xy.sum() - 1));  // h(x) - 1 = 0
        return state;
      });
    }
    std::printf("equality:   x = %.4f, y = %.4f, mu = %+.4f   (known: 0.5, 0.5, -1)\n",
                xy[0].item<double>(), xy[1].item<double>(),
                problem.multiplier_values("sum_is_one")[0].item<double>());
  }

  // ---- 2. an inequality constraint, Augmented Lagrangian -------------------------------
  {
    auto xy = torch::zeros({2}, torch::requires_grad());
    const auto target = torch::tensor({2.0, 1.0});
    feasible::Problem problem;
    auto budget = problem.add_constraint(
        "budget", feasible::ConstraintOptions()  // inequality by default
                      .formulation(std::make_shared<feasible::AugmentedLagrangian>())
                      .penalty(1.0));

    auto primal = std::make_shared<torch::optim::SGD>(std::vector<torch::Tensor>{xy},
                                                      torch::optim::SGDOptions(0.05));
    auto dual = std::make_shared<torch::optim::SGD>(problem.dual_parameters(),
                                                    torch::optim::SGDOptions(0.05));
    feasible::SimultaneousOptimizer optimizer(problem, {primal}, dual);

    feasible::StepResult last;
    for (int t = 0; t < 3000; ++t) {
      last = optimizer.step([&] {
        feasible::ProblemState state((xy - target).pow(2).sum());
        state.observe(budget, feasible::ConstraintState(xy.sum() - 1));  // g(x) - 1 <= 0
        return state;
      });
    }
    std::printf(
        "inequality: x = %.4f, y = %.4f, lambda = %.4f (known: 1, 0, 2); "
        "violation %.2e\n",
        xy[0].item<double>(), xy[1].item<double>(),
        problem.multiplier_values("budget")[0].item<double>(), last.max_violation());
  }
  return 0;
}
