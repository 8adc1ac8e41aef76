// The engine on a CUDA device: multipliers and penalties created on the device, and a few
// steps of each multiplier kind give the same iterates as on the CPU (float64). Skipped when
// LibTorch has no CUDA device (the Debian build is CPU-only).
#include <feasible/feasible.h>
#include <gtest/gtest.h>

namespace {

struct Iterates {
  torch::Tensor x;
  torch::Tensor dense;
  torch::Tensor indexed;
};

// 20 simultaneous steps of min ||x - a||^2 s.t. A x <= b (b < 0, so violated at x = 0) (dense,
// AugmentedLagrangian + NuPI) and x_i <= 0.1 for observed i (indexed, Lagrangian, sparse gradient)
// on `device`.
Iterates run_on(torch::Device device) {
  auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  torch::manual_seed(3);
  const auto A = torch::randn({3, 4}, f64).to(device);
  const auto b = -torch::rand({3}, f64).to(device);  // x = 0 violates A x <= b
  const auto a = torch::randn({4}, f64).to(device);
  auto x = torch::zeros({4}, f64.device(device)).requires_grad_(true);

  feasible::Problem problem;
  auto dense = problem.add_constraint(
      "dense", feasible::ConstraintOptions(feasible::ConstraintKind::kInequality, 3)
                   .formulation(std::make_shared<feasible::AugmentedLagrangian>())
                   .penalty(0.5)
                   .dtype(torch::kFloat64)
                   .device(device));
  auto indexed = problem.add_constraint(
      "indexed", feasible::ConstraintOptions(feasible::ConstraintKind::kInequality, 4)
                     .multiplier(feasible::MultiplierKind::kIndexed)
                     .sparse_gradient(true)
                     .dtype(torch::kFloat64)
                     .device(device));
  auto primal = std::make_shared<torch::optim::SGD>(std::vector<torch::Tensor>{x},
                                                    torch::optim::SGDOptions(0.1));
  auto dual = std::make_shared<feasible::optim::NuPI>(
      problem.dual_parameters(), feasible::optim::NuPIOptions(0.2).kp(1.0).nu(0.1));
  feasible::SimultaneousOptimizer opt(problem, {primal}, dual);
  for (int t = 0; t < 20; ++t) {
    const auto idx = torch::tensor({t % 4, (t + 1) % 4}, torch::kLong).to(device);
    opt.step([&] {
      feasible::ProblemState s((x - a).pow(2).sum());
      s.observe(dense, feasible::ConstraintState(A.matmul(x) - b));
      s.observe(indexed, feasible::ConstraintState(x.index_select(0, idx) - 0.1).indices(idx));
      return s;
    });
  }
  return {x.detach().cpu(), problem.multiplier_values("dense").cpu(),
          problem.multiplier_values("indexed").cpu()};
}

}  // namespace

TEST(Cuda, SameIteratesAsCpu) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  const Iterates cpu = run_on(torch::kCPU);
  const Iterates gpu = run_on(torch::Device(torch::kCUDA, 0));
  // float64 on both devices; only summation order differs, so 1e-10 is generous.
  EXPECT_TRUE(torch::allclose(cpu.x, gpu.x, 0, 1e-10));
  EXPECT_TRUE(torch::allclose(cpu.dense, gpu.dense, 0, 1e-10));
  EXPECT_TRUE(torch::allclose(cpu.indexed, gpu.indexed, 0, 1e-10));
  // The runs are not trivial: both multipliers moved away from 0.
  EXPECT_GT(cpu.dense.abs().sum().item<double>(), 0.0);
  EXPECT_GT(cpu.indexed.abs().sum().item<double>(), 0.0);
}

TEST(Cuda, MultipliersLiveOnTheRequestedDevice) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  feasible::Problem problem;
  problem.add_constraint("c", feasible::ConstraintOptions()
                                  .formulation(std::make_shared<feasible::QuadraticPenalty>())
                                  .device(torch::Device(torch::kCUDA, 0)));
  problem.add_constraint("d", feasible::ConstraintOptions().device(torch::Device(torch::kCUDA, 0)));
  EXPECT_TRUE(problem.penalty_values("c").is_cuda());
  EXPECT_TRUE(problem.multiplier_values("d").is_cuda());
}
