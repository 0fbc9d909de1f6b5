"""promptfoo config YAML: tests with vars and assertions mapped from each case's grading checks."""

from __future__ import annotations

import json

import jinja2
import jsonschema
import polars as pl
import yaml

from loop_assets.exports import write_export
from loop_assets.exports.promptfoo import assertions
from loop_assets_tests.exports.conftest import CASES, SQL_SCHEMA

# Documented promptfoo config keys (configuration reference) and test case keys (test cases page).
CONFIG_KEYS = {"description", "tags", "providers", "prompts", "tests", "defaultTest", "outputPath", "env"}
TEST_KEYS = {"description", "vars", "assert", "metadata", "options", "threshold", "provider", "providers"}
# Assertion types used by the mapping, all listed in promptfoo's assertion docs (`not-` negates any).
ASSERT_TYPES = {"regex", "is-json", "latency", "llm-rubric", "finish-reason", "not-finish-reason", "assert-set"}
ASSERT_TYPES |= {"equals", "javascript", "contains", "icontains", "contains-all", "icontains-all"}


def load(suite_frame, tmp_path):
    path = write_export(suite_frame, "promptfoo", tmp_path).path
    return path, yaml.safe_load(path.read_text(encoding="utf-8"))


def test_the_config_has_the_documented_shape_and_the_suite_version(suite_frame, tmp_path):
    path, config = load(suite_frame, tmp_path)
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# eval-loop regression suite as of 2026-11-17: 3 cases")
    assert set(config) <= CONFIG_KEYS
    assert config["description"] == "eval-loop regression suite as of 2026-11-17 (3 cases)"
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in config["tags"].items())
    assert config["tags"]["suite_as_of"] == "2026-11-17" and config["tags"]["suite_cases"] == "3"
    assert config["prompts"] == ["{{ messages | dump }}"]
    assert len(config["tests"]) == len(CASES)
    for test, case in zip(config["tests"], CASES, strict=True):
        assert set(test) <= TEST_KEYS
        assert isinstance(test["description"], str) and test["description"].startswith(case["app"])
        assert test["vars"]["messages"] == case["input_messages"]
        assert all(a["type"] in ASSERT_TYPES for a in test["assert"])
        assert test["metadata"]["case_id"] == case["case_id"]
        assert test["metadata"]["provenance"]["trace_id"] == case["trace_id"]
        assert test["metadata"]["suite"]["as_of"] == "2026-11-17"
    assert "&id" not in text and "*id" not in text  # no YAML anchors


def test_grading_checks_map_to_natural_assertions(suite_frame, tmp_path):
    _, config = load(suite_frame, tmp_path)
    sql, support, summary = config["tests"]

    assert sql["assert"] == [
        {"type": "regex", "value": "\\S"},
        {"type": "is-json", "value": SQL_SCHEMA},
        {"type": "latency", "threshold": 6000.0},
    ]
    jsonschema.Draft202012Validator.check_schema(sql["assert"][1]["value"])
    assert "unmapped_checks" not in sql["metadata"]

    assert [a["type"] for a in support["assert"]] == ["regex", "llm-rubric"]
    assert support["vars"]["reference"] == CASES[1]["expected_output"]
    assert "{{ reference }}" in support["assert"][1]["value"]

    assert [a["type"] for a in summary["assert"]] == ["regex", "not-finish-reason", "llm-rubric", "javascript"]
    assert summary["assert"][1]["value"] == "length"
    assert summary["assert"][3]["value"] == 'String(output).trim() === "no such check yet"'
    assert "unmapped_checks" not in summary["metadata"]  # no_error is implicit in promptfoo
    assert "reference" not in summary["vars"]


def test_every_check_type_of_the_grading_vocabulary():
    env = {}
    assert assertions({"type": "no_error"}, env) is None
    assert assertions({"type": "finish_reason", "not": ["length", "content_filter"]}, env) == [
        {"type": "not-finish-reason", "value": "length"},
        {"type": "not-finish-reason", "value": "content_filter"},
    ]
    assert assertions({"type": "finish_reason", "in": "stop"}, env) == [{"type": "finish-reason", "value": "stop"}]
    assert assertions({"type": "finish_reason", "in": ["stop", "tool_calls"]}, env) == [
        {
            "type": "assert-set",
            "threshold": 0.5,
            "assert": [{"type": "finish-reason", "value": "stop"}, {"type": "finish-reason", "value": "tool_calls"}],
        }
    ]
    assert assertions({"type": "exact", "expected": "Paris", "strip": False}, env) == [
        {"type": "equals", "value": "Paris"}
    ]
    assert assertions({"type": "exact", "value": " Paris ", "ignore_case": True}, env) == [
        {"type": "javascript", "value": 'String(output).trim().toLowerCase() === "Paris".toLowerCase()'}
    ]
    assert assertions({"type": "contains", "value": "refund"}, env) == [{"type": "contains", "value": "refund"}]
    assert assertions({"type": "contains", "expected": ["a", "{{b}}"], "ignore_case": True}, env) == [
        {"type": "icontains-all", "value": ["a", "{% raw %}{{b}}{% endraw %}"]}
    ]
    rubric = assertions({"type": "rubric", "rubric": "r", "reference": "ref", "min_score": 0.8}, env)
    assert rubric[0]["threshold"] == 0.8 and env == {"reference": "ref"}
    assert assertions({"type": "judge_vibes"}, env) is None


def test_a_rule_that_passes_on_any_check_becomes_one_assert_set(suite_frame, tmp_path):
    any_rule = json.dumps({"pass": "any", "checks": [{"type": "contains", "value": "a"}, {"type": "non_empty"}]})
    frame = suite_frame.head(1).with_columns(pl.lit(any_rule).alias("grading"))
    [test] = load(frame, tmp_path)[1]["tests"]
    assert test["assert"] == [
        {
            "type": "assert-set",
            "threshold": 0.5,
            "assert": [{"type": "contains", "value": "a"}, {"type": "regex", "value": "\\S"}],
        }
    ]


def test_unknown_checks_are_named_in_metadata(suite_frame, tmp_path):
    rule = json.dumps({"pass": "all", "checks": [{"type": "no_error"}, {"type": "judge_vibes"}]})
    [test] = load(suite_frame.head(1).with_columns(pl.lit(rule).alias("grading")), tmp_path)[1]["tests"]
    assert test["assert"] == [] and test["metadata"]["unmapped_checks"] == ["judge_vibes"]


def test_templated_values_render_back_to_the_case(suite_frame, tmp_path):
    """promptfoo renders prompts and rubrics with Nunjucks; Jinja2 reads the same syntax for these."""
    _, config = load(suite_frame, tmp_path)
    env = jinja2.Environment(autoescape=False)
    env.filters["dump"] = json.dumps
    for test, case in zip(config["tests"], CASES, strict=True):
        rendered = env.from_string(config["prompts"][0]).render(**test["vars"])
        assert json.loads(rendered) == case["input_messages"]
    support, summary = config["tests"][1], config["tests"][2]
    rubric = env.from_string(support["assert"][1]["value"]).render(**support["vars"])
    assert rubric.startswith("The answer follows the refund policy.") and rubric.endswith(CASES[1]["expected_output"])
    # Braces in a rubric stay literal.
    assert env.from_string(summary["assert"][2]["value"]).render() == (
        "Faithful to the {{document}}; at most five sentences."
    )
