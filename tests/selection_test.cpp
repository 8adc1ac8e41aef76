// Candidate selection (BestIterate) and the shrinking mixture (shrink) on hand-made candidates
// whose answers are worked out by hand in the comments.
#include "feasible/selection.h"

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "test_util.h"

namespace {

using feasible::BestIterate;
using feasible::BestIterateOptions;
using feasible::Candidate;
using feasible::Mixture;
using feasible::shrink;
using feasible_test::error_of;

const double kInf = std::numeric_limits<double>::infinity();
const double kNaN = std::numeric_limits<double>::quiet_NaN();

// GLPK's simplex solves these small, well-conditioned programs to rounding (a few 1e-16, with
// O(1) data), and the sums below add a few products of O(1) numbers; 1e-12 is far above that
// rounding and far below any difference the tests look for (>= 0.01).
constexpr double kTol = 1e-12;

/// A model's parameter list: two tensors of shapes [2, 3] and [3], filled with `value`.
std::vector<torch::Tensor> params(double value) {
  return {torch::full({2, 3}, value, torch::kFloat64), torch::full({3}, value, torch::kFloat64)};
}

// ---- the selection rule ----

TEST(BestIterate, ConfidentFeasibleBeatsPlainlyFeasibleWithLowerObjective) {
  BestIterate keeper;
  // Step 100: feasible, flag false (audited, not confident). Step 200: feasible and confident,
  // objective 0.5. Step 300: feasible, no flag, objective 0.1 (lowest). Step 400: confident but
  // infeasible on validation (0.05 > 0), objective 0.01: not "feasible with confidence".
  keeper.offer(100, 0.2, {-0.1}, params(1), false);
  keeper.offer(200, 0.5, {-0.01}, params(2), true);
  keeper.offer(300, 0.1, {-0.2}, params(3));
  keeper.offer(400, 0.01, {0.05}, params(4), true);
  EXPECT_EQ(keeper.best().step, 200);
  EXPECT_EQ(keeper.best_index(), 1u);
  EXPECT_EQ(keeper.reason(),
            "step 200: lowest validation objective 0.5 among 1 candidate feasible with "
            "confidence (3 feasible)");
}

TEST(BestIterate, PlainlyFeasibleLowestObjectiveWhenNoConfidenceGiven) {
  BestIterate keeper;
  // Feasible: steps 100 (0.4), 300 (0.312), 400 (0.5); step 200 has the lowest objective but
  // violates its second constraint (0.01 > 0).
  keeper.offer(100, 0.4, {-0.1, 0.0}, params(1));
  keeper.offer(200, 0.2, {-0.3, 0.01}, params(2));
  keeper.offer(300, 0.312, {-0.05, -0.2}, params(3));
  keeper.offer(400, 0.5, {-1.0, -1.0}, params(4));
  EXPECT_EQ(keeper.best().step, 300);
  EXPECT_EQ(keeper.reason(),
            "step 300: lowest validation objective 0.312 among 3 feasible "
            "candidates");
}

TEST(BestIterate, NoFeasibleCandidateTakesTheLeastLargestViolation) {
  BestIterate keeper;
  // Largest violations: 0.3, 0.004, 0.01 -> step 200, whatever the objectives.
  keeper.offer(100, 0.1, {0.3, -1.0}, params(1));
  keeper.offer(200, 0.5, {0.004, 0.002}, params(2));
  keeper.offer(300, 0.05, {0.01, -5.0}, params(3));
  EXPECT_EQ(keeper.best().step, 200);
  EXPECT_DOUBLE_EQ(keeper.best().max_violation(), 0.004);
  EXPECT_EQ(keeper.reason(), "no candidate feasible: least violation 0.004 at step 200");
}

TEST(BestIterate, TiesGoToTheEarlierCandidate) {
  {
    BestIterate keeper;  // two feasible candidates with the same objective
    keeper.offer(1, 0.3, {-0.1}, params(1));
    EXPECT_FALSE(keeper.offer(2, 0.3, {-0.5}, params(2)));
    EXPECT_EQ(keeper.best().step, 1);
  }
  {
    BestIterate keeper;  // infeasible: same largest violation; the lower objective, then earlier
    keeper.offer(1, 0.7, {0.2}, params(1));
    EXPECT_TRUE(keeper.offer(2, 0.6, {0.2}, params(2)));
    EXPECT_FALSE(keeper.offer(3, 0.6, {0.2}, params(3)));
    EXPECT_EQ(keeper.best().step, 2);
  }
}

TEST(BestIterate, ToleranceWidensFeasibility) {
  // With tolerance 0.01 a violation of 0.005 counts as feasible: step 2 (objective 0.1) wins.
  BestIterate keeper(BestIterateOptions().tolerance(0.01));
  keeper.offer(1, 0.3, {-0.1}, params(1));
  keeper.offer(2, 0.1, {0.005}, params(2));
  EXPECT_EQ(keeper.best().step, 2);
  EXPECT_TRUE(keeper.candidates()[1].feasible(0.01));
  EXPECT_FALSE(keeper.candidates()[1].feasible());
}

TEST(BestIterate, NoConstraintMeansEveryCandidateIsFeasible) {
  BestIterate keeper;
  keeper.offer(1, 0.3, {}, params(1));
  keeper.offer(2, 0.2, {}, params(2));
  EXPECT_EQ(keeper.best().step, 2);
  EXPECT_EQ(keeper.best().max_violation(), -kInf);
  EXPECT_EQ(keeper.reason(),
            "step 2: lowest validation objective 0.2 among 2 feasible "
            "candidates");
}

// ---- memory, restore ----

TEST(BestIterate, KeepsOnlyTheBestTensorsUnlessKeepAll) {
  BestIterate keeper;
  auto model = params(1);
  EXPECT_TRUE(keeper.offer(1, 0.5, {-0.1}, model));
  EXPECT_FALSE(keeper.offer(2, 0.9, {-0.1}, params(2)));  // worse: not copied
  EXPECT_TRUE(keeper.offer(3, 0.4, {-0.1}, params(3)));   // new best: step 1's tensors dropped
  const auto& c = keeper.candidates();
  ASSERT_EQ(c.size(), 3u);
  EXPECT_FALSE(c[0].holds_parameters());
  EXPECT_FALSE(c[1].holds_parameters());
  EXPECT_TRUE(c[2].holds_parameters());
  EXPECT_DOUBLE_EQ(c[1].objective, 0.9);  // the values are kept for every candidate

  BestIterate all(BestIterateOptions().keep_all(true));
  all.offer(1, 0.5, {-0.1}, params(1));
  all.offer(2, 0.9, {-0.1}, params(2));
  for (const auto& k : all.candidates()) EXPECT_TRUE(k.holds_parameters());
}

TEST(BestIterate, RestoreCopiesTheBestExactlyAndDeeply) {
  BestIterate keeper;
  auto model = params(0);
  model[0].copy_(torch::arange(6, torch::kFloat64).reshape({2, 3}) / 7.0);
  model[1].copy_(torch::tensor({1e-300, -2.5, 3.0}, torch::kFloat64));
  const auto saved = std::vector<torch::Tensor>{model[0].clone(), model[1].clone()};
  keeper.offer(10, 0.1, {-0.1}, model);
  // Training goes on in place: the kept copy must not change with the model.
  model[0].add_(1.0);
  model[1].mul_(2.0);
  keeper.offer(20, 0.3, {-0.1}, model);
  const Candidate& restored = keeper.restore(model);
  EXPECT_EQ(restored.step, 10);
  EXPECT_TRUE(torch::equal(model[0], saved[0]));
  EXPECT_TRUE(torch::equal(model[1], saved[1]));
}

TEST(BestIterate, RestoreWorksOnParametersThatRequireGrad) {
  torch::nn::Linear layer(2, 1);
  BestIterate keeper;
  const auto before = layer->weight.detach().clone();
  keeper.offer(0, 1.0, {}, layer->parameters());
  {
    torch::NoGradGuard g;
    layer->weight.fill_(5.0);
  }
  keeper.restore(layer->parameters());  // copy_ under NoGradGuard into leaves requiring grad
  EXPECT_TRUE(torch::equal(layer->weight.detach(), before));
  EXPECT_TRUE(layer->weight.requires_grad());
}

TEST(BestIterate, RestoreRefusesAMismatchAndChangesNothing) {
  BestIterate keeper;
  keeper.offer(7, 0.1, {-0.1}, params(1));
  std::vector<torch::Tensor> wrong = {torch::zeros({2, 3}, torch::kFloat64),
                                      torch::zeros({4}, torch::kFloat64)};
  const std::string shape = error_of([&] { keeper.restore(wrong); });
  EXPECT_HAS(shape, "BestIterate::restore: parameters[1] has shape [4]");
  EXPECT_HAS(shape, "the candidate at step 7 holds shape [3]");
  // The first tensor matched but must not have been written: checks come before any copy.
  EXPECT_EQ(wrong[0].abs().sum().item<double>(), 0.0);
  const std::string count = error_of([&] { keeper.restore({wrong[0]}); });
  EXPECT_HAS(count, "got 1 tensor but the candidate at step 7 holds 2");
}

TEST(BestIterate, RestoreExplainsMissingTensors) {
  BestIterate keeper;
  keeper.offer(1, 0.5, {-0.1}, params(1));
  keeper.offer(2, 0.9, {-0.1}, params(2));
  EXPECT_HAS(error_of([&] { keeper.restore_candidate(1, params(0)); }),
             "holds no tensors: only the best candidate's tensors are kept; set "
             "BestIterateOptions::keep_all(true)");
  EXPECT_HAS(error_of([&] { keeper.restore_candidate(5, params(0)); }),
             "candidate index 5 is out of range (2 candidates)");
  BestIterate files;
  files.offer_checkpoint(3, 0.1, {-0.2}, "run_3.ckpt");
  EXPECT_EQ(files.best().checkpoint, "run_3.ckpt");
  EXPECT_HAS(error_of([&] { files.restore(params(0)); }),
             "it was offered as the checkpoint 'run_3.ckpt'; restore it with feasible::load");
  BestIterate empty;
  EXPECT_HAS(error_of([&] { empty.restore(params(0)); }), "no candidate offered yet");
  EXPECT_HAS(error_of([&] { empty.best(); }), "BestIterate::best: no candidate offered yet");
  EXPECT_EQ(empty.reason(), "no candidate offered yet");
}

TEST(BestIterate, OnDiskKeepsOneFileForTheBestAndRestoresIt) {
  namespace fs = std::filesystem;
  const fs::path dir =
      fs::temp_directory_path() / ("feasible_selection_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  {
    BestIterate keeper(BestIterateOptions().on_disk(dir.string()));
    keeper.offer(1, 0.5, {-0.1}, params(1.5));
    const std::string first = keeper.candidates()[0].parameters_file;
    EXPECT_TRUE(fs::exists(first));
    EXPECT_TRUE(keeper.candidates()[0].parameters.empty());  // on disk, not in memory
    keeper.offer(2, 0.9, {-0.1}, params(2.5));               // worse: no file
    keeper.offer(3, 0.4, {-0.1}, params(3.5));               // new best: step 1's file removed
    EXPECT_FALSE(fs::exists(first));
    EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);
    auto model = params(0);
    keeper.restore(model);
    EXPECT_TRUE(torch::equal(model[0], torch::full({2, 3}, 3.5, torch::kFloat64)));
    EXPECT_TRUE(torch::equal(model[1], torch::full({3}, 3.5, torch::kFloat64)));
  }
  fs::remove_all(dir);
}

TEST(BestIterate, RefusesBadOffersAndOptions) {
  BestIterate keeper;
  EXPECT_HAS(error_of([&] { keeper.offer(5, kNaN, {-0.1}, params(1)); }),
             "BestIterate::offer(step 5): objective must be finite, got nan");
  EXPECT_HAS(error_of([&] {
               keeper.offer(6, 0.1, {-0.1, kInf}, params(1));
             }),
             "BestIterate::offer(step 6): violations[1] must be finite, got inf");
  keeper.offer(7, 0.1, {-0.1, -0.2}, params(1));
  EXPECT_HAS(error_of([&] { keeper.offer(8, 0.1, {-0.1}, params(1)); }),
             "BestIterate::offer(step 8): got 1 violations but earlier candidates have 2");
  EXPECT_HAS(error_of([&] {
               keeper.offer(9, 0.1, {-0.1, 0.0}, {torch::Tensor()});
             }),
             "BestIterate::offer(step 9): parameters[0] is an undefined tensor");
  EXPECT_EQ(keeper.candidates().size(), 1u);  // refused offers leave no trace
  EXPECT_HAS(error_of([] { BestIterate b(BestIterateOptions().tolerance(-1e-3)); }),
             "BestIterateOptions.tolerance must be finite and >= 0, got -0.001");
  EXPECT_HAS(error_of([] { BestIterate b(BestIterateOptions().on_disk("/no/such/dir")); }),
             "BestIterateOptions.on_disk must be an existing directory (or empty), got "
             "'/no/such/dir'");
}

// ---- shrink ----

TEST(Shrink, TwoCandidatesOneConstraintMixHalfAndHalf) {
  // f = (0, 1), g = (+0.2, -0.2): the constraint 0.2 p1 - 0.2 p2 <= 0 means p1 <= p2, and the
  // objective p2 = 1 - p1 is least at p1 = p2 = 1/2: objective 0.5, violation 0.
  const Mixture m = shrink({0.0, 1.0}, {{0.2}, {-0.2}});
  ASSERT_EQ(m.candidates, (std::vector<int64_t>{0, 1}));
  EXPECT_NEAR(m.weights[0], 0.5, kTol);
  EXPECT_NEAR(m.weights[1], 0.5, kTol);
  EXPECT_NEAR(m.objective, 0.5, kTol);
  ASSERT_EQ(m.violations.size(), 1u);
  EXPECT_NEAR(m.violations[0], 0.0, kTol);
  EXPECT_TRUE(m.feasible);
}

TEST(Shrink, AFeasibleCandidateBestAloneTakesWeightOne) {
  // Candidate 0 is feasible with the lowest objective of all three, so any weight moved to
  // another candidate raises the expected objective: the mixture is candidate 0 alone.
  const Mixture m = shrink({0.2, 0.5, 0.4}, {{-0.1}, {0.3}, {-0.2}});
  ASSERT_EQ(m.candidates, (std::vector<int64_t>{0}));
  EXPECT_DOUBLE_EQ(m.weights[0], 1.0);
  EXPECT_DOUBLE_EQ(m.objective, 0.2);
  EXPECT_TRUE(m.feasible);
}

TEST(Shrink, NoConstraintPicksTheLowestObjective) {
  const Mixture m = shrink({0.4, 0.1, 0.3}, {{}, {}, {}});
  ASSERT_EQ(m.candidates, (std::vector<int64_t>{1}));
  EXPECT_TRUE(m.feasible);
}

TEST(Shrink, InfeasibleMinimizesTheLargestViolationThenTheObjective) {
  // Every candidate violates both constraints. Adding the two rows,
  //   0.6 p0 + 0.6 p1 + 0.8 p2 + 0.6 p3 <= 2 s,
  // so s >= 0.3, with equality only when p2 = 0 and both rows equal 0.3: p0 + p3 = p1 = 1/2.
  // Candidates 0 and 3 have the same violations; 3 has the lower objective (0.5 < 1), so the
  // objective stage puts the half on 3: weights (p1, p3) = (1/2, 1/2), objective
  // 0.5 * 2 + 0.5 * 0.5 = 1.25, violations (0.3, 0.3).
  // The same candidates in the reverse order must give the same mixture (the cheap twin is then
  // first): the choice between the twins is the objective stage's, not the solver's order.
  const std::vector<double> f = {1.0, 2.0, 3.0, 0.5};
  const std::vector<std::vector<double>> g = {{0.5, 0.1}, {0.1, 0.5}, {0.4, 0.4}, {0.5, 0.1}};
  for (bool reversed : {false, true}) {
    SCOPED_TRACE(reversed ? "reversed" : "in order");
    auto fo = f;
    auto go = g;
    if (reversed) {
      std::reverse(fo.begin(), fo.end());
      std::reverse(go.begin(), go.end());
    }
    const Mixture m = shrink(fo, go);
    EXPECT_FALSE(m.feasible);
    // Indices 1 and 3 in order; reversed, they are 3 - 1 = 2 and 3 - 3 = 0.
    ASSERT_EQ(m.candidates, reversed ? (std::vector<int64_t>{0, 2}) : (std::vector<int64_t>{1, 3}));
    EXPECT_NEAR(m.weights[0], 0.5, kTol);
    EXPECT_NEAR(m.weights[1], 0.5, kTol);
    EXPECT_NEAR(m.objective, 1.25, kTol);
    EXPECT_NEAR(m.violations[0], 0.3, kTol);
    EXPECT_NEAR(m.violations[1], 0.3, kTol);
  }
}

/// The least objective over mixtures of two candidates a, b (weight q on a, 1 - q on b) with
/// every expected violation <= 0, by hand: each constraint q g_a + (1 - q) g_b <= 0 bounds q
/// to an interval, and the linear objective is least at an end of the intersection.
double best_pair(double fa, double fb, const std::vector<double>& ga,
                 const std::vector<double>& gb) {
  double lo = 0.0, hi = 1.0;
  for (size_t j = 0; j < ga.size(); ++j) {
    const double slope = ga[j] - gb[j];  // q * slope + gb <= 0
    if (slope > 0) {
      hi = std::min(hi, -gb[j] / slope);
    } else if (slope < 0) {
      lo = std::max(lo, -gb[j] / slope);
    } else if (gb[j] > 0) {
      return kInf;
    }
  }
  if (lo > hi) return kInf;
  auto value = [&](double q) { return q * fa + (1 - q) * fb; };
  return std::min(value(lo), value(hi));
}

TEST(Shrink, RandomInstancesUseAtMostMPlusOneCandidates) {
  const size_t m = 3, n = 20;
  for (unsigned seed = 1; seed <= 5; ++seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<double> uf(0.0, 1.0), ug(-1.0, 1.0);
    std::vector<double> f(n);
    std::vector<std::vector<double>> g(n, std::vector<double>(m));
    for (size_t t = 0; t < n; ++t) {
      f[t] = uf(rng);
      for (auto& v : g[t]) v = ug(rng);
    }
    const Mixture mix = shrink(f, g);
    SCOPED_TRACE("seed " + std::to_string(seed));
    ASSERT_TRUE(mix.feasible);  // with g uniform on [-1, 1], some mixtures are feasible
    EXPECT_LE(mix.candidates.size(), m + 1);
    double total = 0.0, objective = 0.0;
    std::vector<double> mixed(m, 0.0);
    for (size_t i = 0; i < mix.candidates.size(); ++i) {
      EXPECT_GT(mix.weights[i], 0.0);
      total += mix.weights[i];
      objective += mix.weights[i] * f[mix.candidates[i]];
      for (size_t j = 0; j < m; ++j) mixed[j] += mix.weights[i] * g[mix.candidates[i]][j];
    }
    EXPECT_NEAR(total, 1.0, kTol);
    EXPECT_NEAR(objective, mix.objective, kTol);
    for (size_t j = 0; j < m; ++j) {
      EXPECT_LE(mixed[j], 1e-9);  // rounding of O(1) sums is ~1e-16; 1e-9 leaves room
      EXPECT_NEAR(mixed[j], mix.violations[j], kTol);
    }
    // Optimal over all mixtures, hence no worse than any feasible candidate alone or any
    // feasible mixture of two (best_pair, an independent hand formula).
    for (size_t a = 0; a < n; ++a) {
      if (*std::max_element(g[a].begin(), g[a].end()) <= 0) {
        EXPECT_LE(mix.objective, f[a] + kTol);
      }
      for (size_t b = a + 1; b < n; ++b) {
        EXPECT_LE(mix.objective, best_pair(f[a], f[b], g[a], g[b]) + kTol);
      }
    }
  }
}

TEST(Shrink, RefusesBadInput) {
  EXPECT_HAS(error_of([] { shrink({}, {}); }), "shrink: no candidate (objectives is empty)");
  EXPECT_HAS(error_of([] {
               shrink({0.1, 0.2}, {{0.1}});
             }),
             "shrink: got 2 objectives but 1 violation lists");
  EXPECT_HAS(error_of([] {
               shrink({0.1, 0.2}, {{0.1, 0.2}, {0.3}});
             }),
             "shrink: violations[1] has 1 entries but violations[0] has 2 (ragged");
  EXPECT_HAS(error_of([] {
               shrink({0.1, kInf}, {{0.1}, {0.3}});
             }),
             "shrink: objectives[1] must be finite, got inf");
  EXPECT_HAS(error_of([] {
               shrink({0.1, 0.2}, {{0.1}, {kNaN}});
             }),
             "shrink: violations[1][0] must be finite, got nan");
}

// ---- the mixture of a BestIterate, and deploying it ----

TEST(BestIterate, MixtureOfTheKeptCandidatesAndItsMembersRestore) {
  // The candidates of Shrink.TwoCandidatesOneConstraintMixHalfAndHalf plus an infeasible one
  // (0.5 > 0) that any weight would only hurt: the same half-and-half mixture of 0 and 1.
  BestIterate keeper(BestIterateOptions().keep_all(true));
  keeper.offer(10, 0.0, {0.2}, params(10));
  keeper.offer(20, 1.0, {-0.2}, params(20));
  keeper.offer(30, 2.0, {0.5}, params(30));
  EXPECT_EQ(keeper.best().step, 20);  // the only feasible one
  const Mixture m = keeper.mixture();
  ASSERT_EQ(m.candidates, (std::vector<int64_t>{0, 1}));
  EXPECT_NEAR(m.objective, 0.5, kTol);
  auto model = params(0);
  keeper.restore_candidate(static_cast<size_t>(m.candidates[0]), model);
  EXPECT_TRUE(torch::equal(model[1], torch::full({3}, 10.0, torch::kFloat64)));
}

TEST(BestIterate, MixtureHonoursTheTolerance) {
  // Tolerance 0.1: the constraint reads 0.2 p0 - 0.2 p1 <= 0.1 with p1 = 1 - p0, so
  // p0 <= 3/4; the objective p1 is least at p0 = 3/4: objective 0.25, violation 0.1.
  BestIterate keeper(BestIterateOptions().tolerance(0.1));
  keeper.offer(1, 0.0, {0.2}, {});
  keeper.offer(2, 1.0, {-0.2}, {});
  const Mixture m = keeper.mixture();
  EXPECT_TRUE(m.feasible);
  EXPECT_NEAR(m.objective, 0.25, kTol);
  EXPECT_NEAR(m.violations[0], 0.1, kTol);
}

TEST(Mixture, SampleFollowsTheWeights) {
  Mixture m;
  m.candidates = {4, 9};
  m.weights = {0.25, 0.75};
  auto gen = at::detail::createCPUGenerator(123);
  const int draws = 20000;
  int fours = 0;
  for (int i = 0; i < draws; ++i) {
    const int64_t c = m.sample(gen);
    ASSERT_TRUE(c == 4 || c == 9);
    fours += c == 4 ? 1 : 0;
  }
  // Binomial(20000, 0.25): standard deviation sqrt(20000 * 0.25 * 0.75) ~ 61; allow 5 of them.
  EXPECT_NEAR(fours, 5000, 5 * 61.3);
  // The same seed gives the same draws.
  auto a = at::detail::createCPUGenerator(7), b = at::detail::createCPUGenerator(7);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(m.sample(a), m.sample(b));
  Mixture empty;
  EXPECT_HAS(error_of([&] { empty.sample(gen); }), "Mixture::sample: the mixture is empty");
}

}  // namespace
