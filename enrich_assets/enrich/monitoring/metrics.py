"""Run metrics: what one asset step did, as one `run_metrics` row and as plottable metadata.

Fed while the step runs (`RunMeter`): the rows written, the model's batch latencies (a VLM
request counts as one batch), the VLM ledger entries. `metrics_row` turns them into the
guide's figures: frames processed, latency per model (p50 / p95 per batch), API error rate,
cost per frame, and the quality-score distribution of the frames the run enriched.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from enrich_assets.models.vlm.ledger import LedgerEntry

METRICS_TABLE = "run_metrics"
QUALITY_COLUMN = "tech_quality_score"
HISTOGRAM_BINS = 10  # over [0, 1]
API_ERRORS = ("failed",)  # the call raised: endpoint down, request rejected, retries spent
NOT_SENT = ("cached", "refused")  # answered from the cache, or stopped by the budget


@dataclass
class RunMeter:
    """What one asset step measured, fed as it runs."""

    rows: int = 0
    frames: int = 0
    quality: list[float] = field(default_factory=list)
    batch_seconds: dict[str, list[float]] = field(default_factory=dict)  # model -> per batch
    calls: list[LedgerEntry] = field(default_factory=list)

    def add_rows(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """One episode's written rows: count its frames, keep its quality scores."""
        self.rows += len(rows)
        self.frames += count_frames(rows)
        self.quality += [
            float(r[QUALITY_COLUMN]) for r in rows if r.get(QUALITY_COLUMN) is not None
        ]

    def add_batches(self, model: str, seconds: Iterable[float]) -> None:
        self.batch_seconds.setdefault(model, []).extend(seconds)

    def add_calls(self, entries: Iterable[LedgerEntry]) -> None:
        """VLM requests: each is one batch of its model, and counts toward error rate and cost."""
        entries = list(entries)
        self.calls += entries
        for e in entries:
            if e.status not in NOT_SENT:
                self.add_batches(e.model, [e.latency_s])


def count_frames(rows: Sequence[Mapping[str, Any]]) -> int:
    """Distinct frames the rows describe: (camera, frame_index) for keyframe tables,
    (camera, tech_timestamp) for language annotations; 0 for episode-level rows (manifest)."""
    frames = set()
    for r in rows:
        position = r.get("frame_index")
        if position is None:
            position = r.get("tech_timestamp")
        if position is not None:
            frames.add((r.get("camera"), position))
    return len(frames)


def _percentile(values: Sequence[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if len(values) else None


def _rounded(value: float | None, digits: int = 6) -> float | None:
    return None if value is None else round(value, digits)


def quality_histogram(scores: Sequence[float]) -> list[int]:
    """Counts of scores in HISTOGRAM_BINS equal bins over [0, 1] (1.0 in the last bin)."""
    counts, _ = np.histogram(np.clip(scores, 0.0, 1.0), bins=HISTOGRAM_BINS, range=(0.0, 1.0))
    return [int(c) for c in counts]


def metrics_row(
    asset: str, meter: RunMeter, episodes: int, not_written: int, seconds: float
) -> dict[str, Any]:
    """The run's figures as a `run_metrics` row (without keys and provenance)."""
    all_batches = [s for values in meter.batch_seconds.values() for s in values]
    sent = [e for e in meter.calls if e.status not in NOT_SENT]
    errors = sum(e.status in API_ERRORS for e in sent)
    cost = sum(e.cost_usd or 0.0 for e in meter.calls)
    scores = meter.quality
    return {
        "asset": asset,
        "episodes": episodes,
        "episodes_not_written": not_written,
        "rows": meter.rows,
        "frames": meter.frames,
        "seconds": round(seconds, 3),
        "models": ",".join(sorted(meter.batch_seconds)) or None,
        "batches": len(all_batches),
        "latency_p50_s": _rounded(_percentile(all_batches, 50)),
        "latency_p95_s": _rounded(_percentile(all_batches, 95)),
        "latency_by_model": json.dumps(
            {
                model: {
                    "batches": len(values),
                    "p50_s": _rounded(_percentile(values, 50)),
                    "p95_s": _rounded(_percentile(values, 95)),
                }
                for model, values in sorted(meter.batch_seconds.items())
            }
        ),
        "api_requests": len(sent),
        "api_errors": errors,
        "api_error_rate": _rounded(errors / len(sent)) if sent else None,
        "cost_usd": round(cost, 6),
        "cost_per_frame_usd": _rounded(cost / meter.frames, 9) if meter.frames else None,
        "quality_n": len(scores),
        "quality_mean": _rounded(float(np.mean(scores))) if scores else None,
        "quality_std": _rounded(float(np.std(scores))) if scores else None,
        "quality_p10": _rounded(_percentile(scores, 10)),
        "quality_p50": _rounded(_percentile(scores, 50)),
        "quality_p90": _rounded(_percentile(scores, 90)),
        "quality_histogram": json.dumps(quality_histogram(scores)) if scores else None,
    }


PLOTTED = (
    "frames",
    "latency_p50_s",
    "latency_p95_s",
    "api_error_rate",
    "cost_per_frame_usd",
    "quality_mean",
    "quality_std",
    "quality_p10",
    "quality_p50",
    "quality_p90",
)


def plotted(row: Mapping[str, Any]) -> dict[str, float | int]:
    """The row's numbers the UI plots over time (materialization metadata); unset ones are
    left out so a plot is not broken by a null."""
    return {k: row[k] for k in PLOTTED if row.get(k) is not None}
