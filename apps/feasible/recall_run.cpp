// E5, per-class recall: the three runs (the default optimizer, the validated default and
// unconstrained training), the best epoch of each constrained run and its test audit.
#include <feasible/audit.h>
#include <feasible/feasible.h>
#include <feasible/selection.h>

#include <algorithm>
#include <chrono>
#include <cmath>

#include "apps/feasible/fashion.h"
#include "apps/feasible/recall.h"

namespace feasible::app {
namespace {

enum class Method { kDefault, kValidated, kUnconstrained };

std::vector<double> to_vector(const torch::Tensor& t) {
  const torch::Tensor c = t.detach().to(torch::kFloat64).contiguous();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

/// The model after `epoch` epochs: recall and accuracy on the training subset, recall and mean
/// cross-entropy on the validation split.
RecallEpoch evaluate(torch::nn::Sequential& model, const FashionData& data, int64_t epoch,
                     double seconds) {
  RecallEpoch e;
  e.epoch = epoch;
  e.recall = to_vector(per_class_recall(model, data.train));
  e.accuracy = fashion_accuracy(model, data.train);
  e.seconds = seconds;
  e.validation_recall = to_vector(per_class_recall(model, data.validation));
  e.validation_loss = per_example_loss(model, data.validation).mean().item<double>();
  return e;
}

/// The default run's constraint: per class, target - (mean predicted probability of the true
/// class over the batch's examples of that class) for the primal step, and target - (the batch's
/// 0-1 recall of that class) for the dual step (proxy constraints). A class absent from the batch
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

/// What a run reads besides its training batches: the validated run's validation stream (its
/// dual steps) and the running training recall of its primal term.
struct RecallStreams {
  RecallStreams(const FashionData& data, const RecallSettings& s)
      : validation(data.validation, s.validation_batch, s.seed + 2),
        validation_recall(s.validation_decay),
        train_recall(s.validation_decay) {}
  data::BatchLoader validation;
  rates::RunningRate validation_recall;
  /// A running rate, so that a class absent from a small batch (the last of an epoch) has a
  /// value; the primal term's gradient is the batch's own (rates::RunningRate).
  rates::RunningRate train_recall;
};

/// The closure of a training step. The validated run observes recall >= target + margin
/// (rates::recall's surrogate for the primal term) with contributes_to_dual(false): its
/// multipliers move only in dual steps.
ProblemState training_state(Method method, torch::nn::Sequential& model, const data::Batch& batch,
                            const Constraint& recall, double target, double margin,
                            RecallStreams& streams) {
  const torch::Tensor logits = model->forward(batch.inputs);
  ProblemState state(torch::cross_entropy_loss(logits, batch.targets));
  if (method == Method::kDefault)
    state.observe(recall, recall_state(logits, batch.targets, target));
  if (method == Method::kValidated) {
    const rates::Rate rate = streams.train_recall.update(rates::recall(logits, batch.targets));
    state.observe(
        recall, rates::at_least(rate, target).tightened(margin).state().contributes_to_dual(false));
  }
  return state;
}

/// The closure of the validated run's dual step: the next validation batch (a new pass when
/// one ends), folded into the running 0-1 recall, against target + margin.
ProblemState validation_state(torch::nn::Sequential& model, const Constraint& recall, double target,
                              double margin, RecallStreams& streams) {
  std::optional<data::Batch> batch = streams.validation.next();
  if (!batch) {
    streams.validation.start_epoch();
    batch = streams.validation.next();
  }
  const rates::Rate rate = streams.validation_recall.update(
      rates::recall(model->forward(batch->inputs), batch->targets));
  ProblemState state;
  state.observe(
      recall, rates::at_least(rate, target).tightened(margin).state().contributes_to_primal(false));
  return state;
}

/// Offers the model of the end of an epoch to `keeper`: the validation cross-entropy as the
/// objective, target - validation recall per class as the violations, confident when every
/// class is at least target + margin on the validation split.
void offer_epoch(BestIterate& keeper, const RecallEpoch& e, torch::nn::Sequential& model,
                 double target, double margin) {
  std::vector<double> violations;
  bool confident = true;
  for (double r : e.validation_recall) {
    violations.push_back(target - r);
    confident = confident && r >= target + margin;
  }
  keeper.offer(e.epoch, e.validation_loss, violations, model->parameters(), confident);
}

/// The test audit of the model: recall >= target per class, Clopper-Pearson with Holm's
/// correction at `delta`, over the whole test set in one batch.
RecallAudit audit_on_test(FashionTraining& t, const data::Dataset& test, double target,
                          double delta) {
  data::BatchLoader loader(test, test.size(), 0, /*shuffle=*/false);
  const AuditReport report = audit(
      t.problem, loader,
      [&](const data::Batch& batch, Auditor& auditor) {
        const torch::Tensor logits = t.model->forward(batch.inputs);
        auditor.observe(t.constraint,
                        rates::at_least(rates::recall(logits, batch.targets), target));
      },
      AuditOptions().delta(delta));
  RecallAudit a;
  a.delta = delta;
  a.correction = to_string(report.options.correction());
  for (const AuditEntry& e : report.entries) {
    // e = target - recall: the recall's bounds are target minus e's.
    a.classes.push_back({to_string(e.verdict), e.quantity, e.threshold - e.upper, e.upper_alpha,
                         e.threshold - e.lower, e.lower_alpha, e.examples});
  }
  return a;
}

/// The end of a constrained run: the last iterate's multipliers and penalties, then the best
/// epoch restored, measured on the test set and audited there.
void finish_constrained(FashionTraining& t, const FashionData& data, const RecallSettings& s,
                        const BestIterate& keeper, RecallRun& run) {
  run.multiplier = to_vector(t.problem.multiplier_values(t.constraint));
  run.penalty = to_vector(t.default_optimizer->penalty(t.constraint));
  run.best_epoch = keeper.best().step;
  run.best_reason = keeper.reason();
  keeper.restore(t.model->parameters());
  run.best_test_recall = to_vector(per_class_recall(t.model, data.test));
  run.best_test_accuracy = fashion_accuracy(t.model, data.test);
  run.audit = audit_on_test(t, data.test, s.target, s.delta);
}

const char* method_name(Method method) {
  return method == Method::kDefault     ? "default"
         : method == Method::kValidated ? "validated"
                                        : "unconstrained";
}

std::string run_label(Method method, const RecallSettings& s, double margin) {
  if (method == Method::kDefault) return "default optimizer, recall >= " + fixed(s.target, 2);
  if (method == Method::kValidated) {
    return "validated default, validation recall >= " + fixed(s.target, 2) + " + " +
           fixed(margin, 3);
  }
  return "unconstrained";
}

/// Adam's step at training step t of T: s.lr without a schedule, else the cosine schedule
/// s.lr (1 + cos(pi t / T)) / 2 (Loshchilov and Hutter, SGDR, ICLR 2017; no restarts), which
/// ends near 0 so that the last iterate, which the checks read, is not one noisy step.
void set_learning_rate(torch::optim::Adam& adam, const RecallSettings& s, int64_t t, int64_t T) {
  const double lr =
      s.cosine_schedule
          ? s.lr * 0.5 *
                (1 + std::cos(std::acos(-1.0) * static_cast<double>(t) / static_cast<double>(T)))
          : s.lr;
  for (auto& group : adam.param_groups()) group.options().set_lr(lr);
}

/// One run from the seeded model (every run the same model and batch order).
RecallRun train_one(const FashionData& data, const RecallSettings& s, Method method, double margin,
                    Progress& progress) {
  using Clock = std::chrono::steady_clock;
  const std::pair<std::string, ConstraintOptions> spec{
      "recall", ConstraintOptions(ConstraintKind::kInequality, 10)};
  const bool constrained = method != Method::kUnconstrained;
  const auto t = make_fashion_training(s.hidden, s.seed, s.lr, constrained ? &spec : nullptr);
  auto& model = t->model;
  RecallRun run;
  run.method = method_name(method);
  progress.start_run(run_label(method, s, margin), s.epochs);
  run.epochs.push_back(evaluate(model, data, 0, 0));
  data::BatchLoader loader(data.train, s.batch_size, s.seed + 1);
  RecallStreams streams(data, s);
  BestIterate keeper;
  int64_t steps = 0;
  int64_t step_count = 0;
  const int64_t total_steps = s.epochs * ((data.train.size() + s.batch_size - 1) / s.batch_size);
  for (int64_t epoch = 1; epoch <= s.epochs; ++epoch) {
    const auto start = Clock::now();
    loader.start_epoch();
    while (auto batch = loader.next()) {
      set_learning_rate(*t->adam, s, step_count++, total_steps);
      t->optimizer->step([&] {
        return training_state(method, model, *batch, t->constraint, s.target, margin, streams);
      });
      if (method == Method::kValidated && ++steps % s.dual_every == 0) {
        t->optimizer->dual_step(
            [&] { return validation_state(model, t->constraint, s.target, margin, streams); });
        ++run.dual_steps;
      }
    }
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    run.train_seconds += seconds;
    run.epochs.push_back(evaluate(model, data, epoch, seconds));
    const RecallEpoch& e = run.epochs.back();
    if (constrained) offer_epoch(keeper, e, model, s.target, margin);
    progress.iteration_line(epoch, "min training recall " + fixed(e.min_recall(), 3) + " (" +
                                       fashion_class_names()[e.min_class()] + "), validation " +
                                       fixed(e.min_validation_recall(), 3) + ", accuracy " +
                                       fixed(e.accuracy, 2) + "%");
  }
  run.test_recall = to_vector(per_class_recall(model, data.test));
  run.test_accuracy = fashion_accuracy(model, data.test);
  if (constrained) finish_constrained(*t, data, s, keeper, run);
  progress.finish_run("min training recall " + fixed(run.epochs.back().min_recall(), 3));
  return run;
}

}  // namespace

RecallSettings recall_settings(const RunConfig& config) {
  RecallSettings s;
  s.seed = config.seed;
  if (config.quick) {
    s.mode = "quick";
    s.train_examples = 20000;
    s.validation_examples = 5000;
    s.epochs = 6;
  } else {
    s.mode = "full";
    s.train_examples = 50000;
    s.validation_examples = 10000;
    s.epochs = 24;
  }
  if (config.epochs > 0) s.epochs = config.epochs;
  return s;
}

RecallOutcome train_recall_experiment(const RunConfig& config, Progress& progress) {
  RecallOutcome o;
  o.settings = recall_settings(config);
  const RecallSettings& s = o.settings;
  o.data_dir = fashion_data_dir(config);
  const FashionData data = load_fashion(o.data_dir, s.train_examples, s.validation_examples);
  o.train_examples = data.train.size();
  o.validation_examples = data.validation.size();
  o.test_examples = data.test.size();
  const torch::Tensor sizes = torch::bincount(data.validation.targets, {}, 10);
  for (int64_t k = 0; k < 10; ++k) o.validation_class_sizes.push_back(sizes[k].item<int64_t>());
  const int64_t n_min =
      *std::min_element(o.validation_class_sizes.begin(), o.validation_class_sizes.end());
  o.margin = rates::hoeffding_margin(n_min, s.delta / 10);
  progress.start_experiment("recall", 3.0 * static_cast<double>(s.epochs));
  o.default_run = train_one(data, s, Method::kDefault, o.margin, progress);
  o.validated = train_one(data, s, Method::kValidated, o.margin, progress);
  o.unconstrained = train_one(data, s, Method::kUnconstrained, o.margin, progress);
  return o;
}

}  // namespace feasible::app
