"""`enrich-assets`: the command line over the same Dagster definitions the UI shows."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from enrich_assets.datasets.errors import DatasetError
from enrich_assets.settings import load_settings


def _episodes(text: str | None) -> list[int] | None:
    return None if text is None else [int(x) for x in text.split(",") if x.strip()]


def cmd_sample_dataset(args: argparse.Namespace) -> int:
    from enrich_assets.datasets.sample import write_sample_dataset

    root = write_sample_dataset(Path(args.out), episodes=args.episodes, seed=args.seed)
    print(f"wrote sample LeRobot v3.0 dataset: {root}")
    return 0


def cmd_materialize(args: argparse.Namespace) -> int:
    from enrich_assets.definitions import defs
    from enrich_assets.defs.runs import materialize_dataset

    settings = load_settings()
    report = materialize_dataset(
        defs, settings, Path(args.dataset), args.select, _episodes(args.episodes), args.batch_size
    )
    print(f"dataset {report.dataset_id}: {report.episodes} episodes in {report.runs} Dagster runs")
    for asset, counts in sorted(report.summary.items()):
        print(f"  {asset:<24} " + "  ".join(f"{k}={v}" for k, v in counts.items()))
    for asset, ep, status, message in report.failures:
        print(f"  {status.upper()}: {asset} episode {ep}: {message}")
    for asset, ep, rule, message in report.checks_failing[:20]:
        print(f"  check {asset}.{rule} failed for episode {ep}: {message}")
    for run_id in report.failed_runs:
        print(f"  run {run_id} failed: see `dagster dev` (DAGSTER_HOME={settings.dagster_home})")
    print(f"catalog: {settings.duckdb_path} (views over {settings.catalog_dir})")
    return 0 if report.ok else 1


def cmd_status(args: argparse.Namespace) -> int:
    from enrich_assets.defs.status import dataset_status

    print(dataset_status(load_settings(), Path(args.dataset)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="enrich-assets", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("sample-dataset", help="write the synthetic LeRobot v3.0 sample dataset")
    p.add_argument("out")
    p.add_argument("--episodes", type=int, default=12)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_sample_dataset)

    p = sub.add_parser("materialize", help="register a dataset's episodes and materialize assets")
    p.add_argument("--dataset", required=True, help="dataset root (LeRobot v3.0 or v2.1)")
    p.add_argument("--select", default="*", help="Dagster asset selection (default: everything)")
    p.add_argument("--episodes", help="comma-separated episode indices (default: all)")
    p.add_argument("--batch-size", type=int, help="episodes per Dagster run")
    p.set_defaults(func=cmd_materialize)

    p = sub.add_parser("status", help="partitions known, materialized, failed; checks failing")
    p.add_argument("--dataset", required=True)
    p.set_defaults(func=cmd_status)
    return parser


def main(argv: list[str] | None = None) -> int:
    warnings.filterwarnings("ignore", module="dagster")
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (DatasetError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
