"""The coverage contract, checked by the graded_candidates asset after it writes its days."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

import duckdb
import polars as pl


def _days(days: Iterable[date]) -> list[date]:
    return sorted(set(days))


def failure_coverage(con: duckdb.DuckDBPyConnection, days: Iterable[date] | None = None) -> pl.DataFrame:
    """Every failing trace of the days (all days when None) with the graded row of its input and `problem`:
    null when the contract holds for it, else what breaks it. The one definition of "covered", which the
    check and the suite quality report both read.

    Coverage is the contract: each failing trace's input (app, compared text) has a graded row of its day
    that is `promote`, `duplicate_of` a promoted case at or above the threshold it was decided with, or
    `skip:<reason>`; and every graded row has a known decision and a weight in [0, 1].
    """
    wanted = None if days is None else _days(days)
    return con.execute(
        """
        WITH failing AS (
            SELECT s.day, s.trace_id, c.app, c.text_hash
            FROM scored_traces s LEFT JOIN failure_clusters c USING (trace_id, day)
            WHERE s.is_failure AND (?::DATE[] IS NULL OR list_contains(?::DATE[], s.day))
        ),
        cases AS (SELECT DISTINCT case_id FROM graded_candidates WHERE decision = 'promote'),
        judged AS (
            SELECT f.day, f.app, f.trace_id, f.text_hash, g.decision, g.covered_by, g.covered_similarity,
                   g.dedup_threshold, g.weight, g.candidate_id IS NOT NULL AS graded,
                   g.covered_by IN (SELECT case_id FROM cases) AS case_exists
            FROM failing f
            LEFT JOIN graded_candidates g ON g.day = f.day AND g.app = f.app AND g.text_hash = f.text_hash
        )
        SELECT day, app, trace_id, text_hash, decision, covered_similarity, dedup_threshold, CASE
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
        ORDER BY day, trace_id
        """,
        [wanted, wanted],
    ).pl()


def uncovered_failures(con: duckdb.DuckDBPyConnection, days: Iterable[date]) -> pl.DataFrame:
    """day, trace_id, problem of the failing traces of the days that break the coverage contract (should be empty)."""
    return failure_coverage(con, days).filter(pl.col("problem").is_not_null()).select("day", "trace_id", "problem")
