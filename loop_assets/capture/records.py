"""One decoded record of a trace file to traces, quarantine rows and skipped items, by its format."""

from __future__ import annotations

import hashlib
import json
import math
import re
from datetime import UTC, datetime
from typing import Any

from loop_assets.capture.formats import FORMATS, describe_formats, detect_format
from loop_assets.capture.formats.base import (
    TRACE_FIELDS,
    Part,
    RecordError,
    TraceFormat,
    describe_skipped,
    record_hash,
    show,
    split_record,
    utc_day,
)
from loop_assets.capture.formats.documents import locate, path_text
from loop_assets.capture.formats.jsonl import SourceRecord
from loop_assets.capture.incoming import Entry
from loop_assets.capture.rows import Rows, clean_text
from loop_assets.config import IngestConfig

_STRING_FIELDS = tuple(f for f in TRACE_FIELDS if f not in ("ts", "latency_ms", "feedback_rating"))


_REQUIRED_STRINGS = ("trace_id", "app", "input_messages", "input_text", "metadata")


_FLOAT_FIELDS = ("latency_ms", "feedback_rating")


_TOO_DEEP = "the record is nested too deeply for the {fmt} parser to read (hundreds of levels of objects or arrays)"


def refuse(entry: Entry, ingest: IngestConfig, rows: Rows) -> None:
    """An entry that is not opened (a link leading outside the folder, a FIFO, ...): one row saying why."""
    rows.add_file(entry.name, *entry.version)
    rec = SourceRecord(0, b"", 0, error=RecordError("unreadable_file", entry.refused or "not read"))
    rows.add_quarantine(
        rec, entry.name, ingest.quarantine_raw_max_bytes, "unreadable_file", entry.refused or "", None, None
    )


def read_one(
    rec: SourceRecord,
    fmt: TraceFormat | None,
    no_format_reason: str,
    source_file: str,
    ingest: IngestConfig,
    now: datetime,
    rows: Rows,
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


def _read_record(
    rec: SourceRecord,
    fmt: TraceFormat,
    source_file: str,
    ingest: IngestConfig,
    now: datetime,
    rows: Rows,
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
    rows: Rows,
) -> int:
    """One LLM item (or broken item): the row's sequence number."""
    keep = ingest.quarantine_raw_max_bytes
    at = f"at {where}" + (f" ({part.label})" if part.label else "") + ": " if where else ""
    if part.error is not None:
        code = part.error.code
        return rows.add_quarantine(rec, source_file, keep, code, at + part.error.reason, None, fmt.name)
    try:
        traces = fmt.normalise(part.obj, ingest, now=now)
        problem = check_traces(traces, fmt.name)
        record_hash = digest(part.obj, rec) if problem is None else ""
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
        seq = rows.add_trace(cleaned, rec, source_file, keep, record_hash, fmt.name)
        first = first if first is not None else seq
    assert first is not None
    return first


def digest(obj: Any, rec: SourceRecord) -> str:
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
    return clean_text(json.dumps(meta, ensure_ascii=False))


def file_format(ingest: IngestConfig, head: list[SourceRecord]) -> tuple[TraceFormat | None, str]:
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


def check_traces(traces: Any, fmt: str) -> tuple[str, str] | None:
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


JSON_FIELDS = ("input_messages", "feedback", "metadata")
"""Trace fields stored as JSON text."""


_BIG_EXPONENT = re.compile(r"[:\[,]\s*-?\d+(?:\.\d+)?[eE]\+?\d{3}")
"""A number like 1e400: a float beyond the largest double reads as inf (only a number after `:`, `[` or `,`:
an id such as `3e806` in a string is not one)."""


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
    cleaned = {f: (clean_text(v) if isinstance(v, str) else v) for f, v in trace.items()}
    for f in JSON_FIELDS:
        if isinstance(cleaned.get(f), str):
            cleaned[f] = _strict_json(cleaned[f])
    cleaned["ts"] = trace["ts"].astimezone(UTC)
    for f in _FLOAT_FIELDS:
        if cleaned[f] is not None:
            cleaned[f] = float(cleaned[f])
    return cleaned
