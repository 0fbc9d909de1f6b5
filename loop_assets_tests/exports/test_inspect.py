"""Inspect AI dataset JSONL, read with Inspect's own reader (`inspect_ai.dataset.json_dataset`)."""

from __future__ import annotations

import json

import pytest
from inspect_ai.dataset import json_dataset
from inspect_ai.model import ChatMessageAssistant, ChatMessageSystem, ChatMessageTool, ChatMessageUser

from loop_assets.exports import write_export
from loop_assets.exports.inspect import to_inspect_messages
from loop_assets_tests.exports.conftest import CASES, expected_provenance


def test_inspect_reads_the_file_as_samples(suite_frame, tmp_path):
    path = write_export(suite_frame, "inspect", tmp_path).path
    dataset = json_dataset(str(path))
    assert len(dataset) == len(CASES)
    rows = list(suite_frame.iter_rows(named=True))
    for sample, row in zip(dataset, rows, strict=True):
        assert sample.id == row["case_id"]
        assert sample.metadata["provenance"] == expected_provenance(row)
        assert sample.metadata["suite"]["cases"] == 3
        assert isinstance(sample.input, list) and isinstance(sample.input[-1], ChatMessageUser)

    sql, support, summary = dataset
    assert [type(m) for m in sql.input] == [ChatMessageSystem, ChatMessageUser]
    assert sql.target == "" and sql.metadata["target_kind"] == "none"
    assert sql.metadata["grading"]["checks"][2]["schema"]["required"] == ["sql", "explanation"]
    assert "input_conversion" not in sql.metadata and "openai_messages" not in sql.metadata

    assert support.target == CASES[1]["expected_output"] and support.metadata["target_kind"] == "reference"
    assert [type(m) for m in support.input] == [
        ChatMessageSystem,
        ChatMessageUser,
        ChatMessageAssistant,
        ChatMessageTool,
        ChatMessageUser,
    ]
    call = support.input[2].tool_calls[0]
    assert (call.id, call.function, call.arguments) == ("call_1", "lookup", {"order": 42})
    assert support.input[3].tool_call_id == "call_1"
    assert [part.type for part in support.input[4].content] == ["text", "image"]
    assert support.metadata["openai_messages"] == CASES[1]["input_messages"]
    assert support.metadata["input_conversion"] == [
        "messages[1]: name 'customer' dropped (Inspect messages have no name)",
        "messages[4].content[2]: input_audio part dropped (no Inspect equivalent here)",
    ]

    # No reference: the rubric is the target, for a model grader.
    assert summary.target == "Faithful to the {{document}}; at most five sentences."
    assert summary.metadata["target_kind"] == "rubric"
    assert isinstance(summary.input[0], ChatMessageSystem)
    assert summary.metadata["input_conversion"] == ["messages[0]: role developer mapped to system"]


def test_awkward_messages_still_load(tmp_path):
    call = {"id": "c2", "function": {"name": "g", "arguments": "[1]"}}
    messages = [
        {"role": "assistant", "content": "", "function_call": {"name": "f", "arguments": "not json"}},
        {"role": "function", "name": "f", "content": "42"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "critic", "content": [{"type": "text", "text": "meh"}]},
        {"role": "user", "content": {"type": "text", "text": "one part"}},
    ]
    converted, notes = to_inspect_messages(messages)
    path = tmp_path / "s.jsonl"
    path.write_text(json.dumps({"id": "x", "input": converted, "target": ""}) + "\n")
    [sample] = json_dataset(str(path))
    first, tool, second, critic, last = sample.input
    assert first.tool_calls[0].parse_error.startswith("arguments are not JSON")
    assert (tool.role, tool.function, tool.text) == ("tool", "f", "42")
    assert second.tool_calls[0].arguments == {"value": [1]}
    assert (critic.role, critic.text) == ("user", "critic: meh")
    assert last.text == "one part"
    assert any("role 'critic'" in n for n in notes) and any("wrapped" in n for n in notes)


def test_the_reader_rejects_unconverted_openai_messages(tmp_path):
    """The validation has teeth: OpenAI-shaped tool calls are not Inspect messages."""
    path = tmp_path / "raw.jsonl"
    raw = {"id": "x", "target": "", "input": CASES[1]["input_messages"]}
    path.write_text(json.dumps(raw) + "\n")
    with pytest.raises(ValueError):
        json_dataset(str(path))
