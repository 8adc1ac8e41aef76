#pragma once
/// \file synchronizer.h
/// The hook through which a constrained optimizer shares its work with other processes (data-
/// parallel training): after each validated evaluation of the closure it hands over the
/// observed strict violations (possibly in two halves around the backward pass:
/// begin_evaluation, finish_evaluation), and after each primal backward pass the primal
/// gradients. The implementation over c10d is feasible::distributed::DataParallel
/// (feasible/distributed.h); without a synchronizer (the default) a step does no extra work.

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

namespace feasible {

/// One registered constraint as an evaluation exchanges it (in registration order).
struct SyncedConstraint {
  /// The constraint's name (for messages).
  std::string name;
  /// The constraint's size (entries of its multiplier or of its dense violation).
  int64_t size = 0;
  /// Whether the constraint is indexed (MultiplierKind::kIndexed).
  bool indexed = false;
  /// Whether it has an implicit multiplier (MultiplierKind::kImplicit).
  bool implicit = false;
  /// Whether the closure observed it in this evaluation (on this rank).
  bool observed = false;
  /// In: this rank's strict violation ([size] dense, [m] indexed; detached). Out: the value
  /// every rank uses for the dual step, the penalty updater and the result.
  at::Tensor strict;
  /// Indexed only. In: this rank's strict indices ([m] int64). Out: the indices of `strict`.
  at::Tensor indices;
};

/// One evaluation's exchange.
struct SyncedEvaluation {
  /// Every registered constraint, in registration order.
  std::vector<SyncedConstraint> constraints;
  /// In: the position of the first NaN or Inf this rank found among the loss (0) and the
  /// observed constraints' violations and strict violations (1, 2, ...; the order of the
  /// engine's check), or -1. Out: the agreed position (the lowest rank's with one), or -1.
  int64_t first_bad = -1;
  /// Out: the rank whose `first_bad` was taken (-1 when none was bad).
  int bad_rank = -1;
  /// In: whether the engine runs its primal backward pass between begin_evaluation and
  /// finish_evaluation (the overlapped exchange), computing the gradients of `parameters`.
  bool backward_between = false;
  /// In, with `backward_between`: the primal parameters that require a gradient, in the order
  /// synchronize_gradients would receive them.
  std::vector<at::Tensor> parameters;
  /// Out: whether finish_evaluation also combined the gradients of `parameters` (in the same
  /// collective as the constraints); the engine then does not call synchronize_gradients for
  /// this backward pass. Default false.
  bool gradients_synchronized = false;
};

/// The interface a constrained optimizer calls when one is set
/// (ConstrainedOptimizer::set_synchronizer). Every rank must call it the same number of times,
/// in the same order: the implementation runs collective operations.
class Synchronizer {
 public:
  /// Virtual: implementations are owned through the base.
  virtual ~Synchronizer() = default;
  /// This process's rank in [0, world_size()).
  virtual int rank() const = 0;
  /// The number of processes.
  virtual int world_size() const = 0;
  /// Called after each evaluation of the closure has been validated and checked locally for
  /// NaN and Inf, before anything reads the strict violations. Replaces every observed
  /// constraint's `strict` (and `indices`) by the combined values, identical on every rank.
  virtual void synchronize_evaluation(SyncedEvaluation& evaluation) = 0;
  /// The same exchange in two halves, so that a step can overlap it with its backward pass:
  /// the engine calls begin_evaluation(e) right after the local check, then (where the scheme's
  /// backward pass follows the evaluation: SimultaneousOptimizer, UnconstrainedOptimizer, the
  /// first evaluation of AlternatingPrimalDualOptimizer and both of ExtragradientOptimizer) runs
  /// the local backward pass, then calls finish_evaluation(e) with the same object, unchanged,
  /// before anything reads the strict violations and before synchronize_gradients. Only after
  /// finish_evaluation do `e`'s outputs hold. Where the backward pass comes between the two
  /// halves (`e.backward_between`), finish_evaluation may combine the gradients too and say so
  /// (`e.gradients_synchronized`). Default: begin_evaluation runs
  /// synchronize_evaluation (blocking) and finish_evaluation does nothing.
  virtual void begin_evaluation(SyncedEvaluation& evaluation) {
    synchronize_evaluation(evaluation);
  }
  /// See begin_evaluation: completes the exchange it started. Default: does nothing.
  virtual void finish_evaluation(SyncedEvaluation& evaluation) { (void)evaluation; }
  /// Called after each primal backward pass, before the gradients are checked and the primal
  /// optimizers step: `params` are the primal parameters that require a gradient, in the order
  /// of the primal optimizers; their gradients (undefined = no gradient on this rank) are
  /// replaced in place by the combined gradients, identical on every rank.
  virtual void synchronize_gradients(std::vector<at::Tensor>& params) = 0;
  /// Called where a rank computes state from its own data outside the two points above (the
  /// default optimizer's penalty calibration, from its own batch's gradients): replaces the
  /// values of `tensors` (the same shapes on every rank) by rank 0's.
  virtual void share_from_root(std::vector<at::Tensor>& tensors) = 0;
};

}  // namespace feasible
