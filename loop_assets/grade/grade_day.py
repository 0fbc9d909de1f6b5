"""GRADE for one day from the warehouse: what the step reads, and the step the asset and the bench call."""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import polars as pl

from loop_assets.config import LoopConfig
from loop_assets.grade.candidates import grade_candidates, with_difficulty
from loop_assets.grade.difficulty import candidates_for_difficulty, measure_difficulty
from loop_assets.llm_client import ChatClient
from loop_assets.warehouse import query, read_partitions


class EarlierDaysUngraded(RuntimeError):
    """Grading a day before the earlier days with failures would give another suite than grading in order."""

    def __init__(self, day: date, missing: list[date]):
        self.day, self.missing = day, missing
        super().__init__(
            f"cannot grade {day}: earlier days with failures are not graded yet ({', '.join(map(str, missing))}). "
            f"The suite of day D depends on every day before it; materialise graded_candidates for "
            f"{missing[0]}...{day} as one range (a backfill) first."
        )


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


def suite_as_it_is(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Every case promoted so far, of any day: what a new failing input is compared with."""
    return query(
        con,
        "SELECT case_id, app, text_hash, embedding FROM graded_candidates "
        "WHERE decision = 'promote' ORDER BY day, case_id",
    )


def isolated_before(con: duckdb.DuckDBPyConnection, day: date) -> pl.DataFrame:
    """Earlier candidates skipped as one-off: a similar failure now means the pattern recurs."""
    return query(
        con,
        "SELECT candidate_id, app, embedding FROM graded_candidates "
        "WHERE starts_with(decision, 'skip:isolated_') AND day < ? ORDER BY day, candidate_id",
        [day],
    )


def candidates_of(con: duckdb.DuckDBPyConnection, day: date) -> pl.DataFrame:
    """The day's distinct failing inputs (the first trace of each app and compared text) with what grading reads."""
    return query(
        con,
        """
        WITH copies AS (
            SELECT app, text_hash, count(*) AS copies FROM failure_clusters WHERE day = ? GROUP BY ALL
        )
        SELECT c.trace_id, c.day, c.app, c.cluster_id, c.cluster_size, copies.copies, c.is_representative,
               c.text_hash, c.embedding, c.severity, r.input_text,
               list_transform(s.failure_signals, x -> x.scorer) AS signals
        FROM failure_clusters c
        JOIN copies USING (app, text_hash)
        JOIN raw_traces r USING (trace_id, day)
        JOIN scored_traces s USING (trace_id, day)
        WHERE c.day = ? AND c.exact_dup_of IS NULL
        ORDER BY c.trace_id
        """,
        [day, day],
    )


def first_version_of_new_cases(con: duckdb.DuckDBPyConnection, day: date) -> date:
    """The as-of day a case promoted from `day` now joins: `day`, or after the latest day already graded,
    so that the suite as of a past day never changes."""
    latest = con.execute(
        "SELECT max(day) FROM partition_log WHERE asset = 'graded_candidates' AND day > ?", [day]
    ).fetchone()[0]
    return day if latest is None else latest + timedelta(days=1)


def difficulty_of(
    con: duckdb.DuckDBPyConnection,
    day: date,
    graded: pl.DataFrame,
    config: LoopConfig,
    client: ChatClient,
    run_id: str,
) -> pl.DataFrame:
    """Difficulty of the candidates `run_id` promoted, re-asked of the model endpoint (kept ones keep theirs)."""
    from loop_assets.evaluate.answer_checks import chat_judge
    from loop_assets.evaluate.eval_run import request_params

    fresh = graded.filter(pl.col("graded_run_id") == run_id)
    candidates = candidates_for_difficulty(
        fresh,
        read_partitions(con, "raw_traces", [day], trace_ids=fresh["trace_id"]),
        read_partitions(con, "scored_traces", [day], trace_ids=fresh["trace_id"]),
        config,
    )
    judge_client = ChatClient.from_config(config.judge)
    judge = chat_judge(judge_client, **request_params(config.judge)) if judge_client is not None else None
    try:
        return measure_difficulty(
            candidates,
            client,
            config.model_endpoint.retries_per_candidate,
            judge,
            params=request_params(config.model_endpoint),
        )
    finally:
        if judge_client is not None:
            judge_client.close()


def grade_day(
    con: duckdb.DuckDBPyConnection, day: date, config: LoopConfig, run_id: str, client: ChatClient | None = None
) -> pl.DataFrame:
    """`graded_candidates` of `day`: earlier decisions kept, new inputs graded against the suite as it is.

    Raises EarlierDaysUngraded when an earlier day with failures has not been graded. With a model
    endpoint (`client`), the difficulty of the day's new cases is measured and enters their weight.
    """
    missing = ungraded_earlier_days(con, day)
    if missing:
        raise EarlierDaysUngraded(day, missing)
    graded = grade_candidates(
        candidates_of(con, day),
        suite_as_it_is(con),
        config,
        run_id,
        isolated=isolated_before(con, day),
        decided=read_partitions(con, "graded_candidates", [day]),
        in_suite_from=first_version_of_new_cases(con, day),
    )
    if client is not None and (graded["graded_run_id"] == run_id).any():
        graded = with_difficulty(graded, difficulty_of(con, day, graded, config, client, run_id), config, run_id)
    return graded
