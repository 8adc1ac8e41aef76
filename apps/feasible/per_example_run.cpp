// E6, the per-example constraint: the runs (the default optimizer with an indexed multiplier,
// and unconstrained training), the CSV files and the figure.
#include <feasible/feasible.h>

#include <chrono>

#include "apps/feasible/fashion.h"
#include "apps/feasible/figures.h"
#include "apps/feasible/per_example.h"

namespace feasible::app {
namespace {

PerExampleEpoch evaluate(torch::nn::Sequential& model, const data::Dataset& train, double bound,
                         int64_t epoch, double seconds) {
  const torch::Tensor loss = per_example_loss(model, train);
  PerExampleEpoch e;
  e.epoch = epoch;
  e.above = (loss > bound).to(torch::kFloat64).mean().item<double>();
  e.mean_loss = loss.mean().item<double>();
  e.accuracy = fashion_accuracy(model, train);
  e.seconds = seconds;
  return e;
}

/// The end of a run: quantiles of the per-example loss, the test accuracy, the multipliers.
void finish(PerExampleRun& run, torch::nn::Sequential& model, const FashionData& data) {
  const torch::Tensor loss = per_example_loss(model, data.train);
  run.median_loss = loss.quantile(0.5).item<double>();
  run.p90_loss = loss.quantile(0.9).item<double>();
  run.max_loss = loss.max().item<double>();
  run.test_accuracy = fashion_accuracy(model, data.test);
}

/// One run from the seeded model: with the default optimizer and one indexed constraint
/// (cross-entropy_i - bound <= 0, one multiplier per example, the batch observed through its
/// indices), or the same Adam on the mean cross-entropy alone. Both see the same batches: a
/// data::BatchLoader seeded seed + 1 (a permutation per epoch).
PerExampleRun train_one(const FashionData& data, const PerExampleSettings& s, bool constrained,
                        Progress& progress) {
  using Clock = std::chrono::steady_clock;
  const int64_t n = data.train.size();
  const std::pair<std::string, ConstraintOptions> spec{
      "loss_per_example",
      ConstraintOptions(ConstraintKind::kInequality, n).multiplier(MultiplierKind::kIndexed)};
  const auto t = make_fashion_training(s.hidden, s.seed, s.lr, constrained ? &spec : nullptr);
  auto& model = t->model;
  const Constraint each = t->constraint;
  PerExampleRun run;
  run.method = constrained ? "default" : "unconstrained";
  progress.start_run(constrained ? "default optimizer, loss_i <= " + fmt(s.bound, 3)
                                 : std::string("unconstrained"),
                     s.epochs);
  run.epochs.push_back(evaluate(model, data.train, s.bound, 0, 0));
  data::BatchLoader loader(data.train, s.batch_size, s.seed + 1);
  for (int64_t epoch = 1; epoch <= s.epochs; ++epoch) {
    const auto start = Clock::now();
    loader.start_epoch();
    while (auto batch = loader.next()) {
      t->optimizer->step([&] {
        const torch::Tensor losses = torch::nn::functional::cross_entropy(
            model->forward(batch->inputs), batch->targets,
            torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));
        ProblemState state(losses.mean());
        if (constrained) {
          state.observe(each, ConstraintState(losses - s.bound).indices(batch->indices));
        }
        return state;
      });
    }
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    run.train_seconds += seconds;
    run.epochs.push_back(evaluate(model, data.train, s.bound, epoch, seconds));
    progress.iteration_line(epoch, fixed(100 * run.epochs.back().above, 1) +
                                       "% of examples above the bound, mean loss " +
                                       fixed(run.epochs.back().mean_loss, 3));
  }
  finish(run, model, data);
  if (t->default_optimizer != nullptr) {
    const torch::Tensor lambda = t->problem.multiplier_values(each);
    run.mean_multiplier = lambda.mean().item<double>();
    run.max_multiplier = lambda.max().item<double>();
    run.penalty = t->default_optimizer->penalty(each).max().item<double>();
    run.visit_cap = DefaultOptimizer::kVisitCap;
  }
  progress.finish_run(fixed(100 * run.above(), 1) + "% above the bound");
  return run;
}

/// epochs.csv: both runs, every epoch from 0.
void write_per_example_csv(const PerExampleOutcome& o, const std::string& dir) {
  CsvWriter csv(dir + "/epochs.csv",
                {"epoch", "default_above_pct", "unconstrained_above_pct", "default_mean_loss",
                 "unconstrained_mean_loss", "default_accuracy_pct", "unconstrained_accuracy_pct"});
  const auto &d = o.default_run.epochs, &u = o.unconstrained.epochs;
  for (size_t i = 0; i < d.size() && i < u.size(); ++i) {
    csv << d[i].epoch << 100 * d[i].above << 100 * u[i].above << d[i].mean_loss << u[i].mean_loss
        << d[i].accuracy << u[i].accuracy;
    csv.end_row();
  }
  csv.close();
}

}  // namespace

PerExampleSettings per_example_settings(const RunConfig& config) {
  PerExampleSettings s;
  s.seed = config.seed;
  s.mode = config.quick ? "quick" : "full";
  s.train_examples = config.quick ? 5000 : 20000;
  s.epochs = 8;
  if (config.epochs > 0) s.epochs = config.epochs;
  return s;
}

PerExampleOutcome train_per_example_experiment(const RunConfig& config, Progress& progress) {
  return train_default_and_unconstrained<PerExampleOutcome>(
      config, progress, "per-example", per_example_settings(config), train_one);
}

nlohmann::json run_per_example(const ExperimentContext& context) {
  const auto start = std::chrono::steady_clock::now();
  const PerExampleOutcome outcome = train_per_example_experiment(context.config, *context.progress);
  write_per_example_csv(outcome, context.dir);
  const FigureFile figure = draw_figure(
      context.dir, "above_bound",
      "The fraction of training examples whose cross-entropy exceeds the bound, and the mean "
      "cross-entropy, before training and after every epoch: the default optimizer against "
      "unconstrained training",
      per_example_figure_script(outcome.settings.bound, static_cast<int>(outcome.settings.epochs)),
      1100, 700);
  nlohmann::json results =
      results_head(context, "per-example",
                   "E6: every example's cross-entropy <= " + fmt(outcome.settings.bound, 3) +
                       " on Fashion-MNIST (default optimizer, indexed multipliers)");
  results.update(per_example_results(outcome));
  results["files"] = {
      {"report", "report.md"}, {"csv", {"epochs.csv"}}, {"figures", figures_json({figure})}};
  results["checks"] = checks_json(per_example_checks(outcome));
  write_results(context, results, per_example_report(outcome, figure), start);
  return results;
}

}  // namespace feasible::app
