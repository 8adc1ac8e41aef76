// Rates of a batch (include/feasible/rates.h): the binary rates of scores, the per-class recall
// and precision of logits, bounded means, and running rates across batches. Each rate is a 0-1
// count (hits / total, detached) paired with a differentiable surrogate (Cotter et al. 2019b).
#include "feasible/rates.h"

#include <c10/util/Exception.h>

#include <cmath>
#include <string>
#include <utility>

#include "src/validate.h"

namespace feasible {
namespace rates {

void RateOptions::validate() const {
  const detail::Validator check("RateOptions");
  check.one_of("surrogate", surrogate_ == Surrogate::kSigmoid || surrogate_ == Surrogate::kHinge,
               "Surrogate::kSigmoid or kHinge", surrogate_);
  check.positive("temperature", temperature_);
  check.finite("threshold", threshold_);
}

namespace {

// The surrogate of the indicator 1[z > 0]: sigmoid(z / tau) or max(0, 1 + z / tau).
torch::Tensor indicator_surrogate(const torch::Tensor& z, const RateOptions& options) {
  const torch::Tensor scaled = z / options.temperature();
  return options.surrogate() == Surrogate::kSigmoid ? torch::sigmoid(scaled)
                                                    : torch::relu(scaled + 1.0);
}

// Checks that `t` is a 1-D tensor of `n` entries; `what` names it in the message.
void check_entries(const char* fn, const char* what, const torch::Tensor& t, int64_t n,
                   const char* against) {
  TORCH_CHECK(t.dim() == 1, "rates::", fn, ": ", what, " must be 1-D ([N]), got shape ", t.sizes());
  TORCH_CHECK(t.size(0) == n, "rates::", fn, ": ", what, " has ", t.size(0), " entries, ", against,
              " ", n);
}

// Checks scores ([N] floating point, `dims` = 1) or logits ([N, K], `dims` = 2).
void check_scores(const char* fn, const char* what, const torch::Tensor& scores, int64_t dims) {
  TORCH_CHECK(scores.defined(), "rates::", fn, ": ", what, " is undefined");
  TORCH_CHECK(scores.dim() == dims, "rates::", fn, ": ", what, " must be ",
              dims == 1 ? "1-D ([N])" : "2-D ([N, K])", ", got shape ", scores.sizes());
  TORCH_CHECK(scores.is_floating_point(), "rates::", fn, ": ", what,
              " must be floating point, got ", scores.scalar_type());
}

// The optional subset mask: undefined, or [n] bool.
void check_mask(const char* fn, const torch::Tensor& mask, int64_t n, const char* against) {
  if (!mask.defined()) return;
  check_entries(fn, "mask", mask, n, against);
  TORCH_CHECK(mask.scalar_type() == torch::kBool, "rates::", fn,
              ": mask must be bool (e.g. group == 0), got ", mask.scalar_type());
}

// Binary labels as bool [n]: bool, integer or floating point, every value 0 or 1.
torch::Tensor binary_labels(const char* fn, const torch::Tensor& labels, int64_t n) {
  TORCH_CHECK(labels.defined(), "rates::", fn, ": labels is undefined");
  check_entries(fn, "labels", labels, n, "scores");
  if (labels.scalar_type() == torch::kBool) return labels;
  TORCH_CHECK(labels.is_floating_point() || c10::isIntegralType(labels.scalar_type(), false),
              "rates::", fn, ": labels must be bool, integer or floating point, got ",
              labels.scalar_type());
  const torch::Tensor bad = ((labels != 0) & (labels != 1)).nonzero();
  TORCH_CHECK(bad.numel() == 0, "rates::", fn, ": labels must be 0 or 1, got ",
              bad.numel() == 0 ? 0.0 : labels[bad[0][0]].item<double>(), " at entry ",
              bad.numel() == 0 ? 0 : bad[0][0].item<int64_t>());
  return labels != 0;
}

// sum / total, 0 where total == 0; the denominator is made safe first, so neither the value nor
// the gradient is NaN (the numerator of an empty subset is an empty sum, 0).
torch::Tensor safe_ratio(const torch::Tensor& sum, const torch::Tensor& total) {
  const torch::Tensor positive = total > 0;
  const torch::Tensor ratio = sum / torch::where(positive, total, torch::ones_like(total));
  return torch::where(positive, ratio, torch::zeros_like(ratio));
}

// Which examples a binary rate counts, and whether it counts "predicted positive" decisions.
struct Subset {
  torch::Tensor select;  // [N] bool, or undefined for every example
  bool positive = true;  // true: predicted positive; false: predicted negative
};

// The 0-d rate of the decisions of `scores` over `subset`: hits = the number predicted positive
// (or negative), surrogate = the mean of their surrogates.
Rate binary_rate(const torch::Tensor& scores, const Subset& subset, const RateOptions& options) {
  const torch::Tensor s = subset.select.defined() ? scores.masked_select(subset.select) : scores;
  const torch::Tensor predicted_positive = s.detach() > options.threshold();
  const torch::Tensor hit = subset.positive ? predicted_positive : predicted_positive.logical_not();
  const torch::Tensor z = subset.positive ? s - options.threshold() : options.threshold() - s;
  Rate rate;
  rate.hits = hit.sum().to(scores.scalar_type());
  rate.total = torch::full({}, static_cast<double>(s.numel()), scores.options()).detach();
  rate.surrogate = safe_ratio(indicator_surrogate(z, options).sum(), rate.total);
  return rate;
}

// Checks the scores, the mask and the options of a binary rate.
void check_binary(const char* fn, const torch::Tensor& scores, const torch::Tensor& mask,
                  const RateOptions& options) {
  options.validate();
  check_scores(fn, "scores", scores, 1);
  check_mask(fn, mask, scores.size(0), "scores");
}

// mask AND (labels == label); either may be undefined (every example).
torch::Tensor select(const torch::Tensor& mask, const torch::Tensor& labels, bool label) {
  if (!labels.defined()) return mask;
  const torch::Tensor match = label ? labels : labels.logical_not();
  return mask.defined() ? mask.logical_and(match) : match;
}

// A rate of the decisions on the examples of `mask` whose label is `label`.
Rate labelled_rate(const char* fn, const torch::Tensor& scores, const torch::Tensor& labels,
                   const torch::Tensor& mask, const RateOptions& options, bool label,
                   bool positive) {
  check_binary(fn, scores, mask, options);
  const torch::Tensor y = binary_labels(fn, labels, scores.size(0));
  return binary_rate(scores, Subset{select(mask, y, label), positive}, options);
}

}  // namespace

Rate positive_rate(const torch::Tensor& scores, const torch::Tensor& mask,
                   const RateOptions& options) {
  check_binary("positive_rate", scores, mask, options);
  return binary_rate(scores, Subset{mask, true}, options);
}

Rate negative_rate(const torch::Tensor& scores, const torch::Tensor& mask,
                   const RateOptions& options) {
  check_binary("negative_rate", scores, mask, options);
  return binary_rate(scores, Subset{mask, false}, options);
}

Rate true_positive_rate(const torch::Tensor& scores, const torch::Tensor& labels,
                        const torch::Tensor& mask, const RateOptions& options) {
  return labelled_rate("true_positive_rate", scores, labels, mask, options, true, true);
}

Rate false_positive_rate(const torch::Tensor& scores, const torch::Tensor& labels,
                         const torch::Tensor& mask, const RateOptions& options) {
  return labelled_rate("false_positive_rate", scores, labels, mask, options, false, true);
}

Rate true_negative_rate(const torch::Tensor& scores, const torch::Tensor& labels,
                        const torch::Tensor& mask, const RateOptions& options) {
  return labelled_rate("true_negative_rate", scores, labels, mask, options, false, false);
}

Rate false_negative_rate(const torch::Tensor& scores, const torch::Tensor& labels,
                         const torch::Tensor& mask, const RateOptions& options) {
  return labelled_rate("false_negative_rate", scores, labels, mask, options, true, false);
}

Rate error_rate(const torch::Tensor& scores, const torch::Tensor& labels, const torch::Tensor& mask,
                const RateOptions& options) {
  check_binary("error_rate", scores, mask, options);
  const torch::Tensor y = binary_labels("error_rate", labels, scores.size(0));
  const torch::Tensor s = mask.defined() ? scores.masked_select(mask) : scores;
  const torch::Tensor label = mask.defined() ? y.masked_select(mask) : y;
  // An error is "predicted positive" on a 0 label and "predicted negative" on a 1 label: the
  // margin z = (score - t) on label 0 and (t - score) on label 1, i.e. (score - t) (1 - 2 y).
  const torch::Tensor sign = 1.0 - 2.0 * label.to(scores.scalar_type());
  const torch::Tensor predicted_positive = s.detach() > options.threshold();
  Rate rate;
  rate.hits = predicted_positive.ne(label).sum().to(scores.scalar_type());
  rate.total = torch::full({}, static_cast<double>(s.numel()), scores.options());
  rate.surrogate =
      safe_ratio(indicator_surrogate((s - options.threshold()) * sign, options).sum(), rate.total);
  return rate;
}

namespace {

// The examples of a multiclass rate over `mask`: their logits [M, K], one-hot targets [M, K]
// (in the logits' dtype, detached) and one-hot arg max predictions [M, K].
struct Multiclass {
  torch::Tensor logits, target_onehot, predicted_onehot;
};

Multiclass multiclass(const char* fn, const torch::Tensor& logits, const torch::Tensor& targets,
                      const torch::Tensor& mask, const RateOptions& options) {
  options.validate();
  check_scores(fn, "logits", logits, 2);
  const int64_t n = logits.size(0), k = logits.size(1);
  TORCH_CHECK(k >= 2, "rates::", fn, ": logits must have >= 2 classes (columns), got ", k);
  TORCH_CHECK(targets.defined(), "rates::", fn, ": targets is undefined");
  check_entries(fn, "targets", targets, n, "logits");
  TORCH_CHECK(targets.scalar_type() == torch::kLong, "rates::", fn,
              ": targets must be int64 class indices, got ", targets.scalar_type());
  check_mask(fn, mask, n, "logits");
  if (n > 0) {
    const int64_t lo = targets.min().item<int64_t>(), hi = targets.max().item<int64_t>();
    TORCH_CHECK(lo >= 0 && hi < k, "rates::", fn, ": targets must be in [0, ", k, "), got ",
                lo < 0 ? lo : hi);
  }
  Multiclass m;
  const torch::Tensor rows = mask.defined() ? mask.nonzero().select(1, 0) : torch::Tensor();
  m.logits = rows.defined() ? logits.index_select(0, rows) : logits;
  const torch::Tensor y = rows.defined() ? targets.index_select(0, rows) : targets;
  const auto dtype = logits.scalar_type();
  m.target_onehot = torch::one_hot(y, k).to(dtype);
  m.predicted_onehot = torch::one_hot(m.logits.detach().argmax(1), k).to(dtype);
  return m;
}

// The surrogates s_ik of "predicted k", [M, K], of the margins z_ik = logit_ik - max_{j != k}
// logit_ij: the largest other logit is the row's second largest for its arg max column and the
// row's largest for every other column.
torch::Tensor class_surrogates(const torch::Tensor& logits, const RateOptions& options) {
  const auto top = logits.topk(2, 1);
  const torch::Tensor first = std::get<0>(top).narrow(1, 0, 1);   // [M, 1]
  const torch::Tensor second = std::get<0>(top).narrow(1, 1, 1);  // [M, 1]
  const torch::Tensor top_index = std::get<1>(top).narrow(1, 0, 1);
  const torch::Tensor columns = torch::arange(logits.size(1), top_index.options()).unsqueeze(0);
  const torch::Tensor other = torch::where(columns == top_index, second, first);
  return indicator_surrogate(logits - other, options);
}

}  // namespace

Rate recall(const torch::Tensor& logits, const torch::Tensor& targets, const torch::Tensor& mask,
            const RateOptions& options) {
  const Multiclass m = multiclass("recall", logits, targets, mask, options);
  Rate rate;
  rate.hits = (m.target_onehot * m.predicted_onehot).sum(0);
  rate.total = m.target_onehot.sum(0);
  // sum over the examples of class k of s_{i, y_i}, over their number.
  rate.surrogate =
      safe_ratio((m.target_onehot * class_surrogates(m.logits, options)).sum(0), rate.total);
  return rate;
}

Rate precision(const torch::Tensor& logits, const torch::Tensor& targets, const torch::Tensor& mask,
               const RateOptions& options) {
  const Multiclass m = multiclass("precision", logits, targets, mask, options);
  Rate rate;
  rate.hits = (m.target_onehot * m.predicted_onehot).sum(0);
  rate.total = m.predicted_onehot.sum(0);
  // sum_i [y_i = k] s_ik / sum_i s_ik; 0 where no example is predicted k (total == 0), and
  // where the surrogate sum vanishes (hinge margins all <= -tau), without NaN.
  const torch::Tensor s = class_surrogates(m.logits, options);
  const torch::Tensor ratio = safe_ratio((m.target_onehot * s).sum(0), s.sum(0));
  rate.surrogate = torch::where(rate.total > 0, ratio, torch::zeros_like(ratio));
  return rate;
}

Rate mean(const torch::Tensor& values, double lower, double upper, const torch::Tensor& mask) {
  TORCH_CHECK(std::isfinite(lower) && std::isfinite(upper) && lower < upper,
              "rates::mean: the range must be finite with lower < upper, got [", lower, ", ", upper,
              "]");
  check_scores("mean", "values", values, 1);
  check_mask("mean", mask, values.size(0), "values");
  const torch::Tensor v = mask.defined() ? values.masked_select(mask) : values;
  if (v.numel() > 0) {
    const torch::Tensor d = v.detach();
    const torch::Tensor outside = ((d < lower) | (d > upper) | d.isnan()).nonzero();
    TORCH_CHECK(
        outside.numel() == 0, "rates::mean: values must lie in [lower, upper] = [", lower, ", ",
        upper, "], got ", outside.numel() == 0 ? 0.0 : d[outside[0][0]].item<double>(), " (entry ",
        outside.numel() == 0 ? 0 : outside[0][0].item<int64_t>(), " of the selected values)");
  }
  Rate rate;
  rate.counts = false;
  rate.lower = lower;
  rate.upper = upper;
  rate.hits = v.detach().sum();
  rate.squares = v.detach().square().sum();
  rate.total = torch::full({}, static_cast<double>(v.numel()), values.options());
  rate.surrogate = safe_ratio(v.sum(), rate.total);
  return rate;
}

RunningRate::RunningRate(double decay) : decay_(decay) {
  TORCH_CHECK(decay > 0 && decay <= 1, "rates::RunningRate: decay must be in (0, 1], got ", decay);
}

namespace {

// Checks that `batch` is a complete rate of the same shape and kind as `current` (if any).
void check_running(const Rate& batch, const Rate& current) {
  TORCH_CHECK(batch.surrogate.defined() && batch.hits.defined() && batch.total.defined(),
              "rates::RunningRate::update: the batch's rate needs surrogate, hits and total");
  TORCH_CHECK(batch.hits.dim() <= 1 && batch.total.sizes() == batch.hits.sizes() &&
                  batch.surrogate.sizes() == batch.hits.sizes(),
              "rates::RunningRate::update: the batch's hits ", batch.hits.sizes(), ", total ",
              batch.total.sizes(), " and surrogate ", batch.surrogate.sizes(),
              " must have one shape, 0-d or [K]");
  TORCH_CHECK(batch.counts || batch.squares.defined(),
              "rates::RunningRate::update: a bounded mean (counts = false) needs squares");
  if (!current.hits.defined()) return;
  TORCH_CHECK(batch.hits.sizes() == current.hits.sizes(),
              "rates::RunningRate::update: the batch's rate has shape ", batch.hits.sizes(),
              ", the earlier batches' ", current.hits.sizes());
  TORCH_CHECK(batch.counts == current.counts && batch.lower == current.lower &&
                  batch.upper == current.upper,
              "rates::RunningRate::update: the batch's rate is ",
              batch.counts ? "a 0-1 rate" : "a bounded mean", " on [", batch.lower, ", ",
              batch.upper, "], the earlier batches' ",
              current.counts ? "a 0-1 rate" : "a bounded mean", " on [", current.lower, ", ",
              current.upper, "]");
}

// decay * previous + next (or next, when there is no previous).
torch::Tensor decayed(const torch::Tensor& previous, double decay, const torch::Tensor& next) {
  return previous.defined() ? previous * decay + next : next.clone();
}

}  // namespace

Rate RunningRate::update(const Rate& batch) {
  check_running(batch, current_);
  const torch::Tensor hits = batch.hits.detach(), total = batch.total.detach();
  const torch::Tensor surrogate = batch.surrogate.detach();
  current_.counts = batch.counts;
  current_.lower = batch.lower;
  current_.upper = batch.upper;
  current_.hits = decayed(current_.hits, decay_, hits);
  current_.total = decayed(current_.total, decay_, total);
  if (!batch.counts) current_.squares = decayed(current_.squares, decay_, batch.squares.detach());
  surrogate_sum_ = decayed(surrogate_sum_, decay_, surrogate * total);
  current_.surrogate = safe_ratio(surrogate_sum_, current_.total);
  // The value of the running surrogate with the gradient of this batch's surrogate, none where
  // the batch has no example.
  const torch::Tensor step = batch.surrogate - surrogate;
  Rate out = current_;
  out.surrogate = current_.surrogate + torch::where(total > 0, step, torch::zeros_like(step));
  return out;
}

void RunningRate::reset() {
  current_ = Rate();
  surrogate_sum_ = torch::Tensor();
}

}  // namespace rates
}  // namespace feasible
