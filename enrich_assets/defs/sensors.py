"""`new_episodes`: adds a partition for every new episode on disk and requests batched runs."""

import json

import dagster as dg

from enrich_assets.datasets.errors import DatasetError
from enrich_assets.datasets.lerobot.reader import open_lerobot
from enrich_assets.datasets.scan import metadata_signature
from enrich_assets.defs.jobs import enrich_episodes_job, range_tags
from enrich_assets.defs.partitions import EPISODE_BACKFILL, episodes
from enrich_assets.defs.resources import PipelineResource
from enrich_assets.infra.partition_keys import partition_key


@dg.sensor(job=enrich_episodes_job, minimum_interval_seconds=30)
def new_episodes(
    context: dg.SensorEvaluationContext, pipeline: PipelineResource
) -> dg.SensorResult:
    """Scan dataset roots; the cursor holds each dataset's metadata signature, so an
    unchanged dataset costs a few stat calls per tick. Episodes that vanished from disk
    are reported in the tick's log and kept, with their rows, in the catalog."""
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
        dataset_id = pipeline.registry.register(root)
        signature = metadata_signature(root)
        if cursor.get(dataset_id) == signature:
            continue
        try:
            on_disk = [
                partition_key(dataset_id, e.episode_index)
                for e in open_lerobot(root, dataset_id).episodes()
            ]
        except DatasetError as exc:
            context.log.error(f"dataset {dataset_id} cannot be registered: {exc}")
            continue
        gone = sorted(
            k for k in known if k.startswith(f"{dataset_id}:ep") and k not in set(on_disk)
        )
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
        added.extend(new)
        cursor[dataset_id] = signature
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[episodes.build_add_request(added)] if added else [],
        cursor=json.dumps(cursor, sort_keys=True),
    )
