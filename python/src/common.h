// Shared by the binding files of the Python module feasible._feasible (docs/python.md).
#pragma once
#include <pybind11/functional.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <torch/extension.h>

#include <memory>
#include <string>
#include <vector>

#include "feasible/feasible.h"

namespace feasible {
namespace python {

namespace py = pybind11;

/// A Python object that may be None, as a tensor: None gives an undefined tensor.
inline torch::Tensor tensor_or_undefined(const py::object& object) {
  return object.is_none() ? torch::Tensor() : object.cast<torch::Tensor>();
}

/// A list (or any iterable) of tensors, e.g. `model.parameters()`.
std::vector<torch::Tensor> tensors_of(const py::handle& iterable);

/// A primal or dual player: one of the module's C++ optimizers (feasible.optim.*) as it is, or
/// any Python `torch.optim.Optimizer` through the adapter the C++ step calls.
std::shared_ptr<torch::optim::Optimizer> optimizer_of(const py::handle& object);

/// One optimizer or a list of them.
std::vector<std::shared_ptr<torch::optim::Optimizer>> optimizers_of(const py::handle& object);

/// A C++ module holding a Python `torch.nn.Module`'s parameters and buffers (the same tensors,
/// no copies), under the same dotted names, for checkpoints.
std::shared_ptr<torch::nn::Module> mirror_module(const py::handle& module);

/// Registers a Python `torch.nn.Module`'s parameters and buffers (the same tensors) in `root`,
/// under their dotted names (`fc.weight`: submodule `fc`, parameter `weight`).
void mirror_into(torch::nn::Module& root, const py::handle& module);

void bind_kinds(py::module_& m);
void bind_problem(py::module_& m);
void bind_optim(py::module_& m);
void bind_schemes(py::module_& m);
void bind_rates(py::module_& m);

}  // namespace python
}  // namespace feasible
