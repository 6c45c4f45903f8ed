"""`new_episodes`: adds a partition for every new episode on disk and requests batched runs;
re-requests an episode re-recorded under the same index (its content signature changed)."""

import json
from pathlib import Path

import dagster as dg

from enrich_assets.datasets.episode import EpisodeRef
from enrich_assets.datasets.lerobot.reader import open_lerobot
from enrich_assets.datasets.scan import metadata_signature
from enrich_assets.defs.jobs import enrich_episodes_job, range_tags
from enrich_assets.defs.partitions import EPISODE_BACKFILL, episodes
from enrich_assets.defs.resources import PipelineResource
from enrich_assets.infra.files import atomic_write
from enrich_assets.infra.partition_keys import partition_key

SIGNATURES_DIR = "sensor_signatures"  # under the data dir: one small JSON file per dataset


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300] if text else ''}"


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
    cursor: dict[str, str], pipeline: PipelineResource, root: Path
) -> tuple[str, str, list[EpisodeRef]] | None:
    """(dataset id, metadata signature, episodes) of a root whose metadata changed; None if
    unchanged. Raises whatever a broken root raises; the caller skips that root."""
    dataset_id = pipeline.registry.register(root)
    signature = metadata_signature(root)
    if cursor.get(dataset_id) == signature:
        return None
    return dataset_id, signature, open_lerobot(root, dataset_id).episodes()


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
    roots = {*pipeline.settings.dataset_roots, *pipeline.registry.load().values()}
    added: list[str] = []
    requests: list[dg.RunRequest] = []
    batch = EPISODE_BACKFILL.max_partitions_per_run or 64
    for root in sorted(roots):
        if not root.exists():
            context.log.warning(f"dataset root {root} does not exist; skipped")
            continue
        try:
            scanned = _scan(cursor, pipeline, root)
        except Exception as exc:  # one broken root must not stop the others
            context.log.warning(f"dataset root {root} skipped this tick: {_one_line(exc)}")
            continue
        if scanned is None:
            continue
        dataset_id, signature, refs = scanned
        on_disk = {partition_key(dataset_id, e.episode_index): e.signature for e in refs}
        gone = sorted(k for k in known if k.startswith(f"{dataset_id}:ep") and k not in on_disk)
        if gone:
            context.log.warning(
                f"{len(gone)} episodes of {dataset_id} vanished from disk; "
                f"kept in the catalog: {gone[:10]}"
            )
        new = [k for k in on_disk if k not in known]
        for i in range(0, len(new), batch):
            chunk = new[i : i + batch]
            requests.append(
                dg.RunRequest(
                    run_key=f"{chunk[0]}..{chunk[-1]}@{signature}",
                    tags=range_tags(chunk[0], chunk[-1]),
                )
            )
        store = signatures_path(pipeline.settings.data_dir, dataset_id)
        seen = _load_signatures(store)
        changed = [k for k, s in on_disk.items() if k in known and seen.get(k, s) != s]
        for key in changed:
            requests.append(
                dg.RunRequest(run_key=f"{key}@{on_disk[key]}", tags=range_tags(key, key))
            )
        if changed:
            context.log.info(f"{len(changed)} re-recorded episodes requested again: {changed[:10]}")
        if {**seen, **on_disk} != seen:
            _save_signatures(store, {**seen, **on_disk})
        added.extend(new)
        cursor[dataset_id] = signature
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[episodes.build_add_request(added)] if added else [],
        cursor=json.dumps(cursor, sort_keys=True),
    )
