// Checkpoint pieces (src/checkpoint_io.h): the problem's constraints, described and valued.
#include <c10/util/Type.h>

#include <algorithm>
#include <map>
#include <sstream>
#include <typeinfo>

#include "feasible/formulation.h"
#include "feasible/penalty.h"
#include "src/checkpoint_io.h"

namespace feasible {
namespace detail {
namespace ckpt {

namespace {

std::string describe_updater(const PenaltyUpdater* u) {
  if (u == nullptr) return "none";
  std::ostringstream os;
  os << u->name() << "(";
  if (const auto* m = dynamic_cast<const MultiplicativePenaltyUpdater*>(u)) {
    os << "growth=" << num(m->growth()) << ", ";
  } else if (const auto* ad = dynamic_cast<const AdditivePenaltyUpdater*>(u)) {
    os << "increment=" << num(ad->increment()) << ", ";
  } else {
    os << "type=" << c10::demangle(typeid(*u).name()) << ", ";
  }
  const auto& o = u->options();
  os << "tolerance=" << num(o.tolerance())
     << ", max_value=" << (o.max_value() ? num(*o.max_value()) : std::string("none"))
     << ", restart_on_feasible=" << (o.restart_on_feasible() ? "true" : "false") << ")";
  return os.str();
}

std::string describe_formulation(const Formulation& f) {
  std::string s = f.name();
  if (const auto* al = dynamic_cast<const AugmentedLagrangian*>(&f)) {
    s += std::string("(scale_dual_by_penalty=") +
         (al->options().scale_dual_by_penalty() ? "true" : "false") + ")";
  }
  return s;
}

// The fields that must agree between the checkpoint and the problem it is loaded into.
std::vector<std::pair<std::string, std::string>> describe(const Constraint& c) {
  const ConstraintOptions& o = c.options();
  std::vector<std::pair<std::string, std::string>> d;
  d.emplace_back("kind", to_string(c.kind()));
  d.emplace_back("size", std::to_string(c.size()));
  d.emplace_back("formulation", describe_formulation(*c.formulation()));
  std::string mult = "none";
  if (c.multiplier()) {
    switch (o.multiplier()) {
      case MultiplierKind::kDense:
        mult = "dense";
        break;
      case MultiplierKind::kIndexed:
        mult = std::string("indexed(lazy=") + (o.lazy() ? "true" : "false") +
               ", sparse_gradient=" + (o.sparse_gradient() ? "true" : "false") + ")";
        break;
      case MultiplierKind::kImplicit:
        mult = "implicit";
        break;
    }
    const auto bound = c.multiplier()->max_value();
    mult += ", bound " + (bound ? num(*bound) : std::string("none"));
  }
  d.emplace_back("multiplier", mult);
  std::string pen = "none";
  if (c.penalty()) {
    pen = std::string(c.penalty()->per_entry() ? "per entry" : "scalar") + ", initial value " +
          num(c.penalty()->init()) + ", " +
          std::string(c10::toString(c.penalty()->value().scalar_type()));
  }
  d.emplace_back("penalty", pen);
  d.emplace_back("penalty updater", describe_updater(o.penalty_updater().get()));
  return d;
}

// The difference between the stored constraint names and the problem's (none when equal).
void compare_names(const std::vector<std::string>& stored_names, const Problem& problem,
                   std::vector<std::string>& diffs) {
  std::vector<std::string> names;
  for (const auto& c : problem.constraints()) names.push_back(c.name());
  if (stored_names != names) {
    std::vector<std::string> missing, extra;
    for (const auto& n : stored_names) {
      if (!problem.has_constraint(n)) missing.push_back(n);
    }
    for (const auto& n : names) {
      if (std::find(stored_names.begin(), stored_names.end(), n) == stored_names.end()) {
        extra.push_back(n);
      }
    }
    std::string d = "constraints: the checkpoint has " + join(stored_names) +
                    ", this problem has " + join(names);
    if (!missing.empty()) d += "; missing here: " + join(missing);
    if (!extra.empty()) d += "; not in the checkpoint: " + join(extra);
    if (missing.empty() && extra.empty()) d += " (same names, different order)";
    diffs.push_back(d);
  }
}

// Compares one stored constraint with `c` (its description) and stages its values.
void read_constraint(InputArchive& ca, const Constraint& c, std::vector<std::string>& diffs,
                     std::vector<Copy>& copies,
                     std::vector<std::pair<Constraint, torch::Tensor>>& penalties) {
  const std::string what = "constraint '" + c.name() + "'";
  const auto here = describe(c);
  std::map<std::string, std::string> stored;
  const int64_t nf = get_int(ca, "fields/size");
  for (int64_t k = 0; k < nf; ++k) {
    stored[get_str(ca, "field/" + std::to_string(k) + "/name")] =
        get_str(ca, "field/" + std::to_string(k) + "/value");
  }
  bool same = true;
  for (const auto& f : here) {
    auto it = stored.find(f.first);
    const std::string theirs = it == stored.end() ? "(absent)" : it->second;
    if (theirs != f.second) {
      diffs.push_back(what + ", " + f.first + ": " + theirs + " in the checkpoint, " + f.second +
                      " here");
      same = false;
    }
  }
  if (!same) return;
  if (c.multiplier()) {
    InputArchive ma;
    ca.read("multiplier", ma);
    read_tensors(ma, module_tensors(*c.multiplier()), what + " multiplier", diffs, copies);
  }
  if (c.penalty()) {
    torch::Tensor v = get_tensor(ca, "penalty");
    const torch::Tensor& cur = c.penalty()->value();
    TORCH_CHECK(v.sizes() == cur.sizes() && v.scalar_type() == cur.scalar_type(), what,
                ": the stored penalty is ", shape_of(v), ", expected ", shape_of(cur));
    TORCH_CHECK((v > 0).all().item<bool>(), what,
                ": the stored penalty coefficient is not > 0 everywhere");
    penalties.emplace_back(c, v);
  }
}

}  // namespace

void write_problem(OutputArchive& oa, const Problem& problem) {
  const auto& constraints = problem.constraints();
  put_int(oa, "constraints/size", static_cast<int64_t>(constraints.size()));
  for (size_t i = 0; i < constraints.size(); ++i) {
    const Constraint& c = constraints[i];
    OutputArchive ca(oa.compilation_unit());
    put_str(ca, "name", c.name());
    const auto d = describe(c);
    put_int(ca, "fields/size", static_cast<int64_t>(d.size()));
    for (size_t k = 0; k < d.size(); ++k) {
      put_str(ca, "field/" + std::to_string(k) + "/name", d[k].first);
      put_str(ca, "field/" + std::to_string(k) + "/value", d[k].second);
    }
    if (c.multiplier()) {
      OutputArchive ma(oa.compilation_unit());
      write_tensors(ma, module_tensors(*c.multiplier()));
      ca.write("multiplier", ma);
    }
    if (c.penalty()) ca.write("penalty", c.penalty()->value().detach(), /*is_buffer=*/true);
    oa.write("constraint/" + std::to_string(i), ca);
  }
}

void read_problem(InputArchive& oa, const Problem& problem, std::vector<std::string>& stored_names,
                  std::vector<std::string>& diffs, std::vector<Copy>& copies,
                  std::vector<std::pair<Constraint, torch::Tensor>>& penalties) {
  const int64_t n_constraints = get_int(oa, "constraints/size");
  std::vector<InputArchive> cas(static_cast<size_t>(std::max<int64_t>(n_constraints, 0)));
  for (int64_t i = 0; i < n_constraints; ++i) {
    oa.read("constraint/" + std::to_string(i), cas[i]);
    stored_names.push_back(get_str(cas[i], "name"));
  }
  compare_names(stored_names, problem, diffs);
  for (int64_t i = 0; i < n_constraints; ++i) {
    if (!problem.has_constraint(stored_names[i])) continue;
    read_constraint(cas[i], problem.constraint(stored_names[i]), diffs, copies, penalties);
  }
}

}  // namespace ckpt
}  // namespace detail
}  // namespace feasible
