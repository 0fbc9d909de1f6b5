"""Exports of the suite as of a day, with provenance, for other eval tools (JSONL here)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from loop_assets.warehouse import ensure_tables

PROVENANCE_FIELDS = [
    "source",
    "trace_id",
    "span_id",
    "source_file",
    "source_line",
    "source_format",
    "raw_partition",
    "failure_signals",
    "severity",
    "cluster_id",
    "cluster_size",
    "candidate_id",
    "nearest_case_id",
    "nearest_similarity",
    "dedup_threshold",
    "text_hash",
    "embedding_model",
    "promoted_run_id",
    "promoted_partition",
    "first_seen_at",
    "promoted_at",
]


def suite_as_of(con: duckdb.DuckDBPyConnection, as_of: date | None = None) -> pl.DataFrame:
    """Active cases promoted from days up to `as_of` (all days when None): a reproducible suite version."""
    ensure_tables(con)
    return con.execute(
        "SELECT * EXCLUDE (embedding) FROM eval_suite WHERE status = 'active' AND (? IS NULL OR day <= ?) "
        "ORDER BY day, case_id",
        [as_of, as_of],
    ).pl()


def case_record(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "case_id": row["case_id"],
        "app": row["app"],
        "input": json.loads(row["input_messages"]),
        "expected_output": row["expected_output"],
        "grading": json.loads(row["grading"]),
        "weight": row["weight"],
        "label": row["label"],
        "status": row["status"],
        "day": str(row["day"]),
        "provenance": {k: row[k] for k in PROVENANCE_FIELDS},
    }


def write_jsonl(suite: pl.DataFrame, out: Path) -> int:
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as handle:
        for row in suite.iter_rows(named=True):
            handle.write(json.dumps(case_record(row), default=str, ensure_ascii=False, sort_keys=True) + "\n")
    return suite.height
