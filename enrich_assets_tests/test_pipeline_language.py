"""The language assets end to end: captions, staged annotations, the ledger and the writeback,
through a real Dagster instance and the local stub VLM over real HTTP."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import polars as pl
import pyarrow.parquet as pq
import pytest
import yaml

from enrich_assets.app.run_driver import materialize_dataset
from enrich_assets.definitions import build_definitions
from enrich_assets.models.vlm.stub_server import LocalStubServer
from enrich_assets.store.catalog import Catalog
from enrich_assets_tests.conftest import reload_language_assets

LANGUAGE = "key:ai_caption+ or key:language_plan+ or key:language_vqa+"
UPSTREAM = "key:episode_manifest or key:keyframes or key:ai_embedding"


def _data_tables(root: Path) -> dict[Path, object]:
    return {
        p.relative_to(root): pq.read_table(p) for p in sorted((root / "data").rglob("*.parquet"))
    }


def test_language_assets_stage_write_back_and_cache(settings, sample_root: Path, tmp_path: Path):
    root = Path(shutil.copytree(sample_root, tmp_path / "sample"))
    before = _data_tables(root)
    defs = build_definitions()
    report = materialize_dataset(defs, settings, root, select=f"{UPSTREAM} or {LANGUAGE}")
    assert report.ok, (report.failed_runs, report.failures)
    catalog = Catalog(settings.catalog_dir, settings.duckdb_path)

    captions = catalog.read("ai_caption")
    keyframes = catalog.read("keyframes")
    assert captions.height == keyframes.height > 0
    assert all(m.endswith(":local-stub") for m in captions["ai_model_id"])
    assert captions["ai_caption"].null_count() == 0
    tags = catalog.read("ai_caption_tags")
    assert tags.height == captions.height and any(len(o) > 0 for o in tags["ai_caption_objects"])

    episodes = sorted(keyframes["episode_index"].unique())
    for ep in episodes:
        for module in ("plan", "interjections", "vqa"):
            assert (root / ".annotate_staging" / f"episode_{ep:06d}" / f"{module}.jsonl").is_file()
    plan = catalog.read("language_plan")
    assert {"subtask", "plan", "task_aug"} <= set(plan["ai_language_style"])
    assert set(catalog.read("language_vqa")["ai_language_style"]) == {"vqa"}

    after = _data_tables(root)
    assert after.keys() == before.keys()
    for path, table in after.items():
        original = before[path]
        assert {"language_persistent", "language_events"} <= set(table.column_names)
        for name in original.column_names:
            assert table.column(name).equals(original.column(name)), (path, name)
        persistent = table.column("language_persistent").to_pylist()
        assert all(len(rows) > 0 for rows in persistent)

    ledger = catalog.read("vlm_ledger")
    first_run = ledger.height
    assert (
        first_run > 0
        and "ok" in set(ledger["status"])
        and "quarantined" not in set(ledger["status"])
    )
    assert {"ai_caption", "language_plan", "language_interjections", "language_vqa"} == set(
        ledger["asset"]
    )

    # the dry-run estimate issues the requests the run issued (captions: at most, as
    # near-duplicate keyframes reuse their original's caption in the run)
    from enrich_assets.datasets.lerobot.reader import open_lerobot
    from enrich_assets.defs.episode import keyframe_policy
    from enrich_assets.defs.vlm_resource import SETTINGS
    from enrich_assets.enrich.language.estimate import MODULES, estimate_dataset

    refs = open_lerobot(root, "x").episodes()
    work = estimate_dataset(refs, MODULES, SETTINGS, keyframe_policy()).work
    made = dict(ledger.group_by("kind").len().iter_rows())
    assert {k: w.requests for k, w in work.items() if k != "caption"} == {
        k: n for k, n in made.items() if k != "caption"
    }
    assert made["caption"] <= work["caption"].requests == captions.height

    with duckdb.connect(str(settings.duckdb_path), read_only=True) as conn:
        weekly = conn.execute("SELECT sum(requests), sum(cost_usd) FROM vlm_cost_weekly").fetchone()
    assert weekly == (first_run, pytest.approx(ledger["cost_usd"].sum()))

    again = materialize_dataset(build_definitions(), settings, root, select=LANGUAGE)
    assert again.ok, (again.failed_runs, again.failures)
    rerun = catalog.read("vlm_ledger")
    assert rerun.height == 2 * first_run  # append-only: the first run's rows are all kept
    first_runs = pl.col("run_id").is_in(ledger["run_id"].unique().to_list())
    kept = rerun.filter(first_runs)
    assert kept.height == first_run and sorted(kept["status"]) == sorted(ledger["status"])
    assert kept["input_tokens"].sum() == ledger["input_tokens"].sum()  # not rewritten as $0
    new = rerun.filter(~first_runs)
    assert new.height == first_run
    assert set(new["status"]) == {"cached"}  # every call answered from the cache
    assert new["cost_usd"].sum() == 0


def test_budget_cap_stops_the_run_and_fails_episodes_clearly(
    settings, sample_root: Path, tmp_path: Path, monkeypatch
):
    """A priced model behind a local OpenAI-compatible server: the run's cap is reached after a
    few captions; the episodes it stopped fail naming the budget, write no rows, are not
    re-run (a fresh run would spend a fresh budget), and every call made is in the ledger."""
    root = Path(shutil.copytree(sample_root, tmp_path / "sample"))
    assert materialize_dataset(build_definitions(), settings, root, select=UPSTREAM).ok
    with LocalStubServer("gpt-4o") as server:
        config = {"backend": "openai", "model": "gpt-4o", "base_url": server.base_url}
        path = tmp_path / "settings.yaml"
        path.write_text(yaml.safe_dump({"vlm": {**config, "budget_usd": 0.03}}))
        monkeypatch.setenv("ENRICH_SETTINGS", str(path))
        report = materialize_dataset(build_definitions(), settings, root, "key:ai_caption")
    assert not report.ok
    stopped = [(ep, msg) for asset, ep, status, msg in report.failures if asset == "ai_caption"]
    assert stopped and all("BudgetExceeded: VLM budget of $0.0300" in m for _, m in stopped)
    assert report.runs == 1  # no re-run of budget stops
    catalog = Catalog(settings.catalog_dir, settings.duckdb_path)
    captioned = (
        set(catalog.read("ai_caption")["episode_index"]) if catalog.has("ai_caption") else set()
    )
    assert captioned.isdisjoint(ep for ep, _ in stopped)
    ledger = catalog.read("vlm_ledger")
    made = ledger.filter(pl.col("status") == "ok")
    assert 0 < made.height == server.request_count
    assert set(ledger["status"]) == {"ok", "refused"}  # calls the budget refused: rows too
    assert (ledger.filter(pl.col("status") == "refused")["cost_usd"] == 0).all()


def _code_versions() -> dict[str, str]:
    reload_language_assets()
    graph = build_definitions().resolve_asset_graph()
    return {
        name: graph.get(key).code_version or ""
        for key in graph.get_all_asset_keys()
        if (name := key.to_user_string()) in {"ai_caption", "language_vqa", "tech_quality"}
    }


def test_changing_a_prompt_makes_only_its_assets_stale(tmp_path: Path, monkeypatch):
    from enrich_assets.infra.prompts import PROMPTS_DIR

    prompts = Path(shutil.copytree(PROMPTS_DIR, tmp_path / "prompts"))
    monkeypatch.setenv("ENRICH_PROMPTS_DIR", str(prompts))
    base = _code_versions()
    caption = prompts / "caption.md"
    caption.write_text(caption.read_text() + "\nMention the gripper.\n")
    changed = _code_versions()
    monkeypatch.delenv("ENRICH_PROMPTS_DIR")
    _code_versions()  # leave the module as the other tests expect it
    assert changed["ai_caption"] != base["ai_caption"]
    assert changed["language_vqa"] == base["language_vqa"]
    assert changed["tech_quality"] == base["tech_quality"]


def test_prompt_edit_requests_a_backfill_of_exactly_that_assets_partitions(
    tmp_path: Path, monkeypatch
):
    """Edit caption.md, evaluate the automation conditions: the materialized ai_caption
    partitions are requested (once), nothing else: not other assets, not missing partitions."""
    import dagster as dg

    from enrich_assets.defs.partitions import episodes
    from enrich_assets.infra.partition_keys import partition_key
    from enrich_assets.infra.prompts import PROMPTS_DIR

    prompts = Path(shutil.copytree(PROMPTS_DIR, tmp_path / "prompts"))
    monkeypatch.setenv("ENRICH_PROMPTS_DIR", str(prompts))
    instance = dg.DagsterInstance.ephemeral()
    keys = [partition_key("ds", i) for i in range(3)]
    instance.add_dynamic_partitions(episodes.name, keys)
    for asset in ("ai_caption", "language_vqa", "tech_quality"):
        for key in keys[:2]:  # the third episode was never materialized
            instance.report_runless_asset_event(dg.AssetMaterialization(asset, partition=key))

    def evaluate(cursor=None):  # noqa: ANN001, ANN202
        reload_language_assets()
        return dg.evaluate_automation_conditions(build_definitions(), instance, cursor=cursor)

    first = evaluate()
    assert first.total_requested == 0
    caption = prompts / "caption.md"
    caption.write_text(caption.read_text() + "\nMention the gripper.\n")
    edited = evaluate(first.cursor)
    assert edited.get_requested_partitions(dg.AssetKey("ai_caption")) == set(keys[:2])
    assert edited.total_requested == 2
    assert evaluate(edited.cursor).total_requested == 0  # requested once, not every tick
    monkeypatch.delenv("ENRICH_PROMPTS_DIR")
    reload_language_assets()


@pytest.fixture(autouse=True)
def _no_settings_file(monkeypatch, tmp_path: Path):
    """The VLM settings come from the default (local stub), not a developer's file."""
    monkeypatch.setenv("ENRICH_SETTINGS", str(tmp_path / "none.yaml"))
