// The default optimizer (feasible::make_default_optimizer) against tuned gradient descent-ascent
// and the tuned Augmented Lagrangian on the problems of bench/problems (docs/problems.md);
// docs/defaults.md explains the protocol and holds the table this program prints.
//
// Per problem: every (primal step, dual step) of a grid for gradient descent-ascent (GDA:
// SimultaneousOptimizer, Lagrangian, SGD for both players) and every (primal step, penalty c)
// for the Augmented Lagrangian (AL: SimultaneousOptimizer, AugmentedLagrangian with the dual
// step c, the method of multipliers one step at a time) run in float64 for at most --budget
// steps; a run has solved the problem at the first step t where |x_t - x*|_inf <= 1e-3 and the
// largest violation is <= 1e-4. The tuned run of a method is its grid point with the fewest
// steps among those still solved at twice their steps. The default then runs with the tuned GDA
// run's primal step for twice its steps (or the budget when GDA solved nothing), in float64 and in
// float32. Bounds are kept by projection.
//
// Flags: --budget N (default 10000), --only NAME (one problem), --cache FILE (tuned runs: read
//        from FILE when it lists the problem, else run and appended to it), --threads N
//        (problems measured in parallel; default: the number of cores), --cached-only (only
//        the problems the cache lists), --quiet (totals only).
#include <feasible/feasible.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "bench/problems/problems.h"

namespace {

using feasible::problems::TestProblem;
using Optimizers = std::vector<std::shared_ptr<torch::optim::Optimizer>>;

constexpr double kTolX = 1e-3;
constexpr double kTolViolation = 1e-4;
const std::vector<double> kPrimalSteps = {1e-3, 1e-2, 3e-2, 1e-1, 3e-1};
const std::vector<double> kDualSteps = {1e-3, 1e-2, 1e-1, 1.0, 10.0};
const std::vector<double> kPenalties = {1e-2, 1e-1, 1.0, 10.0, 100.0};

enum class Method { kGDA, kAL, kDefault };

/// One run's outcome.
struct Outcome {
  int64_t steps = -1;     // first step at which the problem was solved; -1: never
  bool diverged = false;  // a non-finite value or |x - x*|_inf > 1e8
  bool warned = false;    // StepResult reported divergence, or the step threw (not silent)
  double final_error = std::numeric_limits<double>::quiet_NaN();  // |x - x*|_inf at the end
  double final_violation = std::numeric_limits<double>::quiet_NaN();
};

/// The problem registered with feasible: one inequality group and one equality group.
struct Setup {
  feasible::Problem problem;
  feasible::Constraint ineq, eq;
  torch::Tensor x;
};

Setup make_setup(const TestProblem& p, torch::ScalarType dtype, Method method, double c) {
  Setup s;
  s.x = torch::tensor(p.x0, torch::kFloat64).to(dtype).requires_grad_(true);
  auto options = [&](feasible::ConstraintKind kind, int64_t size) {
    feasible::ConstraintOptions o(kind, size);
    o.dtype(dtype);
    if (method == Method::kAL) {
      o.formulation(std::make_shared<feasible::AugmentedLagrangian>(
                        feasible::AugmentedLagrangianOptions().scale_dual_by_penalty(true)))
          .penalty(c);
    }
    return o;
  };
  if (p.n_ineq > 0) {
    s.ineq =
        s.problem.add_constraint("g", options(feasible::ConstraintKind::kInequality, p.n_ineq));
  }
  if (p.n_eq > 0) {
    s.eq = s.problem.add_constraint("h", options(feasible::ConstraintKind::kEquality, p.n_eq));
  }
  return s;
}

std::unique_ptr<feasible::ConstrainedOptimizer> make_optimizer(const Setup& s, Method method,
                                                               double primal_lr, double dual_lr) {
  Optimizers primal = {std::make_shared<torch::optim::SGD>(std::vector<torch::Tensor>{s.x},
                                                           torch::optim::SGDOptions(primal_lr))};
  if (method == Method::kDefault) return feasible::make_default_optimizer(s.problem, primal);
  auto dual = s.problem.dual_parameters().empty()
                  ? nullptr
                  : std::make_shared<torch::optim::SGD>(s.problem.dual_parameters(),
                                                        torch::optim::SGDOptions(dual_lr));
  return std::make_unique<feasible::SimultaneousOptimizer>(s.problem, primal, dual);
}

double max_abs_error(const torch::Tensor& x, const std::vector<double>& x_star) {
  const torch::Tensor xd = x.detach().to(torch::kFloat64).contiguous();
  const double* v = xd.data_ptr<double>();
  double e = 0;
  for (size_t i = 0; i < x_star.size(); ++i) e = std::max(e, std::abs(v[i] - x_star[i]));
  return e;
}

// to_end: run the whole budget (the default always does; a tuning run stops when solved).
Outcome run(const TestProblem& p, torch::ScalarType dtype, Method method, double primal_lr,
            double dual_lr, int64_t budget, bool to_end = false) {
  Setup s = make_setup(p, dtype, method, dual_lr);
  auto opt = make_optimizer(s, method, primal_lr, method == Method::kAL ? 1.0 : dual_lr);
  const auto lo = torch::tensor(p.lower, torch::kFloat64).to(dtype);
  const auto hi = torch::tensor(p.upper, torch::kFloat64).to(dtype);
  opt->add_projection({s.x}, feasible::projection::box(lo, hi));
  const auto closure = [&]() {
    feasible::ProblemState st;
    st.loss = p.f(s.x);
    if (p.n_ineq > 0) st.observe(s.ineq, feasible::ConstraintState(p.g(s.x)));
    if (p.n_eq > 0) st.observe(s.eq, feasible::ConstraintState(p.h(s.x)));
    return st;
  };
  Outcome out;
  try {
    for (int64_t t = 0; t < budget; ++t) {
      const double error = max_abs_error(s.x, p.x_star);
      const feasible::StepResult r = opt->step(closure);
      const double violation = p.n_ineq + p.n_eq > 0 ? r.max_violation() : 0.0;
      out.final_error = error;
      out.final_violation = violation;
      if (!r.diverging.empty() || r.lagrangian_diverging) out.warned = true;
      if (!(error < 1e8)) {
        out.diverged = true;
        // A tuning run stops here; the default's goes on until the library speaks (a report in
        // StepResult or an error) or the budget ends, which is a silent divergence.
        if (method != Method::kDefault || out.warned) break;
      }
      if (out.steps < 0 && error <= kTolX && violation <= kTolViolation) {
        out.steps = t;
        if (method != Method::kDefault && !to_end) break;  // a tuning run needs its steps only
      }
    }
  } catch (const feasible::NonFiniteError&) {
    out.diverged = true;
    out.warned = true;
  } catch (const c10::Error& e) {  // e.g. a value out of the functions' domain: a failed run
    out.diverged = true;
    out.warned = true;
  }
  return out;
}

}  // namespace

namespace {

/// The best grid point of a method: the fewest steps among the points whose run still meets the
/// criterion at twice its steps (ties: the earlier point).
struct Tuned {
  double primal_lr = 0, dual = 0;  // dual: the dual step (GDA) or the penalty (AL)
  Outcome outcome;
  int solved_points = 0;  // grid points that improved on the points before them
};

struct Flags {
  int64_t budget = 10000;
  std::string only, cache;
  int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  bool quiet = false;
  bool cached_only = false;  // measure only the problems whose tuned runs the cache holds
};

Tuned tune(const TestProblem& p, Method method, const Flags& flags) {
  Tuned best;
  const auto& duals = method == Method::kGDA ? kDualSteps : kPenalties;
  for (double lr : kPrimalSteps) {
    for (double d : duals) {
      // A point can only win by solving in fewer steps than the best so far: its run stops there.
      const int64_t budget =
          best.outcome.steps >= 0 ? std::min(flags.budget, best.outcome.steps) : flags.budget;
      const Outcome o = run(p, torch::kFloat64, method, lr, d, budget);
      if (o.steps < 0) continue;
      // A run that passes through the target on its way and leaves it is not a solution: the
      // point must still meet the criterion at twice its steps (the default's horizon).
      const Outcome later = run(p, torch::kFloat64, method, lr, d, 2 * o.steps, true);
      if (!(later.final_error <= kTolX && later.final_violation <= kTolViolation)) continue;
      ++best.solved_points;
      if (best.outcome.steps < 0 || o.steps < best.outcome.steps) {
        best.primal_lr = lr;
        best.dual = d;
        best.outcome = o;
      }
    }
  }
  return best;
}

/// The default's verdict: solved within twice the reference steps and still solved at the end.
struct Verdict {
  Outcome outcome;
  bool solved = false;
};

Verdict run_default(const TestProblem& p, torch::ScalarType dtype, double lr, int64_t reference,
                    const Flags& flags) {
  const int64_t budget = reference > 0 ? 2 * reference : flags.budget;
  Verdict v;
  v.outcome = run(p, dtype, Method::kDefault, lr, 0.0, budget);
  v.solved = v.outcome.steps >= 0 && v.outcome.final_error <= kTolX &&
             v.outcome.final_violation <= kTolViolation;
  return v;
}

Flags parse(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--budget" && i + 1 < argc) {
      f.budget = std::atoll(argv[++i]);
    } else if (a == "--only" && i + 1 < argc) {
      f.only = argv[++i];
    } else if (a == "--cache" && i + 1 < argc) {
      f.cache = argv[++i];
    } else if (a == "--threads" && i + 1 < argc) {
      f.threads = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--cached-only") {
      f.cached_only = true;
    } else if (a == "--quiet") {
      f.quiet = true;
    } else {
      std::fprintf(stderr,
                   "usage: bench_defaults [--budget N] [--only NAME] [--cache FILE] [--threads N] "
                   "[--quiet]\n");
      std::exit(2);
    }
  }
  return f;
}

std::string steps_text(int64_t steps) { return steps < 0 ? "-" : std::to_string(steps); }

/// Totals of the summary.
struct Totals {
  int problems = 0, gda = 0, al = 0, d64 = 0, d32 = 0, diverged = 0, silent = 0;
  int holds = 0;                   // problems whose tuned GDA run still holds at twice its steps
  int d64_held = 0, d32_held = 0;  // of those, solved by the default
};

void report(const TestProblem& p, const Tuned& gda, const Tuned& al, bool holds, const Verdict& d64,
            const Verdict& d32, Totals& t, bool quiet) {
  ++t.problems;
  t.holds += holds;
  t.d64_held += holds && d64.solved;
  t.d32_held += holds && d32.solved;
  t.gda += gda.outcome.steps >= 0;
  t.al += al.outcome.steps >= 0;
  t.d64 += d64.solved;
  t.d32 += d32.solved;
  for (const Verdict* v : {&d64, &d32}) {
    t.diverged += v->outcome.diverged;
    t.silent += v->outcome.diverged && !v->outcome.warned;
  }
  if (quiet) return;
  std::printf("| %-6s | %8s (%g, %g) %-3s | %8s (%g, %g) | %8s %-3s | %8s %-3s | %.1e | %.1e |\n",
              p.name.c_str(), steps_text(gda.outcome.steps).c_str(), gda.primal_lr, gda.dual,
              gda.outcome.steps < 0 ? ""
              : holds               ? ""
                                    : "(!)",
              steps_text(al.outcome.steps).c_str(), al.primal_lr, al.dual,
              steps_text(d64.outcome.steps).c_str(), d64.solved ? "yes" : "no",
              steps_text(d32.outcome.steps).c_str(), d32.solved ? "yes" : "no",
              d64.outcome.final_error, d64.outcome.final_violation);
  std::fflush(stdout);
}

}  // namespace

// The tuned runs of a problem, from the cache file when it has them (one line per problem:
// name gda_lr gda_dual gda_steps al_lr al_c al_steps), else run and appended to it.
std::pair<Tuned, Tuned> tuned_runs(const TestProblem& p, const Flags& flags, bool& cached) {
  if (!flags.cache.empty()) {
    std::ifstream in(flags.cache);
    std::string name;
    Tuned g, a;
    while (in >> name >> g.primal_lr >> g.dual >> g.outcome.steps >> a.primal_lr >> a.dual >>
           a.outcome.steps) {
      if (name == p.name) {
        cached = true;
        return {g, a};
      }
    }
  }
  const Tuned gda = tune(p, Method::kGDA, flags);
  const Tuned al = tune(p, Method::kAL, flags);
  return {gda, al};
}

// Whether the cache file lists the problem.
bool in_cache(const Flags& flags, const TestProblem& p) {
  std::ifstream in(flags.cache);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(p.name + " ", 0) == 0) return true;
  }
  return false;
}

/// Everything measured on one problem.
struct Row {
  Tuned gda, al;
  bool gda_holds = false;  // the tuned GDA run is still solved at twice its steps
  Verdict d64, d32;
  bool cached = false;  // the tuned runs came from the cache file
};

// Appends a problem's tuned runs to the cache file (when they were not read from it).
void append_cache(const Flags& flags, const TestProblem& p, const Row& r) {
  if (flags.cache.empty() || r.cached) return;
  std::ofstream out(flags.cache, std::ios::app);
  out << p.name << " " << r.gda.primal_lr << " " << r.gda.dual << " " << r.gda.outcome.steps << " "
      << r.al.primal_lr << " " << r.al.dual << " " << r.al.outcome.steps << "\n";
}

Row measure(const TestProblem& p, const Flags& flags) {
  Row r;
  std::tie(r.gda, r.al) = tuned_runs(p, flags, r.cached);
  const double lr = r.gda.outcome.steps >= 0  ? r.gda.primal_lr
                    : r.al.outcome.steps >= 0 ? r.al.primal_lr
                                              : 1e-2;
  const int64_t ref = r.gda.outcome.steps >= 0 ? r.gda.outcome.steps : -1;
  if (ref > 0) {
    const Outcome o =
        run(p, torch::kFloat64, Method::kGDA, r.gda.primal_lr, r.gda.dual, 2 * ref, true);
    r.gda_holds = o.final_error <= kTolX && o.final_violation <= kTolViolation;
  }
  r.d64 = run_default(p, torch::kFloat64, lr, ref, flags);
  r.d32 = run_default(p, torch::kFloat32, lr, ref, flags);
  return r;
}

int main(int argc, char** argv) {
  const Flags flags = parse(argc, argv);
  torch::set_num_threads(1);
  std::vector<const TestProblem*> todo;
  for (const TestProblem& p : feasible::problems::collection()) {
    if (!flags.only.empty() && p.name != flags.only) continue;
    if (flags.cached_only && !in_cache(flags, p)) continue;
    todo.push_back(&p);
  }
  const auto start = std::chrono::steady_clock::now();
  std::vector<Row> rows(todo.size());
  std::atomic<size_t> next{0};
  std::mutex mu;
  std::vector<std::thread> workers;
  for (int w = 0; w < flags.threads; ++w) {
    workers.emplace_back([&] {
      torch::set_num_threads(1);
      for (size_t i = next++; i < todo.size(); i = next++) {
        rows[i] = measure(*todo[i], flags);
        std::lock_guard<std::mutex> lock(mu);
        append_cache(flags, *todo[i], rows[i]);
        if (!flags.quiet) std::fprintf(stderr, "done: %s\n", todo[i]->name.c_str());
      }
    });
  }
  for (auto& w : workers) w.join();
  std::printf(
      "| problem | GDA steps (primal, dual) | AL steps (primal, c) | default f64 | "
      "default f32 | f64 final |x-x*| | f64 final violation |\n"
      "|---|---|---|---|---|---|---|\n");
  Totals t;
  for (size_t i = 0; i < todo.size(); ++i) {
    report(*todo[i], rows[i].gda, rows[i].al, rows[i].gda_holds, rows[i].d64, rows[i].d32, t,
           flags.quiet);
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf(
      "\nproblems %d; solved: tuned GDA %d, tuned AL %d, default float64 %d (%.0f%%), "
      "default float32 %d (%.0f%%); default runs that diverged %d (silently %d); %.0f s\n",
      t.problems, t.gda, t.al, t.d64, 100.0 * t.d64 / std::max(1, t.problems), t.d32,
      100.0 * t.d32 / std::max(1, t.problems), t.diverged, t.silent, secs);
  std::printf(
      "problems whose tuned GDA run is still solved at twice its steps %d; of those solved by "
      "the default: float64 %d (%.0f%%), float32 %d (%.0f%%). (!) marks a tuned run that was not\n",
      t.holds, t.d64_held, 100.0 * t.d64_held / std::max(1, t.holds), t.d32_held,
      100.0 * t.d32_held / std::max(1, t.holds));
  return 0;
}
