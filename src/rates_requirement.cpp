// Requirements on rates (include/feasible/rates.h): the linear parts, their ConstraintState and
// the builders at_most, at_least, difference_at_most, within, ratio_at_least.
#include <c10/util/Exception.h>
#include <c10/util/StringUtil.h>

#include <cmath>
#include <utility>

#include "feasible/rates.h"

namespace feasible {
namespace rates {

torch::Tensor Rate::value() const {
  TORCH_CHECK(hits.defined() && total.defined(), "rates::Rate::value: the rate has no counts");
  return hits / total;  // NaN where total == 0 (0 / 0)
}

namespace {

// Checks one part: at least one term, every term a rate with counts, all of one shape.
void check_part(const Part& part, size_t index) {
  TORCH_CHECK(!part.terms.empty(), "rates::Requirement: part ", index, " has no term");
  TORCH_CHECK(std::isfinite(part.offset), "rates::Requirement: part ", index,
              " has a non-finite offset ", part.offset);
  const auto shape = part.terms.front().rate.hits.defined()
                         ? part.terms.front().rate.hits.sizes().vec()
                         : std::vector<int64_t>{};
  for (size_t t = 0; t < part.terms.size(); ++t) {
    const Rate& r = part.terms[t].rate;
    TORCH_CHECK(r.surrogate.defined() && r.hits.defined() && r.total.defined(),
                "rates::Requirement: part ", index, ", term ", t,
                ": the rate needs surrogate, hits and total");
    TORCH_CHECK(r.hits.dim() <= 1 && r.hits.sizes().vec() == shape &&
                    r.total.sizes().vec() == shape && r.surrogate.sizes().vec() == shape,
                "rates::Requirement: part ", index, ", term ", t, ": shape ", r.hits.sizes(),
                " (surrogate ", r.surrogate.sizes(), ", total ", r.total.sizes(),
                ") differs from the part's first term ", c10::IntArrayRef(shape),
                "; every term of a part must be 0-d or [K] alike");
    TORCH_CHECK(std::isfinite(part.terms[t].coefficient), "rates::Requirement: part ", index,
                ", term ", t, " has a non-finite coefficient ", part.terms[t].coefficient);
  }
}

// sum_i c_i * x_i(rate_i) + offset, flattened to [K] (a 0-d part becomes [1]).
template <typename Pick>
torch::Tensor combine(const Part& part, Pick pick) {
  torch::Tensor sum;
  for (const Term& term : part.terms) {
    torch::Tensor x = pick(term.rate) * term.coefficient;
    sum = sum.defined() ? sum + x : x;
  }
  return (sum + part.offset).reshape({-1});
}

}  // namespace

Requirement::Requirement(std::vector<Part> parts) : parts_(std::move(parts)) {
  TORCH_CHECK(!parts_.empty(), "rates::Requirement: no part");
  for (size_t p = 0; p < parts_.size(); ++p) check_part(parts_[p], p);
}

int64_t Requirement::size() const {
  int64_t n = 0;
  for (const Part& part : parts_) n += part.terms.front().rate.hits.numel();
  return n;
}

ConstraintState Requirement::state() const {
  std::vector<torch::Tensor> violation, strict;
  for (size_t p = 0; p < parts_.size(); ++p) {
    for (size_t t = 0; t < parts_[p].terms.size(); ++t) {
      // Flattened first: nonzero() of a 0-d tensor has shape [count, 0], no element to test.
      const torch::Tensor empty = (parts_[p].terms[t].rate.total <= 0).reshape({-1}).nonzero();
      TORCH_CHECK(empty.numel() == 0, "rates::Requirement::state: part ", p, ", term ", t,
                  ": the rate has no example (total 0) at entry ",
                  empty.flatten()[0].item<int64_t>(),
                  ", so its 0-1 value is undefined; use rates::RunningRate (estimates across "
                  "batches) or larger batches");
    }
    violation.push_back(combine(parts_[p], [](const Rate& r) { return r.surrogate; }));
    strict.push_back(combine(parts_[p], [](const Rate& r) { return r.value(); }));
  }
  return ConstraintState(torch::cat(violation)).strict_violation(torch::cat(strict).detach());
}

Requirement Requirement::tightened(double margin) const {
  TORCH_CHECK(std::isfinite(margin) && margin >= 0,
              "rates::Requirement::tightened: margin must be finite and >= 0, got ", margin);
  std::vector<Part> parts = parts_;
  for (Part& part : parts) part.offset += margin;
  return Requirement(std::move(parts));
}

Requirement at_most(const Rate& rate, double eps) {
  return Requirement({Part{{Term{rate, 1.0}}, -eps}});
}

Requirement at_least(const Rate& rate, double eps) {
  return Requirement({Part{{Term{rate, -1.0}}, eps}});
}

Requirement difference_at_most(const Rate& a, const Rate& b, double eps) {
  return Requirement({Part{{Term{a, 1.0}, Term{b, -1.0}}, -eps}});
}

Requirement within(const Rate& a, const Rate& b, double eps) {
  TORCH_CHECK(std::isfinite(eps) && eps >= 0, "rates::within: eps must be finite and >= 0, got ",
              eps);
  return Requirement(
      {Part{{Term{a, 1.0}, Term{b, -1.0}}, -eps}, Part{{Term{b, 1.0}, Term{a, -1.0}}, -eps}});
}

Requirement ratio_at_least(const Rate& a, const Rate& b, double ratio) {
  TORCH_CHECK(std::isfinite(ratio) && ratio > 0,
              "rates::ratio_at_least: ratio must be finite and > 0, got ", ratio);
  return Requirement({Part{{Term{b, ratio}, Term{a, -1.0}}, 0.0}});
}

double hoeffding_margin(int64_t n, double delta) {
  TORCH_CHECK(n >= 1, "rates::hoeffding_margin: n must be >= 1, got ", n);
  TORCH_CHECK(delta > 0 && delta < 1, "rates::hoeffding_margin: delta must be in (0, 1), got ",
              delta);
  return std::sqrt(std::log(1.0 / delta) / (2.0 * static_cast<double>(n)));
}

}  // namespace rates
}  // namespace feasible
