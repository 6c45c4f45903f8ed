"""The shape every episode-partitioned asset shares: per episode, compute → write → record.

An asset body hands `materialize_episodes` a pure function from an episode to rows and rule
outcomes. Each episode of a (possibly batched) run is computed alone: a damaged episode
fails only itself, one quarantined upstream is skipped, and the good ones are written.
Dagster gets one summary check result per rule (it records one evaluation per run); the
per-episode outcomes go to the catalog.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import dagster as dg

from enrich_assets.datasets.episode import EpisodeRef
from enrich_assets.datasets.errors import DatasetError
from enrich_assets.defs.automation import RERUN_WHEN_CODE_CHANGES
from enrich_assets.defs.partitions import EPISODE_BACKFILL, episodes
from enrich_assets.defs.resources import PipelineResource
from enrich_assets.enrich.rules import RuleOutcome, Severity
from enrich_assets.infra.partition_keys import parse_partition_key
from enrich_assets.infra.schema import to_table
from enrich_assets.store.episode_log import STATUS, VALIDATION, quarantine_reasons


@dataclass
class EpisodeOutput:
    rows: list[dict[str, Any]]
    outcomes: list[RuleOutcome] = field(default_factory=list)


def episode_asset(
    *, rules: Mapping[str, Severity] | None = None, **asset_args: Any
) -> Callable[[Callable[..., dg.MaterializeResult]], dg.AssetsDefinition]:
    """`@dg.asset` for a per-episode asset: episode partitions, batched backfills, re-runs
    when its code_version changes, and its rules declared as checks. Everything else (deps,
    code_version, group...) passes through."""

    def decorate(fn: Callable[..., dg.MaterializeResult]) -> dg.AssetsDefinition:
        return dg.asset(
            partitions_def=episodes,
            backfill_policy=EPISODE_BACKFILL,
            automation_condition=RERUN_WHEN_CODE_CHANGES,
            check_specs=check_specs(fn.__name__, rules or {}),
            **asset_args,
        )(fn)

    return decorate


def check_specs(asset: str, rules: Mapping[str, Severity]) -> list[dg.AssetCheckSpec]:
    """Declare an asset's rules as checks, so the UI lists them before anything runs.

    Never blocking: a failed rule quarantines its episode, it does not hold back the batch.
    """
    return [
        dg.AssetCheckSpec(name, asset=asset, blocking=False, metadata={"severity": str(sev)})
        for name, sev in rules.items()
    ]


def materialize_episodes(
    context: dg.AssetExecutionContext,
    pipeline: PipelineResource,
    table: str,
    compute: Callable[[EpisodeRef], EpisodeOutput],
    rules: Mapping[str, Severity],
    upstream: Sequence[str] = (),
    summarize: Callable[[], dict[str, Any]] | None = None,
    prepare: Callable[[list[EpisodeRef]], None] | None = None,
) -> dg.MaterializeResult:
    """`prepare`, if given, sees every episode that will be computed, before any is: model
    assets use it to pack keyframes from all episodes of the run into full batches."""
    catalog = pipeline.catalog
    started = time.perf_counter()
    provenance = {
        "code_version": context.assets_def.code_versions_by_key.get(context.asset_key) or "",
        "run_id": context.run.run_id,
    }
    outcomes: dict[str, list[tuple[str, RuleOutcome]]] = {name: [] for name in rules}
    failed: dict[str, str] = {}
    quarantined: dict[str, str] = {}
    rows_written = 0
    keys = context.partition_keys
    by_dataset: dict[str, dict[int, str]] = {}
    refs: dict[str, EpisodeRef | Exception] = {}
    for key in keys:
        dataset_id, episode_index = parse_partition_key(key)
        if dataset_id not in by_dataset:
            by_dataset[dataset_id] = quarantine_reasons(catalog, dataset_id, list(upstream))
        if episode_index in by_dataset[dataset_id]:
            quarantined[key] = by_dataset[dataset_id][episode_index]
            continue
        try:
            refs[key] = pipeline.episode(dataset_id, episode_index)
        except DatasetError as exc:
            refs[key] = exc
    if prepare is not None:
        prepare([r for r in refs.values() if isinstance(r, EpisodeRef)])
    for key in keys:
        dataset_id, episode_index = parse_partition_key(key)
        now = {**provenance, "created_at": datetime.now(UTC)}
        ids = {"dataset_id": dataset_id, "episode_index": episode_index}
        status, message = "ok", ""
        if key in quarantined:
            status, message = "quarantined", quarantined[key]
        else:
            try:
                ref = refs[key]
                if isinstance(ref, Exception):
                    raise ref
                output = compute(ref)
                part = f"{episode_index:06d}"
                catalog.write(
                    table,
                    dataset_id,
                    part,
                    to_table(table, [{**ids, **r, **now} for r in output.rows]),
                )
                rows_written += len(output.rows)
                _record_rules(catalog, table, ids, output.outcomes, now)
                for o in output.outcomes:
                    outcomes[o.rule].append((key, o))
            except DatasetError as exc:
                status, message = "failed", str(exc)
            except Exception as exc:  # one episode's bug must not sink the batch
                status, message = (
                    "failed",
                    f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}",
                )
                context.log.error(f"{key}: {traceback.format_exc()}")
            if status == "failed":
                failed[key] = message
                context.log.error(f"{table} failed for {key}: {message}")
        catalog.write(
            STATUS,
            dataset_id,
            f"{table}-{episode_index:06d}",
            to_table(
                STATUS, [{**ids, "asset": table, "status": status, "message": message, **now}]
            ),
        )
    if len(keys) == 1 and failed:
        raise dg.Failure(description=next(iter(failed.values())), metadata={"episode": keys[0]})
    if len(keys) == 1 and quarantined:
        raise dg.Failure(description=f"quarantined: {next(iter(quarantined.values()))}")
    return dg.MaterializeResult(
        metadata={
            "episodes": len(keys),
            "rows": rows_written,
            "failed_episodes": dg.MetadataValue.json(failed),
            "quarantined_episodes": dg.MetadataValue.json(quarantined),
            "seconds": round(time.perf_counter() - started, 3),
            "ms_per_episode": round(1000 * (time.perf_counter() - started) / max(len(keys), 1), 2),
            **(summarize() if summarize else {}),
        },
        check_results=[_summary(name, outcomes[name], sev) for name, sev in rules.items()],
    )


def _record_rules(catalog, table: str, ids: dict, outcomes: list[RuleOutcome], now: dict) -> None:  # noqa: ANN001
    rows = [
        {
            **ids,
            "asset": table,
            "rule": o.rule,
            "severity": str(o.severity),
            "passed": o.passed,
            "message": o.message,
            **now,
        }
        for o in outcomes
    ]
    part = f"{table}-{ids['episode_index']:06d}"
    catalog.write(VALIDATION, ids["dataset_id"], part, to_table(VALIDATION, rows))


def _summary(
    rule: str, results: list[tuple[str, RuleOutcome]], severity: Severity
) -> dg.AssetCheckResult:
    failing = {key: o.message for key, o in results if not o.passed}
    return dg.AssetCheckResult(
        check_name=rule,
        passed=not failing,
        severity=dg.AssetCheckSeverity(str(severity)),
        metadata={
            "episodes_checked": len(results),
            "episodes_failing": len(failing),
            "failing": dg.MetadataValue.json(dict(list(failing.items())[:50])),
        },
    )
