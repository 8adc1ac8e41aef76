// E4, the overhead: what the outcome shows (ratios, checks, results.json, report). Torch-free.
#include <sstream>

#include "apps/feasible/overhead.h"
#include "apps/feasible/stats.h"

namespace feasible::app {

using stats::median_of;
using stats::stddev_of;

OverheadRatios overhead_ratios(const OverheadOutcome& o) {
  const std::vector<OverheadArm>& arms = o.arms;
  const double base = median_of(arms[0].seconds);
  OverheadRatios r;
  r.constrained = median_of(arms[1].seconds) / base;
  r.no_proxy = median_of(arms[2].seconds) / base;
  r.hand = median_of(arms[3].seconds) / base;
  // Per-round ratios: robust to slow drift of the machine.
  std::vector<double> round_ratios;
  for (size_t i = 0; i < arms[0].seconds.size() && i < arms[1].seconds.size(); ++i) {
    round_ratios.push_back(arms[1].seconds[i] / arms[0].seconds[i]);
  }
  r.median_round = median_of(round_ratios);
  return r;
}

std::vector<Check> overhead_checks(const OverheadOutcome& o) {
  const double no_proxy = overhead_ratios(o).no_proxy;
  return {{"the library's own cost: constrained (same closure work) within 10% of penalized",
           no_proxy <= 1.10, "ratio " + fixed(no_proxy, 3)}};
}

nlohmann::json overhead_results(const OverheadOutcome& o) {
  const OverheadSettings& s = o.settings;
  const double base = median_of(o.arms[0].seconds);
  nlohmann::json table = nlohmann::json::array();
  for (const OverheadArm& arm : o.arms) {
    const double med = median_of(arm.seconds);
    table.push_back({{"arm", arm.key},
                     {"label", arm.label},
                     {"runs", arm.seconds.size()},
                     {"seconds", arm.seconds},
                     {"median_seconds", med},
                     {"stddev_seconds", stddev_of(arm.seconds)},
                     {"ratio_to_penalized", med / base}});
  }
  const OverheadRatios r = overhead_ratios(o);
  nlohmann::json results;
  results["settings"] = {{"problem", "rate-constrained classification (E2), 400 points"},
                         {"iterations", s.iterations},
                         {"repeats", s.repeats},
                         {"order", "interleaved: A B C D, repeated"},
                         {"penalty_c", s.penalty_c},
                         {"dual_step", s.dual_step},
                         {"primal_lr", s.primal_lr},
                         {"timed", "the training loop only (data generation excluded)"}};
  results["table2"] = table;
  results["ratio_constrained_to_penalized"] = r.constrained;
  results["ratio_no_proxy_to_penalized"] = r.no_proxy;
  results["ratio_hand_to_penalized"] = r.hand;
  results["median_round_ratio"] = r.median_round;
  results["published"] = {
      {"rate",
       {{"penalized_seconds", 5.40}, {"constrained_seconds", 5.68}, {"ratio", 5.68 / 5.40}}},
      {"sparsity",
       {{"penalized_minutes", 8.17}, {"constrained_minutes", 8.30}, {"ratio", 8.30 / 8.17}}},
      {"hardware", "the paper's (PyTorch with Cooper)"}};
  return results;
}

std::string overhead_report(const OverheadOutcome& o) {
  const OverheadSettings& s = o.settings;
  const double base = median_of(o.arms[0].seconds);
  std::vector<std::vector<std::string>> rows;
  for (const OverheadArm& arm : o.arms) {
    const double med = median_of(arm.seconds);
    rows.push_back({arm.label, std::to_string(arm.seconds.size()), fixed(med, 3),
                    fixed(stddev_of(arm.seconds), 3), fixed(med / base, 3)});
  }
  const OverheadRatios r = overhead_ratios(o);
  std::ostringstream md;
  md << "## Settings\n\nThe rate-constrained problem of E2, " << s.iterations
     << " full-batch iterations per run, " << s.repeats
     << " runs per arm, interleaved (A B C D A B C D ...), after one untimed warm-up of each. "
        "Only the training loop is timed. Penalized: c = 2.15; constrained: dual step 1e-2.\n";
  if (s.quick) {
    md << "- **Quick mode**: " << s.repeats << " runs per arm instead of 7, " << s.iterations
       << " iterations instead of 10,000.\n";
  }
  md << "\n## Table 2: wall-clock per run\n\n"
     << markdown_table({"arm", "runs", "median (s)", "std (s)", "ratio to penalized"}, rows)
     << "\nConstrained / penalized: **" << fixed(r.constrained, 3)
     << "** (median of per-round ratios " << fixed(r.median_round, 3) << ").\n\n"
     << "Where the extra cost comes from: with the same closure work (arm C) the constrained step "
        "costs "
     << fixed(r.no_proxy, 3)
     << " times the penalized one; the rest is the exact 0-1 rate that the proxy constraint "
        "computes every step (a few extra tensor operations, which on a 400-point problem are a "
        "visible share of a step dominated by per-operation overhead). The hand-written "
        "penalized loop costs "
     << fixed(r.hand, 3) << " times the library's.\n\n"
     << "Published (the paper's hardware, PyTorch with Cooper): rate-constrained 5.40 s vs 5.68 s "
        "(ratio 1.052); sparsity-constrained 8.17 min vs 8.30 min (ratio 1.016). The sparsity "
        "row is measured by the sparsity experiment (`feasible reproduce sparsity`, its report's "
        "section \"Table 2, second row\"), where penalized and constrained epochs alternate. "
        "Absolute times are not comparable across machines; the ratio is.\n\n"
        "Data: [runs.csv](runs.csv).\n";
  return md.str();
}

}  // namespace feasible::app
