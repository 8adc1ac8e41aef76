// E3, sparsity: the CSV files and the figures, and the experiment from start to end.
#include <chrono>

#include "apps/feasible/figures.h"
#include "apps/feasible/sparsity.h"

namespace feasible::app {
namespace {

/// bisection.csv (the penalty's runs) and figure1.csv (Figure 1's points).
void write_bisection_csvs(const SparsityOutcome& o, const std::string& dir) {
  CsvWriter csv(dir + "/bisection.csv",
                {"step", "role", "c", "test_density", "expected_density", "train_accuracy_pct",
                 "test_accuracy_pct", "train_seconds"});
  for (const auto& s : o.steps) {
    csv << s.step << s.role << s.run.spec.value << s.run.test_density << s.run.expected_density
        << s.run.train_accuracy << s.run.test_accuracy << s.run.train_seconds;
    csv.end_row();
  }
  csv.close();
  // Figure 1's points: bisection step, test-time density, and a label with c.
  CsvWriter figure1(dir + "/figure1.csv", {"step", "test_density_pct", "label"});
  for (const auto& s : o.steps) {
    figure1 << s.step << 100 * s.run.test_density << "c=" + fmt(s.run.spec.value, 3);
    figure1.end_row();
  }
  figure1.close();
}

/// trajectories.csv: every constrained run, from epoch 0 (before training).
void write_trajectories_csv(const SparsityOutcome& o, const std::string& dir) {
  std::vector<const SparsityRun*> runs = {&o.constrained, &o.proxy, &o.default_run};
  for (const auto& r : o.sweep_nupi) runs.push_back(&r);
  for (const auto& r : o.sweep_ga) runs.push_back(&r);
  CsvWriter csv(dir + "/trajectories.csv",
                {"run", "method", "dual_step", "epoch", "expected_density", "test_density",
                 "multiplier", "train_loss", "test_accuracy_pct", "seconds"});
  for (const SparsityRun* r : runs) {
    std::vector<SparsityEpoch> rows = {r->initial};
    rows.insert(rows.end(), r->epochs.begin(), r->epochs.end());
    for (const auto& e : rows) {
      csv << r->spec.label << sparsity_method_key(r->spec.method) << r->spec.value << e.epoch
          << e.expected_density << e.test_density << e.multiplier << e.train_loss << e.test_accuracy
          << e.seconds;
      csv.end_row();
    }
  }
  csv.close();
}

/// curves.csv: the figures' columns per epoch (row 0: the model before training, the same for
/// every run: same seed, same start).
void write_curves_csv(const SparsityOutcome& o, const std::string& dir) {
  CsvWriter csv(
      dir + "/curves.csv",
      {"epoch", "constrained_expected_pct", "constrained_test_pct", "constrained_multiplier",
       "proxy_expected_pct", "proxy_test_pct", "proxy_multiplier", "nupi_low_expected_pct",
       "nupi_high_expected_pct", "ga_low_expected_pct", "ga_mid_expected_pct",
       "ga_high_expected_pct", "default_expected_pct", "default_test_pct", "default_multiplier"});
  const auto at = [](const SparsityRun& r, size_t row) -> const SparsityEpoch& {
    return row == 0 ? r.initial : r.epochs[row - 1];
  };
  const SparsityRun &c = o.constrained, &p = o.proxy, &d = o.default_run;
  for (size_t i = 0; i <= c.epochs.size(); ++i) {
    csv << at(c, i).epoch << 100 * at(c, i).expected_density << 100 * at(c, i).test_density
        << at(c, i).multiplier << 100 * at(p, i).expected_density << 100 * at(p, i).test_density
        << at(p, i).multiplier << 100 * at(o.sweep_nupi[0], i).expected_density
        << 100 * at(o.sweep_nupi[1], i).expected_density
        << 100 * at(o.sweep_ga[0], i).expected_density
        << 100 * at(o.sweep_ga[1], i).expected_density
        << 100 * at(o.sweep_ga[2], i).expected_density << 100 * at(d, i).expected_density
        << 100 * at(d, i).test_density << at(d, i).multiplier;
    csv.end_row();
  }
  csv.close();
}

/// timing.csv: Table 2's rounds.
void write_timing_csv(const SparsityOutcome& o, const std::string& dir) {
  const SparsityTiming& t = o.timing;
  CsvWriter csv(
      dir + "/timing.csv",
      {"round", "penalized_seconds_per_epoch", "constrained_seconds_per_epoch",
       "penalized_data_seconds_per_epoch", "constrained_data_seconds_per_epoch", "ratio"});
  for (size_t i = 0; i < t.penalty.size(); ++i) {
    csv << static_cast<int64_t>(i + 1) << t.penalty[i] << t.constrained[i] << t.data_penalty[i]
        << t.data_constrained[i] << t.constrained[i] / t.penalty[i];
    csv.end_row();
  }
  csv.close();
}

SparsityFigures draw_sparsity_figures(const SparsityOutcome& o, const std::string& dir) {
  const double target_pct = 100 * o.mode.settings.target;
  SparsityFigure1 f1;
  f1.bisection_runs = static_cast<int>(o.steps.size());
  f1.target_pct = target_pct;
  f1.proxy_test_pct = 100 * o.proxy.test_density;
  f1.constrained_test_pct = 100 * o.constrained.test_density;
  f1.constrained_expected_pct = 100 * o.constrained.expected_density;
  SparsityFigures figures;
  figures.figure1 = draw_figure(
      dir, "figure1",
      "Figure 1: the test-time density of each penalized training run of the bisection, with "
      "its coefficient c, against one constrained run: the proxy run (which constrains the "
      "test-time density) and the constrained run (which constrains the expected density; both "
      "its densities shown)",
      sparsity_figure1_script(f1), 1300, 620);
  const int epochs = static_cast<int>(o.mode.settings.epochs);
  figures.trajectory =
      draw_figure(dir, "trajectory",
                  "The constrained runs (nuPI, its proxy run, the default optimizer): density and "
                  "multiplier before training and at the end of every epoch",
                  sparsity_trajectory_script(target_pct, epochs), 1100, 700);
  const SparsityMode& m = o.mode;
  figures.dual_sweep = draw_figure(
      dir, "dual_sweep",
      "The choice of dual optimizer: nuPI at three step sizes against plain gradient ascent",
      sparsity_dual_sweep_script(
          target_pct, epochs,
          {m.nupi_lr * m.sweep_scale[0], m.nupi_lr, m.nupi_lr * m.sweep_scale[1]},
          {o.sweep_ga[0].spec.value, o.sweep_ga[1].spec.value, o.sweep_ga[2].spec.value}),
      1100, 560);
  return figures;
}

}  // namespace

nlohmann::json run_sparsity(const ExperimentContext& context) {
  const auto start = std::chrono::steady_clock::now();
  const SparsityOutcome outcome = train_sparsity_experiment(context.config, *context.progress);
  write_bisection_csvs(outcome, context.dir);
  write_trajectories_csv(outcome, context.dir);
  write_curves_csv(outcome, context.dir);
  write_timing_csv(outcome, context.dir);
  const SparsityFigures figures = draw_sparsity_figures(outcome, context.dir);

  nlohmann::json results = results_head(
      context, "sparsity", "E3: sparsity-constrained training with L0 gates (Fashion-MNIST)");
  results.update(sparsity_results(outcome));
  results["files"] = {
      {"report", "report.md"},
      {"csv", {"bisection.csv", "trajectories.csv", "curves.csv", "timing.csv", "figure1.csv"}},
      {"figures", figures_json({figures.figure1, figures.trajectory, figures.dual_sweep})}};
  results["checks"] = checks_json(sparsity_checks(outcome));
  write_results(context, results, sparsity_report(outcome, figures), start);
  return results;
}

}  // namespace feasible::app
