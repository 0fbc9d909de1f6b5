"""The langfuse format: GENERATION observations (alone or in a trace) become rows, scores become feedback."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest

from loop_assets.capture.formats import detect_format
from loop_assets.capture.formats.base import RecordError
from loop_assets.capture.formats.langfuse import FORMAT
from loop_assets.config import IngestConfig
from loop_assets_tests.capture.formats.helpers import CFG, NOW, ingest_fixture, line_of, load, only, run, traces_by_span

NAME = "langfuse.json"


def generation(**over) -> dict:
    obs = {
        "id": "g1",
        "traceId": "t1",
        "type": "GENERATION",
        "startTime": "2026-11-16T12:00:00Z",
        "endTime": "2026-11-16T12:00:00.250Z",
        "model": "gpt-4o-mini",
        "input": [{"role": "user", "content": "How do I export my data as CSV?"}],
        "output": {"role": "assistant", "content": "Settings > Export > CSV."},
    }
    obs.update(over)
    return obs


@pytest.mark.parametrize("gz", [False, True])
def test_fixture_file_parses_to_the_expected_rows(tmp_path, gz):
    result = ingest_fixture(tmp_path, NAME, gz=gz)
    t = traces_by_span(result)
    assert list(t) == ["gen-1", "gen-2", "gen-3"]
    assert set(result.traces["source_format"]) == {"langfuse"}

    plan = t["gen-1"]
    assert plan["trace_id"] == "trace-lf-1"
    assert plan["source_line"] == line_of(NAME, '"id": "gen-1"', before=1) == 24
    assert plan["app"] == "support_chat"  # the trace name
    assert plan["model"] == "gpt-4o"
    assert plan["ts"] == datetime(2026, 11, 16, 12, 0, 0, 100000, tzinfo=UTC)
    assert plan["latency_ms"] == 1000.0
    assert plan["output_text"] == "" and plan["finish_reason"] == "tool_calls"
    assert plan["feedback_thumbs"] is None  # an EVAL boolean named tool-choice is no thumbs
    assert json.loads(plan["feedback"]) == [
        {
            "name": "tool-choice",
            "value": True,
            "label": "True",
            "source": "EVAL",
            "dataType": "BOOLEAN",
            "id": "sc-2",
            "traceId": "trace-lf-1",
            "observationId": "gen-1",
            "timestamp": "2026-11-16T12:06:00.000Z",
        }
    ]
    meta = json.loads(plan["metadata"])
    assert meta["tool_calls"][0]["function"]["name"] == "lookup_order"
    assert meta["trace"]["userId"] == "u_42" and meta["trace"]["metadata"] == {"env": "prod"}
    assert meta["usage"]["total_tokens"] == 36 and meta["record.usage"]["total"] == 36
    assert meta["modelParameters"] == {"temperature": 0}
    assert meta["source_path"] == "[0].observations[1]"

    answer = t["gen-2"]  # the trace's last generation carries the trace-level user feedback
    assert json.loads(answer["input_messages"])[2] == {
        "role": "tool",
        "content": "shipped 2026-11-14",
        "tool_call_id": "call_9",
    }
    assert answer["output_text"] == "Your order shipped on 14 November."
    assert answer["feedback_thumbs"] == "down"
    [score] = json.loads(answer["feedback"])
    assert (score["name"], score["value"], score["scope"], score["comment"]) == (
        "user-feedback",
        0,
        "trace",
        "It did not say when it arrives",
    )

    failed = t["gen-3"]
    assert failed["error"] == "Upstream timeout after 30s" and failed["output_text"] is None
    assert failed["app"] == "billing_bot"  # metadata.app
    assert failed["feedback_rating"] == 2.0 and failed["feedback_thumbs"] is None
    assert json.loads(failed["input_messages"]) == [{"role": "user", "content": "What is my balance?"}]
    assert json.loads(failed["metadata"])["region"] == "eu"

    bad = only(result.quarantine, reason_code="missing_field")
    assert result.quarantine.height == 1
    assert bad["source_line"] == line_of(NAME, '"id": "gen-4"', before=1)
    assert bad["reason"] == "at [3] (generation gen-4 'broken'): no start time: `startTime` is missing or null"
    assert json.loads(bad["raw"])["id"] == "gen-4"
    assert bad["partition_day"] == date(2026, 11, 16)

    # SPAN and EVENT observations of a document are not records: listed, no quarantine noise
    assert result.skipped.select("source_line", "source_path", "item_id", "reason").rows() == [
        (
            line_of(NAME, '"id": "obs-root"', before=1),
            "[0].observations[0]",
            "obs-root",
            "Langfuse SPAN observation, not an LLM call",
        ),
        (line_of(NAME, '"id": "evt-1"', before=1), "[2]", "evt-1", "Langfuse EVENT observation, not an LLM call"),
    ]
    assert result.manifest["file_records"].to_list() == [4]


def test_jsonl_export_and_api_page_shapes(tmp_path):
    items = load(NAME)
    (tmp_path / "jsonl").mkdir()
    (tmp_path / "jsonl" / "obs.jsonl").write_text("\n".join(json.dumps(i) for i in items) + "\n")
    lines_result = run(tmp_path / "jsonl")
    assert lines_result.traces["span_id"].to_list() == ["gen-1", "gen-2", "gen-3"]
    # in JSON Lines each line is a record: a line holding only an EVENT is a no_trace record
    assert lines_result.quarantine.select("source_line", "reason_code").rows() == [
        (3, "no_trace"),
        (4, "missing_field"),
    ]
    assert "EVENT" in lines_result.quarantine["reason"][0]

    (tmp_path / "page").mkdir()
    (tmp_path / "page" / "page.json").write_text(json.dumps({"data": items, "meta": {"page": 1}}, indent=1))
    page = run(tmp_path / "page")
    assert page.traces["span_id"].to_list() == ["gen-1", "gen-2", "gen-3"]
    assert json.loads(page.traces["metadata"][2])["source_path"] == "data[1]"


def test_detection_and_override(tmp_path):
    assert detect_format(load(NAME)) == "langfuse"
    assert FORMAT.detect(generation()) and FORMAT.detect(load(NAME)[0])
    (tmp_path / "a.jsonl").write_text(json.dumps(generation()) + "\n")
    assert run(tmp_path).traces["source_format"].to_list() == ["langfuse"]
    forced = run(tmp_path, IngestConfig(format="langsmith"))
    assert forced.quarantine["reason_code"].to_list() == ["unknown_format"]
    assert "not a LangSmith run" in forced.quarantine["reason"][0]


def test_input_shapes_and_errors():
    text = FORMAT.normalise(generation(input="Plain prompt text", output="Plain answer"), CFG, now=NOW)[0]
    assert json.loads(text["input_messages"]) == [{"role": "user", "content": "Plain prompt text"}]
    assert text["output_text"] == "Plain answer" and text["latency_ms"] == 250.0
    wrapped = FORMAT.normalise(generation(input={"messages": [{"role": "user", "content": "hi"}]}), CFG, now=NOW)[0]
    assert json.loads(wrapped["input_messages"]) == [{"role": "user", "content": "hi"}]
    with pytest.raises(RecordError) as info:
        FORMAT.normalise(generation(input={"args": [1], "kwargs": {}}), CFG, now=NOW)
    assert info.value.code == "invalid_value" and "`input` holds no chat messages" in info.value.reason
    assert info.value.ts == datetime(2026, 11, 16, 12, tzinfo=UTC)
    with pytest.raises(RecordError) as info:
        FORMAT.normalise(generation(type="SPAN"), CFG, now=NOW)
    assert info.value.code == "no_trace"
    with pytest.raises(RecordError) as info:
        FORMAT.normalise(generation(endTime="2026-11-16T11:00:00Z"), CFG, now=NOW)
    assert info.value.code == "invalid_value"


def test_score_types_map_to_thumbs_rating_and_correction():
    def fb(*scores):
        return FORMAT.normalise(generation(scores=list(scores)), CFG, now=NOW)[0]

    assert fb({"name": "user-feedback", "value": 1, "dataType": "NUMERIC"})["feedback_thumbs"] == "up"
    assert (
        fb({"name": "thumbs", "value": 0, "stringValue": "False", "dataType": "BOOLEAN"})["feedback_thumbs"] == "down"
    )
    assert fb({"name": "user-feedback", "stringValue": "👎", "dataType": "CATEGORICAL"})["feedback_thumbs"] == "down"
    assert fb({"name": "sentiment", "stringValue": "negative", "dataType": "CATEGORICAL"})["feedback_thumbs"] is None
    assert fb({"name": "correctness", "value": 0, "dataType": "NUMERIC"})["feedback_thumbs"] is None
    rated = fb({"name": "stars", "value": 5, "dataType": "NUMERIC"})
    assert rated["feedback_rating"] == 5.0 and rated["feedback_thumbs"] is None
    corrected = fb({"name": "correction", "stringValue": "Settings > Data > Export CSV.", "dataType": "CORRECTION"})
    assert corrected["corrected_output"] == "Settings > Data > Export CSV."
