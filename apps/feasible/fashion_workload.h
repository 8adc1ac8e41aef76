#pragma once
/// \file fashion_workload.h
/// What the two Fashion-MNIST workloads of the default optimizer (recall, per-example) share in
/// their results.json: the settings of the data, the model and the two runs.

#include <nlohmann/json.hpp>
#include <string>

namespace feasible::app {

/// The "settings" object common to the workloads: the data (dataset, folder, sizes), the mode,
/// the MLP, epochs, batch size, the primal optimizer (Adam) and its step, the default run and
/// the seed. `Outcome` has `settings` (mode, hidden, epochs, batch_size, lr, seed), `data_dir`,
/// `train_examples` and `test_examples`; the caller adds the workload's own keys.
template <class Outcome>
nlohmann::json fashion_workload_settings(const Outcome& o) {
  const auto& s = o.settings;
  return {{"data",
           {{"dataset", "Fashion-MNIST (Xiao, Rasul, Vollgraf 2017), Debian dataset-fashion-mnist"},
            {"dir", o.data_dir},
            {"train_examples", o.train_examples},
            {"test_examples", o.test_examples}}},
          {"mode", s.mode},
          {"model", "MLP 784-" + std::to_string(s.hidden) + "-10, ReLU"},
          {"epochs", s.epochs},
          {"batch_size", s.batch_size},
          {"primal", "Adam"},
          {"lr", s.lr},
          {"default", "feasible::make_default_optimizer with the Adam above, no dual step"},
          {"seed", s.seed}};
}

}  // namespace feasible::app
