// The default optimizer's cost per step against the Simultaneous scheme with a plain SGD dual
// step (issue goal: within 5%, amortised), on the same problems, timed in alternation (A B A B
// ...; one thread), so that slow drifts of a noisy machine hit both alike. docs/defaults.md
// explains the figures.
//
// Problems:
//   tiny  x in R^10, loss ||x - 1||^2, A x <= b with 5 rows (one constraint of 5 entries),
//         SGD 0.05; the default calibrates 5 per-entry penalties (5 backward passes) when due.
//   mlp   784-300-100-10 MLP (ReLU) on a fixed synthetic batch of 256, cross-entropy, Adam 1e-3,
//         one constraint: mean predicted probability of class 0 <= 0.2.
// Each round runs --block steps of each variant after --warmup steps (so that the calibration
// schedule is in its steady part: every max(1, t/4) steps, at most 200 apart); the amortised
// ratio over the whole first --warmup steps is printed too.
//
// Flags: --rounds R (default 30), --block K (steps per turn, default 200), --warmup W (default
//        2000), --max-interval N (DefaultOptions::max_calibration_interval, default 200),
//        --sections tm.
#include <feasible/feasible.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "bench_util.h"

namespace {

using Clock = std::chrono::steady_clock;
using Optimizers = std::vector<std::shared_ptr<torch::optim::Optimizer>>;
namespace F = torch::nn::functional;

struct Config {
  int rounds = 30, block = 200, warmup = 2000;
  int64_t max_interval = feasible::DefaultOptions().max_calibration_interval();
  std::string sections = "tm";
};

/// One constrained training set-up: a closure and an optimizer that steps it.
struct Variant {
  std::string name;
  std::function<void(int)> run;  // n steps
};

double seconds_of(const std::function<void()>& f) {
  const auto t0 = Clock::now();
  f();
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Times `a` and `b` in alternation; prints per-step medians and the paired ratio b / a.
void compare(const char* title, Variant& a, Variant& b, const Config& cfg) {
  const double wa = seconds_of([&] { a.run(cfg.warmup); });
  const double wb = seconds_of([&] { b.run(cfg.warmup); });
  std::vector<double> ta, tb, ratio;
  for (int r = 0; r < cfg.rounds; ++r) {
    const double x = seconds_of([&] { a.run(cfg.block); }) / cfg.block;
    const double y = seconds_of([&] { b.run(cfg.block); }) / cfg.block;
    ta.push_back(x);
    tb.push_back(y);
    ratio.push_back(y / x);
  }
  std::printf("\n== %s\n", title);
  std::printf("   %-44s %9.2f us/step (median of %d blocks of %d)\n", a.name.c_str(),
              1e6 * feasible_bench::median_of(ta), cfg.rounds, cfg.block);
  std::printf("   %-44s %9.2f us/step\n", b.name.c_str(), 1e6 * feasible_bench::median_of(tb));
  std::printf(
      "   ratio default / simultaneous, steady part: %.3f (paired median; quartiles "
      "%.3f-%.3f); goal <= 1.05\n",
      feasible_bench::median_of(ratio), feasible_bench::quantile_of(ratio, 0.25),
      feasible_bench::quantile_of(ratio, 0.75));
  std::printf(
      "   ratio over the first %d steps (calibrations at 0..8 and every t/4 included): "
      "%.3f (one run each)\n",
      cfg.warmup, wb / wa);
}

// x in R^10, ||x - 1||^2, A x <= b (5 rows).
std::pair<Variant, Variant> tiny(const Config& cfg) {
  auto make = [&cfg](bool use_default) {
    torch::manual_seed(3);
    auto x = torch::zeros({10}, torch::kFloat64).requires_grad_(true);
    auto A = torch::randn({5, 10}, torch::kFloat64);
    auto b = torch::full({5}, 0.5, torch::kFloat64);
    feasible::Problem problem;
    auto c = problem.add_constraint(
        "Ax<=b", feasible::ConstraintOptions(feasible::ConstraintKind::kInequality, 5)
                     .dtype(torch::kFloat64));
    Optimizers primal = {std::make_shared<torch::optim::SGD>(std::vector<torch::Tensor>{x},
                                                             torch::optim::SGDOptions(0.05))};
    std::shared_ptr<feasible::ConstrainedOptimizer> opt;
    if (use_default) {
      opt = feasible::make_default_optimizer(
          problem, primal, feasible::DefaultOptions().max_calibration_interval(cfg.max_interval));
    } else {
      opt = std::make_shared<feasible::SimultaneousOptimizer>(
          problem, primal,
          std::make_shared<torch::optim::SGD>(problem.dual_parameters(),
                                              torch::optim::SGDOptions(0.05)));
    }
    auto closure = [=] {
      feasible::ProblemState st((x - 1.0).square().sum());
      st.observe(c, feasible::ConstraintState(torch::mv(A, x) - b));
      return st;
    };
    return Variant{use_default ? "default (make_default_optimizer)" : "Simultaneous, dual SGD 0.05",
                   [=](int n) {
                     for (int i = 0; i < n; ++i) opt->step(closure);
                   }};
  };
  return {make(false), make(true)};
}

// 784-300-100-10 MLP, Adam 1e-3, batch 256, mean probability of class 0 <= 0.2.
std::pair<Variant, Variant> mlp(const Config& cfg) {
  auto make = [&cfg](bool use_default) {
    torch::manual_seed(4);
    auto net = std::make_shared<torch::nn::Sequential>(
        torch::nn::Linear(784, 300), torch::nn::ReLU(), torch::nn::Linear(300, 100),
        torch::nn::ReLU(), torch::nn::Linear(100, 10));
    auto data = torch::randn({256, 784});
    auto labels = torch::randint(0, 10, {256});
    feasible::Problem problem;
    auto c = problem.add_constraint("p0<=0.2");
    Optimizers primal = {std::make_shared<torch::optim::Adam>((*net)->parameters(),
                                                              torch::optim::AdamOptions(1e-3))};
    std::shared_ptr<feasible::ConstrainedOptimizer> opt;
    if (use_default) {
      opt = feasible::make_default_optimizer(
          problem, primal, feasible::DefaultOptions().max_calibration_interval(cfg.max_interval));
    } else {
      opt = std::make_shared<feasible::SimultaneousOptimizer>(
          problem, primal,
          std::make_shared<torch::optim::SGD>(problem.dual_parameters(),
                                              torch::optim::SGDOptions(1e-2)));
    }
    auto closure = [=] {
      auto logits = (*net)->forward(data);
      feasible::ProblemState st(F::cross_entropy(logits, labels));
      auto p0 = torch::softmax(logits, 1).select(1, 0).mean();
      st.observe(c, feasible::ConstraintState((p0 - 0.2).reshape({1})));
      return st;
    };
    return Variant{use_default ? "default (make_default_optimizer)" : "Simultaneous, dual SGD 1e-2",
                   [=](int n) {
                     for (int i = 0; i < n; ++i) opt->step(closure);
                   }};
  };
  return {make(false), make(true)};
}

}  // namespace

int main(int argc, char** argv) {
  Config cfg;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--rounds")) {
      cfg.rounds = feasible_bench::int_flag(i, argc, argv);
    } else if (!std::strcmp(argv[i], "--block")) {
      cfg.block = feasible_bench::int_flag(i, argc, argv);
    } else if (!std::strcmp(argv[i], "--warmup")) {
      cfg.warmup = feasible_bench::int_flag(i, argc, argv);
    } else if (!std::strcmp(argv[i], "--max-interval")) {
      cfg.max_interval = feasible_bench::int_flag(i, argc, argv);
    } else if (!std::strcmp(argv[i], "--sections") && i + 1 < argc) {
      cfg.sections = argv[++i];
    } else {
      std::fprintf(stderr,
                   "usage: bench_default_cost [--rounds R] [--block K] [--warmup W] "
                   "[--max-interval N] [--sections tm]\n");
      return 2;
    }
  }
  torch::set_num_threads(1);
  if (cfg.sections.find('t') != std::string::npos) {
    auto v = tiny(cfg);
    compare("tiny: x in R^10, A x <= b (5 rows), SGD 0.05", v.first, v.second, cfg);
  }
  if (cfg.sections.find('m') != std::string::npos) {
    auto v = mlp(cfg);
    Config m = cfg;
    m.block = std::max(1, cfg.block / 20);
    m.warmup = std::max(1, cfg.warmup / 20);
    compare("mlp: 784-300-100-10, batch 256, Adam 1e-3", v.first, v.second, m);
  }
  return 0;
}
