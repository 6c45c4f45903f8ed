"""The regression gate: a version may not lose a metric an earlier version passed."""

from __future__ import annotations

from enrich_assets.enrich.curation.golden_gate import (
    RULE,
    MetricGate,
    check_golden_regression,
    find_regressions,
    load_gates,
)
from enrich_assets.enrich.rules import Severity

GATES = {
    "detection_recall": MetricGate(floor=0.5, tolerance=0.05),
    "boundary_f1": MetricGate(floor=0.5, tolerance=0.1),
}


def test_a_drop_beyond_tolerance_is_rejected_and_named() -> None:
    history = [("v1", "detection_recall", 0.6), ("v2", "detection_recall", 0.8)]
    result = check_golden_regression(history, "v3", {"detection_recall": 0.7}, GATES)
    assert (result.rule, result.severity, result.passed) == (RULE, Severity.ERROR, False)
    assert result.message == (
        "detection_recall fell from 0.800 (version v2) to 0.700: -0.100, tolerance 0.050"
    )


def test_a_drop_within_tolerance_passes() -> None:
    history = [("v1", "detection_recall", 0.8), ("v1", "boundary_f1", 0.9)]
    result = check_golden_regression(
        history, "v2", {"detection_recall": 0.75, "boundary_f1": 0.81}, GATES
    )
    assert result.passed
    assert result.message == "no regression against 1 earlier version(s)"


def test_every_regressed_metric_is_reported() -> None:
    history = [("v1", "detection_recall", 0.9), ("v1", "boundary_f1", 0.9)]
    found = find_regressions(history, "v2", {"detection_recall": 0.5, "boundary_f1": 0.6}, GATES)
    assert [(r.metric, round(r.drop, 3)) for r in found] == [
        ("detection_recall", 0.4),
        ("boundary_f1", 0.3),
    ]


def test_metrics_that_never_passed_cannot_reject() -> None:
    history = [("v1", "detection_recall", 0.45), ("v2", "detection_recall", 0.49)]
    assert check_golden_regression(history, "v3", {"detection_recall": 0.0}, GATES).passed


def test_ungated_unmeasured_and_own_scores_are_ignored() -> None:
    history = [
        ("v1", "boundary_precision", 0.9),  # not gated
        ("v1", "boundary_f1", 0.9),
        ("v2", "detection_recall", 0.9),  # the version being judged, scored before
    ]
    scores = {"boundary_precision": 0.1, "boundary_f1": None, "detection_recall": 0.6}
    result = check_golden_regression(history, "v2", scores, GATES)
    assert result.passed
    assert result.message == "no regression against 1 earlier version(s); not measured: boundary_f1"


def test_first_version_passes() -> None:
    assert check_golden_regression([], "v1", {"detection_recall": 0.1}, GATES).passed


def test_gates_come_from_the_schema() -> None:
    gates = load_gates()
    assert set(gates) == {
        "detection_recall",
        "detection_mean_iou",
        "boundary_f1",
        "caption_object_recall",
    }
    assert all(0 < g.floor <= 1 and 0 <= g.tolerance < g.floor for g in gates.values())
