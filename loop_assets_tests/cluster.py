"""A cluster on one machine for tests and measurements: Postgres, Redis, Celery workers, started and stopped by PID.

Dagster's instance on Postgres (deploy/cluster/dagster.yaml), the warehouse a DuckLake in the same
Postgres server, the Celery executor (EVAL_LOOP_EXECUTOR=celery) sending every step to the workers
(`dagster-celery worker start -y deploy/cluster/celery.yaml`), set up once with deploy/cluster/init.sh:
what the README's "Running on a cluster" tells a user to do, on 127.0.0.1.

    python -m loop_assets_tests.cluster --workers 1 --days 6 --per-day 2000   # throughput, 1 worker vs 2
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from loop_assets.tables import LOOP_TABLES
from loop_assets_tests.paths import ROOT
from loop_assets_tests.services import Postgres, Redis

BIN = Path(sys.executable).parent


@dataclass
class Cluster:
    """The servers, the lake, a DAGSTER_HOME with the cluster instance config, and the workers."""

    root: Path
    incoming: Path
    workers_wanted: int = 2
    postgres: Postgres = field(init=False)
    redis: Redis = field(init=False)
    workers: list[subprocess.Popen] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    launched: int = 0

    def start(self, **worker_env: str) -> Cluster:
        """Servers, instance, lake, then the workers (with `worker_env` added to their environment)."""
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
        return self.start_workers(**worker_env)

    def start_workers(self, **worker_env: str) -> Cluster:
        """`dagster-celery worker start` per worker, each its own process group; back when all are ready."""
        logs = {name: self.root / f"{name}-{int(time.time() * 1000)}.log" for name in self.names}
        env = {**self.env, **worker_env}
        for name in self.names:
            log = logs[name].open("wb")
            self.workers.append(
                subprocess.Popen(
                    [str(BIN / "dagster-celery"), "worker", "start", "-A", "dagster_celery.app", "-y",
                     str(ROOT / "deploy" / "cluster" / "celery.yaml"), "-n", name, "--", "--concurrency=1"],
                    cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                )
            )  # fmt: skip
        deadline = time.monotonic() + 90
        for name, worker in zip(self.names, self.workers, strict=True):
            while b" ready." not in logs[name].read_bytes():
                if worker.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{name} did not start:\n{logs[name].read_text()[-3000:]}")
                time.sleep(0.2)
        return self

    @property
    def names(self) -> list[str]:
        return [f"worker{i + 1}" for i in range(self.workers_wanted)]

    def materialize(self, first, last) -> subprocess.Popen:
        """`dagster asset materialize` of the loop's assets for days first..last: its steps go to the workers."""
        self.launched += 1
        log = (self.root / f"run{self.launched}-{first}.log").open("wb")
        return subprocess.Popen(
            [str(BIN / "dagster"), "asset", "materialize", "-m", "loop_assets.definitions", "--select",
             ",".join(LOOP_TABLES), "--partition-range", f"{first}...{last}"],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip

    def tails(self, chars: int = 3000) -> str:
        """The end of every run's and worker's log, for a failure message."""
        return "\n".join(f"--- {log.name} ---\n{log.read_text(errors='replace')[-chars:]}"
                         for log in sorted(self.root.glob("*.log")))  # fmt: skip

    def wait(self, runs: list[subprocess.Popen], timeout: float) -> list[int]:
        """Exit codes of `runs`; past `timeout` every run's process group is killed and TimeoutError raised."""
        deadline = time.monotonic() + timeout
        try:
            return [run.wait(timeout=max(0.1, deadline - time.monotonic())) for run in runs]
        except subprocess.TimeoutExpired:
            for run in runs:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(run.pid, signal.SIGKILL)
                run.wait(timeout=10)
            raise TimeoutError(f"runs did not finish in {timeout:g} s; logs under {self.root}") from None

    def stop(self) -> None:
        """The workers, then the servers (those that started)."""
        self.stop_workers()
        for server in (getattr(self, "redis", None), getattr(self, "postgres", None)):
            if server is not None:
                server.stop()

    def stop_workers(self) -> None:
        """A worker is the CLI, the celery process it starts and its pool's child, one process group:
        SIGTERM to the group (Celery's warm shutdown), SIGKILL what outlives 20 s."""
        for worker in self.workers:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(worker.pid, signal.SIGTERM)
        for worker in self.workers:
            deadline = time.monotonic() + 20
            while _group_alive(worker.pid) and time.monotonic() < deadline:
                worker.poll()  # reaps the CLI, our child
                time.sleep(0.1)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=10)
        self.workers = []


def _group_alive(pgid: int) -> bool:
    """Whether a process of group `pgid` still runs (zombies, dead but not reaped, do not count)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                return True
    return False


def split_days(first, days: int, runs: int) -> list[tuple]:
    """`days` days from `first` as `runs` consecutive ranges (first, last), as even as they go."""
    edges = [round(i * days / runs) for i in range(runs + 1)]
    return [(first + timedelta(days=a), first + timedelta(days=b - 1)) for a, b in itertools.pairwise(edges) if b > a]


def main(argv: list[str] | None = None) -> int:
    """Time the loop on generated traffic in cluster mode: the runs launched together, until all succeed."""
    from loop_assets.devtools.sample_traffic import write_traffic
    from loop_assets_tests.loop_runner import START

    parser = argparse.ArgumentParser(prog="python -m loop_assets_tests.cluster", description=main.__doc__)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--days", type=int, default=6)
    parser.add_argument("--per-day", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=2, help="concurrent range runs the days are split into")
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="eval-loop-cluster-"))
    incoming = root / "incoming"
    write_traffic(incoming, days=args.days, per_day=args.per_day, seed=23, start=START)
    cluster = Cluster(root / "cluster", incoming, workers_wanted=args.workers)
    try:
        started = time.monotonic()
        cluster.start()
        up = time.monotonic() - started
        started = time.monotonic()
        runs = [cluster.materialize(*half) for half in split_days(START, args.days, args.runs)]
        codes = cluster.wait(runs, timeout=3600)
        took = time.monotonic() - started
    finally:
        cluster.stop()
    traces = args.days * args.per_day
    print(f"workers={args.workers} runs={args.runs} days={args.days} traces={traces}: cluster up {up:.1f} s, "
          f"runs {took:.1f} s ({traces / took:.0f} traces/s), exit codes {codes}; logs in {root}")  # fmt: skip
    return 0 if not any(codes) else 1


if __name__ == "__main__":
    sys.exit(main())
