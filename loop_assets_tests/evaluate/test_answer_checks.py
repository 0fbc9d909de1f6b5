import json

import pytest

from loop_assets.case_rule import RuleError, read_rule
from loop_assets.config import LoopConfig
from loop_assets.evaluate.answer_checks import (
    CaseVerdict,
    Output,
    grade_output,
    judge_messages,
    parse_judge_reply,
    parse_rule,
)
from loop_assets.promote.promotion import grading_rule

SCHEMA = {
    "type": "object",
    "required": ["sql", "explanation"],
    "properties": {"sql": {"type": "string", "minLength": 1}, "explanation": {"type": "string"}},
    "additionalProperties": False,
}


def rule(*checks: dict, mode: str = "all") -> str:
    return json.dumps({"pass": mode, "checks": list(checks)})


def ok(text: str = "fine", **kw) -> Output:
    return Output(text=text, finish_reason=kw.get("finish_reason", "stop"), latency_ms=kw.get("latency_ms", 100.0))


class RecordingJudge:
    def __init__(self, answer):
        self.answer = answer
        self.calls: list[dict] = []

    def __call__(self, **kwargs):
        self.calls.append(kwargs)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def test_basic_checks_pass_and_fail():
    basic = rule({"type": "no_error"}, {"type": "non_empty"})
    assert grade_output(basic, ok()).passed is True
    errored = grade_output(basic, Output(text=None, error="HTTP 500 upstream"))
    assert errored.passed is False
    assert errored.failed_checks == ["no_error", "non_empty"]
    assert "HTTP 500" in errored.reasons["no_error"]
    blank = grade_output(basic, Output(text="   "))
    assert blank.failed_checks == ["non_empty"] and "blank" in blank.reasons["non_empty"]


def test_finish_reason_and_latency_are_unknown_when_not_recorded():
    checks = rule({"type": "finish_reason", "not": "length"}, {"type": "latency", "max_ms": 1000})
    assert grade_output(checks, ok(latency_ms=999.0)).passed is True
    truncated = grade_output(checks, ok(finish_reason="LENGTH"))
    assert truncated.passed is False and truncated.failed_checks == ["finish_reason"]
    slow = grade_output(checks, ok(latency_ms=1000.5))
    assert slow.failed_checks == ["latency"] and "1000.5 ms > 1000 ms" in slow.reasons["latency"]
    unrecorded = grade_output(checks, Output(text="fine"))
    assert unrecorded.passed is None
    assert unrecorded.unknown_checks == ["finish_reason", "latency"] and unrecorded.failed_checks == []


def test_a_failed_check_beats_an_unknown_one():
    verdict = grade_output(rule({"type": "non_empty"}, {"type": "latency", "max_ms": 10}), Output(text=""))
    assert verdict.passed is False and verdict.unknown_checks == ["latency"]


def test_json_schema_reuses_the_scorer_contract():
    checks = rule({"type": "json_schema", "schema": SCHEMA})
    assert grade_output(checks, ok('{"sql": "SELECT 1", "explanation": "one"}')).passed is True
    fenced = grade_output(checks, ok('```json\n{"sql": "SELECT 1", "explanation": "one"}\n```'))
    assert fenced.passed is False and fenced.reasons["json_schema"].startswith("not valid JSON")
    missing = grade_output(checks, ok('{"sql": "SELECT 1"}'))
    assert missing.reasons["json_schema"] == "'explanation' is a required property"
    assert grade_output(checks, Output(text=None, error="boom")).reasons["json_schema"] == "no output to validate"


def test_exact_and_contains():
    exact = rule({"type": "exact", "expected": "Paris"})
    assert grade_output(exact, ok("  Paris\n")).passed is True
    assert grade_output(exact, ok("paris")).passed is False
    assert grade_output(rule({"type": "exact", "value": "Paris", "ignore_case": True}), ok("paris")).passed is True
    assert grade_output(rule({"type": "exact", "expected": "a", "strip": False}), ok("a ")).passed is False
    contains = rule({"type": "contains", "value": ["refund", "14 days"]})
    assert grade_output(contains, ok("A refund takes 14 days.")).passed is True
    lacking = grade_output(contains, ok("A refund takes two weeks."))
    assert lacking.passed is False and "14 days" in lacking.reasons["contains"]
    assert grade_output(rule({"type": "contains", "expected": "REFUND", "ignore_case": True}), ok("refund")).passed


def test_rubric_without_a_judge_is_unknown_and_with_one_uses_its_score():
    rubric = {"type": "rubric", "rubric": "Be polite.", "reference": "Dear customer, ..."}
    checks = rule({"type": "non_empty"}, rubric)
    no_judge = grade_output(checks, ok("hello"))
    assert no_judge.passed is None and no_judge.unknown_checks == ["rubric"]
    assert no_judge.reasons == {"rubric": "no judge configured"}

    good = RecordingJudge(0.9)
    verdict = grade_output(checks, ok("hello"), good, messages=[{"role": "user", "content": "hi"}])
    assert verdict.passed is True and verdict.judge_score == 0.9
    assert good.calls == [
        {
            "rubric": "Be polite.",
            "output": "hello",
            "reference": "Dear customer, ...",
            "messages": [{"role": "user", "content": "hi"}],
        }
    ]
    bad = grade_output(checks, ok("go away"), RecordingJudge((0.2, "rude")))
    assert bad.passed is False and bad.failed_checks == ["rubric"] and "rude" in bad.reasons["rubric"]
    assert grade_output(checks, ok("x"), RecordingJudge(True)).passed is True
    assert grade_output(checks, ok("x"), RecordingJudge(False)).passed is False
    for abstain in (None, RuntimeError("judge down"), 7.5, "yes"):
        verdict = grade_output(checks, ok("x"), RecordingJudge(abstain))
        assert verdict.passed is None and verdict.unknown_checks == ["rubric"], abstain
    strict = rule({"type": "rubric", "rubric": "r", "min_score": 0.95})
    assert grade_output(strict, ok("x"), RecordingJudge(0.9)).passed is False


def test_rubric_on_no_output_fails_without_asking_the_judge():
    judge = RecordingJudge(1.0)
    verdict = grade_output(rule({"type": "rubric", "rubric": "r"}), Output(text=None, error="timeout"), judge)
    assert verdict.passed is False and judge.calls == []


def test_any_mode():
    either = rule({"type": "exact", "expected": "a"}, {"type": "exact", "expected": "b"}, mode="any")
    assert grade_output(either, ok("b")).passed is True
    assert grade_output(either, ok("c")).passed is False
    assert grade_output(either, ok("c")).failed_checks == ["exact", "exact#2"]
    maybe = rule({"type": "exact", "expected": "a"}, {"type": "latency", "max_ms": 5}, mode="any")
    assert grade_output(maybe, Output(text="c")).passed is None


@pytest.mark.parametrize(
    ("grading", "message"),
    [
        ("not json", "not valid JSON"),
        ("[]", "must be a JSON object"),
        (json.dumps({"checks": []}), "non-empty list"),
        (json.dumps({"pass": "most", "checks": [{"type": "no_error"}]}), "'all' or 'any'"),
        (rule({"type": "regex", "pattern": "x"}), "unknown type 'regex'"),
        (rule({"type": "latency"}), "max_ms"),
        (rule({"type": "json_schema", "schema": {"type": "nonsense"}}), "not a valid JSON Schema"),
        (rule({"type": "exact"}), "expected"),
        (rule({"type": "rubric", "rubric": " "}), "rubric"),
    ],
)
def test_unreadable_rules_are_unknown_with_the_problem(grading, message):
    with pytest.raises(RuleError, match=message):
        parse_rule(grading)
    verdict = grade_output(grading, ok())
    assert verdict.passed is None and verdict.unknown_checks == ["grading"] and message in verdict.reasons["grading"]


def test_every_rule_promotion_writes_is_gradable():
    config = LoopConfig.model_validate(
        {"apps": {"sql_assistant": {"output_schema": SCHEMA, "latency_budget_ms": 6000, "rubric": "valid SQL"}}}
    )
    signals = [
        {"scorer": "latency", "version": "1", "value": "7000", "threshold": "6000"},
        {"scorer": "truncated_output", "version": "1", "value": "length", "threshold": "finish_reason != length"},
        {"scorer": "feedback", "version": "1", "value": "thumbs=down", "threshold": "rating <= 2"},
    ]
    grading = grading_rule("sql_assistant", signals, "SELECT 1", config)
    mode, checks = parse_rule(grading)
    assert read_rule(grading).to_json() == grading  # read and written again: the same JSON
    assert mode == "all"
    assert [c["type"] for c in checks] == ["no_error", "non_empty", "finish_reason", "json_schema", "latency", "rubric"]
    good = Output('{"sql": "SELECT 1", "explanation": "x"}', "stop", 5000.0)
    assert grade_output(grading, good, RecordingJudge(1.0)).passed is True
    assert grade_output(grading, good).passed is None
    slow = grade_output(grading, Output(good.text, "stop", 6500.0), RecordingJudge(1.0))
    assert isinstance(slow, CaseVerdict) and slow.failed_checks == ["latency"]


def test_judge_reply_parsing_maps_one_to_five_onto_zero_to_one():
    assert parse_judge_reply('{"score": 5, "reason": "great"}') == (1.0, "great")
    assert parse_judge_reply('Sure!\n```json\n{"score": 3, "reason": "ok"}\n```') == (0.5, "ok")
    assert parse_judge_reply('{"score": 1}')[0] == 0.0
    for bad in ("", "no json here", '{"score": 9}', '{"score": true}', "[1, 2]"):
        assert parse_judge_reply(bad)[0] is None, bad
    prompt = judge_messages("rubric R", "answer A", "reference F", [{"role": "user", "content": "question Q"}])
    assert prompt[0]["role"] == "system" and all(x in prompt[1]["content"] for x in ("R", "A", "F", "question Q"))
