"""CAPTURE's step: every trace file in the incoming folder read into raw_traces, quarantine and manifest rows.

Every record ends as a row (design decision 9, "nothing is lost"); capture/README.md says what a record
is, where each row goes and how duplicates and days are decided.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime
from itertools import chain
from pathlib import Path

from loop_assets.capture.formats import DETECT_SAMPLE
from loop_assets.capture.formats.base import (
    Part,
    describe_skipped,
    earliest_allowed,
    utc_now,
)
from loop_assets.capture.formats.batch import pair_output
from loop_assets.capture.formats.documents import read_document
from loop_assets.capture.formats.jsonl import SourceRecord, decoded, read_records
from loop_assets.capture.formats.otlp_logs import pair_logs
from loop_assets.capture.incoming import scan_incoming, source_name, trace_kind
from loop_assets.capture.records import file_format, read_one, refuse
from loop_assets.capture.routing import assemble
from loop_assets.capture.rows import IngestResult, Rows
from loop_assets.capture.workers import Workers, read_in_batches
from loop_assets.config import IngestConfig


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
    earliest_allowed(ingest)  # fail fast on a bad ingest.earliest_timestamp
    rows = Rows()
    with Workers.configured(ingest) as workers:
        for entry in scan_incoming(incoming, first_read).entries:
            if skip_files and entry.name in skip_files:
                continue
            if entry.refused is not None:
                refuse(entry, ingest, rows)
                continue
            _read_file(entry.path, entry.name, ingest, now, rows, workers, document=entry.is_document)
    return assemble(rows, run_id, days)


def ingest_file(
    path: Path, ingest: IngestConfig, run_id: str, document: bool | None = None, now: datetime | None = None
) -> IngestResult:
    """`ingest` of the one file at `path`, wherever it is (named by its file name): how `file_days`
    learns exactly which days a file's records go to."""
    return assemble(_read_one(Path(path), ingest, document, now), run_id, None)


def _read_one(
    path: Path, ingest: IngestConfig, document: bool | None, now: datetime | None, workers: Workers | None = None
) -> Rows:
    """The rows of the one file at `path`, named by its file name (parsed by `workers`, or by a pool of its own)."""
    if workers is None:
        with Workers.configured(ingest) as workers:
            return _read_one(path, ingest, document, now, workers)
    now = utc_now(now)
    earliest_allowed(ingest)  # fail fast on a bad ingest.earliest_timestamp
    rows = Rows()
    _read_file(path, source_name(path, path.parent), ingest, now, rows, workers, document=document)
    return rows


def record_days(
    path: Path,
    ingest: IngestConfig,
    document: bool | None = None,
    now: datetime | None = None,
    workers: Workers | None = None,
) -> set[date]:
    """The days the records of the one file at `path` go to, exactly as `ingest_file` routes them, without
    assembling its frames (~20x faster for a small file: the sensor asks this of every new file).

    Routing only spreads days a file already has to its records without one, so these are the days of
    its traces and of its quarantined records that have one; none for a file none of whose records has.
    `workers`: a pool shared by the calls for many files (default: one started, if needed, for this file).
    """
    rows = _read_one(Path(path), ingest, document, now, workers)
    days = {day for day in rows.quarantine["day"] if day is not None}
    days.update(ts.date() for ts in rows.traces["ts"])  # ts is UTC here: the trace's day
    for chunk in rows.trace_chunks:
        days.update(chunk["ts"].dt.date().unique().to_list())
    return days


def _read_file(
    path: Path,
    source_file: str,
    ingest: IngestConfig,
    now: datetime,
    rows: Rows,
    workers: Workers | None = None,
    document: bool | None = None,
) -> None:
    try:
        stat = path.stat()
        rows.add_file(source_file, stat.st_size, datetime.fromtimestamp(stat.st_mtime, UTC))
    except OSError:
        rows.add_file(source_file, None, None)
    keep = ingest.quarantine_raw_max_bytes
    document = trace_kind(path.name) == "document" if document is None else document
    lines: Iterator[SourceRecord] | None = None
    if document:
        records = read_document(path, max_record_bytes=ingest.max_record_bytes, keep_bytes=keep)
    else:  # lines are decoded here, or in batches by worker processes (`read_in_batches`)
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
    fmt, no_format_reason = file_format(ingest, records_head)
    fmt_name = fmt.name if fmt else None
    if fmt is not None and fmt.name == "openai_chat" and lines is not None:  # Batch output: add its requests
        records_head, records, paired = pair_output(path, records_head, records, ingest.max_record_bytes)
        lines = None if paired else lines  # paired records are read here, not by worker processes
    if fmt is not None and fmt.name in ("otel_genai", "openinference"):  # spans: add their GenAI log events
        records_head, records, _ = pair_logs(
            path, records_head, records, document=document, max_record_bytes=ingest.max_record_bytes
        )

    file_start = rows.seq
    pending: list[tuple[Part, SourceRecord, str | None]] = []  # skipped document elements awaiting a row
    if lines is not None and fmt is not None and getattr(fmt, "split", None) is None and workers is not None:
        for rec in records_head:
            read_one(rec, fmt, "", source_file, ingest, now, rows, pending)
        read_in_batches(lines, fmt, source_file, ingest, now, rows, workers)
        return
    for rec in chain(records_head, records):
        before = rows.seq
        read_one(rec, fmt, no_format_reason, source_file, ingest, now, rows, pending)
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
