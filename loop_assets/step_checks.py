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


def uncovered_failures(con: duckdb.DuckDBPyConnection, days: Iterable[date]) -> pl.DataFrame:
    """Failing traces of the days that no case covers and no skip explains (should be empty).

    Coverage is the contract: each failing trace's input (app, compared text) has a graded row of its day
    that is `promote`, `duplicate_of` a promoted case at or above the threshold it was decided with, or
    `skip:<reason>`; and every graded row has a known decision and a weight in [0, 1].
    """
    return con.execute(
        """
        WITH wanted AS (SELECT unnest(?::DATE[]) AS day),
        failing AS (
            SELECT s.day, s.trace_id, c.app, c.text_hash
            FROM scored_traces s SEMI JOIN wanted USING (day)
            LEFT JOIN failure_clusters c USING (trace_id, day)
            WHERE s.is_failure
        ),
        cases AS (SELECT DISTINCT case_id FROM graded_candidates WHERE decision = 'promote'),
        judged AS (
            SELECT f.day, f.trace_id, g.decision, g.covered_by, g.covered_similarity, g.dedup_threshold,
                   g.weight, g.candidate_id IS NOT NULL AS graded,
                   g.covered_by IN (SELECT case_id FROM cases) AS case_exists
            FROM failing f
            LEFT JOIN graded_candidates g ON g.day = f.day AND g.app = f.app AND g.text_hash = f.text_hash
        )
        SELECT day, trace_id, CASE
            WHEN NOT graded THEN 'no graded row for its input'
            WHEN starts_with(decision, 'skip:') THEN NULL
            WHEN decision <> 'promote' AND NOT starts_with(decision, 'duplicate_of:case_')
                THEN 'unknown decision ' || decision
            WHEN covered_by IS NULL OR NOT case_exists THEN 'covering case ' || coalesce(covered_by, '?') || ' missing'
            WHEN covered_similarity < dedup_threshold - 1e-6
                THEN 'covered at ' || round(covered_similarity, 3) || ' < threshold ' || dedup_threshold
            WHEN NOT weight BETWEEN 0 AND 1 THEN 'weight ' || weight
        END AS problem
        FROM judged
        WHERE problem IS NOT NULL
        ORDER BY day, trace_id
        """,
        [_days(days)],
    ).pl()
