"""Vision assets: CLIP embeddings (+ near-duplicate flags), detections, depth.

Models load once per asset step (the `vision` resource; in this process, or in Ray actors
per the `compute:` settings) and see the keyframes of every episode in the run packed into
full batches (`prepare`), read from the cache through the feeder (models/vision/feeder.py);
per-episode rows are then cut from the results.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import dagster as dg
import numpy as np

from enrich_assets.datasets.episode import EpisodeRef
from enrich_assets.defs.episode import keyframes
from enrich_assets.defs.per_episode import EpisodeOutput, episode_asset, materialize_episodes
from enrich_assets.defs.resources import PipelineResource
from enrich_assets.enrich.derived.near_duplicates import DEFAULT_THRESHOLD
from enrich_assets.enrich.monitoring.metrics import RunMeter
from enrich_assets.enrich.rules import Severity
from enrich_assets.enrich.vision.depth import check_depth, depth_row, encode_depth
from enrich_assets.enrich.vision.detections import (
    check_detections,
    detection_rows,
    load_vocabulary,
)
from enrich_assets.enrich.vision.embedding import check_embeddings, embedding_rows
from enrich_assets.infra.partition_keys import parse_partition_key
from enrich_assets.infra.schema import config_hash, load_yaml
from enrich_assets.infra.settings import ComputeSettings, load_settings
from enrich_assets.models.registry import (
    LICENCES,
    ModelSpec,
    Provenance,
    load_model_spec,
    profile_model,
)
from enrich_assets.models.vision.feeder import feed
from enrich_assets.models.vision.hosts import hosted_model, model_host
from enrich_assets.models.vision.loading import load_vision_model
from enrich_assets.store.artifacts import write_artifact
from enrich_assets.store.images import load_images

PROFILE = load_settings().model_profile
MODELS = load_yaml("models.yaml")
Key = tuple[str, int, str, int]  # dataset_id, episode_index, camera, frame_index
Episode = tuple[str, int]  # dataset_id, episode_index


def _spec(task: str) -> ModelSpec:
    return load_model_spec(task, profile=PROFILE)


def _model_version(task: str) -> dict[str, Any]:
    """The registry entry that shapes the task's outputs (not the resources it asks for)."""
    entry = MODELS["models"][_spec(task).name]
    return {k: v for k, v in entry.items() if k != "resources"}


class VisionModels(dg.ConfigurableResource):
    """Which model profile to use (`tiny` random-init for tests/demo, `real` for hub weights),
    and where the models run (settings `compute:`; local by default, or Ray actors), and how
    many threads read keyframes ahead of the models (0: inline)."""

    profile: str = "tiny"
    device: str = "auto"
    loader_workers: int = 1
    backend: str = "local"
    ray_address: str = ""
    actors_per_model: int = 1
    actor_start_timeout_s: float = 600.0

    @contextmanager
    def model(self, task: str) -> Iterator[tuple[Any, Callable[[], dict[str, Any]]]]:
        """The task's model for one asset step (loaded once, shared by every partition of the
        run, freed after), and a function giving the metadata of where it ran."""
        compute = ComputeSettings(
            backend=self.backend,  # type: ignore[arg-type]  # validated by ComputeSettings
            ray_address=self.ray_address,
            actors_per_model=self.actors_per_model,
            actor_start_timeout_s=self.actor_start_timeout_s,
        )
        host = model_host(compute, self.device)
        with hosted_model(host, load_model_spec(task, profile=self.profile)) as model:
            yield model, lambda: host.describe(model)

    def names(self, task: str) -> bool:
        """Whether the profile names a model for `task` (`caption` is optional)."""
        return profile_model(task, self.profile) is not None

    def load(self, task: str) -> Any:
        """The task's model in this process, once per run (the in-process caption model,
        which is not hosted on Ray)."""
        cache = self.__dict__.setdefault("_models", {})
        if task not in cache:
            cache[task] = load_vision_model(
                load_model_spec(task, profile=self.profile), self.device
            )
        return cache[task]


def _batched_keyframes(
    pipeline: PipelineResource,
    vision: VisionModels,
    model: Any,
    run: Callable[[Iterator[tuple[Key, np.ndarray]]], Iterator[tuple[Key, Any]]],
    meter: RunMeter,
) -> tuple[Callable[[list[EpisodeRef]], None], dict[Key, Any], dict[Episode, list[dict]]]:
    """A `prepare` hook that runs a model over all keyframes of the run's episodes at once,
    each read once from the cache, and reports the model's batch latencies to the run's
    `meter`."""
    results: dict[Key, Any] = {}
    rows_by_episode: dict[Episode, list[dict]] = {}

    def prepare(refs: list[EpisodeRef]) -> None:
        timed = len(model.batch_seconds)  # the model lives as long as the process
        for ref in refs:
            part = pipeline.catalog.read_part(
                "keyframes", ref.dataset_id, f"{ref.episode_index:06d}"
            )
            if part.height:
                rows = part.sort(["camera", "frame_index"]).iter_rows(named=True)
                rows_by_episode[(ref.dataset_id, ref.episode_index)] = list(rows)
        items = [(_key(r), r["tech_image_path"]) for rows in rows_by_episode.values() for r in rows]
        load = partial(load_images, pipeline.artifact_dir)
        results.update(run(feed(items, load, workers=vision.loader_workers)))
        meter.add_batches(model.model_id, model.batch_seconds[timed:])

    return prepare, results, rows_by_episode


def _key(row: dict) -> Key:
    return row["dataset_id"], row["episode_index"], row["camera"], row["frame_index"]


def _provenance(model: Any) -> dict[str, str]:
    p = model.provenance
    return {
        "ai_model_id": p.model_id,
        "ai_model_revision": p.model_revision,
        "ai_preprocessing": p.preprocessing,
        "ai_model_licence": p.licence,
    }


_WARNED: set[tuple[str, str]] = set()  # (run_id, model_id) whose licence was warned about


def licence_metadata(context: dg.AssetExecutionContext, provenance: Provenance) -> dict[str, str]:
    """The model's licence for the asset's metadata; a non-commercial one is also a warning,
    once per run and model (in the process that loaded it)."""
    key = (context.run.run_id, provenance.model_id)
    if not LICENCES[provenance.licence] and key not in _WARNED:
        _WARNED.add(key)
        context.log.warning(
            f"model {provenance.model_id} is licensed {provenance.licence} (non-commercial): "
            "its outputs may not be used commercially; the `real` profile uses only "
            "permissive weights"
        )
    return {"model_licence": provenance.licence}


EMBEDDING_RULES = dict.fromkeys(
    ["embedding_dim", "embedding_finite", "embedding_unit_norm", "embedding_distinct"],
    Severity.ERROR,
)
DETECTION_RULES = dict.fromkeys(
    [
        "detection_bbox_inside",
        "detection_bbox_ordered",
        "detection_confidence_range",
        "detection_label_in_vocabulary",
    ],
    Severity.ERROR,
)
DEPTH_RULES = dict.fromkeys(["depth_shape", "depth_finite", "depth_positive"], Severity.ERROR)
THRESHOLD = DEFAULT_THRESHOLD  # schemas/pipeline.yaml near_duplicates


@episode_asset(
    code_version=config_hash(_model_version("embedding"), THRESHOLD),
    deps=[keyframes],
    rules=EMBEDDING_RULES,
    group_name="vision",
    kinds={"pytorch", "duckdb"},
)
def ai_embedding(
    context: dg.AssetExecutionContext, pipeline: PipelineResource, vision: VisionModels
) -> dg.MaterializeResult:
    """CLIP image embeddings per keyframe (L2-normalised), near-duplicate flags per episode."""
    with vision.model("embedding") as (model, where):
        licence = licence_metadata(context, model.provenance)  # warns at load
        meter = RunMeter()
        prepare, vectors, rows_by_episode = _batched_keyframes(
            pipeline, vision, model, model.run, meter
        )

        def compute(ref: EpisodeRef) -> EpisodeOutput:
            rows = rows_by_episode.get((ref.dataset_id, ref.episode_index), [])
            matrix = np.stack([vectors[_key(r)] for r in rows]).astype(np.float32)
            out = [{**row, **_provenance(model)} for row in embedding_rows(rows, matrix, THRESHOLD)]
            return EpisodeOutput(
                out, check_embeddings(matrix, model.dim, [r["tech_image_sha256"] for r in rows])
            )

        return materialize_episodes(
            context,
            pipeline,
            "ai_embedding",
            compute,
            EMBEDDING_RULES,
            ["keyframes"],
            summarize=lambda: {
                "model_id": model.model_id,
                **licence,
                "dim": model.dim,
                "oom_splits": model.oom_splits,
                **where(),
            },
            prepare=prepare,
            meter=meter,
        )


@episode_asset(
    code_version=config_hash(_model_version("detection"), load_yaml("detection_vocabulary.yaml")),
    deps=[keyframes],
    rules=DETECTION_RULES,
    group_name="vision",
    kinds={"pytorch", "duckdb"},
)
def ai_detections(
    context: dg.AssetExecutionContext, pipeline: PipelineResource, vision: VisionModels
) -> dg.MaterializeResult:
    """Text-prompted object detections per keyframe: [{label, confidence, bbox}] in pixels."""
    with vision.model("detection") as (model, where):
        licence = licence_metadata(context, model.provenance)  # warns at load
        dataset_ids = {parse_partition_key(k)[0] for k in context.partition_keys}
        labels_by_dataset = {d: load_vocabulary(d) for d in dataset_ids}
        labels = sorted(set().union(*labels_by_dataset.values()))  # one prompt for the whole run
        meter = RunMeter()
        prepare, found, rows_by_episode = _batched_keyframes(
            pipeline, vision, model, lambda items: model.run(items, labels), meter
        )

        def compute(ref: EpisodeRef) -> EpisodeOutput:
            rows = rows_by_episode.get((ref.dataset_id, ref.episode_index), [])
            allowed = set(labels_by_dataset[ref.dataset_id])
            out, per_frame = detection_rows(rows, [found[_key(r)] for r in rows], allowed)
            out = [{**row, **_provenance(model)} for row in out]
            sizes = [(r["tech_height"], r["tech_width"]) for r in rows]
            return EpisodeOutput(
                out, check_detections(per_frame, sizes, labels_by_dataset[ref.dataset_id])
            )

        return materialize_episodes(
            context,
            pipeline,
            "ai_detections",
            compute,
            DETECTION_RULES,
            ["keyframes"],
            summarize=lambda: {
                "model_id": model.model_id,
                **licence,
                "confidence": model.confidence_note,
                "labels": len(labels),
                "oom_splits": model.oom_splits,
                **where(),
            },
            prepare=prepare,
            meter=meter,
        )


@episode_asset(
    code_version=config_hash(_model_version("depth")),
    deps=[keyframes],
    rules=DEPTH_RULES,
    group_name="vision",
    kinds={"pytorch", "duckdb"},
)
def ai_depth(
    context: dg.AssetExecutionContext, pipeline: PipelineResource, vision: VisionModels
) -> dg.MaterializeResult:
    """Depth Anything per keyframe: a float16 map as a content-hashed artifact, with stats."""
    with vision.model("depth") as (model, where):
        licence = licence_metadata(context, model.provenance)  # warns at load
        meter = RunMeter()
        prepare, maps, rows_by_episode = _batched_keyframes(
            pipeline, vision, model, model.run, meter
        )

        def compute(ref: EpisodeRef) -> EpisodeOutput:
            rows = rows_by_episode.get((ref.dataset_id, ref.episode_index), [])
            out = []
            for r in rows:
                depth = maps[_key(r)]
                path = write_artifact(pipeline.artifact_dir, "depth", encode_depth(depth), ".npz")
                row = depth_row(r, depth, str(path), model.is_metric)
                out.append({**row, **_provenance(model)})
            sizes = [(r["tech_height"], r["tech_width"]) for r in rows]
            return EpisodeOutput(
                out, check_depth([maps[_key(r)] for r in rows], sizes, model.is_metric)
            )

        return materialize_episodes(
            context,
            pipeline,
            "ai_depth",
            compute,
            DEPTH_RULES,
            ["keyframes"],
            summarize=lambda: {
                "model_id": model.model_id,
                **licence,
                "oom_splits": model.oom_splits,
                **where(),
            },
            prepare=prepare,
            meter=meter,
        )
