"""`enrich-assets status`: what Dagster and the catalog know about one dataset."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from enrich_assets.app.dead_runs import dead_runs
from enrich_assets.app.run_driver import dagster_instance
from enrich_assets.defs.partitions import episodes
from enrich_assets.infra.partition_keys import dataset_prefix
from enrich_assets.infra.settings import Settings
from enrich_assets.store.catalog import Catalog
from enrich_assets.store.episode_log import STATUS, VALIDATION
from enrich_assets.store.registry import DatasetRegistry


def dataset_status(settings: Settings, root: str | Path) -> str:
    dataset_id = DatasetRegistry(settings.registry_path).register(root)
    instance = dagster_instance(settings)
    prefix = dataset_prefix(dataset_id)
    keys = [k for k in instance.get_dynamic_partitions(episodes.name) if k.startswith(prefix)]
    catalog = Catalog(settings.catalog_dir, settings.duckdb_path)
    status = catalog.read(STATUS, dataset_id)
    lines = [f"dataset {dataset_id} ({root}): {len(keys)} episode partitions known"]
    assets = sorted(set(status["asset"].to_list())) if status.height else []
    for asset in assets:
        dagster_status = instance.get_status_by_partition(dg.AssetKey(asset), keys, episodes) or {}
        done = sum(1 for s in dagster_status.values() if s == dg.AssetPartitionStatus.MATERIALIZED)
        failed = sum(1 for s in dagster_status.values() if s == dg.AssetPartitionStatus.FAILED)
        rows = status.filter(status["asset"] == asset)
        counts = {
            s: rows.filter(rows["status"] == s).height for s in ("ok", "failed", "quarantined")
        }
        lines.append(
            f"  {asset:<24} dagster: materialized={done}/{len(keys)} failed={failed}  catalog: "
            + "  ".join(f"{k}={v}" for k, v in counts.items())
        )
        for row in rows.filter(rows["status"] != "ok").iter_rows(named=True):
            lines.append(f"    {row['status']}: episode {row['episode_index']}: {row['message']}")
    for run in dead_runs(instance):
        lines.append(f"  run {run.run_id} marked failed: its process died (killed?)")
    checks = catalog.read(VALIDATION, dataset_id, where="NOT passed")
    lines.append(f"  checks failing: {checks.height}")
    for row in checks.head(20).iter_rows(named=True):
        lines.append(
            f"    {row['severity']} {row['asset']}.{row['rule']} "
            f"episode {row['episode_index']}: {row['message']}"
        )
    return "\n".join(lines)
