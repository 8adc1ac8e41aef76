#pragma once
/// \file overhead.h
/// E4, the cost of constrained over penalized training. Ramirez et al. (arXiv:2505.20628),
/// Table 2: wall-clock per run, median and standard deviation, with the arms interleaved. In
/// parts: the run (overhead_run.cpp) times the arms and returns an OverheadOutcome; the checks,
/// the results and the report (overhead_report.cpp) read only that outcome.

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "apps/feasible/experiments.h"

namespace feasible::app {

/// The settings of the experiment.
struct OverheadSettings {
  bool quick = false;          ///< quick mode: 3 rounds of 4,000 iterations
  int repeats = 7;             ///< timed runs per arm (rounds)
  int64_t iterations = 10000;  ///< full-batch iterations per run
  double primal_lr = 2e-2;     ///< gradient descent step
  double penalty_c = 0;        ///< the paper's best penalty, 10^(1/3) = 2.15
  double dual_step = 1e-2;     ///< the constrained arms' dual step
};

/// The settings of a mode.
OverheadSettings overhead_settings(bool quick);

/// One timed arm: its key in results.json, its label, the training time of each round.
struct OverheadArm {
  std::string key;              ///< "penalized", "constrained", ...
  std::string label;            ///< for the table
  std::vector<double> seconds;  ///< one per round, in round order
};

/// Everything the run produced: the arms in order A (penalized, the base), B (constrained),
/// C (constrained, surrogate for the dual too), D (penalized, hand-written LibTorch loop).
struct OverheadOutcome {
  OverheadSettings settings;
  std::vector<OverheadArm> arms;  ///< A, B, C, D
};

/// The ratios of the outcome's medians to the penalized arm's.
struct OverheadRatios {
  double constrained = 0;   ///< B / A
  double no_proxy = 0;      ///< C / A: the library's own cost
  double hand = 0;          ///< D / A
  double median_round = 0;  ///< median over rounds of B / A
};

/// The ratios of `outcome`.
OverheadRatios overhead_ratios(const OverheadOutcome& outcome);

/// The qualitative checks of the outcome.
std::vector<Check> overhead_checks(const OverheadOutcome& outcome);

/// The experiment's own parts of results.json: settings, table2, the ratios, published.
nlohmann::json overhead_results(const OverheadOutcome& outcome);

/// The report's body (after the common header and the checks): settings, Table 2, where the
/// cost comes from, the published figures.
std::string overhead_report(const OverheadOutcome& outcome);

}  // namespace feasible::app
