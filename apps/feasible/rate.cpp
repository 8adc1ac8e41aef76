// E2: rate-constrained linear classification. Ramirez et al. (arXiv:2505.20628), Figure 2,
// App. B.3, Tables 4 and 5.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <sstream>

#include "apps/feasible/experiments.h"
#include "apps/feasible/figures.h"
#include "apps/feasible/rate_problem.h"

namespace feasible::app {
namespace {

/// The sweep: 0, then 10^(k/3) for k = -12 ... 6 (printed 1.00, 2.15, 4.64 times 1e-4 ... 1e2).
std::vector<double> sweep_values() {
  std::vector<double> values = {0.0};
  for (int k = -12; k <= 6; ++k) values.push_back(std::pow(10.0, k / 3.0));
  return values;
}

/// Published class-0 percentage / accuracy (Tables 4 and 5) for a sweep value.
std::pair<double, double> published_penalty(double c) {
  if (c < 0.99) return {49.75, 99.75};
  if (c < 1.01) return {50.50, 99.50};
  if (c < 2.2) return {76.00, 74.00};
  if (c < 4.7) return {99.75, 50.25};
  return {100.0, 50.0};
}
std::pair<double, double> published_lagrangian(double eta) {
  if (eta < 2.2e-4) return {49.75, 99.75};
  if (eta < 4.7e-4) return {50.0, 100.0};
  if (eta < 1.01e-3) return {60.0, 90.0};
  return {70.0, 80.0};  // 70.00 (or 69.75) / 80.00 (or 80.25)
}

std::string value_text(double v) { return v == 0 ? "0" : fmt(v, 3); }

}  // namespace

nlohmann::json run_rate(const ExperimentContext& context) {
  const auto start = std::chrono::steady_clock::now();
  Progress& progress = *context.progress;
  const bool quick = context.config.quick;
  const int64_t iterations = 10000;
  const double primal_lr = 2e-2;
  const int64_t record_every = 50;

  const std::vector<double> all_values = sweep_values();
  std::vector<double> values = all_values;
  std::vector<double> surrogate_values = all_values;
  if (quick) {
    // Keep the values that carry each qualitative result (0, the collapse, the one
    // non-collapsed penalty, the Lagrangian's threshold, large steps).
    auto pick = [&](std::vector<int> ks) {
      std::vector<double> out;
      for (int k : ks) out.push_back(all_values[static_cast<size_t>(k)]);
      return out;
    };
    values = pick({0, 4, 5, 7, 13, 14, 19});
    surrogate_values = pick({7});
  }
  const double runs = static_cast<double>(2 * values.size() + surrogate_values.size());
  progress.start_experiment("rate", runs * static_cast<double>(iterations));

  const RateData data = make_rate_data(context.config.seed);
  std::vector<RateRun> penalty, lagrangian, surrogate;
  for (double v : values) {
    penalty.push_back(
        train_rate(data, RateMethod::kPenalty, v, iterations, primal_lr, record_every, &progress));
  }
  for (double v : values) {
    lagrangian.push_back(train_rate(data, RateMethod::kLagrangianProxy, v, iterations, primal_lr,
                                    record_every, &progress));
  }
  for (double v : surrogate_values) {
    surrogate.push_back(train_rate(data, RateMethod::kLagrangianSurrogate, v, iterations, primal_lr,
                                   record_every, &progress));
  }

  // ---- CSV ----
  {
    CsvWriter csv(context.dir + "/series.csv",
                  {"method", "value", "iteration", "class0_pct", "accuracy_pct", "bce",
                   "surrogate_rate", "multiplier"});
    for (const auto* set : {&penalty, &lagrangian, &surrogate}) {
      for (const RateRun& run : *set) {
        for (const RatePoint& p : run.series) {
          csv << rate_method_key(run.method) << run.value << p.iteration << p.class0 << p.accuracy
              << p.loss << p.surrogate << p.multiplier;
          csv.end_row();
        }
      }
    }
    csv.close();
  }
  {
    CsvWriter csv(context.dir + "/sweep.csv",
                  {"value", "plot_x", "penalty_class0", "penalty_accuracy", "lagrangian_class0",
                   "lagrangian_accuracy", "lagrangian_multiplier", "published_penalty_class0",
                   "published_penalty_accuracy", "published_lagrangian_class0",
                   "published_lagrangian_accuracy"});
    for (size_t i = 0; i < values.size(); ++i) {
      const double v = values[i];
      csv << v << (v == 0 ? 1e-5 : v) << penalty[i].class0 << penalty[i].accuracy
          << lagrangian[i].class0 << lagrangian[i].accuracy << lagrangian[i].multiplier
          << published_penalty(v).first << published_penalty(v).second
          << published_lagrangian(v).first << published_lagrangian(v).second;
      csv.end_row();
    }
    csv.close();
  }
  {
    CsvWriter csv(context.dir + "/surrogate.csv",
                  {"dual_step", "class0_pct", "accuracy_pct", "surrogate_rate", "multiplier"});
    for (const RateRun& run : surrogate) {
      csv << run.value << run.class0 << run.accuracy << run.surrogate << run.multiplier;
      csv.end_row();
    }
    csv.close();
  }

  // ---- tables and checks ----
  nlohmann::json table4 = nlohmann::json::array(), table5 = nlohmann::json::array(),
                 footnote = nlohmann::json::array();
  std::vector<std::vector<std::string>> rows4, rows5, rows_s;
  int lag_meet = 0, lag_meet_total = 0, pen_collapse = 0, pen_collapse_total = 0;
  int agree4 = 0, agree5 = 0;
  bool lag_1e2 = false, pen_1e3 = false, have_1e2 = false, have_1e3 = false;
  double lag_1e2_class0 = 0, pen_1e3_class0 = 0;
  int pen_interior = 0;
  for (size_t i = 0; i < values.size(); ++i) {
    const double v = values[i];
    const RateRun& p = penalty[i];
    const RateRun& l = lagrangian[i];
    const auto [p4c, p4a] = published_penalty(v);
    const auto [p5c, p5a] = published_lagrangian(v);
    agree4 += std::abs(p.class0 - p4c) <= 1.0;
    agree5 += std::abs(l.class0 - p5c) <= 1.0;
    table4.push_back({{"c", v},
                      {"class0_pct", p.class0},
                      {"accuracy_pct", p.accuracy},
                      {"published_class0_pct", p4c},
                      {"published_accuracy_pct", p4a},
                      {"weights", {p.w0, p.w1}},
                      {"bias", p.b}});
    table5.push_back({{"dual_step", v},
                      {"class0_pct", l.class0},
                      {"accuracy_pct", l.accuracy},
                      {"multiplier", l.multiplier},
                      {"published_class0_pct", p5c},
                      {"published_accuracy_pct", p5a},
                      {"weights", {l.w0, l.w1}},
                      {"bias", l.b}});
    rows4.push_back(
        {value_text(v), fixed(p.class0, 2), fixed(p4c, 2), fixed(p.accuracy, 2), fixed(p4a, 2)});
    rows5.push_back({value_text(v), fixed(l.class0, 2), fixed(p5c, 2), fixed(l.accuracy, 2),
                     fixed(p5a, 2), fmt(l.multiplier, 4)});
    if (v >= 2.1e-3) {
      ++lag_meet_total;
      lag_meet += l.class0 >= 69.0;
    }
    const bool near_switch = v > 2.0 && v < 2.3;  // c = 2.15: the one published non-collapse
    if (!near_switch) {
      ++pen_collapse_total;
      pen_collapse += std::abs(p.class0 - 50.0) <= 1.5 || p.class0 >= 99.0;
    } else {
      pen_interior += p.class0 > 52 && p.class0 < 99;
    }
    if (std::abs(v - 1e-2) < 1e-9) {
      have_1e2 = true;
      lag_1e2 = l.class0 >= 69.0;
      lag_1e2_class0 = l.class0;
    }
    if (std::abs(v - 1e-3) < 1e-9) {
      have_1e3 = true;
      pen_1e3 = std::abs(p.class0 - 50.0) <= 1.0;
      pen_1e3_class0 = p.class0;
    }
  }
  // The footnote's point: where the surrogate rate reaches 70%, the exact rate does not.
  int surrogate_met = 0, surrogate_misses = 0;
  for (const RateRun& s : surrogate) {
    if (s.surrogate >= kRateTarget - 1e-3) {
      ++surrogate_met;
      surrogate_misses += s.class0 < 69.0;
    }
    footnote.push_back({{"dual_step", s.value},
                        {"class0_pct", s.class0},
                        {"accuracy_pct", s.accuracy},
                        {"surrogate_rate", s.surrogate},
                        {"multiplier", s.multiplier}});
    rows_s.push_back({value_text(s.value), fixed(100 * s.surrogate, 2), fixed(s.class0, 2),
                      fixed(s.accuracy, 2), fmt(s.multiplier, 4)});
  }

  // ---- figure 2 ----
  const FigureFile figure2 =
      draw_figure(context.dir, "figure2",
                  "Figure 2: class-0 percentage and accuracy against the penalty coefficient and "
                  "against the dual step size",
                  rate_figure2_script(), 1200, 760);

  // ---- results ----
  nlohmann::json results =
      results_head(context, "rate", "E2: rate-constrained linear classification");
  results["settings"] = {
      {"data",
       {{"generator",
         "one LibTorch CPU generator (mt19937) seeded --seed; for means (0,1), "
         "(-1,0), (0,-1), (1,0) in order: mean + randn(100, 2) * sqrt(0.05)"},
        {"seed", context.config.seed},
        {"points", 400},
        {"labels", "1 for means (0,1) and (-1,0); 0 for (0,-1) and (1,0)"}}},
      {"model", "linear, logit = w^T x + b, w0 = (1, -1), b0 = 0, float32"},
      {"loss", "binary cross-entropy"},
      {"iterations", iterations},
      {"primal", "full-batch gradient descent"},
      {"primal_lr", primal_lr},
      {"requirement", "mean(1[logit < 0]) >= 0.7"},
      {"surrogate", "mean(1 - sigmoid(logit)) >= 0.7"},
      {"lagrangian",
       "alternating dual-primal, dual gradient ascent from lambda = 0, proxy constraint: "
       "surrogate for the primal, exact rate for the dual"},
      {"penalty", "BCE + c * (0.7 - mean(1 - sigmoid(logit))), same optimizer"},
      {"sweep", values},
      {"surrogate_sweep", surrogate_values}};
  const auto [d0x, d0y] = std::make_pair(data.x[0][0].item<double>(), data.x[0][1].item<double>());
  results["data_fingerprint"] = {{"first_point", {d0x, d0y}},
                                 {"sum_x", data.x.sum().item<double>()}};
  results["table4_penalty"] = table4;
  results["table5_lagrangian"] = table5;
  results["footnote_surrogate_dual"] = footnote;
  results["files"] = {{"report", "report.md"},
                      {"csv", {"series.csv", "sweep.csv", "surrogate.csv"}},
                      {"figures",
                       {{{"name", figure2.name},
                         {"png", figure2.name + ".png"},
                         {"svg", figure2.name + ".svg"},
                         {"drawn", figure2.drawn}}}}};
  auto& checks = results["checks"];
  checks.push_back(
      check("the Lagrangian meets 70% (>= 69%) for every dual step >= 2.15e-3",
            lag_meet == lag_meet_total,
            std::to_string(lag_meet) + " of " + std::to_string(lag_meet_total) + " dual steps"));
  checks.push_back(check(
      "the penalty collapses to about 50% or to 100% for every c except 2.15",
      pen_collapse == pen_collapse_total,
      std::to_string(pen_collapse) + " of " + std::to_string(pen_collapse_total) + " values of c"));
  checks.push_back(check("the penalty at c = 2.15 ends between 52% and 99% (published 76%)",
                         pen_interior == 1, pen_interior == 1 ? "yes" : "no"));
  if (have_1e2) {
    checks.push_back(check("the Lagrangian at dual step 1e-2 meets the rate within one point",
                           lag_1e2, "class 0: " + fixed(lag_1e2_class0, 2) + "%"));
  }
  if (have_1e3) {
    checks.push_back(check("the penalty at c = 1e-3 stays within one point of 50%", pen_1e3,
                           "class 0: " + fixed(pen_1e3_class0, 2) + "%"));
  }
  checks.push_back(check(
      "with the surrogate for the dual too, runs that meet 70% on the surrogate miss it on the "
      "exact rate (< 69%)",
      surrogate_met > 0 && surrogate_misses == surrogate_met,
      std::to_string(surrogate_misses) + " of " + std::to_string(surrogate_met) +
          " dual steps whose surrogate rate reached 70%"));

  std::ostringstream md;
  md << "## Problem\n\nA linear classifier on 400 points (2-D mixture of four Gaussians, "
        "variance 0.05, 100 points each, linearly separable) must predict class 0 for at least "
        "70% of them. The exact rate has no gradient: the Lagrangian uses it for the dual update "
        "and a sigmoid surrogate for the primal (proxy constraints, Cotter et al. 2019); the "
        "penalty can only use the surrogate.\n\n"
     << "## Settings\n\n"
     << "- Data: one LibTorch CPU generator seeded " << context.config.seed
     << "; for the means (0,1), (-1,0), (0,-1), (1,0) in order, mean + randn(100, 2) * "
        "sqrt(0.05), as the authors' code. Labels 1 for the first two, 0 for the others.\n"
     << "- Model: logit = w^T x + b from w = (1, -1), b = 0; binary cross-entropy; full-batch "
        "gradient descent, step 2e-2, "
     << iterations << " iterations, float32.\n"
     << "- Lagrangian: alternating (dual step first, as the authors' code), multiplier from 0, "
        "dual gradient ascent with the swept step size.\n"
     << "- Penalty: BCE - c * mean(1 - sigmoid(logit)), c swept over the same values.\n"
     << "- Sweep: 0 and 10^(k/3) for k = -12..6 (printed as 1.00, 2.15, 4.64 x 10^n).\n";
  if (quick) {
    md << "- **Quick mode**: " << values.size() << " of the 20 sweep values, "
       << surrogate_values.size() << " for the footnote variant; full iterations.\n";
  }
  const auto agree = [&](int k) {
    return std::to_string(k) + " of " + std::to_string(values.size());
  };
  md << "\n## Table 4: fixed penalty\n\nWithin one point of the published class-0 percentage: "
     << agree(agree4) << " values.\n\n"
     << markdown_table({"c", "class 0 (%)", "published", "accuracy (%)", "published"}, rows4)
     << "\n## Table 5: Lagrangian with proxy constraints\n\nWithin one point of the published "
        "class-0 percentage: "
     << agree(agree5) << " values.\n\n"
     << markdown_table(
            {"dual step", "class 0 (%)", "published", "accuracy (%)", "published", "final lambda"},
            rows5)
     << "\n## Footnote: the surrogate for the dual as well\n\nThe multiplier then stops growing "
        "once the *surrogate* rate reaches 70%, while the exact rate stays below it.\n\n"
     << markdown_table(
            {"dual step", "surrogate rate (%)", "class 0 (%)", "accuracy (%)", "final lambda"},
            rows_s)
     << "\n"
     << markdown_figure(figure2)
     << "\nData: [sweep.csv](sweep.csv), [surrogate.csv](surrogate.csv), [series.csv](series.csv) "
        "(every run, every "
     << record_every << " iterations).\n";

  write_results(context, results, md.str(), start);
  return results;
}

}  // namespace feasible::app
