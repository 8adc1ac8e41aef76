// Data-parallel training of the sparsity experiment's MLP (docs/distributed.md): samples per
// second at 1 and 2 ranks, the share of a step spent synchronising the constraint, and the bytes
// a rank hands to c10d per step for the constraint against the gradients.
//
// The model and step are those of the sparsity experiment's constrained run (bench_sparsity.cpp,
// apps/feasible/sparsity_problem.cpp): the L0-gated MLP 784-300-100-10, Adam (weights 1e-3,
// gates 1e-2), SimultaneousOptimizer with nuPI (lr 3e-4, Kp 5e4) on "expected density <= 0.5";
// a global batch of 256 split evenly over the ranks (each rank's shard of the first --examples
// Fashion-MNIST training examples). Each world size runs in its own processes, forked here, with
// a c10d::FileStore rendezvous and Gloo on loopback. Rank 0 times --steps steps after --warmup
// steps; a Synchronizer wrapped around the DataParallel times its two calls.
//
// Flags: --steps N (60), --warmup N (5), --examples N (10000), --threads N (1 per rank),
//        --max-world N (2), --data DIR (/usr/share/datasets/fashion-mnist).
#include <feasible/distributed.h>
#include <feasible/feasible.h>
#include <sys/wait.h>
#include <unistd.h>

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
  int steps = 60, warmup = 5, threads = 1, max_world = 2;
  int64_t examples = 10000;
  std::string dir = data::kFashionMnistDir;
};

double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Times the two calls of the step engine, forwarding them to the DataParallel.
class TimedSync : public feasible::Synchronizer {
 public:
  explicit TimedSync(std::shared_ptr<DataParallel> dp) : dp_(std::move(dp)) {}
  int rank() const override { return dp_->rank(); }
  int world_size() const override { return dp_->world_size(); }
  void synchronize_evaluation(feasible::SyncedEvaluation& e) override {
    const auto t0 = Clock::now();
    dp_->synchronize_evaluation(e);
    evaluation_s += since(t0);
  }
  void synchronize_gradients(std::vector<at::Tensor>& p) override {
    const auto t0 = Clock::now();
    dp_->synchronize_gradients(p);
    gradient_s += since(t0);
  }
  void share_from_root(std::vector<at::Tensor>& t) override { dp_->share_from_root(t); }
  double evaluation_s = 0, gradient_s = 0;

 private:
  std::shared_ptr<DataParallel> dp_;
};

struct Measured {
  double step_s = 0, evaluation_s = 0, gradient_s = 0;
  double constraint_bytes = 0, gradient_bytes = 0;  // per step
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
  Measured m;
  Clock::time_point t0;
  for (int s = 0; s < cfg.warmup + cfg.steps; ++s) {
    if (s == cfg.warmup) {
      dp->barrier();
      t0 = Clock::now();
      timed->evaluation_s = timed->gradient_s = 0;
      m.constraint_bytes = static_cast<double>(dp->traffic().constraint_bytes);
      m.gradient_bytes = static_cast<double>(dp->traffic().gradient_bytes);
    }
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
  }
  dp->barrier();
  const double n = cfg.steps;
  m.step_s = since(t0) / n;
  m.evaluation_s = timed->evaluation_s / n;
  m.gradient_s = timed->gradient_s / n;
  m.constraint_bytes =
      (static_cast<double>(dp->traffic().constraint_bytes) - m.constraint_bytes) / n;
  m.gradient_bytes = (static_cast<double>(dp->traffic().gradient_bytes) - m.gradient_bytes) / n;
  return m;
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
          std::ofstream(result) << m.step_s << " " << m.evaluation_s << " " << m.gradient_s << " "
                                << m.constraint_bytes << " " << m.gradient_bytes;
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
  ok = ok && static_cast<bool>(in >> out.step_s >> out.evaluation_s >> out.gradient_s >>
                               out.constraint_bytes >> out.gradient_bytes);
  std::remove(result.c_str());
  std::remove(store.c_str());
  ::rmdir(dir);
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  Config cfg;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--steps")
      cfg.steps = feasible_bench::int_flag(i, argc, argv);
    else if (a == "--warmup")
      cfg.warmup = feasible_bench::int_flag(i, argc, argv);
    else if (a == "--examples")
      cfg.examples = feasible_bench::int_flag(i, argc, argv);
    else if (a == "--threads")
      cfg.threads = feasible_bench::int_flag(i, argc, argv);
    else if (a == "--max-world")
      cfg.max_world = feasible_bench::int_flag(i, argc, argv);
    else if (a == "--data" && i + 1 < argc)
      cfg.dir = argv[++i];
    else {
      std::fprintf(stderr, "unknown flag %s\n", argv[i]);
      return 2;
    }
  }
  std::printf("%-6s %12s %10s %14s %14s %12s %14s %14s\n", "ranks", "samples/s", "step ms",
              "constraint ms", "constraint %", "gradient ms", "constraint B", "gradient B");
  for (int world = 1; world <= cfg.max_world; ++world) {
    Measured m;
    if (!measure(cfg, world, m)) {
      std::fprintf(stderr, "the run with %d rank(s) failed\n", world);
      return 1;
    }
    std::printf("%-6d %12.0f %10.2f %14.3f %13.2f%% %12.2f %14.0f %14.0f\n", world,
                256.0 / m.step_s, 1e3 * m.step_s, 1e3 * m.evaluation_s,
                100.0 * m.evaluation_s / m.step_s, 1e3 * m.gradient_s, m.constraint_bytes,
                m.gradient_bytes);
  }
  return 0;
}
