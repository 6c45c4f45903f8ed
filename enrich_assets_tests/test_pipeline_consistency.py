"""The consistency asset end to end on the sample dataset: real detector (tiny), the local stub
VLM over HTTP, the sample's gripper channel (observation.state[3]); its rows, the per-episode
rule rows, Dagster's check evaluations, `status` and the validation report all agree."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import dagster as dg
import polars as pl

from enrich_assets.app.run_driver import dagster_instance, materialize_dataset
from enrich_assets.app.status import dataset_status
from enrich_assets.definitions import build_definitions
from enrich_assets.enrich.curation.consistency import GRASP_GRIPPER, RULES
from enrich_assets.store.catalog import Catalog

EPISODES = [0, 1]
CHECK_KEYS = [dg.AssetCheckKey(dg.AssetKey("consistency"), rule) for rule in RULES]


def _gripper(path: Path, min_change: float) -> None:
    channel = f"{{column: observation.state, index: 3, min_change: {min_change}}}"
    path.write_text(f"consistency: {{gripper_channel: {channel}}}\n")


def _evaluations(settings) -> dict[str, dg.AssetCheckEvaluation]:  # noqa: ANN001
    instance = dagster_instance(settings)
    executed = instance.event_log_storage.get_latest_asset_check_execution_by_key(CHECK_KEYS)
    return {
        key.name: record.event.dagster_event.event_specific_data
        for key, record in executed.items()
        if record.event is not None
    }


def _verdicts(catalog: Catalog) -> dict[tuple[int, str], bool]:
    rules = catalog.read("validation", where="asset = 'consistency'")
    return {(r["episode_index"], r["rule"]): r["passed"] for r in rules.iter_rows(named=True)}


def test_consistency_checks_agree_across_catalog_dagster_status_and_report(
    settings, sample_root: Path, tmp_path: Path, monkeypatch
):
    root = Path(shutil.copytree(sample_root, tmp_path / "sample"))
    config = tmp_path / "settings.yaml"
    _gripper(config, 0.1)  # the sample's gripper opening closes by ~0.5 at the grasp
    monkeypatch.setenv("ENRICH_SETTINGS", str(config))
    report = materialize_dataset(build_definitions(), settings, root, "+key:consistency", EPISODES)
    assert report.ok, (report.failed_runs, report.failures)
    catalog = Catalog(settings.catalog_dir, settings.duckdb_path)

    rows = catalog.read("consistency")
    assert sorted(rows["episode_index"].unique()) == EPISODES
    assert set(rows["tech_check"]) == set(RULES)  # every check found something to compare
    # a rule's verdict per episode is exactly "no row of that check flagged"
    flagged = rows.group_by("episode_index", "tech_check").agg(pl.col("tech_flagged").any())
    expected = {(e, c): not f for e, c, f in flagged.iter_rows()}
    verdicts = _verdicts(catalog)
    assert verdicts == expected
    # the stub's "grasp the ..." subtask spans the frames where the sample's gripper closes
    assert all(verdicts[(e, GRASP_GRIPPER)] for e in EPISODES)
    grasps = rows.filter(pl.col("tech_check") == GRASP_GRIPPER)
    assert grasps.height >= len(EPISODES) and grasps["tech_subject"].str.contains("grasp").all()

    evaluations = _evaluations(settings)
    assert set(evaluations) == set(RULES)
    for rule, evaluation in evaluations.items():
        failing = [e for e in EPISODES if not verdicts[(e, rule)]]
        assert evaluation.passed == (not failing), rule
        assert evaluation.severity == dg.AssetCheckSeverity.WARN
        assert evaluation.metadata["episodes_checked"].value == len(EPISODES)
        assert evaluation.metadata["episodes_failing"].value == len(failing)

    # planted disagreement: no gripper change is that large, so every grasp is flagged
    _gripper(config, 5.0)
    again = materialize_dataset(build_definitions(), settings, root, "key:consistency", EPISODES)
    assert again.ok, (again.failed_runs, again.failures)
    verdicts = _verdicts(catalog)
    assert not any(verdicts[(e, GRASP_GRIPPER)] for e in EPISODES)
    evaluation = _evaluations(settings)[GRASP_GRIPPER]
    assert not evaluation.passed and evaluation.metadata["episodes_failing"].value == 2
    message = evaluation.metadata["failing"].value[f"{again.dataset_id}:ep000000"]
    assert "grasp subtask" in message and "observation.state[3] changes by" in message
    assert "(min 5.0)" in message
    status = dataset_status(settings, root)
    assert f"WARN consistency.{GRASP_GRIPPER} episode 0: grasp subtask" in status

    # the validation report's section counts the same rows
    made = materialize_dataset(build_definitions(), settings, root, "key:validation_report")
    assert made.ok, (made.failed_runs, made.failures)
    [path] = (root / "meta" / "enrich_reports").glob("*/validation_report.json")
    section = json.loads(path.read_text())["consistency"]
    rows = catalog.read("consistency")
    for rule in RULES:
        of_rule = rows.filter(pl.col("tech_check") == rule)
        counted = section["checks"][rule]
        assert (counted["compared"], counted["flagged"]) == (
            of_rule.height,
            int(of_rule["tech_flagged"].sum()),
        )
    assert section["checks"][GRASP_GRIPPER]["flagged_episodes"] == EPISODES

    # no gripper channel named: the grasp check compares nothing, and says so
    config.write_text("")
    last = materialize_dataset(build_definitions(), settings, root, "key:consistency", EPISODES)
    assert last.ok, (last.failed_runs, last.failures)
    assert GRASP_GRIPPER not in set(catalog.read("consistency")["tech_check"])  # rows replaced
    assert not any(rule == GRASP_GRIPPER for _, rule in _verdicts(catalog))
    evaluation = _evaluations(settings)[GRASP_GRIPPER]
    assert evaluation.metadata["episodes_checked"].value == 0
    assert evaluation.description == "no episode of the run had anything for this rule"
