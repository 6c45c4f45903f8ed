# The two quickstart commands: `make demo` and `make test`. Each sets up .venv itself.
VENV := .venv
PY := $(VENV)/bin/python
DAGSTER_HOME ?= $(CURDIR)/data/dagster_home

.PHONY: setup demo test lint ui bench compat

$(VENV)/.installed: pyproject.toml uv.lock
	@command -v uv >/dev/null 2>&1 || python3 -m pip install --quiet uv
	uv sync --frozen --extra dev
	@touch $@

setup: $(VENV)/.installed

demo: setup
	$(PY) -m enrich_assets.app.demo

test: setup
	bash scripts/install_postgres.sh
	$(PY) -m pytest -q

# lerobot 0.6.1's validator and LeRobotDataset over our output for the real fixture, in
# lerobot's own Python 3.12 venv ($$LEROBOT_VENV, default ~/.cache/enrich-assets/lerobot-0.6.1)
compat: setup
	bash scripts/compat.sh

lint: setup
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check . && $(VENV)/bin/lint-imports

ui: setup
	mkdir -p $(DAGSTER_HOME) && cp -n dagster.yaml $(DAGSTER_HOME)/ || true
	DAGSTER_HOME=$(DAGSTER_HOME) $(VENV)/bin/dagster dev -w workspace.yaml -h 127.0.0.1
