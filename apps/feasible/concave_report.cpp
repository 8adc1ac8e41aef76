// E1, the concave example: what the outcome shows (checks, results.json, report). Torch-free.
#include <algorithm>
#include <cmath>
#include <sstream>

#include "apps/feasible/concave.h"

namespace feasible::app {
namespace {

/// x spans more than this over the window: it keeps moving (the settling tolerance of Table 1).
constexpr double kMoving = 1e-3;
/// x stays within this of 0 or pi/2 over the whole window: it sits at that endpoint.
constexpr double kAtEndpoint = 1e-6;

double x_star_of(double eps) { return std::asin(eps); }
double lambda_star_of(double eps) { return eps / std::sqrt(1 - eps * eps); }

/// Where the last `tail` values of `v` begin.
std::vector<double>::const_iterator tail_begin(const std::vector<double>& v, int64_t tail) {
  return v.end() - std::min<int64_t>(tail, static_cast<int64_t>(v.size()));
}

/// The GDA behaviour at each eps.
std::vector<GdaBehaviour> gda_kinds(const ConcaveOutcome& o) {
  std::vector<GdaBehaviour> kinds;
  for (size_t i = 0; i < o.settings.eps.size(); ++i) {
    kinds.push_back(classify_gda(o.gda[i], o.settings.tail, x_star_of(o.settings.eps[i])));
  }
  return kinds;
}

/// The eps (of `eps`) where `kind` is one of `wanted`, as "0.1, 0.2" ("none" if none), and how
/// many.
std::pair<std::string, int> eps_where(const std::vector<double>& eps,
                                      const std::vector<GdaBehaviour>& kind,
                                      std::initializer_list<GdaBehaviour> wanted) {
  std::string list;
  int count = 0;
  for (size_t i = 0; i < eps.size(); ++i) {
    if (std::find(wanted.begin(), wanted.end(), kind[i]) == wanted.end()) continue;
    list += (count++ ? ", " : "") + fmt(eps[i], 2);
  }
  return {count ? list : "none", count};
}

/// The checks that say what plain GDA does, eps by eps: it oscillates around x* at some, and is
/// stuck at an endpoint at all the others.
void add_gda_checks(std::vector<Check>& checks, const std::vector<double>& eps,
                    const std::vector<GdaBehaviour>& kind, int64_t tail) {
  const int n = static_cast<int>(eps.size());
  const std::string window = "the last " + std::to_string(tail) + " iterations";
  const auto [osc, n_osc] = eps_where(eps, kind, {GdaBehaviour::kOscillates});
  const auto [at0, n_at0] = eps_where(eps, kind, {GdaBehaviour::kStuckAtZero});
  const auto [at_pi, n_at_pi] = eps_where(eps, kind, {GdaBehaviour::kStuckAtHalfPi});
  const auto [rest, n_rest] = eps_where(eps, kind, {GdaBehaviour::kSettles, GdaBehaviour::kOther});
  checks.push_back(
      {"plain GDA oscillates around x* at some eps: x spans more than " + fmt(kMoving, 2) +
           " and crosses x* in " + window,
       n_osc >= 1,
       "at eps = " + osc + " (" + std::to_string(n_osc) + " of " + std::to_string(n) + ")"});
  checks.push_back(
      {"plain GDA is stuck at an endpoint at every other eps: x within " + fmt(kAtEndpoint, 2) +
           " of 0 with lambda = 0, or of pi/2 with lambda growing, throughout " + window,
       n_osc + n_at0 + n_at_pi == n,
       "at 0: eps = " + at0 + "; at pi/2: eps = " + at_pi + "; neither: eps = " + rest});
}

/// Every fixed-penalty run: the sweep over c, then c = lambda* per eps.
std::vector<const ConcaveRun*> every_penalty(const ConcaveOutcome& o) {
  std::vector<const ConcaveRun*> every;
  for (const auto& r : o.penalty) every.push_back(&r);
  for (const auto& r : o.penalty_at_lambda_star) every.push_back(&r);
  return every;
}

/// The checks on the fixed penalties: each ends at an endpoint, on the side c says, and the
/// penalty at c = lambda* misses x*.
void add_penalty_checks(std::vector<Check>& checks, const ConcaveOutcome& o) {
  const double c_switch = std::tan(o.settings.x0);
  int endpoint = 0, expected_side = 0, star_missed = 0;
  for (const ConcaveRun* run : every_penalty(o)) {
    const double x = run->final_x();
    endpoint += x < 1e-3 || x > kConcaveHalfPi - 1e-3;
    expected_side += run->c > c_switch ? x < 1e-3 : x > kConcaveHalfPi - 1e-3;
  }
  for (size_t i = 0; i < o.settings.eps.size(); ++i) {
    star_missed +=
        std::abs(o.penalty_at_lambda_star[i].final_x() - x_star_of(o.settings.eps[i])) > 1e-2;
  }
  const int total = static_cast<int>(o.penalty.size() + o.settings.eps.size());
  const int n = static_cast<int>(o.settings.eps.size());
  checks.push_back({"every fixed penalty ends at an endpoint (0 or pi/2)", endpoint == total,
                    std::to_string(endpoint) + " of " + std::to_string(total) + " penalty runs"});
  checks.push_back(
      {"from x0 = 0.5 the endpoint is 0 when c > tan(0.5) = " + fixed(c_switch, 3) + ", else pi/2",
       expected_side == total, std::to_string(expected_side) + " of " + std::to_string(total)});
  checks.push_back({"the penalty at c = lambda* misses x* (by more than 1e-2)", star_missed == n,
                    std::to_string(star_missed) + " of " + std::to_string(n) + " eps"});
}

/// The goal for the default optimizer: x within 1e-3 of arcsin(eps) at every eps, with
/// the same primal optimizer, step and iterations as the other methods and no dual step.
void add_default_check(std::vector<Check>& checks, const ConcaveOutcome& o) {
  const ConcaveSettings& s = o.settings;
  int ok = 0;
  double worst = 0;
  for (size_t i = 0; i < s.eps.size() && i < o.default_runs.size(); ++i) {
    const double error = std::abs(o.default_runs[i].final_x() - x_star_of(s.eps[i]));
    ok += error <= kConcaveTolerance;
    worst = std::max(worst, error);
  }
  const int n = static_cast<int>(s.eps.size());
  checks.push_back({"default: x within 1e-3 of arcsin(eps) for every eps (same primal step and " +
                        std::to_string(s.iterations) + " iterations, no dual step)",
                    ok == n && static_cast<int>(o.default_runs.size()) == n,
                    std::to_string(ok) + " of " + std::to_string(n) +
                        " eps; largest |x - x*| = " + fmt(worst, 2)});
}

}  // namespace

std::string concave_default_text(const ConcaveOutcome& o, size_t i) {
  const double x = o.default_runs.at(i).final_x();
  const double error = std::abs(x - x_star_of(o.settings.eps.at(i)));
  if (error <= kConcaveTolerance) return "converges to x*";
  return "ends at x = " + fixed(x, 4) + ", |x - x*| = " + fmt(error, 2);
}

std::pair<double, double> ConcaveRun::tail_range(int64_t tail) const {
  const auto [lo, hi] = std::minmax_element(tail_begin(x, tail), x.end());
  return {*lo, *hi};
}

std::pair<double, double> ConcaveRun::tail_lambda_range(int64_t tail) const {
  const auto [lo, hi] = std::minmax_element(tail_begin(lambda, tail), lambda.end());
  return {*lo, *hi};
}

double ConcaveRun::tail_first_lambda(int64_t tail) const { return *tail_begin(lambda, tail); }

double ConcaveRun::tail_max_error(int64_t tail, double target) const {
  double worst = 0;
  for (auto it = tail_begin(x, tail); it != x.end(); ++it) {
    worst = std::max(worst, std::abs(*it - target));
  }
  return worst;
}

GdaBehaviour classify_gda(const ConcaveRun& run, int64_t tail, double x_star) {
  const auto [lo, hi] = run.tail_range(tail);
  const auto [lambda_lo, lambda_hi] = run.tail_lambda_range(tail);
  if (hi - lo > kMoving) {
    return lo < x_star && x_star < hi ? GdaBehaviour::kOscillates : GdaBehaviour::kOther;
  }
  if (hi <= kAtEndpoint && lambda_lo == 0 && lambda_hi == 0) return GdaBehaviour::kStuckAtZero;
  if (lo >= kConcaveHalfPi - kAtEndpoint && run.final_lambda() > run.tail_first_lambda(tail)) {
    return GdaBehaviour::kStuckAtHalfPi;
  }
  if (run.tail_max_error(tail, x_star) <= 1e-3) return GdaBehaviour::kSettles;
  return GdaBehaviour::kOther;
}

const char* gda_behaviour_key(GdaBehaviour b) {
  switch (b) {
    case GdaBehaviour::kOscillates:
      return "oscillates";
    case GdaBehaviour::kStuckAtZero:
      return "stuck_at_0";
    case GdaBehaviour::kStuckAtHalfPi:
      return "stuck_at_half_pi";
    case GdaBehaviour::kSettles:
      return "settles";
    case GdaBehaviour::kOther:
      break;
  }
  return "other";
}

std::string gda_behaviour_text(GdaBehaviour b) {
  switch (b) {
    case GdaBehaviour::kOscillates:
      return "oscillates around x*";
    case GdaBehaviour::kStuckAtZero:
      return "is stuck at x = 0 (lambda = 0)";
    case GdaBehaviour::kStuckAtHalfPi:
      return "is stuck at x = pi/2 (lambda grows)";
    case GdaBehaviour::kSettles:
      return "settles at x*";
    case GdaBehaviour::kOther:
      break;
  }
  return "neither oscillates nor sits at an endpoint";
}

size_t concave_figure_index(const ConcaveSettings& s) {
  size_t fig = 0;
  for (size_t i = 0; i < s.eps.size(); ++i) {
    if (std::abs(s.eps[i] - s.figure_eps) < 1e-12) fig = i;
  }
  return fig;
}

std::vector<Check> concave_checks(const ConcaveOutcome& o) {
  const ConcaveSettings& s = o.settings;
  const int n = static_cast<int>(s.eps.size());
  int nupi_ok = 0, al_ok = 0, lambda_ok = 0, gda_unsettled = 0;
  for (size_t i = 0; i < s.eps.size(); ++i) {
    const double x_star = x_star_of(s.eps[i]);
    const double lambda_star = lambda_star_of(s.eps[i]);
    nupi_ok += std::abs(o.nupi[i].final_x() - x_star) <= 1e-3;
    al_ok += std::abs(o.al[i].final_x() - x_star) <= 1e-3;
    lambda_ok += std::abs(o.nupi[i].final_lambda() - lambda_star) <= 1e-3 * (1 + lambda_star);
    gda_unsettled += o.gda[i].tail_max_error(s.tail, x_star) > 1e-3;
  }
  const auto of = [n](int k) { return std::to_string(k) + " of " + std::to_string(n) + " eps"; };
  std::vector<Check> checks = {
      {"nuPI ends within 1e-3 of arcsin(eps)", nupi_ok == n, of(nupi_ok)},
      {"the Augmented Lagrangian ends within 1e-3 of arcsin(eps)", al_ok == n, of(al_ok)},
      {"nuPI's multiplier ends within 1e-3 (relative) of lambda*", lambda_ok == n, of(lambda_ok)},
      {"plain GDA does not settle at x*: |x_t - x*| > 1e-3 somewhere in the last " +
           std::to_string(s.tail) + " iterations",
       gda_unsettled == n, of(gda_unsettled)}};
  add_default_check(checks, o);
  add_gda_checks(checks, s.eps, gda_kinds(o), s.tail);
  add_penalty_checks(checks, o);
  return checks;
}

nlohmann::json concave_results(const ConcaveOutcome& o) {
  const ConcaveSettings& s = o.settings;
  const std::vector<GdaBehaviour> kinds = gda_kinds(o);
  nlohmann::json table1 = nlohmann::json::array();
  for (size_t i = 0; i < s.eps.size(); ++i) {
    const double eps = s.eps[i], lambda_star = lambda_star_of(eps);
    const ConcaveRun &nupi = o.nupi[i], &al = o.al[i], &gda = o.gda[i];
    const auto [lo, hi] = gda.tail_range(s.tail);
    table1.push_back(
        {{"eps", eps},
         {"x_star", x_star_of(eps)},
         {"lambda_star", lambda_star},
         {"published_x", kConcavePublishedX[i]},
         {"nupi", {{"x", nupi.final_x()}, {"lambda", nupi.final_lambda()}}},
         {"augmented_lagrangian", {{"x", al.final_x()}, {"lambda", al.final_lambda()}}},
         {"default",
          {{"x", o.default_runs[i].final_x()},
           {"lambda", o.default_runs[i].final_lambda()},
           {"error", std::abs(o.default_runs[i].final_x() - x_star_of(eps))}}},
         {"penalty_at_lambda_star",
          {{"c", lambda_star}, {"x", o.penalty_at_lambda_star[i].final_x()}}},
         {"gda",
          {{"tail_min_x", lo},
           {"tail_max_x", hi},
           {"tail_max_error", gda.tail_max_error(s.tail, x_star_of(eps))},
           {"tail_first_lambda", gda.tail_first_lambda(s.tail)},
           {"final_x", gda.final_x()},
           {"final_lambda", gda.final_lambda()},
           {"behaviour", gda_behaviour_key(kinds[i])}}}});
  }
  nlohmann::json penalties = nlohmann::json::array();
  for (const ConcaveRun& run : o.penalty) {
    const double x = run.final_x();
    penalties.push_back({{"c", run.c}, {"x", x}, {"f", std::cos(x)}, {"g", std::sin(x)}});
  }
  nlohmann::json results;
  results["settings"] = {
      {"iterations", s.iterations},
      {"x0", s.x0},
      {"lambda0", 0.0},
      {"primal", "gradient descent, step 0.01, projected onto [0, pi/2]"},
      {"primal_lr", s.primal_lr},
      {"nupi", {{"lr", s.dual_lr}, {"kp", s.kp}, {"ki", 1.0}, {"nu", 0.0}}},
      {"gda_dual_lr", s.dual_lr},
      {"augmented_lagrangian", {{"c", s.al_penalty}, {"dual", "gradient ascent, step dual_lr"}}},
      {"default",
       "feasible::make_default_optimizer with the same primal SGD (step primal_lr), no dual "
       "step: alternating dual-primal updates, AugmentedDual with calibrated penalties"},
      {"scheme", "simultaneous"},
      {"dtype", "float64"},
      {"eps", s.eps},
      {"penalty_c", s.penalty_c},
      {"tail", s.tail}};
  results["table1"] = table1;
  results["penalties"] = penalties;
  results["published"] = {{"table1_x", kConcavePublishedX}};
  return results;
}

namespace {

/// The rows of the report's Table 1, one per eps.
std::vector<std::vector<std::string>> table1_rows(const ConcaveOutcome& o) {
  const ConcaveSettings& s = o.settings;
  const std::vector<GdaBehaviour> kinds = gda_kinds(o);
  std::vector<std::vector<std::string>> rows;
  for (size_t i = 0; i < s.eps.size(); ++i) {
    const double eps = s.eps[i], x_star = x_star_of(eps);
    const ConcaveRun &nupi = o.nupi[i], &al = o.al[i], &gda = o.gda[i];
    const auto [lo, hi] = gda.tail_range(s.tail);
    const double x_default = o.default_runs[i].final_x();
    rows.push_back({fmt(eps, 2), fixed(x_star, 4), fixed(kConcavePublishedX[i], 3),
                    fixed(nupi.final_x(), 4), fmt(std::abs(nupi.final_x() - x_star), 2),
                    fixed(al.final_x(), 4), fmt(std::abs(al.final_x() - x_star), 2),
                    fixed(x_default, 4), fmt(std::abs(x_default - x_star), 2),
                    fixed(lambda_star_of(eps), 4), fixed(nupi.final_lambda(), 4),
                    fixed(o.penalty_at_lambda_star[i].final_x(), 4),
                    "[" + fixed(lo, 3) + ", " + fixed(hi, 3) + "]", fmt(gda.final_lambda(), 4),
                    gda_behaviour_text(kinds[i])});
  }
  return rows;
}

/// The rows of the report's table of fixed penalties, one per c of the sweep.
std::vector<std::vector<std::string>> penalty_rows(const ConcaveOutcome& o) {
  std::vector<std::vector<std::string>> rows;
  for (const ConcaveRun& run : o.penalty) {
    const double x = run.final_x();
    rows.push_back({fmt(run.c, 3), fixed(x, 4), fixed(std::cos(x), 4), fixed(std::sin(x), 4),
                    x < 1e-3 ? "0 (feasible for every eps, f = 1: over-conservative)"
                             : (x > kConcaveHalfPi - 1e-3 ? "pi/2 (infeasible for every eps < 1)"
                                                          : "interior")});
  }
  return rows;
}

/// The report's sections "Problem" and "Settings".
std::string problem_and_settings(const ConcaveOutcome& o) {
  const ConcaveSettings& s = o.settings;
  std::ostringstream md;
  md << "## Problem\n\nminimize f(x) = cos x subject to g(x) = sin x <= eps, x in [0, pi/2]. "
        "Solution x* = arcsin(eps), lambda* = eps / sqrt(1 - eps^2). The fixed penalty cos x + "
        "c sin x is concave for every c >= 0, so it ends at an endpoint (Proposition 3).\n\n"
     << "## Settings\n\n"
     << "- Start x0 = " << s.x0 << ", lambda0 = 0; " << s.iterations
     << " iterations; float64; simultaneous updates.\n"
     << "- Primal: gradient descent, step " << s.primal_lr
     << ", projection onto [0, pi/2] after every step.\n"
     << "- nuPI: dual step " << s.dual_lr << ", K_p = " << s.kp
     << ", K_i = 1, nu = 0 (first step plain gradient ascent).\n"
     << "- Plain gradient descent-ascent (GDA): dual gradient ascent, step " << s.dual_lr
     << " (nuPI with K_p = 0).\n"
     << "- Augmented Lagrangian: c = " << s.al_penalty << ", dual gradient ascent with step "
     << s.dual_lr
     << " (the same dual step as GDA: the augmented term alone makes the difference).\n"
     << "- Default: `feasible::make_default_optimizer` with the same gradient descent (step "
     << s.primal_lr
     << ") and projection, and no dual step: its multiplier update (the Augmented Lagrangian's, "
        "with penalties calibrated from the primal step and the constraint's gradient) runs "
        "before the primal step (alternating updates).\n"
     << "- Fixed penalty: c in {";
  for (size_t k = 0; k < s.penalty_c.size(); ++k) md << (k ? ", " : "") << fmt(s.penalty_c[k], 3);
  md << "} and c = lambda*(eps) for each eps.\n"
     << "- As the paper's text: 1-D, inequality, projection (the authors' code uses a 2-D "
        "equality variant with 1,000 iterations).\n";
  if (o.quick) md << "- **Quick mode**: " << s.iterations << " iterations, fewer penalty values.\n";
  return md.str();
}

}  // namespace

std::string concave_report(const ConcaveOutcome& o, const ConcaveFigures& figures) {
  const int64_t tail = o.settings.tail;
  std::ostringstream md;
  md << problem_and_settings(o) << "\n## Table 1: x at the end of training\n\n"
     << markdown_table(
            {"eps", "arcsin(eps)", "published x", "nuPI x", "nuPI error", "AL x", "AL error",
             "default x", "default error", "lambda*", "nuPI lambda", "penalty c = lambda*: x",
             "GDA: x range, last " + std::to_string(tail) + " its", "GDA final lambda", "GDA"},
            table1_rows(o))
     << "\nGDA column, from the last " << tail
     << " iterations: *oscillates* when x spans more than " << fmt(kMoving, 2)
     << " and crosses x*; *stuck at 0* when x stays within " << fmt(kAtEndpoint, 2)
     << " of 0 with lambda = 0 (a stationary point of the Lagrangian: feasible, f = 1); *stuck at "
        "pi/2* when x stays within "
     << fmt(kAtEndpoint, 2)
     << " of pi/2 while lambda grows (infeasible: the projection undoes every step, and "
        "cos(pi/2) = 0 mutes the multiplier's pull).\n"
     << "\n## Fixed penalties: where each c ends (Proposition 3)\n\n"
     << markdown_table({"c", "x at the end", "f = cos x", "g = sin x", "endpoint"}, penalty_rows(o))
     << "\n"
     << markdown_figure(figures.figure3) << "\n"
     << markdown_figure(figures.trajectories)
     << "\nData: [series.csv](series.csv) (every run: every iteration up to 2,000, then every "
        "10th), [table1.csv](table1.csv), [penalty.csv](penalty.csv), "
        "[trajectories.csv](trajectories.csv), [curve.csv](curve.csv).\n";
  return md.str();
}

}  // namespace feasible::app
