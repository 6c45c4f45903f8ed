"""Staged or written VQA rows in this project's former answer shapes (a `type` field,
coordinates normalised to [0, 1]) turned into lerobot's, in pixels of the decoded frame."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace

from enrich_assets.datasets.lerobot.language_format import LanguageRow
from enrich_assets.enrich.language.vqa_answer import from_normalised


def lerobot_vqa_row(row: LanguageRow, frame_sizes: Mapping[str, tuple[int, int]]) -> LanguageRow:
    """`row` with its answer in lerobot's shape if it is a VQA answer in the former one;
    otherwise `row` itself (so applying it twice changes nothing). `frame_sizes` maps each
    camera to its decoded (width, height)."""
    if row.style != "vqa" or row.role != "assistant" or row.content is None:
        return row
    try:
        answer = json.loads(row.content)
    except json.JSONDecodeError:
        return row
    if not isinstance(answer, dict) or "type" not in answer:
        return row
    if row.camera not in frame_sizes:
        raise ValueError(
            f"VQA row at {row.timestamp} names camera {row.camera!r}, not in the dataset"
        )
    new = from_normalised(answer, *frame_sizes[row.camera])
    return row if new is None else replace(row, content=json.dumps(new, sort_keys=True))
