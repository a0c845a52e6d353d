# Churn-propensity pipeline. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
CHURN := $(VENV)/bin/churn
DATA := data/synthetic
BENCH_SIZES ?= 100k
TEST_WORKERS ?= 2  # pytest-xdist workers for `make test`, one test module per worker at a time (--dist loadfile)

export UV_PYTHON_DOWNLOADS := never
export UV_COMPILE_BYTECODE := 1
export UV_PROJECT_ENVIRONMENT := $(VENV)
export UV_LINK_MODE := copy

.DEFAULT_GOAL := help
.PHONY: help setup data validate snapshot train score recover monitor screenshots ui lint format test test-fast test-seeds bench clean telco

## Show this help
help:
	@awk '/^## /{doc=substr($$0,4); next} /^[a-zA-Z_-]+:/{if(doc){split($$1,t,":"); printf "  make %-12s %s\n", t[1], doc}; doc=""}' $(MAKEFILE_LIST)

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet uv==$(UV_VERSION)

# The development environment includes the optional spark extra (its tests run in `make test`).
$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --all-extras --python $(PYTHON)
	@touch $@

## Create the virtual environment from the lock file (done on first use by every target)
setup: $(VENV)/.synced

$(DATA)/customers.parquet: | $(VENV)/.synced
	$(CHURN) generate --out $(DATA)

## Generate the default synthetic dataset into data/synthetic (ground truth in data/synthetic_truth)
data: $(DATA)/customers.parquet

## Validate the default dataset into data/validated (tables, quarantine, report)
validate: data
	$(CHURN) validate --data $(DATA) --out data/validated --end-date 2026-06-30

## Build monthly training snapshots of the default dataset into data/snapshots/train.parquet
snapshot: data
	$(CHURN) snapshot --data $(DATA) --end-date 2026-06-30 --horizon-days 90 \
	  $$(for m in 2025-07 2025-08 2025-09 2025-10 2025-11 2025-12 2026-01 2026-02 2026-03 2026-04; do echo --as-of $$m-01; done) \
	  --out data/snapshots/train.parquet

## Train the churn model, then the uplift model when the data has campaigns with a control group; log, register, promote
train: data
	$(CHURN) train
	$(CHURN) train-uplift --if-campaigns

## Convert the public Telco customer table (../shared/data/telco, or TELCO_CSV=...) into the contract in data/telco
telco: | $(VENV)/.synced
	$(VENV)/bin/python -m pipelines.extracts.telco --source $${TELCO_CSV:-../shared/data/telco/Telco-Customer-Churn.csv} --out data/telco

## Score active customers on the default data at its latest date (needs a champion: run `make train` first)
score: data
	$(CHURN) score --as-of 2026-07-01 --csv

## Measure saved customers and revenue recovered by the default data's retention campaigns
recover: data
	$(CHURN) recover --from 2025-07-01 --to 2026-03-31 --end-date 2026-06-30

## Realised performance of past scoring runs whose outcomes are in (data/monitoring/report.html)
monitor: data
	$(CHURN) monitor

## Screenshot the training, uplift, scoring, recovery and monitoring reports in headless Chromium into data/screenshots (after make train)
screenshots: data
	@command -v chromium >/dev/null || { echo "make screenshots needs chromium: apt-get install chromium" >&2; exit 2; }
	$(CHURN) score --as-of 2026-03-01
	$(CHURN) score --as-of 2026-07-01
	$(CHURN) recover --from 2025-07-01 --to 2026-03-31 --end-date 2026-06-30
	$(CHURN) monitor
	$(VENV)/bin/python -m pipelines.reporting.fetch --out data/screenshots
	for r in training:screenshots/training.html uplift:screenshots/uplift.html scoring:scores/as_of=2026-07-01/report.html \
	  recovery:recovery/recover_2025-07-01_2026-03-31/report.html monitoring:monitoring/report.html; do \
	  chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1280,2400 \
	    --screenshot=data/screenshots/$${r%%:*}.png "file://$(CURDIR)/data/$${r#*:}" 2>/dev/null; \
	done
	@ls data/screenshots

## Open the MLflow UI on http://127.0.0.1:5000 (one worker)
ui: setup
	MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false $(VENV)/bin/mlflow ui --host 127.0.0.1 --port 5000 --workers 1 \
	  --backend-store-uri $${MLFLOW_TRACKING_URI:-sqlite:///$(CURDIR)/mlflow.db} --default-artifact-root $(CURDIR)/mlartifacts

## Lint and check formatting with ruff (configured in pyproject.toml); run first by `make test`
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

## Format the code with ruff and apply its safe lint fixes
format: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

## Lint, then run the whole test suite (unit, data, model, end-to-end) in TEST_WORKERS processes (default 2)
test: lint
	$(VENV)/bin/pytest -n $(TEST_WORKERS) --dist loadfile --durations=15 -m "not seeds"

## Run the many-seed measurements on the default synthetic data (tens of minutes; SEED_WORKERS processes, default 2)
test-seeds: setup
	$(VENV)/bin/pytest -m seeds -s

## Run the fast tests only (no model training)
test-fast: setup
	$(VENV)/bin/pytest -m "not slow and not seeds"

## Benchmark every stage on 100k customers against a DuckDB reference (BENCH_SIZES=100k,300k,1M for the cost curve)
bench: setup
	$(VENV)/bin/python -m pipelines.benchmark.bench --sizes $(BENCH_SIZES)

## Remove the environment, generated data and the local MLflow store
clean:
	rm -rf $(VENV) $(TOOLS) data/telco data/synthetic data/synthetic_truth data/validated data/snapshots data/scores data/recovery data/bench mlflow.db mlartifacts
