// feasible::distributed::DataParallel's carried exchange (Options::combine_with_gradients): an
// evaluation's header travels in the gradients' all-reduce, so a step makes one collective
// instead of two (docs/distributed.md, "One collective per step").
#include <cfloat>
#include <cmath>
#include <cstring>

#include "feasible/distributed.h"
#include "src/distributed_impl.h"

namespace feasible {
namespace distributed {
namespace {

// The header block appended to the first gradient bucket: one slot per rank, zero except this
// rank's, so that the all-reduce's sum hands every rank every slot unchanged (x + 0 = x). A
// float64 bucket holds the header's doubles as they are. A float32 bucket holds each double d
// as three floats, hi = fl(d), mid = fl(d - hi), lo = fl(d - hi - mid), whose sum is d exactly
// for every d of float32's range that is not tiny: sample counts, positions, flags and the
// n_r s_r of ordinary violations. The block ends with one element that counts the ranks whose
// header did not split exactly (their slot is left zero); then every rank exchanges the headers
// again by all-gather, so all ranks combine the same numbers. A last element counts the ranks
// with a sparse gradient (packed as zeros), which every rank then refuses alike.
int64_t parts_of(at::ScalarType carrier) { return carrier == torch::kDouble ? 1 : 3; }

double joined(const float* p) {
  return (static_cast<double>(p[0]) + static_cast<double>(p[1])) + static_cast<double>(p[2]);
}

// Splits d into p[0..2]; whether their sum is d again (NaN stays NaN).
bool split(double d, float* p) {
  p[1] = p[2] = 0.0f;
  if (std::isnan(d)) {
    p[0] = NAN;
    return true;
  }
  if (!(std::fabs(d) <= static_cast<double>(FLT_MAX))) return false;  // Inf, or out of range
  p[0] = static_cast<float>(d);
  const double rest = d - static_cast<double>(p[0]);
  p[1] = static_cast<float>(rest);
  p[2] = static_cast<float>(rest - static_cast<double>(p[1]));
  return joined(p) == d;
}

at::Tensor header_block(const at::Tensor& header, int rank, int world, at::ScalarType carrier,
                        bool sparse) {
  const int64_t n = header.numel();
  const int64_t k = parts_of(carrier);
  at::Tensor block = torch::zeros({world * n * k + 2}, carrier);
  if (sparse) block[world * n * k + 1] = 1.0;
  const double* h = header.data_ptr<double>();
  if (carrier == torch::kDouble) {
    std::memcpy(block.data_ptr<double>() + rank * n, h, sizeof(double) * n);
    return block;
  }
  float* slot = block.data_ptr<float>() + rank * n * k;
  bool exact = true;
  for (int64_t i = 0; i < n && exact; ++i) exact = split(h[i], slot + k * i);
  if (!exact) {
    std::fill(slot, slot + n * k, 0.0f);
    block.data_ptr<float>()[world * n * k] = 1.0f;
  }
  return block;
}

// Every rank's header from the all-reduced block (on the CPU); empty when some rank's header did
// not split exactly.
std::vector<at::Tensor> headers_of(const at::Tensor& block, int world, int64_t n) {
  const int64_t k = parts_of(block.scalar_type());
  if (block[world * n * k].item<double>() != 0.0) return {};
  std::vector<at::Tensor> out;
  for (int r = 0; r < world; ++r) {
    at::Tensor h = torch::empty({n}, torch::kFloat64);
    double* p = h.data_ptr<double>();
    if (k == 1) {
      std::memcpy(p, block.data_ptr<double>() + r * n, sizeof(double) * n);
    } else {
      const float* q = block.data_ptr<float>() + r * n * k;
      for (int64_t i = 0; i < n; ++i) p[i] = joined(q + k * i);
    }
    out.push_back(h);
  }
  return out;
}

}  // namespace

// The first bucket carries the block; its gradients and every other bucket's are summed as
// n_r g_r and divided by the total of the ranks' sample counts, read from the headers.
std::vector<at::Tensor> DataParallel::exchange_carried(SyncedEvaluation& ev) {
  Impl& im = *impl_;
  const at::Tensor header = im.carried;
  im.carried = at::Tensor();
  torch::NoGradGuard no_grad;
  auto& params = ev.parameters;
  const auto buckets = detail::buckets_of(params, im.options.bucket_bytes());
  const auto carrier = buckets.empty() ? torch::kDouble : params[0].scalar_type();
  const int world = im.group->size();
  bool sparse = false;  // refused on every rank after the all-reduce, not here (no rank waits)
  for (const auto& p : params) sparse = sparse || (p.grad().defined() && p.grad().is_sparse());
  const at::Tensor block = header_block(header, im.group->rank(), world, carrier, sparse);
  const double own = static_cast<double>(im.samples);
  at::Tensor flat =
      buckets.empty() ? block.clone() : detail::pack_bucket(params, buckets[0], own, block, true);
  const int64_t block_bytes = block.numel() * static_cast<int64_t>(block.element_size());
  im.traffic.constraint_bytes += block_bytes;
  im.traffic.gradient_bytes +=
      flat.numel() * static_cast<int64_t>(flat.element_size()) - block_bytes;
  ++(buckets.empty() ? im.traffic.constraint_collectives : im.traffic.gradient_collectives);
  im.guarded("the all-reduce of the gradients and the constraints",
             [&] { im.group->allreduce(flat); });
  const at::Tensor tail = flat.slice(0, flat.numel() - block.numel()).to(torch::kCPU).contiguous();
  const double sparse_ranks = tail[tail.numel() - 1].item<double>();
  TORCH_CHECK(sparse_ranks == 0.0, "DataParallel: a primal parameter has a sparse gradient on ",
              sparse_ranks, " rank(s), which data-parallel training does not support");
  std::vector<at::Tensor> h = headers_of(tail, world, header.numel());
  if (h.empty()) h = im.gather(header, "the exchange of the constraints");  // on every rank
  double total = 0.0;
  bool any_bad = false;  // then every rank zeroes its gradients: no further bucket is needed
  for (const auto& hr : h) {
    total += hr.data_ptr<double>()[0];
    any_bad = any_bad || hr.data_ptr<double>()[1] >= 0;
  }
  TORCH_CHECK(total > 0, "DataParallel::set_samples: every rank set 0 samples for this step");
  if (!buckets.empty()) detail::unpack_bucket(params, buckets[0], flat, total);
  for (size_t i = 1; i < buckets.size() && !any_bad; ++i) {
    // The total is known now: the further buckets are weighted as without the carried header.
    flat = detail::pack_bucket(params, buckets[i], own / total, at::Tensor());
    im.traffic.gradient_bytes += flat.numel() * static_cast<int64_t>(flat.element_size());
    ++im.traffic.gradient_collectives;
    im.guarded("the all-reduce of the gradients", [&] { im.group->allreduce(flat); });
    detail::unpack_bucket(params, buckets[i], flat, 1.0);
  }
  ev.gradients_synchronized = true;
  return h;
}

}  // namespace distributed
}  // namespace feasible
