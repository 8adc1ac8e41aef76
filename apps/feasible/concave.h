#pragma once
/// \file concave.h
/// E1, the concave 1-D example: minimize cos(x) subject to sin(x) <= eps, x in [0, pi/2].
/// Ramirez et al. (arXiv:2505.20628), Example 1, Propositions 2-3, Table 1, Figure 3, App. D.
/// In parts: the run (concave_run.cpp) trains and returns a ConcaveOutcome; the checks, the
/// results and the report (concave_report.cpp) read only that outcome, so tests can build one.

#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "apps/feasible/experiments.h"
#include "apps/feasible/output.h"

namespace feasible::app {

/// pi / 2, the upper end of the box.
inline constexpr double kConcaveHalfPi = 3.14159265358979323846 / 2;

/// Table 1 of the paper: x at convergence for eps = 0.1 ... 0.8.
inline const std::vector<double> kConcavePublishedX = {0.100, 0.201, 0.305, 0.412,
                                                       0.524, 0.644, 0.775, 0.927};

/// How a run treats the constraint. kDefault: feasible::make_default_optimizer with the same
/// primal optimizer and step, and no dual step (include/feasible/defaults.h).
enum class ConcaveMethod { kNuPI, kAugmentedLagrangian, kGDA, kPenalty, kDefault };

/// The key of a method in files ("nupi", "augmented_lagrangian", "gda", "penalty", "default").
const char* concave_method_key(ConcaveMethod method);

/// The settings of the experiment (the paper's; quick mode shortens them).
struct ConcaveSettings {
  int64_t iterations = 10000;  ///< iterations per run
  double x0 = 0.5;             ///< the authors' start
  double primal_lr = 0.01;     ///< gradient descent, projected onto [0, pi/2]
  double dual_lr = 0.3;        ///< nuPI and GDA dual step
  double kp = 40;              ///< nuPI proportional gain (K_i = 1, nu = 0)
  double al_penalty = 10;      ///< Augmented Lagrangian c (its dual step is dual_lr, as GDA's)
  int64_t tail = 1000;         ///< window for the oscillation of GDA
  std::vector<double> eps = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8};  ///< at most 8 (Table 1)
  std::vector<double> penalty_c = {0.1, 0.5, 1.0, 2.0, 10.0};          ///< the fixed penalties
  double figure_eps = 0.5;           ///< the eps of the trajectory figure
  int64_t figure_iterations = 3000;  ///< iterations drawn in the trajectory figure
};

/// The settings of a mode: the paper's, or quick (3,000 iterations, three penalties).
ConcaveSettings concave_settings(bool quick);

/// One run: x_t and lambda_t for t = 0..T.
struct ConcaveRun {
  ConcaveMethod method = ConcaveMethod::kNuPI;
  double eps = 0;              ///< 0 for the fixed penalties of the sweep
  double c = 0;                ///< penalty coefficient (penalty) or AL coefficient
  std::vector<double> x;       ///< x_t, t = 0..T (T + 1 values)
  std::vector<double> lambda;  ///< lambda_t (0 for the penalty)

  /// x at the end.
  double final_x() const { return x.back(); }
  /// lambda at the end.
  double final_lambda() const { return lambda.back(); }
  /// The smallest and largest x over the last `tail` iterations.
  std::pair<double, double> tail_range(int64_t tail) const;
  /// The smallest and largest lambda over the last `tail` iterations.
  std::pair<double, double> tail_lambda_range(int64_t tail) const;
  /// lambda at the start of the last `tail` iterations.
  double tail_first_lambda(int64_t tail) const;
  /// The largest |x_t - target| over the last `tail` iterations.
  double tail_max_error(int64_t tail, double target) const;
};

/// Everything the run produced: per eps (in settings.eps order) one run of each constrained
/// method, of the default and of the penalty at c = lambda*(eps); one fixed-penalty run per
/// settings.penalty_c.
struct ConcaveOutcome {
  ConcaveSettings settings;
  bool quick = false;
  std::vector<ConcaveRun> nupi, al, gda, penalty_at_lambda_star;  ///< one per eps
  std::vector<ConcaveRun> default_runs;  ///< the default optimizer (no dual step), one per eps
  std::vector<ConcaveRun> penalty;       ///< one per penalty_c
};

/// What plain GDA does over the last iterations of a run.
enum class GdaBehaviour { kOscillates, kStuckAtZero, kStuckAtHalfPi, kSettles, kOther };

/// Classifies a GDA run from its last `tail` iterations: it oscillates around x* (x spans more
/// than 1e-3 and crosses x*), is stuck at 0 (x within 1e-6 of 0, lambda 0 throughout: a
/// stationary point of the Lagrangian), is stuck at pi/2 (x within 1e-6 of pi/2, lambda growing:
/// the projection cancels every step, cos(pi/2) = 0 mutes the multiplier), settles within 1e-3 of
/// x*, or none of these.
GdaBehaviour classify_gda(const ConcaveRun& run, int64_t tail, double x_star);

/// The key of a behaviour in results.json ("oscillates", "stuck_at_0", ...).
const char* gda_behaviour_key(GdaBehaviour behaviour);

/// A behaviour in words, after "gradient descent-ascent" ("oscillates around x*", ...).
std::string gda_behaviour_text(GdaBehaviour behaviour);

/// The index in settings.eps of the trajectory figure's eps (0 if none matches).
size_t concave_figure_index(const ConcaveSettings& settings);

/// Trains every run of the experiment (the library, float64), reporting to `progress`.
ConcaveOutcome train_concave(const ConcaveSettings& settings, Progress& progress);

/// The qualitative checks of the outcome, in report order.
std::vector<Check> concave_checks(const ConcaveOutcome& outcome);

/// The experiment's own parts of results.json: settings, table1, penalties, published.
nlohmann::json concave_results(const ConcaveOutcome& outcome);

/// The figures of the report.
struct ConcaveFigures {
  FigureFile figure3;       ///< the trade-off curve, the optima and the penalties' ends
  FigureFile trajectories;  ///< x_t and lambda_t at settings.figure_eps
};

/// The tolerance of Table 1 (and of the goal for the default): |x - arcsin(eps)| <= 1e-3.
inline constexpr double kConcaveTolerance = 1e-3;

/// A sentence on where the default ends at eps index `i` ("converges to x*" when within
/// kConcaveTolerance of arcsin(eps), else "ends at x = ..., |x - x*| = ..."), for figure titles.
std::string concave_default_text(const ConcaveOutcome& outcome, size_t i);

/// The report's body (after the common header and the checks): problem, settings, Table 1, the
/// fixed penalties, the figures and the data files.
std::string concave_report(const ConcaveOutcome& outcome, const ConcaveFigures& figures);

}  // namespace feasible::app
