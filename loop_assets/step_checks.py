"""Invariants of the intermediate tables, checked by each asset after it writes its days."""

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


def unclustered_failures(con: duckdb.DuckDBPyConnection, days: Iterable[date]) -> pl.DataFrame:
    """Per day: failing traces missing from failure_clusters, clusters without exactly one representative."""
    return con.execute(
        """
        WITH failing AS (SELECT day, count(*) AS n FROM scored_traces WHERE is_failure GROUP BY day),
        clustered AS (SELECT day, count(*) AS n FROM failure_clusters GROUP BY day),
        reps AS (
            SELECT day, cluster_id, count(*) FILTER (WHERE is_representative) AS reps
            FROM failure_clusters WHERE cluster_id >= 0 GROUP BY ALL
        )
        SELECT f.day, f.n AS failing, coalesce(c.n, 0) AS clustered,
               (SELECT count(*) FROM reps r WHERE r.day = f.day AND r.reps <> 1) AS clusters_without_one_rep
        FROM failing f LEFT JOIN clustered c USING (day)
        WHERE f.day IN (SELECT unnest(?::DATE[]))
          AND (f.n <> coalesce(c.n, 0) OR clusters_without_one_rep > 0)
        """,
        [_days(days)],
    ).pl()


def ungraded_representatives(con: duckdb.DuckDBPyConnection, days: Iterable[date]) -> pl.DataFrame:
    """Representatives without a graded row, and graded rows with a decision or weight out of range."""
    return con.execute(
        """
        SELECT c.day, c.trace_id, 'not graded' AS problem
        FROM failure_clusters c ANTI JOIN graded_candidates g USING (trace_id, day)
        WHERE c.is_representative AND c.day IN (SELECT unnest(?::DATE[]))
        UNION ALL
        SELECT day, trace_id, 'decision ' || decision || ', weight ' || weight
        FROM graded_candidates
        WHERE day IN (SELECT unnest(?::DATE[]))
          AND NOT ((decision = 'promote' OR decision LIKE 'duplicate_of:case_%' OR decision LIKE 'skip:%')
                   AND weight BETWEEN 0 AND 1)
        """,
        [_days(days), _days(days)],
    ).pl()
