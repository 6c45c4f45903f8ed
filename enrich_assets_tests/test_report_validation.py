"""The validation report: exact figures on hand-built catalog frames, missing tables, writing."""

from __future__ import annotations

import json
import math
from pathlib import Path

import polars as pl
import pytest

from enrich_assets.enrich.curation.report import (
    REPORT_FILE,
    REPORT_TABLES,
    REVIEW_FILE,
    build_validation_report,
    numeric_summary,
    report_dir,
    sentence_count,
    write_validation_report,
)


def keyed(n: int, **columns: list) -> pl.DataFrame:
    return pl.DataFrame(
        {"episode_index": list(range(n)), "camera": ["cam"] * n, "frame_index": [0] * n, **columns}
    )


def detection(label: str) -> dict:
    return {"label": label, "confidence": 0.9, "bbox": [0, 0, 4, 4]}


@pytest.fixture
def tables() -> dict[str, pl.DataFrame]:
    return {
        "episode_manifest": pl.DataFrame({"episode_index": [0, 1, 2], "camera": ["cam"] * 3}),
        "keyframes": keyed(3),
        "ai_caption": keyed(
            3,
            ai_caption=["A red cup. A plate! Done?", "Robot picks the cup", None],
            ai_caption_reused_from=[None, 0, None],
            ai_caption_error=[None, None, "empty reply"],
        ),
        "ai_detections": keyed(
            3,
            ai_detections=[
                json.dumps([detection("cup"), detection("plate")]),
                json.dumps([detection("cup")]),
                "[]",
            ],
            ai_detection_count=[2, 1, 0],
        ),
        "tech_quality": keyed(
            3,
            tech_quality_score=[0.15, 0.25, 0.95],
            tech_blur_laplacian_var=[10.0, 20.0, float("nan")],
            tech_brightness=[100.0, 120.0, 140.0],
            tech_completeness=[1.0, 1.0, 0.5],
            tech_is_blurry=[True, True, False],
            tech_is_dark=[False, False, False],
            tech_is_overexposed=[False, False, True],
        ),
        "ai_semantic_cluster": pl.DataFrame(
            {
                "episode_index": [0, 0, 1, 1, 1, 2],
                "ai_cluster_id": [-1, 0, 0, 1, 1, 1],
                "ai_cluster_version": ["v"] * 6,
            }
        ),
        "validation": pl.DataFrame(
            {
                "episode_index": [0, 1, 2, 0, 1],
                "asset": ["keyframes"] * 5,
                "rule": ["a", "a", "a", "b", "b"],
                "severity": ["ERROR", "ERROR", "ERROR", "WARN", "WARN"],
                "passed": [True, False, False, True, False],
                "message": ["", "x", "y", "", "z"],
            }
        ),
        "episode_status": pl.DataFrame(
            {
                "episode_index": [0, 1, 0],
                "asset": ["keyframes", "keyframes", "ai_caption"],
                "status": ["ok", "failed", "quarantined"],
                "message": ["", "video.mp4: corrupt", "keyframes failed"],
            }
        ),
    }


def test_numeric_summary_exact() -> None:
    summary = numeric_summary([1, 2, 3, 4, 5, float("nan")])
    assert summary["count"] == 5 and summary["missing"] == 1 and summary["mean"] == 3.0
    assert summary["quantiles"] == {
        "p0": 1.0, "p5": 1.2, "p25": 2.0, "p50": 3.0, "p75": 4.0, "p95": 4.8, "p100": 5.0
    }  # fmt: skip
    # small integers: one bin per value
    assert summary["histogram"] == {"edges": [0.5, 1.5, 2.5, 3.5, 4.5, 5.5], "counts": [1] * 5}
    fixed = numeric_summary([0.15, 0.25, 0.95], value_range=(0.0, 1.0))
    assert fixed["histogram"]["counts"] == [0, 1, 1, 0, 0, 0, 0, 0, 0, 1]
    assert numeric_summary([])["quantiles"] is None


def test_sentence_count() -> None:
    assert [sentence_count(t) for t in ("A cup. A plate! Done?", "no stop", "  One.  ")] == [
        3,
        1,
        1,
    ]


def test_distributions_exact(tables: dict[str, pl.DataFrame]) -> None:
    report = build_validation_report("ds", "v1", tables, {"caption_cosine": 0.8})
    assert report["dataset_id"] == "ds" and report["pipeline_version"] == "v1"
    assert report["counts"]["episodes"] == 3 and report["counts"]["keyframes"] == 3
    assert report["counts"]["rows"]["ai_semantic_cluster"] == 6
    assert report["counts"]["rows"]["ai_near_duplicates"] == 0

    d = report["distributions"]
    captions = d["caption_length"]
    assert (captions["captioned"], captions["reused"], captions["failed"]) == (2, 1, 1)
    assert captions["words"]["mean"] == 5.0  # 6 and 4 words
    assert captions["sentences"]["quantiles"]["p0"] == 1.0
    assert captions["sentences"]["quantiles"]["p100"] == 3.0

    detections = d["detected_classes"]
    assert detections["detections"] == 3 and detections["keyframes_with_detections"] == 2
    assert list(detections["classes"].items()) == [("cup", 2), ("plate", 1)]

    quality = d["quality_scores"]
    score = quality["columns"]["tech_quality_score"]
    assert score["histogram"]["counts"] == [0, 1, 1, 0, 0, 0, 0, 0, 0, 1]
    assert score["quantiles"]["p50"] == 0.25
    assert quality["columns"]["tech_blur_laplacian_var"]["missing"] == 1
    assert quality["flags"] == {"tech_is_blurry": 2, "tech_is_dark": 0, "tech_is_overexposed": 1}

    clusters = d["cluster_sizes"]
    assert clusters["sizes"] == {"-1": 1, "0": 2, "1": 3}
    assert (clusters["clusters"], clusters["noise"], clusters["largest_fraction"]) == (2, 1, 0.5)
    assert clusters["versions"] == ["v"]

    assert report["agreement"] == {"caption_cosine": 0.8}
    json.dumps(report, allow_nan=False)  # serialisable as strict JSON


def test_check_results_summary(tables: dict[str, pl.DataFrame]) -> None:
    report = build_validation_report("ds", "v1", tables)
    checks = report["checks"]
    assert checks["totals"] == {"checked": 5, "pass": 2, "warn": 1, "error": 2}
    a, b = checks["rules"]
    assert (a["rule"], a["pass"], a["warn"], a["error"], a["failing_episodes"]) == (
        "a", 1, 0, 2, [1, 2]
    )  # fmt: skip
    assert (b["rule"], b["pass"], b["warn"], b["error"], b["failing_episodes"]) == (
        "b", 1, 1, 0, [1]
    )  # fmt: skip
    status = report["episode_status"]
    assert status["assets"]["keyframes"] == {"ok": 1, "failed": 1, "quarantined": 0}
    assert status["not_ok"] == 2
    assert status["first_not_ok"][0]["message"] == "keyframes failed"  # episode 0 first


def test_missing_tables_say_so() -> None:
    report = build_validation_report("ds", "v1", {"keyframes": pl.DataFrame()})
    assert report["counts"] == {
        "episodes": 0, "keyframes": 0, "rows": dict.fromkeys(REPORT_TABLES, 0)
    }  # fmt: skip
    for name, section in report["distributions"].items():
        assert "missing" in section, name
    assert report["distributions"]["cluster_sizes"] == {"missing": "no rows in ai_semantic_cluster"}
    for name in ("agreement", "consistency", "checks", "episode_status", "review_sample"):
        assert "missing" in report[name], name
    json.dumps(report, allow_nan=False)


def test_bad_input_named(tables: dict[str, pl.DataFrame]) -> None:
    with pytest.raises(ValueError, match="tech_quality lacks a column"):
        build_validation_report(
            "ds", "v1", {"tech_quality": tables["tech_quality"].drop("tech_brightness")}
        )
    broken = keyed(1, ai_detections=["[{"], ai_detection_count=[1])
    with pytest.raises(ValueError, match="ai_detections holds invalid JSON"):
        build_validation_report("ds", "v1", {"ai_detections": broken})


def test_review_sample_reference(tables: dict[str, pl.DataFrame]) -> None:
    sample = pl.DataFrame({"ai_cluster_id": [0, 0, 1, None]})
    review = build_validation_report("ds", "v1", tables, review_sample=sample)["review_sample"]
    assert review == {
        "file": REVIEW_FILE,
        "keyframes": 4,
        "per_cluster": {"0": 2, "1": 1, "none": 1},
    }


def test_report_dir(tmp_path: Path) -> None:
    assert report_dir(tmp_path, "v1.2") == tmp_path / "meta" / "enrich_reports" / "v1.2"
    for bad in ("../x", "..", "a/b", ""):
        with pytest.raises(ValueError, match="pipeline version"):
            report_dir(tmp_path, bad)


def test_write_is_atomic(tmp_path: Path, tables: dict[str, pl.DataFrame]) -> None:
    out = report_dir(tmp_path, "v1")
    report = build_validation_report("ds", "v1", tables)
    path = write_validation_report(out, report, "<html>sheet</html>")
    assert path == out / REPORT_FILE
    assert json.loads(path.read_text()) == report
    assert (out / REVIEW_FILE).read_text() == "<html>sheet</html>"
    # a report that cannot be written leaves the previous one in place, and no temp files
    with pytest.raises(ValueError):
        write_validation_report(out, {**report, "agreement": {"x": math.nan}}, "<html>new</html>")
    assert json.loads(path.read_text()) == report
    assert (out / REVIEW_FILE).read_text() == "<html>sheet</html>"
    assert sorted(p.name for p in out.iterdir()) == sorted([REPORT_FILE, REVIEW_FILE])


def test_consistency_section_counts_what_disagreed_and_where() -> None:
    def row(ep: int, check: str, subject: str, flagged: bool) -> dict:
        return {
            "episode_index": ep,
            "camera": "cam" if check == "caption_objects_detected" else None,
            "frame_index": 4 if check == "caption_objects_detected" else None,
            "tech_check": check,
            "tech_subject": subject,
            "tech_flagged": flagged,
            "tech_detail": f"{subject} {'flagged' if flagged else 'ok'}",
        }

    frame = pl.DataFrame(
        [
            row(0, "caption_objects_detected", "bowl", True),
            row(0, "caption_objects_detected", "cube", False),
            row(2, "caption_objects_detected", "bowl", True),
            row(1, "subtasks_have_motion", "reach", False),
        ]
    )
    report = build_validation_report("ds", "v1", {"consistency": frame})
    checks = report["consistency"]["checks"]
    assert checks["caption_objects_detected"] == {
        "compared": 3,
        "flagged": 2,
        "flagged_share": 0.666667,
        "episodes_compared": 2,
        "episodes_flagged": 2,
        "flagged_episodes": [0, 2],
        "flagged_subjects": {"bowl": 2},
    }
    assert checks["subtasks_have_motion"]["flagged"] == 0
    assert checks["grasp_matches_gripper"] == {"missing": "nothing to compare"}
    first = report["consistency"]["first_flagged"]
    assert [(r["episode_index"], r["tech_detail"]) for r in first] == [
        (0, "bowl flagged"),
        (2, "bowl flagged"),
    ]
    json.dumps(report, allow_nan=False)
