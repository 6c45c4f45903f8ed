"""Materialize a dataset through a real Dagster instance, as the CLI and the demo do.

Episodes become partitions; the selection runs over contiguous key ranges (one run per
batch, not per episode). An episode that fails inside a batch is re-run alone, so Dagster
marks exactly that partition failed, with the message, and the others stay materialized.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
import yaml
from dagster._core.definitions.asset_selection import DagsterInvalidAssetSelectionError
from dagster._core.errors import DagsterInvalidSubsetError

from enrich_assets.app.dead_runs import reap_dead_runs, run_tags
from enrich_assets.app.event_log import event_log_config
from enrich_assets.app.run_log import write_run_log
from enrich_assets.datasets.open import DatasetReader, open_dataset
from enrich_assets.defs.jobs import range_tags
from enrich_assets.defs.partial_ranges import (
    MAX_FOLLOW_UPS,
    contiguous_batches,
    failed_in,
    left_over,
)
from enrich_assets.defs.partitions import episodes
from enrich_assets.infra.files import atomic_write, file_lock, remove_stale_temp_files
from enrich_assets.infra.partition_keys import partition_key
from enrich_assets.infra.paths import DAGSTER_YAML
from enrich_assets.infra.settings import Settings
from enrich_assets.models.vlm.ledger import LEDGER_VIEWS
from enrich_assets.store.catalog import Catalog
from enrich_assets.store.episode_log import STATUS, VALIDATION
from enrich_assets.store.registry import DatasetRegistry

REPO_DAGSTER_YAML = DAGSTER_YAML
# the run's own events go to the instance (UI) and the command's log file; the console
# shows the command's summary only
EVENT_BATCH_SIZE = "1000"  # docs/benchmarks.md: Dagster overhead per episode
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


def dagster_instance(settings: Settings) -> dg.DagsterInstance:
    """The persistent instance in DAGSTER_HOME, seeded with the repo's dagster.yaml."""
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists() and REPO_DAGSTER_YAML.exists():
        seed_dagster_yaml(home)
    os.environ["DAGSTER_HOME"] = str(home)
    # a range run's per-partition events (planned, materialized) are written in one INSERT
    # per asset where the storage batches (PostgreSQL), not one per partition
    os.environ.setdefault("DAGSTER_EVENT_BATCH_SIZE", EVENT_BATCH_SIZE)
    # two processes creating a new SQLite instance at once race on its schema: serialise that
    with instance_lock(home):
        instance = dg.DagsterInstance.get()
    if reap_dead_runs(instance):  # a process died: it may have left temporary files
        remove_stale_temp_files(settings.data_dir, older_than_s=60.0)
    return instance


def seed_dagster_yaml(home: Path) -> None:
    """The repo's dagster.yaml, plus the SQLite event log that stores a range run's
    per-episode events in one transaction (app/event_log.py) on this instance's files."""
    text = (
        REPO_DAGSTER_YAML.read_text()
        + "# Dagster's SQLite event log, storing a batch of events in one transaction"
        + " (enrich_assets/app/event_log.py); delete this entry for Dagster's own.\n"
        + yaml.safe_dump(event_log_config(home), sort_keys=False)
    )
    atomic_write(home / "dagster.yaml", lambda tmp: Path(tmp).write_text(text))


@contextmanager
def instance_lock(home: Path) -> Iterator[None]:
    """Serialise read-then-write steps on the instance (schema creation, adding partitions)."""
    with file_lock(home / ".init.lock"):
        yield


def parse_selection(text: str) -> dg.AssetSelection:
    """Dagster's selection syntax (`key:a+`), or the older comma list (`*a*,b`)."""
    try:
        return dg.AssetSelection.from_string(text)
    except DagsterInvalidAssetSelectionError:
        if "," not in text:
            raise
    parts = [dg.AssetSelection.from_string(p.strip()) for p in text.split(",") if p.strip()]
    union = parts[0]
    for part in parts[1:]:
        union = union | part
    return union


def resolve_selection(text: str, graph: Any) -> set[dg.AssetKey]:
    """The asset keys `text` selects; a selection that matches nothing is an error."""
    try:
        selected = parse_selection(text).resolve(graph)
    except (DagsterInvalidAssetSelectionError, DagsterInvalidSubsetError) as exc:
        raise ValueError(f"--select {text!r}: {str(exc).splitlines()[0]}") from None
    if not selected:
        known = ", ".join(sorted(k.to_user_string() for k in graph.get_all_asset_keys()))
        raise ValueError(f"--select {text!r} matches no asset (assets: {known})")
    return selected


@dataclass
class Registration:
    dataset_id: str
    reader: DatasetReader
    keys: list[str]


def register_dataset(
    settings: Settings,
    instance: dg.DagsterInstance,
    root: str | Path,
    only: list[int] | None = None,
) -> Registration:
    dataset_id = DatasetRegistry(settings.registry_path).register(root)
    reader = open_dataset(root, dataset_id)
    indices = [e.episode_index for e in reader.episodes()]
    if only is not None:
        unknown = sorted(set(only) - set(indices))
        if unknown:
            raise ValueError(f"{root}: no episodes {unknown} (it has {indices[0]}..{indices[-1]})")
        indices = [i for i in indices if i in set(only)]
    all_keys = [partition_key(dataset_id, i) for i in (e.episode_index for e in reader.episodes())]
    with instance_lock(settings.dagster_home):
        known = set(instance.get_dynamic_partitions(episodes.name))
        instance.add_dynamic_partitions(episodes.name, [k for k in all_keys if k not in known])
    return Registration(dataset_id, reader, [partition_key(dataset_id, i) for i in indices])


@dataclass
class MaterializeReport:
    dataset_id: str
    episodes: int
    runs: int = 0
    failed_runs: list[str] = field(default_factory=list)
    run_ids: list[str] = field(default_factory=list)
    log_path: Path | None = None
    summary: dict[str, dict[str, int]] = field(default_factory=dict)
    failures: list[tuple[str, int, str, str]] = field(
        default_factory=list
    )  # asset, ep, status, message
    checks_failing: list[tuple[str, int, str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed_runs and not any(s == "failed" for _, _, s, _ in self.failures)


def materialize_dataset(
    defs: dg.Definitions,
    settings: Settings,
    root: str | Path,  # a path or a URL (a Path would mangle `sqlite:///...`)
    select: str = "*",
    only: list[int] | None = None,
    batch_size: int | None = None,
) -> MaterializeReport:
    instance = dagster_instance(settings)
    reg = register_dataset(settings, instance, root, only)
    graph = defs.resolve_asset_graph()
    selected = resolve_selection(select, graph)
    partitioned = [k for k in selected if graph.get(k).partitions_def is not None]
    unpartitioned = [k for k in selected if graph.get(k).partitions_def is None]
    assets = list(defs.assets or [])
    resources = defs.resources
    report = MaterializeReport(reg.dataset_id, len(reg.keys))

    def run(keys: list[dg.AssetKey], **kwargs) -> str:  # noqa: ANN003
        result = dg.materialize(
            assets,
            instance=instance,
            resources=resources,
            selection=keys,
            raise_on_error=False,
            run_config=QUIET,
            **{**kwargs, "tags": {**run_tags(), **kwargs.get("tags", {})}},
        )
        report.runs += 1
        report.run_ids.append(result.run_id)
        return result.run_id

    if partitioned:
        _materialize_ranges(instance, settings, run, partitioned, reg.keys, batch_size)
    if unpartitioned:
        run(unpartitioned)
    names = {k.to_user_string() for k in selected}
    report.failed_runs = _failed_without_reason(instance, settings, report.run_ids, reg.keys)
    report.log_path = write_run_log(instance, report.run_ids, settings.data_dir, "materialize")
    return summarize(settings, reg, report, names)


def _materialize_ranges(
    instance: dg.DagsterInstance,
    settings: Settings,
    run: Callable[..., str],
    assets: list[dg.AssetKey],
    keys: list[str],
    batch_size: int | None,
) -> None:
    """Range runs over `keys`; then, while some good episodes' downstream assets are left
    (a run in which an episode failed stops its range's downstream steps), run those."""
    order = instance.get_dynamic_partitions(episodes.name)
    catalog = Catalog(settings.catalog_dir, settings.duckdb_path)
    size = batch_size or settings.batch_size
    run_ids = [
        run(assets, tags=range_tags(b[0], b[-1])) for b in contiguous_batches(keys, order, size)
    ]
    for _ in range(MAX_FOLLOW_UPS):
        rest = left_over(instance, catalog, run_ids, assets, keys)
        if not rest.keys:
            return
        before = len(run_ids)
        run_ids += [
            run(rest.assets, tags=range_tags(b[0], b[-1]))
            for b in contiguous_batches(rest.keys, order, size)
        ]
        if len(run_ids) == before:
            return


def _failed_without_reason(
    instance: dg.DagsterInstance, settings: Settings, run_ids: list[str], keys: list[str]
) -> list[str]:
    """Runs that failed although no episode of theirs did: a crash the user must see."""
    catalog = Catalog(settings.catalog_dir, settings.duckdb_path)
    failed = []
    for run_id in run_ids:
        dagster_run = instance.get_run_by_id(run_id)
        if dagster_run is None or dagster_run.status != dg.DagsterRunStatus.FAILURE:
            continue
        if not failed_in(catalog, [run_id], keys):
            failed.append(run_id)
    return failed


def _episode_rows(
    catalog: Catalog, table: str, reg: Registration, where: str
) -> list[tuple[str, dict]]:
    wanted = set(reg.keys)
    frame = catalog.read(table, reg.dataset_id, where=where)
    rows = [
        (partition_key(reg.dataset_id, r["episode_index"]), r) for r in frame.iter_rows(named=True)
    ]
    return [(k, r) for k, r in rows if k in wanted]


def summarize(
    settings: Settings, reg: Registration, report: MaterializeReport, assets: set[str] | None = None
) -> MaterializeReport:
    catalog = Catalog(settings.catalog_dir, settings.duckdb_path)
    catalog.refresh_views(LEDGER_VIEWS)
    for _, row in _episode_rows(catalog, STATUS, reg, "true"):
        if assets is not None and row["asset"] not in assets:
            continue
        counts = report.summary.setdefault(row["asset"], {"ok": 0, "failed": 0, "quarantined": 0})
        counts[row["status"]] = counts.get(row["status"], 0) + 1
        if row["status"] != "ok":
            report.failures.append(
                (row["asset"], row["episode_index"], row["status"], row["message"])
            )
    for _, row in _episode_rows(catalog, VALIDATION, reg, "NOT passed"):
        if assets is None or row["asset"] in assets:
            report.checks_failing.append(
                (row["asset"], row["episode_index"], row["rule"], row["message"])
            )
    return report
