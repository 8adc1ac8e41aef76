#pragma once
/// \file checkpoint.h
/// Checkpoints: save the complete state of a constrained training and resume it exactly.
///
/// A checkpoint holds, for what a CheckpointContents names:
///  - each named module's parameters and buffers (by their names in the module);
///  - for a ConstrainedOptimizer: its scheme, the step counter (iteration()), every primal
///    optimizer's and the dual optimizer's parameter-group options and per-parameter state
///    (keyed by position: group g, parameter k, never by memory address), the saved point of
///    an extrapolation optimizer, and per constraint (by name) the multiplier's parameters and
///    buffers (dense and indexed: the values; implicit: the model's), the penalty coefficient's
///    values, and a description of the constraint (kind, size, formulation with its options,
///    multiplier kind and flags, multiplier bound, penalty shape, initial penalty and updater
///    settings, dtype) that must match on load;
///  - optionally the state of torch's default CPU random generator.
///
/// Supported optimizers (primal and dual): those of the table of optimizer traits in
/// src/optimizer_traits.cpp (docs/checkpoints.md). Saving with any other optimizer throws,
/// listing the supported ones.
///
/// Files are written atomically (temporary file in the same directory, fsync, rename) and carry
/// a format version and a CRC-32 of their contents. load() validates everything before it
/// changes anything: on any error (unreadable, truncated or corrupted file, wrong version, or a
/// checkpoint made for a different problem, model or optimizer, listing every difference) it
/// throws a c10::Error whose message names the file, and nothing in memory has changed.
/// See docs/checkpoints.md for the file format and the guarantees.
///
/// Example:
/// \code
///   feasible::CheckpointContents contents;
///   contents.module("model", *model).optimizer(constrained_optimizer).random_state(true);
///   feasible::save("run.ckpt", contents);
///   // ... later, after building the same model, problem and optimizers afresh:
///   feasible::load("run.ckpt", contents);
/// \endcode

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace feasible {

class ConstrainedOptimizer;

/// The checkpoint format version this build writes; it reads only this version.
inline constexpr uint32_t kCheckpointFormatVersion = 1;

/// What a checkpoint holds: named modules, at most one ConstrainedOptimizer (which brings its
/// problem, primal optimizers, dual optimizer and step counter), and optionally the random
/// generator state. Holds references: the objects must outlive the save() or load() call.
/// Pass the same kind of contents to load() as to save(), built on freshly made objects.
class CheckpointContents {
 public:
  /// Empty contents: no module, no optimizer, no random generator state.
  CheckpointContents() = default;

  /// Adds a module (its parameters and buffers, recursively) under `name` (non-empty, unique
  /// within the contents). Every parameter of the primal optimizers must belong to one of the
  /// modules, so that its value is saved.
  CheckpointContents& module(std::string name, torch::nn::Module& module);

  /// Sets the constrained optimizer whose whole state is saved: problem (multipliers, penalty
  /// coefficients), primal and dual optimizers, step counter. At most one (setting a second,
  /// different one throws).
  /// For load(), leaving it unset loads only the modules (e.g. for evaluation).
  CheckpointContents& optimizer(ConstrainedOptimizer& optimizer);

  /// Whether to save (or, for load(), restore) the state of torch's default CPU random
  /// generator. Default false. load() with true refuses a checkpoint saved without it; load()
  /// with false ignores a saved generator state.
  CheckpointContents& random_state(bool include);

  /// The modules, in the order added.
  const std::vector<std::pair<std::string, torch::nn::Module*>>& modules() const {
    return modules_;
  }
  /// The constrained optimizer, or nullptr.
  ConstrainedOptimizer* optimizer() const { return optimizer_; }
  /// Whether the random generator state is included.
  bool random_state() const { return random_state_; }

 private:
  std::vector<std::pair<std::string, torch::nn::Module*>> modules_;
  ConstrainedOptimizer* optimizer_ = nullptr;
  bool random_state_ = false;
};

/// What load() found in a checkpoint.
struct CheckpointInfo {
  /// The file's format version (kCheckpointFormatVersion).
  uint32_t format_version = 0;
  /// The version of feasible that wrote the file (feasible::kVersion).
  std::string library_version;
  /// The step counter stored (0 when the checkpoint has no optimizer).
  int64_t iteration = 0;
  /// Whether the file holds a random generator state.
  bool has_random_state = false;
  /// Whether the file holds a constrained optimizer's state.
  bool has_optimizer = false;
  /// The module names stored, in order.
  std::vector<std::string> modules;
  /// The constraint names stored, in registration order (empty without an optimizer).
  std::vector<std::string> constraints;
  /// The stale temporary files of interrupted saves of the same path that this load removed
  /// (see save()); empty when there were none. A refused load removes nothing.
  std::vector<std::string> removed_temporaries;
};

/// What save() did besides writing the file.
struct SaveInfo {
  /// The stale temporary files `<path>.tmp.<pid>.<n>` of earlier, interrupted saves of the same
  /// path (e.g. a process killed by SIGKILL mid-save) that this save removed before writing,
  /// spelled with `path`'s directory part; empty when there were none. A temporary counts as
  /// stale when no save of this process writes it and either its pid is not a live process on
  /// this machine or it has gone unmodified for an hour, so the temporary of a concurrent save
  /// by another live process is kept (docs/checkpoints.md, "Stale temporary files").
  std::vector<std::string> removed_temporaries;
};

/// Writes the complete state named by `contents` to `path`, atomically: a crash or an error
/// during save leaves any previous file at `path` intact (a stale `<path>.tmp.<pid>.<n>` may
/// remain after a crash; the next save or load of `path` removes it and lists it in its result,
/// SaveInfo::removed_temporaries or CheckpointInfo::removed_temporaries). Throws c10::Error
/// naming the file when an optimizer type is not supported, a primal parameter belongs to none
/// of the modules, a module name is repeated, or the file cannot be written (the message then
/// also lists the stale temporaries removed before the write, if any).
SaveInfo save(const std::string& path, const CheckpointContents& contents);

/// Restores the state named by `contents` from `path` into the existing objects (the same
/// model architecture, problem, optimizers and scheme, built afresh). Parameters, buffers,
/// multipliers and penalties are copied in place (NoGradGuard; dtypes must match); optimizer
/// states and group options are replaced; the step counter is set. All-or-nothing: on error it
/// throws c10::Error naming the file and the reason (listing every difference for a checkpoint
/// of another problem, model or optimizer) and nothing has changed. A successful load also
/// removes the stale temporaries of interrupted saves of `path` (as save() does) and lists them
/// in CheckpointInfo::removed_temporaries.
CheckpointInfo load(const std::string& path, const CheckpointContents& contents);

}  // namespace feasible
