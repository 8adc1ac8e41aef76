// feasible::distributed::DataParallel's work on the training state: the bucketed all-reduce of
// the primal gradients, the broadcast that makes every rank start alike, the checksums that
// prove the ranks still agree, and the sums over ranks of tensors and rates.
#include <cstring>
#include <sstream>

#include "feasible/distributed.h"
#include "feasible/optimizer.h"
#include "src/distributed_impl.h"
#include "src/optimizer_traits.h"
#include "src/state_key.h"

namespace feasible {
namespace distributed {
namespace {

// The 64-bit FNV-1a hash of a tensor's bytes (its values, contiguous, on the CPU).
int64_t checksum(const at::Tensor& t) {
  const at::Tensor c = t.detach().cpu().contiguous();
  const auto* p = static_cast<const unsigned char*>(c.data_ptr());
  const size_t n = static_cast<size_t>(c.numel()) * c.element_size();
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  int64_t out;
  std::memcpy(&out, &h, sizeof out);
  return out;
}

using Named = std::vector<std::pair<std::string, at::Tensor>>;

// The per-parameter state tensors of `opt`, named "<who>, parameter <k>, state field <f>".
void add_states(Named& out, const torch::optim::Optimizer& opt, const std::string& who) {
  const auto* traits = ::feasible::detail::traits_of(opt);
  if (traits == nullptr || !traits->has_state()) return;
  int64_t k = 0;
  for (const auto& g : opt.param_groups()) {
    for (const auto& p : g.params()) {
      auto it = opt.state().find(::feasible::detail::key_of(p));
      if (it != opt.state().end()) {
        const auto fields = traits->fields(*it->second);
        for (size_t f = 0; f < fields.size(); ++f) {
          if (fields[f].tensor->defined()) {
            out.emplace_back(
                who + ", parameter " + std::to_string(k) + ", state field " + std::to_string(f),
                *fields[f].tensor);
          }
        }
      }
      ++k;
    }
  }
}

// Everything a step changes: primal parameters, multipliers, penalties, optimizer states.
Named state_of(const ConstrainedOptimizer& opt, bool with_states) {
  Named out;
  const auto& primal = opt.primal_optimizers();
  for (size_t i = 0; i < primal.size(); ++i) {
    int64_t k = 0;
    for (const auto& g : primal[i]->param_groups()) {
      for (const auto& p : g.params()) {
        out.emplace_back(
            "primal optimizer " + std::to_string(i) + ", parameter " + std::to_string(k++), p);
      }
    }
    if (with_states) add_states(out, *primal[i], "primal optimizer " + std::to_string(i));
  }
  for (const auto& c : opt.problem().constraints()) {
    if (c.multiplier()) {
      for (const auto& p : c.multiplier()->parameters()) {
        out.emplace_back("the multiplier of '" + c.name() + "'", p);
      }
    }
    if (c.penalty()) out.emplace_back("the penalty of '" + c.name() + "'", c.penalty()->value());
  }
  if (with_states && opt.dual_optimizer()) add_states(out, *opt.dual_optimizer(), "dual optimizer");
  return out;
}

}  // namespace

namespace detail {

std::vector<Bucket> buckets_of(const std::vector<at::Tensor>& params, int64_t bytes) {
  std::vector<Bucket> out;
  for (size_t i = 0; i < params.size(); ++i) {
    const auto& p = params[i];
    const int64_t size = p.numel() * static_cast<int64_t>(p.element_size());
    const bool fits = !out.empty() &&
                      params[out.back().members.back()].scalar_type() == p.scalar_type() &&
                      (out.back().numel * static_cast<int64_t>(p.element_size()) + size) <= bytes;
    if (!fits) out.emplace_back();
    out.back().members.push_back(i);
    out.back().numel += p.numel();
  }
  return out;
}

at::Tensor pack_bucket(const std::vector<at::Tensor>& params, const Bucket& b, double scale,
                       const at::Tensor& tail, bool sparse_as_zero) {
  const at::Tensor& first = params[b.members[0]];
  const int64_t flags = static_cast<int64_t>(b.members.size());
  const int64_t extra = tail.defined() ? tail.numel() : 0;
  at::Tensor flat = torch::empty({b.numel + flags + extra}, first.options());
  const at::Tensor factor = torch::scalar_tensor(scale, torch::kFloat64);
  std::vector<double> has(b.members.size());
  int64_t at = 0;
  for (size_t j = 0; j < b.members.size(); ++j) {
    const at::Tensor& p = params[b.members[j]];
    const at::Tensor& g = p.grad();
    TORCH_CHECK(!g.defined() || !g.is_sparse() || sparse_as_zero, "DataParallel: primal parameter ",
                b.members[j],
                " has a sparse gradient, which data-parallel training does not support");
    at::Tensor slot = flat.slice(0, at, at + p.numel());
    if (g.defined() && !g.is_sparse()) {
      at::mul_out(slot, g.reshape({-1}), factor);  // one pass: scaled into the buffer
    } else {
      slot.zero_();
    }
    has[j] = g.defined() ? 1.0 : 0.0;
    at += p.numel();
  }
  flat.slice(0, at, at + flags).copy_(torch::tensor(has, torch::kFloat64));
  if (extra > 0) flat.slice(0, at + flags).copy_(tail);
  return flat;
}

void unpack_bucket(std::vector<at::Tensor>& params, const Bucket& b, const at::Tensor& flat,
                   double divisor) {
  const at::Tensor counts = flat.slice(0, b.numel, b.numel + static_cast<int64_t>(b.members.size()))
                                .to(torch::kCPU, torch::kFloat64)
                                .contiguous();
  const double* ranks_with_gradient = counts.data_ptr<double>();
  const at::Tensor d = torch::scalar_tensor(divisor, torch::kFloat64);
  int64_t at = 0;
  for (size_t j = 0; j < b.members.size(); ++j) {
    at::Tensor& p = params[b.members[j]];
    const at::Tensor g = flat.slice(0, at, at + p.numel()).view_as(p);
    at += p.numel();
    if (ranks_with_gradient[j] == 0.0) continue;  // no rank has a gradient for it
    if (divisor == 1.0) {
      if (p.grad().defined()) {
        p.mutable_grad().copy_(g);
      } else {
        p.mutable_grad() = g.clone();
      }
    } else if (p.grad().defined()) {
      at::div_out(p.mutable_grad(), g, d);  // one pass: divided into the gradient
    } else {
      p.mutable_grad() = at::div(g, d);
    }
  }
}

}  // namespace detail

void DataParallel::synchronize_gradients(std::vector<at::Tensor>& params) {
  Impl& im = *impl_;
  if (im.group->size() == 1) return;  // the weight is 1: the gradients are the result
  torch::NoGradGuard no_grad;
  for (const auto& b : detail::buckets_of(params, im.options.bucket_bytes())) {
    // The gradients times n_r / sum n_r, then one "has a gradient" flag per parameter.
    at::Tensor flat = detail::pack_bucket(params, b, im.weight, at::Tensor());
    im.traffic.gradient_bytes += flat.numel() * static_cast<int64_t>(flat.element_size());
    ++im.traffic.gradient_collectives;
    im.guarded("the all-reduce of the gradients", [&] { im.group->allreduce(flat); });
    detail::unpack_bucket(params, b, flat, 1.0);
  }
}

void DataParallel::broadcast(const std::vector<at::Tensor>& tensors, int root) {
  TORCH_CHECK(root >= 0 && root < world_size(), "DataParallel::broadcast: root must be in [0, ",
              world_size(), "), got ", root);
  torch::NoGradGuard no_grad;
  for (const auto& t : tensors) {
    at::Tensor c = t.detach().contiguous().clone();
    impl_->guarded("a broadcast", [&] { impl_->group->broadcast(c, root); });
    t.detach().copy_(c);
  }
}

void DataParallel::share_from_root(std::vector<at::Tensor>& tensors) {
  if (world_size() > 1) broadcast(tensors, 0);
}

void DataParallel::attach(ConstrainedOptimizer& optimizer) {
  TORCH_CHECK(!weak_from_this().expired(),
              "DataParallel::attach: the DataParallel must be owned by a std::shared_ptr (use "
              "from_environment, from_file or std::make_shared), since the optimizer keeps a "
              "reference to it");
  optimizer.set_synchronizer(shared_from_this());
  impl_->attached = &optimizer;
  std::vector<at::Tensor> tensors;
  for (const auto& named : state_of(optimizer, /*with_states=*/false)) {
    tensors.push_back(named.second);
  }
  broadcast(tensors, 0);
}

void DataParallel::check_identical() {
  TORCH_CHECK(impl_->attached != nullptr,
              "DataParallel::check_identical: no optimizer is attached (call attach first)");
  const Named named = state_of(*impl_->attached, /*with_states=*/true);
  at::Tensor sums = torch::empty({static_cast<int64_t>(named.size()) + 1}, torch::kInt64);
  sums[0] = static_cast<int64_t>(named.size());
  for (size_t i = 0; i < named.size(); ++i) sums[i + 1] = checksum(named[i].second);
  // Every rank holds the same number of tensors or the first entry already differs.
  const auto all =
      impl_->guarded("the checksum comparison", [&] { return impl_->group->allgather(sums); });
  const int64_t* mine = all[0].data_ptr<int64_t>();
  for (size_t r = 1; r < all.size(); ++r) {
    const int64_t* theirs = all[r].data_ptr<int64_t>();
    TORCH_CHECK(theirs[0] == mine[0], "DataParallel::check_identical: rank ", r, " holds ",
                theirs[0], " state tensors, rank 0 holds ", mine[0]);
    for (int64_t i = 1; i <= mine[0]; ++i) {
      TORCH_CHECK(theirs[i] == mine[i], "DataParallel::check_identical: ranks 0 and ", r,
                  " differ first in ", named[i - 1].first, " (checksums ", mine[i], " and ",
                  theirs[i], ")");
    }
  }
}

at::Tensor DataParallel::all_sum(const at::Tensor& t) {
  TORCH_CHECK(t.defined(), "DataParallel::all_sum: the tensor is undefined");
  const at::Tensor flat = t.detach().to(torch::kCPU, torch::kFloat64).contiguous().reshape({-1});
  const auto all = impl_->gather(flat, "all_sum");
  at::Tensor sum = torch::zeros_like(flat);
  for (const auto& a : all) sum += a;
  return sum.reshape(t.sizes()).to(t.device(), t.scalar_type());
}

rates::Rate DataParallel::all_reduce(const rates::Rate& batch) {
  TORCH_CHECK(batch.surrogate.defined() && batch.hits.defined() && batch.total.defined(),
              "DataParallel::all_reduce: the rate has undefined tensors");
  rates::Rate out = batch;
  out.hits = all_sum(batch.hits);
  out.total = all_sum(batch.total);
  if (batch.squares.defined()) out.squares = all_sum(batch.squares);
  const at::Tensor local = batch.surrogate.detach();
  const at::Tensor weighted = all_sum(local * batch.total);
  const at::Tensor pooled =
      torch::where(out.total > 0, weighted / out.total.clamp_min(1e-300), local);
  // The pooled value (x - x is exactly 0 for finite x) with this rank's gradient.
  out.surrogate = pooled + (batch.surrogate - local);
  return out;
}

}  // namespace distributed
}  // namespace feasible
