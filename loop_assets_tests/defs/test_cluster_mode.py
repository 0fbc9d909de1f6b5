"""Cluster mode for real: Postgres, Redis and two Celery workers on 127.0.0.1, started here and stopped by PID.

Dagster's instance on Postgres (deploy/cluster/dagster.yaml), the warehouse a DuckLake in the same
Postgres server, the Celery executor (EVAL_LOOP_EXECUTOR=celery) sending every step to two workers
(`dagster-celery worker start`, deploy/cluster/celery.yaml; the helper is loop_assets_tests/cluster.py).
A generated week runs as two `dagster asset materialize` range runs launched together; one worker's
process is killed inside a step's partition transaction, and the runs are launched again, together, on
restarted workers. The suite, every grading decision, the failure families and the partition log must
then equal the laptop's (one in-process run on a DuckDB file, same input), with steps on both workers.
One test, one cluster: starting one costs 15-30 s on these machines.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import dagster as dg
import pytest

from loop_assets.defs.executor import loop_executor
from loop_assets.devtools.sample_traffic import write_traffic
from loop_assets.warehouse import open_lake
from loop_assets_tests.cluster import Cluster, split_days
from loop_assets_tests.loop_runner import START, checks, new_loop
from loop_assets_tests.services import require_cluster_extra, require_services

WEEK = [START + timedelta(days=i) for i in range(6)]
HALVES = split_days(WEEK[0], len(WEEK), 2)  # two range runs, launched together
CASES = "SELECT case_id, app, day, label, input_text, weight FROM eval_suite ORDER BY case_id"
CLUSTERS = "SELECT trace_id, day, cluster_id, is_representative FROM failure_clusters ORDER BY trace_id, day"
LOGGED = "SELECT asset, day, rows FROM partition_log ORDER BY asset, day"
DECISIONS = "SELECT candidate_id, app, day, decision, dedup_threshold FROM graded_candidates ORDER BY candidate_id"


@pytest.fixture
def week(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("week")
    write_traffic(out, days=len(WEEK), per_day=80, seed=23, start=WEEK[0])
    return out


def test_the_celery_executor_is_one_setting_and_takes_its_broker_from_the_environment(monkeypatch):
    require_cluster_extra()
    monkeypatch.setenv("EVAL_LOOP_EXECUTOR", "celery")
    monkeypatch.setenv("EVAL_LOOP_CELERY_BROKER", "redis://broker.internal:6379/3")
    monkeypatch.delenv("EVAL_LOOP_CELERY_BACKEND", raising=False)
    executor = loop_executor()
    assert executor.name == "celery"
    config = executor.config_schema.resolve_config({}).value["config"]  # what a run gets without run config
    assert config["broker"] == config["backend"] == "redis://broker.internal:6379/3"


@pytest.mark.slow
def test_two_workers_concurrent_runs_and_a_worker_killed_mid_step_give_the_laptop_s_tables(tmp_path, week, monkeypatch):
    require_services()
    began = time.monotonic()
    laptop = new_loop(tmp_path / "laptop", week)
    result = laptop.run(days=(WEEK[0], WEEK[-1]))  # the laptop: one in-process run of the week, on a DuckDB file
    assert result.success and all(checks(result).values())
    on_laptop = time.monotonic() - began
    cluster = Cluster(tmp_path / "cluster", new_loop(tmp_path / "cluster-data", week).incoming)
    marker = tmp_path / "paused"
    try:
        started = time.monotonic()
        # the first run's embedding step stops inside its partition transaction (the project's crash hook)
        cluster.start(EVAL_LOOP_PAUSE_AT=f"failure_clusters:{WEEK[0]}", EVAL_LOOP_PAUSE_MARKER=str(marker))
        up = time.monotonic() - started
        first = [cluster.materialize(*half) for half in HALVES]  # at once: the pool and the grading order decide
        deadline = time.monotonic() + 180
        while not marker.exists():
            assert first[0].poll() is None and time.monotonic() < deadline, cluster.tails()
            time.sleep(0.2)
        os.kill(int(marker.read_text().split()[1]), signal.SIGKILL)  # the worker's process running the step
        # the first run fails with its lost step; the second cannot grade its days before the first's
        assert cluster.wait(first, timeout=180) == [1, 1], cluster.tails()
        cluster.stop_workers()  # workers as after a deploy: no crash hook
        cluster.start_workers()
        started = time.monotonic()
        again = [cluster.materialize(*half) for half in HALVES]
        assert cluster.wait(again, timeout=240) == [0, 0], cluster.tails()
        rerun = time.monotonic() - started
        monkeypatch.setenv("DAGSTER_POSTGRES_URL", cluster.env["DAGSTER_POSTGRES_URL"])
        instance = dg.DagsterInstance.from_config(cluster.env["DAGSTER_HOME"])
        try:
            statuses = [r.dagster_run.status for r in instance.get_run_records()]
            hosts = {
                str(entry.dagster_event.engine_event_data.metadata["Celery worker"].value).split("@")[0]
                for record in instance.get_run_records()
                for entry in instance.all_logs(record.dagster_run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT)
                if "Celery worker" in entry.dagster_event.engine_event_data.metadata
            }
        finally:
            instance.dispose()
        assert Counter(statuses) == {dg.DagsterRunStatus.FAILURE: 2, dg.DagsterRunStatus.SUCCESS: 2}
        assert hosts == set(cluster.names), hosts  # both workers ran steps
        with open_lake(cluster.env["EVAL_LOOP_DUCKLAKE_CATALOG"]) as con:
            tables = {sql: con.execute(sql).pl() for sql in (CASES, DECISIONS, CLUSTERS, LOGGED)}
        print(f"laptop run {on_laptop:.1f} s; cluster up {up:.1f} s; the two runs again {rerun:.1f} s")
    finally:
        cluster.stop()
    assert tables[CASES].height > 0
    for sql, frame in tables.items():
        assert frame.equals(laptop.table(sql)), sql
