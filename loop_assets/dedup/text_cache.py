"""The compared text of a failing input, cached: redaction runs once per distinct input, ever.

Redacting a day's failing inputs (Presidio's recognisers, in Python) is most of what re-running a day
costs once its embeddings are cached: ~20 s for 31,000 distinct failing inputs of a million-trace day.
The compared text (`failing_texts`: redacted, normalised, cut) depends only on the input text and the
settings that shape it, so it is stored by (settings key, sha256 of the input text). The stored text
is the redacted one; the original input is never stored here.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import duckdb
import polars as pl

from loop_assets.config import LoopConfig
from loop_assets.dedup.text import text_hash
from loop_assets.warehouse import append_rows, rows_for_keys

TEXT_VERSION = "1"
"""Bump when failing_texts changes how a compared text is made, so cached texts are made again."""


def text_settings_key(config: LoopConfig) -> str:
    """What the compared text depends on besides the input: the redaction settings and the cut length."""
    settings = {
        "version": TEXT_VERSION,
        "redaction": config.redaction.model_dump(mode="json"),
        "max_chars": config.embedding.max_chars,
    }
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def input_hashes(input_texts: pl.Series) -> pl.Series:
    """The cache key of each input text (as failing_texts computes it)."""
    return pl.select(text_hash(pl.lit(input_texts.fill_null("")))).to_series()


def cached_texts(con: duckdb.DuckDBPyConnection, settings: str, input_hashes: pl.Series) -> pl.DataFrame:
    """input_hash, text of the given input hashes already made under `settings`."""
    wanted = pl.DataFrame({"input_hash": input_hashes})
    return rows_for_keys(con, "text_cache", wanted, ["input_hash", "text"], settings=settings)


def store_texts(con: duckdb.DuckDBPyConnection, settings: str, texts: pl.DataFrame, known: pl.DataFrame) -> int:
    """Add the (input_hash, text) pairs of `texts` that `known` lacks."""
    fresh = (
        texts.select("input_hash", "text")
        .unique("input_hash")
        .join(known.select("input_hash"), on="input_hash", how="anti")
        .with_columns(settings=pl.lit(settings), created_at=pl.lit(datetime.now(UTC)).cast(pl.Datetime("us", "UTC")))
    )
    return append_rows(con, "text_cache", fresh)
