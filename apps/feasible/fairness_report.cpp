// E7, fairness on fresh data: what the outcome shows (checks, results.json, report). Torch-free.
#include <algorithm>
#include <cmath>
#include <sstream>

#include "apps/feasible/fairness.h"
#include "apps/feasible/stats.h"

namespace feasible::app {
namespace {

/// The runs of `method` over the study's draws.
std::vector<const FairnessRun*> runs_of(const FairnessStudy& study, const std::string& method) {
  std::vector<const FairnessRun*> out;
  for (const FairnessDraw& d : study.draws) {
    for (const FairnessRun& r : d.runs) {
      if (r.method == method) out.push_back(&r);
    }
  }
  return out;
}

/// A field of every run of `method`.
std::vector<double> values_of(const FairnessStudy& study, const std::string& method,
                              double FairnessRun::*field, bool absolute = false) {
  std::vector<double> out;
  for (const FairnessRun* r : runs_of(study, method)) {
    out.push_back(absolute ? std::abs(r->*field) : r->*field);
  }
  return out;
}

double max_of(const std::vector<double>& v) {
  return v.empty() ? 0.0 : *std::max_element(v.begin(), v.end());
}

double mean_of(const std::vector<double>& v) {
  double sum = 0;
  for (double x : v) sum += x;
  return v.empty() ? 0.0 : sum / static_cast<double>(v.size());
}

/// "19 of 20 (95%)".
std::string share(int64_t k, int64_t n) {
  return std::to_string(k) + " of " + std::to_string(n) + " (" +
         fixed(n == 0 ? 0.0 : 100.0 * static_cast<double>(k) / static_cast<double>(n), 0) + "%)";
}

/// "parity 20 of 20 (100%); opportunity 19 of 20 (95%)".
std::string per_study(const FairnessOutcome& o, const std::string& method) {
  std::string text;
  for (const FairnessStudy& s : o.studies) {
    if (!text.empty()) text += "; ";
    text += requirement_key(s.requirement) + " " +
            share(s.meets(method, o.settings.eps), static_cast<int64_t>(s.draws.size()));
  }
  return text;
}

/// How many runs of `method` the audit called "holds" although the fresh gap exceeds eps.
int64_t false_holds(const FairnessOutcome& o, const std::string& method) {
  int64_t n = 0;
  for (const FairnessStudy& s : o.studies) {
    for (const FairnessRun* r : runs_of(s, method)) {
      n += r->verdict == "holds" && !r->meets(o.settings.eps) ? 1 : 0;
    }
  }
  return n;
}

nlohmann::json study_json(const FairnessStudy& study, double eps) {
  nlohmann::json methods = nlohmann::json::object();
  for (const std::string& m : fairness_methods()) {
    const std::vector<double> gaps = values_of(study, m, &FairnessRun::fresh_gap, true);
    methods[m] = {
        {"meets_on_fresh_data", study.meets(m, eps)},
        {"draws", study.draws.size()},
        {"mean_abs_fresh_gap", mean_of(gaps)},
        {"max_abs_fresh_gap", max_of(gaps)},
        {"mean_abs_train_gap", mean_of(values_of(study, m, &FairnessRun::train_gap, true))},
        {"mean_fresh_accuracy_pct", study.mean_accuracy(m)},
        {"audit_holds", study.verdicts(m, "holds")},
        {"audit_inconclusive", study.verdicts(m, "inconclusive")},
        {"audit_violated", study.verdicts(m, "violated")}};
  }
  nlohmann::json draws = nlohmann::json::array();
  for (const FairnessDraw& d : study.draws) {
    for (const FairnessRun& r : d.runs) {
      draws.push_back({{"draw", d.draw},
                       {"method", r.method},
                       {"train_gap", r.train_gap},
                       {"validation_gap", r.validation_gap},
                       {"fresh_gap", r.fresh_gap},
                       {"fresh_accuracy_pct", r.fresh_accuracy},
                       {"margin", r.margin},
                       {"verdict", r.verdict},
                       {"audit_upper", r.audit_upper},
                       {"seconds", r.seconds}});
    }
  }
  return {
      {"requirement", requirement_name(study.requirement)}, {"methods", methods}, {"runs", draws}};
}

std::string study_table(const FairnessStudy& study, double eps) {
  std::vector<std::vector<std::string>> rows;
  const auto n = static_cast<int64_t>(study.draws.size());
  for (const std::string& m : fairness_methods()) {
    const std::vector<double> gaps = values_of(study, m, &FairnessRun::fresh_gap, true);
    rows.push_back({m, share(study.meets(m, eps), n),
                    fixed(mean_of(values_of(study, m, &FairnessRun::train_gap, true)), 4),
                    fixed(mean_of(gaps), 4), fixed(max_of(gaps), 4),
                    fixed(study.mean_accuracy(m), 2),
                    std::to_string(study.verdicts(m, "holds")) + " / " +
                        std::to_string(study.verdicts(m, "inconclusive")) + " / " +
                        std::to_string(study.verdicts(m, "violated"))});
  }
  return markdown_table({"method", "meets |gap| <= eps on fresh data", "mean |gap| training",
                         "mean |gap| fresh", "max |gap| fresh", "accuracy on fresh data (%)",
                         "audit on the test set: holds / inconclusive / violated"},
                        rows);
}

}  // namespace

bool FairnessRun::meets(double eps) const { return std::abs(fresh_gap) <= eps; }

int64_t FairnessStudy::meets(const std::string& method, double eps) const {
  int64_t n = 0;
  for (const FairnessRun* r : runs_of(*this, method)) n += r->meets(eps) ? 1 : 0;
  return n;
}

double FairnessStudy::mean_accuracy(const std::string& method) const {
  return mean_of(values_of(*this, method, &FairnessRun::fresh_accuracy));
}

int64_t FairnessStudy::verdicts(const std::string& method, const std::string& verdict) const {
  int64_t n = 0;
  for (const FairnessRun* r : runs_of(*this, method)) n += r->verdict == verdict ? 1 : 0;
  return n;
}

std::string requirement_name(FairnessRequirement r) {
  return r == FairnessRequirement::kParity ? "demographic parity" : "equal opportunity";
}

std::string requirement_key(FairnessRequirement r) {
  return r == FairnessRequirement::kParity ? "parity" : "opportunity";
}

const std::vector<std::string>& fairness_methods() {
  static const std::vector<std::string> methods = {"unconstrained", "penalty", "constrained",
                                                   "validated"};
  return methods;
}

std::vector<Check> fairness_checks(const FairnessOutcome& o) {
  const double eps = o.settings.eps;
  bool validated = !o.studies.empty(), constrained = !o.studies.empty(), binds = true;
  for (const FairnessStudy& s : o.studies) {
    const auto n = static_cast<double>(s.draws.size());
    validated = validated && static_cast<double>(s.meets("validated", eps)) >= 0.95 * n;
    constrained = constrained && static_cast<double>(s.meets("constrained", eps)) <= 0.8 * n;
    binds = binds && s.meets("unconstrained", eps) == 0;
  }
  const int64_t wrong = false_holds(o, "validated") + false_holds(o, "constrained") +
                        false_holds(o, "penalty") + false_holds(o, "unconstrained");
  return {{"validated (dual on a validation set, against eps - margin): |gap| <= " + fmt(eps, 3) +
               " on fresh data in at least 95% of draws, for each requirement",
           validated, per_study(o, "validated")},
          {"constrained training on the training set alone: |gap| <= " + fmt(eps, 3) +
               " on fresh data in at most 80% of draws, for each requirement (met in training "
               "does not carry over)",
           constrained, per_study(o, "constrained")},
          {"unconstrained training violates each requirement on fresh data in every draw (the "
           "requirements bind)",
           binds, per_study(o, "unconstrained")},
          {"the audit never says \"holds\" for a model whose gap on fresh data exceeds eps",
           wrong == 0, std::to_string(wrong) + " such verdicts"}};
}

nlohmann::json fairness_results(const FairnessOutcome& o) {
  const FairnessSettings& s = o.settings;
  nlohmann::json studies = nlohmann::json::object();
  for (const FairnessStudy& study : o.studies) {
    studies[requirement_key(study.requirement)] = study_json(study, s.eps);
  }
  return {{"settings",
           {{"mode", s.mode},
            {"draws", s.draws},
            {"train_examples", s.train_examples},
            {"validation_examples", s.validation_examples},
            {"test_examples", s.test_examples},
            {"fresh_examples", s.fresh_examples},
            {"steps", s.steps},
            {"dual_every", s.dual_every},
            {"dual_lr", s.dual_lr},
            {"lr", s.lr},
            {"eps", s.eps},
            {"delta", s.delta},
            {"penalty", s.penalty},
            {"seed", s.seed}}},
          {"data",
           "synthetic: group b with probability 0.4; x = z + g (1, 0.5, 0, 0), z ~ N(0, I_4); y ~ "
           "Bernoulli(sigmoid(1.5 x1 - x2 + x3 + 0.5 x4 - 0.5)); features (x, g); draw d seeded "
           "with seed * 1000 + d"},
          {"studies", studies}};
}

std::string fairness_report(const FairnessOutcome& o, const FigureFile& figure) {
  const FairnessSettings& s = o.settings;
  std::ostringstream md;
  md << "## Problem\n\nA logistic regression on synthetic data with two groups a and b (the "
        "generator is in docs/experiments.md) must keep the gap between the groups within eps = "
     << fmt(s.eps, 3)
     << ": demographic parity |P(yhat=1 | a) - P(yhat=1 | b)| <= eps, and, as a separate study, "
        "equal opportunity |P(yhat=1 | y=1, a) - P(yhat=1 | y=1, b)| <= eps. Each draw makes four "
        "datasets anew: training ("
     << s.train_examples << "), validation (" << s.validation_examples << "), test ("
     << s.test_examples << ", the audit) and a fresh sample (" << s.fresh_examples
     << ", the held-out truth). Every run: Adam (lr " << fmt(s.lr, 3) << "), " << s.steps
     << " full-batch steps from zero weights.\n\n"
     << "- **unconstrained**: the cross-entropy alone.\n"
     << "- **penalty**: f + c (|gap| - eps) with c = " << fmt(s.penalty, 3)
     << " on the sigmoid surrogate of the gap (FixedPenalty).\n"
     << "- **constrained**: a Lagrangian (SimultaneousOptimizer, gradient ascent with step "
     << fmt(s.dual_lr, 3)
     << " on the multipliers) on the training set: the surrogate gap for the primal step, the "
        "0-1 gap for the dual step (rates::within).\n"
     << "- **validated**: the same, but the dual player reads the 0-1 gap on the validation set "
        "(ConstrainedOptimizer::dual_step every "
     << s.dual_every
     << " steps) against eps - margin, with margin = the sum of the groups' one-sided Hoeffding "
        "radii at delta / 4 = "
     << fmt(s.delta / 4, 3)
     << " (Cotter et al., ICML 2019, for the validation stream). The training set's "
        "observations only move the model.\n\n";
  for (const FairnessStudy& study : o.studies) {
    md << "## " << requirement_name(study.requirement) << "\n\n"
       << study_table(study, s.eps) << "\n";
  }
  md << "The audit (feasible::audit on the test set, delta = " << fmt(s.delta, 3)
     << ", Clopper-Pearson bounds of each group's rate, Holm across the two sides) says "
        "\"holds\" only when the upper confidence bound of |gap| is below eps; with "
     << s.test_examples
     << " test examples its bounds are wider than the validated method's margin, so "
        "\"inconclusive\" is the expected verdict for models close to the bound.\n\n"
     << markdown_figure(figure) << "\n"
     << "## Data files\n\n- runs.csv: one row per requirement, draw and method (gaps on the "
        "training, validation and fresh data, accuracy, margin, the audit's verdict and upper "
        "bound).\n";
  return md.str();
}

}  // namespace feasible::app
