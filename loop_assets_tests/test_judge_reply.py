"""One contract for a judge's reply: both judges read the same replies the same way."""

import pytest

from loop_assets.capture.judge import parse_judge_reply as trace_judge_reply
from loop_assets.evaluate.answer_checks import parse_judge_reply as answer_judge_reply
from loop_assets.judge_reply import JudgeReply, UnreadableReply, read_judge_reply

REPLIES = [
    '{"score": 4, "reason": "fine"}',
    'Sure, here it is:\n```json\n{"score": 2, "reason": "meh"}\n```',
    'Here you go: {"score": 4, "reason": "x"}',
    '{"score": "4"}',
    '{"score": true}',
    '{"score": 6}',
    '{"score": NaN}',
    '{"rating": 4}',
    "[4]",
    "",
    None,
]


@pytest.mark.parametrize("reply", REPLIES)
def test_both_judges_accept_and_refuse_the_same_replies(reply):
    trace_score, trace_reason = trace_judge_reply(reply)
    answer_score, answer_reason = answer_judge_reply(reply)
    assert (trace_score is None) == (answer_score is None)
    if trace_score is not None:
        assert answer_score == pytest.approx((trace_score - 1) / 4) and trace_reason == answer_reason
    else:
        assert trace_reason.startswith("unparseable judge reply: ") and answer_reason.startswith(trace_reason[:30])


def test_the_reply_is_a_typed_contract():
    assert read_judge_reply('{"score": 3, "reason": "  ok \\n fine "}') == JudgeReply(score=3.0, reason="ok fine")
    with pytest.raises(UnreadableReply, match="2 fenced blocks"):
        read_judge_reply('```json\n{"score": 1}\n```\n```json\n{"score": 5}\n```')
