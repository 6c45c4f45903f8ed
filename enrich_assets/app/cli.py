"""`enrich-assets`: the command line over the same Dagster definitions the UI shows."""

from __future__ import annotations

import argparse
import sqlite3
import sys
import warnings
from pathlib import Path
from typing import Any

import sqlalchemy.exc

from enrich_assets.datasets.errors import DatasetError
from enrich_assets.infra.files import describe_os_error
from enrich_assets.infra.settings import SettingsError, load_settings


def _episodes(text: str | None) -> list[int] | None:
    return None if text is None else [int(x) for x in text.split(",") if x.strip()]


def cmd_sample_dataset(args: argparse.Namespace) -> int:
    from enrich_assets.datasets.sample.generator import write_sample_dataset

    root = write_sample_dataset(Path(args.out), episodes=args.episodes, seed=args.seed)
    print(f"wrote sample LeRobot v3.0 dataset: {root}")
    return 0


def cmd_materialize(args: argparse.Namespace) -> int:
    from enrich_assets.app.run_driver import materialize_dataset
    from enrich_assets.definitions import defs

    settings = load_settings()
    report = materialize_dataset(
        defs, settings, args.dataset, args.select, _episodes(args.episodes), args.batch_size
    )
    print(f"dataset {report.dataset_id}: {report.episodes} episodes in {report.runs} Dagster runs")
    for asset, counts in sorted(report.summary.items()):
        print(f"  {asset:<24} " + "  ".join(f"{k}={v}" for k, v in counts.items()))
    for asset, ep, status, message in report.failures:
        print(f"  {status.upper()}: {asset} episode {ep}: {message}")
    for asset, ep, rule, message in report.checks_failing[:20]:
        print(f"  check {asset}.{rule} failed for episode {ep}: {message}")
    print(f"catalog: {settings.duckdb_path} (views over {settings.catalog_dir})")
    _print_runs_and_log(args, report)
    return 0 if report.ok else 1


def _print_runs_and_log(args: argparse.Namespace, report: Any) -> None:
    """Runs that failed as a whole, and where the full log (tracebacks) is; `--verbose`
    also prints that log."""
    for run_id in report.failed_runs:
        print(f"  run {run_id} failed as a whole (`make ui` shows it; see the log)")
    if report.log_path is not None:
        print(f"log: {report.log_path}")
        if args.verbose:
            print(report.log_path.read_text(), file=sys.stderr)


def cmd_status(args: argparse.Namespace) -> int:
    from enrich_assets.app.status import dataset_status

    print(dataset_status(load_settings(), args.dataset))
    return 0


def cmd_estimate(args: argparse.Namespace) -> int:
    from enrich_assets.app.run_driver import parse_selection
    from enrich_assets.datasets.open import open_dataset
    from enrich_assets.definitions import defs
    from enrich_assets.defs.episode import keyframe_policy
    from enrich_assets.defs.vlm_resource import SETTINGS, served_model, vlm_config
    from enrich_assets.enrich.language.estimate import VLM_ASSETS, estimate_dataset
    from enrich_assets.models.vlm.ledger import estimate_cost, load_prices

    selected = parse_selection(args.select).resolve(defs.resolve_asset_graph())
    names = {k.to_user_string() for k in selected}
    modules = [m for asset, m in VLM_ASSETS.items() if asset in names]
    if not modules:
        print(f"{args.select!r} selects no asset that calls a VLM ({', '.join(VLM_ASSETS)})")
        return 0
    refs = open_dataset(args.dataset, "estimate").episodes()
    estimate = estimate_dataset(refs, modules, SETTINGS, keyframe_policy(), args.sample)
    model = args.model or served_model(vlm_config())
    costs = estimate_cost(model, estimate.work, load_prices())
    print(
        f"{args.dataset}: {estimate.episodes} episodes ({estimate.sampled} sampled), "
        f"modules {', '.join(modules)}, model {model}"
    )
    print(f"{'kind':<16}{'requests':>9}{'in tok/req':>11}{'out tok/req':>12}{'cost USD':>11}")
    for kind, w in estimate.work.items():
        print(
            f"{kind:<16}{w.requests:>9}{w.input_tokens:>11}{w.output_tokens:>12}"
            f"{costs[kind]:>11.4f}"
        )
    total = sum(w.requests for w in estimate.work.values())
    print(f"{'total':<16}{total:>9}{'':>23}{costs['total']:>11.4f}")
    print("upper bound: answers at max_tokens, no cache hits, no near-duplicate caption reuse")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from enrich_assets.app.run_driver import materialize_dataset
    from enrich_assets.definitions import defs
    from enrich_assets.defs.curation import GOLDEN_TABLE, pipeline_version
    from enrich_assets.enrich.curation.golden_gate import find_regressions, load_gates
    from enrich_assets.enrich.curation.report import REPORT_FILE, report_dir
    from enrich_assets.store.catalog import Catalog

    settings = load_settings()
    root = Path(args.dataset).resolve()
    select = "key:golden_set_score or key:validation_report"
    report = materialize_dataset(defs, settings, root, select)
    version = pipeline_version()
    path = report_dir(root, version) / REPORT_FILE
    print(f"pipeline version {version}")
    print(f"validation report: {path}" if path.is_file() else "validation report: not written")
    catalog = Catalog(settings.catalog_dir, settings.duckdb_path)
    where = f"pipeline_version = '{version}'"
    scores = catalog.read(GOLDEN_TABLE, report.dataset_id, where)
    if scores.height == 0:
        print("golden set: not scored (this dataset is not the one data/golden/ was cut from)")
    for row in scores.sort("metric").iter_rows(named=True):
        value = "not measured" if row["value"] is None else f"{row['value']:.3f}"
        print(f"  {row['metric']:<24} {value:>12}  ({row['covered']}/{row['total']} covered)")
    rejected = scores.height > 0 and not scores["passed_gate"].all()
    if rejected:
        history = catalog.read(GOLDEN_TABLE, report.dataset_id)
        earlier = history.select("pipeline_version", "metric", "value").iter_rows()
        current = dict(zip(scores["metric"], scores["value"], strict=True))
        for regression in find_regressions(earlier, version, current, load_gates()):
            print(f"golden set gate: REJECTED: {regression.describe()}")
    _print_runs_and_log(args, report)
    return 0 if report.ok and not rejected else 1


def cmd_search(args: argparse.Namespace) -> int:
    import numpy as np
    from PIL import Image

    from enrich_assets.app.run_driver import materialize_dataset
    from enrich_assets.definitions import defs
    from enrich_assets.enrich.curation.plots import search_hits_png
    from enrich_assets.enrich.derived.keyframe_search import has_index, search_keyframes
    from enrich_assets.models.registry import load_model_spec
    from enrich_assets.models.vision.image_embedder import load_image_embedder
    from enrich_assets.store.artifacts import write_artifact
    from enrich_assets.store.catalog import Catalog
    from enrich_assets.store.images import load_image
    from enrich_assets.store.registry import DatasetRegistry

    if not args.text and not args.image:
        raise ValueError("search needs a text query, --image FILE, or both")
    settings = load_settings()
    root = Path(args.dataset)
    dataset_id = DatasetRegistry(settings.registry_path).register(root)
    if not has_index(settings.data_dir, dataset_id):
        print(f"no search index for {dataset_id} yet: materializing *ai_search_index")
        report = materialize_dataset(defs, settings, root, "*ai_search_index")
        if not has_index(settings.data_dir, dataset_id):
            print(
                f"error: building the search index failed: {report.failures[:3]}", file=sys.stderr
            )
            return 1
    model = load_image_embedder(load_model_spec("embedding", profile=settings.model_profile))
    queries = []  # text and image together: the sum of their unit vectors
    if args.text:
        queries.append(model.embed_texts([args.text])[0])
    if args.image:
        image = np.asarray(Image.open(args.image).convert("RGB"))
        queries.append(model.embed_images([image])[0])
    catalog = Catalog(settings.catalog_dir, settings.duckdb_path)
    hits = search_keyframes(catalog, settings.data_dir, dataset_id, np.sum(queries, axis=0), args.k)
    print(f"{hits.height} hits in {dataset_id} ({model.model_id})")
    print(f"{'episode':>7} {'frame':>6} {'camera':<32} {'time_s':>8} {'score':>7}  caption")
    for h in hits.iter_rows(named=True):
        print(
            f"{h['episode_index']:>7} {h['frame_index']:>6} {h['camera']:<32} "
            f"{h['tech_timestamp']:>8.3f} {h['score']:>7.4f}  {h.get('ai_caption') or ''}"
        )
    if hits.height:
        images = [load_image(settings.artifact_dir, p) for p in hits["tech_image_path"]]
        sheet = write_artifact(settings.artifact_dir, "search", search_hits_png(images), ".png")
        print(f"contact sheet: {settings.artifact_dir / sheet}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from enrich_assets.enrich.curation.curated_export import curated_export
    from enrich_assets.store.catalog import Catalog
    from enrich_assets.store.registry import DatasetRegistry

    settings = load_settings()
    result = curated_export(
        Catalog(settings.catalog_dir, settings.duckdb_path),
        DatasetRegistry(settings.registry_path),
        Path(args.dataset),
        Path(args.out),
        args.where,
        args.cluster_balance,
    )
    print(f"{len(result.chosen)} of {result.episodes_total} episodes selected: {result.chosen}")
    print(
        f"wrote LeRobot v3.0 dataset: {result.out} "
        f"(episodes renumbered 0..{len(result.chosen) - 1})"
    )
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from enrich_assets.datasets.diagnosis import render_json, render_text
    from enrich_assets.datasets.doctor import diagnose

    layout = Path(args.layout) if args.layout else None
    if layout is not None and not layout.is_file():
        raise DatasetError(layout, "layout file not found")
    try:
        diagnosis = diagnose(args.path, layout)
    except DatasetError:
        raise
    except Exception as exc:  # noqa: BLE001 - damaged data must never end in a traceback
        print(f"error: {args.path}: doctor stopped on {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    print(render_json(diagnosis) if args.json else render_text(diagnosis))
    return diagnosis.exit_code()


def cmd_migrate_language(args: argparse.Namespace) -> int:
    from enrich_assets.app.migrate_language import migrate_language

    root = Path(args.path).resolve()
    report = migrate_language(root)
    print(
        f"{root}: {report.staging_files} staging file(s) and {len(report.data_files)} data "
        f"file(s) rewritten in lerobot's VQA shapes; {report.unchanged} data file(s) unchanged"
    )
    for name, why in report.damaged.items():
        print(f"  NOT MIGRATED: {name}: {why}")
    return 1 if report.damaged else 0


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
    p.add_argument("--verbose", action="store_true", help="also print the runs' full log")
    p.set_defaults(func=cmd_materialize)

    p = sub.add_parser("status", help="partitions known, materialized, failed; checks failing")
    p.add_argument("--dataset", required=True)
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("estimate", help="VLM requests, tokens and cost before a run")
    p.add_argument("--dataset", required=True)
    p.add_argument("--select", default="*", help="Dagster asset selection (default: everything)")
    p.add_argument("--model", help="price this model instead of the configured one")
    p.add_argument("--sample", type=int, default=20, help="episodes to dry-run (default 20)")
    p.set_defaults(func=cmd_estimate)

    p = sub.add_parser("report", help="golden-set score and validation report for a dataset")
    p.add_argument("--dataset", required=True)
    p.add_argument("--verbose", action="store_true", help="also print the runs' full log")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("search", help="text (or example image) -> keyframe search")
    p.add_argument("text", nargs="?", default="", help="query text (CLIP text tower)")
    p.add_argument("--dataset", required=True)
    p.add_argument("--k", type=int, default=20)
    p.add_argument("--image", help="an example image to search by")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("export", help="write the episodes matching --where as a new dataset")
    p.add_argument("--dataset", required=True)
    p.add_argument("--out", required=True, help="new dataset root (absent or empty)")
    p.add_argument(
        "--where",
        default="true",
        help="SQL over the episode view: episode_index, length, task, tech_quality_score, "
        "is_duplicate_episode, duplicate_of_episode, diversity, diversity_percentile, cluster_id",
    )
    p.add_argument(
        "--cluster-balance",
        action="store_true",
        help="keep at most the median cluster's count of episodes per dominant cluster",
    )
    p.set_defaults(func=cmd_export)

    p = sub.add_parser(
        "doctor",
        help="what a dataset holds and what is wrong with it; exit 0 usable, 1 partly, 2 not",
    )
    p.add_argument("path", help="dataset root")
    p.add_argument("--layout", help="override file to try (default: <root>/enrich-layout.yaml)")
    p.add_argument("--json", action="store_true", help="the diagnosis as JSON")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser(
        "migrate-language",
        help="rewrite staged and written VQA answers from the former normalised shapes to "
        "lerobot's (pixels); idempotent",
    )
    p.add_argument("path", help="dataset root")
    p.set_defaults(func=cmd_migrate_language)
    return parser


def main(argv: list[str] | None = None) -> int:
    warnings.filterwarnings("ignore", module="dagster")
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except SettingsError as exc:  # one line naming file, line and key; no traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (DatasetError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (OSError, sqlite3.OperationalError, sqlalchemy.exc.OperationalError) as exc:
        # a full disk, a read-only folder: one line naming the path and the cause
        print(f"error: {describe_os_error(exc, load_settings().data_dir)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
