#pragma once
/// \file selection.h
/// Choosing what to deploy after a constrained training run: the best iterate among candidates
/// kept during training, or a randomized mixture of at most m + 1 of them.
///
/// A constrained run's last iterate is often not its best: an earlier one may be feasible with a
/// lower loss, and the iterates of a Lagrangian method oscillate around the constraint boundary.
/// Keep candidates (every k steps, or every epoch), evaluate each on a validation set, and offer
/// them to a BestIterate, which keeps the one chosen by the rule of BestIterate::best(). shrink()
/// goes further: the randomized mixture of candidates with the lowest expected objective whose
/// expected violations are <= 0, found by a linear program whose basic optimal solutions use at
/// most m + 1 candidates (m = number of scalar constraints): the "shrinking" procedure of
/// Cotter, Jiang, Sridharan, "Two-Player Games for Efficient Non-Convex Constrained
/// Optimization", ALT 2019, and of Cotter et al., "Optimization with Non-Differentiable
/// Constraints with Applications to Fairness, Recall, Churn, and Other Goals", JMLR 20(172),
/// 2019. docs/selection.md has the formulas and the guarantees.
///
/// Example:
/// \code
///   feasible::BestIterate keeper(feasible::BestIterateOptions().keep_all(true));
///   for (int64_t epoch = 0; epoch < epochs; ++epoch) {
///     train_one_epoch();
///     auto [loss, violations] = evaluate_on_validation();   // violations: g - eps per entry
///     keeper.offer(epoch, loss, violations, model->parameters());
///   }
///   keeper.restore(model->parameters());   // the best iterate, in place
///   std::cout << keeper.reason() << "\n";
///   feasible::Mixture mixture = keeper.mixture();   // or deploy a mixture of <= m + 1
/// \endcode

#include <c10/util/Optional.h>
#include <torch/arg.h>
#include <torch/types.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace feasible {

/// One candidate solution kept during training: where it came from, how it did on validation,
/// and (when kept) its parameters.
struct Candidate {
  /// The step or epoch number the user gave when offering it (any integer; only reported).
  int64_t step = 0;
  /// The objective (loss) on the validation set; finite.
  double objective = 0.0;
  /// The violation of every scalar constraint on the validation set, g_j - eps_j, feasible when
  /// <= 0 (write an equality h = eps as h - eps <= 0 and eps - h <= 0, or as |h - eps| - tol
  /// <= 0). Finite; the same length m for every candidate of one BestIterate (m = 0 is allowed:
  /// no constraint).
  std::vector<double> violations;
  /// Whether the candidate is feasible with confidence, e.g. from a held-out audit (a
  /// Clopper-Pearson or Hoeffding upper bound on a rate that is <= its limit). Unset (default):
  /// no confidence information. The selection prefers candidates whose flag is true and whose
  /// `violations` are all <= the tolerance; false counts as "plainly feasible at most".
  c10::optional<bool> confident;
  /// Deep copies (detached clones, on the parameters' devices) of the model's tensors, in the
  /// order offered; empty when the tensors are not kept in memory (see BestIterate).
  std::vector<torch::Tensor> parameters;
  /// A file written by BestIterate (BestIterateOptions::on_disk) that holds the tensors
  /// (torch::save of the tensor list); empty when none. BestIterate::restore reads it.
  std::string parameters_file;
  /// A checkpoint file that the user wrote with feasible::save (checkpoint.h) and offered with
  /// BestIterate::offer_checkpoint; empty when none. Restore it with feasible::load.
  std::string checkpoint;

  /// The largest violation max_j violations[j]; -infinity when there is no constraint.
  double max_violation() const;
  /// Whether every violation is <= `tolerance` (>= 0; default 0). True when m = 0.
  bool feasible(double tolerance = 0.0) const;
  /// Whether the candidate is feasible within `tolerance` and its `confident` flag is true.
  bool feasible_with_confidence(double tolerance = 0.0) const;
  /// Whether BestIterate::restore can copy this candidate into a model: it holds `parameters`
  /// in memory or a `parameters_file`.
  bool holds_parameters() const { return !parameters.empty() || !parameters_file.empty(); }
};

/// Options of BestIterate, validated by its constructor.
struct BestIterateOptions {
  /// Throws c10::Error ("BestIterateOptions.<field> must <rule>, got <value>") when
  /// `tolerance` is negative or not finite, or `on_disk` is set but is not an existing
  /// directory.
  void validate() const;
  /// Keep the tensors of every candidate (true), or only those of the current best (false,
  /// default). The values (step, objective, violations, flag) of every candidate are always
  /// kept, so mixture() works either way; deploying a mixture (restore_candidate) needs the
  /// tensors of its members, hence keep_all or the user's own checkpoints.
  TORCH_ARG(bool, keep_all) = false;
  /// A directory (existing, writable) where the kept tensors are written, one file per kept
  /// candidate ("candidate_<index>_step_<step>.pt", written atomically, overwritten if present),
  /// instead of memory. A file no longer needed (its candidate is no longer the best and
  /// keep_all is false) is removed; the files kept at the end are left for the user. Use one
  /// directory per BestIterate. Default: empty, the tensors are kept in memory.
  TORCH_ARG(std::string, on_disk) = "";
  /// A candidate is feasible when every violation is <= tolerance; finite and >= 0. Default 0.
  /// mixture() asks for expected violations <= tolerance too.
  TORCH_ARG(double, tolerance) = 0.0;
};

/// A randomized mixture of candidates: deploy candidate candidates[i] with probability
/// weights[i] (independently for each prediction, or each user, as the guarantee needs:
/// docs/selection.md, "Deploying a mixture").
struct Mixture {
  /// The indices (into the lists given to shrink(), or into BestIterate::candidates()) of the
  /// candidates with a nonzero weight, ascending; at most m + 1 of them.
  std::vector<int64_t> candidates;
  /// Their weights: > 0, summing to 1 (up to rounding), in the order of `candidates`.
  std::vector<double> weights;
  /// The expected objective sum_i weights[i] * f[candidates[i]].
  double objective = 0.0;
  /// The expected violation of every constraint j, sum_i weights[i] * g_j[candidates[i]].
  std::vector<double> violations;
  /// Whether a mixture with every expected violation <= 0 exists, as GLPK's simplex method
  /// decides it in floating point (then `violations` are <= 0 up to rounding: about 1e-16 times
  /// the largest |g| in practice, GLPK's feasibility tolerance 1e-7 at worst). When false, the
  /// mixture minimizes the largest expected violation first, then the objective.
  bool feasible = false;

  /// Draws one candidate index (an entry of `candidates`) with probability `weights`, from one
  /// uniform number of `generator` (e.g. at::detail::createCPUGenerator(seed)). Throws
  /// c10::Error when the mixture is empty or its lists differ in length.
  int64_t sample(torch::Generator& generator) const;
};

/// The mixture of at most m + 1 candidates with the lowest expected objective among those whose
/// expected violations are all <= 0: the linear program
///
///   minimize_p  sum_t p_t f_t   subject to   sum_t p_t g_jt <= 0 (every j),  p in the simplex,
///
/// with `objectives` f_t and `violations`[t][j] = g_jt (one list of m per candidate), solved by
/// GLPK's primal simplex method (glp_simplex), which returns a basic optimal solution: at most
/// m + 1 nonzero weights (one basic variable per row). When no such mixture exists,
/// it minimizes the largest expected violation s* = min_p max_j sum_t p_t g_jt first, then the
/// expected objective among mixtures whose violations are <= s*. Prints nothing.
/// Source: Cotter, Jiang, Sridharan (ALT 2019), the m + 1 solution; docs/selection.md.
/// Throws c10::Error (naming shrink, the argument, the index and the value) when there is no
/// candidate, the lists differ in length, the violation lists are ragged, or a value is not
/// finite.
Mixture shrink(const std::vector<double>& objectives,
               const std::vector<std::vector<double>>& violations);

/// Keeps the best of the candidates offered during training, by the rule of best(), with the
/// values of every candidate and the tensors only of those that may be needed: the current
/// best's (default), or every candidate's (keep_all). Not thread-safe.
class BestIterate {
 public:
  /// Validates `options` (BestIterateOptions::validate).
  explicit BestIterate(BestIterateOptions options = BestIterateOptions());

  /// Offers a candidate: its `step` (or epoch), validation `objective` and `violations` (one per
  /// scalar constraint, g - eps, feasible when <= 0), its `parameters` (e.g.
  /// model->parameters(); deep-copied when kept, never aliased), and optionally whether it is
  /// feasible with confidence. The tensors are copied only when the candidate becomes the best
  /// or keep_all is set; an empty `parameters` keeps values only. Returns whether it is now the
  /// best. Throws c10::Error naming the step when the objective or a violation is not finite,
  /// the number of violations differs from earlier candidates', or a tensor is undefined.
  bool offer(int64_t step, double objective, std::vector<double> violations,
             const std::vector<torch::Tensor>& parameters,
             c10::optional<bool> confident = c10::nullopt);

  /// Offers a candidate whose state the user keeps in a checkpoint file written with
  /// feasible::save (checkpoint.h); only the path is kept, never read. Restore the chosen one
  /// with feasible::load(best().checkpoint, contents). Same checks and result as offer().
  bool offer_checkpoint(int64_t step, double objective, std::vector<double> violations,
                        std::string checkpoint, c10::optional<bool> confident = c10::nullopt);

  /// The chosen candidate: the lowest objective among the candidates feasible with confidence
  /// (Candidate::feasible_with_confidence), else the lowest objective among the feasible ones,
  /// else the least largest violation (ties: the lower objective). Remaining ties go to the
  /// candidate offered earlier. Throws c10::Error when no candidate was offered.
  const Candidate& best() const;
  /// The position of best() in candidates(). Throws c10::Error when no candidate was offered.
  size_t best_index() const;

  /// Copies the best candidate's tensors into `parameters` (e.g. model->parameters()), in place
  /// under NoGradGuard (dtype and device converted as Tensor::copy_ does). Checks everything
  /// before copying anything: the number of tensors and every shape must match the candidate's,
  /// else c10::Error names the position and both shapes, and nothing has changed. Throws when
  /// the best candidate holds no tensors (offered by offer_checkpoint or without parameters).
  /// Returns the candidate restored.
  const Candidate& restore(std::vector<torch::Tensor> parameters) const;
  /// As restore(), for the candidate at position `index` of candidates() (e.g. a member of a
  /// Mixture), which must hold its tensors (keep_all, or it is the best).
  const Candidate& restore_candidate(size_t index, std::vector<torch::Tensor> parameters) const;

  /// Every candidate offered, in the order offered; only the kept ones hold tensors.
  const std::vector<Candidate>& candidates() const { return candidates_; }

  /// Why best() was chosen, e.g. "step 400: lowest validation objective 0.312 among 3 feasible
  /// candidates", "step 300: lowest validation objective 0.5 among 2 candidates feasible with
  /// confidence (4 feasible)", "no candidate feasible: least violation 0.004 at step 200", or
  /// "no candidate offered yet".
  std::string reason() const;

  /// shrink() of every candidate's objective and violations (the violations minus the
  /// tolerance, added back in the result); Mixture::candidates index candidates(). Confidence
  /// flags are not used. Throws c10::Error when no candidate was offered.
  Mixture mixture() const;

  /// The options given to the constructor.
  const BestIterateOptions& options() const { return options_; }

 private:
  bool add(Candidate candidate, const std::vector<torch::Tensor>& parameters);
  void keep_tensors(size_t index, const std::vector<torch::Tensor>& parameters);
  void drop_tensors(size_t index);
  bool better(const Candidate& a, const Candidate& b) const;

  BestIterateOptions options_;
  std::vector<Candidate> candidates_;
  size_t best_ = 0;
};

}  // namespace feasible
