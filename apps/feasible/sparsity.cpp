// E3: sparsity-constrained training with L0 gates. Ramirez et al. (arXiv:2505.20628), Figure 1,
// App. B.2, Table 3, and the second row of Table 2.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <sstream>

#include "apps/feasible/experiments.h"
#include "apps/feasible/figures.h"
#include "apps/feasible/sparsity_problem.h"

namespace feasible::app {
namespace {

/// Published Table 3 (MNIST, 150 epochs): bisection step, c, test-time density (%), train
/// accuracy (%).
struct PublishedStep {
  double c, density, train_accuracy;
};
const std::vector<PublishedStep>& published_table3() {
  static const std::vector<PublishedStep> rows = {{1e-3, 84.5, 99.97},    {1.0, 25.3, 99.97},
                                                  {3.16e-2, 68.1, 99.96}, {1.78e-1, 54.2, 100.0},
                                                  {4.22e-1, 39.0, 100.0}, {2.74e-1, 46.9, 99.99},
                                                  {2.21e-1, 50.5, 99.99}};
  return rows;
}

/// The schedule and the dual settings of one mode.
struct Mode {
  std::string name;
  int64_t train_examples;  ///< 0: all 60,000
  SparsitySettings settings;
  double nupi_lr, nupi_kp;          ///< the constrained run's dual optimizer
  std::vector<double> sweep_scale;  ///< dual steps of the sweep, as multiples of nupi_lr
  double proxy_lr;                  ///< the proxy run's dual step (same K_p)
  bool check_proxy;                 ///< whether the proxy run's end is a check (not in quick)
  double ga_lr;                     ///< plain gradient ascent's middle step
  int timing_rounds;                ///< Table 2: alternating rounds
  int64_t timing_epochs;            ///< epochs per timed run
  int max_bisection_runs;           ///< including the two endpoints and any widening
};

Mode make_mode(const RunConfig& config) {
  // The default mode; quick and paper change what differs. The dual settings (nuPI step 3e-4,
  // K_p = 5e4, proxy step 1e-4) are the same in every mode: tuned on the short schedules, not
  // for 150 epochs (docs/cli.md).
  Mode m;
  m.name = "default";
  m.train_examples = 0;
  m.settings.seed = config.seed;
  m.settings.epochs = 15;
  m.settings.gate_lr = 1e-2;
  m.nupi_lr = 3e-4;
  m.nupi_kp = 5e4;
  m.sweep_scale = {1.0 / 3.0, 3.0};
  m.proxy_lr = 1e-4;
  m.check_proxy = true;
  m.ga_lr = 3e-3;
  m.timing_rounds = 3;
  m.timing_epochs = 2;
  m.max_bisection_runs = 14;
  if (config.paper) {
    m.name = "paper";
    m.settings.epochs = 150;
    m.settings.gate_lr = 1e-3;
    m.timing_epochs = 1;
  } else if (config.quick) {
    m.name = "quick";
    m.train_examples = 10000;
    m.settings.epochs = 12;
    m.settings.gate_lr = 5e-2;
    m.sweep_scale = {0.5, 2.0};
    m.check_proxy = false;
    m.ga_lr = 1e-2;
  }
  if (config.epochs > 0) m.settings.epochs = config.epochs;
  m.settings.kind = config.gates == "weights" ? L0GateKind::kWeights : L0GateKind::kInputUnits;
  return m;
}

std::string pct(double fraction) { return fixed(100 * fraction, 1); }

nlohmann::json run_json(const SparsityRun& run) {
  nlohmann::json epochs = nlohmann::json::array();
  for (const auto& e : run.epochs) {
    epochs.push_back({{"epoch", e.epoch},
                      {"expected_density", e.expected_density},
                      {"test_density", e.test_density},
                      {"multiplier", e.multiplier},
                      {"train_loss", e.train_loss},
                      {"test_accuracy_pct", e.test_accuracy},
                      {"seconds", e.seconds}});
  }
  const SparsityEpoch& i = run.initial;
  const nlohmann::json initial = {{"expected_density", i.expected_density},
                                  {"test_density", i.test_density},
                                  {"multiplier", i.multiplier},
                                  {"test_accuracy_pct", i.test_accuracy}};
  return {{"method", sparsity_method_key(run.spec.method)},
          {"value", run.spec.value},
          {"kp", run.spec.kp},
          {"label", run.spec.label},
          {"expected_density", run.expected_density},
          {"test_density", run.test_density},
          {"layer_test_density", run.layer_test_density},
          {"multiplier", run.multiplier},
          {"train_accuracy_pct", run.train_accuracy},
          {"test_accuracy_pct", run.test_accuracy},
          {"train_seconds", run.train_seconds},
          {"data_seconds", run.data_seconds},
          {"initial", initial},
          {"epochs", epochs}};
}

/// Sample standard deviation (0 for fewer than two values).
double stddev(const std::vector<double>& v) {
  if (v.size() < 2) return 0.0;
  double mean = 0;
  for (double x : v) mean += x;
  mean /= static_cast<double>(v.size());
  double sum = 0;
  for (double x : v) sum += (x - mean) * (x - mean);
  return std::sqrt(sum / static_cast<double>(v.size() - 1));
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n == 0 ? 0.0 : n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/// The number of training runs, their training time and the final densities of one way to reach
/// the target; `met` is whether the density it is held to ends within one point of the target.
nlohmann::json headline_row(const std::string& method, const std::string& held_to, size_t runs,
                            double seconds, const SparsityRun& end, bool met) {
  return {{"method", method},
          {"held_to", held_to},
          {"runs", runs},
          {"train_seconds", seconds},
          {"test_density", end.test_density},
          {"expected_density", end.expected_density},
          {"met", met}};
}

/// The like-with-like comparison: the bisection (which stops on the test-time density), the proxy
/// run (which constrains the test-time density), and the constrained run (which constrains the
/// expected density), each with the density it is held to.
nlohmann::json headline_json(size_t bisection_runs, double bisection_seconds,
                             const SparsityRun& last, const SparsityRun& proxy,
                             const SparsityRun& constrained, double target) {
  const auto hit = [&](double d) { return std::abs(d - target) <= 0.01; };
  return {{"criterion", "within one point of the target, on the density each is held to"},
          {"rows",
           {headline_row("penalty, bisection over c", "test_time", bisection_runs,
                         bisection_seconds, last, hit(last.test_density)),
            headline_row("nuPI proxy run", "test_time", 1, proxy.train_seconds, proxy,
                         hit(proxy.test_density)),
            headline_row("nuPI constrained run", "expected", 1, constrained.train_seconds,
                         constrained, hit(constrained.expected_density))}}};
}

/// The headline of Table 3: the rows of `headline` side by side, and the comparison on the same
/// density (the bisection against the proxy run, both on the test-time density).
std::string headline_markdown(const nlohmann::json& headline) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& r : headline.at("rows")) {
    const bool test_time = r.at("held_to") == "test_time";
    rows.push_back(
        {r.at("method").get<std::string>(),
         test_time ? "test-time (deployed)" : "expected (training)",
         std::to_string(r.at("runs").get<size_t>()), fixed(r.at("train_seconds").get<double>(), 1),
         pct(r.at("test_density").get<double>()), pct(r.at("expected_density").get<double>()),
         r.at("met").get<bool>() ? "yes" : "**no**"});
  }
  const auto& bisection = headline.at("rows")[0];
  const auto& proxy = headline.at("rows")[1];
  std::ostringstream md;
  md << "Each way to reach the target, with the density it is held to (the bisection stops on "
        "the test-time density; the proxy run constrains it; the constrained run constrains the "
        "expected density, and deploys at the test-time density shown):\n\n"
     << markdown_table({"method", "density held to the target", "trainings", "training (s)",
                        "test-time density (%)", "expected density (%)",
                        "within one point (on the density held)"},
                       rows)
     << "\nLike with like, on the test-time density: " << bisection.at("runs").get<size_t>()
     << " trainings for the bisection (" << fixed(bisection.at("train_seconds").get<double>(), 1)
     << " s) against one for the proxy run (" << fixed(proxy.at("train_seconds").get<double>(), 1)
     << " s), "
     << fixed(bisection.at("train_seconds").get<double>() / proxy.at("train_seconds").get<double>(),
              1)
     << " times the training time; the proxy run "
     << (proxy.at("met").get<bool>() ? "ends within one point of the target"
                                     : "**misses** the target by more than one point")
     << " (" << pct(proxy.at("test_density").get<double>()) << "%).";
  return md.str();
}

}  // namespace

std::string sparsity_data_problem(const RunConfig& config) {
  const std::string dir = config.data.empty() ? std::string(data::kFashionMnistDir) : config.data;
  for (const char* stem : {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                           "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"}) {
    const std::string path = dir + "/" + stem;
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path + ".gz", ec) &&
        !std::filesystem::is_regular_file(path, ec)) {
      return "the sparsity experiment needs Fashion-MNIST: no '" + path +
             ".gz' (nor without .gz). Install the Debian package dataset-fashion-mnist "
             "(apt-get install dataset-fashion-mnist), or give the folder with --data DIR";
    }
  }
  return "";
}

nlohmann::json run_sparsity(const ExperimentContext& context) {
  const auto start = std::chrono::steady_clock::now();
  Progress& progress = *context.progress;
  const Mode mode = make_mode(context.config);
  const SparsitySettings& settings = mode.settings;
  const double target = settings.target;
  const std::string data_dir =
      context.config.data.empty() ? std::string(data::kFashionMnistDir) : context.config.data;

  SparsityData data;
  try {
    data.train = data::load_fashion_mnist(data::Split::kTrain, data_dir);
    data.test = data::load_fashion_mnist(data::Split::kTest, data_dir);
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string(e.what()) + " (--data DIR)");
  }
  if (mode.train_examples > 0) data.train = data::take(data.train, mode.train_examples);

  // Runs: constrained (nuPI), proxy, the sweep (2 nuPI + 3 gradient ascent), about 9 bisection
  // runs, and the timing rounds. The bisection's length is not known in advance: the ETA is an
  // estimate.
  const double planned_runs = 2 + 2 + 3 + 9;
  progress.start_experiment("sparsity",
                            planned_runs * static_cast<double>(settings.epochs) +
                                2.0 * mode.timing_rounds * static_cast<double>(mode.timing_epochs));

  // ---- the constrained run, and its variants ----
  const auto nupi = [&](double lr, const std::string& label) {
    SparsityRunSpec spec;
    spec.method = SparsityMethod::kNuPI;
    spec.value = lr;
    spec.kp = mode.nupi_kp;
    spec.label = label;
    return spec;
  };
  const SparsityRun constrained =
      train_sparsity(data, settings, nupi(mode.nupi_lr, "constrained (nuPI)"), &progress);
  SparsityRunSpec proxy_spec = nupi(mode.proxy_lr, "constrained, test-time density (nuPI proxy)");
  proxy_spec.method = SparsityMethod::kNuPIProxy;
  const SparsityRun proxy = train_sparsity(data, settings, proxy_spec, &progress);

  std::vector<SparsityRun> sweep_nupi, sweep_ga;
  for (double scale : mode.sweep_scale) {
    sweep_nupi.push_back(train_sparsity(
        data, settings, nupi(mode.nupi_lr * scale, "nuPI step " + fmt(mode.nupi_lr * scale, 3)),
        &progress));
  }
  for (double scale : {1.0 / 3.0, 1.0, 10.0 / 3.0}) {
    SparsityRunSpec spec;
    spec.method = SparsityMethod::kGradientAscent;
    spec.value = mode.ga_lr * scale;
    spec.label = "gradient ascent step " + fmt(spec.value, 3);
    sweep_ga.push_back(train_sparsity(data, settings, spec, &progress));
  }

  // ---- the penalty: log-scale bisection over c ----
  struct Step {
    int step;
    std::string role;  // "endpoint", "widening", "bisection"
    SparsityRun run;
  };
  std::vector<Step> steps;
  const auto penalty_run = [&](double c, const std::string& role) {
    SparsityRunSpec spec;
    spec.method = SparsityMethod::kPenalty;
    spec.value = c;
    spec.label = "penalty c=" + fmt(c, 3) + " (" + role + ")";
    steps.push_back({static_cast<int>(steps.size()) + 1, role,
                     train_sparsity(data, settings, spec, &progress)});
    return steps.back().run.test_density;
  };
  const auto hit = [&](double d) { return std::abs(d - target) <= 0.01; };
  double lo = 1e-3, hi = 1.0;
  double d_lo = penalty_run(lo, "endpoint");
  double d_hi = hit(d_lo) ? d_lo : penalty_run(hi, "endpoint");
  bool found = hit(d_lo) || hit(d_hi);
  // A real tuner checks the bracket first and widens it (by 10x per run) when it does not hold
  // the target.
  while (!found && d_hi > target && static_cast<int>(steps.size()) < mode.max_bisection_runs) {
    lo = hi, d_lo = d_hi;
    hi *= 10;
    d_hi = penalty_run(hi, "widening");
    found = hit(d_hi);
  }
  while (!found && d_lo < target && static_cast<int>(steps.size()) < mode.max_bisection_runs) {
    hi = lo, d_hi = d_lo;
    lo /= 10;
    d_lo = penalty_run(lo, "widening");
    found = hit(d_lo);
  }
  while (!found && static_cast<int>(steps.size()) < mode.max_bisection_runs) {
    const double mid = std::sqrt(lo * hi);
    const double d = penalty_run(mid, "bisection");
    found = hit(d);
    if (d > target) {
      lo = mid;
    } else {
      hi = mid;
    }
  }

  // ---- Table 2, second row: penalized and constrained epochs, alternating ----
  std::vector<double> timing_penalty, timing_constrained, timing_data_penalty,
      timing_data_constrained;
  {
    SparsitySettings timed = settings;
    timed.epochs = mode.timing_epochs;
    SparsityRunSpec pen;
    pen.method = SparsityMethod::kPenalty;
    pen.value = steps.back().run.spec.value;
    SparsityRunSpec con = nupi(mode.nupi_lr, "");
    for (int r = 0; r < mode.timing_rounds; ++r) {
      pen.label = "timing: penalized, round " + std::to_string(r + 1);
      con.label = "timing: constrained, round " + std::to_string(r + 1);
      // Alternate which goes first, so that an order effect does not favour one.
      SparsityRun a, b;
      if (r % 2 == 0) {
        a = train_sparsity(data, timed, pen, &progress);
        b = train_sparsity(data, timed, con, &progress);
      } else {
        b = train_sparsity(data, timed, con, &progress);
        a = train_sparsity(data, timed, pen, &progress);
      }
      const double n = static_cast<double>(timed.epochs);
      timing_penalty.push_back(a.train_seconds / n);
      timing_constrained.push_back(b.train_seconds / n);
      timing_data_penalty.push_back(a.data_seconds / n);
      timing_data_constrained.push_back(b.data_seconds / n);
    }
  }
  std::vector<double> ratios;
  for (size_t i = 0; i < timing_penalty.size(); ++i) {
    ratios.push_back(timing_constrained[i] / timing_penalty[i]);
  }
  const double epoch_penalty = median(timing_penalty);
  const double epoch_constrained = median(timing_constrained);
  const double ratio = epoch_constrained / epoch_penalty;
  const double data_share = median(timing_data_constrained) / epoch_constrained;

  double bisection_seconds = 0;
  for (const auto& s : steps) bisection_seconds += s.run.train_seconds;
  const SparsityRun& last = steps.back().run;

  // ---- CSV ----
  {
    CsvWriter csv(context.dir + "/bisection.csv",
                  {"step", "role", "c", "test_density", "expected_density", "train_accuracy_pct",
                   "test_accuracy_pct", "train_seconds"});
    for (const auto& s : steps) {
      csv << s.step << s.role << s.run.spec.value << s.run.test_density << s.run.expected_density
          << s.run.train_accuracy << s.run.test_accuracy << s.run.train_seconds;
      csv.end_row();
    }
    csv.close();
  }
  std::vector<const SparsityRun*> all_constrained = {&constrained, &proxy};
  for (const auto& r : sweep_nupi) all_constrained.push_back(&r);
  for (const auto& r : sweep_ga) all_constrained.push_back(&r);
  {
    CsvWriter csv(context.dir + "/trajectories.csv",
                  {"run", "method", "dual_step", "epoch", "expected_density", "test_density",
                   "multiplier", "train_loss", "test_accuracy_pct", "seconds"});
    for (const SparsityRun* r : all_constrained) {
      std::vector<SparsityEpoch> rows = {r->initial};
      rows.insert(rows.end(), r->epochs.begin(), r->epochs.end());
      for (const auto& e : rows) {
        csv << r->spec.label << sparsity_method_key(r->spec.method) << r->spec.value << e.epoch
            << e.expected_density << e.test_density << e.multiplier << e.train_loss
            << e.test_accuracy << e.seconds;
        csv.end_row();
      }
    }
    csv.close();
  }
  {
    CsvWriter csv(context.dir + "/curves.csv",
                  {"epoch", "constrained_expected_pct", "constrained_test_pct",
                   "constrained_multiplier", "proxy_expected_pct", "proxy_test_pct",
                   "proxy_multiplier", "nupi_low_expected_pct", "nupi_high_expected_pct",
                   "ga_low_expected_pct", "ga_mid_expected_pct", "ga_high_expected_pct"});
    // Row 0 is the model before training (the same for every run: same seed, same start).
    const auto at = [](const SparsityRun& r, size_t row) -> const SparsityEpoch& {
      return row == 0 ? r.initial : r.epochs[row - 1];
    };
    for (size_t i = 0; i <= constrained.epochs.size(); ++i) {
      csv << at(constrained, i).epoch << 100 * at(constrained, i).expected_density
          << 100 * at(constrained, i).test_density << at(constrained, i).multiplier
          << 100 * at(proxy, i).expected_density << 100 * at(proxy, i).test_density
          << at(proxy, i).multiplier << 100 * at(sweep_nupi[0], i).expected_density
          << 100 * at(sweep_nupi[1], i).expected_density
          << 100 * at(sweep_ga[0], i).expected_density << 100 * at(sweep_ga[1], i).expected_density
          << 100 * at(sweep_ga[2], i).expected_density;
      csv.end_row();
    }
    csv.close();
  }
  {
    CsvWriter csv(
        context.dir + "/timing.csv",
        {"round", "penalized_seconds_per_epoch", "constrained_seconds_per_epoch",
         "penalized_data_seconds_per_epoch", "constrained_data_seconds_per_epoch", "ratio"});
    for (size_t i = 0; i < ratios.size(); ++i) {
      csv << static_cast<int64_t>(i + 1) << timing_penalty[i] << timing_constrained[i]
          << timing_data_penalty[i] << timing_data_constrained[i] << ratios[i];
      csv.end_row();
    }
    csv.close();
  }
  {
    // Figure 1's points: bisection step, test-time density, and a label with c.
    CsvWriter csv(context.dir + "/figure1.csv", {"step", "test_density_pct", "label"});
    for (const auto& s : steps) {
      csv << s.step << 100 * s.run.test_density << "c=" + fmt(s.run.spec.value, 3);
      csv.end_row();
    }
    csv.close();
  }

  // ---- figures ----
  SparsityFigure1 f1;
  f1.bisection_runs = static_cast<int>(steps.size());
  f1.target_pct = 100 * target;
  f1.proxy_test_pct = 100 * proxy.test_density;
  f1.constrained_test_pct = 100 * constrained.test_density;
  f1.constrained_expected_pct = 100 * constrained.expected_density;
  const FigureFile figure1 = draw_figure(
      context.dir, "figure1",
      "Figure 1: the test-time density of each penalized training run of the bisection, with "
      "its coefficient c, against one constrained run: the proxy run (which constrains the "
      "test-time density) and the constrained run (which constrains the expected density; both "
      "its densities shown)",
      sparsity_figure1_script(f1), 1300, 620);
  const int epochs = static_cast<int>(settings.epochs);
  const FigureFile figure_trajectory = draw_figure(
      context.dir, "trajectory",
      "The constrained runs: density and multiplier before training and at the end of every "
      "epoch",
      sparsity_trajectory_script(100 * target, epochs), 1100, 700);
  const FigureFile figure_sweep = draw_figure(
      context.dir, "dual_sweep",
      "The choice of dual optimizer: nuPI at three step sizes against plain gradient ascent",
      sparsity_dual_sweep_script(
          100 * target, epochs,
          {mode.nupi_lr * mode.sweep_scale[0], mode.nupi_lr, mode.nupi_lr * mode.sweep_scale[1]},
          {sweep_ga[0].spec.value, sweep_ga[1].spec.value, sweep_ga[2].spec.value}),
      1100, 560);

  // ---- checks ----
  nlohmann::json results = results_head(
      context, "sparsity", "E3: sparsity-constrained training with L0 gates (Fashion-MNIST)");
  auto& checks = results["checks"];
  checks.push_back(
      check("the constrained run ends within one point of the target (expected "
            "density, the constrained quantity)",
            hit(constrained.expected_density),
            "expected density " + pct(constrained.expected_density) + "%, test-time " +
                pct(constrained.test_density) + "%"));
  if (mode.check_proxy) {
    checks.push_back(
        check("the proxy run ends within one point of the target on the test-time "
              "density (the deployed model's)",
              hit(proxy.test_density),
              "test-time density " + pct(proxy.test_density) + "%, expected " +
                  pct(proxy.expected_density) + "%"));
  }
  int nupi_hits = hit(constrained.expected_density);
  for (const auto& r : sweep_nupi) nupi_hits += hit(r.expected_density);
  int ga_hits = 0;
  for (const auto& r : sweep_ga) ga_hits += hit(r.expected_density);
  std::string sweep_detail = "nuPI:";
  for (const SparsityRun* r :
       std::vector<const SparsityRun*>{&sweep_nupi[0], &constrained, &sweep_nupi[1]}) {
    sweep_detail += " " + pct(r->expected_density) + "%";
  }
  sweep_detail += "; gradient ascent:";
  for (const auto& r : sweep_ga) sweep_detail += " " + pct(r.expected_density) + "%";
  const double range = mode.sweep_scale[1] / mode.sweep_scale[0];
  checks.push_back(
      check("nuPI is not delicate: within one point of the target at all three "
            "dual steps (a " +
                fmt(range, 2) + "-fold range)",
            nupi_hits == 3, sweep_detail));
  checks.push_back(
      check("plain gradient ascent is delicate: it misses by more than one point "
            "at some step of a tenfold range",
            ga_hits < 3, std::to_string(ga_hits) + " of 3 steps within one point"));
  checks.push_back(check(
      "the bisection ends within one point of the target", found && hit(last.test_density),
      std::to_string(steps.size()) + " penalized runs, the last at c = " + fmt(last.spec.value, 3) +
          ": " + pct(last.test_density) + "%"));
  checks.push_back(check(
      "on the test-time density, the bisection takes several trainings (3 or more) to reach the "
      "target; the proxy run, which constrains that density, is one training",
      steps.size() >= 3 && found,
      std::to_string(steps.size()) + " penalized runs, " + fixed(bisection_seconds, 1) +
          " s of training; the proxy run: " + fixed(proxy.train_seconds, 1) + " s, test-time " +
          pct(proxy.test_density) + "%"));
  checks.push_back(check("data loading does not dominate an epoch (< 25% of its time)",
                         data_share < 0.25, pct(data_share) + "% of a constrained epoch"));

  // ---- results.json ----
  nlohmann::json settings_json = {
      {"data",
       {{"dataset",
         "Fashion-MNIST (Xiao, Rasul, Vollgraf 2017), Debian dataset-fashion-mnist; "
         "the paper uses MNIST, which Debian does not ship"},
        {"dir", data_dir},
        {"train_examples", data.train.size()},
        {"test_examples", data.test.size()}}},
      {"mode", mode.name},
      {"model", "MLP 784-300-100-10, ReLU, Hard Concrete L0 gates (Louizos et al. 2018)"},
      {"gates", to_string(settings.kind)},
      {"gate_temperature", 2.0 / 3.0},
      {"gate_stretch", {-0.1, 1.1}},
      {"init_drop_rates", settings.init_drop},
      {"epochs", settings.epochs},
      {"batch_size", settings.batch_size},
      {"primal", "Adam"},
      {"weight_lr", settings.lr},
      {"gate_lr", settings.gate_lr},
      {"target_density", target},
      {"constrained",
       {{"scheme", "simultaneous gradient descent-ascent"},
        {"constraint", "expected density - 0.5 <= 0"},
        {"dual", "nuPI"},
        {"dual_lr", mode.nupi_lr},
        {"kp", mode.nupi_kp},
        {"ki", 1.0},
        {"nu", 0.0},
        {"init", "zero memory (first update (Ki + Kp) e_0)"}}},
      {"proxy",
       {{"description",
         "as constrained, with the test-time density as the strict violation (the multiplier "
         "follows the deployed model's density; the primal follows the expected density)"},
        {"dual_lr", mode.proxy_lr},
        {"kp", mode.nupi_kp},
        {"checked", mode.check_proxy}}},
      {"dual_sweep_steps",
       {mode.nupi_lr * mode.sweep_scale[0], mode.nupi_lr, mode.nupi_lr * mode.sweep_scale[1]}},
      {"gradient_ascent_steps",
       {sweep_ga[0].spec.value, sweep_ga[1].spec.value, sweep_ga[2].spec.value}},
      {"penalty", "cross-entropy + c * expected density (FixedPenalty), same Adam"},
      {"bisection",
       "log-scale: c from 1e-3 and 1; the bracket is widened tenfold until it holds the "
       "target; stop when the test-time density is within one point of the target"}};
  results["settings"] = settings_json;
  nlohmann::json table3 = nlohmann::json::array();
  for (const auto& s : steps) {
    nlohmann::json row = run_json(s.run);
    row["step"] = s.step;
    row["role"] = s.role;
    table3.push_back(row);
  }
  results["table3_bisection"] = table3;
  results["published_table3"] = nlohmann::json::array();
  for (const auto& p : published_table3()) {
    results["published_table3"].push_back(
        {{"c", p.c}, {"density_pct", p.density}, {"train_accuracy_pct", p.train_accuracy}});
  }
  results["constrained"] = run_json(constrained);
  results["proxy"] = run_json(proxy);
  results["dual_sweep"] = nlohmann::json::array();
  for (const auto* r :
       std::vector<const SparsityRun*>{&sweep_nupi[0], &constrained, &sweep_nupi[1]}) {
    results["dual_sweep"].push_back(run_json(*r));
  }
  for (const auto& r : sweep_ga) results["dual_sweep"].push_back(run_json(r));
  results["training_seconds"] = {{"bisection_total", bisection_seconds},
                                 {"bisection_runs", steps.size()},
                                 {"constrained", constrained.train_seconds}};
  results["headline"] =
      headline_json(steps.size(), bisection_seconds, last, proxy, constrained, target);
  results["table2_sparsity_row"] = {{"penalized_seconds_per_epoch", timing_penalty},
                                    {"constrained_seconds_per_epoch", timing_constrained},
                                    {"penalized_median", epoch_penalty},
                                    {"penalized_stddev", stddev(timing_penalty)},
                                    {"constrained_stddev", stddev(timing_constrained)},
                                    {"constrained_median", epoch_constrained},
                                    {"ratio", ratio},
                                    {"per_round_ratios", ratios},
                                    {"data_share_of_epoch", data_share},
                                    {"published_ratio", 8.30 / 8.17}};
  results["files"] = {
      {"report", "report.md"},
      {"csv", {"bisection.csv", "trajectories.csv", "curves.csv", "timing.csv", "figure1.csv"}},
      {"figures", nlohmann::json::array()}};
  for (const auto* f : {&figure1, &figure_trajectory, &figure_sweep}) {
    results["files"]["figures"].push_back({{"name", f->name},
                                           {"png", f->name + ".png"},
                                           {"svg", f->name + ".svg"},
                                           {"drawn", f->drawn}});
  }

  // ---- report ----
  std::vector<std::vector<std::string>> rows3;
  for (size_t i = 0; i < steps.size(); ++i) {
    const auto& s = steps[i];
    std::vector<std::string> row = {std::to_string(s.step),       s.role,
                                    fmt(s.run.spec.value, 3),     pct(s.run.test_density),
                                    pct(s.run.expected_density),  fixed(s.run.train_accuracy, 2),
                                    fixed(s.run.test_accuracy, 2)};
    if (i < published_table3().size()) {
      const auto& p = published_table3()[i];
      row.insert(row.end(), {fmt(p.c, 3), fixed(p.density, 1), fixed(p.train_accuracy, 2)});
    } else {
      row.insert(row.end(), {"", "", ""});
    }
    rows3.push_back(row);
  }
  std::vector<std::vector<std::string>> rows_c;
  const auto constrained_row = [&](const SparsityRun& r, const std::string& what) {
    rows_c.push_back({what, sparsity_method_key(r.spec.method), fmt(r.spec.value, 3),
                      pct(r.expected_density), pct(r.test_density), fmt(r.multiplier, 3),
                      fixed(r.train_accuracy, 2), fixed(r.test_accuracy, 2),
                      fixed(r.train_seconds, 1)});
  };
  constrained_row(constrained, "**the constrained run**");
  constrained_row(proxy, "proxy: test-time density drives the multiplier");
  constrained_row(sweep_nupi[0], "sweep");
  constrained_row(sweep_nupi[1], "sweep");
  for (const auto& r : sweep_ga) constrained_row(r, "sweep");

  std::ostringstream md;
  md << "## Problem\n\n"
     << "An MLP 784-300-100-10 whose weights pass through Hard Concrete L0 gates (Louizos, "
        "Welling, Kingma 2018) must be at most "
     << pct(target)
     << "% dense. With a penalty, the user bisects over its coefficient c and trains again and "
        "again; with a constraint, one run.\n\n"
     << "**Data: Fashion-MNIST, not MNIST.** The paper uses MNIST, which Debian does not ship; "
        "Fashion-MNIST has the same format and size and is harder, so accuracies are lower than "
        "the published ones and the densities differ. Read from `"
     << data_dir << "` (" << data.train.size() << " training, " << data.test.size()
     << " test examples).\n\n"
     << "**Which density.** The constraint and the penalty use the *expected* density (the "
        "probability that each weight's gate is non-zero, averaged over the gated weights; "
        "biases excluded), which is differentiable. The deployed model uses the *test-time* "
        "gates, and its density is what Table 3 reports and what the bisection stops on. The "
        "two differ; the proxy run constrains the test-time density directly: the multiplier "
        "follows the test-time density (not differentiable), the weights and gates follow the "
        "expected one (proxy constraints, Cotter et al. 2019). Its dual step is "
     << fmt(mode.proxy_lr, 3)
     << " with the same K_p: the test-time density stays at 100% until the first gates cross "
        "their threshold and then falls in jumps (the first layer's 784 input gates hold 88% of "
        "the weights and move together), so a gentler controller settles better.";
  if (!mode.check_proxy) {
    md << " In quick mode the schedule is too short for it to settle reliably (in trials at this "
          "and nearby "
          "steps it ended between 44% and 51%), so its end is reported, not checked.";
  }
  md << "\n\n"
     << "## Settings\n\n"
     << "- Mode: " << mode.name << ". " << settings.epochs << " epochs per run, batch "
     << settings.batch_size << ", Adam " << fmt(settings.lr, 3) << " for weights and biases, Adam "
     << fmt(settings.gate_lr, 3) << " for the gate parameters log alpha.\n"
     << "- Gates: " << to_string(settings.kind)
     << (settings.kind == L0GateKind::kInputUnits
             ? " (one gate per input feature of each layer, shared by the weights that read it)"
             : " (one gate per weight)")
     << "; one noise draw per forward pass; temperature 2/3, stretch interval [-0.1, 1.1]. "
        "Initial drop "
        "rates "
     << fixed(settings.init_drop[0], 2) << ", " << fixed(settings.init_drop[1], 2) << ", "
     << fixed(settings.init_drop[2], 2)
     << " for the three layers (the authors' code; the paper's text says 0.01).\n"
     << "- Constrained: simultaneous gradient descent-ascent, constraint expected density - "
     << fixed(target, 2) << " <= 0, multiplier from 0, dual optimizer nuPI with step "
     << fmt(mode.nupi_lr, 3) << ", K_p = " << fmt(mode.nupi_kp, 4)
     << ", K_i = 1, nu = 0, zero initial memory (so the first update is (K_i + K_p) e_0).\n"
     << "- Penalty: cross-entropy + c * expected density, the same Adam.\n"
     << "- Bisection: geometric midpoint of [c_lo, c_hi], from c = 1e-3 and c = 1; if the two "
        "endpoints do not bracket the target, the bracket is widened tenfold per run first (those "
        "runs count); stop when the test-time density is within one point of the target.\n"
     << "- Seed " << context.config.seed
     << ": model initialisation, gate noise and batch order (every run starts from the same "
        "model).\n";
  if (mode.name == "quick") {
    md << "- **Quick mode**: the first " << data.train.size()
       << " training examples and a larger gate step, so that the gates move within the shorter "
          "schedule; the nuPI step and gain are the default mode's.\n";
  }
  if (mode.name != "paper") {
    md << "- **Short schedule.** The paper trains 150 epochs with Adam 1e-3 for the gates; on 2 "
          "CPU cores that is hours per run. In a few epochs at that step the gates barely move "
          "(the expected density goes from about 0.94 to 0.92 in 20 epochs), so this schedule "
          "uses a gate step of "
       << fmt(settings.gate_lr, 3) << " (" << fmt(settings.gate_lr / 1e-3, 3)
       << " times the paper's). `--paper` restores the paper's settings.\n";
  }
  if (context.config.epochs > 0 || settings.kind != L0GateKind::kInputUnits) {
    md << "- **Settings changed on the command line** (";
    if (context.config.epochs > 0) md << "--epochs " << context.config.epochs;
    if (context.config.epochs > 0 && settings.kind != L0GateKind::kInputUnits) md << ", ";
    if (settings.kind != L0GateKind::kInputUnits) md << "--gates weights";
    md << "): the dual settings above were tuned for the mode's own schedule with input-unit "
          "gates.\n";
  }
  md << "\n## The constrained run, and the choice of dual optimizer\n\n"
     << (hit(constrained.expected_density) ? "One run reaches the target"
                                           : "One run, which **misses** the target by more than "
                                             "one point,")
     << ": expected density **" << pct(constrained.expected_density) << "%**, test-time density "
     << pct(constrained.test_density) << "%, test accuracy " << fixed(constrained.test_accuracy, 2)
     << "%, in " << fixed(constrained.train_seconds, 1) << " s of training.\n\n"
     << "Plain gradient ascent on the multiplier is delicate here: the gates respond to the "
        "multiplier with a delay, so the multiplier keeps growing after the density is already "
        "on its way down, and the density overshoots (or, at a small step, has not arrived by "
        "the end). nuPI's proportional term damps this; the sweep shows the result is not "
        "tied to one step size.\n\n"
     << markdown_table({"run", "dual", "dual step", "expected density (%)", "test-time density (%)",
                        "final lambda", "train acc. (%)", "test acc. (%)", "training (s)"},
                       rows_c)
     << "\n"
     << markdown_figure(figure_trajectory) << "\n"
     << markdown_figure(figure_sweep) << "\n## Table 3: the penalty's bisection\n\n"
     << headline_markdown(results["headline"])
     << " Published (MNIST, 150 epochs): 7 trainings for the bisection.\n\n"
     << markdown_table(
            {"run", "role", "c", "test-time density (%)", "expected density (%)", "train acc. (%)",
             "test acc. (%)", "published c", "published density (%)", "published train acc. (%)"},
            rows3)
     << "\n"
     << markdown_figure(figure1) << "\n## Table 2, second row: the cost of the constraint\n\n"
     << "Penalized and constrained runs of " << mode.timing_epochs << " epochs each, alternating, "
     << mode.timing_rounds
     << " rounds (which goes first alternates); time per epoch (training loop only). "
        "Published: the whole 150-epoch run, median over runs.\n\n"
     << markdown_table(
            {"", "penalized (s/epoch)", "constrained (s/epoch)", "ratio"},
            {{"ours (median)", fixed(epoch_penalty, 3), fixed(epoch_constrained, 3),
              fixed(ratio, 3)},
             {"ours (standard deviation)", fixed(stddev(timing_penalty), 3),
              fixed(stddev(timing_constrained), 3), ""},
             {"published (min per run, MNIST, Cooper)", "8.17", "8.30", fixed(8.30 / 8.17, 3)}})
     << "\nData loading (shuffling and gathering batches) takes " << pct(data_share)
     << "% of a constrained epoch. With " << mode.timing_rounds
     << " rounds the spread of one variant's epochs is "
     << pct(std::max(stddev(timing_penalty) / epoch_penalty,
                     stddev(timing_constrained) / epoch_constrained))
     << "% of an epoch, so the ratio above is only indicative on a shared machine; "
        "`bench/bench_sparsity` times more rounds for the goal figure (constrained/penalized "
        "<= 1.02; docs/performance.md, section 7).\n\n"
     << "Data: [bisection.csv](bisection.csv), [trajectories.csv](trajectories.csv) (every "
        "constrained run, every epoch), [curves.csv](curves.csv), [timing.csv](timing.csv).\n";

  write_results(context, results, md.str(), start);
  return results;
}

}  // namespace feasible::app
