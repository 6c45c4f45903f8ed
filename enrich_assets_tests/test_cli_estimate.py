"""`enrich-assets estimate`: requests, tokens and cost before a run, from the command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from enrich_assets.app.cli import main
from enrich_assets_tests.conftest import real_fixture


def _total(output: str) -> tuple[int, float]:
    line = next(x for x in output.splitlines() if x.startswith("total"))
    _, requests, cost = line.split()
    return int(requests), float(cost)


@pytest.fixture(autouse=True)
def _no_settings_file(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("ENRICH_SETTINGS", str(tmp_path / "none.yaml"))


def test_estimate_prices_the_selected_modules(capsys):
    root = str(real_fixture("g1_v30"))
    assert main(["estimate", "--dataset", root, "--model", "gpt-4o-mini"]) == 0
    requests, cost = _total(capsys.readouterr().out)
    assert requests > 0 and cost > 0

    assert main(["estimate", "--dataset", root, "--select", "key:language_vqa"]) == 0
    out = capsys.readouterr().out
    vqa_requests, free = _total(out)
    assert "stub-vlm:local-stub" in out and free == 0.0  # the local stub costs nothing
    assert 0 < vqa_requests < requests


def test_estimate_refuses_an_unpriced_model_and_says_where_prices_live(capsys):
    root = str(real_fixture("g1_v30"))
    assert main(["estimate", "--dataset", root, "--model", "some-new-model"]) == 2
    assert "prices.yaml" in capsys.readouterr().err
