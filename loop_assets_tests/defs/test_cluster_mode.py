"""Cluster mode for real: Postgres, Redis and two Celery workers on 127.0.0.1, started here and stopped by PID.

Dagster's instance on Postgres (deploy/cluster/dagster.yaml), the warehouse a DuckLake in the same
Postgres server, the Celery executor (EVAL_LOOP_EXECUTOR=celery) sending every step to two workers
(`dagster-celery worker start`, deploy/cluster/celery.yaml), and one `dagster asset materialize` per day
launched all at once. The suite and every grading decision must equal the laptop's (in-process runs, day
after day, on a DuckDB file) on the same generated traffic, and both workers must have run steps.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import dagster as dg
import pytest

from loop_assets.devtools.sample_traffic import write_traffic
from loop_assets.tables import LOOP_TABLES
from loop_assets.warehouse import open_lake
from loop_assets_tests.loop_runner import START, checks, new_loop
from loop_assets_tests.paths import ROOT
from loop_assets_tests.services import Postgres, Redis, require_services

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
WEEK = [START + timedelta(days=i) for i in range(6)]
HALVES = [(WEEK[0], WEEK[2]), (WEEK[3], WEEK[5])]  # two range runs, launched together
WORKERS = ("worker1", "worker2")
CASES = "SELECT case_id, app, day, label, input_text, weight FROM eval_suite ORDER BY case_id"
DECISIONS = "SELECT candidate_id, app, day, decision, dedup_threshold FROM graded_candidates ORDER BY candidate_id"


@dataclass
class Cluster:
    """The servers, the lake, a DAGSTER_HOME with the cluster instance config, and the workers."""

    root: Path
    incoming: Path
    postgres: Postgres = field(init=False)
    redis: Redis = field(init=False)
    workers: list[subprocess.Popen] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)

    def start(self) -> Cluster:
        self.postgres = Postgres(self.root / "postgres").start()
        self.redis = Redis(self.root / "redis").start()
        self.postgres.create_database("dagster")
        lake = self.postgres.create_database("lake")
        home = self.root / "home"
        home.mkdir()
        shutil.copy(ROOT / "deploy" / "cluster" / "dagster.yaml", home / "dagster.yaml")
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("EVAL_LOOP_", "DAGSTER_"))},
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",  # the CLI starts `celery` from the PATH
            "DAGSTER_HOME": str(home),
            "DAGSTER_POSTGRES_URL": self.postgres.url("dagster"),
            "EVAL_LOOP_EXECUTOR": "celery",
            "EVAL_LOOP_CELERY_BROKER": self.redis.url,
            "EVAL_LOOP_CELERY_BACKEND": self.redis.url,
            "EVAL_LOOP_DUCKLAKE_CATALOG": lake,
            "EVAL_LOOP_DUCKLAKE_DATA": str(self.root / "lake"),
            "EVAL_LOOP_INCOMING": str(self.incoming),
            "EVAL_LOOP_WAREHOUSE": str(self.root / "never-written.duckdb"),
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false",
        }
        # once, before any run: Dagster's tables, the pool's row and the lake
        subprocess.run(["bash", str(ROOT / "deploy" / "cluster" / "init.sh")], cwd=ROOT, env=self.env, check=True,
                       timeout=120)  # fmt: skip
        for name in WORKERS:
            log = (self.root / f"{name}.log").open("wb")
            self.workers.append(
                subprocess.Popen(
                    [str(BIN / "dagster-celery"), "worker", "start", "-A", "dagster_celery.app", "-y",
                     str(ROOT / "deploy" / "cluster" / "celery.yaml"), "-n", name, "--", "--concurrency=1"],
                    cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                )
            )  # fmt: skip
        deadline = time.monotonic() + 90
        for name, worker in zip(WORKERS, self.workers, strict=True):
            while b" ready." not in (self.root / f"{name}.log").read_bytes():
                if worker.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"{name} did not start:\n{(self.root / f'{name}.log').read_text()[-3000:]}")
                time.sleep(0.2)
        return self

    def materialize(self, first, last) -> subprocess.Popen:
        """`dagster asset materialize` of the loop's assets for days first..last: its steps go to the workers."""
        log = (self.root / f"run-{first}.log").open("wb")
        return subprocess.Popen(
            [str(BIN / "dagster"), "asset", "materialize", "-m", "loop_assets.definitions", "--select",
             ",".join(LOOP_TABLES), "--partition-range", f"{first}...{last}"],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip

    def stop(self) -> None:
        """The workers (the CLI and the celery process it started share a process group), then the servers."""
        for worker in self.workers:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(worker.pid, signal.SIGTERM)
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait(timeout=10)
        self.redis.stop()
        self.postgres.stop()


@pytest.fixture
def week(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("week")
    write_traffic(out, days=len(WEEK), per_day=80, seed=23, start=WEEK[0])
    return out


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
        for (day, _), run in zip(HALVES, runs, strict=True):
            try:
                code = run.wait(timeout=240)
            except subprocess.TimeoutExpired:
                for other in runs:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(other.pid, signal.SIGKILL)
                pytest.fail(f"run of {day} did not finish: {(cluster.root / f'run-{day}.log').read_text()[-3000:]}")
            assert code == 0, (cluster.root / f"run-{day}.log").read_text()[-4000:]
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
        assert hosts == set(WORKERS), hosts  # both workers ran steps
        with open_lake(cluster.env["EVAL_LOOP_DUCKLAKE_CATALOG"]) as con:
            cases, decisions = con.execute(CASES).pl(), con.execute(DECISIONS).pl()
        stopping = time.monotonic()
        cluster.stop()
        print(f"stopped in {time.monotonic() - stopping:.1f} s")
        print(f"laptop: {len(WEEK)} days {on_laptop:.1f} s; cluster: up {up:.1f} s, {len(HALVES)} runs {ran:.1f} s")
    finally:
        cluster.stop()
    assert cases.height > 0
    assert cases.equals(laptop.table(CASES))
    assert decisions.equals(laptop.table(DECISIONS))
