"""The judge, difficulty and eval runs wired into real Dagster runs, against a real chat server on 127.0.0.1."""

from __future__ import annotations

import json

import dagster as dg
import polars as pl
import pytest
import yaml

from loop_assets.config import DEFAULT_CONFIG_PATH
from loop_assets.definitions import daily_assets
from loop_assets.defs.assets.coverage import suite_coverage
from loop_assets.defs.assets.eval_run import eval_run
from loop_assets.defs.resources import LlmEndpoints
from loop_assets_tests.chat_server import Reply
from loop_assets_tests.loop_runner import DAYS, metadata, new_loop

KEY = "sk-test-SECRET-0123456789abcdef"


def write_config(tmp_path, **sections) -> str:
    """The shipped configuration with some sections added, as a user's copy would be."""
    path = tmp_path / "eval_loop.yaml"
    path.write_text(yaml.safe_dump({**yaml.safe_load(DEFAULT_CONFIG_PATH.read_text()), **sections}))
    return path


def judge_replies(body: dict) -> Reply:
    """Refund answers are judged bad, everything else good."""
    prompt = body["messages"][-1]["content"].lower()
    return Reply.score(1 if "refund" in prompt else 5)


def test_the_judge_scores_once_and_a_rerun_sends_no_request(tmp_path, traffic, chat_server, monkeypatch):
    monkeypatch.setenv("EVAL_LOOP_TEST_JUDGE_KEY", KEY)
    chat_server.responder = judge_replies
    config = write_config(
        tmp_path,
        judge={"base_url": chat_server.base_url, "model": "judge-m", "api_key_env": "EVAL_LOOP_TEST_JUDGE_KEY",
               "sample_rate": 0.3, "concurrency": 4},
    )  # fmt: skip
    loop = new_loop(tmp_path / "loop", traffic, config)
    first = loop.run(DAYS[0], select={"raw_traces", "scored_traces"})
    [meta] = metadata(first, "scored_traces")
    sent = chat_server.request_count
    assert meta["run"]["judge_enabled"] is True and meta["run"]["judge_requests"] == sent > 0
    assert all(r.headers.get("authorization") == f"Bearer {KEY}" for r in chat_server.requests)
    judged = loop.table(
        "SELECT judge_status, judge_failed, failure_signals FROM scored_traces WHERE judge_status='scored'"
    )
    assert judged.height == sent and judged["judge_failed"].any()
    failed = judged.filter(pl.col("judge_failed"))
    assert all(any(s["scorer"] == "judge" for s in signals) for signals in failed["failure_signals"])

    again = loop.run(DAYS[0], select={"raw_traces", "scored_traces"})
    assert chat_server.request_count == sent  # every score came from the cache
    [meta] = metadata(again, "scored_traces")
    assert meta["run"]["judge_requests"] == 0 and meta["run"]["judge_cached"] == sent
    # the key is only ever sent to the endpoint: not in the warehouse, not in the run's metadata
    for table in ("scored_traces", "judge_cache", "raw_traces"):
        assert KEY not in loop.table(f"SELECT * FROM {table}").write_ndjson()
    assert KEY not in json.dumps([metadata(first, "scored_traces"), metadata(again, "scored_traces")], default=str)


def test_without_a_judge_the_run_says_so(in_order):
    _, results = in_order
    [meta] = metadata(results[0], "scored_traces")
    assert meta["run"]["judge_enabled"] is False and "no judge" in meta["run"]["judge_message"]


def test_difficulty_comes_from_retries_against_the_model_endpoint(tmp_path, traffic, chat_server):
    chat_server.responder = lambda request: Reply.chat("Sure! Here is my answer.")  # never JSON
    config = write_config(tmp_path, model_endpoint={"base_url": chat_server.base_url, "model": "app-m",
                                                    "retries_per_candidate": 3})  # fmt: skip
    loop = new_loop(tmp_path / "loop", traffic, config)
    loop.run(DAYS[0])
    graded = loop.table("SELECT app, decision, difficulty, difficulty_tries, difficulty_source, weight, novelty, "
                        "severity, frequency_score FROM graded_candidates")  # fmt: skip
    promoted = graded.filter(pl.col("decision") == "promote")
    sql = promoted.filter(pl.col("app") == "sql_assistant")
    assert sql.height > 0
    # a prose answer breaks the SQL assistant's JSON schema on every try
    assert sql["difficulty"].to_list() == [1.0] * sql.height and sql["difficulty_tries"].to_list() == [3] * sql.height
    row = sql.row(0, named=True)
    expected = 0.4 * row["novelty"] + 0.3 * row["severity"] + 0.2 * row["frequency_score"] + 0.1 * 1.0
    assert row["weight"] == pytest.approx(expected, abs=1e-6)
    assert graded.filter(pl.col("decision") != "promote")["difficulty"].null_count() == graded.height - promoted.height
    sent = chat_server.request_count
    assert sent >= 3 * promoted.height - 3 * promoted["difficulty"].null_count()
    loop.run(DAYS[0], select={"graded_candidates"})
    assert chat_server.request_count == sent  # measured difficulty is kept on re-runs


def test_eval_run_grades_recorded_outputs_and_stores_the_pass_rates(in_order, tmp_path):
    loop, _ = in_order
    suite = loop.table("SELECT case_id, app FROM eval_suite ORDER BY case_id")
    outputs = tmp_path / "outputs.jsonl"
    with outputs.open("w") as handle:
        for i, (case_id, app) in enumerate(suite.rows()):
            text = json.dumps({"sql": "SELECT 1", "explanation": "one"}) if app == "sql_assistant" else ""
            handle.write(json.dumps({"case_id": case_id, "output": text if i % 2 == 0 else ""}) + "\n")
        handle.write("{broken\n")
    result = loop.run_asset(eval_run, {"ops": {"eval_run": {"config": {"model": "recorded", "outputs": str(outputs)}}}})
    [meta] = metadata(result, "eval_run")
    runs = loop.table(f"SELECT * FROM eval_runs WHERE run_id = '{result.run_id}' AND scope = 'overall'")
    cases = loop.table(f"SELECT status FROM eval_run_results WHERE run_id = '{result.run_id}'")
    passed, failed = (cases["status"] == "passed").sum(), (cases["status"] == "failed").sum()
    assert cases.height == suite.height and failed >= suite.height // 2  # every empty answer fails non_empty
    assert meta["pass_rate"] == pytest.approx(passed / (passed + failed), abs=1e-5)
    assert runs["pass_rate"][0] == pytest.approx(meta["pass_rate"]) and meta["suite_version"] == str(DAYS[-1])
    assert "broken" in meta["bad_output_lines"] or "line" in meta["bad_output_lines"]


def test_eval_run_without_outputs_or_endpoint_fails_with_the_fix(in_order):
    loop, _ = in_order
    result = loop.run_asset(eval_run, {"ops": {"eval_run": {"config": {"model": "m"}}}}, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "no model endpoint configured" in failure.step_failure_data.user_failure_data.description


def test_coverage_chart_and_table(in_order):
    loop, _ = in_order
    result = loop.run_asset(suite_coverage)
    [meta] = metadata(result, "suite_coverage")
    assert meta["days"] >= len(DAYS) and meta["chart"].startswith("![coverage](data:image/png;base64,")
    assert meta["suite_size"] == loop.table("SELECT count(*) n FROM eval_suite")["n"][0]


def test_the_endpoints_resource_points_the_judge_at_another_server(tmp_path, traffic, chat_server):
    chat_server.responder = judge_replies
    # the file names a server nobody listens on; the resource sends the judge to the real one
    config = write_config(tmp_path, judge={"base_url": "http://127.0.0.1:9/v1", "model": "judge-m", "max_retries": 0})
    loop = new_loop(tmp_path / "loop", traffic, config)
    resources = {**loop.resources(), "endpoints": LlmEndpoints(judge_base_url=chat_server.base_url)}
    capture = [a for a in daily_assets if {k.to_user_string() for k in a.keys} & {"raw_traces", "scored_traces"}]
    result = dg.materialize(capture, partition_key=str(DAYS[0]), resources=resources, instance=loop.instance)
    [meta] = metadata(result, "scored_traces")
    assert result.success and meta["run"]["judge_requests"] == chat_server.request_count > 0
    assert loop.table("SELECT count(*) AS n FROM scored_traces WHERE judge_status = 'scored'")["n"][0] > 0
    assert LlmEndpoints().applied(loop.resources()["settings"].config()).judge.base_url == "http://127.0.0.1:9/v1"
