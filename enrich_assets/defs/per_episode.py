"""The shape every episode-partitioned asset shares: per episode, compute → write → record.

An asset body hands `materialize_episodes` a pure function from an episode to rows and rule
outcomes. Each episode of a (possibly batched) run is computed alone: a damaged episode
fails only itself, one quarantined upstream is skipped, and the good ones are written.

Per-partition truth in range runs (see docs/architecture.md): when every episode of the run
succeeds the step returns one result for the whole range, as usual. When some fail, it
records one materialization per good episode, one observation carrying the reason per bad
one, and then fails the step: Dagster then shows each bad partition as failed (never
materialized) and each good one as materialized, whoever launched the run. The run driver
and the `finish_partial_ranges` sensor then run the downstream assets of the good episodes.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import dagster as dg

from enrich_assets.datasets.episode import EpisodeRef
from enrich_assets.datasets.errors import DatasetError
from enrich_assets.defs.automation import RERUN_WHEN_CODE_CHANGES
from enrich_assets.defs.partitions import EPISODE_BACKFILL, episodes
from enrich_assets.defs.resources import PipelineResource
from enrich_assets.defs.run_metrics import alert_check_specs, record_run_metrics
from enrich_assets.enrich.monitoring.alerts import NO_FRAMES
from enrich_assets.enrich.monitoring.metrics import RunMeter
from enrich_assets.enrich.rules import RuleOutcome, Severity
from enrich_assets.infra.errors import one_line
from enrich_assets.infra.partition_keys import parse_partition_key
from enrich_assets.infra.schema import to_table
from enrich_assets.store.episode_log import STATUS, VALIDATION, quarantine_reasons

EpisodeEvents = Iterator[dg.MaterializeResult | dg.AssetMaterialization | dg.AssetObservation]


@dataclass
class EpisodeOutput:
    rows: list[dict[str, Any]]
    outcomes: list[RuleOutcome] = field(default_factory=list)


def episode_asset(
    *,
    rules: Mapping[str, Severity] | None = None,
    alerts: Sequence[str] = (),
    **asset_args: Any,
) -> Callable[[Callable[..., EpisodeEvents]], dg.AssetsDefinition]:
    """`@dg.asset` for a per-episode asset: episode partitions, batched backfills, re-runs
    when its code_version changes, and its rules declared as checks, with the alert rules
    (`alerts`, besides `no_frames` which every one has; defs/run_metrics.py). Everything else
    (deps, code_version, group...) passes through. `output_required=False`: a range run with
    a failed episode materializes only the good partitions."""

    def decorate(fn: Callable[..., EpisodeEvents]) -> dg.AssetsDefinition:
        return dg.asset(
            partitions_def=episodes,
            backfill_policy=EPISODE_BACKFILL,
            automation_condition=RERUN_WHEN_CODE_CHANGES,
            check_specs=[
                *check_specs(fn.__name__, rules or {}),
                *alert_check_specs(fn.__name__, [NO_FRAMES, *alerts]),
            ],
            output_required=False,
            dagster_type=dg.Nothing,  # rows go to the catalog, never through an IO manager
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


@dataclass
class RunOutcome:
    """What happened to each episode of the run."""

    written: dict[str, int] = field(default_factory=dict)  # partition key -> rows
    failed: dict[str, str] = field(default_factory=dict)  # partition key -> reason
    quarantined: dict[str, str] = field(default_factory=dict)
    outcomes: list[tuple[str, RuleOutcome]] = field(default_factory=list)
    meter: RunMeter = field(default_factory=RunMeter)  # what the run_metrics row reports

    @property
    def not_written(self) -> dict[str, str]:
        return {**self.failed, **{k: f"quarantined: {m}" for k, m in self.quarantined.items()}}


def materialize_episodes(
    context: dg.AssetExecutionContext,
    pipeline: PipelineResource,
    table: str,
    compute: Callable[[EpisodeRef], EpisodeOutput],
    rules: Mapping[str, Severity],
    upstream: Sequence[str] = (),
    summarize: Callable[[], dict[str, Any]] | None = None,
    prepare: Callable[[list[EpisodeRef]], None] | None = None,
    meter: RunMeter | None = None,
) -> EpisodeEvents:
    """Compute, write and record every episode of the run (now, not lazily), then return
    the events that tell Dagster what happened per partition.

    `prepare`, if given, sees every episode that will be computed, before any is: model
    assets use it to pack keyframes from all episodes of the run into full batches.
    `meter`, if given, is where the asset reports its model batches and VLM calls."""
    started = time.perf_counter()
    keys = context.partition_keys
    provenance = {
        "code_version": _code_version(context),
        "run_id": context.run.run_id,
    }
    run = RunOutcome(meter=meter or RunMeter())
    refs = _episode_refs(pipeline, keys, upstream, run)
    if prepare is not None:
        prepare([r for r in refs.values() if isinstance(r, EpisodeRef)])
    for key in keys:
        _one_episode(context, pipeline, table, compute, key, refs.get(key), provenance, run)
    seconds = time.perf_counter() - started
    monitored, alert_checks = record_run_metrics(
        context, pipeline, table, run.meter, len(run.not_written), seconds
    )
    metadata = {
        "episodes": len(keys),
        "rows": sum(run.written.values()),
        "failed_episodes": dg.MetadataValue.json(run.failed),
        "quarantined_episodes": dg.MetadataValue.json(run.quarantined),
        "seconds": round(seconds, 3),
        "ms_per_episode": round(1000 * seconds / max(len(keys), 1), 2),
        **(summarize() if summarize and run.written else {}),
        **monitored,
    }
    checks = [*(_summary(name, sev, run) for name, sev in rules.items()), *alert_checks]
    if not run.not_written:
        return _emit([dg.MaterializeResult(metadata=metadata, check_results=checks)])
    events = [*_per_partition_events(context, run, provenance["code_version"]), *checks]
    failure = dg.Failure(
        description=_failure_line(run, len(keys)), metadata=metadata, allow_retries=False
    )
    return _emit(events, failure)


def _emit(events: list[Any], failure: dg.Failure | None = None) -> EpisodeEvents:
    """Hand Dagster the events computed already (a generator: Dagster reads a returned
    generator as events), then fail the step if asked. The work is done before the asset
    body returns, so clients it opened in a `with` block were still open."""
    yield from events
    if failure is not None:
        raise failure


def _code_version(context: dg.AssetExecutionContext) -> str:
    return context.assets_def.code_versions_by_key.get(context.asset_key) or ""


def _episode_refs(
    pipeline: PipelineResource, keys: Sequence[str], upstream: Sequence[str], run: RunOutcome
) -> dict[str, EpisodeRef | Exception]:
    """Each key's episode, or why it cannot run: quarantined upstream, or unreadable."""
    reasons: dict[str, dict[int, str]] = {}
    refs: dict[str, EpisodeRef | Exception] = {}
    for key in keys:
        dataset_id, episode_index = parse_partition_key(key)
        if dataset_id not in reasons:
            reasons[dataset_id] = quarantine_reasons(pipeline.catalog, dataset_id, list(upstream))
        if episode_index in reasons[dataset_id]:
            run.quarantined[key] = reasons[dataset_id][episode_index]
            continue
        try:
            refs[key] = pipeline.episode(dataset_id, episode_index)
        except DatasetError as exc:
            refs[key] = exc
    return refs


def _one_episode(
    context: dg.AssetExecutionContext,
    pipeline: PipelineResource,
    table: str,
    compute: Callable[[EpisodeRef], EpisodeOutput],
    key: str,
    ref: EpisodeRef | Exception | None,
    provenance: dict[str, str],
    run: RunOutcome,
) -> None:
    """Compute and write one episode; record its status row whatever happens."""
    dataset_id, episode_index = parse_partition_key(key)
    now = {**provenance, "created_at": datetime.now(UTC)}
    ids = {"dataset_id": dataset_id, "episode_index": episode_index}
    status, message = "ok", ""
    if key in run.quarantined:
        status, message = "quarantined", run.quarantined[key]
    else:
        try:
            if isinstance(ref, Exception):
                raise ref
            assert ref is not None
            output = compute(ref)
            part = f"{episode_index:06d}"
            rows = to_table(table, [{**ids, **r, **now} for r in output.rows])
            pipeline.catalog.write(table, dataset_id, part, rows)
            _record_rules(pipeline, table, ids, output.outcomes, now)
            run.written[key] = len(output.rows)
            run.meter.add_rows(output.rows)
            run.outcomes += [(key, o) for o in output.outcomes]
        except DatasetError as exc:
            status, message = "failed", str(exc)
        except Exception as exc:  # one episode's bug must not sink the batch
            status, message = "failed", one_line(exc)
            context.log.debug(f"{key}: {traceback.format_exc()}")
        if status == "failed":
            run.failed[key] = message
            context.log.error(f"{table} failed for {key}: {message}")
    row = {**ids, "asset": table, "status": status, "message": message, **now}
    part = f"{table}-{episode_index:06d}"
    pipeline.catalog.write(STATUS, dataset_id, part, to_table(STATUS, [row]))


def _per_partition_events(
    context: dg.AssetExecutionContext, run: RunOutcome, code_version: str
) -> EpisodeEvents:
    """Materialize exactly the good partitions; attach each bad one's reason to its own
    partition (an observation: Dagster's open-source storage keeps no failure events)."""
    tags = {"dagster/code_version": code_version} if code_version else None
    for key, rows in run.written.items():
        yield dg.AssetMaterialization(
            asset_key=context.asset_key, partition=key, metadata={"rows": rows}, tags=tags
        )
    for key, reason in run.not_written.items():
        yield dg.AssetObservation(
            asset_key=context.asset_key,
            partition=key,
            metadata={"status": "failed", "error": dg.MetadataValue.text(reason)},
        )


def _failure_line(run: RunOutcome, total: int) -> str:
    bad = run.not_written
    first_key, first_reason = next(iter(bad.items()))
    more = f" (and {len(bad) - 1} more: see failed_episodes)" if len(bad) > 1 else ""
    return f"{len(bad)} of {total} episodes not materialized; {first_key}: {first_reason}{more}"


def _record_rules(
    pipeline: PipelineResource, table: str, ids: dict, outcomes: list[RuleOutcome], now: dict
) -> None:
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
    pipeline.catalog.write(VALIDATION, ids["dataset_id"], part, to_table(VALIDATION, rows))


def _summary(rule: str, severity: Severity, run: RunOutcome) -> dg.AssetCheckResult:
    """One evaluation per run: passed only if every episode of the run was checked and
    passed; an episode that failed or was quarantined was not checked, so it cannot pass.
    A rule that had nothing to look at in any episode (e.g. a consistency check without
    anything to compare) says so."""
    results = [(k, o) for k, o in run.outcomes if o.rule == rule]
    failing = {key: o.message for key, o in results if not o.passed}
    unchecked = run.not_written
    return dg.AssetCheckResult(
        check_name=rule,
        passed=not failing and not unchecked,
        severity=dg.AssetCheckSeverity(str(severity)),
        description=None if results else "no episode of the run had anything for this rule",
        metadata={
            "episodes_checked": len(results),
            "episodes_failing": len(failing),
            "episodes_not_checked": len(unchecked),
            "failing": dg.MetadataValue.json(dict(list(failing.items())[:50])),
            "not_checked": dg.MetadataValue.json(dict(list(unchecked.items())[:50])),
        },
    )
