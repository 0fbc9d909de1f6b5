"""GRADE: representatives to `graded_candidates`, each day against the suite of the days before it."""

from datetime import date

import dagster as dg
import duckdb
import polars as pl

from loop_assets.defs.metadata import markdown_preview, table_metadata
from loop_assets.defs.partitions import DUCKDB_POOL, daily_partitions, partition_days, single_run
from loop_assets.defs.resources import LoopSettings, Warehouse
from loop_assets.grading import grade_candidates
from loop_assets.tables import empty
from loop_assets.warehouse import ensure_tables, query, replace_partitions

previous_day = dg.TimeWindowPartitionMapping(start_offset=-1, end_offset=-1)


def ungraded_earlier_days(con: duckdb.DuckDBPyConnection, day: date) -> list[date]:
    """Earlier days that have failures but no graded partition: grading `day` now would miss their cases."""
    rows = con.execute(
        """
        SELECT DISTINCT day FROM scored_traces WHERE is_failure AND day < ?
        EXCEPT SELECT day FROM partition_log WHERE asset = 'graded_candidates'
        ORDER BY day
        """,
        [day],
    ).fetchall()
    return [r[0] for r in rows]


def suite_before(con: duckdb.DuckDBPyConnection, day: date) -> pl.DataFrame:
    """Cases promoted from days before `day`: the suite a candidate of `day` is compared with."""
    return query(
        con,
        "SELECT case_id, app, text_hash, embedding FROM graded_candidates "
        "WHERE decision = 'promote' AND day < ? ORDER BY day, case_id",
        [day],
    )


def isolated_before(con: duckdb.DuckDBPyConnection, day: date) -> pl.DataFrame:
    """Earlier candidates skipped as one-off: a similar failure now means the pattern recurs."""
    return query(
        con,
        "SELECT candidate_id, app, embedding FROM graded_candidates "
        "WHERE starts_with(decision, 'skip:isolated_') AND day < ? ORDER BY day, candidate_id",
        [day],
    )


def representatives_of(con: duckdb.DuckDBPyConnection, day: date) -> pl.DataFrame:
    return query(
        con,
        """
        SELECT c.trace_id, c.day, c.app, c.cluster_id, c.cluster_size, c.text_hash, c.embedding, c.severity,
               r.input_text, list_transform(s.failure_signals, x -> x.scorer) AS signals
        FROM failure_clusters c
        JOIN raw_traces r USING (trace_id, day)
        JOIN scored_traces s USING (trace_id, day)
        WHERE c.day = ? AND c.is_representative
        ORDER BY c.trace_id
        """,
        [day],
    )


@dg.asset(
    deps=["failure_clusters", dg.AssetDep("graded_candidates", partition_mapping=previous_day)],
    description="One row per cluster representative: nearest earlier suite case and its similarity, the "
    "dedup threshold in force, novelty, severity, frequency, difficulty, weight, and the decision "
    "(promote, duplicate_of:<case_id>, skip:<reason>). Days are graded in order: each day depends on the "
    "day before.",
    kinds={"duckdb", "polars"},
    group_name="grade",
    metadata=table_metadata("graded_candidates"),
    partitions_def=daily_partitions,
    backfill_policy=single_run,
    pool=DUCKDB_POOL,
)
def graded_candidates(context: dg.AssetExecutionContext, settings: LoopSettings, warehouse: Warehouse):
    config = settings.config()
    graded_days: list[pl.DataFrame] = [empty("graded_candidates")]
    thresholds: list[float] = []
    with warehouse.get_connection() as con:
        ensure_tables(con)
        for day in partition_days(context):
            missing = ungraded_earlier_days(con, day)
            if missing:
                raise dg.Failure(
                    description=f"cannot grade {day}: earlier days with failures are not graded yet "
                    f"({', '.join(map(str, missing))}). The suite of day D depends on every day before it; "
                    f"materialise graded_candidates for {missing[0]}...{day} as one range (a backfill) first.",
                    metadata={"ungraded_days": [str(d) for d in missing]},
                )
            suite = suite_before(con, day)
            graded = grade_candidates(
                representatives_of(con, day), suite, config, context.run_id, isolated=isolated_before(con, day)
            )
            replace_partitions(con, "graded_candidates", [day], {"graded_candidates": graded}, context.run_id)
            graded_days.append(graded)
            thresholds.append(graded["dedup_threshold"][0] if graded.height else float("nan"))
            context.log.info(f"{day}: {graded.height} candidates graded against {suite.height} earlier cases")
    graded = pl.concat(graded_days)
    decisions = graded["decision"].str.split(":").list.first()
    promoted = int((decisions == "promote").sum())
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": graded.height,
            "candidates": graded.height,
            "promoted": promoted,
            "duplicates": int((decisions == "duplicate_of").sum()),
            "skipped": int((decisions == "skip").sum()),
            "novel_rate": round(promoted / graded.height, 4) if graded.height else 0.0,
            "dedup_threshold": thresholds[-1] if thresholds and thresholds[-1] == thresholds[-1] else None,
            "preview": markdown_preview(
                graded.sort("weight", descending=True).select(
                    "day", "app", "cluster_id", "frequency", "nearest_similarity", "weight", "decision"
                )
            ),
        }
    )
