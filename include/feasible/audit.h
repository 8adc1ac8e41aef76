#pragma once
/// \file audit.h
/// The held-out audit: after training, does the model meet its requirements on rates in the
/// population, not only on the data it was trained on? The audit pools the counts of every
/// requirement over held-out batches, bounds each scalar requirement with a one-sided confidence
/// bound, corrects for testing many of them, and gives each a verdict. docs/audit.md has the
/// bounds, their assumptions, the correction and examples of the report.
///
///   feasible::AuditReport report = feasible::audit(problem, held_out_loader,
///       [&](const feasible::data::Batch& batch, feasible::Auditor& auditor) {
///         auto scores = model->forward(batch.inputs);
///         auditor.observe(fnr, rates::at_most(rates::false_negative_rate(scores, labels), 0.1));
///       });
///   std::cout << report.to_markdown();
///
/// Every bound assumes that the held-out examples are independent draws from the population
/// the requirement is about and independent of the model (not used to train or to select it).

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "feasible/problem.h"

namespace feasible {

namespace rates {
class Requirement;
}  // namespace rates
namespace data {
struct Batch;
class BatchLoader;
}  // namespace data

/// How the audit accounts for testing many scalar requirements at once: the number m of tested
/// entries counts every scalar entry of every observed constraint.
enum class Correction {
  /// Holm's step-down procedure (S. Holm, "A Simple Sequentially Rejective Multiple Test
  /// Procedure", Scand. J. Statist. 6(2), 1979) (default): sort the p-values ascending,
  /// p_(1) <= ... <= p_(m); an entry holds when p_(j) <= delta / (m - j + 1) for it and for
  /// every entry before it. The chance that any violated entry is declared to hold is <= delta.
  kHolm,
  /// Bonferroni: an entry holds when p <= delta / m. Same guarantee, never more holds than Holm.
  kBonferroni,
  /// None: an entry holds when p <= delta. Each entry alone is wrong with chance <= delta; the
  /// chance that some entry is wrong grows with m.
  kNone,
};

/// The confidence bound for bounded means (rates::mean; Rate::counts == false). 0-1 rates
/// always take the exact Clopper–Pearson bound.
enum class MeanBound {
  /// Empirical Bernstein (A. Maurer, M. Pontil, "Empirical Bernstein Bounds and Sample Variance
  /// Penalization", COLT 2009, Theorem 4), for values in [a, b] (default):
  ///   mean + sqrt(2 V log(2 / alpha) / n) + 7 (b - a) log(2 / alpha) / (3 (n - 1)),
  /// V the unbiased sample variance; tight when the values vary little; needs Rate::squares.
  kEmpiricalBernstein,
  /// Hoeffding (W. Hoeffding, JASA 58(301), 1963): mean + (b - a) sqrt(log(1 / alpha) / (2 n)).
  kHoeffding,
};

/// The audit's conclusion on one scalar requirement e <= 0.
enum class Verdict {
  kHolds,         ///< Shown to hold: the correction rejected "e > 0" at level delta.
  kViolated,      ///< Shown to be violated: its lower bound at level delta / m is > 0.
  kInconclusive,  ///< Neither: more held-out examples are needed.
  kNotObserved,   ///< The constraint was never observed by the audit.
};

/// "holds", "violated", "inconclusive" or "not observed".
std::string to_string(Verdict verdict);
/// "Holm", "Bonferroni" or "none".
std::string to_string(Correction correction);
/// "empirical Bernstein" or "Hoeffding".
std::string to_string(MeanBound bound);

/// Options of the audit, validated by the Auditor's constructor and by audit().
struct AuditOptions {
  /// Throws c10::Error ("AuditOptions.<field> must <rule>, got <value>") when a field is out of
  /// range.
  void validate() const;
  /// The error level: the chance that the report declares some violated entry to hold (Holm,
  /// Bonferroni), or the chance per entry (Correction::kNone). In (0, 1). Default 0.05.
  TORCH_ARG(double, delta) = 0.05;
  /// The multiple-testing correction. Default Correction::kHolm.
  TORCH_ARG(Correction, correction) = Correction::kHolm;
  /// The bound for bounded means. Default MeanBound::kEmpiricalBernstein.
  TORCH_ARG(MeanBound, mean_bound) = MeanBound::kEmpiricalBernstein;
};

/// The audit of one scalar entry e = sum_i c_i r_i + offset of a requirement (holds when
/// e <= 0). Non-finite numbers (NaN) mark what is unknown: everything of a kNotObserved entry,
/// the estimate of an entry whose rate had no example.
struct AuditEntry {
  /// The constraint's name.
  std::string constraint;
  /// The entry's index in the constraint, in [0, size).
  int64_t entry = 0;
  /// The index of the requirement's part the entry belongs to (rates::Part), -1 if not observed.
  int64_t part = -1;
  /// The pooled value of e (0-1 rates or plain means of all held-out batches); > 0 is violated
  /// on the held-out data.
  double estimate = std::nan("");
  /// The requirement in threshold form, `quantity relation threshold`: for one term c r with
  /// c > 0, r <= -offset / c ("<="); with c < 0, r >= offset / |c| (">="); for several terms,
  /// sum_i c_i r_i <= -offset ("<="). E.g. at_most(r, eps): r and eps.
  double quantity = std::nan("");
  /// "<=" or ">=" (empty if not observed).
  std::string relation;
  /// The right-hand side of the threshold form.
  double threshold = std::nan("");
  /// The upper confidence bound of e at level upper_alpha: e <= upper with probability at least
  /// 1 - upper_alpha (each of the T terms bounded at upper_alpha / T; union bound).
  double upper = std::nan("");
  /// The level of `upper`: Holm, delta / (m - j + 1) for the entry's rank j among the p-values;
  /// Bonferroni, delta / m; none, delta.
  double upper_alpha = std::nan("");
  /// The lower confidence bound of e at level lower_alpha (the bound behind kViolated).
  double lower = std::nan("");
  /// The level of `lower`: delta / m (Holm, Bonferroni) or delta (none).
  double lower_alpha = std::nan("");
  /// The smallest alpha at which the upper bound is <= 0 (1 when none is): the p-value of the
  /// hypothesis "e > 0", floored at 1e-300.
  double p_value = std::nan("");
  /// The bound: "Clopper-Pearson", "Hoeffding", "empirical Bernstein", or several joined by
  /// " + " when the terms differ; empty if not observed.
  std::string method;
  /// What the bound assumes (the held-out examples, the denominators).
  std::string assumption;
  /// The smallest number of examples (pooled total) among the entry's terms.
  int64_t examples = 0;
  /// The verdict.
  Verdict verdict = Verdict::kNotObserved;
};

/// The audit's result: one entry per scalar entry of every inequality constraint of the problem,
/// in registration order (equality constraints are not audited).
struct AuditReport {
  /// The entries.
  std::vector<AuditEntry> entries;
  /// The options the audit ran with.
  AuditOptions options;
  /// m: the number of tested (observed) entries, which the correction divides delta by.
  int64_t tested = 0;
  /// Whether every entry holds (true when there is no entry).
  bool all_hold() const;
  /// The report as a JSON object: {"delta", "correction", "mean_bound", "tested", "all_hold",
  /// "entries": [{"constraint", "entry", "part", "estimate", "quantity", "relation",
  /// "threshold", "upper", "upper_alpha", "lower", "lower_alpha", "p_value", "method",
  /// "assumption", "examples", "verdict"}]}; unknown (NaN) numbers are null.
  std::string to_json() const;
  /// The report as a Markdown table, one row per entry, followed by the assumptions.
  std::string to_markdown() const;
};

/// Accumulates held-out observations of a problem's constraints and audits them.
class Auditor {
 public:
  /// \param problem  the problem whose constraints are audited (a copy shares it).
  /// \param options  validated here.
  explicit Auditor(Problem problem, AuditOptions options = AuditOptions());
  ~Auditor();
  Auditor(Auditor&&) noexcept;
  Auditor& operator=(Auditor&&) noexcept;

  /// Adds one held-out batch's requirement for `constraint`: per part, term and entry, the
  /// sums of hits, total (and squares, for bounded means) across batches. Call it once per
  /// batch per constraint. Throws c10::Error when the constraint is empty, of another problem
  /// or an equality; when requirement.size() differs from the constraint's size; when the
  /// requirement's structure (parts, terms, shapes, coefficients, offsets, kinds, ranges)
  /// differs from the first batch's; when a 0-1 rate's counts are not whole numbers in
  /// 0 <= hits <= total, or a bounded mean's sums are out of its range; or when the empirical
  /// Bernstein bound lacks Rate::squares.
  void observe(const Constraint& constraint, const rates::Requirement& requirement);
  /// The report of everything observed so far.
  AuditReport report() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// One pass over `loader` (start_epoch(), then every batch, under torch::NoGradGuard), calling
/// `evaluate` on each batch with the auditor, then the report.
AuditReport audit(const Problem& problem, data::BatchLoader& loader,
                  const std::function<void(const data::Batch&, Auditor&)>& evaluate,
                  AuditOptions options = AuditOptions());

/// The margin for training against one rate: for one model fixed before the n validation
/// examples are drawn, a rate measured as <= eps - margin on them is <= eps in the population
/// with probability at least 1 - delta, with Hoeffding's bound (W. Hoeffding, JASA 58(301),
/// 1963):
///   margin = sqrt(log(1 / delta) / (2 n))   (the same as rates::hoeffding_margin).
/// n >= 1, delta in (0, 1). Use it with rates::Requirement::tightened.
double audit_margin(int64_t n, double delta);

/// The margin for a difference of two groups' rates (difference_at_most, and each side of
/// within()), measured on n_a and n_b examples: the sum of the two groups' margins at delta / 2,
///   margin = audit_margin(n_a, delta / 2) + audit_margin(n_b, delta / 2),
/// so that a - b measured as <= eps - margin implies a - b <= eps with probability at least
/// 1 - delta (union bound over the two groups). For within(), whose two sides fail on different
/// events (a - b too high, or too low), pass delta / 2 to bound either failure by delta.
/// n_a, n_b >= 1, delta in (0, 1).
double audit_margin(int64_t n_a, int64_t n_b, double delta);

}  // namespace feasible
