"""Open any dataset location (a path or a URL): the one place that knows which formats exist.

A format is a `DatasetFormat` in `FORMATS`; the first whose `detect` accepts the location
opens it. To add one (RLDS, a SQL table, ...), write its reader in `datasets/<format>/` and
add an entry to `FORMATS` (see docs/architecture.md, "A new dataset format").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from enrich_assets.datasets.episode import EpisodeRef
from enrich_assets.datasets.errors import DatasetError
from enrich_assets.datasets.hdf5.reader import HDF5Reader, is_hdf5_dataset
from enrich_assets.datasets.hdf5.reader import change_signature as hdf5_signature
from enrich_assets.datasets.lerobot.reader import is_lerobot_root, metadata_signature, open_lerobot
from enrich_assets.datasets.rlds.reader import RLDSReader, is_rlds_builder
from enrich_assets.datasets.rlds.reader import change_signature as rlds_signature
from enrich_assets.datasets.sql.reader import SqlReader
from enrich_assets.datasets.sql.reader import change_signature as sql_signature
from enrich_assets.datasets.sql.source import is_sql_url, normalize_sql_url


class DatasetReader(Protocol):
    """What every format's reader offers the pipeline."""

    format: str  # "lerobot", "hdf5", ...: steps that only fit one format check it
    location: str  # as registered: a resolved path, or a URL

    def episodes(self) -> list[EpisodeRef]:
        """Every episode, cheaply (no decoding); one bad episode carries its
        `EpisodeRef.problem` instead of stopping the listing."""
        ...

    def signatures(self) -> dict[int, str]:
        """Episode index -> content signature, to tell a re-recorded episode."""
        ...


@dataclass(frozen=True)
class DatasetFormat:
    name: str
    detect: Callable[[str], bool]  # from the path or URL alone (and a stat or two)
    open: Callable[[str, str], DatasetReader]  # (location, dataset id) -> reader
    # changes whenever episodes may have been added or rewritten; must be cheap (the sensor
    # calls it every tick for every dataset)
    change_signature: Callable[[str], str]


# first match wins: the registration point for new formats
FORMATS: tuple[DatasetFormat, ...] = (
    DatasetFormat(
        "lerobot",
        is_lerobot_root,
        lambda location, dataset_id: open_lerobot(Path(location), dataset_id),
        lambda location: metadata_signature(Path(location)),
    ),
    DatasetFormat(
        "hdf5",  # an .hdf5/.h5 file, or a folder of them
        is_hdf5_dataset,
        lambda location, dataset_id: HDF5Reader(Path(location), dataset_id),
        hdf5_signature,
    ),
    DatasetFormat(
        "rlds",  # a versioned TFDS builder directory (features.json, dataset_info.json)
        is_rlds_builder,
        lambda location, dataset_id: RLDSReader(Path(location), dataset_id),
        rlds_signature,
    ),
    DatasetFormat(
        "sql",  # a SQLAlchemy URL naming a table of frames: sqlite:///clips.db?table=clips
        is_sql_url,
        SqlReader,
        sql_signature,
    ),
)


def is_url(location: str) -> bool:
    return "://" in location


def normalize_location(location: str | Path) -> str:
    """A URL as given; a path made absolute (symlinks resolved), so one dataset has one id."""
    text = str(location)
    if is_sql_url(text):
        return normalize_sql_url(text)
    return text if is_url(text) else str(Path(text).resolve())


def location_exists(location: str) -> bool:
    """Whether a registered location is still there (a URL is assumed reachable)."""
    return is_url(location) or Path(location).exists()


def dataset_format(location: str | Path) -> DatasetFormat:
    text = normalize_location(location)
    for fmt in FORMATS:
        if fmt.detect(text):
            return fmt
    if not location_exists(text):
        raise DatasetError(text, "does not exist")
    raise DatasetError(
        text,
        "not a dataset this tool reads (expected one of: "
        + ", ".join(f.name for f in FORMATS)
        + "; a LeRobot root has meta/info.json, HDF5 ends in .hdf5/.h5, RLDS is a versioned"
        " TFDS builder directory with features.json and dataset_info.json)",
    )


def open_dataset(location: str | Path, dataset_id: str) -> DatasetReader:
    """The reader for `location`, whatever its format; DatasetError when none reads it."""
    text = normalize_location(location)
    return dataset_format(text).open(text, dataset_id)


def change_signature(location: str | Path) -> str:
    text = normalize_location(location)
    return dataset_format(text).change_signature(text)
