"""The openai_chat format: the sample shape, each accepted variant, and every validation error."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from loop_assets.capture.formats import FORMATS, REASON_CODES, TraceFormat, detect_format
from loop_assets.capture.formats.base import TRACE_FIELDS, RecordError, canonical_json, record_hash
from loop_assets.capture.formats.openai_chat import FORMAT
from loop_assets.config import IngestConfig
from loop_assets_tests.paths import FIXTURES

SAMPLE = FIXTURES / "capture" / "sample.jsonl"
NOW = datetime(2026, 11, 20, tzinfo=UTC)
CFG = IngestConfig()


def norm(obj: dict, cfg: IngestConfig = CFG) -> dict:
    traces = FORMAT.normalise(obj, cfg, now=NOW)
    assert len(traces) == 1
    assert set(traces[0]) == set(TRACE_FIELDS)
    return traces[0]


def base(**over) -> dict:
    rec = {
        "id": "tr_1",
        "timestamp": "2026-11-16T08:12:33Z",
        "messages": [{"role": "user", "content": "How do I reset my password please?"}],
    }
    rec.update(over)
    return {k: v for k, v in rec.items() if v is not ...}


def error_of(obj: dict, cfg: IngestConfig = CFG) -> RecordError:
    with pytest.raises(RecordError) as info:
        FORMAT.normalise(obj, cfg, now=NOW)
    assert info.value.code in REASON_CODES
    return info.value


# --- the sample shape ------------------------------------------------------------------------------


def sample_records() -> list[dict]:
    return [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines()]


def test_sample_shape_is_parsed_field_by_field():
    first, refund, invoice, outage, *_ = sample_records()
    t = norm(first)
    assert t["trace_id"] == "tr_0000000000000001"
    assert t["span_id"] is None
    assert t["ts"] == datetime(2026, 11, 16, 8, 12, 33, 123000, tzinfo=UTC)
    assert t["app"] == "support_bot"
    assert t["model"] == "gpt-4o-mini-2024-07-18"  # the model that answered, not the alias asked for
    assert json.loads(t["input_messages"]) == first["request"]["messages"]
    assert t["input_text"] == "How do I reset my password?"
    assert t["output_text"] == "Go to Settings > Security and choose Reset password."
    assert t["latency_ms"] == 812.4
    assert t["finish_reason"] == "stop"
    assert t["error"] is None
    assert t["feedback"] is None and t["feedback_thumbs"] is None and t["feedback_rating"] is None
    meta = json.loads(t["metadata"])
    assert meta["user_id"] == "u_1" and meta["scenario"] == "password_reset"
    # what request/response held besides the fields read is kept, not dropped
    assert meta["request"] == {"model": "gpt-4o-mini", "temperature": 0.2}
    assert meta["response"]["usage"]["total_tokens"] == 43

    r = norm(refund)
    assert r["output_text"] == ""
    assert r["feedback_thumbs"] == "down" and r["feedback_rating"] == 1.0
    assert r["corrected_output"] == "Yes, refunds take 5 days."
    assert json.loads(r["feedback"])["comment"] == "empty answer"

    assert norm(invoice)["finish_reason"] == "length"

    o = norm(outage)
    assert o["error"] == "server_error 500: The server had an error while processing your request."
    assert o["output_text"] is None  # errored call without an answer
    assert o["model"] == "gpt-4o-mini"  # no response: the requested model


def test_every_sample_record_is_detected_and_parses():
    records = sample_records()
    assert detect_format(records) == "openai_chat"
    assert [norm(r)["trace_id"] for r in records] == [f"tr_{i:016x}" for i in range(1, 7)]


def test_registry_holds_formats_satisfying_the_protocol():
    for name, fmt in FORMATS.items():
        assert isinstance(fmt, TraceFormat)
        assert fmt.name == name


# --- variants ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ids", "expected"),
    [
        ({"id": "a"}, "a"),
        ({"trace_id": "b"}, "b"),
        ({"request_id": "c"}, "c"),
        ({"request_id": 42}, "42"),
        ({"id": None, "trace_id": "b"}, "b"),
        ({"id": "a", "trace_id": "b"}, "a"),
    ],
)
def test_id_variants(ids, expected):
    assert norm({**base(id=...), **ids})["trace_id"] == expected


def test_missing_id_is_a_stable_hash_of_the_record():
    rec = base(id=...)
    t = norm(rec)
    assert t["trace_id"] == "h_" + record_hash(rec)[:32]
    reordered = dict(reversed(list(rec.items())))
    assert norm(reordered)["trace_id"] == t["trace_id"]  # canonical: key order does not matter
    assert norm(base(id=..., app="other"))["trace_id"] != t["trace_id"]


def test_canonical_json_is_sorted_and_compact():
    assert canonical_json({"b": 1, "a": [1, {"d": "é", "c": None}]}) == '{"a":[1,{"c":null,"d":"é"}],"b":1}'


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ({"timestamp": "2026-11-16T08:12:33.123Z"}, datetime(2026, 11, 16, 8, 12, 33, 123000, tzinfo=UTC)),
        ({"timestamp": "2026-11-16T08:12:33"}, datetime(2026, 11, 16, 8, 12, 33, tzinfo=UTC)),  # naive is UTC
        ({"timestamp": "2026-11-16 08:12:33.5"}, datetime(2026, 11, 16, 8, 12, 33, 500000, tzinfo=UTC)),
        ({"timestamp": "2026-11-16T23:30:00-02:00"}, datetime(2026, 11, 17, 1, 30, tzinfo=UTC)),
        ({"timestamp": "2026-11-16T08:12:33.123456789Z"}, datetime(2026, 11, 16, 8, 12, 33, 123456, tzinfo=UTC)),
        ({"ts": 1794787200}, datetime(2026, 11, 16, tzinfo=UTC)),  # epoch seconds
        ({"ts": 1794787200.25}, datetime(2026, 11, 16, 0, 0, 0, 250000, tzinfo=UTC)),
        ({"created_at": 1794787200123}, datetime(2026, 11, 16, 0, 0, 0, 123000, tzinfo=UTC)),  # ms
        ({"start_time": "1794787200123"}, datetime(2026, 11, 16, 0, 0, 0, 123000, tzinfo=UTC)),  # numeric text
        ({"created": 1794787200}, datetime(2026, 11, 16, tzinfo=UTC)),
        ({"ts": None, "created": 1794787200}, datetime(2026, 11, 16, tzinfo=UTC)),
        ({"response": {"created": 1794787200, "choices": []}}, datetime(2026, 11, 16, tzinfo=UTC)),
    ],
)
def test_timestamp_variants(stamp, expected):
    t = norm({**base(timestamp=...), **stamp})
    assert t["ts"] == expected
    assert t["ts"].utcoffset().total_seconds() == 0


def test_messages_at_each_accepted_place():
    msgs = [{"role": "user", "content": "A question long enough to stand on its own."}]
    for rec in (
        base(messages=msgs),
        base(messages=..., request={"messages": msgs, "model": "m"}),
        base(messages=..., input={"messages": msgs}),
    ):
        assert FORMAT.detect(rec)
        assert json.loads(norm(rec)["input_messages"]) == msgs


def test_detect_rejects_records_without_messages():
    assert not FORMAT.detect({"id": "x", "timestamp": "2026-11-16T00:00:00Z", "prompt": "hi"})
    assert not FORMAT.detect({"request": "messages"})
    assert detect_format([{"a": 1}, {"b": 2}]) is None
    assert detect_format([{"a": 1}, base()]) == "openai_chat"


@pytest.mark.parametrize(
    ("extra", "output", "finish"),
    [
        ({"choices": [{"message": {"role": "assistant", "content": "top"}, "finish_reason": "stop"}]}, "top", "stop"),
        ({"choices": [{"text": "legacy", "finish_reason": "length"}]}, "legacy", "length"),
        ({"output": "plain"}, "plain", None),
        ({"completion": "done", "finish_reason": "stop"}, "done", "stop"),
        ({"output": {"role": "assistant", "content": "as message"}}, "as message", None),
        ({"response": "a string response"}, "a string response", None),
        (
            {
                "response": {
                    "choices": [
                        {
                            "message": {
                                "content": [{"type": "text", "text": "part one"}, {"type": "text", "text": "two"}]
                            }
                        }
                    ]
                }
            },
            "part one\ntwo",
            None,
        ),
        ({"response": {"choices": []}}, "", None),
        ({}, "", None),  # nothing logged, no error: an empty answer
    ],
)
def test_output_variants(extra, output, finish):
    t = norm(base(**extra))
    assert t["output_text"] == output
    assert t["finish_reason"] == finish


def test_tool_calls_without_content():
    calls = [{"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}]
    t = norm(base(response={"choices": [{"message": {"role": "assistant", "content": None, "tool_calls": calls}}]}))
    assert t["output_text"] == ""
    assert t["finish_reason"] == "tool_calls"
    assert json.loads(t["metadata"])["tool_calls"] == calls
    logged = base(response={"choices": [{"message": {"content": None, "tool_calls": calls}, "finish_reason": "stop"}]})
    assert norm(logged)["finish_reason"] == "stop"  # a logged finish_reason is kept


def test_model_and_app_fallbacks():
    assert norm(base(model="top"))["model"] == "top"
    assert (
        norm(base(messages=..., request={"model": "req", "messages": [{"role": "user", "content": "x"}]}))["model"]
        == "req"
    )
    assert norm(base())["model"] is None
    assert norm(base(app="billing"))["app"] == "billing"
    assert norm(base(metadata={"app": "from_meta"}))["app"] == "from_meta"
    assert norm(base())["app"] == "default"


@pytest.mark.parametrize(
    ("extra", "latency"),
    [
        ({"latency_ms": 812.4}, 812.4),
        ({"latency_ms": "812"}, 812.0),
        ({"duration_ms": 90}, 90.0),
        ({"latency": 1.5}, 1500.0),
        ({"end_time": "2026-11-16T08:12:35.500Z"}, 2500.0),
        ({"latency_ms": None}, None),
        ({}, None),
    ],
)
def test_latency_variants(extra, latency):
    assert norm(base(**extra))["latency_ms"] == latency


@pytest.mark.parametrize(
    ("error", "text"),
    [
        (None, None),
        ("boom", "boom"),
        ({"type": "server_error", "code": 500, "message": "oops"}, "server_error 500: oops"),
        ({"type": "rate_limit"}, "rate_limit"),
        ({"message": "only a message"}, "only a message"),
        ({"error": {"type": "invalid_request_error", "message": "bad"}}, "invalid_request_error: bad"),
        (False, None),
    ],
)
def test_error_variants(error, text):
    t = norm(base(error=error))
    assert t["error"] == text
    assert t["output_text"] == ("" if text is None else None)


@pytest.mark.parametrize(
    ("feedback", "thumbs", "rating"),
    [
        ({"thumbs": "up"}, "up", None),
        ({"thumbs": "DOWN", "rating": 2}, "down", 2.0),
        ({"thumbs": True}, "up", None),
        ({"thumbs": False}, "down", None),
        ({"thumbs": 1}, "up", None),
        ({"thumbs": -1}, "down", None),
        ({"score": 0}, "down", None),
        ({"score": 1}, "up", None),
        ({"score": 0.5, "rating": "4"}, None, 4.0),
        ({"rating": "great"}, None, None),
        ("down", "down", None),
        (None, None, None),
    ],
)
def test_feedback_variants(feedback, thumbs, rating):
    t = norm(base(feedback=feedback))
    assert t["feedback_thumbs"] == thumbs
    assert t["feedback_rating"] == rating
    assert t["feedback"] == (None if feedback is None else json.dumps(feedback, ensure_ascii=False))


def test_unknown_top_level_keys_go_to_metadata():
    rec = base(metadata={"env": "prod", "tenant": "t1"}, tenant="t2", user="u9", request={"temperature": 0})
    meta = json.loads(norm(rec)["metadata"])
    assert meta == {"env": "prod", "tenant": "t1", "record.tenant": "t2", "user": "u9", "request": {"temperature": 0}}
    assert json.loads(norm(base(metadata="free text"))["metadata"]) == {"metadata": "free text"}


# --- input_text ------------------------------------------------------------------------------------


def chat(*turns: tuple[str, str]) -> dict:
    return base(messages=[{"role": r, "content": c} for r, c in turns])


def test_short_last_turn_gets_up_to_two_preceding_non_system_turns():
    t = norm(
        chat(
            ("system", "You are a bank assistant."),
            ("user", "I lost my card."),
            ("assistant", "I can block it.   Shall I?"),
            ("system", "Policy reminder."),
            ("user", "Yes  please"),
        )
    )
    assert t["input_text"] == "user: I lost my card.\nassistant: I can block it. Shall I?\nuser: Yes please"


def test_only_two_context_turns_are_added():
    t = norm(
        chat(("user", "first"), ("assistant", "second"), ("user", "third"), ("assistant", "fourth"), ("user", "ok"))
    )
    assert t["input_text"] == "user: third\nassistant: fourth\nuser: ok"


def test_long_last_turn_stands_alone_whitespace_collapsed_case_kept():
    t = norm(
        chat(
            ("user", "earlier"),
            ("assistant", "reply"),
            ("user", "  Please   EXPLAIN\n\tthe Refund policy for orders  "),
        )
    )
    assert t["input_text"] == "Please EXPLAIN the Refund policy for orders"


def test_context_threshold_is_configurable():
    rec = chat(("user", "earlier question"), ("assistant", "reply"), ("user", "yes please"))
    assert norm(rec, IngestConfig(context_min_chars=5))["input_text"] == "yes please"
    assert norm(rec, IngestConfig(context_min_chars=40))["input_text"].endswith("\nuser: yes please")


def test_last_user_turn_is_used_even_when_assistant_spoke_last_and_parts_are_joined():
    rec = base(
        messages=[
            {"role": "user", "content": [{"type": "text", "text": "Describe"}, {"type": "image_url", "image_url": {}}]},
            {"role": "assistant", "content": "trailing assistant turn"},
        ]
    )
    assert norm(rec, IngestConfig(context_min_chars=0))["input_text"] == "Describe"


def test_no_user_turn_falls_back_to_last_non_system_turn():
    rec = chat(("system", "sys"), ("assistant", "An assistant turn that is long enough to stand."))
    assert norm(rec)["input_text"] == "An assistant turn that is long enough to stand."


# --- validation errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rec", "code", "words"),
    [
        (base(timestamp=...), "missing_field", ["no timestamp", "`timestamp`", "`created_at`"]),
        (base(timestamp=None), "missing_field", ["`timestamp` is null"]),
        (base(timestamp=True), "wrong_type", ["`timestamp`", "boolean", "true"]),
        (base(timestamp={"t": 1}), "wrong_type", ["`timestamp`", "object"]),
        (base(timestamp="yesterday"), "bad_timestamp", ["`timestamp`", "'yesterday'"]),
        (base(timestamp=float("nan")), "bad_timestamp", ["`timestamp`"]),
        (base(timestamp=1e30), "bad_timestamp", ["`timestamp`"]),
        (base(timestamp="1999-12-31T23:59:59Z"), "bad_timestamp", ["earlier than ingest.earliest_timestamp"]),
        (base(ts=0, timestamp=...), "bad_timestamp", ["`ts`", "1970-01-01"]),
        (base(timestamp="2026-11-21T00:00:01Z"), "bad_timestamp", ["after the ingest clock", "future_tolerance_hours"]),
        (base(messages=...), "missing_field", ["no request messages", "`request.messages`"]),
        (base(messages=None), "missing_field", ["`messages` is null"]),
        (base(messages="hi"), "wrong_type", ["`messages` must be a list", "string 'hi'"]),
        (base(messages=..., request={"messages": {"role": "user"}}), "wrong_type", ["`request.messages`", "object"]),
        (base(messages=[]), "invalid_value", ["`messages` is empty"]),
        (base(messages=["hi"]), "wrong_type", ["`messages[0]`", "string"]),
        (base(messages=[{"content": "hi"}]), "missing_field", ["`messages[0]` has no `role`"]),
        (base(messages=[{"role": 3, "content": "hi"}]), "wrong_type", ["`messages[0].role`"]),
        (
            base(messages=[{"role": "system", "content": "s"}, {"role": "user"}]),
            "missing_field",
            ["`messages[1]`", "content"],
        ),
        (base(messages=[{"role": "user", "content": 5}]), "wrong_type", ["`messages[0].content`", "number"]),
        (base(latency_ms="fast"), "wrong_type", ["`latency_ms` must be a number", "'fast'"]),
        (base(latency_ms=True), "wrong_type", ["`latency_ms`", "boolean"]),
        (base(latency_ms=-5), "invalid_value", ["`latency_ms` must not be negative"]),
        (base(latency="slow"), "wrong_type", ["`latency`"]),
        (base(end_time="2026-11-16T08:00:00Z"), "invalid_value", ["`end_time`", "before"]),
        (base(id=["x"]), "wrong_type", ["`id`", "array"]),
        (base(choices="nope"), "wrong_type", ["`choices` must be a list"]),
        (base(response={"choices": [{"message": "text"}]}), "wrong_type", ["`response.choices[0].message`"]),
        (base(output=12), "wrong_type", ["`output`", "number"]),
    ],
)
def test_validation_errors_name_the_field(rec, code, words):
    err = error_of(rec)
    assert err.code == code, err.reason
    for word in words:
        assert word in err.reason, err.reason


def test_errors_after_the_timestamp_carry_it_but_range_errors_do_not():
    assert error_of(base(latency_ms="fast")).ts == datetime(2026, 11, 16, 8, 12, 33, tzinfo=UTC)
    assert error_of(base(timestamp="1990-01-01")).ts is None
    assert error_of(base(timestamp=...)).ts is None


def test_future_tolerance_and_earliest_are_configurable():
    rec = base(timestamp="2026-11-22T00:00:00Z")
    assert error_of(rec).code == "bad_timestamp"
    assert norm(rec, IngestConfig(future_tolerance_hours=72))["ts"].day == 22
    old = base(timestamp="2010-01-01T00:00:00Z")
    assert error_of(old).code == "bad_timestamp"  # default: nothing before the first partition (2025)
    assert norm(old, IngestConfig(earliest_timestamp="2005-01-01"))["ts"].year == 2010


def test_record_error_rejects_undocumented_codes():
    with pytest.raises(ValueError, match="unknown reason code"):
        RecordError("made_up", "x")
