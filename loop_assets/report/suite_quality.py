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

from loop_assets.grade.checks import failure_coverage

COLUMNS = (
    "day",
    "app",
    "failing_traces",
    "failing_inputs",
    "promoted",
    "duplicates",
    "skipped",
    "uncovered",
    "coverage",
    "dedup_threshold",
    "duplicate_similarity_min",
    "duplicate_similarity_p10",
    "duplicate_similarity_p50",
    "duplicate_similarity_p90",
    "suite_size",
)
SHOWN = tuple(c for c in COLUMNS if c not in {"failing_traces", "duplicate_similarity_p10", "duplicate_similarity_p90"})
"""The columns a person reads first (summary, the eval_suite metadata); `suite_quality` has more."""


_TO_COVER = pl.col("failing_inputs") - pl.col("skipped")
COVERAGE = (
    pl.when(_TO_COVER > 0)
    .then((pl.col("promoted") + pl.col("duplicates")) / _TO_COVER)
    .otherwise(1.0)  # nothing to cover (no inputs, or every one skipped with a reason): nothing is missing
    .round(4)
)
"""coverage = (promoted + duplicates) / (inputs - skipped), over whatever rows it is computed on."""


def suite_quality(con: duckdb.DuckDBPyConnection, days: Iterable[date] | None = None) -> pl.DataFrame:
    """One row per day and app with failures: failing traces and distinct inputs; how many are a case
    (promoted), a duplicate of a case at or above the threshold, skipped with a reason, or uncovered (as
    `grade.checks.failure_coverage` decides); coverage = (promoted + duplicates) / (inputs - skipped); the
    duplicates' similarity to their case; and the app's suite size as of the day."""
    inputs = (
        failure_coverage(con, days)
        .group_by("day", "app", "text_hash")
        .agg(pl.len().alias("traces"), pl.col("decision", "covered_similarity", "dedup_threshold", "problem").first())
        .with_columns(
            ok=pl.col("problem").is_null(),
            kind=pl.col("decision").str.split(":").list.first(),
        )
    )
    duplicate = pl.col("ok") & (pl.col("kind") == "duplicate_of")
    similarity = pl.col("covered_similarity").filter(duplicate)
    per_day = inputs.group_by("day", "app").agg(
        failing_traces=pl.col("traces").sum().cast(pl.Int64),
        failing_inputs=pl.len().cast(pl.Int64),
        promoted=(pl.col("ok") & (pl.col("kind") == "promote")).sum().cast(pl.Int64),
        duplicates=duplicate.sum().cast(pl.Int64),
        skipped=(pl.col("ok") & (pl.col("kind") == "skip")).sum().cast(pl.Int64),
        uncovered=(~pl.col("ok")).sum().cast(pl.Int64),
        dedup_threshold=pl.col("dedup_threshold").max(),
        duplicate_similarity_min=similarity.min().round(4),
        duplicate_similarity_p10=similarity.quantile(0.1, "linear").round(4),
        duplicate_similarity_p50=similarity.quantile(0.5, "linear").round(4),
        duplicate_similarity_p90=similarity.quantile(0.9, "linear").round(4),
    )
    cases = con.execute(
        "SELECT app, coalesce(in_suite_from, day) AS since FROM eval_suite WHERE status = 'active'"
    ).pl()
    sizes = (
        per_day.select("day", "app")
        .join(cases, on="app")
        .filter(pl.col("since") <= pl.col("day"))
        .group_by("day", "app")
        .agg(suite_size=pl.len().cast(pl.Int64))
    )
    return (
        per_day.join(sizes, on=["day", "app"], how="left")
        .with_columns(
            pl.col("suite_size").fill_null(0),
            coverage=COVERAGE,
        )
        .select(COLUMNS)
        .sort("day", "app")
    )


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
        .with_columns(coverage=COVERAGE)
        .sort("app")
    )


def quality_totals(quality: pl.DataFrame) -> dict[str, float | int]:
    """`suite_quality` rows summed over every day and app: failing inputs, uncovered, coverage."""
    summed = quality.select(pl.col("failing_inputs", "promoted", "duplicates", "skipped", "uncovered").sum())
    row = summed.with_columns(coverage=COVERAGE).row(0, named=True)
    return {"failing_inputs": row["failing_inputs"], "uncovered_inputs": row["uncovered"], "coverage": row["coverage"]}
