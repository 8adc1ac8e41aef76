#pragma once
/// \file rates.h
/// Requirements on rates: the positive-prediction rate of a group, a true-positive rate, the
/// recall of every class, and differences and ratios between groups.
///
/// A rate of 0-1 decisions has no useful gradient, so each rate is computed twice: as the 0-1
/// rate (hits / total), which the dual update, the penalty updater and the audit read, and as a
/// differentiable surrogate, which the primal update reads. A Requirement turns rates into a
/// ConstraintState with the surrogate as `violation` and the 0-1 rate as `strict_violation`:
/// the proxy-constraint technique of Cotter, Jiang, Gupta, Wang, Narayan, You, Sridharan,
/// "Optimization with Non-Differentiable Constraints with Applications to Fairness, Recall,
/// Churn, and Other Goals", JMLR 20(172), 2019 (Cotter et al. 2019b).
///
///   auto dp = problem.add_constraint("parity", ConstraintOptions().size(2));
///   ...in the closure:
///   auto a = rates::positive_rate(scores, group == 0);
///   auto b = rates::positive_rate(scores, group == 1);
///   state.observe(dp, rates::within(a, b, 0.05).state());   // |a - b| <= 0.05
///
/// Decisions: an example is predicted positive when its score is > RateOptions::threshold
/// (scores are logits by default); a multiclass prediction is the arg max of the logits.

#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "feasible/problem.h"

namespace feasible {
namespace rates {

/// The differentiable stand-in for the indicator 1[z > 0] of a decision with margin z.
enum class Surrogate {
  kSigmoid,  ///< sigmoid(z / temperature) (default): smooth, in (0, 1).
  kHinge,    ///< max(0, 1 + z / temperature): an upper bound of the indicator (Cotter et al.
             ///< 2019b, section 4), so a rate's hinge surrogate is >= its 0-1 rate.
};

/// How scores become decisions and surrogates. Validated by every rate function.
struct RateOptions {
  /// Throws c10::Error ("RateOptions.<field> must <rule>, got <value>") when a field is out of
  /// range. Declared before the fields: TORCH_ARG leaves what follows it private.
  void validate() const;
  /// The surrogate of the indicator. Default Surrogate::kSigmoid.
  TORCH_ARG(Surrogate, surrogate) = Surrogate::kSigmoid;
  /// Scale tau of the surrogate's argument z / tau; > 0 and finite. Default 1.
  TORCH_ARG(double, temperature) = 1.0;
  /// Binary rates: an example is predicted positive when score > threshold; finite. Default 0
  /// (scores are logits). Multiclass rates ignore it (the prediction is the arg max).
  TORCH_ARG(double, threshold) = 0.0;
};

/// A rate over a subset of examples, hits / total, or the mean of bounded values. Tensors are
/// 0-d (one rate) or [K] (one per class). A rate of a batch comes from the functions below; a
/// running rate over many batches from RunningRate.
struct Rate {
  /// The differentiable surrogate rate (read by the primal update); 0 where total == 0.
  torch::Tensor surrogate;
  /// The numerator: the number of examples counted (0-1 rates), or the sum of the values
  /// (bounded means). Floating point, detached.
  torch::Tensor hits;
  /// The denominator: the number of examples in the subset. Floating point, detached.
  torch::Tensor total;
  /// Bounded means only: the sum of the squared values (for the empirical Bernstein bound);
  /// undefined for 0-1 rates, whose values are their own squares.
  torch::Tensor squares;
  /// Whether the values are 0-1 decisions (true: the audit uses the exact Clopper–Pearson
  /// bound) or bounded values in [lower, upper] (false: Hoeffding or empirical Bernstein).
  bool counts = true;
  /// The range of the values; [0, 1] for 0-1 rates.
  double lower = 0.0;
  /// The range of the values; [0, 1] for 0-1 rates.
  double upper = 1.0;

  /// The 0-1 rate (or mean) hits / total, detached; NaN where total == 0.
  torch::Tensor value() const;
};

/// The share of the examples in `mask` predicted positive, P(score > t | mask).
/// \param scores  [N] floating point (logits by default), differentiable.
/// \param mask    optional [N] bool: the subset (a group); undefined = every example.
Rate positive_rate(const torch::Tensor& scores, const torch::Tensor& mask = {},
                   const RateOptions& options = RateOptions());
/// The share predicted negative, P(score <= t | mask) = 1 - positive_rate.
Rate negative_rate(const torch::Tensor& scores, const torch::Tensor& mask = {},
                   const RateOptions& options = RateOptions());
/// P(predicted positive | label 1, mask). \param labels  [N] bool or 0/1 integers or floats.
Rate true_positive_rate(const torch::Tensor& scores, const torch::Tensor& labels,
                        const torch::Tensor& mask = {}, const RateOptions& options = RateOptions());
/// P(predicted positive | label 0, mask).
Rate false_positive_rate(const torch::Tensor& scores, const torch::Tensor& labels,
                         const torch::Tensor& mask = {},
                         const RateOptions& options = RateOptions());
/// P(predicted negative | label 0, mask).
Rate true_negative_rate(const torch::Tensor& scores, const torch::Tensor& labels,
                        const torch::Tensor& mask = {}, const RateOptions& options = RateOptions());
/// P(predicted negative | label 1, mask).
Rate false_negative_rate(const torch::Tensor& scores, const torch::Tensor& labels,
                         const torch::Tensor& mask = {},
                         const RateOptions& options = RateOptions());
/// P(predicted label != label | mask), binary.
Rate error_rate(const torch::Tensor& scores, const torch::Tensor& labels,
                const torch::Tensor& mask = {}, const RateOptions& options = RateOptions());

/// Per-class recall, [K]: P(arg max = k | target k, mask). The surrogate of "predicted k" is the
/// surrogate of the margin z = logit_k - max_{j != k} logit_j.
/// \param logits   [N, K] floating point, differentiable.  \param targets  [N] int64 in [0, K).
Rate recall(const torch::Tensor& logits, const torch::Tensor& targets,
            const torch::Tensor& mask = {}, const RateOptions& options = RateOptions());
/// Per-class precision, [K]: P(target k | arg max = k, mask). Its denominator (the number
/// predicted k) depends on the model, so the surrogate is a ratio of surrogate sums.
Rate precision(const torch::Tensor& logits, const torch::Tensor& targets,
               const torch::Tensor& mask = {}, const RateOptions& options = RateOptions());

/// The mean of per-example values known to lie in [lower, upper] (e.g. a clipped loss), over
/// `mask`: a bounded mean, audited with Hoeffding or empirical Bernstein bounds. The surrogate
/// is the mean itself (differentiable). Values outside the range are refused.
Rate mean(const torch::Tensor& values, double lower, double upper, const torch::Tensor& mask = {});

/// A running estimate across minibatches, for subsets too small in one batch (TFCO's
/// approach; Cotter et al. 2019b, section 6): the numerator and the denominator are decayed sums,
///   H_t = decay * H_{t-1} + hits_t,   T_t = decay * T_{t-1} + total_t,
/// and the returned rate's value is H_t / T_t. Its surrogate has the value of the running
/// surrogate (the same decayed sums of surrogate * total) and the gradient of this batch's
/// surrogate (zero when the batch has no example of the subset). decay = 1 gives the pooled
/// rate since the last reset(), e.g. over an epoch.
class RunningRate {
 public:
  /// \param decay  in (0, 1]. Default 0.99 (about 100 batches of memory).
  explicit RunningRate(double decay = 0.99);
  /// Folds in one batch's rate (the same shape and kind every time) and returns the running rate.
  Rate update(const Rate& batch);
  /// Forgets every batch.
  void reset();
  /// The running rate (undefined tensors before the first update); its surrogate is the running
  /// surrogate's value, detached (update() returns it with the batch's gradient).
  const Rate& current() const { return current_; }

 private:
  double decay_;
  Rate current_;
  torch::Tensor surrogate_sum_;
};

/// One term coefficient * rate of a requirement.
struct Term {
  /// The rate (0-d or [K]; every term of a part has the same shape).
  Rate rate;
  /// Its coefficient.
  double coefficient = 1.0;
};

/// A linear requirement on rates, as one or more parts; each part is the entry-wise quantity
///   e = sum_i coefficient_i * rate_i + offset <= 0,
/// and the requirement's entries are the parts' entries, concatenated in order.
struct Part {
  /// The terms (>= 1).
  std::vector<Term> terms;
  /// The constant, e.g. -eps for rate <= eps.
  double offset = 0.0;
};

/// A stated requirement on rates: what a constraint of a Problem observes, and what the audit
/// bounds. Made by at_most, at_least, difference_at_most, within and ratio_at_least.
class Requirement {
 public:
  /// \param parts  the parts (>= 1).
  explicit Requirement(std::vector<Part> parts);
  /// The ConstraintState: violation = the parts' surrogate values, strict_violation = their 0-1
  /// values, concatenated ([size()]). Throws (naming the part and entry) when a rate has no
  /// example (total == 0): its 0-1 value is undefined; use RunningRate or larger batches.
  ConstraintState state() const;
  /// The number of scalar constraints (the size to register the constraint with).
  int64_t size() const;
  /// The same requirement with every offset raised by `margin` >= 0 (rate <= eps - margin).
  Requirement tightened(double margin) const;
  /// The parts.
  const std::vector<Part>& parts() const { return parts_; }

 private:
  std::vector<Part> parts_;
};

/// rate <= eps (entry-wise for [K] rates).
Requirement at_most(const Rate& rate, double eps);
/// rate >= eps, i.e. eps - rate <= 0.
Requirement at_least(const Rate& rate, double eps);
/// a - b <= eps.
Requirement difference_at_most(const Rate& a, const Rate& b, double eps);
/// |a - b| <= eps as one requirement of twice the size: first a - b <= eps, then b - a <= eps
/// (each side has its own multiplier).
Requirement within(const Rate& a, const Rate& b, double eps);
/// a >= ratio * b (e.g. the "80% rule" with ratio 0.8), i.e. ratio * b - a <= 0.
Requirement ratio_at_least(const Rate& a, const Rate& b, double ratio);

/// The one-sided Hoeffding radius sqrt(log(1/delta) / (2 n)) of a mean of n values in [0, 1]
/// (W. Hoeffding, JASA 58(301), 1963): for one fixed model, a rate measured as <= eps - margin
/// on n fresh examples is <= eps in the population with probability at least 1 - delta.
/// n >= 1, delta in (0, 1).
double hoeffding_margin(int64_t n, double delta);

}  // namespace rates
}  // namespace feasible
