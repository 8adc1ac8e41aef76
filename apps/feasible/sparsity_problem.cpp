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

/// The constraint of a run and its optimizer.
struct SparsityOptimizer {
  Constraint density;  ///< undefined for the penalty at c = 0
  std::unique_ptr<ConstrainedOptimizer> optimizer;
  DefaultOptimizer* default_optimizer = nullptr;  ///< kDefault: `optimizer`, else null
};

/// Registers the density constraint of `spec` in `problem` and makes its optimizer: the default
/// optimizer; simultaneous descent-ascent with dual gradient ascent or nuPI; or, for the penalty,
/// FixedPenalty (none at c = 0) under UnconstrainedOptimizer.
SparsityOptimizer make_optimizer(
    const SparsityRunSpec& spec, Problem& problem,
    const std::vector<std::shared_ptr<torch::optim::Optimizer>>& primal) {
  SparsityOptimizer made;
  if (spec.method == SparsityMethod::kDefault) {
    made.density = problem.add_constraint("density", ConstraintOptions());
    auto def = make_default_optimizer(problem, primal);
    made.default_optimizer = def.get();
    made.optimizer = std::move(def);
  } else if (spec.method != SparsityMethod::kPenalty) {
    made.density = problem.add_constraint("density", ConstraintOptions());
    std::shared_ptr<torch::optim::Optimizer> dual;
    if (spec.method == SparsityMethod::kGradientAscent) {
      dual = std::make_shared<torch::optim::SGD>(problem.dual_parameters(),
                                                 torch::optim::SGDOptions(spec.value));
    } else {
      dual = std::make_shared<optim::NuPI>(
          problem.dual_parameters(),
          optim::NuPIOptions(spec.value).kp(spec.kp).init(optim::NuPIInit::kZero));
    }
    made.optimizer = std::make_unique<SimultaneousOptimizer>(problem, primal, dual);
  } else {
    if (spec.value > 0) {
      made.density = problem.add_constraint(
          "density",
          ConstraintOptions().formulation(std::make_shared<FixedPenalty>()).penalty(spec.value));
    }
    made.optimizer = std::make_unique<UnconstrainedOptimizer>(problem, primal);
  }
  return made;
}

/// The seeded L0-gated MLP 784-300-100-10 of `settings`, in training mode.
torch::nn::Sequential make_model(const SparsitySettings& settings) {
  torch::manual_seed(settings.seed);
  std::vector<L0GateOptions> gates;
  for (double d : settings.init_drop)
    gates.push_back(L0GateOptions().kind(settings.kind).init_drop_rate(d));
  auto model = make_l0_mlp({784, 300, 100, 10}, gates);
  model->train();
  return model;
}

/// Adam with two groups: the weights and biases at settings.lr, the gates at settings.gate_lr.
std::shared_ptr<torch::optim::Adam> make_adam(torch::nn::SequentialImpl& model,
                                              const SparsitySettings& settings) {
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(l0_weight_parameters(model),
                      std::make_unique<torch::optim::AdamOptions>(settings.lr));
  groups.emplace_back(l0_gate_parameters(model),
                      std::make_unique<torch::optim::AdamOptions>(settings.gate_lr));
  return std::make_shared<torch::optim::Adam>(std::move(groups),
                                              torch::optim::AdamOptions(settings.lr));
}

/// The state at the end of an epoch (densities, test accuracy) with the epoch's multiplier, mean
/// training loss and training time.
SparsityEpoch measure_epoch(torch::nn::Sequential& model, const SparsityData& data, int64_t epoch,
                            double multiplier, double train_loss, double seconds) {
  SparsityEpoch e;
  e.epoch = epoch;
  {
    torch::NoGradGuard no_grad;
    e.expected_density = expected_density(*model).item<double>();
  }
  e.test_density = test_time_density(*model);
  e.multiplier = multiplier;
  e.train_loss = train_loss;
  e.test_accuracy = accuracy(model, data.test);
  e.seconds = seconds;
  return e;
}

/// The end of a run: densities (overall and per layer) and accuracies.
void record_end(SparsityRun& run, torch::nn::Sequential& model, const SparsityData& data) {
  run.expected_density = run.epochs.empty() ? 0 : run.epochs.back().expected_density;
  run.test_density = test_time_density(*model);
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
  using Clock = std::chrono::steady_clock;
  torch::nn::Sequential model = make_model(settings);
  const std::vector<std::shared_ptr<torch::optim::Optimizer>> primal_list{
      make_adam(*model, settings)};

  Problem problem;
  SparsityOptimizer made = make_optimizer(spec, problem, primal_list);
  const Constraint density = made.density;
  const std::unique_ptr<ConstrainedOptimizer>& optimizer = made.optimizer;
  const bool lagrangian = spec.method != SparsityMethod::kPenalty;
  const bool proxy = spec.method == SparsityMethod::kNuPIProxy;
  const auto lambda_now = [&] {
    return lagrangian ? problem.multiplier_values("density")[0].item<double>() : 0.0;
  };

  data::BatchLoader loader(data.train, settings.batch_size, settings.seed + 1);
  SparsityRun run;
  run.spec = spec;
  if (progress != nullptr) progress->start_run(spec.label, settings.epochs);
  {
    torch::NoGradGuard no_grad;
    run.initial = {0,
                   expected_density(*model).item<double>(),
                   test_time_density(*model),
                   lambda_now(),
                   std::numeric_limits<double>::quiet_NaN(),
                   accuracy(model, data.test),
                   0.0};
  }
  for (int64_t epoch = 1; epoch <= settings.epochs; ++epoch) {
    const auto epoch_start = Clock::now();
    double data_seconds = 0;
    torch::Tensor loss_sum = torch::zeros({}, torch::kFloat64);
    int64_t batches = 0;
    loader.start_epoch();
    while (true) {
      const auto t0 = Clock::now();
      auto batch = loader.next();
      data_seconds += std::chrono::duration<double>(Clock::now() - t0).count();
      if (!batch) break;
      const auto closure = [&] {
        ProblemState state(
            torch::cross_entropy_loss(model->forward(batch->inputs), batch->targets));
        if (density.defined()) {
          ConstraintState constraint(expected_density(*model) - settings.target);
          if (proxy) {
            constraint.strict_violation(
                torch::tensor(test_time_density(*model) - settings.target, torch::kFloat32));
          }
          state.observe(density, constraint);
        }
        return state;
      };
      const StepResult result = optimizer->step(closure);
      loss_sum += result.loss;  // no sync per step
      ++batches;
    }
    const double seconds = std::chrono::duration<double>(Clock::now() - epoch_start).count();
    run.train_seconds += seconds;
    run.data_seconds += data_seconds;
    const SparsityEpoch& e = run.epochs.emplace_back(measure_epoch(
        model, data, epoch, lambda_now(),
        loss_sum.item<double>() / static_cast<double>(std::max<int64_t>(batches, 1)), seconds));
    if (progress != nullptr) {
      progress->iteration_line(epoch, "expected density " + fixed(100 * e.expected_density, 1) +
                                          "%, test-time " + fixed(100 * e.test_density, 1) +
                                          "%, lambda " + fmt(e.multiplier, 3) + ", " +
                                          fixed(seconds, 2) + " s/epoch");
    }
  }
  run.multiplier = lambda_now();
  if (made.default_optimizer != nullptr) {
    run.penalty = made.default_optimizer->penalty(density)[0].item<double>();
  }
  record_end(run, model, data);
  if (progress != nullptr) {
    progress->finish_run("density " + fixed(100 * run.test_density, 1) + "% (expected " +
                         fixed(100 * run.expected_density, 1) + "%), test accuracy " +
                         fixed(run.test_accuracy, 2) + "%");
  }
  return run;
}

}  // namespace feasible::app
