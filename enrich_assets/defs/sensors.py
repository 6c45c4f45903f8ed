"""`new_episodes`: adds a partition for every new episode on disk and requests batched runs;
re-requests an episode re-recorded under the same index (its content signature changed)."""

import json
from pathlib import Path

import dagster as dg

from enrich_assets.datasets.episode import EpisodeRef
from enrich_assets.datasets.open import change_signature, location_exists, open_dataset
from enrich_assets.datasets.scan import EpisodeChanges, episode_changes
from enrich_assets.defs.jobs import enrich_episodes_job, range_tags
from enrich_assets.defs.partitions import EPISODE_BACKFILL, episodes
from enrich_assets.defs.resources import PipelineResource
from enrich_assets.infra.errors import one_line
from enrich_assets.infra.files import atomic_write

SIGNATURES_DIR = "sensor_signatures"  # under the data dir: one small JSON file per dataset


def signatures_path(data_dir: Path, dataset_id: str) -> Path:
    """Partition key -> episode content signature, as last seen by the sensor."""
    return data_dir / SIGNATURES_DIR / f"{dataset_id}.json"


def _load_signatures(path: Path) -> dict[str, str]:
    try:
        loaded = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _save_signatures(path: Path, signatures: dict[str, str]) -> None:
    text = json.dumps(signatures, sort_keys=True)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def _scan(
    cursor: dict[str, str], pipeline: PipelineResource, root: str
) -> tuple[str, str, list[EpisodeRef]] | None:
    """(dataset id, metadata signature, episodes) of a root whose metadata changed; None if
    unchanged. Raises whatever a broken root raises; the caller skips that root."""
    dataset_id = pipeline.registry.register(root)
    signature = change_signature(root)
    if cursor.get(dataset_id) == signature:
        return None
    return dataset_id, signature, open_dataset(root, dataset_id).episodes()


def _requests(change: EpisodeChanges, signature: str, batch: int) -> list[dg.RunRequest]:
    """Range runs over the new episodes; one run per re-recorded episode."""
    requests = []
    for i in range(0, len(change.new), batch):
        chunk = change.new[i : i + batch]
        run_key = f"{chunk[0]}..{chunk[-1]}@{signature}"
        requests.append(dg.RunRequest(run_key=run_key, tags=range_tags(chunk[0], chunk[-1])))
    for key in change.re_recorded:
        run_key = f"{key}@{change.signatures[key]}"
        requests.append(dg.RunRequest(run_key=run_key, tags=range_tags(key, key)))
    return requests


@dg.sensor(job=enrich_episodes_job, minimum_interval_seconds=30)
def new_episodes(
    context: dg.SensorEvaluationContext, pipeline: PipelineResource
) -> dg.SensorResult:
    """Scan dataset roots; the cursor holds each dataset's metadata signature, so an
    unchanged dataset costs a few stat calls per tick. Each root is judged alone: a broken
    one is logged (one line) and skipped, and retried next tick; the others still register
    and request their new episodes. Per-episode content signatures live in a small file per
    dataset under the data dir (not in the cursor): a known episode whose signature changed
    was re-recorded and is requested again. Episodes that vanished from disk are reported in
    the tick's log and kept, with their rows, in the catalog."""
    cursor: dict[str, str] = json.loads(context.cursor or "{}")
    known = set(context.instance.get_dynamic_partitions(episodes.name))
    roots = {*map(str, pipeline.settings.dataset_roots), *pipeline.registry.load().values()}
    added: list[str] = []
    requests: list[dg.RunRequest] = []
    batch = EPISODE_BACKFILL.max_partitions_per_run or 64
    for root in sorted(roots):
        if not location_exists(root):
            context.log.warning(f"dataset root {root} does not exist; skipped")
            continue
        try:
            scanned = _scan(cursor, pipeline, root)
        except Exception as exc:  # one broken root must not stop the others
            context.log.warning(f"dataset root {root} skipped this tick: {one_line(exc)}")
            continue
        if scanned is None:
            continue
        dataset_id, signature, refs = scanned
        store = signatures_path(pipeline.settings.data_dir, dataset_id)
        seen = _load_signatures(store)
        change = episode_changes(dataset_id, refs, known, seen)
        if change.gone:
            context.log.warning(
                f"{len(change.gone)} episodes of {dataset_id} vanished from disk; "
                f"kept in the catalog: {change.gone[:10]}"
            )
        requests += _requests(change, signature, batch)
        if change.re_recorded:
            context.log.info(
                f"{len(change.re_recorded)} re-recorded episodes requested again: "
                f"{change.re_recorded[:10]}"
            )
        if {**seen, **change.signatures} != seen:
            _save_signatures(store, {**seen, **change.signatures})
        new = change.new
        added.extend(new)
        cursor[dataset_id] = signature
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[episodes.build_add_request(added)] if added else [],
        cursor=json.dumps(cursor, sort_keys=True),
    )
