// Data-parallel training over c10d's Gloo (include/feasible/distributed.h), on loopback, with
// worker processes forked by the test and a c10d::FileStore rendezvous in a temporary directory:
//  - 2 and 4 ranks sharing a full batch follow the single-process run (parameters, multipliers);
//  - the whole state stays bit-identical across ranks with unequal shards: dense, indexed with
//    disjoint and overlapping index sets, NuPI and Adam as dual optimizers (check_every = 1
//    compares checksums at every evaluation; the test compares the saved multipliers too);
//  - a rank killed (or hung) mid-run makes the others throw, naming the timeout, within it;
//  - a checkpoint written by rank 0 at world size 2 resumes at world sizes 1 and 4;
//  - the overlapped exchange: the call order (begin, backward, finish, gradients where the
//    scheme allows), a NaN on this or another rank (all skip or throw alike, gradients cleared),
//    the same bits as the blocking exchange;
//  - misuse: options, sample counts, constraints observed on some ranks only, the environment,
//    finish_evaluation without begin_evaluation.
#include "feasible/distributed.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "feasible/feasible.h"
#include "test_util.h"

namespace {

using feasible::distributed::DataParallel;
using feasible::distributed::Options;
using feasible_test::error_of;

// ------------------------------------------------------------ processes

using feasible_test::temp_dir;
using feasible_test::temp_path;
const auto* const kRemoveTempDir =
    ::testing::AddGlobalTestEnvironment(new feasible_test::RemoveTempDir);

// How one worker process ended.
struct Outcome {
  int exit_code = -1;  // -1: killed by the test (past the deadline) or by a signal
  std::string error;   // the c10::Error it threw
  double seconds = 0;  // from the start until it ended
};

using Worker = std::function<void(int rank, int world, const std::string& store)>;

// Forks `world` processes running `worker` (a fresh FileStore each call). Waits until every
// rank not in `expendable` has ended, or `deadline_s`; kills the rest.
std::vector<Outcome> run_ranks(int world, const Worker& worker, double deadline_s = 60,
                               const std::set<int>& expendable = {}) {
  static int calls = 0;
  const std::string tag = "run" + std::to_string(calls++);
  const std::string store = temp_path(tag + ".store");
  std::vector<pid_t> pids(world);
  const auto start = std::chrono::steady_clock::now();
  for (int r = 0; r < world; ++r) {
    pids[r] = ::fork();
    if (pids[r] == 0) {
      int code = 0;
      std::string error;
      try {
        worker(r, world, store);
      } catch (const c10::Error& e) {
        error = e.what_without_backtrace();
        code = 3;
      } catch (const std::exception& e) {
        error = e.what();
        code = 4;
      }
      std::ofstream(temp_path(tag + ".err" + std::to_string(r))) << error;
      std::_Exit(code);  // no gtest or static destructors in the child
    }
  }
  std::vector<Outcome> out(world);
  std::vector<bool> done(world, false);
  for (;;) {
    bool waiting = false;
    for (int r = 0; r < world; ++r) {
      if (done[r]) continue;
      int status = 0;
      if (::waitpid(pids[r], &status, WNOHANG) == pids[r]) {
        done[r] = true;
        out[r].exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        out[r].seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      } else if (!expendable.count(r)) {
        waiting = true;
      }
    }
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (!waiting || elapsed > deadline_s) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  for (int r = 0; r < world; ++r) {
    if (!done[r]) {
      ::kill(pids[r], SIGKILL);
      ::waitpid(pids[r], nullptr, 0);
    }
    std::ifstream in(temp_path(tag + ".err" + std::to_string(r)));
    std::stringstream ss;
    ss << in.rdbuf();
    out[r].error = ss.str();
  }
  return out;
}

void expect_all_succeeded(const std::vector<Outcome>& out) {
  for (size_t r = 0; r < out.size(); ++r) {
    EXPECT_EQ(out[r].exit_code, 0) << "rank " << r << ": " << out[r].error;
  }
}

// ------------------------------------------------------------ the problem

constexpr int64_t kN = 48;  // full batch; divisible by 1, 2, 4 and by 3 (groups) per shard
constexpr int64_t kDim = 5;

enum class Dual { kSGD, kNuPI, kAdam };

// A linear regression on fixed data with two constraints: dense "moments" (size 2) with
// mean(pred) <= -0.2 and mean(pred^2) <= 0.3, and indexed "groups" (size 6): per group k
// observed in the batch, mean of pred over its samples <= -0.4. Every value is a mean over the
// batch, so a rank's values weighted by its share of the samples add up to the full batch's.
struct Trainer {
  torch::nn::Linear model{nullptr};
  feasible::Problem problem;
  feasible::Constraint moments, groups;
  std::shared_ptr<feasible::SimultaneousOptimizer> opt;
  torch::Tensor x, y;

  Trainer(Dual dual, torch::ScalarType dtype,
          feasible::ConstrainedOptimizerOptions options = feasible::ConstrainedOptimizerOptions()) {
    torch::manual_seed(11);
    x = torch::randn({kN, kDim}, torch::dtype(dtype));
    y = x.sum(1) * 0.5 + torch::sin(x.select(1, 0));
    model = torch::nn::Linear(kDim, 1);
    model->to(dtype);
    moments = problem.add_constraint(
        "moments",
        feasible::ConstraintOptions(feasible::ConstraintKind::kInequality, 2).dtype(dtype));
    groups = problem.add_constraint(
        "groups", feasible::ConstraintOptions(feasible::ConstraintKind::kInequality, 6)
                      .multiplier(feasible::MultiplierKind::kIndexed)
                      .dtype(dtype));
    auto primal =
        std::make_shared<torch::optim::SGD>(model->parameters(), torch::optim::SGDOptions(0.05));
    auto duals = problem.dual_parameters();
    std::shared_ptr<torch::optim::Optimizer> d;
    if (dual == Dual::kSGD)
      d = std::make_shared<torch::optim::SGD>(duals, torch::optim::SGDOptions(0.2));
    if (dual == Dual::kNuPI)
      d = std::make_shared<feasible::optim::NuPI>(duals, feasible::optim::NuPIOptions(0.2));
    if (dual == Dual::kAdam)
      d = std::make_shared<torch::optim::Adam>(duals, torch::optim::AdamOptions(0.05));
    opt = std::make_shared<feasible::SimultaneousOptimizer>(
        problem, std::vector<std::shared_ptr<torch::optim::Optimizer>>{primal}, d, options);
  }

  // One step on samples `rows` whose group ids are `group`.
  // `poison`: the first moment's violation becomes NaN.
  feasible::StepResult step(const torch::Tensor& rows, const torch::Tensor& group,
                            bool poison = false) {
    return opt->step([&] {
      const torch::Tensor pred = model->forward(x.index_select(0, rows)).squeeze(1);
      feasible::ProblemState st(torch::mse_loss(pred, y.index_select(0, rows)));
      st.observe(moments, feasible::ConstraintState(torch::stack(
                              {pred.mean() + (poison ? NAN : 0.2), (pred * pred).mean() - 0.3})));
      std::vector<int64_t> seen;
      std::vector<torch::Tensor> means;
      for (int64_t k = 0; k < 6; ++k) {
        const torch::Tensor in = group == k;
        if (in.sum().item<int64_t>() == 0) continue;
        seen.push_back(k);
        means.push_back(pred.masked_select(in).mean() + 0.4);
      }
      feasible::ConstraintState cs(means.empty() ? pred.narrow(0, 0, 0) : torch::stack(means));
      cs.indices(torch::tensor(seen, torch::kInt64));
      st.observe(groups, cs);
      return st;
    });
  }

  std::vector<torch::Tensor> state() const {
    return {model->weight.detach().clone(), model->bias.detach().clone(),
            moments.multiplier()->values().clone(), groups.multiplier()->values().clone()};
  }
};

// Rank r's contiguous shard of the full batch, groups i % 3.
std::pair<torch::Tensor, torch::Tensor> shard(int rank, int world) {
  const int64_t n = kN / world;
  const torch::Tensor rows = torch::arange(rank * n, (rank + 1) * n, torch::kInt64);
  return {rows, torch::remainder(rows, 3)};
}

std::vector<torch::Tensor> single_process(int steps) {
  Trainer s(Dual::kSGD, torch::kFloat64);
  const auto sh = shard(0, 1);
  for (int t = 0; t < steps; ++t) s.step(sh.first, sh.second);
  return s.state();
}

void save_state(const std::vector<torch::Tensor>& st, const std::string& path) {
  torch::save(st, path);
}

std::vector<torch::Tensor> load_state(const std::string& path) {
  std::vector<torch::Tensor> st;
  torch::load(st, path);
  return st;
}

// ------------------------------------------------------------ agreement with one process

// The per-step reduction order differs (shard means combined in rank order in double, the
// gradient all-reduce's sum) by O(1e-16) relative in float64 each step; over 30 steps of a
// stable iteration the gap stays far below 1e-9.
constexpr double kOrderTolerance = 1e-9;

void expect_near_state(const std::vector<torch::Tensor>& got,
                       const std::vector<torch::Tensor>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_TRUE(torch::allclose(got[i], want[i], 0.0, kOrderTolerance))
        << what << ", tensor " << i << ": " << got[i] << " vs " << want[i];
  }
}

void matches_single_process(int world) {
  constexpr int kSteps = 30;
  const auto want = single_process(kSteps);
  // The constraints are active: the multipliers moved away from 0.
  ASSERT_GT(want[2].abs().max().item<double>(), 1e-3);
  ASSERT_GT(want[3].abs().max().item<double>(), 1e-3);
  const std::string prefix = temp_path("match" + std::to_string(world));
  const auto out = run_ranks(world, [&](int rank, int w, const std::string& store) {
    auto dp = DataParallel::from_file(store, rank, w, Options().timeout_ms(20000));
    Trainer s(Dual::kSGD, torch::kFloat64);
    dp->attach(*s.opt);
    const auto sh = shard(rank, w);
    dp->set_samples(sh.first.numel());
    for (int t = 0; t < kSteps; ++t) s.step(sh.first, sh.second);
    save_state(s.state(), prefix + "_r" + std::to_string(rank) + ".pt");
  });
  expect_all_succeeded(out);
  for (int r = 0; r < world; ++r) {
    expect_near_state(load_state(prefix + "_r" + std::to_string(r) + ".pt"), want,
                      "rank " + std::to_string(r));
  }
}

TEST(Distributed, TwoRanksMatchTheSingleProcessRun) { matches_single_process(2); }
TEST(Distributed, FourRanksMatchTheSingleProcessRun) { matches_single_process(4); }

// ------------------------------------------------------------ bit-identical state

enum class Groups { kDisjoint, kOverlapping };

// Forwards to a DataParallel but keeps the Synchronizer's default begin_evaluation (the whole
// exchange, blocking, before the backward pass) and finish_evaluation (nothing).
class Blocking : public feasible::Synchronizer {
 public:
  explicit Blocking(std::shared_ptr<DataParallel> dp) : dp_(std::move(dp)) {}
  int rank() const override { return dp_->rank(); }
  int world_size() const override { return dp_->world_size(); }
  void synchronize_evaluation(feasible::SyncedEvaluation& e) override {
    dp_->synchronize_evaluation(e);
  }
  void synchronize_gradients(std::vector<at::Tensor>& p) override { dp_->synchronize_gradients(p); }
  void share_from_root(std::vector<at::Tensor>& t) override { dp_->share_from_root(t); }

 private:
  std::shared_ptr<DataParallel> dp_;
};

// Unequal shards (rank r: 9 + 5 r samples from its own part of the data) whose groups are, for
// kDisjoint, {2r, 2r + 1} and, for kOverlapping, {r, r + 1, r + 2}; float32, check_every = 1.
// `blocking`: the exchange through Blocking instead of the DataParallel's overlapped one;
// `carried`: Options::combine_with_gradients. Expects every rank's final state to be the same
// bits; returns rank 0's.
std::vector<torch::Tensor> run_bits(Dual dual, Groups groups, bool blocking = false,
                                    bool carried = true, int steps = 15) {
  constexpr int kWorld = 3;
  const std::string prefix = temp_path(
      "bits" + std::to_string(static_cast<int>(dual)) + std::to_string(static_cast<int>(groups)) +
      (blocking ? "b" : "o") + (carried ? "c" : "s") + std::to_string(steps));
  const auto out = run_ranks(kWorld, [&](int rank, int w, const std::string& store) {
    const auto options = Options().timeout_ms(20000).check_every(1).combine_with_gradients(carried);
    auto dp = DataParallel::from_file(store, rank, w, options);
    Trainer s(dual, torch::kFloat32);
    dp->attach(*s.opt);
    if (blocking) s.opt->set_synchronizer(std::make_shared<Blocking>(dp));
    const int64_t n = 9 + 5 * rank;
    const torch::Tensor rows = torch::arange(rank * 12, rank * 12 + n, torch::kInt64);
    const std::vector<int64_t> allowed = groups == Groups::kDisjoint
                                             ? std::vector<int64_t>{2 * rank, 2 * rank + 1}
                                             : std::vector<int64_t>{rank, rank + 1, rank + 2};
    const torch::Tensor group = torch::tensor(allowed).index_select(
        0, torch::remainder(torch::arange(n), (int64_t)allowed.size()));
    dp->set_samples(n);
    for (int t = 0; t < steps; ++t) s.step(rows, group);
    dp->check_identical();
    save_state(s.state(), prefix + "_r" + std::to_string(rank) + ".pt");
  });
  expect_all_succeeded(out);
  const auto first = load_state(prefix + "_r0.pt");
  // The multipliers moved (a state that never changes would be identical trivially).
  EXPECT_GT(first[2].abs().max().item<double>(), 1e-4);
  EXPECT_GT(first[3].abs().max().item<double>(), 1e-4);
  for (int r = 1; r < kWorld; ++r) {
    const auto other = load_state(prefix + "_r" + std::to_string(r) + ".pt");
    for (size_t i = 0; i < first.size(); ++i) {
      EXPECT_TRUE(torch::equal(first[i], other[i])) << "rank " << r << ", tensor " << i;
    }
  }
  return first;
}

void bit_identical(Dual dual, Groups groups) { run_bits(dual, groups); }

TEST(Distributed, BitIdenticalDenseAndDisjointIndexedWithSGD) {
  bit_identical(Dual::kSGD, Groups::kDisjoint);
}
TEST(Distributed, BitIdenticalOverlappingIndexedWithSGD) {
  bit_identical(Dual::kSGD, Groups::kOverlapping);
}
TEST(Distributed, BitIdenticalWithNuPI) { bit_identical(Dual::kNuPI, Groups::kOverlapping); }
TEST(Distributed, BitIdenticalWithAdam) { bit_identical(Dual::kAdam, Groups::kDisjoint); }

// make_default_optimizer calibrates its penalties from the loss's and the violations' gradients,
// which differ between shards: every rank must use the same calibration (rank 0's). A
// per-example constraint (indexed, the per-visit rule) takes its up/down directions from the
// exchanged violations of every rank's examples, so its multipliers agree too.
TEST(Distributed, BitIdenticalWithTheDefaultOptimizer) {
  const auto out = run_ranks(2, [&](int rank, int w, const std::string& store) {
    auto dp = DataParallel::from_file(store, rank, w, Options().timeout_ms(20000).check_every(1));
    Trainer s(Dual::kSGD, torch::kFloat32);  // for its data and model
    feasible::Problem problem;
    const auto moments = problem.add_constraint(
        "moments", feasible::ConstraintOptions(feasible::ConstraintKind::kInequality, 2));
    const auto each = problem.add_constraint(
        "each", feasible::ConstraintOptions(feasible::ConstraintKind::kInequality, kN)
                    .multiplier(feasible::MultiplierKind::kIndexed));
    auto primal =
        std::make_shared<torch::optim::SGD>(s.model->parameters(), torch::optim::SGDOptions(0.05));
    auto opt = feasible::make_default_optimizer(
        problem, std::vector<std::shared_ptr<torch::optim::Optimizer>>{primal});
    dp->attach(*opt);
    const auto sh = shard(rank, w);
    for (int t = 0; t < 12; ++t) {
      opt->step([&] {
        const torch::Tensor pred = s.model->forward(s.x.index_select(0, sh.first)).squeeze(1);
        feasible::ProblemState st(torch::mse_loss(pred, s.y.index_select(0, sh.first)));
        st.observe(moments, feasible::ConstraintState(
                                torch::stack({pred.mean() + 0.2, (pred * pred).mean() - 0.3})));
        const torch::Tensor err = (pred - s.y.index_select(0, sh.first)).pow(2);
        st.observe(each, feasible::ConstraintState(err - 0.05).indices(sh.first));
        return st;
      });
    }
    dp->check_identical();
    TORCH_CHECK(problem.multiplier_values("moments").abs().max().item<double>() > 1e-4,
                "the multipliers did not move");
    TORCH_CHECK(problem.multiplier_values("each").max().item<double>() > 0,
                "the per-example multipliers did not move");
  });
  expect_all_succeeded(out);
}

// The checksum comparison names the first tensor that differs.
TEST(Distributed, CheckIdenticalNamesTheFirstDifferingTensor) {
  const auto out = run_ranks(2, [&](int rank, int w, const std::string& store) {
    auto dp = DataParallel::from_file(store, rank, w, Options().timeout_ms(20000));
    Trainer s(Dual::kSGD, torch::kFloat32);
    dp->attach(*s.opt);
    if (rank == 1) {
      torch::NoGradGuard no_grad;
      s.groups.multiplier()->parameters()[0].add_(1.0);
    }
    dp->check_identical();
  });
  for (int r = 0; r < 2; ++r) {
    EXPECT_EQ(out[r].exit_code, 3);
    EXPECT_HAS(out[r].error, "ranks 0 and 1 differ first in the multiplier of 'groups'");
  }
}

// A NaN on one rank: every rank skips the same step (kSkipStep) and the state stays identical;
// the other ranks' reason names the rank.
TEST(Distributed, ANonFiniteValueOnOneRankSkipsTheStepEverywhere) {
  const std::string prefix = temp_path("skip");
  const auto out = run_ranks(2, [&](int rank, int w, const std::string& store) {
    auto dp = DataParallel::from_file(store, rank, w, Options().timeout_ms(20000));
    Trainer s(
        Dual::kSGD, torch::kFloat32,
        feasible::ConstrainedOptimizerOptions().non_finite(feasible::NonFinitePolicy::kSkipStep));
    dp->attach(*s.opt);
    const auto sh = shard(rank, w);
    std::string reasons;
    for (int t = 0; t < 6; ++t) {
      const auto r = s.step(sh.first, sh.second, rank == 1 && t == 3);
      TORCH_CHECK(r.skipped == (t == 3), "rank ", rank, ", step ", t, ": skipped ", r.skipped);
      if (r.skipped) reasons = r.skip_reason;
    }
    dp->check_identical();
    std::ofstream(prefix + std::to_string(rank)) << reasons;
  });
  expect_all_succeeded(out);
  std::ifstream a(prefix + "0"), b(prefix + "1");
  std::string ra((std::istreambuf_iterator<char>(a)), {}),
      rb((std::istreambuf_iterator<char>(b)), {});
  EXPECT_HAS(ra, "the violation of constraint 'moments' has a NaN or Inf entry on rank 1");
  EXPECT_HAS(rb, "the violation of constraint 'moments' has a NaN or Inf entry");
  EXPECT_EQ(rb.find("on rank"), std::string::npos) << rb;
}

// ------------------------------------------------------------ a rank that dies or hangs

void stops_within_timeout(bool hang) {
  constexpr int kWorld = 3;
  constexpr int64_t kTimeoutMs = 3000;
  const auto out = run_ranks(kWorld,
                             [&](int rank, int w, const std::string& store) {
                               auto dp = DataParallel::from_file(store, rank, w,
                                                                 Options().timeout_ms(kTimeoutMs));
                               Trainer s(Dual::kSGD, torch::kFloat32);
                               dp->attach(*s.opt);
                               const auto sh = shard(rank, 4);
                               for (int t = 0; t < 1000; ++t) {
                                 if (rank == 2 && t == 5) {
                                   if (hang) std::this_thread::sleep_for(std::chrono::seconds(120));
                                   ::raise(SIGKILL);
                                 }
                                 s.step(sh.first, sh.second);
                               }
                             },
                             /*deadline_s=*/40, /*expendable=*/{2});
  for (int r = 0; r < 2; ++r) {
    EXPECT_EQ(out[r].exit_code, 3) << out[r].error;
    EXPECT_HAS(out[r].error, "within the timeout of 3000 ms");
    EXPECT_HAS(out[r].error, "rank " + std::to_string(r) + " of 3");
    // Within the timeout, plus start-up (fork, rendezvous, 5 steps) and a wide margin for two
    // cores busy with a parallel test run: 3 s + 30 s (a hang would run to the 40 s deadline).
    EXPECT_LT(out[r].seconds, kTimeoutMs / 1000.0 + 30.0);
  }
}

TEST(Distributed, AKilledRankStopsTheOthersWithinTheTimeout) { stops_within_timeout(false); }
TEST(Distributed, AHungRankStopsTheOthersWithinTheTimeout) { stops_within_timeout(true); }

// ------------------------------------------------------------ checkpoints across world sizes

void resume_at(int world, const std::string& checkpoint, int steps, const std::string& prefix) {
  const auto out = run_ranks(world, [&](int rank, int w, const std::string& store) {
    auto dp = DataParallel::from_file(store, rank, w, Options().timeout_ms(20000));
    Trainer s(Dual::kSGD, torch::kFloat64);
    feasible::load(checkpoint,
                   feasible::CheckpointContents().module("model", *s.model).optimizer(*s.opt));
    dp->attach(*s.opt);
    const auto sh = shard(rank, w);
    dp->set_samples(sh.first.numel());
    for (int t = 0; t < steps; ++t) s.step(sh.first, sh.second);
    if (rank == 0) save_state(s.state(), prefix + ".pt");
  });
  expect_all_succeeded(out);
}

TEST(Distributed, ACheckpointFromTwoRanksResumesAtOneAndFour) {
  constexpr int kHalf = 15;
  const auto want = single_process(2 * kHalf);
  const std::string ckpt = temp_path("two_ranks.ckpt");
  const auto out = run_ranks(2, [&](int rank, int w, const std::string& store) {
    auto dp = DataParallel::from_file(store, rank, w, Options().timeout_ms(20000));
    Trainer s(Dual::kSGD, torch::kFloat64);
    dp->attach(*s.opt);
    const auto sh = shard(rank, w);
    dp->set_samples(sh.first.numel());
    for (int t = 0; t < kHalf; ++t) s.step(sh.first, sh.second);
    if (rank == 0) {
      feasible::save(ckpt,
                     feasible::CheckpointContents().module("model", *s.model).optimizer(*s.opt));
    }
    dp->barrier();
  });
  expect_all_succeeded(out);
  for (int world : {1, 4}) {
    const std::string prefix = temp_path("resumed" + std::to_string(world));
    resume_at(world, ckpt, kHalf, prefix);
    expect_near_state(load_state(prefix + ".pt"), want, "resumed at " + std::to_string(world));
  }
}

// ------------------------------------------------------------ rates

// Rank 0 sees scores {2, -1, 1} (2 of 3 positive), rank 1 {1, -2, -1, -3, 3} (2 of 5): pooled
// 4 of 8 = 0.5 exactly; the pooled surrogate is sum_r mean_r(sigmoid) * total_r / 8 = the mean
// of sigmoid over all 8 scores. Running rates fed the pooled batch agree bit for bit.
TEST(Distributed, PooledRatesAndRunningRatesAgreeAcrossRanks) {
  const std::vector<std::vector<double>> scores = {{2, -1, 1}, {1, -2, -1, -3, 3}};
  const std::string prefix = temp_path("rates");
  const auto out = run_ranks(2, [&](int rank, int w, const std::string& store) {
    auto dp = DataParallel::from_file(store, rank, w, Options().timeout_ms(20000));
    const torch::Tensor x = torch::tensor(scores[rank], torch::kFloat64);
    feasible::rates::RunningRate running(0.9);
    feasible::rates::Rate pooled;
    for (int t = 0; t < 3; ++t) {
      pooled = dp->all_reduce(feasible::rates::positive_rate(x));
      running.update(pooled);
    }
    save_state({pooled.hits, pooled.total, pooled.surrogate.detach(), running.current().value(),
                running.current().surrogate},
               prefix + "_r" + std::to_string(rank) + ".pt");
  });
  expect_all_succeeded(out);
  const auto a = load_state(prefix + "_r0.pt");
  const auto b = load_state(prefix + "_r1.pt");
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], b[i])) << "tensor " << i;
  EXPECT_EQ(a[0].item<double>(), 4.0);
  EXPECT_EQ(a[1].item<double>(), 8.0);
  // Equal batches every step: the running rate's value is the batch's, 4 / 8.
  EXPECT_DOUBLE_EQ(a[3].item<double>(), 0.5);
  const torch::Tensor all = torch::tensor({2.0, -1.0, 1.0, 1.0, -2.0, -1.0, -3.0, 3.0});
  // Sums of 8 terms in another order: a few ulps of 1.
  EXPECT_NEAR(a[2].item<double>(), torch::sigmoid(all).mean().item<double>(), 1e-14);
}

// The audit of pooled rates: rank 0's batches have 10 of 40 and 30 of 60 positive scores, rank
// 1's 20 of 50 and 12 of 30; pooled, 72 of 180. at_most(rate, 0.6) gives the estimate
// 72/180 - 0.6 = -0.2 on 180 examples, and every rank's report is the same, text for text.
TEST(Distributed, TheAuditOfPooledRatesIsTheSameOnEveryRank) {
  // {hits, size} of each batch; a batch's first `hits` scores are positive.
  const std::vector<std::vector<std::pair<int, int>>> batches = {{{10, 40}, {30, 60}},
                                                                 {{20, 50}, {12, 30}}};
  const auto scores = [](std::pair<int, int> b) {
    std::vector<double> v(b.second, -1.0);
    for (int k = 0; k < b.first; ++k) v[k] = 1.0;
    return torch::tensor(v, torch::kFloat64);
  };
  const std::string prefix = temp_path("audit");
  const auto out = run_ranks(2, [&](int rank, int w, const std::string& store) {
    auto dp = DataParallel::from_file(store, rank, w, Options().timeout_ms(20000));
    feasible::Problem problem;
    const auto c = problem.add_constraint("positive share");
    feasible::Auditor auditor(problem);
    for (const auto& b : batches[rank]) {
      const auto rate = dp->all_reduce(feasible::rates::positive_rate(scores(b)));
      auditor.observe(c, feasible::rates::at_most(rate, 0.6));
    }
    const auto report = auditor.report();
    std::ofstream(prefix + std::to_string(rank)) << report.to_json();
    TORCH_CHECK(report.entries.size() == 1 && report.entries[0].examples == 180,
                "examples: ", report.entries.empty() ? -1 : report.entries[0].examples);
    TORCH_CHECK(std::abs(report.entries[0].estimate - (72.0 / 180.0 - 0.6)) < 1e-12,
                "estimate: ", report.entries[0].estimate);
  });
  expect_all_succeeded(out);
  std::ifstream a(prefix + "0"), b(prefix + "1");
  const std::string ja((std::istreambuf_iterator<char>(a)), {});
  const std::string jb((std::istreambuf_iterator<char>(b)), {});
  EXPECT_FALSE(ja.empty());
  EXPECT_EQ(ja, jb);
}

// ------------------------------------------------------------ misuse

TEST(Distributed, OptionsAreValidated) {
  EXPECT_HAS(error_of([] { Options().timeout_ms(0).validate(); }),
             "distributed::Options.timeout_ms must be >= 1, got 0");
  EXPECT_HAS(error_of([] { Options().check_every(-2).validate(); }),
             "distributed::Options.check_every must be >= 0, got -2");
  EXPECT_HAS(error_of([] { Options().bucket_bytes(0).validate(); }),
             "distributed::Options.bucket_bytes must be >= 1, got 0");
  EXPECT_HAS(error_of([] { DataParallel::from_file(temp_path("x"), 2, 2); }),
             "DataParallel::from_file: rank must be in [0, 2), got 2");
}

TEST(Distributed, SampleCountsAndAttachAreChecked) {
  const auto out = run_ranks(1, [&](int rank, int w, const std::string& store) {
    auto dp = DataParallel::from_file(store, rank, w);
    const std::string a = error_of([&] { dp->set_samples(-1); });
    const std::string b = error_of([&] { dp->check_identical(); });
    Trainer s(Dual::kSGD, torch::kFloat32);
    dp->attach(*s.opt);
    dp->set_samples(0);
    const auto sh = shard(0, 1);
    const std::string c = error_of([&] { s.step(sh.first, sh.second); });
    TORCH_CHECK(a.find("DataParallel::set_samples: n must be >= 0, got -1") != std::string::npos,
                a);
    TORCH_CHECK(b.find("no optimizer is attached") != std::string::npos, b);
    TORCH_CHECK(c.find("every rank set 0 samples") != std::string::npos, c);
  });
  expect_all_succeeded(out);
}

TEST(Distributed, AConstraintObservedOnSomeRanksOnlyIsRefusedEverywhere) {
  const auto out = run_ranks(2, [&](int rank, int w, const std::string& store) {
    auto dp = DataParallel::from_file(store, rank, w, Options().timeout_ms(20000));
    Trainer s(Dual::kSGD, torch::kFloat32);
    dp->attach(*s.opt);
    s.opt->step([&] {
      const torch::Tensor pred = s.model->forward(s.x).squeeze(1);
      feasible::ProblemState st(torch::mse_loss(pred, s.y));
      if (rank == 0) {
        st.observe(s.moments, feasible::ConstraintState(
                                  torch::stack({pred.mean() + 0.2, (pred * pred).mean() - 0.3})));
      }
      return st;
    });
  });
  for (int r = 0; r < 2; ++r) {
    EXPECT_EQ(out[r].exit_code, 3);
    EXPECT_HAS(out[r].error, "constraint 'moments' was observed on rank 0 but not on rank 1");
  }
}

TEST(Distributed, TheEnvironmentMustNameTheGroup) {
  const auto out = run_ranks(1, [&](int, int, const std::string&) {
    ::unsetenv("MASTER_ADDR");
    ::setenv("RANK", "0", 1);
    ::setenv("WORLD_SIZE", "x", 1);
    const std::string a = error_of([] { DataParallel::from_environment(); });
    TORCH_CHECK(a.find("WORLD_SIZE must be an integer in [1, ") != std::string::npos, a);
    ::setenv("WORLD_SIZE", "2", 1);
    const std::string b = error_of([] { DataParallel::from_environment(); });
    TORCH_CHECK(b.find("MASTER_ADDR is not set") != std::string::npos, b);
  });
  expect_all_succeeded(out);
}

// ------------------------------------------------------------ the overlapped exchange

// Records the engine's calls in order, as one process (the values pass through unchanged);
// `other_bad`: finish_evaluation reports a NaN in the loss on (pretended) rank 1.
class Recorder : public feasible::Synchronizer {
 public:
  std::vector<std::string> events;
  bool other_bad = false;
  int rank() const override { return 0; }
  int world_size() const override { return 2; }
  void synchronize_evaluation(feasible::SyncedEvaluation&) override { events.push_back("sync"); }
  void begin_evaluation(feasible::SyncedEvaluation&) override { events.push_back("begin"); }
  void finish_evaluation(feasible::SyncedEvaluation& e) override {
    events.push_back("finish");
    e.bad_rank = e.first_bad >= 0 ? 0 : -1;
    if (other_bad && e.first_bad < 0) {
      e.first_bad = 0;
      e.bad_rank = 1;
    }
  }
  void synchronize_gradients(std::vector<at::Tensor>&) override { events.push_back("gradients"); }
  void share_from_root(std::vector<at::Tensor>&) override {}
};

std::string joined(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& e : v) out += (out.empty() ? "" : " ") + e;
  return out;
}

// One step of a one-constraint problem; a hook on the prediction records the backward pass.
struct Tiny {
  torch::Tensor w = torch::full({3}, 0.5).requires_grad_(true);
  feasible::Problem problem;
  feasible::Constraint c = problem.add_constraint("c");
  std::shared_ptr<Recorder> rec = std::make_shared<Recorder>();

  feasible::StepResult step(feasible::ConstrainedOptimizer& opt, bool poison) {
    rec->events.clear();
    return opt.step([&] {
      torch::Tensor pred = w * 2.0;
      pred.register_hook([this](torch::Tensor) { rec->events.push_back("backward"); });
      feasible::ProblemState st((pred * pred).sum());
      st.observe(c, feasible::ConstraintState(pred.sum() - (poison ? NAN : 1.0)));
      return st;
    });
  }
  std::vector<std::shared_ptr<torch::optim::Optimizer>> primal() {
    return {std::make_shared<torch::optim::SGD>(std::vector<torch::Tensor>{w},
                                                torch::optim::SGDOptions(0.1))};
  }
  std::shared_ptr<torch::optim::Optimizer> dual() {
    return std::make_shared<torch::optim::SGD>(problem.dual_parameters(),
                                               torch::optim::SGDOptions(0.1));
  }
  // No rank computed gradients that survive a skipped step: zero (LibTorch 1.x's zero_grad)
  // or undefined (2.x's).
  bool gradient_cleared() const {
    return !w.grad().defined() || w.grad().abs().max().item<double>() == 0.0;
  }
};

feasible::ConstrainedOptimizerOptions skipping() {
  return feasible::ConstrainedOptimizerOptions().non_finite(feasible::NonFinitePolicy::kSkipStep);
}

// SimultaneousOptimizer begins the exchange, runs the backward pass, then finishes the exchange,
// before the gradients' exchange. AlternatingDualPrimalOptimizer's dual step needs the combined
// values before its backward pass: there the exchange finishes first.
TEST(Distributed, TheExchangeOverlapsTheBackwardPassWhereTheSchemeAllows) {
  Tiny t;
  feasible::SimultaneousOptimizer sim(t.problem, t.primal(), t.dual(), skipping());
  sim.set_synchronizer(t.rec);
  EXPECT_FALSE(t.step(sim, false).skipped);
  EXPECT_EQ(joined(t.rec->events), "begin backward finish gradients");
  EXPECT_FALSE(t.gradient_cleared());  // the backward pass left d(4 sum w^2 + ...)/dw != 0

  Tiny u;
  feasible::AlternatingDualPrimalOptimizer alt(u.problem, u.primal(), u.dual(), skipping());
  alt.set_synchronizer(u.rec);
  EXPECT_FALSE(u.step(alt, false).skipped);
  EXPECT_EQ(joined(u.rec->events), "begin finish backward gradients");
}

// A NaN on this rank: no backward pass here, the exchange still finishes (the other ranks wait
// for it), no gradient exchange, the step skipped and the gradients cleared. A NaN on another
// rank: this rank's backward pass ran, yet it skips alike, naming the rank, gradients cleared.
TEST(Distributed, ANonFiniteValueWithTheOverlappedExchangeSkipsAlike) {
  Tiny t;
  feasible::SimultaneousOptimizer sim(t.problem, t.primal(), t.dual(), skipping());
  sim.set_synchronizer(t.rec);
  ASSERT_FALSE(t.step(sim, false).skipped);
  const torch::Tensor w = t.w.detach().clone();
  const auto own = t.step(sim, true);
  EXPECT_TRUE(own.skipped);
  EXPECT_EQ(joined(t.rec->events), "begin finish");
  EXPECT_HAS(own.skip_reason, "the violation of constraint 'c' has a NaN or Inf entry");
  EXPECT_EQ(own.skip_reason.find("on rank"), std::string::npos) << own.skip_reason;
  EXPECT_TRUE(t.gradient_cleared());
  EXPECT_TRUE(torch::equal(t.w.detach(), w));  // skipped: the parameters did not move

  t.rec->other_bad = true;
  const auto other = t.step(sim, false);
  EXPECT_TRUE(other.skipped);
  EXPECT_EQ(joined(t.rec->events), "begin backward finish");
  EXPECT_HAS(other.skip_reason, "the loss is NaN or Inf on rank 1");
  EXPECT_TRUE(t.gradient_cleared());
  EXPECT_TRUE(torch::equal(t.w.detach(), w));
}

// The overlapped exchange with an all-gather of its own (DataParallel's begin/finish) and the
// blocking one (the Synchronizer's defaults) combine the same numbers in the same order: the
// same bits, dense and overlapping indexed constraints, NuPI.
TEST(Distributed, OverlappedAndBlockingExchangesGiveTheSameBits) {
  const auto overlapped = run_bits(Dual::kNuPI, Groups::kOverlapping, false, false);
  const auto blocking = run_bits(Dual::kNuPI, Groups::kOverlapping, true);
  ASSERT_EQ(overlapped.size(), blocking.size());
  for (size_t i = 0; i < overlapped.size(); ++i) {
    EXPECT_TRUE(torch::equal(overlapped[i], blocking[i])) << "tensor " << i;
  }
}

// The header carried by the gradients' all-reduce (float32 here: each double split into three
// floats) reaches every rank exactly: after one step, whose dual step reads only the combined
// strict violations at the common starting point, the multipliers are the same bits as with
// the separate all-gather. The gradients differ by rounding only (n_r g_r summed, then divided
// by the total, against g_r times fl(n_r / total), summed): about 1e-7 relative per step in
// float32, so after 15 steps of this stable iteration the states agree to 1e-5.
TEST(Distributed, TheExchangeCarriedByTheGradientsMatchesTheSeparateOne) {
  const auto carried = run_bits(Dual::kNuPI, Groups::kOverlapping, false, true, 1);
  const auto separate = run_bits(Dual::kNuPI, Groups::kOverlapping, false, false, 1);
  EXPECT_TRUE(torch::equal(carried[2], separate[2])) << carried[2] << " vs " << separate[2];
  EXPECT_TRUE(torch::equal(carried[3], separate[3])) << carried[3] << " vs " << separate[3];
  EXPECT_TRUE(torch::allclose(carried[0], separate[0], 1e-6, 1e-7));  // one step's rounding
  const auto carried15 = run_bits(Dual::kNuPI, Groups::kOverlapping, false, true, 15);
  const auto separate15 = run_bits(Dual::kNuPI, Groups::kOverlapping, false, false, 15);
  for (size_t i = 0; i < carried15.size(); ++i) {
    EXPECT_TRUE(torch::allclose(carried15[i], separate15[i], 1e-5, 1e-6))
        << "tensor " << i << ": " << carried15[i] << " vs " << separate15[i];
  }
}

// Carried, a step makes one collective fewer: here the gradients' all-reduce plus the indexed
// constraint's all-gather, against those and the header's all-gather.
TEST(Distributed, TheCarriedExchangeSavesACollectivePerStep) {
  for (const bool carried : {true, false}) {
    const auto out = run_ranks(2, [&](int rank, int w, const std::string& store) {
      auto dp = DataParallel::from_file(
          store, rank, w, Options().timeout_ms(20000).combine_with_gradients(carried));
      Trainer s(Dual::kSGD, torch::kFloat32);
      dp->attach(*s.opt);
      const auto sh = shard(rank, w);
      const auto before = dp->traffic();
      for (int t = 0; t < 3; ++t) s.step(sh.first, sh.second);
      const auto& after = dp->traffic();
      TORCH_CHECK(after.gradient_collectives - before.gradient_collectives == 3,
                  after.gradient_collectives - before.gradient_collectives);
      const int64_t want = carried ? 3 : 6;
      TORCH_CHECK(after.constraint_collectives - before.constraint_collectives == want,
                  after.constraint_collectives - before.constraint_collectives);
      TORCH_CHECK(after.constraint_bytes > before.constraint_bytes);
    });
    expect_all_succeeded(out);
  }
}

// float64 strict violations with float32 gradients: each header value travels as three float32
// parts. A full-precision value (1/3, 2/7: 53 significant bits, so the third part is not zero)
// arrives exactly, in the gradients' all-reduce alone; a value beyond float32's range (1e300)
// does not split, and the headers are exchanged again by all-gather on every rank. Either way
// the combined value is the exact sample-weighted mean, computed in double as every rank does.
TEST(Distributed, AFloat64HeaderTravelsExactlyInFloat32Gradients) {
  const auto out = run_ranks(2, [&](int rank, int w, const std::string& store) {
    auto dp = DataParallel::from_file(store, rank, w, Options().timeout_ms(20000));
    torch::Tensor x = torch::full({3}, 0.5).requires_grad_(true);
    feasible::Problem problem;
    auto big = problem.add_constraint("big", feasible::ConstraintOptions().dtype(torch::kFloat64));
    feasible::SimultaneousOptimizer opt(
        problem,
        {std::make_shared<torch::optim::SGD>(std::vector<torch::Tensor>{x},
                                             torch::optim::SGDOptions(0.1))},
        std::make_shared<torch::optim::SGD>(problem.dual_parameters(),
                                            torch::optim::SGDOptions(1e-300)));
    dp->attach(opt);
    dp->set_samples(rank + 1);  // weights 1 and 2
    auto step = [&](double mine) {
      return opt.step([&] {
        feasible::ProblemState st((x * x).sum());
        st.observe(big, feasible::ConstraintState(x.sum().to(torch::kFloat64) * 0.0 + mine));
        return st;
      });
    };
    // The header: sample count, first bad, observed flag, n_r s (4 doubles, 32 bytes); the block:
    // 2 ranks x 4 x 3 float32 parts and two counts (104 bytes).
    constexpr int64_t kHeader = 32, kBlock = 104;
    auto t0 = dp->traffic();
    const double a = 1.0 / 3.0, b = 2.0 / 7.0;
    const double exact = step(rank == 0 ? a : b).at("big").strict_violation.item<double>();
    TORCH_CHECK(exact == (1.0 * a + 2.0 * b) / 3.0, exact);
    auto t1 = dp->traffic();
    TORCH_CHECK(t1.constraint_collectives == t0.constraint_collectives);  // carried only
    TORCH_CHECK(t1.gradient_collectives == t0.gradient_collectives + 1);
    TORCH_CHECK(t1.constraint_bytes - t0.constraint_bytes == kBlock);
    const double huge = step(rank == 0 ? 1e300 : 4e300).at("big").strict_violation.item<double>();
    TORCH_CHECK(huge == (1.0 * 1e300 + 2.0 * 4e300) / 3.0, huge);
    auto t2 = dp->traffic();
    TORCH_CHECK(t2.constraint_collectives == t1.constraint_collectives + 1);  // the fallback
    TORCH_CHECK(t2.constraint_bytes - t1.constraint_bytes == kBlock + kHeader);
  });
  expect_all_succeeded(out);
}

// A sparse gradient on one rank only (rank 0 looks its rows up sparsely, rank 1 densely) is
// refused on both ranks after the carried all-reduce, each rank naming the count; rank 1 does
// not wait for a rank that stopped (both end long before the 20 s timeout).
TEST(Distributed, ASparseGradientIsRefusedOnEveryRankAlike) {
  const auto out = run_ranks(2, [&](int rank, int w, const std::string& store) {
    auto dp = DataParallel::from_file(store, rank, w, Options().timeout_ms(20000));
    torch::Tensor table = torch::full({5, 2}, 0.5).requires_grad_(true);
    feasible::Problem problem;
    auto c = problem.add_constraint("c");
    feasible::SimultaneousOptimizer opt(
        problem,
        {std::make_shared<torch::optim::SGD>(std::vector<torch::Tensor>{table},
                                             torch::optim::SGDOptions(0.1))},
        std::make_shared<torch::optim::SGD>(problem.dual_parameters(),
                                            torch::optim::SGDOptions(0.1)));
    dp->attach(opt);
    const torch::Tensor rows = torch::tensor({1, 3}, torch::kInt64);
    opt.step([&] {
      const torch::Tensor e =
          rank == 0 ? torch::embedding(table, rows, -1, false, true) : table.index_select(0, rows);
      feasible::ProblemState st(e.pow(2).sum());
      st.observe(c, feasible::ConstraintState(e.sum() - 1.0));
      return st;
    });
  });
  for (int r = 0; r < 2; ++r) {
    EXPECT_EQ(out[r].exit_code, 3) << "rank " << r;
    EXPECT_HAS(out[r].error, "has a sparse gradient on 1 rank(s)");
    EXPECT_LT(out[r].seconds, 15.0) << "rank " << r;
  }
}

// Under kThrow a NaN on rank 1 found by the overlapped exchange makes both ranks throw; rank
// 0's message names rank 1.
TEST(Distributed, ANonFiniteValueOnOneRankThrowsEverywhere) {
  const auto out = run_ranks(2, [&](int rank, int w, const std::string& store) {
    auto dp = DataParallel::from_file(store, rank, w, Options().timeout_ms(20000));
    Trainer s(Dual::kSGD, torch::kFloat32);
    dp->attach(*s.opt);
    const auto sh = shard(rank, w);
    for (int t = 0; t < 4; ++t) s.step(sh.first, sh.second, rank == 1 && t == 2);
  });
  for (int r = 0; r < 2; ++r) {
    EXPECT_EQ(out[r].exit_code, 3) << "rank " << r;
    EXPECT_HAS(out[r].error, "the violation of constraint 'moments' has a NaN or Inf entry");
    EXPECT_HAS(out[r].error, "NonFinitePolicy::kThrow");
  }
  EXPECT_HAS(out[0].error, "NaN or Inf entry on rank 1");
  EXPECT_EQ(out[1].error.find("on rank"), std::string::npos) << out[1].error;
}

TEST(Distributed, FinishWithoutBeginIsRefused) {
  const auto out = run_ranks(1, [&](int rank, int w, const std::string& store) {
    auto dp = DataParallel::from_file(store, rank, w);
    feasible::SyncedEvaluation e;
    const std::string m = error_of([&] { dp->finish_evaluation(e); });
    TORCH_CHECK(
        m.find("DataParallel::finish_evaluation: no exchange is pending") != std::string::npos, m);
    dp->begin_evaluation(e);
    dp->finish_evaluation(e);  // now there was one
    const std::string again = error_of([&] { dp->finish_evaluation(e); });
    TORCH_CHECK(again.find("no exchange is pending") != std::string::npos, again);
  });
  expect_all_succeeded(out);
}

}  // namespace
