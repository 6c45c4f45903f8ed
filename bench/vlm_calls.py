"""VLM calls and tokens per 30-s episode: captions + plan + interjections + vqa, default settings.

Runs our modules against the scripted VLM peer (answers in the documented shapes; token
counts estimated: ~4 characters per text token, images as Qwen2-VL counts them, one
token per 28x28 patch, frames sent at 448x336). The baseline is lerobot-annotate at its
own defaults on the same episode and the same subtasks, counted from its config values
(below); the issue quotes it at ~50 calls.

    .venv/bin/python bench/vlm_calls.py [--cameras 2] [--seconds 30] [--near-dups 0]
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from enrich_assets.enrich.episode.keyframes import select_by_fps  # noqa: E402
from enrich_assets.enrich.language.captions import caption_keyframes  # noqa: E402
from enrich_assets.enrich.language.interjections import run_interjections  # noqa: E402
from enrich_assets.enrich.language.module import EpisodeInput  # noqa: E402
from enrich_assets.enrich.language.plan import run_plan  # noqa: E402
from enrich_assets.enrich.language.settings import LanguageSettings  # noqa: E402
from enrich_assets.enrich.language.validator import blocking, validate_episode  # noqa: E402
from enrich_assets.enrich.language.vqa import run_vqa  # noqa: E402
from enrich_assets_tests.language_scripted_vlm import (  # noqa: E402
    ScriptedVLM,
    estimate_input_tokens,
)

FPS = 30
KEYFRAMES_PER_CAMERA = 5  # the keyframe policy's default (mode=count, count=5)
ISSUE_BASELINE_CALLS = 50

# lerobot-annotate defaults (src/lerobot/annotations/steerable_pipeline/config.py)
LEROBOT_VQA_HZ = 1.0  # VqaConfig.vqa_emission_hz, K=1: one call per tick per camera
LEROBOT_PLAN_FPS, LEROBOT_FRAMES_PER_PROMPT = 2.0, 60  # describe + segment per window
LEROBOT_MAX_INTERJECTIONS = 3


def lerobot_calls(timestamps: np.ndarray, n_subtasks: int, n_boundaries: int, cameras: int):
    """Calls lerobot-annotate makes at its defaults, by module, for this episode."""
    windows = -(-len(select_by_fps(timestamps, LEROBOT_PLAN_FPS)) // LEROBOT_FRAMES_PER_PROMPT)
    return {
        # describe + segment per window, task rephrasings, one memory call per boundary
        "plan": 2 * windows + 1 + max(n_subtasks - 1, 0),
        # initial speech + one call per interjection
        "interjections": 1 + min(LEROBOT_MAX_INTERJECTIONS, n_boundaries),
        "vqa": len(select_by_fps(timestamps, LEROBOT_VQA_HZ)) * cameras,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--cameras", type=int, default=1)
    parser.add_argument("--near-dups", type=int, default=0, help="keyframes flagged per camera")
    args = parser.parse_args()

    timestamps = (np.arange(int(args.seconds * FPS)) / FPS).astype(np.float32)
    cameras = [f"observation.images.cam_{i}" for i in range(args.cameras)]
    settings, client = LanguageSettings(), ScriptedVLM()

    def fetch(camera, positions):
        return [np.zeros((336, 448, 3), np.uint8) for _ in positions]

    picks = np.linspace(0, len(timestamps) - 1, KEYFRAMES_PER_CAMERA).round().astype(int)
    keys = [(c, int(p)) for c in cameras for p in picks]
    dup_of = {
        (c, int(picks[i + 1])): (c, int(picks[i])) for c in cameras for i in range(args.near_dups)
    }
    task = "Pick up the yellow bottle on the table."

    caption_keyframes(keys, fetch, task, client, settings, dup_of)
    episode = EpisodeInput(0, timestamps, fetch, cameras, task, settings)
    plan = run_plan(episode, client)
    planned = replace(episode, task=plan.task, subtasks=plan.subtasks)
    inter = run_interjections(planned, client)
    vqa = run_vqa(planned, client)
    rows = {"plan": plan.rows, "interjections": inter.rows, "vqa": vqa.rows}
    errors = blocking(validate_episode(rows, timestamps, cameras))

    calls, images, tokens = Counter(), Counter(), Counter()
    for r in client.requests:
        calls[r.kind] += 1
        images[r.kind] += len(r.images)
        tokens[r.kind] += estimate_input_tokens(r)

    print(
        f"episode: {args.seconds:.0f} s at {FPS} fps, {args.cameras} camera(s), "
        f"{len(keys)} keyframes ({len(dup_of)} near-duplicates), {len(plan.subtasks)} subtasks"
    )
    print(f"{'kind':<16}{'calls':>6}{'images':>8}{'input tokens':>14}")
    for kind in calls:
        print(f"{kind:<16}{calls[kind]:>6}{images[kind]:>8}{tokens[kind]:>14}")
    total = sum(calls.values())
    print(f"{'total':<16}{total:>6}{sum(images.values()):>8}{sum(tokens.values()):>14}")

    n_boundaries = len(plan.subtasks) - 1
    base = lerobot_calls(timestamps, len(plan.subtasks), n_boundaries, args.cameras)
    base_total = sum(base.values())
    ours_without_captions = total - calls["caption"]
    print(f"\nlerobot-annotate defaults (plan + interjections + vqa): {base} = {base_total}")
    print(
        f"ours incl. captions: {total} calls = {total / base_total:.2f}x lerobot's {base_total}, "
        f"{total / ISSUE_BASELINE_CALLS:.2f}x the issue's ~{ISSUE_BASELINE_CALLS}"
    )
    print(
        f"ours without captions: {ours_without_captions} calls "
        f"= {ours_without_captions / base_total:.2f}x lerobot's {base_total}"
    )
    print(
        f"outputs: {sum(r.style == 'subtask' for r in plan.rows)} subtasks, "
        f"{sum(r.style == 'plan' for r in plan.rows)} plans, "
        f"{sum(r.style == 'memory' for r in plan.rows)} memories, "
        f"{sum(r.style == 'task_aug' for r in plan.rows)} task_aug, "
        f"{sum(r.style == 'interjection' for r in inter.rows)} interjections + speech, "
        f"{len(vqa.rows) // 2} vqa pairs; validator errors: {len(errors)}"
    )
    print(f"target <= 20 calls: {'met' if total <= 20 else 'NOT met'}")


if __name__ == "__main__":
    main()
