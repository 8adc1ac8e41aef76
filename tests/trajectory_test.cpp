// Exact two-step trajectories of every scheme (Simultaneous, AlternatingDualPrimal,
// AlternatingPrimalDual with and without a constraint-only closure, Extragradient with ExtraSGD
// on both sides, Unconstrained with QuadraticPenalty and FixedPenalty; plus Simultaneous with
// the Augmented Lagrangian) on a tiny problem, in float64, against update equations written out
// by hand in this file (plain double arithmetic, independent of the library):
//
//   minimize f(x) = ||x - a||^2, x in R^2, a = (2, 1)
//   subject to g(x) = x0 + x1 - 1 <= 0   (multiplier lam >= 0)
//              h(x) = x0 - x1 - 0.5 = 0  (multiplier mu, free)
//
// Primal SGD (ExtraSGD) with step kEtaX, dual SGD (ExtraSGD) with step kEtaL. Each scheme runs
// from a start where the inequality is violated and from one where its multiplier is
// projected to 0 in the first step. After steps 1 and 2 the test checks x, lam, mu and the
// StepResult (loss, Lagrangian, violations, multipliers and penalties used). One parametrized
// test, SchemeTrajectory.TwoStepsMatchTheHandModel, runs every scheme (scheme_cases()) from
// every start (kStarts), named e.g. EveryScheme/SchemeTrajectory.../Simultaneous_ViolatedStart.
#include <feasible/feasible.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <tuple>
#include <vector>

namespace {

using feasible::ConstraintKind;

constexpr double kA0 = 2.0;
constexpr double kA1 = 1.0;
constexpr double kEtaX = 0.1;
constexpr double kEtaL = 0.5;
// All quantities are O(1) and come from a few dozen float64 operations (rounding ~1e-16
// each), done in a different order by the library and by the hand code: 1e-12 is ample.
constexpr double kTol = 1e-12;

// ---------------------------------------------------------------- the hand model

struct Point {
  double x0, x1, lam, mu;
};

// What StepResult must report for a step: values at the evaluation recorded by the scheme.
struct Expected {
  double loss, lagrangian, vg, vh;
  double lam, mu;  // multipliers used in the primal term (NaN: no multiplier)
  double cg, ch;   // penalties used in the primal term (NaN: no penalty)
};

double pos(double z) { return z > 0.0 ? z : 0.0; }
double f_at(double x0, double x1) { return (x0 - kA0) * (x0 - kA0) + (x1 - kA1) * (x1 - kA1); }
double g_at(double x0, double x1) { return x0 + x1 - 1.0; }
double h_at(double x0, double x1) { return x0 - x1 - 0.5; }

// Record of the Lagrangian formulation at x with multipliers (lam, mu).
Expected lagrangian_record(double x0, double x1, double lam, double mu) {
  const double vg = g_at(x0, x1), vh = h_at(x0, x1);
  return {f_at(x0, x1), f_at(x0, x1) + lam * vg + mu * vh, vg, vh, lam, mu, NAN, NAN};
}

// Simultaneous: both players use the evaluation at (x_t, lam_t, mu_t).
//   x_{t+1}   = x_t - eta_x (2 (x_t - a) + lam_t (1, 1) + mu_t (1, -1))
//   lam_{t+1} = max(0, lam_t + eta_l g(x_t)),  mu_{t+1} = mu_t + eta_l h(x_t)
Point hand_simultaneous(const Point& p, Expected* e) {
  *e = lagrangian_record(p.x0, p.x1, p.lam, p.mu);
  Point n;
  n.x0 = p.x0 - kEtaX * (2.0 * (p.x0 - kA0) + p.lam + p.mu);
  n.x1 = p.x1 - kEtaX * (2.0 * (p.x1 - kA1) + p.lam - p.mu);
  n.lam = pos(p.lam + kEtaL * g_at(p.x0, p.x1));
  n.mu = p.mu + kEtaL * h_at(p.x0, p.x1);
  return n;
}

// Alternating, dual first: the multipliers move first with the constraints at x_t; the primal
// step uses the new multipliers with the same evaluation (so they are the ones recorded).
Point hand_dual_primal(const Point& p, Expected* e) {
  Point n;
  n.lam = pos(p.lam + kEtaL * g_at(p.x0, p.x1));
  n.mu = p.mu + kEtaL * h_at(p.x0, p.x1);
  n.x0 = p.x0 - kEtaX * (2.0 * (p.x0 - kA0) + n.lam + n.mu);
  n.x1 = p.x1 - kEtaX * (2.0 * (p.x1 - kA1) + n.lam - n.mu);
  *e = lagrangian_record(p.x0, p.x1, n.lam, n.mu);
  return n;
}

// Alternating, primal first: the primal step uses (lam_t, mu_t); the dual step uses the
// constraints at x_{t+1}. The record is the first evaluation's.
Point hand_primal_dual(const Point& p, Expected* e) {
  *e = lagrangian_record(p.x0, p.x1, p.lam, p.mu);
  Point n;
  n.x0 = p.x0 - kEtaX * (2.0 * (p.x0 - kA0) + p.lam + p.mu);
  n.x1 = p.x1 - kEtaX * (2.0 * (p.x1 - kA1) + p.lam - p.mu);
  n.lam = pos(p.lam + kEtaL * g_at(n.x0, n.x1));
  n.mu = p.mu + kEtaL * h_at(n.x0, n.x1);
  return n;
}

// Extragradient: half point from the gradients at t (the multiplier projected there too),
// then the step from the saved point with the half-point gradients. Record: first evaluation.
Point hand_extragradient(const Point& p, Expected* e) {
  *e = lagrangian_record(p.x0, p.x1, p.lam, p.mu);
  const double hx0 = p.x0 - kEtaX * (2.0 * (p.x0 - kA0) + p.lam + p.mu);
  const double hx1 = p.x1 - kEtaX * (2.0 * (p.x1 - kA1) + p.lam - p.mu);
  const double hlam = pos(p.lam + kEtaL * g_at(p.x0, p.x1));
  const double hmu = p.mu + kEtaL * h_at(p.x0, p.x1);
  Point n;
  n.x0 = p.x0 - kEtaX * (2.0 * (hx0 - kA0) + hlam + hmu);
  n.x1 = p.x1 - kEtaX * (2.0 * (hx1 - kA1) + hlam - hmu);
  n.lam = pos(p.lam + kEtaL * g_at(hx0, hx1));
  n.mu = p.mu + kEtaL * h_at(hx0, hx1);
  return n;
}

// Simultaneous with the Augmented Lagrangian: g with c_g = 2 and scale_dual_by_penalty,
// h with c_h = 3 and the unscaled dual step.
//   primal term  (1/(2 c_g)) ([lam + c_g g]+^2 - lam^2) + mu h + (c_h / 2) h^2
//   x_{t+1}   = x_t - eta_x (2 (x_t - a) + [lam + c_g g]+ (1, 1) + (mu + c_h h) (1, -1))
//   lam_{t+1} = max(0, lam_t + eta_l c_g g),  mu_{t+1} = mu_t + eta_l h
constexpr double kCg = 2.0;
constexpr double kCh = 3.0;
Point hand_al_simultaneous(const Point& p, Expected* e) {
  const double vg = g_at(p.x0, p.x1), vh = h_at(p.x0, p.x1);
  const double zg = pos(p.lam + kCg * vg);
  const double f = f_at(p.x0, p.x1);
  *e = {f,     f + (zg * zg - p.lam * p.lam) / (2.0 * kCg) + p.mu * vh + 0.5 * kCh * vh * vh,
        vg,    vh,
        p.lam, p.mu,
        kCg,   kCh};
  const double dh = p.mu + kCh * vh;
  Point n;
  n.x0 = p.x0 - kEtaX * (2.0 * (p.x0 - kA0) + zg + dh);
  n.x1 = p.x1 - kEtaX * (2.0 * (p.x1 - kA1) + zg - dh);
  n.lam = pos(p.lam + kEtaL * kCg * vg);
  n.mu = p.mu + kEtaL * vh;
  return n;
}

// Unconstrained, quadratic penalty on both: (c_g/2) [g]+^2 + (c_h/2) h^2.
Point hand_quadratic_penalty(const Point& p, Expected* e) {
  const double vg = g_at(p.x0, p.x1), vh = h_at(p.x0, p.x1);
  const double f = f_at(p.x0, p.x1);
  *e = {f, f + 0.5 * kCg * pos(vg) * pos(vg) + 0.5 * kCh * vh * vh, vg, vh, NAN, NAN, kCg, kCh};
  Point n = p;
  n.x0 = p.x0 - kEtaX * (2.0 * (p.x0 - kA0) + kCg * pos(vg) + kCh * vh);
  n.x1 = p.x1 - kEtaX * (2.0 * (p.x1 - kA1) + kCg * pos(vg) - kCh * vh);
  return n;
}

// Unconstrained, fixed penalty on both: f + c_g g + c_h h (no positive part).
Point hand_fixed_penalty(const Point& p, Expected* e) {
  const double vg = g_at(p.x0, p.x1), vh = h_at(p.x0, p.x1);
  const double f = f_at(p.x0, p.x1);
  *e = {f, f + kCg * vg + kCh * vh, vg, vh, NAN, NAN, kCg, kCh};
  Point n = p;
  n.x0 = p.x0 - kEtaX * (2.0 * (p.x0 - kA0) + kCg + kCh);
  n.x1 = p.x1 - kEtaX * (2.0 * (p.x1 - kA1) + kCg - kCh);
  return n;
}

// Starts. Violated: g(x_0) = 1 > 0, h(x_0) = 0.5. Projected: g(x_0) = -1, and every scheme's
// first dual step wants lam = 0.1 - 0.5 * (something >= 0.42) < 0, so lam_1 = 0 exactly (for
// extragradient both at the half point and at the full step); mu goes negative (free).
const Point kViolated = {1.5, 0.5, 0.4, -0.2};
const Point kProjected = {0.0, 0.0, 0.1, 0.2};

// ---------------------------------------------------------------- the library side

struct TinyProblem {
  torch::Tensor x;
  feasible::Problem problem;
  feasible::Constraint g, h;
  int full_calls = 0;
  int constraint_calls = 0;

  TinyProblem(const Point& p, std::shared_ptr<feasible::Formulation> fg,
              std::shared_ptr<feasible::Formulation> fh) {
    x = torch::tensor({p.x0, p.x1}, torch::dtype(torch::kFloat64)).requires_grad_();
    g = problem.add_constraint("g", feasible::ConstraintOptions(ConstraintKind::kInequality)
                                        .formulation(fg)
                                        .init(fg->uses_multiplier() ? p.lam : 0.0)
                                        .penalty(kCg)
                                        .dtype(torch::kFloat64));
    h = problem.add_constraint("h", feasible::ConstraintOptions(ConstraintKind::kEquality)
                                        .formulation(fh)
                                        .init(fh->uses_multiplier() ? p.mu : 0.0)
                                        .penalty(kCh)
                                        .dtype(torch::kFloat64));
  }

  feasible::ProblemState observe_constraints(feasible::ProblemState st) {
    st.observe(g, feasible::ConstraintState(x[0] + x[1] - 1.0));
    st.observe(h, feasible::ConstraintState(x[0] - x[1] - 0.5));
    return st;
  }
  feasible::ProblemState closure() {
    ++full_calls;
    const auto a = torch::tensor({kA0, kA1}, torch::dtype(torch::kFloat64));
    return observe_constraints(feasible::ProblemState((x - a).pow(2).sum()));
  }
  feasible::ProblemState constraints_only() {
    ++constraint_calls;
    return observe_constraints(feasible::ProblemState());
  }

  std::shared_ptr<torch::optim::Optimizer> sgd_primal() {
    return std::make_shared<torch::optim::SGD>(std::vector<torch::Tensor>{x},
                                               torch::optim::SGDOptions(kEtaX));
  }
  std::shared_ptr<torch::optim::Optimizer> sgd_dual() {
    return std::make_shared<torch::optim::SGD>(problem.dual_parameters(),
                                               torch::optim::SGDOptions(kEtaL));
  }
};

double scalar_of(const torch::Tensor& t) {
  EXPECT_TRUE(t.defined());
  if (!t.defined()) return NAN;
  EXPECT_EQ(t.numel(), 1);
  EXPECT_EQ(t.scalar_type(), torch::kFloat64);
  return t.item<double>();
}

void expect_point(const TinyProblem& run, const Point& want, bool multipliers) {
  EXPECT_NEAR(run.x[0].item<double>(), want.x0, kTol) << "x0";
  EXPECT_NEAR(run.x[1].item<double>(), want.x1, kTol) << "x1";
  if (!multipliers) return;
  EXPECT_NEAR(run.problem.multiplier_values("g")[0].item<double>(), want.lam, kTol) << "lam";
  EXPECT_NEAR(run.problem.multiplier_values("h")[0].item<double>(), want.mu, kTol) << "mu";
  EXPECT_GE(run.problem.multiplier_values("g")[0].item<double>(), 0.0) << "lam must be >= 0";
}

void expect_record(const feasible::StepResult& r, const Expected& e, int64_t iteration) {
  EXPECT_EQ(r.iteration, iteration);
  EXPECT_FALSE(r.skipped);
  EXPECT_NEAR(scalar_of(r.loss), e.loss, kTol) << "loss";
  EXPECT_NEAR(scalar_of(r.lagrangian), e.lagrangian, kTol) << "lagrangian";
  ASSERT_EQ(r.constraints.size(), 2u);
  const auto& rg = r.at("g");
  const auto& rh = r.at("h");
  EXPECT_EQ(rg.kind, ConstraintKind::kInequality);
  EXPECT_EQ(rh.kind, ConstraintKind::kEquality);
  EXPECT_TRUE(rg.observed);
  EXPECT_TRUE(rh.observed);
  EXPECT_NEAR(scalar_of(rg.violation), e.vg, kTol) << "violation of g";
  EXPECT_NEAR(scalar_of(rh.violation), e.vh, kTol) << "violation of h";
  EXPECT_NEAR(scalar_of(rg.strict_violation), e.vg, kTol) << "strict violation of g";
  EXPECT_NEAR(scalar_of(rh.strict_violation), e.vh, kTol) << "strict violation of h";
  EXPECT_NEAR(r.max_violation(), std::max(pos(e.vg), std::abs(e.vh)), kTol) << "max_violation";
  if (std::isnan(e.lam)) {
    EXPECT_FALSE(rg.multiplier.defined()) << "g has no multiplier";
    EXPECT_FALSE(rh.multiplier.defined()) << "h has no multiplier";
  } else {
    // The values the primal term used (lam_t for every scheme but dual-primal), not the
    // values after this step's dual update.
    EXPECT_NEAR(scalar_of(rg.multiplier), e.lam, kTol) << "multiplier used for g";
    EXPECT_NEAR(scalar_of(rh.multiplier), e.mu, kTol) << "multiplier used for h";
  }
  if (std::isnan(e.cg)) {
    EXPECT_FALSE(rg.penalty.defined()) << "g has no penalty";
    EXPECT_FALSE(rh.penalty.defined()) << "h has no penalty";
  } else {
    EXPECT_NEAR(scalar_of(rg.penalty), e.cg, kTol) << "penalty used for g";
    EXPECT_NEAR(scalar_of(rh.penalty), e.ch, kTol) << "penalty used for h";
  }
}

using HandStep = Point (*)(const Point&, Expected*);
using MakeOptimizer = std::function<std::unique_ptr<feasible::ConstrainedOptimizer>(TinyProblem&)>;
using DoStep = std::function<feasible::StepResult(feasible::ConstrainedOptimizer&, TinyProblem&)>;

feasible::StepResult plain_step(feasible::ConstrainedOptimizer& opt, TinyProblem& run) {
  return opt.step([&run] { return run.closure(); });
}

// Runs two library steps and two hand steps from `start` and compares after each.
// `after_step(run, t)` adds scheme-specific checks (closure call counts).
void check_two_steps(const Point& start, HandStep hand, const MakeOptimizer& make,
                     std::shared_ptr<feasible::Formulation> fg,
                     std::shared_ptr<feasible::Formulation> fh, bool projected_start,
                     const DoStep& do_step = plain_step,
                     const std::function<void(const TinyProblem&, int)>& after_step = nullptr) {
  TinyProblem run(start, fg, fh);
  const bool multipliers = fg->uses_multiplier();
  auto opt = make(run);
  Point want = start;
  for (int t = 0; t < 2; ++t) {
    SCOPED_TRACE("step " + std::to_string(t + 1));
    Expected e;
    want = hand(want, &e);
    const feasible::StepResult r = do_step(*opt, run);
    expect_point(run, want, multipliers);
    expect_record(r, e, t);
    if (after_step) after_step(run, t);
    if (t == 0 && projected_start && multipliers) {
      // The projection onto lam >= 0 gives exactly 0.
      EXPECT_EQ(run.problem.multiplier_values("g")[0].item<double>(), 0.0);
    }
  }
}

std::shared_ptr<feasible::Formulation> lagrangian() {
  return std::make_shared<feasible::Lagrangian>();
}

// ---------------------------------------------------------------- the cases

std::vector<std::shared_ptr<torch::optim::Optimizer>> one(
    std::shared_ptr<torch::optim::Optimizer> opt) {
  return {std::move(opt)};
}

// One scheme (with its formulations) and the checks particular to it.
struct SchemeCase {
  const char* name;
  HandStep hand;
  MakeOptimizer make;
  std::function<std::shared_ptr<feasible::Formulation>()> fg, fh;
  DoStep do_step = plain_step;
  std::function<void(const TinyProblem&, int)> after_step = nullptr;
};

void full_closure_once_per_step(const TinyProblem& run, int t) { EXPECT_EQ(run.full_calls, t + 1); }

std::unique_ptr<feasible::ConstrainedOptimizer> make_simultaneous(TinyProblem& run) {
  return std::make_unique<feasible::SimultaneousOptimizer>(run.problem, one(run.sgd_primal()),
                                                           run.sgd_dual());
}

std::unique_ptr<feasible::ConstrainedOptimizer> make_primal_dual(TinyProblem& run) {
  return std::make_unique<feasible::AlternatingPrimalDualOptimizer>(
      run.problem, one(run.sgd_primal()), run.sgd_dual());
}

std::unique_ptr<feasible::ConstrainedOptimizer> make_unconstrained(TinyProblem& run) {
  return std::make_unique<feasible::UnconstrainedOptimizer>(run.problem, one(run.sgd_primal()));
}

const std::vector<SchemeCase>& scheme_cases() {
  static const std::vector<SchemeCase> cases = {
      {"Simultaneous", hand_simultaneous, make_simultaneous, lagrangian, lagrangian, plain_step,
       full_closure_once_per_step},
      {"AlternatingDualPrimal", hand_dual_primal,
       [](TinyProblem& run) -> std::unique_ptr<feasible::ConstrainedOptimizer> {
         return std::make_unique<feasible::AlternatingDualPrimalOptimizer>(
             run.problem, one(run.sgd_primal()), run.sgd_dual());
       },
       lagrangian, lagrangian, plain_step, full_closure_once_per_step},
      {"AlternatingPrimalDualReevaluatesWithTheFullClosure", hand_primal_dual, make_primal_dual,
       lagrangian, lagrangian, plain_step,
       [](const TinyProblem& run, int t) {
         EXPECT_EQ(run.full_calls, 2 * (t + 1));  // once before, once after the primal step
         EXPECT_EQ(run.constraint_calls, 0);
       }},
      {"AlternatingPrimalDualWithConstraintClosure", hand_primal_dual, make_primal_dual, lagrangian,
       lagrangian,
       [](feasible::ConstrainedOptimizer& opt, TinyProblem& run) {
         auto& pd = dynamic_cast<feasible::AlternatingPrimalDualOptimizer&>(opt);
         return pd.step([&run] { return run.closure(); },
                        [&run] { return run.constraints_only(); });
       },
       [](const TinyProblem& run, int t) {
         EXPECT_EQ(run.full_calls, t + 1);  // the re-evaluation uses the constraint closure
         EXPECT_EQ(run.constraint_calls, t + 1);
       }},
      {"ExtragradientWithExtraSGD", hand_extragradient,
       [](TinyProblem& run) -> std::unique_ptr<feasible::ConstrainedOptimizer> {
         auto primal = std::make_shared<feasible::optim::ExtraSGD>(
             std::vector<torch::Tensor>{run.x}, feasible::optim::ExtraSGDOptions(kEtaX));
         auto dual = std::make_shared<feasible::optim::ExtraSGD>(
             run.problem.dual_parameters(), feasible::optim::ExtraSGDOptions(kEtaL));
         return std::make_unique<feasible::ExtragradientOptimizer>(run.problem, one(primal), dual);
       },
       lagrangian, lagrangian, plain_step,
       [](const TinyProblem& run, int t) { EXPECT_EQ(run.full_calls, 2 * (t + 1)); }},
      {"SimultaneousAugmentedLagrangian", hand_al_simultaneous, make_simultaneous,
       [] {
         return std::make_shared<feasible::AugmentedLagrangian>(
             feasible::AugmentedLagrangianOptions().scale_dual_by_penalty(true));
       },
       [] { return std::make_shared<feasible::AugmentedLagrangian>(); }},
      {"UnconstrainedQuadraticPenalty", hand_quadratic_penalty,
       [](TinyProblem& run) {
         EXPECT_TRUE(run.problem.dual_parameters().empty());
         return make_unconstrained(run);
       },
       [] { return std::make_shared<feasible::QuadraticPenalty>(); },
       [] { return std::make_shared<feasible::QuadraticPenalty>(); }},
      {"UnconstrainedFixedPenalty", hand_fixed_penalty, make_unconstrained,
       [] { return std::make_shared<feasible::FixedPenalty>(); },
       [] { return std::make_shared<feasible::FixedPenalty>(); }},
  };
  return cases;
}

struct StartCase {
  const char* name;
  Point start;
  bool projected;
};
void PrintTo(const StartCase& s, std::ostream* os) { *os << s.name; }
const StartCase kStarts[] = {{"ViolatedStart", kViolated, false},
                             {"ProjectedStart", kProjected, true}};

// ---------------------------------------------------------------- tests

TEST(Trajectory, HandModelProjectsInTheProjectedStart) {
  // Guards the test design: in the projected start every scheme's first unprojected
  // multiplier is negative.
  Expected e;
  const Point p = kProjected;
  EXPECT_LT(p.lam + kEtaL * g_at(p.x0, p.x1), 0.0);  // simultaneous, dual-primal, EG half
  const Point pd = hand_primal_dual(p, &e);
  const double x0 = p.x0 - kEtaX * (2.0 * (p.x0 - kA0) + p.lam + p.mu);
  const double x1 = p.x1 - kEtaX * (2.0 * (p.x1 - kA1) + p.lam - p.mu);
  EXPECT_LT(p.lam + kEtaL * g_at(x0, x1), 0.0);  // primal-dual; also EG full step (same x_h)
  EXPECT_EQ(pd.lam, 0.0);
  EXPECT_EQ(hand_extragradient(p, &e).lam, 0.0);
  EXPECT_LT(p.lam + kCg * g_at(p.x0, p.x1), 0.0);  // AL: inactive in the first step
}

// Every scheme from every start: two library steps against two hand steps.
class SchemeTrajectory : public testing::TestWithParam<std::tuple<size_t, StartCase>> {};

TEST_P(SchemeTrajectory, TwoStepsMatchTheHandModel) {
  const SchemeCase& scheme = scheme_cases()[std::get<0>(GetParam())];
  const StartCase& start = std::get<1>(GetParam());
  check_two_steps(start.start, scheme.hand, scheme.make, scheme.fg(), scheme.fh(), start.projected,
                  scheme.do_step, scheme.after_step);
}

INSTANTIATE_TEST_SUITE_P(EveryScheme, SchemeTrajectory,
                         testing::Combine(testing::Range<size_t>(0, scheme_cases().size()),
                                          testing::ValuesIn(kStarts)),
                         [](const testing::TestParamInfo<SchemeTrajectory::ParamType>& info) {
                           return std::string(scheme_cases()[std::get<0>(info.param)].name) + "_" +
                                  std::get<1>(info.param).name;
                         });

}  // namespace
