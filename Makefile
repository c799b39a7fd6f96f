# posebank: `make demo` runs the whole pipeline on generated fixtures; `make test` runs the test suite.
# Both build the virtual environment first (once; again only when requirements.lock or pyproject.toml change).

SHELL := bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.posebank-installed
export PATH := $(CURDIR)/$(BIN):$(PATH)
export GX_ANALYTICS_ENABLED := false
export DVC_NO_ANALYTICS := 1
# pip on this kind of machine warns about every absent local index folder: keep the output readable
PIP_FILTER := { grep -v --line-buffered "is ignored: it is neither a file nor a directory" || true; }

.PHONY: demo test lint venv clean-demo bench bench-quick

venv: $(STAMP)

$(STAMP): requirements.lock requirements-nodeps.txt build-constraints.txt pyproject.toml
	@echo "==> creating $(VENV) from requirements.lock (first time: a few minutes)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --disable-pip-version-check --progress-bar on -r requirements.lock 2>&1 | $(PIP_FILTER)
	@PIP_CONSTRAINT=$(CURDIR)/build-constraints.txt $(BIN)/python -m pip install --disable-pip-version-check --no-deps \
		-r requirements-nodeps.txt 2>&1 | $(PIP_FILTER)
	@$(BIN)/python -m pip install --disable-pip-version-check --no-deps --no-build-isolation -e . 2>&1 | $(PIP_FILTER)
	@$(BIN)/python -c "import posebank, h5py, cv2, cdflib, dvc" 
	@touch $(STAMP)
	@echo "==> $(VENV) ready"

demo: $(STAMP)
	@$(BIN)/python scripts/demo.py

test: $(STAMP)
	@echo "==> running the test suite"
	@$(BIN)/python -m pytest

lint: $(STAMP)
	@$(BIN)/ruff check src tests stages scripts bench dags

# speed targets: results as JSON in bench/results/ (never timed unit tests)
bench: $(STAMP)
	@$(BIN)/python bench/crop.py
	@$(BIN)/python bench/validate.py

bench-quick: $(STAMP)
	@$(BIN)/python bench/crop.py --quick --out bench/results/crop-quick.json

# cache layouts under DVC (single HDF5 file vs shard folder): needs about 3.3 x SIZE + 2 GiB free; 10-20 minutes
.PHONY: bench-cache
bench-cache: $(STAMP)
	@$(BIN)/python bench/cache.py $(if $(SIZE),--size-gb $(SIZE))

# merging: posebank's streaming merge vs a posepile-style in-memory merge of huge8-shaped synthetic sources (200k and
# 2M examples; SIZES="..." to change): about 10 minutes, 2 GiB kept under build/bench/merge (+ up to 18 GiB RAM and
# the baseline's pickle while it runs)
.PHONY: bench-merge
bench-merge: $(STAMP)
	@$(BIN)/python bench/merge.py $(if $(SIZES),--sizes $(SIZES))

# DVC's bookkeeping on the demo workspace (build/demo, built first when needed): no-op `dvc repro` and `dvc status`
# times, and the stages one dataset's param change reruns (bench/results/repro.json); a few minutes once built
.PHONY: bench-repro
bench-repro: $(STAMP)
	@$(BIN)/python bench/repro.py

# the reliability suite's long version: tests/reliability with POSEBANK_SOAK=1 (SEEDS kill points per stage and
# remote fault, default 5; every demo dataset built twice for determinism; longer load runs), about 30 minutes;
# the JSON summary (faults injected, runs recovered, bytes compared, bad inputs, quarantined items) goes to
# build/soak/summary.json
.PHONY: soak
soak: $(STAMP)
	@$(BIN)/python scripts/soak.py $(if $(SEEDS),--seeds $(SEEDS))

# a local Airflow for the DAGs (docs/airflow.md, "Airflow on this machine"): `airflow standalone` on
# http://127.0.0.1:8080 (AIRFLOW_PORT=N for another port), home .airflow/, the DAGs over this checkout
.PHONY: airflow airflow-stop airflow-screenshot
airflow: $(STAMP)
	@$(BIN)/python scripts/airflow_service.py start

airflow-stop: $(STAMP)
	@$(BIN)/python scripts/airflow_service.py stop

# build/airflow-grid.png: the grid of posebank_h36m in the running instance's UI (headless Chromium)
airflow-screenshot: $(STAMP)
	@$(BIN)/python scripts/airflow_service.py screenshot

clean-demo:
	rm -rf build/demo
