// E5, per-class recall: the runs (the default optimizer and unconstrained training), the CSV
// files and the figure.
#include <feasible/feasible.h>

#include <chrono>

#include "apps/feasible/fashion.h"
#include "apps/feasible/figures.h"
#include "apps/feasible/recall.h"

namespace feasible::app {
namespace {

std::vector<double> to_vector(const torch::Tensor& t) {
  const torch::Tensor c = t.detach().to(torch::kFloat64).contiguous();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

RecallEpoch evaluate(torch::nn::Sequential& model, const data::Dataset& train, int64_t epoch,
                     double seconds) {
  RecallEpoch e;
  e.epoch = epoch;
  e.recall = to_vector(per_class_recall(model, train));
  e.accuracy = fashion_accuracy(model, train);
  e.seconds = seconds;
  return e;
}

/// The closure's constraint: per class, target - (mean predicted probability of the true class
/// over the batch's examples of that class) for the primal step, and target - (the batch's 0-1
/// recall of that class) for the dual step (proxy constraints). A class absent from the batch
/// gets 0 in both.
ConstraintState recall_state(const torch::Tensor& logits, const torch::Tensor& targets,
                             double target) {
  const torch::Tensor onehot = torch::one_hot(targets, 10).to(logits.dtype());  // [B, 10]
  const torch::Tensor count = onehot.sum(0);
  const torch::Tensor present = count > 0;
  const torch::Tensor p_true = torch::softmax(logits, 1).gather(1, targets.unsqueeze(1));
  const torch::Tensor surrogate = (onehot * p_true).sum(0) / count.clamp_min(1);
  const torch::Tensor correct = (logits.argmax(1) == targets).to(logits.dtype()).unsqueeze(1);
  const torch::Tensor recall = (onehot * correct).sum(0) / count.clamp_min(1);
  const torch::Tensor zero = torch::zeros_like(count);
  return ConstraintState(torch::where(present, target - surrogate, zero))
      .strict_violation(torch::where(present, target - recall, zero).detach());
}

/// One run from the seeded model: with the default optimizer and the ten recall constraints
/// (`constrained`), or the same Adam on the cross-entropy alone.
RecallRun train_one(const FashionData& data, const RecallSettings& s, bool constrained,
                    Progress& progress) {
  using Clock = std::chrono::steady_clock;
  const std::pair<std::string, ConstraintOptions> spec{
      "recall", ConstraintOptions(ConstraintKind::kInequality, 10)};
  const auto t = make_fashion_training(s.hidden, s.seed, s.lr, constrained ? &spec : nullptr);
  auto& model = t->model;
  const Constraint recall = t->constraint;
  RecallRun run;
  run.method = constrained ? "default" : "unconstrained";
  progress.start_run(constrained ? "default optimizer, recall >= " + fixed(s.target, 2)
                                 : std::string("unconstrained"),
                     s.epochs);
  run.epochs.push_back(evaluate(model, data.train, 0, 0));
  data::BatchLoader loader(data.train, s.batch_size, s.seed + 1);
  for (int64_t epoch = 1; epoch <= s.epochs; ++epoch) {
    const auto start = Clock::now();
    loader.start_epoch();
    while (auto batch = loader.next()) {
      t->optimizer->step([&] {
        const torch::Tensor logits = model->forward(batch->inputs);
        ProblemState state(torch::cross_entropy_loss(logits, batch->targets));
        if (constrained) state.observe(recall, recall_state(logits, batch->targets, s.target));
        return state;
      });
    }
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    run.train_seconds += seconds;
    run.epochs.push_back(evaluate(model, data.train, epoch, seconds));
    const RecallEpoch& e = run.epochs.back();
    progress.iteration_line(epoch, "min training recall " + fixed(e.min_recall(), 3) + " (" +
                                       fashion_class_names()[e.min_class()] + "), accuracy " +
                                       fixed(e.accuracy, 2) + "%");
  }
  run.test_recall = to_vector(per_class_recall(model, data.test));
  run.test_accuracy = fashion_accuracy(model, data.test);
  if (t->default_optimizer != nullptr) {
    run.multiplier = to_vector(t->problem.multiplier_values(recall));
    run.penalty = to_vector(t->default_optimizer->penalty(recall));
  }
  progress.finish_run("min training recall " + fixed(run.epochs.back().min_recall(), 3));
  return run;
}

/// epochs.csv (every run, every epoch from 0: per-class training recall) and classes.csv (per
/// class at the end: both runs' training and test recall, the default's multiplier and penalty).
void write_recall_csvs(const RecallOutcome& o, const std::string& dir) {
  std::vector<std::string> header = {"run",       "epoch",        "min_recall",
                                     "min_class", "accuracy_pct", "seconds"};
  for (int k = 0; k < 10; ++k) header.push_back("recall_" + std::to_string(k));
  CsvWriter epochs(dir + "/epochs.csv", header);
  for (const RecallRun* run : {&o.default_run, &o.unconstrained}) {
    for (const RecallEpoch& e : run->epochs) {
      epochs << run->method << e.epoch << e.min_recall() << e.min_class() << e.accuracy
             << e.seconds;
      for (double r : e.recall) epochs << r;
      epochs.end_row();
    }
  }
  epochs.close();
  CsvWriter classes(
      dir + "/classes.csv",
      {"class", "name", "default_train_recall", "unconstrained_train_recall", "default_test_recall",
       "unconstrained_test_recall", "default_multiplier", "default_penalty"});
  for (int k = 0; k < 10; ++k) {
    const auto i = static_cast<size_t>(k);
    classes << k << fashion_class_names()[i] << o.default_run.recall()[i]
            << o.unconstrained.recall()[i] << o.default_run.test_recall[i]
            << o.unconstrained.test_recall[i] << o.default_run.multiplier[i]
            << o.default_run.penalty[i];
    classes.end_row();
  }
  classes.close();
  // The figure's columns: per epoch, both runs' minimum recall side by side.
  CsvWriter curve(dir + "/min_recall.csv",
                  {"epoch", "default_min_recall", "unconstrained_min_recall"});
  for (size_t i = 0; i < o.default_run.epochs.size(); ++i) {
    curve << o.default_run.epochs[i].epoch << o.default_run.epochs[i].min_recall()
          << o.unconstrained.epochs[i].min_recall();
    curve.end_row();
  }
  curve.close();
}

}  // namespace

RecallSettings recall_settings(const RunConfig& config) {
  RecallSettings s;
  s.seed = config.seed;
  if (config.quick) {
    s.mode = "quick";
    s.train_examples = 20000;
    s.epochs = 6;
  } else {
    s.mode = "full";
    s.train_examples = 0;
    s.epochs = 12;
  }
  if (config.epochs > 0) s.epochs = config.epochs;
  return s;
}

RecallOutcome train_recall_experiment(const RunConfig& config, Progress& progress) {
  return train_default_and_unconstrained<RecallOutcome>(config, progress, "recall",
                                                        recall_settings(config), train_one);
}

nlohmann::json run_recall(const ExperimentContext& context) {
  const auto start = std::chrono::steady_clock::now();
  const RecallOutcome outcome = train_recall_experiment(context.config, *context.progress);
  write_recall_csvs(outcome, context.dir);
  const FigureFile figure = draw_figure(
      context.dir, "min_recall",
      "The smallest per-class training recall before training and after every epoch: the "
      "default optimizer against unconstrained training",
      recall_figure_script(outcome.settings.target, static_cast<int>(outcome.settings.epochs)),
      1100, 560);
  nlohmann::json results = results_head(context, "recall",
                                        "E5: per-class recall >= 0.80 on Fashion-MNIST (default "
                                        "optimizer)");
  results.update(recall_results(outcome));
  results["files"] = {{"report", "report.md"},
                      {"csv", {"epochs.csv", "classes.csv", "min_recall.csv"}},
                      {"figures", figures_json({figure})}};
  results["checks"] = checks_json(recall_checks(outcome));
  write_results(context, results, recall_report(outcome, figure), start);
  return results;
}

}  // namespace feasible::app
