#include "apps/feasible/rate_problem.h"

#include <feasible/feasible.h>

#include <chrono>
#include <cmath>

namespace feasible::app {

RateData make_rate_data(uint64_t seed) {
  auto generator = at::detail::createCPUGenerator(seed);
  const double means[4][2] = {{0, 1}, {-1, 0}, {0, -1}, {1, 0}};
  const float labels[4] = {1, 1, 0, 0};
  std::vector<torch::Tensor> xs, ys;
  for (int k = 0; k < 4; ++k) {
    auto noise = torch::randn({100, 2}, generator, torch::kFloat32);
    xs.push_back(torch::tensor({means[k][0], means[k][1]}, torch::kFloat32) +
                 noise * std::sqrt(0.05));
    ys.push_back(torch::full({100}, labels[k], torch::kFloat32));
  }
  return {torch::cat(xs), torch::cat(ys)};
}

const char* rate_method_key(RateMethod method) {
  switch (method) {
    case RateMethod::kPenalty:
      return "penalty";
    case RateMethod::kLagrangianProxy:
      return "lagrangian_proxy";
    case RateMethod::kLagrangianSurrogate:
      return "lagrangian_surrogate";
    case RateMethod::kHandPenalty:
      return "hand_penalty";
    case RateMethod::kDefault:
      return "default";
  }
  return "?";
}

namespace {

RatePoint measure(const RateData& data, const torch::Tensor& w, const torch::Tensor& b,
                  int64_t iteration, double multiplier) {
  torch::NoGradGuard no_grad;
  const auto logit = torch::mv(data.x, w) + b;
  const auto predicted_one = logit >= 0;
  RatePoint p;
  p.iteration = iteration;
  p.class0 = 100.0 * (logit < 0).to(torch::kFloat64).mean().item<double>();
  p.accuracy = 100.0 * (predicted_one == (data.y > 0.5)).to(torch::kFloat64).mean().item<double>();
  p.loss = torch::binary_cross_entropy_with_logits(logit, data.y).item<double>();
  p.surrogate = (1 - torch::sigmoid(logit)).mean().item<double>();
  p.multiplier = multiplier;
  return p;
}

/// The constraint of a run and its optimizer.
struct RateOptimizer {
  Constraint rate;  ///< undefined for the penalty at c = 0 and the hand-written loop
  std::unique_ptr<ConstrainedOptimizer> optimizer;  ///< null for the hand-written loop
  DefaultOptimizer* default_optimizer = nullptr;    ///< kDefault: `optimizer`, else null
};

/// Registers the rate constraint of `method` in `problem` and makes its optimizer: the default
/// optimizer; the Lagrangian with dual gradient ascent (step `value`), alternating; or, for the
/// penalty, FixedPenalty (c = `value`, none at 0) under UnconstrainedOptimizer.
RateOptimizer make_rate_optimizer(
    RateMethod method, double value, Problem& problem,
    const std::vector<std::shared_ptr<torch::optim::Optimizer>>& primal) {
  RateOptimizer made;
  if (method == RateMethod::kDefault) {
    made.rate = problem.add_constraint("class0_rate", ConstraintOptions());
    auto def = make_default_optimizer(problem, primal);
    made.default_optimizer = def.get();
    made.optimizer = std::move(def);
  } else if (method == RateMethod::kLagrangianProxy || method == RateMethod::kLagrangianSurrogate) {
    made.rate = problem.add_constraint("class0_rate", ConstraintOptions());
    auto dual = std::make_shared<torch::optim::SGD>(problem.dual_parameters(),
                                                    torch::optim::SGDOptions(value));
    made.optimizer = std::make_unique<AlternatingDualPrimalOptimizer>(problem, primal, dual);
  } else if (method == RateMethod::kPenalty) {
    if (value > 0) {
      made.rate = problem.add_constraint(
          "class0_rate",
          ConstraintOptions().formulation(std::make_shared<FixedPenalty>()).penalty(value));
    }
    made.optimizer = std::make_unique<UnconstrainedOptimizer>(problem, primal);
  }
  return made;
}

}  // namespace

RateRun train_rate(const RateData& data, RateMethod method, double value, int64_t iterations,
                   double primal_lr, int64_t record_every, Progress* progress) {
  RateRun run;
  run.method = method;
  run.value = value;
  auto w = torch::tensor({1.0f, -1.0f}).requires_grad_();
  auto b = torch::zeros({}, torch::kFloat32).requires_grad_();
  auto primal = std::make_shared<torch::optim::SGD>(std::vector<torch::Tensor>{w, b},
                                                    torch::optim::SGDOptions(primal_lr));
  const std::vector<std::shared_ptr<torch::optim::Optimizer>> primal_list{primal};

  Problem problem;
  RateOptimizer made = make_rate_optimizer(method, value, problem, primal_list);
  const Constraint rate = made.rate;
  const std::unique_ptr<ConstrainedOptimizer>& optimizer = made.optimizer;
  const bool lagrangian = method == RateMethod::kLagrangianProxy ||
                          method == RateMethod::kLagrangianSurrogate ||
                          method == RateMethod::kDefault;
  const bool proxy = method == RateMethod::kLagrangianProxy || method == RateMethod::kDefault;
  // "at least 70% predicted class 0" as g <= 0: violation = 0.7 - rate.
  const auto closure = [&] {
    const auto logit = torch::mv(data.x, w) + b;
    ProblemState state(torch::binary_cross_entropy_with_logits(logit, data.y));
    if (rate.defined()) {
      ConstraintState constraint(kRateTarget - (1 - torch::sigmoid(logit)).mean());
      if (proxy) constraint.strict_violation(kRateTarget - (logit < 0).to(logit.dtype()).mean());
      state.observe(rate, constraint);
    }
    return state;
  };
  const auto lambda_now = [&] {
    return lagrangian ? problem.multiplier_values("class0_rate")[0].item<double>() : 0.0;
  };

  if (progress != nullptr) {
    progress->start_run(method == RateMethod::kDefault
                            ? std::string("default (no dual step)")
                            : std::string(rate_method_key(method)) + " " + fmt(value, 3),
                        iterations);
  }
  if (record_every > 0) run.series.push_back(measure(data, w, b, 0, lambda_now()));
  double seconds = 0;
  auto t0 = std::chrono::steady_clock::now();
  for (int64_t t = 1; t <= iterations; ++t) {
    if (method == RateMethod::kHandPenalty) {
      primal->zero_grad();
      const auto logit = torch::mv(data.x, w) + b;
      auto loss = torch::binary_cross_entropy_with_logits(logit, data.y) +
                  value * (kRateTarget - (1 - torch::sigmoid(logit)).mean());
      loss.backward();
      primal->step();
    } else {
      optimizer->step(closure);
    }
    const bool record = record_every > 0 && (t % record_every == 0 || t == iterations);
    if (record || (progress != nullptr && (t & 511) == 0)) {
      seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (record) run.series.push_back(measure(data, w, b, t, lambda_now()));
      if (progress != nullptr) progress->update(t);
      t0 = std::chrono::steady_clock::now();
    }
  }
  seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  run.train_seconds = seconds;
  const RatePoint end = measure(data, w, b, iterations, lambda_now());
  run.class0 = end.class0;
  run.accuracy = end.accuracy;
  run.surrogate = end.surrogate;
  run.multiplier = end.multiplier;
  run.w0 = w[0].item<double>();
  run.w1 = w[1].item<double>();
  run.b = b.item<double>();
  if (made.default_optimizer != nullptr) {
    run.penalty = made.default_optimizer->penalty(rate)[0].item<double>();
  }
  if (progress != nullptr) {
    progress->finish_run("class 0 " + fixed(run.class0, 2) + "%, accuracy " +
                         fixed(run.accuracy, 2) + "%");
  }
  return run;
}

}  // namespace feasible::app
