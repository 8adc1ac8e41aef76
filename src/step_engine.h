// The step engine behind the schemes: validated evaluations of the closure, the non-finite
// checks, the copies that let a skipped step restore everything, and the half-steps the schemes
// are made of. Internal: not installed, not part of the API.
#pragma once
#include <torch/torch.h>

#include <functional>
#include <memory>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "feasible/optimizer.h"
#include "feasible/synchronizer.h"
#include "src/divergence.h"
#include "src/state_key.h"

namespace feasible {
namespace detail {

/// Where in a step an evaluation or check happens; prefixes skip reasons and kThrow messages.
enum class Stage {
  kFirst,   ///< the first evaluation (no prefix)
  kSecond,  ///< AlternatingPrimalDual's re-evaluation after the primal step
  kHalf,    ///< Extragradient's evaluation at the half point
  /// ConstrainedOptimizer::dual_step's evaluation (no prefix; messages name dual_step)
  kValidation,
};

/// What the step had already changed when a non-finite value was found (kThrow messages).
enum class Taken {
  kNothing,
  kDual,           ///< the dual step, not the primal step nor the penalty update
  kDualPenalty,    ///< the dual step and the penalty update, not the primal step
  kPrimal,         ///< the primal step
  kPrimalDual,     ///< the primal and dual steps, not the penalty update
  kHalfReturned,   ///< Extragradient, half point: back at (x_t, lambda_t), moments updated
  kFinalReturned,  ///< Extragradient, final update: back at x_t, multipliers updated
};

/// Which dual move a multiplier check follows.
enum class After { kDualStep, kExtrapolation };

/// The message prefix of a stage ("" for the first evaluation and dual_step's).
const char* text(Stage stage);
/// The function a message of this stage names: "ConstrainedOptimizer::dual_step: " for
/// Stage::kValidation, else "ConstrainedOptimizer::step: ".
const char* caller(Stage stage);
/// What a kThrow message says was taken.
const char* text(Taken taken);
/// "after the dual step" or "after the extrapolation".
const char* text(After after);

/// One validated evaluation of the closure.
struct Evaluation {
  struct Item {
    Constraint constraint;
    const ConstraintState* state = nullptr;
    torch::Tensor v;              // [n] (or 0-d for a dense constraint of size 1), differentiable
    torch::Tensor s;              // [m], detached
    bool strict_is_copy = false;  // s is the violation (no strict violation given)
    torch::Tensor idx;            // [n] int64, undefined for dense
    torch::Tensor sidx;           // [m] int64, undefined for dense
    torch::Tensor features;       // implicit multipliers (detached)
    torch::Tensor lambda;         // multiplier values used in the primal term
    bool lambda_is_live = false;  // lambda is the multiplier's own storage (copied for results)
    torch::Tensor penalty;        // penalty used in the primal term
    bool penalty_capped = false;
  };
  ProblemState state;
  std::vector<Item> items;
  torch::Tensor lagrangian;
};

/// Copies of what a half-step changes, taken only under NonFinitePolicy::kSkipStep.
class Snapshot {
 public:
  /// Copies the whole tensor.
  void tensor(const torch::Tensor& t);
  /// Copies rows `idx` of `t`.
  void rows(const torch::Tensor& t, const torch::Tensor& idx);
  /// The state of the parameters of `opt` that have a gradient (`all`: of every parameter).
  void optimizer(torch::optim::Optimizer& opt, bool all);
  /// Puts everything back (newest copy first, so the oldest wins); then forgets it.
  void restore();

 private:
  struct Copy {
    torch::Tensor target;  // the live tensor
    torch::Tensor rows;    // the copied rows (undefined: the whole tensor)
    torch::Tensor values;  // their values
  };
  struct State {
    torch::optim::Optimizer* optimizer = nullptr;
    StateKey key;
    std::unique_ptr<torch::optim::OptimizerParamState> state;  // null: there was none
    std::vector<Copy> rows;  // rows of the state's tensors (when `state` shares them)
  };
  std::vector<Copy> tensors_;
  std::vector<State> states_;
};

/// A step's undo log: restores its snapshot (and runs its rollback action) when it is destroyed
/// without commit(), i.e. on an exception or a skipped step. Under kThrow the snapshot holds no
/// copies, so only the rollback action has an effect.
class Transaction {
 public:
  Transaction() = default;
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction() noexcept(false);

  /// The copies to restore.
  Snapshot& snapshot() { return snapshot_; }
  /// Runs before the snapshot is restored (e.g. the extrapolation optimizers' restore()).
  void on_rollback(std::function<void()> action) { rollback_ = std::move(action); }
  /// Keeps what the step did.
  void commit() { committed_ = true; }

 private:
  Snapshot snapshot_;
  std::function<void()> rollback_;
  bool committed_ = false;
  int exceptions_ = std::uncaught_exceptions();
};

/// The state of a constrained optimizer and the half-steps its schemes are made of.
class StepEngine {
 public:
  StepEngine(Problem problem, std::vector<std::shared_ptr<torch::optim::Optimizer>> primal,
             std::shared_ptr<torch::optim::Optimizer> dual, ConstrainedOptimizerOptions options);

  /// Whether the policy is NonFinitePolicy::kSkipStep.
  bool skipping() const { return options_.non_finite() == NonFinitePolicy::kSkipStep; }
  /// Starts a result (iteration number, registered constraints).
  StepResult start_result() const;
  /// Ends a step: counts it.
  void finish() { ++iteration_; }

  /// Calls the closure and validates what it returned; false (and `result` skipped) when the
  /// step must be skipped for a non-finite value.
  bool evaluate(const Closure& closure, Evaluation& eval, StepResult& result, Stage stage,
                Taken taken);
  /// Clears the primal gradients (unless `zeroed`: done before the closure; see local_backward),
  /// forms the Lagrangian, one backward pass, checks the gradients.
  bool backward(Evaluation& eval, StepResult& result, Stage stage, Taken taken,
                bool zeroed = false);
  /// evaluate() then backward(), with the primal gradients cleared before the closure runs (as
  /// a hand-written loop does; released, or zeroed with a synchronizer or under LibTorch 2.x's
  /// zero_grad(), which sets them to none). With a synchronizer, the exchange of the evaluation
  /// overlaps the backward pass: it is begun after the local non-finite check, the local backward
  /// pass runs (skipped on a rank whose own evaluation has a NaN or Inf), and the exchange is
  /// finished before the gradients are exchanged; when any rank had a bad value, every rank
  /// zeroes its primal gradients and skips or throws alike.
  bool evaluate_backward(const Closure& closure, Evaluation& eval, StepResult& result, Stage stage,
                         Taken taken);
  /// Checks every primal gradient; false when the step is skipped.
  bool check_gradients(StepResult& result, Stage stage, Taken taken);
  /// Checks the multipliers that the last dual move could change for `eval`.
  bool check_multipliers(Evaluation& eval, StepResult& result, Stage stage, After after,
                         Taken taken);
  /// Under kSkipStep copies the dual state into `tx`; steps the dual optimizer; projects;
  /// checks the multipliers (messages of `stage`). False when the step is skipped.
  bool checked_dual_step(Evaluation& eval, StepResult& result, Transaction& tx, Taken taken,
                         Stage stage = Stage::kFirst);
  /// Writes the dual gradients of every observed constraint (negated ascent direction), then
  /// calls dual_directions (when set) on them.
  void write_dual_gradients(Evaluation& eval);
  /// Steps the dual optimizer and projects the multipliers.
  void dual_step();
  /// Extrapolates the dual player (ExtrapolationOptimizer) and projects the multipliers.
  void dual_extrapolate();
  /// Steps every primal optimizer and applies the projections.
  void primal_step();
  /// Extrapolates every primal optimizer and applies the projections.
  void primal_extrapolate();
  /// Returns every extrapolation optimizer to its saved point.
  void restore_extrapolation();
  /// Returns the dual extrapolation optimizer to its saved point.
  void restore_dual_extrapolation();
  /// Applies the projections of primal parameters.
  void project_primal();
  /// Runs the penalty updaters on an evaluation.
  void update_penalties(Evaluation& eval, StepResult& result);
  /// Reads each observed constraint's multiplier values and penalty coefficient into the item
  /// (what the primal term uses and the result reports); the primal Lagrangian calls it too.
  void read_coefficients(Evaluation::Item& item);
  /// Fills the per-constraint entries of `result` from an evaluation; with `watch` (step(), not
  /// dual_step(), whose samples would double those of the steps) feeds the divergence monitor.
  void record(Evaluation& eval, StepResult& result, bool watch = true);

  /// Copies what the dual step can change (`all`: every multiplier and the whole state).
  void snapshot_dual(Evaluation& eval, Snapshot& snapshot, bool all);
  /// Copies the observed penalty coefficients that an updater may change.
  void snapshot_penalties(Evaluation& eval, Snapshot& snapshot);
  /// Copies the primal optimizers' state (and with `parameters` the primal parameters and the
  /// tensors of the projections).
  void snapshot_primal(Snapshot& snapshot, bool parameters, bool all_states);

  /// "the multipliers of 'a', 'b'": what the dual optimizer holds, for messages.
  std::string dual_holders() const;

  Problem problem_;
  std::vector<std::shared_ptr<torch::optim::Optimizer>> primal_;
  std::shared_ptr<torch::optim::Optimizer> dual_;
  ConstrainedOptimizerOptions options_;
  std::vector<std::pair<std::vector<torch::Tensor>, Projection>> projections_;
  int64_t iteration_ = 0;
  /// Shares evaluations and gradients with other processes (nullptr: none; the default).
  std::shared_ptr<Synchronizer> sync_;
  /// Rewrites the dual gradients that write_dual_gradients() left, in step() and dual_step()
  /// alike (empty: none; the default optimizer's per-visit rule sets it).
  std::function<void(const Evaluation&)> dual_directions;

 private:
  /// Exchanges an evaluation through sync_: agrees on the first non-finite value (`bad`, this
  /// rank's; returns the agreed one and sets `bad_rank`) and replaces the observed strict
  /// violations (and strict indices) by the combined ones (src/synchronize.cpp).
  int64_t synchronize_evaluation(Evaluation& eval, int64_t bad, int& bad_rank);
  /// The first half of synchronize_evaluation: fills `ex` and starts the exchange.
  void begin_exchange(Evaluation& eval, int64_t bad, SyncedEvaluation& ex);
  /// The second half: waits, takes the combined values into `eval`, returns the agreed bad.
  int64_t finish_exchange(Evaluation& eval, SyncedEvaluation& ex, int& bad_rank);
  /// Calls the closure and validates what it returned (evaluate without the non-finite check).
  void read_evaluation(const Closure& closure, Evaluation& eval, StepResult& result, Stage stage);
  /// The position of the first non-finite value of an evaluation on this rank (loss 0, then
  /// each item's violation and strict violation), or -1.
  int64_t local_bad(const Evaluation& eval);
  /// Reports the agreed non-finite value `bad` (found on `bad_rank`): skips or throws.
  bool report_bad(Evaluation& eval, StepResult& result, Stage stage, Taken taken, int64_t bad,
                  int bad_rank);
  /// The primal gradients released (unless `zeroed`: done before the closure; zero_grad with
  /// sync_), the primal Lagrangian, its backward pass, and the unreached gradients restored (no
  /// exchange, no check).
  void local_backward(Evaluation& eval, bool zeroed = false);
  /// zero_grad() on every primal optimizer.
  void zero_primal_gradients();
  /// Takes the primal gradients out of their parameters (into released_) before the closure,
  /// so that the backward pass hands each parameter the gradient tensor it computed
  /// (AccumulateGrad adopts it) instead of adding it to a zero-filled one: under LibTorch 1.x
  /// that saves zero_grad()'s fill and the accumulation's read of the zeros, two passes over
  /// the gradients per step. Under LibTorch 2.x, whose zero_grad() sets the gradients to none,
  /// it is zero_grad(). Single process only: with sync_ the engine calls zero_grad().
  void release_primal_gradients();
  /// Frees, just before the backward pass, the released gradients that zeros_like(p) can give
  /// back exactly (dense, p's dtype, device and strides, no history), and marks them in
  /// dropped_: the backward pass's new gradients then reuse their memory, as with zero_grad()
  /// (freed before the closure instead, they made the new gradients land on fresh pages under
  /// glibc's adaptive malloc; kept to the end of the backward pass, they cost 1-3% there).
  void drop_released_gradients();
  /// Gives the parameters that the backward pass did not reach their released gradient back,
  /// zeroed (zeros_like(p) for a dropped one; the kept tensor, detached if it had a history,
  /// filled with zeros otherwise), and frees the rest: the gradients are then what zero_grad()
  /// and backward() leave under LibTorch 1.x, up to the sign of a zero (the backward pass's -0
  /// stays -0, where zero_grad's +0 plus -0 is +0). No-op when nothing is released.
  void restore_unreached_gradients();
  /// Restores the released gradients when the scope is left by an exception (the normal paths
  /// call restore_unreached_gradients() themselves, so that its errors are not swallowed).
  struct ReleasedGradients {
    StepEngine& engine;
    ~ReleasedGradients();
  };
  /// Hands the primal gradients to sync_ (src/synchronize.cpp).
  void synchronize_gradients();
  /// The primal parameters that require a gradient, in the primal optimizers' order.
  std::vector<torch::Tensor> primal_parameters() const;
  void check_duals_held(const std::vector<torch::Tensor>& duals);
  /// Which fused dual step applies (src/fused_dual_step.cpp).
  enum class FusedDual { kNone, kSGD, kNuPI, kAugmented };
  FusedDual fusable_dual() const;
  void validate_item(Evaluation::Item& item, bool grad_expected);
  bool check_evaluation(Evaluation& eval, StepResult& result, Stage stage, Taken taken);
  bool non_finite(StepResult& result, NonFiniteQuantity quantity, const std::string& constraint,
                  const std::string& what, Stage stage, Taken taken);
  torch::Tensor primal_lagrangian(Evaluation& eval);
  void copy_live_multipliers(Evaluation& eval);
  bool fused_dual_step(Evaluation& eval, const Constraint*& bad);
  /// The dual optimizer's step(), its errors prefixed with the engine's message.
  void run_dual_optimizer();
  bool multiplier_not_finite(const Constraint& c, StepResult& result, Stage stage, After after,
                             Taken taken);
  void warn_unobserved(const Evaluation& eval, Stage stage);
  torch::Tensor detached_copy_if_alias(const torch::Tensor& v) const;

  size_t constraint_count_ = 0;
  std::vector<std::shared_ptr<Multiplier>> multipliers_;
  std::unordered_set<const void*> parameter_storages_;  // to detect violations that alias them
  std::vector<c10::optional<torch::ScalarType>> multiplier_dtypes_;  // by constraint index
  bool primal_requires_grad_ = false;  // some primal parameter requires a gradient
  bool warned_unobserved_ = false;     // the unobserved-constraint warning was given
  bool warned_unvalidated_ = false;    // the same for dual_step's closure
  DivergenceMonitor divergence_;       // finite divergence (src/divergence.h)
  void watch_divergence(const Evaluation& eval, StepResult& result);
  // The dual optimizer is a torch::optim::SGD, an optim::NuPI or an optim::AugmentedDual over
  // dense CPU multipliers only: its update, the projection and the finite check are fused
  // (fused_dual_step).
  FusedDual fused_ = FusedDual::kNone;
  std::vector<torch::Tensor> fused_scratch_;  // NuPI's update buffers, reused across steps
  std::vector<std::vector<torch::Tensor>> multiplier_parameters_;  // by constraint index
  StepResult blank_;                     // the result before a step (names, kinds)
  std::vector<torch::Tensor> scratch_;   // tensors to check, reused across steps
  std::vector<torch::Tensor> released_;  // by primal parameter; see release_primal_gradients
  std::vector<char> dropped_;            // by primal parameter; see drop_released_gradients
  std::vector<bool> fused_finite_;       // by constraint index, reused across steps
};

/// Whether every entry of every tensor is finite; the position of the first that is not, or -1.
int64_t first_non_finite(const std::vector<torch::Tensor>& tensors);

/// Checks an index tensor of an indexed constraint; returns it as int64.
torch::Tensor checked_indices(const torch::Tensor& given, const Constraint& c, const char* field);

}  // namespace detail
}  // namespace feasible
