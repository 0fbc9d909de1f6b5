"""The langsmith format: llm runs become rows; chain and tool runs are accounted for, feedback maps to thumbs."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from loop_assets.capture.formats import detect_format
from loop_assets.capture.formats.base import RecordError
from loop_assets.capture.formats.langsmith import FORMAT
from loop_assets_tests.capture.formats.helpers import CFG, NOW, ingest_fixture, lines, only, run, traces_by_span

NAME = "langsmith.jsonl"
ROOT = "55555555-5555-4555-8555-555555555555"


def runs() -> list[dict]:
    return [json.loads(line) for line in lines(NAME)[:6]]


@pytest.mark.parametrize("gz", [False, True])
def test_fixture_file_parses_to_the_expected_rows(tmp_path, gz):
    result = ingest_fixture(tmp_path, NAME, gz=gz)
    t = traces_by_span(result)
    assert list(t) == [
        "11111111-1111-4111-8111-111111111111",
        "22222222-2222-4222-8222-222222222222",
        "33333333-3333-4333-8333-333333333333",
        "66666666-6666-4666-8666-666666666661",
        "66666666-6666-4666-8666-666666666663",
    ]
    assert set(result.traces["source_format"]) == {"langsmith"}

    chat = t["11111111-1111-4111-8111-111111111111"]  # LangChain serialised messages and LLMResult
    assert chat["trace_id"] == "00000000-0000-4000-8000-000000000001"
    assert chat["ts"] == datetime(2026, 11, 16, 14, tzinfo=UTC)
    assert chat["latency_ms"] == 1250.0
    assert chat["app"] == "travel_bot"
    assert chat["model"] == "gpt-4o-mini"
    assert json.loads(chat["input_messages"]) == [
        {"role": "system", "content": "You are a travel assistant."},
        {"role": "user", "content": "Is a visa needed for Japan?"},
    ]
    assert chat["output_text"] == "Most visitors can enter visa-free for 90 days."
    assert chat["finish_reason"] == "stop"
    assert chat["feedback_thumbs"] == "down"  # user_score 0
    assert chat["corrected_output"] == "It depends on your nationality; check the embassy site."
    assert json.loads(chat["feedback"])[0]["comment"] == "depends on nationality"
    meta = json.loads(chat["metadata"])
    assert meta["ls_provider"] == "openai" and meta["session_name"] == "travel-prod" and meta["tags"] == ["prod"]
    assert meta["extra"] == {"invocation_params": {"model": "gpt-4o-mini", "temperature": 0.2}}
    assert meta["outputs"]["llm_output"]["token_usage"] == {"total_tokens": 42}

    failed = t["22222222-2222-4222-8222-222222222222"]
    assert failed["trace_id"] == failed["span_id"]  # a root llm run without trace_id
    assert failed["error"].startswith("APIConnectionError('Connection error.')")
    assert failed["output_text"] is None
    assert failed["app"] == "concierge"  # the session (project) name
    assert failed["model"] == "gpt-4o"
    assert json.loads(failed["metadata"])["inputs"] == {"model": "gpt-4o"}

    wrapped = t["33333333-3333-4333-8333-333333333333"]  # OpenAI wrapper: outputs is the response
    assert wrapped["output_text"] == "10 miles is 16.09 km."
    assert wrapped["model"] == "gpt-4o-mini-2024-07-18"
    assert wrapped["feedback_thumbs"] == "up"  # feedback_stats thumbs_up avg 1.0
    assert [s["name"] for s in json.loads(wrapped["feedback"])] == ["thumbs_up", "correctness"]
    assert wrapped["app"] == "default"

    tool_step = t["66666666-6666-4666-8666-666666666661"]  # a run tree: child llm runs, one row each
    final = t["66666666-6666-4666-8666-666666666663"]
    assert tool_step["trace_id"] == final["trace_id"] == ROOT
    assert tool_step["source_line"] == final["source_line"] == 6
    assert tool_step["output_text"] == "" and tool_step["finish_reason"] == "tool_calls"
    assert final["output_text"] == "4; France."
    assert final["app"] == tool_step["app"] == "agent_demo"  # inherited from the root
    assert final["feedback_thumbs"] == "up" and tool_step["feedback_thumbs"] is None  # root feedback -> last llm run
    assert json.loads(final["feedback"])[0]["from_run"] == ROOT
    assert json.loads(final["metadata"])["source_path"] == "child_runs[2]"

    q = result.quarantine
    assert q.select("source_line", "reason_code").rows() == [(2, "no_trace"), (5, "bad_timestamp"), (7, "invalid_json")]
    assert (
        "LangSmith chain run" in only(q, source_line=2)["reason"]
        and "RunnableSequence" in only(q, source_line=2)["reason"]
    )
    assert "'yesterday'" in only(q, source_line=5)["reason"]
    assert result.skipped.select("source_line", "source_path", "item").rows() == [
        (2, None, "chain run 00000000-0000-4000-8000-000000000001 'RunnableSequence'"),
        (6, None, f"chain run {ROOT} 'AgentExecutor'"),
        (6, "child_runs[1]", "tool run 66666666-6666-4666-8666-666666666662 'search'"),
    ]
    assert result.manifest["file_records"].to_list() == [8]


def test_json_array_export_skips_chain_runs_without_quarantine_rows(tmp_path):
    (tmp_path / "runs.json").write_text(json.dumps(runs(), indent=2))
    result = run(tmp_path)
    assert result.traces.height == 5
    assert result.quarantine.select("reason_code").to_series().to_list() == ["bad_timestamp"]
    assert result.skipped["item_id"].to_list() == [
        "00000000-0000-4000-8000-000000000001",
        ROOT,
        "66666666-6666-4666-8666-666666666662",
    ]
    (tmp_path / "runs.json").write_text(json.dumps({"runs": [runs()[1]], "cursors": {"next": None}}))
    only_chains = run(tmp_path)  # a document without a single LLM call is one no_trace record
    assert only_chains.quarantine.select("source_line", "reason_code").rows() == [(1, "no_trace")]
    assert "no LLM call in this document" in only_chains.quarantine["reason"][0]
    assert only_chains.skipped["source_path"].to_list() == ["runs[0]"]


def test_detection_and_single_record_errors():
    assert detect_format(runs()) == "langsmith"
    assert not FORMAT.detect({"messages": []})
    with pytest.raises(RecordError) as info:
        FORMAT.normalise(runs()[1], CFG, now=NOW)
    assert info.value.code == "no_trace"
    with pytest.raises(RecordError) as info:
        FORMAT.normalise({**runs()[0], "inputs": None}, CFG, now=NOW)
    assert info.value.code == "missing_field" and "`inputs`" in info.value.reason
    prompts = FORMAT.normalise(
        {
            **runs()[0],
            "inputs": {"prompts": ["Complete: The sky is"]},
            "outputs": {"generations": [[{"text": " blue."}]]},
        },
        CFG,
        now=NOW,
    )[0]
    assert json.loads(prompts["input_messages"]) == [{"role": "user", "content": "Complete: The sky is"}]
    assert prompts["output_text"] == " blue."
