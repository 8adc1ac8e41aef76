// E5, per-class recall: what the outcome shows (checks, results.json, the texts the report
// shares). Torch-free.
#include <algorithm>
#include <cmath>

#include "apps/feasible/fashion_workload.h"
#include "apps/feasible/recall.h"

namespace feasible::app {
namespace {

/// The Fashion-MNIST class names (the same list as fashion.h's, kept here so that this part
/// stays Torch-free).
const char* const kClassNames[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                     "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

/// The number of classes whose recall is at least `target`.
int classes_at_least(const std::vector<double>& recall, double target) {
  return static_cast<int>(
      std::count_if(recall.begin(), recall.end(), [&](double r) { return r >= target; }));
}

double smallest(const std::vector<double>& values) {
  return values.empty() ? 0.0 : *std::min_element(values.begin(), values.end());
}

/// Whether a class's audit is complete: a verdict, finite bounds around the recall.
bool audited(const RecallAuditClass& c) {
  return (c.verdict == "holds" || c.verdict == "violated" || c.verdict == "inconclusive") &&
         std::isfinite(c.lower) && std::isfinite(c.upper) && c.lower <= c.recall &&
         c.recall <= c.upper && c.examples > 0;
}

/// "3 hold, 5 violated, 2 inconclusive" (and "1 not audited" when some class is not).
std::string verdict_counts(const RecallAudit& a) {
  int holds = 0, violated = 0, inconclusive = 0, other = 0;
  for (const RecallAuditClass& c : a.classes) {
    if (!audited(c))
      ++other;
    else if (c.verdict == "holds")
      ++holds;
    else if (c.verdict == "violated")
      ++violated;
    else
      ++inconclusive;
  }
  std::string text = std::to_string(holds) + " hold, " + std::to_string(violated) + " violated, " +
                     std::to_string(inconclusive) + " inconclusive";
  if (other > 0 || a.classes.size() != 10) {
    text += ", " + std::to_string(other + 10 - static_cast<int>(a.classes.size())) + " not audited";
  }
  return text;
}

nlohmann::json audit_json(const RecallAudit& a, double target) {
  nlohmann::json classes = nlohmann::json::array();
  for (size_t k = 0; k < a.classes.size(); ++k) {
    const RecallAuditClass& c = a.classes[k];
    classes.push_back({{"class", k},
                       {"name", recall_class_name(static_cast<int>(k))},
                       {"verdict", c.verdict},
                       {"test_recall", c.recall},
                       {"lower", c.lower},
                       {"lower_alpha", c.lower_alpha},
                       {"upper", c.upper},
                       {"upper_alpha", c.upper_alpha},
                       {"examples", c.examples}});
  }
  return {{"delta", a.delta},
          {"correction", a.correction},
          {"bound", "Clopper-Pearson"},
          {"classes", classes},
          {"not_shown_to_hold", recall_audit_findings(a, target)}};
}

nlohmann::json run_json(const RecallRun& run, double target) {
  nlohmann::json epochs = nlohmann::json::array();
  for (const RecallEpoch& e : run.epochs) {
    epochs.push_back({{"epoch", e.epoch},
                      {"recall", e.recall},
                      {"min_recall", e.min_recall()},
                      {"min_class", e.min_class()},
                      {"accuracy_pct", e.accuracy},
                      {"seconds", e.seconds},
                      {"validation_recall", e.validation_recall},
                      {"validation_min_recall", e.min_validation_recall()},
                      {"validation_loss", e.validation_loss}});
  }
  nlohmann::json j = {{"method", run.method},
                      {"train_recall", run.recall()},
                      {"min_train_recall", run.epochs.back().min_recall()},
                      {"train_accuracy_pct", run.epochs.back().accuracy},
                      {"test_recall", run.test_recall},
                      {"min_test_recall", smallest(run.test_recall)},
                      {"test_accuracy_pct", run.test_accuracy},
                      {"train_seconds", run.train_seconds},
                      {"epochs", epochs}};
  if (!run.multiplier.empty()) {
    j["multiplier"] = run.multiplier;
    j["penalty"] = run.penalty;
  }
  if (run.best_epoch >= 0) {
    j["best"] = {{"epoch", run.best_epoch},
                 {"reason", run.best_reason},
                 {"test_recall", run.best_test_recall},
                 {"min_test_recall", smallest(run.best_test_recall)},
                 {"test_accuracy_pct", run.best_test_accuracy}};
    j["audit"] = audit_json(run.audit, target);
  }
  if (run.method == "validated") j["dual_steps"] = run.dual_steps;
  return j;
}

nlohmann::json settings_json(const RecallOutcome& o) {
  const RecallSettings& s = o.settings;
  nlohmann::json j = fashion_workload_settings(o);
  j["data"]["validation_examples"] = o.validation_examples;
  j["data"]["validation_class_sizes"] = o.validation_class_sizes;
  j["data"]["split"] =
      "the first train_examples training examples are trained on; the next validation_examples "
      "are the validation split, never trained on; the test set is the 10,000 t10k examples";
  j["target_recall"] = s.target;
  j["lr_schedule"] = s.cosine_schedule
                         ? "cosine: lr (1 + cos(pi t / T)) / 2 over the run's T steps, every run"
                         : "constant";
  j["constraint"] =
      "one dense constraint of 10 entries: per class, target - mean predicted probability of "
      "the true class over the batch's examples of the class (primal); target - the batch's "
      "0-1 recall of the class (strict violation, dual)";
  j["unconstrained"] = "the same Adam on the cross-entropy alone, same start and batch order";
  j["validated"] = {
      {"method",
       "the default optimizer; the training closure observes rates::at_least(rates::recall, "
       "target).tightened(margin) (running rate, sigmoid surrogate) with "
       "contributes_to_dual(false); dual_step on validation batches observes the running 0-1 "
       "validation recall against target + margin with contributes_to_primal(false)"},
      {"dual_every", s.dual_every},
      {"validation_batch", s.validation_batch},
      {"validation_decay", s.validation_decay},
      {"margin", o.margin},
      {"margin_formula", "sqrt(ln(10 / delta) / (2 n_min)), n_min the smallest validation class"}};
  j["best_iterate"] =
      "constrained runs: every epoch's model is offered to feasible::BestIterate with the "
      "validation cross-entropy as objective, target - validation recall per class as "
      "violations, confident when every class is >= target + margin on validation; the chosen "
      "epoch is restored at the end";
  j["audit"] = {{"delta", s.delta},
                {"correction", "Holm"},
                {"bound", "Clopper-Pearson"},
                {"data", "the test set, once per constrained run, on the restored best epoch"}};
  return j;
}

}  // namespace

std::string recall_class_name(int k) { return k >= 0 && k < 10 ? kClassNames[k] : "?"; }

std::string recall_summary(const std::vector<double>& recall, double target) {
  const int k =
      recall.empty()
          ? -1
          : static_cast<int>(std::min_element(recall.begin(), recall.end()) - recall.begin());
  return "smallest " + fixed(smallest(recall), 3) + " (" + recall_class_name(k) + "); " +
         std::to_string(classes_at_least(recall, target)) + " of " + std::to_string(recall.size()) +
         " classes >= " + fixed(target, 2);
}

std::vector<std::string> recall_audit_findings(const RecallAudit& audit, double target) {
  std::vector<std::string> found;
  const std::string goal = fixed(target, 2);
  for (size_t k = 0; k < audit.classes.size(); ++k) {
    const RecallAuditClass& c = audit.classes[k];
    if (c.verdict == "holds") continue;
    std::string line = recall_class_name(static_cast<int>(k)) + ": ";
    if (c.verdict == "violated") {
      line += "test recall " + fixed(c.recall, 3) + ", upper bound " + fixed(c.upper, 3) +
              " (level " + fmt(c.upper_alpha, 3) + ") below " + goal + ": violated";
    } else if (c.verdict == "inconclusive" && c.recall < target) {
      line += "test recall " + fixed(c.recall, 3) + " < " + goal + ", but upper bound " +
              fixed(c.upper, 3) + " (level " + fmt(c.upper_alpha, 3) + ") not below " + goal +
              ": inconclusive";
    } else if (c.verdict == "inconclusive") {
      line += "test recall " + fixed(c.recall, 3) + " >= " + goal + ", but lower bound " +
              fixed(c.lower, 3) + " (level " + fmt(c.lower_alpha, 3) + ") below " + goal +
              ": inconclusive";
    } else {
      line += "not audited (" + c.verdict + ")";
      found.push_back(line);
      continue;
    }
    found.push_back(line + " at delta = " + fmt(audit.delta, 2) + " with " +
                    std::to_string(c.examples) + " test examples");
  }
  return found;
}

double RecallEpoch::min_recall() const { return smallest(recall); }

int RecallEpoch::min_class() const {
  return recall.empty()
             ? -1
             : static_cast<int>(std::min_element(recall.begin(), recall.end()) - recall.begin());
}

double RecallEpoch::min_validation_recall() const { return smallest(validation_recall); }

std::vector<Check> recall_checks(const RecallOutcome& o) {
  const double target = o.settings.target;
  const std::string goal = fixed(target, 2);
  const RecallEpoch &d = o.default_run.epochs.back(), &u = o.unconstrained.epochs.back();
  const RecallRun& v = o.validated;
  const RecallAudit &da = o.default_run.audit, &va = v.audit;
  const auto complete = [](const RecallAudit& a) {
    return a.classes.size() == 10 && std::all_of(a.classes.begin(), a.classes.end(), audited);
  };
  return {{"default: every class >= " + goal + " training recall at the end (" +
               std::to_string(o.settings.epochs) + " epochs on " +
               std::to_string(o.train_examples) + " examples)",
           d.min_recall() >= target && d.recall.size() == 10, recall_summary(d.recall, target)},
          {"unconstrained training leaves some class below " + goal +
               " training recall at the end (the constraints bind)",
           u.min_recall() < target, recall_summary(u.recall, target)},
          {"validated: every class >= " + goal + " on the test set (the best epoch's model)",
           v.best_test_recall.size() == 10 && smallest(v.best_test_recall) >= target,
           recall_summary(v.best_test_recall, target) + "; epoch " + std::to_string(v.best_epoch)},
          {"test audit: a verdict and Clopper-Pearson bounds for each of the 10 classes, both "
           "constrained runs",
           complete(da) && complete(va),
           "default: " + verdict_counts(da) + "; validated: " + verdict_counts(va)}};
}

nlohmann::json recall_results(const RecallOutcome& o) {
  nlohmann::json results;
  results["settings"] = settings_json(o);
  results["margin"] = o.margin;
  results["default"] = run_json(o.default_run, o.settings.target);
  results["validated"] = run_json(o.validated, o.settings.target);
  results["unconstrained"] = run_json(o.unconstrained, o.settings.target);
  results["class_names"] = std::vector<std::string>(kClassNames, kClassNames + 10);
  return results;
}

}  // namespace feasible::app
