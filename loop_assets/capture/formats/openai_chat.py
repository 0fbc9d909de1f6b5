"""The OpenAI chat trace format: one JSON object per LLM call, request messages in OpenAI chat shape.

The canonical shape (what the bundled sample traffic looks like)::

    {"id": "tr_0123456789abcdef", "timestamp": "2026-11-16T08:12:33.123Z", "app": "support_bot",
     "request": {"model": "gpt-4o-mini", "messages": [{"role": "system", "content": "..."},
                                                      {"role": "user", "content": "..."}],
                 "temperature": 0.2},
     "response": {"id": "chatcmpl-..", "model": "gpt-4o-mini-2024-07-18",
                  "choices": [{"index": 0, "message": {"role": "assistant", "content": "..."},
                               "finish_reason": "stop"}],
                  "usage": {...}},
     "latency_ms": 812.4,
     "error": null | {"type": "server_error", "code": 500, "message": "..."},
     "feedback": null | {"thumbs": "up", "rating": 4, "comment": "...", "corrected_output": "..."},
     "metadata": {"user_id": "...", "session_id": "...", "env": "prod", "scenario": "..."}}

Variants accepted (the first one present, in the order given, wins; a key whose value is null counts
as absent):

- trace_id: `id`, `trace_id`, `request_id` (a string or an integer); without one, `h_` + the first
  32 hex digits of the sha256 of the record's canonical JSON, so a redelivered record gets the
  same id. span_id: `span_id`, when present.
- ts: `timestamp`, `ts`, `created_at`, `start_time`, `startTime` (LiteLLM), `created`, then
  `response.created`; a record with none of them (a fine-tuning line) takes `ingest.undated_day` when
  it is set (metadata `ts_from`), else it is quarantined naming that key. ISO 8601
  with `Z` or an offset (converted to UTC); naive ISO text is taken as UTC; numbers (or numeric
  text) are epoch seconds, milliseconds above 1e11, microseconds above 1e14, nanoseconds above
  1e17. Booleans, objects and arrays are `wrong_type`; a timestamp before
  `ingest.earliest_timestamp` or more than `ingest.future_tolerance_hours` after the ingest clock is
  `bad_timestamp`.
- messages: `messages`, `request.messages`, `input.messages`: a non-empty list of objects, each
  with a string `role` and a `content` that is a string or a list of content parts (strings or
  `{"type": "text", "text": ...}`; non-text parts such as images are kept in input_messages and
  skipped for input_text). An assistant message with `tool_calls`/`function_call` may have no
  content. `system` and `developer` turns count as system turns.
- output_text: `response.choices[0].message.content`, `choices[0].message.content` (or a legacy
  `choices[0].text`), `response` when it is a string, then `output`, `completion` (a string, a
  message object with `content`, or a list of content parts). Text parts are joined with newlines.
  A choice with tool calls and no content gives "" (finish_reason `tool_calls` unless one was
  logged; the calls are kept in metadata.tool_calls). No output logged: null when the call
  errored, else "". output_text is stored exactly as logged (whitespace included).
- finish_reason: the choice's `finish_reason`, else a top-level `finish_reason`.
- model: `response.model` (the model that answered), `model`, `request.model`.
- app: `app`, `metadata.app`, else "default".
- latency_ms: `latency_ms`, `duration_ms` (milliseconds), `latency` (seconds), else
  `end_time`/`ended_at`/`completed_at`/`endTime` minus ts. Numbers or numeric text; anything else is
  `wrong_type`, a negative latency `invalid_value`.
- error: a string as is; an object as "type code: message" (the parts present; `msg`/`detail`
  stand in for `message`; an OpenAI error body `{"error": {...}}` is unwrapped); false/""/null: no
  error. LiteLLM: `error_str`, else `error_information.error_message` when `status` is "failure".
- no output logged and the messages end with an assistant turn after a user (or tool) turn (an
  OpenAI fine-tuning line `{"messages": [..., answer]}`, a conversation logged whole): that turn is
  the answer and the request is the turns before it (metadata `answer_from`). A fine-tuning line has
  no timestamp: it is quarantined saying so.
- an OpenAI stored completion (`{"object": "chat.completion", ...}` as List Chat Completions gives
  it) holds no request: quarantined, naming the endpoint that returns its messages.
- OpenAI Batch API lines: an output or error line (`{id, custom_id, response: {status_code, body},
  error}`) is read as `response.body` with the request capture adds from the input file beside it
  (`formats.batch`); trace_id is the line's `id`, the rest under metadata.batch. A request line of
  the input file is `no_trace`.
- usage (metadata.usage): `response.usage`, `usage` or LiteLLM's top-level counts as
  `input_tokens`/`output_tokens`/`total_tokens`.
- feedback: stored as logged (JSON). feedback_thumbs from `thumbs` ("up"/"down" and synonyms such as
  "thumbs_up", "positive", "👍"; true/false; 1/-1), else from `score` (true/false; 1 up; 0 or -1
  down); a bare string/boolean/number feedback is read as thumbs. feedback_rating from `rating`
  (a number or numeric text; anything else leaves it null). corrected_output from
  `corrected_output` or `correction`.
- metadata: the record's `metadata` object (a non-object value is kept under "metadata"), plus
  every top-level key not read above, plus what `request`/`response`/`input` held besides the
  fields read (under "request", "response", "input"), plus the tool calls of the answer (under
  "tool_calls"). A top-level key that collides with a metadata key is stored as "record.<key>".
  Nothing in a record is dropped, except choices after the first.

input_text is the last user turn (the last non-system turn when there is no user turn), whitespace
collapsed and stripped, case kept. When it is shorter than `ingest.context_min_chars`, up to two
preceding non-system turns with text are put before it, one "role: text" line each, and the last
turn becomes a "user: text" line, so a reply such as "yes please" stands alone.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Any

from loop_assets.capture.formats.base import (
    UNDATED,
    RecordError,
    TraceRow,
    check_timestamp_range,
    get_path,
    json_type,
    parse_timestamp,
    record_hash,
    settle_answer,
    show,
    to_json,
    undated_ts,
    usage_of,
    with_extras,
)
from loop_assets.config import IngestConfig
from loop_assets.messages import TEXT_PART_TYPES, message_text

ID_KEYS = ("id", "trace_id", "request_id")
TS_KEYS = ("timestamp", "ts", "created_at", "start_time", "startTime", "created")
END_KEYS = ("end_time", "ended_at", "completed_at", "endTime")
MESSAGE_PATHS = ("messages", "request.messages", "input.messages")
FINE_TUNING_KEYS = frozenset({"messages", "tools", "functions", "parallel_tool_calls"})
"""The keys of an OpenAI chat fine-tuning line (`{"messages": [..., answer]}`)."""
SYSTEM_ROLES = frozenset({"system", "developer"})

_UP = frozenset({"up", "thumbs_up", "thumbsup", "thumbs-up", "+1", "positive", "like", "good", "👍"})
_DOWN = frozenset({"down", "thumbs_down", "thumbsdown", "thumbs-down", "-1", "negative", "dislike", "bad", "👎"})
_NUMERIC = re.compile(r"^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$")


class OpenAIChatFormat:
    """OpenAI chat completion logs (see the module docstring for the accepted variants)."""

    name = "openai_chat"
    looks_for = "request messages at `messages`, `request.messages` or `input.messages`"

    def detect(self, obj: dict[str, Any]) -> bool:
        if not isinstance(obj, dict):
            return False
        if "messages" in obj or obj.get("object") == "chat.completion" or is_batch_line(obj):
            return True
        return any(isinstance(obj.get(key), dict) and "messages" in obj[key] for key in ("request", "input"))

    def normalise(self, obj: dict[str, Any], ingest: IngestConfig, *, now: datetime | None = None) -> list[TraceRow]:
        used: set[str] = set()
        if is_batch_line(obj):
            obj = batch_record(obj)
        if obj.get("object") == "chat.completion" and not any(
            isinstance(c, dict) and "messages" in c for c in (obj, obj.get("request"), obj.get("input"))
        ):
            raise RecordError(
                "missing_field",
                "an OpenAI stored chat completion without its request: the List Chat Completions API "
                "(GET /v1/chat/completions) leaves the messages out; fetch them with GET "
                "/v1/chat/completions/{id}/messages and log them as `messages` beside the completion",
            )
        if any(k in obj for k in TS_KEYS) or get_path(obj, "response.created") is not None:
            ts, ts_field = _timestamp(obj, used)  # (a time logged as null is a broken record: quarantined)
        else:  # a record with no time at all (a fine-tuning line): the day the user gives such records
            ts, ts_field = undated_ts(ingest, _no_timestamp(obj)), UNDATED
            obj = {**obj, "ts_from": UNDATED}
        check_timestamp_range(ts, ts_field, ingest, now)
        try:
            return [_normalise(obj, ingest, ts, used)]
        except RecordError as exc:
            exc.ts = ts
            raise


FORMAT = OpenAIChatFormat()


# --- OpenAI Batch API files -----------------------------------------------------------------------


def is_batch_line(obj: Any) -> bool:
    """A line of a Batch API input file (`{custom_id, method, url, body}`) or of its output or error file
    (`{id, custom_id, response: {status_code, request_id, body} | null, error}`)."""
    return (
        isinstance(obj, dict)
        and "custom_id" in obj
        and (("response" in obj and "error" in obj) or ("url" in obj and isinstance(obj.get("body"), dict)))
    )


def batch_record(obj: dict[str, Any]) -> dict[str, Any]:
    """A Batch API output or error line as a chat log record: the answer from `response.body`, the
    request from `request` (the input file's `body` for the same `custom_id`, which capture adds when
    the input file lies beside the output file), the time from the answer's `created`."""
    custom = obj.get("custom_id")
    if "url" in obj and "response" not in obj:
        raise RecordError(
            "no_trace",
            f"a Batch API request line (custom_id {custom!r}): a request with no answer and no time; its answer "
            "is a line of the batch's output file, read together with this file",
        )
    response = obj.get("response") if isinstance(obj.get("response"), dict) else {}
    body = response.get("body") if isinstance(response.get("body"), dict) else {}
    status = response.get("status_code")
    record: dict[str, Any] = {
        "id": obj.get("id") or custom,
        "batch": {k: v for k, v in obj.items() if k not in ("id", "response", "error", "request")},
    }
    if response:
        record["batch"]["response"] = {k: v for k, v in response.items() if k != "body"}
    if body.get("created") is not None:
        record["created"] = body["created"]
    error = obj.get("error")
    if isinstance(status, int) and status >= 400:
        error = error or body.get("error") or f"HTTP {status}"
    elif body:
        record["response"] = body
    if error:
        record["error"] = error
    request = obj.get("request")
    if isinstance(request, dict) and "messages" in request:
        record["request"] = request
    elif "messages" not in body:
        where = "its request" if record.get("response") else "its request and its time"
        raise RecordError(
            "missing_field",
            f"a Batch API output line (custom_id {custom!r}) without {where}: they are in the batch input "
            "file (the line with the same custom_id); put that file beside this one, in the same folder",
        )
    return record


def _normalise(obj: dict[str, Any], ingest: IngestConfig, ts: datetime, used: set[str]) -> TraceRow:
    sub_used: dict[str, set[str]] = {"request": set(), "response": set(), "input": set()}
    trace_id = _trace_id(obj, used)
    span_id = _opt_text(obj, "span_id", used)
    messages, turns = _messages(obj, used, sub_used)
    output_text, finish_reason, tool_calls = _output(obj, used, sub_used)
    answer_logged = output_text is not None or "error" in obj or obj.get("error_str")
    asked = any(role in ("user", "tool") for role, _ in turns[:-1])
    if not answer_logged and asked and isinstance(messages[-1], dict) and messages[-1].get("role") == "assistant":
        # the conversation ends with its answer (fine-tuning lines, conversations logged whole)
        last = messages[-1]
        output_text = turns[-1][1]
        tool_calls = last.get("tool_calls") or last.get("function_call")
        messages, turns = messages[:-1], turns[:-1]
        extra = {k: v for k, v in last.items() if k not in ("role", "content", "tool_calls", "function_call")}
        obj = {**obj, "answer_from": "messages[-1]", **({"answer": extra} if extra else {})}
    if finish_reason is None and obj.get("finish_reason") is not None:
        finish_reason = str(obj["finish_reason"])
    if "finish_reason" in obj:
        used.add("finish_reason")
    error = None
    if "error" in obj:
        used.add("error")
        error = _error_text(obj["error"])
    if error is None and obj.get("error_str") not in (None, ""):  # LiteLLM's StandardLoggingPayload
        used.add("error_str")
        error = _error_text(obj["error_str"])
    if error is None and obj.get("status") == "failure":
        details = obj.get("error_information") if isinstance(obj.get("error_information"), dict) else {}
        error = _error_text(details.get("error_message")) or "failure"
    output_text, finish_reason = settle_answer(output_text, finish_reason, tool_calls, error)

    model = _model(obj, used, sub_used)
    app = _app(obj, used)
    latency_ms = _latency(obj, ts, used)
    feedback, thumbs, rating, corrected = _feedback(obj, used)
    metadata = _metadata(obj, used, sub_used, tool_calls)

    return TraceRow(
        trace_id=trace_id,
        span_id=span_id,
        ts=ts,
        app=app,
        model=model,
        input_messages=to_json(messages),
        input_text=_input_text(turns, ingest.context_min_chars),
        output_text=output_text,
        latency_ms=latency_ms,
        finish_reason=finish_reason,
        error=error,
        feedback=feedback,
        feedback_thumbs=thumbs,
        feedback_rating=rating,
        corrected_output=corrected,
        metadata=to_json(metadata),
    )


# --- fields -------------------------------------------------------------------------------------


def _timestamp(obj: dict[str, Any], used: set[str]) -> tuple[datetime, str]:
    for key in TS_KEYS:
        if obj.get(key) is not None:
            used.add(key)
            return parse_timestamp(obj[key], key), key
    created = get_path(obj, "response.created")
    if created is not None:
        return parse_timestamp(created, "response.created"), "response.created"
    raise RecordError("missing_field", _no_timestamp(obj))


def _no_timestamp(obj: dict[str, Any]) -> str:
    present = [key for key in TS_KEYS if key in obj]
    found = f" (`{present[0]}` is null)" if present else ""
    what = ""
    if set(obj) <= FINE_TUNING_KEYS:
        what = (
            " (an OpenAI fine-tuning example: training data carries no time, and rows are partitioned by the "
            "day of the call)"
        )
    return "no timestamp: none of " + ", ".join(f"`{k}`" for k in TS_KEYS) + f" is set{found}{what}"


def _trace_id(obj: dict[str, Any], used: set[str]) -> str:
    for key in ID_KEYS:
        value = obj.get(key)
        if value is None or value == "":
            continue
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise RecordError("wrong_type", f"`{key}` must be a string id, got {json_type(value)} {show(value)}")
        used.add(key)
        return str(value)
    return "h_" + record_hash(obj)[:32]


def _opt_text(obj: dict[str, Any], key: str, used: set[str]) -> str | None:
    if key not in obj:
        return None
    used.add(key)
    value = obj[key]
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else to_json(value)


def _messages(
    obj: dict[str, Any], used: set[str], sub_used: dict[str, set[str]]
) -> tuple[list[Any], list[tuple[str, str]]]:
    """The request messages as logged, and (role, text) per message; RecordError when unusable."""
    field, value, null_field = None, None, None
    for path in MESSAGE_PATHS:
        head, _, _ = path.partition(".")
        container = obj if path == "messages" else obj.get(head)
        if not isinstance(container, dict) or "messages" not in container:
            continue
        if container["messages"] is None:
            null_field = null_field or path
            continue
        field, value = path, container["messages"]
        if path == "messages":
            used.add("messages")
        else:
            sub_used[head].add("messages")
        break
    if field is None:
        if null_field:
            raise RecordError("missing_field", f"`{null_field}` is null: the request messages are missing")
        raise RecordError(
            "missing_field",
            "no request messages: looked for `messages`, `request.messages` and `input.messages`",
        )
    if not isinstance(value, list):
        raise RecordError(
            "wrong_type",
            f"`{field}` must be a list of chat messages, got {json_type(value)} {show(value)}",
        )
    if not value:
        raise RecordError("invalid_value", f"`{field}` is empty: a chat request needs at least one message")
    turns = []
    for i, message in enumerate(value):
        where = f"{field}[{i}]"
        if not isinstance(message, dict):
            raise RecordError(
                "wrong_type",
                f"`{where}` must be an object with role and content, got {json_type(message)} {show(message)}",
            )
        role = message.get("role")
        if role is None:
            keys = ", ".join(sorted(message)) or "none"
            raise RecordError("missing_field", f"`{where}` has no `role` (keys: {keys})")
        if not isinstance(role, str):
            raise RecordError("wrong_type", f"`{where}.role` must be a string, got {json_type(role)} {show(role)}")
        content = message.get("content")
        if content is None:
            if role == "assistant" and (message.get("tool_calls") or message.get("function_call")):
                turns.append((role, ""))
                continue
            state = "null" if "content" in message else "missing"
            raise RecordError("missing_field", f"`{where}` ({role}) has no `content` ({state})")
        turns.append((role, _content_text(content, f"{where}.content")))
    return value, turns


def _content_text(content: Any, field: str) -> str:
    """`message_text` of a message content, its text parts only; RecordError when the content is not a
    string, one part object or a list of strings and part objects."""
    parts = [content] if isinstance(content, dict) else content
    if isinstance(parts, list):
        for i, part in enumerate(parts):
            if not isinstance(part, str | dict):
                raise RecordError(
                    "wrong_type",
                    f"`{field}[{i}]` must be a content part object, got {json_type(part)} {show(part)}",
                )
    elif parts is not None and not isinstance(parts, str):
        raise RecordError(
            "wrong_type",
            f"`{field}` must be a string or a list of content parts, got {json_type(content)} {show(content)}",
        )
    return message_text(content, TEXT_PART_TYPES)


def _output(obj: dict[str, Any], used: set[str], sub_used: dict[str, set[str]]) -> tuple[str | None, str | None, Any]:
    """(output text or None when none was logged, the choice's finish_reason, tool calls)."""
    response = obj.get("response")
    choices, field = None, None
    if isinstance(response, dict) and response.get("choices") is not None:
        choices, field = response["choices"], "response.choices"
        sub_used["response"].add("choices")
        used.add("response")
    elif obj.get("choices") is not None:
        choices, field = obj["choices"], "choices"
        used.add("choices")
    if choices is not None:
        if not isinstance(choices, list):
            raise RecordError(
                "wrong_type", f"`{field}` must be a list of choices, got {json_type(choices)} {show(choices)}"
            )
        if not choices:
            return "", None, None
        choice = choices[0]
        if not isinstance(choice, dict):
            raise RecordError("wrong_type", f"`{field}[0]` must be an object, got {json_type(choice)} {show(choice)}")
        finish = choice.get("finish_reason")
        finish = None if finish is None else str(finish)
        message = choice.get("message")
        if message is None:
            text = choice.get("text")
            return (text if isinstance(text, str) else ""), finish, None
        if not isinstance(message, dict):
            raise RecordError(
                "wrong_type",
                f"`{field}[0].message` must be an object, got {json_type(message)} {show(message)}",
            )
        tool_calls = message.get("tool_calls") or message.get("function_call")
        return _content_text(message.get("content"), f"{field}[0].message.content"), finish, tool_calls
    if isinstance(response, str):
        used.add("response")
        return response, None, None
    for key in ("output", "completion"):
        value = obj.get(key)
        if value is None:
            continue
        used.add(key)
        if isinstance(value, dict) and ("content" in value or "tool_calls" in value):
            tool_calls = value.get("tool_calls") or value.get("function_call")
            return _content_text(value.get("content"), f"{key}.content"), None, tool_calls
        if isinstance(value, str | list | dict):
            return _content_text(value, key), None, None
        raise RecordError(
            "wrong_type",
            f"`{key}` must be a string, a message or content parts, got {json_type(value)} {show(value)}",
        )
    return None, None, None


def _error_text(value: Any) -> str | None:
    if value is None or value is False or value == "":
        return None
    if value is True:
        return "error"
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        if isinstance(value.get("error"), dict) and not any(k in value for k in ("type", "message", "code")):
            return _error_text(value["error"])
        head = " ".join(str(value[k]) for k in ("type", "code") if value.get(k) not in (None, ""))
        message = next((value[k] for k in ("message", "msg", "detail") if value.get(k) not in (None, "")), None)
        if message is not None:
            message = message if isinstance(message, str) else to_json(message)
            return f"{head}: {message}" if head else message
        return head or to_json(value)
    return to_json(value)


def _model(obj: dict[str, Any], used: set[str], sub_used: dict[str, set[str]]) -> str | None:
    response_model = get_path(obj, "response.model")
    if response_model is not None:
        sub_used["response"].add("model")
        return _as_text(response_model)
    if obj.get("model") is not None:
        used.add("model")
        return _as_text(obj["model"])
    request_model = get_path(obj, "request.model")
    if request_model is not None:
        sub_used["request"].add("model")
        return _as_text(request_model)
    return None


def _app(obj: dict[str, Any], used: set[str]) -> str:
    if obj.get("app") not in (None, ""):
        used.add("app")
        return _as_text(obj["app"])
    meta_app = get_path(obj, "metadata.app")
    if meta_app not in (None, ""):
        return _as_text(meta_app)
    return "default"


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else to_json(value)


def _latency(obj: dict[str, Any], ts: datetime, used: set[str]) -> float | None:
    for key, scale in (("latency_ms", 1.0), ("duration_ms", 1.0), ("latency", 1000.0)):
        if key not in obj:
            continue
        used.add(key)
        if obj[key] is None:
            continue
        return _number(obj[key], key) * scale
    for key in END_KEYS:
        if obj.get(key) is None:
            continue
        used.add(key)
        end = parse_timestamp(obj[key], key)
        ms = (end - ts).total_seconds() * 1000
        if ms < 0:
            raise RecordError("invalid_value", f"`{key}` is {-ms:.0f} ms before the record's start time")
        return ms
    return None


def _number(value: Any, field: str) -> float:
    if (isinstance(value, str) and _NUMERIC.match(value)) or (
        isinstance(value, int | float) and not isinstance(value, bool)
    ):
        number = float(value)
    else:
        raise RecordError("wrong_type", f"`{field}` must be a number, got {json_type(value)} {show(value)}")
    if not math.isfinite(number):
        raise RecordError("wrong_type", f"`{field}` must be a finite number, got {show(value)}")
    if number < 0:
        raise RecordError("invalid_value", f"`{field}` must not be negative, got {show(value)}")
    return number


def _feedback(obj: dict[str, Any], used: set[str]) -> tuple[str | None, str | None, float | None, str | None]:
    """(feedback JSON, thumbs, rating, corrected output)."""
    if "feedback" not in obj:
        return None, None, None, None
    used.add("feedback")
    value = obj["feedback"]
    if value is None:
        return None, None, None, None
    if not isinstance(value, dict):
        return to_json(value), _thumbs(value), None, None
    thumbs = _thumbs(value.get("thumbs"))
    if thumbs is None:
        thumbs = _score_thumbs(value.get("score"))
    rating = value.get("rating")
    if isinstance(rating, bool) or not (
        isinstance(rating, int | float) or (isinstance(rating, str) and _NUMERIC.match(rating))
    ):
        rating = None
    rating = float(rating) if rating is not None else None
    if rating is not None and not math.isfinite(rating):
        rating = None
    corrected = next((value[k] for k in ("corrected_output", "correction") if isinstance(value.get(k), str)), None)
    return to_json(value), thumbs, rating, corrected


def _thumbs(value: Any) -> str | None:
    if isinstance(value, bool):
        return "up" if value else "down"
    if isinstance(value, int | float):
        return {1: "up", -1: "down"}.get(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _UP:
            return "up"
        if text in _DOWN:
            return "down"
    return None


def _score_thumbs(value: Any) -> str | None:
    if isinstance(value, bool):
        return "up" if value else "down"
    if isinstance(value, int | float):
        if value == 1:
            return "up"
        if value in (0, -1):
            return "down"
    return None


def _metadata(obj: dict[str, Any], used: set[str], sub_used: dict[str, set[str]], tool_calls: Any) -> dict[str, Any]:
    used.add("metadata")
    value = obj.get("metadata")
    metadata: dict[str, Any] = dict(value) if isinstance(value, dict) else {}
    if value is not None and not isinstance(value, dict):
        metadata["metadata"] = value
    extras: dict[str, Any] = {}
    for key, item in obj.items():
        if key in sub_used and isinstance(item, dict):
            rest = {k: v for k, v in item.items() if k not in sub_used[key]}
            if rest:
                extras[key] = rest
        elif key not in used:
            extras[key] = item
    if tool_calls:
        extras["tool_calls"] = tool_calls
    usage = usage_of(get_path(obj, "response.usage"), obj.get("usage"), obj)  # obj: LiteLLM's top-level counts
    return with_extras(metadata, extras, usage)


# --- input_text ----------------------------------------------------------------------------------


def normalise_whitespace(text: str) -> str:
    """Collapse runs of whitespace to one space and strip; case is kept."""
    return " ".join(text.split())


def _input_text(turns: list[tuple[str, str]], context_min_chars: int) -> str:
    cleaned = [(role, normalise_whitespace(text)) for role, text in turns]
    last = _last_index(cleaned, lambda role: role == "user")
    if last is None:
        last = _last_index(cleaned, lambda role: role not in SYSTEM_ROLES)
    if last is None:
        last = len(cleaned) - 1
    role, text = cleaned[last]
    if len(text) >= context_min_chars:
        return text
    context = [(r, t) for r, t in cleaned[:last] if r not in SYSTEM_ROLES and t][-2:]
    if not context:
        return text
    return "\n".join(f"{r}: {t}" for r, t in [*context, (role, text)])


def _last_index(turns: list[tuple[str, str]], accept: Any) -> int | None:
    for i in range(len(turns) - 1, -1, -1):
        if accept(turns[i][0]):
            return i
    return None
