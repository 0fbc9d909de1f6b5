"""What an ingest collects while it reads, in reading order, and the frames it returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import polars as pl

from loop_assets import tables
from loop_assets.capture.formats.base import (
    TRACE_FIELDS,
    Part,
)
from loop_assets.capture.formats.jsonl import SourceRecord

# The traces frame before dedup: raw_traces columns the parse fills, plus what a duplicate needs
# to become a quarantine row, plus the reading order.
_RAW = tables.schema("raw_traces")


TRACE_SCHEMA = pl.Schema(
    {
        **{c: t for c, t in _RAW.items() if c not in ("day", "ingest_run_id")},
        "_seq": pl.Int64,
        "_raw": pl.String,
        "_raw_truncated": pl.Boolean,
        "_raw_bytes": pl.Int64,
    }
)


QUARANTINE_SCHEMA = pl.Schema(
    {
        **{
            c: t for c, t in tables.schema("quarantined_records").items() if c not in ("partition_day", "ingest_run_id")
        },
        "_seq": pl.Int64,
    }
)


FILE_SCHEMA = pl.Schema({"source_file": pl.String, "file_size": pl.Int64, "file_mtime": tables.UTC_TS})


FILES_READ_SCHEMA = pl.Schema(
    {
        "source_file": pl.String,
        "file_size": pl.Int64,
        "file_mtime": tables.UTC_TS,
        "days": pl.List(pl.Date),
    }
)


SKIPPED_SCHEMA = tables.schema("skipped_items")
"""IngestResult.skipped: one row per item that is not an LLM call (a chain span, a SPAN observation, a tool run)."""


KEY_COLUMNS = ["_seq", "ts", "trace_id", "span_id", "record_hash", "source_file", "source_line", "source_format"]


SKIPPED_ROWS = pl.Schema(
    {**{c: t for c, t in SKIPPED_SCHEMA.items() if c not in ("partition_day", "ingest_run_id")}, "_anchor": pl.Int64}
)


@dataclass(frozen=True)
class IngestResult:
    traces: pl.DataFrame
    """RAW_TRACES rows, one per kept trace."""
    quarantine: pl.DataFrame
    """QUARANTINED_RECORDS rows: unparseable records and duplicates."""
    manifest: pl.DataFrame
    """INGEST_MANIFEST rows: one per (source_file, partition_day)."""
    skipped: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=SKIPPED_SCHEMA))
    """SKIPPED_SCHEMA rows: items inside records that are not LLM calls; not records, listed so none is unaccounted."""
    files: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=FILES_READ_SCHEMA))
    """FILES_READ_SCHEMA rows in reading order: every file read, its version, every partition day its
    records went to (whatever `days` asked for), so a later ingest knows which files it may skip
    (`ingest_plan`); empty when none of its records has a day (they are stored with a null partition day)."""


TRACE_CHUNK_ROWS = 50_000
"""Parsed traces are moved from Python lists into a Polars frame every this many rows, so a day of a
million traces is never held as millions of Python objects at once."""


class Rows:
    """Column lists of the traces, quarantine rows and files read, in reading order.

    A trace's original bytes are kept only when its (day, trace_id, span_id) was already read: only
    such a later copy becomes a quarantine row (`duplicate_record`/`conflicting_duplicate`) and needs
    them; the kept traces' bytes stay in the file, which `source_file`/`source_line` point to.
    """

    def __init__(self) -> None:
        self.traces: dict[str, list[Any]] = {c: [] for c in TRACE_SCHEMA}
        self.trace_chunks: list[pl.DataFrame] = []
        self.seen: set[tuple[date, str, str | None]] = set()
        self.quarantine: dict[str, list[Any]] = {c: [] for c in QUARANTINE_SCHEMA}
        self.files: dict[str, list[Any]] = {c: [] for c in FILE_SCHEMA}
        self.skipped: dict[str, list[Any]] = {c: [] for c in SKIPPED_ROWS}
        self.seq = 0

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def add_file(self, source_file: str, size: int | None, mtime: datetime | None) -> None:
        for column, value in zip(FILE_SCHEMA, (source_file, size, mtime), strict=True):
            self.files[column].append(value)

    def add_quarantine(
        self,
        rec: SourceRecord,
        source_file: str,
        keep: int,
        code: str,
        reason: str,
        day: date | None,
        source_format: str | None,
    ) -> int:
        raw, truncated = raw_text(rec, keep)
        values = {
            "source_file": source_file,
            "source_line": rec.line,
            "raw": raw,
            "raw_truncated": truncated,
            "raw_bytes": rec.raw_bytes,
            "reason_code": code,
            "reason": clean_text(reason),
            "day": day,
            "source_format": source_format,
            "_seq": self.next_seq(),
        }
        for column, value in values.items():
            self.quarantine[column].append(value)
        return self.seq

    def add_skipped(self, part: Part, line: int, source_file: str, path: str | None, fmt: str, anchor: int) -> None:
        values = {
            "source_file": source_file,
            "source_line": line,
            "source_path": path,
            "source_format": fmt,
            "trace_id": clean_text(part.trace_id) if part.trace_id else None,
            "item_id": clean_text(part.item_id) if part.item_id else None,
            "item": clean_text(part.label) or None,
            "reason": clean_text(part.skip or ""),
            "_anchor": anchor,
        }
        for column, value in values.items():
            self.skipped[column].append(value)

    def add_trace(
        self, trace: dict[str, Any], rec: SourceRecord, source_file: str, keep: int, digest: str, fmt: str
    ) -> int:
        key = (trace["ts"].date(), trace["trace_id"], trace["span_id"])  # ts is UTC here: the trace's day
        if key in self.seen:
            raw, truncated = raw_text(rec, keep)
        else:
            self.seen.add(key)
            raw, truncated = None, None
        values = {
            **{f: trace[f] for f in TRACE_FIELDS},
            "record_hash": digest,
            "source_format": fmt,
            "source_file": source_file,
            "source_line": rec.line,
            "_seq": self.next_seq(),
            "_raw": raw,
            "_raw_truncated": truncated,
            "_raw_bytes": rec.raw_bytes,
        }
        for column, value in values.items():
            self.traces[column].append(value)
        if len(self.traces["_seq"]) >= TRACE_CHUNK_ROWS:
            self.flush_traces()
        return self.seq

    def flush_traces(self) -> None:
        """Move the traces gathered so far (if any) into `trace_chunks`, as one frame."""
        if self.traces["_seq"]:
            self.trace_chunks.append(self.trace_frame())
            self.traces = {c: [] for c in TRACE_SCHEMA}

    def trace_frame(self) -> pl.DataFrame:
        """The traces not yet moved into `trace_chunks`, as a frame."""
        return pl.DataFrame(self.traces, schema=TRACE_SCHEMA)


def clean_text(text: str) -> str:
    """Text Polars can store: lone surrogates (from JSON `\\ud800` escapes) backslash-escaped."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def raw_text(rec: SourceRecord, keep: int) -> tuple[str, bool]:
    """The record's bytes as text (invalid UTF-8 backslash-escaped), cut to `keep` bytes."""
    kept = rec.raw[:keep]
    return kept.decode("utf-8", "backslashreplace"), rec.raw_bytes > len(kept)
