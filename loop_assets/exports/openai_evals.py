"""OpenAI Evals samples JSONL (`samples_jsonl` of a registered eval).

Each line is one sample: `input` is the request as chat messages (OpenAI chat shape, exactly as
logged: system prompt, earlier turns, the failing user turn), `ideal` the reference answer. The
basic templates (Match, Includes, FuzzyMatch) compare the completion with `ideal`; model-graded
templates format their prompt from the sample's keys.

Mapping of a case:

- `input` <- input_messages, unchanged.
- `ideal` <- expected_output (the corrected answer the user gave) when there is one. A case without
  one has no `ideal` key (there is no known correct string, and an empty list would read as "no answer
  is right"): grade such cases with a model-graded eval using the rubric in `metadata.grading`, whose
  templates format their prompt from the keys a sample has.
- `metadata` <- case id, app, label, weight, grading checks, provenance and suite version. OpenAI
  Evals ignores keys its template does not use, so metadata rides along without effect.

Not mapped (kept only in metadata): every grading check. Samples have no assertion field; the checks
(no_error, non_empty, finish_reason, json_schema, latency, not_known_bad, rubric) are chosen per
eval in the registry YAML, not per sample; a `not_known_bad` check's answer (the one a user rated
down, which must not come back) is in `metadata.grading.checks[].output`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loop_assets.exports.suite import Case, SuiteVersion, read_case, read_jsonl_lines, write_jsonl_lines

SUFFIX = ".openai_evals.jsonl"


def item(case: Case, version: SuiteVersion) -> dict[str, Any]:
    metadata = case.metadata(version)
    metadata["ideal_source"] = "expected_output" if case.expected_output is not None else "none"
    sample: dict[str, Any] = {"input": case.messages}
    if case.expected_output is not None:
        sample["ideal"] = case.expected_output
    sample["metadata"] = metadata
    return sample


def write(cases: list[Case], version: SuiteVersion, path: Path, **_: Any) -> None:
    write_jsonl_lines(path, [item(case, version) for case in cases])


def read(path: Path) -> list[dict[str, Any]]:
    out = []
    for line in read_jsonl_lines(path):
        ideal = line.get("ideal")
        expected = ideal if isinstance(ideal, str) else (ideal[0] if ideal else None)
        out.append(read_case(line, line["metadata"], input=line["input"], expected=expected))
    return out
