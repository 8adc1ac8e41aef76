// The common parts of every experiment's results.json and report.md.
#include <feasible/distributed.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <sstream>

#include "apps/feasible/experiments.h"

namespace feasible::app {

nlohmann::json results_head(const ExperimentContext& context, const std::string& experiment,
                            const std::string& title) {
  nlohmann::json results;
  results["schema"] = "feasible-results";
  results["schema_version"] = kResultsSchemaVersion;
  results["experiment"] = experiment;
  results["title"] = title;
  results["paper"] = kPaperCitation;
  results["started_utc"] = utc_now();
  nlohmann::json run;
  run["quick"] = context.config.quick;
  run["seed"] = context.config.seed;
  run["threads"] = torch::get_num_threads();
  // Processes of a data-parallel run (torchrun; docs/distributed.md), 1 otherwise.
  run["world_size"] = context.config.group ? context.config.group->world_size() : 1;
  run["output_dir"] = context.dir;
  results["run"] = run;
  nlohmann::json software = software_facts();
  software["libtorch"] = TORCH_VERSION;
  software["cuda_available"] = torch::cuda::is_available();
  results["software"] = software;
  results["checks"] = nlohmann::json::array();
  return results;
}

std::string command_text(const RunConfig& config) {
  std::string text = "feasible reproduce " + config.experiment;
  if (config.quick) text += " --quick";
  text += " --seed " + std::to_string(config.seed);
  if (config.epochs > 0) text += " --epochs " + std::to_string(config.epochs);
  if (config.paper) text += " --paper";
  if (config.gates != "input_units") text += " --gates " + config.gates;
  if (!config.data.empty()) text += " --data " + config.data;
  return text;
}

nlohmann::json checks_json(const std::vector<Check>& checks) {
  nlohmann::json array = nlohmann::json::array();
  for (const Check& c : checks) {
    array.push_back({{"name", c.name}, {"passed", c.holds}, {"detail", c.measured}});
  }
  return array;
}

nlohmann::json figures_json(const std::vector<FigureFile>& figures) {
  nlohmann::json array = nlohmann::json::array();
  for (const FigureFile& f : figures) {
    array.push_back(
        {{"name", f.name}, {"png", f.name + ".png"}, {"svg", f.name + ".svg"}, {"drawn", f.drawn}});
  }
  return array;
}

void write_results(const ExperimentContext& context, nlohmann::json& results,
                   const std::string& body, std::chrono::steady_clock::time_point start,
                   const std::string& summary) {
  const double wall_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  results["wall_seconds"] = wall_seconds;
  int passed = 0;
  int total = 0;
  for (const auto& c : results["checks"]) {
    ++total;
    if (c["passed"].get<bool>()) ++passed;
  }
  results["checks_passed"] = passed;
  results["checks_total"] = total;

  // The command that reproduces this experiment alone (with `all`, the experiment's name).
  RunConfig run_config = context.config;
  run_config.experiment = results["experiment"].get<std::string>();
  std::ostringstream md;
  md << "# " << results["title"].get<std::string>() << "\n\n"
     << (reproduces_paper(run_config.experiment)
             ? "Reproduces " + std::string(kPaperCitation) + ", with the `feasible` library.\n\n"
             : "A workload of the default optimizer (`feasible::make_default_optimizer`), not an "
               "experiment of " +
                   std::string(kPaperCitation) + ".\n\n")
     << "Command: `" << command_text(run_config) << "`  \nMode: "
     << (context.config.quick ? "**quick** (short settings; see below)"
         : run_config.experiment == "sparsity" && !context.config.paper
             ? "default (a short schedule of the paper's settings; see below)"
         : reproduces_paper(run_config.experiment) ? "full (the paper's settings)"
                                                   : "full (the settings below)")
     << "  \nStarted: " << results["started_utc"].get<std::string>() << ", wall-clock "
     << fixed(wall_seconds, 1) << " s, " << torch::get_num_threads()
     << " LibTorch thread(s), world size " << results["run"]["world_size"].get<int>()
     << (context.config.group ? " (data-parallel over c10d Gloo)" : "") << "  \n"
     << "Software: feasible " << results["software"]["feasible"].get<std::string>() << ", LibTorch "
     << results["software"]["libtorch"].get<std::string>() << ", "
     << results["software"]["compiler"].get<std::string>() << "\n\n"
     << "## Checks\n\n"
     << passed << " of " << total << " qualitative results hold.\n\n";
  std::vector<std::vector<std::string>> rows;
  for (const auto& c : results["checks"]) {
    rows.push_back({c["passed"].get<bool>() ? "yes" : "**NO**", c["name"].get<std::string>(),
                    c["detail"].get<std::string>()});
  }
  md << markdown_table({"holds", "check", "measured"}, rows) << "\n"
     << body
     << "\n---\nMachine-readable results: [results.json](results.json) (layout in "
        "`docs/cli.md`).\n";
  write_file(context.dir + "/report.md", md.str());
  write_file(context.dir + "/results.json", results.dump(2) + "\n");
  context.progress->finish_experiment(summary.empty() ? std::to_string(passed) + "/" +
                                                            std::to_string(total) + " checks hold"
                                                      : summary);
}

}  // namespace feasible::app
