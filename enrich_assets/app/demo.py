"""`make demo`: write the sample dataset, run the whole graph on it through Dagster, summarise."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

from enrich_assets.app.run_driver import MaterializeReport, materialize_dataset
from enrich_assets.definitions import defs
from enrich_assets.infra.settings import Settings, load_settings
from enrich_assets.store.catalog import Catalog


def main() -> int:
    warnings.filterwarnings("ignore", module="dagster")
    from enrich_assets.datasets.sample.generator import (
        DEMO_EPISODES,
        DEMO_SEED,
        write_sample_dataset,
    )

    settings = load_settings()
    root = settings.data_dir / "sample"
    if not (root / "meta" / "info.json").exists():
        write_sample_dataset(root, episodes=DEMO_EPISODES, seed=DEMO_SEED)
        print(f"wrote the sample dataset ({DEMO_EPISODES} episodes, seed {DEMO_SEED}) to {root}")
    report = materialize_dataset(defs, settings, root)
    _summary(settings, root, report)
    return 0 if report.ok else 1


def _summary(settings: Settings, root: Path, report: MaterializeReport) -> None:
    """What the run produced, read back from the catalog, and where to look next."""
    catalog = Catalog(settings.catalog_dir, settings.duckdb_path)
    where = f"dataset_id = '{report.dataset_id}'"
    keyframes = catalog.read("keyframes", where=where)
    quality = catalog.read("tech_quality", where=where)
    checks = catalog.read("validation", where=where)
    print(f"\nenrich-assets demo: dataset {report.dataset_id} at {root}")
    print(f"  episodes: {report.episodes}, Dagster runs: {report.runs}")
    print(f"  keyframes: {keyframes.height}")
    if quality.height:
        print(
            f"  quality flags: blurry={quality['tech_is_blurry'].sum()}"
            f" dark={quality['tech_is_dark'].sum()}"
            f" overexposed={quality['tech_is_overexposed'].sum()}"
            f" mean score={quality['tech_quality_score'].mean():.3f}"
        )
    for asset, counts in sorted(report.summary.items()):
        print(f"  {asset:<28} " + "  ".join(f"{k}={v}" for k, v in counts.items()))
    if checks.height:
        failed = checks.filter(~checks["passed"])
        print(f"  checks: {checks.height - failed.height} passed, {failed.height} failed")
        for row in failed.head(10).iter_rows(named=True):
            print(
                f"    {row['severity']} {row['asset']}.{row['rule']} "
                f"episode {row['episode_index']}: {row['message']}"
            )
    for asset, ep, status, message in report.failures:
        print(f"  {status}: {asset} episode {ep}: {message}")
    golden = catalog.read("golden_scores", report.dataset_id)
    if golden.height:  # the demo dataset is the one data/golden/ was cut from
        latest = golden.filter(golden["created_at"] == golden["created_at"].max())
        scores = ", ".join(
            f"{m}={'-' if v is None else f'{v:.2f}'}"
            for m, v in latest.select("metric", "value").iter_rows()
        )
        print(f"  golden set (tiny random-init models score low; that is honest): {scores}")
    metrics = catalog.read("run_metrics", report.dataset_id)
    if metrics.height:
        print(
            f"  run metrics: {metrics.height} rows in run_metrics (per run and asset: frames, "
            "latency p50/p95, API error rate, cost per frame, quality); see README 'Monitoring'"
        )
    for path in sorted(root.glob("meta/enrich_reports/*/review.html")):
        print(f"  validation report + review sheet: {path.parent}")
    print(f"  DuckDB catalog: {settings.duckdb_path}")
    print(
        f'    .venv/bin/python -c "import duckdb; print(duckdb.connect('
        f"'{settings.duckdb_path}', read_only=True).sql('from tech_quality limit 5'))\""
    )
    print(
        f"  Dagster UI: make ui  (DAGSTER_HOME={settings.dagster_home} "
        ".venv/bin/dagster dev -w workspace.yaml)"
    )


if __name__ == "__main__":
    sys.exit(main())
