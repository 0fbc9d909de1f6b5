"""How faithfully the suite stands for the failures it was built from, per app and day.

A suite that passes while the product fails on inputs it has no case for is the failure eval-loop
exists to prevent, so this is reported wherever the suite is: `eval-loop summary`, the `eval_suite`
metadata (plotted per partition) and the `graded_candidates` coverage check.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

import duckdb
import polars as pl

SHOWN = (
    "day",
    "app",
    "failing_inputs",
    "promoted",
    "duplicates",
    "skipped",
    "uncovered",
    "coverage",
    "dedup_threshold",
    "duplicate_similarity_min",
    "duplicate_similarity_p50",
    "suite_size",
)
"""The columns a person reads first (summary, the eval_suite metadata); `suite_quality` has more."""


def suite_quality(con: duckdb.DuckDBPyConnection, days: Iterable[date] | None = None) -> pl.DataFrame:
    """One row per day and app with failures: failing traces and distinct inputs; how many are a case
    (promoted), a duplicate of a case at or above the threshold, skipped with a reason, or uncovered;
    coverage = (promoted + duplicates) / (inputs - skipped); the duplicates' similarity to their case;
    and the app's suite size as of the day."""
    wanted = None if days is None else sorted(set(days))
    return con.execute(
        """
        WITH failing AS (
            SELECT s.day, c.app, c.text_hash
            FROM scored_traces s JOIN failure_clusters c USING (trace_id, day)
            WHERE s.is_failure AND (?::DATE[] IS NULL OR list_contains(?::DATE[], s.day))
        ),
        inputs AS (SELECT day, app, text_hash, count(*) AS traces FROM failing GROUP BY ALL),
        judged AS (
            SELECT i.*, g.decision, g.covered_similarity, g.dedup_threshold,
                   g.decision = 'promote' AS is_case,
                   starts_with(g.decision, 'duplicate_of:')
                       AND g.covered_similarity >= g.dedup_threshold - 1e-6 AS is_duplicate,
                   starts_with(g.decision, 'skip:') AS is_skip
            FROM inputs i LEFT JOIN graded_candidates g USING (day, app, text_hash)
        ),
        per_day AS (
            SELECT day, app,
                   sum(traces)::BIGINT AS failing_traces,
                   count(*)::BIGINT AS failing_inputs,
                   count(*) FILTER (WHERE is_case)::BIGINT AS promoted,
                   count(*) FILTER (WHERE is_duplicate)::BIGINT AS duplicates,
                   count(*) FILTER (WHERE is_skip)::BIGINT AS skipped,
                   count(*) FILTER (WHERE NOT coalesce(is_case OR is_duplicate OR is_skip, false))::BIGINT
                       AS uncovered,
                   max(dedup_threshold) AS dedup_threshold,
                   min(covered_similarity) FILTER (WHERE is_duplicate) AS duplicate_similarity_min,
                   quantile_cont(covered_similarity, 0.1) FILTER (WHERE is_duplicate) AS duplicate_similarity_p10,
                   quantile_cont(covered_similarity, 0.5) FILTER (WHERE is_duplicate) AS duplicate_similarity_p50,
                   quantile_cont(covered_similarity, 0.9) FILTER (WHERE is_duplicate) AS duplicate_similarity_p90
            FROM judged GROUP BY ALL
        )
        SELECT p.day, p.app, failing_traces, failing_inputs, promoted, duplicates, skipped, uncovered,
               round((promoted + duplicates) / greatest(failing_inputs - skipped, 1), 4) AS coverage,
               dedup_threshold,
               round(duplicate_similarity_min, 4) AS duplicate_similarity_min,
               round(duplicate_similarity_p10, 4) AS duplicate_similarity_p10,
               round(duplicate_similarity_p50, 4) AS duplicate_similarity_p50,
               round(duplicate_similarity_p90, 4) AS duplicate_similarity_p90,
               (SELECT count(*) FROM eval_suite e
                WHERE e.app = p.app AND e.status = 'active' AND coalesce(e.in_suite_from, e.day) <= p.day
               )::BIGINT AS suite_size
        FROM per_day p
        ORDER BY p.day, p.app
        """,
        [wanted, wanted],
    ).pl()


def quality_by_app(quality: pl.DataFrame) -> pl.DataFrame:
    """`suite_quality` rows summed over days, per app (the latest suite size)."""
    return (
        quality.sort("day")
        .group_by("app", maintain_order=True)
        .agg(
            pl.col("failing_traces", "failing_inputs", "promoted", "duplicates", "skipped", "uncovered").sum(),
            pl.col("suite_size").last(),
            pl.col("dedup_threshold").last(),
        )
        .with_columns(
            coverage=((pl.col("promoted") + pl.col("duplicates")) / (pl.col("failing_inputs") - pl.col("skipped")))
            .fill_nan(1.0)
            .round(4)
        )
        .sort("app")
    )
