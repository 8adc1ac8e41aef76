// Checkpoints: save and load the complete state of a constrained training (checkpoint.h).
//
// The payload is a torch::serialize::OutputArchive (written to memory), framed by
// src/checkpoint_format.h (magic, version, size, CRC-32) and written atomically. Every
// per-parameter optimizer state is written by position ("group/G/param/K/state"), never under
// the parameter's address as torch's Optimizer::save does. load() reads and validates the whole
// file into temporaries and only then assigns, so a refused file changes nothing.
#include "feasible/checkpoint.h"

#include <ATen/CPUGeneratorImpl.h>
#include <c10/util/Type.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <iomanip>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <type_traits>
#include <typeinfo>

#include "feasible/formulation.h"
#include "feasible/optim/extra.h"
#include "feasible/optim/nupi.h"
#include "feasible/optimizer.h"
#include "feasible/penalty.h"
#include "feasible/problem.h"
#include "feasible/version.h"
#include "src/checkpoint_format.h"
#include "src/optimizer_traits.h"
#include "src/state_key.h"

namespace feasible {

static_assert(kCheckpointFormatVersion == detail::kCheckpointFormatVersion,
              "the public and the framing format versions must agree");

CheckpointContents& CheckpointContents::module(std::string name, torch::nn::Module& module) {
  TORCH_CHECK(!name.empty(), "CheckpointContents::module: the name must not be empty");
  for (const auto& m : modules_) {
    TORCH_CHECK(m.first != name, "CheckpointContents::module: the name '", name,
                "' is already used");
  }
  modules_.emplace_back(std::move(name), &module);
  return *this;
}

CheckpointContents& CheckpointContents::optimizer(ConstrainedOptimizer& optimizer) {
  TORCH_CHECK(optimizer_ == nullptr || optimizer_ == &optimizer,
              "CheckpointContents::optimizer: a constrained optimizer was already set; a "
              "checkpoint holds at most one");
  optimizer_ = &optimizer;
  return *this;
}

CheckpointContents& CheckpointContents::random_state(bool include) {
  random_state_ = include;
  return *this;
}

namespace {

using torch::serialize::InputArchive;
using torch::serialize::OutputArchive;

using detail::key_of;
using detail::StateKey;

std::string num(double v) {
  std::ostringstream os;
  os << std::setprecision(17) << v;
  return os.str();
}

std::string shape_of(const torch::Tensor& t) {
  std::ostringstream os;
  os << t.sizes() << " " << t.scalar_type();
  return os.str();
}

std::string join(const std::vector<std::string>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + v[i];
  return s + "]";
}

// ------------------------------------------------------------ archive helpers

void put_int(OutputArchive& a, const std::string& key, int64_t v) { a.write(key, c10::IValue(v)); }
void put_str(OutputArchive& a, const std::string& key, const std::string& v) {
  a.write(key, c10::IValue(v));
}
int64_t get_int(InputArchive& a, const std::string& key) {
  c10::IValue v;
  a.read(key, v);
  TORCH_CHECK(v.isInt(), "entry '", key, "' is not an integer");
  return v.toInt();
}
std::string get_str(InputArchive& a, const std::string& key) {
  c10::IValue v;
  a.read(key, v);
  TORCH_CHECK(v.isString(), "entry '", key, "' is not a string");
  return v.toStringRef();
}
torch::Tensor get_tensor(InputArchive& a, const std::string& key) {
  torch::Tensor t;
  a.read(key, t, /*is_buffer=*/true);
  return t;
}
// ------------------------------------------------------------ module tensors

// The parameters then the buffers of a module (recursively), by name; undefined buffers skipped.
std::vector<std::pair<std::string, torch::Tensor>> module_tensors(const torch::nn::Module& m) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& p : m.named_parameters(/*recurse=*/true)) {
    if (p.value().defined()) out.emplace_back("parameter " + p.key(), p.value());
  }
  for (const auto& b : m.named_buffers(/*recurse=*/true)) {
    if (b.value().defined()) out.emplace_back("buffer " + b.key(), b.value());
  }
  return out;
}

void write_tensors(OutputArchive& a, const std::vector<std::pair<std::string, torch::Tensor>>& ts) {
  put_int(a, "tensors/size", static_cast<int64_t>(ts.size()));
  for (size_t k = 0; k < ts.size(); ++k) {
    put_str(a, "tensor/" + std::to_string(k) + "/name", ts[k].first);
    a.write("tensor/" + std::to_string(k), ts[k].second.detach(), /*is_buffer=*/true);
  }
}

// A pending in-place copy into an existing tensor.
struct Copy {
  torch::Tensor dst;
  torch::Tensor src;
};

// Reads tensors written by write_tensors and matches them against `current` (by name, in
// order, shape and dtype). Differences go to `diffs`; matches to `copies`.
void read_tensors(InputArchive& a,
                  const std::vector<std::pair<std::string, torch::Tensor>>& current,
                  const std::string& what, std::vector<std::string>& diffs,
                  std::vector<Copy>& copies) {
  const int64_t n = get_int(a, "tensors/size");
  TORCH_CHECK(n >= 0, "negative tensor count for ", what);
  std::vector<std::string> names;
  for (int64_t k = 0; k < n; ++k)
    names.push_back(get_str(a, "tensor/" + std::to_string(k) + "/name"));
  std::vector<std::string> here;
  for (const auto& c : current) here.push_back(c.first);
  if (names != here) {
    diffs.push_back(what + ": the checkpoint holds " + join(names) + ", this one has " +
                    join(here));
    return;
  }
  for (int64_t k = 0; k < n; ++k) {
    torch::Tensor t = get_tensor(a, "tensor/" + std::to_string(k));
    const torch::Tensor& dst = current[k].second;
    if (t.sizes() != dst.sizes() || t.scalar_type() != dst.scalar_type()) {
      diffs.push_back(what + ", " + names[k] + ": " + shape_of(t) + " in the checkpoint, " +
                      shape_of(dst) + " here");
      continue;
    }
    copies.push_back({dst, t});
  }
}

// ------------------------------------------------------------ optimizers

using detail::OptimizerTraits;
using detail::StateField;

std::vector<torch::Tensor> all_params(const torch::optim::Optimizer& o) {
  std::vector<torch::Tensor> out;
  for (const auto& g : o.param_groups()) {
    for (const auto& p : g.params()) out.push_back(p);
  }
  return out;
}

void write_optimizer(OutputArchive& a, const torch::optim::Optimizer& o, const std::string& label,
                     const std::string& path) {
  const OptimizerTraits* type = detail::traits_of(o);
  TORCH_CHECK(type != nullptr, "cannot save checkpoint '", path, "': the ", label, " has type ",
              c10::demangle(typeid(o).name()),
              ", which checkpoints do not support (supported: ", detail::supported_optimizers(),
              ")");
  put_str(a, "type", type->name);
  const auto& groups = o.param_groups();
  put_int(a, "groups/size", static_cast<int64_t>(groups.size()));
  for (size_t g = 0; g < groups.size(); ++g) {
    const std::string gk = "group/" + std::to_string(g);
    OutputArchive opts(a.compilation_unit());
    groups[g].options().serialize(opts);
    a.write(gk + "/options", opts);
    const auto& params = groups[g].params();
    put_int(a, gk + "/params/size", static_cast<int64_t>(params.size()));
    for (size_t k = 0; k < params.size(); ++k) {
      const std::string pk = gk + "/param/" + std::to_string(k);
      put_str(a, pk + "/shape", shape_of(params[k]));
      auto it = o.state().find(key_of(params[k]));
      if (it != o.state().end()) {
        TORCH_CHECK(type->has_state(), "cannot save checkpoint '", path, "': the ", label, " (",
                    type->name, ") has an unexpected per-parameter state");
        OutputArchive st(a.compilation_unit());
        it->second->serialize(st);
        a.write(pk + "/state", st);
      }
    }
  }
  if (const auto* extra = dynamic_cast<const optim::ExtrapolationOptimizer*>(&o)) {
    const auto& saved = extra->saved_point();
    put_int(a, "saved_point/size", static_cast<int64_t>(saved.size()));
    for (size_t k = 0; k < saved.size(); ++k) {
      a.write("saved_point/" + std::to_string(k), saved[k].detach(), /*is_buffer=*/true);
    }
  }
}

// The new state of one optimizer, validated, waiting to be assigned.
struct StagedOptimizer {
  torch::optim::Optimizer* optimizer = nullptr;
  std::vector<std::unique_ptr<torch::optim::OptimizerOptions>> options;  // per group
  std::vector<std::pair<StateKey, std::unique_ptr<torch::optim::OptimizerParamState>>> states;
  optim::ExtrapolationOptimizer* extra = nullptr;
  std::vector<torch::Tensor> saved_point;
};

// Compares the stored optimizer's structure with `o`; on a match (no new differences) stages its
// state. Throws (caught by load) only for a malformed payload.
void read_optimizer(InputArchive& a, torch::optim::Optimizer& o, const std::string& label,
                    std::vector<std::string>& diffs, std::vector<StagedOptimizer>& staged) {
  const OptimizerTraits* type = detail::traits_of(o);
  const std::string stored_type = get_str(a, "type");
  if (type == nullptr) {
    diffs.push_back(
        label + ": type " + c10::demangle(typeid(o).name()) +
        " is not supported by checkpoints (supported: " + detail::supported_optimizers() + ")");
    return;
  }
  if (stored_type != type->name) {
    diffs.push_back(label + ": " + stored_type + " in the checkpoint, " + type->name + " here");
    return;
  }
  auto& groups = o.param_groups();
  const int64_t n_groups = get_int(a, "groups/size");
  if (n_groups != static_cast<int64_t>(groups.size())) {
    diffs.push_back(label + ": " + std::to_string(n_groups) +
                    " parameter groups in the checkpoint, " + std::to_string(groups.size()) +
                    " here");
    return;
  }
  const size_t before = diffs.size();
  for (int64_t g = 0; g < n_groups; ++g) {
    const std::string gk = "group/" + std::to_string(g);
    const auto& params = groups[g].params();
    const int64_t n = get_int(a, gk + "/params/size");
    if (n != static_cast<int64_t>(params.size())) {
      diffs.push_back(label + ", group " + std::to_string(g) + ": " + std::to_string(n) +
                      " parameters in the checkpoint, " + std::to_string(params.size()) + " here");
      continue;
    }
    for (int64_t k = 0; k < n; ++k) {
      const std::string stored = get_str(a, gk + "/param/" + std::to_string(k) + "/shape");
      if (stored != shape_of(params[k])) {
        diffs.push_back(label + ", group " + std::to_string(g) + ", parameter " +
                        std::to_string(k) + ": " + stored + " in the checkpoint, " +
                        shape_of(params[k]) + " here");
      }
    }
  }
  if (diffs.size() != before) return;

  StagedOptimizer s;
  s.optimizer = &o;
  for (int64_t g = 0; g < n_groups; ++g) {
    const std::string gk = "group/" + std::to_string(g);
    InputArchive opts;
    a.read(gk + "/options", opts);
    auto options = groups[g].options().clone();
    options->serialize(opts);
    s.options.push_back(std::move(options));
    const auto& params = groups[g].params();
    for (size_t k = 0; k < params.size(); ++k) {
      const std::string pk = gk + "/param/" + std::to_string(k);
      InputArchive st_archive;
      if (!a.try_read(pk + "/state", st_archive)) continue;
      TORCH_CHECK(type->has_state(), label, " (", type->name,
                  ") has a per-parameter state in the checkpoint, which this type never has");
      auto st = type->make_state();
      st->serialize(st_archive);
      const torch::Tensor& p = params[k];
      for (const StateField& f : type->fields(*st)) {
        if (!f.tensor->defined()) {
          TORCH_CHECK(!f.required, label, ", ", pk, ": a state tensor is missing");
          continue;
        }
        TORCH_CHECK(f.tensor->sizes() == p.sizes(), label, ", ", pk, ": a state tensor has shape ",
                    f.tensor->sizes(), ", the parameter ", p.sizes());
        const auto want = f.is_bool ? torch::kBool : p.scalar_type();
        TORCH_CHECK(f.tensor->scalar_type() == want, label, ", ", pk, ": a state tensor has dtype ",
                    f.tensor->scalar_type(), ", expected ", want);
        *f.tensor = f.tensor->to(p.device());
      }
      s.states.emplace_back(key_of(p), std::move(st));
    }
  }
  if (auto* extra = dynamic_cast<optim::ExtrapolationOptimizer*>(&o)) {
    s.extra = extra;
    const std::vector<torch::Tensor> params = all_params(o);
    const int64_t n = get_int(a, "saved_point/size");
    TORCH_CHECK(n == 0 || n == static_cast<int64_t>(params.size()), label,
                ": the saved extrapolation point has ", n, " tensors, expected ", params.size());
    for (int64_t k = 0; k < n; ++k) {
      torch::Tensor t = get_tensor(a, "saved_point/" + std::to_string(k));
      TORCH_CHECK(t.sizes() == params[k].sizes() && t.scalar_type() == params[k].scalar_type(),
                  label, ": saved point ", k, " is ", shape_of(t), ", the parameter ",
                  shape_of(params[k]));
      s.saved_point.push_back(t.to(params[k].device()));
    }
  }
  staged.push_back(std::move(s));
}

// ------------------------------------------------------------ problem description

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

// ------------------------------------------------------------ save

void check_coverage(const CheckpointContents& contents, std::vector<std::string>& problems) {
  if (contents.optimizer() == nullptr) return;
  std::set<const void*> owned;
  for (const auto& m : contents.modules()) {
    for (const auto& p : m.second->parameters(true)) owned.insert(p.unsafeGetTensorImpl());
  }
  const auto& primal = contents.optimizer()->primal_optimizers();
  for (size_t j = 0; j < primal.size(); ++j) {
    const auto& groups = primal[j]->param_groups();
    for (size_t g = 0; g < groups.size(); ++g) {
      for (size_t k = 0; k < groups[g].params().size(); ++k) {
        if (owned.count(groups[g].params()[k].unsafeGetTensorImpl()) == 0) {
          problems.push_back("primal optimizer " + std::to_string(j) + ", group " +
                             std::to_string(g) + ", parameter " + std::to_string(k) +
                             " belongs to none of the modules given (add its module with "
                             "CheckpointContents::module)");
        }
      }
    }
  }
}

std::string scheme_name(const ConstrainedOptimizer& o) { return c10::demangle(typeid(o).name()); }

std::string build_payload(const std::string& path, const CheckpointContents& contents) {
  std::vector<std::string> problems;
  check_coverage(contents, problems);
  if (!problems.empty()) {
    std::string msg = "cannot save checkpoint '" + path + "':";
    for (const auto& p : problems) msg += "\n  - " + p;
    TORCH_CHECK(false, msg);
  }
  OutputArchive root;
  put_str(root, "library_version", kVersion);
  put_int(root, "format_version", kCheckpointFormatVersion);

  put_int(root, "modules/size", static_cast<int64_t>(contents.modules().size()));
  for (size_t i = 0; i < contents.modules().size(); ++i) {
    const auto& m = contents.modules()[i];
    OutputArchive ma(root.compilation_unit());
    put_str(ma, "name", m.first);
    write_tensors(ma, module_tensors(*m.second));
    root.write("module/" + std::to_string(i), ma);
  }

  if (ConstrainedOptimizer* co = contents.optimizer()) {
    OutputArchive oa(root.compilation_unit());
    put_str(oa, "scheme", scheme_name(*co));
    put_int(oa, "iteration", co->iteration());
    // The problem, by constraint name.
    const auto& constraints = co->problem().constraints();
    put_int(oa, "constraints/size", static_cast<int64_t>(constraints.size()));
    for (size_t i = 0; i < constraints.size(); ++i) {
      const Constraint& c = constraints[i];
      OutputArchive ca(root.compilation_unit());
      put_str(ca, "name", c.name());
      const auto d = describe(c);
      put_int(ca, "fields/size", static_cast<int64_t>(d.size()));
      for (size_t k = 0; k < d.size(); ++k) {
        put_str(ca, "field/" + std::to_string(k) + "/name", d[k].first);
        put_str(ca, "field/" + std::to_string(k) + "/value", d[k].second);
      }
      if (c.multiplier()) {
        OutputArchive ma(root.compilation_unit());
        write_tensors(ma, module_tensors(*c.multiplier()));
        ca.write("multiplier", ma);
      }
      if (c.penalty()) ca.write("penalty", c.penalty()->value().detach(), /*is_buffer=*/true);
      oa.write("constraint/" + std::to_string(i), ca);
    }
    const auto& primal = co->primal_optimizers();
    put_int(oa, "primal/size", static_cast<int64_t>(primal.size()));
    for (size_t j = 0; j < primal.size(); ++j) {
      OutputArchive pa(root.compilation_unit());
      write_optimizer(pa, *primal[j], "primal optimizer " + std::to_string(j), path);
      oa.write("primal/" + std::to_string(j), pa);
    }
    put_int(oa, "has_dual", co->dual_optimizer() ? 1 : 0);
    if (co->dual_optimizer()) {
      OutputArchive da(root.compilation_unit());
      write_optimizer(da, *co->dual_optimizer(), "dual optimizer", path);
      oa.write("dual", da);
    }
    root.write("optimizer", oa);
  }

  if (contents.random_state()) {
    at::Generator gen = at::detail::getDefaultCPUGenerator();
    torch::Tensor state;
    {
      std::lock_guard<std::mutex> lock(gen.mutex());
      state = gen.get_state();
    }
    root.write("random_state", state, /*is_buffer=*/true);
  }

  std::ostringstream os;
  root.save_to(os);
  return os.str();
}

}  // namespace

SaveInfo save(const std::string& path, const CheckpointContents& contents) {
  TORCH_CHECK(!path.empty(), "cannot save checkpoint: the path is empty");
  std::string payload;
  try {
    payload = build_payload(path, contents);
  } catch (const c10::Error& e) {
    const std::string m = e.what_without_backtrace();
    if (m.rfind("cannot save checkpoint '", 0) == 0) throw;
    TORCH_CHECK(false, "cannot save checkpoint '", path, "': ", m);
  } catch (const std::exception& e) {
    TORCH_CHECK(false, "cannot save checkpoint '", path, "': ", e.what());
  }
  const std::string bytes = detail::encode_checkpoint(payload);
  // Stale temporaries go first: they may be what fills the disk.
  SaveInfo info;
  info.removed_temporaries = detail::remove_stale_temporaries(path);
  try {
    detail::write_file_atomically(path, bytes);
  } catch (const std::runtime_error& e) {
    // The message already names the file.
    TORCH_CHECK(false, e.what(),
                info.removed_temporaries.empty()
                    ? std::string()
                    : " (before writing, stale temporary files of earlier saves were removed: " +
                          join(info.removed_temporaries) + ")");
  }
  return info;
}

CheckpointInfo load(const std::string& path, const CheckpointContents& contents) {
  const std::string prefix = "cannot load checkpoint '" + path + "': ";
  std::string bytes;
  try {
    bytes = detail::read_whole_file(path);
  } catch (const std::runtime_error& e) {
    TORCH_CHECK(false, e.what());
  }
  detail::DecodedCheckpoint decoded = detail::decode_checkpoint(bytes);
  TORCH_CHECK(decoded.ok, prefix, decoded.error);
  bytes.clear();

  CheckpointInfo info;
  info.format_version = decoded.version;
  std::vector<std::string> diffs;
  std::vector<Copy> copies;
  std::vector<StagedOptimizer> staged;
  std::vector<std::pair<Constraint, torch::Tensor>> penalties;
  torch::Tensor random_state;
  int64_t iteration = 0;

  try {
    InputArchive root;
    {
      std::istringstream is(decoded.payload);
      root.load_from(is, torch::Device(torch::kCPU));
    }
    info.library_version = get_str(root, "library_version");
    TORCH_CHECK(get_int(root, "format_version") == kCheckpointFormatVersion,
                "the payload's format version differs from the header's");

    // Modules, by name.
    const int64_t n_modules = get_int(root, "modules/size");
    std::vector<std::string> stored_modules;
    std::vector<InputArchive> module_archives(static_cast<size_t>(std::max<int64_t>(n_modules, 0)));
    for (int64_t i = 0; i < n_modules; ++i) {
      root.read("module/" + std::to_string(i), module_archives[i]);
      stored_modules.push_back(get_str(module_archives[i], "name"));
    }
    info.modules = stored_modules;
    std::vector<std::string> given_modules;
    for (const auto& m : contents.modules()) given_modules.push_back(m.first);
    if (stored_modules != given_modules) {
      diffs.push_back("modules: the checkpoint holds " + join(stored_modules) + ", given " +
                      join(given_modules));
    } else {
      for (size_t i = 0; i < given_modules.size(); ++i) {
        read_tensors(module_archives[i], module_tensors(*contents.modules()[i].second),
                     "module '" + given_modules[i] + "'", diffs, copies);
      }
    }

    InputArchive oa;
    info.has_optimizer = root.try_read("optimizer", oa);
    if (ConstrainedOptimizer* co = contents.optimizer()) {
      if (!info.has_optimizer) {
        diffs.push_back("the checkpoint holds no constrained optimizer, but one was given");
      } else {
        std::vector<std::string> coverage;
        check_coverage(contents, coverage);
        diffs.insert(diffs.end(), coverage.begin(), coverage.end());
        const std::string scheme = get_str(oa, "scheme");
        if (scheme != scheme_name(*co)) {
          diffs.push_back("scheme: " + scheme + " in the checkpoint, " + scheme_name(*co) +
                          " here");
        }
        iteration = get_int(oa, "iteration");
        TORCH_CHECK(iteration >= 0, "negative iteration ", iteration);
        info.iteration = iteration;

        // The problem: names first, then each common constraint's description and values.
        const int64_t n_constraints = get_int(oa, "constraints/size");
        std::vector<InputArchive> cas(static_cast<size_t>(std::max<int64_t>(n_constraints, 0)));
        std::vector<std::string> stored_names;
        for (int64_t i = 0; i < n_constraints; ++i) {
          oa.read("constraint/" + std::to_string(i), cas[i]);
          stored_names.push_back(get_str(cas[i], "name"));
        }
        info.constraints = stored_names;
        const Problem& problem = co->problem();
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
        for (int64_t i = 0; i < n_constraints; ++i) {
          if (!problem.has_constraint(stored_names[i])) continue;
          const Constraint c = problem.constraint(stored_names[i]);
          const std::string what = "constraint '" + c.name() + "'";
          const auto here = describe(c);
          std::map<std::string, std::string> stored;
          const int64_t nf = get_int(cas[i], "fields/size");
          for (int64_t k = 0; k < nf; ++k) {
            stored[get_str(cas[i], "field/" + std::to_string(k) + "/name")] =
                get_str(cas[i], "field/" + std::to_string(k) + "/value");
          }
          bool same = true;
          for (const auto& f : here) {
            auto it = stored.find(f.first);
            const std::string theirs = it == stored.end() ? "(absent)" : it->second;
            if (theirs != f.second) {
              diffs.push_back(what + ", " + f.first + ": " + theirs + " in the checkpoint, " +
                              f.second + " here");
              same = false;
            }
          }
          if (!same) continue;
          if (c.multiplier()) {
            InputArchive ma;
            cas[i].read("multiplier", ma);
            read_tensors(ma, module_tensors(*c.multiplier()), what + " multiplier", diffs, copies);
          }
          if (c.penalty()) {
            torch::Tensor v = get_tensor(cas[i], "penalty");
            const torch::Tensor& cur = c.penalty()->value();
            TORCH_CHECK(v.sizes() == cur.sizes() && v.scalar_type() == cur.scalar_type(), what,
                        ": the stored penalty is ", shape_of(v), ", expected ", shape_of(cur));
            TORCH_CHECK((v > 0).all().item<bool>(), what,
                        ": the stored penalty coefficient is not > 0 everywhere");
            penalties.emplace_back(c, v);
          }
        }

        // Optimizers.
        const auto& primal = co->primal_optimizers();
        const int64_t n_primal = get_int(oa, "primal/size");
        if (n_primal != static_cast<int64_t>(primal.size())) {
          diffs.push_back("primal optimizers: " + std::to_string(n_primal) +
                          " in the checkpoint, " + std::to_string(primal.size()) + " here");
        } else {
          for (int64_t j = 0; j < n_primal; ++j) {
            InputArchive pa;
            oa.read("primal/" + std::to_string(j), pa);
            read_optimizer(pa, *primal[j], "primal optimizer " + std::to_string(j), diffs, staged);
          }
        }
        const bool stored_dual = get_int(oa, "has_dual") != 0;
        if (stored_dual != (co->dual_optimizer() != nullptr)) {
          diffs.push_back(std::string("dual optimizer: ") + (stored_dual ? "present" : "absent") +
                          " in the checkpoint, " + (co->dual_optimizer() ? "present" : "absent") +
                          " here");
        } else if (stored_dual) {
          InputArchive da;
          oa.read("dual", da);
          read_optimizer(da, *co->dual_optimizer(), "dual optimizer", diffs, staged);
        }
      }
    }

    torch::Tensor rs;
    info.has_random_state = root.try_read("random_state", rs, /*is_buffer=*/true);
    if (contents.random_state()) {
      if (!info.has_random_state) {
        diffs.push_back(
            "random generator state: requested, but the checkpoint was saved without it");
      } else {
        at::Generator gen = at::detail::getDefaultCPUGenerator();
        torch::Tensor cur;
        {
          std::lock_guard<std::mutex> lock(gen.mutex());
          cur = gen.get_state();
        }
        TORCH_CHECK(rs.scalar_type() == cur.scalar_type() && rs.sizes() == cur.sizes(),
                    "the random generator state is ", shape_of(rs), ", expected ", shape_of(cur));
        random_state = rs;
      }
    }
  } catch (const std::exception& e) {
    TORCH_CHECK(false, prefix, "the contents are malformed: ",
                dynamic_cast<const c10::Error*>(&e)
                    ? static_cast<const c10::Error&>(e).what_without_backtrace()
                    : e.what());
  }

  if (!diffs.empty()) {
    std::string msg = prefix + "it does not match what it is loaded into (" +
                      std::to_string(diffs.size()) +
                      (diffs.size() == 1 ? " difference):" : " differences):");
    for (const auto& d : diffs) msg += "\n  - " + d;
    TORCH_CHECK(false, msg);
  }

  // Everything is validated: assign. Nothing below can fail for a reason the checks above let
  // through (shapes, dtypes and types all match).
  {
    torch::NoGradGuard no_grad;
    for (auto& c : copies) c.dst.copy_(c.src);
    for (auto& p : penalties) p.first.penalty()->mutable_value().copy_(p.second);
  }
  for (auto& s : staged) {
    auto& groups = s.optimizer->param_groups();
    for (size_t g = 0; g < groups.size(); ++g) groups[g].set_options(std::move(s.options[g]));
    s.optimizer->state().clear();
    for (auto& st : s.states) s.optimizer->state()[st.first] = std::move(st.second);
    if (s.extra) s.extra->set_saved_point(s.saved_point);
  }
  if (contents.optimizer()) contents.optimizer()->set_iteration(iteration);
  if (random_state.defined()) {
    at::Generator gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(random_state);
  }
  info.removed_temporaries = detail::remove_stale_temporaries(path);
  return info;
}

}  // namespace feasible
