"""Where the vision models run, as configured: the `compute:` settings, the per-model
`resources` of schemas/models.yaml, and the KubeRay deployment checked against both."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from enrich_assets.infra.paths import schema_file
from enrich_assets.infra.settings import ComputeSettings, SettingsError, load_settings
from enrich_assets.models.registry import ModelResources, load_model_spec

REPO = Path(__file__).resolve().parents[1]
RAYCLUSTER = REPO / "deploy" / "kuberay" / "raycluster.yaml"
VISION_TASKS = ("embedding", "detection", "depth")


def settings_from(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str):  # noqa: ANN201
    path = tmp_path / "enrich-assets.yaml"
    path.write_text(text)
    monkeypatch.setenv("ENRICH_SETTINGS", str(path))
    monkeypatch.setenv("ENRICH_DATA_DIR", str(tmp_path / "data"))
    return load_settings(tmp_path)


def test_compute_defaults_to_local(tmp_path, monkeypatch):
    assert settings_from(tmp_path, monkeypatch, "").compute == ComputeSettings(backend="local")


def test_compute_section_is_read(tmp_path, monkeypatch):
    text = "compute:\n  backend: ray\n  ray_address: ray://head:10001\n  actors_per_model: 3\n"
    compute = settings_from(tmp_path, monkeypatch, text).compute
    assert (compute.backend, compute.ray_address, compute.actors_per_model) == (
        "ray",
        "ray://head:10001",
        3,
    )


@pytest.mark.parametrize(
    "text, message",
    [
        ("compute:\n  backend: spark\n", r":2: compute.backend: Input should be 'local' or 'ray'"),
        ("compute:\n  ray_adress: x\n", r":2: compute.ray_adress: unknown setting \(known: back"),
        ("compute:\n  actors_per_model: 0\n", r":2: compute.actors_per_model: Input should be"),
    ],
)
def test_bad_compute_settings_are_one_line(tmp_path, monkeypatch, text, message):
    with pytest.raises(SettingsError, match=message) as info:
        settings_from(tmp_path, monkeypatch, text)
    assert "\n" not in str(info.value)


def test_every_registered_model_has_valid_resources():
    models = yaml.safe_load(schema_file("models.yaml").read_text())["models"]
    for name, entry in models.items():
        spec = load_model_spec(entry["task"], overrides={"name": name})
        assert spec.resources == ModelResources.parse(entry.get("resources", {}), name)
    assert load_model_spec("embedding", "real").resources.num_gpus >= 1


@pytest.mark.parametrize(
    "resources, message",
    [
        ({"gpus": 1}, r"unknown resources \['gpus'\]"),
        ({"num_gpus": -1}, r"resources.num_gpus must be a number >= 0, got -1"),
        ({"num_cpus": "two"}, r"resources.num_cpus must be a number >= 0, got 'two'"),
        ({"num_gpus": True}, r"resources.num_gpus must be a number >= 0, got True"),
        ({"memory_gb": 0}, r"resources.memory_gb must be > 0"),
        ([1], r"resources must be a mapping"),
    ],
)
def test_bad_resources_name_the_file_and_model(tmp_path, resources, message):
    registry = yaml.safe_load(schema_file("models.yaml").read_text())
    registry["models"]["tiny-clip"]["resources"] = resources
    path = tmp_path / "models.yaml"
    path.write_text(yaml.safe_dump(registry))
    with pytest.raises(ValueError, match=rf"models.yaml: tiny-clip: {message}"):
        load_model_spec("embedding", "tiny", path=path)


def quantity(value: str | int) -> float:
    """A Kubernetes quantity (8, "500m", "32Gi") as a number; memory in GiB."""
    text = str(value)
    units = {"m": 1e-3, "Ki": 2**-20, "Mi": 2**-10, "Gi": 1, "Ti": 2**10}
    match = re.fullmatch(r"([0-9.]+)(m|Ki|Mi|Gi|Ti)?", text)
    assert match, f"{RAYCLUSTER}: cannot read quantity {text!r}"
    number, unit = float(match[1]), match[2]
    return number * units[unit] if unit else number


def test_kuberay_manifest_fits_the_models_and_points_the_settings_at_its_head(
    tmp_path, monkeypatch
):
    import ray

    docs = {d["kind"]: d for d in yaml.safe_load_all(RAYCLUSTER.read_text())}
    cluster = docs["RayCluster"]
    assert cluster["apiVersion"] == "ray.io/v1"
    # Ray Client needs the same Ray on both sides
    assert cluster["spec"]["rayVersion"] == ray.__version__
    head = cluster["spec"]["headGroupSpec"]
    assert head["rayStartParams"]["num-cpus"] == "0"  # model actors never land on the head
    head_ports = {
        p["name"]: p["containerPort"] for p in head["template"]["spec"]["containers"][0]["ports"]
    }

    settings = settings_from(tmp_path, monkeypatch, docs["ConfigMap"]["data"]["enrich-assets.yaml"])
    assert settings.compute.backend == "ray"
    name = cluster["metadata"]["name"]
    assert settings.compute.ray_address == f"ray://{name}-head-svc:{head_ports['client']}"

    groups = []
    for group in cluster["spec"]["workerGroupSpecs"]:
        container = group["template"]["spec"]["containers"][0]
        limits, requests = container["resources"]["limits"], container["resources"]["requests"]
        assert limits == requests, f"{group['groupName']}: requests must equal limits"
        gpus = int(limits.get("nvidia.com/gpu", 0))
        assert int(group["rayStartParams"].get("num-gpus", gpus)) == gpus
        groups.append((gpus, quantity(limits["cpu"]), quantity(limits["memory"]), group))
    for task in VISION_TASKS:
        spec = load_model_spec(task, settings.model_profile)
        need = spec.resources
        fits = [
            g
            for g in groups
            if need.num_gpus <= g[0] and need.num_cpus <= g[1] and need.memory_gb <= g[2]
        ]
        assert fits, f"{RAYCLUSTER}: no worker group holds {spec.name} ({need})"
        most_gpus = max(g[0] * g[3]["maxReplicas"] for g in fits)
        assert need.num_gpus * settings.compute.actors_per_model <= most_gpus, spec.name


@pytest.mark.parametrize(
    "address, reason",
    [
        ("127.0.0.1:{port}", "Connection refused"),
        ("ray://127.0.0.1:{port}", "Connection refused"),
        ("head-without-port", "expected host:port"),
    ],
)
def test_an_unreachable_ray_address_is_one_line_at_once(address, reason):
    from enrich_assets.models.vision.ray_host import RayHost
    from enrich_assets_tests.ray_cluster import free_port

    address = address.format(port=free_port())  # nothing listens there
    host = RayHost(ComputeSettings(backend="ray", ray_address=address))
    with pytest.raises(
        ConnectionError, match=rf"compute.ray_address {address}: .*{reason}"
    ) as info:
        host.open(load_model_spec("embedding", "tiny"))
    assert "\n" not in str(info.value)
