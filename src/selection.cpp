// Candidate, BestIterate and Mixture::sample (docs/selection.md). shrink() is in shrink.cpp.
#include "feasible/selection.h"

#include <torch/serialize.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "src/validate.h"

namespace feasible {
namespace {

/// The rank of a candidate's kind: 0 feasible with confidence, 1 feasible, 2 infeasible.
int tier(const Candidate& c, double tolerance) {
  if (c.feasible_with_confidence(tolerance)) return 0;
  return c.feasible(tolerance) ? 1 : 2;
}

/// "s" unless n == 1.
const char* plural(size_t n) { return n == 1 ? "" : "s"; }

/// Reads the tensors of candidate `c` (from memory or its file); `fn` names the caller.
std::vector<torch::Tensor> stored_tensors(const Candidate& c, const char* fn) {
  if (!c.parameters.empty()) return c.parameters;
  std::vector<torch::Tensor> tensors;
  try {
    torch::load(tensors, c.parameters_file);
  } catch (const c10::Error& e) {
    TORCH_CHECK(false, fn, ": cannot read the tensors of the candidate at step ", c.step, " from '",
                c.parameters_file, "': ", e.what_without_backtrace());
  }
  return tensors;
}

/// Why candidate `c` (at position `index`) holds no tensors, for restore's message.
std::string no_tensors_hint(const Candidate& c, bool keep_all) {
  if (!c.checkpoint.empty()) {
    return c10::str("it was offered as the checkpoint '", c.checkpoint,
                    "'; restore it with feasible::load");
  }
  if (!keep_all) {
    return "only the best candidate's tensors are kept; set BestIterateOptions::keep_all(true) "
           "to keep every candidate's";
  }
  return "it was offered without parameters";
}

}  // namespace

double Candidate::max_violation() const {
  double largest = -std::numeric_limits<double>::infinity();
  for (double v : violations) largest = std::max(largest, v);
  return largest;
}

bool Candidate::feasible(double tolerance) const {
  return std::all_of(violations.begin(), violations.end(),
                     [&](double v) { return v <= tolerance; });
}

bool Candidate::feasible_with_confidence(double tolerance) const {
  return confident.value_or(false) && feasible(tolerance);
}

void BestIterateOptions::validate() const {
  const detail::Validator check("BestIterateOptions");
  check.at_least("tolerance", tolerance(), 0.0);
  if (!on_disk().empty()) {
    std::error_code error;
    check.require(std::filesystem::is_directory(on_disk(), error), "on_disk",
                  "be an existing directory (or empty)", "'", on_disk(), "'");
  }
}

int64_t Mixture::sample(torch::Generator& generator) const {
  TORCH_CHECK(!candidates.empty(), "Mixture::sample: the mixture is empty (no candidate)");
  TORCH_CHECK(weights.size() == candidates.size(), "Mixture::sample: ", candidates.size(),
              " candidates but ", weights.size(), " weights");
  const double u = torch::rand({1}, generator, torch::kFloat64).item<double>();
  double cumulative = 0.0;
  for (size_t i = 0; i < weights.size(); ++i) {
    cumulative += weights[i];
    if (u < cumulative) return candidates[i];
  }
  return candidates.back();  // u within rounding of 1
}

BestIterate::BestIterate(BestIterateOptions options) : options_(std::move(options)) {
  options_.validate();
}

bool BestIterate::offer(int64_t step, double objective, std::vector<double> violations,
                        const std::vector<torch::Tensor>& parameters,
                        c10::optional<bool> confident) {
  for (size_t i = 0; i < parameters.size(); ++i) {
    TORCH_CHECK(parameters[i].defined(), "BestIterate::offer(step ", step, "): parameters[", i,
                "] is an undefined tensor");
  }
  Candidate candidate;
  candidate.step = step;
  candidate.objective = objective;
  candidate.violations = std::move(violations);
  candidate.confident = confident;
  return add(std::move(candidate), parameters);
}

bool BestIterate::offer_checkpoint(int64_t step, double objective, std::vector<double> violations,
                                   std::string checkpoint, c10::optional<bool> confident) {
  TORCH_CHECK(!checkpoint.empty(), "BestIterate::offer_checkpoint(step ", step,
              "): the checkpoint path is empty");
  Candidate candidate;
  candidate.step = step;
  candidate.objective = objective;
  candidate.violations = std::move(violations);
  candidate.confident = confident;
  candidate.checkpoint = std::move(checkpoint);
  return add(std::move(candidate), {});
}

bool BestIterate::add(Candidate candidate, const std::vector<torch::Tensor>& parameters) {
  const int64_t step = candidate.step;
  TORCH_CHECK(std::isfinite(candidate.objective), "BestIterate::offer(step ", step,
              "): objective must be finite, got ", candidate.objective);
  for (size_t j = 0; j < candidate.violations.size(); ++j) {
    TORCH_CHECK(std::isfinite(candidate.violations[j]), "BestIterate::offer(step ", step,
                "): violations[", j, "] must be finite, got ", candidate.violations[j]);
  }
  if (!candidates_.empty()) {
    const size_t m = candidates_[0].violations.size();
    TORCH_CHECK(candidate.violations.size() == m, "BestIterate::offer(step ", step, "): got ",
                candidate.violations.size(), " violations but earlier candidates have ", m,
                " (one per scalar constraint, the same for every candidate)");
  }
  const bool is_best = candidates_.empty() || better(candidate, candidates_[best_]);
  const size_t index = candidates_.size();
  candidates_.push_back(std::move(candidate));
  if (is_best || options_.keep_all()) {
    try {
      keep_tensors(index, parameters);
    } catch (...) {
      candidates_.pop_back();  // nothing has changed
      throw;
    }
  }
  if (is_best) {
    const size_t previous = best_;
    best_ = index;
    if (index != 0 && !options_.keep_all()) drop_tensors(previous);
  }
  return is_best;
}

void BestIterate::keep_tensors(size_t index, const std::vector<torch::Tensor>& parameters) {
  if (parameters.empty()) return;
  Candidate& c = candidates_[index];
  std::vector<torch::Tensor> copies;
  copies.reserve(parameters.size());
  const bool in_memory = options_.on_disk().empty();
  for (const auto& p : parameters) copies.push_back(in_memory ? p.detach().clone() : p.detach());
  if (in_memory) {
    c.parameters = std::move(copies);
    return;
  }
  namespace fs = std::filesystem;
  const fs::path file =
      fs::path(options_.on_disk()) / c10::str("candidate_", index, "_step_", c.step, ".pt");
  const fs::path temporary = file.string() + ".tmp";
  try {
    torch::save(copies, temporary.string());
  } catch (const c10::Error& e) {
    std::error_code ignored;
    fs::remove(temporary, ignored);
    TORCH_CHECK(false, "BestIterate::offer(step ", c.step, "): cannot write '", temporary.string(),
                "': ", e.what_without_backtrace());
  }
  std::error_code error;
  fs::rename(temporary, file, error);
  TORCH_CHECK(!error, "BestIterate::offer(step ", c.step, "): cannot rename '", temporary.string(),
              "' to '", file.string(), "': ", error.message());
  c.parameters_file = file.string();
}

void BestIterate::drop_tensors(size_t index) {
  Candidate& c = candidates_[index];
  c.parameters.clear();
  if (!c.parameters_file.empty()) {
    std::error_code ignored;  // a file that cannot be removed is left behind, harmlessly
    std::filesystem::remove(c.parameters_file, ignored);
    c.parameters_file.clear();
  }
}

bool BestIterate::better(const Candidate& a, const Candidate& b) const {
  const double tolerance = options_.tolerance();
  const int ta = tier(a, tolerance);
  const int tb = tier(b, tolerance);
  if (ta != tb) return ta < tb;
  if (ta < 2) return a.objective < b.objective;
  const double va = a.max_violation();
  const double vb = b.max_violation();
  return va < vb || (va == vb && a.objective < b.objective);
}

size_t BestIterate::best_index() const {
  TORCH_CHECK(!candidates_.empty(), "BestIterate::best: no candidate offered yet");
  return best_;
}

const Candidate& BestIterate::best() const { return candidates_[best_index()]; }

const Candidate& BestIterate::restore(std::vector<torch::Tensor> parameters) const {
  TORCH_CHECK(!candidates_.empty(), "BestIterate::restore: no candidate offered yet");
  return restore_candidate(best_, std::move(parameters));
}

const Candidate& BestIterate::restore_candidate(size_t index,
                                                std::vector<torch::Tensor> parameters) const {
  const char* fn = "BestIterate::restore";
  TORCH_CHECK(index < candidates_.size(), fn, ": candidate index ", index, " is out of range (",
              candidates_.size(), " candidate", plural(candidates_.size()), ")");
  const Candidate& c = candidates_[index];
  TORCH_CHECK(c.holds_parameters(), fn, ": the candidate at step ", c.step, " (index ", index,
              ") holds no tensors: ", no_tensors_hint(c, options_.keep_all()));
  const std::vector<torch::Tensor> stored = stored_tensors(c, fn);
  TORCH_CHECK(parameters.size() == stored.size(), fn, ": got ", parameters.size(), " tensor",
              plural(parameters.size()), " but the candidate at step ", c.step, " holds ",
              stored.size());
  for (size_t i = 0; i < stored.size(); ++i) {
    TORCH_CHECK(parameters[i].defined(), fn, ": parameters[", i, "] is an undefined tensor");
    TORCH_CHECK(parameters[i].sizes() == stored[i].sizes(), fn, ": parameters[", i, "] has shape ",
                parameters[i].sizes(), " but the candidate at step ", c.step, " holds shape ",
                stored[i].sizes());
  }
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < stored.size(); ++i) parameters[i].copy_(stored[i]);
  return c;
}

std::string BestIterate::reason() const {
  if (candidates_.empty()) return "no candidate offered yet";
  const double tolerance = options_.tolerance();
  const Candidate& b = candidates_[best_];
  size_t confident = 0;
  size_t feasible = 0;
  for (const auto& c : candidates_) {
    confident += c.feasible_with_confidence(tolerance) ? 1 : 0;
    feasible += c.feasible(tolerance) ? 1 : 0;
  }
  switch (tier(b, tolerance)) {
    case 0:
      return c10::str("step ", b.step, ": lowest validation objective ", b.objective, " among ",
                      confident, " candidate", plural(confident), " feasible with confidence (",
                      feasible, " feasible)");
    case 1:
      return c10::str("step ", b.step, ": lowest validation objective ", b.objective, " among ",
                      feasible, " feasible candidate", plural(feasible));
    default:
      return c10::str("no candidate feasible: least violation ", b.max_violation(), " at step ",
                      b.step);
  }
}

Mixture BestIterate::mixture() const {
  TORCH_CHECK(!candidates_.empty(), "BestIterate::mixture: no candidate offered yet");
  const double tolerance = options_.tolerance();
  std::vector<double> objectives;
  std::vector<std::vector<double>> violations;
  for (const auto& c : candidates_) {
    objectives.push_back(c.objective);
    violations.push_back(c.violations);
    for (double& v : violations.back()) v -= tolerance;
  }
  Mixture mixture = shrink(objectives, violations);
  for (double& v : mixture.violations) v += tolerance;
  return mixture;
}

}  // namespace feasible
