// The audit's report (include/feasible/audit.h): the entries' estimates, bounds, p-values and
// verdicts from the pooled sums, and the report as JSON and as Markdown.
#include <c10/util/Exception.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>

#include "feasible/audit.h"
#include "src/audit_bounds.h"

namespace feasible {
namespace detail {
namespace {

double mean_of(const TermStats& t) { return t.n > 0 ? t.sum / t.n : std::nan(""); }

// The estimate of e, its threshold form, the method, the assumption and the examples.
void describe(const EntryInput& in, MeanBound mean_bound, AuditEntry& e) {
  double combined = 0.0;
  double examples = in.terms.front().n;
  std::vector<std::string> methods;
  for (const TermStats& t : in.terms) {
    combined += t.coefficient * mean_of(t);
    examples = std::min(examples, t.n);
    const std::string name = method_name(t, mean_bound);
    if (std::find(methods.begin(), methods.end(), name) == methods.end()) methods.push_back(name);
  }
  e.estimate = combined + in.offset;
  e.examples = static_cast<int64_t>(std::llround(examples));
  const TermStats& first = in.terms.front();
  if (in.terms.size() == 1 && first.coefficient != 0.0) {
    e.quantity = mean_of(first);
    e.relation = first.coefficient > 0 ? "<=" : ">=";
    e.threshold = -in.offset / first.coefficient;  // c r + offset <= 0 <=> r (<= or >=) -offset/c
  } else {
    e.quantity = combined;
    e.relation = "<=";
    e.threshold = -in.offset;
  }
  std::string assumption;
  for (const std::string& m : methods) {
    e.method += (e.method.empty() ? "" : " + ") + m;
    if (m == "Clopper-Pearson") {
      assumption +=
          "Clopper-Pearson: the examples of each rate's denominator are independent "
          "draws from its population, independent of the model (a denominator that "
          "depends on the model, such as precision's predicted set, is conditioned "
          "on); ";
    } else {
      assumption += m + ": independent values in the stated range, independent of the model; ";
    }
  }
  if (in.terms.size() > 1) {
    assumption += "the terms are combined by a union bound (no independence between them); ";
  }
  e.assumption = assumption.substr(0, assumption.size() - 2);
}

}  // namespace

AuditReport audit_entries(const std::vector<EntryInput>& inputs, const AuditOptions& options) {
  AuditReport report;
  report.options = options;
  std::vector<size_t> observed;
  std::vector<double> p_values;
  for (const EntryInput& in : inputs) {
    AuditEntry e;
    e.constraint = in.constraint;
    e.entry = in.entry;
    e.part = in.part;
    if (!in.terms.empty()) {
      describe(in, options.mean_bound(), e);
      e.p_value = entry_p_value(in.terms, in.offset, options.mean_bound());
      observed.push_back(report.entries.size());
      p_values.push_back(e.p_value);
    }
    report.entries.push_back(std::move(e));
  }
  const size_t m = observed.size();
  report.tested = static_cast<int64_t>(m);
  const Tested tested = correct(p_values, options.delta(), options.correction());
  const double lower_alpha = options.correction() == Correction::kNone
                                 ? options.delta()
                                 : options.delta() / static_cast<double>(m);
  for (size_t j = 0; j < m; ++j) {
    AuditEntry& e = report.entries[observed[j]];
    const EntryInput& in = inputs[observed[j]];
    e.upper_alpha = tested.levels[j];
    e.upper = entry_bound(in.terms, in.offset, e.upper_alpha, options.mean_bound(), true);
    e.lower_alpha = lower_alpha;
    e.lower = entry_bound(in.terms, in.offset, lower_alpha, options.mean_bound(), false);
    e.verdict = tested.holds[j] ? Verdict::kHolds
                : e.lower > 0   ? Verdict::kViolated
                                : Verdict::kInconclusive;
  }
  return report;
}

}  // namespace detail

bool AuditReport::all_hold() const {
  for (const AuditEntry& e : entries) {
    if (e.verdict != Verdict::kHolds) return false;
  }
  return true;
}

namespace {

nlohmann::json number(double x) { return std::isfinite(x) ? nlohmann::json(x) : nullptr; }

std::string format(double x) {
  if (!std::isfinite(x)) return "n/a";
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.4g", x);
  return buffer;
}

}  // namespace

std::string AuditReport::to_json() const {
  nlohmann::json out = {{"delta", options.delta()},
                        {"correction", to_string(options.correction())},
                        {"mean_bound", to_string(options.mean_bound())},
                        {"tested", tested},
                        {"all_hold", all_hold()},
                        {"entries", nlohmann::json::array()}};
  for (const AuditEntry& e : entries) {
    out["entries"].push_back({{"constraint", e.constraint},
                              {"entry", e.entry},
                              {"part", e.part},
                              {"estimate", number(e.estimate)},
                              {"quantity", number(e.quantity)},
                              {"relation", e.relation},
                              {"threshold", number(e.threshold)},
                              {"upper", number(e.upper)},
                              {"upper_alpha", number(e.upper_alpha)},
                              {"lower", number(e.lower)},
                              {"lower_alpha", number(e.lower_alpha)},
                              {"p_value", number(e.p_value)},
                              {"method", e.method},
                              {"assumption", e.assumption},
                              {"examples", e.examples},
                              {"verdict", to_string(e.verdict)}});
  }
  return out.dump(2);
}

std::string AuditReport::to_markdown() const {
  std::ostringstream s;
  s << "Audit at delta = " << format(options.delta()) << ", correction "
    << to_string(options.correction()) << " over m = " << tested
    << " tested entries; bounded means: " << to_string(options.mean_bound()) << ".\n\n"
    << "| constraint | entry | measured | e | lower | upper | p-value | method | examples | "
       "verdict |\n"
    << "|---|---|---|---|---|---|---|---|---|---|\n";
  std::vector<std::string> assumptions;
  for (const AuditEntry& e : entries) {
    const std::string measured =
        e.relation.empty() ? "n/a"
                           : format(e.quantity) + " " + e.relation + " " + format(e.threshold);
    s << "| " << e.constraint << " | " << e.entry << " | " << measured << " | "
      << format(e.estimate) << " | " << format(e.lower) << " | " << format(e.upper) << " | "
      << format(e.p_value) << " | " << (e.method.empty() ? "n/a" : e.method) << " | " << e.examples
      << " | " << to_string(e.verdict) << " |\n";
    if (!e.assumption.empty() &&
        std::find(assumptions.begin(), assumptions.end(), e.assumption) == assumptions.end()) {
      assumptions.push_back(e.assumption);
    }
  }
  if (!assumptions.empty()) s << "\nAssumptions:\n\n";
  for (const std::string& a : assumptions) s << "- " << a << ".\n";
  return s.str();
}

}  // namespace feasible
