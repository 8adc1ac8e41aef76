// The Python module feasible._feasible: the exception translation, the enumerations, and the
// calls of the other binding files (docs/python.md).
#include <cstring>

#include "common.h"

#ifndef FEASIBLE_SOURCE_DIR
#define FEASIBLE_SOURCE_DIR ""
#endif

namespace feasible {
namespace python {
namespace {

// Whether the library itself raised `e` (a TORCH_CHECK in its sources), and not LibTorch: the
// error's first line names the file it was raised from.
bool raised_by(const c10::Error& e, const char* part) {
  const std::string where = e.backtrace();
  const auto end = where.find('\n');
  const std::string first = where.substr(0, end);
  return first.find(std::string(FEASIBLE_SOURCE_DIR) + part) != std::string::npos;
}

// Library errors are misuse or bad options (ValueError), except the checkpoint files' own
// errors (unreadable, truncated, corrupted: RuntimeError). LibTorch's errors: RuntimeError.
void translate(const c10::Error& e, PyObject* non_finite) {
  const char* message = e.what_without_backtrace();
  if (dynamic_cast<const NonFiniteError*>(&e) != nullptr) {
    PyErr_SetString(non_finite, message);
  } else if (raised_by(e, "/src/checkpoint_io") || raised_by(e, "/src/checkpoint_format")) {
    PyErr_SetString(PyExc_RuntimeError, message);
  } else if (raised_by(e, "/src/") || raised_by(e, "/include/feasible/")) {
    PyErr_SetString(PyExc_ValueError, message);
  } else {
    PyErr_SetString(PyExc_RuntimeError, message);
  }
}

// The C++ module of a dotted path below `root`, creating the missing ones.
torch::nn::Module& submodule(torch::nn::Module& root, const std::string& path) {
  torch::nn::Module* at = &root;
  size_t start = 0;
  for (size_t dot = path.find('.'); dot != std::string::npos; dot = path.find('.', start)) {
    const std::string part = path.substr(start, dot - start);
    auto children = at->named_children();
    at = children.contains(part)
             ? children[part].get()
             : at->register_module(part, std::make_shared<torch::nn::Module>()).get();
    start = dot + 1;
  }
  return *at;
}

std::string leaf(const std::string& path) { return path.substr(path.rfind('.') + 1); }

CheckpointContents contents_of(const py::dict& modules, const py::object& optimizer,
                               bool random_state,
                               std::vector<std::shared_ptr<torch::nn::Module>>& keep) {
  CheckpointContents contents;
  for (const auto& item : modules) {
    keep.push_back(mirror_module(item.second));
    contents.module(item.first.cast<std::string>(), *keep.back());
  }
  if (!optimizer.is_none()) contents.optimizer(optimizer.cast<ConstrainedOptimizer&>());
  contents.random_state(random_state);
  return contents;
}

void bind_checkpoint_functions(py::module_& m) {
  py::class_<SaveInfo>(m, "SaveInfo", "What save() did besides writing the file.")
      .def_readonly("removed_temporaries", &SaveInfo::removed_temporaries);
  py::class_<CheckpointInfo>(m, "CheckpointInfo", "What load() found in a checkpoint.")
      .def_readonly("format_version", &CheckpointInfo::format_version)
      .def_readonly("library_version", &CheckpointInfo::library_version)
      .def_readonly("iteration", &CheckpointInfo::iteration)
      .def_readonly("has_random_state", &CheckpointInfo::has_random_state)
      .def_readonly("has_optimizer", &CheckpointInfo::has_optimizer)
      .def_readonly("modules", &CheckpointInfo::modules)
      .def_readonly("constraints", &CheckpointInfo::constraints)
      .def_readonly("removed_temporaries", &CheckpointInfo::removed_temporaries);
  m.def(
      "save",
      [](const std::string& path, const py::dict& modules, const py::object& optimizer,
         bool random_state) {
        std::vector<std::shared_ptr<torch::nn::Module>> keep;
        return save(path, contents_of(modules, optimizer, random_state, keep));
      },
      py::arg("path"), py::kw_only(), py::arg("modules") = py::dict(),
      py::arg("optimizer") = py::none(), py::arg("random_state") = false,
      "Writes the state of `modules` ({name: torch.nn.Module}), of the constrained optimizer "
      "(problem, primal and dual optimizers, step counter) and optionally of torch's CPU random "
      "generator to `path`, atomically. The same file format as C++'s feasible::save.");
  m.def(
      "load",
      [](const std::string& path, const py::dict& modules, const py::object& optimizer,
         bool random_state) {
        std::vector<std::shared_ptr<torch::nn::Module>> keep;
        return load(path, contents_of(modules, optimizer, random_state, keep));
      },
      py::arg("path"), py::kw_only(), py::arg("modules") = py::dict(),
      py::arg("optimizer") = py::none(), py::arg("random_state") = false,
      "Restores what save() wrote into the same, freshly built objects, in place and "
      "all-or-nothing.");
  m.attr("CHECKPOINT_FORMAT_VERSION") = kCheckpointFormatVersion;
}

}  // namespace

std::shared_ptr<torch::nn::Module> mirror_module(const py::handle& module) {
  auto root = std::make_shared<torch::nn::Module>();
  for (const auto& item : module.attr("named_parameters")()) {
    const auto path = item[py::int_(0)].cast<std::string>();
    auto p = item[py::int_(1)].cast<torch::Tensor>();
    submodule(*root, path).register_parameter(leaf(path), p, p.requires_grad());
  }
  for (const auto& item : module.attr("named_buffers")()) {
    const auto path = item[py::int_(0)].cast<std::string>();
    submodule(*root, path).register_buffer(leaf(path), item[py::int_(1)].cast<torch::Tensor>());
  }
  return root;
}

void bind_kinds(py::module_& m) {
  py::enum_<ConstraintKind>(m, "ConstraintKind",
                            "Whether a constraint is an inequality g(x) - eps <= 0 (multiplier "
                            ">= 0) or an equality h(x) - eps == 0 (multiplier free).")
      .value("INEQUALITY", ConstraintKind::kInequality)
      .value("EQUALITY", ConstraintKind::kEquality);
  py::enum_<MultiplierKind>(m, "MultiplierKind", "Which kind of multiplier a constraint uses.")
      .value("DENSE", MultiplierKind::kDense, "one value per entry, all observed together")
      .value("INDEXED", MultiplierKind::kIndexed,
             "one value per entry, a batch observed through `indices`")
      .value("IMPLICIT", MultiplierKind::kImplicit,
             "a model maps features to multipliers (C++ only)");
  py::enum_<NonFinitePolicy>(m, "NonFinitePolicy",
                             "What a step does with NaN or Inf: THROW (NonFiniteError, default) "
                             "or SKIP_STEP (skip and undo the step).")
      .value("THROW", NonFinitePolicy::kThrow)
      .value("SKIP_STEP", NonFinitePolicy::kSkipStep);
  py::enum_<NonFiniteQuantity>(m, "NonFiniteQuantity",
                               "The quantity that was NaN or Inf (StepResult.skip_quantity).")
      .value("NONE", NonFiniteQuantity::kNone)
      .value("LOSS", NonFiniteQuantity::kLoss)
      .value("VIOLATION", NonFiniteQuantity::kViolation)
      .value("STRICT_VIOLATION", NonFiniteQuantity::kStrictViolation)
      .value("PRIMAL_GRADIENT", NonFiniteQuantity::kPrimalGradient)
      .value("MULTIPLIER", NonFiniteQuantity::kMultiplier);
}

}  // namespace python
}  // namespace feasible

PYBIND11_MODULE(_feasible, m) {
  namespace fp = feasible::python;
  m.doc() = "feasible's C++ core: constrained deep learning on LibTorch (docs/python.md).";
  m.attr("__version__") = feasible::kVersion;
  // A NaN or Inf under NonFinitePolicy.THROW: a RuntimeError that names the quantity.
  static pybind11::exception<feasible::NonFiniteError> non_finite(m, "NonFiniteError",
                                                                  PyExc_RuntimeError);
  pybind11::register_local_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const c10::Error& e) {
      fp::translate(e, non_finite.ptr());
    }
  });
  fp::bind_kinds(m);
  fp::bind_problem(m);
  fp::bind_optim(m);
  fp::bind_schemes(m);
  fp::bind_checkpoint_functions(m);
}
