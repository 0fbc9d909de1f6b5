"""Chat messages, answers and feedback in the shapes `raw_traces` stores, from the shapes formats log them in.

Every format other than `openai_chat` ends up here, so the same exchange gives the same row whatever
logged it:

- `make_message` builds one message in OpenAI chat shape with a fixed key order (role, content,
  name, tool_calls, tool_call_id), so two formats that describe the same message give the same JSON.
  Content is a string when the message has one text part (or none: ""; an assistant turn with tool
  calls and no text has content null), else a list of OpenAI content parts (`{"type": "text",
  "text": ...}`, `{"type": "image_url", "image_url": {"url": ...}}`; other parts are kept as logged).
- `tool_call` builds `{"id", "type": "function", "function": {"name", "arguments"}}`; arguments that
  were logged as an object are stored as compact JSON text, as OpenAI sends them.
- `genai_messages` reads OpenTelemetry GenAI messages (`role` + `parts`: text, tool_call,
  tool_call_response, reasoning, uri, blob, ...): a `tool_call_response` part becomes its own
  `role: tool` message.
- `messages_from` reads request messages as Langfuse and LangSmith log them: OpenAI messages, a
  `{"messages": [...]}` object, OTel GenAI messages, LangChain messages (serialised `{"lc": 1,
  "id": [..., "HumanMessage"], "kwargs": {...}}`, `{"type": "human", "content"|"data": ...}`), a
  batch of them (`[[...]]`, the first prompt is read), Anthropic content blocks (`tool_use`,
  `tool_result`), `{"prompt": "..."}`/`{"prompts": [...]}`, or plain text (one user message).
  Also: OpenAI Responses API input items (`function_call` -> an assistant turn with tool calls,
  consecutive ones merged; `function_call_output` -> a `role: tool` message; `reasoning` left out),
  Google GenAI `generate_content` arguments (`contents`, `config.system_instruction`), Vercel AI SDK
  messages (`tool-call` / `tool-result` parts), tool calls in LangChain's `additional_kwargs`, a
  `system` / `instructions` text beside the messages, and a tool result logged with the tool's name
  as its role (Langfuse's LangChain ToolMessage) as a `role: tool` message.
- `output_from` reads an answer: text, an OpenAI response (`choices`), a LangChain `LLMResult`
  (`generations`), a message, an OpenAI Responses API response (`output` items), a Gemini
  `GenerateContentResponse` (`candidates`), Vercel tool calls (`[{toolCallId, toolName, input}]`),
  or `{"output"|"text"|"completion"|"content": ...}`; anything else is kept as its JSON text.
- `finish_reason_of` puts other providers' finish reasons in OpenAI's words (`max_tokens`,
  `MAX_TOKENS`, `max_output_tokens` -> `length`; `end_turn`, `STOP` -> `stop`; `tool_use`,
  `tool-calls` -> `tool_calls`; safety stops -> `content_filter`), so the truncation scorer reads them.
- `feedback_columns` turns scores/feedback/evaluations into the feedback columns (see there).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from loop_assets.capture.formats.base import RecordError, json_type, show, to_json
from loop_assets.capture.formats.openai_chat import _content_text, _input_text

MAX_DEPTH = 32
"""Deeper nesting than this in a message or answer is kept as JSON text, never walked."""

ROLE_ALIASES = {"human": "user", "ai": "assistant", "model": "assistant", "bot": "assistant"}
_LC_CLASSES = {
    "HumanMessage": "user",
    "HumanMessageChunk": "user",
    "AIMessage": "assistant",
    "AIMessageChunk": "assistant",
    "SystemMessage": "system",
    "SystemMessageChunk": "system",
    "ToolMessage": "tool",
    "ToolMessageChunk": "tool",
    "FunctionMessage": "function",
    "FunctionMessageChunk": "function",
}
_LC_TYPES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool", "function": "function"}


def compact_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def text_or_none(value: Any) -> str | None:
    """A field's text, None when it is missing or empty."""
    return None if value in (None, "") else as_text(value)


def as_text(value: Any) -> str:
    """A string as is, anything else as compact JSON."""
    return value if isinstance(value, str) else compact_json(value)


def role_of(value: Any) -> str:
    role = str(value).strip()
    return ROLE_ALIASES.get(role.lower(), role.lower() if role.lower() in _KNOWN_ROLES else role)


_KNOWN_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})


def make_message(
    role: str,
    content: Any,
    *,
    name: str | None = None,
    tool_calls: list[dict[str, Any]] | None = None,
    tool_call_id: str | None = None,
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": role, "content": content}
    if name:
        message["name"] = name
    if tool_calls:
        message["tool_calls"] = tool_calls
    if tool_call_id is not None:
        message["tool_call_id"] = tool_call_id
    return message


def tool_result(result: Any, *, name: str | None = None, tool_call_id: str | None = None) -> dict[str, Any]:
    """A tool's result as a `role: tool` message: its text ("" for none), JSON for anything else."""
    return make_message("tool", "" if result is None else as_text(result), name=name, tool_call_id=tool_call_id)


def join_parts(parts: list[Any], *, has_tool_calls: bool = False) -> Any:
    """Message content from OpenAI content parts: one text part as a string, none as "" (null beside tool calls)."""
    if not parts:
        return None if has_tool_calls else ""
    if len(parts) == 1 and isinstance(parts[0], dict) and parts[0].get("type") == "text":
        return parts[0].get("text", "")
    return parts


def text_part(text: Any) -> dict[str, Any]:
    return {"type": "text", "text": as_text(text)}


def image_part(url: str) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url}}


def tool_call(call_id: Any, name: Any, arguments: Any) -> dict[str, Any]:
    call: dict[str, Any] = {}
    if call_id not in (None, ""):
        call["id"] = as_text(call_id)
    call["type"] = "function"
    args = "{}" if arguments is None else as_text(arguments)
    call["function"] = {"name": "" if name is None else as_text(name), "arguments": args}
    return call


def convert_tool_calls(calls: Any) -> list[dict[str, Any]] | None:
    """Tool calls in OpenAI shape, from OpenAI, LangChain (`name`/`args`) or GenAI (`name`/`arguments`) shape."""
    if calls is None or calls == []:
        return None
    if isinstance(calls, dict):
        calls = [calls]
    if not isinstance(calls, list):
        return [{"type": "function", "function": {"name": "", "arguments": as_text(calls)}}]
    out = []
    for call in calls:
        if not isinstance(call, dict):
            out.append({"type": "function", "function": {"name": "", "arguments": as_text(call)}})
            continue
        function = call.get("function")
        if isinstance(function, dict):
            out.append(tool_call(call.get("id"), function.get("name"), function.get("arguments")))
        elif "args" in call:
            out.append(tool_call(call.get("id"), call.get("name"), call.get("args")))
        else:
            out.append(tool_call(call.get("id"), call.get("name"), call.get("arguments", call.get("input"))))
    return out


def _turn(
    role: str,
    parts: list[Any],
    calls: list[dict[str, Any]],
    results: list[dict[str, Any]],
    *,
    name: str | None = None,
    tool_call_id: str | None = None,
) -> list[dict[str, Any]]:
    """A logged message as OpenAI messages: its own turn (content parts and tool calls), then the tool
    results it carried, each a `role: tool` message; a message that carried only results has no turn."""
    if results and not parts and not calls:
        return results
    content = join_parts(parts, has_tool_calls=bool(calls))
    return [make_message(role, content, name=name, tool_calls=calls or None, tool_call_id=tool_call_id), *results]


# --- OpenTelemetry GenAI messages (role + parts) ---------------------------------------------------


def genai_messages(value: Any, field: str) -> list[dict[str, Any]]:
    """OTel GenAI `gen_ai.input.messages` / `gen_ai.output.messages` (a JSON string or a list) in OpenAI shape."""
    value = _json_value(value, field)
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise RecordError("wrong_type", f"`{field}` must be a list of messages, got {json_type(value)} {show(value)}")
    out: list[dict[str, Any]] = []
    for i, message in enumerate(value):
        if not isinstance(message, dict):
            raise RecordError(
                "wrong_type", f"`{field}[{i}]` must be a message object, got {json_type(message)} {show(message)}"
            )
        out.extend(genai_message(message, f"{field}[{i}]"))
    return out


def genai_message(message: dict[str, Any], where: str) -> list[dict[str, Any]]:
    role = message.get("role")
    if role in (None, ""):
        raise RecordError("missing_field", f"`{where}` has no `role` (keys: {', '.join(sorted(message)) or 'none'})")
    role = role_of(role)
    parts = message.get("parts")
    if parts is None and "content" in message:  # an OpenAI-shaped message among GenAI ones
        return [_openai_message(message, where)]
    if parts is None:
        parts = []
    if not isinstance(parts, list):
        raise RecordError("wrong_type", f"`{where}.parts` must be a list, got {json_type(parts)} {show(parts)}")
    if parts and all(isinstance(p, dict) and "type" not in p for p in parts):  # Gemini parts: {text}, {function_call}
        return _gemini_content(message, where)
    content: list[Any] = []
    calls: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    for part in parts:
        if not isinstance(part, dict):
            content.append(text_part(part))
            continue
        kind = part.get("type")
        if kind == "text":
            content.append(text_part(part.get("content", "")))
        elif kind == "tool_call":
            calls.append(tool_call(part.get("id"), part.get("name"), part.get("arguments")))
        elif kind == "tool_call_response":
            response = part.get("response", part.get("result"))
            results.append(tool_result(response, tool_call_id=text_or_none(part.get("id"))))
        elif kind == "uri" and part.get("modality") == "image" and isinstance(part.get("uri"), str):
            content.append(image_part(part["uri"]))
        elif kind == "blob" and part.get("modality") == "image" and isinstance(part.get("content"), str):
            mime = part.get("mime_type") or "image/*"
            content.append(image_part(f"data:{mime};base64,{part['content']}"))
        else:
            content.append(part)
    return _turn(role, content, calls, results, name=text_or_none(message.get("name")))


# --- messages as Langfuse, LangSmith (and others) log them ---------------------------------------


def messages_from(value: Any, field: str) -> list[dict[str, Any]]:
    """Request messages in OpenAI shape from the many shapes an input is logged in; RecordError when none."""
    if isinstance(value, str) and value.lstrip()[:1] in ("[", "{"):
        # messages logged as JSON text; text that merely starts with a bracket ("[INST] ...") stays text
        try:
            decoded = json.loads(value)
        except (ValueError, RecursionError):
            decoded = None
        if isinstance(decoded, dict) or (
            isinstance(decoded, list) and decoded and all(isinstance(v, dict | list) for v in decoded)
        ):
            value = decoded
    if isinstance(value, str):
        return [make_message("user", value)]
    if isinstance(value, dict):
        if "messages" in value:
            return _with_system(value, messages_from(value["messages"], f"{field}.messages"))
        if "contents" in value:  # Google GenAI (Gemini) generate_content arguments
            return gemini_messages(value, f"{field}.contents")
        if isinstance(value.get("input"), list | str) and ("instructions" in value or "model" in value):
            return _with_system(value, messages_from(value["input"], f"{field}.input"))  # Responses API arguments
        if _is_message(value):
            return _message(value, field)
        for key in ("prompts", "prompt"):
            prompt = value.get(key)
            if isinstance(prompt, list) and prompt and isinstance(prompt[0], str):
                return [make_message("user", prompt[0])]
            if isinstance(prompt, str):
                return _with_system(value, [make_message("user", prompt)])
            if isinstance(prompt, list | dict) and prompt:
                return messages_from(prompt, f"{field}.{key}")
        keys = ", ".join(sorted(value)[:12]) or "none"
        hint = ""
        if "content" in value and "role" not in value:  # e.g. the Claude Agent SDK's later turns: {"content": "role"}
            hint = f": {show(value)} is content without a role, not the request the call was sent"
        raise RecordError(
            "invalid_value",
            f"`{field}` holds no chat messages or prompt (looked for `messages`, `role`, `prompt`, `prompts`; "
            f"keys: {keys}){hint}",
        )
    if isinstance(value, list):
        if not value:
            raise RecordError("invalid_value", f"`{field}` is empty: a chat request needs at least one message")
        if all(isinstance(v, list) for v in value):  # a LangChain batch: one list of messages per prompt
            return messages_from(value[0], f"{field}[0]")
        out: list[dict[str, Any]] = []
        for i, item in enumerate(value):
            if isinstance(item, str):
                out.append(make_message("user", item))
            elif isinstance(item, dict) and _is_message(item):
                out.extend(_message(item, f"{field}[{i}]"))
            else:
                raise RecordError(
                    "wrong_type",
                    f"`{field}[{i}]` must be a chat message, got {json_type(item)} {show(item)}",
                )
        return _tool_roles(_merge_calls(out))
    if value is None:
        raise RecordError("missing_field", f"`{field}` is null: the request messages are missing")
    raise RecordError("wrong_type", f"`{field}` must be messages or a prompt, got {json_type(value)} {show(value)}")


def _is_message(value: dict[str, Any]) -> bool:
    if "role" in value or value.get("type") in RESPONSES_ITEMS:
        return True
    if value.get("lc") is not None and isinstance(value.get("id"), list):
        return True
    return value.get("type") in _LC_TYPES and ("content" in value or isinstance(value.get("data"), dict))


def _message(value: dict[str, Any], where: str) -> list[dict[str, Any]]:
    """One logged message (OpenAI, GenAI, LangChain or Anthropic shape) as OpenAI messages."""
    if value.get("lc") is not None and isinstance(value.get("id"), list):
        kwargs = value.get("kwargs") if isinstance(value.get("kwargs"), dict) else {}
        cls = str(value["id"][-1]) if value["id"] else ""
        role = kwargs.get("role") if cls.startswith("ChatMessage") else _LC_CLASSES.get(cls)
        if role is None:
            raise RecordError("invalid_value", f"`{where}` is a LangChain {cls or 'object'}, not a chat message")
        return [_langchain_message(role_of(role), kwargs)]
    if value.get("type") in RESPONSES_ITEMS and value.get("type") != "message":
        return _responses_item(value)
    if "role" not in value:  # LangChain dict form {"type": "human", "content"|"data": ...}
        data = value.get("data") if isinstance(value.get("data"), dict) else value
        return [_langchain_message(_LC_TYPES[value["type"]], data)]
    if "parts" in value and "content" not in value:
        return genai_message(value, where)
    content = value.get("content")
    if isinstance(content, list) and any(isinstance(p, dict) and p.get("type") in VERCEL_PARTS for p in content):
        return _vercel_message(value, where)
    return _split_anthropic(_openai_message(value, where))


def _langchain_message(role: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    extra = kwargs.get("additional_kwargs") if isinstance(kwargs.get("additional_kwargs"), dict) else {}
    calls = convert_tool_calls(kwargs.get("tool_calls") or extra.get("tool_calls") or extra.get("function_call"))
    content = kwargs.get("content", "")
    if content in (None, "") and calls:
        content = None
    return make_message(
        role,
        content,
        name=text_or_none(kwargs.get("name")),
        tool_calls=calls,
        tool_call_id=text_or_none(kwargs.get("tool_call_id")),
    )


def _openai_message(value: dict[str, Any], where: str) -> dict[str, Any]:
    role = value.get("role")
    if role in (None, ""):
        raise RecordError("missing_field", f"`{where}` has no `role`")
    extra = value.get("additional_kwargs") if isinstance(value.get("additional_kwargs"), dict) else {}
    calls = convert_tool_calls(
        value.get("tool_calls") or value.get("function_call") or extra.get("tool_calls") or extra.get("function_call")
    )
    content = value.get("content")
    if content is None and not calls:
        content = ""
    return make_message(
        role_of(role),
        content,
        name=text_or_none(value.get("name")),
        tool_calls=calls,
        tool_call_id=text_or_none(value.get("tool_call_id")),
    )


def _split_anthropic(message: dict[str, Any]) -> list[dict[str, Any]]:
    """Anthropic content blocks (`tool_use` to tool_calls, `tool_result` to `role: tool` messages), and the
    same from Amazon Bedrock Converse blocks (`{"toolUse": {toolUseId, name, input}}`, `{"toolResult":
    {toolUseId, content}}`, `{"text": ...}`), as Strands Agents and LangChain AWS log them."""
    content = message.get("content")
    if not isinstance(content, list) or not any(_block_kind(p) in ("tool_use", "tool_result") for p in content):
        return [message]
    kept, calls, results = [], list(message.get("tool_calls") or []), []
    for part in content:
        kind = _block_kind(part)
        block = part.get("toolUse", part.get("toolResult", part)) if isinstance(part, dict) else part
        if kind == "tool_use":
            calls.append(tool_call(block.get("id", block.get("toolUseId")), block.get("name"), block.get("input")))
        elif kind == "tool_result":
            result = block.get("content")
            if isinstance(result, list):
                result = _content_text(
                    [r if "json" not in r else {"text": as_text(r["json"])} for r in result if isinstance(r, dict)]
                    or result,
                    "tool_result.content",
                )
            results.append(tool_result(result, tool_call_id=_id_of(block)))
        else:
            kept.append(part)
    return _turn(
        message["role"], kept, calls, results, name=message.get("name"), tool_call_id=message.get("tool_call_id")
    )


def _block_kind(part: Any) -> str | None:
    if not isinstance(part, dict):
        return None
    if part.get("type") in ("tool_use", "tool_result"):
        return part["type"]
    if isinstance(part.get("toolUse"), dict):
        return "tool_use"
    if isinstance(part.get("toolResult"), dict):
        return "tool_result"
    return None


def _id_of(part: dict[str, Any]) -> str | None:
    return text_or_none(part.get("tool_use_id", part.get("toolUseId", part.get("id"))))


# --- answers ---------------------------------------------------------------------------------------


def output_from(value: Any, field: str, depth: int = 0) -> tuple[str | None, str | None, list[dict[str, Any]] | None]:
    """(answer text, finish reason, tool calls in OpenAI shape) from a logged output; text None when none."""
    if value is None:
        return None, None, None
    if isinstance(value, str):
        stripped = value.lstrip()
        if stripped[:1] in ("{", "[") and depth == 0:
            try:
                decoded = json.loads(value)
            except (ValueError, RecursionError):
                return value, None, None
            if isinstance(decoded, dict | list):
                text, finish, calls = output_from(decoded, field, depth + 1)
                if text is not None or calls:
                    return text, finish, calls
        return value, None, None
    if depth > MAX_DEPTH:
        return as_text(value), None, None
    if isinstance(value, dict):
        if _is_response(value):
            return _response_output(value)
        if _is_choice(value):  # one choice, as OTel's gen_ai.choice event body logs it
            text, finish, calls = output_from(value["message"], f"{field}.message", depth + 1)
            return text, finish_reason_of(value.get("finish_reason")) or finish, calls
        if isinstance(value.get("candidates"), list):
            return _gemini_output(value)
        if isinstance(value.get("choices"), list) and value["choices"]:
            choice = value["choices"][0]
            if isinstance(choice, dict):
                finish = choice.get("finish_reason")
                if isinstance(finish, dict):  # the LangSmith JS SDK logs a streamed choice's last chunk here
                    finish = finish.get("finish_reason")
                finish = text_or_none(finish)
                message = choice.get("message")
                if isinstance(message, dict):
                    text, _, calls = output_from(message, f"{field}.choices[0].message", depth + 1)
                    return text if text is not None else "", finish, calls
                if isinstance(choice.get("text"), str):
                    return choice["text"], finish, None
        if isinstance(value.get("generations"), list) and value["generations"]:
            return _generation(value["generations"], field, depth)
        if _is_message(value) or "parts" in value:
            messages = genai_message(value, field) if "parts" in value and "content" not in value else None
            if messages is None:
                messages = _message(value, field) if _is_message(value) else []
            message = messages[0] if messages else {"content": ""}
            calls = message.get("tool_calls")
            finish = finish_reason_of(value.get("finish_reason") or value.get("stop_reason"))
            return _content_text(message.get("content"), f"{field}.content"), finish, calls
        for key in ("output", "text", "completion", "content", "answer", "response"):
            if key in value and value[key] is not None:
                text, finish, calls = output_from(value[key], f"{field}.{key}", depth + 1)
                finish = finish or finish_reason_of(value.get("finish_reason"))
                if calls and value.get("finish_reason") == "STOP":  # Gemini stops the same way for calls
                    finish = "tool_calls"
                return text, finish, calls
        return compact_json(value), finish_reason_of(value.get("finish_reason")), None
    if isinstance(value, list):
        if not value:
            return "", None, None
        if all(isinstance(v, str) for v in value):
            return "\n".join(value), None, None
        if all(isinstance(v, dict) and "toolCallId" in v for v in value):  # Vercel AI SDK tool calls
            return "", "tool_calls", [vercel_call(v) for v in value]
        if all(isinstance(v, dict) and v.get("type") in RESPONSES_ITEMS for v in value):
            return _response_output({"output": value})
        if all(_is_choice(v) for v in value):  # choices (gen_ai.choice events): the first is the answer
            return output_from(value[0], f"{field}[0]", depth + 1)
        messages = [v for v in value if isinstance(v, dict) and (_is_message(v) or "parts" in v)]
        if messages:
            return output_from(messages[-1], f"{field}[-1]", depth + 1)
        if all(isinstance(v, dict) and v.get("type") in ("text", "output_text") for v in value):
            return _content_text(value, field), None, None
        return compact_json(value), None, None
    return as_text(value), None, None


def _generation(generations: list[Any], field: str, depth: int) -> tuple[str | None, str | None, Any]:
    first = generations[0]
    if isinstance(first, list):
        first = first[0] if first else {}
    if not isinstance(first, dict):
        return as_text(first), None, None
    info = first.get("generation_info") if isinstance(first.get("generation_info"), dict) else {}
    finish = text_or_none(info.get("finish_reason"))
    text = first.get("text") if isinstance(first.get("text"), str) else None
    calls = None
    message = first.get("message")
    if isinstance(message, dict):
        msg_text, msg_finish, calls = output_from(message, f"{field}.generations[0][0].message", depth + 1)
        if not text:
            text = msg_text
        finish = finish or msg_finish
    return (text if text is not None else ""), finish, calls


def _json_value(value: Any, field: str) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except (ValueError, RecursionError):
        raise RecordError("invalid_value", f"`{field}` is text that is not valid JSON: {show(value)}") from None


# --- OpenAI Responses API, Google GenAI (Gemini), Vercel AI SDK ----------------------------------------

RESPONSES_ITEMS = frozenset({"message", "function_call", "function_call_output", "reasoning"})
"""Input and output item types of the OpenAI Responses API (`/v1/responses`)."""
VERCEL_PARTS = frozenset({"tool-call", "tool-result"})
"""Content part types of Vercel AI SDK messages that carry tool calls and results."""
_FINISH = {
    # Anthropic stop_reason, Gemini finishReason, Vercel finishReason -> OpenAI's finish_reason
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "tool-calls": "tool_calls",
    "content-filter": "content_filter",
    "finish_reason_unspecified": None,
    "safety": "content_filter",
    "recitation": "content_filter",
    "blocklist": "content_filter",
    "prohibited_content": "content_filter",
    "spii": "content_filter",
    "max_output_tokens": "length",
}


def finish_reason_of(value: Any) -> str | None:
    """A finish reason in OpenAI's words (`stop`, `length`, `tool_calls`, `content_filter`), so the
    truncation scorer reads Anthropic's `max_tokens` and Gemini's `MAX_TOKENS` as `length`; other
    reasons are kept as logged."""
    text = text_or_none(value)
    if text is None:
        return None
    key = text.strip().lower()
    if key in _FINISH:
        return _FINISH[key]
    return key if key in ("stop", "length", "tool_calls", "content_filter") else text


def _with_system(value: dict[str, Any], messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A `system` / `instructions` text logged beside the messages, as the first message."""
    system = value.get("system", value.get("instructions"))
    if isinstance(system, list) and all(isinstance(b, dict) and "text" in b for b in system):  # Anthropic blocks
        system = "\n".join(as_text(b["text"]) for b in system)
    if isinstance(system, str) and system and not any(m.get("role") in ("system", "developer") for m in messages):
        return [make_message("system", system), *messages]
    return messages


def _responses_item(item: dict[str, Any]) -> list[dict[str, Any]]:
    kind = item.get("type")
    if kind == "function_call":
        call = tool_call(item.get("call_id", item.get("id")), item.get("name"), item.get("arguments"))
        return [make_message("assistant", None, tool_calls=[call])]
    if kind == "function_call_output":
        output = item.get("output")
        text = _content_text(output, "output") if isinstance(output, list) else as_text(output or "")
        return [make_message("tool", text, tool_call_id=text_or_none(item.get("call_id")))]
    return []  # reasoning: the model's own notes, not a turn of the conversation


def _merge_calls(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Consecutive assistant turns that only call tools (Responses `function_call` items) as one turn."""
    out: list[dict[str, Any]] = []
    for message in messages:
        previous = out[-1] if out else None
        if (
            previous is not None
            and message.get("role") == "assistant"
            and previous.get("role") == "assistant"
            and message.get("content") is None
            and message.get("tool_calls")
            and previous.get("tool_calls")
        ):
            out[-1] = {**previous, "tool_calls": [*previous["tool_calls"], *message["tool_calls"]]}
        else:
            out.append(message)
    return out


def _tool_roles(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A tool result logged with the tool's name as its role (Langfuse's LangChain ToolMessage) as a
    `role: tool` message answering the call of that name."""
    out: list[dict[str, Any]] = []
    calls: dict[str, str | None] = {}
    for message in messages:
        role = message.get("role")
        if role == "assistant" and message.get("tool_calls"):
            calls = {c["function"]["name"]: c.get("id") for c in message["tool_calls"]}
        elif isinstance(role, str) and role not in _KNOWN_ROLES and role in calls:
            message = make_message("tool", message.get("content"), name=role, tool_call_id=calls[role])
        out.append(message)
    return out


def _is_choice(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("message"), dict)
        and "role" not in value
        and any(k in value for k in ("index", "finish_reason", "event.name"))
    )


def _is_response(value: dict[str, Any]) -> bool:
    return value.get("object") == "response" or (
        isinstance(value.get("output"), list)
        and bool(value["output"])
        and all(isinstance(i, dict) and i.get("type") in RESPONSES_ITEMS for i in value["output"])
    )


def _response_output(value: dict[str, Any]) -> tuple[str | None, str | None, list[dict[str, Any]] | None]:
    """A Responses API response: the text of its `message` items, its `function_call` items as tool calls."""
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for item in value.get("output") or []:
        if not isinstance(item, dict):
            continue
        if item.get("type") == "message":
            texts.append(_content_text(item.get("content"), "output.content"))
        elif item.get("type") == "function_call":
            calls.append(tool_call(item.get("call_id", item.get("id")), item.get("name"), item.get("arguments")))
    status = value.get("status")
    details = value.get("incomplete_details")
    if status == "incomplete" and isinstance(details, dict):
        finish = finish_reason_of(details.get("reason")) or "incomplete"
    elif calls:
        finish = "tool_calls"
    else:
        finish = "stop" if status in (None, "completed") else text_or_none(status)
    return "\n".join(texts), finish, calls or None


def gemini_messages(value: dict[str, Any], field: str) -> list[dict[str, Any]]:
    """Google GenAI `generate_content` arguments (`contents`: text, a list of texts or of `Content`s
    with `role` and `parts`; `config.system_instruction`) as OpenAI messages."""
    contents = value.get("contents")
    config = value.get("config") if isinstance(value.get("config"), dict) else {}
    system = config.get("system_instruction", config.get("systemInstruction"))
    out: list[dict[str, Any]] = []
    if system is not None:
        out.append(make_message("system", _gemini_text(system)))
    if isinstance(contents, str | dict):
        contents = [contents]
    if not isinstance(contents, list) or not contents:
        raise RecordError("invalid_value", f"`{field}` holds no contents: {show(contents)}")
    for i, content in enumerate(contents):
        if isinstance(content, str):
            out.append(make_message("user", content))
        elif isinstance(content, dict) and "parts" in content:
            out.extend(_gemini_content(content, f"{field}[{i}]"))
        elif isinstance(content, dict) and "text" in content:
            out.append(make_message("user", as_text(content["text"])))
        else:
            raise RecordError("wrong_type", f"`{field}[{i}]` must be text or a Content, got {show(content)}")
    return out


def _gemini_text(value: Any) -> str:
    if isinstance(value, dict):
        value = value.get("parts", value.get("text", value))
    if isinstance(value, list):
        return "\n".join(as_text(p.get("text", "")) if isinstance(p, dict) else as_text(p) for p in value)
    return as_text(value)


def _gemini_content(content: dict[str, Any], where: str) -> list[dict[str, Any]]:
    """One Gemini `Content` (`role` user|model|function, `parts`: text, function_call, function_response)."""
    role = role_of(content.get("role") or "user")
    parts = content.get("parts") if isinstance(content.get("parts"), list) else []
    texts: list[Any] = []
    calls: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    for part in parts:
        if not isinstance(part, dict):
            texts.append(text_part(part))
            continue
        call = part.get("function_call", part.get("functionCall"))
        response = part.get("function_response", part.get("functionResponse"))
        if isinstance(call, dict):
            calls.append(tool_call(call.get("id"), call.get("name"), call.get("args")))
        elif isinstance(response, dict):
            result = response.get("response")
            results.append(tool_result(result, name=text_or_none(response.get("name"))))
        elif part.get("text") is not None and not part.get("thought"):
            texts.append(text_part(part["text"]))
    return _turn(role, texts, calls, results)


def _gemini_output(value: dict[str, Any]) -> tuple[str | None, str | None, list[dict[str, Any]] | None]:
    """A Gemini `GenerateContentResponse`: the first candidate's text and function calls."""
    candidates = value["candidates"]
    if not candidates or not isinstance(candidates[0], dict):
        return "", None, None
    first = candidates[0]
    content = first.get("content") if isinstance(first.get("content"), dict) else {"parts": []}
    message = _gemini_content({**content, "role": "model"}, "candidates[0].content")[0]
    finish = finish_reason_of(first.get("finish_reason", first.get("finishReason")))
    calls = message.get("tool_calls")
    if calls and finish == "stop":
        finish = "tool_calls"
    return _content_text(message.get("content"), "candidates[0].content"), finish, calls


def vercel_call(part: dict[str, Any]) -> dict[str, Any]:
    """A Vercel AI SDK tool call (a `tool-call` content part or an `ai.response.toolCalls` item) as an OpenAI one."""
    return tool_call(part.get("toolCallId"), part.get("toolName"), part.get("input", part.get("args")))


def _vercel_message(value: dict[str, Any], where: str) -> list[dict[str, Any]]:
    """A Vercel AI SDK message whose content parts hold `tool-call`s or `tool-result`s: the calls on
    the message, each result a `role: tool` message of its own."""
    content = value["content"]
    kept = [p for p in content if not (isinstance(p, dict) and p.get("type") in VERCEL_PARTS)]
    calls = [vercel_call(p) for p in content if isinstance(p, dict) and p.get("type") == "tool-call"]
    out = []
    if kept or calls:
        message = _openai_message({**value, "content": None}, where)
        out.append({**message, "content": join_parts(kept, has_tool_calls=bool(calls)), "tool_calls": calls or None})
        if not calls:
            del out[-1]["tool_calls"]
    for part in content:
        if isinstance(part, dict) and part.get("type") == "tool-result":
            result = part.get("output", part.get("result"))
            if isinstance(result, dict) and "value" in result and "type" in result:  # AI SDK 5: {type, value}
                result = result["value"]
            out.append(tool_result(result, tool_call_id=text_or_none(part.get("toolCallId"))))
    return out


# --- input_text ------------------------------------------------------------------------------------


def input_text(messages: list[dict[str, Any]], context_min_chars: int) -> str:
    """The normalised last user turn (with context when short), as `openai_chat` computes it."""
    turns = [(str(m.get("role")), _content_text(m.get("content"), "content")) for m in messages]
    return _input_text(turns, context_min_chars)


# --- feedback ---------------------------------------------------------------------------------------

_UP = frozenset({"up", "thumbs_up", "thumbsup", "thumbs-up", "+1", "positive", "like", "good", "👍", "yes"})
_DOWN = frozenset({"down", "thumbs_down", "thumbsdown", "thumbs-down", "-1", "negative", "dislike", "bad", "👎", "no"})
_PLAIN_THUMBS = {"thumbs_up": "up", "thumbsup": "up", "thumbs-up": "up", "👍": "up"} | {
    "thumbs_down": "down",
    "thumbsdown": "down",
    "thumbs-down": "down",
    "👎": "down",
}
_FEEDBACK_TOKENS = frozenset({"thumb", "thumbs", "feedback", "vote", "upvote", "downvote", "like", "likes", "reaction"})
_RATING_TOKENS = frozenset({"rating", "stars", "star"})


def _tokens(name: Any) -> set[str]:
    return set(re.split(r"[^a-z0-9]+", str(name).lower())) - {""}


def is_feedback_name(name: Any) -> bool:
    tokens = _tokens(name)
    return bool(tokens & _FEEDBACK_TOKENS) or ("user" in tokens and bool(tokens & {"score", "rating"}))


def is_rating_name(name: Any) -> bool:
    return bool(_tokens(name) & _RATING_TOKENS)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def feedback_columns(
    scores: list[dict[str, Any]],
) -> tuple[str | None, str | None, float | None, str | None]:
    """(feedback JSON, feedback_thumbs, feedback_rating, corrected_output) from normalised score dicts.

    Each score is `{"name", "value", "label", "comment", ...}` (what else the format logged is kept).
    The feedback column is the JSON list of all of them. Thumbs and rating are set only where a
    score clearly means one, the first such score winning:

    - thumbs from a user-feedback score (its name has a token thumb(s)/feedback/vote/like/reaction,
      or "user" with score/rating: `user-feedback`, `thumbs_up`, `user_score`): a label or text value
      up/down/👍/👎/positive/negative/yes/no..., a boolean, or the number 1 (up), 0 or -1 (down); and
      from any score labelled thumbs_up/thumbs_down/👍/👎.
    - rating from a score named like a rating (rating/stars), or a user-feedback score whose number
      is not 1, 0 or -1 (e.g. 4 on a 1-5 scale).
    - corrected_output from the first `correction` given.
    """
    if not scores:
        return None, None, None, None
    thumbs: str | None = None
    rating: float | None = None
    corrected: str | None = None
    for score in scores:
        name = score.get("name")
        value, label = score.get("value"), score.get("label")
        feedbackish = is_feedback_name(name)
        if corrected is None and score.get("correction") not in (None, ""):
            corrected = _correction_text(score["correction"])
        if thumbs is None:
            for text in (label, value if isinstance(value, str) else None):
                if isinstance(text, str):
                    word = text.strip().lower()
                    if word in _PLAIN_THUMBS:
                        thumbs = _PLAIN_THUMBS[word]
                    elif feedbackish and word in _UP:
                        thumbs = "up"
                    elif feedbackish and word in _DOWN:
                        thumbs = "down"
                if thumbs:
                    break
        number = _number(value) if not isinstance(value, str) or is_rating_name(name) or feedbackish else None
        if thumbs is None and feedbackish:
            if isinstance(value, bool):
                thumbs = "up" if value else "down"
            elif number is not None and number in (1.0, 0.0, -1.0) and not is_rating_name(name):
                thumbs = "up" if number == 1.0 else "down"
        if (
            rating is None
            and number is not None
            and not isinstance(value, bool)
            and (is_rating_name(name) or (feedbackish and number not in (1.0, 0.0, -1.0)))
        ):
            rating = number
    return to_json(scores), thumbs, rating, corrected


def _correction_text(value: Any) -> str:
    if isinstance(value, dict):
        for key in ("output", "content", "text", "answer", "correction"):
            if isinstance(value.get(key), str):
                return value[key]
    return as_text(value)
