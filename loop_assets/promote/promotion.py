"""PROMOTE: graded candidates to eval cases that carry their whole provenance as data.

A case records how a later run decides pass or fail (`grading`), built from what failed: the app's
JSON schema, a latency budget, a finish-reason or non-empty check, and a rubric for a judge with the
user's corrected answer as reference when the feedback gave one.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import duckdb
import polars as pl

from loop_assets.case_rule import KNOWN_BAD_MAX_SIMILARITY, make_rule
from loop_assets.config import LoopConfig
from loop_assets.evaluate.answer_checks import known_bad_similarity
from loop_assets.redaction import redact_frame
from loop_assets.tables import conform
from loop_assets.warehouse import query, read_partitions

SOURCE = "production_failure"


def grading_rule(
    app: str, signals: list[dict], expected_output: str | None, config: LoopConfig, bad_output: str | None = None
) -> str:
    """The checks a replay of this case must all pass (JSON).

    `bad_output` is the failing answer (redacted): when a person (feedback) or the judge found its
    content bad, it must not come back exactly or nearly (`not_known_bad`, see case_grading), which an
    eval run decides without a judge. After a latency, error, truncation or schema failure the text
    itself may be fine, so it is not held against a replay.
    """
    fired = {s["scorer"]: s for s in signals}
    app_config = config.app(app)
    checks: list[dict] = [{"type": "no_error"}, {"type": "non_empty"}]
    if "truncated_output" in fired:
        checks.append({"type": "finish_reason", "not": "length"})
    if app_config.output_schema is not None:
        checks.append({"type": "json_schema", "schema": app_config.output_schema})
    if "latency" in fired:
        checks.append({"type": "latency", "max_ms": float(fired["latency"]["threshold"].split()[-1])})
    content_bad = "feedback" in fired or "judge" in fired
    if content_bad and bad_output is not None and bad_output.strip():
        corrected = expected_output is not None and known_bad_similarity(expected_output, bad_output) >= 1.0
        if not corrected:
            checks.append({"type": "not_known_bad", "output": bad_output, "max_similarity": KNOWN_BAD_MAX_SIMILARITY})
    if "feedback" in fired or expected_output is not None or app_config.output_schema is None:
        rubric = {"type": "rubric", "rubric": app_config.rubric}
        if expected_output is not None:
            rubric["reference"] = expected_output
        checks.append(rubric)
    return make_rule(checks)


def label(app: str, signals: list[str], input_text: str) -> str:
    text = " ".join((input_text or "").split())
    return f"{app} · {'+'.join(signals) or 'failure'} · {text[:70]}{'…' if len(text) > 70 else ''}"


def promote(
    graded: pl.DataFrame,
    raw: pl.DataFrame,
    scored: pl.DataFrame,
    existing: pl.DataFrame,
    config: LoopConfig,
    run_id: str,
    partition_key: str,
    embedding_model: str,
) -> pl.DataFrame:
    """The day's eval_suite partition: `existing` as it is, plus a case for each new `promote` decision.

    The suite is append-only: a case the partition already holds is kept exactly as it was written (a
    re-run, a later run or late data never deletes or rewrites one), so a suite version read before a
    run is still there after it.
    """
    existing = conform("eval_suite", existing)
    chosen = graded.filter(pl.col("decision") == "promote").join(existing.select("case_id"), on="case_id", how="anti")
    if chosen.height == 0:
        return existing
    now = datetime.now(UTC)
    trace_cols = [
        "trace_id",
        "day",
        "span_id",
        "ts",
        "input_messages",
        "input_text",
        "output_text",
        "corrected_output",
        "source_file",
        "source_line",
        "source_format",
    ]
    frame = (
        chosen.select(
            "case_id",
            "candidate_id",
            "trace_id",
            "day",
            "app",
            "cluster_id",
            "nearest_case_id",
            "nearest_similarity",
            "dedup_threshold",
            "text_hash",
            "embedding",
            "weight",
            pl.col("frequency").alias("cluster_size"),
            "severity",
            "in_suite_from",
        )
        .join(raw.select(trace_cols), on=["trace_id", "day"], how="left")
        .join(scored.select("trace_id", "day", "failure_signals"), on=["trace_id", "day"], how="left")
    )
    # PII and secrets never reach the suite: the messages, the input text, the answers (and so the grading
    # reference, the known-bad answer and the label built from them) and the signal values are redacted first.
    columns = ["input_messages", "input_text", "output_text", "corrected_output", "failure_signals"]
    frame = redact_frame(frame, columns, config.redaction)
    rows = []
    for row in frame.iter_rows(named=True):
        signals = row["failure_signals"] or []
        rows.append(
            {
                **row,
                "expected_output": row["corrected_output"],
                "grading": grading_rule(
                    row["app"], signals, row["corrected_output"], config, bad_output=row["output_text"]
                ),
                "label": label(row["app"], [s["scorer"] for s in signals], row["input_text"]),
                "status": "active",
                "source": SOURCE,
                "raw_partition": row["day"],
                "embedding_model": embedding_model,
                "promoted_run_id": run_id,
                "promoted_partition": partition_key,
                "first_seen_at": row["ts"],
                "promoted_at": now,
                "in_suite_from": row["in_suite_from"] or row["day"],
                "last_run_id": run_id,
            }
        )
    out = pl.DataFrame(rows, infer_schema_length=None)
    new = conform("eval_suite", out.with_columns(pl.col("embedding").cast(pl.List(pl.Float32))))
    return pl.concat([existing, new.sort("case_id")])


def promote_day(
    con: duckdb.DuckDBPyConnection, day: date, config: LoopConfig, run_id: str, embedding_model: str
) -> pl.DataFrame:
    """`promote` for one day from the warehouse: only the promoted candidates' traces are read."""
    graded = read_partitions(con, "graded_candidates", [day])
    chosen = graded.filter(pl.col("decision") == "promote")["trace_id"]
    return promote(
        graded=graded,
        raw=read_partitions(con, "raw_traces", [day], trace_ids=chosen),
        scored=read_partitions(con, "scored_traces", [day], trace_ids=chosen),
        existing=read_partitions(con, "eval_suite", [day]),
        config=config,
        run_id=run_id,
        partition_key=str(day),
        embedding_model=embedding_model,
    )


def whole_suite(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Every case of every day, active or not: what the suite's invariants are checked on."""
    return query(con, "SELECT * FROM eval_suite ORDER BY day, case_id")
