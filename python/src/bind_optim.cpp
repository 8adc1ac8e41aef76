// Bindings of the optimizers: LibTorch's (SGD, Adam, AdamW, RMSprop, Adagrad) and feasible's
// (NuPI, ExtraSGD, ExtraAdam), the adapter that lets a Python torch.optim optimizer be a primal
// player, and the conversions the schemes use (optimizer_of).
#include <utility>

#include "common.h"

namespace feasible {
namespace python {

using torch::optim::Optimizer;

/// The adapter's options: none of its own (the Python optimizer keeps them). get_lr is not
/// overridden, so the engine's check of learning rates passes it by.
struct PythonOptimizerOptions
    : public torch::optim::OptimizerCloneableOptions<PythonOptimizerOptions> {};

/// A Python torch.optim optimizer as a primal player: its parameter groups mirror the Python
/// optimizer's (the same tensors), so the engine's zero_grad, gradient checks and snapshots see
/// them; step() calls the Python optimizer's step() with the GIL held. Its state lives in
/// Python: a skipped step (NonFinitePolicy.SKIP_STEP) restores the parameters but not that
/// state, and checkpoints refuse the adapter (docs/python.md).
class PythonOptimizer : public Optimizer {
 public:
  explicit PythonOptimizer(py::object optimizer)
      : Optimizer(groups_of(optimizer), std::make_unique<PythonOptimizerOptions>()),
        optimizer_(std::move(optimizer)) {}
  ~PythonOptimizer() override {
    py::gil_scoped_acquire gil;
    optimizer_ = py::object();
  }
  torch::Tensor step(LossClosure closure) override {
    TORCH_CHECK(!closure, "PythonOptimizer::step: a loss closure is not supported");
    py::gil_scoped_acquire gil;
    optimizer_.attr("step")();
    return torch::Tensor();
  }
  const py::object& object() const { return optimizer_; }

 private:
  static std::vector<torch::optim::OptimizerParamGroup> groups_of(const py::object& optimizer) {
    std::vector<torch::optim::OptimizerParamGroup> groups;
    for (const auto& group : optimizer.attr("param_groups")) {
      groups.emplace_back(tensors_of(group["params"]), std::make_unique<PythonOptimizerOptions>());
    }
    return groups;
  }
  py::object optimizer_;
};

namespace {

/// A C++ optimizer as Python holds it: one class for all, so that the schemes can take any.
struct OptimizerHandle {
  std::shared_ptr<Optimizer> optimizer;
  std::string name;
};

template <typename Opt, typename Options>
OptimizerHandle make(const py::handle& params, const Options& options, const char* name) {
  return {std::make_shared<Opt>(tensors_of(params), options), name};
}

void bind_torch_optimizers(py::module_& o) {
  o.def(
      "SGD",
      [](const py::handle& params, double lr, double momentum, double dampening,
         double weight_decay, bool nesterov) {
        return make<torch::optim::SGD>(params,
                                       torch::optim::SGDOptions(lr)
                                           .momentum(momentum)
                                           .dampening(dampening)
                                           .weight_decay(weight_decay)
                                           .nesterov(nesterov),
                                       "SGD");
      },
      py::arg("params"), py::arg("lr"), py::kw_only(), py::arg("momentum") = 0.0,
      py::arg("dampening") = 0.0, py::arg("weight_decay") = 0.0, py::arg("nesterov") = false,
      "LibTorch's SGD (C++), with torch.optim.SGD's arguments.");
  o.def(
      "Adam",
      [](const py::handle& params, double lr, std::tuple<double, double> betas, double eps,
         double weight_decay, bool amsgrad) {
        return make<torch::optim::Adam>(params,
                                        torch::optim::AdamOptions(lr)
                                            .betas(betas)
                                            .eps(eps)
                                            .weight_decay(weight_decay)
                                            .amsgrad(amsgrad),
                                        "Adam");
      },
      py::arg("params"), py::arg("lr") = 1e-3, py::kw_only(),
      py::arg("betas") = std::make_tuple(0.9, 0.999), py::arg("eps") = 1e-8,
      py::arg("weight_decay") = 0.0, py::arg("amsgrad") = false,
      "LibTorch's Adam (C++), with torch.optim.Adam's arguments.");
  o.def(
      "AdamW",
      [](const py::handle& params, double lr, std::tuple<double, double> betas, double eps,
         double weight_decay, bool amsgrad) {
        return make<torch::optim::AdamW>(params,
                                         torch::optim::AdamWOptions(lr)
                                             .betas(betas)
                                             .eps(eps)
                                             .weight_decay(weight_decay)
                                             .amsgrad(amsgrad),
                                         "AdamW");
      },
      py::arg("params"), py::arg("lr") = 1e-3, py::kw_only(),
      py::arg("betas") = std::make_tuple(0.9, 0.999), py::arg("eps") = 1e-8,
      py::arg("weight_decay") = 1e-2, py::arg("amsgrad") = false,
      "LibTorch's AdamW (C++), with torch.optim.AdamW's arguments.");
  o.def(
      "RMSprop",
      [](const py::handle& params, double lr, double alpha, double eps, double weight_decay,
         double momentum, bool centered) {
        return make<torch::optim::RMSprop>(params,
                                           torch::optim::RMSpropOptions(lr)
                                               .alpha(alpha)
                                               .eps(eps)
                                               .weight_decay(weight_decay)
                                               .momentum(momentum)
                                               .centered(centered),
                                           "RMSprop");
      },
      py::arg("params"), py::arg("lr") = 1e-2, py::kw_only(), py::arg("alpha") = 0.99,
      py::arg("eps") = 1e-8, py::arg("weight_decay") = 0.0, py::arg("momentum") = 0.0,
      py::arg("centered") = false, "LibTorch's RMSprop (C++).");
  o.def(
      "Adagrad",
      [](const py::handle& params, double lr, double lr_decay, double weight_decay, double eps) {
        return make<torch::optim::Adagrad>(
            params,
            torch::optim::AdagradOptions(lr).lr_decay(lr_decay).weight_decay(weight_decay).eps(eps),
            "Adagrad");
      },
      py::arg("params"), py::arg("lr") = 1e-2, py::kw_only(), py::arg("lr_decay") = 0.0,
      py::arg("weight_decay") = 0.0, py::arg("eps") = 1e-10, "LibTorch's Adagrad (C++).");
}

void bind_feasible_optimizers(py::module_& o) {
  py::enum_<optim::NuPIInit>(o, "NuPIInit", "How nuPI takes its first step.")
      .value("SGD", optim::NuPIInit::kSGD, "xi_{-1} = e_0: the first update is K_i e_0")
      .value("ZERO", optim::NuPIInit::kZero, "xi_{-1} = 0");
  o.def(
      "NuPI",
      [](const py::handle& params, double lr, double kp, double ki, double nu, optim::NuPIInit init,
         const py::object& kp_per_entry, const py::object& ki_per_entry) {
        auto options = optim::NuPIOptions(lr).kp(kp).ki(ki).nu(nu).init(init);
        options.kp_per_entry(tensor_or_undefined(kp_per_entry));
        options.ki_per_entry(tensor_or_undefined(ki_per_entry));
        return make<optim::NuPI>(params, options, "NuPI");
      },
      py::arg("params"), py::arg("lr") = 1e-2, py::kw_only(), py::arg("kp") = 0.0,
      py::arg("ki") = 1.0, py::arg("nu") = 0.0, py::arg("init") = optim::NuPIInit::kSGD,
      py::arg("kp_per_entry") = py::none(), py::arg("ki_per_entry") = py::none(),
      "nuPI (Sohrabi et al., ICML 2024): xi_t = nu xi_{t-1} + (1 - nu) e_t; theta <- theta - "
      "lr (K_i e_t + K_p (xi_t - xi_{t-1})). lr >= 0, kp >= 0 (default 0), ki >= 0 (default "
      "1), nu in [0, 1) (default 0).");
  o.def(
      "ExtraSGD",
      [](const py::handle& params, double lr) {
        return make<optim::ExtraSGD>(params, optim::ExtraSGDOptions(lr), "ExtraSGD");
      },
      py::arg("params"), py::arg("lr"),
      "Gradient descent with an extrapolation step (for ExtragradientOptimizer).");
  o.def(
      "ExtraAdam",
      [](const py::handle& params, double lr, std::tuple<double, double> betas, double eps) {
        auto options = optim::ExtraAdamOptions(lr)
                           .beta1(std::get<0>(betas))
                           .beta2(std::get<1>(betas))
                           .eps(eps);
        return make<optim::ExtraAdam>(params, options, "ExtraAdam");
      },
      py::arg("params"), py::arg("lr") = 1e-3, py::kw_only(),
      py::arg("betas") = std::make_tuple(0.9, 0.999), py::arg("eps") = 1e-8,
      "Adam with an extrapolation step (Gidel et al. 2019).");
}

}  // namespace

std::vector<torch::Tensor> tensors_of(const py::handle& iterable) {
  std::vector<torch::Tensor> out;
  for (const auto& item : iterable) out.push_back(item.cast<torch::Tensor>());
  return out;
}

std::shared_ptr<Optimizer> optimizer_of(const py::handle& object) {
  if (py::isinstance<OptimizerHandle>(object)) return object.cast<OptimizerHandle&>().optimizer;
  const auto torch_optimizer = py::module_::import("torch.optim").attr("Optimizer");
  if (py::isinstance(object, torch_optimizer)) {
    return std::make_shared<PythonOptimizer>(py::reinterpret_borrow<py::object>(object));
  }
  throw py::value_error(
      "an optimizer must be a feasible.optim optimizer or a "
      "torch.optim.Optimizer, got " +
      py::repr(object).cast<std::string>());
}

std::vector<std::shared_ptr<Optimizer>> optimizers_of(const py::handle& object) {
  if (py::isinstance<py::list>(object) || py::isinstance<py::tuple>(object)) {
    std::vector<std::shared_ptr<Optimizer>> out;
    for (const auto& item : object) out.push_back(optimizer_of(item));
    return out;
  }
  return {optimizer_of(object)};
}

void bind_optim(py::module_& m) {
  auto o = m.def_submodule("optim", "feasible's C++ optimizers (primal or dual players).");
  py::class_<OptimizerHandle>(o, "Optimizer", "A C++ optimizer (LibTorch's or feasible's).")
      .def_property_readonly("name", [](const OptimizerHandle& h) { return h.name; })
      .def(
          "step", [](OptimizerHandle& h) { h.optimizer->step(); },
          "One update with the current gradients.")
      .def(
          "zero_grad", [](OptimizerHandle& h) { h.optimizer->zero_grad(); }, "Zeros the gradients.")
      .def_property_readonly(
          "params",
          [](const OptimizerHandle& h) {
            std::vector<torch::Tensor> out;
            for (const auto& g : h.optimizer->param_groups()) {
              out.insert(out.end(), g.params().begin(), g.params().end());
            }
            return out;
          },
          "The parameters, group by group.")
      .def_property(
          "lr", [](const OptimizerHandle& h) { return h.optimizer->defaults().get_lr(); },
          [](OptimizerHandle& h, double lr) {
            for (auto& g : h.optimizer->param_groups()) g.options().set_lr(lr);
            h.optimizer->defaults().set_lr(lr);
          },
          "The learning rate of every group (setting it sets all).")
      .def("__repr__", [](const OptimizerHandle& h) {
        return "feasible.optim." + h.name +
               "(lr=" + std::to_string(h.optimizer->defaults().get_lr()) + ")";
      });
  bind_torch_optimizers(o);
  bind_feasible_optimizers(o);
}

}  // namespace python
}  // namespace feasible
