// The C++ side of the Python parity tests (python/tests/test_parity.py): runs the parity
// problem with a scheme, a multiplier kind and a primal optimizer, and prints after every step
// the iteration, x and the multipliers as hexadecimal floats (exact). The Python side builds
// the same problem (python/tests/parity_problem.py) and compares bit for bit.
//
// Usage: feasible_parity_driver SCHEME dense|indexed sgd|adam STEPS [--save-at K PATH]
//        [--load PATH]
//   SCHEME: simultaneous, dual_primal, primal_dual, extragradient, unconstrained, default.
// The problem: minimize 0.5 ||x - a||^2 over x in R^10, a_i = (i + 1) / 4, subject to
// "pairs": x_{2j} + x_{2j+1} - 1 <= 0 (j = 0..4; indexed: entries t % 5 and (t + 2) % 5 at
// step t) and "total": sum x - 2 = 0 (dense).
#include <feasible/feasible.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

namespace {

struct Model : torch::nn::Module {
  Model() { x = register_parameter("x", torch::zeros({10}, torch::kFloat64)); }
  torch::Tensor x;
};

struct Run {
  std::string scheme, kind, primal;
  int steps = 0;
  int save_at = -1;
  std::string save_path, load_path;
};

std::shared_ptr<torch::optim::Optimizer> primal_of(const Run& run, Model& model) {
  if (run.scheme == "extragradient") {
    return std::make_shared<feasible::optim::ExtraSGD>(model.parameters(), 0.05);
  }
  if (run.primal == "adam") {
    return std::make_shared<torch::optim::Adam>(model.parameters(),
                                                torch::optim::AdamOptions(0.05));
  }
  return std::make_shared<torch::optim::SGD>(model.parameters(), torch::optim::SGDOptions(0.05));
}

std::unique_ptr<feasible::ConstrainedOptimizer> make_optimizer(const Run& run,
                                                               feasible::Problem& problem,
                                                               Model& model) {
  using namespace feasible;
  const bool penalty = run.scheme == "unconstrained";
  ConstraintOptions pairs(ConstraintKind::kInequality, 5);
  pairs.multiplier(run.kind == "indexed" ? MultiplierKind::kIndexed : MultiplierKind::kDense);
  ConstraintOptions total(ConstraintKind::kEquality, 1);
  if (penalty) {
    pairs.formulation(std::make_shared<QuadraticPenalty>()).penalty(2.0);
    total.formulation(std::make_shared<QuadraticPenalty>()).penalty(2.0);
  }
  problem.add_constraint("pairs", pairs);
  problem.add_constraint("total", total);
  auto primal = primal_of(run, model);
  if (run.scheme == "default") return make_default_optimizer(problem, primal);
  if (penalty) return std::make_unique<UnconstrainedOptimizer>(problem, std::vector{primal});
  std::shared_ptr<torch::optim::Optimizer> dual;
  if (run.scheme == "extragradient") {
    dual = std::make_shared<optim::ExtraSGD>(problem.dual_parameters(), 0.05);
  } else if (run.scheme == "primal_dual") {
    dual = std::make_shared<optim::NuPI>(problem.dual_parameters(),
                                         optim::NuPIOptions(0.05).kp(0.5).ki(1.0));
  } else {
    dual = std::make_shared<torch::optim::SGD>(problem.dual_parameters(),
                                               torch::optim::SGDOptions(0.05));
  }
  if (run.scheme == "simultaneous") {
    return std::make_unique<SimultaneousOptimizer>(problem, std::vector{primal}, dual);
  }
  if (run.scheme == "dual_primal") {
    return std::make_unique<AlternatingDualPrimalOptimizer>(problem, std::vector{primal}, dual);
  }
  if (run.scheme == "primal_dual") {
    return std::make_unique<AlternatingPrimalDualOptimizer>(problem, std::vector{primal}, dual);
  }
  if (run.scheme == "extragradient") {
    return std::make_unique<ExtragradientOptimizer>(problem, std::vector{primal}, dual);
  }
  std::cerr << "unknown scheme " << run.scheme << "\n";
  std::exit(2);
}

void print(int64_t t, const torch::Tensor& x, const feasible::Problem& problem) {
  std::printf("%lld", static_cast<long long>(t));
  const auto xs = x.detach().contiguous();
  for (int64_t i = 0; i < xs.numel(); ++i) std::printf(" %a", xs.data_ptr<double>()[i]);
  for (const auto& c : problem.constraints()) {
    if (!c.multiplier()) continue;
    const auto m = problem.multiplier_values(c).to(torch::kFloat64).contiguous();
    for (int64_t i = 0; i < m.numel(); ++i) std::printf(" %a", m.data_ptr<double>()[i]);
  }
  std::printf("\n");
}

Run parse(int argc, char** argv) {
  if (argc < 5) {
    std::cerr << "usage: " << argv[0] << " SCHEME dense|indexed sgd|adam STEPS [--save-at K "
              << "PATH] [--load PATH]\n";
    std::exit(2);
  }
  Run run;
  run.scheme = argv[1];
  run.kind = argv[2];
  run.primal = argv[3];
  run.steps = std::atoi(argv[4]);
  for (int i = 5; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--save-at" && i + 2 < argc) {
      run.save_at = std::atoi(argv[++i]);
      run.save_path = argv[++i];
    } else if (a == "--load" && i + 1 < argc) {
      run.load_path = argv[++i];
    }
  }
  return run;
}

}  // namespace

int main(int argc, char** argv) {
  const Run run = parse(argc, argv);
  torch::set_default_dtype(caffe2::TypeMeta::Make<double>());
  auto model = std::make_shared<Model>();
  feasible::Problem problem;
  auto opt = make_optimizer(run, problem, *model);
  const auto pairs = problem.constraint("pairs");
  const auto total = problem.constraint("total");
  const bool indexed = run.kind == "indexed";
  const torch::Tensor a = torch::arange(1, 11, torch::kFloat64) * 0.25;
  feasible::CheckpointContents contents;
  contents.module("model", *model).optimizer(*opt);
  if (!run.load_path.empty()) feasible::load(run.load_path, contents);
  for (int k = 0; k < run.steps; ++k) {
    const int64_t t = opt->iteration();
    opt->step([&] {
      feasible::ProblemState state(0.5 * (model->x - a).pow(2).sum());
      const torch::Tensor v = model->x.view({5, 2}).sum(1) - 1.0;
      if (indexed) {
        const torch::Tensor idx = torch::tensor({t % 5, (t + 2) % 5}, torch::kInt64);
        state.observe(pairs, feasible::ConstraintState(v.index_select(0, idx)).indices(idx));
      } else {
        state.observe(pairs, feasible::ConstraintState(v));
      }
      state.observe(total, feasible::ConstraintState((model->x.sum() - 2.0).reshape({1})));
      return state;
    });
    print(t, model->x, problem);
    if (k + 1 == run.save_at) feasible::save(run.save_path, contents);
  }
  return 0;
}
