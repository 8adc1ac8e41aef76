#pragma once
/// \file recall.h
/// E5, per-class recall on Fashion-MNIST: a workload of the default optimizer
/// (feasible::make_default_optimizer), not an experiment of the paper. A small MLP must reach a
/// recall of at least 0.80 in every one of the ten classes (ten constraints), on the training
/// data and on the test set. Three runs: the default (its multipliers read the training
/// batches), the validated default (the same optimizer whose multipliers read a held-out
/// validation split, ConstrainedOptimizer::dual_step, against a target raised by a margin), and
/// unconstrained training. Each constrained run keeps its best epoch on the validation split
/// (feasible::BestIterate) and is audited on the test set (feasible::Auditor). In parts: the run
/// (recall_run.cpp) trains and returns a RecallOutcome, which recall_files.cpp writes as CSV and
/// a figure; the checks, the results and the report (recall_report.cpp, recall_markdown.cpp)
/// read only that outcome, so tests can build one by hand.

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "apps/feasible/experiments.h"

namespace feasible::app {

/// The settings of a mode.
struct RecallSettings {
  std::string mode;            ///< "quick" or "full"
  int64_t train_examples = 0;  ///< the first this many training examples are trained on
  /// The next this many training examples: the validation split, never trained on (the
  /// validated run's multipliers and every constrained run's best epoch read it).
  int64_t validation_examples = 0;
  int64_t epochs = 0;        ///< passes over the training examples (--epochs overrides)
  int64_t batch_size = 256;  ///< mini-batch size
  int64_t hidden = 128;      ///< the MLP 784-hidden-10 (ReLU)
  double lr = 1e-3;          ///< Adam's step, every run (its peak with the cosine schedule)
  /// Every run decays Adam's step from lr to 0 over the run with the cosine schedule
  /// lr (1 + cos(pi t / T)) / 2 (t the step, T the run's steps); false keeps lr throughout.
  bool cosine_schedule = true;
  double target = 0.8;  ///< required recall of every class
  uint64_t seed = 0;    ///< model initialisation and batch order (every run the same)
  /// The validated run: one dual step (ConstrainedOptimizer::dual_step) after every this many
  /// training steps; 1 gives the multipliers as many updates as the default run's.
  int64_t dual_every = 1;
  /// The validated run: examples per validation batch of a dual step.
  int64_t validation_batch = 250;
  /// The validated run: the decay of the running validation recall (rates::RunningRate) that
  /// the dual step reads; 0.9 remembers about 10 batches (2,500 examples, ~250 per class).
  double validation_decay = 0.9;
  /// The error level of the margin and of the test audit (Holm over the ten classes).
  double delta = 0.05;
};

/// The settings of a command line: quick (20,000 training and 5,000 validation examples, 6
/// epochs) or full (50,000 and 10,000, 24 epochs).
RecallSettings recall_settings(const RunConfig& config);

/// The state before training (epoch 0) or at the end of an epoch, on the training subset and
/// the validation split.
struct RecallEpoch {
  int64_t epoch = 0;
  std::vector<double> recall;             ///< per class (10), on the training subset
  double accuracy = 0;                    ///< %, on the training subset
  double seconds = 0;                     ///< training time of the epoch (0 for epoch 0)
  std::vector<double> validation_recall;  ///< per class (10), on the validation split
  double validation_loss = 0;             ///< mean cross-entropy on the validation split
  /// The smallest training recall, and its class.
  double min_recall() const;
  int min_class() const;
  /// The smallest validation recall (0 when there is none).
  double min_validation_recall() const;
};

/// The test audit of one class: recall >= target, bounded with Clopper-Pearson (feasible::
/// Auditor, Holm's correction over the ten classes).
struct RecallAuditClass {
  std::string verdict;  ///< "holds", "violated", "inconclusive" or "not observed"
  double recall = 0;    ///< the test recall
  /// The lower confidence bound of the recall, at level lower_alpha (Holm's level for the
  /// class): above the target means "holds".
  double lower = 0;
  double lower_alpha = 0;  ///< its level
  /// The upper confidence bound of the recall, at level upper_alpha (delta / 10): below the
  /// target means "violated".
  double upper = 0;
  double upper_alpha = 0;  ///< its level
  int64_t examples = 0;    ///< the class's test examples
};

/// The test audit of a run's final (best) model.
struct RecallAudit {
  double delta = 0;                       ///< the error level
  std::string correction;                 ///< "Holm"
  std::vector<RecallAuditClass> classes;  ///< per class (10); empty when not audited
};

/// One training run.
struct RecallRun {
  std::string method;               ///< "default", "validated" or "unconstrained"
  std::vector<RecallEpoch> epochs;  ///< epoch 0 (before training), then every epoch
  std::vector<double> test_recall;  ///< per class at the end (last iterate), on the test set
  double test_accuracy = 0;         ///< % at the end (last iterate)
  std::vector<double> multiplier;   ///< per class at the end (constrained runs only)
  std::vector<double> penalty;      ///< the default's calibrated penalty per class at the end
  double train_seconds = 0;         ///< the training loop, evaluation excluded
  int64_t dual_steps = 0;           ///< the validated run's dual steps on validation batches
  /// Constrained runs: the epoch (>= 1) that BestIterate chose on the validation split, and why
  /// (BestIterate::reason()); -1 and empty otherwise.
  int64_t best_epoch = -1;
  std::string best_reason;
  std::vector<double> best_test_recall;  ///< per class, the best epoch's model on the test set
  double best_test_accuracy = 0;         ///< %, the best epoch's model on the test set
  RecallAudit audit;  ///< the best epoch's model audited on the test set (constrained runs)
  /// The training recall per class at the end (the last epoch's).
  const std::vector<double>& recall() const { return epochs.back().recall; }
};

/// Everything the run produced.
struct RecallOutcome {
  RecallSettings settings;
  std::string data_dir;             ///< where Fashion-MNIST was read
  int64_t train_examples = 0;       ///< the training subset's size
  int64_t validation_examples = 0;  ///< the validation split's size
  int64_t test_examples = 0;        ///< the test set's size
  /// The number of validation examples of each class (10).
  std::vector<int64_t> validation_class_sizes;
  /// The validated run's margin: its validation requirement is recall >= target + margin,
  /// margin = sqrt(ln(10 / delta) / (2 n_min)) (rates::hoeffding_margin(n_min, delta / 10),
  /// n_min the smallest validation class).
  double margin = 0;
  RecallRun default_run;    ///< make_default_optimizer with the ten recall constraints
  RecallRun validated;      ///< the same, its multipliers fed by the validation split
  RecallRun unconstrained;  ///< the same Adam on the cross-entropy alone
};

/// Loads Fashion-MNIST and trains the three runs, reporting to `progress`. Throws
/// std::runtime_error when the data cannot be read.
RecallOutcome train_recall_experiment(const RunConfig& config, Progress& progress);

/// The name of class k ("T-shirt/top", ..., "Ankle boot"; "?" outside 0..9). Torch-free.
std::string recall_class_name(int k);

/// "smallest 0.812 (Shirt); 10 of 10 classes >= 0.80" for per-class recalls.
std::string recall_summary(const std::vector<double>& recall, double target);

/// One sentence per class of `audit` not shown to hold (violated, inconclusive, not observed),
/// naming the class, its test recall, the bound that decides and why, e.g. "Shirt: test recall
/// 0.780 < 0.80, upper bound 0.812 (level 0.005) above 0.80: inconclusive at delta = 0.05 with
/// 1000 test examples". Empty when every class holds.
std::vector<std::string> recall_audit_findings(const RecallAudit& audit, double target);

/// The qualitative checks of the outcome, in report order.
std::vector<Check> recall_checks(const RecallOutcome& outcome);

/// The experiment's own parts of results.json: settings, default, validated, unconstrained.
nlohmann::json recall_results(const RecallOutcome& outcome);

/// The report's body (after the common header and the checks).
std::string recall_report(const RecallOutcome& outcome, const FigureFile& figure);

}  // namespace feasible::app
