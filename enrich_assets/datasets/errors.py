"""Errors that name the file and the problem, so a user can fix their dataset."""

from __future__ import annotations

from pathlib import Path


class DatasetError(Exception):
    """The dataset as a whole cannot be read (bad info.json, unknown format, ...)."""

    def __init__(self, path: Path | str, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


class EpisodeError(DatasetError):
    """One episode cannot be read; the others of the dataset still can."""
