#pragma once
/// \file optim/extra.h
/// Optimizers with an extrapolation step, for the extragradient method (Korpelevich 1976;
/// Gidel, Berard, Vignoud, Vincent & Lacoste-Julien, "A Variational Inequality Perspective on
/// Generative Adversarial Networks", ICLR 2019).
///
/// One extragradient iteration with such an optimizer:
///   1. gradients at theta_t;  extrapolate(): save theta_t, move to theta_{t+1/2};
///   2. gradients at theta_{t+1/2};  step(): restore theta_t and update it with those gradients.
/// A step() without a preceding extrapolate() is an ordinary update from the current point.

#include <torch/torch.h>

#include <vector>

namespace feasible {
namespace optim {

/// Base class of optimizers with an extrapolation step.
class ExtrapolationOptimizer : public torch::optim::Optimizer {
 public:
  using torch::optim::Optimizer::Optimizer;

  /// Saves the current parameters and takes an update from them with the current gradients,
  /// moving to the extrapolation point. Parameters with undefined gradients do not move.
  void extrapolate();
  /// Restores the saved point (if extrapolate() was called) and takes the update from it with
  /// the current gradients.
  torch::Tensor step(LossClosure closure = nullptr) override;
  /// Returns the parameters to the saved point without an update and forgets it (no-op when
  /// nothing is saved). The optimizer's moments keep the extrapolation's update.
  void restore();
  /// Whether an extrapolation point is pending (extrapolate() called, step() not yet).
  bool extrapolated() const { return !saved_.empty(); }
  /// The saved parameters theta_t (empty unless extrapolated()), in parameter order.
  const std::vector<torch::Tensor>& saved_point() const { return saved_; }
  /// Replaces the pending saved point (for checkpoints): one tensor per parameter, in
  /// parameter order, each of the parameter's shape (copied); empty: no point pending.
  void set_saved_point(const std::vector<torch::Tensor>& point);

 protected:
  /// Applies one update in place to `param` with gradient `grad` under the group's options.
  virtual void update(torch::Tensor& param, const torch::Tensor& grad,
                      torch::optim::OptimizerParamGroup& group) = 0;

 private:
  void update_all();
  std::vector<torch::Tensor> saved_;
};

/// Options of ExtraSGD, checked by the ExtraSGD constructor (defaults and each parameter group).
struct ExtraSGDOptions : public torch::optim::OptimizerCloneableOptions<ExtraSGDOptions> {
  /// \param lr  step size, >= 0.
  ExtraSGDOptions(double lr);  // NOLINT(google-explicit-constructor)
  /// Throws c10::Error ("ExtraSGDOptions.<field> must <rule>, got <value>") unless every field is
  /// in range.
  void validate() const;
  /// Step size (finite, >= 0).
  TORCH_ARG(double, lr);

 public:
  void serialize(torch::serialize::InputArchive& archive) override;
  void serialize(torch::serialize::OutputArchive& archive) const override;
  double get_lr() const override { return lr(); }
  void set_lr(const double lr) override { this->lr(lr); }
};

/// Gradient descent with an extrapolation step: theta <- theta - lr * grad for both steps.
class ExtraSGD : public ExtrapolationOptimizer {
 public:
  ExtraSGD(std::vector<torch::Tensor> params, ExtraSGDOptions options);
  ExtraSGD(std::vector<torch::optim::OptimizerParamGroup> groups, ExtraSGDOptions options);

 protected:
  void update(torch::Tensor& param, const torch::Tensor& grad,
              torch::optim::OptimizerParamGroup& group) override;
};

/// Options of ExtraAdam (Adam's defaults: betas (0.9, 0.999), eps 1e-8), checked by the
/// ExtraAdam constructor (defaults and each parameter group).
struct ExtraAdamOptions : public torch::optim::OptimizerCloneableOptions<ExtraAdamOptions> {
  /// \param lr  step size, >= 0. Default 1e-3.
  ExtraAdamOptions(double lr = 1e-3);  // NOLINT(google-explicit-constructor)
  /// Throws c10::Error ("ExtraAdamOptions.<field> must <rule>, got <value>") unless every field is
  /// in range.
  void validate() const;
  /// Step size (finite, >= 0).
  TORCH_ARG(double, lr);
  /// First-moment decay beta1 in [0, 1). Default 0.9.
  TORCH_ARG(double, beta1) = 0.9;
  /// Second-moment decay beta2 in [0, 1). Default 0.999.
  TORCH_ARG(double, beta2) = 0.999;
  /// Denominator term (finite, > 0). Default 1e-8.
  TORCH_ARG(double, eps) = 1e-8;

 public:
  void serialize(torch::serialize::InputArchive& archive) override;
  void serialize(torch::serialize::OutputArchive& archive) const override;
  double get_lr() const override { return lr(); }
  void set_lr(const double lr) override { this->lr(lr); }
};

/// Adam moments of one parameter.
struct ExtraAdamParamState
    : public torch::optim::OptimizerCloneableParamState<ExtraAdamParamState> {
  /// Number of updates taken (extrapolations and steps both count).
  TORCH_ARG(int64_t, step) = 0;
  /// First moment.
  TORCH_ARG(torch::Tensor, exp_avg);
  /// Second moment.
  TORCH_ARG(torch::Tensor, exp_avg_sq);

 public:
  void serialize(torch::serialize::InputArchive& archive) override;
  void serialize(torch::serialize::OutputArchive& archive) const override;
};

/// Adam with an extrapolation step (Gidel et al. 2019, Algorithm 4): both the extrapolation
/// and the update use the bias-corrected Adam direction and both update the moments.
class ExtraAdam : public ExtrapolationOptimizer {
 public:
  ExtraAdam(std::vector<torch::Tensor> params, ExtraAdamOptions options = ExtraAdamOptions());
  ExtraAdam(std::vector<torch::optim::OptimizerParamGroup> groups,
            ExtraAdamOptions options = ExtraAdamOptions());

 protected:
  void update(torch::Tensor& param, const torch::Tensor& grad,
              torch::optim::OptimizerParamGroup& group) override;
};

}  // namespace optim
}  // namespace feasible
