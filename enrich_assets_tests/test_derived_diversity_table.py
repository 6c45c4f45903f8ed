"""The ai_episode_diversity rows: diversity, percentile, the repeat partner, the range check."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from enrich_assets.enrich.derived.diversity_table import diversity_table, state_action


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def test_state_and_action_side_by_side_or_none() -> None:
    frames = pa.table({"observation.state": [[1.0, 2.0], [3.0, 4.0]], "action": [5.0, 6.0]})
    np.testing.assert_array_equal(state_action(frames), [[1, 2, 5], [3, 4, 6]])
    assert state_action(pa.table({"action": [1.0]})) is None


def walk(seed: int, steps: int = 60) -> np.ndarray:
    return np.cumsum(np.random.default_rng(seed).standard_normal((steps, 3)), axis=0)


def test_rows_per_episode_with_the_repeat_partner() -> None:
    rng = np.random.default_rng(0)
    episodes = np.repeat([3, 5, 8, 9], 6)
    x = _unit(rng.standard_normal((24, 16)))
    x[6:12] = x[0]  # episode 5: one keyframe six times, no diversity
    x[18:24] = x[0:6]  # episode 9 looks like episode 3
    walks = [walk(1), walk(2), walk(3), walk(1)[::2]]  # episode 9 re-does episode 3, faster
    table = diversity_table(x, episodes, walks)
    frame = table.frame
    assert frame["episode_index"].to_list() == [3, 5, 8, 9]
    assert frame["ai_diversity"][1] == pytest.approx(0.0, abs=1e-5)
    assert frame["ai_diversity_percentile"][1] == 0.0
    brute = 1 - (x[:6] @ x[:6].T)[~np.eye(6, dtype=bool)].mean()
    assert frame["ai_diversity"][0] == pytest.approx(brute, abs=1e-5)
    assert frame["ai_repeat_of_episode"][0] == 9 and frame["ai_repeat_of_episode"][3] == 3
    assert table.metadata == {
        "episodes": 4,
        "mean_diversity": round(float(frame["ai_diversity"].mean()), 4),
        "trajectories": True,
    }
    assert table.failure == ""


def test_without_trajectories_repeats_are_null() -> None:
    x = _unit(np.random.default_rng(1).standard_normal((6, 8)))
    table = diversity_table(x, np.repeat([0, 1, 2], 2), None)
    assert table.frame["ai_repeat_of_episode"].null_count() == 3
    assert table.frame["ai_repeat_similarity"].null_count() == 3
    assert table.metadata["trajectories"] is False


def test_single_keyframe_episode_has_no_diversity() -> None:
    x = _unit(np.random.default_rng(2).standard_normal((3, 8)))
    table = diversity_table(x, np.array([0, 1, 1]), None)
    assert np.isnan(table.frame["ai_diversity"][0])
    assert table.frame["ai_diversity"][1] > 0.5 and table.metadata["episodes"] == 2
