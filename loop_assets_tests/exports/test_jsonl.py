"""eval-loop's own JSONL: the case exactly as the suite holds it."""

from __future__ import annotations

import json

from loop_assets.exports import write_export
from loop_assets_tests.exports.conftest import CASES


def test_each_line_is_the_whole_case(suite_frame, tmp_path):
    path = write_export(suite_frame, "jsonl", tmp_path).path
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == len(CASES)
    for line, case in zip(lines, CASES, strict=True):
        assert line["input"] == case["input_messages"]  # messages untouched, tool calls and parts included
        assert line["grading"] == json.loads(case["grading"])
        assert line["day"] == case["day"].isoformat() and line["status"] == "active"
        assert line["provenance"]["source_file"] == case["source_file"]
        assert line["provenance"]["source_line"] == case["source_line"]
        assert set(line) >= {"case_id", "app", "input", "expected_output", "grading", "weight", "label", "provenance"}
