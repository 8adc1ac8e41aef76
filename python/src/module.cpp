// The Python module feasible._feasible: the exception translation, the enumerations, and the
// calls of the other binding files (docs/python.md).
#include <algorithm>
#include <cctype>
#include <string>

#include "common.h"

namespace feasible {
namespace python {
namespace {

// The file a c10::Error was raised from: the first line of its backtrace reads "Exception
// raised from <function> at <file>:<line> (most recent call first):".
std::string raised_from(const c10::Error& e) {
  const std::string trace = e.backtrace();
  const std::string first = trace.substr(0, trace.find('\n'));
  const auto at = first.rfind(" at ");
  if (at == std::string::npos) return "";
  std::string where = first.substr(at + 4);
  where = where.substr(0, where.find(" ("));
  return where.substr(0, where.rfind(':'));
}

// Whether `file` is one of the library's sources (src/<name>.cpp, src/optim/<name>.cpp, as an
// absolute path or relative to a ccache base directory) or public headers, and not one of
// LibTorch's (aten/src/ATen/..., torch/csrc/..., c10/...).
bool library_file(const std::string& file) {
  if (file.find("include/feasible/") != std::string::npos) return true;
  const auto s = file.rfind("src/");
  if (s == std::string::npos || (s > 0 && file[s - 1] != '/')) return false;
  if (s >= 5 && file.compare(s - 5, 5, "aten/") == 0) return false;
  const std::string tail = file.substr(s + 4);
  const bool source = tail.size() > 4 && (tail.compare(tail.size() - 4, 4, ".cpp") == 0 ||
                                          tail.compare(tail.size() - 2, 2, ".h") == 0);
  return source && std::none_of(tail.begin(), tail.end(), [](char c) { return std::isupper(c); });
}

// Checkpoint errors of the file itself (unreadable, truncated, corrupted, a failed write), as
// opposed to a checkpoint that does not fit what it is loaded into, or contents that cannot
// be saved.
bool file_error(const std::string& message) {
  if (message.rfind("cannot load checkpoint '", 0) == 0) {
    return message.find("does not match what it is loaded into") == std::string::npos;
  }
  if (message.rfind("cannot save checkpoint '", 0) == 0) {
    return message.find("the temporary file") != std::string::npos ||
           message.find("renaming '") != std::string::npos;
  }
  return false;
}

// The library's own errors are misuse or bad options (ValueError), except NaN or Inf
// (NonFiniteError, a RuntimeError) and the checkpoint files' own errors (RuntimeError).
// LibTorch's errors stay RuntimeError, as in torch.
void translate(const c10::Error& e, PyObject* non_finite) {
  const char* message = e.what_without_backtrace();
  if (const auto* bad = dynamic_cast<const NonFiniteError*>(&e)) {
    // The exception carries which quantity was bad and the constraint it belongs to.
    py::object error = py::reinterpret_borrow<py::object>(non_finite)(message);
    error.attr("quantity") = bad->quantity();
    error.attr("constraint") = bad->constraint();
    PyErr_SetObject(non_finite, error.ptr());
  } else if (file_error(message) || !library_file(raised_from(e))) {
    PyErr_SetString(PyExc_RuntimeError, message);
  } else {
    PyErr_SetString(PyExc_ValueError, message);
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

void mirror_into(torch::nn::Module& root, const py::handle& module) {
  // The submodules first, in the module's own (pre-)order, so that the parameters and the
  // buffers come out in the order a C++ module of the same structure lists them.
  for (const auto& item : module.attr("named_modules")()) {
    const auto path = item[py::int_(0)].cast<std::string>();
    if (!path.empty()) submodule(root, path + ".");
  }
  for (const auto& item : module.attr("named_parameters")()) {
    const auto path = item[py::int_(0)].cast<std::string>();
    auto p = item[py::int_(1)].cast<torch::Tensor>();
    submodule(root, path).register_parameter(leaf(path), p, p.requires_grad());
  }
  for (const auto& item : module.attr("named_buffers")()) {
    const auto path = item[py::int_(0)].cast<std::string>();
    submodule(root, path).register_buffer(leaf(path), item[py::int_(1)].cast<torch::Tensor>());
  }
}

std::shared_ptr<torch::nn::Module> mirror_module(const py::handle& module) {
  auto root = std::make_shared<torch::nn::Module>();
  mirror_into(*root, module);
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
  non_finite.attr("__doc__") =
      "A NaN or Inf under NonFinitePolicy.THROW (a RuntimeError): `quantity` (NonFiniteQuantity) "
      "says which quantity, `constraint` the constraint it belongs to ('' for the loss and "
      "primal gradients).";
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
  fp::bind_rates(m);
  fp::bind_checkpoint_functions(m);
}
