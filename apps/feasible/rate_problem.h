#pragma once
/// \file rate_problem.h
/// The rate-constrained linear classification problem of Ramirez et al. (arXiv:2505.20628),
/// App. B.3, shared by E2 (the sweep) and E4 (the overhead).

#include <torch/torch.h>

#include <string>
#include <vector>

#include "apps/feasible/output.h"

namespace feasible::app {

/// The data set: 2-D mixture of four isotropic Gaussians (variance 0.05), 100 points each.
struct RateData {
  torch::Tensor x;  ///< [400, 2] float32
  torch::Tensor y;  ///< [400] float32 labels (1 for means (0, 1) and (-1, 0), else 0)
};

/// Generates the data as the authors' code does: one CPU generator seeded `seed`; for the means
/// (0, 1), (-1, 0), (0, -1), (1, 0) in this order, mean + randn(100, 2) * sqrt(0.05).
RateData make_rate_data(uint64_t seed);

/// The required rate of class-0 predictions.
inline constexpr double kRateTarget = 0.7;

/// How a run treats the requirement "at least 70% predicted as class 0".
enum class RateMethod {
  kPenalty,              ///< BCE - c * mean(1 - sigmoid(logit)) (FixedPenalty on the surrogate)
  kLagrangianProxy,      ///< Lagrangian; surrogate for the primal, exact rate for the dual
  kLagrangianSurrogate,  ///< Lagrangian; surrogate for both (the paper's footnote variant)
  kHandPenalty,          ///< the penalized loop written in plain LibTorch (overhead reference)
  kDefault,  ///< make_default_optimizer (no dual step); proxy constraint as kLagrangianProxy
};

/// A short key for files ("penalty", "lagrangian_proxy", ..., "default").
const char* rate_method_key(RateMethod method);

/// One recorded point of a run's series.
struct RatePoint {
  int64_t iteration;
  double class0;      ///< % of points predicted class 0 (logit < 0)
  double accuracy;    ///< % correct
  double loss;        ///< BCE
  double surrogate;   ///< mean(1 - sigmoid(logit))
  double multiplier;  ///< lambda (0 for penalties)
};

/// The end of one run.
struct RateRun {
  RateMethod method;
  double value = 0;  ///< the penalty coefficient c or the dual step size
  std::vector<RatePoint> series;
  double class0 = 0, accuracy = 0, surrogate = 0, multiplier = 0;
  double w0 = 0, w1 = 0, b = 0;
  double penalty = 0;        ///< kDefault: the calibrated penalty c at the end (else 0)
  double train_seconds = 0;  ///< wall-clock of the training loop only
};

/// Trains the linear model from weight (1, -1), bias 0 with full-batch gradient descent (step
/// `primal_lr`) for `iterations`; records every `record_every` iterations (0: only the end).
/// `value` is the penalty c or the dual step (unused by kDefault). Reports progress when
/// `progress` is not null.
RateRun train_rate(const RateData& data, RateMethod method, double value, int64_t iterations,
                   double primal_lr, int64_t record_every, Progress* progress);

}  // namespace feasible::app
