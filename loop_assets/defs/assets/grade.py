"""GRADE: each day's distinct failing inputs to `graded_candidates`, covered by a case or skipped."""

import contextlib
from datetime import date, timedelta

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
from loop_assets.defs.resources import LlmEndpoints, LoopSettings, Warehouse
from loop_assets.grade.checks import uncovered_failures
from loop_assets.grade.grade_day import EarlierDaysUngraded, grade_day
from loop_assets.tables import empty
from loop_assets.warehouse import ensure_tables, replace_partitions

previous_day = dg.TimeWindowPartitionMapping(start_offset=-1, end_offset=-1)
GRADED = dg.AssetKey("graded_candidates")
GRADING_WAIT_SECONDS = 3
GRADING_WAIT_RETRIES = 1200  # an hour; only while another live run still has an earlier day to grade
_LIVE = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
         dg.DagsterRunStatus.STARTED]  # fmt: skip


def earlier_grading_in_progress(instance: dg.DagsterInstance, run_id: str, first_day: date) -> dict[str, list[date]]:
    """Other live runs that will grade a day before `first_day` and have not finished grading: run id -> days.

    Two runs launched together for days D and D+1 (two sensor ticks, a sensor run and the schedule) share
    the pool one step at a time in any order; D+1 must not be graded before D, or it would miss D's cases
    (and before D is scored it cannot even tell). Waiting only for days before this run's first day keeps
    two runs from waiting for each other.
    """
    waiting: dict[str, list[date]] = {}
    for record in instance.get_run_records(filters=dg.RunsFilter(statuses=_LIVE)):
        run = record.dagster_run
        if run.run_id == run_id or (run.asset_selection is not None and GRADED not in run.asset_selection):
            continue
        tags = run.tags
        start = tags.get("dagster/asset_partition_range_start") or tags.get("dagster/partition")
        end = tags.get("dagster/asset_partition_range_end") or tags.get("dagster/partition")
        try:
            first, last = date.fromisoformat(start or ""), date.fromisoformat(end or "")
        except ValueError:
            continue
        days = [first + timedelta(days=i) for i in range((min(last, first_day - timedelta(days=1)) - first).days + 1)]
        if not days:
            continue
        stats = instance.get_run_step_stats(run.run_id, step_keys=[GRADED.to_python_identifier()])
        if not any(s.status is not None and s.status.value == "SUCCESS" for s in stats):
            waiting[run.run_id] = days
    return waiting


EVERY_FAILURE_COVERED = "every_failure_covered"


@dg.asset(
    deps=["failure_clusters", dg.AssetDep("graded_candidates", partition_mapping=previous_day)],
    description="One row per distinct failing input (app, compared text) of the day: the case that covers it "
    "(itself when promoted) and its similarity, the dedup threshold in force (over the app's own suite size), "
    "novelty, severity, frequency, difficulty, weight, and the decision (promote, duplicate_of:<case_id>, "
    "skip:<reason>). Decisions are final: a re-run keeps them and grades only new inputs, against the suite as "
    "it is. Days are graded in order: each day depends on the day before.",
    kinds={"duckdb", "polars"},
    group_name="grade",
    metadata=table_metadata("graded_candidates"),
    partitions_def=daily_partitions,
    backfill_policy=single_run,
    pool=DUCKDB_POOL,
    check_specs=[
        dg.AssetCheckSpec(
            EVERY_FAILURE_COVERED,
            asset="graded_candidates",
            description="Every failing trace's input is promoted, a duplicate of a case at or above the threshold "
            "its decision used, or skipped with a reason; every weight is in [0, 1].",
        ),
    ],
)
def graded_candidates(
    context: dg.AssetExecutionContext, settings: LoopSettings, warehouse: Warehouse, endpoints: LlmEndpoints
):
    days = partition_days(context)
    waiting = earlier_grading_in_progress(context.instance, context.run_id, days[0])
    if waiting:  # give the pool back and retry: those runs grade their earlier days first
        context.log.info(f"waiting for other runs to grade earlier days first: {waiting}")
        raise dg.RetryRequested(max_retries=GRADING_WAIT_RETRIES, seconds_to_wait=GRADING_WAIT_SECONDS)
    config = endpoints.applied(settings.config())
    graded_days: list[pl.DataFrame] = [empty("graded_candidates")]
    graded_now = 0
    client = endpoints.model_client(config)
    context.log.info(
        "difficulty: no model endpoint configured, stored as unknown"
        if client is None
        else f"difficulty: {config.model_endpoint.retries_per_candidate} re-tries per new case against {client.model}"
    )
    with contextlib.ExitStack() as stack, warehouse.get_connection() as con:
        if client is not None:
            stack.callback(client.close)
        ensure_tables(con)
        for day in days:
            try:
                graded = grade_day(con, day, config, context.run_id, client)
            except EarlierDaysUngraded as exc:
                raise dg.Failure(
                    description=str(exc), metadata={"ungraded_days": [str(d) for d in exc.missing]}
                ) from None
            replace_partitions(con, "graded_candidates", [day], {"graded_candidates": graded}, context.run_id)
            graded_days.append(graded)
            new = _graded_now(graded, context.run_id)
            graded_now += new
            context.log.info(f"progress: {day}: {graded.height} distinct failing inputs, {new} graded now")
        problems = uncovered_failures(con, days)
    graded = pl.concat(graded_days)
    add_day_metadata(
        context,
        "graded_candidates",
        {day: _graded_figures(graded.filter(pl.col("day") == day), context.run_id) for day in days},
    )
    return dg.MaterializeResult(
        check_results=[problems_check(EVERY_FAILURE_COVERED, problems, "uncovered")],
        metadata=run_metadata(days, graded_now=graded_now),
    )


def _graded_figures(graded: pl.DataFrame, run_id: str) -> dict[str, object]:
    """A day's figures of graded_candidates: its failing inputs by decision, thresholds and difficulty."""
    decisions = graded["decision"].str.split(":").list.first()
    promoted = int((decisions == "promote").sum())
    measured = graded["difficulty"].drop_nulls()
    return {
        "dagster/row_count": graded.height,
        "failing_inputs": graded.height,
        "graded_now": _graded_now(graded, run_id),
        "promoted": promoted,
        "duplicates": int((decisions == "duplicate_of").sum()),
        "skipped": int((decisions == "skip").sum()),
        "novel_rate": round(promoted / graded.height, 4) if graded.height else 0.0,
        "dedup_thresholds": dg.MetadataValue.json(
            graded.group_by("app").agg(pl.col("dedup_threshold").max()).sort("app").to_dicts()
        ),
        "difficulty_measured": measured.len(),
        "difficulty_mean": round(float(measured.mean()), 4) if measured.len() else None,
        "preview": markdown_preview(
            graded.sort("weight", descending=True).select(
                "day", "app", "cluster_id", "frequency", "covered_similarity", "weight", "decision"
            )
        ),
    }


def _graded_now(graded: pl.DataFrame, run_id: str) -> int:
    """Inputs this run graded (a re-run keeps earlier decisions and grades only new inputs)."""
    return int((graded["graded_run_id"] == run_id).sum())
