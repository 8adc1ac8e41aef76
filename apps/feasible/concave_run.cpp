// E1, the concave example: the runs (with the library), the CSV files and the figures.
#include <feasible/feasible.h>

#include <chrono>
#include <cmath>
#include <sstream>

#include "apps/feasible/concave.h"
#include "apps/feasible/figures.h"

namespace feasible::app {
namespace {

std::string run_label(const ConcaveRun& run) {
  std::ostringstream label;
  label << concave_method_key(run.method);
  if (run.method == ConcaveMethod::kPenalty) label << " c=" << fmt(run.c, 4);
  if (run.eps > 0) label << " eps=" << fmt(run.eps, 2);
  return label.str();
}

/// The constraint's options for `method`: the formulation, and the coefficient `c`.
ConstraintOptions constraint_options(ConcaveMethod method, double c) {
  ConstraintOptions options(ConstraintKind::kInequality, 1);
  options.dtype(torch::kFloat64);
  if (method == ConcaveMethod::kPenalty) {
    options.formulation(std::make_shared<FixedPenalty>()).penalty(c);
  } else if (method == ConcaveMethod::kAugmentedLagrangian) {
    options
        .formulation(std::make_shared<AugmentedLagrangian>(
            AugmentedLagrangianOptions().scale_dual_by_penalty(false)))
        .penalty(c);
  }
  return options;
}

/// The optimizer of `method`: gradient descent on x, and for the constrained methods a dual
/// optimizer (nuPI, or gradient ascent for GDA and the Augmented Lagrangian), simultaneous; the
/// default optimizer takes the same gradient descent and no dual step.
std::unique_ptr<ConstrainedOptimizer> make_optimizer(ConcaveMethod method, Problem& problem,
                                                     const torch::Tensor& x,
                                                     const ConcaveSettings& s) {
  auto primal = std::make_shared<torch::optim::SGD>(std::vector<torch::Tensor>{x},
                                                    torch::optim::SGDOptions(s.primal_lr));
  const std::vector<std::shared_ptr<torch::optim::Optimizer>> primals{primal};
  if (method == ConcaveMethod::kPenalty) {
    return std::make_unique<UnconstrainedOptimizer>(problem, primals);
  }
  if (method == ConcaveMethod::kDefault) return make_default_optimizer(problem, primals);
  std::shared_ptr<torch::optim::Optimizer> dual;
  if (method == ConcaveMethod::kNuPI) {
    dual = std::make_shared<optim::NuPI>(problem.dual_parameters(),
                                         optim::NuPIOptions(s.dual_lr).kp(s.kp).ki(1).nu(0));
  } else {  // GDA, and the Augmented Lagrangian with the same dual gradient ascent
    dual = std::make_shared<torch::optim::SGD>(problem.dual_parameters(),
                                               torch::optim::SGDOptions(s.dual_lr));
  }
  return std::make_unique<SimultaneousOptimizer>(problem, primals, dual);
}

/// One run with the library: x is a float64 parameter projected onto [0, pi/2] after every
/// primal step; the constraint sin(x) - eps <= 0 is registered with the method's formulation.
ConcaveRun run_one(ConcaveMethod method, double eps, double c, const ConcaveSettings& s,
                   Progress& progress) {
  ConcaveRun run{method, eps, c, {}, {}};
  run.x.reserve(static_cast<size_t>(s.iterations) + 1);
  run.lambda.reserve(static_cast<size_t>(s.iterations) + 1);
  progress.start_run(run_label(run), s.iterations);

  auto x = torch::full({1}, s.x0, torch::dtype(torch::kFloat64).requires_grad(true));
  Problem problem;
  const Constraint g = problem.add_constraint("sin_x_le_eps", constraint_options(method, c));
  std::unique_ptr<ConstrainedOptimizer> optimizer = make_optimizer(method, problem, x, s);
  optimizer->add_projection({x}, projection::box(0.0, kConcaveHalfPi));

  const auto closure = [&] {
    ProblemState state(torch::cos(x).sum());
    state.observe(g, ConstraintState(torch::sin(x) - eps));
    return state;
  };
  const auto lambda_now = [&] {
    return method == ConcaveMethod::kPenalty
               ? 0.0
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

/// The runs of the outcome in the order they were trained: per eps nuPI, AL, GDA, the penalty
/// at lambda*, the default; then the fixed penalties.
std::vector<const ConcaveRun*> all_runs(const ConcaveOutcome& o) {
  std::vector<const ConcaveRun*> all;
  for (size_t i = 0; i < o.settings.eps.size(); ++i) {
    for (const auto* set : {&o.nupi, &o.al, &o.gda, &o.penalty_at_lambda_star, &o.default_runs}) {
      all.push_back(&(*set)[i]);
    }
  }
  for (const ConcaveRun& run : o.penalty) all.push_back(&run);
  return all;
}

/// series.csv: every run's series (every iteration up to 2,000, then every 10th).
void write_series_csv(const ConcaveOutcome& o, const std::string& dir) {
  CsvWriter csv(dir + "/series.csv", {"method", "eps", "c", "iteration", "x", "lambda", "f", "g"});
  for (const ConcaveRun* run : all_runs(o)) {
    for (size_t t = 0; t < run->x.size(); ++t) {
      if (t > 2000 && t % 10 != 0 && t + 1 != run->x.size()) continue;
      csv << concave_method_key(run->method) << run->eps << run->c << static_cast<int64_t>(t)
          << run->x[t] << run->lambda[t] << std::cos(run->x[t]) << std::sin(run->x[t]);
      csv.end_row();
    }
  }
  csv.close();
}

/// table1.csv: per eps the optimum and where each method ends.
void write_table1_csv(const ConcaveOutcome& o, const std::string& dir) {
  CsvWriter csv(dir + "/table1.csv",
                {"eps", "x_star", "f_star", "lambda_star", "published_x", "x_nupi", "lambda_nupi",
                 "x_al", "lambda_al", "x_penalty_lambda_star", "gda_tail_min", "gda_tail_max",
                 "gda_final_x", "gda_final_lambda", "x_default", "lambda_default"});
  for (size_t i = 0; i < o.settings.eps.size(); ++i) {
    const double eps = o.settings.eps[i];
    const ConcaveRun &nupi = o.nupi[i], &al = o.al[i], &gda = o.gda[i];
    const auto [lo, hi] = gda.tail_range(o.settings.tail);
    csv << eps << std::asin(eps) << std::sqrt(1 - eps * eps) << eps / std::sqrt(1 - eps * eps)
        << kConcavePublishedX[i] << nupi.final_x() << nupi.final_lambda() << al.final_x()
        << al.final_lambda() << o.penalty_at_lambda_star[i].final_x() << lo << hi << gda.final_x()
        << gda.final_lambda() << o.default_runs[i].final_x() << o.default_runs[i].final_lambda();
    csv.end_row();
  }
  csv.close();
}

/// penalty.csv, trajectories.csv (the figure's eps) and curve.csv (the trade-off curve).
void write_figure_csvs(const ConcaveOutcome& o, const std::string& dir) {
  CsvWriter penalty(dir + "/penalty.csv", {"c", "x_final", "f_final", "g_final"});
  for (const auto* set : {&o.penalty, &o.penalty_at_lambda_star}) {
    for (const ConcaveRun& run : *set) {
      const double x = run.final_x();
      penalty << run.c << x << std::cos(x) << std::sin(x);
      penalty.end_row();
    }
  }
  penalty.close();
  const size_t fig = concave_figure_index(o.settings);
  const ConcaveRun &nupi = o.nupi[fig], &al = o.al[fig], &gda = o.gda[fig],
                   &def = o.default_runs[fig];
  CsvWriter traj(dir + "/trajectories.csv",
                 {"iteration", "x_nupi", "lambda_nupi", "x_al", "lambda_al", "x_gda", "lambda_gda",
                  "x_default", "lambda_default"});
  const int64_t n = std::min<int64_t>(o.settings.figure_iterations, o.settings.iterations);
  for (int64_t t = 0; t <= n; ++t) {
    const auto k = static_cast<size_t>(t);
    traj << t << nupi.x[k] << nupi.lambda[k] << al.x[k] << al.lambda[k] << gda.x[k] << gda.lambda[k]
         << def.x[k] << def.lambda[k];
    traj.end_row();
  }
  traj.close();
  CsvWriter curve(dir + "/curve.csv", {"x", "f", "g"});
  for (int k = 0; k <= 200; ++k) {
    const double x = kConcaveHalfPi * k / 200.0;
    curve << x << std::cos(x) << std::sin(x);
    curve.end_row();
  }
  curve.close();
}

ConcaveFigures draw_concave_figures(const ConcaveOutcome& o, const std::string& dir) {
  const size_t fig = concave_figure_index(o.settings);
  const double eps = o.settings.eps[fig], x_star = std::asin(eps);
  const GdaBehaviour gda = classify_gda(o.gda[fig], o.settings.tail, x_star);
  ConcaveFigures figures;
  figures.figure3 = draw_figure(dir, "figure3",
                                "Figure 3: the trade-off curve, the constrained optima and where "
                                "the fixed penalties end",
                                concave_figure3_script(), 1200, 700);
  figures.trajectories = draw_figure(
      dir, "trajectories",
      "x_t and lambda_t of nuPI, the Augmented Lagrangian, plain gradient descent-ascent and "
      "the default optimizer (no dual step), eps = " +
          fmt(eps, 2),
      concave_trajectories_script(eps, x_star, eps / std::sqrt(1 - eps * eps),
                                  gda_behaviour_text(gda), concave_default_text(o, fig)),
      1100, 700);
  return figures;
}

}  // namespace

const char* concave_method_key(ConcaveMethod m) {
  switch (m) {
    case ConcaveMethod::kNuPI:
      return "nupi";
    case ConcaveMethod::kAugmentedLagrangian:
      return "augmented_lagrangian";
    case ConcaveMethod::kGDA:
      return "gda";
    case ConcaveMethod::kPenalty:
      return "penalty";
    case ConcaveMethod::kDefault:
      return "default";
  }
  return "?";
}

ConcaveSettings concave_settings(bool quick) {
  ConcaveSettings s;
  if (quick) {
    s.iterations = 3000;
    s.penalty_c = {0.5, 1.0, 2.0};
  }
  return s;
}

ConcaveOutcome train_concave(const ConcaveSettings& s, Progress& progress) {
  const double runs = static_cast<double>(s.eps.size() * 5 + s.penalty_c.size());
  progress.start_experiment("concave", runs * static_cast<double>(s.iterations));
  ConcaveOutcome o;
  o.settings = s;
  for (double eps : s.eps) {
    const double lambda_star = eps / std::sqrt(1 - eps * eps);
    o.nupi.push_back(run_one(ConcaveMethod::kNuPI, eps, 0, s, progress));
    o.al.push_back(run_one(ConcaveMethod::kAugmentedLagrangian, eps, s.al_penalty, s, progress));
    o.gda.push_back(run_one(ConcaveMethod::kGDA, eps, 0, s, progress));
    o.penalty_at_lambda_star.push_back(
        run_one(ConcaveMethod::kPenalty, eps, lambda_star, s, progress));
    o.default_runs.push_back(run_one(ConcaveMethod::kDefault, eps, 0, s, progress));
  }
  for (double c : s.penalty_c)
    o.penalty.push_back(run_one(ConcaveMethod::kPenalty, 0, c, s, progress));
  return o;
}

nlohmann::json run_concave(const ExperimentContext& context) {
  const auto start = std::chrono::steady_clock::now();
  ConcaveOutcome outcome = train_concave(concave_settings(context.config.quick), *context.progress);
  outcome.quick = context.config.quick;
  write_series_csv(outcome, context.dir);
  write_table1_csv(outcome, context.dir);
  write_figure_csvs(outcome, context.dir);
  const ConcaveFigures figures = draw_concave_figures(outcome, context.dir);

  nlohmann::json results = results_head(context, "concave", "E1: the concave 1-D example");
  results.update(concave_results(outcome));
  results["files"] = {
      {"report", "report.md"},
      {"csv", {"series.csv", "table1.csv", "penalty.csv", "trajectories.csv", "curve.csv"}},
      {"figures", figures_json({figures.figure3, figures.trajectories})}};
  results["checks"] = checks_json(concave_checks(outcome));
  write_results(context, results, concave_report(outcome, figures), start);
  return results;
}

}  // namespace feasible::app
