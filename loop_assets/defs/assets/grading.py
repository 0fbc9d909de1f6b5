"""GRADE: representatives to `graded_candidates`, each day against the suite of the days before it."""

import contextlib
from datetime import date, timedelta

import dagster as dg
import duckdb
import polars as pl

from loop_assets.case_grading import chat_judge
from loop_assets.config import LoopConfig
from loop_assets.defs.metadata import markdown_preview, table_metadata
from loop_assets.defs.partitions import DUCKDB_POOL, daily_partitions, partition_days, single_run
from loop_assets.defs.resources import LoopSettings, Warehouse
from loop_assets.difficulty import candidates_for_difficulty, measure_difficulty
from loop_assets.eval_run import request_params
from loop_assets.grading import grade_candidates
from loop_assets.llm_client import ChatClient
from loop_assets.step_checks import ungraded_representatives
from loop_assets.tables import empty
from loop_assets.warehouse import ensure_tables, query, read_partitions, replace_partitions

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


EVERY_REPRESENTATIVE_GRADED = "every_representative_graded"


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


def difficulty_of(
    con: duckdb.DuckDBPyConnection, day: date, graded: pl.DataFrame, config: LoopConfig, client: ChatClient
) -> pl.DataFrame:
    """Difficulty of the day's promoted candidates; a candidate an earlier run got answers for keeps its
    value, so re-running a day does not re-ask the endpoint (and does not change the suite by chance)."""
    known = query(
        con,
        "SELECT candidate_id, difficulty, difficulty_tries, difficulty_source FROM graded_candidates "
        "WHERE day = ? AND difficulty_tries > 0",
        [day],
    )
    candidates = candidates_for_difficulty(
        graded.join(known.select("candidate_id"), on="candidate_id", how="anti"),
        read_partitions(con, "raw_traces", [day], trace_ids=graded["trace_id"]),
        read_partitions(con, "scored_traces", [day], trace_ids=graded["trace_id"]),
        config,
    )
    judge_client = ChatClient.from_config(config.judge)
    judge = chat_judge(judge_client, **request_params(config.judge)) if judge_client is not None else None
    try:
        measured = measure_difficulty(
            candidates,
            client,
            config.model_endpoint.retries_per_candidate,
            judge,
            params=request_params(config.model_endpoint),
        )
    finally:
        if judge_client is not None:
            judge_client.close()
    columns = ["candidate_id", "difficulty", "difficulty_tries", "difficulty_source"]
    return pl.concat([known.select(columns), measured.select(columns)], how="vertical_relaxed")


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
    check_specs=[
        dg.AssetCheckSpec(
            EVERY_REPRESENTATIVE_GRADED,
            asset="graded_candidates",
            description="Every representative has a graded row with a known decision and a weight in [0, 1].",
        ),
    ],
)
def graded_candidates(context: dg.AssetExecutionContext, settings: LoopSettings, warehouse: Warehouse):
    waiting = earlier_grading_in_progress(context.instance, context.run_id, partition_days(context)[0])
    if waiting:  # give the pool back and retry: those runs grade their earlier days first
        context.log.info(f"waiting for other runs to grade earlier days first: {waiting}")
        raise dg.RetryRequested(max_retries=GRADING_WAIT_RETRIES, seconds_to_wait=GRADING_WAIT_SECONDS)
    config = settings.config()
    graded_days: list[pl.DataFrame] = [empty("graded_candidates")]
    thresholds: list[float] = []
    client = ChatClient.from_config(config.model_endpoint)
    context.log.info(
        "difficulty: no model endpoint configured, stored as unknown"
        if client is None
        else f"difficulty: {config.model_endpoint.retries_per_candidate} re-tries per new case against {client.model}"
    )
    with contextlib.ExitStack() as stack, warehouse.get_connection() as con:
        if client is not None:
            stack.callback(client.close)
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
            representatives, isolated = representatives_of(con, day), isolated_before(con, day)
            graded = grade_candidates(representatives, suite, config, context.run_id, isolated=isolated)
            if client is not None:
                difficulty = difficulty_of(con, day, graded, config, client)
                graded = grade_candidates(
                    representatives, suite, config, context.run_id, isolated=isolated, difficulty=difficulty
                )
            replace_partitions(con, "graded_candidates", [day], {"graded_candidates": graded}, context.run_id)
            graded_days.append(graded)
            thresholds.append(graded["dedup_threshold"][0] if graded.height else float("nan"))
            context.log.info(f"{day}: {graded.height} candidates graded against {suite.height} earlier cases")
        problems = ungraded_representatives(con, partition_days(context))
    graded = pl.concat(graded_days)
    decisions = graded["decision"].str.split(":").list.first()
    promoted = int((decisions == "promote").sum())
    return dg.MaterializeResult(
        check_results=[
            dg.AssetCheckResult(
                check_name=EVERY_REPRESENTATIVE_GRADED,
                passed=problems.height == 0,
                metadata={"problems": markdown_preview(problems.with_columns(pl.col("day").cast(pl.String)))},
            )
        ],
        metadata={
            "dagster/row_count": graded.height,
            "candidates": graded.height,
            "promoted": promoted,
            "duplicates": int((decisions == "duplicate_of").sum()),
            "skipped": int((decisions == "skip").sum()),
            "novel_rate": round(promoted / graded.height, 4) if graded.height else 0.0,
            "dedup_threshold": thresholds[-1] if thresholds and thresholds[-1] == thresholds[-1] else None,
            "difficulty_measured": int(graded["difficulty"].is_not_null().sum()),
            "difficulty_mean": round(float(graded["difficulty"].mean()), 4)
            if graded["difficulty"].is_not_null().any()
            else None,
            "preview": markdown_preview(
                graded.sort("weight", descending=True).select(
                    "day", "app", "cluster_id", "frequency", "nearest_similarity", "weight", "decision"
                )
            ),
        },
    )
