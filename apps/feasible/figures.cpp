#include "apps/feasible/figures.h"

#include <algorithm>
#include <sstream>

#include "apps/feasible/output.h"

namespace feasible::app {
namespace {

/// A legend in the right margin. Single plots let gnuplot widen the margin to fit it;
/// multiplots fix the plot area's right edge at `right` (fraction of the canvas), so that the
/// panels share their x axes, and leave the margin's width to the canvas.
std::string legend_right(double right = 0) {
  std::string text;
  if (right > 0) text = "set rmargin at screen " + fmt(right, 3) + "\n";
  return text + "set key outside right top vertical box samplen 2\n";
}

}  // namespace

std::vector<std::string> key_lines(const std::string& script) {
  std::vector<std::string> lines;
  std::istringstream in(script);
  std::string line;
  while (std::getline(in, line)) {
    const auto first = line.find_first_not_of(" \t");
    if (first != std::string::npos && line.compare(first, 8, "set key ") == 0) {
      lines.push_back(line.substr(first));
    }
  }
  return lines;
}

std::string concave_figure3_script() {
  std::ostringstream s;
  s << "set title 'Concave example: every fixed penalty ends at an endpoint of the trade-off "
       "curve'\n"
    << "set xlabel 'objective f(x) = cos x'\nset ylabel 'constraint g(x) = sin x'\n"
    << legend_right() << "set grid\nset xrange [-0.05:1.05]\nset yrange [-0.05:1.05]\n"
    << "plot 'curve.csv' skip 1 using 2:3 with lines lw 2 lc rgb '#555555' title '(cos x, sin x), "
       "x "
       "in [0, pi/2]', \\\n"
    << "  'table1.csv' skip 1 using 3:1 with points pt 7 ps 1.6 lc rgb '#1b9e77' title "
       "'optimum (sqrt(1-eps^2), eps), eps = 0.1..0.8', \\\n"
    << "  'table1.csv' skip 1 using (cos($6)):(sin($6)) with points pt 6 ps 2.6 lc rgb "
       "'#000000' title 'nuPI at the end', \\\n"
    << "  'penalty.csv' skip 1 using 3:4 with points pt 5 ps 2.2 lc rgb '#d95f02' title "
       "'fixed penalty at the end (every c)', \\\n"
    // Drawn last, so that a default that ends at an endpoint shows over the penalties' squares.
    << "  'table1.csv' skip 1 using (cos($15)):(sin($15)) with points pt 2 ps 2.0 lw 2 lc rgb "
       "'#e7298a' title 'default optimizer (no dual step) at the end'\n";
  return s.str();
}

std::string concave_trajectories_script(double eps, double x_star, double lambda_star,
                                        const std::string& gda_behaviour,
                                        const std::string& default_behaviour) {
  std::ostringstream s;
  // Double quotes: gnuplot reads the \n of the two-line title only in them.
  s << "set multiplot layout 2,1 title \"eps = " << fmt(eps, 2)
    << ": nuPI and the Augmented Lagrangian converge; gradient descent-ascent " << gda_behaviour
    << "\\nthe default optimizer (no dual step) " << default_behaviour << "\"\n"
    << "set grid\n"
    << legend_right(kPlotRight) << "set ylabel 'x_t'\nset xlabel 'iteration t'\n"
    << "plot 'trajectories.csv' skip 1 using 1:6 with lines lw 1 lc rgb '#7570b3' title "
       "'GDA (K_p = 0)', \\\n"
    << "  '' skip 1 using 1:2 with lines lw 2 lc rgb '#1b9e77' title 'nuPI (K_p = 40)', \\\n"
    << "  '' skip 1 using 1:4 with lines lw 2 dt 2 lc rgb '#d95f02' title 'Augmented "
       "Lagrangian', \\\n"
    << "  '' skip 1 using 1:8 with lines lw 2 dt 4 lc rgb '#e7298a' title 'default (no dual "
       "step)', \\\n"
    << "  " << x_star << " with lines lc rgb 'black' dt 3 title 'x* = arcsin(eps)'\n"
    << "set ylabel 'lambda_t'\n"
    << "plot 'trajectories.csv' skip 1 using 1:7 with lines lw 1 lc rgb '#7570b3' title 'GDA', "
       "\\\n"
    << "  '' skip 1 using 1:3 with lines lw 2 lc rgb '#1b9e77' title 'nuPI', \\\n"
    << "  '' skip 1 using 1:5 with lines lw 2 dt 2 lc rgb '#d95f02' title 'Augmented "
       "Lagrangian', \\\n"
    << "  '' skip 1 using 1:9 with lines lw 2 dt 4 lc rgb '#e7298a' title 'default', \\\n"
    << "  " << lambda_star
    << " with lines lc rgb 'black' dt 3 title 'lambda* = eps/sqrt(1-eps^2)'\n"
    << "unset multiplot\n";
  return s.str();
}

std::string rate_figure2_script() {
  // Column 1 is the value, column 2 where it is drawn (0 at 1e-5). Lines join the positive
  // values only; the value 0 is a point of its own.
  const std::string positive = "($1 > 0 ? $2 : NaN)";
  const std::string zero = "($1 == 0 ? $2 : NaN)";
  std::ostringstream s;
  s << "set multiplot layout 2,1 title 'Rate constraint: class-0 rate >= 70%. Penalty "
       "coefficient c vs dual step size (Lagrangian)'\n"
    << "set logscale x\nset format x '10^{%L}'\nset xtics add ('0' 1e-5)\nset grid\n"
    << "set xrange [5e-6:2e2]\n"
    << legend_right(kPlotRight - 0.03)
    << "set ylabel 'class 0 predictions (%)'\nset yrange [40:105]\n"
    << "plot 'sweep.csv' skip 1 using " << positive
    << ":3 with linespoints pt 5 lw 2 lc rgb '#d95f02' title 'penalty: x = c', \\\n"
    << "  '' skip 1 using " << positive
    << ":5 with linespoints pt 7 lw 2 lc rgb '#1b9e77' title 'Lagrangian: x = dual step', \\\n"
    << "  '' skip 1 using " << zero
    << ":3 with points pt 4 ps 1.6 lw 2 lc rgb '#d95f02' title 'penalty, c = 0 (drawn at "
       "10^{-5})', \\\n"
    << "  '' skip 1 using " << zero
    << ":5 with points pt 6 ps 1.6 lw 2 lc rgb '#1b9e77' title 'Lagrangian, step 0 (drawn at "
       "10^{-5})', \\\n"
    << "  70 with lines dt 2 lw 2 lc rgb 'black' title '70% target'\n"
    << "set ylabel 'accuracy (%)'\nset xlabel 'penalty coefficient c / dual step size (0 "
       "drawn at 10^{-5}, not joined: nothing run in between)'\n"
    << "plot 'sweep.csv' skip 1 using " << positive
    << ":4 with linespoints pt 5 lw 2 lc rgb '#d95f02' title 'penalty', \\\n"
    << "  '' skip 1 using " << positive
    << ":6 with linespoints pt 7 lw 2 lc rgb '#1b9e77' title 'Lagrangian', \\\n"
    << "  '' skip 1 using " << zero
    << ":4 with points pt 4 ps 1.6 lw 2 lc rgb '#d95f02' title 'penalty, c = 0', \\\n"
    << "  '' skip 1 using " << zero
    << ":6 with points pt 6 ps 1.6 lw 2 lc rgb '#1b9e77' title 'Lagrangian, step 0'\n"
    << "unset multiplot\n";
  return s.str();
}

std::string sparsity_figure1_script(const SparsityFigure1& f) {
  const int n = f.bisection_runs;
  // One column per constrained run, set apart so that their tic labels do not touch.
  const double proxy_x = n + 1.5, constrained_x = n + 3;
  const double top =
      std::max({f.proxy_test_pct, f.constrained_test_pct, f.constrained_expected_pct});
  std::ostringstream s;
  s << "set title 'Penalty bisection over c vs the constrained runs (one training each); "
       "target: density <= "
    << fixed(f.target_pct, 1) << "%'\n"
    << "set xlabel 'training run'\nset ylabel 'density (%)'\nset grid\n"
    << legend_right() << "set xrange [0.3:" << n + 3.7 << "]\nset yrange [0:105]\n"
    << "set xtics (";
  for (int i = 1; i <= n; ++i) s << "'" << i << "' " << i << ", ";
  s << "'proxy' " << proxy_x << ", 'constrained' " << constrained_x << ")\n"
    << "set label '1 run each' at " << n + 2.25 << "," << std::min(top + 10, 97.0) << " center\n"
    << "plot 'figure1.csv' skip 1 using 1:2 with linespoints pt 7 ps 1.4 lw 1.5 lc rgb "
       "'#d95f02' title 'penalty, bisection over c: test-time', \\\n"
    << "  '' skip 1 using 1:2:3 with labels offset 0,1.2 font ',9' notitle, \\\n"
    << "  '-' using 1:2 with points pt 9 ps 2.2 lc rgb '#7570b3' title 'proxy run (held to "
       "test-time): test-time "
    << fixed(f.proxy_test_pct, 1) << "%', \\\n"
    << "  '-' using 1:2 with points pt 8 ps 2.0 lw 2 lc rgb '#1b9e77' title 'constrained run "
       "(held to expected): test-time "
    << fixed(f.constrained_test_pct, 1) << "%', \\\n"
    << "  '-' using 1:2 with points pt 2 ps 2.0 lw 2 lc rgb '#1b9e77' title 'constrained run "
       "(held to expected): expected "
    << fixed(f.constrained_expected_pct, 1) << "%', \\\n"
    << "  " << f.target_pct << " with lines dt 2 lw 2 lc rgb 'black' title 'target'\n"
    << proxy_x << "," << f.proxy_test_pct << "\ne\n"
    << constrained_x << "," << f.constrained_test_pct << "\ne\n"
    << constrained_x << "," << f.constrained_expected_pct << "\ne\n";
  return s.str();
}

std::string sparsity_trajectory_script(double target_pct, int epochs) {
  std::ostringstream s;
  s << "set multiplot layout 2,1 title 'The constrained runs: density and multiplier per "
       "epoch (epoch 0: before training)'\n"
    << "set grid\n"
    << legend_right(kPlotRight - 0.05) << "set xrange [0:" << epochs << "]\n"
    << "set ylabel 'density (%)'\nset yrange [0:105]\n"
    << "plot 'curves.csv' skip 1 using 1:2 with linespoints pt 7 lw 2 lc rgb '#1b9e77' title "
       "'constrained run: expected density', \\\n"
    << "  '' skip 1 using 1:3 with linespoints pt 5 lw 1 lc rgb '#1b9e77' dt 3 title "
       "'constrained run: test-time density', \\\n"
    << "  '' skip 1 using 1:6 with linespoints pt 5 lw 2 lc rgb '#7570b3' title 'proxy run: "
       "test-time density', \\\n"
    << "  '' skip 1 using 1:13 with linespoints pt 9 lw 2 dt 4 lc rgb '#e7298a' title 'default: "
       "expected density', \\\n"
    << "  " << target_pct
    << " with lines dt 2 lw 2 lc rgb 'black' title 'target'\n"
    // The default's multiplier on its own (right) axis: its scale may differ from nuPI's by far.
    << "set ylabel 'multiplier lambda (nuPI runs)'\nset xlabel 'epoch'\nset yrange [*:*]\n"
    << "set ytics nomirror\nset y2tics\nset y2range [0:*]\nset y2label 'lambda (default)'\n"
    << "plot 'curves.csv' skip 1 using 1:4 with linespoints pt 7 lw 2 lc rgb '#1b9e77' title "
       "'constrained run', \\\n"
    << "  '' skip 1 using 1:7 with linespoints pt 5 lw 2 lc rgb '#7570b3' title 'proxy run', "
       "\\\n"
    << "  '' skip 1 using 1:15 axes x1y2 with linespoints pt 9 lw 2 dt 4 lc rgb '#e7298a' title "
       "'default (right axis)'\n"
    << "unset multiplot\n";
  return s.str();
}

std::string sparsity_dual_sweep_script(double target_pct, int epochs,
                                       const std::vector<double>& nupi_steps,
                                       const std::vector<double>& ga_steps) {
  // curves.csv: nuPI's low, middle (the constrained run) and high steps in columns 8, 2, 9;
  // gradient ascent's in 10, 11, 12.
  const int nupi_columns[] = {8, 2, 9};
  const char* nupi_colours[] = {"#66c2a5", "#1b9e77", "#006d2c"};
  const char* ga_colours[] = {"#fc8d62", "#d95f02", "#a63603"};
  std::ostringstream s;
  s << "set title 'Dual step sensitivity: expected density per epoch (epoch 0: before "
       "training)'\n"
    << "set grid\n"
    << legend_right() << "set xlabel 'epoch'\nset ylabel 'expected density (%)'\n"
    << "set xrange [0:" << epochs << "]\nset yrange [0:105]\nplot ";
  for (size_t i = 0; i < 3 && i < nupi_steps.size(); ++i) {
    s << (i ? "  '' " : "'curves.csv' ") << "skip 1 using 1:" << nupi_columns[i]
      << " with lines lw " << (i == 1 ? 3 : 2) << " lc rgb '" << nupi_colours[i]
      << "' title 'nuPI step " << fmt(nupi_steps[i], 3) << "', \\\n";
  }
  for (size_t i = 0; i < 3 && i < ga_steps.size(); ++i) {
    s << "  '' skip 1 using 1:" << 10 + i << " with lines lw 2 dt 2 lc rgb '" << ga_colours[i]
      << "' title 'gradient ascent " << fmt(ga_steps[i], 3) << "', \\\n";
  }
  s << "  " << target_pct << " with lines dt 3 lw 2 lc rgb 'black' title 'target'\n";
  return s.str();
}

std::string recall_figure_script(double target, double margin, int epochs) {
  std::ostringstream s;
  // Per panel: unconstrained first, wide and grey; the default over it, dashed; the validated
  // default solid: all three show where they meet.
  const auto runs = [](int unconstrained, int default_run, int validated) {
    std::ostringstream p;
    p << "plot 'min_recall.csv' skip 1 using 1:" << unconstrained
      << " with linespoints pt 5 ps 1.4 lw 4 lc rgb '#aaaaaa' title 'unconstrained', \\\n"
      << "  '' skip 1 using 1:" << default_run
      << " with linespoints pt 7 ps 0.9 lw 2 dt 2 lc rgb '#e7298a' title 'default: dual on "
         "training', \\\n"
      << "  '' skip 1 using 1:" << validated
      << " with linespoints pt 9 ps 1.2 lw 2 lc rgb '#1b9e77' title 'validated: dual on "
         "validation', \\\n";
    return p.str();
  };
  s << "set multiplot layout 2,1 title 'Per-class recall >= " << fixed(target, 2)
    << ": the smallest recall over the ten classes (epoch 0: before training)'\n"
    << "set grid\n"
    << legend_right(kPlotRight - 0.05) << "set xrange [0:" << epochs << "]\nset yrange [0:1.02]\n"
    << "set ylabel 'smallest training recall'\n"
    << runs(3, 2, 4) << "  " << target << " with lines dt 2 lw 2 lc rgb 'black' title 'target "
    << fixed(target, 2) << "'\n"
    << "set ylabel 'smallest validation recall'\nset xlabel 'epoch'\n"
    << runs(7, 5, 6) << "  " << target << " with lines dt 2 lw 2 lc rgb 'black' title 'target "
    << fixed(target, 2) << "', \\\n"
    << "  " << target + margin << " with lines dt 3 lw 2 lc rgb '#1b9e77' title 'validated aim "
    << fixed(target, 2) << " + " << fixed(margin, 3) << "'\n"
    << "unset multiplot\n";
  return s.str();
}

std::string per_example_figure_script(double bound, int epochs) {
  std::ostringstream s;
  s << "set multiplot layout 2,1 title 'Every example: cross-entropy <= " << fmt(bound, 3)
    << " (epoch 0: before training)'\n"
    << "set grid\n"
    << legend_right(kPlotRight) << "set xrange [0:" << epochs << "]\n"
    << "set ylabel 'examples above the bound (%)'\nset yrange [0:105]\n"
    // Unconstrained first, wide and grey; the default over it, dashed: both show where they meet.
    << "plot 'epochs.csv' skip 1 using 1:3 with linespoints pt 5 ps 1.4 lw 4 lc rgb '#aaaaaa' "
       "title 'unconstrained', \\\n"
    << "  '' skip 1 using 1:2 with linespoints pt 7 ps 0.9 lw 2 dt 2 lc rgb '#e7298a' title "
       "'default (no dual step)'\n"
    << "set ylabel 'mean cross-entropy'\nset xlabel 'epoch'\nset yrange [0:*]\n"
    << "plot 'epochs.csv' skip 1 using 1:5 with linespoints pt 5 ps 1.4 lw 4 lc rgb '#aaaaaa' "
       "title 'unconstrained', \\\n"
    << "  '' skip 1 using 1:4 with linespoints pt 7 ps 0.9 lw 2 dt 2 lc rgb '#e7298a' title "
       "'default', \\\n"
    << "  " << bound << " with lines dt 3 lw 2 lc rgb 'black' title 'the bound " << fmt(bound, 3)
    << " (per example)'\n"
    << "unset multiplot\n";
  return s.str();
}

std::string fairness_figure_script(double eps) {
  std::ostringstream s;
  s << "set multiplot layout 2,1 title '|gap| between the groups on fresh data: one mark per "
       "data draw'\n"
    << "set grid ytics\n"
    << legend_right(kPlotRight)
    << "set xtics ('unconstrained' 0, 'penalty' 1, 'constrained' 2, 'validated' 3)\n"
    << "set xrange [-0.5:3.5]\nset yrange [0:*]\n";
  const char* const keys[2] = {"parity", "opportunity"};
  const char* const names[2] = {"demographic parity", "equal opportunity"};
  for (int k = 0; k < 2; ++k) {
    const std::string is = std::string("(strcol(1) eq '") + keys[k] + "' && $9 == ";
    s << "set ylabel '|gap|, " << names[k] << "'\n"
      << "plot 'runs.csv' skip 1 using " << is << "1 ? $4 : NaN):8 with points pt 7 ps 0.8 "
      << "lc rgb '#1b9e77' title 'meets |gap| <= eps', \\\n"
      << "  '' skip 1 using " << is << "0 ? $4 : NaN):8 with points pt 6 ps 1.0 lw 2 "
      << "lc rgb '#d95f02' title 'misses it', \\\n"
      << "  " << eps << " with lines dt 2 lw 2 lc rgb 'black' title 'eps = " << fmt(eps, 3)
      << "'\n";
  }
  s << "unset multiplot\n";
  return s.str();
}

}  // namespace feasible::app
