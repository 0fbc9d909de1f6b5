"""eval-loop's own JSONL: one case per line, every field of the case as the suite holds it.

Line: `case_id`, `app`, `input` (the request messages, OpenAI chat shape), `expected_output`,
`grading` (the checks), `weight`, `label`, `status`, `day`, `provenance` and `suite` (the version).
Nothing is translated, so nothing is lost: the reference format the others are checked against.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loop_assets.exports.suite import Case, SuiteVersion, read_case, read_jsonl_lines, write_jsonl_lines

SUFFIX = ".jsonl"


def item(case: Case, version: SuiteVersion) -> dict[str, Any]:
    return {
        "case_id": case.case_id,
        "app": case.app,
        "input": case.messages,
        "input_text": case.input_text,
        "expected_output": case.expected_output,
        "grading": case.grading,
        "weight": case.weight,
        "label": case.label,
        "status": case.status,
        "day": case.day,
        "provenance": case.provenance,
        "suite": version.as_dict(),
    }


def write(cases: list[Case], version: SuiteVersion, path: Path, **_: Any) -> None:
    write_jsonl_lines(path, [item(case, version) for case in cases])


def read(path: Path) -> list[dict[str, Any]]:
    return [
        read_case(line, line, input=line["input"], expected=line["expected_output"]) for line in read_jsonl_lines(path)
    ]
