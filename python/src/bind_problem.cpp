// Bindings of the problem: formulations, penalty updaters, constraint options, constraints,
// the closure's states, the problem and the projections (include/feasible/problem.h).
#include "common.h"

namespace feasible {
namespace python {
namespace {

void bind_formulations(py::module_& m) {
  py::class_<Formulation, std::shared_ptr<Formulation>>(
      m, "Formulation", "How a constraint enters training (base class).")
      .def_property_readonly("name", &Formulation::name, "A short name, e.g. 'Lagrangian'.")
      .def_property_readonly("uses_multiplier", &Formulation::uses_multiplier,
                             "Whether the formulation has a multiplier.")
      .def_property_readonly("uses_penalty", &Formulation::uses_penalty,
                             "Whether it reads a penalty coefficient c.")
      .def("__repr__", [](const Formulation& f) { return f.name() + "()"; });
  py::class_<Lagrangian, Formulation, std::shared_ptr<Lagrangian>>(
      m, "Lagrangian", "The Lagrangian: primal term sum lambda * v; dual ascent s (default).")
      .def(py::init<>());
  py::class_<AugmentedLagrangian, Formulation, std::shared_ptr<AugmentedLagrangian>>(
      m, "AugmentedLagrangian",
      "The Augmented Lagrangian (Hestenes 1969; Powell 1969; Rockafellar 1973). Needs a penalty "
      "coefficient.\n\nscale_dual_by_penalty: scale the dual ascent direction by c (the method "
      "of multipliers' update with dual step size 1). Default False.")
      .def(py::init([](bool scale) {
             return std::make_shared<AugmentedLagrangian>(
                 AugmentedLagrangianOptions().scale_dual_by_penalty(scale));
           }),
           py::arg("scale_dual_by_penalty") = false)
      .def_property_readonly("scale_dual_by_penalty", [](const AugmentedLagrangian& f) {
        return f.options().scale_dual_by_penalty();
      });
  py::class_<QuadraticPenalty, Formulation, std::shared_ptr<QuadraticPenalty>>(
      m, "QuadraticPenalty",
      "The quadratic penalty (c/2) sum [v]+^2 (inequality) or (c/2) sum v^2 (equality); no "
      "multiplier.")
      .def(py::init<>());
  py::class_<FixedPenalty, Formulation, std::shared_ptr<FixedPenalty>>(
      m, "FixedPenalty", "The fixed weighted sum f + c g; no multiplier, no updater.")
      .def(py::init<>());
}

PenaltyUpdaterOptions updater_options(double tolerance, c10::optional<double> max_value,
                                      bool restart_on_feasible) {
  return PenaltyUpdaterOptions().tolerance(tolerance).max_value(max_value).restart_on_feasible(
      restart_on_feasible);
}

void bind_updaters(py::module_& m) {
  py::class_<PenaltyUpdater, std::shared_ptr<PenaltyUpdater>>(
      m, "PenaltyUpdater",
      "Grows penalty coefficients where the constraint is violated (base class). Options: "
      "tolerance (>= 0, default 1e-4), max_value (> 0, default None), restart_on_feasible "
      "(inequalities only, default False).")
      .def_property_readonly("name", &PenaltyUpdater::name)
      .def_property_readonly("tolerance",
                             [](const PenaltyUpdater& u) { return u.options().tolerance(); })
      .def_property_readonly("max_value",
                             [](const PenaltyUpdater& u) { return u.options().max_value(); })
      .def_property_readonly("restart_on_feasible", [](const PenaltyUpdater& u) {
        return u.options().restart_on_feasible();
      });
  py::class_<MultiplicativePenaltyUpdater, PenaltyUpdater,
             std::shared_ptr<MultiplicativePenaltyUpdater>>(
      m, "MultiplicativePenaltyUpdater", "c <- c * growth where violated (growth > 1).")
      .def(py::init(
               [](double growth, double tolerance, c10::optional<double> max_value, bool restart) {
                 return std::make_shared<MultiplicativePenaltyUpdater>(
                     growth, updater_options(tolerance, max_value, restart));
               }),
           py::arg("growth"), py::kw_only(), py::arg("tolerance") = 1e-4,
           py::arg("max_value") = py::none(), py::arg("restart_on_feasible") = false)
      .def_property_readonly("growth", &MultiplicativePenaltyUpdater::growth);
  py::class_<AdditivePenaltyUpdater, PenaltyUpdater, std::shared_ptr<AdditivePenaltyUpdater>>(
      m, "AdditivePenaltyUpdater", "c <- c + increment where violated (increment > 0).")
      .def(py::init([](double increment, double tolerance, c10::optional<double> max_value,
                       bool restart) {
             return std::make_shared<AdditivePenaltyUpdater>(
                 increment, updater_options(tolerance, max_value, restart));
           }),
           py::arg("increment"), py::kw_only(), py::arg("tolerance") = 1e-4,
           py::arg("max_value") = py::none(), py::arg("restart_on_feasible") = false)
      .def_property_readonly("increment", &AdditivePenaltyUpdater::increment);
}

// An implicit multiplier's model written in Python: a C++ module whose forward calls the
// Python `torch.nn.Module` under the GIL (the step runs without it) and whose parameters and
// buffers are that module's own tensors, under the same dotted names. So they are the
// constraint's dual parameters (Problem.dual_parameters) and are checkpointed as a C++ model of
// the same structure would be. The tensors are those the module holds when the constraint is
// registered.
class PythonModel : public torch::nn::Module {
 public:
  explicit PythonModel(const py::object& module)
      : module_(new py::object(module), [](py::object* held) {
          if (Py_IsInitialized() == 0) return;  // the interpreter is gone: nothing to release
          py::gil_scoped_acquire gil;
          delete held;
        }) {
    mirror_into(*this, module);
  }

  /// The Python module's output for `features` (an exception raised in it passes through).
  torch::Tensor forward(const torch::Tensor& features) {
    py::gil_scoped_acquire gil;
    py::object out = (*module_)(features);
    if (!THPVariable_Check(out.ptr())) {
      throw py::type_error("the implicit multiplier's model must return a torch.Tensor, got " +
                           py::repr(out.get_type()).cast<std::string>());
    }
    return out.cast<torch::Tensor>();
  }

 private:
  std::shared_ptr<py::object> module_;
};

// A Python torch.nn.Module as an implicit multiplier's model (None: no model).
torch::nn::AnyModule implicit_model_of(const py::object& model) {
  if (model.is_none()) return torch::nn::AnyModule();
  if (!py::isinstance(model, py::module_::import("torch.nn").attr("Module"))) {
    throw py::type_error("ConstraintOptions.implicit_model must be a torch.nn.Module, got " +
                         py::repr(model.get_type()).cast<std::string>());
  }
  return torch::nn::AnyModule(std::make_shared<PythonModel>(model));
}

ConstraintOptions make_options(ConstraintKind kind, int64_t size,
                               std::shared_ptr<Formulation> formulation, MultiplierKind multiplier,
                               double init, const py::object& init_values,
                               c10::optional<double> max_multiplier, bool lazy,
                               bool sparse_gradient, double penalty, bool penalty_per_entry,
                               std::shared_ptr<PenaltyUpdater> penalty_updater, bool occasional,
                               const py::object& implicit_model, const py::object& dtype,
                               const py::object& device) {
  ConstraintOptions o(kind, size);
  if (formulation) o.formulation(std::move(formulation));
  o.multiplier(multiplier).init(init).init_values(tensor_or_undefined(init_values));
  o.implicit_model(implicit_model_of(implicit_model));
  o.max_multiplier(max_multiplier).lazy(lazy).sparse_gradient(sparse_gradient);
  o.penalty(penalty).penalty_per_entry(penalty_per_entry).penalty_updater(penalty_updater);
  o.occasional(occasional);
  if (!dtype.is_none()) o.dtype(torch::python::detail::py_object_to_dtype(dtype));
  if (!device.is_none()) o.device(torch::python::detail::py_object_to_device(device));
  return o;
}

void bind_constraint_options(py::module_& m) {
  py::class_<ConstraintOptions>(
      m, "ConstraintOptions",
      "Options of one constraint, validated by Problem.add_constraint.\n\n"
      "kind: INEQUALITY (default) or EQUALITY. size: number of entries (>= 1, default 1).\n"
      "formulation: default Lagrangian(). multiplier: DENSE (default), INDEXED or IMPLICIT.\n"
      "init: initial multiplier of every entry (>= 0 for inequalities, default 0).\n"
      "init_values: initial multipliers, shape [size] (overrides init).\n"
      "max_multiplier: bound on |multiplier| after every dual step (> 0, default None).\n"
      "lazy: indexed, keep unobserved entries fixed (default False).\n"
      "sparse_gradient: indexed, sparse COO dual gradient (NuPI, SGD; default False).\n"
      "penalty: initial penalty c (> 0, default 1). penalty_per_entry: default False.\n"
      "penalty_updater: grows c where violated (default None).\n"
      "occasional: the closure observes it only now and then (default False).\n"
      "implicit_model: for IMPLICIT, a torch.nn.Module mapping the observed entries' features\n"
      "[n, ...] to their multipliers [n]; its parameters are the dual parameters (default None).\n"
      "dtype: of the multiplier and penalty (default torch's default dtype). device: default "
      "CPU.")
      .def(py::init(&make_options), py::kw_only(), py::arg("kind") = ConstraintKind::kInequality,
           py::arg("size") = 1, py::arg("formulation") = nullptr,
           py::arg("multiplier") = MultiplierKind::kDense, py::arg("init") = 0.0,
           py::arg("init_values") = py::none(), py::arg("max_multiplier") = py::none(),
           py::arg("lazy") = false, py::arg("sparse_gradient") = false, py::arg("penalty") = 1.0,
           py::arg("penalty_per_entry") = false, py::arg("penalty_updater") = nullptr,
           py::arg("occasional") = false, py::arg("implicit_model") = py::none(),
           py::arg("dtype") = py::none(), py::arg("device") = py::none())
      .def_property_readonly("kind", [](const ConstraintOptions& o) { return o.kind(); })
      .def_property_readonly("size", [](const ConstraintOptions& o) { return o.size(); })
      .def_property_readonly("formulation",
                             [](const ConstraintOptions& o) { return o.formulation(); })
      .def_property_readonly("multiplier",
                             [](const ConstraintOptions& o) { return o.multiplier(); })
      .def_property_readonly("init", [](const ConstraintOptions& o) { return o.init(); })
      .def_property_readonly("max_multiplier",
                             [](const ConstraintOptions& o) { return o.max_multiplier(); })
      .def_property_readonly("lazy", [](const ConstraintOptions& o) { return o.lazy(); })
      .def_property_readonly("sparse_gradient",
                             [](const ConstraintOptions& o) { return o.sparse_gradient(); })
      .def_property_readonly("penalty", [](const ConstraintOptions& o) { return o.penalty(); })
      .def_property_readonly("occasional",
                             [](const ConstraintOptions& o) { return o.occasional(); })
      .def_property_readonly(
          "has_implicit_model",
          [](const ConstraintOptions& o) { return !o.implicit_model().is_empty(); },
          "Whether an implicit multiplier's model is set.")
      .def("validate", &ConstraintOptions::validate, py::arg("context") = "",
           "Raises ValueError unless every field is in range and the fields fit together.");
}

void bind_constraint(py::module_& m) {
  py::class_<Constraint>(m, "Constraint",
                         "A handle to a registered constraint (Problem.add_constraint).")
      .def_property_readonly("name", &Constraint::name, "The unique name.")
      .def_property_readonly("kind", &Constraint::kind, "INEQUALITY or EQUALITY.")
      .def_property_readonly("size", &Constraint::size, "Number of entries.")
      .def_property_readonly("index", &Constraint::index, "Position in registration order.")
      .def_property_readonly("options", &Constraint::options, "The options given.")
      .def_property_readonly("formulation", &Constraint::formulation, "The formulation.")
      .def("__eq__", [](const Constraint& a, const Constraint& b) { return a == b; })
      .def("__hash__",
           [](const Constraint& c) { return std::hash<std::string>()(c.name()) ^ c.problem_id(); })
      .def("__repr__", [](const Constraint& c) {
        return "Constraint('" + c.name() + "', " + to_string(c.kind()) +
               ", size=" + std::to_string(c.size()) + ")";
      });
}

ConstraintState make_state(const torch::Tensor& violation, const py::object& strict,
                           const py::object& indices, const py::object& strict_indices,
                           const py::object& features, bool primal, bool dual) {
  ConstraintState s(violation);
  s.strict_violation(tensor_or_undefined(strict)).indices(tensor_or_undefined(indices));
  s.strict_indices(tensor_or_undefined(strict_indices)).features(tensor_or_undefined(features));
  s.contributes_to_primal(primal).contributes_to_dual(dual);
  return s;
}

// ProblemState.observe: a ConstraintState as it is, or a violation tensor with the keyword
// arguments of ConstraintState (None: the default), in one call from Python.
ProblemState& observe(ProblemState& self, const Constraint& constraint, const py::object& state,
                      const py::object& strict, const py::object& indices,
                      const py::object& strict_indices, const py::object& features,
                      const py::object& primal, const py::object& dual) {
  if (py::isinstance<ConstraintState>(state)) {
    const bool plain = strict.is_none() && indices.is_none() && strict_indices.is_none() &&
                       features.is_none() && primal.is_none() && dual.is_none();
    if (!plain) {
      throw py::value_error(
          "ProblemState.observe: give a ConstraintState or a violation with keyword arguments, "
          "not both");
    }
    return self.observe(constraint, state.cast<const ConstraintState&>());
  }
  if (!THPVariable_Check(state.ptr())) {
    throw py::type_error(
        "ProblemState.observe: state must be a feasible.ConstraintState or a tensor (the "
        "violation), got " +
        py::repr(state.get_type()).cast<std::string>());
  }
  return self.observe(
      constraint,
      make_state(state.cast<torch::Tensor>(), strict, indices, strict_indices, features,
                 primal.is_none() || primal.cast<bool>(), dual.is_none() || dual.cast<bool>()));
}

#define FEASIBLE_TENSOR_FIELD(cls, field)             \
  def_property(                                       \
      #field, [](const cls& s) { return s.field(); }, \
      [](cls& s, const py::object& t) { s.field(tensor_or_undefined(t)); })

// The states keep the Python objects of the tensors they are given alive (keep_alive) for as
// long as they live: a tensor made in Python whose Python object dies while C++ still holds it
// is handed over to C++ (LibTorch keeps its Python object for it, and takes the GIL to release
// it later, e.g. inside a step that runs without the GIL). The step holds them in turn until it
// is over (bind_schemes.cpp), so the closure's tensors are released in Python, with the GIL.
void bind_states(py::module_& m) {
  py::class_<ConstraintState>(
      m, "ConstraintState",
      "What the closure observed of one constraint in one step.\n\n"
      "violation: differentiable g(x) - eps, shape [size] (dense) or [n] (indexed).\n"
      "strict_violation: e.g. a 0-1 rate, drives the dual update (default violation.detach()).\n"
      "indices: indexed constraints, the observed entries. strict_indices: default indices.\n"
      "contributes_to_primal / contributes_to_dual: default True.")
      .def(py::init(&make_state), py::arg("violation"), py::kw_only(),
           py::arg("strict_violation") = py::none(), py::arg("indices") = py::none(),
           py::arg("strict_indices") = py::none(), py::arg("features") = py::none(),
           py::arg("contributes_to_primal") = true, py::arg("contributes_to_dual") = true,
           py::keep_alive<1, 2>(), py::keep_alive<1, 3>(), py::keep_alive<1, 4>(),
           py::keep_alive<1, 5>(), py::keep_alive<1, 6>())
      .FEASIBLE_TENSOR_FIELD(ConstraintState, violation)
      .FEASIBLE_TENSOR_FIELD(ConstraintState, strict_violation)
      .FEASIBLE_TENSOR_FIELD(ConstraintState, indices)
      .FEASIBLE_TENSOR_FIELD(ConstraintState, strict_indices)
      .def_property(
          "contributes_to_primal",
          [](const ConstraintState& s) { return s.contributes_to_primal(); },
          [](ConstraintState& s, bool v) { s.contributes_to_primal(v); })
      .def_property(
          "contributes_to_dual", [](const ConstraintState& s) { return s.contributes_to_dual(); },
          [](ConstraintState& s, bool v) { s.contributes_to_dual(v); });
  py::class_<ProblemState>(m, "ProblemState",
                           "What the closure returns: the loss f(x) (a 0-d tensor), the "
                           "constraints it observed, and named metrics.")
      .def(py::init([](const py::object& loss, const py::object& metrics) {
             ProblemState s(tensor_or_undefined(loss));
             if (!metrics.is_none()) s.metrics = metrics.cast<std::map<std::string, double>>();
             return s;
           }),
           py::arg("loss") = py::none(), py::arg("metrics") = py::none(), py::keep_alive<1, 2>())
      .def("observe", &observe, py::arg("constraint"), py::arg("state"), py::kw_only(),
           py::arg("strict_violation") = py::none(), py::arg("indices") = py::none(),
           py::arg("strict_indices") = py::none(), py::arg("features") = py::none(),
           py::arg("contributes_to_primal") = py::none(),
           py::arg("contributes_to_dual") = py::none(), py::return_value_policy::reference_internal,
           py::keep_alive<1, 4>(), py::keep_alive<1, 5>(), py::keep_alive<1, 6>(),
           py::keep_alive<1, 7>(), py::keep_alive<1, 3>(),
           "Records an observation (each constraint at most once): a ConstraintState, or a "
           "violation tensor with the keyword arguments of ConstraintState "
           "(`state.observe(c, v, strict_violation=s)`). Returns self.")
      .def_property(
          "loss", [](const ProblemState& s) { return s.loss; },
          [](ProblemState& s, const py::object& t) { s.loss = tensor_or_undefined(t); })
      .def_readwrite("metrics", &ProblemState::metrics)
      .def_property_readonly("observed", [](const ProblemState& s) { return s.observed; });
}

void bind_problem_class(py::module_& m) {
  py::class_<Problem>(m, "Problem", "The registry of constraints (copies share the problem).")
      .def(py::init<>())
      .def("add_constraint", &Problem::add_constraint, py::arg("name"),
           py::arg("options") = ConstraintOptions(),
           "Registers a constraint and creates its multiplier and penalty coefficient.")
      .def_property_readonly("constraints", &Problem::constraints, "In registration order.")
      .def("constraint", &Problem::constraint, py::arg("name"))
      .def("has_constraint", &Problem::has_constraint, py::arg("name"))
      .def("dual_parameters", py::overload_cast<>(&Problem::dual_parameters, py::const_),
           "The dual parameters (what the dual optimizer must hold), in registration order.")
      .def("multiplier_values",
           py::overload_cast<const std::string&>(&Problem::multiplier_values, py::const_),
           py::arg("name"), "Current multiplier values of a constraint ([size], detached).")
      .def("multiplier_values",
           py::overload_cast<const Constraint&>(&Problem::multiplier_values, py::const_),
           py::arg("constraint"))
      .def("penalty_values",
           py::overload_cast<const std::string&>(&Problem::penalty_values, py::const_),
           py::arg("name"), "Current penalty coefficient (0-d or [size], detached).")
      .def("penalty_values",
           py::overload_cast<const Constraint&>(&Problem::penalty_values, py::const_),
           py::arg("constraint"))
      .def_property_readonly("id", &Problem::id);
}

void bind_projections(py::module_& m) {
  auto p = m.def_submodule("projection", "Projections of primal parameters onto simple sets.");
  p.def(
      "box", [](double lo, double hi) { return projection::box(lo, hi); }, py::arg("lower"),
      py::arg("upper"), "Clamps every entry into [lower, upper].");
  p.def(
      "box_tensor", [](torch::Tensor lo, torch::Tensor hi) { return projection::box(lo, hi); },
      py::arg("lower"), py::arg("upper"), "Per-coordinate bounds (tensors that broadcast).");
  p.def("nonnegative", &projection::nonnegative, "Clamps every entry to >= 0.");
  p.def("simplex", &projection::simplex, py::arg("radius") = 1.0,
        "Each slice along the last dimension onto {z >= 0, sum z = radius}.");
  p.def("l2_ball", &projection::l2_ball, py::arg("radius"), "Onto {||z||_2 <= radius}.");
}

}  // namespace

void bind_problem(py::module_& m) {
  bind_formulations(m);
  bind_updaters(m);
  bind_constraint_options(m);
  bind_constraint(m);
  bind_states(m);
  bind_problem_class(m);
  bind_projections(m);
}

}  // namespace python
}  // namespace feasible
