#pragma once
/// \file multiplier.h
/// Lagrange multipliers: the dual variables of a constraint.
///
/// Sign convention (docs/design.md, section 4): the dual player *maximizes* the Lagrangian. Because
/// LibTorch optimizers only descend, the multiplier's `.grad()` receives the *negated* ascent
/// direction, so that any `torch::optim::Optimizer` taking a descent step performs dual ascent.
/// Inequality multipliers are projected onto [0, max] after every dual step; equality
/// multipliers onto [-max, max] when a bound is set.

#include <torch/torch.h>

#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "feasible/kinds.h"

namespace feasible {

/// Base class of all multipliers. A multiplier is a `torch::nn::Module` so that its parameters
/// can be named, moved between devices and serialized like any LibTorch module.
class Multiplier : public torch::nn::Module {
 public:
  /// \param kind   inequality (values kept >= 0) or equality (free).
  /// \param size   number of scalar constraints, >= 1.
  Multiplier(ConstraintKind kind, int64_t size);
  ~Multiplier() override = default;

  /// The constraint kind this multiplier serves.
  ConstraintKind kind() const { return kind_; }
  /// The number of scalar constraints (entries).
  int64_t size() const { return size_; }

  /// True when the dual gradient is written directly into `.grad()` from the strict
  /// violation (dense and indexed multipliers, no extra backward pass). False for implicit
  /// multipliers, whose dual gradient flows through autograd.
  virtual bool writes_gradient_directly() const { return true; }

  /// The multiplier values of the observed entries. `indices` is undefined for dense
  /// multipliers (all entries) and a 1-D int64 tensor for indexed ones; `features` is used by
  /// implicit multipliers only. The result is differentiable only for implicit multipliers.
  virtual torch::Tensor evaluate(const torch::Tensor& indices, const torch::Tensor& features) = 0;

  /// Writes the descent direction `-ascent` for the observed entries into `.grad()`
  /// (accumulating if called twice in one step). Only for `writes_gradient_directly()`.
  virtual void write_ascent(const torch::Tensor& indices, const torch::Tensor& ascent);

  /// Resets the gradient to undefined so that an unobserved multiplier does not move.
  virtual void clear_gradient();

  /// Projects the values after a dual step: onto [0, max] for inequalities, [-max, max] for
  /// equalities (no-op for equalities without a bound). Implicit multipliers only check.
  virtual void project();

  /// Called before the dual step; lets lazy indexed multipliers remember the untouched rows.
  virtual void before_dual_step() {}
  /// Called after the dual step and projection; lets lazy multipliers restore untouched rows.
  virtual void after_dual_step() {}

  /// All current values, detached (shape [size]); undefined for implicit multipliers.
  virtual torch::Tensor values() const = 0;

  /// The rows a dual step can move when the step observed rows `observed` (int64 [m]; undefined
  /// for a dense observation): undefined means any row (the default), so a check or a copy of
  /// what the step changed must cover the whole multiplier.
  virtual torch::Tensor movable_rows(const torch::Tensor& observed) const {
    (void)observed;
    return torch::Tensor();
  }

  /// The interval the values are projected onto: [0, max] (or [0, inf)) for inequalities,
  /// [-max, max] (or the whole line) for equalities.
  std::pair<double, double> bounds() const {
    constexpr double kInf = std::numeric_limits<double>::infinity();
    if (kind_ == ConstraintKind::kInequality) return {0.0, max_value_ ? *max_value_ : kInf};
    return max_value_ ? std::make_pair(-*max_value_, *max_value_) : std::make_pair(-kInf, kInf);
  }

  /// Optional upper bound on |lambda| (std::nullopt: unbounded, the default). Must be > 0.
  void set_max_value(c10::optional<double> max_value);
  /// The upper bound, if any.
  c10::optional<double> max_value() const { return max_value_; }

 protected:
  ConstraintKind kind_;
  int64_t size_;
  c10::optional<double> max_value_;
};

/// One multiplier value per scalar constraint, stored in one parameter tensor of shape [size]
/// named "value". Every entry is observed in every step in which the constraint is observed.
class DenseMultiplier : public Multiplier {
 public:
  /// \param init   initial values: a scalar (broadcast) or a tensor of shape [size]; its dtype
  ///               and device are those of the multiplier. Inequality values must be >= 0.
  DenseMultiplier(ConstraintKind kind, int64_t size, torch::Tensor init);

  torch::Tensor evaluate(const torch::Tensor& indices, const torch::Tensor& features) override;
  void write_ascent(const torch::Tensor& indices, const torch::Tensor& ascent) override;
  void clear_gradient() override;
  void project() override;
  torch::Tensor values() const override { return value_.detach(); }

  /// The parameter tensor (a dual parameter).
  const torch::Tensor& parameter() const { return value_; }

 protected:
  torch::Tensor value_;

 private:
  torch::Tensor detached_;  // evaluate()'s detached alias of value_
};

/// A multiplier with up to millions of entries (one constraint per training example, as in
/// Feasible Learning) of which each step observes a batch, given by an index tensor.
///
/// The dual gradient is written as dense rows of `.grad()` with `index_add_`, so every
/// `torch::optim` optimizer (Adam included) works unchanged. Only the rows observed in the
/// previous step are zeroed, so the library's own work per step does not grow with `size`
/// (the optimizer's step over the whole tensor does, for optimizers that are not sparse).
///
/// With `lazy = true`, entries not observed in a step keep their values exactly, even under
/// optimizers with momentum (Adam): the observed rows are kept and the others restored after
/// the step (an O(size) copy; the optimizer's own state of the other rows still evolves).
class IndexedMultiplier : public DenseMultiplier {
 public:
  /// \param lazy             keep unobserved rows fixed under any optimizer (default false).
  /// \param sparse_gradient  write a sparse COO gradient holding only the observed entries
  ///                         (for NuPI and plain SGD; default false: dense rows).
  IndexedMultiplier(ConstraintKind kind, int64_t size, torch::Tensor init, bool lazy = false,
                    bool sparse_gradient = false);

  torch::Tensor evaluate(const torch::Tensor& indices, const torch::Tensor& features) override;
  void write_ascent(const torch::Tensor& indices, const torch::Tensor& ascent) override;
  void clear_gradient() override;
  /// With `lazy` or `sparse_gradient`, only the observed rows can have moved, so only they are
  /// projected (O(batch)); otherwise the whole tensor is, as the optimizer may move any row.
  void project() override;
  void before_dual_step() override;
  void after_dual_step() override;

  /// With `lazy` or `sparse_gradient` only the observed rows can move (`observed`); otherwise
  /// the optimizer may move any row (undefined).
  torch::Tensor movable_rows(const torch::Tensor& observed) const override {
    return lazy_ || sparse_ ? observed : torch::Tensor();
  }

  /// Whether unobserved rows are kept fixed.
  bool lazy() const { return lazy_; }
  /// Whether the gradient is written as a sparse tensor.
  bool sparse_gradient() const { return sparse_; }

 private:
  bool lazy_;
  bool sparse_;
  torch::Tensor buffer_;    // dense-row gradient storage, reused across steps
  torch::Tensor observed_;  // indices whose gradient rows are non-zero (this step)
  torch::Tensor backup_;    // lazy mode: values before the dual step
};

/// A model of the multipliers: a `torch::nn::Module` that maps a constraint's `features`
/// (ConstraintState::features) to multiplier values, one per observed entry. Its parameters
/// are the dual parameters; the dual gradient reaches them by autograd through
/// sum(lambda(features) * ascent). For inequalities, non-negativity is the module's job
/// (e.g. a softplus output); the optimizer checks it at run time and throws otherwise.
class ImplicitMultiplier : public Multiplier {
 public:
  /// \param model  any module whose forward takes one tensor [n, ...] and returns [n].
  ImplicitMultiplier(ConstraintKind kind, int64_t size, torch::nn::AnyModule model);

  bool writes_gradient_directly() const override { return false; }
  torch::Tensor evaluate(const torch::Tensor& indices, const torch::Tensor& features) override;
  void project() override {}
  torch::Tensor values() const override { return torch::Tensor(); }

 private:
  torch::nn::AnyModule model_;
};

}  // namespace feasible
