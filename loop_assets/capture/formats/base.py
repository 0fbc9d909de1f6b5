"""What every trace format shares: the error a record is quarantined with, and the format interface.

A format turns one decoded source record (a JSON object) into one or more normalised traces: dicts
with the `raw_traces` columns listed in `TRACE_FIELDS`. It knows nothing of files, days, partitions
or duplicates; `loop_assets.capture.ingest` does that for every format alike.

A record can hold several items (an OTLP export request holds many spans, a Langfuse trace its
observations, a LangSmith run tree its child runs). Such a format also has `split(obj)`: the
record's items as `Part`s, each either an LLM call (normalised on its own, so a broken span is
quarantined alone), a non-LLM item (`skip`: a chain/tool span or run, a SPAN observation; listed,
not a record), or a broken item (`error`).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any, Protocol, TypedDict, runtime_checkable

import orjson

from loop_assets.config import IngestConfig


# The columns a format fills for each normalised trace (capture adds day, record_hash and provenance).
class TraceRow(TypedDict):
    """One LLM call as every format gives it: the `raw_traces` columns a parser fills (tables.RAW_TRACES
    says what each holds); capture adds the day, the record hash and where it was read."""

    trace_id: str
    span_id: str | None
    ts: datetime
    app: str
    model: str | None
    input_messages: str
    input_text: str
    output_text: str | None
    latency_ms: float | None
    finish_reason: str | None
    error: str | None
    feedback: str | None
    feedback_thumbs: str | None
    feedback_rating: float | None
    corrected_output: str | None
    metadata: str


TRACE_FIELDS = tuple(TraceRow.__annotations__)

# Every reason_code a quarantined record can carry, with what it means.
REASON_CODES: dict[str, str] = {
    # reading the file (loop_assets.capture.formats.jsonl)
    "empty_file": "The file has no bytes (or no lines); one record at line 0 stands for it",
    "unreadable_file": "The file could not be opened or read (permissions, I/O error)",
    "truncated_gzip": "The gzip stream is truncated or corrupt; the lines before the damage were read",
    "too_large": "The line is longer than ingest.max_record_bytes",
    "blank_line": "The line is empty or only whitespace",
    "invalid_utf8": "The line is not valid UTF-8",
    "invalid_json": "The line is not valid JSON",
    # reading the record (a format's normalise)
    "wrong_type": "A value has the wrong JSON type (e.g. a top-level array, messages given as a string)",
    "missing_field": "A required field is absent or null",
    "invalid_value": "A value has the right type but cannot be used (e.g. no messages, negative latency)",
    "bad_timestamp": "The timestamp cannot be parsed, or is before ingest.earliest_timestamp or too far ahead",
    "unknown_format": "No registered trace format recognises the file's records, or this record's shape",
    "no_trace": "The format read the record but found no LLM call in it (e.g. only chain or tool spans)",
    "parser_error": "The format's parser failed unexpectedly on this record (a bug to report)",
    # across records (loop_assets.capture.ingest)
    "duplicate_record": "Same trace id and content as a record read earlier (a redelivery)",
    "conflicting_duplicate": "Same trace id as a record read earlier, with different content",
}


class RecordError(Exception):
    """A record that cannot become a trace: `code` for machines, `reason` for a person.

    `ts` is set when the record's timestamp was read before the problem was found, so the
    quarantined row can still carry the record's own day.
    """

    def __init__(self, code: str, reason: str, *, ts: datetime | None = None) -> None:
        if code not in REASON_CODES:
            raise ValueError(f"unknown reason code {code!r}; add it to REASON_CODES")
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason
        self.ts = ts


@runtime_checkable
class TraceFormat(Protocol):
    """One external trace format.

    - `name`: registry key, stored as `source_format`.
    - `looks_for`: what `detect` looks for, in words (quoted when no format recognises a file).
    - `detect(obj)`: whether a decoded record looks like this format (cheap, never raises).
    - `normalise(obj, ingest, now=...)`: one or more traces with the `TRACE_FIELDS` keys, or
      `RecordError` naming the field and what was found. `now` is the wall clock that
      `ingest.future_tolerance_hours` is measured from (default: the current time).
    - optionally `split(obj) -> list[Part]`: the record's items, when one record can hold several
      (see `Part`). Capture then normalises each LLM item's `Part.obj` on its own; `normalise` on the
      whole record returns the traces of all its LLM items (see `normalise_all`).
    """

    name: str
    looks_for: str

    def detect(self, obj: dict[str, Any]) -> bool: ...

    def normalise(
        self, obj: dict[str, Any], ingest: IngestConfig, *, now: datetime | None = None
    ) -> list[TraceRow]: ...


@dataclass(frozen=True, slots=True)
class Part:
    """One item of a record, as a format's optional `split(obj)` returns it.

    - `obj`: a self-contained record of the format holding just this item (what `normalise` reads).
    - `path`: where the item sits in the record, e.g. ("resourceSpans", 0, "scopeSpans", 0, "spans", 3);
      () for the record itself. Capture uses it for the item's line and original bytes.
    - `skip`: why the item is not an LLM call (a non-LLM span, a chain run, a SPAN observation).
      Skipped items are listed, not records.
    - `error`: the item is broken; it is quarantined alone.
    - `label`: how a person recognises the item ("span 5f2e 'chat gpt-4o'").
    - `trace_id`, `item_id`: the item's trace and own id, when known (for the listing of skipped items).
    """

    obj: Any
    path: tuple[str | int, ...] = ()
    skip: str | None = None
    error: RecordError | None = None
    label: str = ""
    trace_id: str | None = None
    item_id: str | None = None


def split_record(fmt: Any, obj: dict[str, Any]) -> list[Part]:
    """The record's items: the format's `split`, or the record itself as its only item."""
    split = getattr(fmt, "split", None)
    if split is None:
        return [Part(obj)]
    return list(split(obj))


def normalise_all(
    fmt: Any, obj: dict[str, Any], ingest: IngestConfig, now: datetime | None, read: Any
) -> list[dict[str, Any]]:
    """`normalise` for a format with `split`: every LLM item of the record, read by `read(part_obj)`.

    A record that is one item is read directly. Otherwise the traces of all LLM items are returned;
    the first broken item raises (capture itself normalises item by item, so there one broken item
    is quarantined alone); a record with no LLM item at all is `no_trace`.
    """
    parts = split_record(fmt, obj)
    if len(parts) == 1 and parts[0].obj is obj and parts[0].skip is None and parts[0].error is None:
        return read(obj, ingest, now)
    traces: list[dict[str, Any]] = []
    for part in parts:
        if part.error is not None:
            raise part.error
        if part.skip is None:
            traces.extend(read(part.obj, ingest, now))
    if not traces:
        raise RecordError("no_trace", describe_skipped(parts))
    return traces


def describe_skipped(parts: list[Part]) -> str:
    """A reason for a record whose items are all skipped: how many, why, and the first few."""
    if not parts:
        return "the record holds no items at all"
    reasons: dict[str, int] = {}
    for part in parts:
        reasons[part.skip or "?"] = reasons.get(part.skip or "?", 0) + 1
    listed = "; ".join(f"{n} × {why}" for why, n in reasons.items())
    labels = ", ".join(p.label for p in parts[:5] if p.label)
    more = f" ({labels}{', ...' if len(parts) > 5 else ''})" if labels else ""
    noun = "item" if len(parts) == 1 else "items"
    return f"no LLM call in this record: {len(parts)} {noun}, none an LLM request: {listed}{more}"


# ---------------------------------------------------------------------------------------------
# Helpers formats share
# ---------------------------------------------------------------------------------------------


def canonical_json(obj: Any) -> str:
    """The record's canonical JSON: sorted keys, compact separators, non-ASCII kept as is."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def record_hash(obj: Any, raw: bytes | None = None) -> str:
    """sha256 (hex) of the canonical JSON; lone surrogates from `\\ud800` escapes are kept as is.

    Given the complete bytes `raw` the object was decoded from, orjson writes the canonical JSON about
    4x faster, byte for byte as json does (tested), for every value but non-finite floats, which it
    writes as null, floats below 1e-4 or in exponent form (json: 1e-05, orjson: 0.00001) and what it
    refuses (lone surrogates, integers beyond 64 bits). A raw with NaN or Infinity, an output with more
    nulls than the raw (a float that overflowed) or with `e-`, `e+` or `0.0000` in it takes json's path,
    so the hash never depends on the path (checked on thousands of random records)."""
    if raw is not None and b"NaN" not in raw and b"Infinity" not in raw:
        try:
            data = orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)
        except (orjson.JSONEncodeError, TypeError):
            data = b""
        # floats written differently: json 1e-07 / 1e-05, orjson 1e-7 / 0.00001 (and any exponent, to be safe)
        exponent = b"e-" in data or b"e+" in data or b"0.0000" in data
        if data and not exponent and data.count(b"null") == raw.count(b"null"):
            return hashlib.sha256(data).hexdigest()
    return hashlib.sha256(canonical_json(obj).encode("utf-8", "surrogatepass")).hexdigest()


def to_json(value: Any) -> str:
    """JSON for a stored column (keys in logged order, non-ASCII kept readable)."""
    return json.dumps(value, ensure_ascii=False)


def json_type(value: Any) -> str:
    """The JSON name of a Python value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def show(value: Any, limit: int = 60) -> str:
    """A short, printable rendering of a found value for a reason."""
    text = repr(value) if isinstance(value, str) else json.dumps(value, ensure_ascii=True, default=repr)
    return text if len(text) <= limit else text[: limit - 3] + "..."


_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_LONG_FRACTION = re.compile(r"(\.\d{6})\d+")


def _from_epoch(value: float) -> datetime:
    """Epoch seconds; milliseconds above 1e11, microseconds above 1e14, nanoseconds above 1e17."""
    magnitude = abs(value)
    if magnitude > 1e17:
        value /= 1e9
    elif magnitude > 1e14:
        value /= 1e6
    elif magnitude > 1e11:
        value /= 1e3
    return datetime.fromtimestamp(value, UTC)


def parse_timestamp(value: Any, field: str) -> datetime:
    """An aware UTC datetime from ISO 8601 text (Z, offset, or naive taken as UTC) or epoch numbers.

    Raises RecordError (`wrong_type` for booleans, objects and arrays; `missing_field` for null;
    `bad_timestamp` for text that is no date-time and numbers out of range).
    """
    if value is None:
        raise RecordError("missing_field", f"`{field}` is null")
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise RecordError(
            "wrong_type",
            f"`{field}` must be an ISO 8601 date-time or epoch number, got {json_type(value)} {show(value)}",
        )
    try:
        if isinstance(value, str):
            text = value.strip()
            if _NUMBER.match(text):
                parsed = _from_epoch(float(text))
            else:
                parsed = datetime.fromisoformat(_LONG_FRACTION.sub(r"\1", text))
        else:
            if not math.isfinite(value):
                raise ValueError("not finite")
            parsed = _from_epoch(float(value))
    except (ValueError, OverflowError, OSError):
        raise RecordError(
            "bad_timestamp",
            f"`{field}` is not an ISO 8601 date-time or epoch number, got {show(value)}",
        ) from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def earliest_allowed(ingest: IngestConfig) -> datetime:
    """`ingest.earliest_timestamp` as an aware datetime; a ValueError naming the key when unusable."""
    return _earliest(ingest.earliest_timestamp)


@lru_cache(maxsize=16)
def _earliest(text: str) -> datetime:
    try:
        return parse_timestamp(text, "ingest.earliest_timestamp")
    except RecordError as exc:
        raise ValueError(
            f"ingest.earliest_timestamp must be an ISO 8601 date or date-time such as '2000-01-01', got {text!r}"
        ) from exc


UNDATED = "ingest.undated_day"
"""Where the time of a record that carries none comes from, when the user gives one (`undated_ts`)."""


def undated_ts(ingest: IngestConfig, reason: str) -> datetime:
    """`ingest.undated_day` (midnight UTC) for a record that carries no time of its own: an explicit day, so
    a redelivered file lands on the same day and adds nothing. Unset: `missing_field` with `reason` and
    the key that gives such records a day."""
    day = getattr(ingest, "undated_day", None)
    if day is None:
        raise RecordError("missing_field", f"{reason}; to read records without a time, set {UNDATED} to their day")
    return datetime.fromisoformat(day).replace(tzinfo=UTC)


def check_timestamp_range(ts: datetime, field: str, ingest: IngestConfig, now: datetime | None) -> None:
    """RecordError `bad_timestamp` when ts is before earliest_timestamp or too far past `now`."""
    earliest = earliest_allowed(ingest)
    if ts < earliest:
        raise RecordError(
            "bad_timestamp",
            f"`{field}` {iso(ts)} is earlier than ingest.earliest_timestamp ({ingest.earliest_timestamp}, which "
            "follows partitions_start unless set): to read older history, set partitions_start in the config "
            "file to the first day of your logs and ingest again",
        )
    now = utc_now(now)
    latest = now + timedelta(hours=ingest.future_tolerance_hours)
    if ts > latest:
        ahead = (ts - now).total_seconds() / 3600
        raise RecordError(
            "bad_timestamp",
            f"`{field}` {iso(ts)} is {ahead:.1f} h after the ingest clock {iso(now)} "
            f"(ingest.future_tolerance_hours is {ingest.future_tolerance_hours:g})",
        )


def utc_now(now: datetime | None = None) -> datetime:
    """`now` as an aware UTC datetime (naive taken as UTC), the current time when None."""
    if now is None:
        return datetime.now(UTC)
    return now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def utc_day(ts: datetime) -> date:
    return ts.astimezone(UTC).date()


def get_path(obj: Mapping[str, Any], path: str) -> Any:
    """obj['a']['b'] for 'a.b'; None when any step is absent or not an object."""
    current: Any = obj
    for key in path.split("."):
        if not isinstance(current, Mapping):
            return None
        current = current.get(key)
    return current


def start_seconds(obj: dict[str, Any], field: str) -> float:
    """The item's start time as a sort key; unreadable or missing times sort first."""
    return seconds_or_min(obj.get(field), field)


def seconds_or_min(value: Any, field: str) -> float:
    """A time as epoch seconds for sorting; an unreadable or missing one sorts first."""
    try:
        return parse_timestamp(value, field).timestamp()
    except RecordError:
        return float("-inf")


_USAGE_KEYS = {
    "input_tokens": (
        "input_tokens",
        "prompt_tokens",
        "input",
        "prompt",
        "promptTokens",
        "prompt_token_count",
        "promptTokenCount",
        "inputTokens",
    ),
    "output_tokens": (
        "output_tokens",
        "completion_tokens",
        "output",
        "completion",
        "completionTokens",
        "candidates_token_count",
        "candidatesTokenCount",
        "outputTokens",
    ),
    "total_tokens": ("total_tokens", "total", "totalTokens", "total_token_count", "totalTokenCount"),
}


def usage_with_details(raw: dict[str, Any]) -> dict[str, Any]:
    """`usage_of(raw)` plus the counts it does not map (cache reads, reasoning tokens ...) as logged."""
    usage: dict[str, Any] = usage_of(raw)
    mapped = {k for name in usage for k in _USAGE_KEYS[name]}
    usage.update({k: v for k, v in raw.items() if k not in mapped})
    return usage


def usage_of(*sources: Any) -> dict[str, int | float]:
    """Token counts as `{"input_tokens", "output_tokens", "total_tokens"}` from the first source that has
    any: OpenAI `usage` (prompt/completion), Responses and LangChain `usage_metadata` (input/output),
    Langfuse `usageDetails` (input/output/total), Gemini `usage_metadata` (prompt/candidates_token_count)."""
    for source in sources:
        if not isinstance(source, dict):
            continue
        out: dict[str, int | float] = {}
        for name, keys in _USAGE_KEYS.items():
            for key in keys:
                value = source.get(key)
                if isinstance(value, str) and value.strip().isdecimal():  # OTel attributes logged as text
                    value = int(value)
                if isinstance(value, int | float) and not isinstance(value, bool):
                    out[name] = value
                    break
        if out:
            return out
    return {}


def settle_answer(text: str | None, finish: str | None, calls: Any, error: str | None) -> tuple[str | None, str | None]:
    """(output_text, finish_reason) as every format stores them: an answer that was not logged is null
    for a call that failed and "" otherwise; a call that answered only with tool calls finished with
    `tool_calls` unless it logged a reason."""
    if text is None and error is None:
        text = ""
    if finish is None and calls and not text:
        finish = "tool_calls"
    return text, finish


def with_extras(meta: dict[str, Any], extras: dict[str, Any], usage: dict[str, Any]) -> dict[str, Any]:
    """A record's metadata object with what no column holds beside it: each of `extras` under its own key
    (`record.<key>` where the metadata has that key), and the token counts under `usage` (a logged
    `usage` that differs is kept as `record.usage`)."""
    for key, item in extras.items():
        meta["record." + key if key in meta else key] = item
    if usage:
        if "usage" in meta and meta["usage"] != usage:
            meta["record.usage"] = meta["usage"]
        meta["usage"] = usage
    return meta


def json_object(value: Any) -> Any:
    """A JSON object logged as text (Langfuse keeps OTel-ingested metadata so) as the object; else as is."""
    if isinstance(value, str) and value.lstrip().startswith("{"):
        try:
            decoded = json.loads(value)
        except (ValueError, RecursionError):
            return value
        return decoded if isinstance(decoded, dict) else value
    return value
