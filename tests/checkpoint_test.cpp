// Checkpoints (feasible::save / feasible::load, include/feasible/checkpoint.h):
//  - exact resume: for every scheme x formulation x multiplier kind x dual optimizer, in float64
//    and float32, 2N steps straight equal N steps, save, rebuild everything, load, N steps
//    (bit for bit: parameters, buffers, multipliers, penalties, optimizer states, saved points);
//  - the framing (src/checkpoint_format.h): round trip, and each refusal with its message;
//  - refused files (empty, truncated, corrupted byte, wrong magic, wrong version, another
//    problem / model / optimizer) name the file and the reason and change nothing in memory;
//  - atomic writes: a save that throws mid-write, and a process killed mid-write, leave the
//    previous checkpoint intact and loadable; the next save or load removes the stale
//    temporaries of killed saves and lists them, and keeps that of a live concurrent save;
//  - the random generator option.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "../src/checkpoint_format.h"
#include "feasible/feasible.h"
#include "test_util.h"

namespace {

using feasible_test::error_of;

// ------------------------------------------------------------ files

using feasible_test::temp_dir;
using feasible_test::temp_path;
const auto* const kRemoveTempDir =
    ::testing::AddGlobalTestEnvironment(new feasible_test::RemoveTempDir);

std::string read_bytes(const std::string& path) { return feasible::detail::read_whole_file(path); }

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good());
}

// Names in temp_dir() that start with `prefix` (to find stale temporary files).
int count_files_starting_with(const std::string& prefix) {
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator(temp_dir())) {
    if (e.path().filename().string().rfind(prefix, 0) == 0) ++n;
  }
  return n;
}

// Paths (temp_dir() + "/" + name) of the files in temp_dir() whose name starts with `prefix`
// (a name or a whole path), sorted.
std::vector<std::string> files_starting_with(std::string prefix) {
  if (prefix.rfind(temp_dir() + "/", 0) == 0) prefix = prefix.substr(temp_dir().size() + 1);
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(temp_dir())) {
    const std::string name = e.path().filename().string();
    if (name.rfind(prefix, 0) == 0) out.push_back(temp_dir() + "/" + name);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// ------------------------------------------------------------ the configurations

enum class Scheme { kSimultaneous, kDualPrimal, kPrimalDual, kExtragradient, kUnconstrained };
enum class Form { kLagrangian, kAugmented, kQuadratic, kFixed };
enum class Mult { kDense, kIndexed, kIndexedSparse };
enum class Dual { kSGD, kAdam, kNuPI, kExtraSGD, kExtraAdam, kNone };
enum class Primal { kAdam, kSGDMomentum, kExtraSGD, kExtraAdam };

struct Config {
  Scheme scheme;
  Form form;
  Mult mult;
  Dual dual;
  Primal primal;
  torch::Dtype dtype;
};

std::string name_of(const Config& c) {
  const char* s[] = {"Simultaneous", "DualPrimal", "PrimalDual", "Extragradient", "Unconstrained"};
  const char* f[] = {"Lagrangian", "AugmentedLagrangian", "QuadraticPenalty", "FixedPenalty"};
  const char* m[] = {"dense", "indexed", "indexed_sparse"};
  const char* d[] = {"SGD", "Adam", "NuPI", "ExtraSGD", "ExtraAdam", "none"};
  const char* p[] = {"Adam", "SGDMomentum", "ExtraSGD", "ExtraAdam"};
  std::ostringstream os;
  os << s[int(c.scheme)] << "/" << f[int(c.form)] << "/" << m[int(c.mult)]
     << "/dual=" << d[int(c.dual)] << "/primal=" << p[int(c.primal)] << "/"
     << (c.dtype == torch::kFloat64 ? "float64" : "float32");
  return os.str();
}

// A small model: two parameters and a buffer that the closure advances (a step counter).
struct Net : torch::nn::Module {
  explicit Net(torch::Dtype dt) {
    w = register_parameter("w", torch::tensor({0.9, -0.4, 0.7}, torch::dtype(dt)));
    b = register_parameter("b", torch::tensor({0.3}, torch::dtype(dt)));
    seen = register_buffer("seen", torch::zeros({1}, torch::dtype(dt)));
  }
  torch::Tensor w, b, seen;
};

// Everything a training holds, built afresh from a Config.
struct Training {
  Config cfg;
  std::shared_ptr<Net> net;
  feasible::Problem problem;
  feasible::Constraint ineq, eq;
  std::shared_ptr<torch::optim::Optimizer> primal, dual;
  std::unique_ptr<feasible::ConstrainedOptimizer> opt;
  // Validation-based dual updates: step() observes every constraint with
  // contributes_to_dual(false), and every second step is followed by a dual_step().
  bool validation = false;

  explicit Training(const Config& c, bool validation = false)
      : cfg(c), net(std::make_shared<Net>(c.dtype)), validation(validation) {
    std::shared_ptr<feasible::Formulation> form;
    switch (c.form) {
      case Form::kLagrangian:
        form = std::make_shared<feasible::Lagrangian>();
        break;
      case Form::kAugmented:
        form = std::make_shared<feasible::AugmentedLagrangian>();
        break;
      case Form::kQuadratic:
        form = std::make_shared<feasible::QuadraticPenalty>();
        break;
      case Form::kFixed:
        form = std::make_shared<feasible::FixedPenalty>();
        break;
    }
    const bool updater = c.form == Form::kAugmented || c.form == Form::kQuadratic;
    auto options = [&](feasible::ConstraintKind kind, int64_t size, bool per_entry) {
      feasible::ConstraintOptions o(kind, size);
      o.formulation(form).dtype(c.dtype);
      if (form->uses_penalty()) o.penalty(0.5).penalty_per_entry(per_entry);
      if (c.mult != Mult::kDense) o.multiplier(feasible::MultiplierKind::kIndexed);
      if (c.mult == Mult::kIndexedSparse) o.sparse_gradient(true);
      if (updater) {
        o.penalty_updater(std::make_shared<feasible::MultiplicativePenaltyUpdater>(
            1.5, feasible::PenaltyUpdaterOptions().tolerance(1e-3).max_value(100.0)));
      }
      return o;
    };
    // Two constraints, one per kind; the inequality has a per-entry penalty, the equality a
    // scalar one.
    ineq = problem.add_constraint("rate", options(feasible::ConstraintKind::kInequality, 3, true));
    eq = problem.add_constraint("balance", options(feasible::ConstraintKind::kEquality, 3, false));

    std::vector<torch::Tensor> params = net->parameters();
    switch (c.primal) {
      case Primal::kAdam:
        primal = std::make_shared<torch::optim::Adam>(params, torch::optim::AdamOptions(0.05));
        break;
      case Primal::kSGDMomentum:
        primal = std::make_shared<torch::optim::SGD>(params,
                                                     torch::optim::SGDOptions(0.05).momentum(0.9));
        break;
      case Primal::kExtraSGD:
        primal = std::make_shared<feasible::optim::ExtraSGD>(params, 0.05);
        break;
      case Primal::kExtraAdam:
        primal = std::make_shared<feasible::optim::ExtraAdam>(params, 0.05);
        break;
    }
    const auto duals = problem.dual_parameters();
    switch (c.dual) {
      case Dual::kSGD:
        dual =
            std::make_shared<torch::optim::SGD>(duals, torch::optim::SGDOptions(0.3).momentum(0.5));
        break;
      case Dual::kAdam:
        dual = std::make_shared<torch::optim::Adam>(duals, torch::optim::AdamOptions(0.1));
        break;
      case Dual::kNuPI:
        dual = std::make_shared<feasible::optim::NuPI>(
            duals, feasible::optim::NuPIOptions(0.3).kp(0.7).ki(1.0).nu(0.4));
        break;
      case Dual::kExtraSGD:
        dual = std::make_shared<feasible::optim::ExtraSGD>(duals, 0.3);
        break;
      case Dual::kExtraAdam:
        dual = std::make_shared<feasible::optim::ExtraAdam>(duals, 0.1);
        break;
      case Dual::kNone:
        break;
    }
    const std::vector<std::shared_ptr<torch::optim::Optimizer>> primals{primal};
    switch (c.scheme) {
      case Scheme::kSimultaneous:
        opt = std::make_unique<feasible::SimultaneousOptimizer>(problem, primals, dual);
        break;
      case Scheme::kDualPrimal:
        opt = std::make_unique<feasible::AlternatingDualPrimalOptimizer>(problem, primals, dual);
        break;
      case Scheme::kPrimalDual:
        opt = std::make_unique<feasible::AlternatingPrimalDualOptimizer>(problem, primals, dual);
        break;
      case Scheme::kExtragradient:
        opt = std::make_unique<feasible::ExtragradientOptimizer>(problem, primals, dual);
        break;
      case Scheme::kUnconstrained:
        opt = std::make_unique<feasible::UnconstrainedOptimizer>(problem, primals);
        break;
    }
  }

  // f = |w - (1, 1, 1)|^2 + b^2; rate_i = w_i + b - 0.2 <= 0; balance_i = w_i - w_{i+1} - 0.1
  // (cyclic) = 0. Indexed constraints observe two entries chosen by the iteration number, so
  // a wrong step counter after load changes the trajectory.
  feasible::ProblemState closure() {
    {
      torch::NoGradGuard no_grad;
      net->seen.add_(1.0);
    }
    feasible::ProblemState st((net->w - 1.0).pow(2).sum() + net->b.pow(2).sum());
    torch::Tensor rate = net->w + net->b - 0.2;
    torch::Tensor balance = net->w - net->w.roll(-1) - 0.1;
    observe(st, rate, balance, /*training=*/true);
    return st;
  }

  // The same constraints on a validation set on which they come out worse (shifted by 0.1 and
  // 0.05), for dual_step (evaluated under no-grad; no loss).
  feasible::ProblemState validation_closure() {
    feasible::ProblemState st;
    observe(st, net->w + net->b - 0.1, net->w - net->w.roll(-1) - 0.05, /*training=*/false);
    return st;
  }

  void observe(feasible::ProblemState& st, const torch::Tensor& rate, const torch::Tensor& balance,
               bool training) {
    auto state = [&](const torch::Tensor& v) {
      return feasible::ConstraintState(v)
          .contributes_to_dual(!(training && validation))
          .contributes_to_primal(training);
    };
    if (cfg.mult == Mult::kDense) {
      st.observe(ineq, state(rate));
      st.observe(eq, state(balance));
    } else {
      const int64_t t = opt->iteration();
      torch::Tensor idx = torch::tensor({t % 3, (t + 1) % 3}, torch::kLong);
      torch::Tensor idx2 = torch::tensor({(t + 2) % 3}, torch::kLong);
      st.observe(ineq, state(rate.index_select(0, idx)).indices(idx));
      st.observe(eq, state(balance.index_select(0, idx2)).indices(idx2));
    }
  }

  void steps(int n) {
    for (int i = 0; i < n; ++i) {
      opt->step([this] { return closure(); });
      if (validation && opt->iteration() % 2 == 0) {
        opt->dual_step([this] { return validation_closure(); });
      }
    }
  }

  feasible::CheckpointContents contents(bool rng = false) {
    feasible::CheckpointContents c;
    c.module("net", *net).optimizer(*opt).random_state(rng);
    return c;
  }
};

using feasible_test::key_of;

using Named = std::vector<std::pair<std::string, torch::Tensor>>;

// feasible finds a parameter's state in any optimizer by the key LibTorch itself uses: on
// LibTorch 1.x the TensorImpl address as an ostream prints it, on 2.x the address. A torch Adam
// after one step holds state under that key for each of its parameters.
TEST(StateKey, IsLibTorchsOwnKey) {
  torch::Tensor a = torch::ones({2}, torch::kFloat64).requires_grad_(true);
  torch::Tensor b = torch::ones({3}, torch::kFloat64).requires_grad_(true);
  torch::optim::Adam adam({a, b}, torch::optim::AdamOptions(0.1));
  (a.sum() + b.sum()).backward();
  adam.step();
  for (const torch::Tensor& p : {a, b}) {
    EXPECT_NE(adam.state().find(key_of(p)), adam.state().end());
    if constexpr (std::is_same<decltype(key_of(p)), std::string>::value) {
      std::ostringstream os;
      os << p.unsafeGetTensorImpl();
      EXPECT_EQ(key_of(p), os.str());
    }
  }
}

// Every tensor of an optimizer's state, by parameter position, plus the saved point.
void optimizer_state(const torch::optim::Optimizer& o, const std::string& label, Named& out) {
  size_t k = 0;
  for (const auto& g : o.param_groups()) {
    out.emplace_back(label + " lr", torch::tensor(g.options().get_lr(), torch::kFloat64));
    for (const auto& p : g.params()) {
      const std::string l = label + " param " + std::to_string(k++);
      auto it = o.state().find(key_of(p));
      if (it == o.state().end()) {
        out.emplace_back(l + " no state", torch::zeros({0}));
        continue;
      }
      const auto* st = it->second.get();
      if (auto* s = dynamic_cast<const torch::optim::SGDParamState*>(st)) {
        out.emplace_back(l + " momentum", s->momentum_buffer());
      } else if (auto* s = dynamic_cast<const torch::optim::AdamParamState*>(st)) {
        out.emplace_back(l + " step", torch::tensor(s->step()));
        out.emplace_back(l + " exp_avg", s->exp_avg());
        out.emplace_back(l + " exp_avg_sq", s->exp_avg_sq());
      } else if (auto* s = dynamic_cast<const feasible::optim::NuPIParamState*>(st)) {
        out.emplace_back(l + " step", torch::tensor(s->step()));
        out.emplace_back(l + " xi", s->xi());
        out.emplace_back(l + " seen", s->seen());
      } else if (auto* s = dynamic_cast<const feasible::optim::ExtraAdamParamState*>(st)) {
        out.emplace_back(l + " step", torch::tensor(s->step()));
        out.emplace_back(l + " exp_avg", s->exp_avg());
        out.emplace_back(l + " exp_avg_sq", s->exp_avg_sq());
      } else {
        ADD_FAILURE() << l << ": unexpected state type";
      }
    }
  }
  if (auto* e = dynamic_cast<const feasible::optim::ExtrapolationOptimizer*>(&o)) {
    for (size_t i = 0; i < e->saved_point().size(); ++i) {
      out.emplace_back(label + " saved point " + std::to_string(i), e->saved_point()[i]);
    }
  }
}

// The complete state of a run, named.
Named snapshot(const Training& r) {
  Named out;
  for (const auto& p : r.net->named_parameters()) out.emplace_back(p.key(), p.value().detach());
  for (const auto& b : r.net->named_buffers()) out.emplace_back(b.key(), b.value());
  for (const auto& c : r.problem.constraints()) {
    if (c.multiplier())
      out.emplace_back(c.name() + " multiplier", r.problem.multiplier_values(c.name()));
    if (c.penalty()) out.emplace_back(c.name() + " penalty", r.problem.penalty_values(c.name()));
  }
  optimizer_state(*r.primal, "primal", out);
  if (r.dual) optimizer_state(*r.dual, "dual", out);
  out.emplace_back("iteration", torch::tensor(r.opt->iteration()));
  for (auto& e : out) e.second = e.second.detach().clone();
  return out;
}

// Bit-for-bit equality of two snapshots (names, dtypes, shapes, values).
::testing::AssertionResult same(const Named& a, const Named& b) {
  if (a.size() != b.size()) {
    return ::testing::AssertionFailure() << a.size() << " vs " << b.size() << " entries";
  }
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].first != b[i].first) {
      return ::testing::AssertionFailure()
             << "entry " << i << ": " << a[i].first << " vs " << b[i].first;
    }
    const auto& x = a[i].second;
    const auto& y = b[i].second;
    if (x.scalar_type() != y.scalar_type() || !x.sizes().equals(y.sizes()) || !torch::equal(x, y)) {
      return ::testing::AssertionFailure() << a[i].first << " differs: " << x << " vs " << y;
    }
  }
  return ::testing::AssertionSuccess();
}

std::vector<Config> matrix() {
  std::vector<Config> out;
  for (torch::Dtype dt : {torch::kFloat64, torch::kFloat32}) {
    for (Scheme s : {Scheme::kSimultaneous, Scheme::kDualPrimal, Scheme::kPrimalDual}) {
      for (Form f : {Form::kLagrangian, Form::kAugmented}) {
        for (Mult m : {Mult::kDense, Mult::kIndexed}) {
          for (Dual d : {Dual::kSGD, Dual::kAdam, Dual::kNuPI}) {
            out.push_back({s, f, m, d, Primal::kAdam, dt});
          }
        }
        // NuPI on sparse gradients (only the observed entries' memory moves), SGD-momentum primal.
        out.push_back({s, f, Mult::kIndexedSparse, Dual::kNuPI, Primal::kSGDMomentum, dt});
      }
    }
    for (Form f : {Form::kLagrangian, Form::kAugmented}) {
      for (Mult m : {Mult::kDense, Mult::kIndexed}) {
        out.push_back({Scheme::kExtragradient, f, m, Dual::kExtraSGD, Primal::kExtraSGD, dt});
        out.push_back({Scheme::kExtragradient, f, m, Dual::kExtraAdam, Primal::kExtraAdam, dt});
      }
    }
    for (Form f : {Form::kQuadratic, Form::kFixed}) {
      for (Mult m : {Mult::kDense, Mult::kIndexed}) {
        for (Primal p : {Primal::kAdam, Primal::kSGDMomentum}) {
          out.push_back({Scheme::kUnconstrained, f, m, Dual::kNone, p, dt});
        }
      }
    }
  }
  return out;
}

constexpr int kN = 4;  // steps before and after the checkpoint

// One configuration: 2N steps straight against N steps, save, rebuild, load, N steps.
void expect_resume_exact(const Config& cfg, bool validation = false) {
  const std::string path = temp_path("resume.ckpt");

  Training straight(cfg, validation);
  straight.steps(2 * kN);
  const Named want = snapshot(straight);

  Named at_save;
  {
    Training first(cfg, validation);
    first.steps(kN);
    feasible::save(path, first.contents());
    at_save = snapshot(first);
  }
  Training resumed(cfg, validation);
  // The fresh objects start elsewhere (so the load below has something to do).
  ASSERT_FALSE(same(snapshot(resumed), at_save));
  const feasible::CheckpointInfo info = feasible::load(path, resumed.contents());
  EXPECT_EQ(info.iteration, kN);
  EXPECT_EQ(info.constraints, (std::vector<std::string>{"rate", "balance"}));
  EXPECT_TRUE(same(snapshot(resumed), at_save)) << "state right after load";
  resumed.steps(kN);
  EXPECT_TRUE(same(snapshot(resumed), want)) << "state after resuming";
  // The run moved the multipliers (or penalties), so equality is not trivial.
  for (const auto& c : resumed.problem.constraints()) {
    if (c.multiplier()) {
      EXPECT_GT(resumed.problem.multiplier_values(c.name()).abs().sum().item<double>(), 0.0);
    }
  }
}

// One test per scheme (a process each under CTest), looping over that scheme's configurations
// (formulation x multiplier kind x dual optimizer x primal optimizer x dtype).
class ResumeTest : public ::testing::TestWithParam<Scheme> {};

std::string scheme_test_name(const ::testing::TestParamInfo<Scheme>& info) {
  static const char* const names[] = {"Simultaneous", "DualPrimal", "PrimalDual", "Extragradient",
                                      "Unconstrained"};
  return names[static_cast<int>(info.param)];
}

TEST_P(ResumeTest, EveryConfigurationResumesBitForBit) {
  int count = 0;
  for (const Config& cfg : matrix()) {
    if (cfg.scheme != GetParam()) continue;
    SCOPED_TRACE(name_of(cfg));
    expect_resume_exact(cfg);
    ++count;
  }
  EXPECT_GT(count, 0);
  std::printf("%d configurations resumed\n", count);
}

INSTANTIATE_TEST_SUITE_P(AllSchemes, ResumeTest,
                         ::testing::Values(Scheme::kSimultaneous, Scheme::kDualPrimal,
                                           Scheme::kPrimalDual, Scheme::kExtragradient,
                                           Scheme::kUnconstrained),
                         scheme_test_name);

// Validation-based dual updates (ConstrainedOptimizer::dual_step, every second step, the last
// one right before the save; step() with contributes_to_dual(false)) leave nothing outside the
// checkpoint: every configuration with a dual optimizer resumes bit for bit (dual_step changes
// the multipliers, the dual optimizer's state and the penalties, all of which are saved, and
// not the step counter).
TEST(Checkpoint, ValidationDualStepsResumeBitForBit) {
  int count = 0;
  for (const Config& cfg : matrix()) {
    if (cfg.dual == Dual::kNone) continue;
    SCOPED_TRACE(name_of(cfg));
    expect_resume_exact(cfg, /*validation=*/true);
    ++count;
  }
  EXPECT_GT(count, 0);
  std::printf("%d configurations resumed with dual_step\n", count);
}

// Negative control: resuming with the model only (fresh optimizer states, multipliers,
// counter) does not reproduce the run, so the equality above depends on the restored state.
TEST(Checkpoint, ModelOnlyResumeDiffers) {
  const Config cfg{Scheme::kSimultaneous, Form::kAugmented, Mult::kIndexed,
                   Dual::kAdam,           Primal::kAdam,    torch::kFloat64};
  const std::string path = temp_path("model_only.ckpt");
  Training straight(cfg);
  straight.steps(2 * kN);
  Training first(cfg);
  first.steps(kN);
  feasible::save(path, first.contents());
  Training resumed(cfg);
  feasible::CheckpointContents model_only;
  model_only.module("net", *resumed.net);
  const auto info = feasible::load(path, model_only);
  EXPECT_TRUE(info.has_optimizer);
  EXPECT_TRUE(torch::equal(resumed.net->w, first.net->w));
  resumed.steps(kN);
  EXPECT_FALSE(same(snapshot(resumed), snapshot(straight)));
}

// Implicit multipliers: the multiplier model's parameters are dual parameters; they and the
// dual Adam's moments are restored, so the resumed run is again bit-for-bit the straight one.
struct ImplicitTraining {
  std::shared_ptr<Net> net = std::make_shared<Net>(torch::kFloat64);
  torch::nn::Linear lambda_model{torch::nn::LinearOptions(2, 1)};
  feasible::Problem problem;
  feasible::Constraint c;
  std::shared_ptr<torch::optim::Optimizer> primal, dual;
  std::unique_ptr<feasible::SimultaneousOptimizer> opt;

  explicit ImplicitTraining(uint64_t seed) {
    torch::manual_seed(seed);  // a different initial multiplier model per seed
    lambda_model = torch::nn::Linear(torch::nn::LinearOptions(2, 1));
    lambda_model->to(torch::kFloat64);
    c = problem.add_constraint("balance",
                               feasible::ConstraintOptions(feasible::ConstraintKind::kEquality, 3)
                                   .multiplier(feasible::MultiplierKind::kImplicit)
                                   .implicit_model(torch::nn::AnyModule(lambda_model))
                                   .dtype(torch::kFloat64));
    primal =
        std::make_shared<torch::optim::Adam>(net->parameters(), torch::optim::AdamOptions(0.05));
    dual = std::make_shared<torch::optim::Adam>(problem.dual_parameters(),
                                                torch::optim::AdamOptions(0.1));
    opt = std::make_unique<feasible::SimultaneousOptimizer>(
        problem, std::vector<std::shared_ptr<torch::optim::Optimizer>>{primal}, dual);
  }
  void steps(int n) {
    for (int i = 0; i < n; ++i) {
      opt->step([this] {
        feasible::ProblemState st((net->w - 1.0).pow(2).sum() + net->b.pow(2).sum());
        torch::Tensor feats = torch::stack({net->w.detach(), torch::arange(3, torch::kFloat64)}, 1);
        st.observe(c, feasible::ConstraintState(net->w - net->w.roll(-1) - 0.1).features(feats));
        return st;
      });
    }
  }
  Named state() const {
    Named out;
    for (const auto& p : net->parameters()) out.emplace_back("net", p.detach().clone());
    for (const auto& p : lambda_model->parameters()) out.emplace_back("lambda", p.detach().clone());
    optimizer_state(*primal, "primal", out);
    optimizer_state(*dual, "dual", out);
    return out;
  }
  feasible::CheckpointContents contents() {
    feasible::CheckpointContents cc;
    cc.module("net", *net).optimizer(*opt);
    return cc;
  }
};

TEST(Checkpoint, ImplicitMultiplierResumesExactly) {
  const std::string path = temp_path("implicit.ckpt");
  ImplicitTraining straight(7);
  straight.steps(2 * kN);
  ImplicitTraining first(7);
  first.steps(kN);
  feasible::save(path, first.contents());
  ImplicitTraining resumed(8);
  ASSERT_FALSE(same(resumed.state(), first.state()));
  feasible::load(path, resumed.contents());
  EXPECT_TRUE(same(resumed.state(), first.state()));
  resumed.steps(kN);
  EXPECT_TRUE(same(resumed.state(), straight.state()));
}

// An extrapolation point pending at save time (between extrapolate() and step()) is restored.
TEST(Checkpoint, PendingExtrapolationPointIsRestored) {
  const Config cfg{Scheme::kExtragradient, Form::kLagrangian,  Mult::kDense,
                   Dual::kExtraAdam,       Primal::kExtraAdam, torch::kFloat64};
  const std::string path = temp_path("pending.ckpt");
  auto half_step = [](Training& r) {
    r.primal->zero_grad();
    auto st = r.closure();
    st.loss.backward();
    static_cast<feasible::optim::ExtrapolationOptimizer&>(*r.primal).extrapolate();
  };
  Training a(cfg);
  a.steps(2);
  half_step(a);
  ASSERT_TRUE(static_cast<feasible::optim::ExtrapolationOptimizer&>(*a.primal).extrapolated());
  feasible::save(path, a.contents());
  Training b(cfg);
  feasible::load(path, b.contents());
  auto& eb = static_cast<feasible::optim::ExtrapolationOptimizer&>(*b.primal);
  ASSERT_TRUE(eb.extrapolated());
  EXPECT_TRUE(same(snapshot(b), snapshot(a)));
  // Completing the pending step from the same gradients lands on the same point.
  for (Training* r : {&a, &b}) {
    r->primal->zero_grad();
    r->closure().loss.backward();
    r->primal->step();
  }
  EXPECT_TRUE(torch::equal(a.net->w, b.net->w));
  EXPECT_FALSE(eb.extrapolated());
}

// ------------------------------------------------------------ refused files

const Config kBase{Scheme::kSimultaneous, Form::kAugmented, Mult::kDense,
                   Dual::kNuPI,           Primal::kAdam,    torch::kFloat64};

// Saves a checkpoint of kBase after 3 steps at `path`; returns its bytes.
std::string make_checkpoint(const std::string& path) {
  Training r(kBase);
  r.steps(3);
  feasible::save(path, r.contents());
  return read_bytes(path);
}

// Expects load(path) into a fresh-then-stepped run to throw a message that names the file and
// contains every `parts`, and to leave the run's state unchanged.
void expect_refused(const std::string& path, const std::vector<std::string>& parts,
                    const Config& cfg = kBase) {
  Training r(cfg);
  r.steps(1);
  const Named before = snapshot(r);
  const std::string msg = error_of([&] { feasible::load(path, r.contents()); });
  EXPECT_NE(msg.find("'" + path + "'"), std::string::npos) << msg;
  for (const auto& p : parts)
    EXPECT_NE(msg.find(p), std::string::npos) << "want: " << p << "\ngot: " << msg;
  EXPECT_TRUE(same(snapshot(r), before)) << "memory changed by a refused load";
}

TEST(CheckpointRefused, Empty) {
  const std::string path = temp_path("empty.ckpt");
  write_bytes(path, "");
  expect_refused(path, {"empty"});
}

TEST(CheckpointRefused, Missing) {
  expect_refused(temp_path("does_not_exist.ckpt"), {"cannot open"});
}

TEST(CheckpointRefused, Truncated) {
  const std::string path = temp_path("truncated.ckpt");
  const std::string good = make_checkpoint(path);
  write_bytes(path, good.substr(0, good.size() - 100));
  expect_refused(path, {"truncated", std::to_string(good.size() - 24) + " payload bytes",
                        "only " + std::to_string(good.size() - 124)});
  write_bytes(path, good.substr(0, 10));  // inside the header
  expect_refused(path, {"truncated", "24-byte header"});
}

TEST(CheckpointRefused, CorruptedByte) {
  const std::string path = temp_path("corrupted.ckpt");
  std::string bytes = make_checkpoint(path);
  bytes[bytes.size() / 2] ^= 0x10;
  write_bytes(path, bytes);
  expect_refused(path, {"corrupted", "checksum mismatch"});
}

TEST(CheckpointRefused, TrailingBytes) {
  const std::string path = temp_path("trailing.ckpt");
  write_bytes(path, make_checkpoint(path) + "xyz");
  expect_refused(path, {"corrupted", "3 unexpected bytes"});
}

TEST(CheckpointRefused, WrongMagic) {
  const std::string path = temp_path("magic.ckpt");
  std::string bytes = make_checkpoint(path);
  bytes[0] = 'X';
  write_bytes(path, bytes);
  expect_refused(path, {"not a feasible checkpoint", "magic"});
  write_bytes(path, "PK\x03\x04 a zip file, e.g. from torch::save");
  expect_refused(path, {"not a feasible checkpoint"});
}

TEST(CheckpointRefused, WrongVersion) {
  const std::string path = temp_path("version.ckpt");
  std::string bytes = make_checkpoint(path);
  bytes[8] = 7;  // little-endian version field at offset 8
  write_bytes(path, bytes);
  expect_refused(path, {"unsupported checkpoint format version 7", "reads version 1"});
}

TEST(CheckpointRefused, DifferentProblemListsEveryDifference) {
  const std::string path = temp_path("problem.ckpt");
  make_checkpoint(path);
  // Another formulation: both constraints differ (AugmentedLagrangian -> Lagrangian, and the
  // penalty and its updater disappear).
  Config other = kBase;
  other.form = Form::kLagrangian;
  expect_refused(path,
                 {"differences", "constraint 'rate', formulation: AugmentedLagrangian(",
                  "constraint 'balance', formulation", "constraint 'rate', penalty: per entry",
                  "penalty updater: multiplicative(growth=1.5"},
                 other);
  // Another multiplier kind.
  other = kBase;
  other.mult = Mult::kIndexed;
  expect_refused(path, {"constraint 'rate', multiplier: dense", "indexed(lazy=false"}, other);
  // Another dtype.
  other = kBase;
  other.dtype = torch::kFloat32;
  expect_refused(path,
                 {"module 'net', parameter w: [3] Double in the checkpoint, [3] Float here",
                  "constraint 'rate', penalty"},
                 other);
}

// A problem with other names, sizes and kinds, built by hand.
TEST(CheckpointRefused, DifferentNamesSizesKinds) {
  const std::string path = temp_path("names.ckpt");
  make_checkpoint(path);
  auto net = std::make_shared<Net>(torch::kFloat64);
  feasible::Problem p;
  auto form = std::make_shared<feasible::AugmentedLagrangian>();
  auto upd = std::make_shared<feasible::MultiplicativePenaltyUpdater>(
      1.5, feasible::PenaltyUpdaterOptions().tolerance(1e-3).max_value(100.0));
  // "rate": equality of size 2 instead of inequality of size 3; "balance" renamed "other".
  p.add_constraint("rate", feasible::ConstraintOptions(feasible::ConstraintKind::kEquality, 2)
                               .formulation(form)
                               .penalty(0.5)
                               .penalty_per_entry(true)
                               .penalty_updater(upd)
                               .dtype(torch::kFloat64));
  p.add_constraint("other", feasible::ConstraintOptions(feasible::ConstraintKind::kEquality, 3)
                                .formulation(form)
                                .penalty(0.5)
                                .penalty_updater(upd)
                                .dtype(torch::kFloat64));
  auto primal =
      std::make_shared<torch::optim::Adam>(net->parameters(), torch::optim::AdamOptions(0.05));
  auto dual =
      std::make_shared<torch::optim::SGD>(p.dual_parameters(), torch::optim::SGDOptions(0.1));
  feasible::SimultaneousOptimizer opt(p, {primal}, dual);
  feasible::CheckpointContents c;
  c.module("net", *net).optimizer(opt);
  const torch::Tensor w = net->w.detach().clone();
  const std::string msg = error_of([&] { feasible::load(path, c); });
  for (const std::string& part :
       {std::string("'") + path + "'", std::string("missing here: [balance]"),
        std::string("not in the checkpoint: [other]"),
        std::string("constraint 'rate', kind: inequality in the checkpoint, equality here"),
        std::string("constraint 'rate', size: 3 in the checkpoint, 2 here"),
        std::string("dual optimizer: feasible::optim::NuPI in the checkpoint, "
                    "torch::optim::SGD here")}) {
    EXPECT_NE(msg.find(part), std::string::npos) << "want: " << part << "\ngot: " << msg;
  }
  EXPECT_TRUE(torch::equal(net->w, w));
  EXPECT_EQ(opt.iteration(), 0);
}

TEST(CheckpointRefused, DifferentModelsAndScheme) {
  const std::string path = temp_path("models.ckpt");
  make_checkpoint(path);
  Config other = kBase;
  other.scheme = Scheme::kDualPrimal;
  expect_refused(path,
                 {"scheme: feasible::SimultaneousOptimizer in the checkpoint, "
                  "feasible::AlternatingDualPrimalOptimizer here"},
                 other);
  // A different module name.
  Training r(kBase);
  feasible::CheckpointContents c;
  c.module("model", *r.net).optimizer(*r.opt);
  const std::string msg = error_of([&] { feasible::load(path, c); });
  EXPECT_NE(msg.find("modules: the checkpoint holds [net], given [model]"), std::string::npos)
      << msg;
  // Asking for a random state that was not saved.
  const std::string msg2 = error_of([&] { feasible::load(path, r.contents(/*rng=*/true)); });
  EXPECT_NE(msg2.find("random generator state: requested"), std::string::npos) << msg2;
  EXPECT_EQ(r.opt->iteration(), 0);
}

// ------------------------------------------------------------ save errors and atomicity

TEST(CheckpointSave, UnsupportedOptimizerAndUncoveredParameterAreRefused) {
  const std::string path = temp_path("unsupported.ckpt");
  auto net = std::make_shared<Net>(torch::kFloat64);
  feasible::Problem p;
  p.add_constraint("c", feasible::ConstraintOptions().dtype(torch::kFloat64));
  auto primal = std::make_shared<torch::optim::LBFGS>(net->parameters());
  auto dual =
      std::make_shared<torch::optim::SGD>(p.dual_parameters(), torch::optim::SGDOptions(0.1));
  feasible::SimultaneousOptimizer opt(p, {primal}, dual);
  feasible::CheckpointContents c;
  c.module("net", *net).optimizer(opt);
  std::string msg = error_of([&] { feasible::save(path, c); });
  EXPECT_NE(msg.find("cannot save checkpoint '" + path + "'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("primal optimizer 0 has type torch::optim::LBFGS"), std::string::npos) << msg;
  // Parameters outside every module given.
  feasible::CheckpointContents none;
  none.optimizer(opt);
  msg = error_of([&] { feasible::save(path, none); });
  EXPECT_NE(msg.find("primal optimizer 0, group 0, parameter 1 belongs to none of the modules"),
            std::string::npos)
      << msg;
  EXPECT_FALSE(std::filesystem::exists(path));
  // A directory that does not exist: the message names the file.
  const std::string bad = temp_dir() + "/no/such/dir/x.ckpt";
  msg = error_of([&] { feasible::save(bad, c); });
  EXPECT_NE(msg.find(bad), std::string::npos) << msg;
}

TEST(CheckpointSave, ThrowDuringWriteLeavesOldFileAndNoTemporary) {
  const std::string path = temp_path("throwing.ckpt");
  const std::string old = make_checkpoint(path);
  const std::string other(200000, 'z');  // 4 chunks of 64 KiB
  size_t calls = 0;
  EXPECT_THROW(feasible::detail::write_file_atomically(path, other,
                                                       [&](size_t written) {
                                                         ++calls;
                                                         if (written >= 65536)
                                                           throw std::runtime_error("disk full");
                                                       }),
               std::runtime_error);
  EXPECT_EQ(calls, 1u);
  EXPECT_EQ(read_bytes(path), old);
  EXPECT_EQ(count_files_starting_with("throwing.ckpt.tmp"), 0);
  Training r(kBase);
  feasible::load(path, r.contents());
  EXPECT_EQ(r.opt->iteration(), 3);
}

TEST(CheckpointSave, ProcessKilledDuringSaveLeavesOldCheckpointLoadable) {
  const std::string path = temp_path("killed.ckpt");
  const std::string old = make_checkpoint(path);
  // A bigger, different checkpoint to write, killed by SIGKILL after its first chunk.
  Training big(kBase);
  big.steps(5);
  const std::string other_path = temp_path("killed_other.ckpt");
  feasible::save(other_path, big.contents());
  const std::string bytes = read_bytes(other_path) + std::string(300000, '\0');
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {  // the child writes raw syscalls only and kills itself half-way
    feasible::detail::write_file_atomically(path, bytes, [](size_t) { ::raise(SIGKILL); });
    ::_exit(0);  // not reached
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
  EXPECT_EQ(read_bytes(path), old);
  // The half-written temporary file is left behind, and is never read; the next load removes
  // it and says so.
  const std::string left = path + ".tmp." + std::to_string(pid) + ".";
  ASSERT_EQ(files_starting_with("killed.ckpt.tmp").size(), 1u);
  EXPECT_EQ(files_starting_with("killed.ckpt.tmp")[0].rfind(left, 0), 0u);
  Training r(kBase);
  const auto loaded = feasible::load(path, r.contents());
  EXPECT_EQ(r.opt->iteration(), 3);
  ASSERT_EQ(loaded.removed_temporaries.size(), 1u);
  EXPECT_EQ(loaded.removed_temporaries[0].rfind(left, 0), 0u) << loaded.removed_temporaries[0];
  EXPECT_EQ(count_files_starting_with("killed.ckpt.tmp"), 0);
  // A later save succeeds, replaces the checkpoint and has nothing left to remove.
  EXPECT_TRUE(feasible::save(path, big.contents()).removed_temporaries.empty());
  Training r2(kBase);
  EXPECT_EQ(feasible::load(path, r2.contents()).iteration, 5);
}

// Kills (SIGKILL) and reaps a child process when it goes out of scope, so that a failed
// assertion leaves no paused child behind.
struct ChildGuard {
  pid_t pid = -1;
  ~ChildGuard() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
};

// Forks a child that starts writing `bytes` to `path` atomically and, after the first chunk,
// either kills itself (SIGKILL) or, with `stay`, tells the parent through a pipe and pauses
// forever (a live concurrent save). Returns the child's pid once it is dead or paused.
pid_t fork_interrupted_save(const std::string& path, const std::string& bytes, bool stay) {
  int fds[2];
  if (::pipe(fds) != 0) return -1;
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    const int out = fds[1];
    feasible::detail::write_file_atomically(path, bytes, [stay, out](size_t) {
      if (!stay) ::raise(SIGKILL);
      (void)!::write(out, "x", 1);
      for (;;) ::pause();
    });
    ::_exit(0);  // not reached
  }
  ::close(fds[1]);
  if (pid > 0 && stay) {
    char c = 0;
    if (::read(fds[0], &c, 1) != 1) return -1;
  } else if (pid > 0) {
    int status = 0;
    if (::waitpid(pid, &status, 0) != pid || !WIFSIGNALED(status)) return -1;
  }
  ::close(fds[0]);
  return pid;
}

TEST(CheckpointSave, StaleTemporariesAreRemovedAndListedLiveSaveKept) {
  const std::string path = temp_path("stale.ckpt");
  make_checkpoint(path);
  const std::string bytes(200000, 'y');  // 4 chunks of 64 KiB
  ChildGuard live;
  live.pid = fork_interrupted_save(path, bytes, /*stay=*/true);
  ASSERT_GT(live.pid, 0);
  const pid_t dead = fork_interrupted_save(path, bytes, /*stay=*/false);
  ASSERT_GT(dead, 0);
  const auto tmp = [&](long pid, const std::string& n) {
    return path + ".tmp." + std::to_string(pid) + "." + n;
  };
  const std::vector<std::string> live_file = files_starting_with(tmp(live.pid, ""));
  const std::vector<std::string> dead_file = files_starting_with(tmp(dead, ""));
  ASSERT_EQ(live_file.size(), 1u);
  ASSERT_EQ(dead_file.size(), 1u);
  // A live pid (the test runner's parent) but unmodified for two hours; this process's own pid
  // (an earlier process had it); names of another form or of another target, left alone.
  const std::string aged = tmp(::getppid(), "11");
  const std::string own = tmp(::getpid(), "12");
  const std::vector<std::string> others = {
      path + ".tmp.x.1", path + ".tmp." + std::to_string(dead), temp_path("stale.ckpt2.tmp.1.1"),
      temp_path("other.ckpt.tmp.") + std::to_string(dead) + ".1"};
  for (const auto& f : others) write_bytes(f, "junk");
  write_bytes(aged, "junk");
  write_bytes(own, "junk");
  struct timespec times[2];
  times[0].tv_sec = times[1].tv_sec = ::time(nullptr) - 7200;
  times[0].tv_nsec = times[1].tv_nsec = 0;
  ASSERT_EQ(::utimensat(AT_FDCWD, aged.c_str(), times, 0), 0);

  Training run(kBase);
  run.steps(3);
  std::vector<std::string> removed = feasible::save(path, run.contents()).removed_temporaries;
  std::sort(removed.begin(), removed.end());
  std::vector<std::string> expected = {dead_file[0], aged, own};
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(removed, expected);
  EXPECT_TRUE(std::filesystem::exists(live_file[0]));  // a concurrent save in progress
  for (const auto& f : others) EXPECT_TRUE(std::filesystem::exists(f)) << f;
  for (const auto& f : expected) EXPECT_FALSE(std::filesystem::exists(f)) << f;

  // Once the concurrent writer is killed, the next save removes its temporary too.
  ::kill(live.pid, SIGKILL);
  ASSERT_EQ(::waitpid(live.pid, nullptr, 0), live.pid);
  live.pid = -1;
  EXPECT_EQ(feasible::save(path, run.contents()).removed_temporaries, live_file);
  EXPECT_FALSE(std::filesystem::exists(live_file[0]));
  Training r(kBase);
  const auto info = feasible::load(path, r.contents());
  EXPECT_TRUE(info.removed_temporaries.empty());
  EXPECT_EQ(info.iteration, 3);
}

TEST(CheckpointSave, SaveReplacesAndKeepsPermissions) {
  const std::string path = temp_path("replace.ckpt");
  make_checkpoint(path);
  Training r(kBase);
  r.steps(5);
  feasible::save(path, r.contents());
  Training r2(kBase);
  EXPECT_EQ(feasible::load(path, r2.contents()).iteration, 5);
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  const mode_t mask = ::umask(0);
  ::umask(mask);
  EXPECT_EQ(st.st_mode & 0777, 0666 & ~mask);
}

// ------------------------------------------------------------ framing

TEST(CheckpointFormat, RoundTripAndLayout) {
  using namespace feasible::detail;
  const std::string payload("hello\0world", 11);
  const std::string bytes = encode_checkpoint(payload);
  ASSERT_EQ(bytes.size(), 24u + 11u);
  EXPECT_EQ(bytes.substr(0, 8), "FEASCKPT");
  EXPECT_EQ(static_cast<unsigned char>(bytes[8]), 1);    // version 1, little-endian
  EXPECT_EQ(static_cast<unsigned char>(bytes[12]), 11);  // payload size
  // CRC-32 of "123456789" is the standard check value 0xCBF43926.
  EXPECT_EQ(checkpoint_crc32("123456789"), 0xCBF43926u);
  const uint32_t crc = checkpoint_crc32(payload);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(static_cast<unsigned char>(bytes[20 + i]), (crc >> (8 * i)) & 0xFF);
  }
  const DecodedCheckpoint d = decode_checkpoint(bytes);
  ASSERT_TRUE(d.ok) << d.error;
  EXPECT_EQ(d.payload, payload);
  EXPECT_EQ(d.version, 1u);
  // Every prefix is refused without reading out of bounds; every single-bit flip too.
  for (size_t n = 0; n < bytes.size(); ++n) EXPECT_FALSE(decode_checkpoint(bytes.substr(0, n)).ok);
  for (size_t i = 0; i < bytes.size(); ++i) {
    std::string b = bytes;
    b[i] ^= 0x01;
    EXPECT_FALSE(decode_checkpoint(b).ok) << "flip at " << i;
  }
  // A huge announced size is a truncation, not an allocation.
  std::string huge = bytes;
  for (int i = 12; i < 20; ++i) huge[i] = static_cast<char>(0xFF);
  const auto h = decode_checkpoint(huge);
  EXPECT_FALSE(h.ok);
  EXPECT_NE(h.error.find("truncated"), std::string::npos) << h.error;
}

// ------------------------------------------------------------ random generator

TEST(Checkpoint, RandomStateIsSavedAndRestoredOnRequest) {
  const std::string path = temp_path("rng.ckpt");
  Training r(kBase);
  torch::manual_seed(1234);
  torch::rand({5});
  feasible::save(path, r.contents(/*rng=*/true));
  const torch::Tensor expected = torch::rand({8}, torch::kFloat64);
  torch::manual_seed(99);
  Training r2(kBase);
  // Without the option the generator is left alone.
  feasible::load(path, r2.contents(/*rng=*/false));
  const torch::Tensor unrelated = torch::rand({8}, torch::kFloat64);
  EXPECT_FALSE(torch::equal(unrelated, expected));
  const auto info = feasible::load(path, r2.contents(/*rng=*/true));
  EXPECT_TRUE(info.has_random_state);
  EXPECT_TRUE(torch::equal(torch::rand({8}, torch::kFloat64), expected));
}

}  // namespace
