// E5, per-class recall: the report's body. Torch-free.
#include <sstream>

#include "apps/feasible/recall.h"

namespace feasible::app {
namespace {

std::string min_with_class(const std::vector<double>& recall) {
  if (recall.empty()) return "";
  size_t k = 0;
  for (size_t i = 1; i < recall.size(); ++i) k = recall[i] < recall[k] ? i : k;
  return fixed(recall[k], 3) + " (" + recall_class_name(static_cast<int>(k)) + ")";
}

/// "0.0766 (Shirt)": the largest final multiplier of a constrained run and its class.
std::string largest_multiplier(const RecallRun& run) {
  if (run.multiplier.empty()) return "none";
  size_t k = 0;
  for (size_t i = 1; i < run.multiplier.size(); ++i) {
    k = run.multiplier[i] > run.multiplier[k] ? i : k;
  }
  return fmt(run.multiplier[k], 3) + " (" + recall_class_name(static_cast<int>(k)) + ")";
}

std::string settings_section(const RecallOutcome& o) {
  const RecallSettings& s = o.settings;
  std::ostringstream md;
  md << "## Problem\n\nA workload of the default optimizer (`feasible::make_default_optimizer`), "
        "not an experiment of the paper: an MLP must reach a recall of at least "
     << fixed(s.target, 2)
     << " in every class of Fashion-MNIST (ten constraints), on the training data and on new "
        "data (the test set). The 0-1 recall has no gradient: the primal step sees a "
        "differentiable surrogate; the multipliers follow the 0-1 recall (proxy constraints, "
        "Cotter et al. 2019). No dual step size is chosen.\n\n"
     << "## Settings\n\n"
     << "- Mode: " << s.mode << ". Data: Fashion-MNIST from `" << o.data_dir << "`, the first "
     << o.train_examples << " training examples (trained on), the next " << o.validation_examples
     << " as the validation split (never trained on), " << o.test_examples << " test examples.\n"
     << "- Model: MLP 784-" << s.hidden << "-10 (ReLU); Adam " << fmt(s.lr, 3)
     << (s.cosine_schedule ? ", decayed to 0 over the run (cosine schedule, every run)" : "")
     << "; batch " << s.batch_size << "; " << s.epochs << " epochs; seed " << s.seed
     << " (every run starts from the same model and sees the same batches).\n"
     << "- Default: one dense constraint of 10 entries, target - (mean predicted probability of "
        "the true class) <= 0, with the batch's 0-1 recall as strict violation: its multipliers "
        "read the training batches.\n"
     << "- Validated: the same optimizer and constraint; the training closure observes "
        "`rates::at_least(rates::recall(...), target).tightened(margin)` (sigmoid surrogate of "
        "the margin between the true class's logit and the largest other one) with "
        "`contributes_to_dual(false)`; after every "
     << s.dual_every << " training step(s), `dual_step` reads a validation batch of "
     << s.validation_batch
     << " examples, folded into a running 0-1 recall (rates::RunningRate, decay "
     << fmt(s.validation_decay, 3) << "), against target + margin.\n"
     << "- Unconstrained: the same Adam on the cross-entropy alone.\n"
     << "- Recall is measured on the whole training subset and validation split with the model "
        "of the end of each epoch, and on the test set at the end.\n";
  return md.str();
}

std::string margin_section(const RecallOutcome& o) {
  const RecallSettings& s = o.settings;
  int64_t n_min = 0;
  for (int64_t n : o.validation_class_sizes) n_min = n_min == 0 || n < n_min ? n : n_min;
  std::ostringstream md;
  md << "\n## The margin, the best epoch and the audit\n\n"
     << "- Margin: m = sqrt(ln(10 / delta) / (2 n_min)) = " << fixed(o.margin, 3)
     << " with delta = " << fmt(s.delta, 3) << " and n_min = " << n_min
     << " (the smallest validation class): Hoeffding's bound at delta / 10 per class. For a model "
        "fixed before the validation examples were drawn, a validation recall >= "
     << fixed(s.target, 2) << " + m would put the population recall >= " << fixed(s.target, 2)
     << " in every class with probability >= 1 - delta. The validated run's model is not fixed "
        "so (its multipliers and its best epoch read the validation split), so the margin is "
        "headroom, not a guarantee: the guarantee is the test audit's.";
  if (o.margin > 0.1 || s.target + o.margin > 1) {
    md << " This margin is large: the aim " << fixed(s.target + o.margin, 3)
       << " may be out of reach, so the validated run may end infeasible on validation.";
  }
  md << "\n- Best epoch (constrained runs): every epoch's model is offered to "
        "`feasible::BestIterate` with the validation cross-entropy as objective and "
     << fixed(s.target, 2)
     << " - validation recall per class as violations, confident when every class is >= "
        "target + m on validation. It keeps the lowest objective among the confident epochs, "
        "else among the feasible ones, else the least largest violation; the chosen epoch is "
        "restored at the end.\n"
     << "- Test audit (constrained runs, the restored best epoch): `feasible::Auditor` on the "
        "whole test set, recall >= "
     << fixed(s.target, 2)
     << " per class, exact Clopper-Pearson bounds with Holm's correction over the ten classes "
        "at delta = "
     << fmt(s.delta, 3)
     << ": \"holds\" when the lower bound of the recall is >= the target at Holm's level, "
        "\"violated\" when its upper bound at delta / 10 is below it, else \"inconclusive\".\n";
  return md.str();
}

std::string per_class_table(const RecallOutcome& o) {
  std::vector<std::vector<std::string>> rows;
  const RecallRun &d = o.default_run, &u = o.unconstrained;
  for (size_t k = 0; k < d.recall().size(); ++k) {
    const bool below = d.recall()[k] < o.settings.target;
    rows.push_back({std::to_string(k) + " " + recall_class_name(static_cast<int>(k)),
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
    rows.push_back({std::to_string(a.epoch), min_with_class(a.recall), min_with_class(b.recall),
                    fixed(a.accuracy, 2), fixed(b.accuracy, 2)});
  }
  return markdown_table(
      {"epoch", "default: min train recall (class)", "unconstrained: min train recall (class)",
       "default: train accuracy (%)", "unconstrained: train accuracy (%)"},
      rows);
}

/// Per epoch: the smallest validation recall of every run (and the validated run's training
/// recall), with the validation cross-entropy the best epoch is chosen by.
std::string validation_table(const RecallOutcome& o) {
  std::vector<std::vector<std::string>> rows;
  const RecallRun &d = o.default_run, &v = o.validated, &u = o.unconstrained;
  for (size_t i = 0; i < d.epochs.size() && i < v.epochs.size() && i < u.epochs.size(); ++i) {
    const RecallEpoch &a = d.epochs[i], &b = v.epochs[i], &c = u.epochs[i];
    const auto mark = [&](const RecallRun& run) {
      return run.best_epoch == a.epoch ? " **best**" : "";
    };
    rows.push_back({std::to_string(a.epoch), min_with_class(a.validation_recall) + mark(d),
                    fmt(a.validation_loss, 4), min_with_class(b.recall),
                    min_with_class(b.validation_recall) + mark(v), fmt(b.validation_loss, 4),
                    min_with_class(c.validation_recall)});
  }
  return markdown_table(
      {"epoch", "default: min validation recall (class)", "default: validation loss",
       "validated: min train recall (class)", "validated: min validation recall (class)",
       "validated: validation loss", "unconstrained: min validation recall (class)"},
      rows);
}

/// Per class: the test recall of the last and the best epoch of both constrained runs.
std::string test_table(const RecallOutcome& o) {
  std::vector<std::vector<std::string>> rows;
  const RecallRun &d = o.default_run, &v = o.validated, &u = o.unconstrained;
  const double target = o.settings.target;
  const auto cell = [&](const std::vector<double>& r, size_t k) {
    if (k >= r.size()) return std::string();
    const bool below = r[k] < target;
    return (below ? "**" : "") + fixed(r[k], 3) + (below ? "**" : "");
  };
  for (size_t k = 0; k < 10; ++k) {
    rows.push_back({std::to_string(k) + " " + recall_class_name(static_cast<int>(k)),
                    cell(d.test_recall, k), cell(d.best_test_recall, k), cell(v.test_recall, k),
                    cell(v.best_test_recall, k), cell(u.test_recall, k),
                    k < v.multiplier.size() ? fmt(v.multiplier[k], 3) : ""});
  }
  rows.push_back({"accuracy (%)", fixed(d.test_accuracy, 2), fixed(d.best_test_accuracy, 2),
                  fixed(v.test_accuracy, 2), fixed(v.best_test_accuracy, 2),
                  fixed(u.test_accuracy, 2), ""});
  return markdown_table(
      {"class", "default: last epoch", "default: best epoch " + std::to_string(d.best_epoch),
       "validated: last epoch", "validated: best epoch " + std::to_string(v.best_epoch),
       "unconstrained", "validated: final lambda"},
      rows);
}

/// Per class: both constrained runs' audit verdicts with their bounds.
std::string audit_table(const RecallOutcome& o) {
  std::vector<std::vector<std::string>> rows;
  const auto cells = [](const RecallAudit& a, size_t k) -> std::vector<std::string> {
    if (k >= a.classes.size()) return {"not audited", ""};
    const RecallAuditClass& c = a.classes[k];
    return {c.verdict,
            fixed(c.recall, 3) + " [" + fixed(c.lower, 3) + ", " + fixed(c.upper, 3) + "]"};
  };
  for (size_t k = 0; k < 10; ++k) {
    std::vector<std::string> row = {std::to_string(k) + " " +
                                    recall_class_name(static_cast<int>(k))};
    for (const RecallAudit* a : {&o.default_run.audit, &o.validated.audit}) {
      for (std::string& cell : cells(*a, k)) row.push_back(std::move(cell));
    }
    rows.push_back(row);
  }
  return markdown_table({"class", "default: verdict", "default: test recall [lower, upper]",
                         "validated: verdict", "validated: test recall [lower, upper]"},
                        rows);
}

std::string findings(const std::string& run, const RecallAudit& a, double target) {
  const std::vector<std::string> lines = recall_audit_findings(a, target);
  if (a.classes.empty()) return "- " + run + ": not audited.\n";
  if (lines.empty()) return "- " + run + ": every class holds.\n";
  std::string text = "- " + run + ", the classes not shown to hold:\n";
  for (const std::string& line : lines) text += "  - " + line + "\n";
  return text;
}

}  // namespace

std::string recall_report(const RecallOutcome& o, const FigureFile& figure) {
  const RecallRun &d = o.default_run, &v = o.validated, &u = o.unconstrained;
  const double target = o.settings.target;
  std::ostringstream md;
  md << settings_section(o) << margin_section(o) << "\n## Per-class training recall at the end\n\n"
     << "Default: " << recall_summary(d.recall(), target) << ", in " << fixed(d.train_seconds, 1)
     << " s of training. Unconstrained: " << recall_summary(u.recall(), target) << ", in "
     << fixed(u.train_seconds, 1) << " s. Validated: " << recall_summary(v.recall(), target)
     << ", in " << fixed(v.train_seconds, 1) << " s (" << v.dual_steps
     << " dual steps). A default recall below the target is in bold.\n\n"
     << per_class_table(o) << "\n## The smallest training recall per epoch\n\n"
     << "Epoch 0 is the model before training.\n\n"
     << per_epoch_table(o) << "\n## The validation split per epoch\n\n"
     << "The best epoch of each constrained run is marked. Default: " << d.best_reason
     << ". Validated: " << v.best_reason << ".\n\n"
     << validation_table(o) << "\n## The test set: last and best epoch\n\n"
     << "Per class, the test recall of the model of the last epoch and of the best epoch "
        "(restored); below the target in bold. Validated, best epoch: "
     << recall_summary(v.best_test_recall, target)
     << ". Default, best epoch: " << recall_summary(d.best_test_recall, target)
     << ". The largest multiplier at the end: default " << largest_multiplier(d) << ", validated "
     << largest_multiplier(v) << ".\n\n"
     << test_table(o) << "\n## The test audit\n\n"
     << "The best epoch's model of each constrained run, on the " << o.test_examples
     << " test examples: per class the verdict and the test recall [lower bound at Holm's level, "
        "upper bound at delta / 10].\n\n"
     << audit_table(o) << "\n"
     << findings("Default", d.audit, target) << findings("Validated", v.audit, target) << "\n"
     << markdown_figure(figure)
     << "\nData: [epochs.csv](epochs.csv) (every run, every epoch: per-class training and "
        "validation recall), [classes.csv](classes.csv) (per class: every run's recalls, the "
        "audits), [min_recall.csv](min_recall.csv).\n";
  return md.str();
}

}  // namespace feasible::app
