"""The text a failure is compared by: normalised once, hashed for exact duplicates, embedded once."""

from __future__ import annotations

import polars as pl


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
