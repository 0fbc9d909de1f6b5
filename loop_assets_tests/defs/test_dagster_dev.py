"""`dagster dev` (webserver and daemon) as a user runs it: the UI sees the loop, a dropped file grows the suite."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import duckdb
import pytest

from loop_assets.devtools.sample_traffic import write_traffic
from loop_assets_tests.loop_process import dagster_home, loop_env
from loop_assets_tests.loop_runner import START
from loop_assets_tests.paths import ROOT

WORKSPACE = """
{
  workspaceOrError { ... on Workspace { locationEntries { locationOrLoadError {
    __typename
    ... on RepositoryLocation { repositories { name
      sensors { name sensorState { status } }
      schedules { name cronSchedule scheduleState { status } }
    } }
    ... on PythonError { message }
  } } } }
  assetNodes { assetKey { path } assetChecksOrError { ... on AssetChecks { checks { name } } } }
}
"""
RUNS = '{ runsOrError(filter: {pipelineName: "eval_loop"}) { ... on Runs { results { runId status endTime } } } }'
COVERAGE_RUNS = """
{ assetOrError(assetKey: {path: ["suite_coverage"]}) { ... on Asset {
    assetMaterializations(limit: 10) { runId timestamp } } } }
"""
AUTOMATION_TICKS = """
{ sensorOrError(sensorSelector: {repositoryLocationName: "eval_loop", repositoryName: "__repository__",
                                 sensorName: "coverage_automation"}) {
    ... on Sensor { sensorState { ticks(limit: 100) { timestamp status runIds } } } } }
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        body = json.load(response)
    assert "errors" not in body, body
    return body["data"]


def wait_for(what: str, probe, timeout: float, log: Path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = probe()
        except OSError:
            value = None
        if value:
            return value
        time.sleep(2)
    tail = log.read_text(errors="replace")[-4000:] if log.exists() else ""
    pytest.fail(f"timed out after {timeout}s waiting for {what}\n--- dagster dev log tail ---\n{tail}")


@pytest.mark.slow
def test_dagster_dev_serves_the_loop_and_a_dropped_file_grows_the_suite(tmp_path):
    port, home, incoming = free_port(), tmp_path / "dagster_home", tmp_path / "incoming"
    dagster_home(home)
    incoming.mkdir()
    warehouse = tmp_path / "warehouse.duckdb"
    env = loop_env(
        home,
        incoming,
        warehouse,
        EVAL_LOOP_SENSOR_INTERVAL="5",
        EVAL_LOOP_SETTLE_SECONDS="0",
        EVAL_LOOP_AUTOMATION_INTERVAL="5",
    )
    log = tmp_path / "dagster-dev.log"
    dagster = str(Path(sys.executable).with_name("dagster"))
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [dagster, "dev", "-h", "127.0.0.1", "-p", str(port), "-w", str(ROOT / "workspace.yaml")],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        wait_for(
            "the webserver", lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=5), 180, log
        )
        data = wait_for("the code location", lambda: _loaded(graphql(port, WORKSPACE)), 120, log)
        [repo] = data["workspaceOrError"]["locationEntries"][0]["locationOrLoadError"]["repositories"]
        sensors = {s["name"]: s["sensorState"]["status"] for s in repo["sensors"]}
        schedules = {s["name"]: s["scheduleState"]["status"] for s in repo["schedules"]}
        assert sensors["new_trace_files"] == "RUNNING" and schedules["finalise_yesterday"] == "RUNNING"
        assets = {"/".join(n["assetKey"]["path"]): n for n in data["assetNodes"]}
        assert {"raw_traces", "scored_traces", "failure_clusters", "graded_candidates", "eval_suite"} <= set(assets)
        checks = {c["name"] for n in assets.values() for c in n["assetChecksOrError"].get("checks", [])}
        assert {"records_accounted_for", "no_near_duplicate_cases", "complete_provenance"} <= checks

        # drop a day of traffic into the incoming folder: the daemon's sensor tick starts the loop
        write_traffic(incoming, days=1, per_day=60, seed=21, start=START)
        runs = wait_for("a successful eval_loop run", lambda: _finished(graphql(port, RUNS)), 300, log)
        assert all(r["status"] == "SUCCESS" for r in runs), runs
        with duckdb.connect(str(warehouse), read_only=True) as con:
            assert con.execute("SELECT count(*) FROM eval_suite").fetchone()[0] > 0
            assert con.execute("SELECT count(*) FROM raw_traces").fetchone()[0] >= 60

        # the suite changed: the automation sensor refreshes suite_coverage by itself, within two of its ticks
        coverage = wait_for("suite_coverage refreshed by automation", lambda: _coverage_runs(port), 180, log)
        loop_end = max(r["endTime"] for r in runs)
        ticks = sorted(_automation_ticks(port), key=lambda t: t["timestamp"])
        after = [t for t in ticks if t["timestamp"] >= loop_end]
        requested = [i for i, t in enumerate(after) if set(t["runIds"]) & {r["runId"] for r in coverage}]
        assert requested and requested[0] <= 1, (after[:4], coverage)
        assert "BetaWarning" not in log.read_text(errors="replace")  # quiet logs: no warning per asset per process
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def _loaded(data: dict) -> dict | None:
    entries = data["workspaceOrError"]["locationEntries"]
    return data if entries and entries[0]["locationOrLoadError"]["__typename"] == "RepositoryLocation" else None


def _finished(data: dict) -> list | None:
    runs = data["runsOrError"]["results"]
    done = [r for r in runs if r["status"] in ("SUCCESS", "FAILURE", "CANCELED")]
    return done if runs and len(done) == len(runs) else None


def _coverage_runs(port: int) -> list[dict] | None:
    """The runs that materialised suite_coverage (launched by the automation sensor: nothing else runs it here)."""
    found = graphql(port, COVERAGE_RUNS)["assetOrError"].get("assetMaterializations") or []
    return [{"runId": m["runId"]} for m in found] or None


def _automation_ticks(port: int) -> list[dict]:
    return graphql(port, AUTOMATION_TICKS)["sensorOrError"]["sensorState"]["ticks"]
