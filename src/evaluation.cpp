// The step engine's checks: validation of what the closure returned (shapes, dtypes, indices,
// ownership) and the non-finite checks of the loss, violations, gradients and multipliers.
#include <algorithm>
#include <cstring>
#include <sstream>

#include "src/step_engine.h"
#include "src/tensor_util.h"

namespace feasible {
namespace detail {
namespace {

std::string shape_of(const torch::Tensor& t) {
  std::ostringstream os;
  os << t.sizes();
  return os.str();
}

// Whether n IEEE-754 values are all finite: a value is NaN or Inf exactly when all its exponent
// bits are set. The test is an integer OR-reduction over blocks, which the compiler vectorizes
// (no tensor operation, no dispatch, no allocation), with an early exit between blocks.
template <typename Bits, Bits kExponent, typename T>
inline bool finite_bits(const T* p, int64_t n) {
  static_assert(sizeof(Bits) == sizeof(T), "bit pattern of the wrong width");
  constexpr int64_t kBlock = 4096;
  for (int64_t start = 0; start < n; start += kBlock) {
    const int64_t end = std::min(n, start + kBlock);
    Bits bad = 0;
    for (int64_t i = start; i < end; ++i) {
      Bits b;
      std::memcpy(&b, p + i, sizeof(Bits));
      bad |= static_cast<Bits>((b & kExponent) == kExponent);
    }
    if (bad != 0) return false;
  }
  return true;
}

// The scan runs on every gradient entry of every step (about 0.8% of an MLP step's time with
// SSE2 alone), so with GCC on x86-64 Linux it is compiled for AVX-512, AVX2 and the baseline,
// and the loader picks the version the CPU supports (an ifunc). Measured on 1 MB of float32
// gradients (the 784-300-100-10 MLP), one core of an AMD EPYC: 33 us baseline, 16 us AVX2,
// 10 us AVX-512.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) && \
    defined(__GLIBC__)
#define FEASIBLE_SCAN_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define FEASIBLE_SCAN_CLONES
#endif

FEASIBLE_SCAN_CLONES bool finite_floats(const float* p, int64_t n) {
  return finite_bits<uint32_t, 0x7f800000u>(p, n);
}

FEASIBLE_SCAN_CLONES bool finite_doubles(const double* p, int64_t n) {
  return finite_bits<uint64_t, 0x7ff0000000000000ull>(p, n);
}

// Whether every entry of a CPU tensor is finite (read-only host scan).
bool all_finite_cpu(const torch::Tensor& t) {
  const torch::Tensor c = t.contiguous();
  const int64_t n = c.numel();
  if (n == 0) return true;
  switch (c.scalar_type()) {
    case torch::kFloat:
      return finite_floats(c.data_ptr<float>(), n);
    case torch::kDouble:
      return finite_doubles(c.data_ptr<double>(), n);
    case torch::kHalf:
    case torch::kBFloat16: {
      bool ok = true;
      AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, c.scalar_type(), "finite", [&] {
        const scalar_t* p = c.data_ptr<scalar_t>();
        for (int64_t i = 0; i < n && ok; ++i) ok = std::isfinite(static_cast<double>(p[i]));
      });
      return ok;
    }
    default:
      return !c.is_floating_point() && !c.is_complex() ? true
                                                       : torch::isfinite(c).all().item<bool>();
  }
}

// The smallest and largest index (host loop on the CPU, one reduction elsewhere).
std::pair<int64_t, int64_t> index_range(const torch::Tensor& idx) {
  if (!idx.device().is_cpu()) {
    auto mm = torch::aminmax(idx);
    auto both = torch::stack({std::get<0>(mm), std::get<1>(mm)}).cpu();
    return {both[0].item<int64_t>(), both[1].item<int64_t>()};
  }
  const torch::Tensor c = idx.contiguous();
  const int64_t* p = c.data_ptr<int64_t>();
  int64_t lo = p[0], hi = p[0];
  for (int64_t i = 1, n = c.numel(); i < n; ++i) {
    lo = std::min(lo, p[i]);
    hi = std::max(hi, p[i]);
  }
  return {lo, hi};
}

// Precision rank of a floating dtype: a multiplier must rank at least as high as the strict
// violations it integrates.
int precision_rank(torch::ScalarType t) {
  switch (t) {
    case torch::kDouble:
      return 3;
    case torch::kFloat:
      return 2;
    default:
      return 1;  // half, bfloat16
  }
}

// Checks that a dense violation has shape [size] (or is 0-d for size 1), or explains.
void check_dense_shape(const torch::Tensor& t, const Constraint& c, const char* field) {
  const bool ok = (t.dim() == 1 && t.size(0) == c.size()) || (t.dim() == 0 && c.size() == 1);
  TORCH_CHECK(ok, "constraint '", c.name(), "': ", field, " has shape ", shape_of(t),
              ", expected [", c.size(), "] (the constraint's size)");
}

// Brings a detached dense violation to shape [size], or explains the mismatch.
torch::Tensor dense_shape(const torch::Tensor& t, const Constraint& c, const char* field) {
  check_dense_shape(t, c, field);
  return t.dim() == 1 ? t : one_element_view(t, {c.size()});
}

// Refuses an observation that would make the step silently wrong: a violation that cannot move
// the primal parameters (`grad_expected`: autograd is on and a primal parameter requires a
// gradient), and a dense or indexed multiplier less precise than the strict violation it reads.
void check_usable(const Constraint& c, const ConstraintState& cs, const torch::Tensor& s,
                  bool grad_expected, c10::optional<torch::ScalarType> multiplier_dtype) {
  TORCH_CHECK(!grad_expected || !cs.contributes_to_primal() || cs.violation().requires_grad(),
              "constraint '", c.name(),
              "': the violation does not require a gradient, so it cannot move the primal "
              "parameters while its multiplier keeps growing. Put a non-differentiable quantity "
              "(e.g. a 0-1 rate) in ConstraintState::strict_violation and a differentiable "
              "surrogate in violation (proxy constraints), or set contributes_to_primal(false) "
              "to update only the multiplier from this observation");
  if (!multiplier_dtype || !cs.contributes_to_dual()) return;
  TORCH_CHECK(precision_rank(*multiplier_dtype) >= precision_rank(s.scalar_type()), "constraint '",
              c.name(), "': the strict violation is ", s.scalar_type(), " but the multiplier is ",
              *multiplier_dtype,
              ", which would lose precision in every dual step; register the constraint with "
              "ConstraintOptions().dtype(",
              s.scalar_type() == torch::kDouble ? "torch::kFloat64" : "torch::kFloat32",
              ") (the default is torch's default dtype when the constraint is registered)");
}

bool is_indexed(const Constraint& c) {
  return c.options().multiplier() == MultiplierKind::kIndexed;
}

void check_loss(const torch::Tensor& loss) {
  TORCH_CHECK(loss.defined(), "ConstrainedOptimizer::step: the closure returned no loss");
  TORCH_CHECK(loss.is_floating_point(),
              "ConstrainedOptimizer::step: the loss must be a floating-point tensor, got dtype ",
              loss.scalar_type());
  TORCH_CHECK(loss.numel() == 1,
              "ConstrainedOptimizer::step: the loss must be a scalar (one element), got shape ",
              shape_of(loss));
}

}  // namespace

int64_t first_non_finite(const std::vector<torch::Tensor>& tensors) {
  // CPU tensors are scanned on the host; the others are reduced on their device and read back
  // together, with one synchronization when they share a device (the slow search for the
  // culprit runs only on failure).
  torch::NoGradGuard no_grad;  // the tensors may require a gradient: no detach needed
  int64_t first = -1;
  std::vector<torch::Tensor> flags;
  std::vector<int64_t> where;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const torch::Tensor& t = tensors[i];
    if (t.device().is_cpu()) {
      if (!all_finite_cpu(t)) {
        first = static_cast<int64_t>(i);
        break;
      }
    } else {
      flags.push_back(torch::isfinite(t).all());
      where.push_back(static_cast<int64_t>(i));
    }
  }
  if (flags.empty()) return first;
  bool same_device = true;
  for (const auto& f : flags) same_device = same_device && f.device() == flags[0].device();
  if (same_device && torch::stack(flags).all().item<bool>()) return first;
  for (size_t k = 0; k < flags.size(); ++k) {
    if (first >= 0 && where[k] > first) break;
    if (!flags[k].item<bool>()) return where[k];
  }
  return first;
}

torch::Tensor checked_indices(const torch::Tensor& given, const Constraint& c, const char* field) {
  const auto type = given.scalar_type();
  TORCH_CHECK(c10::isIntegralType(type, /*includeBool=*/false), "constraint '", c.name(),
              "': ", field,
              " must be an integer tensor (int64; int32 and other integer types are "
              "converted), got dtype ",
              type);
  const torch::Tensor idx = type == torch::kLong ? given : given.to(torch::kLong);
  TORCH_CHECK(idx.dim() == 1, "constraint '", c.name(), "': ", field, " must be 1-D, got shape ",
              shape_of(idx));
  if (idx.numel() > 0) {
    const auto range = index_range(idx);
    TORCH_CHECK(range.first >= 0 && range.second < c.size(), "constraint '", c.name(), "': ", field,
                " must lie in [0, ", c.size(), "), got values in [", range.first, ", ",
                range.second, "]");
  }
  return idx;
}

// The strict violation defaults to the violation itself; it is copied only when it shares
// storage with a parameter that the step changes in place (e.g. a violation that is a view of
// x), so that the dual step and the penalty updater read the values at x_t.
torch::Tensor StepEngine::detached_copy_if_alias(const torch::Tensor& v) const {
  torch::Tensor d = detached(v);
  if (d.has_storage() && parameter_storages_.count(d.storage().unsafeGetStorageImpl())) {
    return d.clone();
  }
  return d;
}

bool StepEngine::evaluate(const Closure& closure, Evaluation& eval, StepResult& result, Stage stage,
                          Taken taken) {
  read_evaluation(closure, eval, result, stage);
  return check_evaluation(eval, result, stage, taken);
}

void StepEngine::read_evaluation(const Closure& closure, Evaluation& eval, StepResult& result,
                                 Stage stage) {
  TORCH_CHECK(problem_.constraints().size() == constraint_count_,
              "ConstrainedOptimizer::step: constraints were added to the problem after the "
              "optimizer was built (",
              constraint_count_, " then, ", problem_.constraints().size(),
              " now); build the dual optimizer and the constrained optimizer after registering "
              "every constraint");
  eval.state = closure();
  check_loss(eval.state.loss);
  eval.items.clear();
  eval.items.reserve(eval.state.observed.size());
  const bool grad_expected = primal_requires_grad_ && at::GradMode::is_enabled();
  for (const auto& entry : eval.state.observed) {
    const Constraint& c = entry.first;
    TORCH_CHECK(c.defined(), "ConstrainedOptimizer::step: an observed constraint handle is empty");
    TORCH_CHECK(c.problem_id() == problem_.id(), "ConstrainedOptimizer::step: constraint '",
                c.name(), "' belongs to another problem");
    Evaluation::Item item;
    item.constraint = c;
    item.state = &entry.second;
    validate_item(item, grad_expected);
    eval.items.push_back(std::move(item));
  }
  std::sort(eval.items.begin(), eval.items.end(), [](const auto& a, const auto& b) {
    return a.constraint.index() < b.constraint.index();
  });
  if (stage == Stage::kFirst || stage == Stage::kValidation) warn_unobserved(eval, stage);
  result.metrics = std::move(eval.state.metrics);
}

void StepEngine::validate_item(Evaluation::Item& item, bool grad_expected) {
  const Constraint& c = item.constraint;
  const ConstraintState& cs = *item.state;
  const auto& v = cs.violation();
  TORCH_CHECK(v.defined(), "constraint '", c.name(), "': the violation is undefined");
  TORCH_CHECK(v.is_floating_point(), "constraint '", c.name(),
              "': the violation must be a floating-point tensor, got dtype ", v.scalar_type());
  const auto& s_in = cs.strict_violation();
  TORCH_CHECK(!s_in.defined() || s_in.is_floating_point(), "constraint '", c.name(),
              "': the strict violation must be a floating-point tensor, got dtype ",
              s_in.defined() ? s_in.scalar_type() : torch::kFloat);
  item.v = v;
  item.strict_is_copy = !s_in.defined();
  if (is_indexed(c)) {
    TORCH_CHECK(cs.indices().defined(), "constraint '", c.name(),
                "': indices are required for an indexed constraint");
    item.idx = checked_indices(cs.indices(), c, "indices");
    TORCH_CHECK(v.dim() == 1 && v.size(0) == item.idx.size(0), "constraint '", c.name(),
                "': violation has shape ", shape_of(v), ", expected [", item.idx.size(0),
                "] (one entry per index)");
    item.sidx = cs.strict_indices().defined()
                    ? checked_indices(cs.strict_indices(), c, "strict_indices")
                    : item.idx;
    TORCH_CHECK(s_in.defined() || !cs.strict_indices().defined(), "constraint '", c.name(),
                "': strict_indices given without a strict violation");
    TORCH_CHECK(!s_in.defined() || (s_in.dim() == 1 && s_in.size(0) == item.sidx.size(0)),
                "constraint '", c.name(), "': strict violation has shape ",
                s_in.defined() ? shape_of(s_in) : std::string(), ", expected [", item.sidx.size(0),
                "] (one entry per strict index)");
    item.s = detached_copy_if_alias(s_in.defined() ? s_in : v);
  } else if (c.options().multiplier() == MultiplierKind::kImplicit) {
    TORCH_CHECK(cs.features().defined(), "constraint '", c.name(),
                "': features are required for an implicit multiplier");
    TORCH_CHECK(v.dim() == 1 && v.size(0) == cs.features().size(0), "constraint '", c.name(),
                "': violation has shape ", shape_of(v), ", expected [", cs.features().size(0),
                "] (one entry per row of features)");
    item.s =
        s_in.defined() ? detached_copy_if_alias(s_in).reshape({-1}) : detached_copy_if_alias(v);
    TORCH_CHECK(item.s.numel() == v.numel(), "constraint '", c.name(), "': strict violation has ",
                item.s.numel(), " entries, expected ", v.numel());
    item.features = cs.features().detach();
  } else {
    TORCH_CHECK(!cs.indices().defined() && !cs.strict_indices().defined(), "constraint '", c.name(),
                "': indices were given for a dense constraint (use "
                "MultiplierKind::kIndexed to observe a subset of entries)");
    // A 0-d violation stays 0-d in the primal term (no view, no autograd node); only the
    // detached strict violation is reshaped.
    check_dense_shape(v, c, "violation");
    item.s = dense_shape(detached_copy_if_alias(s_in.defined() ? s_in : v), c,
                         s_in.defined() ? "strict violation" : "violation");
  }
  check_usable(c, cs, item.s, grad_expected, multiplier_dtypes_[c.index()]);
}

// Non-finite values, in order: the loss, then each constraint's violation and strict violation
// (a strict violation that is the violation itself is not checked twice).
int64_t StepEngine::local_bad(const Evaluation& eval) {
  std::vector<torch::Tensor>& checked = scratch_;
  checked.clear();
  checked.push_back(eval.state.loss);
  for (const auto& item : eval.items) {
    checked.push_back(item.v);
    if (!item.strict_is_copy) checked.push_back(item.s);
  }
  const int64_t bad = first_non_finite(checked);
  checked.clear();
  return bad;
}

bool StepEngine::check_evaluation(Evaluation& eval, StepResult& result, Stage stage, Taken taken) {
  int64_t bad = local_bad(eval);
  // With a synchronizer every rank agrees on the first bad value, so all skip (or throw) alike.
  int bad_rank = -1;
  if (sync_) bad = synchronize_evaluation(eval, bad, bad_rank);
  return bad < 0 || report_bad(eval, result, stage, taken, bad, bad_rank);
}

bool StepEngine::report_bad(Evaluation& eval, StepResult& result, Stage stage, Taken taken,
                            int64_t bad, int bad_rank) {
  const torch::Tensor& loss = eval.state.loss;
  const std::string where =
      bad_rank >= 0 && bad_rank != sync_->rank() ? " on rank " + std::to_string(bad_rank) : "";
  if (bad == 0) {
    return non_finite(result, NonFiniteQuantity::kLoss, "",
                      where.empty() ? "the loss is " + std::to_string(loss.detach().item<double>())
                                    : "the loss is NaN or Inf" + where,
                      stage, taken);
  }
  int64_t position = 1;
  for (const auto& item : eval.items) {
    const auto& name = item.constraint.name();
    if (position++ == bad) {
      return non_finite(result, NonFiniteQuantity::kViolation, name,
                        "the violation of constraint '" + name + "' has a NaN or Inf entry" + where,
                        stage, taken);
    }
    if (!item.strict_is_copy && position++ == bad) {
      return non_finite(
          result, NonFiniteQuantity::kStrictViolation, name,
          "the strict violation of constraint '" + name + "' has a NaN or Inf entry" + where, stage,
          taken);
    }
  }
  return true;  // not reached
}

void StepEngine::warn_unobserved(const Evaluation& eval, Stage stage) {
  const bool validation = stage == Stage::kValidation;
  bool& warned = validation ? warned_unvalidated_ : warned_unobserved_;
  if (warned || eval.items.size() == constraint_count_) return;
  std::vector<bool> seen(constraint_count_, false);
  for (const auto& item : eval.items) seen[item.constraint.index()] = true;
  std::ostringstream names;
  for (const auto& c : problem_.constraints()) {
    if (seen[c.index()] || c.options().occasional()) continue;
    // dual_step updates only multipliers and penalty updaters: a constraint with neither has
    // nothing to miss there.
    if (validation && !c.multiplier() && !c.options().penalty_updater()) continue;
    names << (names.tellp() > 0 ? ", " : "") << "'" << c.name() << "'";
  }
  if (names.tellp() == 0) return;
  warned = true;
  if (validation) {
    TORCH_WARN("ConstrainedOptimizer::dual_step: the closure did not observe constraint(s) ",
               names.str(),
               ": their multipliers (and penalties) do not move in this dual step, and the "
               "result's unobserved() lists them. Observe every constraint in the validation "
               "closure, or mark those observed only now and then with "
               "ConstraintOptions().occasional(true). (Said once per optimizer.)");
    return;
  }
  TORCH_WARN("ConstrainedOptimizer::step: the closure did not observe constraint(s) ", names.str(),
             " in step ", iteration_,
             ": their multipliers do not move, and StepResult::max_violation() is NaN while they "
             "go unobserved (StepResult::unobserved() lists them). Observe every constraint in "
             "every step, or mark those observed only now and then with "
             "ConstraintOptions().occasional(true). (Said once per optimizer.)");
}

bool StepEngine::non_finite(StepResult& result, NonFiniteQuantity quantity,
                            const std::string& constraint, const std::string& what, Stage stage,
                            Taken taken) {
  if (options_.non_finite() == NonFinitePolicy::kThrow) {
    throw NonFiniteError({__func__, __FILE__, static_cast<uint32_t>(__LINE__)},
                         std::string(caller(stage)) + text(stage) + what +
                             " (NonFinitePolicy::kThrow; " + text(taken) + ")",
                         quantity, constraint);
  }
  std::map<std::string, double> metrics = std::move(result.metrics);
  result = start_result();  // a skipped result reports no evaluation
  result.metrics = std::move(metrics);
  result.skipped = true;
  result.skip_quantity = quantity;
  result.skip_constraint = constraint;
  result.skip_reason = std::string(text(stage)) + what;
  return false;
}

bool StepEngine::check_gradients(StepResult& result, Stage stage, Taken taken) {
  std::vector<torch::Tensor>& grads = scratch_;
  grads.clear();
  for (const auto& opt : primal_) {
    for (const auto& group : opt->param_groups()) {
      for (const auto& p : group.params()) {
        const torch::Tensor& g = p.grad();
        if (g.defined()) grads.push_back(g.is_sparse() ? g._values() : g);
      }
    }
  }
  const int64_t bad = first_non_finite(grads);
  grads.clear();
  if (bad < 0) return true;
  int64_t position = 0;
  for (size_t i = 0; i < primal_.size(); ++i) {
    const auto& groups = primal_[i]->param_groups();
    for (size_t j = 0; j < groups.size(); ++j) {
      const auto& params = groups[j].params();
      for (size_t k = 0; k < params.size(); ++k) {
        if (!params[k].grad().defined() || position++ != bad) continue;
        std::ostringstream what;
        what << "the gradient of primal optimizer " << i << ", group " << j << ", parameter " << k
             << " (shape " << params[k].sizes() << ") has a NaN or Inf entry";
        return non_finite(result, NonFiniteQuantity::kPrimalGradient, "", what.str(), stage, taken);
      }
    }
  }
  return true;  // not reached
}

bool StepEngine::check_multipliers(Evaluation& eval, StepResult& result, Stage stage, After after,
                                   Taken taken) {
  if (!dual_) return true;
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor>& values = scratch_;  // the parameters: a scan needs no detach
  values.clear();
  std::vector<const Evaluation::Item*> owners;
  for (const auto& item : eval.items) {
    const auto& c = item.constraint;
    const auto& m = c.multiplier();
    if (!m || !item.state->contributes_to_dual()) continue;  // its multiplier did not move
    const auto& params = multiplier_parameters_[c.index()];
    const torch::Tensor rows = m->movable_rows(item.sidx);
    if (rows.defined()) {
      // Only these rows can have moved: O(batch), not O(size).
      values.push_back(params[0].index_select(0, rows));
      owners.push_back(&item);
    } else {
      for (const auto& p : params) {
        values.push_back(p);
        owners.push_back(&item);
      }
    }
  }
  const int64_t bad = first_non_finite(values);
  values.clear();
  if (bad < 0) return true;
  return multiplier_not_finite(owners[bad]->constraint, result, stage, after, taken);
}

bool StepEngine::multiplier_not_finite(const Constraint& c, StepResult& result, Stage stage,
                                       After after, Taken taken) {
  const std::string what =
      c.multiplier()->writes_gradient_directly()
          ? "the multiplier of constraint '" + c.name() + "' has a NaN or Inf entry " + text(after)
          : "a parameter of the implicit multiplier model of constraint '" + c.name() +
                "' has a NaN or Inf entry " + text(after);
  return non_finite(result, NonFiniteQuantity::kMultiplier, c.name(), what, stage, taken);
}

}  // namespace detail
}  // namespace feasible
