// The default optimizer's calibration (src/default_calibration.h).
#include "src/default_calibration.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "src/state_key.h"

namespace feasible {
namespace detail {

namespace {

using namespace torch::optim;

bool supported(const Optimizer& o) {
  return dynamic_cast<const SGD*>(&o) || dynamic_cast<const Adam*>(&o) ||
         dynamic_cast<const AdamW*>(&o) || dynamic_cast<const RMSprop*>(&o) ||
         dynamic_cast<const Adagrad*>(&o);
}

bool adaptive(const Optimizer* o) { return dynamic_cast<const SGD*>(o) == nullptr; }

// The root mean square of a set of tensors (0 when they are all undefined or empty).
double rms(const std::vector<torch::Tensor>& ts) {
  double sum = 0;
  int64_t n = 0;
  for (const auto& t : ts) {
    if (!t.defined()) continue;
    sum += t.detach().to(torch::kFloat64).square().sum().item<double>();
    n += t.numel();
  }
  return n > 0 ? std::sqrt(sum / static_cast<double>(n)) : 0.0;
}

// The second-moment tensor of an adaptive optimizer's parameter state (undefined when none).
torch::Tensor second_moment(const OptimizerParamState& s) {
  if (const auto* a = dynamic_cast<const AdamParamState*>(&s)) return a->exp_avg_sq();
  if (const auto* w = dynamic_cast<const AdamWParamState*>(&s)) return w->exp_avg_sq();
  if (const auto* r = dynamic_cast<const RMSpropParamState*>(&s)) return r->square_avg();
  if (const auto* g = dynamic_cast<const AdagradParamState*>(&s)) return g->sum();
  return torch::Tensor();
}

// The momentum of an optimizer's group: beta1 for Adam and AdamW, `momentum` for RMSprop and
// SGD, 0 for Adagrad. A step then answers a change of gradient over about 1 / (1 - momentum) steps,
// and the base multiplier's share is multiplied by 1 - momentum (beta's lag).
double momentum_of(const torch::optim::OptimizerOptions& o) {
  if (const auto* a = dynamic_cast<const AdamOptions*>(&o)) return std::get<0>(a->betas());
  if (const auto* w = dynamic_cast<const AdamWOptions*>(&o)) return std::get<0>(w->betas());
  if (const auto* r = dynamic_cast<const RMSpropOptions*>(&o)) return r->momentum();
  if (const auto* s = dynamic_cast<const SGDOptions*>(&o)) return s->momentum();
  return 0.0;
}

// How much a steady gradient's step exceeds one step's: 1 / (1 - momentum) for a momentum
// buffer that sums past gradients (SGD's, RMSprop's), 1 for Adam's and AdamW's first moment,
// an average (beta1 m + (1 - beta1) g) that moves lr * g / sqrt(v) per step once steady.
double amplification_of(const torch::optim::OptimizerOptions& o) {
  if (dynamic_cast<const AdamOptions*>(&o) || dynamic_cast<const AdamWOptions*>(&o)) return 1.0;
  return 1.0 / (1.0 - momentum_of(o));
}

}  // namespace

double primal_momentum(const std::vector<std::shared_ptr<Optimizer>>& primal) {
  double m = 0;
  for (const auto& opt : primal) {
    if (!opt) continue;
    for (const auto& group : opt->param_groups()) m = std::max(m, momentum_of(group.options()));
  }
  return m;
}

PrimalMetric::PrimalMetric(const std::vector<std::shared_ptr<Optimizer>>& primal) {
  for (size_t i = 0; i < primal.size(); ++i) {
    TORCH_CHECK(primal[i] && supported(*primal[i]), "make_default_optimizer: primal optimizer ", i,
                " is not one whose step per unit gradient the default knows; use "
                "torch::optim::SGD, Adam, AdamW, RMSprop or Adagrad");
    auto& groups = primal[i]->param_groups();
    for (size_t g = 0; g < groups.size(); ++g) {
      for (auto& p : groups[g].params()) {
        if (!p.requires_grad()) continue;
        params_.push_back({p, primal[i].get(), g});
        tensors_.push_back(p);
      }
    }
  }
  weight_.assign(params_.size(), 0.0);
}

c10::optional<double> PrimalMetric::second_moment_rms(Optimizer* optimizer) const {
  std::vector<torch::Tensor> moments;
  for (const auto& p : params_) {
    if (p.optimizer != optimizer) continue;
    auto it = optimizer->state().find(key_of(p.param));
    if (it != optimizer->state().end()) moments.push_back(second_moment(*it->second).sqrt());
  }
  const double r = rms(moments);
  return r > 0 ? c10::optional<double>(r) : c10::nullopt;
}

bool PrimalMetric::prepare(const torch::Tensor& loss) {
  std::vector<torch::Tensor> grads(params_.size());
  if (std::any_of(params_.begin(), params_.end(),
                  [](const PrimalParameter& p) { return adaptive(p.optimizer); }) &&
      loss.requires_grad()) {
    grads = torch::autograd::grad({loss}, tensors_, {}, /*retain_graph=*/true,
                                  /*create_graph=*/false, /*allow_unused=*/true);
  }
  loss_grads_ = grads;
  for (size_t k = 0; k < params_.size(); ++k) {
    const PrimalParameter& p = params_[k];
    const double lr = p.options().get_lr();
    if (!adaptive(p.optimizer)) {
      // A steady gradient g fills SGD's buffer to (1 - dampening) g / (1 - momentum).
      const auto& o = static_cast<const SGDOptions&>(p.options());
      weight_[k] = o.momentum() > 0 ? lr * (1.0 - o.dampening()) / (1.0 - o.momentum()) : lr;
      continue;
    }
    // The optimizer normalises each coordinate by its own gradient's size: the loss gradient's
    // rms over this tensor, else over the optimizer's tensors, else the second moments.
    double scale = rms({grads[k]});
    if (!(scale > 0)) {
      std::vector<torch::Tensor> own;
      for (size_t j = 0; j < params_.size(); ++j) {
        if (params_[j].optimizer == p.optimizer) own.push_back(grads[j]);
      }
      scale = rms(own);
    }
    if (!(scale > 0)) {
      const auto moments = second_moment_rms(p.optimizer);
      if (!moments) return false;
      scale = *moments;
    }
    weight_[k] = lr / scale * amplification_of(p.options());
  }
  return true;
}

bool PrimalMetric::exact() const {
  return std::none_of(params_.begin(), params_.end(),
                      [](const PrimalParameter& p) { return adaptive(p.optimizer); });
}

double PrimalMetric::squared_norm(const std::vector<torch::Tensor>& grads) const {
  double total = 0;
  for (size_t k = 0; k < params_.size(); ++k) {
    if (grads[k].defined()) total += weight_[k] * grads[k].square().sum().item<double>();
  }
  return total;
}

double PrimalMetric::loss_norm_on(const std::vector<torch::Tensor>& grads) const {
  double total = 0;
  for (size_t k = 0; k < params_.size() && k < loss_grads_.size(); ++k) {
    if (!grads[k].defined() || !loss_grads_[k].defined()) continue;
    total += weight_[k] * (loss_grads_[k].square() * (grads[k] != 0)).sum().item<double>();
  }
  return total;
}

bool CalibrationSchedule::due(int64_t t) {
  if (t < next_) {  // resumed from a checkpoint at an earlier iteration: start the sequence over
    next_ = 0;
    index_ = 0;
  }
  while (next_ < t) {
    next_ += next_ <= 8 ? 1 : std::min(std::max<int64_t>(1, next_ / 4), cap_);
    ++index_;
  }
  return next_ == t;
}

namespace {

// fraction / q, or 0 when q is not a positive finite number.
double penalty_for(double fraction, double q) {
  return std::isfinite(q) && q > 0 ? fraction / q : 0.0;
}

std::vector<torch::Tensor> gradient(const torch::Tensor& y, const PrimalMetric& metric) {
  return torch::autograd::grad({y}, metric.parameters(), {}, /*retain_graph=*/true,
                               /*create_graph=*/false, /*allow_unused=*/true);
}

}  // namespace

namespace {

// One constraint's new penalties: the multiplier tensor, its penalty per entry (or one shared),
// its interval, and where its directions start in the list of normals.
struct Setting {
  torch::Tensor param, penalty;
  std::pair<double, double> range;
  int64_t constraint = 0;
  size_t first = 0, count = 0;
  double balance = 0;  // the largest entry's ||grad f||_P / ||grad g||_P on g's coordinates
  bool visit = false;  // set by the per-visit rule (penalty and interval in units of u)
};

// The per-visit rule's penalty and interval for `s` (an indexed inequality constraint with
// violations `v`): u = ||grad f||_P / ||grad sum_i v_i||_P. `loss_norm` caches ||grad f||_P^2
// over the calls of one calibration (negative: not computed yet). When u is not a positive
// finite number (a loss or a sum without gradient here) the penalty is 0 and the interval the
// multiplier's own: the multipliers hold until a calibration measures u.
void set_visit(Setting& s, const torch::Tensor& v, const Evaluation& eval,
               const PrimalMetric& metric, const VisitRule& rule, double& loss_norm) {
  if (loss_norm < 0) {
    const bool has_gradient = eval.state.loss.defined() && eval.state.loss.requires_grad();
    loss_norm = has_gradient ? metric.squared_norm(gradient(eval.state.loss, metric)) : 0.0;
  }
  const double u = std::sqrt(loss_norm / metric.squared_norm(gradient(v.sum(), metric)));
  const bool measured = std::isfinite(u) && u > 0;
  s.penalty = torch::full({}, measured ? rule.step * u : 0.0, torch::kFloat64);
  if (measured) s.range.second = std::min(s.range.second, rule.cap * u);
  s.visit = true;
}

// The penalties c = fraction / ||grad g||_P^2 of every observed constraint, and the directions
// they act along (one per entry of a small dense constraint, else one random-sign sum).
std::vector<Setting> measure_penalties(const Evaluation& eval, const PrimalMetric& metric,
                                       double fraction, uint64_t seed, const VisitRule* visit,
                                       std::vector<PenaltyNormal>& normals) {
  std::vector<Setting> settings;
  double loss_norm = -1;
  for (const auto& item : eval.items) {
    const Constraint& c = item.constraint;
    if (!c.multiplier() || !item.state->contributes_to_primal() || !item.v.requires_grad()) {
      continue;
    }
    const torch::Tensor v = item.v.reshape({-1});
    Setting s{c.multiplier()->parameters()[0],
              {},
              c.multiplier()->bounds(),
              static_cast<int64_t>(c.index()),
              normals.size(),
              0};
    if (visit && visit_rule_applies(item)) {
      // no direction: the rule's steps are bounded by its cap, not by the curvature measure
      set_visit(s, v, eval, metric, *visit, loss_norm);
    } else if (!item.idx.defined() && v.numel() <= 32) {
      std::vector<double> c_per_entry(v.numel());
      for (int64_t j = 0; j < v.numel(); ++j) {
        auto g = gradient(v[j], metric);
        const double q = metric.squared_norm(g);
        c_per_entry[j] = penalty_for(fraction, q);
        if (q > 0) s.balance = std::max(s.balance, std::sqrt(metric.loss_norm_on(g) / q));
        normals.push_back({std::move(g), c_per_entry[j]});
      }
      s.penalty = torch::tensor(c_per_entry, torch::kFloat64);
    } else {
      auto gen = at::make_generator<at::CPUGeneratorImpl>(seed + c.index());
      const torch::Tensor signs =
          torch::randint(0, 2, {v.numel()}, gen, torch::TensorOptions().dtype(v.dtype())) * 2 - 1;
      auto g = gradient((v * signs.to(v.device())).sum(), metric);
      const double shared = penalty_for(fraction, metric.squared_norm(g));
      s.penalty = torch::full({}, shared, torch::kFloat64);
      normals.push_back({std::move(g), shared});
    }
    s.count = normals.size() - s.first;
    settings.push_back(std::move(s));
  }
  return settings;
}

// The stability factor and each constraint's shares (by position in `settings`); factor 1 and
// no shares when the closure has no double backward (the plain rule).
double measure_curvature(const Evaluation& eval, const PrimalMetric& metric,
                         const std::vector<PenaltyNormal>& normals,
                         const std::vector<Setting>& settings, CurvatureOptions& options,
                         std::vector<torch::Tensor>& shares) {
  const double m = options.momentum, limit = 2 * (1 + m) / (1 - m);
  std::vector<double> curvature;
  double factor = 1;
  try {
    factor = stability_factor(eval, metric, normals, limit, &curvature);
  } catch (const c10::Error& e) {  // no double backward through the closure: the plain rule
    if (!options.warned) {
      options.warned = true;
      std::string what = e.what_without_backtrace();
      what = what.substr(0, what.find('\n'));
      TORCH_WARN("make_default_optimizer: the closure's operations have no double backward (", what,
                 "); the default's curvature rule (stability factor and integral gain, "
                 "docs/defaults.md) is off and its calibrations use the plain penalty rule");
    }
    return 1;
  }
  const double p = factor * options.fraction;
  for (size_t k = 0; k < settings.size(); ++k) {
    const Setting& s = settings[k];
    std::vector<double> share(s.count);
    for (size_t j = 0; j < s.count; ++j) {
      // The curvature the step can follow: beyond 90% of the limit the step itself is near
      // unstable and a larger gain would feed the multiplier's own curvature back into it.
      const double stiffness = std::min(std::max(curvature[s.first + j], 0.0) + p, 0.9 * limit);
      const double q = std::max(options.beta * options.fraction,
                                (1 - m) * stiffness * stiffness / 4);  // critical damping
      share[j] = q / p;
    }
    shares[k] = torch::tensor(share, torch::kFloat64);
    if (s.count == 1) shares[k] = shares[k].reshape({});
  }
  return factor;
}

// The multipliers' interval: their own bounds, within +-cap * balance when the cap applies (an
// adaptive metric and a measured balance).
std::pair<double, double> capped_range(const Setting& s, const PrimalMetric& metric, double cap) {
  auto range = s.range;
  if (metric.exact() || !(cap > 0) || !(s.balance > 0) || !std::isfinite(s.balance)) return range;
  range.first = std::max(range.first, -cap * s.balance);
  range.second = std::min(range.second, cap * s.balance);
  return range;
}

}  // namespace

bool visit_rule_applies(const Evaluation::Item& item) {
  return item.idx.defined() && item.constraint.kind() == ConstraintKind::kInequality;
}

void visit_directions(const Evaluation& eval) {
  torch::NoGradGuard no_grad;
  for (const auto& item : eval.items) {
    const Constraint& c = item.constraint;
    if (!c.multiplier() || !item.state->contributes_to_dual() || !item.sidx.defined() ||
        item.sidx.numel() == 0 || !visit_rule_applies(item)) {
      continue;
    }
    torch::Tensor grad = c.multiplier()->parameters()[0].mutable_grad();
    if (!grad.defined() || grad.is_sparse()) continue;
    const torch::Tensor s = item.s.reshape({-1});
    const torch::Tensor finite = torch::isfinite(s);
    const torch::Tensor positive = s.gt(0).logical_and(finite);
    // The median of the positive violations (NaN when there are none: then none goes up),
    // without a host synchronization.
    const torch::Tensor median = s.masked_fill(positive.logical_not(), NAN).nanmedian();
    const torch::Tensor up = positive.logical_and(s.le(median));
    const torch::Tensor idx = item.sidx.reshape({-1}).to(grad.device());
    // the gradient is the negated ascent direction; where an index repeats, up wins
    grad.index_fill_(0, idx.masked_select(finite.logical_and(up.logical_not()).to(idx.device())),
                     1.0);
    grad.index_fill_(0, idx.masked_select(up.to(idx.device())), -1.0);
  }
}

bool calibrate_penalties(const Evaluation& eval, PrimalMetric& metric, optim::AugmentedDual& dual,
                         double fraction, uint64_t seed, CurvatureOptions* curvature, bool measure,
                         double balance_cap, const VisitRule* visit) {
  if (metric.parameters().empty()) return false;
  if (!metric.prepare(eval.state.loss)) {
    metric.release();
    return false;
  }
  std::vector<PenaltyNormal> normals;
  const std::vector<Setting> settings =
      measure_penalties(eval, metric, fraction, seed, visit, normals);
  const bool stable = curvature && metric.exact() && !normals.empty();
  std::vector<torch::Tensor> shares(settings.size());
  double measured = 1;
  if (stable && measure) {
    measured = measure_curvature(eval, metric, normals, settings, *curvature, shares);
  }
  for (size_t k = 0; k < settings.size(); ++k) {
    const Setting& s = settings[k];
    if (s.visit) {
      dual.set_penalty(s.param, s.penalty, s.range.first, s.range.second,
                       torch::ones({}, torch::kFloat64));
      continue;
    }
    double factor = measured;
    const auto* st = dual.state_of(s.param);
    if (stable && !measure && st) {  // reuse what the last measurement left in the state
      factor = st->factor();
      shares[k] = st->share();
    }
    const auto range = capped_range(s, metric, balance_cap);
    dual.set_penalty(s.param, s.penalty * factor, range.first, range.second, shares[k], factor);
  }
  metric.release();
  return true;
}

}  // namespace detail
}  // namespace feasible
