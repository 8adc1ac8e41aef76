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

// One run's model (weight (1, -1), bias 0), its SGD, and how it treats the requirement: the
// problem, its constraint (undefined for a penalty of 0 and for the hand-written loop) and the
// scheme that steps it (none for the hand-written loop).
struct RateTraining {
  RateMethod method;
  double value;
  torch::Tensor w = torch::tensor({1.0f, -1.0f}).requires_grad_();
  torch::Tensor b = torch::zeros({}, torch::kFloat32).requires_grad_();
  std::shared_ptr<torch::optim::SGD> primal;
  Problem problem;
  Constraint rate;
  std::unique_ptr<ConstrainedOptimizer> optimizer;
  DefaultOptimizer* default_optimizer = nullptr;  // kDefault: `optimizer`, else null
  bool lagrangian = false;
  bool proxy = false;  // the exact rate drives the multiplier

  RateTraining(RateMethod method_, double value_, double primal_lr);
  // The multiplier now (0 for penalties).
  double multiplier() const {
    return lagrangian ? problem.multiplier_values("class0_rate")[0].item<double>() : 0.0;
  }
  // One full-batch step.
  void step(const RateData& data);
};

RateTraining::RateTraining(RateMethod method_, double value_, double primal_lr)
    : method(method_), value(value_) {
  primal = std::make_shared<torch::optim::SGD>(std::vector<torch::Tensor>{w, b},
                                               torch::optim::SGDOptions(primal_lr));
  const std::vector<std::shared_ptr<torch::optim::Optimizer>> primal_list{primal};
  lagrangian = method == RateMethod::kLagrangianProxy ||
               method == RateMethod::kLagrangianSurrogate || method == RateMethod::kDefault;
  proxy = method == RateMethod::kLagrangianProxy || method == RateMethod::kDefault;
  if (method == RateMethod::kDefault) {
    rate = problem.add_constraint("class0_rate", ConstraintOptions());
    auto made = make_default_optimizer(problem, primal_list);
    default_optimizer = made.get();
    optimizer = std::move(made);
  } else if (lagrangian) {
    rate = problem.add_constraint("class0_rate", ConstraintOptions());
    auto dual = std::make_shared<torch::optim::SGD>(problem.dual_parameters(),
                                                    torch::optim::SGDOptions(value));
    optimizer = std::make_unique<AlternatingDualPrimalOptimizer>(problem, primal_list, dual);
  } else if (method == RateMethod::kPenalty) {
    if (value > 0) {
      rate = problem.add_constraint(
          "class0_rate",
          ConstraintOptions().formulation(std::make_shared<FixedPenalty>()).penalty(value));
    }
    optimizer = std::make_unique<UnconstrainedOptimizer>(problem, primal_list);
  }
}

void RateTraining::step(const RateData& data) {
  if (method == RateMethod::kHandPenalty) {
    primal->zero_grad();
    const auto logit = torch::mv(data.x, w) + b;
    auto loss = torch::binary_cross_entropy_with_logits(logit, data.y) +
                value * (kRateTarget - (1 - torch::sigmoid(logit)).mean());
    loss.backward();
    primal->step();
    return;
  }
  // "at least 70% predicted class 0" as g <= 0: violation = 0.7 - rate.
  optimizer->step([&] {
    const auto logit = torch::mv(data.x, w) + b;
    ProblemState state(torch::binary_cross_entropy_with_logits(logit, data.y));
    if (rate.defined()) {
      ConstraintState constraint(kRateTarget - (1 - torch::sigmoid(logit)).mean());
      if (proxy) constraint.strict_violation(kRateTarget - (logit < 0).to(logit.dtype()).mean());
      state.observe(rate, constraint);
    }
    return state;
  });
}

// The end of the run: the final point and the model's parameters.
void finish(RateRun& run, const RateTraining& t, const RateData& data, int64_t iterations) {
  const RatePoint end = measure(data, t.w, t.b, iterations, t.multiplier());
  run.class0 = end.class0;
  run.accuracy = end.accuracy;
  run.surrogate = end.surrogate;
  run.multiplier = end.multiplier;
  run.w0 = t.w[0].item<double>();
  run.w1 = t.w[1].item<double>();
  run.b = t.b.item<double>();
  if (t.default_optimizer != nullptr) {
    run.penalty = t.default_optimizer->penalty(t.rate)[0].item<double>();
  }
}

}  // namespace

RateRun train_rate(const RateData& data, RateMethod method, double value, int64_t iterations,
                   double primal_lr, int64_t record_every, Progress* progress) {
  using Clock = std::chrono::steady_clock;
  RateRun run;
  run.method = method;
  run.value = value;
  RateTraining t(method, value, primal_lr);
  if (progress != nullptr) {
    progress->start_run(method == RateMethod::kDefault
                            ? std::string("default (no dual step)")
                            : std::string(rate_method_key(method)) + " " + fmt(value, 3),
                        iterations);
  }
  if (record_every > 0) run.series.push_back(measure(data, t.w, t.b, 0, t.multiplier()));
  double seconds = 0;
  auto t0 = Clock::now();
  for (int64_t it = 1; it <= iterations; ++it) {
    t.step(data);
    const bool record = record_every > 0 && (it % record_every == 0 || it == iterations);
    if (record || (progress != nullptr && (it & 511) == 0)) {
      seconds += std::chrono::duration<double>(Clock::now() - t0).count();
      if (record) run.series.push_back(measure(data, t.w, t.b, it, t.multiplier()));
      if (progress != nullptr) progress->update(it);
      t0 = Clock::now();
    }
  }
  seconds += std::chrono::duration<double>(Clock::now() - t0).count();
  run.train_seconds = seconds;
  finish(run, t, data, iterations);
  if (progress != nullptr) {
    progress->finish_run("class 0 " + fixed(run.class0, 2) + "%, accuracy " +
                         fixed(run.accuracy, 2) + "%");
  }
  return run;
}

}  // namespace feasible::app
