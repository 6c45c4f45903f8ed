"""Frame sampling/windowing and captions: near-duplicates reuse, tags from a lexicon."""

from __future__ import annotations

import numpy as np
import pytest

from enrich_assets.enrich.episode.keyframes import select_by_fps
from enrich_assets.enrich.language.captions import caption_keyframes, caption_tags
from enrich_assets.enrich.language.frames import (
    cached,
    split_windows,
    window_around,
)
from enrich_assets.enrich.language.settings import LanguageSettings
from enrich_assets.models.vlm.types import VLMReply
from enrich_assets_tests.language_scripted_vlm import CAPTION, ScriptedVLM, answer

TS = (np.arange(300) / 30).astype(np.float32)  # 10 s at 30 fps


def test_sampling_windows_and_windows_around():
    assert select_by_fps(TS, 1.0) == [*range(0, 300, 30), 299]
    assert select_by_fps(TS, 0.25) == [0, 120, 240, 299]
    windows = split_windows(list(range(70)), 32)
    assert [len(w) for w in windows] == [24, 23, 23] and sum(windows, []) == list(range(70))
    assert window_around(TS, 150, 2.0, 4) == [120, 140, 160, 180]
    assert window_around(TS, 0, 2.0, 4) == [0, 10, 30]  # clipped at the start, distinct


def test_cached_fetch_decodes_each_frame_once():
    calls = []

    def fetch(camera, positions):
        calls.append((camera, list(positions)))
        return [np.full((2, 2, 3), p, np.uint8) for p in positions]

    shared = cached(fetch)
    shared("a", [1, 2])
    images = shared("a", [2, 3, 1])
    assert calls == [("a", [1, 2]), ("a", [3])]
    assert [int(im[0, 0, 0]) for im in images] == [2, 3, 1]


def frame_fetch(camera, positions):
    return [np.zeros((28, 28, 3), np.uint8) for _ in positions]


def test_near_duplicates_reuse_their_originals_caption_without_a_call():
    client = ScriptedVLM()
    keys = [("cam", 0), ("cam", 30), ("cam", 60), ("wrist", 0)]
    dup_of = {("cam", 30): ("cam", 0), ("cam", 60): ("cam", 30)}  # a chain
    captions = caption_keyframes(keys, frame_fetch, "pick", client, LanguageSettings(), dup_of)
    assert len(client.requests) == 2
    assert [c.reused_from for c in captions] == [None, ("cam", 0), ("cam", 0), None]
    assert all(c.text == CAPTION and c.model == "scripted-peer" for c in captions)


def test_a_failed_caption_is_recorded_not_invented():
    def failing(request):
        return (
            VLMReply(model="m", text="", error="timeout")
            if request.kind == "caption"
            else answer(request)
        )

    captions = caption_keyframes(
        [("cam", 0)], frame_fetch, "", ScriptedVLM(failing), LanguageSettings()
    )
    assert captions[0].text is None and captions[0].error == "timeout"


def test_duplicate_of_a_missing_keyframe_is_an_error():
    with pytest.raises(ValueError, match="not a keyframe"):
        caption_keyframes(
            [("cam", 3)],
            frame_fetch,
            "",
            ScriptedVLM(),
            LanguageSettings(),
            {("cam", 3): ("cam", 9)},
        )


def test_caption_tags():
    tags = caption_tags(
        "The robot's hand grasped two yellow Bottles next to a cutting board and boxes; "
        "it is lifting one and will place it on the table."
    )
    assert tags.objects == ("bottle", "cutting_board", "box", "table")
    assert tags.actions == ("grasp", "lift", "place")
    assert caption_tags("Nothing relevant here.").objects == ()
