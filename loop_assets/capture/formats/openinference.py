"""The `openinference` format: spans following the OpenInference semantic conventions (Arize Phoenix).

OpenInference spans arrive in the OTLP envelope (an OTLP span whose attributes use OpenInference
keys), as span objects (Phoenix's REST shape, attributes as a map, nested or flattened) or as flat
attribute maps; see `loop_assets.capture.formats.otlp` for those shapes and what is read from the span itself
(ids, times, status, app from the resource's `service.name`, metadata). One row per LLM span,
`trace_id` and `span_id` kept; CHAIN, TOOL, RETRIEVER, EMBEDDING, AGENT ... spans are skipped and
listed, and a record with no LLM span at all is quarantined as `no_trace`.

An LLM span is one whose `openinference.span.kind` (or Phoenix's `span_kind`) is `LLM`; without a
kind, one that has `llm.input_messages.*`, `llm.output_messages.*` or `llm.model_name`. A span that
uses the OTel GenAI conventions instead is read by them (files that mix instrumentations).

What the OpenInference attributes give:

- input_messages: `llm.input_messages.{i}.message.*` (flattened, or a list of message maps):
  `message.role`; `message.contents.{j}.message_content.{type,text,image.image.url}` (text parts, images)
  or `message.content`; `message.tool_calls.{k}.tool_call.{id,function.name,function.arguments}` ->
  assistant `tool_calls`; `message.tool_call_id` and `message.name` on tool results; the legacy
  `message.function_call_name` / `message.function_call_arguments_json`. Without message attributes:
  `llm.prompts` (first prompt), else `input.value` (JSON messages as OpenAI, OTel GenAI or LangChain
  log them, or plain text as one user message). `input.value`/`output.value` are the same exchange
  serialised once more; they are read when the message attributes are absent and not stored again.
- output_text: the first `llm.output_messages` message's text (its tool calls go to
  metadata.tool_calls), else `output.value` (a JSON answer, or the text itself). An `output.value`
  that cannot be read beside complete output messages is kept in metadata, not a reason to reject.
- finish_reason: from `output.value` (`finish_reason`, `choices[0].finish_reason`) when it logs one;
  OpenInference has no finish reason attribute.
- model: `llm.model_name`, else the `model` of `llm.invocation_parameters`.
- usage: every `llm.token_count.*` attribute under metadata.usage.
- error: `exception.type` / `exception.message` attributes (flat maps), or an ERROR status with its
  `exception` event (see `otlp`).
- feedback: every span evaluation and annotation, `evaluations.{i}.evaluation.*`,
  `annotations.{i}.annotation.*`, their `trace.` forms, and a single unindexed `evaluation.*` /
  `annotation.*` (`name`, `score`, `label`, `explanation`, `annotator_kind`, `identifier`,
  `metadata`, or Phoenix's `result.{score,label,explanation}`) is a score (`{"name", "value": score,
  "label", "comment": explanation, "source": annotator_kind, ...}`); so are the annotations that come
  with a Phoenix span object (see `otlp`); thumbs and rating as `chat.feedback_columns` decides.
"""

from __future__ import annotations

import json
from typing import Any

from loop_assets.capture.formats.base import RecordError
from loop_assets.capture.formats.chat import (
    _content_text,
    as_text,
    image_part,
    join_parts,
    make_message,
    messages_from,
    output_from,
    role_of,
    text_or_none,
    text_part,
    tool_call,
)
from loop_assets.capture.formats.otlp import Reading, Span, SpanFormat, attribute_keys, indexed, is_envelope, json_attr

SPAN_KINDS = frozenset(
    {"LLM", "CHAIN", "TOOL", "RETRIEVER", "RERANKER", "EMBEDDING", "AGENT", "GUARDRAIL", "EVALUATOR", "PROMPT"}
)
_MESSAGE_KEYS = ("llm.input_messages", "llm.output_messages", "llm.model_name")
SCORE_PREFIXES = (
    ("evaluations", "evaluation", "span"),
    ("annotations", "annotation", "span"),
    ("trace.evaluations", "evaluation", "trace"),
    ("trace.annotations", "annotation", "trace"),
)


def span_kind(span: Span) -> str | None:
    kind = span.attributes.get("openinference.span.kind")
    if kind not in (None, ""):
        return as_text(kind).strip().upper()
    if span.kind and span.kind.upper() in SPAN_KINDS | {"UNKNOWN"}:
        return span.kind.upper()
    return None


def classify(span: Span) -> str | None:
    """None for an LLM span of this convention, else why it is not one."""
    kind = span_kind(span)
    if kind is not None:
        return None if kind == "LLM" else f"OpenInference {kind} span, not an LLM call"
    if any(k.startswith(_MESSAGE_KEYS) for k in span.attributes):
        return None
    return "no `openinference.span.kind` and no `llm.*` message attributes"


def read(span: Span) -> Reading:
    attrs = span.attributes
    used: set[str] = {"openinference.span.kind"}
    messages = _input(attrs, used)
    text, finish, calls = _output(attrs, used)
    model = None
    if attrs.get("llm.model_name") not in (None, ""):
        model = as_text(attrs["llm.model_name"])
        used.add("llm.model_name")
    else:
        params = json_attr(attrs.get("llm.invocation_parameters"))
        if isinstance(params, dict) and params.get("model") not in (None, ""):
            model = as_text(params["model"])
    usage = {k.removeprefix("llm.token_count."): v for k, v in attrs.items() if k.startswith("llm.token_count.")}
    used.update(f"llm.token_count.{k}" for k in usage)
    error = None
    kind, message = attrs.get("exception.type"), attrs.get("exception.message")
    if kind not in (None, "") or message not in (None, ""):
        error = ": ".join(as_text(v) for v in (kind, message) if v not in (None, ""))
        used.update({"exception.type", "exception.message"})
    return Reading(
        messages=messages,
        output_text=text,
        finish_reason=finish,
        tool_calls=calls,
        model=model,
        scores=_scores(attrs, used),
        error=error,
        usage=usage,
        used=used,
    )


def _input(attrs: dict[str, Any], used: set[str]) -> list[dict[str, Any]]:
    items = indexed(attrs, "llm.input_messages")
    if items:
        used.update(k for k in attrs if k == "llm.input_messages" or k.startswith("llm.input_messages."))
        used.update({"input.value", "input.mime_type"})
        return [_message(item, f"llm.input_messages.{i}") for i, item in enumerate(items)]
    prompts = attrs.get("llm.prompts")
    if isinstance(prompts, list) and prompts:
        used.add("llm.prompts")
        used.update({"input.value", "input.mime_type"})
        return messages_from({"prompts": prompts}, "llm.prompts")
    value = attrs.get("input.value")
    if value is None:
        raise RecordError(
            "missing_field",
            "no request messages: looked for `llm.input_messages.*`, `llm.prompts` and `input.value`",
        )
    used.update({"input.value", "input.mime_type"})
    decoded = _json(value) if attrs.get("input.mime_type") != "text/plain" else None
    if decoded is None:
        return [make_message("user", as_text(value))]
    return messages_from(decoded, "input.value")


def _json(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    if value.lstrip()[:1] not in ("{", "["):
        return None
    try:
        return json.loads(value)
    except (ValueError, RecursionError):
        return None


def _message(item: dict[str, Any], where: str) -> dict[str, Any]:
    role = item.get("message.role")
    if role in (None, ""):
        keys = ", ".join(sorted(item)[:8]) or "none"
        raise RecordError("missing_field", f"`{where}.message.role` is missing (keys: {keys})")
    parts: list[Any] = []
    for content in indexed(item, "message.contents"):
        kind = content.get("message_content.type")
        text = content.get("message_content.text")
        url = content.get("message_content.image.image.url", content.get("message_content.image.url"))
        if text is not None and kind in (None, "text"):
            parts.append(text_part(text))
        elif url is not None:
            parts.append(image_part(as_text(url)))
        else:
            parts.append({k.removeprefix("message_content."): v for k, v in content.items()})
    calls = [
        tool_call(c.get("tool_call.id"), c.get("tool_call.function.name"), c.get("tool_call.function.arguments"))
        for c in indexed(item, "message.tool_calls")
    ]
    if item.get("message.function_call_name") not in (None, ""):
        calls.append(
            tool_call(None, item["message.function_call_name"], item.get("message.function_call_arguments_json"))
        )
    if parts:
        content = join_parts(parts, has_tool_calls=bool(calls))
    elif item.get("message.content") is not None:
        content = item["message.content"]
    else:
        content = None if calls else ""
    return make_message(
        role_of(role),
        content,
        name=text_or_none(item.get("message.name")),
        tool_calls=calls or None,
        tool_call_id=text_or_none(item.get("message.tool_call_id")),
    )


def _output(attrs: dict[str, Any], used: set[str]) -> tuple[str | None, str | None, Any]:
    value = attrs.get("output.value")
    items = indexed(attrs, "llm.output_messages")
    value_text, value_finish, value_calls = None, None, None
    if value is not None:
        used.update({"output.value", "output.mime_type"})
        if attrs.get("output.mime_type") == "text/plain":
            value_text = as_text(value)
        else:
            try:
                value_text, value_finish, value_calls = output_from(value, "output.value")
            except RecordError:
                if not items:
                    raise
                # the output messages say it all: an output.value that cannot be read loses nothing
                used.discard("output.value")
    if items:
        if len(items) == 1:
            used.update(k for k in attrs if k == "llm.output_messages" or k.startswith("llm.output_messages."))
        else:  # further choices stay in metadata
            used.update(k for k in attrs if k.startswith("llm.output_messages.0."))
        message = _message(items[0], "llm.output_messages.0")
        text = _content_text(message.get("content"), "llm.output_messages.0.message.content")
        return text, value_finish, message.get("tool_calls")
    return value_text, value_finish, value_calls


def _scores(attrs: dict[str, Any], used: set[str]) -> list[dict[str, Any]]:
    scores = []
    for prefix, inner, scope in SCORE_PREFIXES:
        items = indexed(attrs, prefix)
        if not items:
            continue
        used.update(k for k in attrs if k == prefix or k.startswith(prefix + "."))
        for item in items:
            fields = {k.removeprefix(inner + "."): v for k, v in item.items()}
            scores.append(_score(fields, scope))
    for inner in ("evaluation", "annotation"):
        fields = {k.removeprefix(inner + "."): v for k, v in attrs.items() if k.startswith(inner + ".")}
        if fields:
            used.update(f"{inner}.{k}" for k in fields)
            scores.append(_score(fields, "span"))
    return scores


def _score(fields: dict[str, Any], scope: str) -> dict[str, Any]:
    score: dict[str, Any] = {}
    for key, name in (
        ("name", "name"),
        ("value", "score"),
        ("label", "label"),
        ("comment", "explanation"),
        ("source", "annotator_kind"),
    ):
        if fields.get(name) is not None:
            score[key] = fields[name]
    score["scope"] = scope
    for key, name in (("value", "result.score"), ("label", "result.label"), ("comment", "result.explanation")):
        if key not in score and fields.get(name) is not None:  # Phoenix's annotation records: {result: {...}}
            score[key] = fields[name]
    rest = {
        k: v
        for k, v in fields.items()
        if k not in ("name", "score", "label", "explanation", "annotator_kind")
        and not (k.startswith("result.") and k.removeprefix("result.") in ("score", "label", "explanation"))
    }
    if isinstance(rest.get("metadata"), str):
        rest["metadata"] = json_attr(rest["metadata"])
    score.update(rest)
    return score


class OpenInferenceFormat(SpanFormat):
    name = "openinference"
    convention = "openinference"
    looks_for = (
        "spans with OpenInference attributes (`openinference.span.kind`, `llm.input_messages.*`), in OTLP JSON "
        "export requests, span objects or flat attribute maps"
    )

    def detect(self, obj: dict[str, Any]) -> bool:
        keys = attribute_keys(obj)
        if any(k == "openinference.span.kind" or k.startswith(_MESSAGE_KEYS) for k in keys):
            return True
        if is_envelope(obj):
            return False
        kind = obj.get("span_kind") if isinstance(obj, dict) else None
        return isinstance(kind, str) and kind.upper() in SPAN_KINDS and isinstance(obj.get("attributes"), dict)


FORMAT = OpenInferenceFormat()
