// shrink(): the mixture of at most m + 1 candidates, by linear programming with GLPK
// (Cotter, Jiang, Sridharan, ALT 2019; docs/selection.md).
#include <glpk.h>

#include <cmath>
#include <cstddef>
#include <vector>

#include "feasible/selection.h"

namespace feasible {
namespace {

using Violations = std::vector<std::vector<double>>;

/// Checks the arguments of shrink(); returns m, the number of scalar constraints.
size_t check_inputs(const std::vector<double>& f, const Violations& g) {
  TORCH_CHECK(!f.empty(), "shrink: no candidate (objectives is empty)");
  TORCH_CHECK(g.size() == f.size(), "shrink: got ", f.size(), " objectives but ", g.size(),
              " violation lists (one list per candidate)");
  const size_t m = g[0].size();
  for (size_t t = 0; t < f.size(); ++t) {
    TORCH_CHECK(std::isfinite(f[t]), "shrink: objectives[", t, "] must be finite, got ", f[t]);
    TORCH_CHECK(g[t].size() == m, "shrink: violations[", t, "] has ", g[t].size(),
                " entries but violations[0] has ", m,
                " (ragged: every candidate needs one violation per scalar constraint)");
    for (size_t j = 0; j < m; ++j) {
      TORCH_CHECK(std::isfinite(g[t][j]), "shrink: violations[", t, "][", j,
                  "] must be finite, got ", g[t][j]);
    }
  }
  return m;
}

/// Silences GLPK's terminal output for the lifetime of the object (the library prints nothing).
class QuietTerminal {
 public:
  QuietTerminal() : previous_(glp_term_out(GLP_OFF)) {}
  ~QuietTerminal() { glp_term_out(previous_); }
  QuietTerminal(const QuietTerminal&) = delete;
  QuietTerminal& operator=(const QuietTerminal&) = delete;

 private:
  int previous_;
};

/// Owns a GLPK problem object.
class Lp {
 public:
  Lp() : lp_(glp_create_prob()) {}
  ~Lp() { glp_delete_prob(lp_); }
  Lp(const Lp&) = delete;
  Lp& operator=(const Lp&) = delete;
  glp_prob* get() const { return lp_; }

 private:
  glp_prob* lp_;
};

/// What the linear program minimizes.
enum class Goal {
  kObjective,  ///< sum_t p_t f_t, subject to sum_t p_t g_jt <= bound for every j.
  kViolation,  ///< s, subject to sum_t p_t g_jt - s <= 0 for every j (s free).
};

/// Rows 1..m: the constraints; row m + 1: sum_t p_t = 1. Columns 1..T: p_t >= 0; column T + 1
/// (Goal::kViolation only): s.
void build(glp_prob* lp, const std::vector<double>& f, const Violations& g, size_t m, Goal goal,
           double bound) {
  const int rows = static_cast<int>(m) + 1;
  const int weights = static_cast<int>(f.size());
  const bool with_s = goal == Goal::kViolation;
  glp_set_obj_dir(lp, GLP_MIN);
  glp_add_rows(lp, rows);
  for (int j = 1; j < rows; ++j) glp_set_row_bnds(lp, j, GLP_UP, 0.0, with_s ? 0.0 : bound);
  glp_set_row_bnds(lp, rows, GLP_FX, 1.0, 1.0);
  glp_add_cols(lp, weights + (with_s ? 1 : 0));
  // The matrix in GLPK's 1-based triplets (entry 0 unused); zeros are left out.
  std::vector<int> ia(1, 0), ja(1, 0);
  std::vector<double> ar(1, 0.0);
  auto put = [&](int row, int col, double value) {
    if (value == 0.0) return;
    ia.push_back(row);
    ja.push_back(col);
    ar.push_back(value);
  };
  for (int t = 1; t <= weights; ++t) {
    glp_set_col_bnds(lp, t, GLP_LO, 0.0, 0.0);
    glp_set_obj_coef(lp, t, with_s ? 0.0 : f[t - 1]);
    for (int j = 1; j < rows; ++j) put(j, t, g[t - 1][j - 1]);
    put(rows, t, 1.0);
  }
  if (with_s) {
    glp_set_col_bnds(lp, weights + 1, GLP_FR, 0.0, 0.0);
    glp_set_obj_coef(lp, weights + 1, 1.0);
    for (int j = 1; j < rows; ++j) put(j, weights + 1, -1.0);
  }
  glp_load_matrix(lp, static_cast<int>(ar.size()) - 1, ia.data(), ja.data(), ar.data());
}

/// Solves by GLPK's primal simplex method, silently, from an advanced initial basis (from the
/// standard basis if that fails once); returns GLPK's status (GLP_OPT, GLP_NOFEAS, ...). The
/// result is a basic solution: the property behind the m + 1 bound.
int solve(glp_prob* lp) {
  glp_smcp parm;
  glp_init_smcp(&parm);
  parm.msg_lev = GLP_MSG_OFF;
  glp_scale_prob(lp, GLP_SF_AUTO);
  glp_adv_basis(lp, 0);
  int rc = glp_simplex(lp, &parm);
  if (rc != 0) {
    glp_std_basis(lp);
    rc = glp_simplex(lp, &parm);
  }
  TORCH_CHECK(rc == 0,
              "shrink: GLPK's simplex method failed on the linear program (glp_simplex "
              "returned ",
              rc, ")");
  return glp_get_status(lp);
}

/// The mixture of the basic solution: the candidates with a positive weight, normalized.
Mixture read(glp_prob* lp, const std::vector<double>& f, const Violations& g, size_t m) {
  Mixture mixture;
  double total = 0.0;
  for (size_t t = 0; t < f.size(); ++t) {
    const double p = glp_get_col_prim(lp, static_cast<int>(t) + 1);
    if (p > 0.0) {
      mixture.candidates.push_back(static_cast<int64_t>(t));
      mixture.weights.push_back(p);
      total += p;
    }
  }
  // A basic solution has at most m + 1 basic variables (one per row), hence nonzero weights.
  TORCH_CHECK(!mixture.candidates.empty() && mixture.candidates.size() <= m + 1,
              "shrink: internal error: the basic solution has ", mixture.candidates.size(),
              " nonzero weights, expected 1 to ", m + 1);
  mixture.violations.assign(m, 0.0);
  for (size_t i = 0; i < mixture.candidates.size(); ++i) {
    double& w = mixture.weights[i];
    w /= total;
    const auto t = static_cast<size_t>(mixture.candidates[i]);
    mixture.objective += w * f[t];
    for (size_t j = 0; j < m; ++j) mixture.violations[j] += w * g[t][j];
  }
  return mixture;
}

}  // namespace

Mixture shrink(const std::vector<double>& objectives, const Violations& violations) {
  const size_t m = check_inputs(objectives, violations);
  const QuietTerminal quiet;
  {
    Lp lp;
    build(lp.get(), objectives, violations, m, Goal::kObjective, 0.0);
    const int status = solve(lp.get());
    if (status == GLP_OPT) {
      Mixture mixture = read(lp.get(), objectives, violations, m);
      mixture.feasible = true;
      return mixture;
    }
    TORCH_CHECK(status == GLP_NOFEAS, "shrink: unexpected GLPK status ", status,
                " for the linear program of the objective");
  }
  // No feasible mixture: the least largest violation s*, then the least objective at s*.
  Lp least;
  build(least.get(), objectives, violations, m, Goal::kViolation, 0.0);
  TORCH_CHECK(solve(least.get()) == GLP_OPT,
              "shrink: unexpected GLPK status for the linear program of the violation");
  const double s = glp_get_col_prim(least.get(), static_cast<int>(objectives.size()) + 1);
  Lp at_s;
  // s* is rounded, but the simplex method's feasibility tolerance (1e-7, relative) keeps the
  // optimum of `least` feasible here; should it still fail, `least`'s own mixture is the answer.
  build(at_s.get(), objectives, violations, m, Goal::kObjective, s);
  const bool solved = solve(at_s.get()) == GLP_OPT;
  Mixture mixture = read(solved ? at_s.get() : least.get(), objectives, violations, m);
  mixture.feasible = false;
  return mixture;
}

}  // namespace feasible
