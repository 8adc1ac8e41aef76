// Divergence that stays finite (src/divergence.h).
#include "src/divergence.h"

#include <cmath>
#include <sstream>

namespace feasible {
namespace detail {

bool DivergenceMonitor::Series::add(double magnitude) {
  if (!std::isfinite(magnitude)) return false;  // non-finite values are the checks' business
  for (int i = 0; i < kWindow; ++i) last_[i] = last_[i + 1];
  last_[kWindow] = magnitude;
  ++count_;
  if (count_ <= kWindow) {
    start_scale_ = std::max(start_scale_, magnitude);
    return false;
  }
  if (count_ <= 2 * kWindow) return false;  // the window must lie after the starting samples
  for (int i = 0; i < kWindow; ++i) {
    if (!(last_[i] > 0 && last_[i + 1] >= kRatio * last_[i])) return false;
  }
  return magnitude >= kFactor * start_scale_;
}

DivergenceMonitor::Series& DivergenceMonitor::violation(size_t i) {
  if (violation_.size() <= i) violation_.resize(i + 1);
  return violation_[i];
}

DivergenceMonitor::Series& DivergenceMonitor::multiplier(size_t i) {
  if (multiplier_.size() <= i) multiplier_.resize(i + 1);
  return multiplier_[i];
}

void DivergenceMonitor::warn_once(const StepResult& result) {
  if (warned_ || (result.diverging.empty() && !result.lagrangian_diverging)) return;
  warned_ = true;
  std::ostringstream what;
  for (const auto& d : result.diverging) what << (what.tellp() > 0 ? "; " : "") << d;
  if (result.lagrangian_diverging) {
    what << (what.tellp() > 0 ? "; " : "") << "the Lagrangian";
  }
  TORCH_WARN("ConstrainedOptimizer::step: diverging at step ", result.iteration, ": ", what.str(),
             " grew geometrically (by >= ", kRatio, "x every ", kEvery, " steps for ",
             kWindow * kEvery, " steps) to >= ", kFactor,
             "x its size in the first steps, while finite. The dual step (or the penalty) is "
             "likely too large, or the constraints cannot be met together; "
             "StepResult::diverging lists it at every sampled step (warned once)");
}

}  // namespace detail
}  // namespace feasible
