// E6, the per-example constraint: what the outcome shows (checks, results.json, report).
// Torch-free.
#include <cmath>
#include <sstream>

#include "apps/feasible/fashion_workload.h"
#include "apps/feasible/per_example.h"

namespace feasible::app {
namespace {

std::string pct(double fraction) { return fixed(100 * fraction, 1); }

/// "12.3% (615 of 5000)".
std::string above_text(double fraction, int64_t n) {
  return pct(fraction) + "% (" + std::to_string(std::llround(fraction * static_cast<double>(n))) +
         " of " + std::to_string(n) + ")";
}

nlohmann::json run_json(const PerExampleRun& run) {
  nlohmann::json epochs = nlohmann::json::array();
  for (const PerExampleEpoch& e : run.epochs) {
    epochs.push_back({{"epoch", e.epoch},
                      {"fraction_above", e.above},
                      {"mean_loss", e.mean_loss},
                      {"accuracy_pct", e.accuracy},
                      {"seconds", e.seconds}});
  }
  nlohmann::json j = {{"method", run.method},
                      {"fraction_above", run.above()},
                      {"mean_loss", run.epochs.back().mean_loss},
                      {"median_loss", run.median_loss},
                      {"p90_loss", run.p90_loss},
                      {"max_loss", run.max_loss},
                      {"train_accuracy_pct", run.epochs.back().accuracy},
                      {"test_accuracy_pct", run.test_accuracy},
                      {"train_seconds", run.train_seconds},
                      {"epochs", epochs}};
  if (run.method == "default") {
    j["mean_multiplier"] = run.mean_multiplier;
    j["max_multiplier"] = run.max_multiplier;
    j["penalty"] = run.penalty;
  }
  return j;
}

}  // namespace

std::vector<Check> per_example_checks(const PerExampleOutcome& o) {
  const PerExampleRun &d = o.default_run, &u = o.unconstrained;
  const int64_t n = o.train_examples;
  return {
      {"default: fewer examples above the bound than unconstrained training, at equal epochs "
       "(" +
           std::to_string(o.settings.epochs) + ", on the whole training subset)",
       d.above() < u.above() && d.epochs.size() == u.epochs.size(),
       "default " + above_text(d.above(), n) + ", unconstrained " + above_text(u.above(), n)}};
}

nlohmann::json per_example_results(const PerExampleOutcome& o) {
  const PerExampleSettings& s = o.settings;
  nlohmann::json results;
  results["settings"] = fashion_workload_settings(o);
  results["settings"]["bound"] = s.bound;
  results["settings"]["constraint"] =
      "one inequality of size N (one entry per training example), cross-entropy_i - bound <= 0, "
      "MultiplierKind::kIndexed, the batch observed through its indices";
  results["settings"]["unconstrained"] =
      "the same Adam on the mean cross-entropy alone, same start and batches";
  results["default"] = run_json(o.default_run);
  results["unconstrained"] = run_json(o.unconstrained);
  return results;
}

namespace {

std::string settings_section(const PerExampleOutcome& o) {
  const PerExampleSettings& s = o.settings;
  std::ostringstream md;
  md << "## Problem\n\nA workload of the default optimizer (`feasible::make_default_optimizer`), "
        "not an experiment of the paper: every training example's cross-entropy must be at most "
     << fmt(s.bound, 3) << ". That is " << o.train_examples
     << " constraints, one multiplier per example (`MultiplierKind::kIndexed`); each batch "
        "observes its own examples through their indices. The loss is the batch's mean "
        "cross-entropy; the default weighs the constraint's primal term itself, without a dual "
        "step size. The comparison is unconstrained training for the same number of epochs.\n\n"
     << "## Settings\n\n"
     << "- Mode: " << s.mode << ". Data: Fashion-MNIST from `" << o.data_dir << "`, the first "
     << o.train_examples << " training examples (" << o.test_examples << " test examples).\n"
     << "- Model: MLP 784-" << s.hidden << "-10 (ReLU); Adam " << fmt(s.lr, 3) << "; batch "
     << s.batch_size << "; " << s.epochs << " epochs; seed " << s.seed
     << " (both runs start from the same model and see the same batches).\n"
     << "- The fraction above the bound is measured on the whole training subset with the model "
        "of the end of each epoch.\n";
  return md.str();
}

std::string end_table(const PerExampleOutcome& o) {
  const PerExampleRun &d = o.default_run, &u = o.unconstrained;
  const auto row = [&](const PerExampleRun& r, const std::string& name) {
    return std::vector<std::string>{name,
                                    above_text(r.above(), o.train_examples),
                                    fixed(r.epochs.back().mean_loss, 3),
                                    fixed(r.median_loss, 3),
                                    fixed(r.p90_loss, 3),
                                    fixed(r.max_loss, 2),
                                    fixed(r.epochs.back().accuracy, 2),
                                    fixed(r.test_accuracy, 2),
                                    fixed(r.train_seconds, 1)};
  };
  return markdown_table({"run", "above the bound", "mean loss", "median loss", "90% quantile",
                         "largest loss", "train acc. (%)", "test acc. (%)", "training (s)"},
                        {row(d, "**default** (no dual step)"), row(u, "unconstrained")});
}

std::string per_epoch_table(const PerExampleOutcome& o) {
  std::vector<std::vector<std::string>> rows;
  const auto &d = o.default_run.epochs, &u = o.unconstrained.epochs;
  for (size_t i = 0; i < d.size() && i < u.size(); ++i) {
    rows.push_back({std::to_string(d[i].epoch), pct(d[i].above), pct(u[i].above),
                    fixed(d[i].mean_loss, 3), fixed(u[i].mean_loss, 3)});
  }
  return markdown_table({"epoch", "default: above (%)", "unconstrained: above (%)",
                         "default: mean loss", "unconstrained: mean loss"},
                        rows);
}

}  // namespace

std::string per_example_report(const PerExampleOutcome& o, const FigureFile& figure) {
  const PerExampleRun& d = o.default_run;
  std::ostringstream md;
  md << settings_section(o) << "\n## At the end (" << o.settings.epochs << " epochs)\n\n"
     << end_table(o) << "\nThe default's multipliers end with mean " << fmt(d.mean_multiplier, 3)
     << " and largest " << fmt(d.max_multiplier, 3) << "; its calibrated penalty is "
     << fmt(d.penalty, 3)
     << " (the per-visit step u, one for all entries of an indexed constraint; each "
        "multiplier moves by u per visit and stays within [0, "
     << fmt(d.visit_cap, 3) << "u]).\n"
     << "\n## Per epoch\n\nEpoch 0 is the model before training.\n\n"
     << per_epoch_table(o) << "\n"
     << markdown_figure(figure) << "\nData: [epochs.csv](epochs.csv).\n";
  return md.str();
}

}  // namespace feasible::app
