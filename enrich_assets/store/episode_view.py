"""One row per episode joining whatever enrichment tables exist: what curation filters on.

Every column is present whatever has been materialized (a missing table contributes NULLs,
`is_duplicate_episode` false), so a `--where` written today still parses on a dataset that
has only its manifest, and `true` always selects every episode.
"""

from __future__ import annotations

import duckdb
import polars as pl

from enrich_assets.store.catalog import Catalog

# table -> (per-episode aggregate, {column: (type, value when the table is absent)})
JOINS: dict[str, tuple[str, dict[str, tuple[str, str]]]] = {
    "tech_quality": (
        "SELECT episode_index, avg(tech_quality_score) AS tech_quality_score"
        " FROM tech_quality GROUP BY episode_index",
        {"tech_quality_score": ("DOUBLE", "NULL")},
    ),
    "ai_near_duplicates": (
        "SELECT episode_index, bool_or(ai_is_duplicate_episode) AS is_duplicate_episode,"
        " max(ai_duplicate_of_episode) AS duplicate_of_episode"
        " FROM ai_near_duplicates GROUP BY episode_index",
        {"is_duplicate_episode": ("BOOLEAN", "false"), "duplicate_of_episode": ("BIGINT", "NULL")},
    ),
    "ai_episode_diversity": (
        "SELECT episode_index, ai_diversity AS diversity,"
        " ai_diversity_percentile AS diversity_percentile FROM ai_episode_diversity",
        {"diversity": ("FLOAT", "NULL"), "diversity_percentile": ("FLOAT", "NULL")},
    ),
    "ai_semantic_cluster": (
        "SELECT episode_index, mode(ai_cluster_id) AS cluster_id"
        " FROM ai_semantic_cluster GROUP BY episode_index",
        {"cluster_id": ("BIGINT", "NULL")},
    ),
}


def episode_view(
    catalog: Catalog, dataset_id: str, episodes: pl.DataFrame, where: str = "true"
) -> pl.DataFrame:
    """`episodes` (episode_index, length, task, ...) joined with per-episode enrichment
    columns, filtered by the SQL condition `where`, ordered by episode_index."""
    with duckdb.connect() as conn:
        conn.register("episodes", episodes.to_arrow())
        selects, joins = ["e.*"], []
        for i, (table, (aggregate, columns)) in enumerate(JOINS.items()):
            frame = catalog.read(table, dataset_id)
            if frame.height:
                conn.register(table, frame.to_arrow())
            else:  # no rows: an empty relation of the same columns
                typed = ", ".join(f"NULL::{t} AS {c}" for c, (t, _) in columns.items())
                aggregate = f"SELECT NULL::BIGINT AS episode_index, {typed} WHERE false"
            joins.append(f"LEFT JOIN ({aggregate}) AS t{i} USING (episode_index)")
            selects += [
                f"coalesce(t{i}.{c}, {default}::{t}) AS {c}" for c, (t, default) in columns.items()
            ]
        view = f"SELECT {', '.join(selects)} FROM episodes AS e {' '.join(joins)}"
        query = f"SELECT * FROM ({view}) AS v WHERE ({where}) ORDER BY episode_index"
        try:
            return conn.sql(query).pl()
        except duckdb.Error as exc:
            raise ValueError(
                f"--where {where!r}: not valid SQL over the episode view ({exc})"
            ) from exc


def balance_clusters(selected: pl.DataFrame) -> pl.DataFrame:
    """At most the median cluster's count of episodes from each dominant cluster (earliest
    first), so one over-represented scene does not dominate the export."""
    if selected.height == 0 or selected["cluster_id"].null_count() == selected.height:
        return selected
    counts = selected.group_by("cluster_id").len()["len"].to_numpy()
    cap = max(1, int(round(float(sorted(counts)[len(counts) // 2]))))
    ranked = selected.with_columns(
        pl.col("episode_index").rank("ordinal").over("cluster_id").alias("_rank")
    )
    return ranked.filter(pl.col("_rank") <= cap).drop("_rank").sort("episode_index")
