// Fashion-MNIST for the experiments that train on it (apps/feasible/fashion.h).
#include "apps/feasible/fashion.h"

#include <filesystem>
#include <stdexcept>

namespace feasible::app {
namespace {

/// The logits of `model` on `dataset`, in slices of 8192 rows, without gradients.
torch::Tensor logits_of(torch::nn::Sequential& model, const data::Dataset& dataset) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> parts;
  const int64_t n = dataset.size();
  for (int64_t start = 0; start < n; start += 8192) {
    parts.push_back(
        model->forward(dataset.inputs.narrow(0, start, std::min<int64_t>(8192, n - start))));
  }
  return torch::cat(parts);
}

}  // namespace

const std::vector<std::string>& fashion_class_names() {
  static const std::vector<std::string> names = {"T-shirt/top", "Trouser",   "Pullover", "Dress",
                                                 "Coat",        "Sandal",    "Shirt",    "Sneaker",
                                                 "Bag",         "Ankle boot"};
  return names;
}

std::string fashion_data_dir(const RunConfig& config) {
  return config.data.empty() ? std::string(data::kFashionMnistDir) : config.data;
}

bool needs_fashion_mnist(const std::string& experiment) {
  return experiment == "sparsity" || experiment == "recall" || experiment == "per-example";
}

std::string fashion_data_problem(const RunConfig& config, const std::string& experiment) {
  const std::string dir = fashion_data_dir(config);
  for (const char* stem : {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                           "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"}) {
    const std::string path = dir + "/" + stem;
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path + ".gz", ec) &&
        !std::filesystem::is_regular_file(path, ec)) {
      return "the " + experiment + " experiment needs Fashion-MNIST: no '" + path +
             ".gz' (nor without .gz). Install the Debian package dataset-fashion-mnist "
             "(apt-get install dataset-fashion-mnist), or give the folder with --data DIR";
    }
  }
  return "";
}

FashionData load_fashion(const std::string& dir, int64_t train_examples,
                         int64_t validation_examples) {
  FashionData data;
  try {
    data.train = data::load_fashion_mnist(data::Split::kTrain, dir);
    data.test = data::load_fashion_mnist(data::Split::kTest, dir);
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string(e.what()) + " (--data DIR)");
  }
  if (validation_examples > 0) {
    const int64_t n = train_examples > 0 ? train_examples : data.train.size() - validation_examples;
    if (n <= 0 || n + validation_examples > data.train.size()) {
      throw std::runtime_error("load_fashion: " + std::to_string(train_examples) +
                               " training and " + std::to_string(validation_examples) +
                               " validation examples need more than the " +
                               std::to_string(data.train.size()) + " in " + dir);
    }
    data.validation.inputs = data.train.inputs.narrow(0, n, validation_examples);
    data.validation.targets = data.train.targets.narrow(0, n, validation_examples);
    train_examples = n;
  }
  if (train_examples > 0) data.train = data::take(data.train, train_examples);
  return data;
}

std::unique_ptr<FashionTraining> make_fashion_training(
    int64_t hidden, uint64_t seed, double lr,
    const std::pair<std::string, ConstraintOptions>* constraint) {
  auto t = std::make_unique<FashionTraining>();
  t->model = make_fashion_mlp(hidden, seed);
  auto adam =
      std::make_shared<torch::optim::Adam>(t->model->parameters(), torch::optim::AdamOptions(lr));
  t->adam = adam;
  if (constraint != nullptr) {
    t->constraint = t->problem.add_constraint(constraint->first, constraint->second);
    auto made = make_default_optimizer(t->problem, adam);
    t->default_optimizer = made.get();
    t->optimizer = std::move(made);
  } else {
    t->optimizer = std::make_unique<UnconstrainedOptimizer>(
        t->problem, std::vector<std::shared_ptr<torch::optim::Optimizer>>{adam});
  }
  return t;
}

torch::nn::Sequential make_fashion_mlp(int64_t hidden, uint64_t seed) {
  torch::manual_seed(seed);
  torch::nn::Sequential model;
  if (hidden > 0) {
    model->push_back(torch::nn::Linear(784, hidden));
    model->push_back(torch::nn::ReLU());
    model->push_back(torch::nn::Linear(hidden, 10));
  } else {
    model->push_back(torch::nn::Linear(784, 10));
  }
  return model;
}

torch::Tensor per_class_recall(torch::nn::Sequential& model, const data::Dataset& dataset) {
  const torch::Tensor predicted = logits_of(model, dataset).argmax(1);
  const torch::Tensor onehot = torch::one_hot(dataset.targets, 10).to(torch::kFloat64);  // [N, 10]
  const torch::Tensor correct = (predicted == dataset.targets).to(torch::kFloat64);
  const torch::Tensor count = onehot.sum(0);
  const torch::Tensor hits = (onehot * correct.unsqueeze(1)).sum(0);
  return torch::where(count > 0, hits / count.clamp_min(1), torch::ones_like(count));
}

torch::Tensor per_example_loss(torch::nn::Sequential& model, const data::Dataset& dataset) {
  const torch::Tensor logits = logits_of(model, dataset);
  return torch::nn::functional::cross_entropy(
             logits, dataset.targets,
             torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone))
      .to(torch::kFloat64);
}

double fashion_accuracy(torch::nn::Sequential& model, const data::Dataset& dataset) {
  const torch::Tensor predicted = logits_of(model, dataset).argmax(1);
  return 100.0 * (predicted == dataset.targets).to(torch::kFloat64).mean().item<double>();
}

}  // namespace feasible::app
