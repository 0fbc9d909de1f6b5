"""Langfuse dataset items: one CreateDatasetItemRequest body per line."""

from __future__ import annotations

import json

import jsonschema

from loop_assets.exports import read_back, write_export
from loop_assets_tests.exports.conftest import CASES

# The documented request shape (Langfuse public API, CreateDatasetItemRequest): datasetName
# required; input, expectedOutput, metadata any JSON; sourceTraceId, sourceObservationId, id strings
# or null; status ACTIVE or ARCHIVED. Nothing else.
ITEM = {
    "type": "object",
    "required": ["datasetName"],
    "additionalProperties": False,
    "properties": {
        "datasetName": {"type": "string", "minLength": 1},
        "input": {},
        "expectedOutput": {},
        "metadata": {},
        "sourceTraceId": {"type": ["string", "null"]},
        "sourceObservationId": {"type": ["string", "null"]},
        "id": {"type": ["string", "null"]},
        "status": {"enum": ["ACTIVE", "ARCHIVED", None]},
    },
}


def test_items_have_the_documented_shape_and_link_their_trace(suite_frame, tmp_path):
    path = write_export(suite_frame, "langfuse", tmp_path).path
    items = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert len(items) == len(CASES)
    for item, case in zip(items, CASES, strict=True):
        jsonschema.validate(item, ITEM)
        assert item["id"] == case["case_id"] and item["datasetName"] == "eval-loop"
        assert item["sourceTraceId"] == case["trace_id"]
        assert item["sourceObservationId"] == case["span_id"]
        assert item["status"] == "ACTIVE"
        assert item["input"] == {"messages": case["input_messages"]}
        assert item["expectedOutput"] == case["expected_output"]
        assert item["metadata"]["provenance"]["source_line"] == case["source_line"]
        assert item["metadata"]["grading"] == json.loads(case["grading"])


def test_the_dataset_name_is_an_option(suite_frame, tmp_path):
    path = write_export(suite_frame, "langfuse", tmp_path, dataset_name="support-regressions").path
    assert {c["item"]["datasetName"] for c in read_back("langfuse", path)} == {"support-regressions"}


def test_the_shape_check_can_fail():
    try:
        jsonschema.validate({"datasetName": "d", "expected_output": "x"}, ITEM)
    except jsonschema.ValidationError:
        return
    raise AssertionError("a snake_case key passed the item shape")
