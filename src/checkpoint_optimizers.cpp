// Checkpoint pieces (src/checkpoint_io.h): the optimizers' state. Which optimizers are supported,
// and the tensors of their states, is the table of optimizer traits (src/optimizer_traits.h).
#include <c10/util/Type.h>

#include <typeinfo>

#include "feasible/optim/extra.h"
#include "src/checkpoint_io.h"
#include "src/optimizer_traits.h"

namespace feasible {
namespace detail {
namespace ckpt {

using detail::OptimizerTraits;
using detail::StateField;

namespace {

std::vector<torch::Tensor> all_params(const torch::optim::Optimizer& o) {
  std::vector<torch::Tensor> out;
  for (const auto& g : o.param_groups()) {
    for (const auto& p : g.params()) out.push_back(p);
  }
  return out;
}

// Whether the stored optimizer has `o`'s parameter groups and parameter shapes; each difference
// goes to `diffs`.
bool same_structure(InputArchive& a, torch::optim::Optimizer& o, const std::string& label,
                    std::vector<std::string>& diffs) {
  auto& groups = o.param_groups();
  const int64_t n_groups = get_int(a, "groups/size");
  if (n_groups != static_cast<int64_t>(groups.size())) {
    diffs.push_back(label + ": " + std::to_string(n_groups) +
                    " parameter groups in the checkpoint, " + std::to_string(groups.size()) +
                    " here");
    return false;
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
  return diffs.size() == before;
}

// Stages the options of every group and the state of every parameter that has one.
void stage_states(InputArchive& a, torch::optim::Optimizer& o, const OptimizerTraits& type,
                  const std::string& label, StagedOptimizer& s) {
  auto& groups = o.param_groups();
  for (size_t g = 0; g < groups.size(); ++g) {
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
      TORCH_CHECK(type.has_state(), label, " (", type.name,
                  ") has a per-parameter state in the checkpoint, which this type never has");
      auto st = type.make_state();
      st->serialize(st_archive);
      const torch::Tensor& p = params[k];
      for (const StateField& f : type.fields(*st)) {
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
}

// Stages an extrapolation optimizer's saved point.
void stage_saved_point(InputArchive& a, torch::optim::Optimizer& o, const std::string& label,
                       StagedOptimizer& s) {
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
}

}  // namespace

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
  if (!same_structure(a, o, label, diffs)) return;
  StagedOptimizer s;
  s.optimizer = &o;
  stage_states(a, o, *type, label, s);
  stage_saved_point(a, o, label, s);
  staged.push_back(std::move(s));
}

void assign(StagedOptimizer& s) {
  auto& groups = s.optimizer->param_groups();
  for (size_t g = 0; g < groups.size(); ++g) groups[g].set_options(std::move(s.options[g]));
  s.optimizer->state().clear();
  for (auto& st : s.states) s.optimizer->state()[st.first] = std::move(st.second);
  if (s.extra) s.extra->set_saved_point(s.saved_point);
}

}  // namespace ckpt
}  // namespace detail
}  // namespace feasible
