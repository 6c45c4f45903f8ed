"""A derived asset's frame as the catalog table it is declared as (schemas/enrichment.yaml).

Columnar on purpose: `to_table` builds from row dicts, which costs seconds per million
keyframes; here it only vouches for the declared columns and the columns are cast whole.
"""

from __future__ import annotations

import polars as pl
import pyarrow as pa

from enrich_assets.infra.schema import to_table


def frame_table(table: str, frame: pl.DataFrame) -> pa.Table:
    """`frame` with exactly `table`'s declared columns and types; a declared column it lacks
    is an error (as in `to_table`), except `frame_index`/`camera`, which are then null."""
    data = frame.to_arrow()
    schema = to_table(table, [dict.fromkeys(data.column_names)]).schema
    columns = [
        data[f.name].cast(f.type) if f.name in data.column_names else pa.nulls(len(data), f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(columns, schema=schema)
