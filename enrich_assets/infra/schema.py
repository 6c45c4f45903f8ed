"""The column registry (schemas/enrichment.yaml) and pipeline parameters, read at run time."""

from __future__ import annotations

import hashlib
import json
from functools import cache
from typing import Any

import pyarrow as pa
import yaml

from enrich_assets.infra.paths import schemas_dir

ARROW_TYPES = {
    "string": pa.string(),
    "int64": pa.int64(),
    "float32": pa.float32(),
    "float64": pa.float64(),
    "bool": pa.bool_(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "json": pa.string(),
}


@cache
def load_yaml(name: str) -> dict[str, Any]:
    path = schemas_dir() / name
    try:
        return yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise RuntimeError(f"{path}: cannot read schema file ({exc})") from exc


def pipeline_config(section: str) -> dict[str, Any]:
    return load_yaml("pipeline.yaml")[section]


def config_hash(*parts: Any) -> str:
    """A short stable hash of config values: the code_version of what they shape."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _arrow_type(column: dict[str, Any]) -> pa.DataType:
    base = ARROW_TYPES[column["dtype"]] if column["dtype"] in ARROW_TYPES else None
    if base is None and column["dtype"].startswith("list<"):
        inner = ARROW_TYPES[column["dtype"][5:-1]]
        size = (column.get("shape") or [-1])[0]
        return pa.list_(inner, size if size and size > 0 else -1)
    if base is None:
        raise RuntimeError(f"schemas/enrichment.yaml: unknown dtype {column['dtype']!r}")
    return base


def table_schema(table: str) -> pa.Schema:
    spec = load_yaml("enrichment.yaml")
    if table not in spec["tables"]:
        raise RuntimeError(f"schemas/enrichment.yaml has no entry for table {table!r}")
    columns = [*spec["keys"], *spec["tables"][table], *spec["provenance"]]
    return pa.schema([(c["name"], _arrow_type(c)) for c in columns])


def to_table(table: str, rows: list[dict[str, Any]]) -> pa.Table:
    """Rows as an Arrow table with exactly the declared columns and types.

    A declared column missing from the rows is an error (the code and the schema disagree);
    `frame_index`/`camera` may be absent for episode-level tables and are then null.
    """
    schema = table_schema(table)
    optional = {"frame_index", "camera"}
    if rows:
        missing = [n for n in schema.names if n not in rows[0] and n not in optional]
        if missing:
            raise RuntimeError(f"rows for {table} lack declared columns {missing}")
    return pa.Table.from_pylist([{n: r.get(n) for n in schema.names} for r in rows], schema=schema)
