"""Concurrency: runs launched together, and a user's DuckDB session open during a run.

- Two `dagster asset materialize` processes for days 2 and 3, launched together against one
  DAGSTER_HOME (the project's `dagster.yaml`: pool `duckdb` of size 1) and one warehouse, after day 1:
  both succeed, no DuckDB lock error, their steps never overlap (the pool hands out one slot), day 3 is
  graded only after day 2 (`graded_candidates` gives the pool back and retries while another live run
  still has an earlier day to grade), and every table equals the sequential result (days run one after
  the other: the session's `in_order` loop).
- A read-only DuckDB session in another process blocks every writer (DuckDB locks the file per
  process). A run that meets one waits, with backoff, and logs whom it waits for; past
  `lock_timeout_seconds` (EVAL_LOOP_LOCK_TIMEOUT) it fails with a message naming the holder's PID.
  The command line meets a run's write lock the same way. The webserver and the daemon never open the
  warehouse: what the UI shows comes from the Dagster instance.
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import pytest

from loop_assets.definitions import daily_assets
from loop_assets.defs.assets.grade import GRADED, earlier_grading_in_progress
from loop_assets.defs.resources import Embedder, LlmEndpoints, LoopSettings, Warehouse
from loop_assets.warehouse import LOCK_TIMEOUT, WarehouseLocked, connect, ensure_tables, lock_timeout_seconds
from loop_assets_tests.defs.test_crash_safety import (
    COMPARED,
    VOLATILE,
    Deployment,
    partial_partitions,
    started_step,
    wait_until,
)
from loop_assets_tests.loop_runner import DAYS, Loop

FLOATS = ("FLOAT", "DOUBLE", "FLOAT[]", "DOUBLE[]")
LOCK_ERRORS = re.compile(r"Could not set lock|IOException|WarehouseLocked|database is locked", re.IGNORECASE)


# --- the grading order across runs -----------------------------------------------------------------------


def live_run(instance: dg.DagsterInstance, *, partition: str | None = None, first=None, last=None, assets=None):
    tags = {"dagster/partition": partition} if partition else {}
    if first:
        tags = {"dagster/asset_partition_range_start": str(first), "dagster/asset_partition_range_end": str(last)}
    run = dg.DagsterRun(
        job_name="__ASSET_JOB",
        run_id=str(uuid.uuid4()),
        status=dg.DagsterRunStatus.STARTED,
        tags=tags,
        asset_selection=frozenset(assets) if assets is not None else None,
    )
    return instance.add_run(run)


def test_grading_waits_only_for_live_runs_that_grade_an_earlier_day():
    instance = dg.DagsterInstance.ephemeral()
    d1, d2, d3 = DAYS
    day2 = live_run(instance, partition=str(d2), assets={GRADED})
    live_run(instance, partition=str(d3), assets={GRADED})  # the same day: never waited for
    live_run(instance, partition=str(d1), assets={dg.AssetKey("raw_traces")})  # does not grade
    assert earlier_grading_in_progress(instance, "me", d3) == {day2.run_id: [d2]}
    assert earlier_grading_in_progress(instance, "me", d2) == {}
    span = live_run(instance, first=d1, last=d3)  # a range run of the whole job
    assert earlier_grading_in_progress(instance, "me", d3) == {day2.run_id: [d2], span.run_id: [d1, d2]}
    # a range run never waits for a run inside its own range: no two runs wait for each other
    assert earlier_grading_in_progress(instance, span.run_id, d1) == {}
    for run in (day2, span):
        instance.report_run_failed(run)
    assert earlier_grading_in_progress(instance, "me", d3) == {}


def test_grading_gives_the_pool_back_and_retries_until_the_earlier_day_is_graded(tmp_path):
    loop = Loop(tmp_path)
    other = live_run(loop.instance, partition=str(DAYS[1]), assets={GRADED})
    finish = threading.Timer(2.0, lambda: loop.instance.report_run_failed(other))  # that run ends
    finish.start()
    try:
        result = loop.run(DAYS[2], select={"graded_candidates"})
    finally:
        finish.cancel()
    assert result.success
    events = [e.event_type_value for e in result.all_events]
    assert "STEP_UP_FOR_RETRY" in events and events.count("STEP_START") + events.count("STEP_RESTARTED") >= 2
    logs = [e.user_message for e in loop.instance.all_logs(result.run_id)]
    assert any("waiting for other runs to grade earlier days first" in m for m in logs)


# --- two days launched together through a real Dagster instance ---------------------------------------------


def compare(a: Path, b: Path) -> list[str]:
    """Differences between two warehouses' tables (run ids and bookkeeping timestamps left out).

    Everything but floating-point columns must be equal; floats (embeddings and what is computed from
    them) within 1e-5: a text embedded in another batch differs in the last bits.
    """
    problems = []
    with duckdb.connect(str(a), read_only=True) as ca, duckdb.connect(str(b), read_only=True) as cb:
        for table in COMPARED:
            types = dict(
                ca.execute(
                    "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ?", [table]
                ).fetchall()
            )
            cols = [c for c in types if not (c in VOLATILE or c.endswith("run_id"))]
            exact = [c for c in cols if types[c] not in FLOATS]
            quoted, order = (", ".join(f'"{c}"' for c in names) for names in (cols, exact))
            select = f"SELECT {quoted} FROM {table} ORDER BY {order}"
            fa, fb = ca.execute(select).pl(), cb.execute(select).pl()
            if fa.height != fb.height or not fa.select(exact).equals(fb.select(exact)):
                problems.append(f"{table}: {fa.height} vs {fb.height} rows, or different values")
                continue
            for column in (c for c in cols if c not in exact):
                x, y = fa[column].to_list(), fb[column].to_list()
                if any((u is None) != (v is None) for u, v in zip(x, y, strict=True)):
                    problems.append(f"{table}.{column}: nulls differ")
                    continue
                pairs = [(u, v) for u, v in zip(x, y, strict=True) if u is not None]
                if pairs and not np.allclose([u for u, _ in pairs], [v for _, v in pairs], atol=1e-5, rtol=0):
                    problems.append(f"{table}.{column}: values differ by more than 1e-5")
    return problems


def step_intervals(instance: dg.DagsterInstance, run_id: str) -> list[tuple[str, float, float]]:
    """(step, start, end) of every attempt of every step of the run (a retry is a new attempt)."""
    started: dict[str, float] = {}
    intervals = []
    for entry in instance.all_logs(run_id):
        kind, step = entry.dagster_event_type, entry.step_key
        if kind in (dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_RESTARTED):
            started[step] = entry.timestamp
        elif kind in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE,
                      dg.DagsterEventType.STEP_UP_FOR_RETRY) and step in started:  # fmt: skip
            intervals.append((step, started.pop(step), entry.timestamp))
    return intervals


@pytest.mark.slow
def test_two_days_launched_together_both_succeed_and_equal_the_sequential_result(tmp_path, traffic, in_order):
    sequential, _ = in_order
    deployment = Deployment(tmp_path / "together", traffic)
    with deployment.instance() as instance:  # day 1 first, through the same instance and pool
        first = dg.materialize(
            daily_assets,
            partition_key=str(DAYS[0]),
            instance=instance,
            resources={
                "settings": LoopSettings(incoming_dir=str(deployment.incoming)),
                "warehouse": Warehouse(database=str(deployment.warehouse)),
                "embedder": Embedder(),
                "endpoints": LlmEndpoints(),
            },
        )
        assert first.success
    try:
        # launched together, day 3 a step ahead: which run a process start makes first is chance, and this
        # is the order that races, day 3 reaching grading while day 2 is still to be graded
        day3 = deployment.launch("day3", partition=str(DAYS[2]))
        wait_until("day 3's first step", started_step(day3, "raw_traces"), 240, day3)
        day2 = deployment.launch("day2", partition=str(DAYS[1]))
        codes = (day3.wait(timeout=400), day2.wait(timeout=400))
    finally:
        deployment.stop_all()
    assert codes == (0, 0), day3.text()[-3000:] + "\n----\n" + day2.text()[-3000:]
    for launched in (day2, day3):
        assert "RUN_SUCCESS" in launched.text()
        assert not LOCK_ERRORS.search(launched.text()), LOCK_ERRORS.search(launched.text())

    with deployment.instance() as instance:
        runs = {
            r.dagster_run.tags.get("dagster/partition"): r.dagster_run.run_id
            for r in instance.get_run_records(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.SUCCESS]))
        }
        steps = {day: step_intervals(instance, runs[str(day)]) for day in DAYS[1:]}
        retried = [e for e in instance.all_logs(runs[str(DAYS[2])]) if "waiting for other runs" in e.user_message]
    # the pool of size 1: no step of one run overlaps a step of the other
    for key2, start2, end2 in steps[DAYS[1]]:
        for key3, start3, end3 in steps[DAYS[2]]:
            assert end2 <= start3 or end3 <= start2, (key2, key3)
    graded = {day: [s for s in steps[day] if s[0] == "graded_candidates"][-1] for day in DAYS[1:]}
    assert graded[DAYS[2]][1] >= graded[DAYS[1]][2]  # day 3 was graded after day 2
    assert retried, "day 3's grading never had to wait: the race was not exercised"

    assert partial_partitions(deployment.warehouse) == []
    assert compare(sequential.warehouse, deployment.warehouse) == []


# --- a user's read-only session, and the command line during a run -----------------------------------------


HOLDER = """
import duckdb, sys, time
con = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == "ro")
print("open", flush=True)
time.sleep(float(sys.argv[3]))
con.close()
print("closed", flush=True)
"""


def hold(path: Path, seconds: float, read_only: bool = True) -> subprocess.Popen:
    """Another process with the warehouse open (read-only: a notebook, the duckdb CLI) for `seconds`."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path), "ro" if read_only else "rw", str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "open"
    return proc


def small_loop(tmp_path: Path, traffic: Path) -> Loop:
    loop = Loop(tmp_path)
    first = sorted(traffic.iterdir())[0]
    (loop.incoming / first.name).write_bytes(first.read_bytes())
    with duckdb.connect(str(loop.warehouse)) as con:
        ensure_tables(con)
    return loop


def capture_run(loop: Loop, timeout: float):
    resources = {**loop.resources(), "warehouse": Warehouse(database=str(loop.warehouse), lock_timeout_seconds=timeout)}
    return dg.materialize(
        [a for a in daily_assets if dg.AssetKey("raw_traces") in a.keys],
        partition_key=str(DAYS[0]),
        resources=resources,
        instance=loop.instance,
        raise_on_error=False,
    )


def test_a_read_only_session_open_during_a_run_makes_it_wait_then_it_succeeds(tmp_path, traffic):
    loop = small_loop(tmp_path, traffic)
    holder = hold(loop.warehouse, seconds=3)
    started = time.monotonic()
    result = capture_run(loop, timeout=60)
    waited = time.monotonic() - started
    assert holder.wait(timeout=30) == 0 and holder.stdout.read().strip() == "closed"
    assert result.success and waited >= 2
    logs = [e.user_message for e in loop.instance.all_logs(result.run_id)]
    assert any(f"is locked by PID {holder.pid}" in m and "waiting up to 60 s" in m for m in logs), logs[-10:]
    assert loop.table("SELECT count(*) AS n FROM raw_traces")["n"][0] > 0


def test_a_session_held_past_the_lock_timeout_fails_the_run_naming_the_holder(tmp_path, traffic):
    loop = small_loop(tmp_path, traffic)
    holder = hold(loop.warehouse, seconds=8)
    try:
        result = capture_run(loop, timeout=1)
    finally:
        holder.kill()
        holder.wait(timeout=30)
    assert not result.success
    error = next(e for e in result.all_events if e.is_step_failure).step_failure_data.error
    chain = []
    while error is not None:
        chain.append(error)
        error = error.cause
    [locked] = [e for e in chain if e.cls_name == "WarehouseLocked"]
    assert f"PID {holder.pid} (" in locked.message and LOCK_TIMEOUT in locked.message
    assert "even read-only" in locked.message


def test_the_command_line_waits_for_a_writer_then_names_it(tmp_path):
    path = tmp_path / "wh.duckdb"
    with duckdb.connect(str(path)) as con:
        ensure_tables(con)
    writer = hold(path, seconds=1.5, read_only=False)
    with connect(path, read_only=True, timeout_seconds=30) as con:  # waits for the writer, then reads
        assert con.execute("SELECT count(*) FROM raw_traces").fetchone() == (0,)
    writer.wait(timeout=30)
    writer = hold(path, seconds=8, read_only=False)
    try:
        with pytest.raises(WarehouseLocked, match=rf"read-only: PID {writer.pid} .*try again when"):
            connect(path, read_only=True, timeout_seconds=0.5)
    finally:
        writer.kill()
        writer.wait(timeout=30)


def test_the_lock_timeout_comes_from_the_environment_and_is_checked(monkeypatch):
    monkeypatch.setenv(LOCK_TIMEOUT, "42")
    assert lock_timeout_seconds() == 42.0
    for bad in ("soon", "-1", "nan"):
        monkeypatch.setenv(LOCK_TIMEOUT, bad)
        with pytest.raises(ValueError, match=LOCK_TIMEOUT):
            lock_timeout_seconds()
    monkeypatch.delenv(LOCK_TIMEOUT)
    assert lock_timeout_seconds() == 300.0
