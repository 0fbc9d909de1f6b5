import json
from datetime import UTC, date, datetime

import polars as pl

from loop_assets.config import LoopConfig, load_config
from loop_assets.promote.promotion import SOURCE, grading_rule, promote
from loop_assets.tables import empty

DAY = date(2026, 11, 20)
SIGNAL = {"scorer": "feedback", "version": "1", "value": "thumbs=down", "threshold": "rating <= 2 or thumbs down"}


def graded(decisions: list[str]) -> pl.DataFrame:
    rows = [
        {"candidate_id": f"cand_{i}", "trace_id": f"t{i}", "day": DAY, "app": "support_bot", "cluster_id": i,
         "case_id": f"case_{i}", "text_hash": f"h{i}", "embedding": [1.0, 0.0], "nearest_case_id": None,
         "nearest_similarity": None, "dedup_threshold": 0.8, "suite_size_before": 0, "novelty": 1.0,
         "severity": 0.6, "frequency": 4, "frequency_score": 0.4, "difficulty": None, "difficulty_source": "x",
         "weight": 0.7, "decision": d, "reason": "r", "graded_run_id": "g"}
        for i, d in enumerate(decisions)
    ]  # fmt: skip
    return pl.concat([empty("graded_candidates"), pl.DataFrame(rows, schema=empty("graded_candidates").schema)])


def raw(n: int, corrected: str | None = None) -> pl.DataFrame:
    base = {c: None for c in empty("raw_traces").columns}
    rows = [
        base | {"trace_id": f"t{i}", "day": DAY, "ts": datetime(2026, 11, 20, 9, i, tzinfo=UTC), "app": "support_bot",
                "input_messages": json.dumps([{"role": "user", "content": f"question {i}"}]),
                "input_text": f"question {i}", "source_file": "a.jsonl", "source_line": 10 + i,
                "source_format": "openai_chat", "corrected_output": corrected}
        for i in range(n)
    ]  # fmt: skip
    return pl.DataFrame(rows, schema=empty("raw_traces").schema)


def scored(n: int) -> pl.DataFrame:
    return pl.DataFrame(
        {"trace_id": [f"t{i}" for i in range(n)], "day": [DAY] * n, "failure_signals": [[SIGNAL]] * n},
        schema_overrides={"failure_signals": empty("scored_traces").schema["failure_signals"]},
    )


def test_only_promoted_candidates_become_cases_with_provenance():
    cases = promote(
        graded(["promote", "duplicate_of:case_0", "skip:empty_input"]), raw(3), scored(3), empty("eval_suite"),
        LoopConfig(), run_id="run-1", partition_key="2026-11-20", embedding_model="m",
    )  # fmt: skip
    assert cases["case_id"].to_list() == ["case_0"]
    row = cases.row(0, named=True)
    assert (row["source_file"], row["source_line"], row["raw_partition"]) == ("a.jsonl", 10, DAY)
    assert row["source"] == SOURCE and row["status"] == "active" and row["promoted_run_id"] == "run-1"
    assert row["failure_signals"] == [SIGNAL] and row["expected_output"] is None
    assert "support_bot" in row["label"] and "feedback" in row["label"]


def test_a_case_once_written_is_kept_exactly_and_only_new_promotions_are_added():
    first = promote(graded(["promote"]), raw(1), scored(1), empty("eval_suite"), LoopConfig(), "run-1", "d", "m")
    again = promote(graded(["promote"]), raw(1), scored(1), first, LoopConfig(), "run-2", "d", "m")
    assert again.equals(first)  # not rewritten: same run ids, times, weight, grading
    grown = promote(graded(["promote", "promote"]), raw(2), scored(2), first, LoopConfig(), "run-3", "d", "m")
    assert grown.head(1).equals(first) and grown["case_id"].to_list() == ["case_0", "case_1"]
    assert grown["promoted_run_id"].to_list() == ["run-1", "run-3"]
    # a decision that no longer promotes (it cannot happen: decisions are final) still removes nothing
    assert promote(graded(["skip:empty_input"]), raw(1), scored(1), first, LoopConfig(), "run-4", "d", "m").equals(
        first
    )


def test_grading_rule_follows_the_failure_and_the_app():
    config = load_config()
    schema_rule = json.loads(grading_rule("sql_assistant", [SIGNAL | {"scorer": "json_schema"}], None, config))
    types = [c["type"] for c in schema_rule["checks"]]
    assert "json_schema" in types and "rubric" not in types
    slow = SIGNAL | {"scorer": "latency", "value": "9000.0", "threshold": "8000.0"}
    slow_rule = json.loads(grading_rule("support_bot", [slow], None, config))
    assert {"type": "latency", "max_ms": 8000.0} in slow_rule["checks"]
    feedback = json.loads(grading_rule("support_bot", [SIGNAL], "Refunds after 30 days are not possible.", config))
    rubric = next(c for c in feedback["checks"] if c["type"] == "rubric")
    assert rubric["reference"] == "Refunds after 30 days are not possible." and "refund" in rubric["rubric"]
    cut = json.loads(grading_rule("summariser", [SIGNAL | {"scorer": "truncated_output"}], None, config))
    assert {"type": "finish_reason", "not": "length"} in cut["checks"]


def test_corrected_answer_from_feedback_becomes_the_expected_output():
    cases = promote(graded(["promote"]), raw(1, corrected="The right answer"), scored(1), empty("eval_suite"),
                    LoopConfig(), "run-1", "d", "m")  # fmt: skip
    assert cases["expected_output"][0] == "The right answer"
