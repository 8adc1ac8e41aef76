#pragma once
/// \file optim/optimistic.h
/// The optimistic gradient method for the multipliers, "dual optimistic ascent": J. Ramirez and
/// S. Lacoste-Julien, "Dual Optimistic Ascent (PI Control) is the Augmented Lagrangian Method in
/// Disguise", arXiv:2509.22500 (2025), who show that on the Lagrangian it is gradient
/// descent-ascent on the Augmented Lagrangian in disguise. The optimistic gradient itself goes
/// back to L. D. Popov, "A modification of the Arrow-Hurwicz method for search of saddle
/// points", 1980.

#include <torch/torch.h>

#include <vector>

namespace feasible {
namespace optim {

/// Options of OptimisticGradient. Defaults: lr 1e-2, optimism 1 (the update 2 e_t - e_{t-1}).
/// Every field is checked by the OptimisticGradient constructor, for the defaults and for each
/// parameter group, with messages "OptimisticGradientOptions.<field> must <rule>, got <value>".
struct OptimisticGradientOptions
    : public torch::optim::OptimizerCloneableOptions<OptimisticGradientOptions> {
  /// \param lr  the step size eta, finite and >= 0.
  OptimisticGradientOptions(double lr = 1e-2);  // NOLINT(google-explicit-constructor)
  /// Throws c10::Error ("OptimisticGradientOptions.<field> must <rule>, got <value>") unless
  /// every field is in range.
  void validate() const;
  /// Step size eta (finite, >= 0). Default 1e-2.
  TORCH_ARG(double, lr);
  /// Optimism omega (finite, >= 0): the weight of the change of the gradient, e_t - e_{t-1}.
  /// Default 1, the optimistic gradient 2 e_t - e_{t-1}; 0 is plain gradient descent.
  TORCH_ARG(double, optimism) = 1.0;

 public:
  /// Writes lr and optimism (checkpoints).
  void serialize(torch::serialize::OutputArchive& archive) const override;
  /// Reads what the other overload writes.
  void serialize(torch::serialize::InputArchive& archive) override;
  /// The step size eta.
  double get_lr() const override { return lr(); }
  /// Sets the step size eta.
  void set_lr(const double lr) override { this->lr(lr); }
};

/// State of one parameter: the gradient of its previous step.
struct OptimisticGradientParamState
    : public torch::optim::OptimizerCloneableParamState<OptimisticGradientParamState> {
  /// e_{t-1}, the gradient of the previous step taken on this parameter (a copy, the
  /// parameter's shape and dtype).
  TORCH_ARG(torch::Tensor, previous);
  /// Number of steps taken on this parameter (0 before the first).
  TORCH_ARG(int64_t, step) = 0;

 public:
  /// Writes previous and step (checkpoints).
  void serialize(torch::serialize::OutputArchive& archive) const override;
  /// Reads what the other overload writes.
  void serialize(torch::serialize::InputArchive& archive) override;
};

/// The optimistic gradient method in descent form. With e_t the gradient in `.grad()` (for a
/// multiplier: the negated dual ascent direction, e_t = -g_t with g_t the strict violation
/// under the Lagrangian; docs/design.md, section 4), step size eta and optimism omega:
///
///   theta_{t+1} = theta_t - eta (e_t + omega (e_t - e_{t-1})),   e_{-1} = e_0,
///
/// so a multiplier takes lambda_{t+1} = lambda_t + eta (2 g_t - g_{t-1}) with omega = 1 (then
/// the projection onto lambda >= 0). The first step of a parameter has no previous gradient and
/// takes it to be e_0: a plain gradient step.
///
/// The same update as NuPI with kp = omega, ki = 1, nu = 0 and NuPIInit::kSGD (then
/// xi_t = e_t, and K_i e_t + K_p (xi_t - xi_{t-1}) = e_t + omega (e_t - e_{t-1})), computed by
/// the same operations, so the iterates are equal bit for bit (tests/optimistic_test.cpp).
///
/// Dense gradients only: a sparse gradient (an indexed multiplier with `sparse_gradient`) throws;
/// use NuPI with those gains there. A parameter whose gradient is undefined is skipped and keeps
/// its e_{t-1}. Checkpoints and skipped steps (NonFinitePolicy::kSkipStep) save and restore the
/// state (src/optimizer_traits.cpp).
class OptimisticGradient : public torch::optim::Optimizer {
 public:
  /// Parameter groups, each with its own options (`defaults` for the rest).
  explicit OptimisticGradient(std::vector<torch::optim::OptimizerParamGroup> param_groups,
                              OptimisticGradientOptions defaults = OptimisticGradientOptions());
  /// One group of parameters.
  explicit OptimisticGradient(std::vector<torch::Tensor> params,
                              OptimisticGradientOptions defaults = OptimisticGradientOptions());

  /// One step on every parameter with a gradient (the closure, if any, is evaluated first).
  torch::Tensor step(LossClosure closure = nullptr) override;
  /// torch::optim's own archive of the options and states.
  void save(torch::serialize::OutputArchive& archive) const override;
  /// Reads what save() writes.
  void load(torch::serialize::InputArchive& archive) override;

  /// The state of a parameter (nullptr before its first step): for inspection.
  const OptimisticGradientParamState* state_of(const torch::Tensor& param) const;
};

}  // namespace optim
}  // namespace feasible
