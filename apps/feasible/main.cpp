// The `feasible` program: `feasible reproduce
// concave|rate|overhead|sparsity|recall|per-example|fairness|all`.
#include <feasible/distributed.h>
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <exception>
#include <filesystem>
#include <iostream>
#include <map>
#include <sstream>

#include "apps/feasible/cli.h"
#include "apps/feasible/experiments.h"
#include "apps/feasible/fashion.h"
#include "apps/feasible/output.h"

namespace app = feasible::app;

namespace {

using Runner = nlohmann::json (*)(const app::ExperimentContext&);

const std::map<std::string, Runner>& runners() {
  static const std::map<std::string, Runner> map = {
      {"concave", &app::run_concave},   {"rate", &app::run_rate},
      {"overhead", &app::run_overhead}, {"sparsity", &app::run_sparsity},
      {"recall", &app::run_recall},     {"per-example", &app::run_per_example},
      {"fairness", &app::run_fairness}};
  return map;
}

void write_index(const std::string& root, const app::RunConfig& config,
                 const std::vector<std::pair<std::string, nlohmann::json>>& done) {
  std::ostringstream md;
  md << "# feasible: the paper's experiments, reproduced\n\n"
     << "Reproduces " << app::kPaperCitation
     << "; recall and per-example are workloads of the default optimizer, and fairness a study of "
        "requirements on fresh data, not in the paper.\n\n"
     << "Command: `" << app::command_text(config) << "`, " << app::utc_now() << "\n\n";
  std::vector<std::vector<std::string>> rows;
  nlohmann::json index;
  index["schema"] = "feasible-index";
  index["schema_version"] = app::kResultsSchemaVersion;
  index["quick"] = config.quick;
  for (const auto& [name, results] : done) {
    rows.push_back({"[" + results["title"].get<std::string>() + "](" + name + "/report.md)",
                    std::to_string(results["checks_passed"].get<int>()) + " / " +
                        std::to_string(results["checks_total"].get<int>()),
                    app::fixed(results["wall_seconds"].get<double>(), 1) + " s"});
    index["experiments"].push_back({{"experiment", name},
                                    {"report", name + "/report.md"},
                                    {"results", name + "/results.json"},
                                    {"checks_passed", results["checks_passed"]},
                                    {"checks_total", results["checks_total"]},
                                    {"wall_seconds", results["wall_seconds"]}});
  }
  md << app::markdown_table({"experiment", "checks that hold", "wall-clock"}, rows);
  app::write_file(root + "/index.md", md.str());
  app::write_file(root + "/index.json", index.dump(2) + "\n");
}

int run(const app::RunConfig& config);

}  // namespace

int main(int argc, char** argv) {
  const app::ParseOutcome parsed = app::parse_command_line(argc, argv);
  if (!parsed.run) {
    std::cout << parsed.out;
    std::cerr << parsed.err;
    return parsed.exit_code;
  }
  app::RunConfig config = parsed.config;
  // Under torchrun: a data-parallel group; rank 0 writes, the others work in a scratch folder.
  std::string scratch;
  if (feasible::distributed::DataParallel::in_environment()) {
    if (config.experiment != "sparsity") {
      std::cerr << "feasible: under torchrun (RANK and WORLD_SIZE set) only `feasible reproduce "
                   "sparsity` runs data-parallel, not '"
                << config.experiment << "'\n";
      return app::kExitUsage;
    }
    try {
      config.group = feasible::distributed::DataParallel::from_environment();
    } catch (const c10::Error& e) {
      std::cerr << "feasible: cannot join the data-parallel group: " << e.what_without_backtrace()
                << "\n";
      return app::kExitFailure;
    }
    if (config.group->rank() != 0) {
      scratch = (std::filesystem::temp_directory_path() /
                 ("feasible_rank" + std::to_string(config.group->rank()) + "_" +
                  std::to_string(::getpid())))
                    .string();
      config.out = scratch;
      config.quiet = true;
    }
  }
  const int exit_code = run(config);
  if (!scratch.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(scratch, ec);
  }
  return exit_code;
}

namespace {

int run(const app::RunConfig& config) {
  const bool speaks = !config.group || config.group->rank() == 0;  // to stdout
  const std::string root = app::output_root(config);
  std::vector<std::string> names;
  if (config.experiment == "all") {
    names = app::experiment_names();
  } else {
    names = {config.experiment};
  }
  // Every output folder is created and checked before any work starts.
  std::vector<std::string> dirs;
  try {
    app::prepare_output_dir(root);
    for (const auto& name : names) {
      dirs.push_back(config.experiment == "all" ? root + "/" + name : root);
      app::prepare_output_dir(dirs.back());
    }
  } catch (const std::exception& e) {
    std::cerr << "feasible: " << e.what() << "\n";
    return app::kExitUsage;
  }
  for (const auto& name : names) {  // the first experiment that reads Fashion-MNIST
    if (!app::needs_fashion_mnist(name)) continue;
    const std::string problem = app::fashion_data_problem(config, name);
    if (!problem.empty()) {
      std::cerr << "feasible: " << problem << "\n";
      return app::kExitUsage;
    }
    break;
  }
  if (config.threads > 0) torch::set_num_threads(config.threads);

  app::Progress progress(config.quiet, isatty(STDERR_FILENO) == 1);
  std::vector<std::pair<std::string, nlohmann::json>> done;
  int failed_checks = 0;
  try {
    for (size_t i = 0; i < names.size(); ++i) {
      app::ExperimentContext context{config, dirs[i], &progress};
      nlohmann::json results = runners().at(names[i])(context);
      failed_checks += results["checks_total"].get<int>() - results["checks_passed"].get<int>();
      if (speaks)
        std::cout << names[i] << ": " << dirs[i] << "/report.md ("
                  << results["checks_passed"].get<int>() << "/"
                  << results["checks_total"].get<int>() << " checks hold)\n";
      done.emplace_back(names[i], std::move(results));
    }
    if (config.experiment == "all") {
      write_index(root, config, done);
      std::cout << "index: " << root << "/index.md\n";
    }
  } catch (const c10::Error& e) {  // e.g. a rank of a data-parallel run died
    std::cerr << "\nfeasible: the run failed: " << e.what_without_backtrace() << "\n";
    return app::kExitFailure;
  } catch (const std::exception& e) {
    std::cerr << "\nfeasible: the run failed: " << e.what() << "\n";
    return app::kExitFailure;
  }
  if (failed_checks > 0 && speaks) {
    std::cerr << "feasible: " << failed_checks
              << " qualitative check(s) did not hold; see the reports.\n";
  }
  return app::kExitOk;
}

}  // namespace
