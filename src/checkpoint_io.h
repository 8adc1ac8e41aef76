// Internal pieces of checkpoints (src/checkpoint*.cpp): archive helpers, module tensors, the
// optimizers' state and the problem's description. src/checkpoint.cpp orchestrates save and load.
#pragma once

#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

#include "feasible/checkpoint.h"
#include "feasible/optim/extra.h"
#include "feasible/optimizer.h"
#include "feasible/problem.h"
#include "src/state_key.h"

namespace feasible {
namespace detail {
namespace ckpt {

using torch::serialize::InputArchive;
using torch::serialize::OutputArchive;

// ------------------------------------------------------------ text (checkpoint_io.cpp)

/// `v` with 17 significant digits (round-trips a double).
std::string num(double v);
/// "[2, 3] Float": a tensor's shape and dtype.
std::string shape_of(const torch::Tensor& t);
/// "[a, b, c]".
std::string join(const std::vector<std::string>& v);

// ------------------------------------------------------------ archives (checkpoint_io.cpp)

/// Writes an integer entry.
void put_int(OutputArchive& a, const std::string& key, int64_t v);
/// Writes a string entry.
void put_str(OutputArchive& a, const std::string& key, const std::string& v);
/// Reads an integer entry (throws when absent or not an integer).
int64_t get_int(InputArchive& a, const std::string& key);
/// Reads a string entry (throws when absent or not a string).
std::string get_str(InputArchive& a, const std::string& key);
/// Reads a tensor entry.
torch::Tensor get_tensor(InputArchive& a, const std::string& key);

/// Named tensors, e.g. ("parameter weight", w).
using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

/// The parameters then the buffers of a module (recursively), by name; undefined buffers skipped.
NamedTensors module_tensors(const torch::nn::Module& m);
/// Writes named tensors (read back by read_tensors).
void write_tensors(OutputArchive& a, const NamedTensors& ts);

/// A pending in-place copy into an existing tensor.
struct Copy {
  torch::Tensor dst;
  torch::Tensor src;
};

/// Reads tensors written by write_tensors and matches them against `current` (by name, in
/// order, shape and dtype). Differences go to `diffs`; matches to `copies`.
void read_tensors(InputArchive& a, const NamedTensors& current, const std::string& what,
                  std::vector<std::string>& diffs, std::vector<Copy>& copies);

// ------------------------------------------------------------ optimizers
// (checkpoint_optimizers.cpp)

/// Writes an optimizer: its type, per group its options, per parameter its shape and state, and
/// an extrapolation optimizer's saved point. Throws for a type the table of optimizer traits
/// does not hold.
void write_optimizer(OutputArchive& a, const torch::optim::Optimizer& o, const std::string& label,
                     const std::string& path);

/// The new state of one optimizer, validated, waiting to be assigned.
struct StagedOptimizer {
  torch::optim::Optimizer* optimizer = nullptr;
  std::vector<std::unique_ptr<torch::optim::OptimizerOptions>> options;  // per group
  std::vector<std::pair<StateKey, std::unique_ptr<torch::optim::OptimizerParamState>>> states;
  optim::ExtrapolationOptimizer* extra = nullptr;
  std::vector<torch::Tensor> saved_point;
};

/// Compares the stored optimizer's structure with `o`; on a match (no new differences) stages
/// its state. Throws (caught by load) only for a malformed payload.
void read_optimizer(InputArchive& a, torch::optim::Optimizer& o, const std::string& label,
                    std::vector<std::string>& diffs, std::vector<StagedOptimizer>& staged);

/// Assigns a staged state to its optimizer (cannot fail).
void assign(StagedOptimizer& s);

// ------------------------------------------------------------ problem (checkpoint_problem.cpp)

/// Writes the problem's constraints: names, descriptions, multipliers and penalties.
void write_problem(OutputArchive& oa, const Problem& problem);

/// Reads the constraints written by write_problem, compares them with `problem` (names, then
/// each common constraint's description and values) and stages the values. Adds the stored
/// names to `stored_names`.
void read_problem(InputArchive& oa, const Problem& problem, std::vector<std::string>& stored_names,
                  std::vector<std::string>& diffs, std::vector<Copy>& copies,
                  std::vector<std::pair<Constraint, torch::Tensor>>& penalties);

}  // namespace ckpt
}  // namespace detail
}  // namespace feasible
