"""The eval-loop command over a warehouse built by real Dagster runs."""

from __future__ import annotations

import json
from datetime import date

import duckdb
import polars as pl
import pytest

from loop_assets.cli import main
from loop_assets.report.stats import suite_stats
from loop_assets_tests.loop_process import dagster_home, loop_env


@pytest.fixture
def env(in_order, monkeypatch):
    loop, _ = in_order
    monkeypatch.setenv("EVAL_LOOP_WAREHOUSE", str(loop.warehouse))
    monkeypatch.setenv("EVAL_LOOP_INCOMING", str(loop.incoming))
    return loop


def test_lineage_prints_the_chain_down_to_the_source_line(env, capsys):
    case_id, file, line = env.table("SELECT case_id, source_file, source_line FROM eval_suite LIMIT 1").row(0)
    assert main(["lineage", case_id]) == 0
    out = capsys.readouterr().out
    for step in ("case ", "candidate ", "cluster ", "scored trace", "raw trace ", f"source {file}:{line}"):
        assert step in out
    assert main(["lineage", case_id, "--json"]) == 0
    chain = json.loads(capsys.readouterr().out)
    assert chain["source"]["found"] is True and chain["source"]["mentions_trace_id"] is True


def test_lineage_of_an_unknown_case_says_so(env, capsys):
    assert main(["lineage", "case_nope"]) == 2
    assert "no case 'case_nope'" in capsys.readouterr().err


def test_export_round_trips_with_provenance_and_pins_a_version(env, tmp_path):
    out = tmp_path / "suite.jsonl"
    assert main(["export", "--format", "jsonl", "--out-dir", str(tmp_path), "--out", "suite.jsonl"]) == 0
    cases = [json.loads(line) for line in out.read_text().splitlines()]
    suite = env.table("SELECT case_id, source_file, source_line, day FROM eval_suite ORDER BY day, case_id")
    assert [c["case_id"] for c in cases] == suite["case_id"].to_list()
    first = cases[0]
    assert first["provenance"]["source_file"] == suite["source_file"][0]
    assert first["provenance"]["source_line"] == suite["source_line"][0]
    assert first["input"][-1]["role"] == "user" and first["grading"]["checks"]

    first_day = min(suite["day"])
    pinned = tmp_path / "first.jsonl"
    assert main(["export", "--as-of", str(first_day), "--out-dir", str(tmp_path), "--out", str(pinned)]) == 0
    pinned_ids = [json.loads(line)["case_id"] for line in pinned.read_text().splitlines()]
    assert pinned_ids == suite.filter(suite["day"] <= first_day)["case_id"].to_list()
    assert len(pinned_ids) < len(cases) or first_day == max(suite["day"])
    assert all(date.fromisoformat(c["day"]) <= first_day for c in map(json.loads, pinned.read_text().splitlines()))
    suites = [json.loads(line)["suite"] for line in pinned.read_text().splitlines()]
    assert all(s == suites[0] for s in suites)
    assert (suites[0]["as_of"], suites[0]["pinned"], suites[0]["cases"]) == (str(first_day), True, len(pinned_ids))


def test_stats_summarises_by_app_signal_and_family_and_lists_cases_on_request(env, capsys):
    suite = env.table("SELECT * FROM eval_suite WHERE status = 'active'")
    with duckdb.connect(str(env.warehouse), read_only=True) as con:
        tables = suite_stats(con, families=1000)
    by_app = suite.group_by("app").agg(pl.len().alias("cases"), pl.col("weight").sum().alias("w")).sort("app")
    got = tables["suite by app"].sort("app")
    assert got["app"].to_list() == by_app["app"].to_list() and got["cases"].to_list() == by_app["cases"].to_list()
    assert got["total_weight"].to_list() == pytest.approx(by_app["w"].to_list(), abs=1e-3)
    signals = suite.explode("failure_signals").select(pl.col("failure_signals").struct.field("scorer")).to_series()
    by_signal = next(frame for title, frame in tables.items() if title.startswith("suite by failure signal"))
    assert dict(by_signal.select("signal", "cases").iter_rows()) == dict(signals.value_counts().iter_rows())
    families = suite.filter(pl.col("cluster_id") >= 0).group_by("day", "cluster_id").agg(pl.col("cluster_size").sum())
    by_family = next(frame for title, frame in tables.items() if title.startswith("largest failure families"))
    assert by_family.height == families.height > 0 and by_family["traces"].sum() == families["cluster_size"].sum()
    assert tables["suite"].row(0)[:2] == (suite.height, pytest.approx(suite["weight"].sum(), abs=1e-3))

    assert main(["stats"]) == 0
    out = capsys.readouterr().out
    assert "suite by app" in out and "suite by failure signal" in out and "largest failure families" in out
    assert all(app in out for app in by_app["app"]) and not any(c in out for c in suite["case_id"])
    assert main(["stats", "--cases"]) == 0
    out = capsys.readouterr().out
    assert all(c in out for c in suite["case_id"])


def test_summary_prints_traffic_failures_and_the_suite(env, capsys):
    assert main(["summary"]) == 0
    out = capsys.readouterr().out
    assert "traffic by day" in out and "failures by signal" in out and "eval-loop lineage case_" in out
    assert "suite quality by app" in out and "coverage" in out and "failures no case covers" not in out


@pytest.mark.parametrize("command", [["stats"], ["summary"], ["lineage", "case_x"], ["export"]])
def test_a_missing_warehouse_is_one_line_and_exit_code_2(command, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EVAL_LOOP_WAREHOUSE", str(tmp_path / "nowhere" / "w.duckdb"))
    monkeypatch.chdir(tmp_path)
    assert main(command) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"eval-loop {command[0]}: no warehouse at ")
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing created, not even the folder


def test_a_file_that_is_not_a_warehouse_is_one_line_and_exit_code_2(tmp_path, monkeypatch, capsys):
    (tmp_path / "w.duckdb").write_text("not a database")
    monkeypatch.setenv("EVAL_LOOP_WAREHOUSE", str(tmp_path / "w.duckdb"))
    assert main(["stats"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("eval-loop stats: cannot use the warehouse")


def test_a_missing_config_file_is_one_line_and_exit_code_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EVAL_LOOP_CONFIG", str(tmp_path / "missing.yaml"))
    monkeypatch.setenv("EVAL_LOOP_INCOMING", str(tmp_path))
    for command in (["materialize"], ["summary"]):
        assert main(command) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "configuration file" in err[0] and "does not exist" in err[0]


def test_materialize_without_its_folders_or_with_bad_days_is_one_line_and_exit_code_2(
    tmp_path, traffic, monkeypatch, capsys
):
    monkeypatch.setenv("EVAL_LOOP_WAREHOUSE", str(tmp_path / "w.duckdb"))
    monkeypatch.setenv("EVAL_LOOP_INCOMING", str(tmp_path / "no_incoming"))
    assert main(["materialize"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "the incoming folder" in err[0] and "does not exist" in err[0]
    monkeypatch.setenv("EVAL_LOOP_INCOMING", str(traffic))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "no_home"))
    assert main(["materialize"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "DAGSTER_HOME=" in err[0] and "is not a folder" in err[0]
    monkeypatch.delenv("DAGSTER_HOME")
    for days, said in ((["--start", "monday"], "--start must be a day"), (["--end", "2000-01-01"], "is after --end")):
        assert main(["materialize", *days]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and said in err[0]
    assert list(tmp_path.iterdir()) == []  # no warehouse, no log


def test_generate_is_deterministic(tmp_path):
    assert main(["generate", "--days", "1", "--per-day", "20", "--out", str(tmp_path / "a")]) == 0
    assert main(["generate", "--days", "1", "--per-day", "20", "--out", str(tmp_path / "b")]) == 0
    a, b = sorted((tmp_path / "a").iterdir()), sorted((tmp_path / "b").iterdir())
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b] and a


def step_blocks(out: str) -> dict[str, list[str]]:
    """`materialize` output: each step's `done` line and the per-day lines under it."""
    blocks: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in out.splitlines():
        if line.startswith("    ") and current is not None:
            current.append(line.strip())
        elif " done in " in line:
            current = blocks[line.split()[0]] = [line]
        else:
            current = None
    return blocks


def figures(text: str) -> dict[str, float]:
    """{"traces": 1500.0, "files": 2.0} from "traces 1,500, files 2"."""
    pairs = (f.rsplit(" ", 1) for f in text.split(", ") if " " in f)
    return {k: float(v.replace(",", "")) for k, v in pairs}


def day_figures(block: list[str]) -> dict[str, dict[str, float]]:
    """{day: {figure: value}} from a step's per-day lines ("2026-11-16  traces 1,500, files 2") and the
    figures its done line says are the same every day ("... (8 days; every day: files 1)")."""
    every_day = figures(block[0].split("every day: ", 1)[1].rstrip(")")) if "every day: " in block[0] else {}
    out = {}
    for line in block[1:]:
        day, _, text = line.partition("  ")
        out[day] = {**every_day, **figures(text)}
    return out


@pytest.mark.slow
def test_materialize_prints_each_step_with_per_day_figures_that_match_the_warehouse(tmp_path, traffic):
    """`make run` = `eval-loop materialize`: a real Dagster run of the eval_loop job over the days of the files,
    tagged with its days; each step's lines as it ends, with each day's own figures; no file in the cwd."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    import dagster as dg

    home, incoming, cwd = tmp_path / "home", tmp_path / "incoming", tmp_path / "cwd"
    dagster_home(home)
    cwd.mkdir()
    shutil.copytree(traffic, incoming)
    env = loop_env(home, incoming, tmp_path / "w.duckdb")
    cli = str(Path(sys.executable).with_name("eval-loop"))
    done = subprocess.run([cli, "materialize"], env=env, cwd=cwd, capture_output=True, text=True, timeout=600)
    logs = list((tmp_path / "logs").glob("materialize-*.log"))
    assert done.returncode == 0, done.stdout + done.stderr + "".join(p.read_text()[-3000:] for p in logs)
    assert "succeeded" in done.stdout and len(logs) == 1 and list(cwd.iterdir()) == []

    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        traces = dict(con.execute("SELECT day::VARCHAR, count(*) FROM raw_traces GROUP BY ALL").fetchall())
        failures = dict(
            con.execute("SELECT day::VARCHAR, count(*) FROM scored_traces WHERE is_failure GROUP BY ALL").fetchall()
        )
        promoted = dict(con.execute("SELECT day::VARCHAR, count(*) FROM eval_suite GROUP BY ALL").fetchall())
    first, last = min(traces), max(traces)
    assert len(traces) > 1 and sum(failures.values()) > 0 and sum(promoted.values()) > 0

    out = done.stdout
    blocks = step_blocks(out)
    for step in ("raw_traces", "scored_traces", "failure_clusters", "graded_candidates", "eval_suite"):
        assert f"{step:<18} {first}...{last}  started" in out
        assert blocks[step][0].startswith(f"{step:<18} {first}...{last}  done in ")
    assert blocks["suite_coverage"][0].startswith("suite_coverage     all days  done in ")
    raw, scored, suite = (day_figures(blocks[s]) for s in ("raw_traces", "scored_traces", "eval_suite"))
    assert {d: f["traces"] for d, f in raw.items()} == traces  # each day's own count, not the range's
    assert {d: f.get("failures", 0) for d, f in scored.items()} == {d: failures.get(d, 0) for d in traces}
    assert {d: f.get("promoted", 0) for d, f in suite.items()} == {d: promoted.get(d, 0) for d in traces}

    instance = dg.DagsterInstance.from_config(str(home))
    loop_runs = [r for r in instance.get_runs() if r.job_name == "eval_loop"]
    assert len(loop_runs) == 1 and loop_runs[0].tags["eval_loop/days"] == f"{first}...{last}"
    assert f"Dagster run {loop_runs[0].run_id} started" in out

    summary = subprocess.run([cli, "summary"], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)
    assert summary.returncode == 0 and "suite by app" in summary.stdout and "eval-loop lineage case_" in summary.stdout
