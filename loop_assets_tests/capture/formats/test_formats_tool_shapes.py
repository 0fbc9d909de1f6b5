"""The general shapes behind the real exports, in variants the fixture files do not hold.

Each record is written the way the tool documents it; the real files themselves are checked in
test_real_exports.py.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from loop_assets.capture.formats import FORMATS, RecordError
from loop_assets.config import IngestConfig
from loop_assets_tests.capture.formats.helpers import run

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
CFG = IngestConfig(workers=1, earliest_timestamp="2020-01-01")


def norm(fmt: str, obj: dict) -> list[dict]:
    return FORMATS[fmt].normalise(obj, CFG, now=NOW)


def observation(**fields) -> dict:
    return {
        "id": "obs-1",
        "traceId": "tr-1",
        "type": "GENERATION",
        "startTime": "2026-11-19T10:00:00Z",
        "endTime": "2026-11-19T10:00:02Z",
        **fields,
    }


def test_gemini_contents_and_a_truncated_candidate_with_a_function_call():
    (row,) = norm(
        "langfuse",
        observation(
            input={
                "model": "gemini-2.5-flash",
                "contents": [
                    {"role": "user", "parts": [{"text": "Book a table for two"}]},
                    {"role": "model", "parts": [{"function_call": {"name": "book", "args": {"n": 2}}}]},
                    {"role": "user", "parts": [{"function_response": {"name": "book", "response": {"ok": True}}}]},
                ],
                "config": {"system_instruction": "You book restaurants."},
            },
            output={
                "candidates": [
                    {"content": {"role": "model", "parts": [{"text": "Booked for"}]}, "finish_reason": "MAX_TOKENS"}
                ],
                "usage_metadata": {"prompt_token_count": 30, "candidates_token_count": 3, "total_token_count": 33},
            },
        ),
    )
    messages = json.loads(row["input_messages"])
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "tool"]
    assert messages[2]["tool_calls"][0]["function"] == {"name": "book", "arguments": '{"n":2}'}
    assert row["output_text"] == "Booked for" and row["finish_reason"] == "length"  # the truncation scorer reads it


def test_responses_api_incomplete_answer_is_a_length_finish_and_reasoning_items_are_not_turns():
    (row,) = norm(
        "langfuse",
        observation(
            input=[
                {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Summarise the memo"}]},
                {"type": "reasoning", "summary": []},
            ],
            output={
                "object": "response",
                "status": "incomplete",
                "incomplete_details": {"reason": "max_output_tokens"},
                "output": [
                    {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "The"}]}
                ],
            },
        ),
    )
    assert json.loads(row["input_messages"]) == [
        {"role": "user", "content": [{"type": "input_text", "text": "Summarise the memo"}]}
    ]
    assert row["input_text"] == "Summarise the memo"
    assert (row["output_text"], row["finish_reason"]) == ("The", "length")


def test_vercel_messages_with_tool_call_and_tool_result_parts():
    (row,) = norm(
        "langfuse",
        observation(
            input=[
                {"role": "user", "content": [{"type": "text", "text": "Weather in Oslo?"}]},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "tool-call", "toolCallId": "c1", "toolName": "weather", "input": {"q": "Oslo"}}
                    ],
                },
                {
                    "role": "tool",
                    "content": [
                        {
                            "type": "tool-result",
                            "toolCallId": "c1",
                            "toolName": "weather",
                            "output": {"type": "json", "value": {"t": -3}},
                        }
                    ],
                },
            ],
            output="It is -3 degrees in Oslo.",
        ),
    )
    messages = json.loads(row["input_messages"])
    assert messages[1] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "weather", "arguments": '{"q":"Oslo"}'}}],
    }
    assert messages[2] == {"role": "tool", "content": '{"t":-3}', "tool_call_id": "c1"}


def test_anthropic_stop_reason_max_tokens_reads_as_length():
    (row,) = norm(
        "langfuse",
        observation(
            input=[{"role": "user", "content": "Write a long poem"}],
            output={"role": "assistant", "content": [{"type": "text", "text": "Roses"}], "stop_reason": "max_tokens"},
        ),
    )
    assert (row["output_text"], row["finish_reason"]) == ("Roses", "length")


def test_langsmith_batch_run_ends_without_their_start_are_quarantined_saying_so(tmp_path):
    payload = {
        "post": [
            {
                "id": "r1",
                "run_type": "llm",
                "trace_id": "r1",
                "start_time": "2026-11-19T10:00:00Z",
                "end_time": "2026-11-19T10:00:01Z",  # a run posted complete needs no patch
                "inputs": {"messages": [{"role": "user", "content": "hi"}]},
                "outputs": {
                    "choices": [{"message": {"role": "assistant", "content": "hello"}, "finish_reason": "stop"}]
                },
            }
        ],
        "patch": [{"id": "r2", "trace_id": "r2", "end_time": "2026-11-19T10:00:03Z", "outputs": {"output": "x"}}],
    }
    (tmp_path / "batch.json").write_text(json.dumps(payload, indent=1), encoding="utf-8")
    result = run(tmp_path, CFG)
    assert result.traces["span_id"].to_list() == ["r1"] and result.traces["latency_ms"].to_list() == [1000.0]
    (q,) = result.quarantine.to_dicts()
    assert q["reason_code"] == "missing_field" and "has no start in this payload" in q["reason"]


def test_python_sdk_span_to_json_ids_status_and_kind():
    span = {
        "name": "chat gpt-4o",
        "context": {"trace_id": "0x5b8efff798038103d269b633813fc60c", "span_id": "0xeee19b7ec3c1b174"},
        "kind": "SpanKind.CLIENT",
        "parent_id": "0xeee19b7ec3c1b173",
        "start_time": "2026-11-19T10:00:00.000000Z",
        "end_time": "2026-11-19T10:00:00.250000Z",
        "status": {"status_code": "ERROR", "description": "RateLimitError: slow down"},
        "attributes": {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]),
        },
        "events": [],
        "links": [],
        "resource": {"attributes": {"service.name": "support-bot"}, "schema_url": ""},
    }
    (row,) = norm("otel_genai", span)
    assert (row["trace_id"], row["span_id"]) == ("5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174")
    assert row["error"] == "RateLimitError: slow down" and row["output_text"] is None
    assert row["app"] == "support-bot" and row["latency_ms"] == 250.0
    assert json.loads(row["metadata"])["span_kind"] == "CLIENT"


def test_openlit_role_prefixed_prompt_becomes_messages():
    span = {
        "traceId": "t",
        "spanId": "s",
        "startTimeUnixNano": "1795100000000000000",
        "attributes": {
            "gen_ai.operation.name": "chat",
            "gen_ai.prompt": "system: Be brief.\nuser: What is 2+2?\nIt is urgent.",
            "gen_ai.completion": "4",
        },
    }
    (row,) = norm("otel_genai", span)
    assert json.loads(row["input_messages"]) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is 2+2?\nIt is urgent."},
    ]


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"status": "failure", "error_str": "litellm.RateLimitError: quota"}, "litellm.RateLimitError: quota"),
        (
            {"status": "failure", "error_str": None, "error_information": {"error_message": "timed out"}},
            "timed out",
        ),
    ],
)
def test_litellm_failures_carry_their_error(fields, error):
    record = {
        "id": "c1",
        "startTime": 1795100000.5,
        "endTime": 1795100002.0,
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": "hi"}],
        "response": None,
        **fields,
    }
    (row,) = norm("openai_chat", record)
    assert row["error"] == error and row["output_text"] is None and row["latency_ms"] == 1500.0


def test_a_fine_tuning_line_with_a_timestamp_gives_its_last_assistant_turn_as_the_answer():
    (row,) = norm(
        "openai_chat",
        {
            "timestamp": "2026-11-19T10:00:00Z",
            "messages": [
                {"role": "user", "content": "Capital of Peru?"},
                {"role": "assistant", "content": "Lima", "weight": 1},
            ],
        },
    )
    assert json.loads(row["input_messages"]) == [{"role": "user", "content": "Capital of Peru?"}]
    assert row["output_text"] == "Lima" and json.loads(row["metadata"])["answer"] == {"weight": 1}


def test_a_stored_completion_without_its_request_says_where_the_messages_are():
    with pytest.raises(RecordError) as caught:
        norm("openai_chat", {"object": "chat.completion", "id": "chatcmpl-1", "created": 1795100000, "choices": []})
    assert caught.value.code == "missing_field" and "/v1/chat/completions/{id}/messages" in caught.value.reason


def test_google_adk_llm_response_and_otel_choice_events_as_outputs():
    adk = {
        "content": {"parts": [{"function_call": {"name": "say_hello", "args": {}}}], "role": "model"},
        "finish_reason": "STOP",
        "usage_metadata": {"prompt_token_count": 28, "candidates_token_count": 3, "total_token_count": 31},
    }
    (row,) = norm(
        "langfuse", observation(input={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}, output=adk)
    )
    assert row["output_text"] == "" and row["finish_reason"] == "tool_calls"
    assert json.loads(row["metadata"])["tool_calls"][0]["function"]["name"] == "say_hello"
    choices = [
        {"index": 0, "message": {"role": "assistant", "content": "Langfuse is..."}, "event.name": "gen_ai.choice"},
        {"index": 1, "message": {"role": "assistant", "content": "Other"}, "event.name": "gen_ai.choice"},
    ]
    events = [{"role": "user", "content": "What is Langfuse?", "event.name": "gen_ai.user.message"}]
    (row,) = norm("langfuse", observation(input=events, output=choices))
    assert row["output_text"] == "Langfuse is..." and row["input_text"] == "What is Langfuse?"


def test_pydantic_ai_events_attribute_gives_messages_and_answer():
    events = [
        {"role": "system", "content": "Be concise.", "event.name": "gen_ai.system.message"},
        {"role": "user", "content": "What is Langfuse?", "event.name": "gen_ai.user.message"},
        {
            "index": 0,
            "message": {"role": "assistant", "content": "An LLM tracing tool."},
            "event.name": "gen_ai.choice",
        },
    ]
    span = {
        "traceId": "t",
        "spanId": "s",
        "name": "chat gpt-4o",
        "startTimeUnixNano": "1795100000000000000",
        "attributes": {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o", "events": json.dumps(events)},
    }
    (row,) = norm("otel_genai", span)
    assert [m["role"] for m in json.loads(row["input_messages"])] == ["system", "user"]
    assert row["output_text"] == "An LLM tracing tool."


def test_anthropic_system_blocks_beside_the_messages_become_the_system_turn():
    run = {
        "id": "r1",
        "run_type": "llm",
        "start_time": "2026-11-19T10:00:00Z",
        "inputs": {
            "model": "claude-sonnet-4",
            "system": [{"type": "text", "text": "Be brief."}],
            "messages": [{"role": "user", "content": "Hi"}],
        },
        "outputs": {"role": "assistant", "content": [{"type": "text", "text": "Hello"}], "stop_reason": "end_turn"},
    }
    (row,) = norm("langsmith", run)
    assert json.loads(row["input_messages"])[0] == {"role": "system", "content": "Be brief."}
    assert (row["output_text"], row["finish_reason"]) == ("Hello", "stop")


def test_bedrock_converse_tool_use_and_tool_result_blocks():
    (row,) = norm(
        "langfuse",
        observation(
            input=[
                {"role": "user", "content": [{"text": "Weather in Lima?"}]},
                {
                    "role": "assistant",
                    "content": [{"toolUse": {"toolUseId": "tu1", "name": "weather", "input": {"city": "Lima"}}}],
                },
                {"role": "user", "content": [{"toolResult": {"toolUseId": "tu1", "content": [{"json": {"t": 19}}]}}]},
            ],
            output={"role": "assistant", "content": [{"text": "19 degrees."}]},
        ),
    )
    messages = json.loads(row["input_messages"])
    assert [m["role"] for m in messages] == ["user", "assistant", "tool"]
    assert messages[1]["tool_calls"][0] == {
        "id": "tu1",
        "type": "function",
        "function": {"name": "weather", "arguments": '{"city":"Lima"}'},
    }
    assert messages[2] == {"role": "tool", "content": '{"t":19}', "tool_call_id": "tu1"}
    assert row["input_text"] == "Weather in Lima?" and row["output_text"] == "19 degrees."
