"""Planning an index run: keep ids of indexed keyframes, number new ones, drop gone ones,
start over on request or when the config differs; the plan survives its manifest."""

from __future__ import annotations

import numpy as np
import polars as pl

from enrich_assets.enrich.derived.index_plan import plan_index, plan_metadata, saved_rows


def keyframes(episodes: range, cameras: tuple[str, ...] = ("top", "front")) -> pl.DataFrame:
    return pl.DataFrame(
        [(e, c, f) for e in episodes for c in cameras for f in (0, 7)],
        schema=["episode_index", "camera", "frame_index"],
        orient="row",
    )


def roundtrip(plan) -> dict[str, np.ndarray]:  # noqa: ANN001
    """The manifest as np.load gives it back."""
    return {k: np.asarray(v) for k, v in plan.manifest().items()}


def test_first_plan_numbers_keyframes_in_key_order():
    plan = plan_index(None, keyframes(range(2)).reverse(), "c1", rebuild=False)
    assert plan.rebuild == "no saved index" and plan.changed
    assert plan.new["id"].to_list() == list(range(8)) and plan.gone.size == 0
    assert plan.new.sort("episode_index", "camera", "frame_index").equals(plan.new)
    assert saved_rows(roundtrip(plan)).equals(plan.rows)


def test_growth_keeps_ids_numbers_new_rows_and_drops_gone_ones():
    first = plan_index(None, keyframes(range(3)), "c1", rebuild=False)
    current = keyframes(range(1, 5))  # episode 0 gone, 3 and 4 new
    plan = plan_index(roundtrip(first), current, "c1", rebuild=False)
    assert plan.rebuild == ""
    assert (
        sorted(plan.gone.tolist())
        == first.rows.filter(pl.col("episode_index") == 0)["id"].to_list()
    )
    assert plan.new["id"].to_list() == list(range(12, 20))
    assert plan.new["episode_index"].unique().sort().to_list() == [3, 4]
    kept = first.rows.filter(pl.col("episode_index") > 0)
    assert plan.rows.filter(pl.col("id") < 12).equals(kept)
    assert plan.rows.height == current.height

    again = plan_index(roundtrip(plan), current, "c1", rebuild=False)
    assert not again.changed and again.rows.equals(plan.rows)


def test_config_change_or_request_starts_over():
    saved = roundtrip(plan_index(None, keyframes(range(2)), "c1", rebuild=False))
    current = keyframes(range(3))
    changed = plan_index(saved, current, "c2", rebuild=False)
    assert changed.rebuild.startswith("config changed") and changed.gone.size == 0
    assert changed.new["id"].to_list() == list(range(12))
    requested = plan_index(saved, current, "c1", rebuild=True)
    assert requested.rebuild == "requested" and requested.new.height == 12


def test_plan_metadata_counts_what_the_run_did(tmp_path):  # noqa: ANN001
    first = plan_index(None, keyframes(range(3)), "c1", rebuild=False)
    plan = plan_index(roundtrip(first), keyframes(range(1, 5)), "c1", rebuild=False)
    assert plan_metadata(plan, "added_rows", tmp_path / "search.npz") == {
        "added_rows": 8,
        "removed_rows": 4,
        "indexed_rows": 16,
        "rebuilt": None,
        "saved": True,
        "manifest": str(tmp_path / "search.npz"),
    }
    assert plan_metadata(first, "searched_rows", tmp_path)["rebuilt"] == "no saved index"
