"""OpenTelemetry spans, as the `otel_genai` and `openinference` formats read them.

Spans arrive in three shapes, all accepted by both span formats:

1. OTLP JSON, the export request the OTLP/HTTP exporter sends and the Collector's file exporter
   writes one per line: `{"resourceSpans": [{"resource": {"attributes": [...]}, "scopeSpans":
   [{"scope": {...}, "spans": [...]}]}]}` (snake_case keys and the old `instrumentationLibrarySpans`
   are accepted too). A span has `traceId`, `spanId`, `parentSpanId`, `name`, `kind`,
   `startTimeUnixNano`, `endTimeUnixNano` (nanoseconds, as strings or numbers), `attributes`
   (`[{"key": ..., "value": {"stringValue"|"intValue"|"doubleValue"|"boolValue"|"arrayValue"|
   "kvlistValue"|"bytesValue": ...}}]`), `events` (`[{"timeUnixNano", "name", "attributes"}]`) and
   `status` (`{"code": 2 | "STATUS_CODE_ERROR", "message": ...}`; 2 is ERROR, 1 OK, 0 UNSET).
   Each span is one item (`Part`): one export request can hold many spans of many traces.
2. A span object with its attributes as a map, as Phoenix's REST API returns spans: `{"name",
   "context": {"trace_id", "span_id"}, "parent_id", "span_kind", "start_time", "end_time",
   "status_code", "status_message", "attributes": {...}, "events": [...]}` (camelCase OTLP keys,
   `trace_id`/`span_id` at the top, and an OTLP attribute list are accepted as well). Nested
   attribute maps (`{"llm": {"model_name": ...}}`) are flattened to dotted keys.
3. A flat attribute map: the span's attributes alone, with the span keys of shape 2 (`trace_id`,
   `span_id`, `start_time`, `end_time`, `status_code`, ...) beside them when known.

Also read as span objects: the Python SDK's `ReadableSpan.to_json()` (`0x`-prefixed ids, `kind`
"SpanKind.CLIENT", `status: {status_code, description}`), a JavaScript `ReadableSpan` as JSON
(`spanContext: {traceId, spanId}`, `parentSpanContext`, times as HrTime `[seconds, nanoseconds]`),
and the Phoenix CLI's trace (`px trace get`, each element of `px traces`: `{"traceId", "spans":
[...], "annotations"}`), whose spans are items. Phoenix annotations that come with a span
(`annotations: [{name, annotator_kind, result: {label, score, explanation}}]`) are scores; the
trace's own go to its last LLM span. An OTLP/JSON log export request (`resourceLogs`) is no call
(its GenAI events are read with their spans, see `otlp_logs`).

What is read from the span itself (the conventions read the attributes, see `otel_genai` and
`openinference`):

- trace_id / span_id: `traceId`/`spanId` as logged (hex). Without a trace id, `h_` + the first 32 hex
  digits of the sha256 of the item's canonical JSON.
- ts: the start time; without one (an attribute map), `ingest.undated_day` when it is set (noted as
  metadata.span.ts_from; latency unknown), else `missing_field`. Range-checked like every format.
- latency_ms: end minus start (exact in nanoseconds when both are nanosecond integers); a negative
  span is `invalid_value`.
- error: when the status is ERROR (or the conventions report an error, such as OpenInference
  `exception.*` attributes or an `error.type` attribute): "Type: message" of the first `exception`
  event, else the status message, else `error.type`, else "error". output_text is null when such a
  call logged no output.
- app: the resource attribute `service.name` (for shapes 2 and 3, a `service.name` key or a
  `resource` map); the SDK default `unknown_service...` counts as unset; else the Vercel AI SDK's
  `ai.telemetry.metadata.app` or `ai.telemetry.functionId`; else "default".
- metadata: `span_name`, `span_kind`, `parent_span_id`, `status`, `scope`, `resource` (its other
  attributes), `attributes` (every attribute the convention did not turn into a column), `events`
  (those not read as messages or scores), `usage` (token counts), `tool_calls` of the answer,
  `convention` (which convention read the span), and `span` (other keys of the span object, such as
  links or flags). Nothing of the span is dropped except the attributes that became columns.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from loop_assets.capture.formats.base import (
    UNDATED,
    Part,
    RecordError,
    TraceRow,
    check_timestamp_range,
    json_type,
    normalise_all,
    parse_timestamp,
    record_hash,
    seconds_or_min,
    settle_answer,
    show,
    to_json,
    undated_ts,
    usage_with_details,
)
from loop_assets.capture.formats.chat import as_text, feedback_columns, input_text
from loop_assets.config import IngestConfig

MAX_DEPTH = 32
"""OTLP values and attribute maps nested deeper than this are kept as JSON text, not walked."""

RESOURCE_KEYS = ("resourceSpans", "resource_spans")
SCOPE_KEYS = ("scopeSpans", "scope_spans", "instrumentationLibrarySpans", "instrumentation_library_spans")

# keys of a span object (shapes 2 and 3) that are not attributes
_TRACE_ID_KEYS = ("traceId", "trace_id", "context.trace_id", "context.traceId")
_SPAN_ID_KEYS = ("spanId", "span_id", "context.span_id", "context.spanId")
_PARENT_KEYS = ("parentSpanId", "parent_span_id", "parent_id", "parentId", "parentSpanContext.spanId")
_START_KEYS = ("startTimeUnixNano", "start_time_unix_nano", "start_time", "startTime", "timestamp")
_END_KEYS = ("endTimeUnixNano", "end_time_unix_nano", "end_time", "endTime")
_SPAN_KEYS = frozenset(
    {
        *_TRACE_ID_KEYS,
        *_SPAN_ID_KEYS,
        *_PARENT_KEYS,
        *_START_KEYS,
        *_END_KEYS,
        "context",
        "spanContext",
        "parentSpanContext",
        "name",
        "kind",
        "span_kind",
        "status",
        "status_code",
        "status_message",
        "events",
        "resource",
        "attributes",
    }
)
_STATUS = {
    "2": "ERROR",
    "status_code_error": "ERROR",
    "error": "ERROR",
    "1": "OK",
    "status_code_ok": "OK",
    "ok": "OK",
    "0": "UNSET",
    "status_code_unset": "UNSET",
    "unset": "UNSET",
}
_KINDS = {0: "UNSPECIFIED", 1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}


# --- values ----------------------------------------------------------------------------------------


def decode_value(value: Any, depth: int = 0) -> Any:
    """An OTLP AnyValue as a plain value; a value that is already plain is returned as is."""
    if not isinstance(value, dict):
        return value
    if depth > MAX_DEPTH:
        return _deep_text(value)
    for key in ("stringValue", "string_value"):
        if key in value:
            return value[key]
    for key in ("boolValue", "bool_value"):
        if key in value:
            return value[key]
    for key in ("intValue", "int_value"):
        if key in value:
            raw = value[key]
            try:
                return int(raw)
            except (TypeError, ValueError, OverflowError):  # OverflowError: a JSON Infinity
                return raw
    for key in ("doubleValue", "double_value"):
        if key in value:
            raw = value[key]
            try:
                number = float(raw)
            except (TypeError, ValueError):
                return raw
            return number if math.isfinite(number) else str(raw)
    for key in ("arrayValue", "array_value"):
        if key in value:
            items = value[key].get("values") if isinstance(value[key], dict) else None
            return [decode_value(v, depth + 1) for v in items] if isinstance(items, list) else []
    for key in ("kvlistValue", "kvlist_value"):
        if key in value:
            items = value[key].get("values") if isinstance(value[key], dict) else None
            return decode_attributes(items, "kvlistValue", depth + 1) if isinstance(items, list) else {}
    for key in ("bytesValue", "bytes_value"):
        if key in value:
            return value[key]
    if not value:
        return None
    return value


def _deep_text(value: Any) -> str:
    """A value nested deeper than MAX_DEPTH, as JSON text (or a note when even that is too deep)."""
    try:
        return to_json(value)
    except RecursionError:
        return f"<an OTLP value nested more than {MAX_DEPTH} levels deep, too deep to store>"


def decode_attributes(attrs: Any, where: str, depth: int = 0) -> dict[str, Any]:
    """Attributes as a flat {key: value} map, from an OTLP KeyValue list or a (nested) map."""
    if attrs is None:
        return {}
    if isinstance(attrs, dict):
        return flatten_maps(attrs, depth)
    if not isinstance(attrs, list):
        raise RecordError("wrong_type", f"`{where}` must be a list of key/value pairs or a map, got {json_type(attrs)}")
    out: dict[str, Any] = {}
    for i, item in enumerate(attrs):
        if isinstance(item, dict) and isinstance(item.get("key"), str):
            if item["key"] not in out:
                out[item["key"]] = decode_value(item.get("value"), depth + 1)
        else:
            raise RecordError(
                "wrong_type",
                f"`{where}[{i}]` must be an object with a string `key` and a `value`, got {show(item)}",
            )
    return out


def flatten_maps(value: dict[str, Any], depth: int = 0, prefix: str = "", out: dict[str, Any] | None = None):
    """Nested maps as dotted keys ({"llm": {"model_name": x}} -> {"llm.model_name": x}); lists are kept."""
    out = {} if out is None else out
    for key, item in value.items():
        name = f"{prefix}{key}"
        if isinstance(item, dict) and item and depth < MAX_DEPTH and not _is_any_value(item):
            flatten_maps(item, depth + 1, name + ".", out)
        else:
            out[name] = decode_value(item, depth + 1) if isinstance(item, dict) else item
    return out


def _is_any_value(value: dict[str, Any]) -> bool:
    return len(value) == 1 and next(iter(value)) in (
        "stringValue",
        "boolValue",
        "intValue",
        "doubleValue",
        "arrayValue",
        "kvlistValue",
        "bytesValue",
    )


def indexed(flat: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    """Items of a flattened list attribute (`prefix.0.x`, `prefix.1.x`, ...) as {"x": ...} maps, in index order.

    A list value under `prefix` itself (of maps) is read the same way.
    """
    groups: dict[int, dict[str, Any]] = {}
    value = flat.get(prefix)
    if isinstance(value, list):
        for i, item in enumerate(value):
            groups[i] = flatten_maps(item) if isinstance(item, dict) else {"": item}
    start = prefix + "."
    for key, item in flat.items():
        if not key.startswith(start):
            continue
        index, _, rest = key[len(start) :].partition(".")
        if not index.isdecimal():  # isdigit() accepts "²", which int() refuses
            continue
        groups.setdefault(int(index), {})[rest] = item
    return [groups[i] for i in sorted(groups)]


# --- spans -----------------------------------------------------------------------------------------


@dataclass
class Span:
    attributes: dict[str, Any]
    trace_id: str | None = None
    span_id: str | None = None
    parent_span_id: str | None = None
    name: str | None = None
    kind: str | None = None
    start: Any = None
    start_field: str = "startTimeUnixNano"
    end: Any = None
    end_field: str = "endTimeUnixNano"
    status_code: str | None = None
    status_message: str | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    resource: dict[str, Any] = field(default_factory=dict)
    scope: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    def label(self) -> str:
        ident = f"span {self.span_id}" if self.span_id else "span"
        return f"{ident} {self.name!r}" if self.name else ident


def is_envelope(obj: Any) -> bool:
    return isinstance(obj, dict) and any(isinstance(obj.get(k), list) for k in RESOURCE_KEYS)


LOG_KEYS = ("resourceLogs", "resource_logs")


def is_logs_envelope(obj: Any) -> bool:
    """An OTLP/JSON log export request: GenAI log events are read with their spans (`otlp_logs`)."""
    return isinstance(obj, dict) and any(isinstance(obj.get(k), list) for k in LOG_KEYS)


def is_trace_bundle(obj: Any) -> bool:
    """A trace as the Phoenix CLI writes it (`px trace get <id>`, each element of `px traces`):
    `{"traceId", "spans": [span objects], "rootSpan", "annotations", ...}`."""
    return (
        isinstance(obj, dict)
        and isinstance(obj.get("spans"), list)
        and any(k in obj for k in ("traceId", "trace_id", "rootSpan"))
    )


def is_span_object(obj: Any) -> bool:
    """Shape 2: a span with an attribute map or list and span keys."""
    return (
        isinstance(obj, dict)
        and isinstance(obj.get("attributes"), dict | list)
        and any(k in obj for k in ("traceId", "trace_id", "context", "spanId", "span_id", "name"))
    )


def attribute_keys(obj: Any, limit: int = 2000) -> list[str]:
    """Attribute keys of any of the three shapes (first spans of an envelope), for detection; never raises."""
    keys: list[str] = []
    try:
        if is_envelope(obj):
            for rs in next(obj[k] for k in RESOURCE_KEYS if isinstance(obj.get(k), list))[:20]:
                for ss in _scope_list(rs)[:20] if isinstance(rs, dict) else []:
                    spans = ss.get("spans") if isinstance(ss, dict) else None
                    for span in spans[:50] if isinstance(spans, list) else []:
                        attrs = span.get("attributes") if isinstance(span, dict) else None
                        for kv in attrs if isinstance(attrs, list) else []:
                            if isinstance(kv, dict) and isinstance(kv.get("key"), str):
                                keys.append(kv["key"])
                        if len(keys) > limit:
                            return keys
            return keys
        if not isinstance(obj, dict):
            return keys
        if is_trace_bundle(obj):
            for span in obj["spans"][:50]:
                keys.extend(attribute_keys(span, limit))
                if len(keys) > limit:
                    break
            return keys
        attrs = obj.get("attributes")
        if isinstance(attrs, dict):
            return list(flatten_maps(attrs))[:limit]
        if isinstance(attrs, list):
            return [kv["key"] for kv in attrs[:limit] if isinstance(kv, dict) and isinstance(kv.get("key"), str)]
        return [k for k in list(obj)[:limit] if isinstance(k, str)]
    except Exception:
        return keys


def _scope_list(rs: dict[str, Any]) -> list[Any]:
    for key in SCOPE_KEYS:
        if isinstance(rs.get(key), list):
            return rs[key]
    return []


def split_envelope(obj: dict[str, Any], classify: Callable[[Span], str | None]) -> list[Part]:
    """Every span of an OTLP export request as an item: a single-span export request of its own.

    `classify(span)` returns None for an LLM span, else why it is skipped. A span that is not an
    object, or whose attributes cannot be decoded, is an item of its own that normalise quarantines.
    """
    rkey = next(k for k in RESOURCE_KEYS if isinstance(obj.get(k), list))
    parts: list[Part] = []
    for i, rs in enumerate(obj[rkey]):
        if not isinstance(rs, dict):
            parts.append(
                Part(rs, (rkey, i), error=_wrong(f"{rkey}[{i}]", "a ResourceSpans object", rs), label=f"{rkey}[{i}]")
            )
            continue
        skey = next((k for k in SCOPE_KEYS if k in rs), "scopeSpans")
        scopes = rs.get(skey)
        if scopes is None:
            continue
        if not isinstance(scopes, list):
            where = f"{rkey}[{i}].{skey}"
            parts.append(Part(scopes, (rkey, i, skey), error=_wrong(where, "a list", scopes), label=where))
            continue
        for j, ss in enumerate(scopes):
            where = f"{rkey}[{i}].{skey}[{j}]"
            if not isinstance(ss, dict):
                parts.append(Part(ss, (rkey, i, skey, j), error=_wrong(where, "a ScopeSpans object", ss), label=where))
                continue
            spans = ss.get("spans")
            if spans is None:
                continue
            if not isinstance(spans, list):
                parts.append(Part(spans, (rkey, i, skey, j, "spans"), error=_wrong(f"{where}.spans", "a list", spans)))
                continue
            for k, span in enumerate(spans):
                path = (rkey, i, skey, j, "spans", k)
                if not isinstance(span, dict):
                    err = _wrong(f"{where}.spans[{k}]", "a span object", span)
                    parts.append(Part(span, path, error=err, label=f"{where}.spans[{k}]"))
                    continue
                alone = len(obj[rkey]) == 1 and len(scopes) == 1 and len(spans) == 1
                single = (
                    obj
                    if alone
                    else {
                        **{key: val for key, val in obj.items() if key != rkey},
                        rkey: [
                            {
                                **{key: val for key, val in rs.items() if key != skey},
                                skey: [{**{key: val for key, val in ss.items() if key != "spans"}, "spans": [span]}],
                            }
                        ],
                    }
                )
                try:
                    view = span_from_envelope(single)
                    skip = classify(view)
                except RecordError:  # normalise reports it, for this span alone
                    view, skip = None, None
                label = view.label() if view else f"span {span.get('spanId', k)}"
                trace_id = view.trace_id if view else None
                span_id = view.span_id if view else None
                parts.append(Part(single, path, skip=skip, label=label, trace_id=trace_id, item_id=span_id))
    return parts


def _wrong(where: str, expected: str, value: Any) -> RecordError:
    return RecordError("wrong_type", f"`{where}` must be {expected}, got {json_type(value)} {show(value)}")


def span_from_envelope(obj: dict[str, Any]) -> Span:
    """The span of a single-span export request (what `split_envelope` makes)."""
    rkey = next(k for k in RESOURCE_KEYS if isinstance(obj.get(k), list))
    resources = obj[rkey]
    if len(resources) != 1 or not isinstance(resources[0], dict):
        raise RecordError("invalid_value", f"`{rkey}` must hold exactly one resource here")
    rs = resources[0]
    scopes = _scope_list(rs)
    if len(scopes) != 1 or not isinstance(scopes[0], dict) or not isinstance(scopes[0].get("spans"), list):
        raise RecordError("invalid_value", f"`{rkey}[0]` must hold exactly one scope with spans here")
    spans = scopes[0]["spans"]
    if len(spans) != 1 or not isinstance(spans[0], dict):
        raise RecordError("invalid_value", f"`{rkey}[0]` must hold exactly one span object here")
    resource = rs.get("resource")
    resource_attrs = (
        decode_attributes(resource.get("attributes"), "resource.attributes") if isinstance(resource, dict) else {}
    )
    span = span_from_object(spans[0], otlp=True)
    span.resource = resource_attrs
    span.scope = scopes[0].get("scope")
    return span


def span_from_object(obj: dict[str, Any], *, otlp: bool = False) -> Span:
    """Shapes 2 and 3 (and a span of an envelope when `otlp`)."""
    if otlp or isinstance(obj.get("attributes"), dict | list):
        attributes = decode_attributes(obj.get("attributes"), "attributes")
        top = obj
    else:  # a flat attribute map with span keys beside the attributes
        top = {k: v for k, v in obj.items() if k in _SPAN_KEYS}
        attributes = flatten_maps({k: v for k, v in obj.items() if k not in _SPAN_KEYS})
    # `spanContext`: a JavaScript ReadableSpan as JSON (the Vercel AI SDK's tests, console exporters)
    context = next((top[k] for k in ("context", "spanContext") if isinstance(top.get(k), dict)), {})
    span = Span(attributes=attributes)
    span.trace_id = _first_id(top, context, _TRACE_ID_KEYS)
    span.span_id = _first_id(top, context, _SPAN_ID_KEYS)
    span.parent_span_id = _first_id(top, context, _PARENT_KEYS)
    span.name = as_text(top["name"]) if top.get("name") not in (None, "") else None
    kind = top.get("kind", top.get("span_kind"))
    if isinstance(kind, int) and not isinstance(kind, bool):
        span.kind = _KINDS.get(kind, str(kind))
    elif kind not in (None, ""):
        span.kind = as_text(kind).removeprefix("SPAN_KIND_").removeprefix("SpanKind.")  # Python SDK to_json()
    for key in _START_KEYS:
        if top.get(key) not in (None, ""):
            span.start, span.start_field = hr_time(top[key]), key
            break
    for key in _END_KEYS:
        if top.get(key) not in (None, ""):
            span.end, span.end_field = hr_time(top[key]), key
            break
    status = top.get("status")
    code, message = None, None
    if isinstance(status, dict):  # OTLP {code, message}; the Python SDK's to_json() {status_code, description}
        code = status.get("code", status.get("status_code"))
        message = status.get("message", status.get("description"))
    elif status is not None:
        code = status
    code = top.get("status_code", code)
    message = top.get("status_message", message)
    if code not in (None, ""):
        span.status_code = _STATUS.get(str(code).strip().lower(), as_text(code))
    span.status_message = as_text(message) if message not in (None, "") else None
    events = top.get("events")
    if isinstance(events, list):
        span.events = [_event(e, i) for i, e in enumerate(events)]
    elif events is not None:
        raise RecordError("wrong_type", f"`events` must be a list, got {json_type(events)} {show(events)}")
    resource = top.get("resource")
    if isinstance(resource, dict):
        span.resource = (
            decode_attributes(resource["attributes"], "resource.attributes")
            if "attributes" in resource
            else flatten_maps(resource)
        )
    span.extra = {k: v for k, v in top.items() if k not in _SPAN_KEYS and v not in (None, "", [], {}, 0)}
    return span


def _first_id(top: dict[str, Any], context: dict[str, Any], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        if key.startswith("context."):
            value = context.get(key.removeprefix("context."))
        elif "." in key:
            head, _, rest = key.partition(".")
            value = top[head].get(rest) if isinstance(top.get(head), dict) else None
        else:
            value = top.get(key)
        if value not in (None, ""):
            text = as_text(value)
            # the Python SDK's to_json() writes ids as 0x-prefixed hex; OTLP JSON writes plain hex
            if text[:2] in ("0x", "0X") and len(text) > 2 and all(c in _HEX for c in text[2:]):
                text = text[2:]
            return text
    return None


_HEX = frozenset("0123456789abcdefABCDEF")


def hr_time(value: Any) -> Any:
    """A JavaScript HrTime `[seconds, nanoseconds]` as integer nanoseconds; any other value as is."""
    if (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)
    ):
        return value[0] * 1_000_000_000 + value[1]
    return value


def _event(event: Any, i: int) -> dict[str, Any]:
    if not isinstance(event, dict):
        raise RecordError("wrong_type", f"`events[{i}]` must be an object, got {json_type(event)} {show(event)}")
    out: dict[str, Any] = {"name": event.get("name")}
    for key in ("timeUnixNano", "time_unix_nano", "timestamp", "time"):
        if event.get(key) not in (None, ""):
            out["time"] = hr_time(event[key])
            break
    out["attributes"] = decode_attributes(event.get("attributes"), f"events[{i}].attributes")
    return out


# --- what a convention reads ------------------------------------------------------------------------


@dataclass
class Reading:
    """What a convention (GenAI or OpenInference) read from a span's attributes and events."""

    messages: list[dict[str, Any]]
    output_text: str | None
    finish_reason: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    model: str | None = None
    scores: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    usage: dict[str, Any] = field(default_factory=dict)
    used: set[str] = field(default_factory=set)
    """Attribute keys that became columns (or `usage`): not repeated in metadata.attributes."""
    used_events: set[int] = field(default_factory=set)
    """Indexes of events read as messages or scores: not repeated in metadata.events."""


Reader = Callable[[Span], Reading]


def read_span(
    span: Span,
    part_obj: dict[str, Any],
    ingest: IngestConfig,
    now: datetime | None,
    reader: Reader,
    convention: str,
) -> dict[str, Any]:
    """One trace from one LLM span, its attributes read by `reader`."""
    if span.start is None:  # an attribute map without the span's times: only an explicit day gives it one
        reason = "no start time: none of " + ", ".join(f"`{k}`" for k in _START_KEYS) + " is set"
        ts = undated_ts(ingest, reason)
        span = replace(span, end=None, extra={**span.extra, "ts_from": UNDATED})
        check_timestamp_range(ts, UNDATED, ingest, now)
    else:
        ts = parse_timestamp(span.start, span.start_field)
        check_timestamp_range(ts, span.start_field, ingest, now)
    try:
        return _read_span(span, part_obj, ingest, ts, reader, convention)
    except RecordError as exc:
        exc.ts = ts
        raise


def _read_span(
    span: Span, part_obj: dict[str, Any], ingest: IngestConfig, ts: datetime, reader: Reader, convention: str
) -> TraceRow:
    reading = reader(span)
    reading.scores = [*reading.scores, *annotation_scores(span)]
    if not reading.messages:
        raise RecordError("invalid_value", "the span's request messages are empty")
    latency = _latency(span, ts)
    error = _error(span, reading)
    output, finish = settle_answer(reading.output_text, reading.finish_reason, reading.tool_calls, error)
    feedback, thumbs, rating, corrected = feedback_columns(reading.scores)
    metadata = _metadata(span, reading, convention)
    trace_id = span.trace_id or "h_" + record_hash(part_obj)[:32]
    return TraceRow(
        trace_id=trace_id,
        span_id=span.span_id,
        ts=ts,
        app=_app(span),
        model=reading.model,
        input_messages=to_json(reading.messages),
        input_text=input_text(reading.messages, ingest.context_min_chars),
        output_text=output,
        latency_ms=latency,
        finish_reason=finish,
        error=error,
        feedback=feedback,
        feedback_thumbs=thumbs,
        feedback_rating=rating,
        corrected_output=corrected,
        metadata=to_json(metadata),
    )


def _latency(span: Span, ts: datetime) -> float | None:
    if span.end is None:
        return None
    start, end = span.start, span.end
    if _is_nanos(start) and _is_nanos(end):
        ms = (int(end) - int(start)) / 1e6
    else:
        ms = (parse_timestamp(end, span.end_field) - ts).total_seconds() * 1000
    if ms < 0:
        raise RecordError("invalid_value", f"`{span.end_field}` is {-ms:.0f} ms before the span's start time")
    return ms


def _is_nanos(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value > 10**17
    return isinstance(value, str) and value.isdecimal() and len(value) >= 18


def _error(span: Span, reading: Reading) -> str | None:
    failed = span.status_code == "ERROR" or reading.error is not None or "error.type" in span.attributes
    if not failed:
        return None
    for event in span.events:
        if event.get("name") == "exception":
            attrs = event["attributes"]
            kind, message = attrs.get("exception.type"), attrs.get("exception.message")
            if kind or message:
                return ": ".join(as_text(v) for v in (kind, message) if v not in (None, ""))
    if reading.error is not None:
        return reading.error
    if span.status_message:
        return span.status_message
    if span.attributes.get("error.type") not in (None, ""):
        return as_text(span.attributes["error.type"])
    return "error"


def _app(span: Span) -> str:
    for source in (span.resource, span.attributes):
        name = source.get("service.name")
        if _app_ok(name):
            return name
    # the Vercel AI SDK names what is traced in experimental_telemetry: {metadata: {app}, functionId}
    for key in ("ai.telemetry.metadata.app", "ai.telemetry.functionId"):
        name = span.attributes.get(key)
        if isinstance(name, str) and name.strip():
            return name
    return "default"


def _metadata(span: Span, reading: Reading, convention: str) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    for key, value in (
        ("span_name", span.name),
        ("span_kind", span.kind),
        ("parent_span_id", span.parent_span_id),
        ("status", {"code": span.status_code, "message": span.status_message} if span.status_code else None),
        ("scope", span.scope),
    ):
        if value not in (None, "", {}):
            meta[key] = value
    resource = {k: v for k, v in span.resource.items() if k != "service.name" or not _app_ok(v)}
    if resource:
        meta["resource"] = resource
    attrs = {k: v for k, v in span.attributes.items() if k not in reading.used}
    if attrs:
        meta["attributes"] = attrs
    events = [e for i, e in enumerate(span.events) if i not in reading.used_events]
    if events:
        meta["events"] = events
    if reading.usage:
        meta["usage"] = usage_with_details(reading.usage)
    if reading.tool_calls:
        meta["tool_calls"] = reading.tool_calls
    meta["convention"] = convention
    extra = {k: v for k, v in span.extra.items() if k not in ("annotations", "trace_annotations")}  # read as scores
    if extra:
        meta["span"] = extra
    return meta


def _app_ok(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip()) and not value.startswith("unknown_service")


def json_attr(value: Any) -> Any:
    """An attribute that may hold JSON text (structured values are logged as JSON strings)."""
    if isinstance(value, str) and value.lstrip()[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except (ValueError, RecursionError):
            return value
    return value


# --- the two span formats ----------------------------------------------------------------------------


def _conventions() -> dict[str, tuple[Callable[[Span], str | None], Reader]]:
    from loop_assets.capture.formats import openinference, otel_genai  # both read spans; imported when used

    return {
        "openinference": (openinference.classify, openinference.read),
        "otel_genai": (otel_genai.classify, otel_genai.read),
    }


def classify_span(span: Span, prefer: str) -> tuple[str | None, str | None]:
    """(the convention that reads this span as an LLM call, or None; why it is skipped otherwise).

    The format's own convention is asked first; a span it does not see as an LLM call but the other
    convention does is read by the other one (files that mix instrumentations).
    """
    table = _conventions()
    order = [prefer, *(name for name in table if name != prefer)]
    reasons = []
    for name in order:
        classify, _ = table[name]
        reason = classify(span)
        if reason is None:
            return name, None
        reasons.append(reason)
    return None, reasons[0]


def annotation_scores(span: Span) -> list[dict[str, Any]]:
    """Phoenix annotations that came with the span (`annotations`: `{name, annotator_kind, result: {label,
    score, explanation}}`, and `trace_annotations`, those of its trace) as scores."""
    scores = []
    for key, scope in (("annotations", "span"), ("trace_annotations", "trace")):
        items = span.extra.get(key)
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, dict):
                continue
            result = item.get("result") if isinstance(item.get("result"), dict) else {}
            score: dict[str, Any] = {"name": item.get("name")}
            for out, field_name in (("value", "score"), ("label", "label"), ("comment", "explanation")):
                if result.get(field_name) is not None:
                    score[out] = result[field_name]
            if item.get("annotator_kind") is not None:
                score["source"] = item["annotator_kind"]
            score["scope"] = scope
            score.update({k: v for k, v in item.items() if k not in ("name", "result", "annotator_kind")})
            scores.append(score)
    return scores


def split_bundle(obj: dict[str, Any], classify: Callable[[Span], str | None]) -> list[Part]:
    """The spans of a Phoenix CLI trace, each an item; the trace's own annotations go with its last LLM span."""
    views: list[tuple[int, Any, Span | None, str | None]] = []
    for i, span in enumerate(obj["spans"]):
        view, skip = None, None
        if isinstance(span, dict):
            try:
                view = span_from_object(span)
                skip = classify(view)
            except RecordError:
                view, skip = None, None
        views.append((i, span, view, skip))
    llm = [(i, v) for i, _, v, skip in views if v is not None and skip is None]
    last = max(llm, key=lambda item: (_start_key(item[1]), item[0]))[0] if llm else None
    trace_annotations = obj.get("annotations") if isinstance(obj.get("annotations"), list) else None
    trace_id = obj.get("traceId", obj.get("trace_id"))
    parts = []
    for i, span, view, skip in views:
        path = ("spans", i)
        if not isinstance(span, dict):
            parts.append(Part(span, path, error=_wrong(f"spans[{i}]", "a span object", span), label=f"spans[{i}]"))
            continue
        item = dict(span)
        if i == last and trace_annotations:
            item["trace_annotations"] = trace_annotations
        if trace_id is not None and not any(k in item for k in ("trace_id", "traceId")):
            context = item.get("context") if isinstance(item.get("context"), dict) else {}
            if "trace_id" not in context:
                item["context"] = {**context, "trace_id": trace_id}
        label = view.label() if view else f"spans[{i}]"
        parts.append(
            Part(
                item,
                path,
                skip=skip,
                label=label,
                trace_id=view.trace_id if view else None,
                item_id=view.span_id if view else None,
            )
        )
    return parts


def _start_key(span: Span) -> float:
    return seconds_or_min(span.start, span.start_field)


class SpanFormat:
    """A span format: OTLP export requests, span objects and flat attribute maps (see the module docstring)."""

    name = ""
    looks_for = ""
    convention = ""

    def split(self, obj: dict[str, Any]) -> list[Part]:
        if is_envelope(obj):
            return split_envelope(obj, lambda span: classify_span(span, self.convention)[1])
        if is_trace_bundle(obj):
            return split_bundle(obj, lambda span: classify_span(span, self.convention)[1])
        if is_logs_envelope(obj):
            skip = "OTLP log records: their GenAI events are read with their spans (in this file or beside it)"
            return [Part(obj, skip=skip, label="log export request")]
        try:
            span = span_from_object(obj)
        except RecordError:
            return [Part(obj)]  # normalise reports the problem
        if not self._looks_like_span(obj, span):
            keys = ", ".join(show(k, 40) for k in list(obj)[:12]) or "none"
            error = RecordError(
                "unknown_format",
                f"not a span for the {self.name} format: looked for {self.looks_for}; this record's keys: {keys}",
            )
            return [Part(obj, error=error)]
        _, skip = classify_span(span, self.convention)
        return [Part(obj, skip=skip, label=span.label(), trace_id=span.trace_id, item_id=span.span_id)]

    def _looks_like_span(self, obj: dict[str, Any], span: Span) -> bool:
        if span.trace_id or span.span_id or span.start is not None or is_span_object(obj):
            return True
        return any(k.startswith(("gen_ai.", "llm.", "openinference.")) for k in span.attributes)

    def normalise(self, obj: dict[str, Any], ingest: IngestConfig, *, now: datetime | None = None) -> list[TraceRow]:
        return normalise_all(self, obj, ingest, now, self._read)

    def _read(self, obj: dict[str, Any], ingest: IngestConfig, now: datetime | None) -> list[TraceRow]:
        span = span_from_envelope(obj) if is_envelope(obj) else span_from_object(obj)
        convention, skip = classify_span(span, self.convention)
        if convention is None:
            raise RecordError("no_trace", f"{span.label()} is not an LLM call: {skip}")
        _, reader = _conventions()[convention]
        return [read_span(span, obj, ingest, now, reader, convention)]
