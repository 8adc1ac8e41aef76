// E2, rate-constrained classification: the sweeps (with the library), the CSV files, Figure 2.
#include <chrono>
#include <cmath>

#include "apps/feasible/figures.h"
#include "apps/feasible/rate.h"

namespace feasible::app {
namespace {

/// series.csv (every run's series), sweep.csv (Figure 2's data) and surrogate.csv.
void write_rate_csvs(const RateOutcome& o, const std::string& dir) {
  CsvWriter series(dir + "/series.csv", {"method", "value", "iteration", "class0_pct",
                                         "accuracy_pct", "bce", "surrogate_rate", "multiplier"});
  const std::vector<RateRun> default_runs = {o.default_run};
  for (const auto* set : {&o.penalty, &o.lagrangian, &o.surrogate, &default_runs}) {
    for (const RateRun& run : *set) {
      for (const RatePoint& p : run.series) {
        series << rate_method_key(run.method) << run.value << p.iteration << p.class0 << p.accuracy
               << p.loss << p.surrogate << p.multiplier;
        series.end_row();
      }
    }
  }
  series.close();
  CsvWriter sweep(dir + "/sweep.csv",
                  {"value", "plot_x", "penalty_class0", "penalty_accuracy", "lagrangian_class0",
                   "lagrangian_accuracy", "lagrangian_multiplier", "published_penalty_class0",
                   "published_penalty_accuracy", "published_lagrangian_class0",
                   "published_lagrangian_accuracy"});
  for (size_t i = 0; i < o.settings.values.size(); ++i) {
    const double v = o.settings.values[i];
    const RateRun &p = o.penalty[i], &l = o.lagrangian[i];
    sweep << v << (v == 0 ? 1e-5 : v) << p.class0 << p.accuracy << l.class0 << l.accuracy
          << l.multiplier << published_rate_penalty(v).first << published_rate_penalty(v).second
          << published_rate_lagrangian(v).first << published_rate_lagrangian(v).second;
    sweep.end_row();
  }
  sweep.close();
  CsvWriter surrogate(dir + "/surrogate.csv",
                      {"dual_step", "class0_pct", "accuracy_pct", "surrogate_rate", "multiplier"});
  for (const RateRun& run : o.surrogate) {
    surrogate << run.value << run.class0 << run.accuracy << run.surrogate << run.multiplier;
    surrogate.end_row();
  }
  surrogate.close();
}

}  // namespace

RateSettings rate_settings(bool quick, uint64_t seed) {
  RateSettings s;
  s.quick = quick;
  s.seed = seed;
  // The sweep: 0, then 10^(k/3) for k = -12 ... 6 (printed 1.00, 2.15, 4.64 times 1e-4 ... 1e2).
  std::vector<double> all = {0.0};
  for (int k = -12; k <= 6; ++k) all.push_back(std::pow(10.0, k / 3.0));
  s.values = all;
  s.surrogate_values = all;
  if (quick) {
    // Keep the values that carry each qualitative result (0, the collapse, the one
    // non-collapsed penalty, the Lagrangian's threshold, large steps).
    const auto pick = [&](std::vector<int> ks) {
      std::vector<double> out;
      for (int k : ks) out.push_back(all[static_cast<size_t>(k)]);
      return out;
    };
    s.values = pick({0, 4, 5, 7, 13, 14, 19});
    s.surrogate_values = pick({7});
  }
  return s;
}

RateOutcome train_rate_sweep(const RateSettings& s, Progress& progress) {
  const double runs = static_cast<double>(2 * s.values.size() + s.surrogate_values.size() + 1);
  progress.start_experiment("rate", runs * static_cast<double>(s.iterations));
  const RateData data = make_rate_data(s.seed);
  RateOutcome o;
  o.settings = s;
  const auto train = [&](RateMethod method, double v) {
    return train_rate(data, method, v, s.iterations, s.primal_lr, s.record_every, &progress);
  };
  for (double v : s.values) o.penalty.push_back(train(RateMethod::kPenalty, v));
  for (double v : s.values) o.lagrangian.push_back(train(RateMethod::kLagrangianProxy, v));
  for (double v : s.surrogate_values) {
    o.surrogate.push_back(train(RateMethod::kLagrangianSurrogate, v));
  }
  o.default_run = train(RateMethod::kDefault, 0);
  o.first_x0 = data.x[0][0].item<double>();
  o.first_x1 = data.x[0][1].item<double>();
  o.sum_x = data.x.sum().item<double>();
  return o;
}

nlohmann::json run_rate(const ExperimentContext& context) {
  const auto start = std::chrono::steady_clock::now();
  const RateOutcome outcome =
      train_rate_sweep(rate_settings(context.config.quick, context.config.seed), *context.progress);
  write_rate_csvs(outcome, context.dir);
  const FigureFile figure2 =
      draw_figure(context.dir, "figure2",
                  "Figure 2: class-0 percentage and accuracy against the penalty coefficient and "
                  "against the dual step size",
                  rate_figure2_script(), 1200, 760);

  nlohmann::json results =
      results_head(context, "rate", "E2: rate-constrained linear classification");
  results.update(rate_results(outcome));
  results["files"] = {{"report", "report.md"},
                      {"csv", {"series.csv", "sweep.csv", "surrogate.csv"}},
                      {"figures", figures_json({figure2})}};
  results["checks"] = checks_json(rate_checks(outcome));
  write_results(context, results, rate_report(outcome, figure2), start);
  return results;
}

}  // namespace feasible::app
