"""The text a failure is compared by: normalised once, hashed for exact duplicates, embedded once."""

from __future__ import annotations

import json

import polars as pl

from loop_assets.messages import message_text


def normalised_text(input_text: pl.Expr, max_chars: int) -> pl.Expr:
    """NFKC, lower case, whitespace collapsed, cut to `max_chars`.

    Lower case loses nothing for the embedding (all-MiniLM-L6-v2's tokenizer is uncased) and lets
    "Refund?" and "refund?" collapse as exact duplicates before anything is embedded.
    """
    return (
        input_text.fill_null("")
        .str.normalize("NFKC")
        .str.to_lowercase()
        .str.replace_all(r"\s+", " ")
        .str.strip_chars()
        .str.slice(0, max_chars)
    )


def text_hash(text: pl.Expr) -> pl.Expr:
    """sha256 hex of the normalised text: the key of exact-duplicate collapse and the embedding cache."""
    return text.map_batches(_sha256, return_dtype=pl.String)


def _sha256(texts: pl.Series) -> pl.Series:
    import hashlib

    return pl.Series([hashlib.sha256(t.encode("utf-8")).hexdigest() for t in texts], dtype=pl.String)


def with_conversation(input_text: str | None, input_messages: str | None, context_chars: int) -> str:
    """The input a failure is compared by: its input text, then the task and the previous user turn.

    The same follow-up ("can you do it faster?") after two different tasks is two different failures,
    so a multi-turn input carries the conversation's first user turn (the task) and the user turn
    before the last, each cut to `context_chars`, after the last turn: the last turn stays first, where
    the embedding model reads it whatever the length, and a single-turn input is unchanged.
    """
    text = input_text or ""
    if context_chars <= 0 or not input_messages:
        return text
    try:
        messages = json.loads(input_messages)
    except ValueError:
        return text
    users = [
        " ".join(message_text(m.get("content")).split())
        for m in messages if isinstance(m, dict) and m.get("role") == "user"
    ]  # fmt: skip
    users = [u for u in users if u]
    if len(users) < 2:
        return text
    context = []
    for turn in dict.fromkeys([users[0], users[-2]]):  # first, then previous; once when they are the same
        if turn[:context_chars] not in text:
            context.append(turn[:context_chars])
    return f"{text}\ncontext: {' | '.join(context)}" if context else text
