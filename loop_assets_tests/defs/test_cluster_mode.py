"""Cluster mode for real: Postgres, Redis and two Celery workers on 127.0.0.1, started here and stopped by PID.

Dagster's instance on Postgres (deploy/cluster/dagster.yaml), the warehouse a DuckLake in the same
Postgres server, the Celery executor (EVAL_LOOP_EXECUTOR=celery) sending every step to two workers
(`dagster-celery worker start`, deploy/cluster/celery.yaml), and one `dagster asset materialize` per day
launched all at once. The suite and every grading decision must equal the laptop's (in-process runs, day
after day, on a DuckDB file) on the same generated traffic, and both workers must have run steps.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from datetime import timedelta
from pathlib import Path

import dagster as dg
import pytest

from loop_assets.defs.executor import loop_executor
from loop_assets.devtools.sample_traffic import write_traffic
from loop_assets.warehouse import open_lake
from loop_assets_tests.cluster import Cluster, split_days
from loop_assets_tests.loop_runner import START, checks, new_loop
from loop_assets_tests.services import require_services

BIN = Path(sys.executable).parent
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
    monkeypatch.setenv("EVAL_LOOP_EXECUTOR", "celery")
    monkeypatch.setenv("EVAL_LOOP_CELERY_BROKER", "redis://broker.internal:6379/3")
    monkeypatch.delenv("EVAL_LOOP_CELERY_BACKEND", raising=False)
    executor = loop_executor()
    assert executor.name == "celery"
    config = executor.config_schema.resolve_config({}).value["config"]  # what a run gets without run config
    assert config["broker"] == config["backend"] == "redis://broker.internal:6379/3"


@pytest.mark.slow
def test_two_celery_workers_and_concurrent_runs_build_the_laptop_s_suite(tmp_path, week, monkeypatch):
    require_services()
    began = time.monotonic()
    laptop = new_loop(tmp_path / "laptop", week)
    result = laptop.run(days=(WEEK[0], WEEK[-1]))  # the laptop: one in-process run of the week, on a DuckDB file
    assert result.success and all(checks(result).values())
    on_laptop = time.monotonic() - began
    cluster = Cluster(tmp_path / "cluster", new_loop(tmp_path / "cluster-data", week).incoming)
    try:
        started = time.monotonic()
        cluster.start()
        up = time.monotonic() - started
        runs = [cluster.materialize(*half) for half in HALVES]  # at once: the pool and the grading order decide
        assert cluster.wait(runs, timeout=240) == [0, 0], cluster.tails()
        ran = time.monotonic() - started - up
        monkeypatch.setenv("DAGSTER_POSTGRES_URL", cluster.env["DAGSTER_POSTGRES_URL"])
        instance = dg.DagsterInstance.from_config(cluster.env["DAGSTER_HOME"])
        records = instance.get_run_records()
        assert len(records) == len(HALVES) and {r.dagster_run.status for r in records} == {dg.DagsterRunStatus.SUCCESS}
        hosts = set()
        for record in records:
            for entry in instance.all_logs(record.dagster_run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
                data = entry.dagster_event.engine_event_data if entry.dagster_event else None
                if data is not None and "Celery worker" in data.metadata:
                    hosts.add(str(data.metadata["Celery worker"].value).split("@")[0])
        instance.dispose()
        assert hosts == set(cluster.names), hosts  # both workers ran steps
        with open_lake(cluster.env["EVAL_LOOP_DUCKLAKE_CATALOG"]) as con:
            cases, decisions = con.execute(CASES).pl(), con.execute(DECISIONS).pl()
        print(f"laptop: {len(WEEK)} days {on_laptop:.1f} s; cluster: up {up:.1f} s, {len(HALVES)} runs {ran:.1f} s")
    finally:
        cluster.stop()
    assert cases.height > 0
    assert cases.equals(laptop.table(CASES))
    assert decisions.equals(laptop.table(DECISIONS))


@pytest.mark.slow
def test_a_worker_killed_in_the_middle_of_a_step_then_a_rerun_gives_the_laptop_s_tables(tmp_path, week):
    require_services()
    days = (WEEK[0], WEEK[2])
    laptop = new_loop(tmp_path / "laptop", week)
    assert laptop.run(days=days).success
    cluster = Cluster(tmp_path / "cluster", new_loop(tmp_path / "cluster-data", week).incoming)
    marker = tmp_path / "paused"
    try:
        # the step that embeds and clusters stops inside its partition transaction (the project's crash hook)
        cluster.start(EVAL_LOOP_PAUSE_AT=f"failure_clusters:{days[0]}", EVAL_LOOP_PAUSE_MARKER=str(marker))
        run = cluster.materialize(*days)
        deadline = time.monotonic() + 180
        while not marker.exists():
            assert run.poll() is None and time.monotonic() < deadline, cluster.tails()
            time.sleep(0.2)
        os.kill(int(marker.read_text().split()[1]), signal.SIGKILL)  # the worker's process running the step
        assert cluster.wait([run], timeout=120) != [0], cluster.tails()  # the run fails with its lost step
        cluster.stop_workers()  # workers as they are after a deploy: no crash hook
        cluster.start_workers()
        assert cluster.wait([cluster.materialize(*days)], timeout=240) == [0], cluster.tails()
        with open_lake(cluster.env["EVAL_LOOP_DUCKLAKE_CATALOG"]) as con:
            tables = {sql: con.execute(sql).pl() for sql in (CASES, DECISIONS, CLUSTERS, LOGGED)}
    finally:
        cluster.stop()
    assert tables[CASES].height > 0
    for sql, frame in tables.items():
        assert frame.equals(laptop.table(sql)), sql
