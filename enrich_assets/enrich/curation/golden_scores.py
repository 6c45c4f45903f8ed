"""The golden_scores table: each pipeline version's golden-set metrics per dataset, with the
gate's verdict. It is the history the regression gate compares a new version against, and
what the validation report quotes for its version.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import polars as pl

from enrich_assets.enrich.curation.golden_gate import MetricGate, check_golden_regression
from enrich_assets.enrich.curation.golden_metrics import MetricParams, score_golden
from enrich_assets.enrich.curation.golden_set import GoldenSet
from enrich_assets.enrich.rules import RuleOutcome

GOLDEN_TABLE = "golden_scores"
# which output each metric is measured on (GoldenScores.coverage is keyed by output)
METRIC_OUTPUT = {
    "detection_recall": "detections",
    "detection_mean_iou": "detections",
    "boundary_precision": "boundaries",
    "boundary_recall": "boundaries",
    "boundary_f1": "boundaries",
    "caption_object_recall": "captions",
}


@dataclass(frozen=True)
class GoldenRun:
    """One dataset scored at one pipeline version."""

    metrics: dict[str, float | None]
    gate: RuleOutcome
    rows: list[dict[str, Any]]  # its golden_scores rows, provenance included


def earlier_scores(history: pl.DataFrame) -> list[tuple[str, str, float | None]]:
    """(pipeline_version, metric, value) of every version scored before, from golden_scores."""
    if not history.height:
        return []
    return list(history.select("pipeline_version", "metric", "value").iter_rows())


def score_version(
    dataset_id: str,
    golden: GoldenSet,
    outputs: Mapping[str, pl.DataFrame],
    history: pl.DataFrame,
    params: MetricParams,
    gates: Mapping[str, MetricGate],
    provenance: Mapping[str, Any],
) -> GoldenRun:
    """Score the pipeline's `outputs` (ai_detections, language_plan, ai_caption) on the golden
    set, gate them against `history`, and give the rows to store. `provenance` holds the
    version as its code_version, plus run_id and created_at."""
    scores = score_golden(
        golden,
        outputs["ai_detections"],
        outputs["language_plan"],
        outputs["ai_caption"],
        params,
    )
    version = provenance["code_version"]
    gate = check_golden_regression(earlier_scores(history), version, scores.metrics, gates)
    rows = [
        {
            "dataset_id": dataset_id,
            "episode_index": None,
            "pipeline_version": version,
            "metric": metric,
            "value": value,
            "covered": scores.coverage[METRIC_OUTPUT[metric]][0],
            "total": scores.coverage[METRIC_OUTPUT[metric]][1],
            "passed_gate": gate.passed,
            **provenance,
        }
        for metric, value in scores.metrics.items()
    ]
    return GoldenRun(scores.metrics, gate, rows)


def version_summary(rows: pl.DataFrame) -> dict[str, Any] | None:
    """One version's golden_scores rows as the validation report shows them; None if unscored."""
    if rows.height == 0:
        return None
    return {
        "passed_gate": bool(rows["passed_gate"].all()),
        "metrics": dict(zip(rows["metric"], rows["value"], strict=True)),
    }
