"""Dataset-wide distribution checks: do captions and detections see what the tasks name?

An object named in an episode's task but rarely in its captions (or detections) points at a
captioner or detector that misses it, or at task strings that do not match the recordings.
Objects are found with the caption lexicon (captions.caption_tags), in tasks and captions
alike, so "cups" in a task and "cup" in a caption are one class. Captions copied from a
near-duplicate keyframe are left out everywhere: they would count one look twice.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import polars as pl

from enrich_assets.enrich.language.captions import caption_tags
from enrich_assets.enrich.rules import RuleOutcome, Severity, outcome

Episode = tuple[str, int]  # dataset_id, episode_index


@dataclass(frozen=True)
class DistributionSettings:
    """schemas/pipeline.yaml `distribution`."""

    min_caption_share: float = 0.3  # of its episodes' captions that should name a task object
    min_detection_share: float = 0.3  # of its episodes' keyframes where it should be detected
    min_distinct_caption_share: float = 0.5  # distinct captions / captions


@dataclass(frozen=True)
class ClassShare:
    """How often the keyframes of the episodes whose task names an object observe it."""

    object: str
    episodes: int  # episodes whose task names it
    keyframes: int  # observed keyframes of those episodes (captions, or detector runs)
    hits: int  # of those, the ones that name (detect) it
    share: float


def task_objects(manifest: pl.DataFrame) -> dict[Episode, tuple[str, ...]]:
    """Lexicon objects in each episode's task (episode_manifest: tech_task)."""
    rows = manifest.select("dataset_id", "episode_index", "tech_task").unique().rows()
    return {(d, e): caption_tags(task or "").objects for d, e, task in rows}


def class_shares(
    tasks: Mapping[Episode, tuple[str, ...]], observed: Iterable[tuple[Episode, set[str]]]
) -> list[ClassShare]:
    """For each object a task names, the share of its episodes' keyframes that observe it."""
    keyframes: Counter[str] = Counter()
    hits: Counter[str] = Counter()
    for episode, seen in observed:
        for obj in tasks.get(episode, ()):
            keyframes[obj] += 1
            hits[obj] += int(obj in seen)
    episodes = Counter(obj for objects in tasks.values() for obj in objects)
    return [
        ClassShare(obj, episodes[obj], keyframes[obj], hits[obj], hits[obj] / keyframes[obj])
        for obj in sorted(keyframes)
    ]


def _own_captions(captions: pl.DataFrame) -> pl.DataFrame:
    return captions.filter(
        pl.col("ai_caption").is_not_null() & pl.col("ai_caption_reused_from").is_null()
    )


def caption_mentions(manifest: pl.DataFrame, captions: pl.DataFrame) -> list[ClassShare]:
    """Task objects vs the captions of their episodes (ai_caption: ai_caption)."""
    rows = _own_captions(captions).select("dataset_id", "episode_index", "ai_caption").rows()
    observed = (((d, e), set(caption_tags(text).objects)) for d, e, text in rows)
    return class_shares(task_objects(manifest), observed)


def detection_hits(
    manifest: pl.DataFrame, detections: pl.DataFrame, vocabulary: Sequence[str]
) -> list[ClassShare]:
    """Task objects the detector was asked for vs its detections in their episodes'
    keyframes (ai_detections: ai_detections, a JSON array of {label, ...} per keyframe)."""
    asked = {obj for label in vocabulary for obj in caption_tags(label).objects}
    tasks = {
        ep: tuple(o for o in objs if o in asked) for ep, objs in task_objects(manifest).items()
    }
    rows = detections.select("dataset_id", "episode_index", "ai_detections").rows()
    observed = (((d, e), _detected_objects(found)) for d, e, found in rows)
    return class_shares(tasks, observed)


def _detected_objects(found: str | None) -> set[str]:
    labels = [d["label"] for d in json.loads(found or "[]")]
    return {obj for label in labels for obj in caption_tags(label).objects}


def check_class_shares(rule: str, shares: list[ClassShare], min_share: float) -> RuleOutcome:
    """WARN naming every class observed in fewer than `min_share` of its keyframes."""
    low = sorted((s for s in shares if s.share < min_share), key=lambda s: (s.share, s.object))
    return outcome(
        rule,
        [
            f"{s.object}: {s.hits}/{s.keyframes} keyframes ({s.share:.0%} < {min_share:.0%}) "
            f"in {s.episodes} episodes whose task names it"
            for s in low
        ],
        Severity.WARN,
    )


def check_caption_variety(captions: pl.DataFrame, min_distinct_share: float) -> RuleOutcome:
    """WARN when many keyframes share one caption word for word (a model stuck on a template)."""
    texts = _own_captions(captions)["ai_caption"].to_list()
    counts = Counter(texts)
    share = len(counts) / len(texts) if texts else 1.0
    failures = []
    if share < min_distinct_share:
        top, times = counts.most_common(1)[0]
        failures.append(
            f"{len(counts)} distinct captions for {len(texts)} keyframes ({share:.0%} < "
            f"{min_distinct_share:.0%}); most repeated ({times}x): {top[:80]!r}"
        )
    return outcome("caption_variety", failures, Severity.WARN)


def check_distribution(
    manifest: pl.DataFrame,
    captions: pl.DataFrame,
    detections: pl.DataFrame | None,
    vocabulary: Sequence[str],
    settings: DistributionSettings,
) -> list[RuleOutcome]:
    """Every distribution check over one dataset's tables (detections optional)."""
    outcomes = [
        check_class_shares(
            "task_objects_in_captions",
            caption_mentions(manifest, captions),
            settings.min_caption_share,
        ),
        check_caption_variety(captions, settings.min_distinct_caption_share),
    ]
    if detections is not None:
        shares = detection_hits(manifest, detections, vocabulary)
        outcomes.append(
            check_class_shares("task_objects_detected", shares, settings.min_detection_share)
        )
    return outcomes


def report_distribution(
    tables: Mapping[str, pl.DataFrame], vocabulary: Sequence[str], settings: DistributionSettings
) -> list[RuleOutcome]:
    """The validation report's distribution checks over one dataset's catalog tables: none
    without captions or a manifest, the detection check only where detections exist."""
    if tables["ai_caption"].height == 0 or tables["episode_manifest"].height == 0:
        return []
    detections = tables["ai_detections"] if tables["ai_detections"].height else None
    return check_distribution(
        tables["episode_manifest"], tables["ai_caption"], detections, vocabulary, settings
    )
