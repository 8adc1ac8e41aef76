// The internals of feasible::distributed::DataParallel: the collectives over a c10d group (with
// errors that name the timeout) and the state the exchanges share. Internal: not installed.
#pragma once
#include <torch/torch.h>

#include <functional>
#include <memory>
#include <string>
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>
#include <vector>

#include "feasible/distributed.h"

namespace feasible {
namespace distributed {
namespace detail {

/// The collectives DataParallel uses, over whichever c10d group type holds them (a
/// c10d::ProcessGroup given by the user, or the c10d::ProcessGroupGloo made here: in LibTorch
/// 2.x the latter is a backend, not a ProcessGroup, so both are held through this interface).
class Collectives {
 public:
  virtual ~Collectives() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  /// Sums `t` (a contiguous tensor) over ranks in place.
  virtual void allreduce(at::Tensor& t) = 0;
  /// Gathers every rank's `t` (the same shape everywhere), in rank order.
  virtual std::vector<at::Tensor> allgather(const at::Tensor& t) = 0;
  /// Starts gathering every rank's `t` and returns at once; the returned function waits for the
  /// gather and returns its result (what allgather returns).
  virtual std::function<std::vector<at::Tensor>()> allgather_start(const at::Tensor& t) = 0;
  /// Copies rank `root`'s `t` into every rank's `t` (contiguous).
  virtual void broadcast(at::Tensor& t, int root) = 0;
  virtual void barrier() = 0;
};

/// A Collectives over a c10d::ProcessGroup the user made.
std::unique_ptr<Collectives> collectives_of(c10::intrusive_ptr<c10d::ProcessGroup> group);

/// A Gloo group from a store (rendezvous), with collectives that time out after `timeout_ms`.
/// `loopback`: bind to 127.0.0.1 unless GLOO_SOCKET_IFNAME names an interface.
std::unique_ptr<Collectives> gloo_collectives(const c10::intrusive_ptr<c10d::Store>& store,
                                              int rank, int world_size, int64_t timeout_ms,
                                              const std::string& host, bool loopback);

/// One gradient bucket: consecutive parameters of one dtype, at most Options::bucket_bytes
/// bytes (or one parameter).
struct Bucket {
  std::vector<size_t> members;
  int64_t numel = 0;
};

/// The buckets of `params` (by their sizes and dtypes, not their gradients).
std::vector<Bucket> buckets_of(const std::vector<at::Tensor>& params, int64_t bytes);

/// One all-reduce buffer of bucket `b`: its members' gradients times `scale` (zeros where a
/// member has none), one "has a gradient" flag per member, then `tail` (if defined), all in the
/// members' dtype. A sparse gradient throws, or with `sparse_as_zero` is packed as zeros.
at::Tensor pack_bucket(const std::vector<at::Tensor>& params, const Bucket& b, double scale,
                       const at::Tensor& tail, bool sparse_as_zero = false);

/// Writes the summed gradients of an all-reduced `flat` (pack_bucket's layout) into the
/// members' gradients, divided by `divisor`; members without a gradient on any rank keep none.
void unpack_bucket(std::vector<at::Tensor>& params, const Bucket& b, const at::Tensor& flat,
                   double divisor);

}  // namespace detail

struct DataParallel::Impl {
  std::unique_ptr<detail::Collectives> group;
  Options options;
  int64_t samples = 1;      // n_r, set by set_samples
  double weight = 1.0;      // n_r / sum n_r of the last evaluation (gradients' weight)
  int64_t evaluations = 0;  // synchronize_evaluation calls (for check_every)
  ConstrainedOptimizer* attached = nullptr;
  Traffic traffic;

  /// Runs `f` (a collective); turns any failure into a c10::Error that names `what`, this
  /// rank and the timeout.
  template <class F>
  auto guarded(const char* what, F&& f) -> decltype(f());
  /// all-gather of a 1-D double tensor, counted as constraint traffic.
  std::vector<at::Tensor> gather(const at::Tensor& t, const char* what);
  /// Starts an all-gather of a 1-D double tensor (constraint traffic); the function waits.
  std::function<std::vector<at::Tensor>()> gather_start(const at::Tensor& t, const char* what);
  /// The header's all-gather begun by begin_evaluation (empty: none pending), and whether
  /// the exchange of one process only is pending.
  std::function<std::vector<at::Tensor>()> pending;
  bool pending_local = false;
  /// The header begun for the gradients' all-reduce to carry (undefined: none).
  at::Tensor carried;
};

/// "DataParallel (rank r of W): <what> failed ...": the message of a failed collective.
[[noreturn]] void collective_failed(int rank, int world, const char* what, int64_t timeout_ms,
                                    const std::string& cause);

template <class F>
auto DataParallel::Impl::guarded(const char* what, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const c10::Error& e) {
    collective_failed(group->rank(), group->size(), what, options.timeout_ms(),
                      e.what_without_backtrace());
  } catch (const std::exception& e) {
    collective_failed(group->rank(), group->size(), what, options.timeout_ms(), e.what());
  }
}

}  // namespace distributed
}  // namespace feasible
