# eval-loop: `make run` runs the whole loop on the bundled sample traffic; `make test` runs the tests.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CLUSTER_STAMP := $(VENV)/.installed-cluster
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export DAGSTER_HOME := $(CURDIR)/.dagster_home
export EVAL_LOOP_INCOMING ?= $(CURDIR)/data/incoming
export EVAL_LOOP_WAREHOUSE ?= $(CURDIR)/data/warehouse.duckdb

.PHONY: setup run test dev lint clean bench

setup: $(STAMP)

# torch is pinned and installed first: on these machines torch==2.13.0 is a local CPU build,
# while an unpinned torch pulled in by sentence-transformers would be a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet "torch==2.13.0"
	$(BIN)/pip install --quiet -e ".[dev,bench]"
	touch $(STAMP)

# the `cluster` extra, for the tests of cluster mode (make run and make dev do not need it)
$(CLUSTER_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e ".[dev,bench,cluster]"
	touch $(CLUSTER_STAMP)

run: setup
	@mkdir -p "$(EVAL_LOOP_INCOMING)"
	@if [ -z "$$(ls -A "$(EVAL_LOOP_INCOMING)")" ]; then \
		echo "data/incoming is empty: copying the bundled sample traffic (data/sample)"; \
		cp data/sample/* "$(EVAL_LOOP_INCOMING)/"; \
	fi
	$(BIN)/eval-loop materialize
	$(BIN)/eval-loop summary

test: setup $(CLUSTER_STAMP)
	$(BIN)/pytest -q

# One day of generated traffic (100,000 traces) through the loop, re-run, baselines and embedding backends;
# prints the tables and writes data/bench/bench-<traces>.json and .md. Extra flags: BENCH_ARGS="--traces 1000000".
bench: setup
	$(BIN)/eval-loop bench $(BENCH_ARGS)

dev: setup
	$(BIN)/dagster dev -h 127.0.0.1 -p $${PORT:-3000}

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf data/warehouse.duckdb* data/incoming data/exports .dagster_home/storage .dagster_home/history \
		.dagster_home/logs .dagster_home/schedules
