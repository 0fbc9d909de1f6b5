"""The embedding cache in the warehouse, keyed by (model, text hash): a text is embedded once, ever."""

from __future__ import annotations

import duckdb
import polars as pl

from loop_assets.warehouse import append_rows, rows_for_keys


def cached_embeddings(con: duckdb.DuckDBPyConnection, model: str, text_hashes: pl.Series) -> pl.DataFrame:
    """text_hash, embedding of the given hashes already embedded with `model`."""
    wanted = pl.DataFrame({"text_hash": text_hashes})
    return rows_for_keys(con, "embedding_cache", wanted, ["text_hash", "embedding"], model=model)


def store_embeddings(con: duckdb.DuckDBPyConnection, rows: pl.DataFrame) -> int:
    return append_rows(con, "embedding_cache", rows)
