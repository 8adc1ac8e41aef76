#pragma once
/// \file sparsity.h
/// E3, sparsity-constrained training with L0 gates on Fashion-MNIST. Ramirez et al.
/// (arXiv:2505.20628), Figure 1, App. B.2, Table 3 and the second row of Table 2. In parts: the
/// run (sparsity_run.cpp) trains and returns a SparsityOutcome; the checks, the results and the
/// report (sparsity_report.cpp) read only that outcome, so tests can build one by hand.

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "apps/feasible/experiments.h"
#include "apps/feasible/sparsity_problem.h"

namespace feasible::app {

/// The schedule and the dual settings of one mode (default, quick or paper).
struct SparsityMode {
  std::string name;                 ///< "default", "quick" or "paper"
  int64_t train_examples = 0;       ///< 0: all 60,000
  SparsitySettings settings;        ///< the schedule and the model
  double nupi_lr = 0, nupi_kp = 0;  ///< the constrained run's dual optimizer
  std::vector<double> sweep_scale;  ///< dual steps of the sweep, as multiples of nupi_lr (2)
  double proxy_lr = 0;              ///< the proxy run's dual step (same K_p)
  bool check_proxy = true;          ///< whether the proxy run's end is a check (not in quick)
  double ga_lr = 0;                 ///< plain gradient ascent's middle step
  int timing_rounds = 0;            ///< Table 2: alternating rounds
  int64_t timing_epochs = 0;        ///< epochs per timed run
  int max_bisection_runs = 0;       ///< including the two endpoints and any widening
};

/// The mode of a command line (with --epochs and --gates applied).
SparsityMode sparsity_mode(const RunConfig& config);

/// One penalized run of the bisection over c.
struct PenaltyStep {
  int step = 0;      ///< 1, 2, ...
  std::string role;  ///< "endpoint", "widening" or "bisection"
  SparsityRun run;   ///< the run
};

/// Table 2's second row: per round, the time per epoch of each variant (training loop, and of
/// it the data loading).
struct SparsityTiming {
  std::vector<double> penalty, constrained;            ///< seconds per epoch
  std::vector<double> data_penalty, data_constrained;  ///< of which data loading
};

/// Everything the run produced.
struct SparsityOutcome {
  SparsityMode mode;
  std::string data_dir;                 ///< where Fashion-MNIST was read
  int64_t train_examples = 0;           ///< the training subset's size
  int64_t test_examples = 0;            ///< the test set's size
  int epochs_option = 0;                ///< --epochs (0: the mode's)
  SparsityRun constrained;              ///< nuPI on the expected density
  SparsityRun proxy;                    ///< nuPI, the multiplier following the test-time density
  SparsityRun default_run;              ///< make_default_optimizer on the expected density
  std::vector<SparsityRun> sweep_nupi;  ///< nuPI at nupi_lr * sweep_scale (2)
  std::vector<SparsityRun> sweep_ga;    ///< gradient ascent at ga_lr * (1/3, 1, 10/3)
  std::vector<PenaltyStep> steps;       ///< the bisection, in order (at least one)
  bool found = false;                   ///< whether the bisection reached the target
  SparsityTiming timing;
};

/// Loads Fashion-MNIST and trains every run of the experiment (the library), reporting to
/// `progress`. Throws std::runtime_error when the data cannot be read.
SparsityOutcome train_sparsity_experiment(const RunConfig& config, Progress& progress);

/// One row of the published Table 3 (MNIST, 150 epochs).
struct SparsityPublishedStep {
  double c;               ///< the penalty coefficient
  double density;         ///< test-time density (%)
  double train_accuracy;  ///< train accuracy (%)
};

/// The published Table 3, in bisection order.
const std::vector<SparsityPublishedStep>& sparsity_published_table3();

/// Whether `density` is within one point of the target.
bool sparsity_hit(const SparsityOutcome& outcome, double density);

/// The qualitative checks of the outcome, in report order.
std::vector<Check> sparsity_checks(const SparsityOutcome& outcome);

/// The like-with-like comparison (results.json "headline"): the bisection, the proxy run, the
/// constrained run and the default optimizer's run, each with the density it is held to and
/// whether it ends within one point.
nlohmann::json sparsity_headline(const SparsityOutcome& outcome);

/// The experiment's own parts of results.json: settings, table3_bisection, published_table3,
/// constrained, proxy, default, dual_sweep, training_seconds, headline, table2_sparsity_row.
nlohmann::json sparsity_results(const SparsityOutcome& outcome);

/// The figures of the report.
struct SparsityFigures {
  FigureFile figure1;     ///< the bisection against the constrained runs
  FigureFile trajectory;  ///< density and multiplier per epoch (constrained, proxy, default)
  FigureFile dual_sweep;  ///< nuPI against gradient ascent
};

/// The report's body (after the common header and the checks).
std::string sparsity_report(const SparsityOutcome& outcome, const SparsityFigures& figures);

}  // namespace feasible::app
