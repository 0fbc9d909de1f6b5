"""The `otel_genai` format: OpenTelemetry spans following the GenAI semantic conventions.

How spans arrive (OTLP JSON export requests, one per line as the Collector's file exporter writes
them or one per `.json` document; span objects; flat attribute maps), and what is read from the span
itself (ids, times, status, app from the resource's `service.name`, metadata), is in
`loop_assets.capture.formats.otlp`. Each span is one item: one row per LLM span, `trace_id` and `span_id`
kept; every other span (agent, tool, embeddings, HTTP ...) is skipped and listed, and a record with
no LLM span at all is quarantined as `no_trace`.

An LLM span is one whose `gen_ai.operation.name` is `chat`, `text_completion` or `generate_content`;
without an operation name, one that logs GenAI message content or a `gen_ai.request.model`. Vercel AI
SDK spans (`ai.operationId`): the provider calls `*.doGenerate` / `*.doStream` are the LLM spans; the
`ai.generateText`-like spans that wrap them, and `ai.embed*`, are skipped. A span
with OpenInference attributes instead (`openinference.span.kind` = LLM) is read by the
OpenInference convention (files that mix instrumentations), noted as metadata.convention.

What the GenAI attributes give:

- input_messages: `gen_ai.input.messages` (a JSON string or a structured list of `{"role", "parts":
  [...]}`; parts `text`, `tool_call` -> assistant `tool_calls`, `tool_call_response` -> a `role: tool`
  message with `tool_call_id`, images, others kept), after a system message made of
  `gen_ai.system_instructions` when present. Older instrumentations: flattened
  `gen_ai.prompt.{i}.role` / `.content` / `.tool_calls.{k}.*` / `.tool_call_id` (OpenLLMetry), a
  `gen_ai.prompt` attribute (JSON messages or text; OpenLit's "role: text" lines are split into
  messages), or a `gen_ai.content.prompt` event carrying `gen_ai.prompt`; the
  `gen_ai.client.inference.operation.details` event's attributes; the per-message events
  `gen_ai.system.message` / `gen_ai.user.message` / `gen_ai.assistant.message` / `gen_ai.tool.message`
  (Semantic Kernel 1.55+ as span events, or log events paired by `otlp_logs`); Vercel
  `ai.prompt.messages`. None of these: `missing_field`, naming the settings that turn content
  capture on (`NO_CONTENT`).
- output_text: the first message of `gen_ai.output.messages` (its text parts; tool calls go to
  metadata.tool_calls); else `gen_ai.completion.{i}.*`, a `gen_ai.completion` attribute, or a
  `gen_ai.content.completion` event, Vercel `ai.response.text` / `ai.response.object` /
  `ai.response.toolCalls`, or a `gen_ai.choice` event. Further output messages (n > 1) stay in
  metadata.attributes.
- finish_reason: `gen_ai.response.finish_reasons[0]`, else the output message's `finish_reason`
  (as logged: the convention says `tool_call` where OpenAI says `tool_calls`).
- model: `gen_ai.response.model`, else `gen_ai.request.model`, else Vercel `ai.response.model`,
  `ai.model.id`.
- usage: the `gen_ai.usage.*` attributes (else Vercel's `ai.usage.*`) under metadata.usage, as
  `input_tokens`/`output_tokens` (the older prompt_tokens/completion_tokens renamed).
- feedback: each `gen_ai.evaluation.result` event (`gen_ai.evaluation.name`,
  `gen_ai.evaluation.score.value`, `gen_ai.evaluation.score.label`, `gen_ai.evaluation.explanation`)
  and `gen_ai.evaluation.*` attributes on the span are scores; thumbs and rating as
  `chat.feedback_columns` decides.
- error: the span status (see `otlp`); `error.type` alone also marks an error.
"""

from __future__ import annotations

import re
from typing import Any

from loop_assets.capture.formats.base import RecordError, json_type, show, usage_of
from loop_assets.capture.formats.chat import (
    _content_text,
    as_text,
    finish_reason_of,
    genai_message,
    genai_messages,
    make_message,
    messages_from,
    output_from,
    role_of,
    tool_call,
    vercel_call,
)
from loop_assets.capture.formats.otlp import (
    Reading,
    Span,
    SpanFormat,
    attribute_keys,
    indexed,
    is_envelope,
    is_logs_envelope,
    json_attr,
)

LLM_OPERATIONS = frozenset({"chat", "text_completion", "generate_content"})
CONTENT_EVENTS = ("gen_ai.content.prompt", "gen_ai.content.completion")
EVALUATION_EVENT = "gen_ai.evaluation.result"
DETAILS_EVENT = "gen_ai.client.inference.operation.details"
"""The newer conventions' event carrying `gen_ai.input.messages`/`gen_ai.output.messages` (Semantic Kernel
and others emit it as a span event)."""
MESSAGE_EVENTS = {
    "gen_ai.system.message": "system",
    "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant",
    "gen_ai.tool.message": "tool",
}
"""The older conventions' per-message events (Semantic Kernel 1.55+ writes them as span events);
the answer is a `gen_ai.choice` event."""
NO_CONTENT = (
    "no message content on this span: looked for `gen_ai.input.messages`, `gen_ai.prompt.*`, `gen_ai.prompt`, "
    "Vercel `ai.prompt.messages` and the content events (`gen_ai.content.prompt`, `gen_ai.user.message`, "
    f"`{DETAILS_EVENT}`). Instrumentations record no content unless told to: the OpenTelemetry GenAI "
    "instrumentations (opentelemetry-instrumentation-openai-v2 and others) need "
    "OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental and "
    "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=SPAN_ONLY (or SPAN_AND_EVENT) to put it on spans "
    "(=true without the opt-in sends it to log events: export those logs too, into this file or its folder, "
    "and they are read with their spans); OpenLLMetry "
    "TRACELOOP_TRACE_CONTENT=true; the Vercel AI SDK experimental_telemetry recordInputs/recordOutputs"
)


def classify(span: Span) -> str | None:
    """None for an LLM span of this convention, else why it is not one."""
    attrs = span.attributes
    vercel = attrs.get("ai.operationId")
    if isinstance(vercel, str) and vercel.startswith("ai."):
        if vercel.startswith("ai.embed"):
            return f"Vercel AI SDK {vercel} span: an embedding, not an LLM request"
        if vercel.endswith((".doGenerate", ".doStream")):
            return None
        return f"Vercel AI SDK {vercel} span: it wraps the provider call (its .doGenerate/.doStream span is the row)"
    op = attrs.get("gen_ai.operation.name")
    if op not in (None, ""):
        if str(op).strip().lower() in LLM_OPERATIONS:
            return None
        return f"GenAI operation {as_text(op)!r}, not an LLM request"
    if _has_content(span) or str(attrs.get("llm.request.type", "")).lower() in ("chat", "completion"):
        return None
    if any(attrs.get(k) not in (None, "") for k in ("gen_ai.request.model", "gen_ai.response.model")):
        return None
    return "no GenAI attributes of an LLM call (gen_ai.operation.name, gen_ai.input.messages, gen_ai.request.model)"


def _has_content(span: Span) -> bool:
    for key in span.attributes:
        if key in ("gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.prompt", "gen_ai.completion"):
            return True
        if key.startswith(("gen_ai.prompt.", "gen_ai.completion.")):
            return True
    if _events_attribute(span.attributes, "input"):
        return True
    return any(e.get("name") in (*CONTENT_EVENTS, DETAILS_EVENT, *MESSAGE_EVENTS) for e in span.events)


def read(span: Span) -> Reading:
    attrs = span.attributes
    used: set[str] = set()
    used_events: set[int] = set()
    content = {**_details(span, used_events), **attrs}  # the details event's attributes, then the span's
    messages = _input(span, content, used, used_events)
    text, finish, calls = _output(span, content, used, used_events)
    reasons = attrs.get("gen_ai.response.finish_reasons")
    if reasons not in (None, "", []):
        reasons = json_attr(reasons)
        first = reasons[0] if isinstance(reasons, list) and reasons else reasons
        if first not in (None, "", []):
            finish = as_text(first)
        used.add("gen_ai.response.finish_reasons")
    model = None
    for key in ("gen_ai.response.model", "gen_ai.request.model", "ai.response.model", "ai.model.id"):
        if attrs.get(key) not in (None, ""):
            model = as_text(attrs[key])
            used.add(key)
            break
    usage = {k.removeprefix("gen_ai.usage."): v for k, v in attrs.items() if k.startswith("gen_ai.usage.")}
    used.update(f"gen_ai.usage.{k}" for k in usage)
    if not usage:  # the Vercel AI SDK's own counts
        usage = usage_of({k.removeprefix("ai.usage."): v for k, v in attrs.items() if k.startswith("ai.usage.")})
    return Reading(
        messages=messages,
        output_text=text,
        finish_reason=finish,
        tool_calls=calls,
        model=model,
        scores=_scores(span, used, used_events),
        usage=usage,
        used=used,
        used_events=used_events,
    )


def _details(span: Span, used_events: set[int]) -> dict[str, Any]:
    """The attributes of the span's `gen_ai.client.inference.operation.details` event, if any."""
    for i, event in enumerate(span.events):
        if event.get("name") == DETAILS_EVENT:
            used_events.add(i)
            return event["attributes"]
    return {}


def _input(span: Span, attrs: dict[str, Any], used: set[str], used_events: set[int]) -> list[dict[str, Any]]:
    if attrs.get("gen_ai.input.messages") is not None:
        messages = genai_messages(attrs["gen_ai.input.messages"], "gen_ai.input.messages")
        used.add("gen_ai.input.messages")
    elif any(k.startswith("gen_ai.prompt.") for k in attrs):
        messages = _flat_messages(attrs, "gen_ai.prompt", used)
    elif attrs.get("gen_ai.prompt") is not None:
        messages = _prompt(json_attr(attrs["gen_ai.prompt"]), "gen_ai.prompt")
        used.add("gen_ai.prompt")
    elif attrs.get("ai.prompt.messages") is not None:  # Vercel AI SDK provider call
        messages = messages_from(json_attr(attrs["ai.prompt.messages"]), "ai.prompt.messages")
        used.add("ai.prompt.messages")
    elif attrs.get("ai.prompt") is not None:
        messages = messages_from(json_attr(attrs["ai.prompt"]), "ai.prompt")
        used.add("ai.prompt")
    elif events := _events_attribute(attrs, "input"):  # Pydantic AI (Logfire): the events as one JSON attribute
        messages = messages_from(events, "events")
        used.add("events")
    else:
        messages = None
        for i, event in enumerate(span.events):
            if event.get("name") == "gen_ai.content.prompt" and event["attributes"].get("gen_ai.prompt") is not None:
                messages = _prompt(json_attr(event["attributes"]["gen_ai.prompt"]), "event gen_ai.prompt")
                used_events.add(i)
                break
        if messages is None:
            messages = _message_events(span, used_events) or None
        if messages is None:
            raise RecordError("missing_field", NO_CONTENT)
    instructions = attrs.get("gen_ai.system_instructions")
    if instructions not in (None, "", []):
        parts = json_attr(instructions)
        if isinstance(parts, str):
            parts = [{"type": "text", "content": parts}]
        if not isinstance(parts, list):
            raise RecordError(
                "wrong_type",
                f"`gen_ai.system_instructions` must be a list of parts, got {json_type(parts)} {show(parts)}",
            )
        messages = genai_message({"role": "system", "parts": parts}, "gen_ai.system_instructions") + messages
        used.add("gen_ai.system_instructions")
    return messages


_ROLE_LINE = re.compile(r"^(system|developer|user|assistant|tool|function|human|ai): ", re.IGNORECASE | re.MULTILINE)


def _prompt(value: Any, field: str) -> list[dict[str, Any]]:
    """A prompt attribute: JSON messages, or text; OpenLit writes the conversation as "role: text" lines."""
    if isinstance(value, str) and _ROLE_LINE.match(value):
        starts = [m for m in _ROLE_LINE.finditer(value)]
        out = []
        for k, match in enumerate(starts):
            end = starts[k + 1].start() if k + 1 < len(starts) else len(value)
            out.append(make_message(role_of(match.group(1)), value[match.end() : end].rstrip("\n")))
        return out
    return messages_from(value, field)


def _message_events(span: Span, used_events: set[int]) -> list[dict[str, Any]]:
    """The older conventions' message events (`gen_ai.user.message` ...: `content`, `tool_calls`, `id`)."""
    out: list[dict[str, Any]] = []
    for i, event in enumerate(span.events):
        role = MESSAGE_EVENTS.get(str(event.get("name")))
        if role is None:
            continue
        used_events.add(i)
        body = _event_body(event["attributes"])
        calls = json_attr(body.get("tool_calls"))
        content = json_attr(body.get("content"))
        message = {"role": body.get("role") or role, "content": content, "tool_calls": calls}
        if body.get("id") not in (None, "") and role == "tool":
            message["tool_call_id"] = body["id"]
        out.extend(messages_from([{k: v for k, v in message.items() if v is not None}], f"event {event['name']}"))
    return out


def _event_body(attrs: dict[str, Any]) -> dict[str, Any]:
    """An event's fields: its attributes, or the JSON body some SDKs put in `gen_ai.event.content`."""
    body = json_attr(attrs.get("gen_ai.event.content"))
    return {**attrs, **body} if isinstance(body, dict) else attrs


def _choice_event(span: Span, used_events: set[int]) -> tuple[str | None, str | None, Any] | None:
    for i, event in enumerate(span.events):
        if event.get("name") != "gen_ai.choice":
            continue
        used_events.add(i)
        body = _event_body(event["attributes"])
        message = json_attr(body.get("message"))
        if not isinstance(message, dict):
            message = {"role": "assistant", "content": json_attr(body.get("content", message))}
        message.setdefault("role", "assistant")
        text, finish, calls = output_from(message, "event gen_ai.choice.message")
        return text, finish_reason_of(body.get("finish_reason")) or finish, calls
    return None


def _flat_messages(attrs: dict[str, Any], prefix: str, used: set[str]) -> list[dict[str, Any]]:
    """OpenLLMetry's flattened messages: `{prefix}.{i}.role`, `.content`, `.tool_calls.{k}.*`, `.tool_call_id`."""
    messages = []
    for i, item in enumerate(indexed(attrs, prefix)):
        role = item.get("role")
        if role in (None, ""):
            raise RecordError("missing_field", f"`{prefix}.{i}` has no `role`")
        content = json_attr(item.get("content"))
        if not (isinstance(content, list) and all(isinstance(p, dict) for p in content)):
            content = item.get("content")
        calls = [
            tool_call(c.get("id"), c.get("name"), c.get("arguments")) for c in indexed(item, "tool_calls") if c
        ] or None
        if content is None:
            content = None if calls else ""
        messages.append(
            make_message(
                role_of(role),
                content,
                name=item.get("name"),
                tool_calls=calls,
                tool_call_id=item.get("tool_call_id"),
            )
        )
    used.update(k for k in attrs if k.startswith(prefix + "."))
    return messages


def _output(
    span: Span, attrs: dict[str, Any], used: set[str], used_events: set[int]
) -> tuple[str | None, str | None, Any]:
    if attrs.get("gen_ai.output.messages") is not None:
        raw = json_attr(attrs["gen_ai.output.messages"])
        messages = genai_messages(raw, "gen_ai.output.messages")
        if not isinstance(raw, list) or len(raw) <= 1:
            used.add("gen_ai.output.messages")
        if not messages:
            return "", None, None
        first = raw[0] if isinstance(raw, list) and raw and isinstance(raw[0], dict) else {}
        message = messages[0]
        finish = first.get("finish_reason")
        text = _content_text(message.get("content"), "gen_ai.output.messages[0]")
        return text, (as_text(finish) if finish not in (None, "") else None), message.get("tool_calls")
    if any(k.startswith("gen_ai.completion.") for k in attrs):
        items = indexed(attrs, "gen_ai.completion")
        finish = items[0].get("finish_reason") if items else None
        messages = _flat_messages(attrs, "gen_ai.completion", used) if items and "role" in items[0] else []
        if messages:
            message = messages[0]
            text = _content_text(message.get("content"), "gen_ai.completion.0.content")
        else:
            text, message = (as_text(items[0].get("content", "")) if items else ""), {}
            used.update(k for k in attrs if k.startswith("gen_ai.completion."))
        return text, (as_text(finish) if finish not in (None, "") else None), message.get("tool_calls")
    if attrs.get("gen_ai.completion") is not None:
        used.add("gen_ai.completion")
        return output_from(attrs["gen_ai.completion"], "gen_ai.completion")
    if any(attrs.get(k) is not None for k in ("ai.response.text", "ai.response.object", "ai.response.toolCalls")):
        return _vercel_output(attrs, used)
    for i, event in enumerate(span.events):
        if (
            event.get("name") == "gen_ai.content.completion"
            and event["attributes"].get("gen_ai.completion") is not None
        ):
            used_events.add(i)
            return output_from(event["attributes"]["gen_ai.completion"], "event gen_ai.completion")
    choice = _choice_event(span, used_events)
    if choice is not None:
        return choice
    choices = _events_attribute(attrs, "output")
    if choices:
        return output_from(choices, "events")
    return None, None, None


def _events_attribute(attrs: dict[str, Any], side: str) -> list[dict[str, Any]]:
    """Pydantic AI's `events` attribute (a JSON list of GenAI events, each with `event.name`): the
    message events (`side` "input") or the `gen_ai.choice` events ("output")."""
    events = json_attr(attrs.get("events"))
    if not isinstance(events, list) or not any(isinstance(e, dict) and "event.name" in e for e in events):
        return []
    choice = [e for e in events if isinstance(e, dict) and e.get("event.name") == "gen_ai.choice"]
    if side == "output":
        return choice
    return [e for e in events if isinstance(e, dict) and e.get("event.name") != "gen_ai.choice" and "role" in e]


def _vercel_output(attrs: dict[str, Any], used: set[str]) -> tuple[str | None, str | None, Any]:
    """A Vercel AI SDK call's answer: `ai.response.text` (or `.object` for generateObject, as JSON text)
    and `ai.response.toolCalls` (`[{toolCallId, toolName, args|input}]`)."""
    text = attrs.get("ai.response.text")
    if text is None and attrs.get("ai.response.object") is not None:
        text = as_text(attrs["ai.response.object"])
        used.add("ai.response.object")
    used.add("ai.response.text")
    calls = json_attr(attrs.get("ai.response.toolCalls"))
    tool_calls = None
    if isinstance(calls, list) and calls:
        used.add("ai.response.toolCalls")
        tool_calls = [vercel_call(c) for c in calls if isinstance(c, dict)]
    finish = finish_reason_of(attrs.get("ai.response.finishReason"))
    if finish is not None:
        used.add("ai.response.finishReason")
    return ("" if text is None else as_text(text)), finish, tool_calls


def _scores(span: Span, used: set[str], used_events: set[int]) -> list[dict[str, Any]]:
    scores = []
    for i, event in enumerate(span.events):
        if event.get("name") == EVALUATION_EVENT:
            used_events.add(i)
            score = _score(event["attributes"])
            if "time" in event:
                score["time"] = event["time"]
            scores.append(score)
    on_span = {k: v for k, v in span.attributes.items() if k.startswith("gen_ai.evaluation.")}
    if on_span:
        used.update(on_span)
        scores.append(_score(on_span))
    return scores


def _score(attrs: dict[str, Any]) -> dict[str, Any]:
    score: dict[str, Any] = {}
    for key, attr in (
        ("name", "gen_ai.evaluation.name"),
        ("value", "gen_ai.evaluation.score.value"),
        ("label", "gen_ai.evaluation.score.label"),
        ("comment", "gen_ai.evaluation.explanation"),
    ):
        if attrs.get(attr) is not None:
            score[key] = attrs[attr]
    score["source"] = EVALUATION_EVENT
    score.update({k: v for k, v in attrs.items() if not k.startswith("gen_ai.evaluation.")})
    return score


class OtelGenAIFormat(SpanFormat):
    name = "otel_genai"
    convention = "otel_genai"
    looks_for = (
        "OTLP JSON export requests (`resourceSpans[].scopeSpans[].spans[]`), span objects or span attribute maps "
        "with `gen_ai.*` attributes (`gen_ai.operation.name`, `gen_ai.input.messages`, ...)"
    )

    def detect(self, obj: dict[str, Any]) -> bool:
        if is_envelope(obj) or is_logs_envelope(obj):
            return True
        return any(k.startswith("gen_ai.") for k in attribute_keys(obj))


FORMAT = OtelGenAIFormat()
