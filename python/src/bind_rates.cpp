// Bindings of the rates (include/feasible/rates.h) and of the held-out audit
// (include/feasible/audit.h): rates of 0-1 decisions with their surrogates, the requirements
// that turn them into a ConstraintState, and the Auditor's report.
#include "common.h"

namespace feasible {
namespace python {
namespace {

rates::RateOptions rate_options(rates::Surrogate surrogate, double temperature, double threshold) {
  return rates::RateOptions().surrogate(surrogate).temperature(temperature).threshold(threshold);
}

using Labelled = rates::Rate (*)(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&,
                                 const rates::RateOptions&);
using Unlabelled = rates::Rate (*)(const torch::Tensor&, const torch::Tensor&,
                                   const rates::RateOptions&);

void def_unlabelled(py::module_& r, const char* name, Unlabelled f, const char* doc) {
  r.def(
      name,
      [f](const torch::Tensor& scores, const py::object& mask, rates::Surrogate surrogate,
          double temperature, double threshold) {
        return f(scores, tensor_or_undefined(mask),
                 rate_options(surrogate, temperature, threshold));
      },
      py::arg("scores"), py::arg("mask") = py::none(), py::kw_only(),
      py::arg("surrogate") = rates::Surrogate::kSigmoid, py::arg("temperature") = 1.0,
      py::arg("threshold") = 0.0, doc);
}

void def_labelled(py::module_& r, const char* name, Labelled f, const char* doc) {
  r.def(
      name,
      [f](const torch::Tensor& scores, const torch::Tensor& labels, const py::object& mask,
          rates::Surrogate surrogate, double temperature, double threshold) {
        return f(scores, labels, tensor_or_undefined(mask),
                 rate_options(surrogate, temperature, threshold));
      },
      py::arg("scores"), py::arg("labels"), py::arg("mask") = py::none(), py::kw_only(),
      py::arg("surrogate") = rates::Surrogate::kSigmoid, py::arg("temperature") = 1.0,
      py::arg("threshold") = 0.0, doc);
}

void bind_rate_types(py::module_& r) {
  py::enum_<rates::Surrogate>(r, "Surrogate", "The differentiable stand-in for 1[z > 0].")
      .value("SIGMOID", rates::Surrogate::kSigmoid, "sigmoid(z / temperature) (default)")
      .value("HINGE", rates::Surrogate::kHinge, "max(0, 1 + z / temperature), an upper bound");
  py::class_<rates::Rate>(r, "Rate",
                          "A rate hits / total over a subset of examples: the 0-1 value and a "
                          "differentiable surrogate (0-d, or [K] per class).")
      .def_readonly("surrogate", &rates::Rate::surrogate, "The surrogate rate (differentiable).")
      .def_readonly("hits", &rates::Rate::hits, "The numerator (detached).")
      .def_readonly("total", &rates::Rate::total, "The denominator (detached).")
      .def("value", &rates::Rate::value, "The 0-1 rate hits / total; NaN where total == 0.");
  py::class_<rates::RunningRate>(r, "RunningRate",
                                 "A rate over many batches: decayed sums of hits and totals.")
      .def(py::init<double>(), py::arg("decay") = 0.99)
      .def("update", &rates::RunningRate::update, py::arg("batch"),
           "Folds in one batch's rate; returns the running rate.")
      .def("reset", &rates::RunningRate::reset)
      .def_property_readonly("current", &rates::RunningRate::current);
  py::class_<rates::Requirement>(r, "Requirement",
                                 "A requirement on rates; state() is the ConstraintState (the "
                                 "surrogate as violation, the 0-1 rate as strict violation).")
      .def("state", &rates::Requirement::state)
      .def("size", &rates::Requirement::size, "The size to register the constraint with.")
      .def("tightened", &rates::Requirement::tightened, py::arg("margin"),
           "Every offset raised by margin >= 0 (rate <= eps - margin).");
}

void bind_rate_functions(py::module_& r) {
  def_unlabelled(r, "positive_rate", &rates::positive_rate, "P(score > t | mask).");
  def_unlabelled(r, "negative_rate", &rates::negative_rate, "P(score <= t | mask).");
  def_labelled(r, "true_positive_rate", &rates::true_positive_rate,
               "P(predicted positive | label 1, mask).");
  def_labelled(r, "false_positive_rate", &rates::false_positive_rate,
               "P(predicted positive | label 0, mask).");
  def_labelled(r, "true_negative_rate", &rates::true_negative_rate,
               "P(predicted negative | label 0, mask).");
  def_labelled(r, "false_negative_rate", &rates::false_negative_rate,
               "P(predicted negative | label 1, mask).");
  def_labelled(r, "error_rate", &rates::error_rate, "P(predicted label != label | mask).");
  def_labelled(r, "recall", &rates::recall, "Per-class recall [K] of logits [N, K].");
  def_labelled(r, "precision", &rates::precision, "Per-class precision [K] of logits [N, K].");
  r.def(
      "mean",
      [](const torch::Tensor& values, double lower, double upper, const py::object& mask) {
        return rates::mean(values, lower, upper, tensor_or_undefined(mask));
      },
      py::arg("values"), py::arg("lower"), py::arg("upper"), py::arg("mask") = py::none(),
      "The mean of values bounded in [lower, upper].");
  r.def("at_most", &rates::at_most, py::arg("rate"), py::arg("eps"), "rate <= eps.");
  r.def("at_least", &rates::at_least, py::arg("rate"), py::arg("eps"), "rate >= eps.");
  r.def("difference_at_most", &rates::difference_at_most, py::arg("a"), py::arg("b"),
        py::arg("eps"), "a - b <= eps.");
  r.def("within", &rates::within, py::arg("a"), py::arg("b"), py::arg("eps"),
        "|a - b| <= eps, as two entries (a - b <= eps, b - a <= eps).");
  r.def("ratio_at_least", &rates::ratio_at_least, py::arg("a"), py::arg("b"), py::arg("ratio"),
        "a >= ratio * b.");
  r.def("hoeffding_margin", &rates::hoeffding_margin, py::arg("n"), py::arg("delta"),
        "sqrt(log(1 / delta) / (2 n)) (Hoeffding 1963).");
}

void bind_audit(py::module_& m) {
  py::enum_<Correction>(m, "Correction", "The multiple-testing correction of the audit.")
      .value("HOLM", Correction::kHolm)
      .value("BONFERRONI", Correction::kBonferroni)
      .value("NONE", Correction::kNone);
  py::enum_<MeanBound>(m, "MeanBound", "The bound of a bounded mean's audit.")
      .value("EMPIRICAL_BERNSTEIN", MeanBound::kEmpiricalBernstein)
      .value("HOEFFDING", MeanBound::kHoeffding);
  py::enum_<Verdict>(m, "Verdict", "An audited entry's verdict.")
      .value("HOLDS", Verdict::kHolds)
      .value("VIOLATED", Verdict::kViolated)
      .value("INCONCLUSIVE", Verdict::kInconclusive)
      .value("NOT_OBSERVED", Verdict::kNotObserved);
  py::class_<AuditEntry>(m, "AuditEntry", "One audited scalar constraint.")
      .def_readonly("constraint", &AuditEntry::constraint)
      .def_readonly("entry", &AuditEntry::entry)
      .def_readonly("estimate", &AuditEntry::estimate)
      .def_readonly("threshold", &AuditEntry::threshold)
      .def_readonly("upper", &AuditEntry::upper)
      .def_readonly("lower", &AuditEntry::lower)
      .def_readonly("p_value", &AuditEntry::p_value)
      .def_readonly("method", &AuditEntry::method)
      .def_readonly("examples", &AuditEntry::examples)
      .def_readonly("verdict", &AuditEntry::verdict);
  py::class_<AuditReport>(m, "AuditReport", "The held-out audit's report (docs/audit.md).")
      .def_readonly("entries", &AuditReport::entries)
      .def_readonly("tested", &AuditReport::tested)
      .def("all_hold", &AuditReport::all_hold)
      .def("to_json", &AuditReport::to_json)
      .def("to_markdown", &AuditReport::to_markdown);
  py::class_<Auditor>(m, "Auditor",
                      "Accumulates requirements measured on held-out batches; report() tests "
                      "them (delta in (0, 1), default 0.05; correction HOLM).")
      .def(py::init([](Problem problem, double delta, Correction correction, MeanBound bound) {
             return std::make_unique<Auditor>(
                 std::move(problem),
                 AuditOptions().delta(delta).correction(correction).mean_bound(bound));
           }),
           py::arg("problem"), py::kw_only(), py::arg("delta") = 0.05,
           py::arg("correction") = Correction::kHolm,
           py::arg("mean_bound") = MeanBound::kEmpiricalBernstein)
      .def("observe", &Auditor::observe, py::arg("constraint"), py::arg("requirement"))
      .def("report", &Auditor::report);
  m.def("audit_margin", py::overload_cast<int64_t, double>(&audit_margin), py::arg("n"),
        py::arg("delta"), "sqrt(log(1 / delta) / (2 n)): the margin to train against.");
  m.def("audit_margin", py::overload_cast<int64_t, int64_t, double>(&audit_margin), py::arg("n_a"),
        py::arg("n_b"), py::arg("delta"), "The margin of a difference of two groups' rates.");
}

}  // namespace

void bind_rates(py::module_& m) {
  auto r = m.def_submodule("rates", "Rates of 0-1 decisions and requirements on them.");
  bind_rate_types(r);
  bind_rate_functions(r);
  bind_audit(m);
}

}  // namespace python
}  // namespace feasible
