"""Every model carries its weights' licence: checked on load, permissive in `real`, warned
about once per run when non-commercial, and recorded in metadata and rows."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from enrich_assets.infra.paths import schema_file
from enrich_assets.models.registry import (
    LICENCES,
    TASKS,
    load_model_spec,
    load_registry,
    profile_model,
)

REGISTRY = yaml.safe_load(schema_file("models.yaml").read_text())


def test_every_model_has_a_known_licence_and_real_is_permissive() -> None:
    for name, entry in REGISTRY["models"].items():
        assert entry["licence"] in LICENCES, name
        assert entry["licence"] != "none" or entry.get("random_init"), name
    for task in TASKS:
        if (name := profile_model(task, "real")) is not None:
            assert not load_model_spec(task, "real").non_commercial, name
    assert load_model_spec("depth").name == "depth-anything-v2-small"
    large = load_model_spec("depth", overrides={"name": "depth-anything-v2-large"})
    assert large.licence == "CC-BY-NC-4.0" and large.non_commercial


def _registry_with(tmp_path: Path, model: str, **fields: object) -> Path:
    data = yaml.safe_load(schema_file("models.yaml").read_text())
    for key, value in fields.items():
        if value is None:
            data["models"][model].pop(key, None)
        else:
            data["models"][model][key] = value
    path = tmp_path / "models.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"licence": None}, "model 'owlv2-large' has no licence"),
        ({"licence": "WTFPL"}, "model 'owlv2-large' has unknown licence 'WTFPL'"),
        ({"licence": "none"}, "'owlv2-large': licence 'none' is only for random_init"),
    ],
)
def test_missing_or_unknown_licence_is_a_clear_error(tmp_path: Path, fields, message) -> None:  # noqa: ANN001
    path = _registry_with(tmp_path, "owlv2-large", **fields)
    # any load checks the whole file, not only the model it returns
    with pytest.raises(ValueError, match=message) as err:
        load_model_spec("embedding", "tiny", path=path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_profile_must_name_every_required_task(tmp_path: Path) -> None:
    data = yaml.safe_load(schema_file("models.yaml").read_text())
    del data["profiles"]["tiny"]["depth"]
    path = tmp_path / "models.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ValueError, match=r"profile 'tiny' names no model for \['depth'\]"):
        load_registry(path)
    assert profile_model("caption", "tiny") is None
    assert profile_model("caption", "tiny-florence") == "tiny-florence2-caption"


def test_non_commercial_model_warns_once_per_run_and_is_recorded(
    settings, sample_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # noqa: ANN001
    """A deployment's registry declaring the tiny depth model CC-BY-NC-4.0 (as if it were
    Depth Anything V2 Large): two episodes in one run, one warning."""
    import dagster as dg

    from enrich_assets.app.run_driver import dagster_instance, materialize_dataset
    from enrich_assets.definitions import build_definitions
    from enrich_assets.store.catalog import Catalog

    schemas = Path(shutil.copytree(schema_file("models.yaml").parent, tmp_path / "schemas"))
    data = yaml.safe_load((schemas / "models.yaml").read_text())
    data["models"]["tiny-depth-anything"]["licence"] = "CC-BY-NC-4.0"
    (schemas / "models.yaml").write_text(yaml.safe_dump(data))
    monkeypatch.setenv("ENRICH_SCHEMAS_DIR", str(schemas))

    report = materialize_dataset(
        build_definitions(), settings, sample_root, select="ai_depth,*keyframes", only=[0, 1]
    )
    assert report.ok, report.failures
    instance = dagster_instance(settings)
    warnings = [
        e
        for run_id in report.run_ids
        for e in instance.all_logs(run_id)
        if "non-commercial" in (e.user_message or "")
    ]
    assert len(warnings) == 1, [w.user_message for w in warnings]
    assert "tiny-depth-anything:random-init" in warnings[0].user_message
    [event] = [
        e
        for run_id in report.run_ids
        for e in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
        if e.asset_materialization.asset_key == dg.AssetKey("ai_depth")
    ][:1]
    assert event.asset_materialization.metadata["model_licence"].value == "CC-BY-NC-4.0"
    depth = Catalog(settings.catalog_dir, settings.duckdb_path).read("ai_depth")
    assert depth.height > 0 and depth["ai_model_licence"].unique().to_list() == ["CC-BY-NC-4.0"]
