"""Capture: trace files in the incoming folder become raw_traces, quarantined_records and manifest rows.

`ingest(incoming, ingest_config, run_id)` reads every trace file under `incoming` (see
`list_trace_files`) and accounts for every record (design decision 9, "nothing is lost"):

- A record is one physical line of a file, plus one per whole-file problem (an empty file, a
  truncated gzip, an unreadable file); a line a format turns into several traces counts once per
  trace. Each record ends as exactly one row of `traces` or `quarantine`.
- Per file the format is `ingest.format`, or auto-detected from its first decoded records
  (`formats.detect_format`). A file no format recognises has every decoded record quarantined as
  `unknown_format`, with a reason naming what the formats look for.
- `day` is the UTC day of the trace's timestamp. `partition_day` is the record's own day when it
  has one; otherwise (unparseable lines, whole-file problems, out-of-range timestamps) the day of
  the nearest preceding record of the same file that has one, else the nearest following one, else
  the UTC day of the file's modification time. Quarantine rows keep `day` null when unknown.
- Duplicates: among the traces of one day with the same (trace_id, span_id), the first by
  (source_file, source_line) is kept; each later one is quarantined as `duplicate_record` (same
  `record_hash`: a redelivery) or `conflicting_duplicate` (different content under the same id),
  with a reason naming where the kept one is. A file delivered twice therefore adds nothing.
- `manifest` has one row per (source_file, partition_day): records routed there and the file's
  total, so `sum(records_routed) == file_records == traces + quarantine rows` per file.
- `days` restricts the returned rows (all three frames) to those partition days; routing and
  duplicates are always computed over the whole file set, so the rows of a day do not depend on
  which other days were requested.

Everything here is plain Python and Polars: the Dagster asset calls `ingest` and writes the frames.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from itertools import chain
from pathlib import Path
from typing import Any

import polars as pl

from loop_assets import tables
from loop_assets.config import IngestConfig
from loop_assets.formats import DETECT_SAMPLE, FORMATS, describe_formats, detect_format
from loop_assets.formats.base import (
    TRACE_FIELDS,
    RecordError,
    TraceFormat,
    earliest_allowed,
    record_hash,
    show,
    utc_day,
    utc_now,
)
from loop_assets.formats.jsonl import SourceRecord, read_records

TRACE_SUFFIXES = (".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz")
SKIP_SUFFIXES = (".tmp", ".part")

_STRING_FIELDS = tuple(f for f in TRACE_FIELDS if f not in ("ts", "latency_ms", "feedback_rating"))
_REQUIRED_STRINGS = ("trace_id", "app", "input_messages", "input_text", "metadata")
_FLOAT_FIELDS = ("latency_ms", "feedback_rating")
_DEDUP_KEYS = ["day", "trace_id", "span_id"]

# The traces frame before dedup: raw_traces columns the parse fills, plus what a duplicate needs
# to become a quarantine row, plus the reading order.
_RAW = tables.schema("raw_traces")
_TRACE_SCHEMA = pl.Schema(
    {
        **{c: t for c, t in _RAW.items() if c not in ("day", "ingest_run_id")},
        "_seq": pl.Int64,
        "_raw": pl.String,
        "_raw_truncated": pl.Boolean,
        "_raw_bytes": pl.Int64,
    }
)
_QUARANTINE_SCHEMA = pl.Schema(
    {
        **{
            c: t for c, t in tables.schema("quarantined_records").items() if c not in ("partition_day", "ingest_run_id")
        },
        "_seq": pl.Int64,
    }
)
_FILE_SCHEMA = pl.Schema({"source_file": pl.String, "file_size": pl.Int64, "file_mtime": tables.UTC_TS})


@dataclass(frozen=True)
class IngestResult:
    traces: pl.DataFrame
    """RAW_TRACES rows, one per kept trace."""
    quarantine: pl.DataFrame
    """QUARANTINED_RECORDS rows: unparseable records and duplicates."""
    manifest: pl.DataFrame
    """INGEST_MANIFEST rows: one per (source_file, partition_day)."""


def list_trace_files(incoming: Path) -> list[Path]:
    """Trace files under `incoming`, recursively, oldest first (modification time, then relative path).

    Reading order decides which copy of a duplicated record is kept: the first delivered, not the
    one whose name happens to sort first.

    Names ending .jsonl, .jsonl.gz, .ndjson or .ndjson.gz (any case). Hidden files and folders
    (a leading dot) and names ending .tmp or .part (files still being written) are skipped;
    symlinked folders are not followed. A missing folder has no files.
    """
    incoming = Path(incoming)
    if not incoming.exists():
        return []
    if not incoming.is_dir():
        raise NotADirectoryError(f"the incoming trace folder {incoming} is not a folder")
    found = []
    for root, dirs, names in os.walk(incoming):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in names:
            lower = name.lower()
            if name.startswith(".") or lower.endswith(SKIP_SUFFIXES) or not lower.endswith(TRACE_SUFFIXES):
                continue
            path = Path(root) / name
            if path.is_file():
                found.append(path)
    return sorted(found, key=lambda p: (p.stat().st_mtime_ns, p.relative_to(incoming).as_posix()))


def ingest(
    incoming: Path,
    ingest: IngestConfig,
    run_id: str,
    days: set[date] | None = None,
    now: datetime | None = None,
) -> IngestResult:
    """Read every trace file under `incoming` into traces, quarantine and manifest frames.

    `now` is the clock future timestamps are judged against (default: the current time).
    Raises ValueError only for unusable configuration; bad input never raises.
    """
    incoming = Path(incoming)
    now = utc_now(now)
    earliest_allowed(ingest)  # fail fast on a bad ingest.earliest_timestamp
    rows = _Rows()
    for path in list_trace_files(incoming):
        _read_file(path, path.relative_to(incoming).as_posix(), ingest, now, rows)
    return _assemble(rows, run_id, days, now)


# --- reading -------------------------------------------------------------------------------------


class _Rows:
    """Column lists of the traces, quarantine rows and files read, in reading order."""

    def __init__(self) -> None:
        self.traces: dict[str, list[Any]] = {c: [] for c in _TRACE_SCHEMA}
        self.quarantine: dict[str, list[Any]] = {c: [] for c in _QUARANTINE_SCHEMA}
        self.files: dict[str, list[Any]] = {c: [] for c in _FILE_SCHEMA}
        self.seq = 0

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def add_file(self, source_file: str, size: int | None, mtime: datetime | None) -> None:
        for column, value in zip(_FILE_SCHEMA, (source_file, size, mtime), strict=True):
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
    ) -> None:
        raw, truncated = _raw_text(rec, keep)
        values = {
            "source_file": source_file,
            "source_line": rec.line,
            "raw": raw,
            "raw_truncated": truncated,
            "raw_bytes": rec.raw_bytes,
            "reason_code": code,
            "reason": _clean(reason),
            "day": day,
            "source_format": source_format,
            "_seq": self.next_seq(),
        }
        for column, value in values.items():
            self.quarantine[column].append(value)

    def add_trace(
        self, trace: dict[str, Any], rec: SourceRecord, source_file: str, keep: int, digest: str, fmt: str
    ) -> None:
        raw, truncated = _raw_text(rec, keep)
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


def _read_file(path: Path, source_file: str, ingest: IngestConfig, now: datetime, rows: _Rows) -> None:
    try:
        stat = path.stat()
        rows.add_file(source_file, stat.st_size, datetime.fromtimestamp(stat.st_mtime, UTC))
    except OSError:
        rows.add_file(source_file, None, None)
    keep = ingest.quarantine_raw_max_bytes
    records: Iterator[SourceRecord] = read_records(path, max_record_bytes=ingest.max_record_bytes, keep_bytes=keep)
    records_head: list[SourceRecord] = []
    if ingest.format == "auto":  # look at the first decoded records, then read on from there
        decoded = 0
        for rec in records:
            records_head.append(rec)
            decoded += rec.ok
            if decoded >= DETECT_SAMPLE:
                break
    fmt, no_format_reason = _file_format(ingest, records_head)
    fmt_name = fmt.name if fmt else None

    for rec in chain(records_head, records):
        if rec.error is not None:
            rows.add_quarantine(rec, source_file, keep, rec.error.code, rec.error.reason, None, fmt_name)
            continue
        assert rec.obj is not None
        if fmt is None:
            keys = ", ".join(show(k, 30) for k in list(rec.obj)[:12]) or "none"
            rows.add_quarantine(
                rec, source_file, keep, "unknown_format", f"{no_format_reason}; this record's keys: {keys}", None, None
            )
            continue
        try:
            traces = fmt.normalise(rec.obj, ingest, now=now)
            problem = _check_traces(traces, fmt.name)
        except RecordError as exc:
            day = utc_day(exc.ts) if exc.ts is not None else None
            rows.add_quarantine(rec, source_file, keep, exc.code, exc.reason, day, fmt_name)
            continue
        except Exception as exc:  # a parser bug must not stop the ingest or lose the record
            reason = f"the {fmt.name} parser failed on this record: {type(exc).__name__}: {exc}"
            rows.add_quarantine(rec, source_file, keep, "parser_error", reason, None, fmt_name)
            continue
        if problem is not None:
            rows.add_quarantine(rec, source_file, keep, *problem, None, fmt_name)
            continue
        digest = record_hash(rec.obj)
        for trace in traces:
            rows.add_trace(_clean_trace(trace), rec, source_file, keep, digest, fmt.name)


def _file_format(ingest: IngestConfig, head: list[SourceRecord]) -> tuple[TraceFormat | None, str]:
    """The file's format, or None and why (for the unknown_format reason)."""
    if ingest.format != "auto":
        fmt = FORMATS.get(ingest.format)
        if fmt is None:
            return None, f"ingest.format is {ingest.format!r}, which is not a registered format {sorted(FORMATS)}"
        return fmt, ""
    name = detect_format(r.obj for r in head if r.obj is not None)
    if name is None:
        checked = sum(1 for r in head if r.ok)
        return None, (
            f"no registered trace format recognises this file (checked its first {checked} JSON "
            f"records): {describe_formats()}"
        )
    return FORMATS[name], ""


def _check_traces(traces: Any, fmt: str) -> tuple[str, str] | None:
    """A (code, reason) when a format broke its contract, so a parser bug quarantines, not crashes."""
    if not isinstance(traces, list):
        return "parser_error", f"the {fmt} parser returned {type(traces).__name__}, not a list of traces"
    if not traces:
        return "no_trace", f"the {fmt} parser found no LLM call in this record"
    for trace in traces:
        missing = [f for f in TRACE_FIELDS if f not in trace]
        if missing:
            return "parser_error", f"the {fmt} parser returned a trace without {missing}"
        ts = trace["ts"]
        if not isinstance(ts, datetime) or ts.tzinfo is None:
            return "parser_error", f"the {fmt} parser returned ts {ts!r}, not an aware datetime"
        bad = [f for f in _STRING_FIELDS if trace[f] is not None and not isinstance(trace[f], str)]
        bad += [f for f in _REQUIRED_STRINGS if trace[f] is None]
        bad += [
            f
            for f in _FLOAT_FIELDS
            if trace[f] is not None and (isinstance(trace[f], bool) or not isinstance(trace[f], int | float))
        ]
        if bad:
            return "parser_error", f"the {fmt} parser returned wrongly typed fields {bad}"
    return None


def _clean(text: str) -> str:
    """Text Polars can store: lone surrogates (from JSON `\\ud800` escapes) backslash-escaped."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def _clean_trace(trace: dict[str, Any]) -> dict[str, Any]:
    cleaned = {f: (_clean(v) if isinstance(v, str) else v) for f, v in trace.items()}
    cleaned["ts"] = trace["ts"].astimezone(UTC)
    for f in _FLOAT_FIELDS:
        if cleaned[f] is not None:
            cleaned[f] = float(cleaned[f])
    return cleaned


def _raw_text(rec: SourceRecord, keep: int) -> tuple[str, bool]:
    """The record's bytes as text (invalid UTF-8 backslash-escaped), cut to `keep` bytes."""
    kept = rec.raw[:keep]
    return kept.decode("utf-8", "backslashreplace"), rec.raw_bytes > len(kept)


# --- routing and dedup ----------------------------------------------------------------------------


def _assemble(rows: _Rows, run_id: str, days: set[date] | None, now: datetime) -> IngestResult:
    files = pl.DataFrame(rows.files, schema=_FILE_SCHEMA)
    parsed = pl.DataFrame(rows.traces, schema=_TRACE_SCHEMA).with_columns(day=pl.col("ts").dt.date())
    problems = pl.DataFrame(rows.quarantine, schema=_QUARANTINE_SCHEMA)

    # Duplicates: per (day, trace_id, span_id), the first in reading order is kept.
    parsed = parsed.sort("_seq").with_columns(
        _rank=pl.int_range(pl.len()).over(_DEDUP_KEYS),
        _kept_file=pl.col("source_file").first().over(_DEDUP_KEYS),
        _kept_line=pl.col("source_line").first().over(_DEDUP_KEYS),
        _kept_hash=pl.col("record_hash").first().over(_DEDUP_KEYS),
    )
    same = pl.col("record_hash") == pl.col("_kept_hash")
    trace_label = (
        pl.when(pl.col("span_id").is_null())
        .then(pl.col("trace_id"))
        .otherwise(pl.format("{} span {}", pl.col("trace_id"), pl.col("span_id")))
    )
    kept_at = pl.format("{}:{}", pl.col("_kept_file"), pl.col("_kept_line"))
    here = pl.format("{}:{}", pl.col("source_file"), pl.col("source_line"))
    duplicates = parsed.filter(pl.col("_rank") > 0).select(
        "source_file",
        "source_line",
        raw=pl.col("_raw"),
        raw_truncated=pl.col("_raw_truncated"),
        raw_bytes=pl.col("_raw_bytes"),
        reason_code=pl.when(same).then(pl.lit("duplicate_record")).otherwise(pl.lit("conflicting_duplicate")),
        reason=pl.when(same)
        .then(
            pl.format(
                "trace `{}` of {} was already read from {} with identical content (a redelivery); kept that one",
                trace_label,
                pl.col("day"),
                kept_at,
            )
        )
        .otherwise(
            pl.format(
                "trace id `{}` of {} is used by two different records: kept {}, quarantined this one ({})",
                trace_label,
                pl.col("day"),
                kept_at,
                here,
            )
        ),
        day=pl.col("day"),
        source_format=pl.col("source_format"),
        _seq=pl.col("_seq"),
    )

    # Routing: a record without a day of its own goes with its neighbours in the file.
    fallback_day = pl.col("file_mtime").dt.date().fill_null(pl.lit(now.date()))
    ledger = (
        pl.concat([parsed.select("_seq", "source_file", "day"), problems.select("_seq", "source_file", "day")])
        .sort("_seq")
        .with_columns(partition_day=pl.col("day").forward_fill().backward_fill().over("source_file"))
        .join(files.select("source_file", "file_mtime"), on="source_file", how="left")
        .with_columns(partition_day=pl.col("partition_day").fill_null(fallback_day))
        .select("_seq", "source_file", "partition_day")
    )
    routes = ledger.select("_seq", "partition_day")

    traces = (
        parsed.filter(pl.col("_rank") == 0)
        .join(routes, on="_seq", how="left")
        .with_columns(ingest_run_id=pl.lit(run_id, pl.String))
        .sort("_seq")
    )
    quarantine = (
        pl.concat([problems, duplicates])
        .join(routes, on="_seq", how="left")
        .sort("_seq")
        .with_columns(ingest_run_id=pl.lit(run_id, pl.String))
    )
    manifest = (
        ledger.group_by("source_file", "partition_day")
        .agg(records_routed=pl.len().cast(pl.Int64))
        .with_columns(file_records=pl.col("records_routed").sum().over("source_file"))
        .join(files, on="source_file", how="left")
        .with_columns(ingest_run_id=pl.lit(run_id, pl.String))
        .sort("source_file", "partition_day")
    )

    if days is not None:
        wanted = sorted(days)
        traces = traces.filter(pl.col("day").is_in(wanted))
        quarantine = quarantine.filter(pl.col("partition_day").is_in(wanted))
        manifest = manifest.filter(pl.col("partition_day").is_in(wanted))

    return IngestResult(
        traces=tables.conform("raw_traces", traces),
        quarantine=tables.conform("quarantined_records", quarantine),
        manifest=tables.conform("ingest_manifest", manifest),
    )
