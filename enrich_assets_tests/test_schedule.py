"""The `enrich_missing` schedule against a real instance: exactly the episodes some asset of
the job has not materialized (and no run is materializing) are requested, in contiguous
ranges of at most `batch_size`, each selecting the assets its episodes miss."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import pytest

from enrich_assets.app.run_driver import dagster_instance
from enrich_assets.defs.jobs import range_tags
from enrich_assets.defs.partitions import episodes
from enrich_assets.defs.schedules import cron_every, enrich_missing
from enrich_assets.infra.partition_keys import partition_key

TICK = datetime(2026, 1, 1, 6, tzinfo=UTC)


def _requested(result) -> list[tuple[str, str, list[str]]]:  # noqa: ANN001
    return [
        (
            r.tags["dagster/asset_partition_range_start"],
            r.tags["dagster/asset_partition_range_end"],
            [a.to_user_string() for a in r.asset_selection],
        )
        for r in result.run_requests
    ]


def test_schedule_requests_exactly_the_missing_episodes_in_contiguous_ranges(
    settings, monkeypatch: pytest.MonkeyPatch
) -> None:  # noqa: ANN001
    from enrich_assets.definitions import build_definitions

    monkeypatch.setenv("ENRICH_BATCH_SIZE", "3")
    defs = build_definitions()
    repo = defs.get_repository_def()
    job = defs.resolve_job_def("enrich_episodes")
    assets = sorted(job.asset_layer.selected_asset_keys)
    names = [a.to_user_string() for a in assets]
    assert {"episode_manifest", "keyframes", "ai_embedding"} <= set(names)
    assert not {"ai_near_duplicates", "golden_set_score"} & set(names)  # not in the job

    instance = dagster_instance(settings)
    a = [partition_key("a", i) for i in range(8)]
    b = [partition_key("b", i) for i in range(3)]
    instance.add_dynamic_partitions(episodes.name, a + b)

    def tick():  # noqa: ANN202 -- how the daemon evaluates it: run requests or a skip
        context = dg.build_schedule_context(
            instance=instance, repository_def=repo, scheduled_execution_time=TICK
        )
        return enrich_missing.evaluate_tick(context)

    # nothing materialized: every episode, in ranges of 3 in partition order
    assert _requested(tick()) == [
        (a[0], a[2], names),
        (a[3], a[5], names),
        (a[6], b[0], names),
        (b[1], b[2], names),
    ]

    def materialize(key: str, which: list[dg.AssetKey]) -> None:
        for asset in which:
            instance.report_runless_asset_event(dg.AssetMaterialization(asset, partition=key))

    for key in (a[0], a[1], a[4], a[5], b[2]):
        materialize(key, assets)
    last = assets[-1]
    materialize(a[6], [x for x in assets if x != last])  # one asset still missing

    result = tick()
    # missing: a2 a3 | a6 a7 b0 | b1 -- a gap or the batch size starts a new range
    assert _requested(result) == [
        (a[2], a[3], names),
        (a[6], b[0], names),
        (b[1], b[1], names),
    ]
    for request in result.run_requests:
        first, end = (request.tags[t] for t in range_tags("", ""))
        assert request.run_key == f"{first}..{end}@{TICK.isoformat()}"

    # a run that is materializing a2..a3 owns them: the schedule leaves them to it
    instance.create_run_for_job(job, asset_selection=frozenset(assets), tags=range_tags(a[2], a[3]))
    assert [r[:2] for r in _requested(tick())] == [
        (a[6], b[0]),
        (b[1], b[1]),
    ]

    # only the missing assets are selected when every episode of a range misses just those
    for key in (a[7], b[0], b[1]):
        materialize(key, assets)
    assert _requested(tick()) == [(a[6], a[6], [last.to_user_string()])]

    materialize(a[6], [last])
    skipped = tick()
    assert skipped.run_requests == [] and "every episode partition" in skipped.skip_message


def test_schedule_is_stopped_by_default_every_n_hours() -> None:
    assert enrich_missing.default_status == dg.DefaultScheduleStatus.STOPPED
    assert enrich_missing.cron_schedule == "0 */6 * * *"
    assert cron_every(1) == "0 * * * *" and cron_every(24) == "0 */24 * * *"
