"""Eval runs: a small suite built in code, recorded outputs, pass rates computed by hand."""

import dataclasses
import json
from datetime import date

import duckdb
import polars as pl
import pytest

from loop_assets import cli
from loop_assets.evaluate.eval_run import (
    load_recorded_outputs,
    read_suite,
    render_summary,
    run_suite,
    store_eval_run,
    suite_version_of,
)
from loop_assets.llm_client import ChatClient
from loop_assets.tables import conform, schema
from loop_assets.warehouse import connect, ensure_tables, replace_partitions
from loop_assets_tests.chat_server import ChatServer, Reply

D1, D2 = date(2026, 11, 16), date(2026, 11, 17)
SCHEMA = {"type": "object", "required": ["sql"], "properties": {"sql": {"type": "string"}}}


def rule(*checks: dict) -> str:
    return json.dumps({"pass": "all", "checks": [{"type": "no_error"}, {"type": "non_empty"}, *checks]})


def case(case_id, app, day, cluster_id, weight, grading, prompt=None):
    messages = [{"role": "user", "content": prompt or f"question of {case_id}"}]
    return {
        "case_id": case_id,
        "app": app,
        "day": day,
        "cluster_id": cluster_id,
        "weight": weight,
        "grading": grading,
        "input_messages": json.dumps(messages),
    }


SUITE = pl.DataFrame(
    [
        case("c1", "support_bot", D1, 0, 0.8, rule({"type": "contains", "value": "refund"})),
        case("c2", "support_bot", D1, -1, 0.2, rule({"type": "exact", "expected": "42"})),
        case("c3", "support_bot", D1, -1, 0.5, rule({"type": "latency", "max_ms": 1000})),
        case("c4", "sql_assistant", D1, 1, 0.6, rule({"type": "json_schema", "schema": SCHEMA})),
        case("c5", "sql_assistant", D2, 0, 0.4, rule({"type": "json_schema", "schema": SCHEMA})),
        case("c6", "sql_assistant", D2, 0, 0.3, rule({"type": "rubric", "rubric": "valid SQL"})),
        case("c7", "summariser", D2, 2, 0.9, rule()),
        case("c8", "summariser", D2, 2, 0.7, rule()),
    ]
)

OUTPUT_LINES = [
    {"case_id": "c1", "output": "Your refund is on its way.", "finish_reason": "stop", "latency_ms": 300},
    {"case_id": "c2", "output": "41"},  # exact "42": fails
    {"case_id": "c3", "output": "Done.", "latency_ms": 500.0},  # within 1000 ms: passes
    {"case_id": "c4", "output": '{"sql": "SELECT 1"}'},  # valid: passes
    {"case_id": "c5", "output": "SELECT 1"},  # not JSON: fails
    {"case_id": "c6", "output": '{"sql": "SELECT 2"}'},  # rubric without judge: unknown
    "this is not json",  # bad line 7
    {"output": "no id"},  # bad line 8
    {"case_id": "c8", "output": "summary", "latency_ms": "fast"},  # bad line 9: c8 is missing, with this reason
    {"case_id": "c1", "output": "a second answer that would fail"},  # bad line 10: duplicate, first counts
    {"case_id": "case_not_in_suite", "output": "x"},
    # c7: no line at all: missing
]


@pytest.fixture
def outputs_file(tmp_path):
    path = tmp_path / "outputs.jsonl"
    lines = [line if isinstance(line, str) else json.dumps(line) for line in OUTPUT_LINES]
    path.write_text("\n".join(lines[:6]) + "\n\n" + "\n".join(lines[6:]) + "\n", encoding="utf-8")
    return path


def by_key(summary: pl.DataFrame, scope: str) -> dict[str, dict]:
    return {r["scope_key"]: r for r in summary.filter(pl.col("scope") == scope).iter_rows(named=True)}


def test_loading_reports_bad_lines_without_failing(outputs_file):
    frame = load_recorded_outputs(outputs_file)
    assert frame.height == 11  # the blank line is skipped, every other line is there
    problems = {r["line"]: r["problem"] for r in frame.filter(pl.col("problem").is_not_null()).iter_rows(named=True)}
    assert sorted(problems) == [8, 9, 10, 11]  # lines counted in the file, blank line 7 included
    assert problems[8].startswith("not valid JSON")
    assert problems[9] == "'case_id' must be a non-empty string"
    assert "'latency_ms' must be a non-negative number" in problems[10]
    assert problems[11] == "duplicate case_id c1 (first on line 1, which counts)"
    good = frame.filter(pl.col("problem").is_null())
    assert good.filter(pl.col("case_id") == "c1")["output"].to_list() == ["Your refund is on its way."]
    assert good.filter(pl.col("case_id") == "c3")["latency_ms"].to_list() == [500.0]


def test_loading_more_bad_shapes(tmp_path):
    path = tmp_path / "o.jsonl"
    path.write_bytes(
        b'[1, 2]\n{"case_id": "a"}\n{"case_id": "b", "output": 5}\n{"case_id": "c", "output": null, "error": "e"}\n'
        b'{"case_id": "d", "output": "x", "latency_ms": true}\n\xff\xfe\n'
    )
    frame = load_recorded_outputs(path)
    problems = dict(zip(frame["line"], frame["problem"], strict=True))
    assert problems[1] == "must be a JSON object, got list"
    assert "no 'output' key" in problems[2]
    assert problems[3].startswith("'output' must be a string or null, got int")
    assert problems[4] is None  # an errored answer with no text is a valid record
    assert "latency_ms" in problems[5]
    assert problems[6].startswith("line is not UTF-8")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_recorded_outputs(tmp_path / "nope.jsonl")


def test_pass_rates_overall_per_app_and_per_cluster_by_hand(outputs_file):
    result = run_suite(
        SUITE, load_recorded_outputs(outputs_file), suite_version="2026-11-17", model="gpt-x", run_id="r1"
    )
    status = dict(zip(result.results["case_id"], result.results["status"], strict=True))
    assert status == {
        "c1": "passed",
        "c2": "failed",
        "c3": "passed",
        "c4": "passed",
        "c5": "failed",
        "c6": "unknown",
        "c7": "missing",
        "c8": "missing",
    }
    reasons = dict(zip(result.results["case_id"], result.results["reason"], strict=True))
    assert reasons["c7"] == "no recorded output for this case"
    assert reasons["c8"].startswith("recorded output on line 10 is invalid: 'latency_ms'")
    assert reasons["c6"] == "rubric: no judge configured"
    failed = dict(zip(result.results["case_id"], result.results["failed_checks"].to_list(), strict=True))
    assert failed["c2"] == ["exact"] and failed["c5"] == ["json_schema"] and failed["c1"] == []

    overall = result.overall()
    # graded: c1 c2 c3 c4 c5; passed c1 c3 c4
    assert (overall["cases"], overall["graded"], overall["passed"], overall["failed"]) == (8, 5, 3, 2)
    assert (overall["unknown"], overall["missing"], overall["errored"]) == (1, 2, 0)
    assert overall["pass_rate"] == pytest.approx(3 / 5)
    assert overall["weighted_pass_rate"] == pytest.approx((0.8 + 0.5 + 0.6) / (0.8 + 0.2 + 0.5 + 0.6 + 0.4))
    assert overall["graded_weight"] == pytest.approx(2.5)

    apps = by_key(result.summary, "app")
    assert list(apps) == ["sql_assistant", "summariser", "support_bot"]
    assert apps["support_bot"]["pass_rate"] == pytest.approx(2 / 3)
    assert apps["support_bot"]["weighted_pass_rate"] == pytest.approx(1.3 / 1.5)
    assert apps["sql_assistant"]["pass_rate"] == pytest.approx(1 / 2)
    assert apps["sql_assistant"]["weighted_pass_rate"] == pytest.approx(0.6 / 1.0)
    assert apps["sql_assistant"]["unknown"] == 1
    assert apps["summariser"]["pass_rate"] is None and apps["summariser"]["weighted_pass_rate"] is None
    assert apps["summariser"]["missing"] == 2 and apps["summariser"]["cases"] == 2

    clusters = by_key(result.summary, "cluster")
    assert list(clusters) == ["2026-11-16/-1", "2026-11-16/0", "2026-11-16/1", "2026-11-17/0", "2026-11-17/2"]
    assert clusters["2026-11-16/0"]["pass_rate"] == 1.0
    assert clusters["2026-11-16/-1"]["pass_rate"] == pytest.approx(1 / 2)
    assert clusters["2026-11-16/-1"]["weighted_pass_rate"] == pytest.approx(0.5 / 0.7)
    assert clusters["2026-11-17/0"]["pass_rate"] == 0.0 and clusters["2026-11-17/0"]["unknown"] == 1
    assert clusters["2026-11-17/2"]["pass_rate"] is None
    assert clusters["2026-11-17/0"]["cluster_day"] == D2 and clusters["2026-11-17/0"]["cluster_id"] == 0
    assert clusters["2026-11-17/0"]["app"] == "sql_assistant"

    assert result.bad_output_lines["line"].to_list() == [8, 9, 10, 11]
    assert result.unmatched_outputs == ["case_not_in_suite"]
    assert set(result.summary["run_id"]) == {"r1"} and set(result.summary["model"]) == {"gpt-x"}
    assert result.results.schema == schema("eval_run_results")
    assert result.summary.schema == schema("eval_runs")


def test_a_judge_decides_rubrics_and_enters_the_rates(outputs_file):
    calls = []

    def judge(*, rubric, output, reference, messages):
        calls.append((rubric, output, messages[0]["content"]))
        return 0.75

    result = run_suite(SUITE, load_recorded_outputs(outputs_file), None, judge, "2026-11-17", "gpt-x", "r2")
    assert calls == [("valid SQL", '{"sql": "SELECT 2"}', "question of c6")]
    overall = result.overall()
    assert (overall["passed"], overall["failed"], overall["unknown"]) == (4, 2, 0)
    assert overall["pass_rate"] == pytest.approx(4 / 6)
    assert overall["weighted_pass_rate"] == pytest.approx((1.9 + 0.3) / 2.8)
    assert result.results.filter(pl.col("case_id") == "c6")["judge_score"].to_list() == [0.75]


def test_outputs_built_in_code_and_argument_checks():
    outputs = pl.DataFrame({"case_id": ["c1", "c1"], "output": ["refund", "no"]})
    result = run_suite(SUITE.head(1), outputs, suite_version="v", model="m", run_id="r")
    assert result.overall()["pass_rate"] == 1.0
    assert result.bad_output_lines["problem"].to_list() == ["duplicate case_id c1 (first on line 1, which counts)"]
    with pytest.raises(ValueError, match="exactly one"):
        run_suite(SUITE, None, None, suite_version="v", model="m", run_id="r")
    with pytest.raises(ValueError, match="lacks columns"):
        run_suite(SUITE.drop("grading"), outputs, suite_version="v", model="m", run_id="r")


def test_an_empty_suite_still_has_its_overall_row():
    result = run_suite(SUITE.clear(), pl.DataFrame({"case_id": ["x"], "output": ["y"]}), None, None, "v", "m", "r")
    overall = result.overall()
    assert overall["cases"] == 0 and overall["pass_rate"] is None
    assert result.summary.height == 1


def test_store_replaces_a_run_and_keeps_others(tmp_path, outputs_file):
    outputs = load_recorded_outputs(outputs_file)
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    first = run_suite(SUITE, outputs, suite_version="2026-11-17", model="gpt-x", run_id="run-a")
    assert store_eval_run(con, first) == {"eval_run_results": 8, "eval_runs": 1 + 3 + 5}
    store_eval_run(con, first)
    other = run_suite(SUITE.head(2), outputs, suite_version="2026-11-16", model="gpt-y", run_id="run-b")
    store_eval_run(con, other)
    counts = dict(con.execute("SELECT run_id, count(*) FROM eval_run_results GROUP BY ALL").fetchall())
    assert counts == {"run-a": 8, "run-b": 2}
    stored = con.execute(
        "SELECT suite_version, model, pass_rate FROM eval_runs WHERE run_id = 'run-a' AND scope = 'overall'"
    ).fetchall()
    assert stored == [("2026-11-17", "gpt-x", 0.6)]

    # a run that cannot be stored leaves the earlier rows of its run_id as they were
    broken = dataclasses.replace(first, summary=first.summary.drop("pass_rate"))
    with pytest.raises(ValueError, match="lacks columns"):
        store_eval_run(con, broken)
    assert con.execute("SELECT count(*) FROM eval_run_results WHERE run_id = 'run-a'").fetchone() == (8,)
    assert con.execute("SELECT count(*) FROM eval_runs WHERE run_id = 'run-a'").fetchone() == (9,)
    con.close()


def test_render_summary_mentions_what_the_rates_leave_out(outputs_file):
    result = run_suite(SUITE, load_recorded_outputs(outputs_file), suite_version="2026-11-17", model="m", run_id="r")
    text = render_summary(result)
    assert "1 case(s) unknown" in text and "2 case(s) have no valid recorded output" in text
    assert "line 8: not valid JSON" in text and "case_not_in_suite" in text


# --------------------------------------------------------------------------- the model endpoint


def test_a_run_against_a_real_chat_server(chat_server: ChatServer):
    def responder(body):
        prompt = body["messages"][-1]["content"]
        return {
            "question of c1": Reply.chat("The refund is approved."),
            "question of c2": Reply.chat("42", finish_reason="stop"),
            "question of c4": Reply.chat("not json at all"),
            "question of c5": Reply.client_error(400, "content filtered"),
        }.get(prompt, Reply.chat("ok"))

    chat_server.responder = responder
    suite = SUITE.filter(pl.col("case_id").is_in(["c1", "c2", "c4", "c5"]))
    with ChatClient(chat_server.base_url, "model-under-test", max_retries=0, concurrency=2) as client:
        result = run_suite(suite, None, client, None, "2026-11-17", "model-under-test", "r-live", params={"seed": 1})
    status = dict(zip(result.results["case_id"], result.results["status"], strict=True))
    assert status == {"c1": "passed", "c2": "passed", "c4": "failed", "c5": "error"}
    c5 = result.results.filter(pl.col("case_id") == "c5").row(0, named=True)
    assert "content filtered" in c5["reason"] and c5["attempts"] == 1
    assert result.results.filter(pl.col("case_id") == "c1")["latency_ms"][0] > 0
    overall = result.overall()
    assert (overall["graded"], overall["passed"], overall["errored"]) == (3, 2, 1)
    assert overall["pass_rate"] == pytest.approx(2 / 3)
    assert overall["source"] == f"endpoint:{chat_server.base_url}"
    assert chat_server.request_count == 4
    assert all(r.json["model"] == "model-under-test" and r.json["seed"] == 1 for r in chat_server.requests)


# --------------------------------------------------------------------------- the command


def eval_suite_rows(frame: pl.DataFrame) -> pl.DataFrame:
    """Full eval_suite rows (provenance left null) for the small suite."""
    target = schema("eval_suite")
    extra = [pl.lit(None, dtype=t).alias(c) for c, t in target.items() if c not in frame.columns]
    return conform("eval_suite", frame.with_columns(extra).with_columns(status=pl.lit("active")))


def test_cli_run_reads_the_suite_as_of_a_day_and_stores_the_run(tmp_path, outputs_file, monkeypatch, capsys):
    warehouse = tmp_path / "warehouse.duckdb"
    monkeypatch.setenv("EVAL_LOOP_WAREHOUSE", str(warehouse))
    with connect(warehouse) as con:
        ensure_tables(con)
        replace_partitions(con, "eval_suite", [D1, D2], {"eval_suite": eval_suite_rows(SUITE)}, "promote-run")
    with connect(warehouse, read_only=True) as con:
        assert read_suite(con, D1).height == 4
        assert suite_version_of(read_suite(con, None), None) == "2026-11-17"

    args = ["run", "--model", "gpt-x", "--as-of", "2026-11-16", "--outputs", str(outputs_file), "--run-id", "cli-1"]
    code = cli.main(args)
    out = capsys.readouterr().out
    assert code == 0
    assert "suite as of 2026-11-16" in out and "stored as run cli-1" in out
    with connect(warehouse, read_only=True) as con:
        rows = con.execute(
            "SELECT scope, scope_key, cases, passed, failed, pass_rate FROM eval_runs WHERE run_id = 'cli-1' "
            "AND scope != 'cluster' ORDER BY scope, scope_key"
        ).fetchall()
        assert rows == [
            ("app", "sql_assistant", 1, 1, 0, 1.0),
            ("app", "support_bot", 3, 2, 1, pytest.approx(2 / 3)),
            ("overall", "all", 4, 3, 1, 0.75),
        ]
        assert con.execute("SELECT DISTINCT suite_version FROM eval_run_results").fetchall() == [("2026-11-16",)]


def test_cli_run_without_outputs_or_endpoint_says_what_to_do(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EVAL_LOOP_WAREHOUSE", str(tmp_path / "w.duckdb"))
    assert cli.main(["run", "--model", "m"]) == 2
    assert "no model endpoint configured" in capsys.readouterr().err
    assert cli.main(["run", "--model", "m", "--as-of", "yesterday"]) == 2
    assert cli.main(["run", "--model", "m", "--outputs", str(tmp_path / "missing.jsonl")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_cli_run_against_the_configured_endpoint(tmp_path, monkeypatch, capsys, chat_server: ChatServer):
    chat_server.default_text = "Your refund is approved."
    config = tmp_path / "eval_loop.yaml"
    config.write_text(
        f"model_endpoint:\n  base_url: {chat_server.base_url}\n  model: default-model\n  max_retries: 0\n"
    )
    monkeypatch.setenv("EVAL_LOOP_CONFIG", str(config))
    warehouse = tmp_path / "warehouse.duckdb"
    monkeypatch.setenv("EVAL_LOOP_WAREHOUSE", str(warehouse))
    with connect(warehouse) as con:
        ensure_tables(con)
        replace_partitions(con, "eval_suite", [D1], {"eval_suite": eval_suite_rows(SUITE.head(2))}, "p")
    assert cli.main(["run", "--model", "other-model", "--run-id", "live"]) == 0
    assert {r.json["model"] for r in chat_server.requests} == {"other-model"}
    with connect(warehouse, read_only=True) as con:
        row = con.execute("SELECT passed, failed, source FROM eval_runs WHERE scope = 'overall'").fetchone()
    assert row == (1, 1, f"endpoint:{chat_server.base_url}")  # c1 contains "refund"; c2 is not "42"
