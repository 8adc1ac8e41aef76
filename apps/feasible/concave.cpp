// E1: the concave 1-D example. minimize cos(x) subject to sin(x) <= eps, x in [0, pi/2].
// Ramirez et al. (arXiv:2505.20628), Example 1, Propositions 2-3, Table 1, Figure 3, App. D.
#include <feasible/feasible.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <sstream>

#include "apps/feasible/experiments.h"
#include "apps/feasible/figures.h"

namespace feasible::app {
namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr double kHalfPi = kPi / 2;

/// Table 1 of the paper: x at convergence for eps = 0.1 ... 0.8.
const std::vector<double> kPublishedX = {0.100, 0.201, 0.305, 0.412, 0.524, 0.644, 0.775, 0.927};

enum class Method { kNuPI, kAugmentedLagrangian, kGDA, kPenalty };

const char* method_key(Method m) {
  switch (m) {
    case Method::kNuPI:
      return "nupi";
    case Method::kAugmentedLagrangian:
      return "augmented_lagrangian";
    case Method::kGDA:
      return "gda";
    case Method::kPenalty:
      return "penalty";
  }
  return "?";
}

struct Settings {
  int64_t iterations = 10000;
  double x0 = 0.5;          // the authors' start
  double primal_lr = 0.01;  // gradient descent, projected onto [0, pi/2]
  double dual_lr = 0.3;     // nuPI and GDA dual step
  double kp = 40;           // nuPI proportional gain (K_i = 1, nu = 0)
  double al_penalty = 10;   // Augmented Lagrangian c (its dual step is dual_lr, as GDA's)
  int64_t tail = 1000;      // window for the oscillation of GDA
  std::vector<double> eps = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8};
  std::vector<double> penalty_c = {0.1, 0.5, 1.0, 2.0, 10.0};
  double figure_eps = 0.5;  // the eps of the trajectory figure
  int64_t figure_iterations = 3000;
};

struct Run {
  Method method;
  double eps = 0;
  double c = 0;                // penalty coefficient (penalty) or AL coefficient
  std::vector<double> x;       // x_t, t = 0..T (T + 1 values)
  std::vector<double> lambda;  // lambda_t (0 for the penalty)
  double final_x() const { return x.back(); }
  double final_lambda() const { return lambda.back(); }
  std::pair<double, double> tail_range(int64_t tail) const {
    const auto begin = x.end() - std::min<int64_t>(tail, static_cast<int64_t>(x.size()));
    const auto [lo, hi] = std::minmax_element(begin, x.end());
    return {*lo, *hi};
  }
  /// The smallest and largest lambda over the last `tail` iterations.
  std::pair<double, double> tail_lambda_range(int64_t tail) const {
    const auto begin = lambda.end() - std::min<int64_t>(tail, static_cast<int64_t>(lambda.size()));
    const auto [lo, hi] = std::minmax_element(begin, lambda.end());
    return {*lo, *hi};
  }
  /// lambda at the start of the last `tail` iterations.
  double tail_first_lambda(int64_t tail) const {
    return *(lambda.end() - std::min<int64_t>(tail, static_cast<int64_t>(lambda.size())));
  }
  double tail_max_error(int64_t tail, double target) const {
    const auto begin = x.end() - std::min<int64_t>(tail, static_cast<int64_t>(x.size()));
    double worst = 0;
    for (auto it = begin; it != x.end(); ++it) worst = std::max(worst, std::abs(*it - target));
    return worst;
  }
};

std::string run_label(const Run& run) {
  std::ostringstream label;
  label << method_key(run.method);
  if (run.method == Method::kPenalty) {
    label << " c=" << fmt(run.c, 4);
  }
  if (run.eps > 0) label << " eps=" << fmt(run.eps, 2);
  return label.str();
}

/// One run with the library: x is a float64 parameter projected onto [0, pi/2] after every
/// primal step; the constraint sin(x) - eps <= 0 is registered with the method's formulation.
Run run_one(Method method, double eps, double c, const Settings& s, Progress& progress) {
  Run run{method, eps, c, {}, {}};
  run.x.reserve(static_cast<size_t>(s.iterations) + 1);
  run.lambda.reserve(static_cast<size_t>(s.iterations) + 1);
  progress.start_run(run_label(run), s.iterations);

  auto x = torch::full({1}, s.x0, torch::dtype(torch::kFloat64).requires_grad(true));
  Problem problem;
  ConstraintOptions options(ConstraintKind::kInequality, 1);
  options.dtype(torch::kFloat64);
  if (method == Method::kPenalty) {
    options.formulation(std::make_shared<FixedPenalty>()).penalty(c);
  } else if (method == Method::kAugmentedLagrangian) {
    options
        .formulation(std::make_shared<AugmentedLagrangian>(
            AugmentedLagrangianOptions().scale_dual_by_penalty(false)))
        .penalty(c);
  }
  const Constraint g = problem.add_constraint("sin_x_le_eps", options);

  auto primal = std::make_shared<torch::optim::SGD>(std::vector<torch::Tensor>{x},
                                                    torch::optim::SGDOptions(s.primal_lr));
  std::unique_ptr<ConstrainedOptimizer> optimizer;
  if (method == Method::kPenalty) {
    optimizer = std::make_unique<UnconstrainedOptimizer>(
        problem, std::vector<std::shared_ptr<torch::optim::Optimizer>>{primal});
  } else {
    std::shared_ptr<torch::optim::Optimizer> dual;
    if (method == Method::kNuPI) {
      dual = std::make_shared<optim::NuPI>(problem.dual_parameters(),
                                           optim::NuPIOptions(s.dual_lr).kp(s.kp).ki(1).nu(0));
    } else if (method == Method::kGDA) {
      dual = std::make_shared<torch::optim::SGD>(problem.dual_parameters(),
                                                 torch::optim::SGDOptions(s.dual_lr));
    } else {  // Augmented Lagrangian: the same dual gradient ascent as GDA
      dual = std::make_shared<torch::optim::SGD>(problem.dual_parameters(),
                                                 torch::optim::SGDOptions(s.dual_lr));
    }
    optimizer = std::make_unique<SimultaneousOptimizer>(
        problem, std::vector<std::shared_ptr<torch::optim::Optimizer>>{primal}, dual);
  }
  optimizer->add_projection({x}, projection::box(0.0, kHalfPi));

  const auto closure = [&] {
    ProblemState state(torch::cos(x).sum());
    state.observe(g, ConstraintState(torch::sin(x) - eps));
    return state;
  };
  const auto lambda_now = [&] {
    return method == Method::kPenalty ? 0.0
                                      : problem.multiplier_values("sin_x_le_eps")[0].item<double>();
  };
  run.x.push_back(x.item<double>());
  run.lambda.push_back(lambda_now());
  for (int64_t t = 0; t < s.iterations; ++t) {
    optimizer->step(closure);
    run.x.push_back(x.item<double>());
    run.lambda.push_back(lambda_now());
    if ((t & 255) == 0) progress.update(t);
  }
  progress.finish_run("x=" + fmt(run.final_x(), 6) + " lambda=" + fmt(run.final_lambda(), 6));
  return run;
}

bool at_endpoint(double x) { return x < 1e-3 || x > kHalfPi - 1e-3; }

/// What plain GDA does over the last iterations of a run.
enum class GdaBehaviour { kOscillates, kStuckAtZero, kStuckAtHalfPi, kSettles, kOther };

/// x spans more than this over the window: it keeps moving (the settling tolerance of Table 1).
constexpr double kMoving = 1e-3;
/// x stays within this of 0 or pi/2 over the whole window: it sits at that endpoint.
constexpr double kAtEndpoint = 1e-6;

/// Classifies a GDA run from its last `tail` iterations: it oscillates around x* (x spans more
/// than kMoving and crosses x*), is stuck at 0 (x within kAtEndpoint of 0, lambda 0 throughout:
/// a stationary point of the Lagrangian), is stuck at pi/2 (x within kAtEndpoint of pi/2, lambda
/// growing: the projection cancels every step, cos(pi/2) = 0 mutes the multiplier), settles
/// within 1e-3 of x*, or none of these.
GdaBehaviour classify_gda(const Run& run, int64_t tail, double x_star) {
  const auto [lo, hi] = run.tail_range(tail);
  const auto [lambda_lo, lambda_hi] = run.tail_lambda_range(tail);
  if (hi - lo > kMoving) {
    return lo < x_star && x_star < hi ? GdaBehaviour::kOscillates : GdaBehaviour::kOther;
  }
  if (hi <= kAtEndpoint && lambda_lo == 0 && lambda_hi == 0) return GdaBehaviour::kStuckAtZero;
  if (lo >= kHalfPi - kAtEndpoint && run.final_lambda() > run.tail_first_lambda(tail)) {
    return GdaBehaviour::kStuckAtHalfPi;
  }
  if (run.tail_max_error(tail, x_star) <= 1e-3) return GdaBehaviour::kSettles;
  return GdaBehaviour::kOther;
}

/// The key of a behaviour in results.json.
const char* behaviour_key(GdaBehaviour b) {
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

/// A behaviour in words, after "gradient descent-ascent".
std::string behaviour_text(GdaBehaviour b) {
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
void add_gda_checks(nlohmann::json& checks, const std::vector<double>& eps,
                    const std::vector<GdaBehaviour>& kind, int64_t tail) {
  const int n = static_cast<int>(eps.size());
  const std::string window = "the last " + std::to_string(tail) + " iterations";
  const auto [osc, n_osc] = eps_where(eps, kind, {GdaBehaviour::kOscillates});
  const auto [at0, n_at0] = eps_where(eps, kind, {GdaBehaviour::kStuckAtZero});
  const auto [at_pi, n_at_pi] = eps_where(eps, kind, {GdaBehaviour::kStuckAtHalfPi});
  const auto [rest, n_rest] = eps_where(eps, kind, {GdaBehaviour::kSettles, GdaBehaviour::kOther});
  checks.push_back(
      check("plain GDA oscillates around x* at some eps: x spans more than " + fmt(kMoving, 2) +
                " and crosses x* in " + window,
            n_osc >= 1,
            "at eps = " + osc + " (" + std::to_string(n_osc) + " of " + std::to_string(n) + ")"));
  checks.push_back(check(
      "plain GDA is stuck at an endpoint at every other eps: x within " + fmt(kAtEndpoint, 2) +
          " of 0 with lambda = 0, or of pi/2 with lambda growing, throughout " + window,
      n_osc + n_at0 + n_at_pi == n,
      "at 0: eps = " + at0 + "; at pi/2: eps = " + at_pi + "; neither: eps = " + rest));
}

}  // namespace

nlohmann::json run_concave(const ExperimentContext& context) {
  const auto start = std::chrono::steady_clock::now();
  Progress& progress = *context.progress;
  Settings s;
  if (context.config.quick) {
    s.iterations = 3000;
    s.penalty_c = {0.5, 1.0, 2.0};
  }
  const size_t n_eps = s.eps.size();
  const double runs = static_cast<double>(n_eps * 4 + s.penalty_c.size());
  progress.start_experiment("concave", runs * static_cast<double>(s.iterations));

  std::vector<Run> all;
  std::vector<const Run*> nupi(n_eps), al(n_eps), gda(n_eps), pen_star(n_eps), pen_fixed;
  all.reserve(static_cast<size_t>(runs));
  for (size_t i = 0; i < n_eps; ++i) {
    const double eps = s.eps[i];
    const double lambda_star = eps / std::sqrt(1 - eps * eps);
    all.push_back(run_one(Method::kNuPI, eps, 0, s, progress));
    all.push_back(run_one(Method::kAugmentedLagrangian, eps, s.al_penalty, s, progress));
    all.push_back(run_one(Method::kGDA, eps, 0, s, progress));
    all.push_back(run_one(Method::kPenalty, eps, lambda_star, s, progress));
  }
  for (double c : s.penalty_c) all.push_back(run_one(Method::kPenalty, 0, c, s, progress));
  for (size_t i = 0; i < n_eps; ++i) {
    nupi[i] = &all[4 * i];
    al[i] = &all[4 * i + 1];
    gda[i] = &all[4 * i + 2];
    pen_star[i] = &all[4 * i + 3];
  }
  for (size_t k = 0; k < s.penalty_c.size(); ++k) pen_fixed.push_back(&all[4 * n_eps + k]);

  // ---- CSV: every run's series (every iteration up to 2,000, then every 10th) ----
  {
    CsvWriter csv(context.dir + "/series.csv",
                  {"method", "eps", "c", "iteration", "x", "lambda", "f", "g"});
    for (const Run& run : all) {
      for (size_t t = 0; t < run.x.size(); ++t) {
        if (t > 2000 && t % 10 != 0 && t + 1 != run.x.size()) continue;
        csv << method_key(run.method) << run.eps << run.c << static_cast<int64_t>(t) << run.x[t]
            << run.lambda[t] << std::cos(run.x[t]) << std::sin(run.x[t]);
        csv.end_row();
      }
    }
    csv.close();
  }

  // ---- Table 1 and the per-eps table ----
  nlohmann::json table1 = nlohmann::json::array();
  std::vector<std::vector<std::string>> rows;
  int nupi_ok = 0, al_ok = 0, lambda_ok = 0, gda_unsettled = 0, star_missed = 0;
  std::vector<GdaBehaviour> gda_kind(n_eps);
  {
    CsvWriter csv(context.dir + "/table1.csv",
                  {"eps", "x_star", "f_star", "lambda_star", "published_x", "x_nupi", "lambda_nupi",
                   "x_al", "lambda_al", "x_penalty_lambda_star", "gda_tail_min", "gda_tail_max",
                   "gda_final_x", "gda_final_lambda"});
    for (size_t i = 0; i < n_eps; ++i) {
      const double eps = s.eps[i];
      const double x_star = std::asin(eps);
      const double lambda_star = eps / std::sqrt(1 - eps * eps);
      const auto [lo, hi] = gda[i]->tail_range(s.tail);
      const double gda_err = gda[i]->tail_max_error(s.tail, x_star);
      nupi_ok += std::abs(nupi[i]->final_x() - x_star) <= 1e-3;
      al_ok += std::abs(al[i]->final_x() - x_star) <= 1e-3;
      lambda_ok += std::abs(nupi[i]->final_lambda() - lambda_star) <= 1e-3 * (1 + lambda_star);
      gda_unsettled += gda_err > 1e-3;
      gda_kind[i] = classify_gda(*gda[i], s.tail, x_star);
      star_missed += std::abs(pen_star[i]->final_x() - x_star) > 1e-2;
      table1.push_back(
          {{"eps", eps},
           {"x_star", x_star},
           {"lambda_star", lambda_star},
           {"published_x", kPublishedX[i]},
           {"nupi", {{"x", nupi[i]->final_x()}, {"lambda", nupi[i]->final_lambda()}}},
           {"augmented_lagrangian", {{"x", al[i]->final_x()}, {"lambda", al[i]->final_lambda()}}},
           {"penalty_at_lambda_star", {{"c", lambda_star}, {"x", pen_star[i]->final_x()}}},
           {"gda",
            {{"tail_min_x", lo},
             {"tail_max_x", hi},
             {"tail_max_error", gda_err},
             {"tail_first_lambda", gda[i]->tail_first_lambda(s.tail)},
             {"final_x", gda[i]->final_x()},
             {"final_lambda", gda[i]->final_lambda()},
             {"behaviour", behaviour_key(gda_kind[i])}}}});
      csv << eps << x_star << std::sqrt(1 - eps * eps) << lambda_star << kPublishedX[i]
          << nupi[i]->final_x() << nupi[i]->final_lambda() << al[i]->final_x()
          << al[i]->final_lambda() << pen_star[i]->final_x() << lo << hi << gda[i]->final_x()
          << gda[i]->final_lambda();
      csv.end_row();
      rows.push_back({fmt(eps, 2), fixed(x_star, 4), fixed(kPublishedX[i], 3),
                      fixed(nupi[i]->final_x(), 4), fmt(std::abs(nupi[i]->final_x() - x_star), 2),
                      fixed(al[i]->final_x(), 4), fmt(std::abs(al[i]->final_x() - x_star), 2),
                      fixed(lambda_star, 4), fixed(nupi[i]->final_lambda(), 4),
                      fixed(pen_star[i]->final_x(), 4),
                      "[" + fixed(lo, 3) + ", " + fixed(hi, 3) + "]",
                      fmt(gda[i]->final_lambda(), 4), behaviour_text(gda_kind[i])});
    }
    csv.close();
  }

  // ---- penalties: where each fixed c ends ----
  const double c_switch = std::tan(s.x0);
  nlohmann::json penalties = nlohmann::json::array();
  std::vector<std::vector<std::string>> pen_rows;
  int pen_endpoint = 0, pen_expected_side = 0;
  {
    CsvWriter csv(context.dir + "/penalty.csv", {"c", "x_final", "f_final", "g_final"});
    std::vector<const Run*> every = pen_fixed;
    every.insert(every.end(), pen_star.begin(), pen_star.end());
    for (const Run* run : every) {
      const double x = run->final_x();
      const bool endpoint = at_endpoint(x);
      const bool expected = run->c > c_switch ? x < 1e-3 : x > kHalfPi - 1e-3;
      pen_endpoint += endpoint;
      pen_expected_side += expected;
      csv << run->c << x << std::cos(x) << std::sin(x);
      csv.end_row();
    }
    csv.close();
    for (const Run* run : pen_fixed) {
      const double x = run->final_x();
      penalties.push_back({{"c", run->c}, {"x", x}, {"f", std::cos(x)}, {"g", std::sin(x)}});
      pen_rows.push_back(
          {fmt(run->c, 3), fixed(x, 4), fixed(std::cos(x), 4), fixed(std::sin(x), 4),
           x < 1e-3 ? "0 (feasible for every eps, f = 1: over-conservative)"
                    : (x > kHalfPi - 1e-3 ? "pi/2 (infeasible for every eps < 1)" : "interior")});
    }
  }

  // ---- trajectories for the figure eps ----
  size_t fig = 0;
  for (size_t i = 0; i < n_eps; ++i) {
    if (std::abs(s.eps[i] - s.figure_eps) < 1e-12) fig = i;
  }
  {
    CsvWriter csv(context.dir + "/trajectories.csv", {"iteration", "x_nupi", "lambda_nupi", "x_al",
                                                      "lambda_al", "x_gda", "lambda_gda"});
    const int64_t n = std::min<int64_t>(s.figure_iterations, s.iterations);
    for (int64_t t = 0; t <= n; ++t) {
      const auto k = static_cast<size_t>(t);
      csv << t << nupi[fig]->x[k] << nupi[fig]->lambda[k] << al[fig]->x[k] << al[fig]->lambda[k]
          << gda[fig]->x[k] << gda[fig]->lambda[k];
      csv.end_row();
    }
    csv.close();
  }
  {
    CsvWriter csv(context.dir + "/curve.csv", {"x", "f", "g"});
    for (int k = 0; k <= 200; ++k) {
      const double x = kHalfPi * k / 200.0;
      csv << x << std::cos(x) << std::sin(x);
      csv.end_row();
    }
    csv.close();
  }

  // ---- figures ----
  const double eps_f = s.eps[fig];
  const FigureFile figure3 =
      draw_figure(context.dir, "figure3",
                  "Figure 3: the trade-off curve, the constrained optima and where "
                  "the fixed penalties end",
                  concave_figure3_script(), 1200, 700);
  const FigureFile trajectories = draw_figure(
      context.dir, "trajectories",
      "x_t and lambda_t of nuPI, the Augmented Lagrangian and plain gradient descent-ascent, "
      "eps = " +
          fmt(eps_f, 2),
      concave_trajectories_script(eps_f, std::asin(eps_f), eps_f / std::sqrt(1 - eps_f * eps_f),
                                  behaviour_text(gda_kind[fig])),
      1100, 700);

  // ---- results ----
  nlohmann::json results = results_head(context, "concave", "E1: the concave 1-D example");
  results["settings"] = {
      {"iterations", s.iterations},
      {"x0", s.x0},
      {"lambda0", 0.0},
      {"primal", "gradient descent, step 0.01, projected onto [0, pi/2]"},
      {"primal_lr", s.primal_lr},
      {"nupi", {{"lr", s.dual_lr}, {"kp", s.kp}, {"ki", 1.0}, {"nu", 0.0}}},
      {"gda_dual_lr", s.dual_lr},
      {"augmented_lagrangian", {{"c", s.al_penalty}, {"dual", "gradient ascent, step dual_lr"}}},
      {"scheme", "simultaneous"},
      {"dtype", "float64"},
      {"eps", s.eps},
      {"penalty_c", s.penalty_c},
      {"tail", s.tail}};
  results["table1"] = table1;
  results["penalties"] = penalties;
  results["published"] = {{"table1_x", kPublishedX}};
  results["files"] = {
      {"report", "report.md"},
      {"csv", {"series.csv", "table1.csv", "penalty.csv", "trajectories.csv", "curve.csv"}},
      {"figures", nlohmann::json::array()}};
  for (const FigureFile* f : {&figure3, &trajectories}) {
    results["files"]["figures"].push_back({{"name", f->name},
                                           {"png", f->name + ".png"},
                                           {"svg", f->name + ".svg"},
                                           {"drawn", f->drawn}});
  }
  auto& checks = results["checks"];
  const int n = static_cast<int>(n_eps);
  const auto of = [n](int k) { return std::to_string(k) + " of " + std::to_string(n) + " eps"; };
  checks.push_back(check("nuPI ends within 1e-3 of arcsin(eps)", nupi_ok == n, of(nupi_ok)));
  checks.push_back(
      check("the Augmented Lagrangian ends within 1e-3 of arcsin(eps)", al_ok == n, of(al_ok)));
  checks.push_back(check("nuPI's multiplier ends within 1e-3 (relative) of lambda*", lambda_ok == n,
                         of(lambda_ok)));
  checks.push_back(
      check("plain GDA does not settle at x*: |x_t - x*| > 1e-3 somewhere in the last " +
                std::to_string(s.tail) + " iterations",
            gda_unsettled == n, of(gda_unsettled)));
  add_gda_checks(checks, s.eps, gda_kind, s.tail);
  const int pen_total = static_cast<int>(pen_fixed.size() + n_eps);
  checks.push_back(
      check("every fixed penalty ends at an endpoint (0 or pi/2)", pen_endpoint == pen_total,
            std::to_string(pen_endpoint) + " of " + std::to_string(pen_total) + " penalty runs"));
  checks.push_back(check(
      "from x0 = 0.5 the endpoint is 0 when c > tan(0.5) = " + fixed(c_switch, 3) + ", else pi/2",
      pen_expected_side == pen_total,
      std::to_string(pen_expected_side) + " of " + std::to_string(pen_total)));
  checks.push_back(check("the penalty at c = lambda* misses x* (by more than 1e-2)",
                         star_missed == n, of(star_missed)));

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
     << "- Fixed penalty: c in {";
  for (size_t k = 0; k < s.penalty_c.size(); ++k) md << (k ? ", " : "") << fmt(s.penalty_c[k], 3);
  md << "} and c = lambda*(eps) for each eps.\n"
     << "- As the paper's text: 1-D, inequality, projection (the authors' code uses a 2-D "
        "equality variant with 1,000 iterations).\n";
  if (context.config.quick)
    md << "- **Quick mode**: " << s.iterations << " iterations, fewer penalty values.\n";
  md << "\n## Table 1: x at the end of training\n\n"
     << markdown_table(
            {"eps", "arcsin(eps)", "published x", "nuPI x", "nuPI error", "AL x", "AL error",
             "lambda*", "nuPI lambda", "penalty c = lambda*: x",
             "GDA: x range, last " + std::to_string(s.tail) + " its", "GDA final lambda", "GDA"},
            rows)
     << "\nGDA column, from the last " << s.tail
     << " iterations: *oscillates* when x spans more than " << fmt(kMoving, 2)
     << " and crosses x*; *stuck at 0* when x stays within " << fmt(kAtEndpoint, 2)
     << " of 0 with lambda = 0 (a stationary point of the Lagrangian: feasible, f = 1); *stuck at "
        "pi/2* when x stays within "
     << fmt(kAtEndpoint, 2)
     << " of pi/2 while lambda grows (infeasible: the projection undoes every step, and "
        "cos(pi/2) = 0 mutes the multiplier's pull).\n"
     << "\n## Fixed penalties: where each c ends (Proposition 3)\n\n"
     << markdown_table({"c", "x at the end", "f = cos x", "g = sin x", "endpoint"}, pen_rows)
     << "\n"
     << markdown_figure(figure3) << "\n"
     << markdown_figure(trajectories)
     << "\nData: [series.csv](series.csv) (every run: every iteration up to 2,000, then every "
        "10th), [table1.csv](table1.csv), [penalty.csv](penalty.csv), "
        "[trajectories.csv](trajectories.csv), [curve.csv](curve.csv).\n";

  write_results(context, results, md.str(), start);
  return results;
}

}  // namespace feasible::app
