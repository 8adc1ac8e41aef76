#include "apps/feasible/sparsity_problem.h"

#include <feasible/feasible.h>

#include <chrono>
#include <limits>

namespace feasible::app {

const char* sparsity_method_key(SparsityMethod method) {
  switch (method) {
    case SparsityMethod::kPenalty:
      return "penalty";
    case SparsityMethod::kGradientAscent:
      return "gradient_ascent";
    case SparsityMethod::kNuPI:
      return "nupi";
    case SparsityMethod::kNuPIProxy:
      return "nupi_proxy";
    case SparsityMethod::kDefault:
      return "default";
  }
  return "?";
}

double accuracy(torch::nn::Sequential& model, const data::Dataset& dataset) {
  torch::NoGradGuard no_grad;
  const bool was_training = model->is_training();
  model->eval();
  int64_t correct = 0;
  const int64_t n = dataset.size();
  for (int64_t start = 0; start < n; start += 8192) {
    const int64_t len = std::min<int64_t>(8192, n - start);
    const auto logits = model->forward(dataset.inputs.narrow(0, start, len));
    correct += (logits.argmax(1) == dataset.targets.narrow(0, start, len)).sum().item<int64_t>();
  }
  model->train(was_training);
  return 100.0 * static_cast<double>(correct) / static_cast<double>(n);
}

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// The MLP 784-300-100-10 with L0 gates, seeded with settings.seed, in training mode.
torch::nn::Sequential make_model(const SparsitySettings& settings) {
  torch::manual_seed(settings.seed);
  std::vector<L0GateOptions> gates;
  for (double d : settings.init_drop)
    gates.push_back(L0GateOptions().kind(settings.kind).init_drop_rate(d));
  auto model = make_l0_mlp({784, 300, 100, 10}, gates);
  model->train();
  return model;
}

// Adam with two groups: the weights and biases (settings.lr), the gates (settings.gate_lr).
std::shared_ptr<torch::optim::Optimizer> make_primal(torch::nn::Sequential& model,
                                                     const SparsitySettings& settings) {
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(l0_weight_parameters(*model),
                      std::make_unique<torch::optim::AdamOptions>(settings.lr));
  groups.emplace_back(l0_gate_parameters(*model),
                      std::make_unique<torch::optim::AdamOptions>(settings.gate_lr));
  return std::make_shared<torch::optim::Adam>(std::move(groups),
                                              torch::optim::AdamOptions(settings.lr));
}

// How the run treats "density <= target": the problem, its constraint (undefined for a penalty
// of 0: plain training) and the scheme that steps it.
struct Treatment {
  Problem problem;
  Constraint density;
  std::unique_ptr<ConstrainedOptimizer> optimizer;
  DefaultOptimizer* default_optimizer = nullptr;  // kDefault: `optimizer`, else null
  bool lagrangian = false;  // a multiplier (default, dual SGD or nuPI), else a fixed penalty
  bool proxy = false;       // the multiplier follows the test-time density

  // The multiplier now (0 for a penalty).
  double multiplier() const {
    return lagrangian ? problem.multiplier_values("density")[0].item<double>() : 0.0;
  }
};

Treatment make_treatment(const SparsityRunSpec& spec,
                         const std::shared_ptr<torch::optim::Optimizer>& primal) {
  const std::vector<std::shared_ptr<torch::optim::Optimizer>> primal_list{primal};
  Treatment t;
  t.lagrangian = spec.method != SparsityMethod::kPenalty;
  t.proxy = spec.method == SparsityMethod::kNuPIProxy;
  if (spec.method == SparsityMethod::kDefault) {
    t.density = t.problem.add_constraint("density", ConstraintOptions());
    auto made = make_default_optimizer(t.problem, primal_list);
    t.default_optimizer = made.get();
    t.optimizer = std::move(made);
  } else if (t.lagrangian) {
    t.density = t.problem.add_constraint("density", ConstraintOptions());
    std::shared_ptr<torch::optim::Optimizer> dual;
    if (spec.method == SparsityMethod::kGradientAscent) {
      dual = std::make_shared<torch::optim::SGD>(t.problem.dual_parameters(),
                                                 torch::optim::SGDOptions(spec.value));
    } else {
      dual = std::make_shared<optim::NuPI>(
          t.problem.dual_parameters(),
          optim::NuPIOptions(spec.value).kp(spec.kp).init(optim::NuPIInit::kZero));
    }
    t.optimizer = std::make_unique<SimultaneousOptimizer>(t.problem, primal_list, dual);
  } else {
    if (spec.value > 0) {
      t.density = t.problem.add_constraint(
          "density",
          ConstraintOptions().formulation(std::make_shared<FixedPenalty>()).penalty(spec.value));
    }
    t.optimizer = std::make_unique<UnconstrainedOptimizer>(t.problem, primal_list);
  }
  return t;
}

// The training batches: all of `train`, or this rank's shard (every W-th example from the
// rank's own, floor(N / W) of them, so that every rank has as many batches) in batches of
// ceil(batch_size / W).
data::BatchLoader make_loader(const data::Dataset& train, const SparsitySettings& settings) {
  if (!settings.group) return data::BatchLoader(train, settings.batch_size, settings.seed + 1);
  const int64_t world = settings.group->world_size();
  const int64_t each = train.size() / world;
  const torch::Tensor rows = torch::arange(settings.group->rank(), each * world, world);
  data::Dataset shard = train;
  shard.inputs = train.inputs.index_select(0, rows);
  shard.targets = train.targets.index_select(0, rows);
  if (train.groups.defined()) shard.groups = train.groups.index_select(0, rows);
  return data::BatchLoader(shard, (settings.batch_size + world - 1) / world, settings.seed + 1);
}

// One training step on a batch: cross-entropy, and the density constraint when there is one.
StepResult train_step(torch::nn::Sequential& model, Treatment& t, const data::Batch& batch,
                      const SparsitySettings& settings) {
  if (settings.group) settings.group->set_samples(batch.targets.size(0));
  const auto closure = [&] {
    ProblemState state(torch::cross_entropy_loss(model->forward(batch.inputs), batch.targets));
    if (t.density.defined()) {
      ConstraintState constraint(expected_density(*model) - settings.target);
      if (t.proxy) {
        constraint.strict_violation(
            torch::tensor(test_time_density(*model) - settings.target, torch::kFloat32));
      }
      state.observe(t.density, constraint);
    }
    return state;
  };
  return t.optimizer->step(closure);
}

// The model's state at the end of `epoch` (test-time gates for the accuracy).
SparsityEpoch evaluate(int64_t epoch, torch::nn::Sequential& model, const Treatment& t,
                       const SparsityData& data, double train_loss, double seconds) {
  SparsityEpoch e;
  e.epoch = epoch;
  {
    torch::NoGradGuard no_grad;
    e.expected_density = expected_density(*model).item<double>();
  }
  e.test_density = test_time_density(*model);
  e.multiplier = t.multiplier();
  e.train_loss = train_loss;
  e.test_accuracy = accuracy(model, data.test);
  e.seconds = seconds;
  return e;
}

// One pass over the training data; adds its training and data time to `run`.
SparsityEpoch train_epoch(int64_t epoch, torch::nn::Sequential& model, Treatment& t,
                          data::BatchLoader& loader, const SparsityData& data,
                          const SparsitySettings& settings, SparsityRun& run) {
  const auto epoch_start = Clock::now();
  double data_seconds = 0;
  torch::Tensor loss_sum = torch::zeros({}, torch::kFloat64);
  int64_t batches = 0;
  loader.start_epoch();
  while (true) {
    const auto t0 = Clock::now();
    auto batch = loader.next();
    data_seconds += seconds_since(t0);
    if (!batch) break;
    loss_sum += train_step(model, t, *batch, settings).loss;  // no sync per step
    ++batches;
  }
  const double seconds = seconds_since(epoch_start);
  run.train_seconds += seconds;
  run.data_seconds += data_seconds;
  // Data-parallel: the mean over every rank's batches (every rank has as many).
  const double world = settings.group ? settings.group->world_size() : 1;
  if (settings.group) loss_sum = settings.group->all_sum(loss_sum);
  const double train_loss =
      loss_sum.item<double>() / (world * static_cast<double>(std::max<int64_t>(batches, 1)));
  return evaluate(epoch, model, t, data, train_loss, seconds);
}

// The end of the run: final densities, multiplier, accuracies and per-layer densities.
void finish(SparsityRun& run, torch::nn::Sequential& model, const Treatment& t,
            const SparsityData& data) {
  run.expected_density = run.epochs.empty() ? 0 : run.epochs.back().expected_density;
  run.test_density = test_time_density(*model);
  run.multiplier = t.multiplier();
  if (t.default_optimizer != nullptr) {
    run.penalty = t.default_optimizer->penalty(t.density)[0].item<double>();
  }
  run.train_accuracy = accuracy(model, data.train);
  run.test_accuracy =
      run.epochs.empty() ? accuracy(model, data.test) : run.epochs.back().test_accuracy;
  for (const auto& layer : l0_layers(*model)) {
    run.layer_test_density.push_back(static_cast<double>(layer->test_time_l0()) /
                                     static_cast<double>(layer->num_weights()));
  }
}

}  // namespace

SparsityRun train_sparsity(const SparsityData& data, const SparsitySettings& settings,
                           const SparsityRunSpec& spec, Progress* progress) {
  auto model = make_model(settings);
  Treatment t = make_treatment(spec, make_primal(model, settings));
  data::BatchLoader loader = make_loader(data.train, settings);
  if (settings.group) settings.group->attach(*t.optimizer);
  SparsityRun run;
  run.spec = spec;
  if (progress != nullptr) progress->start_run(spec.label, settings.epochs);
  {
    torch::NoGradGuard no_grad;
    run.initial = {0,
                   expected_density(*model).item<double>(),
                   test_time_density(*model),
                   t.multiplier(),
                   std::numeric_limits<double>::quiet_NaN(),
                   accuracy(model, data.test),
                   0.0};
  }
  for (int64_t epoch = 1; epoch <= settings.epochs; ++epoch) {
    const SparsityEpoch e = train_epoch(epoch, model, t, loader, data, settings, run);
    run.epochs.push_back(e);
    if (progress != nullptr) {
      progress->iteration_line(epoch, "expected density " + fixed(100 * e.expected_density, 1) +
                                          "%, test-time " + fixed(100 * e.test_density, 1) +
                                          "%, lambda " + fmt(e.multiplier, 3) + ", " +
                                          fixed(e.seconds, 2) + " s/epoch");
    }
  }
  finish(run, model, t, data);
  if (progress != nullptr) {
    progress->finish_run("density " + fixed(100 * run.test_density, 1) + "% (expected " +
                         fixed(100 * run.expected_density, 1) + "%), test accuracy " +
                         fixed(run.test_accuracy, 2) + "%");
  }
  return run;
}

}  // namespace feasible::app
