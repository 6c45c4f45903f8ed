"""The validation report: what one pipeline version produced for one dataset, in one JSON.

Distributions (caption length, detected classes, quality scores, cluster sizes, duplicates,
diversity), agreement figures, cross-enrichment consistency (what was compared, what
disagreed), the rule outcomes per asset and rule, and a pointer to the review contact sheet.
It lives beside the dataset under meta/enrich_reports/<version>/, so each pipeline version's
report stays readable after the next one is written. A table that was not materialized gives
its section a `missing` note instead of numbers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from enrich_assets.enrich.curation.consistency import RULES as CONSISTENCY_CHECKS
from enrich_assets.infra.files import write_text_atomic

REPORT_FORMAT = 1
REPORT_FILE = "validation_report.json"
REVIEW_FILE = "review.html"
QUANTILES = (0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0)
TOP_LABELS = 50  # classes and tags listed, most frequent first
UNIT_BINS = 50
FAILING_SHOWN = 20  # failing episodes named per rule
# The catalog tables the report reads; the caller passes each as a frame (empty if absent).
REPORT_TABLES = (
    "episode_manifest",
    "keyframes",
    "tech_quality",
    "ai_detections",
    "ai_caption",
    "ai_caption_tags",
    "ai_semantic_cluster",
    "ai_near_duplicates",
    "ai_episode_diversity",
    "consistency",
    "validation",
    "episode_status",
)
QUALITY_RANGES: dict[str, tuple[float, float] | None] = {  # fixed ranges compare across runs
    "tech_quality_score": (0.0, 1.0),
    "tech_completeness": (0.0, 1.0),
    "tech_brightness": (0.0, 255.0),
    "tech_blur_laplacian_var": None,
}
QUALITY_FLAGS = ("tech_is_blurry", "tech_is_dark", "tech_is_overexposed")
_VERSION = re.compile(r"^[A-Za-z0-9_.-]+$")

Section = dict[str, Any]


def report_dir(dataset_root: Path, pipeline_version: str) -> Path:
    """Where one pipeline version's report and review sheet live, beside the dataset."""
    if not _VERSION.match(pipeline_version) or pipeline_version in {".", ".."}:
        raise ValueError(
            f"pipeline version {pipeline_version!r} must be letters, digits, '_', '.', '-'"
        )
    return dataset_root / "meta" / "enrich_reports" / pipeline_version


def _number(x: float) -> float:
    return round(float(x), 6)


def numeric_summary(
    values: Sequence[float] | np.ndarray,
    bins: int = 10,
    value_range: tuple[float, float] | None = None,
) -> Section:
    """Count, mean, quantiles and a histogram of the finite values; NaN (a null, once in
    numpy) counts as missing, since JSON has no NaN. Integers spanning fewer than UNIT_BINS
    values get one bin each."""
    x = np.asarray(values, np.float64)
    finite = x[np.isfinite(x)]
    summary: Section = {"count": len(finite), "missing": len(x) - len(finite)}
    if not len(finite):
        return {**summary, "mean": None, "quantiles": None, "histogram": None}
    low, high = finite.min(), finite.max()
    if value_range is None and high - low < UNIT_BINS and np.all(finite == np.round(finite)):
        bins = np.arange(low - 0.5, high + 1.5)  # small counts: one bin per integer
    counts, edges = np.histogram(finite, bins=bins, range=value_range)
    return {
        **summary,
        "mean": _number(finite.mean()),
        "quantiles": {
            f"p{round(q * 100)}": _number(v)
            for q, v in zip(QUANTILES, np.quantile(finite, QUANTILES), strict=True)
        },
        "histogram": {"edges": [_number(e) for e in edges], "counts": counts.tolist()},
    }


def value_counts(values: pl.Series, top: int | None = None) -> dict[str, int]:
    """Occurrences of each non-null value, most frequent first (ties by value)."""
    counts = (
        values.drop_nulls()
        .value_counts(name="n")
        .sort(["n", values.name], descending=[True, False])
    )
    return {str(v): int(n) for v, n in counts.head(top or counts.height).iter_rows()}


def sentence_count(text: str) -> int:
    """Sentences ending in . ! or ? (a trailing fragment without one counts too)."""
    return len([s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s])


def _captions(frame: pl.DataFrame) -> Section:
    texts = frame["ai_caption"].drop_nulls().to_list()
    return {
        "keyframes": frame.height,
        "captioned": len(texts),
        "reused": frame["ai_caption_reused_from"].drop_nulls().len(),
        "failed": frame["ai_caption_error"].drop_nulls().len(),
        "words": numeric_summary([len(t.split()) for t in texts]),
        "sentences": numeric_summary([sentence_count(t) for t in texts]),
    }


def _detections(frame: pl.DataFrame) -> Section:
    try:
        labels = (
            frame.select(
                pl.col("ai_detections").str.json_decode(pl.List(pl.Struct({"label": pl.String})))
            )
            .explode("ai_detections")["ai_detections"]
            .struct.field("label")
        )
    except pl.exceptions.ComputeError as exc:
        raise ValueError(f"validation report: ai_detections holds invalid JSON ({exc})") from exc
    per_keyframe = frame["ai_detection_count"]
    return {
        "keyframes": frame.height,
        "detections": int(per_keyframe.sum()),
        "keyframes_with_detections": int((per_keyframe > 0).sum()),
        "per_keyframe": numeric_summary(per_keyframe.to_numpy()),
        "classes": value_counts(labels.rename("label"), TOP_LABELS),
    }


def _caption_tags(frame: pl.DataFrame) -> Section:
    return {
        "keyframes": frame.height,
        "objects": value_counts(frame["ai_caption_objects"].explode(), TOP_LABELS),
        "actions": value_counts(frame["ai_caption_actions"].explode(), TOP_LABELS),
    }


def _quality(frame: pl.DataFrame) -> Section:
    return {
        "keyframes": frame.height,
        "columns": {
            c: numeric_summary(frame[c].to_numpy(), value_range=r)
            for c, r in QUALITY_RANGES.items()
        },
        "flags": {c: int(frame[c].sum()) for c in QUALITY_FLAGS},
    }


def _clusters(frame: pl.DataFrame) -> Section:
    ids = frame["ai_cluster_id"]
    sizes = ids.value_counts(name="n").sort("ai_cluster_id")
    clustered = sizes.filter(pl.col("ai_cluster_id") >= 0)["n"]
    return {
        "keyframes": frame.height,
        "clusters": clustered.len(),
        "noise": int((ids < 0).sum()),
        "largest_fraction": _number(clustered.max() / frame.height) if clustered.len() else None,
        "sizes": {str(c): int(n) for c, n in sizes.iter_rows()},
        "size_summary": numeric_summary(clustered.to_numpy()),
        "versions": sorted(frame["ai_cluster_version"].drop_nulls().unique().to_list()),
    }


def _duplicates(frame: pl.DataFrame) -> Section:
    grouped = frame.filter(pl.col("ai_dup_group") >= 0)
    duplicate_episodes = frame.filter(pl.col("ai_is_duplicate_episode").fill_null(False))
    return {
        "keyframes": frame.height,
        "groups": grouped["ai_dup_group"].n_unique(),
        "keyframes_in_groups": grouped.height,
        "duplicates": frame["ai_dup_of_frame"].drop_nulls().len(),
        "duplicate_episodes": duplicate_episodes["episode_index"].n_unique(),
    }


def _diversity(frame: pl.DataFrame) -> Section:
    return {
        "episodes": frame.height,
        "diversity": numeric_summary(frame["ai_diversity"].to_numpy()),
        "repeats_found": frame["ai_repeat_of_episode"].drop_nulls().len(),
    }


def _consistency(frame: pl.DataFrame) -> Section:
    """Per check: comparisons, disagreements, the episodes and subjects (labels, objects,
    subtasks) most often flagged; then the first flagged rows, each saying what and where."""
    flagged = frame.filter(pl.col("tech_flagged"))
    checks: Section = {}
    for check in CONSISTENCY_CHECKS:
        rows = frame.filter(pl.col("tech_check") == check)
        if rows.height == 0:
            checks[check] = {"missing": "nothing to compare"}
            continue
        bad = rows.filter(pl.col("tech_flagged"))
        episodes = bad["episode_index"].unique().sort()
        checks[check] = {
            "compared": rows.height,
            "flagged": bad.height,
            "flagged_share": _number(bad.height / rows.height),
            "episodes_compared": rows["episode_index"].n_unique(),
            "episodes_flagged": episodes.len(),
            "flagged_episodes": episodes.head(FAILING_SHOWN).to_list(),
            "flagged_subjects": value_counts(bad["tech_subject"], TOP_LABELS),
        }
    shown = flagged.sort("episode_index", "tech_check").head(FAILING_SHOWN)
    columns = ("episode_index", "tech_check", "camera", "frame_index", "tech_detail")
    return {"checks": checks, "first_flagged": shown.select(columns).to_dicts()}


def _rules(frame: pl.DataFrame) -> Section:
    failed = ~pl.col("passed")
    per_rule = (
        frame.group_by("asset", "rule")
        .agg(
            pl.len().alias("checked"),
            pl.col("passed").sum().alias("pass"),
            (failed & (pl.col("severity") == "WARN")).sum().alias("warn"),
            (failed & (pl.col("severity") == "ERROR")).sum().alias("error"),
            pl.col("episode_index").filter(failed).unique().sort().alias("failing_episodes"),
        )
        .sort("asset", "rule")
    )
    rules = [
        {**row, "failing_episodes": row["failing_episodes"][:FAILING_SHOWN]}
        for row in per_rule.iter_rows(named=True)
    ]
    totals = {k: int(per_rule[k].sum()) for k in ("checked", "pass", "warn", "error")}
    return {"totals": totals, "rules": rules}


def _episode_status(frame: pl.DataFrame) -> Section:
    counts = frame.group_by("asset", "status").len().sort("asset", "status")
    per_asset: dict[str, dict[str, int]] = {}
    for asset, status, n in counts.iter_rows():
        per_asset.setdefault(asset, {"ok": 0, "failed": 0, "quarantined": 0})[status] = n
    not_ok = frame.filter(pl.col("status") != "ok").sort("episode_index", "asset")
    shown = not_ok.select("episode_index", "asset", "status", "message").head(FAILING_SHOWN)
    return {"assets": per_asset, "not_ok": not_ok.height, "first_not_ok": shown.to_dicts()}


DISTRIBUTIONS: dict[str, tuple[str, Callable[[pl.DataFrame], Section]]] = {
    "caption_length": ("ai_caption", _captions),
    "detected_classes": ("ai_detections", _detections),
    "caption_tags": ("ai_caption_tags", _caption_tags),
    "quality_scores": ("tech_quality", _quality),
    "cluster_sizes": ("ai_semantic_cluster", _clusters),
    "near_duplicates": ("ai_near_duplicates", _duplicates),
    "episode_diversity": ("ai_episode_diversity", _diversity),
}


def _section(
    frame: pl.DataFrame, table: str, compute: Callable[[pl.DataFrame], Section]
) -> Section:
    if frame.height == 0:
        return {"missing": f"no rows in {table}"}
    try:
        return compute(frame)
    except pl.exceptions.ColumnNotFoundError as exc:
        raise ValueError(f"validation report: table {table} lacks a column ({exc})") from exc


def _review(sample: pl.DataFrame | None) -> Section:
    if sample is None or sample.height == 0:
        return {"missing": "no review sample"}
    return {
        "file": REVIEW_FILE,
        "keyframes": sample.height,
        "per_cluster": value_counts(sample["ai_cluster_id"].cast(pl.String).fill_null("none")),
    }


def _counts(frames: Mapping[str, pl.DataFrame]) -> Section:
    known = [
        frames[t]["episode_index"] for t in ("episode_manifest", "keyframes") if frames[t].height
    ]
    return {
        "episodes": pl.concat(known).n_unique() if known else 0,
        "keyframes": frames["keyframes"].height,
        "rows": {t: frame.height for t, frame in frames.items()},
    }


def build_validation_report(
    dataset_id: str,
    pipeline_version: str,
    tables: Mapping[str, pl.DataFrame],
    agreement: Mapping[str, Any] | None = None,
    review_sample: pl.DataFrame | None = None,
) -> dict[str, Any]:
    """The report as a JSON-serialisable dict. `tables` maps catalog table names (see
    REPORT_TABLES) to one dataset's rows; absent or empty ones are reported missing."""
    frames = {t: tables.get(t, pl.DataFrame()) for t in REPORT_TABLES}
    return {
        "report_format": REPORT_FORMAT,
        "dataset_id": dataset_id,
        "pipeline_version": pipeline_version,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "counts": _counts(frames),
        "distributions": {
            name: _section(frames[table], table, compute)
            for name, (table, compute) in DISTRIBUTIONS.items()
        },
        "agreement": dict(agreement) if agreement else {"missing": "no agreement figures"},
        "consistency": _section(frames["consistency"], "consistency", _consistency),
        "checks": _section(frames["validation"], "validation", _rules),
        "episode_status": _section(frames["episode_status"], "episode_status", _episode_status),
        "review_sample": _review(review_sample),
    }


def write_validation_report(
    out_dir: Path, report: Mapping[str, Any], review_html: str | None = None
) -> Path:
    """Write review.html (when given) then validation_report.json into `out_dir` (see
    report_dir), each atomically; returns the JSON's path."""
    text = json.dumps(report, indent=2, allow_nan=False)
    if review_html is not None:
        write_text_atomic(out_dir / REVIEW_FILE, review_html)
    path = out_dir / REPORT_FILE
    write_text_atomic(path, text + "\n")
    return path
