// Time per step of an indexed constraint (one constraint per training example) against its
// total size, with a batch of 256 observed entries per step. The library's own work per step
// must not grow with the size; a non-sparse optimizer's step over the whole multiplier does.
//
//   bench_indexed [--steps N] [--reps R] [--threads T]
#include <feasible/feasible.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

enum class Variant { kSgdDenseRows, kNuPISparse, kAdamDenseRows, kAdamLazy };

const char* name_of(Variant v) {
  switch (v) {
    case Variant::kSgdDenseRows:
      return "SGD, dense rows";
    case Variant::kNuPISparse:
      return "NuPI, sparse gradient";
    case Variant::kAdamDenseRows:
      return "Adam, dense rows";
    case Variant::kAdamLazy:
      return "Adam, lazy rows";
  }
  return "";
}

// Microseconds per step, median over `reps` runs of `steps` steps.
double time_per_step(Variant variant, int64_t size, int steps, int reps) {
  const int64_t batch = 256, dim = 16;
  torch::manual_seed(0);
  auto w = torch::zeros({dim}, torch::requires_grad());
  const auto features = torch::randn({batch, dim});
  feasible::Problem problem;
  auto opts = feasible::ConstraintOptions(feasible::ConstraintKind::kInequality, size)
                  .multiplier(feasible::MultiplierKind::kIndexed);
  if (variant == Variant::kNuPISparse) opts.sparse_gradient(true);
  if (variant == Variant::kAdamLazy) opts.lazy(true);
  auto per_example = problem.add_constraint("per_example", opts);
  std::shared_ptr<torch::optim::Optimizer> dual;
  if (variant == Variant::kSgdDenseRows) {
    dual = std::make_shared<torch::optim::SGD>(problem.dual_parameters(),
                                               torch::optim::SGDOptions(1e-2));
  } else if (variant == Variant::kNuPISparse) {
    dual = std::make_shared<feasible::optim::NuPI>(problem.dual_parameters(),
                                                   feasible::optim::NuPIOptions(1e-2).kp(1.0));
  } else {
    dual = std::make_shared<torch::optim::Adam>(problem.dual_parameters(),
                                                torch::optim::AdamOptions(1e-2));
  }
  auto primal = std::make_shared<torch::optim::SGD>(std::vector<torch::Tensor>{w},
                                                    torch::optim::SGDOptions(1e-2));
  feasible::SimultaneousOptimizer opt(problem, {primal}, dual);
  std::vector<torch::Tensor> batches;
  for (int i = 0; i < 16; ++i) batches.push_back(torch::randint(size, {batch}, torch::kLong));
  std::vector<double> runs;
  for (int r = 0; r < reps + 1; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int t = 0; t < steps; ++t) {
      const auto& idx = batches[t % batches.size()];
      opt.step([&] {
        auto margin = features.matmul(w);
        feasible::ProblemState s(margin.pow(2).mean());
        s.observe(per_example, feasible::ConstraintState(0.1 - margin).indices(idx));
        return s;
      });
    }
    const double us =
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() /
        steps;
    if (r > 0) runs.push_back(us);  // the first run warms up
  }
  std::sort(runs.begin(), runs.end());
  return runs[runs.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int steps = 200, reps = 5, threads = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const int value = std::atoi(argv[i + 1]);
    if (flag == "--steps")
      steps = value;
    else if (flag == "--reps")
      reps = value;
    else if (flag == "--threads")
      threads = value;
    else {
      std::fprintf(stderr, "unknown flag %s (expected --steps, --reps, --threads)\n", argv[i]);
      return 2;
    }
  }
  torch::set_num_threads(threads);
  const std::vector<int64_t> sizes = {1000, 100000, 1000000, 10000000};
  std::printf(
      "Indexed constraint, batch 256, %d steps x %d reps, %d thread(s): us/step (ratio to size "
      "1e3)\n",
      steps, reps, threads);
  std::printf("%-24s", "variant");
  for (auto s : sizes) std::printf(" %18lld", static_cast<long long>(s));
  std::printf("\n");
  for (auto v : {Variant::kSgdDenseRows, Variant::kNuPISparse, Variant::kAdamDenseRows,
                 Variant::kAdamLazy}) {
    std::printf("%-24s", name_of(v));
    double base = 0;
    for (auto s : sizes) {
      const double us = time_per_step(v, s, steps, reps);
      if (base == 0) base = us;
      std::printf(" %9.1f (%5.2fx)", us, us / base);
      std::fflush(stdout);
    }
    std::printf("\n");
  }
  return 0;
}
