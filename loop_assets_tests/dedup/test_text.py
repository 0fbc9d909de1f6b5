import json

import polars as pl
import pytest

from loop_assets.dedup.text import normalised_text, text_hash, with_conversation
from loop_assets_tests.paths import REALDATA


def test_normalisation_collapses_case_space_and_unicode_forms():
    frame = pl.DataFrame({"t": ["  Refund   my\tORDER? ", "refund my order?", "ｒｅｆｕｎｄ my order?", None]})
    out = frame.select(normalised_text(pl.col("t"), 1000).alias("n")).with_columns(text_hash(pl.col("n")).alias("h"))
    assert out["n"].to_list() == ["refund my order?", "refund my order?", "refund my order?", ""]
    assert out["h"].n_unique() == 2
    assert len(out["h"][0]) == 64


def test_normalisation_cuts_to_max_chars():
    frame = pl.DataFrame({"t": ["x" * 50]})
    assert frame.select(normalised_text(pl.col("t"), 10))["t"][0] == "x" * 10


def chat(*turns: str) -> str:
    roles = ["user", "assistant"]
    return json.dumps([{"role": "system", "content": "be helpful"}] + [
        {"role": roles[i % 2], "content": t} for i, t in enumerate(turns)
    ])  # fmt: skip


def test_a_follow_up_carries_its_task_and_previous_turn_and_a_single_turn_is_unchanged():
    follow_up = "Can you do it with better time complexity, please?"
    sorting = chat("Sort this list of intervals by start time", "Here is a solution...", follow_up)
    paths = chat("Find the shortest path in this weighted graph", "Use Dijkstra...", follow_up)
    a, b = (with_conversation(follow_up, messages, 300) for messages in (sorting, paths))
    assert a.startswith(follow_up) and b.startswith(follow_up) and a != b
    assert "intervals" in a and "weighted graph" in b
    assert with_conversation(follow_up, chat(follow_up), 300) == follow_up
    assert with_conversation(follow_up, sorting, 0) == follow_up
    assert with_conversation("x", "not json", 300) == "x"
    long_task = chat("t" * 1000, "ok", "and then?")
    assert with_conversation("and then?", long_task, 300) == "and then?\ncontext: " + "t" * 300


def test_on_real_red_teaming_chats_the_same_follow_up_in_other_conversations_is_another_input():
    path = REALDATA / "hh_rlhf_harmless"
    if not path.is_dir():
        pytest.skip("../shared/realdata is not beside the project")
    by_last: dict[str, dict[tuple[str, str], str]] = {}
    for file in sorted(path.glob("*.jsonl")):
        for line in file.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            messages = record["request"]["messages"]
            users = [" ".join(m["content"].split()) for m in messages if m["role"] == "user"]
            if len(users) > 1:  # conversations told apart by their task and previous user turn
                by_last.setdefault(users[-1].lower(), {})[(users[0], users[-2])] = json.dumps(messages)
    repeated = {last: convs for last, convs in by_last.items() if len(convs) > 1}
    assert len(repeated) >= 5  # "yes", "go on." ... after different conversations
    for last, conversations in repeated.items():
        compared = {with_conversation(last, c, 300) for c in conversations.values()}
        assert len(compared) == len(conversations), last
