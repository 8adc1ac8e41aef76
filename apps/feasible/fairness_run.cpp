// E7, fairness on fresh data: the synthetic data, the four methods per draw, the audit, the CSV
// files and the figure.
#include <feasible/feasible.h>

#include <chrono>
#include <cmath>

#include "apps/feasible/fairness.h"
#include "apps/feasible/figures.h"

namespace feasible::app {
namespace {

/// One synthetic dataset: features [N, 5] (x1..x4, then the group as 0/1), the group (true:
/// group b), the label (0/1, float).
struct FairData {
  torch::Tensor x, group, y;
};

/// The generator (docs/experiments.md, E7): group b with probability 0.4; x = z + g (1, 0.5, 0,
/// 0) with z ~ N(0, I_4) and g = 1 in group b; y ~ Bernoulli(sigmoid(1.5 x1 - x2 + x3 + 0.5 x4 -
/// 0.5)). The label depends on the group only through x, so the groups' base rates differ and an
/// unconstrained classifier predicts positive more often in group b.
FairData generate(int64_t n, torch::Generator& gen) {
  const torch::Tensor g = torch::rand({n}, gen) < 0.4;
  const torch::Tensor gf = g.to(torch::kFloat32);
  const torch::Tensor shift = torch::tensor({1.0F, 0.5F, 0.0F, 0.0F});
  const torch::Tensor x = torch::randn({n, 4}, gen) + gf.unsqueeze(1) * shift;
  const torch::Tensor beta = torch::tensor({1.5F, -1.0F, 1.0F, 0.5F});
  const torch::Tensor p = torch::sigmoid(x.matmul(beta) - 0.5);
  const torch::Tensor y = (torch::rand({n}, gen) < p).to(torch::kFloat32);
  return {torch::cat({x, gf.unsqueeze(1)}, 1), g, y};
}

/// The two groups' rates of the requirement on scores [N]: a (group a), b (group b).
std::pair<rates::Rate, rates::Rate> group_rates(FairnessRequirement r, const torch::Tensor& s,
                                                const FairData& d) {
  if (r == FairnessRequirement::kParity) {
    return {rates::positive_rate(s, ~d.group), rates::positive_rate(s, d.group)};
  }
  return {rates::true_positive_rate(s, d.y, ~d.group), rates::true_positive_rate(s, d.y, d.group)};
}

/// |rate(a) - rate(b)| <= eps: two entries, a - b - eps and b - a - eps.
rates::Requirement requirement(FairnessRequirement r, const torch::Tensor& s, const FairData& d,
                               double eps) {
  const auto [a, b] = group_rates(r, s, d);
  return rates::within(a, b, eps);
}

/// The 0-1 gap rate(b) - rate(a).
double gap(FairnessRequirement r, const torch::Tensor& s, const FairData& d) {
  const auto [a, b] = group_rates(r, s, d);
  return (b.value() - a.value()).item<double>();
}

double accuracy_pct(const torch::Tensor& s, const FairData& d) {
  return 100.0 * ((s > 0).to(torch::kFloat32) == d.y).to(torch::kFloat64).mean().item<double>();
}

/// The validated method's margin: for each group, the one-sided Hoeffding radius at delta / 4 of
/// its validation examples (the group, or its positives for equal opportunity), summed. Both
/// groups' rates are then within their radii of the truth in both directions with probability
/// >= 1 - delta, so a validation gap within eps - margin means a true gap within eps.
double validation_margin(FairnessRequirement r, const FairData& v, double delta) {
  const torch::Tensor in = r == FairnessRequirement::kParity ? torch::ones_like(v.y) : v.y;
  const auto count = [&](const torch::Tensor& mask) {
    return static_cast<int64_t>((in * mask.to(torch::kFloat32)).sum().item<double>());
  };
  return rates::hoeffding_margin(count(~v.group), delta / 4) +
         rates::hoeffding_margin(count(v.group), delta / 4);
}

/// The draw's four datasets.
struct DrawData {
  FairData train, validation, test, fresh;
};

DrawData draw_data(const FairnessSettings& s, int64_t draw) {
  torch::Generator gen =
      at::detail::createCPUGenerator(s.seed * 1000 + static_cast<uint64_t>(draw));
  DrawData d;
  d.train = generate(s.train_examples, gen);
  d.validation = generate(s.validation_examples, gen);
  d.test = generate(s.test_examples, gen);
  d.fresh = generate(s.fresh_examples, gen);
  return d;
}

/// The audit of the final model on the test set: |gap| <= eps as two one-sided entries.
void audit_run(FairnessRequirement r, const torch::Tensor& test_scores, const FairData& test,
               const FairnessSettings& s, FairnessRun& run) {
  Problem problem;
  const Constraint c = problem.add_constraint("gap", ConstraintOptions().size(2));
  Auditor auditor(problem, AuditOptions().delta(s.delta));
  auditor.observe(c, requirement(r, test_scores, test, s.eps));
  const AuditReport report = auditor.report();
  bool holds = true, violated = false;
  run.audit_upper = -1e300;
  for (const AuditEntry& e : report.entries) {
    holds = holds && e.verdict == Verdict::kHolds;
    violated = violated || e.verdict == Verdict::kViolated;
    run.audit_upper = std::max(run.audit_upper, e.upper);
  }
  run.verdict = holds ? "holds" : violated ? "violated" : "inconclusive";
}

/// One method's training on one draw; the model is a logistic regression from zero.
FairnessRun train_method(const std::string& method, FairnessRequirement r, const DrawData& d,
                         const FairnessSettings& s) {
  using Clock = std::chrono::steady_clock;
  torch::nn::Linear model(5, 1);
  {
    torch::NoGradGuard no_grad;
    model->weight.zero_();
    model->bias.zero_();
  }
  auto adam =
      std::make_shared<torch::optim::Adam>(model->parameters(), torch::optim::AdamOptions(s.lr));
  const auto scores = [&](const FairData& data) { return model->forward(data.x).squeeze(1); };
  FairnessRun run;
  run.method = method;
  Problem problem;
  const bool penalty = method == "penalty";
  const bool unconstrained = method == "unconstrained";
  Constraint c;
  if (!unconstrained) {
    c = problem.add_constraint(
        "gap",
        penalty
            ? ConstraintOptions().formulation(std::make_shared<FixedPenalty>()).penalty(s.penalty)
            : ConstraintOptions().size(2));
  }
  std::unique_ptr<ConstrainedOptimizer> optimizer;
  if (unconstrained || penalty) {
    optimizer = std::make_unique<UnconstrainedOptimizer>(
        problem, std::vector<std::shared_ptr<torch::optim::Optimizer>>{adam});
  } else {
    // Gradient ascent on the multipliers (a Lagrangian with the proxy constraint).
    auto dual = std::make_shared<torch::optim::SGD>(problem.dual_parameters(),
                                                    torch::optim::SGDOptions(s.dual_lr));
    optimizer = std::make_unique<SimultaneousOptimizer>(
        problem, std::vector<std::shared_ptr<torch::optim::Optimizer>>{adam}, dual);
  }
  const bool validated = method == "validated";
  if (validated) run.margin = validation_margin(r, d.validation, s.delta);
  const auto start = Clock::now();
  for (int64_t t = 0; t < s.steps; ++t) {
    optimizer->step([&] {
      const torch::Tensor sc = scores(d.train);
      ProblemState state(torch::binary_cross_entropy_with_logits(sc, d.train.y));
      if (penalty) {
        const auto [a, b] = group_rates(r, sc, d.train);
        state.observe(c, ConstraintState((b.surrogate - a.surrogate).abs().reshape({1}) - s.eps));
      } else if (!unconstrained) {
        ConstraintState cs = requirement(r, sc, d.train, s.eps).tightened(run.margin).state();
        state.observe(c, cs.contributes_to_dual(!validated));
      }
      return state;
    });
    if (validated && (t + 1) % s.dual_every == 0) {
      optimizer->dual_step([&] {
        const torch::Tensor sc = scores(d.validation);
        ProblemState state(torch::binary_cross_entropy_with_logits(sc, d.validation.y));
        state.observe(c, requirement(r, sc, d.validation, s.eps)
                             .tightened(run.margin)
                             .state()
                             .contributes_to_primal(false));
        return state;
      });
    }
  }
  run.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  torch::NoGradGuard no_grad;
  run.train_gap = gap(r, scores(d.train), d.train);
  run.validation_gap = gap(r, scores(d.validation), d.validation);
  const torch::Tensor fresh = scores(d.fresh);
  run.fresh_gap = gap(r, fresh, d.fresh);
  run.fresh_accuracy = accuracy_pct(fresh, d.fresh);
  audit_run(r, scores(d.test), d.test, s, run);
  return run;
}

/// runs.csv: one row per requirement, draw and method.
void write_fairness_csv(const FairnessOutcome& o, const std::string& dir) {
  CsvWriter csv(dir + "/runs.csv",
                {"requirement", "draw", "method", "plot_x", "train_gap", "validation_gap",
                 "fresh_gap", "abs_fresh_gap", "meets", "fresh_accuracy_pct", "margin", "verdict",
                 "audit_upper", "seconds"});
  for (const FairnessStudy& study : o.studies) {
    for (const FairnessDraw& draw : study.draws) {
      for (size_t m = 0; m < draw.runs.size(); ++m) {
        const FairnessRun& run = draw.runs[m];
        // plot_x: the method's column, spread by draw so that no mark hides another.
        const double plot_x =
            static_cast<double>(m) +
            0.6 * (static_cast<double>(draw.draw) + 0.5) / static_cast<double>(study.draws.size()) -
            0.3;
        csv << requirement_key(study.requirement) << draw.draw << run.method << plot_x
            << run.train_gap << run.validation_gap << run.fresh_gap << std::abs(run.fresh_gap)
            << (run.meets(o.settings.eps) ? 1 : 0) << run.fresh_accuracy << run.margin
            << run.verdict << run.audit_upper << run.seconds;
        csv.end_row();
      }
    }
  }
  csv.close();
}

}  // namespace

FairnessSettings fairness_settings(const RunConfig& config) {
  FairnessSettings s;
  s.seed = config.seed;
  s.train_examples = 20000;
  s.validation_examples = 20000;
  s.test_examples = 10000;
  s.fresh_examples = 200000;
  if (config.quick) {
    s.mode = "quick";
    s.draws = 20;
    s.train_examples = 10000;
    s.steps = 600;
  } else {
    s.mode = "full";
    s.draws = 40;
    s.steps = 1500;
  }
  if (config.epochs > 0) s.steps = config.epochs;
  return s;
}

FairnessOutcome train_fairness(const FairnessSettings& s, Progress& progress) {
  const auto& methods = fairness_methods();
  progress.start_experiment("fairness", static_cast<double>(2 * s.draws));
  FairnessOutcome o;
  o.settings = s;
  for (FairnessRequirement r : {FairnessRequirement::kParity, FairnessRequirement::kOpportunity}) {
    FairnessStudy study;
    study.requirement = r;
    progress.start_run(requirement_name(r), s.draws);
    for (int64_t k = 0; k < s.draws; ++k) {
      const DrawData d = draw_data(s, k);
      FairnessDraw draw;
      draw.draw = k;
      for (const std::string& m : methods) draw.runs.push_back(train_method(m, r, d, s));
      study.draws.push_back(draw);
      progress.update(k + 1);
    }
    progress.finish_run("validated meets it in " + std::to_string(study.meets("validated", s.eps)) +
                        " of " + std::to_string(s.draws) + " draws");
    o.studies.push_back(study);
  }
  return o;
}

nlohmann::json run_fairness(const ExperimentContext& context) {
  const auto start = std::chrono::steady_clock::now();
  const FairnessOutcome outcome =
      train_fairness(fairness_settings(context.config), *context.progress);
  write_fairness_csv(outcome, context.dir);
  const FigureFile figure = draw_figure(
      context.dir, "fresh_gap",
      "The gap between the groups on fresh data, one mark per data draw, for each method and "
      "requirement, against the bound eps",
      fairness_figure_script(outcome.settings.eps), 1200, 620);
  nlohmann::json results =
      results_head(context, "fairness", "E7: fairness requirements on fresh data");
  results.update(fairness_results(outcome));
  results["files"] = {
      {"report", "report.md"}, {"csv", {"runs.csv"}}, {"figures", figures_json({figure})}};
  results["checks"] = checks_json(fairness_checks(outcome));
  write_results(context, results, fairness_report(outcome, figure), start);
  return results;
}

}  // namespace feasible::app
