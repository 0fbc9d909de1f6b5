"""The text of an OpenAI-shaped chat message, read the same way wherever a message is shown or compared."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

TEXT_PART_TYPES = frozenset({"text", "input_text", "output_text"})
"""Content part types whose `text` is the message's text (Chat Completions and Responses API parts)."""


def message_text(content: Any, text_types: Collection[str] | None = None) -> str:
    """Text of an OpenAI-shaped message content: a string, or the text parts of a list of parts.

    With `text_types`, a part's text counts only when the part has no `type` or one of these (how the
    trace parsers read content: a reasoning or tool part that carries `text` is not the message's text)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        content = [content]
    texts = []
    for part in content if isinstance(content, list) else []:
        if isinstance(part, str):
            texts.append(part)
        elif (
            isinstance(part, dict)
            and isinstance(part.get("text"), str)
            and (text_types is None or part.get("type") is None or part["type"] in text_types)
        ):
            texts.append(part["text"])
    return "\n".join(texts)
