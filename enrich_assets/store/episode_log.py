"""Per-episode outcomes in the catalog: did each asset succeed, and what did its rules say.

Dagster records one check evaluation per batched run, so the per-episode truth lives here:
downstream assets read it to skip quarantined episodes, and `enrich-assets status` shows it.
"""

from __future__ import annotations

import polars as pl

from enrich_assets.store.catalog import Catalog

STATUS, VALIDATION = "episode_status", "validation"


def quarantine_reasons(catalog: Catalog, dataset_id: str, upstream: list[str]) -> dict[int, str]:
    """Episodes an upstream asset failed on, or whose upstream rows broke an ERROR rule."""
    if not upstream:
        return {}
    assets = ", ".join(f"'{a}'" for a in upstream)
    reasons: dict[int, str] = {}
    status = catalog.read(STATUS, dataset_id, where=f"asset IN ({assets}) AND status <> 'ok'")
    for row in status.iter_rows(named=True):
        reasons[row["episode_index"]] = f"{row['asset']} {row['status']}: {row['message']}"
    broken = catalog.read(
        VALIDATION, dataset_id, where=f"asset IN ({assets}) AND severity = 'ERROR' AND NOT passed"
    )
    for row in broken.iter_rows(named=True):
        reasons.setdefault(
            row["episode_index"], f"{row['asset']} failed rule {row['rule']}: {row['message']}"
        )
    return reasons


def failures(catalog: Catalog, dataset_id: str, episodes: list[int] | None = None) -> pl.DataFrame:
    where = "status <> 'ok'"
    if episodes is not None:
        where += f" AND episode_index IN ({', '.join(map(str, episodes)) or 'NULL'})"
    frame = catalog.read(STATUS, dataset_id, where=where)
    return frame.sort(["episode_index", "asset"]) if frame.height else frame
