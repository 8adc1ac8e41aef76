"""Rates and the held-out audit from Python (include/feasible/rates.h, audit.h), with values
computed by hand."""
import json
import math

import pytest

feasible = pytest.importorskip("feasible")
import torch  # noqa: E402

rates = feasible.rates


def test_positive_rate_and_requirement_state():
    scores = torch.tensor([2.0, -1.0, 0.5, -3.0], requires_grad=True)
    rate = rates.positive_rate(scores)
    # Two of four scores are > 0 (the default threshold): 0-1 rate 2 / 4.
    assert rate.value().item() == 0.5
    assert rate.hits.item() == 2.0 and rate.total.item() == 4.0
    # The surrogate is the mean of sigmoid(score / 1) (the default temperature), recomputed here.
    expected = torch.sigmoid(scores.detach()).mean()
    assert torch.allclose(rate.surrogate.detach(), expected, rtol=0, atol=1e-6)  # float32
    state = rates.at_most(rate, 0.3).state()
    # at_most(r, 0.3): violation = surrogate - 0.3, strict violation = 0.5 - 0.3 = 0.2.
    assert torch.allclose(state.violation.detach(), (expected - 0.3).reshape(1), atol=1e-6)
    assert torch.allclose(state.strict_violation, torch.tensor([0.2]), atol=1e-6)
    assert state.violation.requires_grad  # the surrogate carries the gradient

    masked = rates.positive_rate(scores, torch.tensor([True, True, False, False]))
    assert masked.value().item() == 0.5  # one of the two masked scores is > 0
    assert rates.within(rate, masked, 0.1).size() == 2  # two sides, two entries


def test_rate_options_are_validated():
    scores = torch.zeros(3)
    with pytest.raises(ValueError, match="RateOptions.temperature"):
        rates.positive_rate(scores, temperature=0.0)


def test_audit_report_and_margins():
    problem = feasible.Problem()
    c = problem.add_constraint("rate")
    auditor = feasible.Auditor(problem, delta=0.05)
    scores = torch.tensor([2.0, -1.0, 0.5, -3.0])
    auditor.observe(c, rates.at_most(rates.positive_rate(scores), 0.3))
    report = auditor.report()
    assert len(report.entries) == 1
    entry = report.entries[0]
    assert entry.constraint == "rate"
    assert entry.examples == 4
    # The pooled e = 0.5 - 0.3 on the held-out examples.
    assert abs(entry.estimate - 0.2) < 1e-12
    assert not report.all_hold()  # a measured violation cannot be shown to hold
    assert json.loads(report.to_json())  # valid JSON
    # audit_margin(n, delta) = sqrt(log(1 / delta) / (2 n)) (Hoeffding 1963).
    assert feasible.audit_margin(100, 0.05) == pytest.approx(math.sqrt(math.log(20) / 200),
                                                             rel=1e-12)
    with pytest.raises(ValueError, match="AuditOptions.delta"):
        feasible.Auditor(problem, delta=1.5)
