"""Every per-episode asset step's run metrics and alert checks, in one call at its end.

The figures (enrich/monitoring/metrics.py) become a row of the `run_metrics` table (one per
run and asset) and plottable materialization metadata; the alert rules the asset declares
(enrich/monitoring/alerts.py; severity from the `alerts:` settings) become check results on
the run. Every per-episode asset checks rule 3 (`alert_no_frames`); the VLM assets also rule 1
(`alert_error_rate`), `tech_quality` rule 2 (`alert_quality_drop`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import dagster as dg

from enrich_assets.defs.resources import PipelineResource
from enrich_assets.enrich.monitoring.alerts import (
    ERROR_RATE,
    NO_FRAMES,
    QUALITY_DROP,
    Thresholds,
    error_rate_outcome,
    no_frames_outcome,
    quality_drop_outcome,
    quality_history,
)
from enrich_assets.enrich.monitoring.metrics import METRICS_TABLE, RunMeter, metrics_row, plotted
from enrich_assets.enrich.rules import RuleOutcome
from enrich_assets.infra.partition_keys import parse_partition_key
from enrich_assets.infra.schema import to_table
from enrich_assets.infra.settings import load_settings

ALERT_CHECKS = {
    ERROR_RATE: "alert_error_rate",
    QUALITY_DROP: "alert_quality_drop",
    NO_FRAMES: "alert_no_frames",
}
_DESCRIPTIONS = {
    ERROR_RATE: "The run's VLM API error rate is at most the alerts.error_rate threshold.",
    QUALITY_DROP: "The mean quality of the run's new frames is not below the historical mean "
    "by more than alerts.quality_drop.std standard deviations.",
    NO_FRAMES: "The run wrote rows for the episodes it had to do.",
}


def thresholds() -> Thresholds:
    return Thresholds.from_settings(load_settings().alerts)


def alert_check_specs(asset: str, rules: Sequence[str]) -> list[dg.AssetCheckSpec]:
    """The alert rules of an asset as checks (never blocking: an alert informs, it does not
    hold back downstream work)."""
    severity = thresholds().severity
    return [
        dg.AssetCheckSpec(
            ALERT_CHECKS[rule],
            asset=asset,
            blocking=False,
            description=_DESCRIPTIONS[rule],
            metadata={"severity": str(severity[rule])},
        )
        for rule in rules
    ]


def record_run_metrics(
    context: dg.AssetExecutionContext,
    pipeline: PipelineResource,
    table: str,
    meter: RunMeter,
    not_written: int,
    seconds: float,
) -> tuple[dict[str, Any], list[dg.AssetCheckResult]]:
    """Write the step's `run_metrics` row; its metadata and its alert checks' results."""
    keys = context.partition_keys
    run_id = context.run.run_id
    datasets = sorted({parse_partition_key(k)[0] for k in keys})
    dataset_id = ",".join(datasets)
    row = metrics_row(table, meter, len(keys), not_written, seconds)
    declared = {
        rule
        for rule, name in ALERT_CHECKS.items()
        if dg.AssetCheckKey(context.asset_key, name) in context.selected_asset_check_keys
    }
    t = thresholds()
    outcomes: list[RuleOutcome] = []
    if ERROR_RATE in declared:
        outcomes.append(error_rate_outcome(row, t))
    if QUALITY_DROP in declared:
        where = f"asset = '{table}' AND dataset_id = '{dataset_id}' AND run_id <> '{run_id}'"
        history = pipeline.catalog.read(METRICS_TABLE, datasets[0], where=where)
        outcomes.append(quality_drop_outcome(row, quality_history(history.to_dicts()), t))
    if NO_FRAMES in declared:
        outcomes.append(no_frames_outcome(row, t))
    provenance = {
        "code_version": context.assets_def.code_versions_by_key.get(context.asset_key) or "",
        "run_id": run_id,
        "created_at": datetime.now(UTC),
    }
    stored = {"dataset_id": dataset_id, "episode_index": None, **row, **provenance}
    part = f"{table}-{run_id}"  # a retried step replaces its own row
    pipeline.catalog.write(METRICS_TABLE, datasets[0], part, to_table(METRICS_TABLE, [stored]))
    metadata = {
        **plotted(row),
        "latency_by_model": dg.MetadataValue.json(json.loads(row["latency_by_model"])),
    }
    return metadata, [_check(o, ALERT_CHECKS[o.rule]) for o in outcomes]


def _check(o: RuleOutcome, name: str) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=name,
        passed=o.passed,
        severity=dg.AssetCheckSeverity(str(o.severity)),
        description=o.message,
        metadata={"message": dg.MetadataValue.text(o.message)},
    )
