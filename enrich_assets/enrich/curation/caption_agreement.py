"""Cross-model caption agreement: a second VLM captions a seeded sample of keyframes with the
same prompt and code path as ai_caption, and a sentence model scores each pair of captions.

Two capable models looking at the same frame describe it alike; many pairs far apart mean at
least one of them describes the scenes unreliably, and the flagged pairs show where.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from enrich_assets.enrich.language.captions import caption_keyframes
from enrich_assets.enrich.language.frames import FrameFetch
from enrich_assets.enrich.language.settings import LanguageSettings
from enrich_assets.enrich.rules import RuleOutcome, Severity
from enrich_assets.models.sentence_embedder import SentenceEmbedder
from enrich_assets.models.vlm.types import VLMClient
from enrich_assets.store.images import load_image

KEY = ["dataset_id", "episode_index", "camera", "frame_index"]
CAPTION_COLUMNS = [*KEY, "ai_caption", "ai_caption_error", "ai_model_id"]
RULE = "caption_agreement"


@dataclass(frozen=True)
class AgreementSettings:
    """schemas/pipeline.yaml `caption_agreement`."""

    sample_size: int = 50  # keyframes captioned by the second model
    seed: int = 1729
    threshold: float = 0.7  # a pair below this cosine similarity is flagged
    max_flagged_share: float = 0.2  # the check warns above this share of flagged pairs


@dataclass(frozen=True)
class CaptionPair:
    dataset_id: str
    episode_index: int
    camera: str
    frame_index: int
    primary: str
    secondary: str
    similarity: float


@dataclass(frozen=True)
class AgreementReport:
    primary_model: str
    secondary_model: str
    sentence_model: str
    threshold: float
    sampled: int  # keyframes sent to the second model
    n: int  # sampled keyframes where both models gave a caption
    mean: float | None  # None when n == 0
    median: float | None
    p10: float | None
    flagged_share: float | None
    flagged: tuple[CaptionPair, ...]  # below the threshold, least similar first

    def figures(self) -> dict[str, Any]:
        """Plain JSON-able values, for the validation report and check metadata."""
        return asdict(self)


def sample_keyframes(captions: pl.DataFrame, size: int, seed: int) -> pl.DataFrame:
    """A seeded sample of ai_caption rows that hold a caption of their own.

    Rows that copy a near-duplicate's caption are left out: the second model would caption a
    different frame than the one the copied text describes.
    """
    eligible = captions.filter(
        pl.col("ai_caption").is_not_null() & pl.col("ai_caption_reused_from").is_null()
    ).sort(KEY)
    if eligible.height > size:
        rows = np.random.default_rng(seed).choice(eligible.height, size, replace=False)
        eligible = eligible[sorted(rows.tolist())]
    return eligible.select(CAPTION_COLUMNS)


def second_captions(
    sample: pl.DataFrame,
    keyframes: pl.DataFrame,
    manifest: pl.DataFrame,
    artifact_dir: Path,
    client: VLMClient,
    settings: LanguageSettings,
) -> pl.DataFrame:
    """`client`'s captions for the sampled keyframes, through caption_keyframes (same prompt).

    Images come from the keyframes table (tech_image_path under `artifact_dir`), each
    episode's task from the episode manifest (tech_task). Columns: CAPTION_COLUMNS.
    """
    paths = {tuple(r[:4]): r[4] for r in keyframes.select(*KEY, "tech_image_path").rows()}
    episodes = manifest.select("dataset_id", "episode_index", "tech_task").rows()
    tasks = {(dataset_id, episode): task for dataset_id, episode, task in episodes}
    rows = []
    for (dataset_id, episode), part in sample.sort(KEY).group_by(
        ["dataset_id", "episode_index"], maintain_order=True
    ):
        if (dataset_id, episode) not in tasks:
            raise ValueError(f"episode {dataset_id}:{episode} has no row in episode_manifest")
        keys = list(part.select("camera", "frame_index").iter_rows())
        fetch = _image_fetch(paths, artifact_dir, str(dataset_id), int(episode))
        for c in caption_keyframes(keys, fetch, tasks[dataset_id, episode], client, settings):
            rows.append((dataset_id, episode, c.camera, c.frame_index, c.text, c.error, c.model))
    schema = dict.fromkeys(CAPTION_COLUMNS, pl.String) | {
        "episode_index": pl.Int64,
        "frame_index": pl.Int64,
    }
    return pl.DataFrame(rows, schema=schema, orient="row")


def _image_fetch(
    paths: dict[tuple, str], artifact_dir: Path, dataset_id: str, episode: int
) -> FrameFetch:
    def fetch(camera: str, frames: Sequence[int]) -> list[np.ndarray]:
        images = []
        for frame in frames:
            key = (dataset_id, episode, camera, frame)
            if key not in paths:
                raise ValueError(f"keyframe {key} has no row in the keyframes table")
            images.append(load_image(artifact_dir, paths[key]))
        return images

    return fetch


def compare_captions(
    primary: pl.DataFrame, secondary: pl.DataFrame, embedder: SentenceEmbedder, threshold: float
) -> AgreementReport:
    """Cosine similarity of each keyframe's two captions (rows matched on KEY)."""
    pairs = primary.select(CAPTION_COLUMNS).join(
        secondary.select(CAPTION_COLUMNS), on=KEY, how="inner", suffix="_2"
    )
    both = pairs.filter(pl.col("ai_caption").is_not_null() & pl.col("ai_caption_2").is_not_null())
    a = embedder.encode(both["ai_caption"].to_list())
    b = embedder.encode(both["ai_caption_2"].to_list())
    similarity = np.clip(np.sum(a * b, axis=1), -1.0, 1.0)
    low = np.flatnonzero(similarity < threshold)
    rows = both.select(*KEY, "ai_caption", "ai_caption_2").rows()
    flagged = tuple(
        CaptionPair(*rows[i], float(similarity[i]))
        for i in low[np.argsort(similarity[low], kind="stable")]
    )
    n = both.height
    mean, median, p10, share = (
        (
            float(similarity.mean()),
            float(np.median(similarity)),
            float(np.percentile(similarity, 10)),
            len(low) / n,
        )
        if n
        else (None, None, None, None)
    )
    return AgreementReport(
        primary_model=_models(pairs["ai_model_id"]),
        secondary_model=_models(pairs["ai_model_id_2"]),
        sentence_model=embedder.model_id,
        threshold=threshold,
        sampled=pairs.height,
        n=n,
        mean=mean,
        median=median,
        p10=p10,
        flagged_share=share,
        flagged=flagged,
    )


def _models(column: pl.Series) -> str:
    return ", ".join(sorted(set(column.drop_nulls().to_list()))) or "unknown"


def caption_agreement(
    captions: pl.DataFrame,
    keyframes: pl.DataFrame,
    manifest: pl.DataFrame,
    artifact_dir: Path,
    client: VLMClient,
    embedder: SentenceEmbedder,
    language: LanguageSettings,
    settings: AgreementSettings,
) -> AgreementReport:
    """Sample, caption the sample with the second client, compare: the whole measurement."""
    sample = sample_keyframes(captions, settings.sample_size, settings.seed)
    second = second_captions(sample, keyframes, manifest, artifact_dir, client, language)
    return compare_captions(sample, second, embedder, settings.threshold)


def check_caption_agreement(report: AgreementReport, max_flagged_share: float) -> RuleOutcome:
    """WARN when too many pairs disagree, or when there was no pair to compare."""
    who = f"{report.primary_model} vs {report.secondary_model} ({report.sentence_model})"
    if report.n == 0:
        message = f"no caption pairs to compare: {report.sampled} sampled keyframes; {who}"
        return RuleOutcome(RULE, Severity.WARN, False, message)
    assert report.flagged_share is not None and report.mean is not None
    lowest = "; ".join(
        f"{p.dataset_id}:{p.episode_index} {p.camera} frame {p.frame_index} {p.similarity:.2f}"
        for p in report.flagged[:3]
    )
    message = (
        f"{len(report.flagged)}/{report.n} caption pairs below {report.threshold:.2f} "
        f"({report.flagged_share:.0%}, limit {max_flagged_share:.0%}); similarity mean "
        f"{report.mean:.2f}, median {report.median:.2f}, p10 {report.p10:.2f}; "
        f"{report.sampled - report.n} of {report.sampled} sampled without both captions; {who}"
        + (f"; lowest: {lowest}" if lowest else "")
    )
    return RuleOutcome(RULE, Severity.WARN, report.flagged_share <= max_flagged_share, message)
