"""Shared reading of messages, answers and feedback (formats.chat)."""

from __future__ import annotations

import pytest

from loop_assets.capture.formats.base import RecordError
from loop_assets.capture.formats.chat import feedback_columns, genai_messages, messages_from, output_from


def lc(cls: str, **kwargs) -> dict:
    return {"lc": 1, "type": "constructor", "id": ["langchain", "schema", "messages", cls], "kwargs": kwargs}


def test_langchain_anthropic_and_genai_messages_become_openai_messages():
    assert messages_from(
        {
            "messages": [
                [
                    lc("SystemMessage", content="Be nice."),
                    lc(
                        "AIMessage",
                        content="",
                        tool_calls=[{"name": "search", "args": {"q": "x"}, "id": "c1", "type": "tool_call"}],
                    ),
                    lc("ToolMessage", content="found", tool_call_id="c1"),
                ]
            ]
        },
        "inputs",
    ) == [
        {"role": "system", "content": "Be nice."},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "search", "arguments": '{"q":"x"}'}}],
        },
        {"role": "tool", "content": "found", "tool_call_id": "c1"},
    ]
    assert messages_from([{"type": "human", "content": "hi"}], "input") == [{"role": "user", "content": "hi"}]
    assert messages_from(
        [
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Let me look."},
                    {"type": "tool_use", "id": "tu1", "name": "lookup", "input": {"id": 7}},
                ],
            },
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "tu1", "content": "ok"}]},
        ],
        "input",
    ) == [
        {
            "role": "assistant",
            "content": "Let me look.",
            "tool_calls": [{"id": "tu1", "type": "function", "function": {"name": "lookup", "arguments": '{"id":7}'}}],
        },
        {"role": "tool", "content": "ok", "tool_call_id": "tu1"},
    ]
    assert genai_messages(
        '[{"role": "user", "parts": [{"type": "text", "content": "a"}, {"type": "text", "content": "b"}]}]', "m"
    ) == [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, (None, None, None)),
        ("plain", ("plain", None, None)),
        (
            {"choices": [{"finish_reason": "length", "message": {"role": "assistant", "content": "cut"}}]},
            ("cut", "length", None),
        ),
        ({"generations": [[{"text": "t", "generation_info": {"finish_reason": "stop"}}]]}, ("t", "stop", None)),
        ({"role": "assistant", "content": "m"}, ("m", None, None)),
        ({"output": "o"}, ("o", None, None)),
        ({"answer_id": 3}, ('{"answer_id":3}', None, None)),
        ('{"text": "from json", "finish_reason": "stop"}', ("from json", "stop", None)),
        (["a", "b"], ("a\nb", None, None)),
    ],
)
def test_output_shapes(value, expected):
    assert output_from(value, "output") == expected


def test_messages_from_errors_name_the_field():
    with pytest.raises(RecordError) as info:
        messages_from([], "inputs")
    assert info.value.code == "invalid_value" and "`inputs` is empty" in info.value.reason
    with pytest.raises(RecordError) as info:
        messages_from([{"role": "user", "content": "x"}, 5], "input")
    assert info.value.code == "wrong_type" and "`input[1]`" in info.value.reason
    with pytest.raises(RecordError):
        genai_messages([{"parts": []}], "gen_ai.input.messages")


@pytest.mark.parametrize(
    ("scores", "thumbs", "rating"),
    [
        ([{"name": "user-feedback", "value": 0}], "down", None),
        ([{"name": "user_score", "value": 1}], "up", None),
        ([{"name": "thumbs", "value": True}], "up", None),
        ([{"name": "feedback", "label": "negative"}], "down", None),
        ([{"name": "quality", "label": "thumbs_up"}], "up", None),
        ([{"name": "correctness", "value": 0}], None, None),  # a judge's 0 is no thumbs
        ([{"name": "sentiment", "label": "negative"}], None, None),
        ([{"name": "user-feedback", "value": 4}], None, 4.0),  # a 1-5 scale
        ([{"name": "rating", "value": "2"}], None, 2.0),
        ([{"name": "user_rating", "value": 1}], None, 1.0),
        ([{"name": "correctness", "value": 1}, {"name": "thumbs", "value": -1}], "down", None),
    ],
)
def test_feedback_columns(scores, thumbs, rating):
    feedback, got_thumbs, got_rating, corrected = feedback_columns(scores)
    assert (got_thumbs, got_rating) == (thumbs, rating)
    assert feedback is not None and corrected is None


def test_feedback_columns_without_scores_and_with_a_correction():
    assert feedback_columns([]) == (None, None, None, None)
    _, _, _, corrected = feedback_columns([{"name": "user_score", "value": 0, "correction": {"output": "Fixed."}}])
    assert corrected == "Fixed."


def test_text_that_starts_with_a_bracket_is_text():
    assert messages_from("[INST] Summarise this [/INST]", "input") == [
        {"role": "user", "content": "[INST] Summarise this [/INST]"}
    ]
    assert messages_from('[{"role": "user", "content": "json text"}]', "input") == [
        {"role": "user", "content": "json text"}
    ]
    assert messages_from("[1, 2]", "input") == [{"role": "user", "content": "[1, 2]"}]


def test_the_configuration_names_exactly_the_registered_formats():
    from typing import get_args

    from loop_assets.capture.formats import FORMATS
    from loop_assets.config import FormatName

    assert set(get_args(FormatName)) == set(FORMATS)
