"""Capture: trace files in the incoming folder become raw_traces, quarantined_records and manifest rows.

`ingest(incoming, ingest_config, run_id)` reads every trace file under `incoming` (see
`list_trace_files`) and accounts for every record (design decision 9, "nothing is lost"):

- A record is one physical line of a JSON Lines file, one element of a whole-document JSON array
  (`formats.documents`), or a whole JSON document that is one object (an OTLP export request),
  plus one per whole-file problem (an empty file, a truncated gzip, an unreadable file).
- Items: a record can hold several items (the spans of an OTLP export request, the observations of
  a Langfuse trace, the runs of a LangSmith run tree: the format's `split`). Each LLM item counts as
  one record of its own and is normalised alone, so a broken span is quarantined alone, never with
  its neighbours. Items that are not LLM calls (a chain or tool span, a SPAN observation, a chain
  run) are not records: they are listed in `IngestResult.skipped`, one row each with the reason.
  A JSON Lines record (or a single-object document) with no LLM item at all (and no broken one) is
  one `no_trace` quarantine row naming what it held: a LangSmith chain run on its own line, an OTLP
  export request of HTTP spans only. In a JSON array document only the LLM calls count as records:
  an element without one (a SPAN observation, a chain run) adds no row, its items are listed as
  skipped, and only a document that yields no row at all is one `no_trace` record. So every line
  and every document ends as at least one row, and each LLM call as exactly one row of `traces` or
  `quarantine` (a record a format turns into several traces counts once per trace).
- Where: an item's `source_line` is the line its object starts on (the record's own line in a JSON
  Lines file; in a pretty-printed document, the item's line; a one-line document gives line 1), its
  quarantined `raw` is the item's own bytes, and a trace from an item, or from an element of a
  document, carries `source_path` in its metadata (`resourceSpans[0].scopeSpans[0].spans[3]`,
  `[12]`, `data[12].observations[2]`); a quarantined item names it at the start of its reason.
- Per file the format is `ingest.format`, or auto-detected from its first decoded records
  (`formats.detect_format`). A file no format recognises has every decoded record quarantined as
  `unknown_format`, with a reason naming what the formats look for.
- `day` is the UTC day of the trace's timestamp. `partition_day` is the record's own day when it
  has one; otherwise (unparseable lines, whole-file problems, out-of-range timestamps) the day of
  the nearest preceding record of the same file that has one, else the nearest following one, else
  the UTC day of the file's modification time. Quarantine rows keep `day` null when unknown. A
  skipped item goes with the first row of its record.
- Duplicates: among the traces of one day with the same (trace_id, span_id), the first by
  (source_file, source_line) is kept; each later one is quarantined as `duplicate_record` (same
  `record_hash`, the hash of the item: a redelivery) or `conflicting_duplicate` (different content
  under the same id), with a reason naming where the kept one is. A file delivered twice therefore
  adds nothing.
- `manifest` has one row per (source_file, partition_day): records routed there and the file's
  total, so `sum(records_routed) == file_records == traces + quarantine rows` per file.
- `days` restricts the returned rows (all four frames) to those partition days; routing and
  duplicates are always computed over the whole file set, so the rows of a day do not depend on
  which other days were requested.

Everything here is plain Python and Polars: the Dagster asset calls `ingest` and writes the frames.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import math
import multiprocessing
import os
import re
import sys
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from itertools import chain
from pathlib import Path
from typing import Any

import polars as pl

from loop_assets import tables
from loop_assets.capture.formats import DETECT_SAMPLE, FORMATS, describe_formats, detect_format
from loop_assets.capture.formats.base import (
    TRACE_FIELDS,
    Part,
    RecordError,
    TraceFormat,
    describe_skipped,
    earliest_allowed,
    record_hash,
    show,
    split_record,
    utc_day,
    utc_now,
)
from loop_assets.capture.formats.documents import locate, path_text, read_document
from loop_assets.capture.formats.jsonl import SourceRecord, decoded, read_records
from loop_assets.capture.incoming import Entry, scan_incoming, source_name, trace_kind
from loop_assets.config import IngestConfig
from loop_assets.warehouse import pause_point

_STRING_FIELDS = tuple(f for f in TRACE_FIELDS if f not in ("ts", "latency_ms", "feedback_rating"))
_REQUIRED_STRINGS = ("trace_id", "app", "input_messages", "input_text", "metadata")
_FLOAT_FIELDS = ("latency_ms", "feedback_rating")
_DEDUP_KEYS = ["day", "trace_id", "span_id"]
_TOO_DEEP = "the record is nested too deeply for the {fmt} parser to read (hundreds of levels of objects or arrays)"

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

FILES_READ_SCHEMA = pl.Schema(
    {
        "source_file": pl.String,
        "file_size": pl.Int64,
        "file_mtime": tables.UTC_TS,
        "days": pl.List(pl.Date),
        "undated_day": pl.Date,
    }
)
SKIPPED_SCHEMA = tables.schema("skipped_items")
"""IngestResult.skipped: one row per item that is not an LLM call (a chain span, a SPAN observation, a tool run)."""
_KEY_COLUMNS = ["_seq", "ts", "trace_id", "span_id", "record_hash", "source_file", "source_line", "source_format"]
_SKIPPED_ROWS = pl.Schema(
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
    (`ingest_plan`), and `undated_day`: the day all its records went to when none has a day of its own."""


def list_trace_files(incoming: Path, first_read: Mapping[str, int] | None = None) -> list[Path]:
    """Trace files under `incoming` (recursively) in reading order: `incoming.scan_incoming`'s entries,
    refused ones (links leading outside, FIFOs, ...) included, since each is accounted for by a row."""
    return [entry.path for entry in scan_incoming(incoming, first_read).entries]


def ingest(
    incoming: Path,
    ingest: IngestConfig,
    run_id: str,
    days: set[date] | None = None,
    now: datetime | None = None,
    skip_files: set[str] | None = None,
    first_read: Mapping[str, int] | None = None,
) -> IngestResult:
    """Read every trace file under `incoming` into traces, quarantine and manifest frames.

    `now` is the clock future timestamps are judged against (default: the current time).
    `skip_files` (paths relative to `incoming`) are not read: `ingest_plan` names files whose records
    cannot reach `days`. `first_read` (source_file -> order) is the order earlier ingests first read
    files in, which comes before modification times (see `incoming.scan_incoming`). Raises ValueError
    only for unusable configuration; bad input never raises.
    """
    incoming = Path(incoming)
    now = utc_now(now)
    earliest = earliest_allowed(ingest)  # fail fast on a bad ingest.earliest_timestamp
    rows = _Rows()
    workers = _Workers(ingest.workers or _cores())
    try:
        for entry in scan_incoming(incoming, first_read).entries:
            if skip_files and entry.name in skip_files:
                continue
            if entry.refused is not None:
                _refuse(entry, ingest, rows)
                continue
            _read_file(entry.path, entry.name, ingest, now, rows, workers, document=entry.is_document)
    finally:
        workers.close()
    return _assemble(rows, run_id, days, now, min(utc_day(earliest), now.date()))


def ingest_file(
    path: Path, ingest: IngestConfig, run_id: str, document: bool | None = None, now: datetime | None = None
) -> IngestResult:
    """`ingest` of the one file at `path`, wherever it is (named by its file name): how `file_days`
    learns exactly which days a file's records go to."""
    now = utc_now(now)
    earliest = earliest_allowed(ingest)
    rows = _Rows()
    workers = _Workers(ingest.workers or _cores())
    try:
        path = Path(path)
        _read_file(path, source_name(path, path.parent), ingest, now, rows, workers, document=document)
    finally:
        workers.close()
    return _assemble(rows, run_id, None, now, min(utc_day(earliest), now.date()))


# --- reading -------------------------------------------------------------------------------------


TRACE_CHUNK_ROWS = 50_000
"""Parsed traces are moved from Python lists into a Polars frame every this many rows, so a day of a
million traces is never held as millions of Python objects at once."""


class _Rows:
    """Column lists of the traces, quarantine rows and files read, in reading order.

    A trace's original bytes are kept only when its (day, trace_id, span_id) was already read: only
    such a later copy becomes a quarantine row (`duplicate_record`/`conflicting_duplicate`) and needs
    them; the kept traces' bytes stay in the file, which `source_file`/`source_line` point to.
    """

    def __init__(self) -> None:
        self.traces: dict[str, list[Any]] = {c: [] for c in _TRACE_SCHEMA}
        self.trace_chunks: list[pl.DataFrame] = []
        self.seen: set[tuple[date, str, str | None]] = set()
        self.quarantine: dict[str, list[Any]] = {c: [] for c in _QUARANTINE_SCHEMA}
        self.files: dict[str, list[Any]] = {c: [] for c in _FILE_SCHEMA}
        self.skipped: dict[str, list[Any]] = {c: [] for c in _SKIPPED_ROWS}
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
    ) -> int:
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
        return self.seq

    def add_skipped(self, part: Part, line: int, source_file: str, path: str | None, fmt: str, anchor: int) -> None:
        values = {
            "source_file": source_file,
            "source_line": line,
            "source_path": path,
            "source_format": fmt,
            "trace_id": _clean(part.trace_id) if part.trace_id else None,
            "item_id": _clean(part.item_id) if part.item_id else None,
            "item": _clean(part.label) or None,
            "reason": _clean(part.skip or ""),
            "_anchor": anchor,
        }
        for column, value in values.items():
            self.skipped[column].append(value)

    def add_trace(
        self, trace: dict[str, Any], rec: SourceRecord, source_file: str, keep: int, digest: str, fmt: str
    ) -> int:
        key = (trace["ts"].date(), trace["trace_id"], trace["span_id"])  # ts is UTC here: the trace's day
        if key in self.seen:
            raw, truncated = _raw_text(rec, keep)
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
            self.trace_chunks.append(self.trace_frame())
            self.traces = {c: [] for c in _TRACE_SCHEMA}
        return self.seq

    def trace_frame(self) -> pl.DataFrame:
        """The traces not yet moved into `trace_chunks`, as a frame."""
        return pl.DataFrame(self.traces, schema=_TRACE_SCHEMA)


def _refuse(entry: Entry, ingest: IngestConfig, rows: _Rows) -> None:
    """An entry that is not opened (a link leading outside the folder, a FIFO, ...): one row saying why."""
    rows.add_file(entry.name, entry.size, datetime.fromtimestamp(entry.mtime, UTC))
    rec = SourceRecord(0, b"", 0, error=RecordError("unreadable_file", entry.refused or "not read"))
    rows.add_quarantine(
        rec, entry.name, ingest.quarantine_raw_max_bytes, "unreadable_file", entry.refused or "", None, None
    )


def _read_file(
    path: Path,
    source_file: str,
    ingest: IngestConfig,
    now: datetime,
    rows: _Rows,
    workers: _Workers | None = None,
    document: bool | None = None,
) -> None:
    try:
        stat = path.stat()
        rows.add_file(source_file, stat.st_size, datetime.fromtimestamp(stat.st_mtime, UTC))
    except OSError:
        rows.add_file(source_file, None, None)
    keep = ingest.quarantine_raw_max_bytes
    lines: Iterator[SourceRecord] | None = None
    if document if document is not None else trace_kind(path.name) == "document":
        records = read_document(path, max_record_bytes=ingest.max_record_bytes, keep_bytes=keep)
    else:  # lines are decoded here, or in batches by worker processes (`_read_in_batches`)
        lines = read_records(path, max_record_bytes=ingest.max_record_bytes, keep_bytes=keep, decode=False)
        records = (decoded(rec, ingest.max_record_bytes) for rec in lines)
    records_head: list[SourceRecord] = []
    if ingest.format == "auto":  # look at the first decoded records, then read on from there
        ok = 0
        for rec in records:
            records_head.append(rec)
            ok += rec.ok
            if ok >= DETECT_SAMPLE:
                break
    fmt, no_format_reason = _file_format(ingest, records_head)
    fmt_name = fmt.name if fmt else None

    file_start = rows.seq
    pending: list[tuple[Part, SourceRecord, str | None]] = []  # skipped document elements awaiting a row
    if lines is not None and fmt is not None and getattr(fmt, "split", None) is None and workers is not None:
        for rec in records_head:
            _read_one(rec, fmt, "", source_file, ingest, now, rows, pending)
        _read_in_batches(lines, fmt, source_file, ingest, now, rows, workers)
        return
    for rec in chain(records_head, records):
        before = rows.seq
        _read_one(rec, fmt, no_format_reason, source_file, ingest, now, rows, pending)
        if pending and rows.seq > before:  # skipped items go with the next row of their file
            for part, view, where in pending:
                rows.add_skipped(part, view.line, source_file, where, fmt_name or "", before + 1)
            pending.clear()
    if pending:
        assert fmt is not None
        if rows.seq > file_start:
            anchor = rows.seq
        else:  # a document without a single LLM call: one record says so
            reason = describe_skipped([p for p, _, _ in pending]).replace("in this record", "in this document")
            anchor = rows.add_quarantine(pending[0][1], source_file, keep, "no_trace", reason, None, fmt.name)
        for part, view, where in pending:
            rows.add_skipped(part, view.line, source_file, where, fmt.name, anchor)


def _read_one(
    rec: SourceRecord,
    fmt: TraceFormat | None,
    no_format_reason: str,
    source_file: str,
    ingest: IngestConfig,
    now: datetime,
    rows: _Rows,
    pending: list[tuple[Part, SourceRecord, str | None]],
) -> None:
    """One record of a file: its rows (or quarantine row) added to `rows`."""
    keep = ingest.quarantine_raw_max_bytes
    fmt_name = fmt.name if fmt else None
    if rec.error is not None:
        rows.add_quarantine(rec, source_file, keep, rec.error.code, rec.error.reason, None, fmt_name)
    elif fmt is None:
        assert rec.obj is not None
        keys = ", ".join(show(k, 30) for k in list(rec.obj)[:12]) or "none"
        rows.add_quarantine(
            rec, source_file, keep, "unknown_format", f"{no_format_reason}; this record's keys: {keys}", None, None
        )
    else:
        _read_record(rec, fmt, source_file, ingest, now, rows, pending)


# --- large JSON Lines files: parsed in batches by worker processes ---------------------------------

BATCH_LINES = 5_000
"""Lines per batch a worker parses. A file of one batch or less is parsed in the run's own process."""


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@functools.cache
def _main_is_guarded() -> bool:
    """Whether spawned workers may start: each re-imports the program's main module, which must keep
    its work under `if __name__ == "__main__":` (the CLI, Dagster and pytest do). A script without that
    guard would run again in every worker, so its ingest parses in its own process instead."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if path is None:  # an interactive session or a notebook: nothing is re-imported
        return True
    try:
        source = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return "__main__" in source


class _Workers:
    """A pool of `size` processes, started on first use (small files never start one)."""

    def __init__(self, size: int) -> None:
        self.size = max(1, size) if _main_is_guarded() else 1
        self._pool: ProcessPoolExecutor | None = None

    def submit(self, batch: list[SourceRecord], *args: Any) -> Future | None:
        """The batch's future result, or None when the pool is broken (a worker was killed)."""
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self.size, mp_context=multiprocessing.get_context("spawn"))
        # plain tuples for undecoded lines: pickling them is ~8x cheaper than pickling the records
        payload = [(rec.line, rec.raw, rec.raw_bytes) if rec.undecoded else rec for rec in batch]
        try:
            return self._pool.submit(_parse_batch_in_worker, payload, *args)
        except BrokenProcessPool:
            return None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None


def _parse_batch(
    batch: list[SourceRecord | tuple[int, bytes, int]],
    fmt_name: str,
    source_file: str,
    ingest: IngestConfig,
    now: datetime,
) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """The rows of a run of lines, numbered from 1 (`_merge_batch` moves them into place).

    Runs in a worker process: the same `_read_one` as the serial path, so the rows are the same."""
    rows = _Rows()
    fmt = FORMATS[fmt_name]
    for item in batch:
        rec = SourceRecord(*item, undecoded=True) if isinstance(item, tuple) else item
        _read_one(decoded(rec, ingest.max_record_bytes), fmt, "", source_file, ingest, now, rows, [])
    traces = pl.concat([*rows.trace_chunks, rows.trace_frame()])
    return traces, pl.DataFrame(rows.quarantine, schema=_QUARANTINE_SCHEMA), rows.seq


def _parse_batch_in_worker(
    batch: list[SourceRecord | tuple[int, bytes, int]],
    fmt_name: str,
    source_file: str,
    ingest: IngestConfig,
    now: datetime,
) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    pause_point("capture:worker")  # test-only hook (a worker killed mid-batch), inert unless EVAL_LOOP_PAUSE_AT
    return _parse_batch(batch, fmt_name, source_file, ingest, now)


def _read_in_batches(
    lines: Iterator[SourceRecord],
    fmt: TraceFormat,
    source_file: str,
    ingest: IngestConfig,
    now: datetime,
    rows: _Rows,
    workers: _Workers,
) -> None:
    """The rest of a JSON Lines file of a format with one trace per line: batches of lines parsed by the
    workers (a few in flight, merged in file order), or here when the file is one batch or there is one core.

    A batch whose worker fails (a killed process) is parsed here instead: nothing is lost."""
    batches = _batched(lines, BATCH_LINES)
    first = next(batches, None)
    if first is None:
        return
    second = next(batches, None)
    args = (fmt.name, source_file, ingest, now)
    if second is None or workers.size == 1:
        for batch in chain([first], [second] if second else [], batches):
            _merge_batch(rows, _parse_batch(batch, *args), batch, ingest)
        return
    in_flight: deque[tuple[Future | None, list[SourceRecord]]] = deque()
    for batch in chain([first, second], batches):
        in_flight.append((workers.submit(batch, *args), batch))
        while len(in_flight) > 2 * workers.size:
            _merge_next(rows, in_flight, args, ingest)
    while in_flight:
        _merge_next(rows, in_flight, args, ingest)


def _merge_next(
    rows: _Rows,
    in_flight: deque[tuple[Future | None, list[SourceRecord]]],
    args: tuple[Any, ...],
    ingest: IngestConfig,
) -> None:
    future, batch = in_flight.popleft()
    try:
        result = future.result() if future is not None else _parse_batch(batch, *args)
    except Exception:  # the worker died or could not run: the batch is still here
        result = _parse_batch(batch, *args)
    _merge_batch(rows, result, batch, ingest)


def _batched(items: Iterable[SourceRecord], size: int) -> Iterator[list[SourceRecord]]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def _merge_batch(
    rows: _Rows, result: tuple[pl.DataFrame, pl.DataFrame, int], batch: list[SourceRecord], ingest: IngestConfig
) -> None:
    """Add a parsed batch to `rows` after everything read before it, as if read here.

    Its rows are renumbered after the rows so far. A worker sees only its batch, so a trace it kept
    without bytes may repeat one of an earlier batch: it gets its line's bytes here, as `_Rows.add_trace`
    would have given them (one trace per line: the trace's bytes are its line's)."""
    traces, quarantine, count = result
    offset = rows.seq
    rows.seq += count
    if traces.height:
        traces = traces.with_columns(pl.col("_seq") + offset)
        keys = traces.select(pl.col("ts").dt.date(), "trace_id", "span_id").rows()
        raws = traces["_raw"].to_list()
        fill: dict[int, tuple[str, bool]] = {}
        lines: dict[int, SourceRecord] | None = None
        for i, key in enumerate(keys):
            if key not in rows.seen:
                rows.seen.add(key)
            elif raws[i] is None:
                lines = lines if lines is not None else {rec.line: rec for rec in batch}
                fill[i] = _raw_text(lines[traces["source_line"][i]], ingest.quarantine_raw_max_bytes)
        if fill:
            at = pl.Series(list(fill), dtype=pl.UInt32)
            traces = traces.with_columns(
                traces["_raw"].scatter(at, [raw for raw, _ in fill.values()]),
                traces["_raw_truncated"].scatter(at, [cut for _, cut in fill.values()]),
            )
        if rows.traces["_seq"]:
            rows.trace_chunks.append(rows.trace_frame())
            rows.traces = {c: [] for c in _TRACE_SCHEMA}
        rows.trace_chunks.append(traces)
    if quarantine.height:
        for column, values in quarantine.with_columns(pl.col("_seq") + offset).to_dict(as_series=False).items():
            rows.quarantine[column].extend(values)


def _read_record(
    rec: SourceRecord,
    fmt: TraceFormat,
    source_file: str,
    ingest: IngestConfig,
    now: datetime,
    rows: _Rows,
    pending: list[tuple[Part, SourceRecord, str | None]],
) -> None:
    """One decoded record: each LLM item a trace or a quarantine row, each other item a skipped row.

    A JSON Lines record (or a whole single-object document) with no LLM item is one `no_trace` row.
    A document element with no LLM item adds no row: its items wait in `pending` for the next row of
    the file (the document counts only LLM calls as records).
    """
    keep = ingest.quarantine_raw_max_bytes
    assert rec.obj is not None
    try:
        parts = split_record(fmt, rec.obj)
    except RecursionError:  # valid JSON nested deeper than the parser can follow
        rows.add_quarantine(rec, source_file, keep, "invalid_value", _TOO_DEEP.format(fmt=fmt.name), None, fmt.name)
        return
    except Exception as exc:  # a parser bug must not stop the ingest or lose the record
        reason = f"the {fmt.name} parser failed to split this record: {type(exc).__name__}: {exc}"
        rows.add_quarantine(rec, source_file, keep, "parser_error", reason, None, fmt.name)
        return
    records = [p for p in parts if p.skip is None]
    skipped = [p for p in parts if p.skip is not None]
    places = _places(rec, parts)
    if not records and skipped and rec.path:  # an element of a document that holds no LLM call
        pending.extend((part, *places.get(id(part), (rec, None))) for part in skipped)
        return
    anchor = None
    if not records:
        anchor = rows.add_quarantine(rec, source_file, keep, "no_trace", describe_skipped(parts), None, fmt.name)
    for part in records:
        view, where = places.get(id(part), (rec, None))
        seq = _read_part(part, view, where, fmt, source_file, ingest, now, rows)
        anchor = anchor if anchor is not None else seq
    assert anchor is not None
    for part in skipped:
        view, where = places.get(id(part), (rec, None))
        rows.add_skipped(part, view.line, source_file, where, fmt.name, anchor)


def _places(rec: SourceRecord, parts: list[Part]) -> dict[int, tuple[SourceRecord, str | None]]:
    """Per item (by id): its line and bytes as a SourceRecord, and its path text (None for the record itself)."""
    places: dict[int, tuple[SourceRecord, str | None]] = {}
    wanted = {p.path for p in parts if p.path}
    offsets = locate(rec.raw, wanted) if wanted and rec.raw_bytes == len(rec.raw) else {}
    located = []
    for part in parts:
        full = (*rec.path, *part.path)
        where = path_text(full) if full else None
        span = offsets.get(part.path) if part.path else None
        if span is not None:
            located.append((span, part, full, where))
        elif part.path:
            places[id(part)] = (SourceRecord(rec.line, rec.raw, rec.raw_bytes, obj=part.obj, path=full), where)
        elif where is not None:
            places[id(part)] = (rec, where)
    line, counted = rec.line, 0  # count newlines once, in offset order
    for (start, end), part, full, where in sorted(located, key=lambda item: item[0][0]):
        line += rec.raw.count(b"\n", counted, start)
        counted = start
        body = rec.raw[start:end]
        places[id(part)] = (SourceRecord(line, body, len(body), obj=part.obj, path=full), where)
    return places


def _read_part(
    part: Part,
    rec: SourceRecord,
    where: str | None,
    fmt: TraceFormat,
    source_file: str,
    ingest: IngestConfig,
    now: datetime,
    rows: _Rows,
) -> int:
    """One LLM item (or broken item): the row's sequence number."""
    keep = ingest.quarantine_raw_max_bytes
    at = f"at {where}" + (f" ({part.label})" if part.label else "") + ": " if where else ""
    if part.error is not None:
        code = part.error.code
        return rows.add_quarantine(rec, source_file, keep, code, at + part.error.reason, None, fmt.name)
    try:
        traces = fmt.normalise(part.obj, ingest, now=now)
        problem = _check_traces(traces, fmt.name)
        digest = _digest(part.obj, rec) if problem is None else ""
    except RecordError as exc:
        day = utc_day(exc.ts) if exc.ts is not None else None
        return rows.add_quarantine(rec, source_file, keep, exc.code, at + exc.reason, day, fmt.name)
    except RecursionError:  # valid JSON nested deeper than the parser can follow
        return rows.add_quarantine(
            rec, source_file, keep, "invalid_value", at + _TOO_DEEP.format(fmt=fmt.name), None, fmt.name
        )
    except Exception as exc:  # a parser bug must not stop the ingest or lose the record
        reason = f"{at}the {fmt.name} parser failed on this record: {type(exc).__name__}: {exc}"
        return rows.add_quarantine(rec, source_file, keep, "parser_error", reason, None, fmt.name)
    if problem is not None:
        return rows.add_quarantine(rec, source_file, keep, problem[0], at + problem[1], None, fmt.name)
    first = None
    for trace in traces:
        cleaned = _clean_trace(trace)
        if where is not None:
            cleaned["metadata"] = _with_source_path(cleaned["metadata"], where)
        seq = rows.add_trace(cleaned, rec, source_file, keep, digest, fmt.name)
        first = first if first is not None else seq
    assert first is not None
    return first


def _digest(obj: Any, rec: SourceRecord) -> str:
    """The item's record_hash; for JSON nested too deeply to serialise again, the sha256 of its bytes."""
    try:
        return record_hash(obj, rec.raw if rec.raw_bytes == len(rec.raw) else None)
    except RecursionError:
        return hashlib.sha256(rec.raw).hexdigest()


def _with_source_path(metadata: str, where: str) -> str:
    try:
        meta = json.loads(metadata)
    except (ValueError, RecursionError):
        return metadata
    if not isinstance(meta, dict):
        meta = {"metadata": meta}
    meta["source_path" if "source_path" not in meta else "ingest.source_path"] = where
    return _clean(json.dumps(meta, ensure_ascii=False))


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


JSON_FIELDS = ("input_messages", "feedback", "metadata")
"""Trace fields stored as JSON text."""
_BIG_EXPONENT = re.compile(r"\d[eE]\+?\d{3}")  # 1e400: a float beyond the largest double reads as inf


def _strict_json(text: str) -> str:
    """JSON text without NaN or Infinity, which JSON does not have (Python reads and writes them, DuckDB
    and every other reader refuse them): each such number is written as the string "NaN", "Infinity" or
    "-Infinity", so the stored JSON is valid and the value is still there to see."""
    if "NaN" not in text and "Infinity" not in text and not _BIG_EXPONENT.search(text):
        return text
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return text
    strict = _finite(value)
    if strict is value:
        return text
    return json.dumps(strict, ensure_ascii=False)


def _finite(value: Any) -> Any:
    """`value` with every non-finite float (1e400 reads as inf) as its name; the same object when none."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        items = {k: _finite(v) for k, v in value.items()}
        return value if all(items[k] is value[k] for k in value) else items
    if isinstance(value, list):
        items = [_finite(v) for v in value]
        return value if all(a is b for a, b in zip(items, value, strict=True)) else items
    return value


def _clean_trace(trace: dict[str, Any]) -> dict[str, Any]:
    cleaned = {f: (_clean(v) if isinstance(v, str) else v) for f, v in trace.items()}
    for f in JSON_FIELDS:
        if isinstance(cleaned.get(f), str):
            cleaned[f] = _strict_json(cleaned[f])
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


def _assemble(rows: _Rows, run_id: str, days: set[date] | None, now: datetime, earliest: date) -> IngestResult:
    files = pl.DataFrame(rows.files, schema=_FILE_SCHEMA)
    # The parsed traces stay in their chunks, each filtered once at the end and let go; dedup and
    # routing work on narrow key columns, so a day of a million traces is never copied whole (sorts
    # and joins of the wide frame made ~4 copies).
    chunks = [*rows.trace_chunks, rows.trace_frame()]
    rows.trace_chunks.clear()
    keys = pl.concat([chunk.select(_KEY_COLUMNS) for chunk in chunks]).with_columns(day=pl.col("ts").dt.date())
    if not keys["_seq"].is_sorted():  # never expected: chunks are made in reading order
        chunks = [pl.concat(chunks).sort("_seq")]
        keys = keys.sort("_seq")
    problems = pl.DataFrame(rows.quarantine, schema=_QUARANTINE_SCHEMA)
    skipped_rows = pl.DataFrame(rows.skipped, schema=_SKIPPED_ROWS)

    # Duplicates: per (day, trace_id, span_id), the first in reading order is kept.
    ranked = keys.select(
        "_seq",
        "day",
        "trace_id",
        "span_id",
        "record_hash",
        "source_file",
        "source_line",
        "source_format",
        _rank=pl.int_range(pl.len()).over(_DEDUP_KEYS),
        _kept_file=pl.col("source_file").first().over(_DEDUP_KEYS),
        _kept_line=pl.col("source_line").first().over(_DEDUP_KEYS),
        _kept_hash=pl.col("record_hash").first().over(_DEDUP_KEYS),
    )
    is_duplicate = ranked["_rank"] > 0
    same = pl.col("record_hash") == pl.col("_kept_hash")
    trace_label = (
        pl.when(pl.col("span_id").is_null())
        .then(pl.col("trace_id"))
        .otherwise(pl.format("{} span {}", pl.col("trace_id"), pl.col("span_id")))
    )
    kept_at = pl.format("{}:{}", pl.col("_kept_file"), pl.col("_kept_line"))
    here = pl.format("{}:{}", pl.col("source_file"), pl.col("source_line"))
    keep = ~is_duplicate  # a trace's partition is its own day
    if days is not None:
        keep = keep & ranked["day"].is_in(sorted(days))
    kept: list[pl.DataFrame] = []
    copies: list[pl.DataFrame] = []
    start = 0
    while chunks:
        chunk = chunks.pop(0)
        copies.append(
            chunk.filter(is_duplicate.slice(start, chunk.height)).select("_seq", "_raw", "_raw_truncated", "_raw_bytes")
        )
        kept.append(chunk.filter(keep.slice(start, chunk.height)).with_columns(day=pl.col("ts").dt.date()))
        start += chunk.height
        del chunk
    later_copies = ranked.filter(is_duplicate).join(pl.concat(copies), on="_seq", how="left")
    duplicates = later_copies.select(
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
    # Kept inside the days a partition exists for: a file copied with a 1980 or a future mtime must not send
    # its records to a day no run will ever materialise.
    fallback_day = pl.col("file_mtime").dt.date().fill_null(pl.lit(now.date())).clip(earliest, now.date())
    ledger = (
        pl.concat([ranked.select("_seq", "source_file", "day"), problems.select("_seq", "source_file", "day")])
        .sort("_seq")
        .with_columns(partition_day=pl.col("day").forward_fill().backward_fill().over("source_file"))
        .join(files.select("source_file", "file_mtime"), on="source_file", how="left")
        .with_columns(partition_day=pl.col("partition_day").fill_null(fallback_day))
        .select("_seq", "source_file", "partition_day")
    )
    routes = ledger.select("_seq", "partition_day")

    traces = pl.concat(kept).with_columns(ingest_run_id=pl.lit(run_id, pl.String))
    del kept
    quarantine = (
        pl.concat([problems, duplicates])
        .join(routes, on="_seq", how="left")
        .sort("_seq")
        .with_columns(ingest_run_id=pl.lit(run_id, pl.String))
    )
    skipped = (
        skipped_rows.join(routes.rename({"_seq": "_anchor"}), on="_anchor", how="left")
        .with_columns(ingest_run_id=pl.lit(run_id, pl.String))
        .sort("_anchor", maintain_order=True)
        .select(list(SKIPPED_SCHEMA))
    )
    manifest = (
        ledger.group_by("source_file", "partition_day")
        .agg(records_routed=pl.len().cast(pl.Int64))
        .with_columns(file_records=pl.col("records_routed").sum().over("source_file"))
        .join(files, on="source_file", how="left")
        .with_columns(ingest_run_id=pl.lit(run_id, pl.String))
        .sort("source_file", "partition_day")
    )

    dated = pl.concat([ranked.select("source_file", "day"), problems.select("source_file", "day")])
    undated = dated.group_by("source_file").agg(undated=pl.col("day").is_null().all())
    files_read = (
        ledger.group_by("source_file")
        .agg(days=pl.col("partition_day").unique().sort())
        .join(undated, on="source_file", how="left")
        .with_columns(
            undated_day=pl.when(pl.col("undated") & (pl.col("days").list.len() == 1)).then(pl.col("days").list.first())
        )
        .join(files, on="source_file", how="right")
        .select(list(FILES_READ_SCHEMA))
    )

    if days is not None:
        wanted = sorted(days)
        quarantine = quarantine.filter(pl.col("partition_day").is_in(wanted))
        manifest = manifest.filter(pl.col("partition_day").is_in(wanted))
        skipped = skipped.filter(pl.col("partition_day").is_in(wanted))

    return IngestResult(
        traces=tables.conform("raw_traces", traces),
        quarantine=tables.conform("quarantined_records", quarantine),
        manifest=tables.conform("ingest_manifest", manifest),
        skipped=skipped.cast(dict(SKIPPED_SCHEMA)),
        files=files_read.cast(dict(FILES_READ_SCHEMA)),
    )
