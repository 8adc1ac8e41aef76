#pragma once
/// \file rate.h
/// E2, rate-constrained linear classification. Ramirez et al. (arXiv:2505.20628), Figure 2,
/// App. B.3, Tables 4 and 5. In parts: the run (rate_run.cpp) trains the sweeps and returns a
/// RateOutcome; the checks, the results and the report (rate_report.cpp) read only that outcome,
/// so tests can build one by hand.

#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "apps/feasible/experiments.h"
#include "apps/feasible/rate_problem.h"

namespace feasible::app {

/// The settings of the experiment.
struct RateSettings {
  bool quick = false;                    ///< quick mode: fewer sweep values
  uint64_t seed = 0;                     ///< the data's seed
  int64_t iterations = 10000;            ///< full-batch iterations per run
  double primal_lr = 2e-2;               ///< gradient descent step
  int64_t record_every = 50;             ///< series.csv records every this many iterations
  std::vector<double> values;            ///< the sweep (c for the penalty, dual step otherwise)
  std::vector<double> surrogate_values;  ///< dual steps of the footnote variant
};

/// The settings of a mode: the whole sweep 0, 10^(k/3) for k = -12..6, or in quick mode the
/// values that carry each qualitative result.
RateSettings rate_settings(bool quick, uint64_t seed);

/// Everything the run produced.
struct RateOutcome {
  RateSettings settings;
  std::vector<RateRun> penalty;       ///< one per settings.values
  std::vector<RateRun> lagrangian;    ///< one per settings.values (proxy constraints)
  std::vector<RateRun> surrogate;     ///< one per settings.surrogate_values
  RateRun default_run;                ///< make_default_optimizer, proxy constraint, no dual step
  double first_x0 = 0, first_x1 = 0;  ///< the data's first point (a fingerprint)
  double sum_x = 0;                   ///< the sum of the data's coordinates
};

/// Published class-0 percentage and accuracy of the penalty at `c` (Table 4).
std::pair<double, double> published_rate_penalty(double c);
/// Published class-0 percentage and accuracy of the Lagrangian at dual step `eta` (Table 5).
std::pair<double, double> published_rate_lagrangian(double eta);

/// The default optimizer's goal (the issue's): at least this class-0 percentage (69.75% = 279
/// of 400 points, the published Lagrangian's lower value) within the run's iterations.
inline constexpr double kRateDefaultGoalPct = 69.75;

/// The first recorded iteration from which the class-0 percentage of `run` stays at or above
/// `pct` to the end of its series (-1 if its last point is below).
int64_t rate_reached_at(const RateRun& run, double pct);

/// The first recorded iteration at which the class-0 percentage of `run` is at or above `pct`
/// (-1 if none is).
int64_t rate_first_at(const RateRun& run, double pct);

/// Trains every run (the library, float32), reporting to `progress`.
RateOutcome train_rate_sweep(const RateSettings& settings, Progress& progress);

/// The qualitative checks of the outcome, in report order.
std::vector<Check> rate_checks(const RateOutcome& outcome);

/// The experiment's own parts of results.json: settings, data_fingerprint, table4_penalty,
/// table5_lagrangian, footnote_surrogate_dual, default.
nlohmann::json rate_results(const RateOutcome& outcome);

/// The report's body (after the common header and the checks): problem, settings, Tables 4 and
/// 5 (with the default's row), the footnote, Figure 2 and the data files.
std::string rate_report(const RateOutcome& outcome, const FigureFile& figure2);

}  // namespace feasible::app
