"""Difficulty by re-tries against a real OpenAI-compatible chat server on 127.0.0.1."""

import json
import threading
from collections import defaultdict, deque
from datetime import date

import polars as pl
import pytest

from loop_assets.config import LoopConfig
from loop_assets.evaluate.answer_checks import chat_judge
from loop_assets.grade.candidates import (
    NO_ENDPOINT,
    NOT_MEASURED,
    candidate_id,
    grade_candidates,
    weight,
    with_difficulty,
)
from loop_assets.grade.difficulty import candidates_for_difficulty, measure_difficulty
from loop_assets.llm_client import ChatClient
from loop_assets.promote.promotion import grading_rule
from loop_assets.tables import schema
from loop_assets_tests.chat_server import ChatServer, Reply

N = 4
SCHEMA = {"type": "object", "required": ["sql"], "properties": {"sql": {"type": "string"}}}


def rule(*checks: dict) -> str:
    return json.dumps({"pass": "all", "checks": [{"type": "no_error"}, {"type": "non_empty"}, *checks]})


def ask(prompt: str) -> str:
    return json.dumps([{"role": "system", "content": "be brief"}, {"role": "user", "content": prompt}])


class PerPrompt:
    """Scripted replies per prompt (the last user turn), each consumed once, in whatever order requests come."""

    def __init__(self, replies: dict[str, list[Reply]]):
        self.replies = {prompt: deque(r) for prompt, r in replies.items()}
        self.asked: dict[str, int] = defaultdict(int)
        self.lock = threading.Lock()

    def __call__(self, body):
        prompt = body["messages"][-1]["content"]
        with self.lock:
            self.asked[prompt] += 1
            queue = self.replies.get(prompt)
            if not queue:  # more requests than scripted: a bug in the code under test
                return Reply.client_error(400, f"unscripted request for {prompt!r}")
            return queue.popleft()


def client_for(server: ChatServer, **kw) -> ChatClient:
    return ChatClient(server.base_url, "model-under-test", max_retries=0, concurrency=3, backoff_s=0.01, **kw)


CANDIDATES = pl.DataFrame(
    [
        {"candidate_id": "half", "input_messages": ask("A"), "grading": rule({"type": "contains", "value": "refund"})},
        {
            "candidate_id": "easy",
            "input_messages": ask("B"),
            "grading": rule({"type": "json_schema", "schema": SCHEMA}),
        },
        {"candidate_id": "down", "input_messages": ask("C"), "grading": rule()},
        {"candidate_id": "rubric", "input_messages": ask("D"), "grading": rule({"type": "rubric", "rubric": "R"})},
        {"candidate_id": "undecided", "input_messages": ask("E"), "grading": rule({"type": "rubric", "rubric": "R"})},
        {"candidate_id": "bad_input", "input_messages": "not json", "grading": rule()},
        {"candidate_id": "bad_rule", "input_messages": ask("G"), "grading": '{"checks": [{"type": "regex"}]}'},
    ]
)

SCRIPT = {
    "A": [Reply.chat("refund approved"), Reply.chat("no"), Reply.chat("your refund"), Reply.chat("sorry")],
    "B": [Reply.chat('{"sql": "SELECT 1"}')] * 3 + [Reply.client_error(400, "content filtered")],
    "C": [Reply.server_error(503, "overloaded")] * 2 + [Reply.client_error(400, "nope")] * 2,
    "D": [Reply.chat("   "), Reply.chat("good answer"), Reply.chat("bad answer"), Reply.chat("good answer")],
    "E": [Reply.chat("fine")] * 4,
}


def test_difficulty_is_the_failure_rate_over_answered_tries(chat_server: ChatServer):
    replies = PerPrompt(SCRIPT)
    chat_server.responder = replies
    with client_for(chat_server) as client:
        out = measure_difficulty(CANDIDATES, client, N, params={"temperature": 1.0})
    rows = {r["candidate_id"]: r for r in out.iter_rows(named=True)}
    assert out["candidate_id"].to_list() == CANDIDATES["candidate_id"].to_list()

    # A: 2 of 4 answers lack "refund"
    assert rows["half"]["difficulty"] == 0.5 and rows["half"]["difficulty_tries"] == 4
    assert rows["half"]["difficulty_failures"] == 2
    assert rows["half"]["difficulty_source"].startswith(
        "retries: 2 of 4 answered tries failed against model-under-test"
    )
    # B: 3 valid answers, 1 call error: not a failure, not a try
    assert (rows["easy"]["difficulty"], rows["easy"]["difficulty_tries"], rows["easy"]["difficulty_errors"]) == (
        0.0,
        3,
        1,
    )
    # C: every call failed: unknown, with the reason
    assert rows["down"]["difficulty"] is None and rows["down"]["difficulty_tries"] == 0
    assert rows["down"]["difficulty_errors"] == 4
    assert "all 4 tries against model-under-test errored" in rows["down"]["difficulty_source"]
    # D: no judge: the blank answer fails, three are unknown and count as not failed
    assert rows["rubric"]["difficulty"] == 0.25 and rows["rubric"]["difficulty_unknown"] == 3
    # E: every answer unknown: nothing decided
    assert rows["undecided"]["difficulty"] is None and rows["undecided"]["difficulty_tries"] == 4
    assert "no try against model-under-test could be decided" in rows["undecided"]["difficulty_source"]
    # F, G: never sent
    assert rows["bad_input"]["difficulty"] is None and "input_messages" in rows["bad_input"]["difficulty_source"]
    assert rows["bad_rule"]["difficulty"] is None and "grading rule unreadable" in rows["bad_rule"]["difficulty_source"]

    assert dict(replies.asked) == {p: N for p in "ABCDE"}
    assert chat_server.request_count == 5 * N
    assert all(r.json["temperature"] == 1.0 and r.json["model"] == "model-under-test" for r in chat_server.requests)


def test_a_judge_on_its_own_chat_server_decides_rubric_tries(chat_server: ChatServer):
    chat_server.responder = PerPrompt({"D": SCRIPT["D"]})
    with ChatServer(
        responder=lambda body: Reply.score(5 if "good answer" in body["messages"][-1]["content"] else 1)
    ) as js:
        with client_for(chat_server) as client, client_for(js) as judge_client:
            judge = chat_judge(judge_client, temperature=0)
            out = measure_difficulty(CANDIDATES.filter(pl.col("candidate_id") == "rubric"), client, N, judge)
        # the blank answer fails without asking the judge; "bad answer" scores 1 -> fails; 2 good pass
        assert js.request_count == 3
        assert all(
            r.json["temperature"] == 0 and "Rubric:\nR" in r.json["messages"][-1]["content"] for r in js.requests
        )
    row = out.row(0, named=True)
    assert (row["difficulty"], row["difficulty_tries"], row["difficulty_unknown"]) == (0.5, 4, 0)


def test_without_an_endpoint_difficulty_stays_unknown():
    out = measure_difficulty(CANDIDATES, None, 3)
    assert out["difficulty"].to_list() == [None] * CANDIDATES.height
    assert set(out["difficulty_source"]) == {NO_ENDPOINT}
    assert measure_difficulty(CANDIDATES.clear(), None, 3).height == 0
    with pytest.raises(ValueError, match="positive integer"):
        measure_difficulty(CANDIDATES, None, 0)
    with pytest.raises(ValueError, match="candidate_id"):
        measure_difficulty(CANDIDATES.drop("candidate_id"), None, 1)


# --------------------------------------------------------------------------- into the weight

DAY = date(2026, 11, 20)


def reps() -> pl.DataFrame:
    rows = [
        {"trace_id": "t1", "text_hash": "h1", "embedding": [1.0, 0.0, 0.0]},
        {"trace_id": "t2", "text_hash": "h2", "embedding": [0.0, 1.0, 0.0]},
    ]
    base = {"day": DAY, "app": "support_bot", "cluster_id": -1, "cluster_size": 3, "copies": 3,
            "is_representative": True, "severity": 0.6}  # fmt: skip
    return pl.DataFrame(
        [{**base, **r, "input_text": "a question", "signals": ["feedback"]} for r in rows],
        schema_overrides={"embedding": pl.List(pl.Float32)},
    )


def empty_suite() -> pl.DataFrame:
    return pl.DataFrame(
        schema={"case_id": pl.String, "app": pl.String, "text_hash": pl.String, "embedding": pl.List(pl.Float32)}
    )


def test_grade_candidates_uses_measured_difficulty_in_the_weight():
    config = LoopConfig()
    plain = grade_candidates(reps(), empty_suite(), config, "r")
    assert plain["difficulty_tries"].to_list() == [None, None] and set(plain["difficulty_source"]) == {NO_ENDPOINT}
    measured = pl.DataFrame(
        {
            "candidate_id": [candidate_id(DAY, "t1")],
            "difficulty": [0.75],
            "difficulty_tries": [4],
            "difficulty_source": ["retries: 3 of 4 answered tries failed against m (0 errored, 0 unknown)"],
        }
    )
    graded = with_difficulty(plain, measured, config, "r")
    assert graded.schema == schema("graded_candidates")
    rows = {r["trace_id"]: r for r in graded.iter_rows(named=True)}
    t1, t2 = rows["t1"], rows["t2"]
    assert (t1["difficulty"], t1["difficulty_tries"]) == (0.75, 4) and t1["difficulty_source"].startswith("retries")
    assert t1["weight"] == pytest.approx(
        weight(t1["novelty"], t1["severity"], t1["frequency_score"], 0.75, config.grading)
    )
    assert t1["weight"] != pytest.approx(plain.filter(pl.col("trace_id") == "t1")["weight"][0])
    assert (t2["difficulty"], t2["difficulty_source"]) == (None, NOT_MEASURED)
    assert t2["weight"] == plain.filter(pl.col("trace_id") == "t2")["weight"][0]
    assert graded["decision"].to_list() == plain["decision"].to_list()


def test_candidates_for_difficulty_carry_the_rule_their_case_will_have():
    config = LoopConfig.model_validate({"apps": {"sql_assistant": {"output_schema": SCHEMA}}})
    graded = pl.DataFrame(
        {
            "candidate_id": ["k1", "k2"],
            "trace_id": ["t1", "t2"],
            "day": [DAY, DAY],
            "app": ["sql_assistant", "sql_assistant"],
            "decision": ["promote", "duplicate_of:case_x"],
        }
    )
    raw = pl.DataFrame(
        {
            "trace_id": ["t1", "t2"],
            "day": [DAY, DAY],
            "input_messages": [ask("q1"), ask("q2")],
            "output_text": ["not json", "not json"],
            "corrected_output": [None, None],
        }
    )
    signal = {"scorer": "json_schema", "version": "1", "value": "not valid JSON", "threshold": "schema"}
    scored = pl.DataFrame({"trace_id": ["t1", "t2"], "day": [DAY, DAY], "failure_signals": [[signal], [signal]]})
    out = candidates_for_difficulty(graded, raw, scored, config)
    assert out.to_dicts() == [
        {
            "candidate_id": "k1",
            "input_messages": ask("q1"),
            "grading": grading_rule("sql_assistant", [signal], None, config, bad_output="not json"),
        }
    ]
    assert "json_schema" in out["grading"][0]
