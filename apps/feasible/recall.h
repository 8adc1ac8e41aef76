#pragma once
/// \file recall.h
/// E5, per-class recall on Fashion-MNIST: a workload of the default optimizer
/// (feasible::make_default_optimizer), not an experiment of the paper. A small MLP must reach a
/// training recall of at least 0.80 in every one of the ten classes (ten constraints), trained
/// with the default against unconstrained training. In parts: the run (recall_run.cpp) trains
/// and returns a RecallOutcome; the checks, the results and the report (recall_report.cpp) read
/// only that outcome, so tests can build one by hand.

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "apps/feasible/experiments.h"

namespace feasible::app {

/// The settings of a mode.
struct RecallSettings {
  std::string mode;            ///< "quick" or "full"
  int64_t train_examples = 0;  ///< the first this many training examples (0: all 60,000)
  int64_t epochs = 0;          ///< passes over them (--epochs overrides)
  int64_t batch_size = 256;    ///< mini-batch size
  int64_t hidden = 128;        ///< the MLP 784-hidden-10 (ReLU)
  double lr = 1e-3;            ///< Adam's step, both runs
  double target = 0.8;         ///< required recall of every class
  uint64_t seed = 0;           ///< model initialisation and batch order (both runs the same)
};

/// The settings of a command line: quick (20,000 examples, 6 epochs) or full (60,000, 12).
RecallSettings recall_settings(const RunConfig& config);

/// The state before training (epoch 0) or at the end of an epoch, on the training subset.
struct RecallEpoch {
  int64_t epoch = 0;
  std::vector<double> recall;  ///< per class (10)
  double accuracy = 0;         ///< %
  double seconds = 0;          ///< training time of the epoch (0 for epoch 0)
  /// The smallest recall, and its class.
  double min_recall() const;
  int min_class() const;
};

/// One training run.
struct RecallRun {
  std::string method;               ///< "default" or "unconstrained"
  std::vector<RecallEpoch> epochs;  ///< epoch 0 (before training), then every epoch
  std::vector<double> test_recall;  ///< per class at the end, on the test set
  double test_accuracy = 0;         ///< % at the end
  std::vector<double> multiplier;   ///< per class at the end (default only)
  std::vector<double> penalty;      ///< the default's calibrated penalty per class at the end
  double train_seconds = 0;         ///< the training loop, evaluation excluded
  /// The training recall per class at the end (the last epoch's).
  const std::vector<double>& recall() const { return epochs.back().recall; }
};

/// Everything the run produced.
struct RecallOutcome {
  RecallSettings settings;
  std::string data_dir;        ///< where Fashion-MNIST was read
  int64_t train_examples = 0;  ///< the training subset's size
  int64_t test_examples = 0;   ///< the test set's size
  RecallRun default_run;       ///< make_default_optimizer with the ten recall constraints
  RecallRun unconstrained;     ///< the same Adam on the cross-entropy alone
};

/// Loads Fashion-MNIST and trains both runs, reporting to `progress`. Throws
/// std::runtime_error when the data cannot be read.
RecallOutcome train_recall_experiment(const RunConfig& config, Progress& progress);

/// The qualitative checks of the outcome, in report order.
std::vector<Check> recall_checks(const RecallOutcome& outcome);

/// The experiment's own parts of results.json: settings, default, unconstrained.
nlohmann::json recall_results(const RecallOutcome& outcome);

/// The report's body (after the common header and the checks).
std::string recall_report(const RecallOutcome& outcome, const FigureFile& figure);

}  // namespace feasible::app
