// Best iterate and the shrinking mixture: keep a candidate every 20 steps of a constrained run,
// evaluate it on "validation" data, restore the best one into the model, and build the mixture
// of at most m + 1 = 2 candidates (docs/selection.md).
//
//   minimize (x - 2)^2 + (y - 1)^2 subject to x + y <= 1   (solution x = 1, y = 0)
//
// The validation objective uses a slightly different target, (2.1, 0.9), as a held-out set
// would; the constraint is the same. Plain gradient descent-ascent with a large dual step
// oscillates around the boundary, so some candidates are feasible and some are not.
#include <feasible/feasible.h>

#include <cstdio>

int main() {
  auto xy = torch::zeros({2}, torch::requires_grad());
  const auto train_target = torch::tensor({2.0, 1.0});
  const auto valid_target = torch::tensor({2.1, 0.9});
  feasible::Problem problem;
  auto budget = problem.add_constraint("budget");  // x + y - 1 <= 0
  auto primal = std::make_shared<torch::optim::SGD>(std::vector<torch::Tensor>{xy},
                                                    torch::optim::SGDOptions(0.05));
  auto dual =
      std::make_shared<torch::optim::SGD>(problem.dual_parameters(), torch::optim::SGDOptions(0.5));
  feasible::SimultaneousOptimizer optimizer(problem, {primal}, dual);

  feasible::BestIterate keeper(feasible::BestIterateOptions().keep_all(true));
  for (int t = 1; t <= 200; ++t) {
    optimizer.step([&] {
      feasible::ProblemState state((xy - train_target).pow(2).sum());
      state.observe(budget, feasible::ConstraintState(xy.sum() - 1));
      return state;
    });
    if (t % 20 == 0) {  // a candidate: its validation objective and violation
      torch::NoGradGuard no_grad;
      const double objective = (xy - valid_target).pow(2).sum().item<double>();
      const double violation = (xy.sum() - 1).item<double>();
      keeper.offer(t, objective, {violation}, {xy});
    }
  }
  for (const auto& c : keeper.candidates()) {
    std::printf("candidate at step %3lld: validation objective %.4f, violation %+.4f\n",
                static_cast<long long>(c.step), c.objective, c.violations[0]);
  }
  std::printf("last iterate: x = %.4f, y = %.4f\n", xy[0].item<double>(), xy[1].item<double>());
  keeper.restore({xy});
  std::printf("best iterate: x = %.4f, y = %.4f; %s\n", xy[0].item<double>(), xy[1].item<double>(),
              keeper.reason().c_str());

  const feasible::Mixture mixture = keeper.mixture();
  std::printf("mixture of %zu candidate(s), expected objective %.4f, violation %.2e:",
              mixture.candidates.size(), mixture.objective, mixture.violations[0]);
  for (size_t i = 0; i < mixture.candidates.size(); ++i) {
    std::printf(" step %lld with weight %.3f",
                static_cast<long long>(keeper.candidates()[mixture.candidates[i]].step),
                mixture.weights[i]);
  }
  std::printf("\n");
  // Deploying the mixture: draw a candidate per prediction and restore (or route to) it.
  auto generator = at::detail::createCPUGenerator(0);
  const int64_t drawn = mixture.sample(generator);
  keeper.restore_candidate(static_cast<size_t>(drawn), {xy});
  std::printf("drawn for one prediction: step %lld\n",
              static_cast<long long>(keeper.candidates()[drawn].step));
  return 0;
}
