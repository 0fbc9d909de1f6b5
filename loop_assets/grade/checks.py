"""The coverage contract, checked by the graded_candidates asset after it writes its days."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

import duckdb
import polars as pl


def _days(days: Iterable[date]) -> list[date]:
    return sorted(set(days))


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
