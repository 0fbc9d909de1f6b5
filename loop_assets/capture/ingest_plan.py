"""Which trace files and days an ingest must read, given what the warehouse already holds.

A daily run asks for one day, but the incoming folder holds weeks of files, and re-running a day whose
files did not change would read them all again for the same rows. Every ingest therefore records, per
file it read, the version it read (size and modification time), every partition day its records went
to, and the fingerprint of what turns bytes into rows (`ingest_fingerprint`: the ingest and redaction
settings and the parser code). Then:

- a requested day is *unchanged*, and is left as it is, when every trace file in the folder is one an
  ingest with this fingerprint already read at its present version, and the files that hold the day
  are exactly the files (and versions) its stored partition was read from. Any new or changed file
  makes every requested day be read again: its days are not known until it is read;
- a file is *skipped* when it is unchanged and none of its recorded days is a day being read: its rows
  could only go to other days (routing and duplicates are per day), so reading it changes nothing.

Both are exact, not heuristics: what is reused or skipped is what reading would have produced again.
`ingest.reuse_unchanged_files: false` turns both off (every run reads every file, as before).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import duckdb
import polars as pl

from loop_assets.capture.incoming import scan_incoming
from loop_assets.capture.rows import IngestResult
from loop_assets.config import LoopConfig
from loop_assets.warehouse import ensure_tables, logged_days, query, read_partitions, replace_partitions

_PACKAGE = Path(__file__).resolve().parents[1]
PARSER_SOURCES = (
    "capture/ingest.py",
    "capture/rows.py",
    "capture/records.py",
    "capture/workers.py",
    "capture/routing.py",
    "capture/incoming.py",
    "capture/formats",
    "redaction.py",
)
"""Code whose change changes the rows an ingest writes; it is part of the fingerprint."""


def ingest_fingerprint(config: LoopConfig) -> str:
    """sha256 over the ingest and redaction settings and the parser code: rows read under another
    fingerprint may differ, so they are never reused."""
    digest = hashlib.sha256()
    ingest = config.ingest.model_dump(mode="json", exclude={"workers", "reuse_unchanged_files"})  # no effect on rows
    settings = {"ingest": ingest, "redaction": config.redaction.model_dump(mode="json")}
    digest.update(json.dumps(settings, sort_keys=True).encode())
    for name in PARSER_SOURCES:
        target = _PACKAGE / name
        for path in sorted(target.rglob("*.py")) if target.is_dir() else [target]:
            digest.update(path.relative_to(_PACKAGE).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def listed_versions(incoming: Path) -> dict[str, tuple[int, datetime]]:
    """The present version of every trace file under `incoming`, by its `source_file` name."""
    return {e.name: e.version for e in scan_incoming(incoming).entries}


@dataclass(frozen=True)
class IngestPlan:
    read_days: list[date]
    """Requested days to read from the files and write again."""
    reused_days: list[date]
    """Requested days left as they are: nothing they were read from has changed."""
    skip_files: set[str] = field(default_factory=set)
    """Files not read at all: unchanged, and none of their records goes to a day being read."""
    fingerprint: str = ""
    first_read: dict[str, int] = field(default_factory=dict)
    """source_file -> the order files were first read in (`ingested_files.read_order`), for `capture.ingest`:
    a file read before is read before a new one, so the first delivery of a record stays its source."""
    listed: dict[str, tuple[int, datetime]] = field(default_factory=dict)
    """The trace files the plan saw (`listed_versions`), which the accounting check holds the run to."""


def plan_ingest(
    days: Iterable[date],
    listed: dict[str, tuple[int, datetime]],
    known: pl.DataFrame,
    stored_manifest: pl.DataFrame,
    stored_days: set[date],
    fingerprint: str,
    reuse: bool = True,
) -> IngestPlan:
    """The plan for ingesting `days`.

    `listed`: `listed_versions` of the incoming folder; `known`: the ingested_files table; `stored_manifest`:
    ingest_manifest rows of the requested days; `stored_days`: days whose raw_traces partition is written.
    """
    days = sorted(set(days))
    first_read = {
        row["source_file"]: row["read_order"]
        for row in known.iter_rows(named=True)
        if row.get("read_order") is not None
    }
    if not reuse:
        return IngestPlan(days, [], set(), fingerprint, first_read, listed)
    current = {
        row["source_file"]: set(row["days"] or [])
        for row in known.iter_rows(named=True)
        if row["fingerprint"] == fingerprint
        and row["source_file"] in listed
        and listed[row["source_file"]] == (row["file_size"], row["file_mtime"])
    }
    reused: list[date] = []
    if set(listed) == set(current):  # no new or changed file: a day's rows can only come from these
        for day in days:
            holders = {(f, *listed[f]) for f, file_days in current.items() if day in file_days}
            stored = {
                (r["source_file"], r["file_size"], r["file_mtime"])
                for r in stored_manifest.filter(pl.col("partition_day") == day).iter_rows(named=True)
            }
            if day in stored_days and holders == stored:
                reused.append(day)
    read = [d for d in days if d not in reused]
    skip = {f for f, file_days in current.items() if not file_days & set(read)}
    return IngestPlan(read, reused, skip, fingerprint, first_read, listed)


def plan_from_warehouse(
    con: duckdb.DuckDBPyConnection, incoming: Path, days: Iterable[date], config: LoopConfig
) -> IngestPlan:
    """`plan_ingest` for the incoming folder against what the warehouse holds."""
    ensure_tables(con)
    days = list(days)
    return plan_ingest(
        days,
        listed_versions(incoming),
        query(con, "SELECT * FROM ingested_files"),
        read_partitions(con, "ingest_manifest", days),
        logged_days(con, "raw_traces"),
        ingest_fingerprint(config),
        reuse=config.ingest.reuse_unchanged_files,
    )


def store_ingest(
    con: duckdb.DuckDBPyConnection,
    plan: IngestPlan,
    result: IngestResult,
    run_id: str,
    traces: pl.DataFrame | None = None,
    quarantine: pl.DataFrame | None = None,
) -> None:
    """Replace the plan's read days with the ingest's rows (or the given `traces`/`quarantine`, e.g.
    redacted), and record the files read under the plan's fingerprint, in one transaction."""
    # a file keeps the place it was first read in; files read for the first time follow, in reading order
    first = max(plan.first_read.values(), default=0) + 1
    new = [f for f in result.files["source_file"] if f not in plan.first_read]
    order = {**plan.first_read, **{f: first + i for i, f in enumerate(new)}}
    files = result.files.with_columns(
        fingerprint=pl.lit(plan.fingerprint),
        ingest_run_id=pl.lit(run_id, pl.String),
        read_order=pl.col("source_file").replace_strict(order, default=None, return_dtype=pl.Int64),
    )
    replace_partitions(
        con,
        "raw_traces",
        plan.read_days,
        {
            "raw_traces": result.traces if traces is None else traces,
            "quarantined_records": result.quarantine if quarantine is None else quarantine,
            "ingest_manifest": result.manifest,
            "skipped_items": result.skipped,
        },
        run_id,
        upserts={"ingested_files": files},
        undated_files=result.files["source_file"].to_list(),  # rows of no day: replaced by whoever reads the file
    )


def stored_versions(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[int, datetime]]:
    """source_file -> the version (size, modification time) whose records the warehouse holds in full:
    the version last read, when every day its records go to was written from that version (a file of no
    day: when it was read). Read-only, for the sensor: a warehouse without the tables holds none."""
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    if not {"ingested_files", "ingest_manifest"} <= tables:
        return {}
    rows = con.execute(
        """
        WITH wanted AS (
            SELECT source_file, file_size, file_mtime, unnest(days) AS day FROM ingested_files
        ),
        missing AS (
            SELECT DISTINCT w.source_file FROM wanted w
            WHERE NOT EXISTS (
                SELECT 1 FROM ingest_manifest m
                WHERE m.source_file = w.source_file AND m.partition_day = w.day
                  AND m.file_size = w.file_size AND m.file_mtime = w.file_mtime
            )
        )
        SELECT source_file, file_size, file_mtime FROM ingested_files ANTI JOIN missing USING (source_file)
        """
    ).fetchall()
    return {name: (size, mtime) for name, size, mtime in rows}
