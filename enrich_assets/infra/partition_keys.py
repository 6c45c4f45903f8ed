"""Episode partition keys: `<dataset_id>:ep<index>`, unique across datasets and readable."""

from __future__ import annotations


def partition_key(dataset_id: str, episode_index: int) -> str:
    return f"{dataset_prefix(dataset_id)}{episode_index:06d}"


def dataset_prefix(dataset_id: str) -> str:
    """What every partition key of the dataset starts with."""
    return f"{dataset_id}:ep"


def parse_partition_key(key: str) -> tuple[str, int]:
    dataset_id, sep, episode = key.rpartition(":ep")
    if not sep or not episode.isdigit():
        raise ValueError(f"not an episode partition key: {key!r} (expected <dataset>:ep<index>)")
    return dataset_id, int(episode)
