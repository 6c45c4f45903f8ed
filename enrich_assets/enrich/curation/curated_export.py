"""A curated export: the episodes an SQL filter over the episode view selects, written as a
new LeRobot v3.0 dataset. Shared by `enrich-assets export` and the `export_dataset` job."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from enrich_assets.datasets.errors import DatasetError
from enrich_assets.datasets.lerobot.export import export_episodes
from enrich_assets.datasets.lerobot.reader import LeRobotReader
from enrich_assets.datasets.open import open_dataset
from enrich_assets.store.catalog import Catalog
from enrich_assets.store.episode_view import balance_clusters, episode_view
from enrich_assets.store.registry import DatasetRegistry


@dataclass(frozen=True)
class CuratedExport:
    dataset_id: str
    episodes_total: int
    chosen: list[int]  # source episode indices, renumbered 0..n-1 in the export
    out: Path


def curated_export(
    catalog: Catalog,
    registry: DatasetRegistry,
    root: Path,
    out: Path,
    where: str = "true",
    cluster_balance: bool = False,
) -> CuratedExport:
    root = root.resolve()
    dataset_id = registry.register(root)
    reader = open_dataset(root, dataset_id)
    if not isinstance(reader, LeRobotReader):
        raise DatasetError(
            root,
            f"curated export writes LeRobot datasets from LeRobot ones; this is {reader.format}",
        )
    refs = reader.episodes()
    episodes = pl.DataFrame(
        {
            "episode_index": [r.episode_index for r in refs],
            "length": [r.length for r in refs],
            "task": [r.task for r in refs],
        }
    )
    selected = episode_view(catalog, dataset_id, episodes, where)
    if cluster_balance:
        selected = balance_clusters(selected)
    chosen = selected["episode_index"].to_list()
    return CuratedExport(dataset_id, len(refs), chosen, export_episodes(reader, chosen, out))
