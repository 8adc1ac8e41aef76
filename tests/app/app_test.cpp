// Tests of the `feasible` program: its command line (parsed in process), the exit codes and
// messages of the binary, and the results of one `feasible reproduce all --quick` run (made by
// the CTest fixture app_reproduce_all_quick): the results.json layout of docs/cli.md, the files
// each experiment writes, and the paper's qualitative results, re-derived here from the raw
// numbers (not from the program's own "checks").
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include "apps/feasible/cli.h"
#include "apps/feasible/figures.h"

namespace fs = std::filesystem;
using feasible::app::parse_command_line;
using feasible::app::ParseOutcome;
using nlohmann::json;

namespace {

ParseOutcome parse(std::vector<std::string> args) {
  args.insert(args.begin(), "feasible");
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  return parse_command_line(static_cast<int>(argv.size()), argv.data());
}

std::string read(const fs::path& path) {
  std::ifstream file(path);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

struct Output {
  int rc = -1;
  std::string out, err;
};

/// Runs the binary with `args` (a shell-quoted string), capturing stdout and stderr.
Output run_app(const std::string& args) {
  const fs::path dir =
      fs::temp_directory_path() / ("feasible_app_test_" + std::to_string(getpid()));
  fs::create_directories(dir);
  const std::string command = std::string("'") + FEASIBLE_APP_PATH + "' " + args + " >'" +
                              (dir / "out").string() + "' 2>'" + (dir / "err").string() + "'";
  const int status = std::system(command.c_str());
  Output o;
  o.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  o.out = read(dir / "out");
  o.err = read(dir / "err");
  fs::remove_all(dir);
  return o;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

// ---- the command line, in process ----------------------------------------------------------

TEST(Cli, ParsesEveryOption) {
  const auto o = parse(
      {"reproduce", "rate", "--quick", "--out", "x/y", "--seed", "7", "--threads", "3", "--quiet"});
  ASSERT_TRUE(o.run) << o.err;
  EXPECT_EQ(o.config.experiment, "rate");
  EXPECT_TRUE(o.config.quick);
  EXPECT_EQ(o.config.out, "x/y");
  EXPECT_EQ(o.config.seed, 7u);
  EXPECT_EQ(o.config.threads, 3);
  EXPECT_TRUE(o.config.quiet);
}

TEST(Cli, ParsesTheSparsityOptions) {
  const auto o = parse({"reproduce", "sparsity", "--epochs", "150", "--paper", "--data", "d/f",
                        "--gates", "weights"});
  ASSERT_TRUE(o.run) << o.err;
  EXPECT_EQ(o.config.experiment, "sparsity");
  EXPECT_EQ(o.config.epochs, 150);
  EXPECT_TRUE(o.config.paper);
  EXPECT_EQ(o.config.data, "d/f");
  EXPECT_EQ(o.config.gates, "weights");
  const auto d = parse({"reproduce", "sparsity"});
  ASSERT_TRUE(d.run) << d.err;
  EXPECT_EQ(d.config.epochs, 0);  // the mode's default
  EXPECT_FALSE(d.config.paper);
  EXPECT_TRUE(d.config.data.empty());
  EXPECT_EQ(d.config.gates, "input_units");
  EXPECT_EQ(feasible::app::output_root(d.config), "results/sparsity");
}

TEST(Cli, DefaultsAndOutputRoots) {
  const auto o = parse({"reproduce", "concave"});
  ASSERT_TRUE(o.run) << o.err;
  EXPECT_FALSE(o.config.quick);
  EXPECT_EQ(o.config.seed, 0u);
  EXPECT_EQ(o.config.threads, 0);
  EXPECT_FALSE(o.config.quiet);
  EXPECT_EQ(feasible::app::output_root(o.config), "results/concave");
  const auto all = parse({"reproduce", "all"});
  EXPECT_EQ(feasible::app::output_root(all.config), "results");
  const auto given = parse({"reproduce", "all", "--out", "elsewhere"});
  EXPECT_EQ(feasible::app::output_root(given.config), "elsewhere");
}

TEST(Cli, HelpAndVersionExitZeroWithoutRunning) {
  for (const auto& args : std::vector<std::vector<std::string>>{{"--help"}, {"-h"}}) {
    const auto o = parse(args);
    EXPECT_FALSE(o.run);
    EXPECT_EQ(o.exit_code, 0);
    EXPECT_TRUE(contains(o.out, "reproduce")) << o.out;
  }
  const auto sub = parse({"reproduce", "--help"});
  EXPECT_EQ(sub.exit_code, 0);
  EXPECT_TRUE(contains(sub.out, "--quick")) << sub.out;
  EXPECT_TRUE(contains(sub.out, "--threads")) << sub.out;
  const auto version = parse({"--version"});
  EXPECT_FALSE(version.run);
  EXPECT_EQ(version.exit_code, 0);
  EXPECT_TRUE(contains(version.out, "feasible 0.1.0")) << version.out;
}

TEST(Cli, BadCommandLinesExitTwoWithAMessage) {
  struct Case {
    std::vector<std::string> args;
    std::string expected;  // part of the message
  };
  const std::vector<Case> cases = {
      {{}, "subcommand is required"},
      {{"reproduc"}, "unknown command 'reproduc'; expected 'reproduce'"},
      {{"reproduce"}, "experiment is required"},
      {{"reproduce", "sparse"},
       "sparse not in {concave,rate,overhead,sparsity,recall,per-example,fairness,all}"},
      {{"reproduce", "sparsity", "--epochs", "0"}, "--epochs"},
      {{"reproduce", "sparsity", "--epochs", "many"}, "--epochs"},
      {{"reproduce", "sparsity", "--data", ""}, "--data must not be empty"},
      {{"reproduce", "sparsity", "--quick", "--paper"}, "excludes"},
      {{"reproduce", "sparsity", "--gates", "rows"}, "--gates"},
      {{"reproduce", "rate", "--threads", "0"}, "--threads"},
      {{"reproduce", "rate", "--threads", "2000"}, "--threads"},
      {{"reproduce", "rate", "--threads", "two"}, "--threads"},
      {{"reproduce", "rate", "--seed", "-1"}, "--seed"},
      {{"reproduce", "rate", "--seed", "x"}, "--seed"},
      {{"reproduce", "rate", "--out", ""}, "--out must not be empty"},
      {{"reproduce", "rate", "--out"}, "--out"},
      {{"reproduce", "rate", "--fast"}, "--fast"},
      {{"reproduce", "rate", "concave"}, "concave"},
  };
  for (const auto& c : cases) {
    std::string joined;
    for (const auto& a : c.args) joined += a + " ";
    SCOPED_TRACE(joined);
    const auto o = parse(c.args);
    EXPECT_FALSE(o.run);
    EXPECT_EQ(o.exit_code, 2);
    EXPECT_TRUE(contains(o.err, c.expected)) << o.err;
    EXPECT_TRUE(contains(o.err, "--help")) << o.err;  // every error says where to look
  }
}

TEST(Cli, EmptyArgvIsAUsageErrorNotACrash) {
  const auto o = parse_command_line(0, nullptr);
  EXPECT_FALSE(o.run);
  EXPECT_EQ(o.exit_code, 2);
}

// ---- the binary ------------------------------------------------------------------------------

TEST(Binary, VersionHelpAndUsageErrors) {
  const auto version = run_app("--version");
  EXPECT_EQ(version.rc, 0);
  EXPECT_TRUE(contains(version.out, "feasible 0.1.0")) << version.out;
  const auto help = run_app("reproduce --help");
  EXPECT_EQ(help.rc, 0);
  EXPECT_TRUE(contains(help.out, "concave")) << help.out;
  const auto unknown = run_app("frobnicate");
  EXPECT_EQ(unknown.rc, 2);
  EXPECT_TRUE(contains(unknown.err, "unknown command 'frobnicate'")) << unknown.err;
  EXPECT_TRUE(unknown.out.empty());
  const auto bad = run_app("reproduce concave --threads -3");
  EXPECT_EQ(bad.rc, 2);
  EXPECT_TRUE(contains(bad.err, "--threads")) << bad.err;
}

TEST(Binary, UnwritableOutIsRefusedBeforeAnyWork) {
  // A folder below a regular file can never be created.
  const fs::path file =
      fs::temp_directory_path() / ("feasible_app_test_file_" + std::to_string(getpid()));
  std::ofstream(file) << "x";
  const auto o = run_app("reproduce overhead --out '" + (file / "out").string() + "'");
  EXPECT_EQ(o.rc, 2);
  EXPECT_TRUE(contains(o.err, "cannot create the output folder")) << o.err;
  EXPECT_TRUE(contains(o.err, (file / "out").string())) << o.err;
  EXPECT_TRUE(o.out.empty()) << o.out;  // nothing ran: no report announced
  fs::remove(file);
  // A folder without write permission (skipped as root, who may write anywhere).
  if (geteuid() != 0) {
    const fs::path ro =
        fs::temp_directory_path() / ("feasible_app_test_ro_" + std::to_string(getpid()));
    fs::create_directories(ro);
    chmod(ro.c_str(), 0555);
    const auto r = run_app("reproduce overhead --out '" + ro.string() + "'");
    EXPECT_EQ(r.rc, 2);
    EXPECT_TRUE(contains(r.err, "cannot write in the output folder")) << r.err;
    chmod(ro.c_str(), 0755);
    fs::remove_all(ro);
  }
}

TEST(Binary, MissingDatasetIsRefusedBeforeAnyWork) {
  // `all` runs sparsity last: a missing Fashion-MNIST must stop it before the first experiment,
  // with the path and the package named.
  const fs::path empty =
      fs::temp_directory_path() / ("feasible_app_test_nodata_" + std::to_string(getpid()));
  const fs::path out = empty / "out";
  fs::create_directories(empty);
  const auto o = run_app("reproduce all --quick --quiet --data '" + empty.string() + "' --out '" +
                         out.string() + "'");
  EXPECT_EQ(o.rc, 2);
  EXPECT_TRUE(contains(o.err, (empty / "train-images-idx3-ubyte").string())) << o.err;
  EXPECT_TRUE(contains(o.err, "dataset-fashion-mnist")) << o.err;
  EXPECT_TRUE(o.out.empty()) << o.out;                      // no report announced
  EXPECT_FALSE(fs::exists(out / "concave" / "report.md"));  // nothing ran
  fs::remove_all(empty);
}

// ---- the quick run of every experiment --------------------------------------------------------

namespace {

const fs::path kRoot = FEASIBLE_APP_OUT;

json load_results(const std::string& experiment) {
  const fs::path path = kRoot / experiment / "results.json";
  EXPECT_TRUE(fs::exists(path)) << path;
  return json::parse(read(path));
}

bool gnuplot_available() { return std::system("command -v gnuplot >/dev/null 2>&1") == 0; }

/// Every legend of a gnuplot script stands outside the plot area (gnuplot's `outside`, or
/// `below`/`above`, which are outside too), so it hides no data; there is at least one.
void expect_legends_outside(const std::string& script, const std::string& name) {
  const auto keys = feasible::app::key_lines(script);
  EXPECT_FALSE(keys.empty()) << name;
  for (const auto& k : keys) {
    const bool outside = contains(k, " outside") || contains(k, " below") || contains(k, " above");
    EXPECT_TRUE(outside && !contains(k, " inside")) << name << ": " << k;
  }
}

/// The layout every results.json shares (docs/cli.md).
void expect_common_layout(const json& r, const std::string& experiment) {
  EXPECT_EQ(r.at("schema"), "feasible-results");
  EXPECT_EQ(r.at("schema_version"), 1);
  EXPECT_EQ(r.at("experiment"), experiment);
  EXPECT_TRUE(r.at("title").is_string());
  EXPECT_TRUE(contains(r.at("paper").get<std::string>(), "arXiv:2505.20628"));
  EXPECT_TRUE(r.at("started_utc").is_string());
  EXPECT_EQ(r.at("run").at("quick"), true);
  EXPECT_EQ(r.at("run").at("seed"), 0);
  EXPECT_GE(r.at("run").at("threads").get<int>(), 1);
  EXPECT_EQ(r.at("software").at("feasible"), "0.1.0");
  EXPECT_TRUE(r.at("software").at("libtorch").is_string());
  EXPECT_TRUE(r.at("software").at("compiler").is_string());
  EXPECT_GT(r.at("wall_seconds").get<double>(), 0.0);
  EXPECT_TRUE(r.at("settings").is_object());
  ASSERT_TRUE(r.at("checks").is_array());
  EXPECT_GE(r.at("checks").size(), 1u);
  int passed = 0;
  for (const auto& c : r.at("checks")) {
    EXPECT_TRUE(c.at("name").is_string());
    EXPECT_TRUE(c.at("detail").is_string());
    passed += c.at("passed").get<bool>();
  }
  EXPECT_EQ(r.at("checks_total"), r.at("checks").size());
  EXPECT_EQ(r.at("checks_passed"), passed);
  // Every file the results name exists; figures exist as PNG and SVG when gnuplot is there.
  const fs::path dir = kRoot / experiment;
  EXPECT_TRUE(fs::exists(dir / r.at("files").at("report").get<std::string>()));
  for (const auto& csv : r.at("files").at("csv")) {
    const fs::path p = dir / csv.get<std::string>();
    EXPECT_TRUE(fs::exists(p)) << p;
    EXPECT_GT(fs::file_size(p), 20u) << p;
  }
  for (const auto& f : r.at("files").at("figures")) {
    EXPECT_TRUE(fs::exists(dir / (f.at("name").get<std::string>() + ".gp")));
    expect_legends_outside(read(dir / (f.at("name").get<std::string>() + ".gp")),
                           f.at("name").get<std::string>());
    if (gnuplot_available()) {
      EXPECT_TRUE(f.at("drawn").get<bool>()) << f;
      EXPECT_GT(fs::file_size(dir / f.at("png").get<std::string>()), 1000u);
      EXPECT_TRUE(contains(read(dir / f.at("svg").get<std::string>()), "<svg"));
    }
  }
  const std::string report = read(dir / "report.md");
  EXPECT_TRUE(contains(report, "arXiv:2505.20628"));
  EXPECT_TRUE(contains(report, "## Checks"));
}

}  // namespace

TEST(QuickRun, IndexLinksEveryExperiment) {
  const json index = json::parse(read(kRoot / "index.json"));
  ASSERT_EQ(index.at("experiments").size(), 7u);
  const std::string md = read(kRoot / "index.md");
  for (const std::string name :
       {"concave", "rate", "overhead", "sparsity", "recall", "per-example", "fairness"}) {
    EXPECT_TRUE(contains(md, "(" + name + "/report.md)")) << md;
    EXPECT_TRUE(fs::exists(kRoot / name / "report.md"));
  }
}

namespace {

/// The rows of a CSV file after its header, as text cells (no quoted cells).
std::vector<std::vector<std::string>> csv_rows(const fs::path& path) {
  std::vector<std::vector<std::string>> rows;
  std::ifstream file(path);
  std::string line;
  std::getline(file, line);  // header
  while (std::getline(file, line)) {
    std::vector<std::string> cells;
    std::stringstream in(line);
    std::string cell;
    while (std::getline(in, cell, ',')) cells.push_back(cell);
    rows.push_back(cells);
  }
  return rows;
}

}  // namespace

TEST(QuickRun, ConcaveMatchesTheClosedForm) {
  const json r = load_results("concave");
  expect_common_layout(r, "concave");
  const auto& table = r.at("table1");
  ASSERT_EQ(table.size(), 8u);
  int nupi_close = 0, al_close = 0;
  for (const auto& row : table) {
    const double eps = row.at("eps");
    const double x_star = std::asin(eps);  // the known optimum
    const double lambda_star = eps / std::sqrt(1 - eps * eps);
    EXPECT_NEAR(row.at("x_star").get<double>(), x_star, 1e-12);
    EXPECT_NEAR(row.at("lambda_star").get<double>(), lambda_star, 1e-12);
    // The tolerance: 1e-3 (Table 1 prints three digits).
    nupi_close += std::abs(row.at("nupi").at("x").get<double>() - x_star) <= 1e-3;
    al_close += std::abs(row.at("augmented_lagrangian").at("x").get<double>() - x_star) <= 1e-3;
    // Proposition 3: the penalty at c = lambda* ends at an endpoint, not at x*.
    const double x_pen = row.at("penalty_at_lambda_star").at("x");
    EXPECT_TRUE(x_pen < 1e-3 || x_pen > M_PI / 2 - 1e-3) << "eps " << eps << ": " << x_pen;
  }
  // The report and the README: nuPI and the Augmented Lagrangian reach arcsin(eps) at all 8 eps.
  EXPECT_EQ(nupi_close, 8);
  EXPECT_EQ(al_close, 8);
  // Fixed penalties from x0 = 0.5: c = 0.5 < tan(0.5) ends at pi/2, c = 2 ends at 0.
  bool saw_half = false, saw_two = false;
  for (const auto& p : r.at("penalties")) {
    const double c = p.at("c"), x = p.at("x");
    if (std::abs(c - 0.5) < 1e-12) {
      saw_half = true;
      EXPECT_NEAR(x, M_PI / 2, 1e-6);
    }
    if (std::abs(c - 2.0) < 1e-12) {
      saw_two = true;
      EXPECT_NEAR(x, 0.0, 1e-6);
    }
    EXPECT_NEAR(p.at("f").get<double>(), std::cos(x), 1e-12);
  }
  EXPECT_TRUE(saw_half && saw_two);
}

// What plain GDA does at each eps, re-derived from series.csv (every 10th iteration in the
// window, so the sampled range is at most the true one): where x moves by more than 1e-3 it
// swings across x*; where it does not, it sits at 0 with lambda 0, or at pi/2 with lambda
// growing. The report's per-eps verdicts must say the same.
TEST(QuickRun, ConcaveSaysWhatGradientDescentAscentDoesAtEachEps) {
  const json r = load_results("concave");
  const int64_t iterations = r.at("settings").at("iterations");
  const int64_t tail = r.at("settings").at("tail");
  const auto series = csv_rows(kRoot / "concave" / "series.csv");
  int oscillating = 0;
  for (const auto& row : r.at("table1")) {
    const double eps = row.at("eps"), x_star = std::asin(eps);
    SCOPED_TRACE("eps " + std::to_string(eps));
    double lo = 1e9, hi = -1e9, lambda_first = -1, lambda_last = -1, lambda_max = 0;
    int samples = 0;
    for (const auto& cells : series) {
      if (cells[0] != "gda" || std::abs(std::stod(cells[1]) - eps) > 1e-12) continue;
      if (std::stoll(cells[3]) <= iterations - tail) continue;
      const double x = std::stod(cells[4]), lambda = std::stod(cells[5]);
      lo = std::min(lo, x), hi = std::max(hi, x);
      if (samples++ == 0) lambda_first = lambda;
      lambda_last = lambda;
      lambda_max = std::max(lambda_max, lambda);
    }
    ASSERT_GE(samples, 50);  // every 10th of the last 1,000 iterations
    const json& gda = row.at("gda");
    // The recorded window lies within the range the report gives.
    EXPECT_GE(lo, gda.at("tail_min_x").get<double>());
    EXPECT_LE(hi, gda.at("tail_max_x").get<double>());
    const std::string behaviour = gda.at("behaviour");
    if (hi - lo > 1e-3) {
      EXPECT_EQ(behaviour, "oscillates");
      EXPECT_TRUE(lo < x_star && x_star < hi) << lo << " " << hi;
      ++oscillating;
    } else if (hi <= 1e-6) {
      EXPECT_EQ(behaviour, "stuck_at_0");
      EXPECT_EQ(lambda_max, 0.0);
    } else {
      EXPECT_EQ(behaviour, "stuck_at_half_pi");
      EXPECT_GE(lo, M_PI / 2 - 1e-6);
      EXPECT_GT(lambda_last, lambda_first);
    }
  }
  EXPECT_GE(oscillating, 1);
  // The checks the report prints say the same, and hold.
  int said = 0;
  for (const auto& c : r.at("checks")) {
    const std::string name = c.at("name");
    if (contains(name, "plain GDA oscillates around x*") ||
        contains(name, "plain GDA is stuck at an endpoint")) {
      ++said;
      EXPECT_TRUE(c.at("passed").get<bool>()) << c;
    }
  }
  EXPECT_EQ(said, 2);
}

TEST(QuickRun, RateLagrangianMeetsTheRateAndThePenaltyCollapses) {
  const json r = load_results("rate");
  expect_common_layout(r, "rate");
  const auto& t4 = r.at("table4_penalty");
  const auto& t5 = r.at("table5_lagrangian");
  ASSERT_EQ(t4.size(), t5.size());
  bool saw_lag = false, saw_pen = false;
  for (const auto& row : t5) {
    const double step = row.at("dual_step");
    // 400 points: percentages are multiples of 0.25.
    const double c0 = row.at("class0_pct");
    EXPECT_NEAR(c0 * 4, std::round(c0 * 4), 1e-9);
    if (std::abs(step - 1e-2) < 1e-12) {
      saw_lag = true;
      EXPECT_GE(c0, 69.0);  // "meets 70% within one point"
      EXPECT_GT(row.at("multiplier").get<double>(), 0.0);
    }
  }
  for (const auto& row : t4) {
    if (std::abs(row.at("c").get<double>() - 1e-3) < 1e-12) {
      saw_pen = true;
      EXPECT_NEAR(row.at("class0_pct").get<double>(), 50.0, 1.0);
    }
  }
  EXPECT_TRUE(saw_lag && saw_pen);
  // The footnote variant (quick mode: dual step 1e-2) satisfies the surrogate, not the exact
  // rate.
  ASSERT_FALSE(r.at("footnote_surrogate_dual").empty());
  for (const auto& row : r.at("footnote_surrogate_dual")) {
    EXPECT_GE(row.at("surrogate_rate").get<double>(), 0.699);
    EXPECT_LT(row.at("class0_pct").get<double>(), 69.0);
  }
}

TEST(QuickRun, OverheadReportsEveryArm) {
  const json r = load_results("overhead");
  expect_common_layout(r, "overhead");
  const auto& table = r.at("table2");
  ASSERT_EQ(table.size(), 4u);
  const int runs = r.at("settings").at("repeats");
  EXPECT_EQ(runs, 3);  // quick mode
  for (const auto& arm : table) {
    EXPECT_EQ(arm.at("seconds").size(), static_cast<size_t>(runs));
    std::vector<double> s = arm.at("seconds").get<std::vector<double>>();
    for (double v : s) EXPECT_GT(v, 0.0);
    std::sort(s.begin(), s.end());
    EXPECT_DOUBLE_EQ(arm.at("median_seconds").get<double>(), s[1]);  // median of 3
  }
  EXPECT_NEAR(
      r.at("ratio_constrained_to_penalized").get<double>(),
      table[1].at("median_seconds").get<double>() / table[0].at("median_seconds").get<double>(),
      1e-12);
  // The published row: its ratio is the ratio of its times, and the report prints them.
  const json& published = r.at("published").at("rate");
  const double pub_pen = published.at("penalized_seconds"),
               pub_con = published.at("constrained_seconds");
  EXPECT_NEAR(published.at("ratio").get<double>(), pub_con / pub_pen, 1e-12);
  const std::string report = read(kRoot / "overhead" / "report.md");
  char ratio_text[32];
  std::snprintf(ratio_text, sizeof ratio_text, "%.3f", pub_con / pub_pen);
  EXPECT_TRUE(contains(report, ratio_text)) << ratio_text;
}

TEST(QuickRun, SparsityConstrainedRunMeetsTheTargetAndTheBisectionIsRecorded) {
  const json r = load_results("sparsity");
  expect_common_layout(r, "sparsity");
  const double target = r.at("settings").at("target_density").get<double>();
  // The target in the settings is the one the program measured against: its verdict on the
  // constrained run agrees with one re-derived from the raw density and that target.
  bool saw_verdict = false;
  for (const auto& check : r.at("checks")) {
    if (!contains(check.at("name").get<std::string>(), "the constrained run ends within one point"))
      continue;
    saw_verdict = true;
    const double d = r.at("constrained").at("expected_density");
    EXPECT_EQ(check.at("passed").get<bool>(), std::abs(d - target) <= 0.01) << check;
  }
  EXPECT_TRUE(saw_verdict);
  // The requirement: the constrained run ends within one point of the target (on the
  // density it constrains), in every mode.
  const json& c = r.at("constrained");
  EXPECT_EQ(c.at("method"), "nupi");
  EXPECT_NEAR(c.at("expected_density").get<double>(), target, 0.01);
  // The proxy run constrains the test-time density; quick mode reports it without a check (its
  // schedule is too short for the jumpy test-time density to settle).
  EXPECT_EQ(r.at("settings").at("proxy").at("checked"), false);
  EXPECT_LT(r.at("proxy").at("test_density").get<double>(), 0.9);
  // Both densities are fractions, and the trajectory has one entry per epoch.
  const int epochs = r.at("settings").at("epochs");
  ASSERT_EQ(c.at("epochs").size(), static_cast<size_t>(epochs));
  for (const auto& e : c.at("epochs")) {
    EXPECT_GE(e.at("expected_density").get<double>(), 0.0);
    EXPECT_LE(e.at("expected_density").get<double>(), 1.0);
    EXPECT_GE(e.at("multiplier").get<double>(), 0.0);
  }
  // The bisection: every run recorded, numbered 1..n, the first two the endpoints 1e-3 and 1,
  // the last within one point (test-time density) unless the run cap was reached.
  const json& steps = r.at("table3_bisection");
  ASSERT_GE(steps.size(), 2u);
  EXPECT_DOUBLE_EQ(steps[0].at("value").get<double>(), 1e-3);
  EXPECT_DOUBLE_EQ(steps[1].at("value").get<double>(), 1.0);
  double total = 0;
  for (size_t i = 0; i < steps.size(); ++i) {
    EXPECT_EQ(steps[i].at("step"), static_cast<int>(i + 1));
    EXPECT_EQ(steps[i].at("method"), "penalty");
    total += steps[i].at("train_seconds").get<double>();
  }
  EXPECT_NEAR(r.at("training_seconds").at("bisection_total").get<double>(), total, 1e-9);
  EXPECT_EQ(r.at("training_seconds").at("bisection_runs"), steps.size());
  // c = 1e-3 barely prunes: its density stays far above the target.
  EXPECT_GT(steps[0].at("test_density").get<double>(), target + 0.2);
  EXPECT_NEAR(steps.back().at("test_density").get<double>(), target, 0.01);
  // Table 2's second row: the ratio is the ratio of the medians it lists.
  const json& t = r.at("table2_sparsity_row");
  EXPECT_NEAR(t.at("ratio").get<double>(),
              t.at("constrained_median").get<double>() / t.at("penalized_median").get<double>(),
              1e-12);
  // The published ratio is that of the published times (recorded by the overhead experiment),
  // and the report prints it.
  const json pub = load_results("overhead").at("published").at("sparsity");
  const double pub_ratio =
      pub.at("constrained_minutes").get<double>() / pub.at("penalized_minutes").get<double>();
  EXPECT_NEAR(t.at("published_ratio").get<double>(), pub_ratio, 1e-12);
  char ratio_text[32];
  std::snprintf(ratio_text, sizeof ratio_text, "%.3f", pub_ratio);
  EXPECT_TRUE(contains(read(kRoot / "sparsity" / "report.md"), ratio_text)) << ratio_text;
  // Fashion-MNIST, and the report says so.
  const std::string report = read(kRoot / "sparsity" / "report.md");
  EXPECT_TRUE(contains(report, "Fashion-MNIST, not MNIST")) << report;
  EXPECT_TRUE(contains(report, "Initial drop rates")) << report;
}

// ---- integer options: what they take, said plainly ----------------------------------------------

TEST(CliIntegers, SeedMustBeANonNegativeIntegerAndTheMessageSaysSo) {
  const std::string takes = "must be a non-negative integer (0 to 18446744073709551615)";
  for (const std::string bad : {"abc", "-1", "1.5", "", "1e3", "0x10", "18446744073709551616"}) {
    SCOPED_TRACE("--seed '" + bad + "'");
    const auto o = parse({"reproduce", "rate", "--seed", bad});
    EXPECT_FALSE(o.run);
    EXPECT_EQ(o.exit_code, 2);
    EXPECT_TRUE(contains(o.err, "--seed: " + takes + ", got '" + bad + "'")) << o.err;
    EXPECT_FALSE(contains(o.err, "not in range")) << o.err;  // CLI11's message, with its doubles
    // The message line itself stays short (the old one was 369 characters).
    EXPECT_LT(o.err.find('\n'), 120u) << o.err;
  }
}

TEST(CliIntegers, EveryIntegerOptionNamesItsRange) {
  struct Case {
    std::string option, experiment, takes;
  };
  const std::vector<Case> options = {
      {"--threads", "rate", "must be an integer from 1 to 1024"},
      {"--epochs", "sparsity", "must be an integer from 1 to 100000"},
  };
  for (const auto& c : options) {
    for (const std::string bad : {"abc", "-1", "1.5", "0", "100001", "+2"}) {
      SCOPED_TRACE(c.option + " '" + bad + "'");
      const auto o = parse({"reproduce", c.experiment, c.option, bad});
      EXPECT_FALSE(o.run);
      EXPECT_EQ(o.exit_code, 2);
      EXPECT_TRUE(contains(o.err, c.option + ": " + c.takes + ", got '" + bad + "'")) << o.err;
    }
  }
  const auto over = parse({"reproduce", "rate", "--threads", "1025"});
  EXPECT_TRUE(contains(over.err, "--threads: must be an integer from 1 to 1024, got '1025'"))
      << over.err;
}

TEST(CliIntegers, ValidIntegersAreReadInDecimal) {
  // The largest seed, and a leading zero (CLI11 alone would read "010" as octal 8).
  const auto o = parse({"reproduce", "sparsity", "--seed", "18446744073709551615", "--threads",
                        "010", "--epochs", "100000"});
  ASSERT_TRUE(o.run) << o.err;
  EXPECT_EQ(o.config.seed, 18446744073709551615ull);
  EXPECT_EQ(o.config.threads, 10);
  EXPECT_EQ(o.config.epochs, 100000);
  const auto zero = parse({"reproduce", "rate", "--seed", "0", "--threads", "1", "--epochs", "1"});
  ASSERT_TRUE(zero.run) << zero.err;
  EXPECT_EQ(zero.config.seed, 0u);
  EXPECT_EQ(zero.config.threads, 1);
  EXPECT_EQ(zero.config.epochs, 1);
}

TEST(CliIntegers, TheBinarySaysTheSeedMustBeANonNegativeInteger) {
  const auto o = run_app("reproduce rate --seed abc");
  EXPECT_EQ(o.rc, 2);
  EXPECT_TRUE(contains(
      o.err, "--seed: must be a non-negative integer (0 to 18446744073709551615), got 'abc'"))
      << o.err;
  EXPECT_TRUE(o.out.empty()) << o.out;
}

// The headline compares like with like: the bisection (which stops on the test-time density)
// beside the proxy run (which constrains it) and the constrained run (which constrains the
// expected density), each row with the density it is held to and both densities measured.
TEST(QuickRun, SparsityHeadlineComparesLikeWithLike) {
  const json r = load_results("sparsity");
  const double target = r.at("settings").at("target_density");
  const json& rows = r.at("headline").at("rows");
  ASSERT_EQ(rows.size(), 4u);
  const json& steps = r.at("table3_bisection");
  const json* ends[] = {&steps.back(), &r.at("proxy"), &r.at("constrained"), &r.at("default")};
  const char* held[] = {"test_time", "test_time", "expected", "expected"};
  const size_t runs[] = {steps.size(), 1, 1, 1};
  for (size_t i = 0; i < 4; ++i) {
    SCOPED_TRACE(rows[i].dump());
    EXPECT_EQ(rows[i].at("held_to"), held[i]);
    EXPECT_EQ(rows[i].at("runs").get<size_t>(), runs[i]);
    const double test = ends[i]->at("test_density"), expected = ends[i]->at("expected_density");
    EXPECT_DOUBLE_EQ(rows[i].at("test_density").get<double>(), test);
    EXPECT_DOUBLE_EQ(rows[i].at("expected_density").get<double>(), expected);
    const double measured = std::string(held[i]) == "expected" ? expected : test;
    EXPECT_EQ(rows[i].at("met").get<bool>(), std::abs(measured - target) <= 0.01);
  }
  EXPECT_NEAR(rows[0].at("train_seconds").get<double>(),
              r.at("training_seconds").at("bisection_total").get<double>(), 1e-9);
  const std::string report = read(kRoot / "sparsity" / "report.md");
  EXPECT_FALSE(contains(report, "against one constrained run (")) << report;
  EXPECT_TRUE(contains(report, "Like with like, on the test-time density")) << report;
  EXPECT_TRUE(contains(report, "| nuPI proxy run | test-time (deployed) | 1 |")) << report;
}

// Epoch 0 (the model before training) is recorded and drawn: the first row of curves.csv, the
// same for every run (one seed, one start), dense as the initial drop rates make it.
TEST(QuickRun, SparsityCurvesStartAtEpochZero) {
  const json r = load_results("sparsity");
  const auto rows = csv_rows(kRoot / "sparsity" / "curves.csv");
  const int epochs = r.at("settings").at("epochs");
  ASSERT_EQ(rows.size(), static_cast<size_t>(epochs) + 1);
  EXPECT_EQ(rows[0][0], "0");
  EXPECT_EQ(rows.back()[0], std::to_string(epochs));
  const json& initial = r.at("constrained").at("initial");
  EXPECT_DOUBLE_EQ(std::stod(rows[0][1]), 100 * initial.at("expected_density").get<double>());
  EXPECT_EQ(initial.at("multiplier").get<double>(), 0.0);
  for (const auto& run : r.at("dual_sweep")) {
    EXPECT_DOUBLE_EQ(run.at("initial").at("expected_density").get<double>(),
                     initial.at("expected_density").get<double>());
  }
  // Every run's density falls from there: the first epoch's is below the start.
  EXPECT_LT(r.at("constrained").at("epochs")[0].at("expected_density").get<double>(),
            initial.at("expected_density").get<double>());
  EXPECT_TRUE(contains(read(kRoot / "sparsity" / "dual_sweep.gp"), "set xrange [0:")) << "x from 0";
}

// ---- the default optimizer's rows, and the two workloads of the default ----------------------

namespace {

/// The header line of a CSV file.
std::string csv_header(const fs::path& path) {
  std::ifstream file(path);
  std::string line;
  std::getline(file, line);
  return line;
}

/// The verdict of the check whose name contains `part` (a test failure when there is none).
bool check_verdict(const json& results, const std::string& part) {
  for (const auto& c : results.at("checks")) {
    if (contains(c.at("name").get<std::string>(), part)) return c.at("passed").get<bool>();
  }
  ADD_FAILURE() << "no check named like '" << part << "'";
  return false;
}

}  // namespace

// E1: the default has a row at every eps of Table 1, in results.json, table1.csv, series.csv and
// the report; its check's verdict agrees with one re-derived from the raw numbers.
TEST(QuickRun, ConcaveShowsTheDefaultAtEveryEps) {
  const json r = load_results("concave");
  int close = 0;
  for (const auto& row : r.at("table1")) {
    const double eps = row.at("eps"), x_star = std::asin(eps);
    const json& d = row.at("default");
    const double x = d.at("x");
    EXPECT_GE(x, 0.0);
    EXPECT_LE(x, M_PI / 2 + 1e-12);
    EXPECT_GE(d.at("lambda").get<double>(), 0.0);
    EXPECT_NEAR(d.at("error").get<double>(), std::abs(x - x_star), 1e-12);
    close += std::abs(x - x_star) <= 1e-3;
  }
  EXPECT_EQ(check_verdict(r, "default: x within 1e-3 of arcsin(eps) for every eps"), close == 8);
  const fs::path dir = kRoot / "concave";
  EXPECT_TRUE(contains(csv_header(dir / "table1.csv"), ",x_default,lambda_default"));
  EXPECT_TRUE(contains(csv_header(dir / "trajectories.csv"), ",x_default,lambda_default"));
  int rows = 0;
  for (const auto& cells : csv_rows(dir / "series.csv")) rows += cells[0] == "default";
  EXPECT_GE(rows, 8 * 2001);  // every iteration up to 2,000 at each eps
  EXPECT_TRUE(contains(read(dir / "report.md"), "| default x | default error |"));
  EXPECT_TRUE(contains(read(dir / "trajectories.gp"), "title 'default (no dual step)'"));
}

// E2: the default's run beside the sweep, with its check's verdict re-derived.
TEST(QuickRun, RateShowsTheDefault) {
  const json r = load_results("rate");
  const json& d = r.at("default");
  const double c0 = d.at("class0_pct");
  EXPECT_NEAR(c0 * 4, std::round(c0 * 4), 1e-9);  // 400 points
  EXPECT_GT(d.at("penalty").get<double>(), 0.0);  // calibrated
  EXPECT_GE(d.at("multiplier").get<double>(), 0.0);
  EXPECT_EQ(check_verdict(r, "default: >= 69.75% class 0 within 10,000 steps"), c0 >= 69.75);
  const int64_t iterations = r.at("settings").at("iterations");
  int rows = 0;
  for (const auto& cells : csv_rows(kRoot / "rate" / "series.csv")) rows += cells[0] == "default";
  EXPECT_EQ(rows, iterations / 50 + 1);
  EXPECT_TRUE(contains(read(kRoot / "rate" / "report.md"), "| **default** (no dual step) |"));
}

// E3: the default's run (one more training at the quick settings), its check and its curves.
TEST(QuickRun, SparsityShowsTheDefault) {
  const json r = load_results("sparsity");
  const json& d = r.at("default");
  EXPECT_EQ(d.at("method"), "default");
  const int epochs = r.at("settings").at("epochs");
  EXPECT_EQ(d.at("epochs").size(), static_cast<size_t>(epochs));
  const double target = r.at("settings").at("target_density");
  const double expected = d.at("expected_density");
  EXPECT_EQ(check_verdict(r, "default: within 1 point of the 50.0% target on the expected"),
            std::abs(expected - target) <= 0.01);
  EXPECT_TRUE(contains(csv_header(kRoot / "sparsity" / "curves.csv"),
                       ",default_expected_pct,default_test_pct,default_multiplier"));
  int rows = 0;
  for (const auto& cells : csv_rows(kRoot / "sparsity" / "trajectories.csv")) {
    rows += cells.size() > 1 && cells[1] == "default";
  }
  EXPECT_EQ(rows, epochs + 1);
}

// Recall: the three runs with ten per-class training and validation recalls per epoch from
// epoch 0; the checks' verdicts re-derived from the recalls; the margin from its formula.
TEST(QuickRun, RecallReportsEveryClassOfEveryRun) {
  const json r = load_results("recall");
  expect_common_layout(r, "recall");
  const int epochs = r.at("settings").at("epochs");
  double default_min = 0;
  for (const std::string name : {"default", "validated", "unconstrained"}) {
    SCOPED_TRACE(name);
    const json& run = r.at(name);
    ASSERT_EQ(run.at("epochs").size(), static_cast<size_t>(epochs) + 1);
    const std::vector<double> recall = run.at("train_recall");
    ASSERT_EQ(recall.size(), 10u);
    for (double v : recall) EXPECT_TRUE(v >= 0 && v <= 1) << v;
    const double lowest = *std::min_element(recall.begin(), recall.end());
    EXPECT_DOUBLE_EQ(run.at("min_train_recall").get<double>(), lowest);
    EXPECT_EQ(run.at("epochs").back().at("recall"), run.at("train_recall"));
    for (const json& e : run.at("epochs")) {
      const std::vector<double> validation = e.at("validation_recall");
      ASSERT_EQ(validation.size(), 10u);
      EXPECT_DOUBLE_EQ(e.at("validation_min_recall").get<double>(),
                       *std::min_element(validation.begin(), validation.end()));
      EXPECT_GT(e.at("validation_loss").get<double>(), 0.0);
    }
    if (name == "default") default_min = lowest;
  }
  EXPECT_EQ(check_verdict(r, "default: every class >= 0.80 training recall at the end"),
            default_min >= 0.8);
  // Same start: the runs' epoch 0 is the same model.
  for (const std::string name : {"validated", "unconstrained"}) {
    EXPECT_EQ(r.at("default").at("epochs")[0].at("recall"),
              r.at(name).at("epochs")[0].at("recall"));
  }
  ASSERT_EQ(r.at("default").at("multiplier").size(), 10u);
  for (const auto& v : r.at("default").at("multiplier")) EXPECT_GE(v.get<double>(), 0.0);
  EXPECT_EQ(r.at("unconstrained").count("best"), 0u);
  EXPECT_EQ(csv_rows(kRoot / "recall" / "epochs.csv").size(), 3u * (epochs + 1));
  EXPECT_EQ(csv_rows(kRoot / "recall" / "min_recall.csv").size(), static_cast<size_t>(epochs) + 1);
  EXPECT_EQ(csv_rows(kRoot / "recall" / "classes.csv").size(), 10u);
  EXPECT_TRUE(contains(csv_header(kRoot / "recall" / "classes.csv"),
                       ",validated_audit_verdict,validated_audit_lower,validated_audit_upper"));
  EXPECT_TRUE(contains(read(kRoot / "recall" / "report.md"), "not an experiment of"));
}

// Recall's validation split and validated run: the margin from the validation class sizes, one
// dual step per training step.
TEST(QuickRun, RecallHoldsOutAValidationSplit) {
  const json r = load_results("recall");
  const json& data = r.at("settings").at("data");
  const int64_t train = data.at("train_examples"), validation = data.at("validation_examples");
  EXPECT_EQ(train, 20000);  // --quick: the first 20,000 trained on, the next 5,000 held out
  EXPECT_EQ(validation, 5000);
  const std::vector<int64_t> sizes = data.at("validation_class_sizes");
  ASSERT_EQ(sizes.size(), 10u);
  EXPECT_EQ(std::accumulate(sizes.begin(), sizes.end(), int64_t{0}), validation);
  // m = sqrt(ln(10 / delta) / (2 n_min)), delta = 0.05 (Hoeffding at delta / 10 per class).
  const double n_min = static_cast<double>(*std::min_element(sizes.begin(), sizes.end()));
  EXPECT_NEAR(r.at("margin").get<double>(), std::sqrt(std::log(10 / 0.05) / (2 * n_min)), 1e-12);
  // dual_every 1: one dual step per training step, ceil(20000 / 256) = 79 per epoch.
  const int64_t epochs = r.at("settings").at("epochs");
  EXPECT_EQ(r.at("settings").at("validated").at("dual_every"), 1);
  EXPECT_EQ(r.at("validated").at("dual_steps").get<int64_t>(), epochs * 79);
  EXPECT_EQ(r.at("default").count("dual_steps"), 0u);
}

// Recall's best epochs and test audits: every class of both constrained runs has a verdict whose
// bounds enclose the best epoch's test recall; the classes not shown to hold are named; the
// goal's check re-derived from the best epoch's test recall.
TEST(QuickRun, RecallAuditsTheBestEpochOnTheTestSet) {
  const json r = load_results("recall");
  const int64_t epochs = r.at("settings").at("epochs");
  for (const std::string name : {"default", "validated"}) {
    SCOPED_TRACE(name);
    const json& best = r.at(name).at("best");
    EXPECT_GE(best.at("epoch").get<int64_t>(), 1);
    EXPECT_LE(best.at("epoch").get<int64_t>(), epochs);
    EXPECT_FALSE(best.at("reason").get<std::string>().empty());
    const std::vector<double> test = best.at("test_recall");
    ASSERT_EQ(test.size(), 10u);
    const json& audit = r.at(name).at("audit");
    EXPECT_EQ(audit.at("delta"), 0.05);
    EXPECT_EQ(audit.at("correction"), "Holm");
    ASSERT_EQ(audit.at("classes").size(), 10u);
    size_t not_holding = 0;
    for (size_t k = 0; k < 10; ++k) {
      const json& c = audit.at("classes")[k];
      const std::string verdict = c.at("verdict");
      EXPECT_TRUE(verdict == "holds" || verdict == "violated" || verdict == "inconclusive")
          << verdict;
      // Both are counts over the class's test examples, hits / 1000: equal up to rounding.
      EXPECT_NEAR(c.at("test_recall").get<double>(), test[k], 1e-12);
      EXPECT_LE(c.at("lower").get<double>(), test[k]);
      EXPECT_GE(c.at("upper").get<double>(), test[k]);
      EXPECT_EQ(c.at("examples"), 1000);  // the Fashion-MNIST test set: 1,000 per class
      // The verdicts follow the bounds: holds above the target, violated below it.
      if (verdict == "holds") {
        EXPECT_GE(c.at("lower").get<double>(), 0.8);
      }
      if (verdict == "violated") {
        EXPECT_LT(c.at("upper").get<double>(), 0.8);
      }
      if (verdict != "holds") {
        const std::string sentence = audit.at("not_shown_to_hold")[not_holding++];
        EXPECT_EQ(sentence.rfind(r.at("class_names")[k].get<std::string>() + ": ", 0), 0u)
            << sentence;
      }
    }
    EXPECT_EQ(audit.at("not_shown_to_hold").size(), not_holding);
  }
  const std::vector<double> best = r.at("validated").at("best").at("test_recall");
  EXPECT_EQ(check_verdict(r, "validated: every class >= 0.80 on the test set"),
            *std::min_element(best.begin(), best.end()) >= 0.8);
  EXPECT_TRUE(check_verdict(r, "test audit: a verdict and Clopper-Pearson bounds"));
}

// Per-example: the fraction above the bound is a count over the training subset; the check's
// verdict re-derived from both runs' fractions at equal epochs.
TEST(QuickRun, PerExampleComparesTheDefaultWithUnconstrainedTraining) {
  const json r = load_results("per-example");
  expect_common_layout(r, "per-example");
  const int epochs = r.at("settings").at("epochs");
  const double n = r.at("settings").at("data").at("train_examples");
  for (const std::string name : {"default", "unconstrained"}) {
    SCOPED_TRACE(name);
    const json& run = r.at(name);
    ASSERT_EQ(run.at("epochs").size(), static_cast<size_t>(epochs) + 1);
    const double above = run.at("fraction_above");
    EXPECT_TRUE(above >= 0 && above <= 1) << above;
    EXPECT_NEAR(above * n, std::round(above * n), 1e-6);
    EXPECT_DOUBLE_EQ(run.at("epochs").back().at("fraction_above").get<double>(), above);
  }
  const double d = r.at("default").at("fraction_above"),
               u = r.at("unconstrained").at("fraction_above");
  EXPECT_EQ(check_verdict(r, "default: fewer examples above the bound than unconstrained"), d < u);
  EXPECT_DOUBLE_EQ(r.at("default").at("epochs")[0].at("fraction_above").get<double>(),
                   r.at("unconstrained").at("epochs")[0].at("fraction_above").get<double>());
  EXPECT_GE(r.at("default").at("max_multiplier").get<double>(),
            r.at("default").at("mean_multiplier").get<double>());
  EXPECT_EQ(csv_rows(kRoot / "per-example" / "epochs.csv").size(), static_cast<size_t>(epochs) + 1);
}

// Fairness: the counts re-derived from the runs (a run meets the requirement when its fresh gap
// is within eps), every draw has the four methods, the validated runs carry a positive margin,
// and each check's verdict follows from the counts.
TEST(QuickRun, FairnessCountsFollowFromTheRuns) {
  const json r = load_results("fairness");
  expect_common_layout(r, "fairness");
  const double eps = r.at("settings").at("eps");
  const int64_t draws = r.at("settings").at("draws");
  ASSERT_GE(draws, 20);
  bool validated_ok = true;
  for (const std::string key : {"parity", "opportunity"}) {
    SCOPED_TRACE(key);
    const json& study = r.at("studies").at(key);
    ASSERT_EQ(study.at("runs").size(), static_cast<size_t>(4 * draws));
    std::map<std::string, int64_t> meets;
    for (const json& run : study.at("runs")) {
      const std::string method = run.at("method");
      meets[method] += std::abs(run.at("fresh_gap").get<double>()) <= eps ? 1 : 0;
      if (method == "validated") {
        EXPECT_GT(run.at("margin").get<double>(), 0.0);
        EXPECT_LT(run.at("margin").get<double>(), eps);
      }
      const std::string verdict = run.at("verdict");
      EXPECT_TRUE(verdict == "holds" || verdict == "inconclusive" || verdict == "violated")
          << verdict;
    }
    for (const auto& [method, k] : meets) {
      EXPECT_EQ(study.at("methods").at(method).at("meets_on_fresh_data").get<int64_t>(), k)
          << method;
    }
    validated_ok = validated_ok && static_cast<double>(meets["validated"]) >= 0.95 * draws;
  }
  EXPECT_EQ(check_verdict(r, "validated (dual on a validation set"), validated_ok);
  EXPECT_EQ(csv_rows(kRoot / "fairness" / "runs.csv").size(), static_cast<size_t>(8 * draws));
}

// ---- the figures' scripts -----------------------------------------------------------------

// Every figure's legend stands outside the plot area, so it hides no data (the old legends were
// drawn opaque inside it, over GDA's peaks, the rate figure's points at 0 and a sweep curve).
TEST(Figures, EveryLegendStandsOutsideThePlot) {
  using namespace feasible::app;
  SparsityFigure1 f1;
  f1.bisection_runs = 9;
  const std::vector<std::pair<std::string, std::string>> scripts = {
      {"concave figure3", concave_figure3_script()},
      {"concave trajectories",
       concave_trajectories_script(0.5, 0.52, 0.58, "oscillates", "converges to x*")},
      {"rate figure2", rate_figure2_script()},
      {"sparsity figure1", sparsity_figure1_script(f1)},
      {"sparsity trajectory", sparsity_trajectory_script(50, 12)},
      {"sparsity dual_sweep", sparsity_dual_sweep_script(50, 12, {1, 2, 3}, {4, 5, 6})},
      {"recall min_recall", recall_figure_script(0.8, 0.076, 6)},
      {"per-example above_bound", per_example_figure_script(0.5, 8)},
      {"fairness fresh_gap", fairness_figure_script(0.05)}};
  for (const auto& [name, script] : scripts) {
    expect_legends_outside(script, name);
    EXPECT_FALSE(contains(script, "opaque")) << name;
  }
  // The checker itself tells an inside legend from an outside one.
  EXPECT_EQ(feasible::app::key_lines("set grid\n  set key top right box opaque\nplot x\n"),
            std::vector<std::string>{"set key top right box opaque"});
}

// Rate Figure 2: the value 0 (drawn at 1e-5) is a point of its own; lines join positive values
// only (nothing was run between 0 and the smallest positive value).
TEST(Figures, RateFigureDoesNotJoinTheZeroPoint) {
  const std::string script = feasible::app::rate_figure2_script();
  std::istringstream in(script);
  std::string line;
  int joined = 0, zero_points = 0;
  while (std::getline(in, line)) {
    if (contains(line, "with linespoints")) {
      ++joined;
      EXPECT_TRUE(contains(line, "using ($1 > 0 ? $2 : NaN):")) << line;
    }
    if (contains(line, "using ($1 == 0 ? $2 : NaN):")) {
      ++zero_points;
      EXPECT_TRUE(contains(line, "with points")) << line;
    }
  }
  EXPECT_EQ(joined, 4);       // penalty and Lagrangian, two panels
  EXPECT_EQ(zero_points, 4);  // their points at 0
}

// Sparsity Figure 1 labels each constrained point with the density it shows: the constrained
// run's test-time density is called test-time, and its expected density is drawn and called so.
TEST(Figures, SparsityFigure1LabelsWhatItDraws) {
  feasible::app::SparsityFigure1 f;
  f.bisection_runs = 9;
  f.proxy_test_pct = 49.1;
  f.constrained_test_pct = 58.3;
  f.constrained_expected_pct = 50.0;
  const std::string script = feasible::app::sparsity_figure1_script(f);
  EXPECT_TRUE(contains(script, "'constrained run (held to expected): test-time 58.3%'")) << script;
  EXPECT_TRUE(contains(script, "'constrained run (held to expected): expected 50.0%'")) << script;
  EXPECT_TRUE(contains(script, "'proxy run (held to test-time): test-time 49.1%'")) << script;
  // Drawn in their own columns after the 9 bisection runs: the proxy at 10.5, the constrained
  // run's two densities at 12.
  EXPECT_TRUE(contains(script, "\n10.5,49.1\ne\n12,58.3\ne\n12,50\ne\n")) << script;
  EXPECT_FALSE(contains(script, "its test-time density shown")) << script;
}
