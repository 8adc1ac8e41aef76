#pragma once
/// \file fashion.h
/// Fashion-MNIST for the experiments that train on it (sparsity, recall, per-example): the folder
/// it is read from, the check made before any work starts, a training subset, a small MLP and
/// its per-class and per-example evaluation.

#include <feasible/data.h>
#include <feasible/feasible.h>
#include <torch/torch.h>

#include <string>
#include <vector>

#include "apps/feasible/cli.h"
#include "apps/feasible/output.h"

namespace feasible::app {

/// The ten Fashion-MNIST classes, in label order ("T-shirt/top", ..., "Ankle boot").
const std::vector<std::string>& fashion_class_names();

/// The folder of the Fashion-MNIST files: --data, or Debian's /usr/share/datasets/fashion-mnist.
std::string fashion_data_dir(const RunConfig& config);

/// Whether `experiment` reads Fashion-MNIST ("sparsity", "recall", "per-example").
bool needs_fashion_mnist(const std::string& experiment);

/// Empty if the four Fashion-MNIST files exist in fashion_data_dir(config), else a message that
/// names `experiment`, the missing path and the Debian package.
std::string fashion_data_problem(const RunConfig& config, const std::string& experiment);

/// Fashion-MNIST as a run uses it.
struct FashionData {
  data::Dataset train;       ///< the training subset
  data::Dataset test;        ///< the test set
  data::Dataset validation;  ///< held-out training examples (never trained on); may be empty
};

/// Reads both splits from `dir`: the first `train_examples` training examples (0: all) are the
/// training subset, and the `validation_examples` after them (>= 0; 0: none) the validation
/// split. Throws std::runtime_error naming the file and the package when they cannot be read,
/// and when the training file has fewer than train_examples + validation_examples examples.
FashionData load_fashion(const std::string& dir, int64_t train_examples,
                         int64_t validation_examples = 0);

/// A workload of the default optimizer (recall, per-example): loads the data of `settings` and
/// trains the default run and then the unconstrained run with `train_one(data, settings,
/// use_default, progress)`. `Outcome` has `settings`, `data_dir`, `train_examples`,
/// `test_examples`, `default_run` and `unconstrained`. Throws std::runtime_error when the data
/// cannot be read.
template <class Outcome, class Settings, class TrainOne>
Outcome train_default_and_unconstrained(const RunConfig& config, Progress& progress,
                                        const std::string& experiment, const Settings& settings,
                                        TrainOne train_one) {
  Outcome o;
  o.settings = settings;
  o.data_dir = fashion_data_dir(config);
  const FashionData data = load_fashion(o.data_dir, o.settings.train_examples);
  o.train_examples = data.train.size();
  o.test_examples = data.test.size();
  progress.start_experiment(experiment, 2.0 * static_cast<double>(o.settings.epochs));
  o.default_run = train_one(data, o.settings, true, progress);
  o.unconstrained = train_one(data, o.settings, false, progress);
  return o;
}

/// An MLP 784-hidden-10 with ReLU (hidden = 0: a linear model 784-10), initialised from
/// torch::manual_seed(seed).
torch::nn::Sequential make_fashion_mlp(int64_t hidden, uint64_t seed);

/// What one run of a workload trains: the seeded MLP, its Adam, the problem with (for the
/// default's run) one constraint, and the scheme that steps it.
struct FashionTraining {
  torch::nn::Sequential model;
  Problem problem;
  Constraint constraint;  ///< undefined for the unconstrained run
  std::unique_ptr<ConstrainedOptimizer> optimizer;
  DefaultOptimizer* default_optimizer = nullptr;  ///< `optimizer` for the default's run, else null
  std::shared_ptr<torch::optim::Adam> adam;       ///< the primal optimizer (every run's)
};

/// make_fashion_mlp(hidden, seed) with Adam at `lr`; with `constraint` (a name and its options)
/// registered and make_default_optimizer, or (nullptr) an UnconstrainedOptimizer on the loss.
std::unique_ptr<FashionTraining> make_fashion_training(
    int64_t hidden, uint64_t seed, double lr,
    const std::pair<std::string, ConstraintOptions>* constraint);

/// The recall of each class on `dataset` (float64 [10]; a class without examples gets 1), the
/// model in eval mode, without gradients.
torch::Tensor per_class_recall(torch::nn::Sequential& model, const data::Dataset& dataset);

/// The cross-entropy of each example of `dataset` (float64 [N]), without gradients.
torch::Tensor per_example_loss(torch::nn::Sequential& model, const data::Dataset& dataset);

/// The accuracy (%) of `model` on `dataset`, without gradients.
double fashion_accuracy(torch::nn::Sequential& model, const data::Dataset& dataset);

}  // namespace feasible::app
