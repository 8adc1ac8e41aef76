#pragma once
/// \file experiments.h
/// The experiments of `feasible reproduce`. Each writes report.md, results.json, CSV series
/// and figures into its folder and returns its results.json document.

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "apps/feasible/cli.h"
#include "apps/feasible/output.h"

namespace feasible::app {

/// The paper the experiments reproduce (cited in every report).
inline constexpr const char* kPaperCitation =
    "J. Ramirez, M. Hashemizadeh, S. Lacoste-Julien, \"Position: Adopt Constraints Over Fixed "
    "Penalties in Deep Learning\", arXiv:2505.20628 (v4, 2026)";

/// Version of the results.json layout (docs/cli.md).
inline constexpr int kResultsSchemaVersion = 1;

/// What an experiment needs to run.
struct ExperimentContext {
  RunConfig config;    ///< the command line's settings
  std::string dir;     ///< the experiment's output folder (exists, writable)
  Progress* progress;  ///< progress on stderr (never null)
};

/// E1: the concave 1-D example (Table 1, Figure 3, App. D).
nlohmann::json run_concave(const ExperimentContext& context);
/// E2: rate-constrained linear classification (Tables 4-5, Figure 2).
nlohmann::json run_rate(const ExperimentContext& context);
/// E3: sparsity-constrained training with L0 gates on Fashion-MNIST (Table 3, Figure 1, the
/// second row of Table 2).
nlohmann::json run_sparsity(const ExperimentContext& context);
/// E4: the overhead of constrained over penalized training (Table 2).
nlohmann::json run_overhead(const ExperimentContext& context);
/// E5 (not in the paper): per-class recall >= 0.80 on Fashion-MNIST with the default optimizer,
/// its multipliers fed by the training batches or by a validation split, against unconstrained
/// training; the best epoch kept on validation and audited on the test set.
nlohmann::json run_recall(const ExperimentContext& context);
/// E6 (not in the paper): every training example's cross-entropy <= 0.5 on Fashion-MNIST, one
/// indexed multiplier per example, with the default optimizer, against unconstrained training.
nlohmann::json run_per_example(const ExperimentContext& context);
/// E7 (not in the paper): demographic parity and equal opportunity on fresh data: penalty,
/// constrained, and constrained with a validated dual and a margin, over many data draws,
/// audited with confidence bounds.
nlohmann::json run_fairness(const ExperimentContext& context);

/// Whether `experiment` re-runs an experiment of the paper (E1-E4), rather than a workload of
/// the default optimizer or a study beyond the paper (E5-E7).
inline bool reproduces_paper(const std::string& experiment) {
  return experiment == "concave" || experiment == "rate" || experiment == "sparsity" ||
         experiment == "overhead";
}

/// The command line that reproduces `config` ("feasible reproduce <experiment> --seed N ...",
/// with every option that changes results).
std::string command_text(const RunConfig& config);

/// The common head of results.json: schema, experiment, paper, settings of the command line,
/// software (with LibTorch's version), start time.
nlohmann::json results_head(const ExperimentContext& context, const std::string& experiment,
                            const std::string& title);

/// Adds the wall-clock since `start` and the check summary to `results`, writes results.json
/// and report.md (the Markdown `body` after a common header: title, paper, command, settings,
/// checks), and ends the experiment's progress with `summary` (default: the checks that hold).
void write_results(const ExperimentContext& context, nlohmann::json& results,
                   const std::string& body, std::chrono::steady_clock::time_point start,
                   const std::string& summary = "");

/// A check of a qualitative result, recorded in results.json ("checks") and the report.
struct Check {
  std::string name;      ///< what must hold ("nuPI ends within 1e-3 of arcsin(eps)")
  bool holds = false;    ///< whether it holds
  std::string measured;  ///< what was measured ("8 of 8 eps")
};

/// The checks as results.json's "checks" array ({"name", "passed", "detail"} each).
nlohmann::json checks_json(const std::vector<Check>& checks);

/// The figures as results.json's "files.figures" array ({"name", "png", "svg", "drawn"} each).
nlohmann::json figures_json(const std::vector<FigureFile>& figures);

}  // namespace feasible::app
