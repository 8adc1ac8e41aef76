#pragma once
/// \file sparsity_problem.h
/// The sparsity-constrained MLP of Ramirez et al. (arXiv:2505.20628), App. B.2 and Table 3:
/// a 784-300-100-10 network with Hard Concrete L0 gates trained on Fashion-MNIST, either with
/// a fixed penalty c * (expected density) or under the constraint density <= target.

#include <feasible/data.h>
#include <feasible/distributed.h>
#include <feasible/l0.h>
#include <torch/torch.h>

#include <string>
#include <vector>

#include "apps/feasible/output.h"

namespace feasible::app {

/// The training schedule and model settings shared by every run of the experiment.
struct SparsitySettings {
  int64_t epochs = 0;        ///< passes over the training subset
  int64_t batch_size = 256;  ///< mini-batch size (the paper's)
  double lr = 1e-3;          ///< Adam step for the weights and biases (the paper's)
  double gate_lr = 1e-3;     ///< Adam step for the gate parameters log_alpha
  double target = 0.5;       ///< required density
  L0GateKind kind = L0GateKind::kInputUnits;
  std::vector<double> init_drop = {0.2, 0.5, 0.5};  ///< initial drop rate per layer
  uint64_t seed = 0;  ///< model initialisation, gate noise and batch order
  /// Data-parallel training (null: one process): each rank trains on every W-th training
  /// example (rank r from example r, floor(N / W) each) in batches of ceil(batch_size / W),
  /// with the gradients and the constraint synchronised (docs/distributed.md).
  std::shared_ptr<distributed::DataParallel> group;
};

/// How one run treats the requirement "density <= target".
enum class SparsityMethod {
  kPenalty,         ///< loss + c * expected density (FixedPenalty), value = c
  kGradientAscent,  ///< Lagrangian, constraint on the expected density, dual SGD step = value
  kNuPI,            ///< Lagrangian, constraint on the expected density, dual nuPI (step = value)
  kNuPIProxy,       ///< as kNuPI, but the multiplier follows the test-time density (proxy)
  kDefault,         ///< make_default_optimizer on the expected density (no dual step)
};

/// A short key for files ("penalty", "gradient_ascent", "nupi", "nupi_proxy", "default").
const char* sparsity_method_key(SparsityMethod method);

/// What one run is.
struct SparsityRunSpec {
  SparsityMethod method = SparsityMethod::kPenalty;
  double value = 0;   ///< the penalty coefficient c, or the dual step size
  double kp = 0;      ///< nuPI's proportional gain (nuPI methods only)
  std::string label;  ///< for progress and tables
};

/// The state at the end of an epoch.
struct SparsityEpoch {
  int64_t epoch;
  double expected_density;  ///< what the constraint and the penalty use
  double test_density;      ///< fraction of weights whose test-time gate is non-zero
  double multiplier;        ///< lambda (0 for the penalty)
  double train_loss;        ///< mean cross-entropy of the epoch's batches (sampled gates)
  double test_accuracy;     ///< % with test-time gates
  double seconds;           ///< training time of the epoch
};

/// The end of one run.
struct SparsityRun {
  SparsityRunSpec spec;
  SparsityEpoch initial{};  ///< epoch 0: the model before training (train_loss NaN, seconds 0)
  std::vector<SparsityEpoch> epochs;
  double expected_density = 0, test_density = 0, multiplier = 0;
  double train_accuracy = 0, test_accuracy = 0;  ///< %, test-time gates
  double train_seconds = 0;  ///< the training loop (batches and steps), evaluation excluded
  double data_seconds = 0;   ///< of which: shuffling and gathering batches
  std::vector<double> layer_test_density;  ///< per layer
  double penalty = 0;  ///< kDefault: the penalty c it calibrated, at the end (else 0)
};

/// Fashion-MNIST, as the runs use it.
struct SparsityData {
  data::Dataset train;  ///< the training subset
  data::Dataset test;   ///< the test set
};

/// Trains one run from a fresh model (seeded with settings.seed). Reports progress per epoch
/// when `progress` is not null.
SparsityRun train_sparsity(const SparsityData& data, const SparsitySettings& settings,
                           const SparsityRunSpec& spec, Progress* progress);

/// Accuracy (%) of `model` in eval mode on `dataset`.
double accuracy(torch::nn::Sequential& model, const data::Dataset& dataset);

}  // namespace feasible::app
