"""OTel GenAI content sent to log events (content capture on, older conventions), read with the spans.

The spans are the real legacy-content export (content went to log events the file does not hold); the
log export requests are written here in the shape the Collector's file exporter gives them.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime

from loop_assets.capture.ingest import ingest
from loop_assets_tests.capture.formats.helpers import check_accounting
from loop_assets_tests.capture.formats.real_exports import CFG, REAL_EXPORTS

SPANS = REAL_EXPORTS / "otel_genai/gen_otelcontrib_openai_v2_legacy_content.jsonl"
TRACE, SPAN = "98bd9752c7f708c421548440e73ee16c", "c88f39d457f39bff"
NOW = datetime(2026, 12, 31, tzinfo=UTC)


def kv(key: str, value) -> dict:
    if isinstance(value, dict):
        return {"key": key, "value": {"kvlistValue": {"values": [kv(k, v) for k, v in value.items()]}}}
    return {"key": key, "value": {"intValue" if isinstance(value, int) else "stringValue": value}}


def event(name: str, body: dict, by_attribute: bool = False) -> dict:
    record = {
        "timeUnixNano": "1796496358390600000",
        "traceId": TRACE,
        "spanId": SPAN,
        "body": {"kvlistValue": {"values": [kv(k, v) for k, v in body.items()]}},
        "attributes": [kv("gen_ai.system", "openai")],
    }
    if by_attribute:  # older SDKs name the event in an attribute
        record["attributes"].append(kv("event.name", name))
    else:
        record["eventName"] = name
    return record


LOGS = {
    "resourceLogs": [
        {
            "resource": {"attributes": [kv("service.name", "otel-contrib-openai-v2-cassettes")]},
            "scopeLogs": [
                {
                    "scope": {"name": "opentelemetry.instrumentation.openai_v2"},
                    "logRecords": [
                        event("gen_ai.user.message", {"content": "Say this is a test"}),
                        event(
                            "gen_ai.choice",
                            {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "Hi."}},
                            by_attribute=True,
                        ),
                    ],
                }
            ],
        }
    ]
}


def read(folder):
    result = ingest(folder, CFG, "run-1", now=NOW)
    check_accounting(result)
    return result


def test_log_events_in_a_file_beside_the_spans_give_the_call_its_messages(tmp_path):
    shutil.copy(SPANS, tmp_path / "traces.jsonl")
    (tmp_path / "logs.jsonl").write_text(json.dumps(LOGS) + "\n", encoding="utf-8")
    result = read(tmp_path)
    (row,) = result.traces.to_dicts()
    assert (row["trace_id"], row["span_id"]) == (TRACE, SPAN)
    assert json.loads(row["input_messages"]) == [{"role": "user", "content": "Say this is a test"}]
    assert (row["output_text"], row["finish_reason"]) == ("Hi.", "stop")
    quarantined = result.quarantine.to_dicts()
    assert sum(q["source_file"] == "traces.jsonl" for q in quarantined) == 5  # the spans without log events
    (logs,) = [q for q in quarantined if q["source_file"] == "logs.jsonl"]
    assert logs["reason_code"] == "no_trace" and "read with their spans" in logs["reason"]


def test_log_events_in_the_spans_own_file_are_read_too_and_redelivery_adds_nothing(tmp_path):
    text = SPANS.read_text(encoding="utf-8") + json.dumps(LOGS) + "\n"
    (tmp_path / "export.jsonl").write_text(text, encoding="utf-8")
    (tmp_path / "export.jsonl.1").write_text(text, encoding="utf-8")
    result = read(tmp_path)
    assert result.traces.height == 1 and result.traces["output_text"].to_list() == ["Hi."]
    codes = result.quarantine.group_by("reason_code").len().sort("reason_code").rows()
    assert codes == [("duplicate_record", 1), ("missing_field", 10), ("no_trace", 2)]
