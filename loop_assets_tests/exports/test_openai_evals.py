"""OpenAI Evals samples: `input` as chat messages, `ideal` a string or a list of strings."""

from __future__ import annotations

import json

import jsonschema

from loop_assets.exports import write_export
from loop_assets_tests.exports.conftest import CASES

# The documented sample shape (openai/evals docs/build-eval.md): `input` in chat format (a list of
# {role, content}) or a string, `ideal` a string or a list of strings; other keys are free.
MESSAGE = {
    "type": "object",
    "required": ["role", "content"],
    "properties": {"role": {"type": "string"}, "content": {"type": ["string", "array", "null"]}},
}
SAMPLE = {
    "type": "object",
    "required": ["input", "ideal"],
    "properties": {
        "input": {"oneOf": [{"type": "string"}, {"type": "array", "minItems": 1, "items": MESSAGE}]},
        "ideal": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
        "metadata": {"type": "object"},
    },
}


def test_samples_have_the_documented_shape(suite_frame, tmp_path):
    path = write_export(suite_frame, "openai-evals", tmp_path).path
    samples = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert len(samples) == len(CASES)
    for sample, case in zip(samples, CASES, strict=True):
        jsonschema.validate(sample, SAMPLE)
        assert sample["input"] == case["input_messages"]
        assert sample["input"][-1]["role"] == "user"
        assert sample["metadata"]["case_id"] == case["case_id"]
        assert sample["metadata"]["provenance"]["trace_id"] == case["trace_id"]
    # The reference answer is the ideal; without one there is no ideal string to match.
    assert samples[1]["ideal"] == CASES[1]["expected_output"]
    assert samples[1]["metadata"]["ideal_source"] == "expected_output"
    assert samples[0]["ideal"] == [] and samples[0]["metadata"]["ideal_source"] == "none"
    # The checks have no per-sample field in OpenAI Evals: they ride in metadata.
    assert samples[0]["metadata"]["grading"]["checks"][2]["type"] == "json_schema"


def test_the_shape_check_can_fail():
    bad = {"input": [{"role": "user", "content": "x"}], "ideal": [1]}
    try:
        jsonschema.validate(bad, SAMPLE)
    except jsonschema.ValidationError:
        return
    raise AssertionError("a numeric ideal passed the sample shape")
