"""Inspect AI dataset JSONL, readable with `inspect_ai.dataset.json_dataset(path)` as it is.

Each line is one `Sample` in its default field names:

- `id` <- case_id.
- `input` <- input_messages converted to Inspect `ChatMessage` dicts: system and developer turns
  become `system`, user turns `user`, assistant turns `assistant` (OpenAI `tool_calls` become Inspect
  tool calls `{id, function, arguments}`, arguments parsed from their JSON text), tool and function
  results `tool`. Text content parts become `{"type": "text"}`, image URLs `{"type": "image"}`.
  Anything else (audio or file parts, an unknown role, a message `name`) is recorded in
  `metadata.input_conversion` with what was done, and the original messages stay in
  `metadata.openai_messages`.
- `target` <- expected_output (a reference answer) when there is one; otherwise the rubric text of
  the case's rubric check (Inspect documents `target` as a literal value or narrative text for a
  model grader, e.g. `model_graded_qa`); otherwise "". `metadata.target_kind` says which:
  `reference`, `rubric` or `none`.
- `metadata` <- case id, app, label, weight, grading checks, provenance and suite version.

Not mapped (kept only in metadata): the grading checks. An Inspect sample carries no scorer; the
task chooses it (a `json_schema`/`latency`/`finish_reason` check needs a custom scorer reading
`metadata.grading`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from loop_assets.exports.suite import (
    Case,
    SuiteVersion,
    read_case,
    read_jsonl_lines,
    write_jsonl_lines,
)
from loop_assets.messages import TEXT_PART_TYPES, message_text

SUFFIX = ".inspect.jsonl"
SYSTEM_ROLES = {"system", "developer"}


def _content(content: Any, where: str, notes: list[str]) -> str | list[dict[str, Any]]:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts = [content] if isinstance(content, dict) else content
    if not isinstance(parts, list):
        notes.append(f"{where}: content of type {type(content).__name__} kept as JSON text")
        return json.dumps(content, ensure_ascii=False)
    out: list[dict[str, Any]] = []
    for i, part in enumerate(parts):
        if isinstance(part, str):
            out.append({"type": "text", "text": part})
        elif (
            isinstance(part, dict) and part.get("type", "text") in TEXT_PART_TYPES and isinstance(part.get("text"), str)
        ):
            out.append({"type": "text", "text": part["text"]})
        elif isinstance(part, dict) and part.get("type") == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            if isinstance(url, str):
                converted = {"type": "image", "image": url}
                if isinstance(image, dict) and image.get("detail") in {"auto", "low", "high"}:
                    converted["detail"] = image["detail"]
                out.append(converted)
            else:
                notes.append(f"{where}[{i}]: image part without a URL dropped")
        else:
            kind = part.get("type") if isinstance(part, dict) else type(part).__name__
            notes.append(f"{where}[{i}]: {kind} part dropped (no Inspect equivalent here)")
    return out


def _tool_call(call: Any, i: int, where: str, notes: list[str]) -> dict[str, Any]:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict):
        function = call if isinstance(call, dict) else {}
    raw = function.get("arguments", {})
    converted: dict[str, Any] = {
        "id": str(call.get("id") or f"call_{i}") if isinstance(call, dict) else f"call_{i}",
        "function": str(function.get("name") or "unknown"),
        "arguments": {},
        "type": "function",
    }
    if isinstance(raw, dict):
        converted["arguments"] = raw
    else:
        try:
            parsed = json.loads(raw) if isinstance(raw, str) and raw.strip() else {}
        except json.JSONDecodeError as exc:
            parsed, converted["parse_error"] = {}, f"arguments are not JSON: {exc}"
        if isinstance(parsed, dict):
            converted["arguments"] = parsed
        else:
            converted["arguments"] = {"value": parsed}
            notes.append(f"{where}.tool_calls[{i}]: non-object arguments wrapped as {{'value': ...}}")
    return converted


def to_inspect_messages(messages: list[Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """OpenAI chat messages as Inspect ChatMessage dicts, and a note for each thing not carried over."""
    out: list[dict[str, Any]] = []
    notes: list[str] = []
    for n, message in enumerate(messages):
        where = f"messages[{n}]"
        if not isinstance(message, dict):
            notes.append(f"{where}: not an object, kept as a user message")
            out.append({"role": "user", "content": json.dumps(message, ensure_ascii=False)})
            continue
        role = message.get("role")
        content = _content(message.get("content"), f"{where}.content", notes)
        if message.get("name") is not None and role not in {"tool", "function"}:
            notes.append(f"{where}: name {message['name']!r} dropped (Inspect messages have no name)")
        if role in SYSTEM_ROLES:
            if role != "system":
                notes.append(f"{where}: role {role} mapped to system")
            out.append({"role": "system", "content": content})
        elif role == "user":
            out.append({"role": "user", "content": content})
        elif role == "assistant":
            converted: dict[str, Any] = {"role": "assistant", "content": content}
            calls = list(message.get("tool_calls") or [])
            if isinstance(message.get("function_call"), dict):
                calls.append({"id": "function_call", "function": message["function_call"]})
            if calls:
                converted["tool_calls"] = [_tool_call(c, i, where, notes) for i, c in enumerate(calls)]
            out.append(converted)
        elif role in {"tool", "function"}:
            converted = {"role": "tool", "content": content}
            if message.get("tool_call_id") is not None:
                converted["tool_call_id"] = str(message["tool_call_id"])
            if message.get("name") is not None:
                converted["function"] = str(message["name"])
            out.append(converted)
        else:
            notes.append(f"{where}: role {role!r} has no Inspect equivalent, kept as a user message")
            out.append({"role": "user", "content": f"{role}: {message_text(message.get('content'))}"})
    return out, notes


def target(case: Case) -> tuple[str, str]:
    """(target, kind): the reference answer, else the rubric for a model grader, else ""."""
    if case.expected_output is not None:
        return case.expected_output, "reference"
    rubrics = [c["rubric"] for c in case.checks if c.get("type") == "rubric" and c.get("rubric")]
    if rubrics:
        return "\n\n".join(rubrics), "rubric"
    return "", "none"


def item(case: Case, version: SuiteVersion) -> dict[str, Any]:
    messages, notes = to_inspect_messages(case.messages)
    text, kind = target(case)
    metadata = case.metadata(version)
    metadata["target_kind"] = kind
    if notes:
        metadata["input_conversion"] = notes
        metadata["openai_messages"] = case.messages
    return {"id": case.case_id, "input": messages, "target": text, "metadata": metadata}


def write(cases: list[Case], version: SuiteVersion, path: Path, **_: Any) -> None:
    write_jsonl_lines(path, [item(case, version) for case in cases])


def read(path: Path) -> list[dict[str, Any]]:
    out = []
    for line in read_jsonl_lines(path):
        metadata = line["metadata"]
        expected = line["target"] if metadata.get("target_kind") == "reference" else None
        out.append(read_case(line, metadata, input=line["input"], expected=expected))
    return out
