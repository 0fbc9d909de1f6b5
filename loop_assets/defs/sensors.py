"""New or grown trace files in the incoming folder start runs for exactly the days their records fall in."""

import hashlib
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb

from loop_assets.capture.file_days import entries_days
from loop_assets.capture.file_watch import plan, read_cursor, scan, untaken
from loop_assets.capture.incoming import Entry, scan_incoming
from loop_assets.capture.ingest_plan import stored_versions
from loop_assets.defs.jobs import loop_job
from loop_assets.defs.partitions import daily_partitions
from loop_assets.defs.resources import LoopSettings, Warehouse
from loop_assets.run_progress import day_span
from loop_assets.warehouse import WarehouseLocked, open_warehouse

SENSOR_INTERVAL_SECONDS = int(os.environ.get("EVAL_LOOP_SENSOR_INTERVAL", "30"))
SETTLE_SECONDS = float(os.environ.get("EVAL_LOOP_SETTLE_SECONDS", "60"))
WAREHOUSE_WAIT_SECONDS = 5.0
"""How long a tick waits to read the warehouse while a run writes it (then it decides without it)."""

RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"
DAYS_TAG = "eval_loop/days"
"""The days a run covers, shown in the Runs list: "2026-11-16" or "2026-11-16...2026-11-23"."""


def days_tag(first: date, last: date) -> dict[str, str]:
    """{DAYS_TAG: ...} for a run over first..last."""
    return {DAYS_TAG: day_span(first, last)}


def contiguous_ranges(days: set[date]) -> list[tuple[date, date]]:
    """The days as runs of consecutive days, oldest first: a gap (a day no file has records for) splits them."""
    ranges: list[tuple[date, date]] = []
    for day in sorted(days):
        if ranges and (day - ranges[-1][1]).days == 1:
            ranges[-1] = (ranges[-1][0], day)
        else:
            ranges.append((day, day))
    return ranges


def partition_bounds() -> tuple[date, date]:
    """The first and the last day partition that exists now."""
    return (
        date.fromisoformat(daily_partitions.get_first_partition_key()),
        date.fromisoformat(daily_partitions.get_last_partition_key()),
    )


def run_requests(
    days_of: dict[str, set[date]], versions: dict[str, str], bounds: tuple[date, date]
) -> list[dg.RunRequest]:
    """One run per contiguous range of the files' days, oldest first, each naming its days and files.

    Only the files' own days: the suite is append-only and a case that late data adds joins the suite
    version after the latest graded day (`grade.grade_day.first_version_of_new_cases`), so later days
    neither change nor need re-running. A day without a partition (before partitions_start, or
    tomorrow's traffic) is left to the run of that day; `bounds` are the `partition_bounds()`.
    """
    first, last = bounds
    wanted = {day for days in days_of.values() for day in days if first <= day <= last}
    requests = []
    for start, end in contiguous_ranges(wanted):
        files = sorted(name for name, days in days_of.items() if any(start <= d <= end for d in days))
        key = "\n".join([f"{start}...{end}", *(f"{name}={versions[name]}" for name in files)])
        tags = {
            "eval_loop/trigger": "new_trace_files",
            "eval_loop/files": ", ".join(files)[:1000],
            **days_tag(start, end),
        }
        run_key = f"files-{hashlib.sha256(key.encode()).hexdigest()[:16]}"
        if start == end:
            requests.append(dg.RunRequest(run_key=run_key, partition_key=str(start), tags=tags))
        else:
            requests.append(dg.RunRequest(run_key=run_key, tags={**tags, RANGE_START: str(start), RANGE_END: str(end)}))
    return requests


@contextmanager
def read_only(warehouse: Warehouse) -> Iterator[duckdb.DuckDBPyConnection | None]:
    """A read-only connection to the warehouse (None when there is none yet): the sensor never writes."""
    if warehouse.ducklake_catalog:  # a lake has many writers: reading it blocks none
        with warehouse.get_connection() as con:
            yield con
        return
    if not Path(warehouse.database).exists():
        yield None
        return
    con = open_warehouse(warehouse.database, read_only=True, timeout_seconds=WAREHOUSE_WAIT_SECONDS)
    try:
        yield con
    finally:
        con.close()


def already_read(warehouse: Warehouse, entries: dict[str, Entry], names: set[str]) -> set[str]:
    """Of `names`, the entries whose present version the warehouse already holds in full."""
    with read_only(warehouse) as con:
        stored = stored_versions(con) if con is not None else {}
    return {name for name in names if stored.get(name) == entries[name].version}


@dg.sensor(
    job=loop_job,
    minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Watches EVAL_LOOP_INCOMING (recursively). A new or grown trace file, once it has stopped "
    "changing, starts one run per contiguous range of the days its records fall in (tag eval_loop/days). "
    "Files the warehouse already read are not run again; a file with no record of a usable day starts no run.",
)
def new_trace_files(
    context: dg.SensorEvaluationContext, settings: LoopSettings, warehouse: Warehouse
) -> dg.SensorResult:
    started = time.time_ns()
    listing = scan_incoming(settings.incoming())
    entries = {entry.name: entry for entry in listing.entries}
    current = scan(listing.entries)
    state = read_cursor(context.cursor)
    # the warehouse is asked about every file on the first tick, later only about files that would run now
    # (not those still being written, so a growing log does not open it every tick; `ready` is all untaken)
    if state.empty:
        candidates = untaken(current, state)
    else:
        candidates = set(plan(current, state, time.time_ns(), SETTLE_SECONDS, started_ns=started).ready)
    already: set[str] = set()
    if candidates:
        try:
            already = already_read(warehouse, entries, candidates)
        except WarehouseLocked as exc:
            if state.empty:  # without the warehouse every file would look new: run nothing yet
                return dg.SensorResult(skip_reason=f"waiting to read what the warehouse already holds: {exc}")
            context.log.warning(f"the warehouse is busy; deciding without it: {exc}")
        if already:
            context.log.info(f"{len(already)} file(s) already read at their present version: not run again")
    watch = plan(current, state, time.time_ns(), SETTLE_SECONDS, already, started)
    if not watch.ready:
        reason = f"{len(watch.waiting)} file(s) still being written" if watch.waiting else "no new or grown files"
        return dg.SensorResult(skip_reason=reason, cursor=watch.cursor)
    days_of = entries_days([entries[name] for name in watch.ready], settings.config().ingest)
    no_day = sorted(name for name, days in days_of.items() if not days)
    notes = []
    if no_day:
        refused = {name: entries[name].refused for name in no_day if entries[name].refused}
        notes.append(
            f"{len(no_day)} file(s) with no record of a usable day ({', '.join(no_day)[:1000]}): starting no run; "
            "their records will be quarantined (under no day) by the next run, the daily schedule's or any other"
            + (f"; not opened: {refused}" if refused else "")
        )
        context.log.warning(notes[-1])
    first, last = partition_bounds()
    versions = {n: v.key for n, v in watch.ready.items()}
    requests = run_requests({n: d for n, d in days_of.items() if d}, versions, (first, last))
    for request in requests:
        context.log.info(f"days {request.tags[DAYS_TAG]}: {request.tags['eval_loop/files']}")
    outside = sorted({str(d) for days in days_of.values() for d in days if not first <= d <= last})
    if outside:
        notes.append(f"days without a partition yet, left to the run of that day: {', '.join(outside)}")
    if not requests:
        return dg.SensorResult(skip_reason="; ".join(notes), cursor=watch.cursor)
    return dg.SensorResult(run_requests=requests, cursor=watch.cursor)
