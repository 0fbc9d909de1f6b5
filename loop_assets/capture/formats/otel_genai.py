"""The `otel_genai` format: OpenTelemetry spans following the GenAI semantic conventions.

How spans arrive (OTLP JSON export requests, one per line as the Collector's file exporter writes
them or one per `.json` document; span objects; flat attribute maps), and what is read from the span
itself (ids, times, status, app from the resource's `service.name`, metadata), is in
`loop_assets.capture.formats.otlp`. Each span is one item: one row per LLM span, `trace_id` and `span_id`
kept; every other span (agent, tool, embeddings, HTTP ...) is skipped and listed, and a record with
no LLM span at all is quarantined as `no_trace`.

An LLM span is one whose `gen_ai.operation.name` is `chat`, `text_completion` or `generate_content`;
without an operation name, one that logs GenAI message content or a `gen_ai.request.model`. A span
with OpenInference attributes instead (`openinference.span.kind` = LLM) is read by the
OpenInference convention (files that mix instrumentations), noted as metadata.convention.

What the GenAI attributes give:

- input_messages: `gen_ai.input.messages` (a JSON string or a structured list of `{"role", "parts":
  [...]}`; parts `text`, `tool_call` -> assistant `tool_calls`, `tool_call_response` -> a `role: tool`
  message with `tool_call_id`, images, others kept), after a system message made of
  `gen_ai.system_instructions` when present. Older instrumentations: flattened
  `gen_ai.prompt.{i}.role` / `.content` / `.tool_calls.{k}.*` / `.tool_call_id` (OpenLLMetry), a
  `gen_ai.prompt` attribute (JSON messages or text), or a `gen_ai.content.prompt` event carrying
  `gen_ai.prompt`. None of these: `missing_field` (message content capture may be off,
  `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`).
- output_text: the first message of `gen_ai.output.messages` (its text parts; tool calls go to
  metadata.tool_calls); else `gen_ai.completion.{i}.*`, a `gen_ai.completion` attribute, or a
  `gen_ai.content.completion` event. Further output messages (n > 1) stay in metadata.attributes.
- finish_reason: `gen_ai.response.finish_reasons[0]`, else the output message's `finish_reason`
  (as logged: the convention says `tool_call` where OpenAI says `tool_calls`).
- model: `gen_ai.response.model`, else `gen_ai.request.model`.
- usage: every `gen_ai.usage.*` attribute (input_tokens, output_tokens, and the older
  prompt_tokens/completion_tokens) under metadata.usage.
- feedback: each `gen_ai.evaluation.result` event (`gen_ai.evaluation.name`,
  `gen_ai.evaluation.score.value`, `gen_ai.evaluation.score.label`, `gen_ai.evaluation.explanation`)
  and `gen_ai.evaluation.*` attributes on the span are scores; thumbs and rating as
  `chat.feedback_columns` decides.
- error: the span status (see `otlp`); `error.type` alone also marks an error.
"""

from __future__ import annotations

from typing import Any

from loop_assets.capture.formats.base import RecordError, json_type, show
from loop_assets.capture.formats.chat import (
    _content_text,
    as_text,
    genai_message,
    genai_messages,
    make_message,
    messages_from,
    output_from,
    role_of,
    tool_call,
)
from loop_assets.capture.formats.otlp import (
    Reading,
    Span,
    SpanFormat,
    attribute_keys,
    indexed,
    is_envelope,
    json_attr,
)

LLM_OPERATIONS = frozenset({"chat", "text_completion", "generate_content"})
CONTENT_EVENTS = ("gen_ai.content.prompt", "gen_ai.content.completion")
EVALUATION_EVENT = "gen_ai.evaluation.result"


def classify(span: Span) -> str | None:
    """None for an LLM span of this convention, else why it is not one."""
    attrs = span.attributes
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
    return any(e.get("name") in CONTENT_EVENTS for e in span.events)


def read(span: Span) -> Reading:
    attrs = span.attributes
    used: set[str] = set()
    used_events: set[int] = set()
    messages = _input(span, used, used_events)
    text, finish, calls = _output(span, used, used_events)
    reasons = attrs.get("gen_ai.response.finish_reasons")
    if reasons not in (None, "", []):
        reasons = json_attr(reasons)
        first = reasons[0] if isinstance(reasons, list) and reasons else reasons
        if first not in (None, "", []):
            finish = as_text(first)
        used.add("gen_ai.response.finish_reasons")
    model = None
    for key in ("gen_ai.response.model", "gen_ai.request.model"):
        if attrs.get(key) not in (None, ""):
            model = as_text(attrs[key])
            used.add(key)
            break
    usage = {k.removeprefix("gen_ai.usage."): v for k, v in attrs.items() if k.startswith("gen_ai.usage.")}
    used.update(f"gen_ai.usage.{k}" for k in usage)
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


def _input(span: Span, used: set[str], used_events: set[int]) -> list[dict[str, Any]]:
    attrs = span.attributes
    if attrs.get("gen_ai.input.messages") is not None:
        messages = genai_messages(attrs["gen_ai.input.messages"], "gen_ai.input.messages")
        used.add("gen_ai.input.messages")
    elif any(k.startswith("gen_ai.prompt.") for k in attrs):
        messages = _flat_messages(attrs, "gen_ai.prompt", used)
    elif attrs.get("gen_ai.prompt") is not None:
        messages = messages_from(json_attr(attrs["gen_ai.prompt"]), "gen_ai.prompt")
        used.add("gen_ai.prompt")
    else:
        messages = None
        for i, event in enumerate(span.events):
            if event.get("name") == "gen_ai.content.prompt" and event["attributes"].get("gen_ai.prompt") is not None:
                messages = messages_from(json_attr(event["attributes"]["gen_ai.prompt"]), "event gen_ai.prompt")
                used_events.add(i)
                break
        if messages is None:
            raise RecordError(
                "missing_field",
                "no request messages: looked for `gen_ai.input.messages`, `gen_ai.prompt.*`, `gen_ai.prompt` and a "
                "`gen_ai.content.prompt` event (message content capture may be off: "
                "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT)",
            )
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


def _output(span: Span, used: set[str], used_events: set[int]) -> tuple[str | None, str | None, Any]:
    attrs = span.attributes
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
    for i, event in enumerate(span.events):
        if (
            event.get("name") == "gen_ai.content.completion"
            and event["attributes"].get("gen_ai.completion") is not None
        ):
            used_events.add(i)
            return output_from(event["attributes"]["gen_ai.completion"], "event gen_ai.completion")
    return None, None, None


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
        if is_envelope(obj):
            return True
        return any(k.startswith("gen_ai.") for k in attribute_keys(obj))


FORMAT = OtelGenAIFormat()
