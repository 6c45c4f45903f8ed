"""Which keyframe each id of a persisted index stands for, and what a run must change.

Ids are handed out in key order as keyframes arrive and never reused, so a keyframe keeps its
id while it stays indexed; a rebuild numbers everything afresh. The keys travel in the index's
manifest as arrays (camera names once, a code per row), next to the config the index was
built under: a different config (another embedding model, threshold, ...) means a rebuild.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

KEYS = ["episode_index", "camera", "frame_index"]
ROWS_SCHEMA = {
    "id": pl.Int64,
    "episode_index": pl.Int64,
    "camera": pl.String,
    "frame_index": pl.Int64,
}


@dataclass(frozen=True)
class IndexPlan:
    """What brings a saved index in step with the catalog's keyframes."""

    rebuild: str  # why the index starts from empty ("" when the saved one is extended)
    new: pl.DataFrame  # id + keys of keyframes to add, in key order, ids fresh
    gone: np.ndarray  # ids of indexed keyframes no longer in the catalog
    rows: pl.DataFrame  # id + keys of every keyframe indexed afterwards, by id
    config: str

    @property
    def changed(self) -> bool:
        return bool(self.rebuild or self.new.height or self.gone.size)

    def manifest(self) -> dict[str, np.ndarray]:
        """The arrays `plan_index` reads back on the next run."""
        cameras = self.rows["camera"].unique().sort()
        codes = self.rows["camera"].replace_strict(
            cameras, range(len(cameras)), return_dtype=pl.Int64
        )
        return {
            "config": np.array(self.config),
            "row_id": self.rows["id"].to_numpy(),
            "row_episode": self.rows["episode_index"].to_numpy(),
            "row_frame": self.rows["frame_index"].to_numpy(),
            "row_camera": codes.to_numpy(),
            "camera_names": np.array(cameras.to_list(), dtype=str),
        }


def saved_rows(manifest: dict[str, np.ndarray]) -> pl.DataFrame:
    names = manifest["camera_names"]
    return pl.DataFrame(
        {
            "id": manifest["row_id"],
            "episode_index": manifest["row_episode"],
            "camera": names[manifest["row_camera"]] if len(names) else [],
            "frame_index": manifest["row_frame"],
        },
        schema=ROWS_SCHEMA,
    )


def plan_index(
    manifest: dict[str, np.ndarray] | None, current: pl.DataFrame, config: str, rebuild: bool
) -> IndexPlan:
    """Compare the saved rows (`manifest`, None when nothing is saved) with the `current`
    keyframes (KEYS columns): add what is new, drop what is gone, or start over when asked
    to, when nothing is saved, or when the config differs."""
    if rebuild:
        reason = "requested"
    elif manifest is None:
        reason = "no saved index"
    elif str(manifest["config"]) != config:
        reason = "config changed (embedding model or index parameters)"
    else:
        reason = ""
    indexed = saved_rows(manifest) if manifest is not None and not reason else _empty()
    current = current.select(KEYS).cast({k: ROWS_SCHEMA[k] for k in KEYS})
    new = current.join(indexed, on=KEYS, how="anti").sort(KEYS)
    start = int(indexed["id"].max()) + 1 if indexed.height else 0
    new = new.select(pl.int_range(start, start + new.height, dtype=pl.Int64).alias("id"), *KEYS)
    gone = indexed.join(current, on=KEYS, how="anti")["id"].to_numpy()
    kept = indexed.join(current, on=KEYS, how="semi")
    rows = pl.concat([kept, new]).sort("id")
    return IndexPlan(reason, new, gone, rows, config)


def _empty() -> pl.DataFrame:
    return pl.DataFrame(schema=ROWS_SCHEMA)


def plan_metadata(plan: IndexPlan, added: str, manifest: Path) -> dict[str, Any]:
    """What an index run did, for the UI: `added` names the count of rows it added."""
    return {
        added: plan.new.height,
        "removed_rows": int(plan.gone.size),
        "indexed_rows": plan.rows.height,
        "rebuilt": plan.rebuild or None,
        "saved": plan.changed,
        "manifest": str(manifest),
    }
