"""The embedding cache in the warehouse, keyed by (model, text hash): a text is embedded once, ever."""

from __future__ import annotations

import duckdb
import polars as pl

from loop_assets.warehouse import append_rows, ensure_tables


def cached_embeddings(con: duckdb.DuckDBPyConnection, model: str, text_hashes: pl.Series) -> pl.DataFrame:
    """text_hash, embedding of the given hashes already embedded with `model`."""
    ensure_tables(con)
    con.register("_wanted", pl.DataFrame({"text_hash": text_hashes.unique()}).to_arrow())
    try:
        return con.execute(
            "SELECT c.text_hash, c.embedding FROM embedding_cache c JOIN _wanted w USING (text_hash) WHERE c.model = ?",
            [model],
        ).pl()
    finally:
        con.unregister("_wanted")


def store_embeddings(con: duckdb.DuckDBPyConnection, rows: pl.DataFrame) -> int:
    return append_rows(con, "embedding_cache", rows)
