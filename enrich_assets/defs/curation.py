"""Curation assets over whole datasets: the golden-set score with its regression gate, and
the validation report (JSON + review contact sheet beside the dataset, plots in the UI).

Dependencies are named by key, not imported: the language module is reloaded when prompts
change (tests do), and a held reference would then be a second definition of its assets.
A pipeline version is the hash of every per-episode asset's code_version, so a prompt,
model or setting change is a new version; each version is scored on the golden set and
kept in the `golden_scores` table, which is the history the gate compares against.
"""

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl

from enrich_assets.datasets.open import location_exists
from enrich_assets.defs import episode, language, vision, vlm_resource
from enrich_assets.defs.jobs import CURATION_GROUP
from enrich_assets.defs.metadata import png_metadata
from enrich_assets.defs.resources import PipelineResource
from enrich_assets.defs.vlm_resource import settings_section
from enrich_assets.enrich.curation.caption_agreement import RULE as AGREEMENT_RULE
from enrich_assets.enrich.curation.caption_agreement import (
    AgreementReport,
    AgreementSettings,
    caption_agreement,
    check_caption_agreement,
)
from enrich_assets.enrich.curation.distribution_checks import (
    DistributionSettings,
    report_distribution,
)
from enrich_assets.enrich.curation.golden_gate import RULE as GOLDEN_RULE
from enrich_assets.enrich.curation.golden_gate import load_gates
from enrich_assets.enrich.curation.golden_metrics import load_metric_params
from enrich_assets.enrich.curation.golden_scores import GOLDEN_TABLE, score_version, version_summary
from enrich_assets.enrich.curation.golden_set import golden_mismatches, load_golden_set
from enrich_assets.enrich.curation.report import (
    REPORT_TABLES,
    build_validation_report,
    report_dir,
    write_validation_report,
)
from enrich_assets.enrich.curation.report_plots import report_plots
from enrich_assets.enrich.curation.review_sample import review_sample
from enrich_assets.enrich.curation.review_sheet import review_rows, review_sheet_html
from enrich_assets.enrich.rules import RuleOutcome
from enrich_assets.enrich.vision.detections import load_vocabulary
from enrich_assets.infra.schema import pipeline_config, to_table
from enrich_assets.models.registry import load_model_spec
from enrich_assets.store.images import load_image

GOLDEN_OUTPUTS = ("ai_detections", "language_plan", "ai_caption")


def pipeline_version() -> str:
    """Hash of (asset, code_version) over the per-episode assets: what shapes the outputs."""
    versions = {
        key.to_user_string(): a.code_versions_by_key.get(key) or ""
        for module in (episode, vision, language)
        for a in vars(module).values()
        if isinstance(a, dg.AssetsDefinition) and a.partitions_def is not None
        for key in a.keys
    }
    items = sorted(versions.items())
    return hashlib.sha256(repr(items).encode()).hexdigest()[:16]


@dg.asset(
    deps=["ai_detections", "language_plan", "ai_caption"],
    check_specs=[dg.AssetCheckSpec(GOLDEN_RULE, asset="golden_set_score", blocking=True)],
    group_name=CURATION_GROUP,
    kinds={"duckdb"},
)
def golden_set_score(
    context: dg.AssetExecutionContext, pipeline: PipelineResource
) -> dg.MaterializeResult:
    """Detection recall / IoU, subtask-boundary F1 and caption object recall on data/golden/,
    for every registered dataset the golden set was cut from; a regression blocks."""
    golden, version = load_golden_set(), pipeline_version()
    params, gates = load_metric_params(), load_gates()
    scored: dict[str, dict[str, float | None]] = {}
    skipped: dict[str, str] = {}
    failing: dict[str, str] = {}
    for dataset_id, root in sorted(pipeline.registry.load().items()):
        exists = location_exists(root)
        if not exists or (problems := golden_mismatches(golden, Path(root))):
            skipped[dataset_id] = problems[0] if exists else "location missing"
            continue
        outputs = {t: pipeline.catalog.read(t, dataset_id) for t in GOLDEN_OUTPUTS}
        history = pipeline.catalog.read(GOLDEN_TABLE, dataset_id)
        provenance = {"code_version": version, "run_id": context.run.run_id}
        provenance["created_at"] = datetime.now(UTC)
        run = score_version(dataset_id, golden, outputs, history, params, gates, provenance)
        table = to_table(GOLDEN_TABLE, run.rows)
        pipeline.catalog.write(GOLDEN_TABLE, dataset_id, version, table)
        scored[dataset_id] = run.metrics
        if not run.gate.passed:
            failing[dataset_id] = run.gate.message
        context.log.info(f"golden set, {dataset_id} @ {version}: {run.gate.message}")
    return dg.MaterializeResult(
        metadata=_golden_metadata(version, scored, skipped),
        check_results=[_golden_check(version, failing, len(scored))],
    )


def _golden_metadata(
    version: str, scored: dict[str, dict[str, float | None]], skipped: dict[str, str]
) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "pipeline_version": version,
        "datasets_scored": len(scored),
        "skipped": dg.MetadataValue.json(skipped),
        "scores": dg.MetadataValue.json(scored),
    }
    # one dataset's figures as plain numbers, so the UI plots them across versions
    for metrics in list(scored.values())[:1]:
        metadata.update({m: v for m, v in metrics.items() if v is not None})
    return metadata


def _golden_check(version: str, failing: dict[str, str], scored: int) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=GOLDEN_RULE,
        passed=not failing,
        severity=dg.AssetCheckSeverity.ERROR,
        description="; ".join(f"{d}: {m}" for d, m in failing.items())
        or f"no regression ({scored} dataset(s) scored)",
        metadata={"failing": dg.MetadataValue.json(failing), "version": version},
    )


DISTRIBUTION_RULES = ("task_objects_in_captions", "task_objects_detected", "caption_variety")
REPORT_CHECKS = (*DISTRIBUTION_RULES, AGREEMENT_RULE)


@dg.asset(
    check_specs=[
        dg.AssetCheckSpec(rule, asset="validation_report", blocking=False) for rule in REPORT_CHECKS
    ],
    deps=[
        "tech_quality",
        "ai_detections",
        "ai_caption_tags",
        "ai_semantic_cluster",
        "ai_near_duplicates",
        "ai_episode_diversity",
        "consistency",
    ],
    group_name=CURATION_GROUP,
    kinds={"html", "json"},
)
def validation_report(
    context: dg.AssetExecutionContext, pipeline: PipelineResource
) -> dg.MaterializeResult:
    """Per dataset and pipeline version: distributions, check summary, golden scores, caption
    agreement with a second VLM (when `vlm_secondary` is configured) and a stratified
    200-keyframe review sheet, in <dataset>/meta/enrich_reports/<version>/ (a LeRobot
    dataset; other formats: <data dir>/datasets/<dataset id>/meta/enrich_reports/...)."""
    version = pipeline_version()
    written: dict[str, str] = {}
    metadata: dict[str, Any] = {"pipeline_version": version}
    outcomes: dict[str, list[tuple[str, RuleOutcome]]] = {rule: [] for rule in REPORT_CHECKS}
    for dataset_id, root in sorted(pipeline.registry.load().items()):
        if not location_exists(root):
            continue
        tables = {t: pipeline.catalog.read(t, dataset_id) for t in REPORT_TABLES}
        if tables["keyframes"].height == 0:
            continue
        workspace = pipeline.workspace(dataset_id)
        checks, out = _dataset_report(pipeline, dataset_id, workspace, version, tables)
        for o in checks:
            outcomes[o.rule].append((dataset_id, o))
        written[dataset_id] = str(out)
        if len(written) == 1:  # the UI shows one dataset's plots; the files have them all
            embedding = pipeline.catalog.read("ai_embedding", dataset_id)
            plots = report_plots(tables, embedding, lambda p: load_image(pipeline.artifact_dir, p))
            for name, png in plots.items():
                metadata |= png_metadata(pipeline.artifact_dir, name, png)
    metadata["reports"] = dg.MetadataValue.json(written)
    return dg.MaterializeResult(
        metadata=metadata,
        check_results=[_check_result(rule, found) for rule, found in outcomes.items()],
    )


def _dataset_report(
    pipeline: PipelineResource,
    dataset_id: str,
    root: Path,
    version: str,
    tables: dict[str, pl.DataFrame],
) -> tuple[list[RuleOutcome], Path]:
    """One dataset's checks and report files (JSON + review sheet); the report's folder."""
    distribution = DistributionSettings(**pipeline_config("distribution"))
    checks = report_distribution(tables, load_vocabulary(dataset_id), distribution)
    agreement_settings = AgreementSettings(**pipeline_config("caption_agreement"))
    agreement = _agreement(pipeline, tables, agreement_settings)
    if agreement is not None:
        checks.append(check_caption_agreement(agreement, agreement_settings.max_flagged_share))
    sample = review_sample(tables["keyframes"], tables["ai_semantic_cluster"])
    html = review_sheet_html(
        review_rows(sample, tables),
        lambda path: load_image(pipeline.artifact_dir, path),
        dataset_id,
        version,
    )
    figures = agreement.figures() if agreement is not None else None
    report = build_validation_report(dataset_id, version, tables, figures, sample)
    golden = pipeline.catalog.read(GOLDEN_TABLE, dataset_id, f"pipeline_version = '{version}'")
    report["golden"] = version_summary(golden)
    return checks, write_validation_report(report_dir(root, version), report, html)


def _agreement(
    pipeline: PipelineResource, tables: dict[str, pl.DataFrame], settings: AgreementSettings
) -> AgreementReport | None:
    """Caption a sample again with the second VLM and compare; None when none is configured."""
    second = settings_section("vlm_secondary")
    if not second or tables["ai_caption"].height == 0:
        return None
    from enrich_assets.models.sentence_embedder import load_sentence_embedder
    from enrich_assets.models.vlm.factory import build_client

    embedder = load_sentence_embedder(
        load_model_spec("sentence", profile=pipeline.settings.model_profile)
    )
    client = build_client(second)
    try:
        return caption_agreement(
            tables["ai_caption"],
            tables["keyframes"],
            tables["episode_manifest"],
            pipeline.artifact_dir,
            client,
            embedder,
            vlm_resource.SETTINGS,
            settings,
        )
    finally:
        close = getattr(client, "close", None)
        if close is not None:
            close()


def _check_result(rule: str, found: list[tuple[str, RuleOutcome]]) -> dg.AssetCheckResult:
    """One result per rule over every dataset; WARN rules, so never blocking."""
    failing = {d: o.message for d, o in found if not o.passed}
    if not found:
        description = "not evaluated (no captions, or no second VLM in vlm_secondary)"
    else:
        description = "; ".join(f"{d}: {o.message}" for d, o in found)[:2000]
    return dg.AssetCheckResult(
        check_name=rule,
        passed=not failing,
        severity=dg.AssetCheckSeverity.WARN,
        description=description,
        metadata={"datasets_checked": len(found), "failing": dg.MetadataValue.json(failing)},
    )
