// feasible::distributed::DataParallel's exchanges: the evaluations' strict violations (one
// all-gather of a header, one more for indexed constraints), combined in rank order in double
// precision so every rank gets the same bits, and the bucketed all-reduce of the gradients.
#include <map>
#include <sstream>

#include "feasible/distributed.h"
#include "src/distributed_impl.h"

namespace feasible {
namespace distributed {
namespace {

// The header's layout: [n_r, first_bad, then per constraint: observed, and (dense) size
// entries of n_r * s or (indexed) the number of observed entries].
int64_t header_length(const SyncedEvaluation& ev) {
  int64_t n = 2;
  for (const auto& c : ev.constraints) n += 1 + (c.indexed || c.implicit ? 1 : c.size);
  return n;
}

at::Tensor header_of(const SyncedEvaluation& ev, int64_t samples) {
  at::Tensor h = torch::zeros({header_length(ev)}, torch::kFloat64);
  double* p = h.data_ptr<double>();
  p[0] = static_cast<double>(samples);
  p[1] = static_cast<double>(ev.first_bad);
  int64_t at = 2;
  for (const auto& c : ev.constraints) {
    p[at++] = c.observed ? 1.0 : 0.0;
    if (c.implicit) {
      ++at;
    } else if (c.indexed) {
      p[at++] = c.observed ? static_cast<double>(c.strict.numel()) : 0.0;
    } else {
      if (c.observed) {
        at::Tensor s = c.strict.to(torch::kCPU, torch::kFloat64).contiguous().reshape({-1}) *
                       static_cast<double>(samples);
        std::memcpy(p + at, s.data_ptr<double>(), sizeof(double) * c.size);
      }
      at += c.size;
    }
  }
  return h;
}

// Every rank observes a constraint, or none does; implicit multipliers are refused.
void check_observed(const std::vector<at::Tensor>& h, int64_t at, const SyncedConstraint& c) {
  std::vector<int> seen, missed;
  for (size_t r = 0; r < h.size(); ++r) {
    (h[r].data_ptr<double>()[at] != 0.0 ? seen : missed).push_back(static_cast<int>(r));
  }
  TORCH_CHECK(seen.empty() || !c.implicit, "DataParallel: constraint '", c.name,
              "' has an implicit multiplier, which data-parallel training does not support");
  TORCH_CHECK(seen.empty() || missed.empty(), "DataParallel: constraint '", c.name,
              "' was observed on rank ", seen[0], " but not on rank ",
              missed.empty() ? 0 : missed[0],
              "; every rank must observe the same constraints in an evaluation (an indexed "
              "constraint may observe no entry: empty indices)");
}

// The indexed constraints' (index, n_r * value) pairs, each padded to the longest rank's count.
at::Tensor payload_of(const SyncedEvaluation& ev, const std::vector<int64_t>& longest,
                      int64_t samples) {
  int64_t n = 0;
  for (int64_t k : longest) n += 2 * k;
  at::Tensor out = torch::full({n}, -1.0, torch::kFloat64);
  double* p = out.data_ptr<double>();
  int64_t at = 0;
  size_t j = 0;
  for (const auto& c : ev.constraints) {
    if (!c.indexed) continue;
    if (c.observed && c.strict.numel() > 0) {
      const at::Tensor idx = c.indices.to(torch::kCPU, torch::kFloat64).contiguous();
      const at::Tensor val = c.strict.to(torch::kCPU, torch::kFloat64).contiguous();
      const double* pi = idx.data_ptr<double>();
      const double* pv = val.data_ptr<double>();
      for (int64_t e = 0; e < c.strict.numel(); ++e) {
        p[at + 2 * e] = pi[e];
        p[at + 2 * e + 1] = pv[e] * static_cast<double>(samples);
      }
    }
    at += 2 * longest[j++];
  }
  return out;
}

// Combines one indexed constraint: per index, sum n_r s / sum n_r in (rank, position) order.
void combine_indexed(SyncedConstraint& c, const std::vector<at::Tensor>& payload,
                     const std::vector<double>& samples, const std::vector<int64_t>& counts,
                     int64_t offset) {
  std::map<int64_t, std::pair<double, double>> sums;  // index -> (sum n_r s, sum n_r)
  for (size_t r = 0; r < payload.size(); ++r) {
    const double* p = payload[r].data_ptr<double>() + offset;
    for (int64_t e = 0; e < counts[r]; ++e) {
      auto& s = sums[static_cast<int64_t>(p[2 * e])];
      s.first += p[2 * e + 1];
      s.second += samples[r];
    }
  }
  std::vector<int64_t> idx;
  std::vector<double> val;
  for (const auto& kv : sums) {
    if (kv.second.second <= 0.0) continue;  // seen only by ranks with no samples
    idx.push_back(kv.first);
    val.push_back(kv.second.first / kv.second.second);
  }
  const auto dtype = c.strict.scalar_type();
  c.indices = torch::tensor(idx, torch::kInt64).to(c.indices.device());
  c.strict = torch::tensor(val, torch::kFloat64).to(c.strict.device(), dtype);
}

// Whether the gradients' all-reduce can carry the header: its first bucket is float32 or
// float64 (every rank has the same parameters, so every rank decides alike).
bool carries(const std::vector<at::Tensor>& params) {
  if (params.empty()) return true;  // a buffer of the header alone (float64)
  const auto t = params[0].scalar_type();
  return t == torch::kFloat || t == torch::kDouble;
}

}  // namespace

void DataParallel::synchronize_evaluation(SyncedEvaluation& ev) {
  // Blocking: no backward pass runs between the halves, so the gradients carry nothing.
  const bool between = ev.backward_between;
  ev.backward_between = false;
  begin_evaluation(ev);
  ev.backward_between = between;
  finish_evaluation(ev);
}

void DataParallel::begin_evaluation(SyncedEvaluation& ev) {
  Impl& im = *impl_;
  im.pending = nullptr;  // an exchange left unfinished by an exception is abandoned
  im.pending_local = false;
  im.carried = at::Tensor();
  if (im.options.check_every() > 0 && im.attached != nullptr &&
      im.evaluations % im.options.check_every() == 0) {
    check_identical();
  }
  ++im.evaluations;
  if (im.group->size() == 1) {
    im.pending_local = true;
    return;
  }
  if (ev.backward_between && im.options.combine_with_gradients() && carries(ev.parameters)) {
    im.carried = header_of(ev, im.samples);  // sent with the gradients by finish_evaluation
    return;
  }
  im.pending = im.gather_start(header_of(ev, im.samples), "the exchange of the constraints");
}

void DataParallel::finish_evaluation(SyncedEvaluation& ev) {
  Impl& im = *impl_;
  TORCH_CHECK(im.pending || im.pending_local || im.carried.defined(),
              "DataParallel::finish_evaluation: no exchange is pending (call begin_evaluation "
              "first, once per finish_evaluation)");
  if (im.pending_local) {  // nothing to combine: one process keeps its own values
    im.pending_local = false;
    TORCH_CHECK(im.samples > 0,
                "DataParallel::set_samples: every rank set 0 samples for this step");
    for (const auto& c : ev.constraints) {
      TORCH_CHECK(!c.observed || !c.implicit, "DataParallel: constraint '", c.name,
                  "' has an implicit multiplier, which data-parallel training does not support");
    }
    ev.bad_rank = ev.first_bad >= 0 ? 0 : -1;
    im.weight = 1.0;
    return;
  }
  if (im.carried.defined()) {
    combine(ev, exchange_carried(ev));
    return;
  }
  const auto wait = std::move(im.pending);
  im.pending = nullptr;
  combine(ev, im.guarded("the exchange of the constraints", wait));
}

void DataParallel::combine(SyncedEvaluation& ev, const std::vector<at::Tensor>& h) {
  Impl& im = *impl_;
  std::vector<double> samples(h.size());
  double total = 0.0;
  ev.first_bad = -1;
  ev.bad_rank = -1;
  for (size_t r = 0; r < h.size(); ++r) {
    const double* p = h[r].data_ptr<double>();
    samples[r] = p[0];
    total += p[0];
    if (ev.bad_rank < 0 && p[1] >= 0) {
      ev.first_bad = static_cast<int64_t>(p[1]);
      ev.bad_rank = static_cast<int>(r);
    }
  }
  TORCH_CHECK(total > 0, "DataParallel::set_samples: every rank set 0 samples for this step");
  im.weight = static_cast<double>(im.samples) / total;
  std::vector<int64_t> longest;              // per indexed constraint
  std::vector<std::vector<int64_t>> counts;  // per indexed constraint, per rank
  std::vector<int64_t> offsets;              // header offset of each constraint
  int64_t at = 2;
  for (auto& c : ev.constraints) {
    check_observed(h, at, c);
    offsets.push_back(at);
    const bool observed = h[0].data_ptr<double>()[at] != 0.0;
    ++at;
    if (c.implicit) {
      ++at;
    } else if (c.indexed) {
      std::vector<int64_t> k(h.size());
      for (size_t r = 0; r < h.size(); ++r)
        k[r] = static_cast<int64_t>(h[r].data_ptr<double>()[at]);
      longest.push_back(observed ? *std::max_element(k.begin(), k.end()) : 0);
      counts.push_back(std::move(k));
      ++at;
    } else {
      if (observed) {
        at::Tensor sum = torch::zeros({c.size}, torch::kFloat64);
        for (const auto& hr : h) sum += hr.slice(0, at, at + c.size);
        c.strict = (sum / total).to(c.strict.device(), c.strict.scalar_type());
      }
      at += c.size;
    }
  }
  exchange_indexed(ev, samples, longest, counts);
}

// The indexed constraints' second all-gather and their combination (nothing to send when no rank
// observed an entry).
void DataParallel::exchange_indexed(SyncedEvaluation& ev, const std::vector<double>& samples,
                                    const std::vector<int64_t>& longest,
                                    const std::vector<std::vector<int64_t>>& counts) {
  Impl& im = *impl_;
  int64_t payload_length = 0;
  for (int64_t k : longest) payload_length += k;
  if (payload_length == 0) {
    for (auto& c : ev.constraints) {
      if (c.indexed && c.observed) {
        c.strict = c.strict.narrow(0, 0, 0);
        c.indices = c.indices.narrow(0, 0, 0);
      }
    }
    return;
  }
  const auto payload =
      im.gather(payload_of(ev, longest, im.samples), "the exchange of the indexed constraints");
  int64_t offset = 0;
  size_t j = 0;
  for (auto& c : ev.constraints) {
    if (!c.indexed) continue;
    if (longest[j] > 0) combine_indexed(c, payload, samples, counts[j], offset);
    offset += 2 * longest[j++];
  }
}

}  // namespace distributed
}  // namespace feasible
