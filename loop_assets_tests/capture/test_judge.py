"""The LLM judge: prompt, strict parsing, sampling, the DuckDB cache and the merge into scored_traces,
against a real OpenAI-compatible server on 127.0.0.1 (chat_server.py)."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from typing import Any

import duckdb
import polars as pl
import pytest
import yaml

from loop_assets import tables
from loop_assets.capture import judge
from loop_assets.capture.scoring import SCORERS, score_traces
from loop_assets.config import DEFAULT_CONFIG_PATH, SIGNALS, ConfigError, LoopConfig, load_config
from loop_assets.llm_client import ChatClient
from loop_assets_tests.chat_server import ChatServer, Reply

DAY = date(2025, 3, 14)
KEY = "sk-judge-test-9QmZt4secret"
KEY_ENV = "EVAL_LOOP_TEST_JUDGE_KEY"
APPS = {
    "support_bot": {"rubric": "The answer resolves the customer's question."},
    "sql_assistant": {"rubric": "The SQL is valid for DuckDB."},
    "summariser": {},  # no rubric: never judged
}


def row(trace_id: str, output_text: str | None = "fine", **overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {name: None for name in tables.RAW_TRACES}
    base.update(
        trace_id=trace_id,
        ts=datetime(2025, 3, 14, 12, 0, tzinfo=UTC),
        day=DAY,
        app="support_bot",
        model="gpt-4o-mini",
        input_messages=json.dumps(
            [{"role": "system", "content": "You are a support bot."}, {"role": "user", "content": f"Q {trace_id}?"}]
        ),
        input_text=f"Q {trace_id}?",
        output_text=output_text,
        latency_ms=100.0,
        finish_reason="stop",
        source_format="openai_chat",
        source_file="day.jsonl",
        source_line=1,
        ingest_run_id="ingest-1",
    )
    base.update(overrides)
    return base


def raw_frame(*rows: dict[str, Any]) -> pl.DataFrame:
    return pl.DataFrame(list(rows), schema=tables.schema("raw_traces"))


def answer_of(body: dict[str, Any]) -> str:
    user = body["messages"][-1]["content"]
    found = re.search(r"<answer>\n(.*)\n</answer>", user, re.DOTALL)
    assert found, user
    return found.group(1)


def responder(body: dict[str, Any]) -> Reply:
    """Scripted judge: the answer text says what the judge does."""
    answer = answer_of(body)
    if "GOOD" in answer:
        return Reply.score(5, "resolves it")
    if "MEH" in answer:
        return Reply.score(3, "partly")
    if "BORDER" in answer:
        return Reply.score(2, "mostly fails")
    if "BAD" in answer:
        return Reply.score(1, "wrong refund policy")
    if "FENCED" in answer:
        return Reply.chat('```json\n{"score": 4, "reason": "ok"}\n```')
    if "PROSE" in answer:
        return Reply.chat("I would give this answer a 4 out of 5.")
    if "RANGE" in answer:
        return Reply.score(7, "very good")
    if "SLOW" in answer:
        return Reply.slow(3.0, '{"score": 1, "reason": "late"}')
    if "BROKEN" in answer:
        return Reply.server_error(503, "judge overloaded")
    if "GARBLED" in answer:
        return Reply.malformed()
    if "ECHOKEY" in answer:
        return Reply.client_error(401, f"Incorrect API key provided: {KEY}")
    return Reply.score(4, "fine")


@pytest.fixture
def judge_server(chat_server: ChatServer) -> ChatServer:
    chat_server.responder = responder
    return chat_server


@pytest.fixture(autouse=True)
def judge_key(monkeypatch) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)


def config_for(server: ChatServer, **judge_options: Any) -> LoopConfig:
    options = {
        "base_url": server.base_url,
        "model": "judge-model",
        "api_key_env": KEY_ENV,
        "timeout_s": 0.3,
        "max_retries": 1,
        "backoff_s": 0.01,
        "concurrency": 4,
        **judge_options,
    }
    return LoopConfig.model_validate({"apps": APPS, "judge": options})


def client_for(config: LoopConfig) -> ChatClient:
    client = ChatClient.from_config(config.judge)
    assert client is not None
    return client


SEEDED = [
    row("good", "GOOD answer"),
    row("bad", "BAD answer"),
    row("border", "BORDER answer"),
    row("meh", "MEH answer"),
    row("fenced", "FENCED answer"),
    row("prose", "PROSE answer"),
    row("range", "RANGE answer"),
    row("slow", "SLOW answer"),
    row("broken", "BROKEN answer"),
    row("garbled", "GARBLED answer"),
    row("errored", None, error="500 upstream"),
    row("empty", "  "),
    row("summary", "BAD summary", app="summariser"),
    row("sql-bad", "BAD sql", app="sql_assistant"),
]


@pytest.fixture
def judged(judge_server: ChatServer) -> tuple[judge.JudgeResult, LoopConfig, ChatServer]:
    config = config_for(judge_server)
    with client_for(config) as client:
        result = judge.judge_traces(raw_frame(*SEEDED), config, client, cached=None)
    return result, config, judge_server


def by_id(frame: pl.DataFrame) -> dict[str, dict[str, Any]]:
    return {r["trace_id"]: r for r in frame.to_dicts()}


# --------------------------------------------------------------------------- parsing and prompt


@pytest.mark.parametrize(
    ("reply", "score", "reason"),
    [
        ('{"score": 4, "reason": "fine"}', 4.0, "fine"),
        ('  {"score": 1.5, "reason": "weak"}\n', 1.5, "weak"),
        ('{"reason": "x", "score": 5}', 5.0, "x"),
        ('{"score": 3}', 3.0, ""),
        ('```json\n{"score": 2, "reason": "meh"}\n```', 2.0, "meh"),
    ],
)
def test_parse_accepts_only_a_json_score_object(reply: str, score: float, reason: str) -> None:
    assert judge.parse_judge_reply(reply) == (score, reason)


@pytest.mark.parametrize(
    ("reply", "why"),
    [
        ("Score: 4", "not a JSON object"),
        ('Here you go: {"score": 4, "reason": "x"}', "not a JSON object"),
        ('{"score": "4", "reason": "x"}', "`score` is str"),
        ('{"score": true}', "`score` is bool"),
        ('{"score": 0, "reason": "x"}', "outside 1..5"),
        ('{"score": 6}', "outside 1..5"),
        ('{"score": NaN}', "outside 1..5"),
        ('{"rating": 4}', "no `score` key"),
        ("[4]", "JSON list, not an object"),
        ('{"score": 4, "reason": ["a"]}', "`reason` is list"),
        ("", "empty reply"),
        (None, "empty reply"),
    ],
)
def test_parse_rejects_everything_else_with_a_reason(reply: str | None, why: str) -> None:
    score, reason = judge.parse_judge_reply(reply)
    assert score is None
    assert reason.startswith("unparseable judge reply: ")
    assert why in reason


def test_rubric_version_tracks_rubric_and_template(monkeypatch) -> None:
    v1 = judge.rubric_version("Be helpful.")
    assert v1 == judge.rubric_version("Be helpful.")
    assert re.fullmatch(r"v1-[0-9a-f]{10}", v1)
    assert judge.rubric_version("Be concise.") != v1
    monkeypatch.setattr(judge, "SYSTEM_PROMPT", judge.SYSTEM_PROMPT + " Be brief.")
    assert judge.rubric_version("Be helpful.") != v1


def test_prompt_carries_rubric_conversation_and_answer(judged) -> None:
    _, _, server = judged
    bodies = {answer_of(r.json): r for r in server.requests}
    request = bodies["GOOD answer"]
    assert request.headers["authorization"] == f"Bearer {KEY}"
    body = request.json
    assert body["model"] == "judge-model"
    assert body["temperature"] == 0 and body["max_tokens"] == 300
    system, user = body["messages"]
    assert system == {"role": "system", "content": judge.SYSTEM_PROMPT}
    assert '{"score": <integer 1-5>' in system["content"]
    assert user["role"] == "user"
    assert "Application: support_bot" in user["content"]
    assert f"Rubric: {APPS['support_bot']['rubric']}" in user["content"]
    assert "[system] You are a support bot.\n[user] Q good?" in user["content"]


def test_long_parts_are_cut() -> None:
    long_input = json.dumps([{"role": "user", "content": "x" * 10_000 + " the question?"}])
    messages = judge.judge_messages("a", "r", long_input, None, "y" * 10_000)
    user = messages[1]["content"]
    assert "earlier characters cut]" in user and "the question?" in user
    assert "more characters cut]" in user
    assert len(user) < judge.MAX_CONVERSATION_CHARS + judge.MAX_ANSWER_CHARS + 1_000


# --------------------------------------------------------------------------- judging against the server


def test_statuses_scores_and_reasons(judged) -> None:
    result, _, _ = judged
    records = by_id(result.results)
    assert result.results["trace_id"].to_list() == [r["trace_id"] for r in SEEDED]
    assert result.results.schema == judge.RESULTS_SCHEMA
    assert result.enabled
    expected_scores = {"good": 5.0, "bad": 1.0, "border": 2.0, "meh": 3.0, "fenced": 4.0, "sql-bad": 1.0}
    for trace_id, score in expected_scores.items():
        assert records[trace_id]["judge_status"] == "scored", trace_id
        assert records[trace_id]["judge_score"] == score, trace_id
        assert records[trace_id]["judge_failed"] is (score <= 2), trace_id
        assert records[trace_id]["judge_model"] == "judge-model"
    assert records["bad"]["judge_reason"] == "wrong refund policy"
    assert records["sql-bad"]["rubric_version"] == judge.rubric_version(APPS["sql_assistant"]["rubric"])
    assert records["good"]["rubric_version"] == judge.rubric_version(APPS["support_bot"]["rubric"])

    missing = {
        "prose": "unparseable judge reply: not a JSON object",
        "range": "unparseable judge reply: `score` 7 is outside 1..5",
        "slow": "judge request failed: timed out after 0.3s",
        "broken": "judge request failed: HTTP 503 server error: judge overloaded",
        "garbled": "judge request failed: malformed response: body is not JSON",
    }
    for trace_id, reason in missing.items():
        record = records[trace_id]
        assert record["judge_status"] == "missing", trace_id
        assert record["judge_score"] is None and record["judge_failed"] is None, trace_id
        assert record["judge_reason"].startswith(reason), (trace_id, record["judge_reason"])
    for trace_id, reason in {
        "errored": "the call errored",
        "empty": "no output to judge",
        "summary": "app summariser is not judged",
    }.items():
        assert records[trace_id]["judge_status"] == "not_applicable"
        assert records[trace_id]["judge_reason"].startswith(reason)
        assert records[trace_id]["judge_failed"] is None


def test_requests_sent_counts_retries(judged) -> None:
    result, _, server = judged
    # 11 judged traces; slow and broken are retried once (max_retries 1).
    assert result.requests_sent == 11 + 2 == server.request_count
    assert result.counts == {
        "scored": 6,
        "cached": 0,
        "missing": 5,
        "not_sampled": 0,
        "not_applicable": 3,
        "off": 0,
    }
    assert result.message.startswith("judge on (judge-model): 6 scored, 0 from cache, 5 missing")
    assert result.metadata()["judge_requests"] == 13
    assert result.metadata()["judge_failures"] == 3


def test_only_scores_are_cached(judged) -> None:
    result, _, _ = judged
    rows = result.new_cache_rows
    assert rows.schema == tables.schema("judge_cache")
    assert sorted(rows["trace_id"]) == sorted(["good", "bad", "border", "meh", "fenced", "sql-bad"])
    assert set(rows["judge_model"]) == {"judge-model"}


def test_judge_errors_are_never_failures(judged) -> None:
    result, config, _ = judged
    scored = judge.apply_judgements(score_traces(raw_frame(*SEEDED), config, "run-1"), result.results, config)
    records = by_id(scored)
    for trace_id in ("prose", "range", "slow", "broken", "garbled", "good", "meh", "fenced"):
        assert records[trace_id]["is_failure"] is False, trace_id
        assert records[trace_id]["failure_signals"] == [], trace_id
        assert records[trace_id]["severity"] == 0.0
    assert records["slow"]["judge_status"] == "missing"
    assert records["slow"]["judge_reason"].startswith("judge request failed: timed out")


def test_apply_judgements_adds_the_signal_and_recomputes_severity(judged) -> None:
    result, config, _ = judged
    raw = raw_frame(*SEEDED)
    before = score_traces(raw, config, "run-1")
    assert before["judge_failed"].null_count() == before.height  # scoring never fires the judge
    scored = judge.apply_judgements(before, result.results, config)
    assert scored.schema == tables.schema("scored_traces")
    assert scored["trace_id"].to_list() == before["trace_id"].to_list()
    records = by_id(scored)
    version = judge.rubric_version(APPS["support_bot"]["rubric"])
    for trace_id, value in (("bad", "1"), ("border", "2")):
        record = records[trace_id]
        assert record["judge_failed"] is True
        assert record["is_failure"] is True
        assert record["failure_signals"] == [
            {"scorer": "judge", "version": version, "value": value, "threshold": "score <= 2"}
        ]
        assert record["severity"] == pytest.approx(config.scoring.severity_weights["judge"]) == pytest.approx(0.6)
    # An errored call keeps its provider_error signal; the judge does not apply to it.
    errored = records["errored"]
    assert [s["scorer"] for s in errored["failure_signals"]] == ["provider_error"]
    assert errored["severity"] == pytest.approx(0.9)
    assert errored["judge_status"] == "not_applicable"
    # Idempotent: applying again does not duplicate the signal.
    again = judge.apply_judgements(scored, result.results, config)
    assert again.equals(scored)


def test_judge_signal_joins_other_signals_in_order(judge_server: ChatServer) -> None:
    config = config_for(judge_server)
    raw = raw_frame(row("slow-and-bad", "BAD answer", latency_ms=60_000.0))
    with client_for(config) as client:
        result = judge.judge_traces(raw, config, client)
    scored = judge.apply_judgements(score_traces(raw, config, "run-1"), result.results, config)
    (record,) = scored.to_dicts()
    assert [s["scorer"] for s in record["failure_signals"]] == ["latency", "judge"]
    assert record["severity"] == pytest.approx(1 - (1 - 0.3) * (1 - 0.6))


def test_threshold_is_configurable(judge_server: ChatServer) -> None:
    config = config_for(judge_server, max_failing_score=3)
    raw = raw_frame(row("meh", "MEH answer"), row("good", "GOOD answer"))
    with client_for(config) as client:
        result = judge.judge_traces(raw, config, client)
    scored = judge.apply_judgements(score_traces(raw, config, "r"), result.results, config)
    assert scored["judge_failed"].to_list() == [True, False]
    assert scored["failure_signals"][0].to_list()[0]["threshold"] == "score <= 3"


def test_the_key_never_appears_in_results(judge_server: ChatServer) -> None:
    config = config_for(judge_server)
    raw = raw_frame(row("echo", "ECHOKEY answer"), row("good", "GOOD answer"))
    with client_for(config) as client:
        result = judge.judge_traces(raw, config, client)
        assert KEY not in repr(client)
    text = result.results.write_csv() + result.new_cache_rows.write_csv() + result.message
    assert KEY not in text
    echo = by_id(result.results)["echo"]
    assert echo["judge_status"] == "missing" and "HTTP 401" in echo["judge_reason"]


def test_concurrency_is_bounded(judge_server: ChatServer) -> None:
    judge_server.responder = lambda body: Reply.score(4, "ok", delay_s=0.05)
    config = config_for(judge_server, concurrency=2, timeout_s=2)
    raw = raw_frame(*[row(f"t{i}", "fine") for i in range(10)])
    with client_for(config) as client:
        result = judge.judge_traces(raw, config, client)
    assert result.counts["scored"] == 10
    assert judge_server.max_in_flight <= 2


# --------------------------------------------------------------------------- sampling


def test_sampling_is_deterministic_and_bounded_per_day(judge_server: ChatServer) -> None:
    other_day = date(2025, 3, 15)
    rows = [row(f"a{i}", "fine") for i in range(200)] + [row(f"b{i}", "fine", day=other_day) for i in range(200)]
    raw = raw_frame(*rows)
    half = config_for(judge_server, sample_rate=0.5)
    plan = judge.plan_judgements(raw, half)
    assert plan["trace_id"].to_list() == raw["trace_id"].to_list()
    selected = plan.filter(pl.col("judge_status") == "selected")
    assert 140 <= selected.height <= 260
    assert plan.equals(judge.plan_judgements(raw, half))
    assert set(selected["trace_id"]) == {t for t in raw["trace_id"] if judge.sample_point(t) < 0.5}
    not_sampled = plan.filter(pl.col("judge_status") == "not_sampled")
    assert not_sampled["judge_reason"][0] == "not in the judged sample (sample_rate 0.5)"

    capped = judge.plan_judgements(raw, config_for(judge_server, sample_rate=0.5, max_per_day=7))
    per_day = capped.filter(pl.col("judge_status") == "selected").group_by("day").len()
    assert sorted(per_day["len"].to_list()) == [7, 7]
    # The cap keeps the lowest sample points of each day, a subset of the uncapped sample.
    chosen = set(capped.filter(pl.col("judge_status") == "selected")["trace_id"])
    assert chosen <= set(selected["trace_id"])
    day_a = sorted((judge.sample_point(t), t) for t in selected["trace_id"] if t.startswith("a"))
    assert {t for _, t in day_a[:7]} <= chosen


def test_judge_apps_limits_what_is_judged(judge_server: ChatServer) -> None:
    config = config_for(judge_server, apps=["sql_assistant"])
    raw = raw_frame(row("s", "GOOD", app="sql_assistant"), row("b", "GOOD"))
    with client_for(config) as client:
        result = judge.judge_traces(raw, config, client)
    assert result.results["judge_status"].to_list() == ["scored", "not_applicable"]
    assert judge_server.request_count == 1


# --------------------------------------------------------------------------- cache and off


def test_second_run_is_answered_by_the_cache(judge_server: ChatServer) -> None:
    config = config_for(judge_server)
    raw = raw_frame(*SEEDED)
    con = duckdb.connect()
    scored = score_traces(raw, config, "run-1")
    with client_for(config) as client:
        _, first_result = judge.run_judge(con, raw, scored, config, client)
        sent_first = judge_server.request_count
        assert first_result.requests_sent == sent_first > 0
        stored = con.execute("SELECT count(*) FROM judge_cache").fetchone()[0]
        assert stored == 6

        # Only the missing ones (never cached) are asked again.
        judge_server.reset()
        _, second_result = judge.run_judge(con, raw, scored, config, client)
        asked_again = sorted(answer_of(r.json) for r in judge_server.requests)
        retried_twice = ["SLOW answer", "SLOW answer", "BROKEN answer", "BROKEN answer"]
        assert asked_again == sorted(["PROSE answer", "RANGE answer", "GARBLED answer", *retried_twice])
        assert second_result.counts["cached"] == 6 and second_result.counts["scored"] == 0

    # With every trace scorable, the second run sends zero requests.
    clean = raw_frame(*[r for r in SEEDED if r["trace_id"] in {"good", "bad", "border", "meh", "sql-bad"}])
    con2 = duckdb.connect()
    with client_for(config) as client:
        judge_server.reset()
        run1, r1 = judge.run_judge(con2, clean, score_traces(clean, config, "a"), config, client)
        assert judge_server.request_count == r1.requests_sent == 5
        judge_server.reset()
        run2, r2 = judge.run_judge(con2, clean, score_traces(clean, config, "b"), config, client)
    assert judge_server.request_count == 0
    assert r2.requests_sent == 0
    assert set(r2.results["judge_status"]) == {"cached"}
    assert r2.message.startswith("judge on (judge-model): 0 scored, 5 from cache")
    assert run2["judge_score"].to_list() == run1["judge_score"].to_list()
    assert run2["failure_signals"].to_list() == run1["failure_signals"].to_list()
    assert run2["is_failure"].to_list() == run1["is_failure"].to_list()
    assert con2.execute("SELECT count(*) FROM judge_cache").fetchone()[0] == 5


def test_cache_is_keyed_by_model_and_rubric_version(judge_server: ChatServer) -> None:
    config = config_for(judge_server)
    raw = raw_frame(row("good", "GOOD answer"), row("bad", "BAD answer"))
    con = duckdb.connect()
    with client_for(config) as client:
        judge.run_judge(con, raw, score_traces(raw, config, "a"), config, client)
    assert judge_server.request_count == 2

    # A new rubric is a new version: asked again.
    new_rubric = LoopConfig.model_validate(
        {**config.model_dump(), "apps": {**APPS, "support_bot": {"rubric": "Be kind."}}}
    )
    judge_server.reset()
    with client_for(new_rubric) as client:
        _, result = judge.run_judge(con, raw, score_traces(raw, new_rubric, "b"), new_rubric, client)
    assert judge_server.request_count == 2 and result.counts["scored"] == 2

    # Another judge model: asked again.
    other_model = LoopConfig.model_validate(
        {**config.model_dump(), "judge": {**config.judge.model_dump(), "model": "other-judge"}}
    )
    judge_server.reset()
    with client_for(other_model) as client:
        _, result = judge.run_judge(con, raw, score_traces(raw, other_model, "c"), other_model, client)
    assert judge_server.request_count == 2 and result.counts["scored"] == 2
    assert con.execute("SELECT count(*) FROM judge_cache").fetchone()[0] == 6

    # A changed threshold re-uses the cached scores.
    stricter = LoopConfig.model_validate(
        {**config.model_dump(), "judge": {**config.judge.model_dump(), "max_failing_score": 4.5}}
    )
    judge_server.reset()
    with client_for(stricter) as client:
        scored, result = judge.run_judge(con, raw, score_traces(raw, stricter, "d"), stricter, client)
    assert judge_server.request_count == 0
    assert scored["judge_failed"].to_list() == [False, True]


def test_store_judgements_ignores_a_key_already_stored() -> None:
    con = duckdb.connect()
    row_ = {
        "judge_model": "m",
        "rubric_version": "v1-x",
        "trace_id": "t",
        "day": DAY,
        "app": "a",
        "score": 4.0,
        "reason": "first",
        "created_at": datetime(2025, 3, 14, tzinfo=UTC),
    }
    judge.store_judgements(con, pl.DataFrame([row_], schema=tables.schema("judge_cache")))
    judge.store_judgements(con, pl.DataFrame([{**row_, "reason": "second"}], schema=tables.schema("judge_cache")))
    keys = pl.DataFrame({"trace_id": ["t", "u"], "rubric_version": ["v1-x", "v1-x"]})
    found = judge.cached_judgements(con, "m", keys)
    assert found["reason"].to_list() == ["first"]
    assert judge.cached_judgements(con, "other", keys).height == 0
    assert judge.cached_judgements(con, "m", keys.clear()).height == 0


def test_judge_is_off_without_configuration(chat_server: ChatServer) -> None:
    config = LoopConfig.model_validate({"apps": APPS})
    assert config.judge is None
    assert ChatClient.from_config(config.judge) is None
    raw = raw_frame(*SEEDED)
    result = judge.judge_traces(raw, config, None)
    assert not result.enabled
    assert result.message.startswith("judge off: no judge endpoint configured")
    assert result.requests_sent == 0
    assert set(result.results["judge_status"]) == {"off"}
    assert result.results["judge_failed"].null_count() == len(SEEDED)
    assert result.metadata()["judge_enabled"] is False

    con = duckdb.connect()
    scored = score_traces(raw, config, "r")
    merged, run = judge.run_judge(con, raw, scored, config, None)
    assert not run.enabled
    assert set(merged["judge_status"]) == {"off"}
    assert merged.drop("judge_status", "judge_reason").equals(scored.drop("judge_status", "judge_reason"))
    assert chat_server.request_count == 0


# --------------------------------------------------------------------------- configuration


def _commented_section(name: str) -> str:
    lines = DEFAULT_CONFIG_PATH.read_text().splitlines()
    start = lines.index(f"# {name}:")
    block = []
    for line in lines[start:]:
        if not line.startswith("#"):
            break
        block.append(line[2:])
    return "\n".join(block)


def test_documented_examples_are_valid_and_off_by_default() -> None:
    shipped = load_config(DEFAULT_CONFIG_PATH)
    assert shipped.judge is None and shipped.model_endpoint is None
    assert shipped.scoring.severity_weights["judge"] == 0.6
    assert SIGNALS[-1] == "judge" and list(SCORERS) == list(SIGNALS)
    data = yaml.safe_load(_commented_section("judge") + "\n" + _commented_section("model_endpoint"))
    config = LoopConfig.model_validate({**data, "apps": {n: a.model_dump() for n, a in shipped.apps.items()}})
    assert config.judge is not None and config.judge.api_key_env == "OPENAI_API_KEY"
    assert config.judge.max_failing_score == 2
    assert config.judged_apps() == ["sql_assistant", "summariser", "support_bot"]
    assert config.model_endpoint is not None and config.model_endpoint.retries_per_candidate == 3


def test_defaults() -> None:
    config = LoopConfig.model_validate({"apps": APPS, "judge": {"base_url": "http://h/v1/", "model": "m"}})
    j = config.judge
    assert (j.base_url, j.api_key_env, j.timeout_s, j.max_retries, j.concurrency) == ("http://h/v1", None, 30, 4, 4)
    assert (j.max_failing_score, j.apps, j.sample_rate, j.max_per_day, j.temperature) == (2, [], 1.0, None, 0.0)
    endpoint = LoopConfig.model_validate({"model_endpoint": {"base_url": "http://h", "model": "m"}}).model_endpoint
    assert endpoint.retries_per_candidate == 3 and endpoint.temperature is None


@pytest.mark.parametrize(
    ("text", "key", "hint"),
    [
        ("judge: {model: m}", "judge.base_url", "Field required"),
        ("judge: {base_url: 'ftp://x', model: m}", "judge.base_url", "http(s) URL"),
        ("judge: {base_url: 'http://u:p@x/v1', model: m}", "judge.base_url", "must not carry credentials"),
        ("judge: {base_url: 'http://x', model: m, sample_rate: 0}", "judge.sample_rate", "greater than 0"),
        ("judge: {base_url: 'http://x', model: m, max_failing_score: 5}", "judge.max_failing_score", "less than 5"),
        ("judge: {base_url: 'http://x', model: m, apps: [summariser]}", "judge.apps", "rubric"),
        ("judge: {base_url: 'http://x', model: m, concurency: 2}", "judge.concurency", "fix its spelling"),
        ("model_endpoint: {base_url: 'http://x', model: m, retries_per_candidate: 0}", "retries_per_candidate", "1"),
    ],
)
def test_a_wrong_judge_key_names_the_key(tmp_path, text: str, key: str, hint: str) -> None:
    apps = "apps: {support_bot: {rubric: r}, summariser: {}}\n"
    path = tmp_path / "eval_loop.yaml"
    path.write_text(apps + text)
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert key in str(error.value)
    assert hint in str(error.value)


def test_a_key_in_the_file_is_refused_without_being_echoed(tmp_path) -> None:
    secret = "sk-live-abc123DEF456"
    path = tmp_path / "eval_loop.yaml"
    path.write_text(f"apps: {{a: {{rubric: r}}}}\njudge: {{base_url: 'http://x', model: m, api_key_env: {secret}}}")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert "judge.api_key_env" in str(error.value) and "NAME of an environment variable" in str(error.value)
    assert secret not in str(error.value)

    path.write_text(f"apps: {{a: {{rubric: r}}}}\njudge: {{base_url: 'http://x', model: m, api_key: {secret}}}")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert "judge.api_key" in str(error.value) and "secrets never go in the file" in str(error.value)
    assert secret not in str(error.value)


def test_a_judge_with_nothing_to_judge_is_refused() -> None:
    with pytest.raises(ValueError, match="no app has a rubric"):
        LoopConfig.model_validate({"judge": {"base_url": "http://x", "model": "m"}})
