"""Invariants of failure_clusters, checked by its asset after it writes its days."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

import duckdb
import polars as pl


def _days(days: Iterable[date]) -> list[date]:
    return sorted(set(days))


def unclustered_failures(con: duckdb.DuckDBPyConnection, days: Iterable[date], cover: float) -> pl.DataFrame:
    """Per day: failing traces missing from failure_clusters, and cluster members that are not within `cover`
    (cosine) of one of their cluster's representatives (should be empty)."""
    return con.execute(
        """
        WITH wanted AS (SELECT unnest(?::DATE[]) AS day),
        failing AS (SELECT day, count(*) AS n FROM scored_traces SEMI JOIN wanted USING (day)
                    WHERE is_failure GROUP BY day),
        clustered AS (SELECT day, count(*) AS n FROM failure_clusters SEMI JOIN wanted USING (day) GROUP BY day),
        members AS (
            SELECT day, cluster_id, trace_id, embedding FROM failure_clusters SEMI JOIN wanted USING (day)
            WHERE cluster_id >= 0 AND exact_dup_of IS NULL
        ),
        nearest AS (
            SELECT m.day, m.trace_id, max(list_cosine_similarity(m.embedding, r.embedding)) AS similarity
            FROM members m LEFT JOIN failure_clusters r
              ON r.day = m.day AND r.cluster_id = m.cluster_id AND r.is_representative
            GROUP BY ALL
        ),
        far AS (SELECT day, count(*) AS n FROM nearest WHERE coalesce(similarity, -1) < ? - 1e-6 GROUP BY day)
        SELECT day, coalesce(f.n, 0) AS failing, coalesce(c.n, 0) AS clustered,
               coalesce(far.n, 0) AS members_far_from_every_representative
        FROM wanted LEFT JOIN failing f USING (day) LEFT JOIN clustered c USING (day) LEFT JOIN far USING (day)
        WHERE coalesce(f.n, 0) <> coalesce(c.n, 0) OR coalesce(far.n, 0) > 0
        ORDER BY day
        """,
        [_days(days), cover],
    ).pl()
