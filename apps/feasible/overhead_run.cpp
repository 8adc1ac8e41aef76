// E4, the overhead: the timed runs, interleaved (with the library and by hand), and runs.csv.
#include <chrono>
#include <cmath>

#include "apps/feasible/overhead.h"
#include "apps/feasible/rate_problem.h"

namespace feasible::app {
namespace {

/// An arm and how it trains.
struct ArmPlan {
  OverheadArm arm;
  RateMethod method;
  double value;
};

/// A: penalized (library, FixedPenalty); B: constrained (library, Lagrangian with proxy);
/// C: constrained with the surrogate for the dual too (the same closure work as A, so B - C is
/// the cost of computing the exact rate and C - A the library's own); D: penalized written by
/// hand in plain LibTorch (the floor a library could reach).
std::vector<ArmPlan> arm_plans(const OverheadSettings& s) {
  return {
      {{"penalized", "penalized (FixedPenalty, UnconstrainedOptimizer)", {}},
       RateMethod::kPenalty,
       s.penalty_c},
      {{"constrained", "constrained (Lagrangian + proxy, AlternatingDualPrimalOptimizer)", {}},
       RateMethod::kLagrangianProxy,
       s.dual_step},
      {{"constrained_no_proxy", "constrained, surrogate for the dual too (no exact-rate cost)", {}},
       RateMethod::kLagrangianSurrogate,
       s.dual_step},
      {{"hand_penalized", "penalized, hand-written LibTorch loop (reference)", {}},
       RateMethod::kHandPenalty,
       s.penalty_c}};
}

/// Times every arm `repeats` times, interleaved, after one untimed warm-up of each; writes
/// runs.csv (one row per timed run).
OverheadOutcome time_arms(const OverheadSettings& s, uint64_t seed, Progress& progress,
                          const std::string& dir) {
  std::vector<ArmPlan> plans = arm_plans(s);
  progress.start_experiment("overhead",
                            static_cast<double>(s.repeats * plans.size() * s.iterations));
  const RateData data = make_rate_data(seed);
  // One untimed warm-up of each arm (allocator, thread pool, caches).
  for (ArmPlan& p : plans) train_rate(data, p.method, p.value, 200, s.primal_lr, 0, nullptr);

  CsvWriter csv(dir + "/runs.csv", {"round", "arm", "seconds", "class0_pct"});
  for (int r = 0; r < s.repeats; ++r) {
    for (ArmPlan& p : plans) {  // A B C D, A B C D, ...: drift hits every arm alike
      progress.start_run(p.arm.key + " round " + std::to_string(r + 1), s.iterations);
      const RateRun run =
          train_rate(data, p.method, p.value, s.iterations, s.primal_lr, 0, nullptr);
      p.arm.seconds.push_back(run.train_seconds);
      csv << r << p.arm.key << run.train_seconds << run.class0;
      csv.end_row();
      progress.update(s.iterations);
      progress.finish_run(fixed(run.train_seconds, 3) + " s");
    }
  }
  csv.close();
  OverheadOutcome o;
  o.settings = s;
  for (ArmPlan& p : plans) o.arms.push_back(std::move(p.arm));
  return o;
}

}  // namespace

OverheadSettings overhead_settings(bool quick) {
  OverheadSettings s;
  s.quick = quick;
  s.repeats = quick ? 3 : 7;
  s.iterations = quick ? 4000 : 10000;
  s.penalty_c = std::pow(10.0, 1.0 / 3.0);  // 2.15, the paper's best penalty
  return s;
}

nlohmann::json run_overhead(const ExperimentContext& context) {
  const auto start = std::chrono::steady_clock::now();
  const OverheadOutcome outcome = time_arms(overhead_settings(context.config.quick),
                                            context.config.seed, *context.progress, context.dir);
  nlohmann::json results =
      results_head(context, "overhead", "E4: overhead of constrained training");
  results.update(overhead_results(outcome));
  results["files"] = {
      {"report", "report.md"}, {"csv", {"runs.csv"}}, {"figures", nlohmann::json::array()}};
  results["checks"] = checks_json(overhead_checks(outcome));
  write_results(context, results, overhead_report(outcome), start,
                "constrained/penalized " + fixed(overhead_ratios(outcome).constrained, 3));
  return results;
}

}  // namespace feasible::app
