"""The openinference format, and the two shared fixtures (OpenInference and OTel GenAI) giving the same row."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest

from loop_assets.capture.formats import detect_format
from loop_assets.capture.formats.base import RecordError
from loop_assets.capture.formats.openinference import FORMAT
from loop_assets.capture.formats.otel_genai import FORMAT as OTEL_GENAI
from loop_assets_tests.capture.formats.helpers import CFG, NOW, ingest_fixture, lines, load, only, run, traces_by_span

OI_SHARED = "openinference_client_span_tool_calls.json"
GENAI_SHARED = "otel_genai_client_span_tool_calls.json"

EXCHANGE = [
    {"role": "user", "content": "Weather in Paris?"},
    {
        "role": "assistant",
        "content": "Absolutely! Let me check the weather for you.",
        "tool_calls": [
            {"id": "1234", "type": "function", "function": {"name": "get_weather", "arguments": '{"location":"Paris"}'}}
        ],
    },
    {"role": "tool", "content": "rainy, 57°F", "tool_call_id": "1234"},
]
ANSWER = "The weather in Paris is currently rainy with a temperature of 57°F."
WHEN = {"start_time": "2026-11-16T08:00:00Z", "end_time": "2026-11-16T08:00:01.500Z"}


def test_the_two_shared_fixtures_give_identical_messages_and_output():
    oi = FORMAT.normalise({**load(OI_SHARED), **WHEN}, CFG, now=NOW)[0]
    genai = OTEL_GENAI.normalise({**load(GENAI_SHARED), **WHEN}, CFG, now=NOW)[0]
    assert oi["input_messages"] == genai["input_messages"]  # the stored JSON text, byte for byte
    assert json.loads(oi["input_messages"]) == EXCHANGE  # tool calls and tool results in OpenAI chat shape
    assert oi["output_text"] == genai["output_text"] == ANSWER
    assert oi["input_text"] == genai["input_text"] == "Weather in Paris?"
    assert oi["model"] == genai["model"] == "gpt-4-0613"
    assert oi["finish_reason"] == genai["finish_reason"] == "stop"
    assert oi["latency_ms"] == genai["latency_ms"] == 1500.0
    assert json.loads(oi["metadata"])["usage"] == {"output_tokens": 52, "input_tokens": 97, "total_tokens": 149}
    assert json.loads(genai["metadata"])["usage"] == {"output_tokens": 52, "input_tokens": 97}
    assert json.loads(oi["metadata"])["convention"] == "openinference"
    assert json.loads(genai["metadata"])["convention"] == "otel_genai"


def test_each_format_reads_the_other_conventions_span():
    # a file that mixes instrumentations: each span is read by the convention it uses
    genai_by_oi = FORMAT.normalise({**load(GENAI_SHARED), **WHEN}, CFG, now=NOW)[0]
    oi_by_genai = OTEL_GENAI.normalise({**load(OI_SHARED), **WHEN}, CFG, now=NOW)[0]
    assert json.loads(genai_by_oi["input_messages"]) == json.loads(oi_by_genai["input_messages"]) == EXCHANGE
    assert json.loads(genai_by_oi["metadata"])["convention"] == "otel_genai"


def test_shared_fixtures_as_they_are_have_no_timestamp_and_are_quarantined_with_the_reason(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps(load(OI_SHARED)))
    (tmp_path / "b.json").write_text(json.dumps(load(GENAI_SHARED)))
    result = run(tmp_path)
    assert result.quarantine.select("source_file", "source_format", "reason_code").rows() == [
        ("a.json", "openinference", "missing_field"),
        ("b.json", "otel_genai", "missing_field"),
    ]
    assert "no start time" in result.quarantine["reason"][0]


def test_detection():
    assert FORMAT.detect(load(OI_SHARED)) and not FORMAT.detect(load(GENAI_SHARED))
    assert OTEL_GENAI.detect(load(GENAI_SHARED)) and not OTEL_GENAI.detect(load(OI_SHARED))
    records = [json.loads(line) for line in lines("openinference.jsonl")[:4]]
    assert detect_format(records) == "openinference"
    assert detect_format([load(OI_SHARED)]) == "openinference"
    assert detect_format([load(GENAI_SHARED)]) == "otel_genai"


def test_fixture_file_parses_to_the_expected_rows(tmp_path):
    result = ingest_fixture(tmp_path, "openinference.jsonl")
    t = traces_by_span(result)
    assert list(t) == ["cccccccccccccc02", "dddddddddddddd01", "eeeeeeeeeeeeee01"]
    assert set(result.traces["source_format"]) == {"openinference"}

    rag = t["cccccccccccccc02"]  # OTLP envelope: the LLM span under a CHAIN span
    assert rag["trace_id"] == "e3b0c44298fc1c149afbf4c8996fb924"
    assert rag["app"] == "pricing_rag"
    assert rag["model"] == "gpt-4o-mini-2024-07-18"
    assert json.loads(rag["input_messages"]) == [
        {"role": "system", "content": "Answer from the pricing page."},
        {"role": "user", "content": "Which plan includes SSO?"},
    ]
    assert rag["output_text"] == "The Enterprise plan includes SSO."
    assert rag["finish_reason"] == "stop"  # from output.value
    assert rag["latency_ms"] == 2000.0
    assert rag["feedback_thumbs"] == "down"  # the human annotation, not the hallucination eval
    scores = json.loads(rag["feedback"])
    assert scores == [
        {"name": "hallucination", "value": 0.0, "label": "factual", "source": "LLM", "scope": "span"},
        {
            "name": "user_feedback",
            "value": 0,
            "label": "thumbs_down",
            "comment": "SSO is in Business too",
            "source": "HUMAN",
            "scope": "span",
        },
    ]
    meta = json.loads(rag["metadata"])
    assert meta["usage"] == {"input_tokens": 40, "output_tokens": 8, "total_tokens": 48}
    assert meta["attributes"] == {"llm.invocation_parameters": '{"temperature": 0}'}
    assert meta["parent_span_id"] == "cccccccccccccc01"

    phoenix = t["dddddddddddddd01"]  # Phoenix REST span object, nested attribute maps
    assert phoenix["trace_id"] == "f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1"
    assert phoenix["ts"] == datetime(2026, 11, 16, 10, tzinfo=UTC)
    assert phoenix["latency_ms"] == 2500.0
    assert json.loads(phoenix["input_messages"]) == [
        {"role": "user", "content": "Draft a two-line apology for a late delivery."}
    ]
    assert phoenix["output_text"] == "We're sorry your order arrived late.\nWe've refunded the shipping."
    assert phoenix["model"] == "claude-3-5-haiku"
    assert phoenix["feedback_rating"] == 4.0 and phoenix["feedback_thumbs"] is None
    assert phoenix["error"] is None and phoenix["app"] == "default"

    flat = t["eeeeeeeeeeeeee01"]  # flat attribute map with exception.* and an ERROR status
    assert flat["error"] == "TimeoutError: request timed out after 30 s"
    assert flat["output_text"] is None
    assert flat["app"] == "support_bot"
    assert flat["latency_ms"] == 30000.0

    q = result.quarantine
    assert q.select("source_line", "reason_code").rows() == [(4, "missing_field"), (5, "invalid_json")]
    assert "llm.input_messages" in only(q, source_line=4)["reason"]
    assert only(q, source_line=4)["day"] == date(2026, 11, 16)
    assert result.skipped.select("source_line", "item_id", "reason").rows() == [
        (1, "cccccccccccccc01", "OpenInference CHAIN span, not an LLM call")
    ]


def test_contents_images_tool_calls_and_input_value_fallback():
    rec = {
        "openinference.span.kind": "LLM",
        "start_time": "2026-11-16T08:00:00Z",
        "llm.input_messages.0.message.role": "user",
        "llm.input_messages.0.message.contents.0.message_content.type": "text",
        "llm.input_messages.0.message.contents.0.message_content.text": "What is in this picture?",
        "llm.input_messages.0.message.contents.1.message_content.type": "image",
        "llm.input_messages.0.message.contents.1.message_content.image.image.url": "https://x/cat.png",
        "llm.output_messages.0.message.role": "assistant",
        "llm.output_messages.0.message.tool_calls.0.tool_call.id": "c1",
        "llm.output_messages.0.message.tool_calls.0.tool_call.function.name": "describe",
        "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments": '{"detail": "high"}',
    }
    trace = FORMAT.normalise(rec, CFG, now=NOW)[0]
    assert json.loads(trace["input_messages"]) == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in this picture?"},
                {"type": "image_url", "image_url": {"url": "https://x/cat.png"}},
            ],
        }
    ]
    assert trace["input_text"] == "What is in this picture?"
    assert trace["output_text"] == "" and trace["finish_reason"] == "tool_calls"
    assert json.loads(trace["metadata"])["tool_calls"][0]["function"] == {
        "name": "describe",
        "arguments": '{"detail": "high"}',
    }

    plain = {
        "openinference.span.kind": "LLM",
        "start_time": "2026-11-16T08:00:00Z",
        "input.value": "hello there",
        "input.mime_type": "text/plain",
        "output.value": "hi!",
        "output.mime_type": "text/plain",
    }
    trace = FORMAT.normalise(plain, CFG, now=NOW)[0]
    assert json.loads(trace["input_messages"]) == [{"role": "user", "content": "hello there"}]
    assert trace["output_text"] == "hi!"


def test_non_llm_span_is_no_trace_and_unknown_shape_is_unknown_format():
    with pytest.raises(RecordError) as info:
        FORMAT.normalise({"openinference.span.kind": "RETRIEVER", "start_time": "2026-11-16T08:00:00Z"}, CFG, now=NOW)
    assert info.value.code == "no_trace" and "RETRIEVER" in info.value.reason
    with pytest.raises(RecordError) as info:
        FORMAT.normalise({"foo": 1}, CFG, now=NOW)
    assert info.value.code == "unknown_format"
