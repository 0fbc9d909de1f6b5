"""New or grown trace files in the incoming folder start a run for exactly the days they touch."""

import hashlib
import os
import time
from datetime import date

import dagster as dg

from loop_assets.capture.file_days import entry_days
from loop_assets.capture.file_watch import plan, scan
from loop_assets.capture.incoming import scan_incoming
from loop_assets.defs.jobs import loop_job
from loop_assets.defs.partitions import daily_partitions
from loop_assets.defs.resources import LoopSettings

SENSOR_INTERVAL_SECONDS = int(os.environ.get("EVAL_LOOP_SENSOR_INTERVAL", "30"))
SETTLE_SECONDS = float(os.environ.get("EVAL_LOOP_SETTLE_SECONDS", "60"))

RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"

coverage_automation = dg.AutomationConditionSensorDefinition(
    "coverage_automation",
    target=dg.AssetSelection.groups("report"),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Refreshes suite_coverage after the suite changes (its automation condition: eager).",
)


def run_request(days: set[date], latest_suite_day: date | None, files: dict[str, str]) -> dg.RunRequest:
    """One run over the days of the files and, for a late file, every later suite day, in order.

    The suite of day D depends on all days before it, so a late file for an old day re-runs that day
    and every later day already in the suite; one run with a range keeps them in order.
    """
    first_partition = date.fromisoformat(daily_partitions.get_first_partition_key())
    last_partition = date.fromisoformat(daily_partitions.get_last_partition_key())
    start = max(min(days), first_partition)
    end = max(days)
    if latest_suite_day is not None and latest_suite_day > end:
        end = latest_suite_day
    end = min(end, last_partition)
    digest = hashlib.sha256("\n".join(f"{k}={v}" for k, v in sorted(files.items())).encode()).hexdigest()[:16]
    tags = {"eval_loop/trigger": "new_trace_files", "eval_loop/files": ", ".join(sorted(files))[:1000]}
    run_key = f"files-{digest}"
    if start == end:
        return dg.RunRequest(run_key=run_key, partition_key=str(start), tags=tags)
    return dg.RunRequest(run_key=run_key, tags={**tags, RANGE_START: str(start), RANGE_END: str(end)})


@dg.sensor(
    job=loop_job,
    minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Watches EVAL_LOOP_INCOMING (recursively). A new or grown trace file, once it has stopped "
    "changing, starts one run for the days its records fall in (and later suite days, for a late file).",
)
def new_trace_files(context: dg.SensorEvaluationContext, settings: LoopSettings) -> dg.SensorResult:
    incoming = settings.incoming()
    listing = scan_incoming(incoming)
    entries = {entry.name: entry for entry in listing.entries}
    watch = plan(scan(listing.entries), context.cursor, time.time_ns(), SETTLE_SECONDS)
    if not watch.ready:
        reason = f"{len(watch.waiting)} file(s) still being written" if watch.waiting else "no new or grown files"
        return dg.SensorResult(skip_reason=reason, cursor=watch.cursor)
    config = settings.config()
    days: set[date] = set()
    for name in watch.ready:
        days |= entry_days(entries[name], config.ingest)
    refused = {name: entries[name].refused for name in watch.ready if entries[name].refused}
    if refused:
        context.log.warning(f"not followed, each kept as one quarantine row: {refused}")
    if not days:
        return dg.SensorResult(skip_reason=f"no records with a day in {sorted(watch.ready)}", cursor=watch.cursor)
    suite_days = context.instance.get_materialized_partitions(dg.AssetKey("eval_suite"))
    latest = max((date.fromisoformat(d) for d in suite_days), default=None)
    request = run_request(days, latest, {name: version.key for name, version in watch.ready.items()})
    context.log.info(f"{len(watch.ready)} file(s) ready: {sorted(watch.ready)}; days {sorted(map(str, days))}")
    return dg.SensorResult(run_requests=[request], cursor=watch.cursor)
