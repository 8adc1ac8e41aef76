// Per-step overhead of constrained training with feasible, against a fixed penalty and against
// plain unconstrained training (docs/performance.md explains the figures).
//
// A plain harness, not Google Benchmark's runner: the variants of one section are timed in
// alternation (each round all variants, in a new random order), each turn running a block of steps,
// so that slow drifts of a shared, noisy machine hit every variant alike. It prints per-step
// medians, standard deviations and minima, and each ratio three ways: the ratio of the medians, the
// ratio of the minima, and the median (with quartiles) of the per-round ratios (each round times
// every variant back to back, so that ratio is paired; it is the one compared with the goals). The
// defaults take about 30 s on a quiet 2-core machine (90 s when other work shares it).
//
// Sections:
//   a  2-D linear classifier (experiment E2's data, docs/experiments.md), full batch of 400,
//      BCE, SGD 2e-2; unconstrained, fixed penalty (UnconstrainedOptimizer), Lagrangian with proxy
//      constraint (SimultaneousOptimizer, dual SGD, strict violation = exact 0-1 rate).
//   b  MLP 784-300-100-10 (ReLU), batch 256 of synthetic data, cross-entropy, Adam 1e-3;
//      the same three variants with "mean predicted probability of class 0 <= 0.2".
//   c  step() machinery alone: x in R^10, loss ||x||^2, A x <= b with 5 rows, every scheme,
//      against hand-written gradient descent-ascent loops.
// Every section also times the same steps written by hand in plain LibTorch ("P-hand",
// "C-hand": the user's optimizers, the multiplier updated and projected in place; c also has two
// other hand loops). The goals of the step's overhead compare the library with that loop:
// C / C-hand <= 1.05 in a (the rate classifier) and in c (Sim / C-hand, the tiny problem),
// <= 1.01 in b (the MLP).
// b also has "C-hand-reset", C-hand with the gradients set to none instead of zeroed, as the
// library's step does under LibTorch 1.x: C / C-hand-reset is the library's own cost against
// a hand loop that saves the same passes over the gradients.
//
// Flags: --threads N (default 1), --rounds R, --steps-a K, --steps-b K, --steps-c K,
//        --warmup W (steps per variant before timing), --sections abc,
//        --count-ops N (count ATen operator calls over N steps instead of timing; with
//        --list-ops, list them by name), --only NAME (only the variants tagged NAME, or if
//        none, those whose name contains NAME; e.g. for a profiler), --adaptive-malloc (leave
//        glibc's malloc thresholds adaptive; by default they are fixed, see fix_allocator),
//        --thread-per-variant (each variant runs on a thread of its own, still one at a time:
//        its steps allocate from a malloc arena of their own, and a profiler tells the variants
//        apart by thread name; see Worker; not used by --count-ops).
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/record_function.h>
#include <feasible/feasible.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <numeric>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "bench_util.h"

#if defined(__GLIBC__)
#include <malloc.h>
#include <pthread.h>
#endif

namespace {

using feasible_bench::int_flag;
using feasible_bench::median_of;
using feasible_bench::quantile_of;
using feasible_bench::Stats;
using feasible_bench::stats_of;

namespace F = torch::nn::functional;
using Clock = std::chrono::steady_clock;
using Optimizers = std::vector<std::shared_ptr<torch::optim::Optimizer>>;

struct Config {
  int threads = 1;
  int rounds = 150;
  int steps_a = 40;
  int steps_b = 3;
  int steps_c = 50;
  int warmup = 0;  // 0: one block per variant
  std::string sections = "abc";
  int count_ops = 0;  // > 0: count ATen operator calls over this many steps instead of timing
  bool list_ops = false;
  std::string only;          // non-empty: run only the variants whose name contains this
  bool fixed_malloc = true;  // hold glibc's allocator thresholds constant (see fix_allocator)
  bool thread_per_variant = false;  // each variant on a thread of its own (see Worker)
};

// glibc's malloc adapts its mmap threshold to the sizes freed so far and returns memory to the
// system above a trim threshold, so a block of MLP steps can pay page faults (about 1% of a step
// in b) or not, depending on what the variant before it left behind: a ratio of two loops then
// measures their order in the round, not their code (b alone gave 0.83-0.84 for identical
// work). Holding both thresholds fixed (mmap only above 32 MiB, glibc's largest allowed value,
// and trimming only above 1 GiB) gives every variant the same allocator. Returns what it did, for
// the header.
std::string fix_allocator(bool fixed) {
  if (!fixed) return "glibc malloc's adaptive thresholds (--adaptive-malloc)";
#if defined(__GLIBC__)
  const bool ok =
      mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024) == 1 && mallopt(M_TRIM_THRESHOLD, 1 << 30) == 1;
  return ok ? "malloc thresholds fixed (mmap above 32 MiB, trim above 1 GiB)"
            : "malloc thresholds NOT fixed (mallopt refused)";
#else
  return "the platform's allocator (not glibc: thresholds not fixed)";
#endif
}

// ---------------------------------------------------------------- operator counting

// Counts the ATen operators (RecordFunction scope FUNCTION: every dispatcher call, nested ones
// included) and the autograd nodes run in backward (scope BACKWARD_FUNCTION). "top-level"
// counts only calls made at nesting depth 0, i.e. by the user's, the library's or the autograd
// engine's own code.
struct OpCounter {
  std::mutex mu;
  std::map<std::string, std::pair<long, long>> top;  // name -> (calls, calls nested in them)
  long top_total = 0, all_total = 0;
};
OpCounter* g_counter = nullptr;
thread_local int g_depth = 0;
thread_local std::pair<long, long>* g_current = nullptr;

std::map<std::string, std::pair<long, long>> count_ops(const std::function<void()>& f, long& top,
                                                       long& all) {
  OpCounter counter;
  g_counter = &counter;
  auto handle = at::addGlobalCallback(
      at::RecordFunctionCallback(
          [](const at::RecordFunction& fn) -> std::unique_ptr<at::ObserverContext> {
            std::lock_guard<std::mutex> lock(g_counter->mu);
            if (g_depth++ == 0) {
              g_current = &g_counter->top[fn.name()];
              ++g_current->first;
              ++g_counter->top_total;
            }
            ++g_current->second;
            ++g_counter->all_total;
            return nullptr;
          },
          [](const at::RecordFunction&, at::ObserverContext*) { --g_depth; })
          .scopes({at::RecordScope::FUNCTION, at::RecordScope::BACKWARD_FUNCTION}));
  f();
  at::removeCallback(handle);
  g_counter = nullptr;
  top = counter.top_total;
  all = counter.all_total;
  return counter.top;
}

// ---------------------------------------------------------------- harness

struct Variant {
  std::string tag;               // a short name, used in the ratios
  std::string name;              // what it is
  std::function<void(int)> run;  // runs n training steps
};

// A ratio of two variants' per-step times, named by the variants' tags.
struct Ratio {
  std::string num, den;
  double goal = 0;  // <= 0: no goal
};

// Prints operator counts per step of every variant (the --count-ops mode).
void print_op_counts(const char* title, std::vector<Variant>& variants, const Config& cfg) {
  const int n = cfg.count_ops;
  std::printf("\n== %s\n   ATen operator calls per step (mean over %d steps after warm-up)\n",
              title, n);
  std::printf("   %-12s %-46s %10s %11s\n", "tag", "variant", "top-level", "all nested");
  if (cfg.list_ops)
    std::printf("        (listed: calls, calls with the nested ones, top-level name)\n");
  for (auto& v : variants) {
    v.run(std::max(cfg.warmup, 3));
    long top = 0, all = 0;
    auto names = count_ops([&] { v.run(n); }, top, all);
    std::printf("   %-12s %-46s %10.1f %11.1f\n", v.tag.c_str(), v.name.c_str(), double(top) / n,
                double(all) / n);
    if (cfg.list_ops) {
      // Per top-level operator: calls per step, and dispatcher calls per step including
      // everything nested in them.
      std::vector<std::pair<std::pair<long, long>, std::string>> sorted;
      for (const auto& e : names) {
        sorted.push_back({{-e.second.second, -e.second.first}, e.first});
      }
      std::sort(sorted.begin(), sorted.end());
      for (const auto& e : sorted) {
        std::printf("        %6.2f %7.2f  %s\n", double(-e.first.second) / n,
                    double(-e.first.first) / n, e.second.c_str());
      }
    }
  }
}

// Runs one variant's blocks on a thread of its own (--thread-per-variant), named by the variant's
// tag. The caller waits for each block, so the variants still run one at a time, interleaved as
// before. Two uses: a sampling profiler can then tell the variants' samples apart in one run
// (`perf record`, then `perf report --sort comm,dso`), and glibc's malloc gives each thread an
// arena of its own while there are fewer than 8 per core, so the tensors of a variant's steps are
// not placed among the remnants of the others' steps (what the section built on the main thread,
// the models and the data, stays in the main arena). The thread sets LibTorch's intra-op thread
// count at once: under OpenMP it is a per-thread setting, which parallel_for would re-apply only
// on its first call. Meant for --threads 1: with OpenMP each thread keeps a pool of its own.
class Worker {
 public:
  Worker(Variant& v, int threads) : variant_(v), threads_(threads), thread_([this] { loop(); }) {}
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;
  ~Worker() {
    post(-1);
    thread_.join();
  }
  // Runs n steps on the worker's thread and returns their seconds; what the steps threw is
  // thrown here.
  double run(int n) {
    post(n);
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return done_; });
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
    return seconds_;
  }

 private:
  void post(int n) {  // n < 0 stops the thread
    std::lock_guard<std::mutex> lock(mu_);
    job_ = n;
    done_ = false;
    posted_ = true;
    cv_.notify_all();
  }
  void loop() {
#if defined(__GLIBC__)
    // The variant's tag names the thread (at most 15 characters), so that `perf report --sort
    // comm` lists the variants by tag.
    pthread_setname_np(pthread_self(), variant_.tag.substr(0, 15).c_str());
#endif
    torch::set_num_threads(threads_);
    for (;;) {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return posted_; });
      posted_ = false;
      const int n = job_;
      if (n < 0) return;
      lock.unlock();
      std::exception_ptr error;
      const auto t0 = Clock::now();
      try {
        variant_.run(n);
      } catch (...) {
        error = std::current_exception();
      }
      const double s = std::chrono::duration<double>(Clock::now() - t0).count();
      lock.lock();
      seconds_ = s;
      error_ = error;
      done_ = true;
      cv_.notify_all();
    }
  }
  Variant& variant_;
  const int threads_;
  std::mutex mu_;
  std::condition_variable cv_;
  int job_ = 0;
  bool posted_ = false;
  bool done_ = false;
  double seconds_ = 0;
  std::exception_ptr error_;
  std::thread thread_;  // last: started once the members above exist
};

// Times every variant in alternation; returns per-step seconds, [variant][round]. Each round
// runs the variants in a new random order (a fixed seed, so runs repeat), so that every variant
// sits at every position and follows every other one equally often on average: what a variant
// leaves in the caches and the allocator then weighs on all of them alike, not always on the one
// after it. With cfg.thread_per_variant each variant runs on a Worker.
std::vector<std::vector<double>> measure(std::vector<Variant>& variants, int steps,
                                         const Config& cfg) {
  std::vector<std::unique_ptr<Worker>> workers;
  for (auto& v : variants) {
    workers.push_back(cfg.thread_per_variant ? std::make_unique<Worker>(v, cfg.threads) : nullptr);
  }
  auto run = [&](size_t i, int n) {
    if (workers[i]) return workers[i]->run(n);
    const auto t0 = Clock::now();
    variants[i].run(n);
    return std::chrono::duration<double>(Clock::now() - t0).count();
  };
  for (size_t i = 0; i < variants.size(); ++i) run(i, cfg.warmup > 0 ? cfg.warmup : steps);
  std::vector<std::vector<double>> t(variants.size());
  std::vector<size_t> order(variants.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::mt19937 gen(20261201);
  for (int r = 0; r < cfg.rounds; ++r) {
    std::shuffle(order.begin(), order.end(), gen);
    for (const size_t i : order) t[i].push_back(run(i, steps) / steps);
  }
  return t;
}

void report(const char* title, const std::vector<Variant>& variants,
            const std::vector<std::vector<double>>& t, const std::vector<Ratio>& ratios, int steps,
            int rounds) {
  std::printf("\n== %s\n   %d rounds x %d steps per variant; microseconds per step\n", title,
              rounds, steps);
  std::printf("   %-12s %-46s %9s %8s %9s\n", "tag", "variant", "median", "stddev", "min");
  auto find = [&](const std::string& tag) {
    for (size_t i = 0; i < variants.size(); ++i) {
      if (variants[i].tag == tag) return i;
    }
    return SIZE_MAX;
  };
  for (size_t i = 0; i < variants.size(); ++i) {
    const Stats s = stats_of(t[i]);
    std::printf("   %-12s %-46s %9.1f %8.1f %9.1f\n", variants[i].tag.c_str(),
                variants[i].name.c_str(), s.median * 1e6, s.stddev * 1e6, s.min * 1e6);
  }
  bool header = false;
  for (const auto& r : ratios) {
    const size_t num = find(r.num), den = find(r.den);
    if (num == SIZE_MAX || den == SIZE_MAX) continue;  // filtered out by --only
    if (!header) {
      std::printf("   %-25s %8s %8s %7s %22s  %s\n", "ratio", "medians", "mins",
                  "paired:", "median [IQR]", "goal");
      header = true;
    }
    std::vector<double> paired;
    for (size_t k = 0; k < t[num].size(); ++k) paired.push_back(t[num][k] / t[den][k]);
    const double m = median_of(t[num]) / median_of(t[den]);
    const double mins = *std::min_element(t[num].begin(), t[num].end()) /
                        *std::min_element(t[den].begin(), t[den].end());
    char goal[32] = "-";
    if (r.goal > 0) {
      std::snprintf(goal, sizeof goal, "<= %.2f %s", r.goal,
                    median_of(paired) <= r.goal ? "met" : "MISSED");
    }
    const std::string what = r.num + " / " + r.den;
    std::printf("   %-25s %8.3f %8.3f %15.3f [%.3f, %.3f]  %s\n", what.c_str(), m, mins,
                median_of(paired), quantile_of(paired, 0.25), quantile_of(paired, 0.75), goal);
  }
}

// Keeps the variants selected by --only; counts operators or times the variants and prints
// the table.
void run_section(const char* title, std::vector<Variant> variants, const std::vector<Ratio>& ratios,
                 int steps, const Config& cfg) {
  if (!cfg.only.empty()) {
    // Variants tagged exactly NAME; if none, those whose name contains NAME.
    const bool by_tag = std::any_of(variants.begin(), variants.end(),
                                    [&](const Variant& v) { return v.tag == cfg.only; });
    std::vector<Variant> kept;
    for (auto& v : variants) {
      if (by_tag ? v.tag == cfg.only : v.name.find(cfg.only) != std::string::npos) {
        kept.push_back(v);
      }
    }
    variants = std::move(kept);
    if (variants.empty()) return;
  }
  if (cfg.count_ops > 0) return print_op_counts(title, variants, cfg);
  const auto t = measure(variants, steps, cfg);
  report(title, variants, t, ratios, steps, cfg.rounds);
}

// ---------------------------------------------------------------- section a

struct LinearData {
  torch::Tensor x, y;
};

// Experiment E2's data (docs/experiments.md): one CPU generator seeded 0; 100 points per Gaussian,
// variance 0.05.
LinearData linear_data() {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(0);
  const double means[4][2] = {{0, 1}, {-1, 0}, {0, -1}, {1, 0}};
  const double labels[4] = {1, 1, 0, 0};
  std::vector<torch::Tensor> xs, ys;
  for (int k = 0; k < 4; ++k) {
    xs.push_back(torch::randn({100, 2}, gen) * std::sqrt(0.05) +
                 torch::tensor({means[k][0], means[k][1]}, torch::kFloat));
    ys.push_back(torch::full({100}, labels[k]));
  }
  return {torch::cat(xs), torch::cat(ys)};
}

struct LinearModel {
  torch::Tensor w = torch::tensor({1.0f, -1.0f}).requires_grad_();
  torch::Tensor b = torch::zeros({1}).requires_grad_();
  torch::Tensor logits(const torch::Tensor& x) const { return torch::addmv(b, x, w); }
  std::vector<torch::Tensor> params() const { return {w, b}; }
};

void section_a(const Config& cfg) {
  const LinearData d = linear_data();
  const double lr = 2e-2, level = 0.7, c = 2.15, dual_lr = 1e-2;
  // Rate surrogate: mean(1 - sigmoid(logit)) >= 0.7, violation 0.7 - mean(1 - sigmoid).
  auto surrogate = [=](const torch::Tensor& z) { return level - (1 - torch::sigmoid(z)).mean(); };
  // The exact 0-1 rate of class-0 predictions (logit < 0), violation 0.7 - rate.
  auto exact = [=](const torch::Tensor& z) {
    return level - (z.detach() < 0).to(torch::kFloat).mean();
  };
  auto sgd = [=](const LinearModel& m) {
    return std::make_shared<torch::optim::SGD>(m.params(), torch::optim::SGDOptions(lr));
  };
  auto penalty_problem = [=](feasible::Problem& p) {
    return p.add_constraint("class0_rate",
                            feasible::ConstraintOptions()
                                .formulation(std::make_shared<feasible::FixedPenalty>())
                                .penalty(c));
  };
  auto dual_sgd = [=](const feasible::Problem& p) {
    return std::make_shared<torch::optim::SGD>(p.dual_parameters(),
                                               torch::optim::SGDOptions(dual_lr));
  };
  // The closures of the library variants.
  auto penalized_state = [=](const LinearModel& m, const feasible::Constraint& con) {
    auto z = m.logits(d.x);
    feasible::ProblemState st(F::binary_cross_entropy_with_logits(z, d.y));
    st.observe(con, feasible::ConstraintState(surrogate(z)));
    return st;
  };
  auto proxy_state = [=](const LinearModel& m, const feasible::Constraint& con) {
    auto z = m.logits(d.x);
    feasible::ProblemState st(F::binary_cross_entropy_with_logits(z, d.y));
    st.observe(con, feasible::ConstraintState(surrogate(z)).strict_violation(exact(z)));
    return st;
  };

  const std::string U = "U";
  const std::string P = "P";
  const std::string C = "C";
  const std::string CN = "C-noproxy";
  const std::string PH = "P-hand";
  const std::string CH = "C-hand";
  const std::map<std::string, std::string> names = {
      {U, "unconstrained (plain torch loop)"},
      {P, "penalized (FixedPenalty, UnconstrainedOpt.)"},
      {C, "constrained (Lagrangian proxy, Simultaneous)"},
      {CN, "constrained, no proxy (strict = surrogate)"},
      {PH, "penalized by hand (plain torch loop)"},
      {CH, "constrained proxy by hand (plain torch loop)"},
  };
  std::vector<Variant> variants;

  {
    auto m = std::make_shared<LinearModel>();
    auto o = sgd(*m);
    variants.push_back({U, names.at(U), [=](int n) {
                          for (int i = 0; i < n; ++i) {
                            o->zero_grad();
                            F::binary_cross_entropy_with_logits(m->logits(d.x), d.y).backward();
                            o->step();
                          }
                        }});
  }
  {
    auto m = std::make_shared<LinearModel>();
    feasible::Problem p;
    auto con = penalty_problem(p);
    auto o = std::make_shared<feasible::UnconstrainedOptimizer>(p, Optimizers{sgd(*m)});
    variants.push_back({P, names.at(P), [=](int n) {
                          for (int i = 0; i < n; ++i)
                            o->step([&] { return penalized_state(*m, con); });
                        }});
  }
  for (bool proxy : {true, false}) {
    auto m = std::make_shared<LinearModel>();
    feasible::Problem p;
    auto con = p.add_constraint("class0_rate", feasible::ConstraintOptions());
    auto o = std::make_shared<feasible::SimultaneousOptimizer>(p, Optimizers{sgd(*m)}, dual_sgd(p));
    variants.push_back(
        {proxy ? C : CN, names.at(proxy ? C : CN), [=](int n) {
           for (int i = 0; i < n; ++i) {
             o->step([&] { return proxy ? proxy_state(*m, con) : penalized_state(*m, con); });
           }
         }});
  }
  {
    auto m = std::make_shared<LinearModel>();
    auto o = sgd(*m);
    variants.push_back(
        {PH, names.at(PH), [=](int n) {
           for (int i = 0; i < n; ++i) {
             o->zero_grad();
             auto z = m->logits(d.x);
             (F::binary_cross_entropy_with_logits(z, d.y) + c * surrogate(z)).backward();
             o->step();
           }
         }});
  }
  {
    auto m = std::make_shared<LinearModel>();
    auto o = sgd(*m);
    auto lam = torch::zeros({1});
    variants.push_back(
        {CH, names.at(CH), [=](int n) {
           for (int i = 0; i < n; ++i) {
             o->zero_grad();
             auto z = m->logits(d.x);
             (F::binary_cross_entropy_with_logits(z, d.y) + (lam * surrogate(z)).sum()).backward();
             o->step();
             lam.add_(exact(z), dual_lr).clamp_min_(0.0);
           }
         }});
  }
  // The goal: the library's step against the same step written by hand.
  const std::vector<Ratio> ratios = {{C, CH, 1.05}, {P, PH}, {C, P}, {CN, P},
                                     {CH, PH},      {C, U},  {P, U}};
  run_section("a) linear classifier, 400 points, full batch, SGD", variants, ratios, cfg.steps_a,
              cfg);
}

// ---------------------------------------------------------------- section b

torch::nn::Sequential make_mlp() {
  torch::manual_seed(0);  // the same initial weights in every variant
  return torch::nn::Sequential(torch::nn::Linear(784, 300), torch::nn::ReLU(),
                               torch::nn::Linear(300, 100), torch::nn::ReLU(),
                               torch::nn::Linear(100, 10));
}

void section_b(const Config& cfg) {
  // Synthetic data: 4 batches of 256 inputs, cycled, generated once (seeded).
  torch::manual_seed(1);
  std::vector<torch::Tensor> xs, ys;
  for (int k = 0; k < 4; ++k) {
    xs.push_back(torch::randn({256, 784}));
    ys.push_back(torch::randint(0, 10, {256}, torch::kLong));
  }
  const double lr = 1e-3, level = 0.2, c = 1.0, dual_lr = 1e-2;
  // Mean predicted probability of class 0 <= 0.2; violation mean(p_0) - 0.2.
  auto violation = [=](const torch::Tensor& logits) {
    return torch::softmax(logits, 1).select(1, 0).mean() - level;
  };
  auto adam = [=](const torch::nn::Sequential& m) {
    return std::make_shared<torch::optim::Adam>(m->parameters(), torch::optim::AdamOptions(lr));
  };
  auto dual_sgd = [=](const feasible::Problem& p) {
    return std::make_shared<torch::optim::SGD>(p.dual_parameters(),
                                               torch::optim::SGDOptions(dual_lr));
  };
  auto penalty_options = [=] {
    return feasible::ConstraintOptions()
        .formulation(std::make_shared<feasible::FixedPenalty>())
        .penalty(c);
  };
  // Runs n steps of `one(k)` on batches k = counter % 4.
  auto cycled = [](std::function<void(int)> one) {
    auto counter = std::make_shared<int>(0);
    return [=](int n) {
      for (int i = 0; i < n; ++i) one((*counter)++ % 4);
    };
  };
  auto state_of = [=](torch::nn::Sequential m, const feasible::Constraint& con, int k) {
    auto z = m->forward(xs[k]);
    feasible::ProblemState st(F::cross_entropy(z, ys[k]));
    st.observe(con, feasible::ConstraintState(violation(z)));
    return st;
  };

  const std::string U = "U";
  const std::string P = "P";
  const std::string C = "C";
  const std::string PH = "P-hand";
  const std::string CH = "C-hand";
  const std::string CR = "C-hand-reset";
  const std::map<std::string, std::string> names = {
      {U, "unconstrained (plain torch loop)"},
      {P, "penalized (FixedPenalty, UnconstrainedOpt.)"},
      {C, "constrained (Lagrangian, Simultaneous)"},
      {CR, "by hand, gradients reset, not zeroed"},
      {PH, "penalized by hand (plain torch loop)"},
      {CH, "constrained by hand (plain torch loop)"},
  };
  std::vector<Variant> variants;
  {
    auto m = make_mlp();
    auto o = adam(m);
    variants.push_back({U, names.at(U), cycled([=](int k) mutable {
                          o->zero_grad();
                          F::cross_entropy(m->forward(xs[k]), ys[k]).backward();
                          o->step();
                        })});
  }
  {
    auto m = make_mlp();
    feasible::Problem p;
    auto con = p.add_constraint("p0", penalty_options());
    auto o = std::make_shared<feasible::UnconstrainedOptimizer>(p, Optimizers{adam(m)});
    variants.push_back(
        {P, names.at(P), cycled([=](int k) { o->step([&] { return state_of(m, con, k); }); })});
  }
  {
    auto m = make_mlp();
    feasible::Problem p;
    auto con = p.add_constraint("p0", feasible::ConstraintOptions());
    auto o = std::make_shared<feasible::SimultaneousOptimizer>(p, Optimizers{adam(m)}, dual_sgd(p));
    variants.push_back(
        {C, names.at(C), cycled([=](int k) { o->step([&] { return state_of(m, con, k); }); })});
  }
  {
    // C-hand with the gradients set to none instead of zero_grad()'s zeros (what LibTorch 2.x's
    // zero_grad() does): the backward pass then writes each gradient once, as in the library's
    // step under LibTorch 1.x (docs/guide.md, "step() clears the primal gradients").
    auto m = make_mlp();
    auto o = adam(m);
    auto lam = torch::zeros({1});
    variants.push_back({CR, names.at(CR), cycled([=](int k) mutable {
                          for (auto& q : m->parameters()) q.mutable_grad() = torch::Tensor();
                          auto z = m->forward(xs[k]);
                          auto v = violation(z);
                          (F::cross_entropy(z, ys[k]) + (lam * v).sum()).backward();
                          o->step();
                          lam.add_(v.detach(), dual_lr).clamp_min_(0.0);
                        })});
  }
  {
    auto m = make_mlp();
    auto o = adam(m);
    variants.push_back({PH, names.at(PH), cycled([=](int k) mutable {
                          o->zero_grad();
                          auto z = m->forward(xs[k]);
                          (F::cross_entropy(z, ys[k]) + c * violation(z)).backward();
                          o->step();
                        })});
  }
  {
    auto m = make_mlp();
    auto o = adam(m);
    auto lam = torch::zeros({1});
    variants.push_back({CH, names.at(CH), cycled([=](int k) mutable {
                          o->zero_grad();
                          auto z = m->forward(xs[k]);
                          auto v = violation(z);
                          (F::cross_entropy(z, ys[k]) + (lam * v).sum()).backward();
                          o->step();
                          lam.add_(v.detach(), dual_lr).clamp_min_(0.0);
                        })});
  }
  // The goal: the library's step against the same step written by hand.
  const std::vector<Ratio> ratios = {{C, CH, 1.01}, {C, CR},  {CR, CH}, {P, PH},
                                     {C, P},        {CH, PH}, {C, U},   {P, U}};
  run_section("b) MLP 784-300-100-10, batch 256, Adam", variants, ratios, cfg.steps_b, cfg);
}

// ---------------------------------------------------------------- section c

void section_c(const Config& cfg) {
  torch::manual_seed(2);
  // b < 0 so that x = 0 is infeasible and the constraints stay active near the optimum.
  const torch::Tensor A = torch::randn({5, 10});
  const torch::Tensor B = torch::full({5}, -0.5);
  const torch::Tensor x0 = torch::randn({10});
  const double lr = 1e-2, dual_lr = 1e-2;
  auto fresh_x = [&] { return x0.clone().requires_grad_(); };
  auto sgd = [](std::vector<torch::Tensor> p, double l) {
    return std::make_shared<torch::optim::SGD>(std::move(p), torch::optim::SGDOptions(l));
  };
  auto state_of = [=](const torch::Tensor& x, const feasible::Constraint& con) {
    feasible::ProblemState st(x.pow(2).sum());
    st.observe(con, feasible::ConstraintState(torch::mv(A, x) - B));
    return st;
  };

  const std::string CH = "C-hand";
  const std::string H1 = "hand-SGD";
  const std::string H2 = "hand-inplace";
  const std::string SIM = "Sim";
  const std::map<std::string, std::string> names = {
      {CH, "hand GDA, torch SGD primal, lambda in place"},
      {H1, "hand GDA, torch SGD both"},
      {H2, "hand GDA, in-place updates (floor)"},
      {SIM, "Simultaneous"},
  };
  std::vector<Variant> variants;
  {
    // The loop of C-hand in a) and b): the primal player through its torch optimizer, the
    // multiplier updated and projected in place.
    auto x = fresh_x();
    auto lam = torch::zeros({5});
    auto po = sgd({x}, lr);
    variants.push_back({CH, names.at(CH), [=](int n) mutable {
                          for (int i = 0; i < n; ++i) {
                            po->zero_grad();
                            auto v = torch::mv(A, x) - B;
                            (x.pow(2).sum() + (lam * v).sum()).backward();
                            po->step();
                            lam.add_(v.detach(), dual_lr).clamp_min_(0.0);
                          }
                        }});
  }
  {
    auto x = fresh_x();
    auto lam = torch::zeros({5}).requires_grad_();
    auto po = sgd({x}, lr), dopt = sgd({lam}, dual_lr);
    variants.push_back({H1, names.at(H1), [=](int n) mutable {
                          for (int i = 0; i < n; ++i) {
                            po->zero_grad();
                            auto v = torch::mv(A, x) - B;
                            (x.pow(2).sum() + (lam.detach() * v).sum()).backward();
                            lam.mutable_grad() = -v.detach();
                            po->step();
                            dopt->step();
                            torch::NoGradGuard ng;
                            lam.clamp_min_(0.0);
                          }
                        }});
  }
  {
    auto x = fresh_x();
    auto lam = torch::zeros({5});
    variants.push_back({H2, names.at(H2), [=](int n) mutable {
                          for (int i = 0; i < n; ++i) {
                            x.mutable_grad() = torch::Tensor();
                            auto v = torch::mv(A, x) - B;
                            (x.pow(2).sum() + (lam * v).sum()).backward();
                            torch::NoGradGuard ng;
                            x.sub_(x.grad(), lr);
                            lam.add_(v.detach(), dual_lr).clamp_min_(0.0);
                          }
                        }});
  }

  // The library's schemes. kind: 0 plain SGD, 1 ExtraSGD, 2 quadratic penalty (no dual).
  using Make = std::function<std::shared_ptr<feasible::ConstrainedOptimizer>(
      feasible::Problem, Optimizers, std::shared_ptr<torch::optim::Optimizer>)>;
  auto add_scheme = [&](const std::string& tag, const std::string& name, Make make, int kind,
                        bool constraint_closure) {
    auto x = fresh_x();
    feasible::Problem p;
    auto opts = feasible::ConstraintOptions(feasible::ConstraintKind::kInequality, 5);
    if (kind == 2) opts.formulation(std::make_shared<feasible::QuadraticPenalty>()).penalty(1.0);
    auto con = p.add_constraint("Ax<=b", opts);
    std::shared_ptr<torch::optim::Optimizer> po, dopt;
    if (kind == 1) {
      po = std::make_shared<feasible::optim::ExtraSGD>(std::vector<torch::Tensor>{x},
                                                       feasible::optim::ExtraSGDOptions(lr));
      dopt = std::make_shared<feasible::optim::ExtraSGD>(p.dual_parameters(),
                                                         feasible::optim::ExtraSGDOptions(dual_lr));
    } else {
      po = sgd({x}, lr);
      if (kind == 0) dopt = sgd(p.dual_parameters(), dual_lr);
    }
    auto opt = make(p, Optimizers{po}, dopt);
    auto pd = std::dynamic_pointer_cast<feasible::AlternatingPrimalDualOptimizer>(opt);
    feasible::Closure closure = [=] { return state_of(x, con); };
    feasible::Closure cclosure = [=] {
      feasible::ProblemState st;
      st.observe(con, feasible::ConstraintState(torch::mv(A, x) - B));
      return st;
    };
    variants.push_back({tag, name, [=](int n) {
                          for (int i = 0; i < n; ++i) {
                            if (constraint_closure) {
                              pd->step(closure, cclosure);
                            } else {
                              opt->step(closure);
                            }
                          }
                        }});
  };
  using Dual = std::shared_ptr<torch::optim::Optimizer>;
  add_scheme(
      SIM, "Simultaneous",
      [](feasible::Problem p, Optimizers o, Dual d) {
        return std::make_shared<feasible::SimultaneousOptimizer>(p, o, d);
      },
      0, false);
  add_scheme(
      "AltDP", "AlternatingDualPrimal",
      [](feasible::Problem p, Optimizers o, Dual d) {
        return std::make_shared<feasible::AlternatingDualPrimalOptimizer>(p, o, d);
      },
      0, false);
  add_scheme(
      "AltPD", "AlternatingPrimalDual (full closure again)",
      [](feasible::Problem p, Optimizers o, Dual d) {
        return std::make_shared<feasible::AlternatingPrimalDualOptimizer>(p, o, d);
      },
      0, false);
  add_scheme(
      "AltPD-cc", "AlternatingPrimalDual (constraint closure)",
      [](feasible::Problem p, Optimizers o, Dual d) {
        return std::make_shared<feasible::AlternatingPrimalDualOptimizer>(p, o, d);
      },
      0, true);
  add_scheme(
      "Extra", "Extragradient (ExtraSGD both)",
      [](feasible::Problem p, Optimizers o, Dual d) {
        return std::make_shared<feasible::ExtragradientOptimizer>(p, o, d);
      },
      1, false);
  add_scheme(
      "Unc-QP", "Unconstrained (QuadraticPenalty)",
      [](feasible::Problem p, Optimizers o, Dual) {
        return std::make_shared<feasible::UnconstrainedOptimizer>(p, o);
      },
      2, false);

  // The goal: the library's step against the same step written by hand (C-hand).
  const std::vector<Ratio> ratios = {{SIM, CH, 1.05}, {SIM, H1}, {SIM, H2}, {CH, H2}};
  run_section("c) step() machinery: x in R^10, ||x||^2, 5 linear inequalities, SGD", variants,
              ratios, cfg.steps_c, cfg);
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
    } else if (a == "--steps-a") {
      cfg.steps_a = int_flag(i, argc, argv);
    } else if (a == "--steps-b") {
      cfg.steps_b = int_flag(i, argc, argv);
    } else if (a == "--steps-c") {
      cfg.steps_c = int_flag(i, argc, argv);
    } else if (a == "--warmup") {
      cfg.warmup = int_flag(i, argc, argv);
    } else if (a == "--sections" && i + 1 < argc) {
      cfg.sections = argv[++i];
    } else if (a == "--count-ops") {
      cfg.count_ops = int_flag(i, argc, argv);
    } else if (a == "--list-ops") {
      cfg.list_ops = true;
    } else if (a == "--only" && i + 1 < argc) {
      cfg.only = argv[++i];
    } else if (a == "--adaptive-malloc") {
      cfg.fixed_malloc = false;
    } else if (a == "--thread-per-variant") {
      cfg.thread_per_variant = true;
    } else {
      const Config d;
      std::printf(
          "usage: %s [--threads N=%d] [--rounds R=%d] [--steps-a K=%d] [--steps-b K=%d]\n"
          "          [--steps-c K=%d] [--warmup W=one block] [--sections abc]\n"
          "          [--count-ops N [--list-ops]]  (count ATen operators per step, no timing)\n"
          "          [--only NAME]  (only the variants tagged NAME, else those whose name contains "
          "it)\n"
          "          [--adaptive-malloc]  (leave glibc's malloc thresholds adaptive)\n"
          "          [--thread-per-variant]  (each variant on a thread of its own: its steps "
          "allocate from a malloc arena of their own; perf tells the variants apart by thread "
          "name)\n",
          argv[0], d.threads, d.rounds, d.steps_a, d.steps_b, d.steps_c);
      return a == "--help" || a == "-h" ? 0 : 2;
    }
  }
  if (cfg.threads < 1 || cfg.rounds < 1 || cfg.steps_a < 1 || cfg.steps_b < 1 || cfg.steps_c < 1 ||
      cfg.count_ops < 0 || cfg.warmup < 0) {
    std::fprintf(stderr, "threads, rounds and steps must be >= 1\n");
    return 2;
  }
  const std::string allocator = fix_allocator(cfg.fixed_malloc);
  torch::set_num_threads(cfg.threads);
  std::printf("feasible %s overhead benchmark; LibTorch threads: %d; %s%s\n", feasible::kVersion,
              torch::get_num_threads(), allocator.c_str(),
              cfg.thread_per_variant && cfg.count_ops == 0 ? "; a thread per variant" : "");
  const auto t0 = Clock::now();
  std::fflush(stdout);
  if (cfg.sections.find('a') != std::string::npos) section_a(cfg);
  std::fflush(stdout);
  if (cfg.sections.find('b') != std::string::npos) section_b(cfg);
  std::fflush(stdout);
  if (cfg.sections.find('c') != std::string::npos) section_c(cfg);
  std::printf("\ntotal %.1f s\n", std::chrono::duration<double>(Clock::now() - t0).count());
  return 0;
}
