"""`enrich-assets doctor`: hand a dataset path (or URL) to the first format inspector that
claims it. A new format adds its `Inspector` to `INSPECTORS`."""

from __future__ import annotations

from pathlib import Path

from enrich_assets.datasets.diagnosis import Diagnosis, Finding, Inspector
from enrich_assets.datasets.lerobot.doctor import LEROBOT
from enrich_assets.datasets.reader_doctor import READERS

INSPECTORS: tuple[Inspector, ...] = (LEROBOT, READERS)


def diagnose(target: str, layout: Path | None = None) -> Diagnosis:
    for inspector in INSPECTORS:
        if inspector.claims(target):
            return inspector.inspect(target, layout)
    known = ", ".join(i.name for i in INSPECTORS)
    exists = Path(target).exists()
    problem = "is not a dataset of a known format" if exists else "does not exist"
    return Diagnosis(
        target,
        "unknown",
        findings=[
            Finding(
                "error",
                "unknown-format",
                f"{target} {problem}",
                f"point doctor at a dataset root ({known})",
            )
        ],
    )
