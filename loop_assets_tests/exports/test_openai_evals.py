"""OpenAI Evals samples: `input` as chat messages, `ideal` a string, or no `ideal` without a reference."""

from __future__ import annotations

import json

import jsonschema
import pytest

from loop_assets.exports import write_export
from loop_assets_tests.exports.conftest import CASES

# The documented sample shape (openai/evals docs/build-eval.md): `input` in chat format (a list of
# {role, content}) or a string, `ideal` a string or a list of strings; other keys are free. Model-graded
# templates read only the keys their prompt names, so a sample without a reference has no `ideal`.
MESSAGE = {
    "type": "object",
    "required": ["role", "content"],
    "properties": {"role": {"type": "string"}, "content": {"type": ["string", "array", "null"]}},
}
SAMPLE = {
    "type": "object",
    "required": ["input"],
    "properties": {
        "input": {"oneOf": [{"type": "string"}, {"type": "array", "minItems": 1, "items": MESSAGE}]},
        "ideal": {"oneOf": [{"type": "string"}, {"type": "array", "minItems": 1, "items": {"type": "string"}}]},
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
    assert "ideal" not in samples[0] and samples[0]["metadata"]["ideal_source"] == "none"
    # The checks have no per-sample field in OpenAI Evals: they ride in metadata.
    assert samples[0]["metadata"]["grading"]["checks"][2]["type"] == "json_schema"


@pytest.mark.parametrize("ideal", [[1], []])
def test_the_shape_check_can_fail(ideal):
    bad = {"input": [{"role": "user", "content": "x"}], "ideal": ideal}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, SAMPLE)
