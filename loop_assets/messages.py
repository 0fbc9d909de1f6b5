"""The text of an OpenAI-shaped chat message, read the same way wherever a message is shown or compared."""

from __future__ import annotations

from typing import Any


def message_text(content: Any) -> str:
    """Text of an OpenAI-shaped message content: a string, or the text parts of a list of parts."""
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
        elif isinstance(part, dict) and isinstance(part.get("text"), str):
            texts.append(part["text"])
    return "\n".join(texts)
