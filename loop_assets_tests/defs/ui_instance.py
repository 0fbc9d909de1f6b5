"""A Dagster instance a person could open: its own DAGSTER_HOME, warehouse and incoming folder, the loop
materialised over the days of generated traffic as one range run, and `dagster-webserver` on a free port
of 127.0.0.1, stopped by its process group (a test helper).

The range run is in-process (`loop_runner.Loop`, `dg.materialize` with the range tags) on the instance of
that DAGSTER_HOME: the same events as `eval-loop materialize`'s `dagster asset materialize
--partition-range`, without two more Python processes and model loads."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb

from loop_assets.cli import days_with_data
from loop_assets.devtools.sample_traffic import write_traffic
from loop_assets_tests.loop_process import dagster_home, loop_env
from loop_assets_tests.loop_runner import Loop
from loop_assets_tests.paths import ROOT

START_TIMEOUT = 240.0
"""Ceiling on the webserver's start and its code location's load (two shared cores, torch imported)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class UiInstance:
    root: Path
    home: Path
    incoming: Path
    warehouse: Path
    log: Path
    port: int = 0
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        return loop_env(self.home, self.incoming, self.warehouse)

    def query(self, sql: str) -> list[tuple]:
        with duckdb.connect(str(self.warehouse), read_only=True) as con:
            return con.execute(sql).fetchall()

    def graphql(self, query: str) -> dict:
        request = urllib.request.Request(
            f"{self.url}/graphql", data=json.dumps({"query": query}).encode(),
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=30) as response:
            body = json.load(response)
        if "errors" in body:
            raise RuntimeError(f"GraphQL errors: {body['errors']}")
        return body["data"]

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


def build(root: Path, *, days: int, per_day: int, start: date, seed: int = 11) -> UiInstance:
    """Generated traffic for `days` days (and the late records after them), materialised as one range run
    over the days that `make run` would find in the files."""
    ui = UiInstance(root, root / "dagster_home", root / "incoming", root / "warehouse.duckdb", root / "ui.log")
    dagster_home(ui.home)
    write_traffic(ui.incoming, days=days, per_day=per_day, seed=seed, start=start)
    found = days_with_data(ui.incoming)
    loop = Loop(root)  # its incoming folder and warehouse are the ones above
    loop.instance = dg.DagsterInstance.from_config(str(ui.home))
    try:
        result = loop.run(days=(found[0], found[-1]))
    finally:
        loop.instance.dispose()
    if not result.success:
        raise RuntimeError(f"the range run {found[0]}...{found[-1]} failed")
    return ui


def start_webserver(ui: UiInstance) -> UiInstance:
    """`dagster-webserver` (no daemon: nothing here needs sensors) on a free port; returns once the code
    location has loaded, or raises with the tail of its log."""
    ui.port = free_port()
    webserver = str(Path(sys.executable).with_name("dagster-webserver"))
    with ui.log.open("wb") as out:
        ui.process = subprocess.Popen(
            [webserver, "-h", "127.0.0.1", "-p", str(ui.port), "-w", str(ROOT / "workspace.yaml")],
            cwd=ui.root, env=ui.env(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    deadline = time.monotonic() + START_TIMEOUT
    query = "{ workspaceOrError { ... on Workspace { locationEntries { locationOrLoadError { __typename } } } } }"
    while time.monotonic() < deadline:
        if ui.process.poll() is not None:
            break
        try:
            entries = ui.graphql(query)["workspaceOrError"]["locationEntries"]
        except OSError:
            entries = []
        kinds = [e["locationOrLoadError"]["__typename"] for e in entries if e["locationOrLoadError"]]
        if "RepositoryLocation" in kinds:
            return ui
        if "PythonError" in kinds:
            break
        time.sleep(1)
    stop_webserver(ui)
    raise RuntimeError(f"dagster-webserver did not serve the code location; log {ui.log}:\n{ui.log_tail()}")


def stop_webserver(ui: UiInstance) -> None:
    if ui.process is None or ui.process.poll() is not None:
        return
    os.killpg(ui.process.pid, signal.SIGTERM)
    try:
        ui.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(ui.process.pid, signal.SIGKILL)
        ui.process.wait(timeout=10)
