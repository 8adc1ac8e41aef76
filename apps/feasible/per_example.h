#pragma once
/// \file per_example.h
/// E6, a per-example constraint on Fashion-MNIST: a workload of the default optimizer
/// (feasible::make_default_optimizer), not an experiment of the paper. Every training example's
/// cross-entropy must be at most 0.5: one indexed constraint with one multiplier per example
/// (MultiplierKind::kIndexed), observed through the batch's indices; trained with the default
/// against unconstrained training for the same number of epochs. In parts: the run
/// (per_example_run.cpp) trains and returns a PerExampleOutcome; the checks, the results and the
/// report (per_example_report.cpp) read only that outcome, so tests can build one by hand.

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "apps/feasible/experiments.h"

namespace feasible::app {

/// The settings of a mode.
struct PerExampleSettings {
  std::string mode;            ///< "quick" or "full"
  int64_t train_examples = 0;  ///< the first this many training examples
  int64_t epochs = 0;          ///< passes over them, the same for both runs (--epochs overrides)
  int64_t batch_size = 128;    ///< mini-batch size
  int64_t hidden = 128;        ///< the MLP 784-hidden-10 (ReLU)
  double lr = 1e-3;            ///< Adam's step, both runs
  double bound = 0.5;          ///< every example's cross-entropy <= bound
  uint64_t seed = 0;           ///< model initialisation and batch order (both runs the same)
};

/// The settings of a command line: quick (5,000 examples) or full (20,000), 8 epochs each.
PerExampleSettings per_example_settings(const RunConfig& config);

/// The state before training (epoch 0) or at the end of an epoch, on the whole training subset.
struct PerExampleEpoch {
  int64_t epoch = 0;
  double above = 0;      ///< fraction of examples whose cross-entropy exceeds the bound
  double mean_loss = 0;  ///< mean cross-entropy
  double accuracy = 0;   ///< %
  double seconds = 0;    ///< training time of the epoch (0 for epoch 0)
};

/// One training run.
struct PerExampleRun {
  std::string method;                   ///< "default" or "unconstrained"
  std::vector<PerExampleEpoch> epochs;  ///< epoch 0 (before training), then every epoch
  double median_loss = 0, p90_loss = 0, max_loss = 0;  ///< per-example cross-entropy, at the end
  double test_accuracy = 0;                            ///< % at the end
  double mean_multiplier = 0, max_multiplier = 0;      ///< the default's, at the end
  double penalty = 0;        ///< the default's penalty at the end: the per-visit step u
  double visit_cap = 0;      ///< the multipliers' cap in units of u (the default's kVisitCap)
  double train_seconds = 0;  ///< the training loop, evaluation excluded
  /// The fraction above the bound at the end (the last epoch's).
  double above() const { return epochs.back().above; }
};

/// Everything the run produced.
struct PerExampleOutcome {
  PerExampleSettings settings;
  std::string data_dir;         ///< where Fashion-MNIST was read
  int64_t train_examples = 0;   ///< the training subset's size (= the constraint's size)
  int64_t test_examples = 0;    ///< the test set's size
  PerExampleRun default_run;    ///< make_default_optimizer with the indexed constraint
  PerExampleRun unconstrained;  ///< the same Adam on the mean cross-entropy alone
};

/// Loads Fashion-MNIST and trains both runs, reporting to `progress`. Throws
/// std::runtime_error when the data cannot be read.
PerExampleOutcome train_per_example_experiment(const RunConfig& config, Progress& progress);

/// The qualitative checks of the outcome, in report order.
std::vector<Check> per_example_checks(const PerExampleOutcome& outcome);

/// The experiment's own parts of results.json: settings, default, unconstrained.
nlohmann::json per_example_results(const PerExampleOutcome& outcome);

/// The report's body (after the common header and the checks).
std::string per_example_report(const PerExampleOutcome& outcome, const FigureFile& figure);

}  // namespace feasible::app
