#pragma once
/// \file fairness.h
/// E7, fairness on fresh data (not in the paper): does a requirement met in training hold on
/// data the model never saw? A logistic regression on a synthetic two-group dataset must keep
/// a gap between the groups within eps: demographic parity |P(yhat=1 | a) - P(yhat=1 | b)| and,
/// separately, equal opportunity |P(yhat=1 | y=1, a) - P(yhat=1 | y=1, b)|. Three methods over
/// many data draws: a fixed penalty, constrained training on the training set, and constrained
/// training whose dual player reads a validation set against eps - margin (Cotter et al.,
/// ICML 2019), both constrained methods a Lagrangian with gradient ascent on the multipliers. Each
/// final model is measured on a large fresh sample (the held-out truth) and audited on a test set
/// with confidence bounds (feasible::audit). In parts: the run (fairness_run.cpp) returns a
/// FairnessOutcome; checks, results and report (fairness_report.cpp) read only that outcome, so
/// tests can build one by hand.

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "apps/feasible/experiments.h"

namespace feasible::app {

/// The settings of a mode.
struct FairnessSettings {
  std::string mode;                 ///< "quick" or "full"
  int64_t draws = 20;               ///< independent data draws (each: all four datasets anew)
  int64_t train_examples = 0;       ///< training set per draw
  int64_t validation_examples = 0;  ///< validation set per draw (the validated method's dual)
  int64_t test_examples = 0;        ///< test set per draw (the audit)
  int64_t fresh_examples = 0;       ///< the large fresh sample per draw (the held-out truth)
  int64_t steps = 0;                ///< full-batch steps per run
  int64_t dual_every = 1;           ///< the validated method: a dual step every this many steps
  double dual_lr = 0.05;  ///< the multipliers' gradient-ascent step (both constrained runs)
  double lr = 0.05;       ///< Adam's step, every run
  double eps = 0.05;      ///< the required bound on the gap
  double delta = 0.05;    ///< the margin's and the audit's error probability
  double penalty = 1.0;   ///< the penalty method's coefficient c in f + c (|gap| - eps)
  uint64_t seed = 0;      ///< draw d uses the seed seed * 1000 + d
};

/// The settings of a command line: quick (20 draws, 10,000 training examples, 600 steps) or full
/// (40 draws, 20,000 training examples, 1,500 steps).
FairnessSettings fairness_settings(const RunConfig& config);

/// The two requirements.
enum class FairnessRequirement { kParity, kOpportunity };
/// "demographic parity" or "equal opportunity".
std::string requirement_name(FairnessRequirement requirement);
/// "parity" or "opportunity" (keys of results.json and the CSV files).
std::string requirement_key(FairnessRequirement requirement);

/// One trained model of one draw.
struct FairnessRun {
  std::string method;         ///< "unconstrained", "penalty", "constrained" or "validated"
  double train_gap = 0;       ///< the gap rate(b) - rate(a) on the training set (0-1)
  double validation_gap = 0;  ///< on the validation set
  double fresh_gap = 0;       ///< on the fresh sample: the held-out value
  double fresh_accuracy = 0;  ///< % on the fresh sample
  double margin = 0;          ///< the margin trained against (validated only)
  std::string verdict;        ///< the audit's verdict on the test set ("holds", ...)
  double audit_upper = 0;     ///< the audit's upper confidence bound of |gap| - eps
  double seconds = 0;         ///< training time
  /// Whether the held-out requirement holds: |fresh_gap| <= eps.
  bool meets(double eps) const;
};

/// One data draw: the four methods on one requirement.
struct FairnessDraw {
  int64_t draw = 0;
  std::vector<FairnessRun> runs;  ///< unconstrained, penalty, constrained, validated
};

/// One requirement over every draw.
struct FairnessStudy {
  FairnessRequirement requirement = FairnessRequirement::kParity;
  std::vector<FairnessDraw> draws;
  /// In how many draws the method's model meets the held-out requirement.
  int64_t meets(const std::string& method, double eps) const;
  /// The method's mean accuracy (%) on the fresh samples.
  double mean_accuracy(const std::string& method) const;
  /// How many of the method's audit verdicts read `verdict`.
  int64_t verdicts(const std::string& method, const std::string& verdict) const;
};

/// Everything the run produced.
struct FairnessOutcome {
  FairnessSettings settings;
  std::vector<FairnessStudy> studies;  ///< parity, then opportunity
};

/// The method names in run order.
const std::vector<std::string>& fairness_methods();

/// Trains every draw of both requirements, reporting to `progress`.
FairnessOutcome train_fairness(const FairnessSettings& settings, Progress& progress);

/// The qualitative checks of the outcome, in report order.
std::vector<Check> fairness_checks(const FairnessOutcome& outcome);

/// The experiment's own parts of results.json: settings, data, studies.
nlohmann::json fairness_results(const FairnessOutcome& outcome);

/// The report's body (after the common header and the checks).
std::string fairness_report(const FairnessOutcome& outcome, const FigureFile& figure);

}  // namespace feasible::app
