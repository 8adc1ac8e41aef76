#pragma once
/// \file cli.h
/// The command line of the `feasible` program, parsed with CLI11. Torch-free, so that it can be
/// fuzzed on its own. Parsing never prints and never exits: it returns what to print and the
/// exit code.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace feasible::distributed {
class DataParallel;
}  // namespace feasible::distributed

namespace feasible::app {

/// Exit codes of the program.
enum ExitCode : int {
  kExitOk = 0,       ///< success (also --help and --version)
  kExitFailure = 1,  ///< a run failed (numerical failure, I/O error while writing results)
  kExitUsage = 2,    ///< bad command line: unknown command, bad value, unwritable --out
};

/// The experiments `feasible reproduce` knows, in the order `all` runs them.
const std::vector<std::string>& experiment_names();

/// What `feasible reproduce` was asked to do.
struct RunConfig {
  /// "concave", "rate", "overhead", "sparsity", "recall", "per-example" or "all".
  std::string experiment;
  /// Short settings that keep every qualitative result (`--quick`). Default false.
  bool quick = false;
  /// Output directory (`--out`). Empty: the default, results/<experiment>/ for one experiment
  /// and results/ (one folder per experiment, plus index.md) for `all`.
  std::string out;
  /// Seed of the generated data (`--seed`), >= 0. Default 0, the paper's.
  uint64_t seed = 0;
  /// Intra-op threads of LibTorch (`--threads`), 1..1024; 0 keeps LibTorch's default.
  int threads = 0;
  /// No progress on stderr (`--quiet`). Default false.
  bool quiet = false;
  /// Epochs of every training run of `sparsity`, `recall` and `per-example` (`--epochs`),
  /// 1..100000; 0 keeps each mode's default (sparsity: 15 full, 12 quick, 150 with --paper;
  /// recall: 24 full, 6 quick; per-example: 8).
  int epochs = 0;
  /// The paper's training settings for `sparsity` (`--paper`): all 60,000 training examples,
  /// Adam 1e-3 for the gate parameters too, 150 epochs unless --epochs says otherwise.
  bool paper = false;
  /// Which weights one L0 gate controls in `sparsity` (`--gates`): "input_units" (default; the
  /// authors' choice) or "weights".
  std::string gates = "input_units";
  /// Folder with the Fashion-MNIST files of `sparsity`, `recall` and `per-example` (`--data`).
  /// Empty: Debian's /usr/share/datasets/fashion-mnist.
  std::string data;
  /// The data-parallel group when the program runs under torchrun (RANK and WORLD_SIZE set;
  /// made by main(), not by the command line); null for one process. Only `sparsity` uses it.
  std::shared_ptr<feasible::distributed::DataParallel> group;
};

/// The outcome of parsing a command line.
struct ParseOutcome {
  /// The exit code to use when `run` is false (0 after --help/--version, 2 on a usage error).
  int exit_code = kExitOk;
  /// Whether an experiment should run with `config`.
  bool run = false;
  /// The parsed settings (meaningful when `run`).
  RunConfig config;
  /// Text for stdout (help, version).
  std::string out;
  /// Text for stderr (the error and a hint).
  std::string err;
};

/// Parses argv (argv[0] is the program name). Never prints, never exits, never throws.
ParseOutcome parse_command_line(int argc, const char* const* argv);

/// The output directory of `config`: `config.out` if given, else results/<experiment>
/// (results for `all`).
std::string output_root(const RunConfig& config);

}  // namespace feasible::app
