"""Enrichment columns written back into SQL source tables (the guide's database-backed case)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg

from enrich_assets.datasets.open import open_dataset
from enrich_assets.datasets.sql.source import is_sql_url
from enrich_assets.datasets.sql.writeback import Lookup, declared_columns, write_back
from enrich_assets.defs.jobs import WRITEBACK_GROUP
from enrich_assets.defs.resources import PipelineResource
from enrich_assets.store.catalog import Catalog

COLUMNS = declared_columns()


def catalog_lookup(
    catalog: Catalog, table: str, column: str, dataset_id: str, camera: str
) -> Lookup:
    """(episode_index, frame_index) -> the column's value, from the catalog, for one camera."""
    frame = catalog.read(table, dataset_id)
    values: dict[tuple[int, int], Any] = {}
    if not frame.is_empty():
        frame = frame.filter(frame["camera"] == camera)
        for ep, fi, value in zip(
            frame["episode_index"], frame["frame_index"], frame[column], strict=True
        ):
            values[(int(ep), int(fi))] = value

    def lookup(keys: Sequence[tuple[int, int]]) -> Mapping[tuple[int, int], Any]:
        return {k: values[k] for k in keys if k in values}

    return lookup


@dg.asset(
    deps=sorted({dg.AssetKey(table) for table, _ in COLUMNS}),
    group_name=WRITEBACK_GROUP,
    kinds={"sql"},
)
def sql_writeback(pipeline: PipelineResource) -> dg.MaterializeResult:
    """Each SQL dataset's table gets the `sql_writeback` columns of schemas/enrichment.yaml:
    missing columns added, NULL cells filled from the catalog, 1,000 rows per transaction."""
    per_dataset: dict[str, dict] = {}
    for dataset_id, location in sorted(pipeline.registry.load().items()):
        if not is_sql_url(location):
            continue
        reader = open_dataset(location, dataset_id)
        index = {episode_id: i for i, episode_id in reader.episode_ids().items()}
        camera = reader.source.camera
        lookups = {
            c.name: catalog_lookup(pipeline.catalog, table, c.name, dataset_id, camera)
            for table, c in COLUMNS
        }
        report = write_back(reader.source, [c for _, c in COLUMNS], index, lookups)
        per_dataset[dataset_id] = {
            "added_columns": report.added_columns,
            "rows_written": {n: c.written for n, c in report.columns.items()},
            "rows_waiting": {n: c.waiting for n, c in report.columns.items()},
            "transactions": sum(c.batches for c in report.columns.values()),
        }
    return dg.MaterializeResult(
        metadata={
            "datasets": dg.MetadataValue.json(per_dataset),
            "rows_written": sum(sum(d["rows_written"].values()) for d in per_dataset.values()),
        }
    )
