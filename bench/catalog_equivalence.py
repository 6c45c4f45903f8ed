"""Are two pipeline runs' catalogs the same, value for value? (keyframe cache fidelity)

    PYTHONPATH=$PWD .venv/bin/python bench/catalog_equivalence.py DATA_DIR_A DATA_DIR_B

Compares the per-keyframe tables of two data dirs (e.g. the same dataset materialized before
and after the keyframe cache changed from PNG to raw arrays): every column except the
cache's own reference (`tech_image_path`) and the run's bookkeeping (`code_version`, which
the cache format is part of, `run_id`, `created_at`).
Numbers: max abs difference; lists (embeddings): max abs element difference; anything else
must be equal. Prints one line per table and exits 1 if a value differs beyond `--tolerance`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import polars as pl

TABLES = ("keyframes", "tech_quality", "ai_embedding", "ai_detections", "ai_depth")
KEY = ["dataset_id", "episode_index", "camera", "frame_index"]
SKIP = {"tech_image_path", "code_version", "run_id", "created_at"}  # the cache; per run


def read(data_dir: Path, table: str) -> pl.DataFrame:
    files = sorted((data_dir / "catalog" / table).rglob("*.parquet"))
    if not files:
        raise SystemExit(f"{data_dir}: no {table} table")
    return pl.concat([pl.read_parquet(f) for f in files], how="diagonal_relaxed").sort(KEY)


def differences(a: pl.DataFrame, b: pl.DataFrame) -> dict[str, float]:
    """Per compared column: the largest difference (0.0 equal, inf for unequal non-numbers)."""
    if a.select(KEY).rows() != b.select(KEY).rows():
        return {"<keys>": float("inf")}
    out = {}
    for column in a.columns:
        if column in SKIP or column not in b.columns:
            continue
        x, y = a[column], b[column]
        if x.dtype.is_numeric() and not x.dtype == pl.Boolean:
            out[column] = float(np.nanmax(np.abs(x.to_numpy() - y.to_numpy()), initial=0.0))
        elif isinstance(x.dtype, pl.List | pl.Array):
            left, right = np.array(x.to_list(), float), np.array(y.to_list(), float)
            out[column] = float(np.abs(left - right).max(initial=0.0))
        else:
            out[column] = 0.0 if x.to_list() == y.to_list() else float("inf")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    parser.add_argument("--tolerance", type=float, default=1e-6)
    args = parser.parse_args()
    worst = 0.0
    for table in TABLES:
        a, b = read(args.a, table), read(args.b, table)
        diff = differences(a, b)
        top = max(diff.items(), key=lambda kv: kv[1], default=("-", 0.0))
        worst = max(worst, top[1])
        print(f"{table}: {a.height} rows, {len(diff)} columns, max diff {top[1]:g} ({top[0]})")
    print(f"worst difference {worst:g} (tolerance {args.tolerance:g})")
    sys.exit(0 if worst <= args.tolerance else 1)


if __name__ == "__main__":
    main()
