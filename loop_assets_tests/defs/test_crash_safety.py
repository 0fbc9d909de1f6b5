"""Crash safety: a materialisation SIGKILLed at real moments, then re-run, equals a run never interrupted.

The runs are real `dagster asset materialize` processes (the loop's assets over three days as one
range run, the in-process executor) against a temporary DAGSTER_HOME (a copy of the project's
`dagster.yaml`: the `duckdb` pool of size 1) and a temporary warehouse. Each is killed, process group
and all, with SIGKILL:

1. during ingest: inside `raw_traces`'s transaction, every row written, not committed
   (`EVAL_LOOP_PAUSE_AT=raw_traces`, the test-only hook in `warehouse.pause_point`);
2. during embedding, without any hook: 1.5 s after the `failure_clusters` step starts (the model is
   loading or encoding);
3. during embedding: new embeddings committed to the cache, the clusters not written yet
   (`failure_clusters:embedded`);
4. during promotion: the second day's `eval_suite` transaction written and not committed, the first
   day's committed (`eval_suite:<day 2>`).

After each kill: the warehouse opens, no partition is partial (every table's days are exactly the days
`partition_log` has for its asset, with the logged row counts, and every suite day has exactly the
cases its grading promoted), and what was committed before the kill is there. A killed run keeps its
slot in the `duckdb` pool (Dagster cannot tell that a local run's process died), so every later run
would wait for the slot for ever: the test does what an operator does in the UI (mark the run failed,
free its pool slot) before the next run. The final run completes, and every table's content hash
(run ids and bookkeeping timestamps left out) equals that of an uninterrupted range run.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import polars as pl
import pytest

from loop_assets.config import LoopConfig
from loop_assets.dedup.failure_clusters import cluster_failures
from loop_assets.tables import LOOP_TABLES, PARTITION_COLUMN
from loop_assets_tests.loop_process import dagster_home, loop_env
from loop_assets_tests.loop_runner import DAYS
from loop_assets_tests.paths import ROOT

DAGSTER = str(Path(sys.executable).with_name("dagster"))
RANGE = f"{DAYS[0]}...{DAYS[-1]}"

# Columns that differ between two runs of the same data by design: which run wrote a row and when (every
# *run_id column too), and whether this run or an earlier one computed an embedding.
VOLATILE = {"file_mtime", "promoted_at", "created_at", "written_at", "graded_at", "run_at", "embedding_source"}
COMPARED = [*PARTITION_COLUMN, "embedding_cache", "partition_log"]
OWNER = {"quarantined_records": "raw_traces", "skipped_items": "raw_traces", "ingest_manifest": "raw_traces"}


# --- a Dagster deployment in a temporary folder, and runs launched into it ---------------------------------


@dataclass
class Launched:
    proc: subprocess.Popen
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"the run did not finish in {timeout}s\n--- log tail ---\n{self.text()[-4000:]}")

    def kill(self) -> None:
        """SIGKILL the run's whole process group (the run and any step processes), as a crash would."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)


@dataclass
class Deployment:
    """DAGSTER_HOME (the project's dagster.yaml), incoming folder and warehouse under one temporary folder."""

    root: Path
    traffic: Path
    home: Path = field(init=False)
    incoming: Path = field(init=False)
    warehouse: Path = field(init=False)
    launched: list[Launched] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.home, self.incoming, self.warehouse = self.root / "home", self.root / "incoming", self.root / "wh.duckdb"
        dagster_home(self.home)
        self.incoming.mkdir()
        for f in sorted(self.traffic.iterdir()):
            (self.incoming / f.name).write_bytes(f.read_bytes())

    def env(self, **extra: str) -> dict[str, str]:
        return loop_env(
            self.home,
            self.incoming,
            self.warehouse,
            EVAL_LOOP_EXECUTOR="in_process",  # the steps in the run's process: a kill takes the whole run
            TOKENIZERS_PARALLELISM="false",
            **extra,
        )

    def launch(self, name: str, *, partition: str | None = None, **extra: str) -> Launched:
        """`dagster asset materialize` of the loop's assets for one day or (default) the three-day range."""
        target = ["--partition", partition] if partition else ["--partition-range", RANGE]
        command = [DAGSTER, "asset", "materialize", "-m", "loop_assets.definitions", "--select",
                   ",".join(LOOP_TABLES), *target]  # fmt: skip
        log = self.root / f"{name}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                command, cwd=ROOT, env=self.env(**extra), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        launched = Launched(proc, log)
        self.launched.append(launched)
        return launched

    def instance(self) -> dg.DagsterInstance:
        return dg.DagsterInstance.from_config(str(self.home))

    def stop_all(self) -> None:
        for launched in self.launched:
            if launched.proc.poll() is None:
                launched.kill()


def wait_until(what: str, probe, timeout: float, launched: Launched):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        if launched.proc.poll() is not None:
            pytest.fail(f"the run ended ({launched.proc.returncode}) before {what}\n{launched.text()[-4000:]}")
        time.sleep(0.1)
    launched.kill()
    pytest.fail(f"timed out after {timeout}s waiting for {what}\n--- log tail ---\n{launched.text()[-4000:]}")


def recover_crashed_runs(instance: dg.DagsterInstance) -> list[str]:
    """What an operator does after a crash: mark the dead run failed and free the pool slot it still holds.

    (In the UI: Terminate the run, then free its slots under Deployment > Concurrency.) Returns the run
    ids that held a `duckdb` slot.
    """
    holders = [s.run_id for s in instance.event_log_storage.get_concurrency_info("duckdb").claimed_slots]
    for record in instance.get_run_records(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])):
        instance.report_run_failed(record.dagster_run, "the run's process was killed (SIGKILL)")
        instance.event_log_storage.free_concurrency_slots_for_run(record.dagster_run.run_id)
    return holders


# --- what the warehouse holds ---------------------------------------------------------------------------------


def columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    rows = con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position", [table]
    ).fetchall()
    return [c for (c,) in rows if not (c in VOLATILE or c.endswith("run_id"))]


def content_hashes(path: Path) -> dict[str, tuple[int, str]]:
    """Per table: rows and md5 of every row (run ids and bookkeeping timestamps left out), order-free."""
    out = {}
    with duckdb.connect(str(path), read_only=True) as con:
        for table in COMPARED:
            cols = columns(con, table)
            if not cols:
                out[table] = (0, "")
                continue
            row = "CAST(ROW(" + ", ".join(f'"{c}"' for c in cols) + ") AS VARCHAR)"
            n, digest = con.execute(
                f"SELECT count(*), md5(coalesce(string_agg(r, chr(10) ORDER BY r), '')) "
                f"FROM (SELECT {row} AS r FROM {table})"
            ).fetchone()
            out[table] = (n, digest)
    return out


def partial_partitions(path: Path) -> list[str]:
    """Every way a partition could be half there; empty when each day of each table is whole or absent."""
    problems = []
    with duckdb.connect(str(path), read_only=True) as con:
        tables = {t for (t,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        if "partition_log" not in tables:
            return []
        logged = con.execute("SELECT asset, day, rows FROM partition_log").fetchall()
        logged_days = {(asset, day) for asset, day, _ in logged}
        for table, column in PARTITION_COLUMN.items():
            if table not in tables:
                continue
            owner = OWNER.get(table, table)
            for (day,) in con.execute(f"SELECT DISTINCT {column} FROM {table}").fetchall():
                if (owner, day) not in logged_days:
                    problems.append(f"{table} has rows for {day}, which partition_log does not have for {owner}")
        for asset, day, rows in logged:
            found = con.execute(f"SELECT count(*) FROM {asset} WHERE day = ?", [day]).fetchone()[0]
            if found != rows:
                problems.append(f"{asset} {day}: partition_log says {rows} rows, the table has {found}")
        if {"eval_suite", "graded_candidates"} <= tables:
            for day, cases, promoted in con.execute(
                """
                SELECT l.day,
                       (SELECT count(*) FROM eval_suite s WHERE s.day = l.day),
                       (SELECT count(*) FROM graded_candidates g WHERE g.day = l.day AND g.decision = 'promote')
                FROM partition_log l WHERE l.asset = 'eval_suite'
                """
            ).fetchall():
                if cases != promoted:
                    problems.append(f"eval_suite {day}: {cases} cases, but its grading promoted {promoted}")
    return problems


def committed_state(path: Path) -> tuple[dict[str, set[str]], int]:
    """The days partition_log has per asset, and the embeddings cached."""
    with duckdb.connect(str(path), read_only=True) as con:
        rows = con.execute("SELECT asset, day FROM partition_log").fetchall()
        cached = con.execute("SELECT count(*) FROM embedding_cache").fetchone()[0]
    days: dict[str, set[str]] = {}
    for asset, day in rows:
        days.setdefault(asset, set()).add(str(day))
    return days, cached


# --- the test ---------------------------------------------------------------------------------------------------


def paused_at(marker: Path):
    return lambda: marker.exists() and marker.read_text().strip()


def started_step(launched: Launched, step: str):
    return lambda: f'Started execution of step "{step}"' in launched.text()


ALL_DAYS = {str(d) for d in DAYS}


@pytest.mark.slow
def test_sigkill_at_ingest_embedding_and_promotion_then_a_rerun_equals_an_uninterrupted_run(tmp_path, traffic):
    # the uninterrupted run: the same command on a deployment of its own, alongside the crashes
    reference = Deployment(tmp_path / "reference", traffic)
    uninterrupted = reference.launch("uninterrupted")
    deployment = Deployment(tmp_path / "crashed", traffic)
    marker = tmp_path / "paused"
    crash_points = [
        # (name, pause stage or None for a timed kill, what must be committed after the kill)
        ("ingest", "raw_traces", {}),
        ("embedding, no hook", None, {"raw_traces": ALL_DAYS, "scored_traces": ALL_DAYS}),
        ("embedding", "failure_clusters:embedded", {"raw_traces": ALL_DAYS, "scored_traces": ALL_DAYS}),
        (
            "promotion",
            f"eval_suite:{DAYS[1]}",
            {n: ALL_DAYS for n in ("raw_traces", "scored_traces", "failure_clusters", "graded_candidates")}
            | {"eval_suite": {str(DAYS[0])}},
        ),
    ]
    try:
        for name, stage, committed in crash_points:
            marker.unlink(missing_ok=True)
            extra = {"EVAL_LOOP_PAUSE_AT": stage, "EVAL_LOOP_PAUSE_MARKER": str(marker)} if stage else {}
            run = deployment.launch(f"crash-{name.replace(' ', '-').replace(',', '')}", **extra)
            if stage:
                wait_until(f"the pause at {stage}", paused_at(marker), 240, run)
            else:
                wait_until("the failure_clusters step", started_step(run, "failure_clusters"), 240, run)
                time.sleep(1.5)
            run.kill()
            assert run.proc.returncode == -signal.SIGKILL, name
            if "failure_clusters" not in committed:  # killed inside that step, not after it
                assert 'Finished execution of step "failure_clusters"' not in run.text(), name

            assert partial_partitions(deployment.warehouse) == [], name
            state, cached = committed_state(deployment.warehouse)
            for asset, days in committed.items():
                assert state.get(asset, set()) == days, (name, asset, state)
            for asset in {"raw_traces", "failure_clusters", "eval_suite"} - set(committed):
                assert asset not in state, (name, asset, state)  # the killed transaction left nothing
            if stage == "failure_clusters:embedded":  # committed before the kill, and kept
                assert cached > 0, name
            with deployment.instance() as instance:
                holders = recover_crashed_runs(instance)
            assert len(holders) == 1, (name, holders)  # the dead run kept the pool slot until recovered

        final = deployment.launch("rerun")
        assert final.wait(timeout=300) == 0, final.text()[-4000:]
        assert uninterrupted.wait(timeout=300) == 0, uninterrupted.text()[-4000:]
    finally:
        deployment.stop_all()
        reference.stop_all()
    assert "RUN_SUCCESS" in final.text() and "RUN_SUCCESS" in uninterrupted.text()
    assert partial_partitions(deployment.warehouse) == []
    expected, got = content_hashes(reference.warehouse), content_hashes(deployment.warehouse)
    assert expected["eval_suite"][0] > 0 and got["embedding_cache"] == expected["embedding_cache"]
    assert {t: v for t, v in got.items() if v != expected[t]} == {}, "tables differ from the uninterrupted run"


def test_cluster_ids_do_not_depend_on_the_order_rows_arrive_in():
    """Found by the crash test: a re-run numbered the same clusters differently (a join kept no row order).

    HDBSCAN numbers clusters by input order, so `cluster_failures` must feed it rows in a fixed order.
    """
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(6, 384))
    rows, vectors = [], []
    for i in range(300):
        vector = centers[rng.integers(6)] + rng.normal(scale=0.3, size=384)
        rows.append({"trace_id": f"t{i:04d}", "day": DAYS[0], "app": "abc"[i % 3], "text": f"text {i}",
                     "ts": datetime(2026, 11, 16, tzinfo=UTC) + timedelta(seconds=i), "text_hash": f"h{i:04d}",
                     "severity": 0.5})  # fmt: skip
        vectors.append({"text_hash": f"h{i:04d}", "embedding": (vector / np.linalg.norm(vector)).tolist(),
                        "embedding_source": "cache"})  # fmt: skip
    texts = pl.DataFrame(rows)
    vectors = pl.DataFrame(vectors).with_columns(pl.col("embedding").cast(pl.List(pl.Float32)))
    results = [
        cluster_failures(texts.sample(fraction=1, shuffle=True, seed=s), vectors, LoopConfig(), "m", "run")
        .sort("trace_id")
        .select("trace_id", "cluster_id", "cluster_size", "is_representative")
        for s in range(3)
    ]
    assert results[0]["cluster_id"].n_unique() > 3
    assert all(r.equals(results[0]) for r in results[1:])
