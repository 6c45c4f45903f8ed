"""Enrichments written back for HDF5 datasets: a sidecar file beside the dataset.

`robomimic.hdf5` gets `robomimic.enrich.h5`; a folder `aloha/` gets `aloha.enrich.h5` next to
it. The sidecar mirrors the dataset's episode groups (`data/demo_0/enrichments`; for a
folder, under the file's stem: `episode_0/enrichments`), each `enrichments` group holding one
row per keyframe: `keyframe_index` (frame index), `keyframe_camera`, `captions` (vlen
strings), `embeddings` (float32 [N, D]), `detections` (JSON strings), `depth` (float16
[N, H, W], chunked per map and gzip-compressed; NaN-padded when cameras differ in size),
`quality` (float32), with attributes naming the schema version, model ids and code versions.

The original files are only ever opened read-only, so they stay byte-identical. The sidecar
is written whole to a temporary file and renamed over the old one (infra/files.py
atomic_write): a crash leaves the previous sidecar as it was. Why not a group inside the
original: see docs/architecture.md ("HDF5 write-back").
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import polars as pl

from enrich_assets.datasets.hdf5.reader import Episode
from enrich_assets.infra.files import atomic_write

SCHEMA_VERSION = 1
SIDECAR_SUFFIX = ".enrich.h5"
GROUP = "enrichments"
KEYS = ["episode_index", "camera", "frame_index"]
# catalog table -> the column the sidecar takes from it
TABLES = {
    "ai_caption": "ai_caption",
    "ai_embedding": "ai_embedding",
    "ai_detections": "ai_detections",
    "ai_depth": "ai_depth_path",
    "tech_quality": "tech_quality_score",
}


def sidecar_path(location: Path) -> Path:
    return location.with_name(location.name.removesuffix(location.suffix) + SIDECAR_SUFFIX)


@dataclass
class EpisodeEnrichments:
    """One episode's keyframe rows, in (camera, frame_index) order."""

    frame_index: np.ndarray
    camera: list[str]
    captions: list[str]
    embeddings: np.ndarray  # float32 [N, D] (D = 0 when not computed)
    detections: list[str]
    depth: np.ndarray  # float16 [N, H, W] (H = W = 0 when not computed)
    quality: np.ndarray  # float32 [N], NaN where not computed
    model_ids: dict[str, str] = field(default_factory=dict)  # table -> model id
    code_versions: dict[str, str] = field(default_factory=dict)  # table -> code_version


def _latest(frame: pl.DataFrame, column: str) -> pl.DataFrame:
    """One row per keyframe (the newest), with the wanted column and its provenance."""
    keep = [c for c in (*KEYS, column, "ai_model_id", "code_version") if c in frame.columns]
    if "created_at" in frame.columns:
        frame = frame.sort("created_at")
    return frame.select(keep).unique(KEYS, keep="last")


def _first(frame: pl.DataFrame, column: str) -> str:
    values = [v for v in frame[column].to_list() if v] if column in frame.columns else []
    return str(values[0]) if values else ""


def episode_enrichments(
    tables: Mapping[str, pl.DataFrame], load_depth: Callable[[str], np.ndarray]
) -> dict[int, EpisodeEnrichments]:
    """Per episode, its keyframes joined with every enrichment the catalog holds for them
    (`tables`: catalog table name -> that dataset's rows; `load_depth`: artifact path -> map)."""
    keyframes = tables.get("keyframes", pl.DataFrame())
    if keyframes.height == 0:
        return {}
    joined = keyframes.select(KEYS).unique().sort(KEYS)
    provenance: dict[str, tuple[str, str]] = {}
    for table, column in TABLES.items():
        rows = tables.get(table, pl.DataFrame())
        if rows.height == 0 or column not in rows.columns:
            continue
        rows = _latest(rows, column)
        provenance[table] = (_first(rows, "ai_model_id"), _first(rows, "code_version"))
        joined = joined.join(rows.select(*KEYS, column), on=KEYS, how="left")
    out = {}
    for (episode,), rows in joined.group_by(["episode_index"], maintain_order=True):
        out[int(episode)] = _episode(rows, load_depth, provenance)
    return out


def _episode(
    rows: pl.DataFrame,
    load_depth: Callable[[str], np.ndarray],
    provenance: dict[str, tuple[str, str]],
) -> EpisodeEnrichments:
    def column(name: str) -> list:
        return rows[name].to_list() if name in rows.columns else [None] * rows.height

    vectors = [v for v in column("ai_embedding") if v is not None]
    width = len(vectors[0]) if vectors else 0
    embeddings = np.full((rows.height, width), np.nan, np.float32)
    for i, v in enumerate(column("ai_embedding")):
        if v is not None:
            embeddings[i] = v
    maps = [load_depth(p) if p else None for p in column("ai_depth_path")]
    shapes = [m.shape for m in maps if m is not None]
    depth = (
        np.full((rows.height, *np.max(shapes, axis=0)), np.nan, np.float16)
        if shapes
        else (np.zeros((rows.height, 0, 0), np.float16))
    )
    for i, m in enumerate(maps):
        if m is not None:
            depth[i, : m.shape[0], : m.shape[1]] = m
    scores = column("tech_quality_score")
    quality = np.array([np.nan if q is None else q for q in scores], np.float32)
    return EpisodeEnrichments(
        frame_index=np.asarray(column("frame_index"), np.int64),
        camera=[str(c) for c in column("camera")],
        captions=[c or "" for c in column("ai_caption")],
        embeddings=embeddings,
        detections=[d or "[]" for d in column("ai_detections")],
        depth=depth,
        quality=quality,
        model_ids={t: m for t, (m, _) in provenance.items() if m},
        code_versions={t: v for t, (_, v) in provenance.items() if v},
    )


def _group_path(location: Path, episode: Episode) -> str:
    prefix = f"/{episode.file.stem}" if location.is_dir() else ""
    inner = episode.group.strip("/")
    return "/".join(p for p in (prefix, inner, GROUP) if p) if prefix or inner else f"/{GROUP}"


def _write_episode(group: h5py.Group, e: EpisodeEnrichments, attrs: Mapping[str, str]) -> None:
    text = h5py.string_dtype()
    group.create_dataset("keyframe_index", data=e.frame_index)
    group.create_dataset("keyframe_camera", data=e.camera, dtype=text)
    group.create_dataset("captions", data=e.captions, dtype=text)
    group.create_dataset("embeddings", data=e.embeddings, dtype=np.float32)
    group.create_dataset("detections", data=e.detections, dtype=text)
    chunks = (1, *e.depth.shape[1:]) if e.depth.size else None
    group.create_dataset(
        "depth",
        data=e.depth,
        dtype=np.float16,
        chunks=chunks,
        compression="gzip" if chunks else None,
        shuffle=bool(chunks),
    )
    group.create_dataset("quality", data=e.quality, dtype=np.float32)
    group.attrs["schema_version"] = SCHEMA_VERSION
    group.attrs["model_ids"] = json.dumps(e.model_ids, sort_keys=True)
    group.attrs["code_versions"] = json.dumps(e.code_versions, sort_keys=True)
    for key, value in attrs.items():
        group.attrs[key] = value


def write_sidecar(
    location: Path,
    episodes: Mapping[int, Episode],
    enrichments: Mapping[int, EpisodeEnrichments],
    attrs: Mapping[str, str],
) -> Path:
    """Write every episode's enrichments to the sidecar of `location`, whole or not at all."""
    target = sidecar_path(location)

    def write(tmp: str) -> None:
        with h5py.File(tmp, "w") as f:
            f.attrs["schema_version"] = SCHEMA_VERSION
            f.attrs["source"] = str(location)
            for index in sorted(enrichments):
                episode = episodes[index]
                group = f.create_group(_group_path(location, episode))
                _write_episode(group, enrichments[index], attrs)
                group.attrs["episode_index"] = index
                group.attrs["source_file"] = episode.file.name
                group.attrs["source_group"] = episode.group

    return atomic_write(target, write)
