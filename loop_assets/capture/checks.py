"""Invariants of the CAPTURE tables, checked by the scored_traces asset after it writes its days."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

import duckdb
import polars as pl


def _days(days: Iterable[date]) -> list[date]:
    return sorted(set(days))


def unscored_traces(con: duckdb.DuckDBPyConnection, days: Iterable[date]) -> pl.DataFrame:
    """Days where raw traces and scored traces do not match one to one (should be empty)."""
    return con.execute(
        """
        WITH wanted AS (SELECT unnest(?::DATE[]) AS day),
        r AS (SELECT day, count(*) AS n FROM raw_traces SEMI JOIN wanted USING (day) GROUP BY day),
        s AS (SELECT day, count(*) AS n FROM scored_traces SEMI JOIN wanted USING (day) GROUP BY day),
        m AS (
            SELECT day, count(*) AS n FROM raw_traces JOIN scored_traces USING (trace_id, day)
            SEMI JOIN wanted USING (day) GROUP BY day
        )
        SELECT day, coalesce(r.n, 0) AS raw, coalesce(s.n, 0) AS scored, coalesce(m.n, 0) AS matched
        FROM wanted LEFT JOIN r USING (day) LEFT JOIN s USING (day) LEFT JOIN m USING (day)
        WHERE coalesce(r.n, 0) <> coalesce(s.n, 0) OR coalesce(r.n, 0) <> coalesce(m.n, 0)
        """,
        [_days(days)],
    ).pl()
