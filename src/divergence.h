// Divergence that stays finite (internal): a violation, multiplier or Lagrangian that grows
// without bound is reported in StepResult and warned about once (docs/guide.md, section 10).
#pragma once
#include <torch/torch.h>

#include <array>
#include <string>
#include <vector>

#include "feasible/optimizer.h"

namespace feasible {
namespace detail {

/// Samples magnitudes every kEvery steps. A series diverges when each of its last kWindow
/// sample-to-sample ratios is >= kRatio (geometric growth, so a multiplier that winds up
/// linearly does not count) and its last sample is >= kFactor times the largest sample of its
/// first kWindow samples (the scale the run started at; its first kEvery * kWindow steps).
class DivergenceMonitor {
 public:
  static constexpr int64_t kEvery = 20;
  static constexpr int kWindow = 5;
  static constexpr double kRatio = 1.25;
  static constexpr double kFactor = 100.0;

  /// A magnitude series (max |value| of one quantity).
  class Series {
   public:
    /// Adds a sample; returns whether the series now diverges.
    bool add(double magnitude);

   private:
    std::array<double, kWindow + 1> last_{};
    int64_t count_ = 0;
    double start_scale_ = 0;
  };

  /// Whether `iteration` is a sampling step.
  static bool samples(int64_t iteration) { return iteration % kEvery == 0; }
  /// The series of constraint i's violation or multiplier, or of the Lagrangian.
  Series& violation(size_t i);
  Series& multiplier(size_t i);
  Series& lagrangian() { return lagrangian_; }
  /// Warns (TORCH_WARN) the first time a result reports divergence; later calls do nothing.
  void warn_once(const StepResult& result);

 private:
  std::vector<Series> violation_, multiplier_;
  Series lagrangian_;
  bool warned_ = false;
};

}  // namespace detail
}  // namespace feasible
