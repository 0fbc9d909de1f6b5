"""CAPTURE: trace files to `raw_traces` (+ `quarantined_records`), then `scored_traces`."""

import time
from collections import Counter

import dagster as dg
import polars as pl

from loop_assets.capture import ingest as capture
from loop_assets.capture import judge, scoring
from loop_assets.capture.accounting import files_not_accounted, record_accounting, records_of_no_day
from loop_assets.capture.checks import unscored_traces
from loop_assets.capture.figures import stored_figures
from loop_assets.capture.incoming import scan_incoming
from loop_assets.capture.ingest_plan import plan_from_warehouse, store_ingest
from loop_assets.config import RedactionConfig
from loop_assets.defs.metadata import (
    add_day_metadata,
    markdown_preview,
    problems_check,
    run_metadata,
    table_metadata,
)
from loop_assets.defs.partitions import DUCKDB_POOL, daily_partitions, partition_days, single_run
from loop_assets.defs.resources import LlmEndpoints, LoopSettings, Warehouse
from loop_assets.redaction import count_metadata, redact_frame, redact_frame_with_counts
from loop_assets.report.stats import scored_apps_metadata
from loop_assets.warehouse import read_partitions, replace_partitions

RECORDS_ACCOUNTED = "records_accounted_for"
EVERY_TRACE_SCORED = "every_trace_scored"


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            "raw_traces",
            description="One LLM request/response per row, parsed from the trace files in the incoming "
            "folder into one schema, partitioned by the UTC day of the trace's own timestamp.",
            kinds={"duckdb", "polars"},
            group_name="capture",
            metadata=table_metadata("raw_traces"),
        ),
        dg.AssetSpec(
            "quarantined_records",
            description="Records that could not be parsed or lack what the schema needs, with the reason "
            "and the original bytes; nothing read is ever dropped.",
            kinds={"duckdb", "polars"},
            group_name="capture",
            metadata=table_metadata("quarantined_records"),
        ),
    ],
    check_specs=[
        dg.AssetCheckSpec(
            RECORDS_ACCOUNTED,
            asset="raw_traces",
            description="Per source file: records read = rows in raw_traces + rows in quarantined_records; and "
            "every entry of the incoming folder is read (a file whose records are in no table fails it).",
        )
    ],
    partitions_def=daily_partitions,
    backfill_policy=single_run,
    pool=DUCKDB_POOL,
)
def raw_traces(context: dg.AssetExecutionContext, settings: LoopSettings, warehouse: Warehouse):
    config = settings.config()
    days = partition_days(context)
    with warehouse.get_connection() as con:
        plan = plan_from_warehouse(con, settings.incoming(), days, config)
    if plan.reused_days:
        context.log.info(f"unchanged since last read, left as they are: {', '.join(map(str, plan.reused_days))}")
    started = time.perf_counter()
    mode, redaction_counts = "no file read", {}
    files_read = 0
    if plan.read_days:
        context.log.info(f"progress: reading the files of {len(plan.read_days)} day(s) from {settings.incoming()}")
        result = capture.ingest(
            settings.incoming(),
            config.ingest,
            context.run_id,
            days=set(plan.read_days),
            skip_files=plan.skip_files,
            first_read=plan.first_read,
        )
        files_read = result.files.height
        traces, quarantine, mode, redaction_counts = _redact_at_ingest(
            result.traces, result.quarantine, config.redaction
        )
        with warehouse.get_connection() as con:
            store_ingest(con, plan, result, context.run_id, traces, quarantine)
        del result, traces, quarantine
    ingest_seconds = time.perf_counter() - started
    with warehouse.get_connection() as con:
        accounting = record_accounting(con, days)
        unaccounted = files_not_accounted(con, plan.listed, scan_incoming(settings.incoming()).ignored)
        stored = stored_figures(con, days, PREVIEW_ROWS)
        no_day = records_of_no_day(con)
    add_day_metadata(context, "raw_traces", {day: _trace_figures(f, config.redaction) for day, f in stored.items()})
    add_day_metadata(
        context, "quarantined_records", {day: _quarantine_figures(f, config.redaction) for day, f in stored.items()}
    )
    run = run_metadata(
        days,
        files_read=files_read,
        files_skipped=len(plan.skip_files),
        days_reused=len(plan.reused_days),
        ingest_seconds=round(ingest_seconds, 3),
        **redaction_counts,
    )
    yield dg.MaterializeResult(asset_key="raw_traces", metadata={**run, "redaction": mode})
    # records of files with no day belong to no partition: counted here, over the whole table
    yield dg.MaterializeResult(asset_key="quarantined_records", metadata={**run, "quarantined_no_day": no_day})
    bad = accounting.filter(~pl.col("ok"))
    if unaccounted.height:
        context.log.error(f"files in the incoming folder whose records are in no table: {unaccounted.rows()}")
    yield dg.AssetCheckResult(
        check_name=RECORDS_ACCOUNTED,
        asset_key="raw_traces",
        passed=bad.height == 0 and unaccounted.height == 0,
        metadata={
            "files_on_disk": len(plan.listed),
            "files_not_accounted": unaccounted.height,
            "not_accounted": markdown_preview(unaccounted, limit=20),
            "files_checked": accounting["source_file"].n_unique(),
            "records_routed": int(accounting["records_routed"].sum() or 0),
            "rows_found": int(accounting["rows_found"].sum() or 0),
            "mismatches": markdown_preview(bad, limit=20),
        },
    )


def _trace_figures(stored: dict[str, object], redaction: RedactionConfig) -> dict[str, object]:
    """A day's figures of raw_traces as stored; the preview redacted, since it lands in the event log."""
    preview = redact_frame(stored["trace_preview"], ["input_text", "output_text"], redaction)
    return {
        "dagster/row_count": stored["traces"],
        "traces": stored["traces"],
        "files": stored["files"],
        "skipped_items": stored["skipped_items"],
        "apps": dg.MetadataValue.json(stored["apps"]),
        "preview": markdown_preview(preview),
    }


def _quarantine_figures(stored: dict[str, object], redaction: RedactionConfig) -> dict[str, object]:
    preview = redact_frame(stored["quarantine_preview"], ["reason"], redaction)
    return {
        "dagster/row_count": stored["quarantined"],
        "quarantined": stored["quarantined"],
        "by_reason": dg.MetadataValue.json(stored["by_reason"]),
        "preview": markdown_preview(preview),
    }


# Text columns that may carry what a user typed or a system logged.
INGEST_REDACTED_TRACE_COLUMNS = [
    "input_messages",
    "input_text",
    "output_text",
    "error",
    "feedback",
    "corrected_output",
    "metadata",
]
INGEST_REDACTED_QUARANTINE_COLUMNS = ["raw", "reason"]
PREVIEW_ROWS = 10  # markdown_preview's default: only these rows are shown, so only these are redacted


def _redact_at_ingest(
    traces: pl.DataFrame, quarantine: pl.DataFrame, settings: RedactionConfig
) -> tuple[pl.DataFrame, pl.DataFrame, str, dict[str, int]]:
    """With redaction.at_ingest, the frames redacted before they are stored; then the redaction mode
    (true of every day) and, at ingest, the count of redactions per kind (`redacted_email`, ...)."""
    if not (settings.enabled and settings.at_ingest):
        mode = "after ingest (failing texts, suite, exports, previews)" if settings.enabled else "off"
        return traces, quarantine, mode, {}
    traces, in_traces = redact_frame_with_counts(traces, INGEST_REDACTED_TRACE_COLUMNS, settings)
    quarantine, in_quarantine = redact_frame_with_counts(quarantine, INGEST_REDACTED_QUARANTINE_COLUMNS, settings)
    counts = Counter(in_traces) + Counter(in_quarantine)
    return traces, quarantine, "at ingest", count_metadata(counts)


@dg.asset(
    deps=["raw_traces"],
    description="Every trace with its scorer results: latency, JSON schema, feedback, provider error, empty "
    "and truncated output; the failure signals that fired with scorer version, value and threshold; "
    "severity; is_failure.",
    kinds={"duckdb", "polars"},
    group_name="capture",
    metadata=table_metadata("scored_traces"),
    partitions_def=daily_partitions,
    backfill_policy=single_run,
    pool=DUCKDB_POOL,
    check_specs=[
        dg.AssetCheckSpec(
            EVERY_TRACE_SCORED,
            asset="scored_traces",
            description="Every raw trace of the day has exactly one scored row.",
        ),
    ],
)
def scored_traces(
    context: dg.AssetExecutionContext, settings: LoopSettings, warehouse: Warehouse, endpoints: LlmEndpoints
):
    config = endpoints.applied(settings.config())
    days = partition_days(context)
    client = endpoints.judge_client(config)
    with warehouse.get_connection() as con:
        # without a judge, scoring reads only the columns it scores, not the day's messages and metadata
        columns = None if client is not None else scoring.INPUT_COLUMNS
        raw = read_partitions(con, "raw_traces", days, columns=columns)
        started = time.perf_counter()
        scored = pl.concat(
            [scoring.score_traces(raw.filter(pl.col("day") == day), config, context.run_id) for day in days]
        )
        score_seconds = time.perf_counter() - started
        try:
            scored, judged = judge.run_judge(con, raw, scored, config, client)
        finally:
            if client is not None:
                client.close()
        context.log.info(judged.message)
        replace_partitions(con, "scored_traces", days, {"scored_traces": scored}, context.run_id)
        unscored = unscored_traces(con, days)
        apps_by_day, app_warnings = scored_apps_metadata(con, config, scored, days)
    for warning in app_warnings:
        context.log.warning(warning)
    add_day_metadata(
        context,
        "scored_traces",
        {day: {**_scored_figures(scored.filter(pl.col("day") == day)), **apps_by_day[day]} for day in days},
    )
    return dg.MaterializeResult(
        check_results=[problems_check(EVERY_TRACE_SCORED, unscored, "mismatched_days")],
        metadata={
            **run_metadata(days, score_seconds=round(score_seconds, 3), **judged.metadata()),
            "config_warnings": dg.MetadataValue.md("\n".join(f"- {w}" for w in app_warnings) or "none"),
        },
    )


def _scored_figures(scored: pl.DataFrame) -> dict[str, object]:
    """A day's figures of scored_traces: traces, failures, failure rate, failures per signal, a preview."""
    failures = scored.filter(pl.col("is_failure"))
    signals = failures.select(pl.col("failure_signals").list.eval(pl.element().struct.field("scorer")).alias("s"))
    signal_counts = dict(signals.explode("s").group_by("s").len().iter_rows())
    return {
        "dagster/row_count": scored.height,
        "traces": scored.height,
        "failures": failures.height,
        "failure_rate": round(failures.height / scored.height, 4) if scored.height else 0.0,
        **{f"failures_{s}": int(signal_counts.get(s, 0)) for s in scoring.SCORERS},
        "preview": markdown_preview(
            failures.select(
                "trace_id",
                "app",
                "severity",
                pl.col("failure_signals")
                .list.eval(pl.element().struct.field("scorer"))
                .list.join("+")
                .alias("signals"),
            )
        ),
    }
