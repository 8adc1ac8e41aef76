// E5, per-class recall: what the outcome shows (checks, results.json, report). Torch-free.
#include <algorithm>
#include <sstream>

#include "apps/feasible/fashion_workload.h"
#include "apps/feasible/recall.h"

namespace feasible::app {
namespace {

/// The Fashion-MNIST class names (the same list as fashion.h's, kept here so that this part
/// stays Torch-free).
const char* const kClassNames[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                     "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

std::string class_name(int k) { return k >= 0 && k < 10 ? kClassNames[k] : "?"; }

/// The number of classes whose recall is at least `target`.
int classes_at_least(const std::vector<double>& recall, double target) {
  return static_cast<int>(
      std::count_if(recall.begin(), recall.end(), [&](double r) { return r >= target; }));
}

/// "0.812 (Shirt); 10 of 10 classes >= 0.80".
std::string summary(const RecallEpoch& e, double target) {
  return "smallest " + fixed(e.min_recall(), 3) + " (" + class_name(e.min_class()) + "); " +
         std::to_string(classes_at_least(e.recall, target)) + " of " +
         std::to_string(e.recall.size()) + " classes >= " + fixed(target, 2);
}

nlohmann::json run_json(const RecallRun& run) {
  nlohmann::json epochs = nlohmann::json::array();
  for (const RecallEpoch& e : run.epochs) {
    epochs.push_back({{"epoch", e.epoch},
                      {"recall", e.recall},
                      {"min_recall", e.min_recall()},
                      {"min_class", e.min_class()},
                      {"accuracy_pct", e.accuracy},
                      {"seconds", e.seconds}});
  }
  nlohmann::json j = {{"method", run.method},
                      {"train_recall", run.recall()},
                      {"min_train_recall", run.epochs.back().min_recall()},
                      {"train_accuracy_pct", run.epochs.back().accuracy},
                      {"test_recall", run.test_recall},
                      {"test_accuracy_pct", run.test_accuracy},
                      {"train_seconds", run.train_seconds},
                      {"epochs", epochs}};
  if (!run.multiplier.empty()) {
    j["multiplier"] = run.multiplier;
    j["penalty"] = run.penalty;
  }
  return j;
}

}  // namespace

double RecallEpoch::min_recall() const {
  return recall.empty() ? 0.0 : *std::min_element(recall.begin(), recall.end());
}

int RecallEpoch::min_class() const {
  return recall.empty()
             ? -1
             : static_cast<int>(std::min_element(recall.begin(), recall.end()) - recall.begin());
}

std::vector<Check> recall_checks(const RecallOutcome& o) {
  const double target = o.settings.target;
  const RecallEpoch &d = o.default_run.epochs.back(), &u = o.unconstrained.epochs.back();
  return {{"default: every class >= " + fixed(target, 2) + " training recall at the end (" +
               std::to_string(o.settings.epochs) + " epochs on " +
               std::to_string(o.train_examples) + " examples)",
           d.min_recall() >= target && d.recall.size() == 10, summary(d, target)},
          {"unconstrained training leaves some class below " + fixed(target, 2) +
               " training recall at the end (the constraints bind)",
           u.min_recall() < target, summary(u, target)}};
}

nlohmann::json recall_results(const RecallOutcome& o) {
  const RecallSettings& s = o.settings;
  nlohmann::json results;
  results["settings"] = fashion_workload_settings(o);
  results["settings"]["target_recall"] = s.target;
  results["settings"]["constraint"] =
      "one dense constraint of 10 entries: per class, target - mean predicted probability of "
      "the true class over the batch's examples of the class (primal); target - the batch's "
      "0-1 recall of the class (strict violation, dual)";
  results["settings"]["unconstrained"] =
      "the same Adam on the cross-entropy alone, same start and batch order";
  results["default"] = run_json(o.default_run);
  results["unconstrained"] = run_json(o.unconstrained);
  results["class_names"] = std::vector<std::string>(kClassNames, kClassNames + 10);
  return results;
}

namespace {

std::string settings_section(const RecallOutcome& o) {
  const RecallSettings& s = o.settings;
  std::ostringstream md;
  md << "## Problem\n\nA workload of the default optimizer (`feasible::make_default_optimizer`), "
        "not an experiment of the paper: an MLP must reach a training recall of at least "
     << fixed(s.target, 2)
     << " in every class of Fashion-MNIST (ten constraints). The 0-1 recall has no gradient: "
        "the primal step sees, per class, the mean predicted probability of the true class over "
        "the batch's examples of that class; the multiplier follows the batch's 0-1 recall "
        "(proxy constraints, Cotter et al. 2019). No dual step size is chosen.\n\n"
     << "## Settings\n\n"
     << "- Mode: " << s.mode << ". Data: Fashion-MNIST from `" << o.data_dir << "`, the first "
     << o.train_examples << " training examples (" << o.test_examples << " test examples).\n"
     << "- Model: MLP 784-" << s.hidden << "-10 (ReLU); Adam " << fmt(s.lr, 3) << "; batch "
     << s.batch_size << "; " << s.epochs << " epochs; seed " << s.seed
     << " (both runs start from the same model and see the same batches).\n"
     << "- Default: one dense constraint of 10 entries, target - surrogate <= 0, with the 0-1 "
        "recall as strict violation.\n"
     << "- Unconstrained: the same Adam on the cross-entropy alone.\n"
     << "- Recall is measured on the whole training subset (and, at the end, the test set) "
        "with the model of the end of each epoch.\n";
  return md.str();
}

std::string per_class_table(const RecallOutcome& o) {
  std::vector<std::vector<std::string>> rows;
  const RecallRun &d = o.default_run, &u = o.unconstrained;
  for (size_t k = 0; k < d.recall().size(); ++k) {
    const bool below = d.recall()[k] < o.settings.target;
    rows.push_back({std::to_string(k) + " " + class_name(static_cast<int>(k)),
                    (below ? "**" : "") + fixed(d.recall()[k], 3) + (below ? "**" : ""),
                    fixed(u.recall()[k], 3), fixed(d.test_recall[k], 3), fixed(u.test_recall[k], 3),
                    k < d.multiplier.size() ? fmt(d.multiplier[k], 3) : "",
                    k < d.penalty.size() ? fmt(d.penalty[k], 3) : ""});
  }
  rows.push_back({"accuracy (%)", fixed(d.epochs.back().accuracy, 2),
                  fixed(u.epochs.back().accuracy, 2), fixed(d.test_accuracy, 2),
                  fixed(u.test_accuracy, 2), "", ""});
  return markdown_table(
      {"class", "default: train recall", "unconstrained: train recall", "default: test recall",
       "unconstrained: test recall", "default: final lambda", "default: penalty c"},
      rows);
}

std::string per_epoch_table(const RecallOutcome& o) {
  std::vector<std::vector<std::string>> rows;
  const RecallRun &d = o.default_run, &u = o.unconstrained;
  for (size_t i = 0; i < d.epochs.size() && i < u.epochs.size(); ++i) {
    const RecallEpoch &a = d.epochs[i], &b = u.epochs[i];
    rows.push_back({std::to_string(a.epoch),
                    fixed(a.min_recall(), 3) + " (" + class_name(a.min_class()) + ")",
                    fixed(b.min_recall(), 3) + " (" + class_name(b.min_class()) + ")",
                    fixed(a.accuracy, 2), fixed(b.accuracy, 2)});
  }
  return markdown_table(
      {"epoch", "default: min train recall (class)", "unconstrained: min train recall (class)",
       "default: train accuracy (%)", "unconstrained: train accuracy (%)"},
      rows);
}

}  // namespace

std::string recall_report(const RecallOutcome& o, const FigureFile& figure) {
  const RecallRun &d = o.default_run, &u = o.unconstrained;
  std::ostringstream md;
  md << settings_section(o) << "\n## Per-class training recall at the end\n\n"
     << "Default: " << summary(d.epochs.back(), o.settings.target) << ", in "
     << fixed(d.train_seconds, 1)
     << " s of training. Unconstrained: " << summary(u.epochs.back(), o.settings.target) << ", in "
     << fixed(u.train_seconds, 1) << " s. A default recall below the target is in bold.\n\n"
     << per_class_table(o) << "\n## The smallest training recall per epoch\n\n"
     << "Epoch 0 is the model before training.\n\n"
     << per_epoch_table(o) << "\n"
     << markdown_figure(figure)
     << "\nData: [epochs.csv](epochs.csv) (every run, every epoch: per-class training recall), "
        "[classes.csv](classes.csv), [min_recall.csv](min_recall.csv).\n";
  return md.str();
}

}  // namespace feasible::app
