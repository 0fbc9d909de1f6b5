"""The table contract: one Polars schema per warehouse table, with a description per column.

The schemas are the single source of truth: DuckDB tables are created from them, the core builds
its frames against them, and the Dagster layer turns them into `dagster/column_schema` metadata.
"""

from __future__ import annotations

import polars as pl

UTC_TS = pl.Datetime("us", "UTC")

SIGNAL = pl.Struct({"scorer": pl.String, "version": pl.String, "value": pl.String, "threshold": pl.String})

# Every table: {column: (dtype, description)}
RAW_TRACES: dict[str, tuple[pl.DataType, str]] = {
    "trace_id": (pl.String, "The log's own id, else a stable hash of the record"),
    "span_id": (pl.String, "Span or request id inside a multi-span trace, when the format has one"),
    "ts": (UTC_TS, "Request start, UTC"),
    "day": (pl.Date, "Partition: UTC day of ts"),
    "app": (pl.String, "Application that made the call"),
    "model": (pl.String, "Model that answered"),
    "input_messages": (pl.String, "Request messages as JSON, OpenAI chat shape"),
    "input_text": (pl.String, "Last user turn, with the turns before it when it is too short to stand alone"),
    "output_text": (pl.String, "Assistant answer text ('' when empty, null when the call errored)"),
    "latency_ms": (pl.Float64, "End-to-end latency in milliseconds"),
    "finish_reason": (pl.String, "Provider finish reason (stop, length, tool_calls, ...)"),
    "error": (pl.String, "Provider or application error message"),
    "feedback": (pl.String, "User feedback as logged (JSON)"),
    "feedback_thumbs": (pl.String, "Normalised thumbs: up, down or null"),
    "feedback_rating": (pl.Float64, "Numeric rating as logged"),
    "corrected_output": (pl.String, "A corrected answer given with the feedback, if any"),
    "metadata": (pl.String, "Everything else the record carried (JSON)"),
    "record_hash": (pl.String, "sha256 of the record's canonical JSON, to tell redeliveries from conflicts"),
    "source_format": (pl.String, "Parser that read the record"),
    "source_file": (pl.String, "Path of the trace file, relative to the incoming folder"),
    "source_line": (pl.Int64, "1-based line of the record in the source file"),
    "ingest_run_id": (pl.String, "Dagster run that ingested the record"),
}

QUARANTINED_RECORDS: dict[str, tuple[pl.DataType, str]] = {
    "source_file": (pl.String, "Path of the trace file, relative to the incoming folder"),
    "source_line": (pl.Int64, "1-based line (0 for a problem of the whole file)"),
    "raw": (pl.String, "The original bytes as text (invalid UTF-8 backslash-escaped)"),
    "raw_truncated": (pl.Boolean, "True when raw holds only the first bytes of the record"),
    "raw_bytes": (pl.Int64, "Size of the original record in bytes"),
    "reason_code": (pl.String, "Machine-readable kind of problem"),
    "reason": (pl.String, "What is wrong, for a person"),
    "day": (pl.Date, "UTC day of the record's timestamp, when it could be read"),
    "partition_day": (
        pl.Date,
        "Partition the row is stored in (day, else the day of its neighbours in the file; null when none has one)",
    ),
    "source_format": (pl.String, "Parser that tried to read the record"),
    "ingest_run_id": (pl.String, "Dagster run that read the record"),
}

INGEST_MANIFEST: dict[str, tuple[pl.DataType, str]] = {
    "source_file": (pl.String, "Path of the trace file, relative to the incoming folder"),
    "partition_day": (pl.Date, "Partition the records below were routed to"),
    "records_routed": (pl.Int64, "Records of this file routed to this partition (traces + quarantined)"),
    "file_records": (pl.Int64, "Records read from the whole file (lines, plus one per whole-file problem)"),
    "file_size": (pl.Int64, "File size in bytes when read"),
    "file_mtime": (UTC_TS, "File modification time when read"),
    "ingest_run_id": (pl.String, "Dagster run that read the file"),
}

INGESTED_FILES: dict[str, tuple[pl.DataType, str]] = {
    "source_file": (pl.String, "Path of the trace file, relative to the incoming folder (key)"),
    "file_size": (pl.Int64, "File size in bytes when last read"),
    "file_mtime": (UTC_TS, "File modification time when last read"),
    "days": (pl.List(pl.Date), "Every partition day the file's records were routed to (empty: none has a day)"),
    "fingerprint": (pl.String, "Ingest and redaction settings and parser code it was read with (ingest_plan)"),
    "ingest_run_id": (pl.String, "Dagster run that last read the file"),
    "read_order": (pl.Int64, "Order in which files were first read: of two copies of a record, the first read is kept"),
}

TEXT_CACHE: dict[str, tuple[pl.DataType, str]] = {
    "settings": (pl.String, "Key of the redaction settings and cut length the text was made with"),
    "input_hash": (pl.String, "sha256 of the trace's input_text (the original is not stored here)"),
    "text": (pl.String, "The compared text: redacted, normalised, cut (failure_clusters.text)"),
    "created_at": (UTC_TS, "When it was made"),
}

SCORED_TRACES: dict[str, tuple[pl.DataType, str]] = {
    "trace_id": (pl.String, "Trace id (joins raw_traces on trace_id and day)"),
    "day": (pl.Date, "Partition: UTC day of the trace"),
    "app": (pl.String, "Application"),
    "latency_failed": (pl.Boolean, "latency scorer: slower than the app's budget (null: no latency logged)"),
    "json_schema_failed": (pl.Boolean, "json_schema scorer: output breaks the app's schema (null: no schema)"),
    "feedback_failed": (pl.Boolean, "feedback scorer: thumbs down or low rating (null: no feedback)"),
    "provider_error_failed": (pl.Boolean, "provider_error scorer: the call returned an error"),
    "empty_output_failed": (pl.Boolean, "empty_output scorer: no answer text without an error"),
    "truncated_output_failed": (pl.Boolean, "truncated_output scorer: finish_reason is length"),
    "judge_failed": (pl.Boolean, "judge scorer: judge score at or below judge.max_failing_score (null: not judged)"),
    "judge_score": (pl.Float64, "LLM judge score, 1 (bad) to 5 (good); null when not judged or missing"),
    "judge_status": (pl.String, "scored, cached, missing, not_sampled, not_applicable or off"),
    "judge_reason": (pl.String, "The judge's reason, or why there is no score"),
    "failure_signals": (pl.List(SIGNAL), "Signals that fired: scorer, version, value, threshold"),
    "severity": (pl.Float64, "1 - prod(1 - weight) over fired signals, in [0, 1]"),
    "is_failure": (pl.Boolean, "Any signal fired"),
    "scored_run_id": (pl.String, "Dagster run that scored the trace"),
}

FAILURE_CLUSTERS: dict[str, tuple[pl.DataType, str]] = {
    "trace_id": (pl.String, "Failing trace"),
    "day": (pl.Date, "Partition: UTC day of the trace"),
    "app": (pl.String, "Application (clusters never span apps)"),
    "text": (pl.String, "Compared text: the input with its conversation, redacted, normalised; hashed and embedded"),
    "text_hash": (pl.String, "sha256 of the normalised text"),
    "exact_dup_of": (pl.String, "trace_id of the first trace of the day with the same app and text, if not this"),
    "embedding": (pl.List(pl.Float32), "Unit-length sentence embedding of text"),
    "embedding_model": (pl.String, "Model id of the embedding"),
    "embedding_source": (pl.String, "embedded (new), cache (embedded in an earlier run) or exact_dup"),
    "cluster_id": (pl.Int64, "Failure family: HDBSCAN cluster within the day (-1 for noise)"),
    "cluster_size": (pl.Int64, "Traces in the family including exact duplicates (noise: the trace and its dups)"),
    "is_representative": (
        pl.Boolean,
        "Chosen by a greedy cover of the family (most repeated, most severe first) so that every member is "
        "within the strictest dedup threshold of a representative; every noise point",
    ),
    "severity": (pl.Float64, "Severity of the trace"),
    "clustered_run_id": (pl.String, "Dagster run that clustered the day"),
}

GRADED_CANDIDATES: dict[str, tuple[pl.DataType, str]] = {
    "candidate_id": (pl.String, "Stable id: cand_ + hash of day and trace_id"),
    "trace_id": (pl.String, "First trace of the day with this input (its exact copies are in failure_clusters)"),
    "day": (pl.Date, "Partition: UTC day of the trace"),
    "app": (pl.String, "Application"),
    "cluster_id": (pl.Int64, "Failure family of the day (-1 for noise)"),
    "cluster_size": (pl.Int64, "Traces in the family that day, exact duplicates included"),
    "is_representative": (
        pl.Boolean,
        "A representative of its family (a greedy cover of the family)",
    ),
    "copies": (pl.Int64, "Traces of the day with exactly this input (app, compared text)"),
    "case_id": (pl.String, "Id the case has (or would have) in eval_suite"),
    "text_hash": (pl.String, "sha256 of the compared text: with app, the key of a distinct failing input"),
    "embedding": (pl.List(pl.Float32), "Embedding of the compared text (kept for cases and isolated one-offs)"),
    "nearest_case_id": (pl.String, "Most similar case of the same app (the suite as it was, or this day's)"),
    "nearest_similarity": (pl.Float64, "Cosine similarity to nearest_case_id (null: nothing to compare with)"),
    "dedup_threshold": (pl.Float64, "Similarity threshold in force, from the schedule over the app's suite size"),
    "suite_size_before": (pl.Int64, "Active cases of the app when the day was graded"),
    "covered_by": (pl.String, "The case that stands for this failing input (itself when promoted; null: skipped)"),
    "covered_similarity": (pl.Float64, "Cosine similarity to covered_by (1 when promoted), >= dedup_threshold"),
    "novelty": (pl.Float64, "1 - nearest_similarity, clipped to [0, 1]; 1 when nothing to compare"),
    "severity": (pl.Float64, "Severity of the trace"),
    "frequency": (pl.Int64, "Traces of the day it stands for: a case, its copies and the inputs it covers"),
    "frequency_score": (pl.Float64, "log(1 + frequency) / log(1 + saturation), capped at 1"),
    "difficulty": (pl.Float64, "Failure rate over re-tries against a model endpoint; null when unknown"),
    "difficulty_tries": (pl.Int64, "Re-tries answered (difficulty denominator; errored calls not counted)"),
    "difficulty_source": (pl.String, "How difficulty was obtained, or why it is unknown"),
    "weight": (pl.Float64, "Weighted mean of the known factors (formula in the config)"),
    "decision": (pl.String, "promote, duplicate_of:<case_id> or skip:<reason>"),
    "reason": (pl.String, "Why, for a person"),
    "in_suite_from": (pl.Date, "First suite version (as-of day) holding the case: the day, or after it if late"),
    "graded_run_id": (pl.String, "Dagster run that decided (decisions are kept by later runs)"),
}

EVAL_SUITE: dict[str, tuple[pl.DataType, str]] = {
    "case_id": (pl.String, "Stable case id: case_ + hash of app and text_hash"),
    "day": (pl.Date, "Partition: the day of the trace the case was promoted from"),
    "app": (pl.String, "Application"),
    "input_messages": (pl.String, "Request messages (JSON, OpenAI chat shape) to replay"),
    "input_text": (pl.String, "Normalised input the case stands for"),
    "expected_output": (pl.String, "Corrected answer given with the feedback, else null"),
    "grading": (pl.String, "How a run decides pass or fail (JSON: list of checks)"),
    "weight": (pl.Float64, "Weight of the case"),
    "label": (pl.String, "Short human label: app / signals / input"),
    "status": (pl.String, "active or retired"),
    "source": (pl.String, "Where the case came from (production_failure)"),
    "trace_id": (pl.String, "Trace the case was promoted from"),
    "span_id": (pl.String, "Span id, when the format has one"),
    "source_file": (pl.String, "Trace file (relative to the incoming folder)"),
    "source_line": (pl.Int64, "1-based line in source_file"),
    "source_format": (pl.String, "Parser that read the record"),
    "raw_partition": (pl.Date, "raw_traces partition of the trace"),
    "failure_signals": (pl.List(SIGNAL), "Signals with scorer, version, value and threshold"),
    "severity": (pl.Float64, "Severity of the trace"),
    "cluster_id": (pl.Int64, "failure_clusters family of the day (-1 for noise)"),
    "cluster_size": (pl.Int64, "Traces the case stands for that day (its copies and the inputs it covers)"),
    "candidate_id": (pl.String, "graded_candidates row"),
    "nearest_case_id": (pl.String, "Nearest earlier case when promoted"),
    "nearest_similarity": (pl.Float64, "Its cosine similarity"),
    "dedup_threshold": (pl.Float64, "Threshold the case was promoted under"),
    "text_hash": (pl.String, "sha256 of the normalised text"),
    "embedding": (pl.List(pl.Float32), "Embedding of input_text"),
    "embedding_model": (pl.String, "Model of the embedding"),
    "promoted_run_id": (pl.String, "Dagster run that first promoted the case"),
    "promoted_partition": (pl.String, "Partition key of that run"),
    "first_seen_at": (UTC_TS, "Timestamp of the trace"),
    "promoted_at": (UTC_TS, "When the case was first promoted"),
    "in_suite_from": (pl.Date, "First suite version (as-of day) holding the case; later than day when it came late"),
    "last_run_id": (pl.String, "Dagster run that last wrote the partition"),
}

EMBEDDING_CACHE: dict[str, tuple[pl.DataType, str]] = {
    "model": (pl.String, "Embedding model id"),
    "text_hash": (pl.String, "sha256 of the normalised text"),
    "embedding": (pl.List(pl.Float32), "Unit-length embedding"),
    "created_at": (UTC_TS, "When it was computed"),
}

JUDGE_CACHE: dict[str, tuple[pl.DataType, str]] = {
    "judge_model": (pl.String, "Judge model name"),
    "rubric_version": (pl.String, "Hash of the app's rubric and the judge prompt template"),
    "trace_id": (pl.String, "Judged trace"),
    "day": (pl.Date, "UTC day of the trace"),
    "app": (pl.String, "Application"),
    "score": (pl.Float64, "Judge score, 1 (bad) to 5 (good)"),
    "reason": (pl.String, "The judge's reason"),
    "created_at": (UTC_TS, "When the judge answered"),
}

PARTITION_LOG: dict[str, tuple[pl.DataType, str]] = {
    "asset": (pl.String, "Asset that wrote the partition"),
    "day": (pl.Date, "Partition"),
    "run_id": (pl.String, "Dagster run that wrote it"),
    "rows": (pl.Int64, "Rows written"),
    "written_at": (UTC_TS, "Commit time"),
}

EVAL_RUN_RESULTS: dict[str, tuple[pl.DataType, str]] = {
    "run_id": (pl.String, "Eval run (a Dagster run id, or the id the CLI made)"),
    "suite_version": (pl.String, "Suite version: the as-of day (YYYY-MM-DD) the suite was read at"),
    "model": (pl.String, "Model (or recorded-output set) that was evaluated"),
    "case_id": (pl.String, "eval_suite case"),
    "app": (pl.String, "Application of the case"),
    "day": (pl.Date, "Day the case was promoted from (cluster key, with cluster_id)"),
    "cluster_id": (pl.Int64, "failure_clusters cluster of that day (-1 for noise)"),
    "cluster_key": (pl.String, "day/cluster_id"),
    "weight": (pl.Float64, "Weight of the case"),
    "status": (pl.String, "passed, failed, unknown (no check failed, one undecidable), missing (no output) or error"),
    "passed": (pl.Boolean, "Verdict of the case's grading rule (null: unknown, missing or error)"),
    "failed_checks": (pl.List(pl.String), "Checks that failed"),
    "unknown_checks": (pl.List(pl.String), "Checks that could not be decided (e.g. rubric without a judge)"),
    "reason": (pl.String, "Why each failed or unknown check is so, or why the case is missing or errored"),
    "judge_score": (pl.Float64, "Rubric score the judge gave, in [0, 1]"),
    "output_text": (pl.String, "The answer that was graded"),
    "finish_reason": (pl.String, "Its finish reason"),
    "latency_ms": (pl.Float64, "Its latency in milliseconds"),
    "error": (pl.String, "Error of the answer (recorded) or of the call (endpoint)"),
    "attempts": (pl.Int64, "HTTP attempts the call took (endpoint runs)"),
    "output_source": (pl.String, "recorded:<file>:<line> or endpoint:<base url>"),
    "graded_at": (UTC_TS, "When the case was graded"),
}

EVAL_RUNS: dict[str, tuple[pl.DataType, str]] = {
    "run_id": (pl.String, "Eval run"),
    "suite_version": (pl.String, "Suite version: the as-of day (YYYY-MM-DD)"),
    "model": (pl.String, "Model (or recorded-output set) that was evaluated"),
    "scope": (pl.String, "overall, app or cluster"),
    "scope_key": (pl.String, "all, the app, or day/cluster_id"),
    "app": (pl.String, "App of the scope (null for overall)"),
    "cluster_day": (pl.Date, "Day of the cluster (cluster scope)"),
    "cluster_id": (pl.Int64, "Cluster id of that day (cluster scope; -1 groups the day's unclustered cases)"),
    "cases": (pl.Int64, "Cases in scope: passed + failed + unknown + missing + errored"),
    "graded": (pl.Int64, "Cases with a verdict: passed + failed (the pass-rate denominator)"),
    "passed": (pl.Int64, "Cases that passed their grading rule"),
    "failed": (pl.Int64, "Cases with a failed check"),
    "unknown": (pl.Int64, "Cases with no failed check but an undecidable one (left out of pass rates)"),
    "missing": (pl.Int64, "Cases with no (valid) recorded output (left out of pass rates)"),
    "errored": (pl.Int64, "Cases whose endpoint call failed (left out of pass rates)"),
    "pass_rate": (pl.Float64, "passed / graded (null when nothing was graded)"),
    "weighted_pass_rate": (pl.Float64, "sum(weight of passed) / sum(weight of graded)"),
    "graded_weight": (pl.Float64, "sum(weight of graded)"),
    "source": (pl.String, "Where the outputs came from: recorded:<file> or endpoint:<base url>"),
    "run_at": (UTC_TS, "When the run was graded"),
}

SKIPPED_ITEMS: dict[str, tuple[pl.DataType, str]] = {
    "source_file": (pl.String, "Trace file (relative to the incoming folder)"),
    "source_line": (pl.Int64, "Line where the item starts"),
    "source_path": (pl.String, "Where in the record (e.g. resourceSpans[0].scopeSpans[0].spans[3])"),
    "source_format": (pl.String, "Parser that read the record"),
    "trace_id": (pl.String, "Trace the item belongs to"),
    "item_id": (pl.String, "Span, observation or run id"),
    "item": (pl.String, "What the item is (e.g. CHAIN span, SPAN observation, tool run)"),
    "reason": (pl.String, "Why it is not an LLM request"),
    "partition_day": (pl.Date, "Partition the row is stored in"),
    "ingest_run_id": (pl.String, "Dagster run that read it"),
}

TABLES: dict[str, dict[str, tuple[pl.DataType, str]]] = {
    "raw_traces": RAW_TRACES,
    "quarantined_records": QUARANTINED_RECORDS,
    "skipped_items": SKIPPED_ITEMS,
    "ingest_manifest": INGEST_MANIFEST,
    "ingested_files": INGESTED_FILES,
    "text_cache": TEXT_CACHE,
    "scored_traces": SCORED_TRACES,
    "failure_clusters": FAILURE_CLUSTERS,
    "graded_candidates": GRADED_CANDIDATES,
    "eval_suite": EVAL_SUITE,
    "embedding_cache": EMBEDDING_CACHE,
    "partition_log": PARTITION_LOG,
    "judge_cache": JUDGE_CACHE,
    "eval_run_results": EVAL_RUN_RESULTS,
    "eval_runs": EVAL_RUNS,
}

LOOP_TABLES = (
    "raw_traces",
    "quarantined_records",
    "scored_traces",
    "failure_clusters",
    "graded_candidates",
    "eval_suite",
)
"""The loop's daily assets, in loop order: what `eval-loop materialize` selects, the job runs and the tests check
(raw_traces and quarantined_records are one multi-asset: both or neither)."""

# The column each partitioned table is replaced by.
PARTITION_COLUMN = {
    "raw_traces": "day",
    "quarantined_records": "partition_day",
    "skipped_items": "partition_day",
    "ingest_manifest": "partition_day",
    "scored_traces": "day",
    "failure_clusters": "day",
    "graded_candidates": "day",
    "eval_suite": "day",
}


def schema(table: str) -> pl.Schema:
    return pl.Schema({name: dtype for name, (dtype, _) in TABLES[table].items()})


def empty(table: str) -> pl.DataFrame:
    return pl.DataFrame(schema=schema(table))


def conform(table: str, frame: pl.DataFrame) -> pl.DataFrame:
    """Select the table's columns in order and cast to its types; a missing column is a bug."""
    target = schema(table)
    missing = [c for c in target if c not in frame.columns]
    if missing:
        raise ValueError(f"{table}: frame lacks columns {missing}")
    return frame.select([pl.col(c).cast(t) for c, t in target.items()])
