"""The review contact sheet: one self-contained HTML file a person opens, scores, and saves.

Each sampled keyframe shows as a small embedded JPEG with all its enrichments beside it and
a 1-5 score; a button downloads the scores as JSON, keyed like the catalog, so they can be
joined back (ann_ columns) without a server. Everything from the data is HTML-escaped.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable, Mapping
from html import escape

import numpy as np
import polars as pl
from PIL import Image

from enrich_assets.enrich.curation.review_sample import CLUSTER, KEYS
from enrich_assets.enrich.derived.clusters import NOISE

THUMB = 192  # longest side of a thumbnail, pixels
JPEG_QUALITY = 70
DETECTIONS_SHOWN = 12
# catalog table -> the columns the sheet shows from it
REVIEW_COLUMNS: dict[str, tuple[str, ...]] = {
    "tech_quality": (
        "tech_quality_score",
        "tech_blur_laplacian_var",
        "tech_brightness",
        "tech_completeness",
    ),
    "ai_caption": ("ai_caption", "ai_caption_reused_from", "ai_caption_error"),
    "ai_caption_tags": ("ai_caption_objects", "ai_caption_actions"),
    "ai_detections": ("ai_detections",),
    "ai_near_duplicates": (
        "ai_dup_group",
        "ai_dup_of_episode",
        "ai_dup_of_camera",
        "ai_dup_of_frame",
    ),
}

STYLE = """
body { font: 13px sans-serif; margin: 1em; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(420px, 1fr)); gap: 10px; }
.item { display: flex; gap: 8px; border: 1px solid #ccc; padding: 6px; margin: 0; }
.item img { width: 192px; height: auto; align-self: flex-start; }
dl { display: grid; grid-template-columns: auto 1fr; gap: 1px 6px; margin: 0 0 4px; }
dt { color: #666; } dd { margin: 0; overflow-wrap: anywhere; }
"""

SCRIPT = """
document.getElementById("download").onclick = () => {
  const scores = [...document.querySelectorAll(".item")].map((el) => ({
    episode_index: Number(el.dataset.episode),
    frame_index: Number(el.dataset.frame),
    camera: el.dataset.camera,
    score: el.querySelector(".score").value ? Number(el.querySelector(".score").value) : null,
    note: el.querySelector(".note").value,
  }));
  const body = document.body.dataset;
  const data = {dataset_id: body.dataset, pipeline_version: body.version, scores};
  const link = document.createElement("a");
  const blob = new Blob([JSON.stringify(data, null, 1)], {type: "application/json"});
  link.href = URL.createObjectURL(blob);
  link.download = "review_scores_" + body.dataset + "_" + body.version + ".json";
  link.click();
};
"""


def review_rows(sample: pl.DataFrame, tables: Mapping[str, pl.DataFrame]) -> pl.DataFrame:
    """The sample (see review_sample) with every REVIEW_COLUMNS column joined on the keyframe
    keys; a column whose table is absent or empty is null."""
    rows = sample
    for table, columns in REVIEW_COLUMNS.items():
        frame = tables.get(table)
        present = [c for c in columns if frame is not None and c in frame.columns]
        if present:
            rows = rows.join(frame.select(*KEYS, *present), on=KEYS, how="left")
        rows = rows.with_columns([pl.lit(None).alias(c) for c in columns if c not in present])
    return rows


def thumbnail_uri(image: np.ndarray, size: int = THUMB) -> str:
    """A small JPEG of the keyframe as a data URI (keeps the sheet one light file)."""
    img = Image.fromarray(image)
    img.thumbnail((size, size))
    buffer = io.BytesIO()
    img.save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def _text(value: object, digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "—"
    return str(value)


def _detections(raw: str | None, where: str) -> str:
    if raw is None:
        return "—"
    try:
        found = json.loads(raw)
        shown = [f"{d['label']} {d['confidence']:.2f}" for d in found[:DETECTIONS_SHOWN]]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"review sheet: {where}: ai_detections is not valid ({exc})") from exc
    more = len(found) - len(shown)
    return ", ".join(shown) + (f" (+{more} more)" if more > 0 else "") if found else "none"


def _duplicate_of(row: Mapping[str, object]) -> str:
    if row["ai_dup_of_frame"] is None:
        return "—" if row["ai_dup_group"] in (None, -1) else f"group {row['ai_dup_group']} (first)"
    return (
        f"episode {row['ai_dup_of_episode']} frame {row['ai_dup_of_frame']} "
        f"{row['ai_dup_of_camera']} (group {row['ai_dup_group']})"
    )


def _caption(row: Mapping[str, object]) -> str:
    if row["ai_caption"] is None:
        return f"(none: {row['ai_caption_error']})" if row["ai_caption_error"] else "—"
    reused = row["ai_caption_reused_from"]
    return str(row["ai_caption"]) + (f" (reused from frame {reused})" if reused is not None else "")


def _item(row: Mapping[str, object], image: np.ndarray) -> str:
    where = f"episode {row['episode_index']} frame {row['frame_index']} {row['camera']}"
    fields = {
        "episode": row["episode_index"],
        "frame": row["frame_index"],
        "timestamp (s)": row["tech_timestamp"],
        "camera": row["camera"],
        "cluster": "noise" if row[CLUSTER] == NOISE else row[CLUSTER],
        "quality": row["tech_quality_score"],
        "sharpness (lap. var)": row["tech_blur_laplacian_var"],
        "brightness": row["tech_brightness"],
        "completeness": row["tech_completeness"],
        "caption": _caption(row),
        "objects": row["ai_caption_objects"],
        "actions": row["ai_caption_actions"],
        "detections": _detections(row["ai_detections"], where),
        "duplicate of": _duplicate_of(row),
    }
    listing = "".join(f"<dt>{escape(k)}</dt><dd>{escape(_text(v))}</dd>" for k, v in fields.items())
    options = '<option value="">–</option>' + "".join(f"<option>{i}</option>" for i in range(1, 6))
    return (
        f'<figure class="item" data-episode="{row["episode_index"]}" '
        f'data-frame="{row["frame_index"]}" data-camera="{escape(str(row["camera"]))}">'
        f'<img src="{thumbnail_uri(image)}" alt="{escape(where)}">'
        f"<figcaption><dl>{listing}</dl>"
        f'<label>score <select class="score">{options}</select></label> '
        f'<input class="note" placeholder="note"></figcaption></figure>'
    )


def review_sheet_html(
    rows: pl.DataFrame,
    load_image: Callable[[str], np.ndarray],
    dataset_id: str,
    pipeline_version: str,
) -> str:
    """The contact sheet for `rows` (from review_rows); `load_image` turns a row's
    tech_image_path into RGB pixels, one at a time, so 200 full frames never sit in memory."""
    title = f"Review: {dataset_id}, pipeline {pipeline_version}"
    clusters = rows[CLUSTER].n_unique() if rows.height else 0
    items = "\n".join(
        _item(row, load_image(str(row["tech_image_path"]))) for row in rows.iter_rows(named=True)
    )
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head>\n"
        f'<body data-dataset="{escape(dataset_id)}" data-version="{escape(pipeline_version)}">'
        f"<h1>{escape(title)}</h1>"
        f"<p>{rows.height} keyframes sampled across {clusters} clusters. Score how well each "
        f"keyframe's enrichments describe it (1 wrong, 5 all right), then download the scores."
        f'</p><p><button id="download">Download scores (JSON)</button></p>\n'
        f'<div class="grid">\n{items}\n</div>\n<script>{SCRIPT}</script></body></html>\n'
    )
