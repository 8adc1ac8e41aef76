// E5, per-class recall: the experiment's entry point, its CSV files and its figure.
#include <chrono>

#include "apps/feasible/figures.h"
#include "apps/feasible/recall.h"

namespace feasible::app {
namespace {

std::vector<const RecallRun*> runs_of(const RecallOutcome& o) {
  return {&o.default_run, &o.validated, &o.unconstrained};
}

/// epochs.csv: every run, every epoch from 0: per-class training and validation recall.
void write_epochs_csv(const RecallOutcome& o, const std::string& dir) {
  std::vector<std::string> header = {"run",       "epoch",        "min_recall",
                                     "min_class", "accuracy_pct", "seconds"};
  for (int k = 0; k < 10; ++k) header.push_back("recall_" + std::to_string(k));
  header.push_back("validation_min_recall");
  header.push_back("validation_loss");
  for (int k = 0; k < 10; ++k) header.push_back("validation_recall_" + std::to_string(k));
  CsvWriter epochs(dir + "/epochs.csv", header);
  for (const RecallRun* run : runs_of(o)) {
    for (const RecallEpoch& e : run->epochs) {
      epochs << run->method << e.epoch << e.min_recall() << e.min_class() << e.accuracy
             << e.seconds;
      for (double r : e.recall) epochs << r;
      epochs << e.min_validation_recall() << e.validation_loss;
      for (double r : e.validation_recall) epochs << r;
      epochs.end_row();
    }
  }
  epochs.close();
}

/// The cells of a run's audit of class k: verdict, lower and upper bound (empty when none).
void audit_cells(CsvWriter& csv, const RecallRun& run, size_t k) {
  if (k < run.audit.classes.size()) {
    const RecallAuditClass& c = run.audit.classes[k];
    csv << c.verdict << c.lower << c.upper;
  } else {
    csv << ""
        << ""
        << "";
  }
}

/// classes.csv: per class at the end, every run's training and test recall (last and best
/// iterate), the constrained runs' multipliers, penalties and test audits.
void write_classes_csv(const RecallOutcome& o, const std::string& dir) {
  CsvWriter classes(dir + "/classes.csv", {"class",
                                           "name",
                                           "default_train_recall",
                                           "unconstrained_train_recall",
                                           "default_test_recall",
                                           "unconstrained_test_recall",
                                           "default_multiplier",
                                           "default_penalty",
                                           "validated_train_recall",
                                           "validated_test_recall",
                                           "validated_multiplier",
                                           "validated_penalty",
                                           "validation_examples",
                                           "default_best_test_recall",
                                           "validated_best_test_recall",
                                           "default_audit_verdict",
                                           "default_audit_lower",
                                           "default_audit_upper",
                                           "validated_audit_verdict",
                                           "validated_audit_lower",
                                           "validated_audit_upper"});
  const RecallRun &d = o.default_run, &v = o.validated, &u = o.unconstrained;
  for (int k = 0; k < 10; ++k) {
    const auto i = static_cast<size_t>(k);
    classes << k << recall_class_name(k) << d.recall()[i] << u.recall()[i] << d.test_recall[i]
            << u.test_recall[i] << d.multiplier[i] << d.penalty[i] << v.recall()[i]
            << v.test_recall[i] << v.multiplier[i] << v.penalty[i] << o.validation_class_sizes[i]
            << d.best_test_recall[i] << v.best_test_recall[i];
    audit_cells(classes, d, i);
    audit_cells(classes, v, i);
    classes.end_row();
  }
  classes.close();
}

/// min_recall.csv, the figure's columns: per epoch, every run's smallest training recall, then
/// its smallest validation recall.
void write_min_recall_csv(const RecallOutcome& o, const std::string& dir) {
  CsvWriter curve(dir + "/min_recall.csv",
                  {"epoch", "default_min_recall", "unconstrained_min_recall",
                   "validated_min_recall", "default_validation_min_recall",
                   "validated_validation_min_recall", "unconstrained_validation_min_recall"});
  const RecallRun &d = o.default_run, &v = o.validated, &u = o.unconstrained;
  for (size_t i = 0; i < d.epochs.size(); ++i) {
    curve << d.epochs[i].epoch << d.epochs[i].min_recall() << u.epochs[i].min_recall()
          << v.epochs[i].min_recall() << d.epochs[i].min_validation_recall()
          << v.epochs[i].min_validation_recall() << u.epochs[i].min_validation_recall();
    curve.end_row();
  }
  curve.close();
}

}  // namespace

nlohmann::json run_recall(const ExperimentContext& context) {
  const auto start = std::chrono::steady_clock::now();
  const RecallOutcome outcome = train_recall_experiment(context.config, *context.progress);
  write_epochs_csv(outcome, context.dir);
  write_classes_csv(outcome, context.dir);
  write_min_recall_csv(outcome, context.dir);
  const FigureFile figure = draw_figure(
      context.dir, "min_recall",
      "The smallest per-class recall before training and after every epoch, on the training "
      "subset (top) and the validation split (bottom): the default optimizer, the validated "
      "default and unconstrained training",
      recall_figure_script(outcome.settings.target, outcome.margin,
                           static_cast<int>(outcome.settings.epochs)),
      1100, 800);
  nlohmann::json results = results_head(context, "recall",
                                        "E5: per-class recall >= 0.80 on Fashion-MNIST (default "
                                        "optimizer)");
  results.update(recall_results(outcome));
  results["files"] = {{"report", "report.md"},
                      {"csv", {"epochs.csv", "classes.csv", "min_recall.csv"}},
                      {"figures", figures_json({figure})}};
  results["checks"] = checks_json(recall_checks(outcome));
  write_results(context, results, recall_report(outcome, figure), start);
  return results;
}

}  // namespace feasible::app
