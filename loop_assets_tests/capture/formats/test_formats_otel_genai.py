"""The otel_genai format: OTLP export requests with GenAI spans, one row per LLM span, broken spans alone."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from loop_assets.capture.formats import FORMATS, detect_format
from loop_assets.capture.formats.base import TRACE_FIELDS, RecordError
from loop_assets.capture.formats.otel_genai import FORMAT
from loop_assets.config import IngestConfig
from loop_assets_tests.capture.formats.helpers import (
    CFG,
    NOW,
    ingest_fixture,
    line_of,
    lines,
    only,
    place,
    run,
    traces_by_span,
)

TA = "0af7651916cd43dd8448eb211c80319c"


def records() -> list:
    out = []
    for text in lines("otel_genai.jsonl"):
        try:
            out.append(json.loads(text))
        except ValueError:
            out.append(None)
    return out


def chat_span(**attrs) -> dict:
    """A one-span export request with string attributes, for field-level tests."""
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]},
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": "t" * 32,
                                "spanId": "s" * 16,
                                "name": "chat",
                                "startTimeUnixNano": "1794816000000000000",
                                "endTimeUnixNano": "1794816000500000000",
                                "attributes": [{"key": k.replace("__", "."), "value": v} for k, v in attrs.items()],
                            }
                        ]
                    }
                ],
            }
        ]
    }


USER = {
    "stringValue": json.dumps([{"role": "user", "parts": [{"type": "text", "content": "Hello there, how are you?"}]}])
}


def test_fixture_file_parses_to_the_expected_rows(tmp_path):
    result = ingest_fixture(tmp_path, "otel_genai.jsonl")
    t = traces_by_span(result)
    assert set(result.traces["source_format"]) == {"otel_genai"}
    assert list(t) == ["b7ad6b7169203332", "b7ad6b7169203334", "00f067aa0ba902b7", "53995c3f42cd8ad8"]

    first = t["b7ad6b7169203332"]  # the chat span that asks for a tool
    assert first["trace_id"] == TA
    assert first["ts"] == datetime(2026, 11, 16, 8, 0, 0, 100000, tzinfo=UTC)
    assert first["app"] == "weather_bot"
    assert first["model"] == "gpt-4o-2024-08-06"
    assert json.loads(first["input_messages"]) == [
        {"role": "system", "content": "You answer weather questions."},
        {"role": "user", "content": "Weather in Paris?"},
    ]
    assert first["input_text"] == "Weather in Paris?"
    assert first["output_text"] == ""
    assert first["finish_reason"] == "tool_call"
    assert first["latency_ms"] == 1200.0
    meta = json.loads(first["metadata"])
    assert meta["tool_calls"] == [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"location":"Paris"}'}}
    ]
    assert meta["usage"] == {"input_tokens": 31, "output_tokens": 12}
    assert meta["parent_span_id"] == "b7ad6b7169203331"
    assert meta["span_kind"] == "CLIENT"
    assert meta["resource"] == {"deployment.environment": "prod"}
    assert meta["attributes"]["gen_ai.request.model"] == "gpt-4o"  # the alias asked for is kept
    assert "gen_ai.input.messages" not in meta["attributes"]  # columns are not stored twice
    assert meta["source_path"] == "resourceSpans[0].scopeSpans[0].spans[1]"

    second = t["b7ad6b7169203334"]  # structured (kvlistValue) messages with a tool exchange, and feedback
    assert json.loads(second["input_messages"]) == [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"location":"Paris"}'},
                }
            ],
        },
        {"role": "tool", "content": "rainy, 57°F", "tool_call_id": "call_1"},
    ]
    assert second["output_text"] == "It is rainy in Paris, 57°F."
    assert second["finish_reason"] == "stop"
    assert second["latency_ms"] == 850.0
    assert second["feedback_thumbs"] == "down"  # user-feedback scored 0
    assert second["feedback_rating"] is None
    scores = json.loads(second["feedback"])
    assert [s["name"] for s in scores] == ["relevance", "user-feedback"]
    assert scores[0] == {
        "name": "relevance",
        "value": 0.9,
        "label": "relevant",
        "source": "gen_ai.evaluation.result",
        "time": "1794816030000000000",
    }
    assert scores[1]["comment"] == "I asked about Lyon"
    assert "events" not in json.loads(second["metadata"])  # evaluation events became feedback

    failed = t["00f067aa0ba902b7"]  # ERROR status with an exception event
    assert failed["error"] == "openai.RateLimitError: Rate limit reached for gpt-4o-mini"
    assert failed["output_text"] is None
    assert failed["app"] == "default"  # unknown_service:python is the SDK default, not a name
    assert json.loads(failed["metadata"])["events"][0]["attributes"]["exception.stacktrace"].startswith("Traceback")

    legacy = t["53995c3f42cd8ad8"]  # OpenLLMetry's flattened gen_ai.prompt.* / gen_ai.completion.*
    assert json.loads(legacy["input_messages"]) == [
        {"role": "system", "content": "You are a translator."},
        {"role": "user", "content": "Translate 'good morning' to French."},
    ]
    assert legacy["output_text"] == "Bonjour."
    assert legacy["finish_reason"] == "length"
    assert legacy["model"] == "gpt-3.5-turbo"
    assert json.loads(legacy["metadata"])["usage"] == {"input_tokens": 20, "output_tokens": 3}

    q = result.quarantine
    assert q.select("source_line", "reason_code").rows() == [(3, "wrong_type"), (4, "invalid_json"), (5, "no_trace")]
    broken = only(q, source_line=3)  # the broken span alone, beside a good span of the same line
    assert broken["reason"].startswith("at resourceSpans[0].scopeSpans[0].spans[1] (span 53995c3f42cd8ad9")
    assert "`attributes` must be a list" in broken["reason"]
    assert json.loads(broken["raw"])["spanId"] == "53995c3f42cd8ad9"  # the span's own bytes
    assert "HTTP" not in only(q, source_line=5)["reason"] and "no GenAI attributes" in only(q, source_line=5)["reason"]
    assert (
        only(q, source_line=3)["day"] is None
        and only(q, source_line=3)["partition_day"] == datetime(2026, 11, 16).date()
    )

    skipped = result.skipped
    assert skipped.select("source_line", "item_id", "reason").rows() == [
        (1, "b7ad6b7169203331", "GenAI operation 'invoke_agent', not an LLM request"),
        (1, "b7ad6b7169203333", "GenAI operation 'execute_tool', not an LLM request"),
        (
            5,
            "1111111111111111",
            "no GenAI attributes of an LLM call (gen_ai.operation.name, gen_ai.input.messages, gen_ai.request.model)",
        ),
    ]
    assert set(skipped["trace_id"]) == {TA, "7d1c2a3b4c5d6e7f8091a2b3c4d5e6f7"}


def test_multi_span_trace_gives_one_row_per_llm_span_with_trace_and_span_ids():
    line1 = records()[0]
    parts = FORMAT.split(line1)
    assert [(p.item_id, p.skip is None) for p in parts] == [
        ("b7ad6b7169203331", False),
        ("b7ad6b7169203332", True),
        ("b7ad6b7169203333", False),
        ("b7ad6b7169203334", True),
    ]
    traces = FORMAT.normalise(line1, CFG, now=NOW)  # the whole record at once, as other callers use it
    assert [(t["trace_id"], t["span_id"]) for t in traces] == [(TA, "b7ad6b7169203332"), (TA, "b7ad6b7169203334")]
    assert all(set(t) == set(TRACE_FIELDS) for t in traces)


def test_pretty_printed_document_points_at_each_span_and_its_gzip_reads_the_same(tmp_path):
    name = "otel_genai_document.json"
    plain = ingest_fixture(tmp_path / "plain", name)
    zipped = ingest_fixture(tmp_path / "gz", name, gz=True)
    for result in (plain, zipped):
        trace = only(result.traces, span_id="aaaaaaaaaaaaaaa1")
        assert trace["source_line"] == line_of(name, '"spanId": "aaaaaaaaaaaaaaa1"', before=2) == 27
        assert trace["output_text"] == "Canberra." and trace["app"] == "geo_quiz"
        assert json.loads(trace["metadata"])["source_path"] == "resourceSpans[0].scopeSpans[0].spans[0]"
        bad = only(result.quarantine, reason_code="missing_field")  # a chat span logged without content
        assert bad["source_line"] == line_of(name, '"spanId": "aaaaaaaaaaaaaaa3"', before=2)
        assert "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT" in bad["reason"]
        assert bad["day"] == datetime(2026, 11, 16).date()
        assert json.loads(bad["raw"])["spanId"] == "aaaaaaaaaaaaaaa3"
        assert result.skipped.select("source_line", "item_id").rows() == [
            (line_of(name, '"spanId": "aaaaaaaaaaaaaaa2"', before=2), "aaaaaaaaaaaaaaa2")
        ]
    assert plain.traces.drop("source_file").equals(zipped.traces.drop("source_file"))


def test_one_line_document_uses_line_one_and_the_span_path(tmp_path):
    doc = json.loads((place(tmp_path / "src", "otel_genai_document.json")).read_text())
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "compact.json").write_text(json.dumps(doc))
    result = run(tmp_path / "in")
    assert result.traces["source_line"].to_list() == [1]
    assert json.loads(result.traces["metadata"][0])["source_path"] == "resourceSpans[0].scopeSpans[0].spans[0]"
    assert result.quarantine["source_line"].to_list() == [1]
    assert result.quarantine["reason"][0].startswith("at resourceSpans[0].scopeSpans[0].spans[2]")


def test_detection_and_the_flat_attribute_map():
    assert detect_format(r for r in records() if r) == "otel_genai"
    assert FORMATS["otel_genai"].detect({"resourceSpans": []})  # any OTLP export
    assert not FORMATS["openinference"].detect(records()[0])
    assert not FORMAT.detect({"messages": [{"role": "user", "content": "x"}]})


@pytest.mark.parametrize(
    ("status", "expected"),
    [({"code": 2, "message": "boom"}, "boom"), ({"code": "STATUS_CODE_ERROR"}, "error"), ({"code": 1}, None)],
)
def test_status_codes(status, expected):
    rec = chat_span(gen_ai__operation__name={"stringValue": "chat"}, gen_ai__input__messages=USER)
    rec["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["status"] = status
    trace = FORMAT.normalise(rec, CFG, now=NOW)[0]
    assert trace["error"] == expected
    assert trace["output_text"] == (None if expected else "")


def test_older_conventions_prompt_attribute_and_content_events():
    rec = chat_span(
        gen_ai__system={"stringValue": "openai"},
        gen_ai__prompt={"stringValue": json.dumps([{"role": "user", "content": "What's the time in Tokyo?"}])},
        gen_ai__completion={"stringValue": json.dumps([{"role": "assistant", "content": "It is 9 pm."}])},
    )
    trace = FORMAT.normalise(rec, CFG, now=NOW)[0]
    assert json.loads(trace["input_messages"]) == [{"role": "user", "content": "What's the time in Tokyo?"}]
    assert trace["output_text"] == "It is 9 pm."

    events = chat_span(gen_ai__operation__name={"stringValue": "chat"})
    events["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["events"] = [
        {"name": "gen_ai.content.prompt", "attributes": [{"key": "gen_ai.prompt", "value": {"stringValue": "Say hi"}}]},
        {
            "name": "gen_ai.content.completion",
            "attributes": [{"key": "gen_ai.completion", "value": {"stringValue": "hi"}}],
        },
    ]
    trace = FORMAT.normalise(events, CFG, now=NOW)[0]
    assert json.loads(trace["input_messages"]) == [{"role": "user", "content": "Say hi"}]
    assert trace["output_text"] == "hi"


def test_system_instructions_and_output_with_several_choices():
    rec = chat_span(
        gen_ai__operation__name={"stringValue": "chat"},
        gen_ai__system_instructions={"stringValue": json.dumps([{"type": "text", "content": "Be brief."}])},
        gen_ai__input__messages=USER,
        gen_ai__output__messages={
            "stringValue": json.dumps(
                [
                    {"role": "assistant", "parts": [{"type": "text", "content": "Fine."}], "finish_reason": "stop"},
                    {"role": "assistant", "parts": [{"type": "text", "content": "Good."}], "finish_reason": "stop"},
                ]
            )
        },
    )
    trace = FORMAT.normalise(rec, CFG, now=NOW)[0]
    assert json.loads(trace["input_messages"])[0] == {"role": "system", "content": "Be brief."}
    assert trace["output_text"] == "Fine." and trace["finish_reason"] == "stop"
    assert "gen_ai.output.messages" in json.loads(trace["metadata"])["attributes"]  # the second choice is kept


def test_errors_name_the_field():
    with pytest.raises(RecordError) as info:
        FORMAT.normalise(
            chat_span(
                gen_ai__operation__name={"stringValue": "chat"}, gen_ai__input__messages={"stringValue": "{not json"}
            ),
            CFG,
            now=NOW,
        )
    assert info.value.code == "invalid_value" and "gen_ai.input.messages" in info.value.reason
    rec = chat_span(gen_ai__operation__name={"stringValue": "chat"}, gen_ai__input__messages=USER)
    rec["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["endTimeUnixNano"] = "1794815999000000000"
    with pytest.raises(RecordError) as info:
        FORMAT.normalise(rec, CFG, now=NOW)
    assert info.value.code == "invalid_value" and "before the span's start" in info.value.reason
    assert info.value.ts == datetime(2026, 11, 16, 8, tzinfo=UTC)
    with pytest.raises(RecordError) as info:
        FORMAT.normalise({"resourceSpans": [{"scopeSpans": [{"spans": []}]}]}, CFG, now=NOW)
    assert info.value.code == "no_trace"
    with pytest.raises(RecordError) as info:
        FORMAT.normalise({"hello": "world"}, IngestConfig(), now=NOW)
    assert info.value.code == "unknown_format" and "gen_ai" in info.value.reason


def test_deeply_nested_attribute_values_do_not_crash():
    deep: dict = {"stringValue": "leaf"}
    for _ in range(500):
        deep = {"kvlistValue": {"values": [{"key": "k", "value": deep}]}}
    rec = chat_span(gen_ai__operation__name={"stringValue": "chat"}, gen_ai__input__messages=USER, custom=deep)
    trace = FORMAT.normalise(rec, CFG, now=NOW)[0]
    assert "custom" in json.loads(trace["metadata"])["attributes"]
