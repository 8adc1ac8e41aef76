#pragma once
/// \file distributed.h
/// Data-parallel constrained training over c10d, the distributed engine LibTorch ships: Gloo
/// on the CPU (NCCL for CUDA tensors only in a LibTorch built with CUDA, through a group the
/// user makes). Each rank evaluates the closure on its own mini-batch; a DataParallel set on the
/// constrained optimizer averages the primal gradients and combines the strict violations, so
/// every rank takes the same dual step on the same numbers and the multipliers, penalty
/// coefficients and optimizer states stay bit-identical. Launch, guarantees and costs:
/// docs/distributed.md.

#include <c10/util/intrusive_ptr.h>
#include <torch/arg.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "feasible/rates.h"
#include "feasible/synchronizer.h"

namespace c10d {
class ProcessGroup;
}  // namespace c10d

namespace feasible {

class ConstrainedOptimizer;

namespace distributed {
namespace detail {
class Collectives;
}  // namespace detail

/// Options of a DataParallel, validated by its constructors.
struct Options {
  /// Throws c10::Error ("distributed::Options.<field> must <rule>, got <value>") unless every
  /// field is in range.
  void validate() const;
  /// How long the rendezvous and each collective may wait for the other ranks, in milliseconds:
  /// a rank that died or hangs makes the others throw after at most this long (a dead rank's
  /// closed connection usually sooner). Default 300000 (5 minutes, as torch.distributed's
  /// default process-group timeout is 30 minutes for Gloo, long for interactive use); >= 1.
  TORCH_ARG(int64_t, timeout_ms) = 300000;
  /// Compare checksums of the whole training state across ranks every this many evaluations
  /// (DataParallel::check_identical, run by synchronize_evaluation); 0 (default) never.
  TORCH_ARG(int64_t, check_every) = 0;
  /// The size of one gradient bucket (one all-reduce) in bytes; the primal gradients are packed
  /// into buckets of at most this size (a larger gradient gets a bucket of its own). Default
  /// 25 MiB, the bucket size of PyTorch's DistributedDataParallel; >= 1.
  TORCH_ARG(int64_t, bucket_bytes) = 25 * 1024 * 1024;
  /// Carry an evaluation's constraint exchange in the gradients' all-reduce where the step's
  /// backward pass runs between the exchange's two halves (SimultaneousOptimizer and the other
  /// overlapped evaluations; docs/distributed.md): one collective per step instead of two. The
  /// gradients are then summed as n_r g_r and divided by sum_r n_r afterwards (the same values
  /// up to rounding as n_r / sum_r n_r times g_r, summed). Needs float32 or float64 gradients
  /// in the first bucket; otherwise, or when false, the header has an all-gather of its own
  /// (overlapping the backward pass). Default true.
  TORCH_ARG(bool, combine_with_gradients) = true;
};

/// What this rank contributed to collectives so far (payload bytes: the buffers it handed to
/// c10d; the bytes on the wire depend on the algorithm, e.g. about 2 (W - 1) / W times the
/// buffer for a ring all-reduce and W - 1 times it for a ring all-gather).
struct Traffic {
  /// Bytes of the evaluations' exchanges (strict violations, sample counts, indices),
  /// including a header block carried in a gradient all-reduce.
  int64_t constraint_bytes = 0;
  /// Bytes of the gradient all-reduces (without a carried header block).
  int64_t gradient_bytes = 0;
  /// Number of collectives of the evaluations' exchanges (a carried header adds none).
  int64_t constraint_collectives = 0;
  /// Number of gradient all-reduces (buckets).
  int64_t gradient_collectives = 0;
};

/// A Synchronizer over a c10d process group. All its operations are collective: every rank
/// calls them in the same order.
///
/// Evaluations: one all-gather of a header per evaluation (started by begin_evaluation, so that
/// it runs during the backward pass, and awaited by finish_evaluation; or, where the backward
/// pass runs in between, carried in the gradients' all-reduce: Options::combine_with_gradients)
/// ([sample count, first bad
/// value, then per constraint: observed flag and, dense, its strict violation times the rank's
/// sample count n_r, or, indexed, the number of observed entries]); indexed constraints add one
/// all-gather of their (index, n_r * value) pairs, padded to the longest rank's. Every rank
/// then combines the gathered numbers in rank order, in double precision, into
///   s = sum_r n_r s_r / sum_r n_r             (dense; every rank must observe it),
///   s_i = sum_{(r, j): idx_rj = i} n_r s_rj / sum_{(r, j): idx_rj = i} n_r   (indexed),
/// the latter on the sorted union of the observed indices: the same code on the same numbers,
/// so the same bits everywhere. Implicit multipliers are refused.
///
/// Gradients: the primal gradients, times n_r / sum_r n_r (carrying the header: times n_r, and
/// divided by sum_r n_r after the sum), are packed into buckets and summed by all-reduce (c10d's
/// Gloo all-reduce hands every rank the same reduced buffer; the tests check that parameters
/// stay bit-identical). Carrying the header, finish_evaluation synchronizes the gradients itself
/// and says so (SyncedEvaluation::gradients_synchronized): a Synchronizer that wraps a
/// DataParallel and forwards begin/finish_evaluation to it then gets no synchronize_gradients
/// call for that backward pass.
class DataParallel : public Synchronizer, public std::enable_shared_from_this<DataParallel> {
 public:
  /// Over a process group the caller made (e.g. a c10d::ProcessGroupNCCL in a CUDA build).
  /// The group's own timeout applies to its collectives; `options.timeout_ms` is only quoted in
  /// messages.
  /// Own it with std::make_shared: attach() hands the optimizer a shared reference (and refuses
  /// an object not owned by a std::shared_ptr).
  explicit DataParallel(c10::intrusive_ptr<c10d::ProcessGroup> group, Options options = Options());
  /// Releases the group (the last reference to it ends its collectives).
  ~DataParallel() override;
  /// Not copyable: one object per process group.
  DataParallel(const DataParallel&) = delete;
  /// Not copyable.
  DataParallel& operator=(const DataParallel&) = delete;

  /// The group torchrun describes: RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT (all
  /// required), rendezvous through a c10d::TCPStore (hosted by rank 0, or by torchrun's agent
  /// when TORCHELASTIC_USE_AGENT_STORE=True, as torch.distributed's env:// does), Gloo over
  /// the interface of MASTER_ADDR's host name resolution. Throws c10::Error naming a missing or
  /// malformed variable.
  static std::shared_ptr<DataParallel> from_environment(Options options = Options());
  /// A Gloo group whose rendezvous is a c10d::FileStore at `path` (a file on a file system every
  /// rank sees; tests use a temporary one). rank in [0, world_size), world_size >= 1.
  static std::shared_ptr<DataParallel> from_file(const std::string& path, int rank, int world_size,
                                                 Options options = Options());
  /// Whether RANK and WORLD_SIZE are set (the process runs under torchrun).
  static bool in_environment();

  /// This process's rank, in [0, world_size()) (Synchronizer::rank).
  int rank() const override;
  /// The number of processes in the group, >= 1 (Synchronizer::world_size).
  int world_size() const override;
  /// The options.
  const Options& options() const;

  /// The number of samples this rank's next evaluations average over (the weight n_r of its
  /// strict violations and gradients); it stays until set again. Default 1 (equal weights);
  /// >= 0 (a rank with 0 samples contributes nothing; all ranks 0 is refused).
  void set_samples(int64_t n);
  /// Sets this synchronizer on `optimizer` and remembers the optimizer for check_identical();
  /// then broadcasts rank 0's primal parameters, multipliers and penalty coefficients, so that
  /// every rank starts from the same state.
  void attach(ConstrainedOptimizer& optimizer);
  /// Copies rank `root`'s values of `tensors` (the same shapes on every rank) into every rank's;
  /// root in [0, world_size()).
  void broadcast(const std::vector<at::Tensor>& tensors, int root = 0);
  /// Compares a checksum of every tensor of the attached optimizer's state (primal parameters,
  /// multipliers, penalty coefficients, the per-parameter states of the primal and dual
  /// optimizers) across ranks; throws c10::Error naming the first tensor that differs and the
  /// ranks ("DataParallel::check_identical: ..."). Throws when no optimizer is attached.
  void check_identical();
  /// The sum over ranks of a CPU tensor (the same shape on every rank), added in rank order in
  /// double precision, so every rank gets the same bits; the result has `t`'s dtype.
  at::Tensor all_sum(const at::Tensor& t);
  /// A batch's rate pooled over ranks: hits, total (and squares) summed with all_sum; the
  /// surrogate has the pooled value sum_r surrogate_r total_r / sum_r total_r (the local one
  /// where the pooled total is 0) and this rank's gradient. Feed it to RunningRate::update on
  /// every rank and the running estimates stay identical.
  rates::Rate all_reduce(const rates::Rate& batch);
  /// Waits for every rank (a collective).
  void barrier();
  /// What this rank contributed to collectives so far.
  const Traffic& traffic() const;

  /// See Synchronizer::synchronize_evaluation: the strict violations weighted by the ranks'
  /// samples (dense: one all-reduce; indexed: an all-gather of indices and values).
  void synchronize_evaluation(SyncedEvaluation& evaluation) override;
  /// See Synchronizer::begin_evaluation: starts the all-gather of the header (asynchronous,
  /// on Gloo's worker thread) and returns at once, or, when the gradients' all-reduce will carry
  /// the header (Options::combine_with_gradients), keeps it and starts nothing; runs
  /// check_identical first when due.
  void begin_evaluation(SyncedEvaluation& evaluation) override;
  /// See Synchronizer::finish_evaluation: waits for the header's all-gather (a failure or a
  /// timeout throws as any collective does), or runs the gradients' all-reduce that carries it,
  /// combines it, and runs the indexed constraints' all-gather (blocking: its length depends
  /// on the header). Throws when no exchange was begun.
  void finish_evaluation(SyncedEvaluation& evaluation) override;
  /// See Synchronizer::synchronize_gradients: the sample-weighted average of the gradients.
  void synchronize_gradients(std::vector<at::Tensor>& params) override;
  /// See Synchronizer::share_from_root: a broadcast from rank 0.
  void share_from_root(std::vector<at::Tensor>& tensors) override;

 private:
  struct Impl;
  explicit DataParallel(std::unique_ptr<Impl> impl);
  /// Internal: the all-gather of the indexed constraints' entries and their combination.
  void exchange_indexed(SyncedEvaluation& ev, const std::vector<double>& samples,
                        const std::vector<int64_t>& longest,
                        const std::vector<std::vector<int64_t>>& counts);
  /// Internal: the gradients' all-reduce carrying the headers; returns every rank's header.
  std::vector<at::Tensor> exchange_carried(SyncedEvaluation& ev);
  /// Internal: combines the ranks' headers into `ev` (and the indexed constraints' entries).
  void combine(SyncedEvaluation& ev, const std::vector<at::Tensor>& headers);
  static std::shared_ptr<DataParallel> make(std::unique_ptr<detail::Collectives> group,
                                            const Options& options);
  std::unique_ptr<Impl> impl_;
};

}  // namespace distributed
}  // namespace feasible
