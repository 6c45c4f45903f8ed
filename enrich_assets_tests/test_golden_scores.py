"""A version scored on the golden set: its golden_scores rows, the gate against the history,
and the summary the validation report quotes."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl

from enrich_assets.enrich.curation.golden_gate import MetricGate
from enrich_assets.enrich.curation.golden_metrics import MetricParams
from enrich_assets.enrich.curation.golden_scores import (
    GOLDEN_TABLE,
    earlier_scores,
    score_version,
    version_summary,
)
from enrich_assets.infra.schema import to_table
from enrich_assets_tests.test_golden_metrics import GOLDEN, PERFECT, _captions, _detections, _plan

GATES = {"detection_recall": MetricGate(floor=0.5, tolerance=0.05)}
WHEN = datetime(2026, 1, 1, tzinfo=UTC)


def _outputs(boxes: list) -> dict[str, pl.DataFrame]:  # noqa: ANN001
    return {
        "ai_detections": _detections([boxes, boxes]),
        "language_plan": _plan([0.0, 1.6, 2.0, 3.9]),
        "ai_caption": _captions(["A red cube next to a blue cylinder."]),  # one of two
    }


def _score(version: str, boxes: list, history: pl.DataFrame) -> object:  # noqa: ANN001
    provenance = {"code_version": version, "run_id": "r", "created_at": WHEN}
    return score_version("d", GOLDEN, _outputs(boxes), history, MetricParams(), GATES, provenance)


def test_rows_carry_metric_coverage_and_verdict() -> None:
    run = _score("v1", PERFECT, pl.DataFrame())
    assert run.gate.passed and run.metrics["detection_recall"] == 1.0
    rows = {r["metric"]: r for r in run.rows}
    assert set(rows) == set(run.metrics)
    assert (rows["detection_recall"]["covered"], rows["detection_recall"]["total"]) == (2, 2)
    assert (rows["caption_object_recall"]["covered"], rows["caption_object_recall"]["total"]) == (
        1,
        2,
    )
    assert rows["boundary_f1"]["pipeline_version"] == rows["boundary_f1"]["code_version"] == "v1"
    assert all(r["passed_gate"] and r["dataset_id"] == "d" for r in run.rows)
    assert to_table(GOLDEN_TABLE, run.rows).num_rows == 6  # rows fit the declared table


def test_a_later_version_that_loses_recall_fails_the_gate_in_its_rows() -> None:
    history = pl.from_arrow(to_table(GOLDEN_TABLE, _score("v1", PERFECT, pl.DataFrame()).rows))
    worse = _score("v2", PERFECT[1:], history)  # the cube is no longer found
    assert not worse.gate.passed and "detection_recall fell from 1.000" in worse.gate.message
    assert not any(r["passed_gate"] for r in worse.rows)
    assert ("v1", "detection_recall", 1.0) in earlier_scores(history)
    assert earlier_scores(pl.DataFrame()) == []


def test_version_summary() -> None:
    assert version_summary(pl.DataFrame()) is None
    rows = pl.DataFrame({"metric": ["a", "b"], "value": [0.5, None], "passed_gate": [True, False]})
    assert version_summary(rows) == {"passed_gate": False, "metrics": {"a": 0.5, "b": None}}
