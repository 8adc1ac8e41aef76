// Data-parallel training of the sparsity experiment's MLP (docs/distributed.md): samples per
// second at 1 and 2 ranks, what the constraint's exchange adds to a step, and the bytes a rank
// hands to c10d per step for the constraint against the gradients.
//
// The model and step are those of the sparsity experiment's constrained run (bench_sparsity.cpp,
// apps/feasible/sparsity_problem.cpp): the L0-gated MLP 784-300-100-10, Adam (weights 1e-3,
// gates 1e-2), SimultaneousOptimizer with nuPI (lr 3e-4, Kp 5e4) on "expected density <= 0.5";
// a global batch of 256 split evenly over the ranks (each rank's shard of the first --examples
// Fashion-MNIST training examples). Each world size runs in its own processes, forked here, with
// a c10d::FileStore rendezvous and Gloo on loopback.
//
// The constraint's exchange runs in one of four modes, switched together on every rank by a
// Synchronizer wrapped around the DataParallel:
//   carried   as built (Options::combine_with_gradients): the header travels in the gradients'
//             all-reduce, which finish_evaluation runs after the backward pass (one collective
//             per step);
//   overlap   the header's own all-gather: begin_evaluation starts it, the backward pass runs,
//             finish_evaluation waits for it (the default before the carried exchange);
//   blocking  the whole exchange at begin_evaluation (the Synchronizer's default), i.e. its
//             round trip before the backward pass, as before the overlap;
//   off       no constraint exchange (bench only: the multipliers are then not synchronised;
//             the gradients keep the weight n_r / sum n_r of the warm-up's exchanges).
// After --warmup steps (carried), --blocks rounds each run one block of --block-steps steps in
// every mode, the order of the modes rotating from round to round; rank 0 times each block (no
// barrier between blocks: every rank switches mode at the same step).
// Printed per mode: the median over blocks of the step time, the time spent in the exchange's
// calls (begin + finish; in overlap mode the finish is the wait for the all-gather, in carried
// mode it is the gradients' all-reduce), the gradients' all-reduce where it is separate, the bytes
// per step (header, gradients), and the median over rounds of the paired difference to "off" in the
// same round (the overhead the exchange adds to a step), in ms and in % of the "off" median,
// with the interquartile range of those paired differences; and the difference of the mean step
// times to "off" (which the long tail of preempted steps weighs more than the median does).
//
// Flags: --blocks N (30), --block-steps N (10), --warmup N (10), --examples N (10000),
//        --threads N (1 per rank), --min-world N (1), --max-world N (2), --data DIR
//        (/usr/share/datasets/fashion-mnist).
#include <feasible/distributed.h>
#include <feasible/feasible.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "bench_util.h"

namespace {

using Clock = std::chrono::steady_clock;
namespace data = feasible::data;
using feasible::distributed::DataParallel;

struct Config {
  int blocks = 30, block_steps = 10, warmup = 10, threads = 1, min_world = 1, max_world = 2;
  int64_t examples = 10000;
  std::string dir = data::kFashionMnistDir;
};

double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

enum Mode { kCarried = 0, kOverlap = 1, kBlocking = 2, kOff = 3, kModes = 4 };
const char* const kModeNames[kModes] = {"carried", "overlap", "blocking", "off"};

// Forwards to the DataParallel in the current mode, timing the exchange and the gradients.
class TimedSync : public feasible::Synchronizer {
 public:
  explicit TimedSync(std::shared_ptr<DataParallel> dp) : dp_(std::move(dp)) {}
  int rank() const override { return dp_->rank(); }
  int world_size() const override { return dp_->world_size(); }
  void synchronize_evaluation(feasible::SyncedEvaluation& e) override {
    begin_evaluation(e);
    finish_evaluation(e);
  }
  void begin_evaluation(feasible::SyncedEvaluation& e) override {
    const auto t0 = Clock::now();
    if (mode == kCarried) {
      dp_->begin_evaluation(e);
    } else if (mode == kOverlap) {
      e.backward_between = false;  // not carried: the header's own all-gather, overlapped
      dp_->begin_evaluation(e);
    } else if (mode == kBlocking) {
      dp_->synchronize_evaluation(e);
    } else {
      e.bad_rank = e.first_bad >= 0 ? dp_->rank() : -1;  // this rank's own values
    }
    exchange_s += since(t0);
  }
  void finish_evaluation(feasible::SyncedEvaluation& e) override {
    if (mode != kOverlap && mode != kCarried) return;
    const auto t0 = Clock::now();
    dp_->finish_evaluation(e);
    exchange_s += since(t0);
    wait_s += since(t0);
  }
  void synchronize_gradients(std::vector<at::Tensor>& p) override {
    const auto t0 = Clock::now();
    dp_->synchronize_gradients(p);
    gradient_s += since(t0);
  }
  void share_from_root(std::vector<at::Tensor>& t) override { dp_->share_from_root(t); }
  Mode mode = kOverlap;
  double exchange_s = 0, wait_s = 0, gradient_s = 0;

 private:
  std::shared_ptr<DataParallel> dp_;
};

// Rank 0's measurements: per mode, per round, the block's seconds per step and the seconds per
// step in the exchange's calls, in the wait of the overlapped exchange, and in the gradients'.
struct Measured {
  std::vector<double> step[kModes], exchange[kModes], wait[kModes], gradient[kModes];
  double constraint_bytes[kModes] = {}, gradient_bytes[kModes] = {};  // per step
};

Measured run_rank(const Config& cfg, int rank, int world, const std::string& store) {
  torch::set_num_threads(cfg.threads);
  auto dp = DataParallel::from_file(store, rank, world);
  const data::Dataset all =
      data::take(data::load_fashion_mnist(data::Split::kTrain, cfg.dir), cfg.examples);
  const int64_t each = all.size() / world;
  const torch::Tensor rows = torch::arange(rank, each * world, world);
  data::Dataset shard = all;
  shard.inputs = all.inputs.index_select(0, rows);
  shard.targets = all.targets.index_select(0, rows);
  torch::manual_seed(0);
  std::vector<feasible::L0GateOptions> gates;
  for (double d : {0.2, 0.5, 0.5}) {
    gates.push_back(
        feasible::L0GateOptions().kind(feasible::L0GateKind::kInputUnits).init_drop_rate(d));
  }
  auto model = feasible::make_l0_mlp({784, 300, 100, 10}, gates);
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(feasible::l0_weight_parameters(*model),
                      std::make_unique<torch::optim::AdamOptions>(1e-3));
  groups.emplace_back(feasible::l0_gate_parameters(*model),
                      std::make_unique<torch::optim::AdamOptions>(1e-2));
  auto adam =
      std::make_shared<torch::optim::Adam>(std::move(groups), torch::optim::AdamOptions(1e-3));
  feasible::Problem problem;
  auto density = problem.add_constraint("density");
  auto nupi = std::make_shared<feasible::optim::NuPI>(
      problem.dual_parameters(),
      feasible::optim::NuPIOptions(3e-4).kp(5e4).init(feasible::optim::NuPIInit::kZero));
  feasible::SimultaneousOptimizer opt(problem, {adam}, nupi);
  dp->attach(opt);
  auto timed = std::make_shared<TimedSync>(dp);
  opt.set_synchronizer(timed);
  data::BatchLoader loader(shard, (256 + world - 1) / world, 1);
  loader.start_epoch();
  auto one_step = [&] {
    auto batch = loader.next();
    if (!batch) {
      loader.start_epoch();
      batch = loader.next();
    }
    dp->set_samples(batch->targets.size(0));
    opt.step([&] {
      feasible::ProblemState st(
          torch::cross_entropy_loss(model->forward(batch->inputs), batch->targets));
      st.observe(density, feasible::ConstraintState(feasible::expected_density(*model) - 0.5));
      return st;
    });
  };
  for (int s = 0; s < cfg.warmup; ++s) one_step();
  dp->barrier();
  Measured m;
  const double n = cfg.block_steps;
  for (int round = 0; round < cfg.blocks; ++round) {
    for (int k = 0; k < kModes; ++k) {
      const Mode mode = static_cast<Mode>((round + k) % kModes);
      timed->mode = mode;
      timed->exchange_s = timed->wait_s = timed->gradient_s = 0;
      const double bytes0 = static_cast<double>(dp->traffic().constraint_bytes);
      const double grad0 = static_cast<double>(dp->traffic().gradient_bytes);
      // No barrier: the ranks meet at every step's collectives, and a barrier would align them
      // before each block, hiding the skew that the first collective of a step absorbs.
      const auto t0 = Clock::now();
      for (int s = 0; s < cfg.block_steps; ++s) one_step();
      m.step[mode].push_back(since(t0) / n);
      m.exchange[mode].push_back(timed->exchange_s / n);
      m.wait[mode].push_back(timed->wait_s / n);
      m.gradient[mode].push_back(timed->gradient_s / n);
      m.constraint_bytes[mode] = (static_cast<double>(dp->traffic().constraint_bytes) - bytes0) / n;
      m.gradient_bytes[mode] = (static_cast<double>(dp->traffic().gradient_bytes) - grad0) / n;
    }
  }
  dp->barrier();
  return m;
}

void write(std::ostream& out, const Measured& m) {
  for (int k = 0; k < kModes; ++k)
    out << m.constraint_bytes[k] << " " << m.gradient_bytes[k] << "\n";
  for (int k = 0; k < kModes; ++k) {
    for (const auto* v : {&m.step[k], &m.exchange[k], &m.wait[k], &m.gradient[k]}) {
      out << v->size();
      for (double x : *v) out << " " << x;
      out << "\n";
    }
  }
}

bool read(std::istream& in, Measured& m) {
  for (int k = 0; k < kModes; ++k) {
    if (!(in >> m.constraint_bytes[k] >> m.gradient_bytes[k])) return false;
  }
  for (int k = 0; k < kModes; ++k) {
    for (auto* v : {&m.step[k], &m.exchange[k], &m.wait[k], &m.gradient[k]}) {
      size_t count = 0;
      if (!(in >> count)) return false;
      v->resize(count);
      for (double& x : *v) {
        if (!(in >> x)) return false;
      }
    }
  }
  return true;
}

// Forks `world` ranks; returns rank 0's measurements (read back from a file).
bool measure(const Config& cfg, int world, Measured& out) {
  char tmpl[] = "/tmp/feasible_bench_dist_XXXXXX";
  const char* dir = ::mkdtemp(tmpl);
  if (dir == nullptr) return false;
  const std::string store = std::string(dir) + "/store", result = std::string(dir) + "/rank0";
  std::vector<pid_t> pids;
  for (int r = 0; r < world; ++r) {
    const pid_t pid = ::fork();
    if (pid == 0) {
      try {
        const Measured m = run_rank(cfg, r, world, store);
        if (r == 0) {
          std::ofstream f(result);
          write(f, m);
        }
        std::_Exit(0);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "rank %d: %s\n", r, e.what());
        std::_Exit(1);
      }
    }
    pids.push_back(pid);
  }
  bool ok = true;
  for (pid_t pid : pids) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    ok = ok && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  }
  std::ifstream in(result);
  ok = ok && read(in, out);
  std::remove(result.c_str());
  std::remove(store.c_str());
  ::rmdir(dir);
  return ok;
}

double mean_of(const std::vector<double>& v) {
  double sum = 0;
  for (double x : v) sum += x;
  return v.empty() ? 0.0 : sum / static_cast<double>(v.size());
}

// One line per mode: medians over blocks, means of the timed calls, the paired overhead.
void print(int world, const Measured& m) {
  using feasible_bench::median_of;
  const double off = median_of(m.step[kOff]);
  for (int k = 0; k < kModes; ++k) {
    std::vector<double> paired;
    for (size_t b = 0; b < m.step[k].size(); ++b) paired.push_back(m.step[k][b] - m.step[kOff][b]);
    const double over = median_of(paired);
    const double q1 = feasible_bench::quantile_of(paired, 0.25);
    const double q3 = feasible_bench::quantile_of(paired, 0.75);
    const double mean_over = mean_of(m.step[k]) - mean_of(m.step[kOff]);
    std::printf(
        "%-6d %-9s %10.0f %9.2f %12.3f %9.3f %9.2f %9.3f %7.2f%% %7.3f..%-7.3f %9.3f %7.2f%% %8.0f "
        "%10.0f\n",
        world, kModeNames[k], 256.0 / median_of(m.step[k]), 1e3 * median_of(m.step[k]),
        1e3 * mean_of(m.exchange[k]), 1e3 * mean_of(m.wait[k]), 1e3 * mean_of(m.gradient[k]),
        1e3 * over, 100.0 * over / off, 1e3 * q1, 1e3 * q3, 1e3 * mean_over,
        100.0 * mean_over / mean_of(m.step[kOff]), m.constraint_bytes[k], m.gradient_bytes[k]);
  }
}

}  // namespace

int main(int argc, char** argv) {
  Config cfg;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--blocks")
      cfg.blocks = feasible_bench::int_flag(i, argc, argv);
    else if (a == "--block-steps")
      cfg.block_steps = feasible_bench::int_flag(i, argc, argv);
    else if (a == "--warmup")
      cfg.warmup = feasible_bench::int_flag(i, argc, argv);
    else if (a == "--examples")
      cfg.examples = feasible_bench::int_flag(i, argc, argv);
    else if (a == "--threads")
      cfg.threads = feasible_bench::int_flag(i, argc, argv);
    else if (a == "--min-world")
      cfg.min_world = feasible_bench::int_flag(i, argc, argv);
    else if (a == "--max-world")
      cfg.max_world = feasible_bench::int_flag(i, argc, argv);
    else if (a == "--data" && i + 1 < argc)
      cfg.dir = argv[++i];
    else {
      std::fprintf(stderr, "unknown flag %s\n", argv[i]);
      return 2;
    }
  }
  if (cfg.blocks < 1 || cfg.block_steps < 1) {
    std::fprintf(stderr, "--blocks and --block-steps must be >= 1\n");
    return 2;
  }
  std::printf("%-6s %-9s %10s %9s %12s %9s %9s %9s %8s %16s %9s %8s %8s %10s\n", "ranks", "mode",
              "samples/s", "step ms", "exchange ms", "wait ms", "grad ms", "+step ms", "+step %",
              "+step IQR ms", "+mean ms", "+mean %", "cons. B", "grad. B");
  for (int world = std::max(1, cfg.min_world); world <= cfg.max_world; ++world) {
    Measured m;
    if (!measure(cfg, world, m)) {
      std::fprintf(stderr, "the run with %d rank(s) failed\n", world);
      return 1;
    }
    print(world, m);
  }
  return 0;
}
