#pragma once
/// \file figures.h
/// The gnuplot scripts of the experiments' figures, as text. Torch-free, so that a test can
/// check what each script draws and where its legends go. Every legend is placed outside the
/// plot area (to the right of it, or below it), so that it hides no data.

#include <string>
#include <vector>

namespace feasible::app {

/// The right edge of the plot area (fraction of the canvas) in the multiplot figures, whose legends
/// stand to the right of it. Fixed, so that the panels share their x axes.
inline constexpr double kPlotRight = 0.70;

/// The `set key` lines of a gnuplot script, in order (for tests and reviews).
std::vector<std::string> key_lines(const std::string& script);

/// Concave example, Figure 3: the trade-off curve (curve.csv), the constrained optima, nuPI's and
/// the default optimizer's ends (table1.csv), where every fixed penalty ends (penalty.csv).
std::string concave_figure3_script();

/// Concave example: x_t (upper panel) and lambda_t (lower panel) of GDA, nuPI, the Augmented
/// Lagrangian and the default optimizer at one eps (trajectories.csv), with x* and lambda* as
/// lines. `gda_behaviour` is the measured behaviour of GDA at that eps ("oscillates", "stuck at
/// 0", ...) and `default_behaviour` the default's ("converges to x*", ...), put in the title.
std::string concave_trajectories_script(double eps, double x_star, double lambda_star,
                                        const std::string& gda_behaviour,
                                        const std::string& default_behaviour);

/// Rate experiment, Figure 2: class-0 percentage (upper) and accuracy (lower) against the penalty
/// coefficient and the dual step (sweep.csv, whose column `plot_x` draws 0 at 1e-5). The point at
/// 0 is drawn alone, not joined to the rest (no value between 0 and the smallest positive one was
/// run).
std::string rate_figure2_script();

/// What Sparsity Figure 1 shows besides the bisection (figure1.csv).
struct SparsityFigure1 {
  int bisection_runs = 0;               ///< penalized runs (x = 1..n)
  double target_pct = 50;               ///< the density target (%)
  double proxy_test_pct = 0;            ///< the proxy run's test-time density (%), constrained
  double constrained_test_pct = 0;      ///< the constrained run's test-time density (%), deployed
  double constrained_expected_pct = 0;  ///< the constrained run's expected density (%), constrained
};

/// Sparsity Figure 1: the test-time density of each bisection run, and at x = n + 1 the two
/// constrained runs: the proxy run (which constrains the test-time density) and the constrained
/// run (which constrains the expected density; both its densities are drawn, each labelled).
std::string sparsity_figure1_script(const SparsityFigure1& figure);

/// Sparsity: density (upper) and multiplier (lower) per epoch of the constrained run, the proxy
/// run and the default optimizer's run (curves.csv, epoch 0 = before training), over `epochs`
/// epochs.
std::string sparsity_trajectory_script(double target_pct, int epochs);

/// Sparsity: the expected density per epoch (curves.csv, from epoch 0) of nuPI at three steps and
/// gradient ascent at three. `nupi_steps` and `ga_steps` are the legend's step sizes, in the
/// order of curves.csv's columns.
std::string sparsity_dual_sweep_script(double target_pct, int epochs,
                                       const std::vector<double>& nupi_steps,
                                       const std::vector<double>& ga_steps);

/// Recall workload, two panels: the smallest per-class training recall per epoch, and the
/// smallest validation recall, of the default optimizer, the validated default and unconstrained
/// training (min_recall.csv, epoch 0 = before training), with the target and (validation) the
/// validated run's aim target + margin.
std::string recall_figure_script(double target, double margin, int epochs);

/// Per-example workload: the fraction of training examples above the bound (upper panel) and
/// the mean cross-entropy with the bound (lower panel) per epoch, default against unconstrained
/// (epochs.csv, epoch 0 = before training).
std::string per_example_figure_script(double bound, int epochs);

/// Fairness: |gap| on fresh data per data draw (runs.csv), one column per method, one panel per
/// requirement (parity above, opportunity below), with the bound eps; marks that meet the bound
/// are filled, marks that miss it are open.
std::string fairness_figure_script(double eps);

}  // namespace feasible::app
