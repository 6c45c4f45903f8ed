"""Shared fixtures: the real fixtures from ../shared, a small sample dataset, isolated settings."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"


def real_fixture(name: str) -> Path:
    """A real LeRobot fixture; in CI its absence is an error, elsewhere a skip."""
    path = REAL / name
    if not path.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"real fixture {path} is missing; CI must run the real-data tests")
        pytest.skip(f"real fixture {path} not present")
    return path


@pytest.fixture
def real_copy(tmp_path: Path):  # noqa: ANN201
    """Copy a real fixture into tmp (tests may damage it; the shared one stays untouched)."""

    def copy(name: str) -> Path:
        return Path(shutil.copytree(real_fixture(name), tmp_path / name))

    return copy


@pytest.fixture(scope="session")
def sample_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from enrich_assets.datasets.sample.generator import write_sample_dataset

    return write_sample_dataset(
        tmp_path_factory.mktemp("sample") / "sample",
        episodes=6,
        seed=0,
        width=96,
        height=64,
        frames_per_episode=(24, 32),
    )


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    """Settings pointing every output (catalog, DuckDB, Dagster home) into tmp."""
    from enrich_assets.infra.settings import load_settings

    monkeypatch.setenv("ENRICH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "data" / "dagster_home"))
    monkeypatch.delenv("ENRICH_DATASET_ROOTS", raising=False)
    return load_settings(tmp_path)


def reload_language_assets() -> None:
    """Rebuild the language assets (their code versions read the prompts at import), and the
    writeback, which holds them as deps: stale objects there would collide with the new."""
    import importlib

    import enrich_assets.defs.language as language
    import enrich_assets.defs.writeback as writeback

    importlib.reload(language)
    importlib.reload(writeback)


@pytest.fixture(scope="session")
def postgres_url():  # noqa: ANN201
    """A real PostgreSQL server for the whole test session (SQLAlchemy URL, psycopg 3)."""
    from enrich_assets_tests.postgres_server import postgres_server

    with postgres_server() as url:
        yield url


@pytest.fixture
def postgres_home(settings, postgres_url: str, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN001, ANN201
    """$DAGSTER_HOME holding the production dagster.yaml (deploy/dagster.postgres.yaml) on a
    fresh database of the test server, its connection in DAGSTER_PG_* as in a deployment.
    Yields the database's SQLAlchemy URL."""
    import uuid

    import sqlalchemy as sa

    from enrich_assets_tests.postgres_server import _create_database

    server = sa.engine.make_url(postgres_url)
    database = f"dagster_{uuid.uuid4().hex[:12]}"
    _create_database(postgres_url.rsplit("/", 1)[0], database)
    for name, value in {
        "USERNAME": server.username,
        "PASSWORD": server.password or "",
        "HOST": server.host,
        "PORT": str(server.port),
        "DB": database,
    }.items():
        monkeypatch.setenv(f"DAGSTER_PG_{name}", value)
    settings.dagster_home.mkdir(parents=True)
    repo = Path(__file__).resolve().parents[1]
    shutil.copy(repo / "deploy" / "dagster.postgres.yaml", settings.dagster_home / "dagster.yaml")
    yield server.set(database=database).render_as_string(hide_password=False)
