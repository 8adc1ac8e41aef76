// Bindings of the constrained optimizers (the five schemes and the default optimizer), their
// step results, and the closure: a Python callable that returns a ProblemState.
#include <cmath>
#include <sstream>

#include "common.h"

namespace feasible {
namespace python {
namespace {

using OptimizerList = std::vector<std::shared_ptr<torch::optim::Optimizer>>;

// The Python callable of a closure, and the Python objects of the tensors it returned in
// this step. Tensors made in Python and handed to C++ have a Python object that LibTorch keeps
// alive for them; when the last C++ reference goes, LibTorch takes the GIL to release it. The
// step runs without the GIL, so holding those objects here until the step is over (and the GIL
// is back) spares one GIL round trip per tensor inside the step.
struct PythonClosure {
  explicit PythonClosure(py::function f) : fn(std::move(f)) {}
  py::function fn;
  std::vector<py::object> returned;
};

void hold(const torch::Tensor& t, std::vector<py::object>& returned) {
  if (t.defined()) returned.push_back(py::cast(t));
}

// The tensors of a state returned by the closure (loss, and of each observation the
// violations, indices and features), held by `returned`.
void hold_tensors(const ProblemState& state, std::vector<py::object>& returned) {
  hold(state.loss, returned);
  for (const auto& observed : state.observed) {
    const ConstraintState& s = observed.second;
    hold(s.violation(), returned);
    hold(s.strict_violation(), returned);
    hold(s.indices(), returned);
    hold(s.strict_indices(), returned);
    hold(s.features(), returned);
  }
}

// The closure: calls the Python callable under the GIL (the step runs without it: LibTorch's
// autograd engine refuses to run while it is held) and checks what it returned. An exception
// raised in Python passes through the C++ step as it is. The callable is held through a
// shared_ptr, so that copies of the closure made without the GIL touch no reference count; the
// caller keeps `held` until the step is over and destroys it with the GIL.
Closure closure_of(const std::shared_ptr<PythonClosure>& held) {
  return [held]() {
    py::gil_scoped_acquire gil;
    py::object r = held->fn();
    if (!py::isinstance<ProblemState>(r)) {
      throw py::type_error("the closure must return a feasible.ProblemState, got " +
                           py::repr(r.get_type()).cast<std::string>());
    }
    // Moved out when nothing else refers to the Python object (it dies on return), else copied.
    ProblemState& returned = r.cast<ProblemState&>();
    ProblemState state;
    if (Py_REFCNT(r.ptr()) == 1) {
      state = std::move(returned);
    } else {
      state = returned;
    }
    hold_tensors(state, held->returned);
    return state;
  };
}

Closure closure_of(const py::function& fn, std::shared_ptr<PythonClosure>& held) {
  held = std::make_shared<PythonClosure>(fn);
  return closure_of(held);
}

// Runs a step without the GIL (the closures and the Python optimizers take it back).
template <typename F>
StepResult without_gil(F&& f) {
  py::gil_scoped_release release;
  return f();
}

std::shared_ptr<torch::optim::Optimizer> dual_of(const py::object& dual) {
  if (dual.is_none()) return nullptr;
  TORCH_CHECK(!py::isinstance(dual, py::module_::import("torch.optim").attr("Optimizer")),
              "ConstrainedOptimizer: the dual optimizer must be a feasible.optim optimizer (a C++ "
              "one), got a torch.optim optimizer");
  return optimizer_of(dual);
}

std::string tensor_text(const torch::Tensor& t) {
  if (!t.defined()) return "None";
  std::ostringstream out;
  if (t.numel() == 1) {
    out << t.item<double>();
  } else {
    out << "[";
    const auto v = t.detach().to(torch::kFloat64).reshape({-1});
    for (int64_t i = 0; i < v.numel() && i < 6; ++i) out << (i ? ", " : "") << v[i].item<double>();
    out << (v.numel() > 6 ? ", ...]" : "]");
  }
  return out.str();
}

std::string repr(const StepResult& r) {
  std::ostringstream out;
  out << "StepResult(iteration=" << r.iteration;
  if (r.skipped) {
    out << ", skipped=True, reason='" << r.skip_reason << "')";
    return out.str();
  }
  out << ", loss=" << tensor_text(r.loss) << ", lagrangian=" << tensor_text(r.lagrangian)
      << ", max_violation=" << r.max_violation() << ", constraints=[";
  for (size_t i = 0; i < r.constraints.size(); ++i) {
    const auto& c = r.constraints[i];
    out << (i ? ", " : "") << "'" << c.name << "': ";
    if (!c.observed) {
      out << "unobserved";
    } else {
      out << "violation=" << tensor_text(c.strict_violation)
          << " multiplier=" << tensor_text(c.multiplier);
    }
  }
  out << "])";
  return out.str();
}

void bind_results(py::module_& m) {
  py::class_<ConstraintResult>(m, "ConstraintResult",
                               "What one step did to one constraint (tensors detached).")
      .def_readonly("name", &ConstraintResult::name)
      .def_readonly("kind", &ConstraintResult::kind)
      .def_readonly("observed", &ConstraintResult::observed)
      .def_readonly("occasional", &ConstraintResult::occasional)
      .def_readonly("violation", &ConstraintResult::violation, "Used by the primal update.")
      .def_readonly("strict_violation", &ConstraintResult::strict_violation,
                    "Used by the dual update and the penalty updater.")
      .def_readonly("indices", &ConstraintResult::indices)
      .def_readonly("strict_indices", &ConstraintResult::strict_indices)
      .def_readonly("multiplier", &ConstraintResult::multiplier,
                    "Multiplier values used in the primal term.")
      .def_readonly("penalty", &ConstraintResult::penalty)
      .def_readonly("penalty_capped", &ConstraintResult::penalty_capped)
      .def("__repr__", [](const ConstraintResult& c) {
        return "ConstraintResult('" + c.name + "', observed=" + (c.observed ? "True" : "False") +
               ", strict_violation=" + tensor_text(c.strict_violation) +
               ", multiplier=" + tensor_text(c.multiplier) + ")";
      });
  py::class_<StepResult>(m, "StepResult", "What one step did.")
      .def_readonly("iteration", &StepResult::iteration, "0 for the first step.")
      .def_readonly("problem_id", &StepResult::problem_id)
      .def_readonly("loss", &StepResult::loss, "f(x) at the first evaluation (0-d, detached).")
      .def_readonly("lagrangian", &StepResult::lagrangian, "The primal Lagrangian (0-d).")
      .def_readonly("constraints", &StepResult::constraints, "One per constraint, in order.")
      .def_readonly("skipped", &StepResult::skipped)
      .def_readonly("skip_quantity", &StepResult::skip_quantity)
      .def_readonly("skip_constraint", &StepResult::skip_constraint)
      .def_readonly("skip_reason", &StepResult::skip_reason)
      .def_readonly("metrics", &StepResult::metrics)
      .def_readonly("diverging", &StepResult::diverging)
      .def_readonly("lagrangian_diverging", &StepResult::lagrangian_diverging)
      .def("__getitem__", py::overload_cast<const std::string&>(&StepResult::at, py::const_),
           py::return_value_policy::reference_internal, "The result of a constraint by name.")
      .def("unobserved", &StepResult::unobserved)
      .def("max_violation", &StepResult::max_violation,
           "Largest violation among observed constraints; NaN when the step cannot vouch for "
           "feasibility.")
      .def("__repr__", &repr);
}

template <typename Scheme>
void bind_scheme(py::module_& m,
                 py::class_<ConstrainedOptimizer, std::shared_ptr<ConstrainedOptimizer>>& base,
                 const char* name, const char* doc) {
  py::class_<Scheme, ConstrainedOptimizer, std::shared_ptr<Scheme>>(m, name, doc)
      .def(py::init([](Problem problem, const py::object& primal, const py::object& dual,
                       NonFinitePolicy non_finite) {
             return std::make_shared<Scheme>(std::move(problem), optimizers_of(primal),
                                             dual_of(dual),
                                             ConstrainedOptimizerOptions().non_finite(non_finite));
           }),
           py::arg("problem"), py::arg("primal"), py::arg("dual") = py::none(), py::kw_only(),
           py::arg("non_finite") = NonFinitePolicy::kThrow);
  (void)base;
}

void bind_base(py::class_<ConstrainedOptimizer, std::shared_ptr<ConstrainedOptimizer>>& base) {
  base.def(
          "step",
          [](ConstrainedOptimizer& o, const py::function& closure) {
            std::shared_ptr<PythonClosure> held;
            const Closure c = closure_of(closure, held);
            return without_gil([&] { return o.step(c); });
          },
          py::arg("closure"), "One whole iteration; `closure()` returns a ProblemState.")
      .def(
          "dual_step",
          [](ConstrainedOptimizer& o, const py::function& closure) {
            std::shared_ptr<PythonClosure> held;
            const Closure c = closure_of(closure, held);
            return without_gil([&] { return o.dual_step(c); });
          },
          py::arg("closure"),
          "A step of the dual player alone, from a closure evaluated with autograd off.")
      .def(
          "add_projection",
          [](ConstrainedOptimizer& o, const py::handle& params, Projection projection) {
            o.add_projection(tensors_of(params), std::move(projection));
          },
          py::arg("params"), py::arg("projection"),
          "Projects `params` now and after every primal step.")
      .def_property_readonly("problem", &ConstrainedOptimizer::problem)
      .def_property("iteration", &ConstrainedOptimizer::iteration,
                    &ConstrainedOptimizer::set_iteration, "Number of step() calls completed.")
      .def_property_readonly(
          "non_finite", [](const ConstrainedOptimizer& o) { return o.options().non_finite(); });
}

}  // namespace

void bind_schemes(py::module_& m) {
  bind_results(m);
  py::class_<ConstrainedOptimizer, std::shared_ptr<ConstrainedOptimizer>> base(
      m, "ConstrainedOptimizer",
      "Base class of the schemes: one step() is one primal-dual iteration.");
  bind_base(base);
  bind_scheme<SimultaneousOptimizer>(m, base, "SimultaneousOptimizer",
                                     "Simultaneous gradient descent-ascent: one evaluation, one "
                                     "backward pass, both players step.");
  bind_scheme<AlternatingDualPrimalOptimizer>(
      m, base, "AlternatingDualPrimalOptimizer",
      "Alternating, dual first: the primal step uses lambda_{t+1} with the same evaluation.");
  bind_scheme<ExtragradientOptimizer>(
      m, base, "ExtragradientOptimizer",
      "Extragradient: every optimizer must be ExtraSGD or ExtraAdam; two evaluations per step.");
  py::class_<AlternatingPrimalDualOptimizer, ConstrainedOptimizer,
             std::shared_ptr<AlternatingPrimalDualOptimizer>>(
      m, "AlternatingPrimalDualOptimizer",
      "Alternating, primal first: primal step, re-evaluation at x_{t+1}, dual step.")
      .def(py::init([](Problem problem, const py::object& primal, const py::object& dual,
                       NonFinitePolicy non_finite) {
             return std::make_shared<AlternatingPrimalDualOptimizer>(
                 std::move(problem), optimizers_of(primal), dual_of(dual),
                 ConstrainedOptimizerOptions().non_finite(non_finite));
           }),
           py::arg("problem"), py::arg("primal"), py::arg("dual") = py::none(), py::kw_only(),
           py::arg("non_finite") = NonFinitePolicy::kThrow)
      .def(
          "step",
          [](AlternatingPrimalDualOptimizer& o, const py::function& closure,
             const py::object& constraint_closure) {
            std::shared_ptr<PythonClosure> held, held_constraints;
            const Closure c = closure_of(closure, held);
            if (constraint_closure.is_none()) return without_gil([&] { return o.step(c); });
            const Closure cc = closure_of(constraint_closure, held_constraints);
            return without_gil([&] { return o.step(c, cc); });
          },
          py::arg("closure"), py::arg("constraint_closure") = py::none(),
          "One iteration; `constraint_closure` (optional) re-evaluates the constraints only.");
  py::class_<UnconstrainedOptimizer, ConstrainedOptimizer, std::shared_ptr<UnconstrainedOptimizer>>(
      m, "UnconstrainedOptimizer",
      "Minimization of the loss plus penalty terms (formulations without multipliers).")
      .def(py::init([](Problem problem, const py::object& primal, NonFinitePolicy non_finite) {
             return std::make_shared<UnconstrainedOptimizer>(
                 std::move(problem), optimizers_of(primal),
                 ConstrainedOptimizerOptions().non_finite(non_finite));
           }),
           py::arg("problem"), py::arg("primal"), py::kw_only(),
           py::arg("non_finite") = NonFinitePolicy::kThrow);
  py::class_<DefaultOptimizer, ConstrainedOptimizer, std::shared_ptr<DefaultOptimizer>>(
      m, "DefaultOptimizer",
      "The default optimizer (docs/defaults.md): alternating dual-primal with a calibrated "
      "Augmented Lagrangian dual; no step sizes to choose. Primal players: feasible.optim's SGD, "
      "Adam, AdamW, RMSprop or Adagrad.")
      .def(py::init([](Problem problem, const py::object& primal, NonFinitePolicy non_finite,
                       int64_t max_calibration_interval) {
             return std::shared_ptr<DefaultOptimizer>(
                 make_default_optimizer(std::move(problem), optimizers_of(primal),
                                        DefaultOptions()
                                            .non_finite(non_finite)
                                            .max_calibration_interval(max_calibration_interval)));
           }),
           py::arg("problem"), py::arg("primal"), py::kw_only(),
           py::arg("non_finite") = NonFinitePolicy::kThrow,
           py::arg("max_calibration_interval") = DefaultOptions().max_calibration_interval())
      .def("penalty", &DefaultOptimizer::penalty, py::arg("constraint"),
           "The penalty c of each entry of a constraint ([size]).")
      .def_property_readonly("calibrations", &DefaultOptimizer::calibrations);
}

}  // namespace python
}  // namespace feasible
