// End-to-end test of constrained sparsity (the required test): a 784-300-100-10 MLP of
// Hard Concrete L0 layers trained for a short run on the first 2000 Fashion-MNIST training
// examples. With the density constraint E[density] - 0.5 <= 0 handled by a Lagrangian and a
// nuPI dual optimizer (SimultaneousOptimizer), the expected density ends at the 0.5 target
// within tolerance; the same run with a fixed penalty of c = 1e-3 (UnconstrainedOptimizer)
// stays far above it. Also checks the multiplier's first nuPI step against its closed form and
// that it stays >= 0. Uses only the public API; skipped when Debian's dataset-fashion-mnist is
// not installed.

#include <feasible/feasible.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace {

namespace data = feasible::data;

// Short run: 160 steps = 20 epochs of 2000 examples in batches of 256 (8 batches, the last of
// 208). About 2-5 s per run on two shared cores.
constexpr int64_t kExamples = 2000;
constexpr int64_t kBatchSize = 256;
constexpr int64_t kSteps = 160;
constexpr double kTarget = 0.5;     // density target: E[density] - kTarget <= 0
constexpr double kWeightLr = 1e-3;  // Adam on weights and biases
constexpr double kGateLr = 5e-2;    // Adam on log_alpha: large, so the gates move in few steps
constexpr double kPenalty = 1e-3;   // the fixed penalty coefficient c of the penalized run
constexpr uint64_t kSeed = 0;       // torch::manual_seed (init); the loader uses kSeed + 1
const std::vector<double> kInitDrop = {0.2, 0.5, 0.5};  // Louizos et al.'s code
// nuPI dual optimizer, nu = 0, zero start. Mostly proportional: lambda_t ~= eta Kp s_t +
// eta Ki sum s, with proportional gain eta Kp = 15 (the full experiment's eta = 3e-4,
// Kp = 5e4 has 15 too) and an integral gain eta Ki = 1e-2, larger than the full experiment's 3e-4
// so that the integral term removes most of the proportional controller's offset within 160 steps.
constexpr double kEta = 1e-2;
constexpr double kKp = 1.5e3;

bool dataset_installed() {
  const std::string dir = data::kFashionMnistDir;
  for (const char* name : {"train-images-idx3-ubyte", "train-labels-idx1-ubyte"}) {
    const std::string path = dir + "/" + name;
    if (!std::filesystem::exists(path + ".gz") && !std::filesystem::exists(path)) return false;
  }
  return true;
}

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// The expected density of the freshly initialised model, from the formulas of l0.h: a gate with
// log_alpha = log((1 - d) / d) (the init noise, std 1e-2, is ignored) is non-zero with
// probability sigmoid(log_alpha - beta log(-gamma / zeta)), beta = 2/3, gamma = -0.1,
// zeta = 1.1; an input-unit gate of layer i controls out_i weights, so the density is the
// weight-count-weighted mean of these probabilities.
double initial_expected_density() {
  const std::vector<std::pair<double, double>> layers = {
      {784.0 * 300.0, kInitDrop[0]}, {300.0 * 100.0, kInitDrop[1]}, {100.0 * 10.0, kInitDrop[2]}};
  double open = 0, total = 0;
  for (const auto& [weights, drop] : layers) {
    const double log_alpha = std::log((1 - drop) / drop);
    open += weights * sigmoid(log_alpha - (2.0 / 3.0) * std::log(0.1 / 1.1));
    total += weights;
  }
  return open / total;
}

enum class Method { kConstrained, kPenalized };

struct Outcome {
  double expected_density = 0;  // at the end
  double test_density = 0;      // at the end
  double first_multiplier = 0;  // after the first step (constrained only)
  double min_multiplier = 0;    // over all steps (constrained only)
  double max_multiplier = 0;    // over all steps (constrained only)
  double final_multiplier = 0;  // (constrained only)
};

class SparsityEndToEnd : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!dataset_installed()) {
      GTEST_SKIP() << data::kFashionMnistDir
                   << " is missing (apt-get install dataset-fashion-mnist)";
    }
    if (train_ == nullptr) {
      train_ = std::make_unique<data::Dataset>(
          data::take(data::load_fashion_mnist(data::Split::kTrain), kExamples));
    }
  }

  static Outcome train(Method method) {
    torch::manual_seed(kSeed);
    std::vector<feasible::L0GateOptions> gates;
    for (double drop : kInitDrop) {
      gates.push_back(
          feasible::L0GateOptions().kind(feasible::L0GateKind::kInputUnits).init_drop_rate(drop));
    }
    auto model = feasible::make_l0_mlp({784, 300, 100, 10}, gates);
    model->train();

    std::vector<torch::optim::OptimizerParamGroup> groups;
    groups.emplace_back(feasible::l0_weight_parameters(*model),
                        std::make_unique<torch::optim::AdamOptions>(kWeightLr));
    groups.emplace_back(feasible::l0_gate_parameters(*model),
                        std::make_unique<torch::optim::AdamOptions>(kGateLr));
    auto primal = std::make_shared<torch::optim::Adam>(std::move(groups),
                                                       torch::optim::AdamOptions(kWeightLr));
    const std::vector<std::shared_ptr<torch::optim::Optimizer>> primal_list{primal};

    feasible::Problem problem;
    feasible::Constraint density;
    std::unique_ptr<feasible::ConstrainedOptimizer> optimizer;
    if (method == Method::kConstrained) {
      density = problem.add_constraint("density", feasible::ConstraintOptions());
      auto dual = std::make_shared<feasible::optim::NuPI>(
          problem.dual_parameters(),
          feasible::optim::NuPIOptions(kEta).kp(kKp).init(feasible::optim::NuPIInit::kZero));
      optimizer = std::make_unique<feasible::SimultaneousOptimizer>(problem, primal_list, dual);
    } else {
      density = problem.add_constraint("density",
                                       feasible::ConstraintOptions()
                                           .formulation(std::make_shared<feasible::FixedPenalty>())
                                           .penalty(kPenalty));
      optimizer = std::make_unique<feasible::UnconstrainedOptimizer>(problem, primal_list);
    }

    data::BatchLoader loader(*train_, kBatchSize, kSeed + 1);
    Outcome out;
    int64_t step = 0;
    while (step < kSteps) {
      loader.start_epoch();
      while (step < kSteps) {
        const auto batch = loader.next();
        if (!batch) break;
        optimizer->step([&] {
          feasible::ProblemState state(
              torch::cross_entropy_loss(model->forward(batch->inputs), batch->targets));
          state.observe(density,
                        feasible::ConstraintState(feasible::expected_density(*model) - kTarget));
          return state;
        });
        if (method == Method::kConstrained) {
          const double lambda = problem.multiplier_values("density")[0].item<double>();
          if (step == 0) out.first_multiplier = lambda;
          out.min_multiplier = step == 0 ? lambda : std::min(out.min_multiplier, lambda);
          out.max_multiplier = std::max(out.max_multiplier, lambda);
          out.final_multiplier = lambda;
        }
        ++step;
      }
    }
    torch::NoGradGuard no_grad;
    out.expected_density = feasible::expected_density(*model).item<double>();
    out.test_density = feasible::test_time_density(*model);
    return out;
  }

  static std::unique_ptr<data::Dataset> train_;
};

std::unique_ptr<data::Dataset> SparsityEndToEnd::train_;

TEST_F(SparsityEndToEnd, ConstrainedRunReachesDensityTarget) {
  const Outcome out = train(Method::kConstrained);
  // Tolerance 0.02 (2 points of a 50% target). In this short run the multiplier is still mostly
  // the proportional term, lambda ~= 15 s, and the loss pulls the density up with a force
  // balanced by lambda ~= 0.2 at the end, so a purely proportional controller would leave an
  // offset s ~= 0.2 / 15 ~= 0.013; the integral term removes most of it. Seen while writing
  // the test over seeds 0-5: |density - 0.5| <= 0.0031.
  EXPECT_NEAR(out.expected_density, kTarget, 0.02);

  // First step, from the zero start: lambda_1 = [eta (Ki + Kp) s_0]_+ with s_0 the violation at
  // initialisation. Tolerance: a density error of 1e-3 times the gain; the init noise on
  // log_alpha (std 1e-2, mean over >= 100 gates per layer) moves s_0 by ~1e-4 at most, float32
  // rounding by ~1e-7. A wrong first-step mode would be far off (kSGD start: eta Ki s_0 ~= 0.004
  // instead of ~6.6).
  const double s0 = initial_expected_density() - kTarget;
  EXPECT_NEAR(out.first_multiplier, kEta * (1 + kKp) * s0, 1e-3 * kEta * (1 + kKp));
  // An inequality multiplier is projected onto lambda >= 0 after every dual step, and it was
  // positive (the constraint was violated at the start: s_0 ~= 0.44).
  EXPECT_GE(out.min_multiplier, 0.0);
  EXPECT_GT(out.max_multiplier, 1.0);
  EXPECT_GE(out.final_multiplier, 0.0);
}

TEST_F(SparsityEndToEnd, PenalizedRunWithSmallCoefficientStaysDense) {
  // The same run with the fixed penalty c (E[density] - 0.5), c = 1e-3: the penalty's gradient
  // on a gate is c times d density / d log_alpha <= c * 300 / 266200 * 1/4 ~= 3e-7, negligible
  // next to the loss's (Adam rescales their sum, so only the ratio matters), so the density stays
  // near its initial value (~0.94 by initial_expected_density(); seen 0.97 over seeds 0-2), far
  // above the target. 0.8 leaves a wide margin on both sides: the constrained run ends near 0.5.
  const Outcome out = train(Method::kPenalized);
  EXPECT_GT(initial_expected_density(), 0.9);
  EXPECT_GT(out.expected_density, 0.8);
  EXPECT_GT(out.test_density, 0.8);
}

}  // namespace
