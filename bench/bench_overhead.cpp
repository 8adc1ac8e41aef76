// Per-step overhead of constrained training with feasible, against a fixed penalty and against
// plain unconstrained training (docs/performance.md explains the figures).
//
// A plain harness, not Google Benchmark's runner: the variants of one section are timed in
// alternation (A B C A B C ...), each turn running a block of steps, so that slow drifts of a
// shared, noisy machine hit every variant alike. It prints per-step medians, standard
// deviations and minima, and each ratio three ways: the ratio of the medians, the ratio of the
// minima, and the median (with quartiles) of the per-round ratios (each round times every
// variant back to back, so that ratio is paired; it is the one compared with the goals).
// The defaults take 65-75 s on a 2-core machine.
//
// Sections:
//   a  2-D linear classifier (experiment E2's data, docs/experiments.md), full batch of 400,
//      BCE, SGD 2e-2; unconstrained, fixed penalty (UnconstrainedOptimizer), Lagrangian with proxy
//      constraint (SimultaneousOptimizer, dual SGD, strict violation = exact 0-1 rate).
//   b  MLP 784-300-100-10 (ReLU), batch 256 of synthetic data, cross-entropy, Adam 1e-3;
//      the same three variants with "mean predicted probability of class 0 <= 0.2".
//   c  step() machinery alone: x in R^10, loss ||x||^2, A x <= b with 5 rows, every scheme,
//      against hand-written gradient descent-ascent loops (the floor).
// Every section also times the same steps written by hand (plain LibTorch loops) and
// "prototype: lean" variants: LeanStep below, a re-implementation of SimultaneousOptimizer /
// UnconstrainedOptimizer::step for dense constraints with the same semantics and result but
// fewer tensor operations. The prototypes are NOT library code; they show what
// src/constrained_optimizer.cpp could gain. Each run checks that they compute exactly what
// the library computes (the "check:" lines).
//
// Flags: --threads N (default 1), --rounds R, --steps-a K, --steps-b K, --steps-c K,
//        --warmup W (steps per variant before timing), --sections abc, --no-lean,
//        --count-ops N (count ATen operator calls over N steps instead of timing; with
//        --list-ops, list them by name), --only NAME (only the variants tagged NAME, or if
//        none, those whose name contains NAME; e.g. for a profiler).
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Dispatch.h>
#include <ATen/record_function.h>
#include <feasible/feasible.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "bench_util.h"

namespace {

using feasible_bench::int_flag;
using feasible_bench::median_of;
using feasible_bench::quantile_of;
using feasible_bench::Stats;
using feasible_bench::stats_of;

namespace F = torch::nn::functional;
using Clock = std::chrono::steady_clock;
using Optimizers = std::vector<std::shared_ptr<torch::optim::Optimizer>>;

struct Config {
  int threads = 1;
  int rounds = 150;
  int steps_a = 40;
  int steps_b = 3;
  int steps_c = 50;
  int warmup = 0;  // 0: one block per variant
  std::string sections = "abc";
  bool lean = true;
  int count_ops = 0;  // > 0: count ATen operator calls over this many steps instead of timing
  bool list_ops = false;
  std::string only;  // non-empty: run only the variants whose name contains this
};

// ---------------------------------------------------------------- operator counting

// Counts the ATen operators (RecordFunction scope FUNCTION: every dispatcher call, nested ones
// included) and the autograd nodes run in backward (scope BACKWARD_FUNCTION). "top-level"
// counts only calls made at nesting depth 0, i.e. by the user's, the library's or the autograd
// engine's own code.
struct OpCounter {
  std::mutex mu;
  std::map<std::string, std::pair<long, long>> top;  // name -> (calls, calls nested in them)
  long top_total = 0, all_total = 0;
};
OpCounter* g_counter = nullptr;
thread_local int g_depth = 0;
thread_local std::pair<long, long>* g_current = nullptr;

std::map<std::string, std::pair<long, long>> count_ops(const std::function<void()>& f, long& top,
                                                       long& all) {
  OpCounter counter;
  g_counter = &counter;
  auto handle = at::addGlobalCallback(
      at::RecordFunctionCallback(
          [](const at::RecordFunction& fn) -> std::unique_ptr<at::ObserverContext> {
            std::lock_guard<std::mutex> lock(g_counter->mu);
            if (g_depth++ == 0) {
              g_current = &g_counter->top[fn.name()];
              ++g_current->first;
              ++g_counter->top_total;
            }
            ++g_current->second;
            ++g_counter->all_total;
            return nullptr;
          },
          [](const at::RecordFunction&, at::ObserverContext*) { --g_depth; })
          .scopes({at::RecordScope::FUNCTION, at::RecordScope::BACKWARD_FUNCTION}));
  f();
  at::removeCallback(handle);
  g_counter = nullptr;
  top = counter.top_total;
  all = counter.all_total;
  return counter.top;
}

// ---------------------------------------------------------------- harness

struct Variant {
  std::string tag;               // a short name, used in the ratios
  std::string name;              // what it is
  std::function<void(int)> run;  // runs n training steps
};

// A ratio of two variants' per-step times, named by the variants' tags.
struct Ratio {
  std::string num, den;
  double goal = 0;  // <= 0: no goal
};

// Prints operator counts per step of every variant (the --count-ops mode).
void print_op_counts(const char* title, std::vector<Variant>& variants, const Config& cfg) {
  const int n = cfg.count_ops;
  std::printf("\n== %s\n   ATen operator calls per step (mean over %d steps after warm-up)\n",
              title, n);
  std::printf("   %-12s %-46s %10s %11s\n", "tag", "variant", "top-level", "all nested");
  if (cfg.list_ops)
    std::printf("        (listed: calls, calls with the nested ones, top-level name)\n");
  for (auto& v : variants) {
    v.run(std::max(cfg.warmup, 3));
    long top = 0, all = 0;
    auto names = count_ops([&] { v.run(n); }, top, all);
    std::printf("   %-12s %-46s %10.1f %11.1f\n", v.tag.c_str(), v.name.c_str(), double(top) / n,
                double(all) / n);
    if (cfg.list_ops) {
      // Per top-level operator: calls per step, and dispatcher calls per step including
      // everything nested in them.
      std::vector<std::pair<std::pair<long, long>, std::string>> sorted;
      for (const auto& e : names) {
        sorted.push_back({{-e.second.second, -e.second.first}, e.first});
      }
      std::sort(sorted.begin(), sorted.end());
      for (const auto& e : sorted) {
        std::printf("        %6.2f %7.2f  %s\n", double(-e.first.second) / n,
                    double(-e.first.first) / n, e.second.c_str());
      }
    }
  }
}

// Times every variant in alternation; returns per-step seconds, [variant][round].
std::vector<std::vector<double>> measure(std::vector<Variant>& variants, int steps, int rounds,
                                         int warmup) {
  for (auto& v : variants) v.run(warmup > 0 ? warmup : steps);
  std::vector<std::vector<double>> t(variants.size());
  for (int r = 0; r < rounds; ++r) {
    for (size_t i = 0; i < variants.size(); ++i) {
      const auto t0 = Clock::now();
      variants[i].run(steps);
      const auto t1 = Clock::now();
      t[i].push_back(std::chrono::duration<double>(t1 - t0).count() / steps);
    }
  }
  return t;
}

void report(const char* title, const std::vector<Variant>& variants,
            const std::vector<std::vector<double>>& t, const std::vector<Ratio>& ratios, int steps,
            int rounds) {
  std::printf("\n== %s\n   %d rounds x %d steps per variant; microseconds per step\n", title,
              rounds, steps);
  std::printf("   %-12s %-46s %9s %8s %9s\n", "tag", "variant", "median", "stddev", "min");
  auto find = [&](const std::string& tag) {
    for (size_t i = 0; i < variants.size(); ++i) {
      if (variants[i].tag == tag) return i;
    }
    return SIZE_MAX;
  };
  for (size_t i = 0; i < variants.size(); ++i) {
    const Stats s = stats_of(t[i]);
    std::printf("   %-12s %-46s %9.1f %8.1f %9.1f\n", variants[i].tag.c_str(),
                variants[i].name.c_str(), s.median * 1e6, s.stddev * 1e6, s.min * 1e6);
  }
  bool header = false;
  for (const auto& r : ratios) {
    const size_t num = find(r.num), den = find(r.den);
    if (num == SIZE_MAX || den == SIZE_MAX) continue;  // filtered out by --only
    if (!header) {
      std::printf("   %-25s %8s %8s %7s %22s  %s\n", "ratio", "medians", "mins",
                  "paired:", "median [IQR]", "goal");
      header = true;
    }
    std::vector<double> paired;
    for (size_t k = 0; k < t[num].size(); ++k) paired.push_back(t[num][k] / t[den][k]);
    const double m = median_of(t[num]) / median_of(t[den]);
    const double mins = *std::min_element(t[num].begin(), t[num].end()) /
                        *std::min_element(t[den].begin(), t[den].end());
    char goal[32] = "-";
    if (r.goal > 0) {
      std::snprintf(goal, sizeof goal, "<= %.2f %s", r.goal,
                    median_of(paired) <= r.goal ? "met" : "MISSED");
    }
    const std::string what = r.num + " / " + r.den;
    std::printf("   %-25s %8.3f %8.3f %15.3f [%.3f, %.3f]  %s\n", what.c_str(), m, mins,
                median_of(paired), quantile_of(paired, 0.25), quantile_of(paired, 0.75), goal);
  }
}

// Keeps the variants selected by --only; counts operators or times the variants and prints
// the table.
void run_section(const char* title, std::vector<Variant> variants, const std::vector<Ratio>& ratios,
                 int steps, const Config& cfg) {
  if (!cfg.only.empty()) {
    // Variants tagged exactly NAME; if none, those whose name contains NAME.
    const bool by_tag = std::any_of(variants.begin(), variants.end(),
                                    [&](const Variant& v) { return v.tag == cfg.only; });
    std::vector<Variant> kept;
    for (auto& v : variants) {
      if (by_tag ? v.tag == cfg.only : v.name.find(cfg.only) != std::string::npos) {
        kept.push_back(v);
      }
    }
    variants = std::move(kept);
    if (variants.empty()) return;
  }
  if (cfg.count_ops > 0) return print_op_counts(title, variants, cfg);
  const auto t = measure(variants, steps, cfg.rounds, cfg.warmup);
  report(title, variants, t, ratios, steps, cfg.rounds);
}

// ---------------------------------------------------------------- the lean prototype

// PROTOTYPE, not library code: SimultaneousOptimizer::step (with a dual optimizer) or
// UnconstrainedOptimizer::step (without) for problems whose constraints are dense, with the
// same semantics and the same StepResult, written to spend fewer tensor operations:
//  1. the non-finite check reads the values on the host (CPU tensors: a loop over the data, no
//     ATen operator at all; kFusedSum: one sum per tensor, added up, and one .item(), the form
//     that also suits GPUs) instead of isfinite + all per tensor, a stack, an all and an .item();
//     the strict violation is not checked again when it is the violation itself;
//  2. no reshape of tensors that already have the right shape (the library's loss.reshape({})
//     and violation.reshape({size}) each add a view and an autograd node to the backward pass);
//  3. no redundant detach() of tensors that are already detached, no copy of a violation
//     unless it shares storage with a parameter that the step changes in place (a pointer
//     comparison tells), nor of a penalty coefficient that no updater can change;
//  4. the dual gradient is written by one torch::neg_out into a per-multiplier buffer instead of
//     neg + to + reshape + clone;
//  5. the projection clamps the cached multiplier tensor directly.
// Penalty updaters, primal projections, indexed and implicit multipliers are left out.
class LeanStep {
 public:
  /// kLibraryCheck: the library's own check (isfinite + all per tensor, stack, all, item), to
  /// show how much of the difference it makes.
  enum class Check { kHostScan, kFusedSum, kLibraryCheck };

  LeanStep(feasible::Problem problem, Optimizers primal,
           std::shared_ptr<torch::optim::Optimizer> dual, Check check)
      : problem_(std::move(problem)),
        primal_(std::move(primal)),
        dual_(std::move(dual)),
        check_(check) {
    for (const auto& c : problem_.constraints()) {
      TORCH_CHECK(c.options().multiplier() == feasible::MultiplierKind::kDense &&
                      !c.options().penalty_updater(),
                  "LeanStep: dense constraints without penalty updaters only");
      Slot slot;
      slot.constraint = c;
      if (c.multiplier()) {
        slot.param = c.multiplier()->parameters().at(0);
        slot.buffer = torch::zeros_like(slot.param);
        slot.max_value = c.multiplier()->max_value();
      }
      slots_.push_back(std::move(slot));
    }
  }

  feasible::StepResult step(const feasible::Closure& closure) {
    feasible::StepResult result;
    result.iteration = iteration_++;
    result.constraints.resize(slots_.size());
    for (size_t i = 0; i < slots_.size(); ++i) {
      result.constraints[i].name = slots_[i].constraint.name();
      result.constraints[i].kind = slots_[i].constraint.kind();
    }
    feasible::ProblemState state = closure();
    const torch::Tensor& loss = state.loss;
    TORCH_CHECK(loss.defined() && loss.is_floating_point() && loss.numel() == 1,
                "LeanStep: the loss must be a floating-point scalar");
    // Validation: metadata only, no tensor operations.
    items_.clear();
    for (const auto& entry : state.observed) {
      const auto& c = entry.first;
      const auto& cs = entry.second;
      TORCH_CHECK(c.problem_id() == problem_.id(), "LeanStep: constraint of another problem");
      Item item;
      item.slot = &slots_[c.index()];
      item.state = &cs;
      item.v = cs.violation();
      TORCH_CHECK(item.v.defined() && item.v.is_floating_point(), "LeanStep: bad violation");
      TORCH_CHECK(
          (item.v.dim() == 1 && item.v.size(0) == c.size()) || (item.v.dim() == 0 && c.size() == 1),
          "LeanStep: violation shape");
      if (item.v.dim() == 0) item.v = item.v.reshape({1});
      const auto& s = cs.strict_violation();
      // Copy a violation only when it shares storage with a tensor that this step changes in
      // place (a primal or dual parameter, e.g. a violation that is a view of a parameter):
      // the output of an ordinary operator has storage of its own.
      if (s.defined()) {
        TORCH_CHECK(s.is_floating_point() && s.numel() == c.size(), "LeanStep: bad strict");
        item.s = aliases_state(s) ? s.detach().clone() : (s.requires_grad() ? s.detach() : s);
        item.s_is_v = false;
      } else {
        const auto& raw = cs.violation();
        item.s = aliases_state(raw) ? raw.detach().clone() : raw.detach();
        item.s_is_v = true;
      }
      items_.push_back(std::move(item));
    }
    std::sort(items_.begin(), items_.end(), [](const Item& a, const Item& b) {
      return a.slot->constraint.index() < b.slot->constraint.index();
    });
    if (check_ == Check::kLibraryCheck) {
      std::vector<torch::Tensor> checks;
      checks.push_back(torch::isfinite(loss.detach()).all());
      for (const auto& item : items_) {
        checks.push_back(torch::isfinite(item.v.detach()).all());
        checks.push_back(torch::isfinite(item.s).all());
      }
      TORCH_CHECK(torch::stack(checks).all().item<bool>(), "LeanStep: non-finite value");
    } else if (check_ == Check::kFusedSum) {
      // If the sum of every value is finite, every value is (NaN and Inf propagate through a
      // sum; Inf + -Inf is NaN). A non-finite sum of finite values (an overflow) would be a
      // false alarm: the library would then run its exact per-tensor check to name the
      // culprit, and go on when there is none.
      torch::NoGradGuard no_grad;
      torch::Tensor acc = loss.sum();
      for (const auto& item : items_) {
        acc = acc + item.v.sum();
        if (!item.s_is_v) acc = acc + item.s.sum();
      }
      TORCH_CHECK(std::isfinite(acc.item<double>()), "LeanStep: non-finite value (kThrow)");
    } else {
      TORCH_CHECK(all_finite(loss), "LeanStep: non-finite loss (kThrow)");
      for (const auto& item : items_) {
        TORCH_CHECK(all_finite(item.v), "LeanStep: non-finite violation (kThrow)");
        TORCH_CHECK(item.s_is_v || all_finite(item.s), "LeanStep: non-finite strict violation");
      }
    }
    // Primal Lagrangian and one backward pass.
    for (auto& o : primal_) o->zero_grad();
    torch::Tensor lagrangian = loss.dim() == 0 ? loss : loss.reshape({});
    for (auto& item : items_) {
      const auto& c = item.slot->constraint;
      // A copy: the dual step changes the multiplier in place before the result is returned.
      if (item.slot->param.defined()) item.lambda = item.slot->param.detach().clone();
      if (c.penalty()) item.penalty = c.penalty()->value();
      if (!item.state->contributes_to_primal()) continue;
      lagrangian =
          lagrangian + c.formulation()->primal_term(item.v, item.lambda, item.penalty, c.kind());
    }
    if (lagrangian.requires_grad()) lagrangian.backward();
    // Dual gradients: -ascent, written into a reused buffer.
    for (auto& slot : slots_) {
      if (slot.param.defined()) slot.param.mutable_grad() = torch::Tensor();
    }
    for (auto& item : items_) {
      const auto& c = item.slot->constraint;
      if (!item.slot->param.defined() || !item.state->contributes_to_dual()) continue;
      torch::Tensor ascent = c.formulation()->dual_ascent(item.s, item.penalty, c.kind());
      if (ascent.dim() == 0) ascent = ascent.reshape({1});
      torch::neg_out(item.slot->buffer, ascent);
      item.slot->param.mutable_grad() = item.slot->buffer;
    }
    for (auto& o : primal_) o->step();
    if (dual_) {
      dual_->step();
      torch::NoGradGuard no_grad;
      for (auto& slot : slots_) {
        if (!slot.param.defined()) continue;
        if (slot.constraint.kind() == feasible::ConstraintKind::kInequality) {
          if (slot.max_value) {
            slot.param.clamp_(0.0, *slot.max_value);
          } else {
            slot.param.clamp_min_(0.0);
          }
        } else if (slot.max_value) {
          slot.param.clamp_(-*slot.max_value, *slot.max_value);
        }
      }
    }
    // The result (the library also clones the penalty; without an updater it cannot change).
    result.loss = loss.detach();
    result.lagrangian = lagrangian.detach();
    result.metrics = state.metrics;
    for (auto& item : items_) {
      auto& cr = result.constraints[item.slot->constraint.index()];
      cr.observed = true;
      cr.violation = item.s_is_v             ? item.s
                     : aliases_state(item.v) ? item.v.detach().clone()
                                             : item.v.detach();
      cr.strict_violation = item.s;
      cr.multiplier = item.lambda;
      cr.penalty = item.penalty;
    }
    return result;
  }

 private:
  struct Slot {
    feasible::Constraint constraint;
    torch::Tensor param, buffer;
    c10::optional<double> max_value;
  };
  struct Item {
    Slot* slot = nullptr;
    const feasible::ConstraintState* state = nullptr;
    torch::Tensor v, s, lambda, penalty;
    bool s_is_v = false;
  };

  // Whether `t` shares storage with a tensor that the step changes in place. Pointer
  // comparisons only (a handful of parameters), no tensor operation.
  bool aliases_state(const torch::Tensor& t) const {
    if (!t.has_storage()) return true;  // be safe
    const void* st = t.storage().unsafeGetStorageImpl();
    auto same = [&](const torch::Tensor& p) {
      return p.has_storage() && p.storage().unsafeGetStorageImpl() == st;
    };
    for (const auto& o : primal_) {
      for (const auto& g : o->param_groups()) {
        for (const auto& p : g.params()) {
          if (same(p)) return true;
        }
      }
    }
    for (const auto& slot : slots_) {
      if (slot.param.defined() && same(slot.param)) return true;
    }
    return false;
  }

  // Whether every entry of `t` is finite: a loop over the data on the host (CPU tensors).
  bool all_finite(const torch::Tensor& t) const {
    if (!t.is_cpu()) {
      torch::NoGradGuard no_grad;
      return std::isfinite(t.sum().item<double>());  // see kFusedSum
    }
    const torch::Tensor c = t.is_contiguous() ? t : t.contiguous();
    bool ok = true;
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, c.scalar_type(), "all_finite", [&] {
      const scalar_t* p = c.data_ptr<scalar_t>();
      for (int64_t i = 0, n = c.numel(); i < n; ++i) {
        if (!std::isfinite(static_cast<double>(p[i]))) {
          ok = false;
          break;
        }
      }
    });
    return ok;
  }

  feasible::Problem problem_;
  Optimizers primal_;
  std::shared_ptr<torch::optim::Optimizer> dual_;
  Check check_;
  std::vector<Slot> slots_;
  std::vector<Item> items_;
  int64_t iteration_ = 0;
};

// Runs `steps` steps of a library scheme and of the lean prototype from the same state and
// prints the largest absolute difference of the states (parameters and multipliers) and of the
// last StepResults, so that the prototype is seen to compute the same thing.
void compare_with_library(const char* what, const std::function<feasible::StepResult()>& lib,
                          const std::function<feasible::StepResult()>& lean,
                          const std::vector<torch::Tensor>& lib_state,
                          const std::vector<torch::Tensor>& lean_state, int steps) {
  feasible::StepResult a, b;
  for (int i = 0; i < steps; ++i) {
    a = lib();
    b = lean();
  }
  double diff = 0;
  auto upd = [&](const torch::Tensor& x, const torch::Tensor& y) {
    if (!x.defined() && !y.defined()) return;
    TORCH_CHECK(x.defined() && y.defined(), "compare_with_library: one side is undefined");
    diff = std::max(diff, (x.detach().reshape({-1}).to(torch::kDouble) -
                           y.detach().reshape({-1}).to(torch::kDouble))
                              .abs()
                              .max()
                              .item<double>());
  };
  for (size_t i = 0; i < lib_state.size(); ++i) upd(lib_state[i], lean_state[i]);
  upd(a.loss, b.loss);
  upd(a.lagrangian, b.lagrangian);
  for (size_t i = 0; i < a.constraints.size(); ++i) {
    upd(a.constraints[i].violation, b.constraints[i].violation);
    upd(a.constraints[i].strict_violation, b.constraints[i].strict_violation);
    upd(a.constraints[i].multiplier, b.constraints[i].multiplier);
  }
  std::printf("   check: %s, %d steps: largest |library - prototype| = %.3g\n", what, steps, diff);
}

// ---------------------------------------------------------------- section a

struct LinearData {
  torch::Tensor x, y;
};

// Experiment E2's data (docs/experiments.md): one CPU generator seeded 0; 100 points per Gaussian,
// variance 0.05.
LinearData linear_data() {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(0);
  const double means[4][2] = {{0, 1}, {-1, 0}, {0, -1}, {1, 0}};
  const double labels[4] = {1, 1, 0, 0};
  std::vector<torch::Tensor> xs, ys;
  for (int k = 0; k < 4; ++k) {
    xs.push_back(torch::randn({100, 2}, gen) * std::sqrt(0.05) +
                 torch::tensor({means[k][0], means[k][1]}, torch::kFloat));
    ys.push_back(torch::full({100}, labels[k]));
  }
  return {torch::cat(xs), torch::cat(ys)};
}

struct LinearModel {
  torch::Tensor w = torch::tensor({1.0f, -1.0f}).requires_grad_();
  torch::Tensor b = torch::zeros({1}).requires_grad_();
  torch::Tensor logits(const torch::Tensor& x) const { return torch::addmv(b, x, w); }
  std::vector<torch::Tensor> params() const { return {w, b}; }
};

void section_a(const Config& cfg) {
  const LinearData d = linear_data();
  const double lr = 2e-2, level = 0.7, c = 2.15, dual_lr = 1e-2;
  // Rate surrogate: mean(1 - sigmoid(logit)) >= 0.7, violation 0.7 - mean(1 - sigmoid).
  auto surrogate = [=](const torch::Tensor& z) { return level - (1 - torch::sigmoid(z)).mean(); };
  // The exact 0-1 rate of class-0 predictions (logit < 0), violation 0.7 - rate.
  auto exact = [=](const torch::Tensor& z) {
    return level - (z.detach() < 0).to(torch::kFloat).mean();
  };
  auto sgd = [=](const LinearModel& m) {
    return std::make_shared<torch::optim::SGD>(m.params(), torch::optim::SGDOptions(lr));
  };
  auto penalty_problem = [=](feasible::Problem& p) {
    return p.add_constraint("class0_rate",
                            feasible::ConstraintOptions()
                                .formulation(std::make_shared<feasible::FixedPenalty>())
                                .penalty(c));
  };
  auto dual_sgd = [=](const feasible::Problem& p) {
    return std::make_shared<torch::optim::SGD>(p.dual_parameters(),
                                               torch::optim::SGDOptions(dual_lr));
  };
  // The closures of the library variants.
  auto penalized_state = [=](const LinearModel& m, const feasible::Constraint& con) {
    auto z = m.logits(d.x);
    feasible::ProblemState st(F::binary_cross_entropy_with_logits(z, d.y));
    st.observe(con, feasible::ConstraintState(surrogate(z)));
    return st;
  };
  auto proxy_state = [=](const LinearModel& m, const feasible::Constraint& con) {
    auto z = m.logits(d.x);
    feasible::ProblemState st(F::binary_cross_entropy_with_logits(z, d.y));
    st.observe(con, feasible::ConstraintState(surrogate(z)).strict_violation(exact(z)));
    return st;
  };

  const std::string U = "U";
  const std::string P = "P";
  const std::string C = "C";
  const std::string CN = "C-noproxy";
  const std::string PH = "P-hand";
  const std::string CH = "C-hand";
  const std::string LP = "P-lean";
  const std::string LC = "C-lean";
  const std::string LF = "C-leanSum";
  const std::map<std::string, std::string> names = {
      {U, "unconstrained (plain torch loop)"},
      {P, "penalized (FixedPenalty, UnconstrainedOpt.)"},
      {C, "constrained (Lagrangian proxy, Simultaneous)"},
      {CN, "constrained, no proxy (strict = surrogate)"},
      {PH, "penalized by hand (plain torch loop)"},
      {CH, "constrained proxy by hand (plain torch loop)"},
      {LP, "prototype: lean penalized (host scan)"},
      {LC, "prototype: lean constrained (host scan)"},
      {LF, "prototype: lean constrained (fused-sum check)"},
  };
  std::vector<Variant> variants;

  {
    auto m = std::make_shared<LinearModel>();
    auto o = sgd(*m);
    variants.push_back({U, names.at(U), [=](int n) {
                          for (int i = 0; i < n; ++i) {
                            o->zero_grad();
                            F::binary_cross_entropy_with_logits(m->logits(d.x), d.y).backward();
                            o->step();
                          }
                        }});
  }
  {
    auto m = std::make_shared<LinearModel>();
    feasible::Problem p;
    auto con = penalty_problem(p);
    auto o = std::make_shared<feasible::UnconstrainedOptimizer>(p, Optimizers{sgd(*m)});
    variants.push_back({P, names.at(P), [=](int n) {
                          for (int i = 0; i < n; ++i)
                            o->step([&] { return penalized_state(*m, con); });
                        }});
  }
  for (bool proxy : {true, false}) {
    auto m = std::make_shared<LinearModel>();
    feasible::Problem p;
    auto con = p.add_constraint("class0_rate", feasible::ConstraintOptions());
    auto o = std::make_shared<feasible::SimultaneousOptimizer>(p, Optimizers{sgd(*m)}, dual_sgd(p));
    variants.push_back(
        {proxy ? C : CN, names.at(proxy ? C : CN), [=](int n) {
           for (int i = 0; i < n; ++i) {
             o->step([&] { return proxy ? proxy_state(*m, con) : penalized_state(*m, con); });
           }
         }});
  }
  {
    auto m = std::make_shared<LinearModel>();
    auto o = sgd(*m);
    variants.push_back(
        {PH, names.at(PH), [=](int n) {
           for (int i = 0; i < n; ++i) {
             o->zero_grad();
             auto z = m->logits(d.x);
             (F::binary_cross_entropy_with_logits(z, d.y) + c * surrogate(z)).backward();
             o->step();
           }
         }});
  }
  {
    auto m = std::make_shared<LinearModel>();
    auto o = sgd(*m);
    auto lam = torch::zeros({1});
    variants.push_back(
        {CH, names.at(CH), [=](int n) {
           for (int i = 0; i < n; ++i) {
             o->zero_grad();
             auto z = m->logits(d.x);
             (F::binary_cross_entropy_with_logits(z, d.y) + (lam * surrogate(z)).sum()).backward();
             o->step();
             lam.add_(exact(z), dual_lr).clamp_min_(0.0);
           }
         }});
  }
  std::vector<Ratio> ratios = {{C, P, 1.05}, {C, U}, {P, U}, {CN, P}, {P, PH}, {C, CH}, {CH, PH}};
  if (cfg.lean) {
    {
      auto m = std::make_shared<LinearModel>();
      feasible::Problem p;
      auto con = penalty_problem(p);
      auto o =
          std::make_shared<LeanStep>(p, Optimizers{sgd(*m)}, nullptr, LeanStep::Check::kHostScan);
      variants.push_back({LP, names.at(LP), [=](int n) {
                            for (int i = 0; i < n; ++i)
                              o->step([&] { return penalized_state(*m, con); });
                          }});
    }
    for (auto check : {LeanStep::Check::kHostScan, LeanStep::Check::kFusedSum}) {
      auto m = std::make_shared<LinearModel>();
      feasible::Problem p;
      auto con = p.add_constraint("class0_rate", feasible::ConstraintOptions());
      auto o = std::make_shared<LeanStep>(p, Optimizers{sgd(*m)}, dual_sgd(p), check);
      variants.push_back({check == LeanStep::Check::kHostScan ? LC : LF,
                          names.at(check == LeanStep::Check::kHostScan ? LC : LF), [=](int n) {
                            for (int i = 0; i < n; ++i)
                              o->step([&] { return proxy_state(*m, con); });
                          }});
    }
    ratios.insert(ratios.end(), {{LC, LP, 1.05}, {LF, LP, 1.05}, {LP, PH}, {LC, CH}, {C, LC}});
  }
  run_section("a) linear classifier, 400 points, full batch, SGD", variants, ratios, cfg.steps_a,
              cfg);
  if (cfg.lean && cfg.count_ops == 0 && cfg.only.empty()) {
    LinearModel m1, m2;
    feasible::Problem p1, p2;
    auto c1 = p1.add_constraint("class0_rate", feasible::ConstraintOptions());
    auto c2 = p2.add_constraint("class0_rate", feasible::ConstraintOptions());
    feasible::SimultaneousOptimizer o1(p1, Optimizers{sgd(m1)}, dual_sgd(p1));
    LeanStep o2(p2, Optimizers{sgd(m2)}, dual_sgd(p2), LeanStep::Check::kHostScan);
    compare_with_library(
        "a) Simultaneous vs lean, proxy constraint",
        [&] { return o1.step([&] { return proxy_state(m1, c1); }); },
        [&] { return o2.step([&] { return proxy_state(m2, c2); }); },
        {m1.w, m1.b, p1.multiplier_values("class0_rate")},
        {m2.w, m2.b, p2.multiplier_values("class0_rate")}, 300);
  }
}

// ---------------------------------------------------------------- section b

torch::nn::Sequential make_mlp() {
  torch::manual_seed(0);  // the same initial weights in every variant
  return torch::nn::Sequential(torch::nn::Linear(784, 300), torch::nn::ReLU(),
                               torch::nn::Linear(300, 100), torch::nn::ReLU(),
                               torch::nn::Linear(100, 10));
}

void section_b(const Config& cfg) {
  // Synthetic data: 4 batches of 256 inputs, cycled, generated once (seeded).
  torch::manual_seed(1);
  std::vector<torch::Tensor> xs, ys;
  for (int k = 0; k < 4; ++k) {
    xs.push_back(torch::randn({256, 784}));
    ys.push_back(torch::randint(0, 10, {256}, torch::kLong));
  }
  const double lr = 1e-3, level = 0.2, c = 1.0, dual_lr = 1e-2;
  // Mean predicted probability of class 0 <= 0.2; violation mean(p_0) - 0.2.
  auto violation = [=](const torch::Tensor& logits) {
    return torch::softmax(logits, 1).select(1, 0).mean() - level;
  };
  auto adam = [=](const torch::nn::Sequential& m) {
    return std::make_shared<torch::optim::Adam>(m->parameters(), torch::optim::AdamOptions(lr));
  };
  auto dual_sgd = [=](const feasible::Problem& p) {
    return std::make_shared<torch::optim::SGD>(p.dual_parameters(),
                                               torch::optim::SGDOptions(dual_lr));
  };
  auto penalty_options = [=] {
    return feasible::ConstraintOptions()
        .formulation(std::make_shared<feasible::FixedPenalty>())
        .penalty(c);
  };
  // Runs n steps of `one(k)` on batches k = counter % 4.
  auto cycled = [](std::function<void(int)> one) {
    auto counter = std::make_shared<int>(0);
    return [=](int n) {
      for (int i = 0; i < n; ++i) one((*counter)++ % 4);
    };
  };
  auto state_of = [=](torch::nn::Sequential m, const feasible::Constraint& con, int k) {
    auto z = m->forward(xs[k]);
    feasible::ProblemState st(F::cross_entropy(z, ys[k]));
    st.observe(con, feasible::ConstraintState(violation(z)));
    return st;
  };

  const std::string U = "U";
  const std::string P = "P";
  const std::string C = "C";
  const std::string PH = "P-hand";
  const std::string CH = "C-hand";
  const std::string LP = "P-lean";
  const std::string LC = "C-lean";
  const std::map<std::string, std::string> names = {
      {U, "unconstrained (plain torch loop)"},
      {P, "penalized (FixedPenalty, UnconstrainedOpt.)"},
      {C, "constrained (Lagrangian, Simultaneous)"},
      {PH, "penalized by hand (plain torch loop)"},
      {CH, "constrained by hand (plain torch loop)"},
      {LP, "prototype: lean penalized (host scan)"},
      {LC, "prototype: lean constrained (host scan)"},
  };
  std::vector<Variant> variants;
  {
    auto m = make_mlp();
    auto o = adam(m);
    variants.push_back({U, names.at(U), cycled([=](int k) mutable {
                          o->zero_grad();
                          F::cross_entropy(m->forward(xs[k]), ys[k]).backward();
                          o->step();
                        })});
  }
  {
    auto m = make_mlp();
    feasible::Problem p;
    auto con = p.add_constraint("p0", penalty_options());
    auto o = std::make_shared<feasible::UnconstrainedOptimizer>(p, Optimizers{adam(m)});
    variants.push_back(
        {P, names.at(P), cycled([=](int k) { o->step([&] { return state_of(m, con, k); }); })});
  }
  {
    auto m = make_mlp();
    feasible::Problem p;
    auto con = p.add_constraint("p0", feasible::ConstraintOptions());
    auto o = std::make_shared<feasible::SimultaneousOptimizer>(p, Optimizers{adam(m)}, dual_sgd(p));
    variants.push_back(
        {C, names.at(C), cycled([=](int k) { o->step([&] { return state_of(m, con, k); }); })});
  }
  {
    auto m = make_mlp();
    auto o = adam(m);
    variants.push_back({PH, names.at(PH), cycled([=](int k) mutable {
                          o->zero_grad();
                          auto z = m->forward(xs[k]);
                          (F::cross_entropy(z, ys[k]) + c * violation(z)).backward();
                          o->step();
                        })});
  }
  {
    auto m = make_mlp();
    auto o = adam(m);
    auto lam = torch::zeros({1});
    variants.push_back({CH, names.at(CH), cycled([=](int k) mutable {
                          o->zero_grad();
                          auto z = m->forward(xs[k]);
                          auto v = violation(z);
                          (F::cross_entropy(z, ys[k]) + (lam * v).sum()).backward();
                          o->step();
                          lam.add_(v.detach(), dual_lr).clamp_min_(0.0);
                        })});
  }
  std::vector<Ratio> ratios = {{C, P, 1.02}, {C, U}, {P, U}, {P, PH}, {C, CH}, {CH, PH}};
  if (cfg.lean) {
    {
      auto m = make_mlp();
      feasible::Problem p;
      auto con = p.add_constraint("p0", penalty_options());
      auto o =
          std::make_shared<LeanStep>(p, Optimizers{adam(m)}, nullptr, LeanStep::Check::kHostScan);
      variants.push_back(
          {LP, names.at(LP), cycled([=](int k) { o->step([&] { return state_of(m, con, k); }); })});
    }
    {
      auto m = make_mlp();
      feasible::Problem p;
      auto con = p.add_constraint("p0", feasible::ConstraintOptions());
      auto o = std::make_shared<LeanStep>(p, Optimizers{adam(m)}, dual_sgd(p),
                                          LeanStep::Check::kHostScan);
      variants.push_back(
          {LC, names.at(LC), cycled([=](int k) { o->step([&] { return state_of(m, con, k); }); })});
    }
    ratios.insert(ratios.end(), {{LC, LP, 1.02}, {LP, PH}, {LC, CH}});
  }
  run_section("b) MLP 784-300-100-10, batch 256, Adam", variants, ratios, cfg.steps_b, cfg);
}

// ---------------------------------------------------------------- section c

void section_c(const Config& cfg) {
  torch::manual_seed(2);
  // b < 0 so that x = 0 is infeasible and the constraints stay active near the optimum.
  const torch::Tensor A = torch::randn({5, 10});
  const torch::Tensor B = torch::full({5}, -0.5);
  const torch::Tensor x0 = torch::randn({10});
  const double lr = 1e-2, dual_lr = 1e-2;
  auto fresh_x = [&] { return x0.clone().requires_grad_(); };
  auto sgd = [](std::vector<torch::Tensor> p, double l) {
    return std::make_shared<torch::optim::SGD>(std::move(p), torch::optim::SGDOptions(l));
  };
  auto state_of = [=](const torch::Tensor& x, const feasible::Constraint& con) {
    feasible::ProblemState st(x.pow(2).sum());
    st.observe(con, feasible::ConstraintState(torch::mv(A, x) - B));
    return st;
  };

  const std::string H1 = "hand-SGD";
  const std::string H2 = "hand-inplace";
  const std::string SIM = "Sim";
  const std::string LS = "Sim-lean";
  const std::string LF = "Sim-leanSum";
  const std::string LL = "Sim-libchk";
  const std::map<std::string, std::string> names = {
      {H1, "hand GDA, torch SGD both (floor)"},
      {H2, "hand GDA, in-place updates (floor)"},
      {SIM, "Simultaneous"},
      {LS, "prototype: lean Simultaneous (host scan)"},
      {LF, "prototype: lean Simultaneous (fused-sum check)"},
      {LL, "prototype: lean Simultaneous, old isfinite check"},
  };
  std::vector<Variant> variants;
  {
    auto x = fresh_x();
    auto lam = torch::zeros({5}).requires_grad_();
    auto po = sgd({x}, lr), dopt = sgd({lam}, dual_lr);
    variants.push_back({H1, names.at(H1), [=](int n) mutable {
                          for (int i = 0; i < n; ++i) {
                            po->zero_grad();
                            auto v = torch::mv(A, x) - B;
                            (x.pow(2).sum() + (lam.detach() * v).sum()).backward();
                            lam.mutable_grad() = -v.detach();
                            po->step();
                            dopt->step();
                            torch::NoGradGuard ng;
                            lam.clamp_min_(0.0);
                          }
                        }});
  }
  {
    auto x = fresh_x();
    auto lam = torch::zeros({5});
    variants.push_back({H2, names.at(H2), [=](int n) mutable {
                          for (int i = 0; i < n; ++i) {
                            x.mutable_grad() = torch::Tensor();
                            auto v = torch::mv(A, x) - B;
                            (x.pow(2).sum() + (lam * v).sum()).backward();
                            torch::NoGradGuard ng;
                            x.sub_(x.grad(), lr);
                            lam.add_(v.detach(), dual_lr).clamp_min_(0.0);
                          }
                        }});
  }

  // The library's schemes. kind: 0 plain SGD, 1 ExtraSGD, 2 quadratic penalty (no dual).
  using Make = std::function<std::shared_ptr<feasible::ConstrainedOptimizer>(
      feasible::Problem, Optimizers, std::shared_ptr<torch::optim::Optimizer>)>;
  auto add_scheme = [&](const std::string& tag, const std::string& name, Make make, int kind,
                        bool constraint_closure) {
    auto x = fresh_x();
    feasible::Problem p;
    auto opts = feasible::ConstraintOptions(feasible::ConstraintKind::kInequality, 5);
    if (kind == 2) opts.formulation(std::make_shared<feasible::QuadraticPenalty>()).penalty(1.0);
    auto con = p.add_constraint("Ax<=b", opts);
    std::shared_ptr<torch::optim::Optimizer> po, dopt;
    if (kind == 1) {
      po = std::make_shared<feasible::optim::ExtraSGD>(std::vector<torch::Tensor>{x},
                                                       feasible::optim::ExtraSGDOptions(lr));
      dopt = std::make_shared<feasible::optim::ExtraSGD>(p.dual_parameters(),
                                                         feasible::optim::ExtraSGDOptions(dual_lr));
    } else {
      po = sgd({x}, lr);
      if (kind == 0) dopt = sgd(p.dual_parameters(), dual_lr);
    }
    auto opt = make(p, Optimizers{po}, dopt);
    auto pd = std::dynamic_pointer_cast<feasible::AlternatingPrimalDualOptimizer>(opt);
    feasible::Closure closure = [=] { return state_of(x, con); };
    feasible::Closure cclosure = [=] {
      feasible::ProblemState st;
      st.observe(con, feasible::ConstraintState(torch::mv(A, x) - B));
      return st;
    };
    variants.push_back({tag, name, [=](int n) {
                          for (int i = 0; i < n; ++i) {
                            if (constraint_closure) {
                              pd->step(closure, cclosure);
                            } else {
                              opt->step(closure);
                            }
                          }
                        }});
  };
  using Dual = std::shared_ptr<torch::optim::Optimizer>;
  add_scheme(
      SIM, "Simultaneous",
      [](feasible::Problem p, Optimizers o, Dual d) {
        return std::make_shared<feasible::SimultaneousOptimizer>(p, o, d);
      },
      0, false);
  add_scheme(
      "AltDP", "AlternatingDualPrimal",
      [](feasible::Problem p, Optimizers o, Dual d) {
        return std::make_shared<feasible::AlternatingDualPrimalOptimizer>(p, o, d);
      },
      0, false);
  add_scheme(
      "AltPD", "AlternatingPrimalDual (full closure again)",
      [](feasible::Problem p, Optimizers o, Dual d) {
        return std::make_shared<feasible::AlternatingPrimalDualOptimizer>(p, o, d);
      },
      0, false);
  add_scheme(
      "AltPD-cc", "AlternatingPrimalDual (constraint closure)",
      [](feasible::Problem p, Optimizers o, Dual d) {
        return std::make_shared<feasible::AlternatingPrimalDualOptimizer>(p, o, d);
      },
      0, true);
  add_scheme(
      "Extra", "Extragradient (ExtraSGD both)",
      [](feasible::Problem p, Optimizers o, Dual d) {
        return std::make_shared<feasible::ExtragradientOptimizer>(p, o, d);
      },
      1, false);
  add_scheme(
      "Unc-QP", "Unconstrained (QuadraticPenalty)",
      [](feasible::Problem p, Optimizers o, Dual) {
        return std::make_shared<feasible::UnconstrainedOptimizer>(p, o);
      },
      2, false);

  std::vector<Ratio> ratios = {{SIM, H1}, {SIM, H2}};
  if (cfg.lean) {
    for (auto check :
         {LeanStep::Check::kHostScan, LeanStep::Check::kFusedSum, LeanStep::Check::kLibraryCheck}) {
      auto x = fresh_x();
      feasible::Problem p;
      auto con = p.add_constraint(
          "Ax<=b", feasible::ConstraintOptions(feasible::ConstraintKind::kInequality, 5));
      auto o = std::make_shared<LeanStep>(p, Optimizers{sgd({x}, lr)},
                                          sgd(p.dual_parameters(), dual_lr), check);
      const std::string tag = check == LeanStep::Check::kHostScan   ? LS
                              : check == LeanStep::Check::kFusedSum ? LF
                                                                    : LL;
      variants.push_back({tag, names.at(tag), [=](int n) {
                            for (int i = 0; i < n; ++i) o->step([&] { return state_of(x, con); });
                          }});
    }
    ratios.insert(ratios.end(), {{SIM, LS}, {LS, H1}, {LF, H1}, {LL, LS}});
  }
  run_section("c) step() machinery: x in R^10, ||x||^2, 5 linear inequalities, SGD", variants,
              ratios, cfg.steps_c, cfg);
  if (cfg.lean && cfg.count_ops == 0 && cfg.only.empty()) {
    auto x1 = fresh_x(), x2 = fresh_x();
    feasible::Problem p1, p2;
    auto opts = feasible::ConstraintOptions(feasible::ConstraintKind::kInequality, 5);
    auto c1 = p1.add_constraint("Ax<=b", opts);
    auto c2 = p2.add_constraint("Ax<=b", opts);
    feasible::SimultaneousOptimizer o1(p1, Optimizers{sgd({x1}, lr)},
                                       sgd(p1.dual_parameters(), dual_lr));
    LeanStep o2(p2, Optimizers{sgd({x2}, lr)}, sgd(p2.dual_parameters(), dual_lr),
                LeanStep::Check::kFusedSum);
    compare_with_library(
        "c) Simultaneous vs lean", [&] { return o1.step([&] { return state_of(x1, c1); }); },
        [&] { return o2.step([&] { return state_of(x2, c2); }); },
        {x1, p1.multiplier_values("Ax<=b")}, {x2, p2.multiplier_values("Ax<=b")}, 300);
  }
}

}  // namespace

int main(int argc, char** argv) {
  Config cfg;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--threads") {
      cfg.threads = int_flag(i, argc, argv);
    } else if (a == "--rounds") {
      cfg.rounds = int_flag(i, argc, argv);
    } else if (a == "--steps-a") {
      cfg.steps_a = int_flag(i, argc, argv);
    } else if (a == "--steps-b") {
      cfg.steps_b = int_flag(i, argc, argv);
    } else if (a == "--steps-c") {
      cfg.steps_c = int_flag(i, argc, argv);
    } else if (a == "--warmup") {
      cfg.warmup = int_flag(i, argc, argv);
    } else if (a == "--sections" && i + 1 < argc) {
      cfg.sections = argv[++i];
    } else if (a == "--count-ops") {
      cfg.count_ops = int_flag(i, argc, argv);
    } else if (a == "--list-ops") {
      cfg.list_ops = true;
    } else if (a == "--only" && i + 1 < argc) {
      cfg.only = argv[++i];
    } else if (a == "--no-lean") {
      cfg.lean = false;
    } else {
      const Config d;
      std::printf(
          "usage: %s [--threads N=%d] [--rounds R=%d] [--steps-a K=%d] [--steps-b K=%d]\n"
          "          [--steps-c K=%d] [--warmup W=one block] [--sections abc] [--no-lean]\n"
          "          [--count-ops N [--list-ops]]  (count ATen operators per step, no timing)\n"
          "          [--only NAME]  (only the variants tagged NAME, else those whose name contains "
          "it)\n",
          argv[0], d.threads, d.rounds, d.steps_a, d.steps_b, d.steps_c);
      return a == "--help" || a == "-h" ? 0 : 2;
    }
  }
  if (cfg.threads < 1 || cfg.rounds < 1 || cfg.steps_a < 1 || cfg.steps_b < 1 || cfg.steps_c < 1 ||
      cfg.count_ops < 0 || cfg.warmup < 0) {
    std::fprintf(stderr, "threads, rounds and steps must be >= 1\n");
    return 2;
  }
  torch::set_num_threads(cfg.threads);
  std::printf("feasible %s overhead benchmark; LibTorch threads: %d\n", feasible::kVersion,
              torch::get_num_threads());
  const auto t0 = Clock::now();
  std::fflush(stdout);
  if (cfg.sections.find('a') != std::string::npos) section_a(cfg);
  std::fflush(stdout);
  if (cfg.sections.find('b') != std::string::npos) section_b(cfg);
  std::fflush(stdout);
  if (cfg.sections.find('c') != std::string::npos) section_c(cfg);
  std::printf("\ntotal %.1f s\n", std::chrono::duration<double>(Clock::now() - t0).count());
  return 0;
}
