"""Re-run what an edit made stale.

Editing a prompt, a model or a pipeline setting changes the code_version of the assets it
shapes (and only theirs). The condition below then requests every partition those assets
had materialized, once; the automation sensor turns the request into one backfill, which
Dagster runs in range runs of up to 64 episodes (EPISODE_BACKFILL). Partitions never
materialized are left to the `new_episodes` sensor.
"""

import dagster as dg

from enrich_assets.defs.jobs import CURATION_GROUP, DERIVED_GROUP, WRITEBACK_GROUP

RERUN_WHEN_CODE_CHANGES = (
    dg.AutomationCondition.code_version_changed().since(
        dg.AutomationCondition.newly_requested() | dg.AutomationCondition.newly_updated()
    )
    & ~dg.AutomationCondition.missing()
    & ~dg.AutomationCondition.in_progress()
).with_label("materialized under an older code version")

rerun_stale_partitions = dg.AutomationConditionSensorDefinition(
    "rerun_stale_partitions",
    target=dg.AssetSelection.all()
    - dg.AssetSelection.groups(DERIVED_GROUP, WRITEBACK_GROUP, CURATION_GROUP),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=60,
    description="Backfills the partitions whose asset's code_version changed (prompt edits).",
)
