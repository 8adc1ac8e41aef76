// The held-out audit (include/feasible/audit.h): the options, the Auditor's accumulation of
// pooled sums across batches, audit() and the margins. The bounds and the report are in
// src/audit_bounds.cpp and src/audit_report.cpp.
#include "feasible/audit.h"

#include <c10/util/Exception.h>

#include <cmath>
#include <map>
#include <utility>

#include "feasible/data.h"
#include "feasible/rates.h"
#include "src/audit_bounds.h"
#include "src/validate.h"

namespace feasible {

std::string to_string(Verdict verdict) {
  switch (verdict) {
    case Verdict::kHolds:
      return "holds";
    case Verdict::kViolated:
      return "violated";
    case Verdict::kInconclusive:
      return "inconclusive";
    case Verdict::kNotObserved:
      return "not observed";
  }
  return "unknown";
}

std::string to_string(Correction correction) {
  switch (correction) {
    case Correction::kHolm:
      return "Holm";
    case Correction::kBonferroni:
      return "Bonferroni";
    case Correction::kNone:
      return "none";
  }
  return "unknown";
}

std::string to_string(MeanBound bound) {
  return bound == MeanBound::kHoeffding ? "Hoeffding" : "empirical Bernstein";
}

void AuditOptions::validate() const {
  const detail::Validator check("AuditOptions");
  check.in_range("delta", delta(), 0.0, 1.0, detail::Validator::Interval::kOpen);
  check.one_of("correction",
               correction() == Correction::kHolm || correction() == Correction::kBonferroni ||
                   correction() == Correction::kNone,
               "Correction::kHolm, kBonferroni or kNone", correction());
  check.one_of(
      "mean_bound",
      mean_bound() == MeanBound::kEmpiricalBernstein || mean_bound() == MeanBound::kHoeffding,
      "MeanBound::kEmpiricalBernstein or kHoeffding", mean_bound());
}

namespace {

// The pooled sums of one term of one part, entry by entry, and what must stay the same.
struct TermSums {
  double coefficient = 1.0;
  bool counts = true;
  double lower = 0.0;
  double upper = 1.0;
  std::vector<int64_t> shape;
  std::vector<double> hits, total, squares;
};

struct PartSums {
  double offset = 0.0;
  std::vector<TermSums> terms;
};

std::vector<double> to_doubles(const torch::Tensor& t) {
  const torch::Tensor c = t.detach().to(torch::kCPU, torch::kFloat64).contiguous().reshape({-1});
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

bool whole(double x) { return std::abs(x - std::round(x)) <= 1e-5 * std::max(1.0, std::abs(x)); }

// Checks one batch's sums of one term: whole totals; whole counts in [0, total] for a 0-1 rate;
// sums in [lower, upper] * total (and squares that fit) for a bounded mean.
void check_sums(const TermSums& t, const std::string& where) {
  // Allow for the rounding of float32 sums: a relative 1e-5 of the bound.
  const auto slack = [](double x) { return 1e-5 * std::max(1.0, std::abs(x)); };
  for (size_t k = 0; k < t.total.size(); ++k) {
    const double n = t.total[k], h = t.hits[k];
    TORCH_CHECK(std::isfinite(n) && n >= 0 && whole(n), where, ": total ", n, " at entry ", k,
                " is not a whole number >= 0 (Rate::total counts examples)");
    TORCH_CHECK(std::isfinite(h), where, ": hits ", h, " at entry ", k, " is not finite");
    if (t.counts) {
      TORCH_CHECK(whole(h) && h >= 0 && h <= n + slack(n), where, ": hits ", h, " at entry ", k,
                  " must be a whole number in [0, total = ", n,
                  "] (a 0-1 rate counts examples; Rate::counts = true)");
      continue;
    }
    TORCH_CHECK(h >= t.lower * n - slack(t.lower * n) && h <= t.upper * n + slack(t.upper * n),
                where, ": hits (the sum of the values) ", h, " at entry ", k, " is outside [",
                t.lower, ", ", t.upper, "] * total = ", n);
    if (t.squares.empty()) continue;
    const double top = std::max(t.lower * t.lower, t.upper * t.upper) * n;
    TORCH_CHECK(std::isfinite(t.squares[k]) && t.squares[k] >= -slack(0) &&
                    t.squares[k] <= top + slack(top),
                where, ": squares ", t.squares[k], " at entry ", k, " is outside [0, ", top,
                "] (the sum of squared values in [", t.lower, ", ", t.upper, "])");
  }
}

// One batch's part as sums, checked.
PartSums part_sums(const rates::Part& part, size_t p, const std::string& where,
                   MeanBound mean_bound) {
  PartSums out{part.offset, {}};
  for (size_t i = 0; i < part.terms.size(); ++i) {
    const rates::Rate& r = part.terms[i].rate;
    const std::string at = c10::str(where, ", part ", p, ", term ", i);
    TermSums t{part.terms[i].coefficient,
               r.counts,
               r.lower,
               r.upper,
               r.hits.sizes().vec(),
               to_doubles(r.hits),
               to_doubles(r.total),
               {}};
    if (!r.counts) {
      TORCH_CHECK(std::isfinite(r.lower) && std::isfinite(r.upper) && r.lower < r.upper, at,
                  ": a bounded mean needs finite lower < upper, got [", r.lower, ", ", r.upper,
                  "]");
      TORCH_CHECK(r.squares.defined() || mean_bound == MeanBound::kHoeffding, at,
                  ": the empirical Bernstein bound needs Rate::squares (the sum of the squared "
                  "values); set it, or use AuditOptions().mean_bound(MeanBound::kHoeffding)");
      if (r.squares.defined()) {
        TORCH_CHECK(r.squares.numel() == r.hits.numel(), at, ": squares has ", r.squares.numel(),
                    " entries, hits ", r.hits.numel());
        t.squares = to_doubles(r.squares);
      }
    }
    check_sums(t, at);
    // Whole numbers from here on (float32 sums may be off by a rounding).
    for (double& n : t.total) n = std::round(n);
    if (t.counts) {
      for (double& h : t.hits) h = std::round(h);
    }
    out.terms.push_back(std::move(t));
  }
  return out;
}

// Whether `batch` has the structure of `first` (the first batch's sums); throws naming the
// first difference.
void check_structure(const std::vector<PartSums>& first, const std::vector<PartSums>& batch,
                     const std::string& where) {
  const std::string rule =
      " as in the first batch (the requirement must have the same structure "
      "in every batch)";
  TORCH_CHECK(first.size() == batch.size(), where, ": ", batch.size(), " parts, not ", first.size(),
              rule);
  for (size_t p = 0; p < first.size(); ++p) {
    const PartSums &a = first[p], &b = batch[p];
    TORCH_CHECK(a.terms.size() == b.terms.size(), where, ", part ", p, ": ", b.terms.size(),
                " terms, not ", a.terms.size(), rule);
    TORCH_CHECK(a.offset == b.offset, where, ", part ", p, ": offset ", b.offset, ", not ",
                a.offset, rule);
    for (size_t i = 0; i < a.terms.size(); ++i) {
      const TermSums &s = a.terms[i], &t = b.terms[i];
      TORCH_CHECK(
          s.coefficient == t.coefficient && s.counts == t.counts && s.lower == t.lower &&
              s.upper == t.upper && s.shape == t.shape && s.squares.empty() == t.squares.empty(),
          where, ", part ", p, ", term ", i, ": coefficient ", t.coefficient, ", counts ", t.counts,
          ", range [", t.lower, ", ", t.upper, "], shape ", c10::IntArrayRef(t.shape), ", squares ",
          !t.squares.empty(), "; not ", s.coefficient, ", ", s.counts, ", [", s.lower, ", ",
          s.upper, "], ", c10::IntArrayRef(s.shape), ", ", !s.squares.empty(), rule);
    }
  }
}

void add_into(std::vector<double>& into, const std::vector<double>& x) {
  for (size_t k = 0; k < x.size(); ++k) into[k] += x[k];
}

}  // namespace

struct Auditor::Impl {
  Problem problem;
  AuditOptions options;
  std::map<size_t, std::vector<PartSums>> sums;  // by the constraint's index
};

Auditor::Auditor(Problem problem, AuditOptions options)
    : impl_(std::make_unique<Impl>(Impl{std::move(problem), std::move(options), {}})) {
  impl_->options.validate();
}

Auditor::~Auditor() = default;
Auditor::Auditor(Auditor&&) noexcept = default;
Auditor& Auditor::operator=(Auditor&&) noexcept = default;

void Auditor::observe(const Constraint& constraint, const rates::Requirement& requirement) {
  TORCH_CHECK(constraint.defined(), "Auditor::observe: the constraint handle is empty");
  const std::string where = c10::str("Auditor::observe('", constraint.name(), "')");
  TORCH_CHECK(constraint.problem_id() == impl_->problem.id(), where,
              ": the constraint belongs to another problem");
  TORCH_CHECK(constraint.kind() == ConstraintKind::kInequality, where,
              ": an equality constraint cannot be audited (the audit bounds one-sided "
              "requirements e <= 0; state the equality as two inequalities, e.g. rates::within)");
  TORCH_CHECK(requirement.size() == constraint.size(), where, ": the requirement has ",
              requirement.size(), " entries, the constraint ", constraint.size());
  std::vector<PartSums> batch;
  for (size_t p = 0; p < requirement.parts().size(); ++p) {
    batch.push_back(part_sums(requirement.parts()[p], p, where, impl_->options.mean_bound()));
  }
  auto found = impl_->sums.find(constraint.index());
  if (found == impl_->sums.end()) {
    impl_->sums.emplace(constraint.index(), std::move(batch));
    return;
  }
  check_structure(found->second, batch, where);
  for (size_t p = 0; p < batch.size(); ++p) {
    for (size_t i = 0; i < batch[p].terms.size(); ++i) {
      TermSums& into = found->second[p].terms[i];
      add_into(into.hits, batch[p].terms[i].hits);
      add_into(into.total, batch[p].terms[i].total);
      if (!into.squares.empty()) add_into(into.squares, batch[p].terms[i].squares);
    }
  }
}

AuditReport Auditor::report() const {
  std::vector<detail::EntryInput> inputs;
  for (const Constraint& c : impl_->problem.constraints()) {
    if (c.kind() != ConstraintKind::kInequality) continue;
    auto found = impl_->sums.find(c.index());
    if (found == impl_->sums.end()) {
      for (int64_t k = 0; k < c.size(); ++k) inputs.push_back({c.name(), k, -1, 0.0, {}});
      continue;
    }
    int64_t entry = 0;
    for (size_t p = 0; p < found->second.size(); ++p) {
      const PartSums& part = found->second[p];
      for (size_t k = 0; k < part.terms.front().total.size(); ++k) {
        detail::EntryInput in{c.name(), entry++, static_cast<int64_t>(p), part.offset, {}};
        for (const TermSums& t : part.terms) {
          in.terms.push_back({t.coefficient, t.counts, t.lower, t.upper, t.total[k], t.hits[k],
                              t.squares.empty() ? 0.0 : t.squares[k]});
        }
        inputs.push_back(std::move(in));
      }
    }
  }
  return detail::audit_entries(inputs, impl_->options);
}

AuditReport audit(const Problem& problem, data::BatchLoader& loader,
                  const std::function<void(const data::Batch&, Auditor&)>& evaluate,
                  AuditOptions options) {
  TORCH_CHECK(static_cast<bool>(evaluate), "feasible::audit: evaluate is empty");
  Auditor auditor(problem, std::move(options));
  torch::NoGradGuard no_grad;
  loader.start_epoch();
  while (auto batch = loader.next()) evaluate(*batch, auditor);
  return auditor.report();
}

namespace {

void check_margin_args(int64_t n, const char* name, double delta) {
  TORCH_CHECK(n >= 1, "feasible::audit_margin: ", name, " must be >= 1, got ", n);
  TORCH_CHECK(delta > 0 && delta < 1, "feasible::audit_margin: delta must be in (0, 1), got ",
              delta);
}

}  // namespace

double audit_margin(int64_t n, double delta) {
  check_margin_args(n, "n", delta);
  return std::sqrt(std::log(1.0 / delta) / (2.0 * static_cast<double>(n)));
}

double audit_margin(int64_t n_a, int64_t n_b, double delta) {
  check_margin_args(n_a, "n_a", delta);
  check_margin_args(n_b, "n_b", delta);
  return audit_margin(n_a, delta / 2) + audit_margin(n_b, delta / 2);
}

}  // namespace feasible
