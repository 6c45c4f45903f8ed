"""The one resource every asset uses: where the catalog, artifacts and datasets are."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import dagster as dg

from enrich_assets.datasets.episode import EpisodeRef
from enrich_assets.datasets.errors import EpisodeError
from enrich_assets.datasets.lerobot.reader import is_lerobot_root
from enrich_assets.datasets.open import DatasetReader, open_dataset
from enrich_assets.infra.settings import Settings
from enrich_assets.store.catalog import Catalog
from enrich_assets.store.registry import DatasetRegistry


class PipelineResource(dg.ConfigurableResource):
    """Paths come from settings (env vars / enrich-assets.yaml), never from code."""

    data_dir: str
    dataset_roots: list[str] = []

    @property
    def settings(self) -> Settings:
        return Settings(
            data_dir=Path(self.data_dir), dataset_roots=tuple(map(Path, self.dataset_roots))
        )

    @cached_property
    def catalog(self) -> Catalog:
        return Catalog(self.settings.catalog_dir, self.settings.duckdb_path)

    @property
    def artifact_dir(self) -> Path:
        return self.settings.artifact_dir

    @property
    def registry(self) -> DatasetRegistry:
        return DatasetRegistry(self.settings.registry_path)

    def reader(self, dataset_id: str) -> DatasetReader:
        cache = self.__dict__.setdefault("_readers", {})
        if dataset_id not in cache:
            cache[dataset_id] = open_dataset(self.registry.location_of(dataset_id), dataset_id)
        return cache[dataset_id]

    def workspace(self, dataset_id: str) -> Path:
        """Where files about a dataset go (language staging, reports): a LeRobot root itself,
        as lerobot expects; for other formats a folder under the data dir, since their
        location is a file, a read-only builder or a URL."""
        location = self.registry.location_of(dataset_id)
        if is_lerobot_root(location):
            return Path(location)
        return self.settings.data_dir / "datasets" / dataset_id

    def episode(self, dataset_id: str, episode_index: int) -> EpisodeRef:
        refs = self.__dict__.setdefault("_episodes", {})
        if dataset_id not in refs:
            refs[dataset_id] = {e.episode_index: e for e in self.reader(dataset_id).episodes()}
        if episode_index not in refs[dataset_id]:
            raise EpisodeError(
                self.registry.location_of(dataset_id),
                f"episode {episode_index} is no longer in the dataset",
            )
        return refs[dataset_id][episode_index]
