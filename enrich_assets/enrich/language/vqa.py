"""The `vqa` module: one grounded question/answer pair per sampled frame per camera.

Questions are batched: one call carries a window of frames (at most
`max_frames_per_call`) and asks for one pair per frame, the answer types cycling through
`vqa_types`. Answers are in lerobot's shapes (enrich/language/vqa_answer.py), coordinates in
pixels of the image sent; frames shrunk before sending (`vqa_max_side`) get their answers
scaled back to the pixels of the frame as decoded. Answers that fit no shape, or point off
the image, are dropped here (and reported), so staged rows pass the validator.
"""

from __future__ import annotations

import json

import numpy as np

from enrich_assets.datasets.lerobot.language_format import LanguageRow
from enrich_assets.enrich.episode.keyframes import select_by_fps
from enrich_assets.enrich.language.frames import fit_within, frames_line, split_windows
from enrich_assets.enrich.language.module import (
    EpisodeInput,
    LanguageModule,
    ModuleOutput,
    PlanInput,
)
from enrich_assets.enrich.language.request import prompt_request
from enrich_assets.enrich.language.settings import SAMPLING_KEYS, LanguageSettings
from enrich_assets.enrich.language.vqa_answer import (
    answer_inside,
    scale_answer,
    vqa_answer_shape,
)
from enrich_assets.enrich.rules import Severity, outcome
from enrich_assets.models.vlm.types import VLMClient, VLMReply, VLMRequest


def vqa_request(
    images: list[np.ndarray],
    window: list[int],
    types: list[str],
    camera: str,
    task: str,
    settings: LanguageSettings,
) -> VLMRequest:
    return prompt_request(
        "vqa",
        images,
        settings,
        task=task or "(none)",
        camera=camera,
        frames=frames_line(window),
        size=f"{images[0].shape[1]}x{images[0].shape[0]}" if images else "unknown",
        count=len(window),
        types=", ".join(types),
    )


def _pairs(reply: VLMReply) -> list:
    items = reply.parsed.get("qa") if isinstance(reply.parsed, dict) else None
    return items if isinstance(items, list) and not reply.error else []


def run_vqa(episode: EpisodeInput, client: VLMClient) -> ModuleOutput:
    """A (question, answer) row pair per sampled frame and camera (event style `vqa`)."""
    timestamps, settings = episode.timestamps, episode.settings
    positions = select_by_fps(timestamps, settings.vqa_hz)
    kinds = settings.vqa_types
    # (camera, frame positions, decoded (w, h), sent (w, h)) per call
    jobs: list[tuple[str, list[int], tuple[int, int], tuple[int, int]]] = []
    requests: list[VLMRequest] = []
    for c, camera in enumerate(episode.cameras):
        offset = 0
        for window in split_windows(positions, settings.max_frames_per_call):
            # cameras start at different types so one frame gets different questions
            types = [kinds[(c + offset + k) % len(kinds)] for k in range(len(window))]
            offset += len(window)
            decoded = episode.fetch(camera, window)
            sent = [fit_within(image, settings.vqa_max_side) for image in decoded]
            (h, w), (sh, sw) = decoded[0].shape[:2], sent[0].shape[:2]
            jobs.append((camera, window, (w, h), (sw, sh)))
            requests.append(vqa_request(sent, window, types, camera, episode.task, settings))
    replies = client.complete_many(requests)

    rows: list[LanguageRow] = []
    failures: list[str] = []
    for (camera, window, (w, h), (sw, sh)), reply in zip(jobs, replies, strict=True):
        pairs = _pairs(reply)
        if len(pairs) != len(window):
            got = f"{len(pairs)} pairs for {len(window)} frames"
            failures.append(f"{camera} frames {window[0]}-{window[-1]}: {reply.error or got}")
        for position, pair in zip(window, pairs, strict=False):
            question = pair.get("question") if isinstance(pair, dict) else None
            answer = pair.get("answer") if isinstance(pair, dict) else None
            if (
                not isinstance(question, str)
                or not question.strip()
                or vqa_answer_shape(answer) is None
                or not answer_inside(answer, sw, sh)
            ):
                failures.append(f"{camera} frame {position}: unusable pair {pair!r}"[:200])
                continue
            t = float(timestamps[position])
            content = json.dumps(scale_answer(answer, w / sw, h / sh), sort_keys=True)
            rows += [  # the question before its answer, as lerobot reads them
                LanguageRow("user", question.strip(), "vqa", t, camera),
                LanguageRow("assistant", content, "vqa", t, camera),
            ]
    return ModuleOutput(rows, [outcome(VQA.calls_rule, failures, Severity.WARN)], replies)


VQA = LanguageModule(
    name="vqa",
    description="Question/answer pairs per sampled frame and camera (boxes, points, counts, ...).",
    prompts=("vqa",),
    settings_keys=(*SAMPLING_KEYS, "vqa_hz", "vqa_types", "vqa_max_side", "max_frames_per_call"),
    styles=frozenset({"vqa"}),
    run=run_vqa,
    reads_plan=PlanInput.TASK,
)
