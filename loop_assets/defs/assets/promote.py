"""PROMOTE: promoted candidates to `eval_suite`, with provenance, and the suite's invariants as checks."""

from datetime import date

import dagster as dg
import polars as pl

from loop_assets.defs.metadata import (
    add_day_metadata,
    markdown_preview,
    problems_check,
    run_metadata,
    table_metadata,
)
from loop_assets.defs.partitions import DUCKDB_POOL, daily_partitions, partition_days, single_run
from loop_assets.defs.resources import Embedder, LoopSettings, Warehouse
from loop_assets.promote.promotion import promote_day, whole_suite
from loop_assets.promote.suite_checks import incomplete_provenance, near_duplicate_pairs, repeated_text_hashes
from loop_assets.report.suite_quality import SHOWN, quality_totals, suite_quality
from loop_assets.tables import empty
from loop_assets.warehouse import replace_partitions

NO_NEAR_DUPLICATES = "no_near_duplicate_cases"
COMPLETE_PROVENANCE = "complete_provenance"
UNIQUE_TEXT = "unique_case_text"


@dg.asset(
    deps=["graded_candidates"],
    description="The eval suite: one row per promoted case with its input, expected output, grading rule, "
    "weight, label, status and full provenance (trace, file:line, signals, cluster, threshold, run). "
    "Append-only: a case once written is never deleted or rewritten. Partitioned by the day of the trace the "
    "case was promoted from; the suite as of day D is every case whose in_suite_from is <= D (a case late "
    "data adds joins the version after the latest graded day, so a past version never changes).",
    kinds={"duckdb", "polars"},
    group_name="promote",
    metadata=table_metadata("eval_suite"),
    partitions_def=daily_partitions,
    backfill_policy=single_run,
    pool=DUCKDB_POOL,
    check_specs=[
        dg.AssetCheckSpec(
            NO_NEAR_DUPLICATES,
            asset="eval_suite",
            description="No two active cases of one app at or above the threshold they were promoted under.",
        ),
        dg.AssetCheckSpec(
            COMPLETE_PROVENANCE,
            asset="eval_suite",
            description="Every case carries trace, file:line, signals, cluster, threshold, run and times.",
        ),
        dg.AssetCheckSpec(
            UNIQUE_TEXT,
            asset="eval_suite",
            description="No exact input text (app, text hash) appears in two active cases.",
        ),
    ],
)
def eval_suite(context: dg.AssetExecutionContext, settings: LoopSettings, warehouse: Warehouse, embedder: Embedder):
    config = settings.config()
    days = partition_days(context)
    written: list[pl.DataFrame] = [empty("eval_suite")]
    promoted_now = 0
    with warehouse.get_connection() as con:
        for day in days:
            cases = promote_day(con, day, config, context.run_id, embedder.model_id(config))
            replace_partitions(con, "eval_suite", [day], {"eval_suite": cases}, context.run_id)
            written.append(cases)
            new = int((cases["promoted_run_id"] == context.run_id).sum())
            promoted_now += new
            context.log.info(f"progress: {day}: {new} case(s) promoted now, {cases.height} in the day's partition")
        suite = whole_suite(con)
        quality = suite_quality(con, days)
    promoted = pl.concat(written)
    add_day_metadata(
        context,
        "eval_suite",
        {
            day: _day_figures(promoted.filter(pl.col("day") == day), suite, quality.filter(pl.col("day") == day), day)
            for day in days
        },
    )
    pairs, gaps, repeats = near_duplicate_pairs(suite), incomplete_provenance(suite), repeated_text_hashes(suite)
    yield dg.MaterializeResult(
        metadata={
            **run_metadata(days, promoted=promoted_now),
            **current_suite_metadata(suite),
        }
    )
    yield problems_check(NO_NEAR_DUPLICATES, pairs, "pairs")
    yield problems_check(COMPLETE_PROVENANCE, gaps, "incomplete_cases")
    yield problems_check(UNIQUE_TEXT, repeats, "repeated")


def _day_figures(cases: pl.DataFrame, suite: pl.DataFrame, quality: pl.DataFrame, day: date) -> dict[str, object]:
    """A day's own figures: the cases promoted from its traces, the suite at the end of the day, the
    coverage of its failing inputs."""
    as_of = suite.filter(pl.coalesce("in_suite_from", "day") <= day, pl.col("status") == "active")
    return {
        "dagster/row_count": cases.height,
        "promoted": cases.height,
        "suite_size": as_of.height,
        "suite_apps": dg.MetadataValue.json(as_of.group_by("app").len().sort("app").to_dicts()),
        **quality_totals(quality),
        "suite_quality": markdown_preview(quality.with_columns(pl.col("day").cast(pl.String)).select(SHOWN), limit=50),
    }


LINEAGE_ROWS = 100


def current_suite_metadata(suite: pl.DataFrame) -> dict[str, object]:
    """The suite as it is now, on whichever day's materialisation is the latest: its size per app, the newest
    cases and a lineage page (case to trace, file:line, signals, family and the run that promoted it)."""
    active = suite.filter(pl.col("status") == "active").sort(["promoted_at", "case_id"], descending=True)
    lineage = active.head(LINEAGE_ROWS).select(
        "case_id",
        "app",
        pl.format("{}:{}", "source_file", "source_line").alias("file:line"),
        pl.col("failure_signals").list.eval(pl.element().struct.field("scorer")).list.join("+").alias("signals"),
        "cluster_id",
        pl.col("day").cast(pl.String),
        pl.format("[{}](/runs/{})", pl.col("promoted_run_id").str.slice(0, 8), "promoted_run_id").alias("run"),
    )
    shown = min(LINEAGE_ROWS, active.height)
    title = (
        f"**The current suite, newest first: {shown} of {active.height} active cases.** Every case: "
        "`eval-loop lineage CASE_ID`, or the table `eval_suite`.\n\n"
    )
    return {
        "suite_now_size": active.height,
        "suite_now_by_app": dg.MetadataValue.json(active.group_by("app").len().sort("app").to_dicts()),
        "newest_cases": markdown_preview(
            active.select(
                "case_id",
                "app",
                pl.col("promoted_at").dt.strftime("%Y-%m-%d %H:%M:%S").alias("promoted_at"),
                "label",
                "weight",
            )
        ),
        "lineage": dg.MetadataValue.md(title + markdown_preview(lineage, limit=LINEAGE_ROWS, width=80).value),
    }
