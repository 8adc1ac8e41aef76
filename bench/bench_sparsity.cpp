// Time per training epoch of the sparsity experiment, penalized against constrained: the second
// row of Table 2 of Ramirez et al. (arXiv:2505.20628), where PyTorch + Cooper took 8.17 min
// (penalized) and 8.30 min (constrained) for 150 epochs of MNIST, +1.6%. docs/performance.md
// section 7 explains the figures.
//
// One epoch, as in the experiment (apps/feasible/sparsity_problem.cpp): the MLP 784-300-100-10
// of feasible::make_l0_mlp with Hard Concrete gates on the input units (initial drop rates 0.2,
// 0.5, 0.5), Adam with two parameter groups (weights and biases 1e-3, gates log_alpha 1e-2),
// batches of 256 from data::BatchLoader over the Fashion-MNIST training set, cross-entropy, and
// the requirement "expected density <= 0.5" (violation expected_density - 0.5):
//   P       penalized: UnconstrainedOptimizer, FixedPenalty c = 0.3;
//   C       constrained: SimultaneousOptimizer, Lagrangian, dual nuPI (lr 3e-4, Kp 5e4, zero
//           start);
//   P-hand  the penalized epoch in plain LibTorch (zero_grad, loss + c * violation, backward,
//           step): the floor.
//
// A plain harness, not Google Benchmark's runner (as bench_overhead.cpp): every variant keeps
// its own model, optimizers and loader (built once, before any timing, from the same seeds, so
// all three start from the same weights and see the same batches), and the variants run in
// alternation, P C P-hand P C P-hand ..., one whole epoch per turn, after a few warm-up batches
// each. An epoch's wall time is split into data (start_epoch's shuffle and every
// loader.next(): randperm, index_select) and compute (the rest: forward, backward, steps); the
// process CPU time of the epoch is recorded too. It prints per variant the median, standard
// deviation and minimum of the epoch and data times, the data share of an epoch, each ratio as
// the ratio of the medians, of the minima and as the median (with quartiles) of the per-round
// ratios (paired: each round runs the variants back to back; the wall-time paired median is the
// figure compared with the goal), then the ATen operator calls per step of each variant (exact,
// noise-free: what the library adds), and the goal line. The defaults took 75-106 s on the
// shared 2-core development machine under load (3.5-8.6 s per epoch of 60000 examples).
//
// Flags: --threads N (1), --rounds R (5), --examples N (all 60000), --warmup-batches W (10),
//        --data DIR (/usr/share/datasets/fashion-mnist).
#include <ATen/record_function.h>
#include <feasible/feasible.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "bench_util.h"

namespace {

using feasible_bench::int_flag;
using feasible_bench::median_of;
using feasible_bench::quantile_of;
using feasible_bench::Stats;
using feasible_bench::stats_of;

using Clock = std::chrono::steady_clock;
namespace data = feasible::data;

constexpr double kTarget = 0.5;     // required expected density
constexpr double kPenalty = 0.3;    // c of the penalized runs
constexpr double kWeightLr = 1e-3;  // Adam, weights and biases
constexpr double kGateLr = 1e-2;    // Adam, log_alpha
constexpr double kDualLr = 3e-4;    // nuPI step
constexpr double kDualKp = 5e4;     // nuPI proportional gain
constexpr int64_t kBatchSize = 256;
constexpr uint64_t kSeed = 0;

struct Config {
  int threads = 1;
  int rounds = 5;
  int64_t examples = 0;  // 0: the whole training set
  int warmup_batches = 10;
  std::string dir = data::kFashionMnistDir;
};

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// CPU time of the process (all its threads), in seconds: unlike the wall clock, it does not
// count the time other processes hold the cores, so on a shared machine its ratios are steadier.
double cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// ---------------------------------------------------------------- one variant

// What one variant owns: a model, its Adam, a loader, and (library variants) the problem and
// the constrained optimizer.
struct Variant {
  std::string tag, short_name, name;
  torch::nn::Sequential model;
  std::shared_ptr<torch::optim::Adam> adam;
  std::unique_ptr<data::BatchLoader> loader;
  feasible::Problem problem;
  feasible::Constraint density;
  std::shared_ptr<feasible::ConstrainedOptimizer> optimizer;  // null: the hand-written loop
  bool has_multiplier = false;
  std::function<void(const data::Batch&)> step;  // one training step on a batch
  std::vector<double> epoch_s, data_s, cpu_s;    // per round
};

// A fresh model, Adam and loader from the same seeds for every variant, so that all three start
// from the same weights and see the same batches in the same order.
void build_common(Variant& v, const data::Dataset& train) {
  torch::manual_seed(kSeed);
  std::vector<feasible::L0GateOptions> gates;
  for (double d : {0.2, 0.5, 0.5}) {
    gates.push_back(
        feasible::L0GateOptions().kind(feasible::L0GateKind::kInputUnits).init_drop_rate(d));
  }
  v.model = feasible::make_l0_mlp({784, 300, 100, 10}, gates);
  v.model->train();
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(feasible::l0_weight_parameters(*v.model),
                      std::make_unique<torch::optim::AdamOptions>(kWeightLr));
  groups.emplace_back(feasible::l0_gate_parameters(*v.model),
                      std::make_unique<torch::optim::AdamOptions>(kGateLr));
  v.adam =
      std::make_shared<torch::optim::Adam>(std::move(groups), torch::optim::AdamOptions(kWeightLr));
  v.loader = std::make_unique<data::BatchLoader>(train, kBatchSize, kSeed + 1);
}

// The closure of the library variants: cross-entropy and the density constraint.
void set_library_step(Variant& v) {
  Variant* p = &v;
  v.step = [p](const data::Batch& batch) {
    p->optimizer->step([&] {
      feasible::ProblemState state(
          torch::cross_entropy_loss(p->model->forward(batch.inputs), batch.targets));
      state.observe(p->density,
                    feasible::ConstraintState(feasible::expected_density(*p->model) - kTarget));
      return state;
    });
  };
}

std::unique_ptr<Variant> make_penalized(const data::Dataset& train) {
  auto v = std::make_unique<Variant>();
  v->tag = "P";
  v->short_name = "penalized";
  v->name = "penalized: UnconstrainedOptimizer, FixedPenalty c = 0.3";
  build_common(*v, train);
  v->density = v->problem.add_constraint(
      "density", feasible::ConstraintOptions()
                     .formulation(std::make_shared<feasible::FixedPenalty>())
                     .penalty(kPenalty));
  v->optimizer = std::make_shared<feasible::UnconstrainedOptimizer>(
      v->problem, std::vector<std::shared_ptr<torch::optim::Optimizer>>{v->adam});
  set_library_step(*v);
  return v;
}

std::unique_ptr<Variant> make_constrained(const data::Dataset& train) {
  auto v = std::make_unique<Variant>();
  v->tag = "C";
  v->short_name = "constrained";
  v->name = "constrained: SimultaneousOptimizer, Lagrangian, dual nuPI (3e-4, Kp 5e4)";
  build_common(*v, train);
  v->density = v->problem.add_constraint("density", feasible::ConstraintOptions());
  auto dual = std::make_shared<feasible::optim::NuPI>(
      v->problem.dual_parameters(),
      feasible::optim::NuPIOptions(kDualLr).kp(kDualKp).init(feasible::optim::NuPIInit::kZero));
  v->optimizer = std::make_shared<feasible::SimultaneousOptimizer>(
      v->problem, std::vector<std::shared_ptr<torch::optim::Optimizer>>{v->adam}, dual);
  v->has_multiplier = true;
  set_library_step(*v);
  return v;
}

std::unique_ptr<Variant> make_hand(const data::Dataset& train) {
  auto v = std::make_unique<Variant>();
  v->tag = "P-hand";
  v->short_name = "penalized by hand";
  v->name = "penalized by hand: plain LibTorch loop (the floor)";
  build_common(*v, train);
  Variant* p = v.get();
  v->step = [p](const data::Batch& batch) {
    p->adam->zero_grad();
    const auto loss = torch::cross_entropy_loss(p->model->forward(batch.inputs), batch.targets) +
                      kPenalty * (feasible::expected_density(*p->model) - kTarget);
    loss.backward();
    p->adam->step();
  };
  return v;
}

struct EpochTimes {
  double total = 0, data = 0, cpu = 0;
  int64_t batches = 0;
};

// One epoch (or its first max_batches batches, if > 0): the loader's work is timed as data.
EpochTimes run_epoch(Variant& v, int64_t max_batches = 0) {
  EpochTimes t;
  const double cpu_start = cpu_seconds();
  const auto start = Clock::now();
  v.loader->start_epoch();
  t.data += seconds_since(start);
  while (max_batches <= 0 || t.batches < max_batches) {
    const auto t0 = Clock::now();
    auto batch = v.loader->next();
    t.data += seconds_since(t0);
    if (!batch) break;
    v.step(*batch);
    ++t.batches;
  }
  t.total = seconds_since(start);
  t.cpu = cpu_seconds() - cpu_start;
  return t;
}

// Counts the ATen operator calls of `steps` training steps of `v` (RecordFunction callbacks,
// as bench_overhead --count-ops): top-level = made by the user's, the library's or the autograd
// engine's code; all = every dispatcher call, nested ones included. Exact and noise-free.
std::atomic<long> g_top{0}, g_all{0};
thread_local int g_depth = 0;

std::pair<double, double> count_ops(Variant& v, int steps) {
  v.loader->start_epoch();
  std::vector<data::Batch> batches;
  for (int i = 0; i < steps; ++i) {
    auto b = v.loader->next();
    if (!b) break;
    batches.push_back(*b);
  }
  g_top = 0;
  g_all = 0;
  auto handle = at::addGlobalCallback(
      at::RecordFunctionCallback(
          [](const at::RecordFunction&) -> std::unique_ptr<at::ObserverContext> {
            if (g_depth++ == 0) ++g_top;
            ++g_all;
            return nullptr;
          },
          [](const at::RecordFunction&, at::ObserverContext*) { --g_depth; })
          .scopes({at::RecordScope::FUNCTION, at::RecordScope::BACKWARD_FUNCTION}));
  for (const auto& b : batches) v.step(b);
  at::removeCallback(handle);
  const double n = static_cast<double>(std::max<size_t>(batches.size(), 1));
  return {static_cast<double>(g_top) / n, static_cast<double>(g_all) / n};
}

// ---------------------------------------------------------------- report

// What a ratio compares: wall-clock epoch time, its compute part (epoch minus data), or the
// process CPU time of the epoch.
enum class Measure { kEpoch, kCompute, kCpu };

std::vector<double> values_of(const Variant& v, Measure m) {
  switch (m) {
    case Measure::kEpoch:
      return v.epoch_s;
    case Measure::kCpu:
      return v.cpu_s;
    case Measure::kCompute: {
      std::vector<double> out = v.epoch_s;
      for (size_t k = 0; k < out.size(); ++k) out[k] -= v.data_s[k];
      return out;
    }
  }
  return {};
}

// Per-round ratios num / den.
std::vector<double> paired_ratios(const Variant& num, const Variant& den, Measure m) {
  const auto a = values_of(num, m), b = values_of(den, m);
  std::vector<double> paired;
  for (size_t k = 0; k < a.size(); ++k) paired.push_back(a[k] / b[k]);
  return paired;
}

void print_ratio(const Variant& num, const Variant& den, Measure m) {
  const auto a = values_of(num, m), b = values_of(den, m);
  const auto paired = paired_ratios(num, den, m);
  const char* what_m = m == Measure::kEpoch     ? " (epoch, wall)"
                       : m == Measure::kCompute ? " (compute only, wall)"
                                                : " (epoch, CPU time)";
  const std::string what = num.tag + " / " + den.tag + what_m;
  std::printf("   %-34s %8.3f %8.3f %9.3f [%.3f, %.3f]\n", what.c_str(),
              median_of(a) / median_of(b),
              *std::min_element(a.begin(), a.end()) / *std::min_element(b.begin(), b.end()),
              median_of(paired), quantile_of(paired, 0.25), quantile_of(paired, 0.75));
}

}  // namespace

int main(int argc, char** argv) {
  Config cfg;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--threads") {
      cfg.threads = int_flag(i, argc, argv);
    } else if (a == "--rounds") {
      cfg.rounds = int_flag(i, argc, argv);
    } else if (a == "--examples") {
      cfg.examples = int_flag(i, argc, argv);
      if (cfg.examples < 1) {
        std::fprintf(stderr, "--examples must be >= 1\n");
        return 2;
      }
    } else if (a == "--warmup-batches") {
      cfg.warmup_batches = int_flag(i, argc, argv);
    } else if (a == "--data" && i + 1 < argc) {
      cfg.dir = argv[++i];
    } else {
      const Config d;
      std::printf(
          "usage: %s [--threads N=%d] [--rounds R=%d] [--examples N=all]\n"
          "          [--warmup-batches W=%d] [--data DIR=%s]\n"
          "Times one training epoch of the sparsity experiment (Table 2, second row): penalized\n"
          "(P), constrained (C) and a hand-written penalized loop (P-hand), alternating, one\n"
          "epoch per variant per round; reports epoch and data-loading times and the paired\n"
          "ratio C / P against the goal <= 1.02.\n",
          argv[0], d.threads, d.rounds, d.warmup_batches, d.dir.c_str());
      return a == "--help" || a == "-h" ? 0 : 2;
    }
  }
  if (cfg.threads < 1 || cfg.rounds < 1 || cfg.warmup_batches < 0) {
    std::fprintf(stderr, "threads and rounds must be >= 1, warmup-batches >= 0\n");
    return 2;
  }
  torch::set_num_threads(cfg.threads);
  const auto t_start = Clock::now();

  data::Dataset train;
  try {
    train = data::load_fashion_mnist(data::Split::kTrain, cfg.dir);
  } catch (const c10::Error& e) {
    std::fprintf(stderr,
                 "bench_sparsity: cannot read the Fashion-MNIST training set from %s\n"
                 "  install the Debian package dataset-fashion-mnist (apt-get install "
                 "dataset-fashion-mnist),\n"
                 "  or pass --data DIR with {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]\n"
                 "  reason: %s\n",
                 cfg.dir.c_str(), e.what_without_backtrace());
    return 1;
  }
  if (cfg.examples > 0) train = data::take(train, cfg.examples);
  const double load_s = seconds_since(t_start);

  std::vector<std::unique_ptr<Variant>> variants;
  variants.push_back(make_penalized(train));
  variants.push_back(make_constrained(train));
  variants.push_back(make_hand(train));
  Variant& P = *variants[0];
  Variant& C = *variants[1];
  Variant& H = *variants[2];

  std::printf("feasible %s sparsity benchmark (Table 2, second row): time per training epoch\n",
              feasible::kVersion);
  std::printf(
      "data: Fashion-MNIST training set from %s, %lld examples (read in %.2f s),\n"
      "      batch %lld, %lld batches per epoch\n",
      cfg.dir.c_str(), static_cast<long long>(train.size()), load_s,
      static_cast<long long>(kBatchSize), static_cast<long long>(P.loader->batches_per_epoch()));
  std::printf(
      "model: MLP 784-300-100-10, L0 gates on input units (initial drop 0.2, 0.5, 0.5);\n"
      "       Adam 1e-3 (weights), 1e-2 (gates); density <= 0.5\n");
  std::printf(
      "LibTorch threads: %d; %d rounds, one epoch per variant per round (%s, %s, %s in\n"
      "turn); warm-up: %d batches per variant\n",
      torch::get_num_threads(), cfg.rounds, P.tag.c_str(), C.tag.c_str(), H.tag.c_str(),
      cfg.warmup_batches);
  std::fflush(stdout);

  for (auto& v : variants) {
    if (cfg.warmup_batches > 0) run_epoch(*v, cfg.warmup_batches);
  }

  std::printf("\n   round   wall seconds per epoch (of which data; CPU seconds)\n");
  for (int r = 0; r < cfg.rounds; ++r) {
    std::printf("   %5d", r + 1);
    for (auto& v : variants) {
      const EpochTimes t = run_epoch(*v);
      v->epoch_s.push_back(t.total);
      v->data_s.push_back(t.data);
      v->cpu_s.push_back(t.cpu);
      std::printf("   %s %.3f (%.3f; %.3f)", v->tag.c_str(), t.total, t.data, t.cpu);
    }
    std::printf("   C/P %.3f\n", C.epoch_s.back() / P.epoch_s.back());
    std::fflush(stdout);
  }

  std::printf(
      "\n   %d rounds; seconds per epoch (wall clock); data = shuffling and gathering batches\n",
      cfg.rounds);
  std::printf("   %-7s %-22s %22s %22s %6s %7s\n", "", "", "epoch", "data", "data", "CPU");
  std::printf("   %-7s %-22s %8s %6s %6s %8s %6s %6s %6s %7s\n", "tag", "variant", "median",
              "stddev", "min", "median", "stddev", "min", "share", "median");
  for (const auto& v : variants) {
    const Stats e = stats_of(v->epoch_s), d = stats_of(v->data_s);
    std::vector<double> share;
    for (size_t k = 0; k < v->epoch_s.size(); ++k) share.push_back(v->data_s[k] / v->epoch_s[k]);
    std::printf("   %-7s %-22s %8.3f %6.3f %6.3f %8.4f %6.4f %6.4f %5.1f%% %7.3f\n", v->tag.c_str(),
                v->short_name.c_str(), e.median, e.stddev, e.min, d.median, d.stddev, d.min,
                100 * median_of(share), median_of(v->cpu_s));
  }
  std::printf("   (data share: median over rounds of data / epoch)\n");
  for (const auto& v : variants) std::printf("   %-7s %s\n", v->tag.c_str(), v->name.c_str());

  std::printf("\n   %-34s %8s %8s %9s %s\n", "ratio", "medians", "mins", "paired:", "median [IQR]");
  print_ratio(C, P, Measure::kEpoch);
  print_ratio(C, P, Measure::kCompute);
  print_ratio(C, P, Measure::kCpu);
  print_ratio(P, H, Measure::kEpoch);
  print_ratio(P, H, Measure::kCpu);
  print_ratio(C, H, Measure::kEpoch);
  print_ratio(C, H, Measure::kCpu);

  // Where the runs ended: the constrained run must be doing its job (density pulled towards
  // 0.5 by a growing multiplier), or the comparison would be empty.
  std::printf("\n   after %d rounds (+ warm-up):", cfg.rounds);
  for (const auto& v : variants) {
    double density = 0;
    {
      torch::NoGradGuard no_grad;
      density = feasible::expected_density(*v->model).item<double>();
    }
    std::printf("  %s expected density %.3f", v->tag.c_str(), density);
    if (v->has_multiplier) {
      std::printf(" (lambda %.4f)", v->problem.multiplier_values("density")[0].item<double>());
    }
    std::printf(";");
  }
  std::printf("\n");

  // Operator calls per step (after the timing, so the timed epochs are not disturbed).
  std::printf(
      "\n   ATen operator calls per training step (mean over 5 steps): top-level / all nested\n");
  for (auto& v : variants) {
    const auto ops = count_ops(*v, 5);
    std::printf("   %-7s %7.1f / %7.1f\n", v->tag.c_str(), ops.first, ops.second);
  }

  const double ratio = median_of(paired_ratios(C, P, Measure::kEpoch));
  std::printf(
      "\ngoal: constrained/penalized <= 1.02: %s (wall time per epoch: paired median %.3f, ratio "
      "of medians %.3f; CPU time: paired median %.3f; %d rounds)\n",
      ratio <= 1.02 ? "met" : "NOT met", ratio, median_of(C.epoch_s) / median_of(P.epoch_s),
      median_of(paired_ratios(C, P, Measure::kCpu)), cfg.rounds);
  std::printf("total %.1f s\n", seconds_since(t_start));
  return 0;
}
