// NuPI, ExtraSGD and ExtraAdam against hand-written recursions (plain double arithmetic in this
// file). NuPI: dense updates with scalar and per-entry gains in both first-step modes (kSGD and
// kZero); the special cases Kp = 0, Ki = 1 (== torch::optim::SGD step for step) and
// Kp = Ki = 1, nu = 0 (the optimistic gradient 2 e_t - e_{t-1}); sparse COO gradients that
// touch only the listed entries and keep a per-entry "seen" mask (an entry first seen late takes
// its own SGD start); state inspection through state_of; and an indexed constraint with
// sparse_gradient(true) under a NuPI dual optimizer, whose unobserved entries do not move.
// ExtraSGD and ExtraAdam: extrapolate() + step() against the hand formulas (Adam written out).
#include <feasible/feasible.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <utility>
#include <vector>

#include "test_util.h"

namespace {

using feasible_test::dvec;
using feasible_test::to_vec;

using feasible::optim::NuPI;
using feasible::optim::NuPIInit;
using feasible::optim::NuPIOptions;

// Every value here is O(1) and results from tens of float64 operations: 1e-12 leaves four
// orders of magnitude over the rounding.
constexpr double kTol = 1e-12;

void expect_vec_near(const torch::Tensor& got, const std::vector<double>& want, double tol,
                     const char* what) {
  const auto g = to_vec(got);
  ASSERT_EQ(g.size(), want.size()) << what;
  for (size_t i = 0; i < want.size(); ++i)
    EXPECT_NEAR(g[i], want[i], tol) << what << " [" << i << "]";
}

// The nuPI recursion, entry by entry (docs/design.md, section 5.3, and optim/nupi.h):
//   xi_prev = e (SGD start, entry not seen before) or the stored xi (else; 0 initially)
//   xi      = nu xi_prev + (1 - nu) e
//   theta  -= lr (ki e + kp (xi - xi_prev))
struct HandNuPI {
  double lr, nu;
  std::vector<double> kp, ki;
  bool sgd_start;
  std::vector<double> theta, xi;
  std::vector<bool> seen;

  HandNuPI(std::vector<double> theta0, double lr_, double nu_, std::vector<double> kp_,
           std::vector<double> ki_, bool sgd_start_)
      : lr(lr_),
        nu(nu_),
        kp(std::move(kp_)),
        ki(std::move(ki_)),
        sgd_start(sgd_start_),
        theta(std::move(theta0)),
        xi(theta.size(), 0.0),
        seen(theta.size(), false) {}

  void update(size_t i, double e) {
    const double xi_prev = (sgd_start && !seen[i]) ? e : xi[i];
    const double xi_new = nu * xi_prev + (1.0 - nu) * e;
    theta[i] -= lr * (ki[i] * e + kp[i] * (xi_new - xi_prev));
    xi[i] = xi_new;
    seen[i] = true;
  }
};

// Errors (gradients) for five dense steps of a 3-entry parameter: signs and sizes vary, one 0.
const std::vector<std::vector<double>> kErrors = {
    {0.5, -1.0, 0.25}, {0.3, -0.2, 1.5}, {-0.7, 0.4, 0.0}, {1.1, 0.9, -0.6}, {-0.2, -0.5, 0.8}};
const std::vector<double> kTheta0 = {1.0, -2.0, 0.5};

void run_dense(const NuPIOptions& options, const std::vector<double>& kp,
               const std::vector<double>& ki) {
  torch::Tensor p = dvec(kTheta0).requires_grad_();
  NuPI opt(std::vector<torch::Tensor>{p}, options);
  HandNuPI hand(kTheta0, options.lr(), options.nu(), kp, ki, options.init() == NuPIInit::kSGD);
  EXPECT_EQ(opt.state_of(p), nullptr) << "no state before the first step";
  for (size_t t = 0; t < kErrors.size(); ++t) {
    SCOPED_TRACE("step " + std::to_string(t + 1));
    p.mutable_grad() = dvec(kErrors[t]);
    opt.step();
    for (size_t i = 0; i < kTheta0.size(); ++i) hand.update(i, kErrors[t][i]);
    expect_vec_near(p, hand.theta, kTol, "theta");
    const auto* st = opt.state_of(p);
    ASSERT_NE(st, nullptr);
    EXPECT_EQ(st->step(), static_cast<int64_t>(t + 1));
    expect_vec_near(st->xi(), hand.xi, kTol, "xi");
    EXPECT_TRUE(st->seen().all().item<bool>()) << "a dense step marks every entry seen";
  }
}

TEST(NuPI, DenseScalarGainsSGDStart) {
  run_dense(NuPIOptions(0.1).kp(0.7).ki(1.2).nu(0.3).init(NuPIInit::kSGD), {0.7, 0.7, 0.7},
            {1.2, 1.2, 1.2});
}

TEST(NuPI, DenseScalarGainsZeroStart) {
  run_dense(NuPIOptions(0.1).kp(0.7).ki(1.2).nu(0.3).init(NuPIInit::kZero), {0.7, 0.7, 0.7},
            {1.2, 1.2, 1.2});
}

TEST(NuPI, DensePerEntryGainsOverrideScalarGains) {
  const std::vector<double> kp = {0.0, 0.5, 2.0};
  const std::vector<double> ki = {1.0, 0.25, 3.0};
  for (auto init : {NuPIInit::kSGD, NuPIInit::kZero}) {
    SCOPED_TRACE(init == NuPIInit::kSGD ? "kSGD" : "kZero");
    // The scalar gains (9, 9) must be ignored where per-entry gains are given.
    run_dense(NuPIOptions(0.05)
                  .kp(9.0)
                  .ki(9.0)
                  .nu(0.6)
                  .kp_per_entry(dvec(kp))
                  .ki_per_entry(dvec(ki))
                  .init(init),
              kp, ki);
  }
}

TEST(NuPI, FirstStepOfEachMode) {
  // kSGD: xi_{-1} = e_0, so u_0 = ki e_0 whatever kp and nu are.
  // kZero: xi_{-1} = 0, xi_0 = (1 - nu) e_0, so u_0 = (ki + kp (1 - nu)) e_0.
  const double lr = 0.1, kp = 0.7, ki = 1.2, nu = 0.3;
  for (auto init : {NuPIInit::kSGD, NuPIInit::kZero}) {
    torch::Tensor p = dvec(kTheta0).requires_grad_();
    NuPI opt(std::vector<torch::Tensor>{p}, NuPIOptions(lr).kp(kp).ki(ki).nu(nu).init(init));
    p.mutable_grad() = dvec(kErrors[0]);
    opt.step();
    const double gain = init == NuPIInit::kSGD ? ki : ki + kp * (1.0 - nu);
    std::vector<double> want;
    for (size_t i = 0; i < kTheta0.size(); ++i)
      want.push_back(kTheta0[i] - lr * gain * kErrors[0][i]);
    expect_vec_near(p, want, kTol, init == NuPIInit::kSGD ? "kSGD first step" : "kZero first step");
  }
}

TEST(NuPI, DefaultOptionsArePlainGradientDescent) {
  const NuPIOptions o(0.3);
  EXPECT_EQ(o.kp(), 0.0);
  EXPECT_EQ(o.ki(), 1.0);
  EXPECT_EQ(o.nu(), 0.0);
  EXPECT_EQ(o.init(), NuPIInit::kSGD);
}

TEST(NuPI, KpZeroKiOneEqualsTorchSGD) {
  // With K_p = 0 the proportional term vanishes whatever nu is: theta -= lr e_t.
  for (auto init : {NuPIInit::kSGD, NuPIInit::kZero}) {
    for (double nu : {0.0, 0.5}) {
      torch::Tensor a = dvec(kTheta0).requires_grad_();
      torch::Tensor b = dvec(kTheta0).requires_grad_();
      NuPI nupi(std::vector<torch::Tensor>{a}, NuPIOptions(0.1).kp(0.0).ki(1.0).nu(nu).init(init));
      torch::optim::SGD sgd(std::vector<torch::Tensor>{b}, torch::optim::SGDOptions(0.1));
      for (size_t t = 0; t < kErrors.size(); ++t) {
        a.mutable_grad() = dvec(kErrors[t]);
        b.mutable_grad() = dvec(kErrors[t]);
        nupi.step();
        sgd.step();
        // Same arithmetic up to the association of one multiply: within a few ulps.
        expect_vec_near(a, to_vec(b), 1e-15, "NuPI(kp = 0, ki = 1) vs SGD");
      }
    }
  }
}

TEST(NuPI, KpKiOneNuZeroIsOptimisticGradient) {
  // theta_{t+1} = theta_t - lr (2 e_t - e_{t-1}), with e_{-1} = e_0 (kSGD) or 0 (kZero).
  const double lr = 0.1;
  for (auto init : {NuPIInit::kSGD, NuPIInit::kZero}) {
    SCOPED_TRACE(init == NuPIInit::kSGD ? "kSGD" : "kZero");
    torch::Tensor p = dvec(kTheta0).requires_grad_();
    NuPI opt(std::vector<torch::Tensor>{p}, NuPIOptions(lr).kp(1.0).ki(1.0).nu(0.0).init(init));
    std::vector<double> theta = kTheta0;
    std::vector<double> prev = init == NuPIInit::kSGD ? kErrors[0] : std::vector<double>(3, 0.0);
    for (size_t t = 0; t < kErrors.size(); ++t) {
      p.mutable_grad() = dvec(kErrors[t]);
      opt.step();
      for (size_t i = 0; i < 3; ++i) theta[i] -= lr * (2.0 * kErrors[t][i] - prev[i]);
      prev = kErrors[t];
      expect_vec_near(p, theta, kTol, "optimistic gradient");
    }
  }
}

TEST(NuPI, ParameterWithoutGradientIsSkipped) {
  torch::Tensor a = dvec({1.0, 2.0}).requires_grad_();
  torch::Tensor b = dvec({3.0, 4.0}).requires_grad_();
  NuPI opt(std::vector<torch::Tensor>{a, b}, NuPIOptions(0.5).kp(1.0));
  a.mutable_grad() = dvec({1.0, -1.0});
  opt.step();
  expect_vec_near(a, {0.5, 2.5}, kTol, "a (SGD start: lr * ki * e)");
  EXPECT_TRUE(torch::equal(b.detach(), dvec({3.0, 4.0}))) << "b has no gradient and must not move";
  EXPECT_EQ(opt.state_of(b), nullptr);
  ASSERT_NE(opt.state_of(a), nullptr);
  EXPECT_EQ(opt.state_of(a)->step(), 1);
}

// ------------------------------------------------------------------ sparse gradients

struct SparseStep {
  std::vector<int64_t> idx;
  std::vector<double> val;
};

torch::Tensor sparse_grad(const SparseStep& s, int64_t size) {
  torch::Tensor i = torch::tensor(s.idx, torch::kLong).reshape({1, -1});
  return torch::sparse_coo_tensor(i, dvec(s.val), {size});
}

void run_sparse(const NuPIOptions& options, const std::vector<double>& kp,
                const std::vector<double>& ki) {
  const int64_t n = 6;
  const std::vector<double> theta0 = {1.0, -1.0, 0.5, 2.0, -0.5, 3.0};
  // Entry 1 is first seen in step 3; entry 4 appears twice in step 4 (summed, unsorted
  // indices); entries 3 and 5 are never listed.
  const std::vector<SparseStep> steps = {{{0, 2}, {0.5, -1.0}},
                                         {{2, 4}, {0.3, 0.7}},
                                         {{1, 2, 4}, {-0.4, 0.6, -0.2}},
                                         {{4, 0, 4}, {0.3, 0.9, -0.1}}};
  torch::Tensor p = dvec(theta0).requires_grad_();
  NuPI opt(std::vector<torch::Tensor>{p}, options);
  const bool sgd_start = options.init() == NuPIInit::kSGD;
  HandNuPI hand(theta0, options.lr(), options.nu(), kp, ki, sgd_start);
  for (size_t t = 0; t < steps.size(); ++t) {
    SCOPED_TRACE("sparse step " + std::to_string(t + 1));
    p.mutable_grad() = sparse_grad(steps[t], n);
    const std::vector<double> before = to_vec(p);
    opt.step();
    std::map<size_t, double> e;  // coalesce by hand
    for (size_t k = 0; k < steps[t].idx.size(); ++k) e[steps[t].idx[k]] += steps[t].val[k];
    for (const auto& [i, ei] : e) hand.update(i, ei);
    expect_vec_near(p, hand.theta, kTol, "theta");
    const auto after = to_vec(p);
    for (int64_t i = 0; i < n; ++i) {
      if (!e.count(i)) {
        EXPECT_EQ(after[i], before[i]) << "unlisted entry " << i << " moved";
      }
    }
    if (t == 2) {
      // Entry 1's first step: SGD start (lr ki e) in kSGD mode; (ki + kp (1 - nu)) e in kZero.
      const double e1 = -0.4;
      const double gain = sgd_start ? ki[1] : ki[1] + kp[1] * (1.0 - options.nu());
      EXPECT_NEAR(after[1], before[1] - options.lr() * gain * e1, kTol);
    }
    const auto* st = opt.state_of(p);
    ASSERT_NE(st, nullptr);
    EXPECT_EQ(st->step(), static_cast<int64_t>(t + 1));
    expect_vec_near(st->xi(), hand.xi, kTol, "xi");
    const torch::Tensor seen = st->seen();
    ASSERT_EQ(seen.scalar_type(), torch::kBool);
    for (int64_t i = 0; i < n; ++i) EXPECT_EQ(seen[i].item<bool>(), hand.seen[i]) << "seen " << i;
  }
  // Entries never listed: value, memory and mask untouched.
  EXPECT_EQ(to_vec(p)[3], theta0[3]);
  EXPECT_EQ(to_vec(p)[5], theta0[5]);
  EXPECT_EQ(to_vec(opt.state_of(p)->xi())[3], 0.0);
  EXPECT_FALSE(opt.state_of(p)->seen()[5].item<bool>());

  // A dense step afterwards: every entry updates; entries 3 and 5, never seen, take their
  // own first step (SGD start in kSGD mode) while the others continue their recursion.
  const std::vector<double> dense_e = {0.1, -0.2, 0.3, -0.4, 0.5, -0.6};
  p.mutable_grad() = dvec(dense_e);
  opt.step();
  for (size_t i = 0; i < dense_e.size(); ++i) hand.update(i, dense_e[i]);
  expect_vec_near(p, hand.theta, kTol, "theta after a dense step");
  expect_vec_near(opt.state_of(p)->xi(), hand.xi, kTol, "xi after a dense step");
  EXPECT_TRUE(opt.state_of(p)->seen().all().item<bool>());
}

TEST(NuPI, SparseScalarGains) {
  for (auto init : {NuPIInit::kSGD, NuPIInit::kZero}) {
    SCOPED_TRACE(init == NuPIInit::kSGD ? "kSGD" : "kZero");
    run_sparse(NuPIOptions(0.1).kp(0.8).ki(1.1).nu(0.4).init(init), std::vector<double>(6, 0.8),
               std::vector<double>(6, 1.1));
  }
}

TEST(NuPI, SparsePerEntryGains) {
  const std::vector<double> kp = {0.5, 1.5, 0.0, 2.0, 0.25, 1.0};
  const std::vector<double> ki = {1.0, 0.5, 2.0, 1.0, 3.0, 0.75};
  for (auto init : {NuPIInit::kSGD, NuPIInit::kZero}) {
    SCOPED_TRACE(init == NuPIInit::kSGD ? "kSGD" : "kZero");
    run_sparse(NuPIOptions(0.2).nu(0.25).kp_per_entry(dvec(kp)).ki_per_entry(dvec(ki)).init(init),
               kp, ki);
  }
}

TEST(NuPI, IndexedSparseMultiplierOnlyObservedEntriesMove) {
  // An indexed inequality constraint with sparse dual gradients and a NuPI dual optimizer.
  // The dual error of entry i is e = -s_i (the negated ascent direction of the Lagrangian);
  // then the projection max(0, .) (never active here: all values stay positive).
  const std::vector<double> init = {0.5, 0.6, 0.7, 0.8, 0.9};
  feasible::Problem problem;
  auto c = problem.add_constraint(
      "c", feasible::ConstraintOptions(feasible::ConstraintKind::kInequality, 5)
               .multiplier(feasible::MultiplierKind::kIndexed)
               .sparse_gradient(true)
               .init_values(dvec(init))
               .dtype(torch::kFloat64));
  torch::Tensor x = torch::ones({1}, torch::dtype(torch::kFloat64)).requires_grad_();
  auto primal = std::make_shared<torch::optim::SGD>(std::vector<torch::Tensor>{x},
                                                    torch::optim::SGDOptions(0.1));
  const double lr = 0.5, kp = 1.0, ki = 1.0, nu = 0.2;
  auto dual =
      std::make_shared<NuPI>(problem.dual_parameters(), NuPIOptions(lr).kp(kp).ki(ki).nu(nu));
  feasible::SimultaneousOptimizer opt(problem, {primal}, dual);
  const torch::Tensor param = problem.dual_parameters("c").at(0);

  const std::vector<SparseStep> steps = {
      {{1, 3}, {0.4, -0.2}}, {{3, 4}, {0.5, 0.1}}, {{1}, {-0.3}}};
  HandNuPI hand(init, lr, nu, std::vector<double>(5, kp), std::vector<double>(5, ki), true);
  for (size_t t = 0; t < steps.size(); ++t) {
    SCOPED_TRACE("step " + std::to_string(t + 1));
    const std::vector<double> before = to_vec(problem.multiplier_values("c"));
    opt.step([&] {
      feasible::ProblemState st(x.pow(2).sum());
      st.observe(c, feasible::ConstraintState(dvec(steps[t].val))
                        .indices(torch::tensor(steps[t].idx, torch::kLong))
                        .contributes_to_primal(false));  // constant: a dual-only observation
      return st;
    });
    for (size_t k = 0; k < steps[t].idx.size(); ++k) {
      const size_t i = steps[t].idx[k];
      hand.update(i, -steps[t].val[k]);
      hand.theta[i] = std::max(hand.theta[i], 0.0);
    }
    const auto after = to_vec(problem.multiplier_values("c"));
    expect_vec_near(problem.multiplier_values("c"), hand.theta, kTol, "multipliers");
    for (size_t i = 0; i < init.size(); ++i) {
      bool listed = false;
      for (auto j : steps[t].idx) listed |= (static_cast<size_t>(j) == i);
      if (!listed) {
        EXPECT_EQ(after[i], before[i]) << "unobserved entry " << i << " moved";
      }
    }
    const auto* st = dual->state_of(param);
    ASSERT_NE(st, nullptr);
    EXPECT_EQ(st->step(), static_cast<int64_t>(t + 1));
    for (size_t i = 0; i < init.size(); ++i) {
      EXPECT_EQ(st->seen()[i].item<bool>(), hand.seen[i]) << "seen " << i;
    }
    expect_vec_near(st->xi(), hand.xi, kTol, "xi");
  }
  // Entries 0 and 2 were never observed: exactly their initial values.
  EXPECT_EQ(to_vec(problem.multiplier_values("c"))[0], init[0]);
  EXPECT_EQ(to_vec(problem.multiplier_values("c"))[2], init[2]);
}

// ------------------------------------------------------------------ ExtraSGD / ExtraAdam

// A linear monotone operator (a rotation plus a little damping), standing in for the gradient
// field of a game: F(theta) = (0.5 t0 + t1, -t0 + 0.5 t1).
std::vector<double> op(const std::vector<double>& t) {
  return {0.5 * t[0] + t[1], -t[0] + 0.5 * t[1]};
}

TEST(ExtraSGD, ExtrapolateThenStepFromTheSavedPoint) {
  const double lr = 0.1;
  torch::Tensor p = dvec({1.0, -2.0}).requires_grad_();
  feasible::optim::ExtraSGD opt(std::vector<torch::Tensor>{p},
                                feasible::optim::ExtraSGDOptions(lr));
  std::vector<double> theta = {1.0, -2.0};
  for (int it = 0; it < 3; ++it) {
    SCOPED_TRACE("iteration " + std::to_string(it + 1));
    // Half point: theta - lr F(theta).
    const auto g = op(theta);
    p.mutable_grad() = dvec(g);
    EXPECT_FALSE(opt.extrapolated());
    opt.extrapolate();
    EXPECT_TRUE(opt.extrapolated());
    ASSERT_EQ(opt.saved_point().size(), 1u);
    expect_vec_near(opt.saved_point()[0], theta, 0.0, "saved point");
    const std::vector<double> half = {theta[0] - lr * g[0], theta[1] - lr * g[1]};
    expect_vec_near(p, half, kTol, "half point");
    // Full step: theta - lr F(half), from the saved point.
    const auto gh = op(half);
    p.mutable_grad() = dvec(gh);
    opt.step();
    EXPECT_FALSE(opt.extrapolated());
    theta = {theta[0] - lr * gh[0], theta[1] - lr * gh[1]};
    expect_vec_near(p, theta, kTol, "after step");
  }
  // step() without extrapolate() is plain gradient descent from the current point.
  p.mutable_grad() = dvec({1.0, 2.0});
  opt.step();
  expect_vec_near(p, {theta[0] - lr, theta[1] - 2 * lr}, kTol, "plain step");
}

TEST(ExtraSGD, RestoreAndErrors) {
  torch::Tensor p = dvec({1.0, -2.0}).requires_grad_();
  torch::Tensor q = dvec({5.0}).requires_grad_();  // no gradient: must not move
  feasible::optim::ExtraSGD opt(std::vector<torch::Tensor>{p, q},
                                feasible::optim::ExtraSGDOptions(0.5));
  p.mutable_grad() = dvec({2.0, 2.0});
  opt.extrapolate();
  expect_vec_near(p, {0.0, -3.0}, kTol, "half point");
  expect_vec_near(q, {5.0}, 0.0, "q");
  EXPECT_THROW(opt.extrapolate(), c10::Error) << "extrapolate twice without a step";
  opt.restore();
  EXPECT_FALSE(opt.extrapolated());
  expect_vec_near(p, {1.0, -2.0}, 0.0, "restored");
  opt.restore();  // no-op
  expect_vec_near(p, {1.0, -2.0}, 0.0, "restored twice");
}

// Adam, written out: t += 1; m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
// theta = base - lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps).
struct HandAdam {
  double lr, b1, b2, eps;
  int t = 0;
  std::vector<double> m, v;
  HandAdam(double lr_, double b1_, double b2_, double eps_, size_t n)
      : lr(lr_), b1(b1_), b2(b2_), eps(eps_), m(n, 0.0), v(n, 0.0) {}
  std::vector<double> update(const std::vector<double>& base, const std::vector<double>& g) {
    ++t;
    std::vector<double> out = base;
    for (size_t i = 0; i < base.size(); ++i) {
      m[i] = b1 * m[i] + (1.0 - b1) * g[i];
      v[i] = b2 * v[i] + (1.0 - b2) * g[i] * g[i];
      const double mhat = m[i] / (1.0 - std::pow(b1, t));
      const double vhat = v[i] / (1.0 - std::pow(b2, t));
      out[i] = base[i] - lr * mhat / (std::sqrt(vhat) + eps);
    }
    return out;
  }
};

TEST(ExtraAdam, ExtrapolateThenStepMatchesHandAdam) {
  struct Config {
    double lr, b1, b2, eps;
  };
  // Adam's defaults, and settings where eps and the bias corrections weigh more.
  for (const Config& cfg : {Config{0.1, 0.9, 0.999, 1e-8}, Config{0.05, 0.5, 0.75, 1e-2}}) {
    SCOPED_TRACE("lr " + std::to_string(cfg.lr) + " beta1 " + std::to_string(cfg.b1));
    torch::Tensor p = dvec({1.0, -2.0}).requires_grad_();
    feasible::optim::ExtraAdam opt(
        std::vector<torch::Tensor>{p},
        feasible::optim::ExtraAdamOptions(cfg.lr).beta1(cfg.b1).beta2(cfg.b2).eps(cfg.eps));
    HandAdam hand(cfg.lr, cfg.b1, cfg.b2, cfg.eps, 2);
    std::vector<double> theta = {1.0, -2.0};
    for (int it = 0; it < 3; ++it) {
      SCOPED_TRACE("iteration " + std::to_string(it + 1));
      const auto g = op(theta);
      p.mutable_grad() = dvec(g);
      opt.extrapolate();
      const auto half = hand.update(theta, g);  // the extrapolation updates the moments too
      expect_vec_near(p, half, kTol, "half point");
      const auto gh = op(half);
      p.mutable_grad() = dvec(gh);
      opt.step();
      theta = hand.update(theta, gh);  // from the saved point
      expect_vec_near(p, theta, kTol, "after step");
      // Moments and step count, through the optimizer's state map.
      ASSERT_EQ(opt.state().size(), 1u);
      const auto& st =
          static_cast<const feasible::optim::ExtraAdamParamState&>(*opt.state().begin()->second);
      EXPECT_EQ(st.step(), 2 * (it + 1));
      expect_vec_near(st.exp_avg(), hand.m, kTol, "exp_avg");
      expect_vec_near(st.exp_avg_sq(), hand.v, kTol, "exp_avg_sq");
    }
  }
}

TEST(ExtraAdam, PlainStepsMatchTorchAdam) {
  // Without extrapolate(), ExtraAdam is Adam: compare to torch::optim::Adam (no weight decay).
  torch::Tensor a = dvec({1.0, -2.0, 0.5}).requires_grad_();
  torch::Tensor b = dvec({1.0, -2.0, 0.5}).requires_grad_();
  feasible::optim::ExtraAdam extra(std::vector<torch::Tensor>{a},
                                   feasible::optim::ExtraAdamOptions(0.1));
  torch::optim::Adam adam(std::vector<torch::Tensor>{b}, torch::optim::AdamOptions(0.1));
  for (size_t t = 0; t < kErrors.size(); ++t) {
    a.mutable_grad() = dvec(kErrors[t]);
    b.mutable_grad() = dvec(kErrors[t]);
    extra.step();
    adam.step();
    expect_vec_near(a, to_vec(b), kTol, "ExtraAdam vs torch Adam");
  }
}

}  // namespace
