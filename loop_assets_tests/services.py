"""Real Postgres and Redis servers on 127.0.0.1 for the cluster tests, started here and stopped by PID.

Each server is private to the test: its own data folder under the test's tmp_path, a free port, no
fsync. Postgres refuses to run as root, so as root it runs as the `postgres` user the Debian package
creates. Where the binaries are missing, `require_services` installs them with the project's own script
(deploy/cluster/install-services.sh, apt) when it can, and skips the test with the reason when it cannot.
"""

from __future__ import annotations

import contextlib
import glob
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
INSTALL_SCRIPT = ROOT / "deploy" / "cluster" / "install-services.sh"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_bin(name: str) -> str | None:
    """initdb/pg_ctl/postgres: Debian keeps them under /usr/lib/postgresql/<version>/bin, off the PATH."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


def missing_services() -> list[str]:
    return [n for n, path in (("postgres", postgres_bin("postgres")), ("redis-server", shutil.which("redis-server")))
            if path is None]  # fmt: skip


def require_cluster_extra() -> None:
    """Skip, saying how to install it, where the `cluster` extra is not installed (`make test` installs it)."""
    missing = [m for m in ("dagster_celery", "dagster_postgres", "duckdb_extension_ducklake")
               if importlib.util.find_spec(m) is None]  # fmt: skip
    if missing:
        pytest.skip(f"the cluster extra is not installed ({', '.join(missing)}): pip install -e '.[cluster]'")


def require_services() -> None:
    """The cluster extra, and Postgres and Redis, installed when missing (as root, with apt); else a skip
    with the reason."""
    require_cluster_extra()
    missing = missing_services()
    if not missing:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip(f"{', '.join(missing)} not installed and apt-get cannot be used here (not root or no apt): "
                    f"run `sudo {INSTALL_SCRIPT.relative_to(ROOT)}` to run the cluster tests")  # fmt: skip
    subprocess.run(["bash", str(INSTALL_SCRIPT)], check=True, timeout=900)
    if missing_services():
        pytest.fail(f"{INSTALL_SCRIPT} ran but {', '.join(missing_services())} is still missing")


def _stop_pid(pid: int, timeout: float = 20.0, sig: signal.Signals = signal.SIGTERM) -> None:
    """`sig`, then SIGKILL if the process outlives `timeout`."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


class Postgres:
    """A private Postgres cluster: `start()` gives a server on 127.0.0.1:`port`; `stop()` ends it by PID."""

    def __init__(self, root: Path):
        self.root = root
        self.data = root / "pgdata"
        self.port = free_port()
        self.user = "postgres"
        self.pid: int | None = None
        self._as: list[str] = []

    def _run(self, *argv: str) -> subprocess.CompletedProcess:
        done = subprocess.run([*self._as, *argv], capture_output=True, text=True, timeout=120)
        if done.returncode:
            raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stdout}{done.stderr}")
        return done

    def start(self) -> Postgres:
        self.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:  # postgres will not run as root: the Debian package's user runs it
            shutil.chown(self.root, "postgres")
            for parent in self.root.parents:  # pytest's tmp folders are 0700: let that user pass through
                if parent.stat().st_uid == 0 and not parent.stat().st_mode & 0o001:
                    parent.chmod(parent.stat().st_mode | 0o001)
            self._as = ["runuser", "-u", "postgres", "--"]
        self._run(postgres_bin("initdb"), "-D", str(self.data), "-U", self.user, "-A", "trust", "--no-sync", "-E",
                  "UTF8", "--locale=C.UTF-8")  # fmt: skip
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        self._run(postgres_bin("pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.root / "pg.log"),
                  "-w", "-t", "60", "start")  # fmt: skip
        self.pid = int((self.data / "postmaster.pid").read_text().split()[0])
        return self

    def create_database(self, name: str) -> str:
        """Create `name`; returns its libpq connection string."""
        subprocess.run(
            ["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, "-d", "postgres", "-q", "-c",
             f'CREATE DATABASE "{name}"'],
            check=True, capture_output=True,
        )  # fmt: skip
        return self.conninfo(name)

    def conninfo(self, database: str) -> str:
        return f"dbname={database} host=127.0.0.1 port={self.port} user={self.user}"

    def url(self, database: str) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        if self.pid is not None:
            # SIGINT: Postgres' fast shutdown (SIGTERM's smart one waits for every client to hang up)
            _stop_pid(self.pid, sig=signal.SIGINT)
            self.pid = None


class Redis:
    """A private Redis on 127.0.0.1:`port`, no persistence; `stop()` ends it by PID."""

    def __init__(self, root: Path):
        self.root = root
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    def start(self) -> Redis:
        self.root.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [shutil.which("redis-server") or "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(self.root)],
            stdout=(self.root / "redis.log").open("w"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not answer on port {self.port}: {(self.root / 'redis.log').read_text()}")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        if self.process is not None:  # our child: wait() reaps it (a zombie still answers kill(pid, 0))
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
            self.process = None
