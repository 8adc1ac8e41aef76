// E4: the cost of constrained over penalized training. Ramirez et al. (arXiv:2505.20628),
// Table 2: wall-clock per run, median and standard deviation, with the two alternating.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <sstream>

#include "apps/feasible/experiments.h"
#include "apps/feasible/rate_problem.h"

namespace feasible::app {
namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double stddev(const std::vector<double>& v) {
  if (v.size() < 2) return 0;
  const double mean = std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
  double sum = 0;
  for (double x : v) sum += (x - mean) * (x - mean);
  return std::sqrt(sum / static_cast<double>(v.size() - 1));
}

}  // namespace

nlohmann::json run_overhead(const ExperimentContext& context) {
  const auto start = std::chrono::steady_clock::now();
  Progress& progress = *context.progress;
  const bool quick = context.config.quick;
  const int repeats = quick ? 3 : 7;
  const int64_t iterations = quick ? 4000 : 10000;
  const double primal_lr = 2e-2;
  const double penalty_c = std::pow(10.0, 1.0 / 3.0);  // 2.15, the paper's best penalty
  const double dual_step = 1e-2;

  // A: penalized (library, FixedPenalty); B: constrained (library, Lagrangian with proxy);
  // C: constrained with the surrogate for the dual too (the same closure work as A, so B - C is
  // the cost of computing the exact rate and C - A the library's own); D: penalized written by
  // hand in plain LibTorch (the floor a library could reach).
  struct Arm {
    std::string key, label;
    RateMethod method;
    double value;
    std::vector<double> seconds;
  };
  std::vector<Arm> arms = {{"penalized",
                            "penalized (FixedPenalty, UnconstrainedOptimizer)",
                            RateMethod::kPenalty,
                            penalty_c,
                            {}},
                           {"constrained",
                            "constrained (Lagrangian + proxy, AlternatingDualPrimalOptimizer)",
                            RateMethod::kLagrangianProxy,
                            dual_step,
                            {}},
                           {"constrained_no_proxy",
                            "constrained, surrogate for the dual too (no exact-rate cost)",
                            RateMethod::kLagrangianSurrogate,
                            dual_step,
                            {}},
                           {"hand_penalized",
                            "penalized, hand-written LibTorch loop (reference)",
                            RateMethod::kHandPenalty,
                            penalty_c,
                            {}}};
  progress.start_experiment("overhead", static_cast<double>(repeats * arms.size() * iterations));
  const RateData data = make_rate_data(context.config.seed);
  // One untimed warm-up of each arm (allocator, thread pool, caches).
  for (Arm& arm : arms) train_rate(data, arm.method, arm.value, 200, primal_lr, 0, nullptr);

  CsvWriter csv(context.dir + "/runs.csv", {"round", "arm", "seconds", "class0_pct"});
  for (int r = 0; r < repeats; ++r) {
    for (Arm& arm : arms) {  // A B C D, A B C D, ...: drift hits every arm alike
      progress.start_run(arm.key + " round " + std::to_string(r + 1), iterations);
      const RateRun run =
          train_rate(data, arm.method, arm.value, iterations, primal_lr, 0, nullptr);
      arm.seconds.push_back(run.train_seconds);
      csv << r << arm.key << run.train_seconds << run.class0;
      csv.end_row();
      progress.update(iterations);
      progress.finish_run(fixed(run.train_seconds, 3) + " s");
    }
  }
  csv.close();

  nlohmann::json table = nlohmann::json::array();
  std::vector<std::vector<std::string>> rows;
  const double base = median(arms[0].seconds);
  for (const Arm& arm : arms) {
    const double med = median(arm.seconds);
    table.push_back({{"arm", arm.key},
                     {"label", arm.label},
                     {"runs", arm.seconds.size()},
                     {"seconds", arm.seconds},
                     {"median_seconds", med},
                     {"stddev_seconds", stddev(arm.seconds)},
                     {"ratio_to_penalized", med / base}});
    rows.push_back({arm.label, std::to_string(arm.seconds.size()), fixed(med, 3),
                    fixed(stddev(arm.seconds), 3), fixed(med / base, 3)});
  }
  const double ratio = median(arms[1].seconds) / base;
  const double library_ratio = median(arms[2].seconds) / base;
  const double hand_ratio = median(arms[3].seconds) / base;
  // Per-round ratios: robust to slow drift of the machine.
  std::vector<double> round_ratios;
  for (int r = 0; r < repeats; ++r) {
    round_ratios.push_back(arms[1].seconds[static_cast<size_t>(r)] /
                           arms[0].seconds[static_cast<size_t>(r)]);
  }

  nlohmann::json results =
      results_head(context, "overhead", "E4: overhead of constrained training");
  results["settings"] = {{"problem", "rate-constrained classification (E2), 400 points"},
                         {"iterations", iterations},
                         {"repeats", repeats},
                         {"order", "interleaved: A B C D, repeated"},
                         {"penalty_c", penalty_c},
                         {"dual_step", dual_step},
                         {"primal_lr", primal_lr},
                         {"timed", "the training loop only (data generation excluded)"}};
  results["table2"] = table;
  results["ratio_constrained_to_penalized"] = ratio;
  results["ratio_no_proxy_to_penalized"] = library_ratio;
  results["ratio_hand_to_penalized"] = hand_ratio;
  results["median_round_ratio"] = median(round_ratios);
  results["published"] = {
      {"rate",
       {{"penalized_seconds", 5.40}, {"constrained_seconds", 5.68}, {"ratio", 5.68 / 5.40}}},
      {"sparsity",
       {{"penalized_minutes", 8.17}, {"constrained_minutes", 8.30}, {"ratio", 8.30 / 8.17}}},
      {"hardware", "the paper's (PyTorch with Cooper)"}};
  results["files"] = {
      {"report", "report.md"}, {"csv", {"runs.csv"}}, {"figures", nlohmann::json::array()}};
  results["checks"].push_back(
      check("the library's own cost: constrained (same closure work) within 10% of penalized",
            library_ratio <= 1.10, "ratio " + fixed(library_ratio, 3)));

  std::ostringstream md;
  md << "## Settings\n\nThe rate-constrained problem of E2, " << iterations
     << " full-batch iterations per run, " << repeats
     << " runs per arm, interleaved (A B C D A B C D ...), after one untimed warm-up of each. "
        "Only the training loop is timed. Penalized: c = 2.15; constrained: dual step 1e-2.\n";
  if (quick) {
    md << "- **Quick mode**: " << repeats << " runs per arm instead of 7, " << iterations
       << " iterations instead of 10,000.\n";
  }
  md << "\n## Table 2: wall-clock per run\n\n"
     << markdown_table({"arm", "runs", "median (s)", "std (s)", "ratio to penalized"}, rows)
     << "\nConstrained / penalized: **" << fixed(ratio, 3) << "** (median of per-round ratios "
     << fixed(median(round_ratios), 3) << ").\n\n"
     << "Where the extra cost comes from: with the same closure work (arm C) the constrained step "
        "costs "
     << fixed(library_ratio, 3)
     << " times the penalized one; the rest is the exact 0-1 rate that the proxy constraint "
        "computes every step (a few extra tensor operations, which on a 400-point problem are a "
        "visible share of a step dominated by per-operation overhead). The hand-written "
        "penalized loop costs "
     << fixed(hand_ratio, 3) << " times the library's.\n\n"
     << "Published (the paper's hardware, PyTorch with Cooper): rate-constrained 5.40 s vs 5.68 s "
        "(ratio 1.052); sparsity-constrained 8.17 min vs 8.30 min (ratio 1.016). The sparsity "
        "row is measured by the sparsity experiment (`feasible reproduce sparsity`, its report's "
        "section \"Table 2, second row\"), where penalized and constrained epochs alternate. "
        "Absolute times are not comparable across machines; the ratio is.\n\n"
        "Data: [runs.csv](runs.csv).\n";

  write_results(context, results, md.str(), start, "constrained/penalized " + fixed(ratio, 3));
  return results;
}

}  // namespace feasible::app
