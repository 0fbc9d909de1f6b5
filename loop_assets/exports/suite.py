"""The suite as of a day, and what every export carries: the case, its provenance and the suite version.

Every format is built from the same `Case` objects, so the provenance (where the case came from, as
data) and the version (which suite the file holds) are identical across formats. Embeddings and
other internal columns never leave the warehouse.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import duckdb
import polars as pl

from loop_assets.warehouse import ensure_tables

SOURCE_TOOL = "eval-loop"

# eval_suite columns that say where a case came from; each rides in every exported item's metadata.
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
    "last_run_id",
    "first_seen_at",
    "promoted_at",
]

# Columns an export reads besides the provenance; the suite frame must have all of them.
CASE_FIELDS = [
    "case_id",
    "day",
    "app",
    "input_messages",
    "input_text",
    "expected_output",
    "grading",
    "weight",
    "label",
    "status",
]


def suite_as_of(con: duckdb.DuckDBPyConnection, as_of: date | None = None) -> pl.DataFrame:
    """Active cases of the suite version `as_of` (all when None): a reproducible suite version.

    A case belongs to the versions from its `in_suite_from` day on: its trace's day, or, for a case that
    late data added after later days were graded, the day after the latest of them, so the suite as of
    a past day is the same before and after any later run.
    """
    ensure_tables(con)
    return con.execute(
        "SELECT * EXCLUDE (embedding) FROM eval_suite "
        "WHERE status = 'active' AND (? IS NULL OR coalesce(in_suite_from, day) <= ?) "
        "ORDER BY day, case_id",
        [as_of, as_of],
    ).pl()


def jsonable(value: Any) -> Any:
    """Plain JSON values: dates and timestamps as ISO 8601 text, NaN and infinities as null, containers
    converted recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


@dataclass(frozen=True)
class SuiteVersion:
    """Which suite a file holds: the day it is as of, how many cases, and a digest of their ids."""

    as_of: date | None
    pinned: bool
    cases: int
    digest: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "tool": SOURCE_TOOL,
            "as_of": self.as_of.isoformat() if self.as_of else None,
            "pinned": self.pinned,
            "cases": self.cases,
            "case_ids_sha256": self.digest,
        }


def suite_version(suite: pl.DataFrame, as_of: date | None = None) -> SuiteVersion:
    """The version of `suite`: pinned to `as_of`, else as of the last day it holds."""
    ids = sorted(suite["case_id"].to_list()) if suite.height else []
    digest = hashlib.sha256("\n".join(ids).encode()).hexdigest()
    effective = as_of if as_of is not None else (max(suite["day"].to_list()) if suite.height else None)
    return SuiteVersion(as_of=effective, pinned=as_of is not None, cases=suite.height, digest=digest)


@dataclass(frozen=True)
class Case:
    """One eval case as every exporter sees it (JSON-ready values)."""

    case_id: str
    day: str
    app: str
    messages: list[dict[str, Any]]
    input_text: str | None
    expected_output: str | None
    grading: dict[str, Any]
    weight: float | None
    label: str | None
    status: str
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def checks(self) -> list[dict[str, Any]]:
        return list(self.grading.get("checks", []))

    def metadata(self, version: SuiteVersion) -> dict[str, Any]:
        """What rides with the case in every format: identity, grading, provenance and suite version."""
        return {
            "case_id": self.case_id,
            "app": self.app,
            "label": self.label,
            "weight": self.weight,
            "day": self.day,
            "status": self.status,
            "input_text": self.input_text,
            "grading": self.grading,
            "provenance": self.provenance,
            "suite": version.as_dict(),
        }


def case_from_row(row: dict[str, Any]) -> Case:
    messages = jsonable(json.loads(row["input_messages"])) if row["input_messages"] else []
    return Case(
        case_id=row["case_id"],
        day=jsonable(row["day"]),
        app=row["app"],
        messages=messages if isinstance(messages, list) else [messages],
        input_text=row["input_text"],
        expected_output=row["expected_output"],
        grading=jsonable(json.loads(row["grading"])) if row["grading"] else {"pass": "all", "checks": []},
        weight=jsonable(row["weight"]),
        label=row["label"],
        status=row["status"],
        provenance={k: jsonable(row.get(k)) for k in PROVENANCE_FIELDS},
    )


def suite_cases(suite: pl.DataFrame) -> list[Case]:
    missing = [c for c in [*CASE_FIELDS, *PROVENANCE_FIELDS] if c not in suite.columns]
    if missing:
        raise ValueError(
            f"the suite frame lacks columns {missing} (build it with suite_as_of or the eval_suite schema)"
        )
    return [case_from_row(row) for row in suite.iter_rows(named=True)]


def read_case(item: dict[str, Any], metadata: dict[str, Any], *, input: Any, expected: Any) -> dict[str, Any]:
    """The common read-back shape every format's reader returns (used by the round-trip tests)."""
    return {
        "case_id": metadata.get("case_id"),
        "input": input,
        "expected_output": expected,
        "grading": metadata.get("grading"),
        "weight": metadata.get("weight"),
        "provenance": metadata.get("provenance"),
        "suite": metadata.get("suite"),
        "item": item,
    }


def write_jsonl_lines(path, items: list[dict[str, Any]]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for item in items:
            handle.write(json.dumps(item, ensure_ascii=False, sort_keys=True, allow_nan=False) + "\n")


def read_jsonl_lines(path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]
