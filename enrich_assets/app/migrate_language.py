"""`enrich-assets migrate-language PATH`: a dataset staged or written with the former VQA
answer shapes, rewritten in lerobot's (staging files and the written language columns).

Each staging file and each data file is replaced atomically and only if something in it
changed, so a second run changes nothing; a data file that cannot be read is named and
left as it was, the others are still migrated.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from enrich_assets.datasets.lerobot.language_staging import rewrite_staged
from enrich_assets.datasets.lerobot.language_writer import ShardError, rewrite_language_rows
from enrich_assets.datasets.lerobot.reader import open_lerobot
from enrich_assets.datasets.video import probe
from enrich_assets.enrich.language.migrate import lerobot_vqa_row


@dataclass
class MigrationReport:
    staging_files: int = 0  # replaced
    data_files: list[str] = field(default_factory=list)  # rewritten
    unchanged: int = 0  # data files already in lerobot's shapes (or without language)
    damaged: dict[str, str] = field(default_factory=dict)


def decoded_frame_sizes(root: Path) -> dict[str, tuple[int, int]]:
    """Each camera's (width, height) as its video decodes, from its first episode's file."""
    sizes: dict[str, tuple[int, int]] = {}
    for ref in open_lerobot(root, "migrate").episodes():
        for camera, video in ref.frames.items():
            if camera not in sizes and video.path.is_file():
                info = probe(video.path)
                sizes[camera] = (info.width, info.height)
    return sizes


def migrate_language(root: Path) -> MigrationReport:
    fix = partial(lerobot_vqa_row, frame_sizes=decoded_frame_sizes(root))
    report = MigrationReport(staging_files=rewrite_staged(root, fix))
    for data_file in sorted((root / "data").rglob("*.parquet")):
        name = str(data_file.relative_to(root))
        try:
            if rewrite_language_rows(root, data_file, fix):
                report.data_files.append(name)
            else:
                report.unchanged += 1
        except ShardError as exc:
            report.damaged[name] = str(exc)[:300]
    return report
