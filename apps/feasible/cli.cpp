#include "apps/feasible/cli.h"

#include <CLI/CLI.hpp>
#include <cstdint>
#include <exception>
#include <sstream>

#include "feasible/version.h"

namespace feasible::app {

const std::vector<std::string>& experiment_names() {
  static const std::vector<std::string> names = {"concave", "rate",        "overhead", "sparsity",
                                                 "recall",  "per-example", "fairness"};
  return names;
}

std::string output_root(const RunConfig& config) {
  if (!config.out.empty()) return config.out;
  return config.experiment == "all" ? std::string("results") : "results/" + config.experiment;
}

namespace {

ParseOutcome usage_error(const std::string& message) {
  ParseOutcome outcome;
  outcome.exit_code = kExitUsage;
  outcome.err = "feasible: " + message + "\nRun 'feasible --help' for the commands and options.\n";
  return outcome;
}

// A decimal integer from `min` to `max`, else a message that says so and quotes the value (CLI11
// prefixes the option's name). CLI11's NonNegativeNumber prints its upper bound, the largest
// double, with 309 digits and lets "1.5" through to a conversion error, and CLI11 reads "010" as
// octal; this validator accepts digits only and rewrites the value in plain decimal. Used with
// transform(), which lets it rewrite.
CLI::Validator integer_in(uint64_t min, uint64_t max, const std::string& what) {
  return CLI::Validator(
      [=](std::string& text) -> std::string {
        const std::string refusal = "must be " + what + ", got '" + text + "'";
        if (text.empty()) return refusal;
        uint64_t value = 0;
        for (const char c : text) {
          if (c < '0' || c > '9') return refusal;
          const uint64_t digit = static_cast<uint64_t>(c - '0');
          if (value > (UINT64_MAX - digit) / 10) return refusal;  // above 2^64 - 1
          value = value * 10 + digit;
        }
        if (value < min || value > max) return refusal;
        text = std::to_string(value);
        return std::string();
      },
      "", "integer");
}

// The `reproduce` command and its positional argument, the experiment.
CLI::App* add_reproduce(CLI::App& app, RunConfig& config) {
  std::vector<std::string> choices = experiment_names();
  choices.push_back("all");
  CLI::App* reproduce = app.add_subcommand(
      "reproduce",
      "Re-run one of the paper's experiments (or all) and write report.md, results.json, CSV "
      "series and figures");
  reproduce
      ->add_option("experiment", config.experiment,
                   "concave: the 1-D example (Table 1, Figure 3); rate: rate-constrained "
                   "classification (Tables 4-5, Figure 2); overhead: wall-clock cost (Table 2); "
                   "sparsity: an L0-gated MLP on Fashion-MNIST at most 50% dense, penalty "
                   "bisection against one constrained run (Table 3, Figure 1); recall and "
                   "per-example (not in the paper): the default optimizer on per-class recall "
                   ">= 0.80 and on every example's loss <= 0.5 (Fashion-MNIST); fairness (not in "
                   "the paper): demographic parity and equal opportunity on fresh data, penalty "
                   "vs constrained vs validated with margin, audited; all: the seven, with an "
                   "index report")
      ->required()
      ->check(CLI::IsMember(choices));
  return reproduce;
}

// The options of every experiment: --quick (returned, for --paper to exclude), --out, --seed,
// --threads, --quiet.
CLI::Option* add_run_options(CLI::App& reproduce, RunConfig& config) {
  CLI::Option* quick =
      reproduce.add_flag("--quick", config.quick,
                         "Short settings (fewer iterations and sweep values) that keep every "
                         "qualitative result; `all --quick` takes about 6 minutes on 2 cores");
  reproduce
      .add_option("--out", config.out,
                  "Output directory (default: results/<experiment>, or results/ for all)")
      ->type_name("DIR")
      ->check([](const std::string& s) {
        return s.empty() ? std::string("--out must not be empty") : std::string();
      });
  reproduce
      .add_option("--seed", config.seed,
                  "Seed of the generated data, a non-negative integer (default 0, the paper's)")
      ->type_name("N")
      ->transform(integer_in(0, UINT64_MAX,
                             "a non-negative integer (0 to " + std::to_string(UINT64_MAX) + ")"));
  reproduce
      .add_option("--threads", config.threads,
                  "LibTorch intra-op threads, 1..1024 (default: LibTorch's choice)")
      ->type_name("N")
      ->transform(integer_in(1, 1024, "an integer from 1 to 1024"));
  reproduce.add_flag("--quiet", config.quiet, "No progress on stderr");
  return quick;
}

// The options of the sparsity experiment: --epochs, --paper, --gates, --data.
void add_sparsity_options(CLI::App& reproduce, RunConfig& config, CLI::Option* quick) {
  reproduce
      .add_option("--epochs", config.epochs,
                  "sparsity, recall, per-example: epochs of every training run, 1..100000 "
                  "(sparsity: 15, 12 with --quick, 150 with --paper; recall: 24, 6 with "
                  "--quick; per-example: 8); fairness: full-batch steps of every run (1,500, "
                  "600 with --quick)")
      ->type_name("N")
      ->transform(integer_in(1, 100000, "an integer from 1 to 100000"));
  reproduce
      .add_flag("--paper", config.paper,
                "sparsity: the paper's training settings (all training data, Adam 1e-3 for "
                "the gates too, 150 epochs); hours on 2 cores")
      ->excludes(quick);
  reproduce
      .add_option("--gates", config.gates,
                  "sparsity: what one L0 gate controls: input_units (one gate per input "
                  "feature, the default) or weights (one gate per weight)")
      ->type_name("KIND")
      ->check(CLI::IsMember({"input_units", "weights"}));
  reproduce
      .add_option("--data", config.data,
                  "sparsity, recall, per-example: folder with the Fashion-MNIST IDX files "
                  "(default "
                  "/usr/share/datasets/fashion-mnist, Debian package dataset-fashion-mnist)")
      ->type_name("DIR")
      ->check([](const std::string& s) {
        return s.empty() ? std::string("--data must not be empty") : std::string();
      });
}

ParseOutcome parse(int argc, const char* const* argv) {
  ParseOutcome outcome;
  RunConfig& config = outcome.config;

  CLI::App app{
      "feasible: constrained training with LibTorch. Re-runs the experiments of Ramirez, "
      "Hashemizadeh and Lacoste-Julien, \"Position: Adopt Constraints Over Fixed Penalties in "
      "Deep Learning\" (arXiv:2505.20628), and writes tables, figures and a report.",
      "feasible"};
  app.set_version_flag("--version", std::string("feasible ") + kVersion,
                       "Print the version and exit");
  app.require_subcommand(1);
  CLI::App* reproduce = add_reproduce(app, config);
  CLI::Option* quick = add_run_options(*reproduce, config);
  add_sparsity_options(*reproduce, config, quick);

  // A clearer message than CLI11's for a misspelt command.
  if (argc >= 2 && argv[1] != nullptr && argv[1][0] != '-' && std::string(argv[1]) != "reproduce") {
    return usage_error("unknown command '" + std::string(argv[1]) + "'; expected 'reproduce'");
  }

  std::ostringstream out;
  std::ostringstream err;
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e, out, err);
    outcome.out = out.str();
    outcome.exit_code = code == 0 ? kExitOk : kExitUsage;
    if (code != 0) outcome.err = "feasible: " + err.str();
    return outcome;
  }
  outcome.run = true;
  return outcome;
}

}  // namespace

ParseOutcome parse_command_line(int argc, const char* const* argv) {
  if (argc < 1 || argv == nullptr) return usage_error("no arguments (argv is empty)");
  try {
    return parse(argc, argv);
  } catch (const std::exception& e) {
    return usage_error(std::string("cannot parse the command line: ") + e.what());
  } catch (...) {
    return usage_error("cannot parse the command line");
  }
}

}  // namespace feasible::app
