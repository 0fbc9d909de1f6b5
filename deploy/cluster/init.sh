#!/usr/bin/env bash
# Once per cluster, before the first run (safe to repeat): Dagster's tables in Postgres, the writers' pool,
# and the DuckLake. Done once here because processes that create them at the same moment race (two runs
# starting together both insert the pool's row; two lakes created at once clash).
# Needs DAGSTER_HOME (holding deploy/cluster/dagster.yaml), DAGSTER_POSTGRES_URL, EVAL_LOOP_DUCKLAKE_CATALOG
# and EVAL_LOOP_DUCKLAKE_DATA; EVAL_LOOP_WRITERS (default 4) steps may write the lake at once.
set -euo pipefail
: "${DAGSTER_HOME:?set DAGSTER_HOME}" "${DAGSTER_POSTGRES_URL:?set DAGSTER_POSTGRES_URL}"
: "${EVAL_LOOP_DUCKLAKE_CATALOG:?set EVAL_LOOP_DUCKLAKE_CATALOG}" "${EVAL_LOOP_DUCKLAKE_DATA:?set EVAL_LOOP_DUCKLAKE_DATA}"
BIN=${BIN:-$(cd "$(dirname "$0")/../.." && pwd)/.venv/bin}
# loading the instance creates Dagster's tables (after a Dagster upgrade: `dagster instance migrate`)
"$BIN/dagster" instance concurrency set duckdb "${EVAL_LOOP_WRITERS:-4}"
"$BIN/python" -m loop_assets.scale.lake init
