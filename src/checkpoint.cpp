// Checkpoints: save and load the complete state of a constrained training (checkpoint.h).
//
// The payload is a torch::serialize::OutputArchive (written to memory), framed by
// src/checkpoint_format.h (magic, version, size, CRC-32) and written atomically. Every
// per-parameter optimizer state is written by position ("group/G/param/K/state"), never under
// the parameter's address as torch's Optimizer::save does. load() reads and validates the whole
// file into temporaries and only then assigns, so a refused file changes nothing.
//
// This file orchestrates save and load; the pieces are in src/checkpoint_io.cpp (archive entries
// and module tensors), src/checkpoint_problem.cpp (the constraints) and
// src/checkpoint_optimizers.cpp (the optimizers' state, by the table of optimizer traits).
#include "feasible/checkpoint.h"

#include <ATen/CPUGeneratorImpl.h>
#include <c10/util/Type.h>

#include <algorithm>
#include <mutex>
#include <set>
#include <sstream>
#include <typeinfo>

#include "feasible/optimizer.h"
#include "feasible/problem.h"
#include "feasible/version.h"
#include "src/checkpoint_format.h"
#include "src/checkpoint_io.h"

namespace feasible {

static_assert(kCheckpointFormatVersion == detail::kCheckpointFormatVersion,
              "the public and the framing format versions must agree");

CheckpointContents& CheckpointContents::module(std::string name, torch::nn::Module& module) {
  TORCH_CHECK(!name.empty(), "CheckpointContents::module: the name must not be empty");
  for (const auto& m : modules_) {
    TORCH_CHECK(m.first != name, "CheckpointContents::module: the name '", name,
                "' is already used");
  }
  modules_.emplace_back(std::move(name), &module);
  return *this;
}

CheckpointContents& CheckpointContents::optimizer(ConstrainedOptimizer& optimizer) {
  TORCH_CHECK(optimizer_ == nullptr || optimizer_ == &optimizer,
              "CheckpointContents::optimizer: a constrained optimizer was already set; a "
              "checkpoint holds at most one");
  optimizer_ = &optimizer;
  return *this;
}

CheckpointContents& CheckpointContents::random_state(bool include) {
  random_state_ = include;
  return *this;
}

namespace {

using namespace detail::ckpt;

void check_coverage(const CheckpointContents& contents, std::vector<std::string>& problems) {
  if (contents.optimizer() == nullptr) return;
  std::set<const void*> owned;
  for (const auto& m : contents.modules()) {
    for (const auto& p : m.second->parameters(true)) owned.insert(p.unsafeGetTensorImpl());
  }
  const auto& primal = contents.optimizer()->primal_optimizers();
  for (size_t j = 0; j < primal.size(); ++j) {
    const auto& groups = primal[j]->param_groups();
    for (size_t g = 0; g < groups.size(); ++g) {
      for (size_t k = 0; k < groups[g].params().size(); ++k) {
        if (owned.count(groups[g].params()[k].unsafeGetTensorImpl()) == 0) {
          problems.push_back("primal optimizer " + std::to_string(j) + ", group " +
                             std::to_string(g) + ", parameter " + std::to_string(k) +
                             " belongs to none of the modules given (add its module with "
                             "CheckpointContents::module)");
        }
      }
    }
  }
}

std::string scheme_name(const ConstrainedOptimizer& o) { return c10::demangle(typeid(o).name()); }

// ------------------------------------------------------------ save

void write_modules(OutputArchive& root, const CheckpointContents& contents) {
  put_int(root, "modules/size", static_cast<int64_t>(contents.modules().size()));
  for (size_t i = 0; i < contents.modules().size(); ++i) {
    const auto& m = contents.modules()[i];
    OutputArchive ma(root.compilation_unit());
    put_str(ma, "name", m.first);
    write_tensors(ma, module_tensors(*m.second));
    root.write("module/" + std::to_string(i), ma);
  }
}

void write_constrained_optimizer(OutputArchive& root, ConstrainedOptimizer& co,
                                 const std::string& path) {
  OutputArchive oa(root.compilation_unit());
  put_str(oa, "scheme", scheme_name(co));
  put_int(oa, "iteration", co.iteration());
  write_problem(oa, co.problem());  // the problem, by constraint name
  const auto& primal = co.primal_optimizers();
  put_int(oa, "primal/size", static_cast<int64_t>(primal.size()));
  for (size_t j = 0; j < primal.size(); ++j) {
    OutputArchive pa(root.compilation_unit());
    write_optimizer(pa, *primal[j], "primal optimizer " + std::to_string(j), path);
    oa.write("primal/" + std::to_string(j), pa);
  }
  put_int(oa, "has_dual", co.dual_optimizer() ? 1 : 0);
  if (co.dual_optimizer()) {
    OutputArchive da(root.compilation_unit());
    write_optimizer(da, *co.dual_optimizer(), "dual optimizer", path);
    oa.write("dual", da);
  }
  root.write("optimizer", oa);
}

torch::Tensor random_generator_state() {
  at::Generator gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  return gen.get_state();
}

std::string build_payload(const std::string& path, const CheckpointContents& contents) {
  std::vector<std::string> problems;
  check_coverage(contents, problems);
  if (!problems.empty()) {
    std::string msg = "cannot save checkpoint '" + path + "':";
    for (const auto& p : problems) msg += "\n  - " + p;
    TORCH_CHECK(false, msg);
  }
  OutputArchive root;
  put_str(root, "library_version", kVersion);
  put_int(root, "format_version", kCheckpointFormatVersion);
  write_modules(root, contents);
  if (ConstrainedOptimizer* co = contents.optimizer()) write_constrained_optimizer(root, *co, path);
  if (contents.random_state()) {
    root.write("random_state", random_generator_state(), /*is_buffer=*/true);
  }
  std::ostringstream os;
  root.save_to(os);
  return os.str();
}

// ------------------------------------------------------------ load

// What load() has read and validated, waiting to be assigned.
struct Staged {
  std::vector<std::string> diffs;
  std::vector<Copy> copies;
  std::vector<StagedOptimizer> optimizers;
  std::vector<std::pair<Constraint, torch::Tensor>> penalties;
  torch::Tensor random_state;
  int64_t iteration = 0;
};

void read_modules(InputArchive& root, const CheckpointContents& contents, CheckpointInfo& info,
                  Staged& staged) {
  const int64_t n_modules = get_int(root, "modules/size");
  std::vector<std::string> stored_modules;
  std::vector<InputArchive> module_archives(static_cast<size_t>(std::max<int64_t>(n_modules, 0)));
  for (int64_t i = 0; i < n_modules; ++i) {
    root.read("module/" + std::to_string(i), module_archives[i]);
    stored_modules.push_back(get_str(module_archives[i], "name"));
  }
  info.modules = stored_modules;
  std::vector<std::string> given_modules;
  for (const auto& m : contents.modules()) given_modules.push_back(m.first);
  if (stored_modules != given_modules) {
    staged.diffs.push_back("modules: the checkpoint holds " + join(stored_modules) + ", given " +
                           join(given_modules));
    return;
  }
  for (size_t i = 0; i < given_modules.size(); ++i) {
    read_tensors(module_archives[i], module_tensors(*contents.modules()[i].second),
                 "module '" + given_modules[i] + "'", staged.diffs, staged.copies);
  }
}

void read_optimizers(InputArchive& oa, ConstrainedOptimizer& co, Staged& staged) {
  auto& diffs = staged.diffs;
  const auto& primal = co.primal_optimizers();
  const int64_t n_primal = get_int(oa, "primal/size");
  if (n_primal != static_cast<int64_t>(primal.size())) {
    diffs.push_back("primal optimizers: " + std::to_string(n_primal) + " in the checkpoint, " +
                    std::to_string(primal.size()) + " here");
  } else {
    for (int64_t j = 0; j < n_primal; ++j) {
      InputArchive pa;
      oa.read("primal/" + std::to_string(j), pa);
      read_optimizer(pa, *primal[j], "primal optimizer " + std::to_string(j), diffs,
                     staged.optimizers);
    }
  }
  const bool stored_dual = get_int(oa, "has_dual") != 0;
  if (stored_dual != (co.dual_optimizer() != nullptr)) {
    diffs.push_back(std::string("dual optimizer: ") + (stored_dual ? "present" : "absent") +
                    " in the checkpoint, " + (co.dual_optimizer() ? "present" : "absent") +
                    " here");
  } else if (stored_dual) {
    InputArchive da;
    oa.read("dual", da);
    read_optimizer(da, *co.dual_optimizer(), "dual optimizer", diffs, staged.optimizers);
  }
}

void read_constrained_optimizer(InputArchive& root, const CheckpointContents& contents,
                                CheckpointInfo& info, Staged& staged) {
  InputArchive oa;
  info.has_optimizer = root.try_read("optimizer", oa);
  ConstrainedOptimizer* co = contents.optimizer();
  if (co == nullptr) return;
  if (!info.has_optimizer) {
    staged.diffs.push_back("the checkpoint holds no constrained optimizer, but one was given");
    return;
  }
  check_coverage(contents, staged.diffs);
  const std::string scheme = get_str(oa, "scheme");
  if (scheme != scheme_name(*co)) {
    staged.diffs.push_back("scheme: " + scheme + " in the checkpoint, " + scheme_name(*co) +
                           " here");
  }
  staged.iteration = get_int(oa, "iteration");
  TORCH_CHECK(staged.iteration >= 0, "negative iteration ", staged.iteration);
  info.iteration = staged.iteration;
  read_problem(oa, co->problem(), info.constraints, staged.diffs, staged.copies, staged.penalties);
  read_optimizers(oa, *co, staged);
}

void read_random_state(InputArchive& root, const CheckpointContents& contents, CheckpointInfo& info,
                       Staged& staged) {
  torch::Tensor rs;
  info.has_random_state = root.try_read("random_state", rs, /*is_buffer=*/true);
  if (!contents.random_state()) return;
  if (!info.has_random_state) {
    staged.diffs.push_back(
        "random generator state: requested, but the checkpoint was saved without it");
    return;
  }
  const torch::Tensor cur = random_generator_state();
  TORCH_CHECK(rs.scalar_type() == cur.scalar_type() && rs.sizes() == cur.sizes(),
              "the random generator state is ", shape_of(rs), ", expected ", shape_of(cur));
  staged.random_state = rs;
}

// Reads the whole payload into `staged` (throws for a malformed one).
void read_payload(const std::string& payload, const CheckpointContents& contents,
                  CheckpointInfo& info, Staged& staged) {
  InputArchive root;
  {
    std::istringstream is(payload);
    root.load_from(is, torch::Device(torch::kCPU));
  }
  info.library_version = get_str(root, "library_version");
  TORCH_CHECK(get_int(root, "format_version") == kCheckpointFormatVersion,
              "the payload's format version differs from the header's");
  read_modules(root, contents, info, staged);
  read_constrained_optimizer(root, contents, info, staged);
  read_random_state(root, contents, info, staged);
}

// Assigns what was staged. Nothing here can fail for a reason the checks let through (shapes,
// dtypes and types all match).
void assign_staged(Staged& staged, const CheckpointContents& contents) {
  {
    torch::NoGradGuard no_grad;
    for (auto& c : staged.copies) c.dst.copy_(c.src);
    for (auto& p : staged.penalties) p.first.penalty()->mutable_value().copy_(p.second);
  }
  for (auto& s : staged.optimizers) assign(s);
  if (contents.optimizer()) contents.optimizer()->set_iteration(staged.iteration);
  if (staged.random_state.defined()) {
    at::Generator gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(staged.random_state);
  }
}

}  // namespace

SaveInfo save(const std::string& path, const CheckpointContents& contents) {
  TORCH_CHECK(!path.empty(), "cannot save checkpoint: the path is empty");
  std::string payload;
  try {
    payload = build_payload(path, contents);
  } catch (const c10::Error& e) {
    const std::string m = e.what_without_backtrace();
    if (m.rfind("cannot save checkpoint '", 0) == 0) throw;
    TORCH_CHECK(false, "cannot save checkpoint '", path, "': ", m);
  } catch (const std::exception& e) {
    TORCH_CHECK(false, "cannot save checkpoint '", path, "': ", e.what());
  }
  const std::string bytes = detail::encode_checkpoint(payload);
  // Stale temporaries go first: they may be what fills the disk.
  SaveInfo info;
  info.removed_temporaries = detail::remove_stale_temporaries(path);
  try {
    detail::write_file_atomically(path, bytes);
  } catch (const std::runtime_error& e) {
    // The message already names the file.
    TORCH_CHECK(false, e.what(),
                info.removed_temporaries.empty()
                    ? std::string()
                    : " (before writing, stale temporary files of earlier saves were removed: " +
                          join(info.removed_temporaries) + ")");
  }
  return info;
}

CheckpointInfo load(const std::string& path, const CheckpointContents& contents) {
  const std::string prefix = "cannot load checkpoint '" + path + "': ";
  std::string bytes;
  try {
    bytes = detail::read_whole_file(path);
  } catch (const std::runtime_error& e) {
    TORCH_CHECK(false, e.what());
  }
  detail::DecodedCheckpoint decoded = detail::decode_checkpoint(bytes);
  TORCH_CHECK(decoded.ok, prefix, decoded.error);
  bytes.clear();

  CheckpointInfo info;
  info.format_version = decoded.version;
  Staged staged;
  try {
    read_payload(decoded.payload, contents, info, staged);
  } catch (const std::exception& e) {
    TORCH_CHECK(false, prefix, "the contents are malformed: ",
                dynamic_cast<const c10::Error*>(&e)
                    ? static_cast<const c10::Error&>(e).what_without_backtrace()
                    : e.what());
  }
  const auto& diffs = staged.diffs;
  if (!diffs.empty()) {
    std::string msg = prefix + "it does not match what it is loaded into (" +
                      std::to_string(diffs.size()) +
                      (diffs.size() == 1 ? " difference):" : " differences):");
    for (const auto& d : diffs) msg += "\n  - " + d;
    TORCH_CHECK(false, msg);
  }
  assign_staged(staged, contents);
  info.removed_temporaries = detail::remove_stale_temporaries(path);
  return info;
}

}  // namespace feasible
