"""OpenTelemetry GenAI log events paired with their spans.

With message content capture on but without the latest conventions
(`OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true`, no `OTEL_SEMCONV_STABILITY_OPT_IN`), the
OpenTelemetry GenAI instrumentations put the messages in log records (events `gen_ai.system.message`,
`gen_ai.user.message`, `gen_ai.assistant.message`, `gen_ai.tool.message`, `gen_ai.choice`, or
`gen_ai.client.inference.operation.details`), each carrying the `traceId`/`spanId` of its call's span,
and the spans carry none. The Collector's file exporter writes them as OTLP/JSON log export requests
(`{"resourceLogs": [{"scopeLogs": [{"logRecords": [...]}]}]}`), in the spans' file or beside it.

When capture reads a span file, `pair_logs` collects the GenAI log records of that file and of the
other files of its folder whose first record is a log export request, and adds each to its span as a
span event of the same name whose attributes are the record's body (and attributes): the form
Semantic Kernel writes, which `otel_genai` reads. A log export request itself holds no call: it is
quarantined as `no_trace`, saying its events are read with their spans.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from loop_assets.capture.formats import jsonl
from loop_assets.capture.formats.documents import read_document
from loop_assets.capture.formats.jsonl import SourceRecord, primed, read_records
from loop_assets.capture.formats.otlp import (
    LOG_KEYS,
    RESOURCE_KEYS,
    SCOPE_KEYS,
    decode_value,
    is_envelope,
    is_logs_envelope,
)
from loop_assets.capture.incoming import trace_kind


def log_records(obj: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The log records of an OTLP/JSON log export request."""
    for rl in next((obj[k] for k in LOG_KEYS if isinstance(obj.get(k), list)), []):
        scopes = rl.get("scopeLogs", rl.get("scope_logs")) if isinstance(rl, dict) else None
        for sl in scopes if isinstance(scopes, list) else []:
            records = sl.get("logRecords", sl.get("log_records")) if isinstance(sl, dict) else None
            yield from (r for r in records if isinstance(r, dict)) if isinstance(records, list) else ()


def genai_event(record: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """(span id, the record as an OTLP span event) for a GenAI event log record; None for any other."""
    attrs = record.get("attributes") if isinstance(record.get("attributes"), list) else []
    name = record.get("eventName", record.get("event_name"))
    if not name:
        named = (a for a in attrs if isinstance(a, dict) and a.get("key") == "event.name")
        name = next((decode_value(a.get("value")) for a in named), None)
    span_id = record.get("spanId", record.get("span_id"))
    if not isinstance(name, str) or not name.startswith("gen_ai.") or not span_id:
        return None
    body = record.get("body")
    fields: list[Any] = [a for a in attrs if isinstance(a, dict) and a.get("key") != "event.name"]
    if isinstance(body, dict) and isinstance(body.get("kvlistValue"), dict):
        fields += [v for v in body["kvlistValue"].get("values") or [] if isinstance(v, dict)]
    elif body is not None:
        fields.append({"key": "content", "value": body})
    time = record.get("timeUnixNano") or record.get("observedTimeUnixNano")
    return str(span_id), {"name": name, "timeUnixNano": time, "attributes": fields}


def pair_logs(
    path: Path,
    head: list[SourceRecord],
    rest: Iterable[SourceRecord],
    *,
    document: bool,
    max_record_bytes: int,
) -> tuple[list[SourceRecord], Iterator[SourceRecord], bool]:
    """(head, rest, paired): the records of the span file `path` with the GenAI log events of their spans
    added, when there are any; unchanged (paired False) otherwise. `head` is the records already decoded."""
    head, rest = primed(head, rest)
    if not any(rec.obj is not None and is_envelope(rec.obj) for rec in head):
        return head, rest, False
    events = _events(path, document, max_record_bytes)
    if not events:
        return head, rest, False
    return [_with_events(r, events) for r in head], (_with_events(r, events) for r in rest), True


_MARKERS = (b'"resourceLogs"', b'"resource_logs"')


def _head_bytes(path: Path) -> bytes:
    """The first (decompressed) bytes of a file; b"" when it cannot be read."""
    try:
        with jsonl._open(path) as fh:
            compression = jsonl.sniff(fh)
            if compression == "zstd":
                return b""
            return next(jsonl._chunks(fh, compression), b"")
    except (*jsonl.DAMAGED, OSError):
        return b""


def _log_requests(path: Path, document: bool, max_record_bytes: int) -> Iterator[dict[str, Any]]:
    """The log export requests in a file (only lines that mention resourceLogs are decoded)."""
    if document:
        records: Iterator[SourceRecord] = read_document(path, max_record_bytes=max_record_bytes, keep_bytes=0)
    else:
        lines = read_records(path, max_record_bytes=max_record_bytes, keep_bytes=0, decode=False)
        records = (jsonl.decoded(rec, max_record_bytes) for rec in lines if any(m in rec.raw for m in _MARKERS))
    for rec in records:
        if rec.obj is not None and is_logs_envelope(rec.obj):
            yield rec.obj


_FOLDERS: dict[Path, tuple[int, list[tuple[Path, bool]]]] = {}
_FILE_EVENTS: dict[tuple[Path, int, int], dict[str, list[dict[str, Any]]]] = {}
_CACHE_SIZE = 256
"""Log files per folder (by the folder's mtime) and events per file (by size and mtime) are kept between
the files of one ingest, so a folder of many span files is scanned once, not once per file."""


def _events(path: Path, document: bool, max_record_bytes: int) -> dict[str, list[dict[str, Any]]]:
    """span id -> its GenAI log events, from `path` itself (JSON Lines) and the log files of its folder."""
    sources = [] if document else [(path, False)]
    sources += [(p, is_document) for p, is_document in _log_files(path.parent) if p != path]
    found: dict[str, list[dict[str, Any]]] = {}
    for source, is_document in sources:
        for span_id, events in _file_events(source, is_document, max_record_bytes).items():
            found.setdefault(span_id, []).extend(events)
    return found


def _log_files(folder: Path) -> list[tuple[Path, bool]]:
    """The files of `folder` whose first bytes hold a log export request, and whether each is a document."""
    try:
        stamp = folder.stat().st_mtime_ns
    except OSError:
        return []
    cached = _FOLDERS.get(folder)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    files = []
    for other in sorted(folder.iterdir()):
        kind = trace_kind(other.name)
        readable = kind is not None and not other.is_symlink() and other.is_file()
        if readable and any(m in _head_bytes(other) for m in _MARKERS):
            files.append((other, kind == "document"))
    if len(_FOLDERS) >= _CACHE_SIZE:
        _FOLDERS.clear()
    _FOLDERS[folder] = (stamp, files)
    return files


def _file_events(path: Path, document: bool, max_record_bytes: int) -> dict[str, list[dict[str, Any]]]:
    try:
        stat = path.stat()
    except OSError:
        return {}
    key = (path, stat.st_size, stat.st_mtime_ns)
    if key not in _FILE_EVENTS:
        found: dict[str, list[dict[str, Any]]] = {}
        for request in _log_requests(path, document, max_record_bytes):
            for record in log_records(request):
                event = genai_event(record)
                if event is not None:
                    found.setdefault(event[0], []).append(event[1])
        if len(_FILE_EVENTS) >= _CACHE_SIZE:
            _FILE_EVENTS.clear()
        _FILE_EVENTS[key] = found
    return _FILE_EVENTS[key]


def _with_events(rec: SourceRecord, events: dict[str, list[dict[str, Any]]]) -> SourceRecord:
    obj = rec.obj
    if obj is None or not is_envelope(obj):
        return rec
    changed = False
    resources = []
    rkey = next(k for k in RESOURCE_KEYS if isinstance(obj.get(k), list))
    for rs in obj[rkey]:
        if not isinstance(rs, dict):
            resources.append(rs)
            continue
        skey = next((k for k in SCOPE_KEYS if isinstance(rs.get(k), list)), None)
        if skey is None:
            resources.append(rs)
            continue
        scopes = []
        for ss in rs[skey]:
            spans = ss.get("spans") if isinstance(ss, dict) else None
            if not isinstance(spans, list):
                scopes.append(ss)
                continue
            new_spans = []
            for span in spans:
                extra = events.get(str(span.get("spanId", span.get("span_id")))) if isinstance(span, dict) else None
                if extra:
                    own = span.get("events") if isinstance(span.get("events"), list) else []
                    span = {**span, "events": own + extra}
                    changed = True
                new_spans.append(span)
            scopes.append({**ss, "spans": new_spans})
        resources.append({**rs, skey: scopes})
    return replace(rec, obj={**obj, rkey: resources}) if changed else rec
