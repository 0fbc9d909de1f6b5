"""OpenAI Batch API files: the output file's answers read with the requests of the input file beside it."""

from __future__ import annotations

import json

from loop_assets.config import IngestConfig
from loop_assets_tests.capture.formats.helpers import run

CFG = IngestConfig(workers=1, earliest_timestamp="2020-01-01")


def request(custom_id: str, text: str) -> dict:
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]},
    }


def answer(custom_id: str, text: str, created: int = 1795000000) -> dict:
    return {
        "id": f"batch_req_{custom_id}",
        "custom_id": custom_id,
        "response": {
            "status_code": 200,
            "request_id": f"req_{custom_id}",
            "body": {
                "id": f"chatcmpl-{custom_id}",
                "object": "chat.completion",
                "created": created,
                "model": "gpt-4o-mini-2024-07-18",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12},
            },
        },
        "error": None,
    }


def write(path, records) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


def test_output_lines_are_read_with_the_requests_of_the_input_file_beside_them(tmp_path):
    write(tmp_path / "batch_input.jsonl", [request("r1", "Capital of Chile?"), request("r2", "Capital of Peru?")])
    failed = {
        "id": "batch_req_r2",
        "custom_id": "r2",
        "response": {"status_code": 400, "body": {"error": {"message": "bad model", "type": "invalid_request_error"}}},
        "error": None,
    }
    write(tmp_path / "batch_output.jsonl", [answer("r1", "Santiago"), failed])
    result = run(tmp_path, CFG)
    (row,) = result.traces.to_dicts()
    assert (row["trace_id"], row["source_file"], row["source_line"]) == ("batch_req_r1", "batch_output.jsonl", 1)
    assert json.loads(row["input_messages"]) == [{"role": "user", "content": "Capital of Chile?"}]
    assert (row["output_text"], row["model"], row["finish_reason"]) == ("Santiago", "gpt-4o-mini-2024-07-18", "stop")
    meta = json.loads(row["metadata"])
    assert meta["batch"]["custom_id"] == "r1" and meta["usage"]["total_tokens"] == 12
    quarantined = {(q["source_file"], q["source_line"]): q for q in result.quarantine.to_dicts()}
    # the failed call has no time of its own (no answer): quarantined, its error in the reason
    assert quarantined[("batch_output.jsonl", 2)]["reason_code"] == "missing_field"
    for line in (1, 2):  # each request line is accounted for, its answer read from the output file
        q = quarantined[("batch_input.jsonl", line)]
        assert q["reason_code"] == "no_trace" and "output file" in q["reason"]


def test_an_output_file_without_its_input_file_says_where_the_requests_are(tmp_path):
    write(tmp_path / "out.jsonl", [answer("r1", "Santiago")])
    result = run(tmp_path, CFG)
    (q,) = result.quarantine.to_dicts()
    assert q["reason_code"] == "missing_field" and "batch input file" in q["reason"] and "'r1'" in q["reason"]


def test_a_redelivered_output_file_adds_nothing(tmp_path):
    write(tmp_path / "batch_input.jsonl", [request("r1", "Capital of Chile?")])
    write(tmp_path / "batch_output.jsonl", [answer("r1", "Santiago")])
    write(tmp_path / "batch_output_again.jsonl", [answer("r1", "Santiago")])
    result = run(tmp_path, CFG)
    assert result.traces.height == 1
    codes = sorted(result.quarantine["reason_code"].to_list())
    assert codes == ["duplicate_record", "no_trace"]
