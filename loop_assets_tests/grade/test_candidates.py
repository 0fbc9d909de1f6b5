import math
from datetime import date

import numpy as np
import polars as pl
import pytest

from loop_assets.config import LoopConfig
from loop_assets.grade.candidates import (
    NO_ENDPOINT,
    NOT_MEASURED,
    case_id,
    dedup_threshold,
    frequency_score,
    grade_candidates,
    weight,
    with_difficulty,
)

DAY = date(2026, 11, 20)


def unit(*xs: float) -> list[float]:
    v = np.asarray(xs, dtype=np.float32)
    return (v / np.linalg.norm(v)).tolist()


def reps(rows: list[dict]) -> pl.DataFrame:
    base = {
        "day": DAY,
        "app": "support_bot",
        "cluster_id": -1,
        "cluster_size": 1,
        "copies": 1,
        "is_representative": True,
        "severity": 0.6,
        "input_text": "some question",
        "signals": ["feedback"],
    }
    return pl.DataFrame([{**base, **r} for r in rows], schema_overrides={"embedding": pl.List(pl.Float32)})


def suite(rows: list[dict]) -> pl.DataFrame:
    schema = {"case_id": pl.String, "app": pl.String, "text_hash": pl.String, "embedding": pl.List(pl.Float32)}
    return pl.DataFrame(rows, schema=schema)


def test_threshold_schedule_interpolates_between_points_and_is_flat_outside():
    schedule = [(0, 0.80), (50, 0.85), (500, 0.90)]
    assert dedup_threshold(0, schedule) == 0.80
    assert dedup_threshold(25, schedule) == pytest.approx(0.825)
    assert dedup_threshold(50, schedule) == 0.85
    assert dedup_threshold(275, schedule) == pytest.approx(0.875)
    assert dedup_threshold(10_000, schedule) == 0.90


def test_weight_is_the_mean_of_known_factors_and_leaves_unknown_difficulty_out(config):
    g = config.grading  # novelty .4, severity .3, frequency .2, difficulty .1
    assert weight(1.0, 0.5, 0.25, None, g) == pytest.approx((0.4 * 1 + 0.3 * 0.5 + 0.2 * 0.25) / 0.9)
    assert weight(1.0, 0.5, 0.25, 0.8, g) == pytest.approx(0.4 + 0.15 + 0.05 + 0.08)
    assert frequency_score(1, 50) == pytest.approx(math.log(2) / math.log(51))
    assert frequency_score(500, 50) == 1.0


def test_first_day_promotes_everything_distinct():
    graded = grade_candidates(
        reps(
            [
                {"trace_id": "t1", "text_hash": "h1", "embedding": unit(1, 0, 0)},
                {"trace_id": "t2", "text_hash": "h2", "embedding": unit(0, 1, 0)},
            ]
        ),
        suite([]),
        LoopConfig(),
        run_id="r1",
    )
    assert graded["decision"].to_list() == ["promote", "promote"]
    assert graded["nearest_similarity"].to_list() == [None, 0.0]
    assert graded["novelty"].to_list() == [1.0, 1.0]
    assert graded["dedup_threshold"].to_list() == [0.70, 0.70]
    assert graded["difficulty"].to_list() == [None, None]
    assert set(graded["difficulty_source"]) == {NO_ENDPOINT}


def test_candidate_near_an_earlier_case_is_a_duplicate_of_it():
    existing = suite([{"case_id": "case_old", "app": "support_bot", "text_hash": "h0", "embedding": unit(1, 0.1, 0)}])
    graded = grade_candidates(
        reps(
            [
                {"trace_id": "t1", "text_hash": "h1", "embedding": unit(1, 0.12, 0)},
                {"trace_id": "t2", "text_hash": "h2", "embedding": unit(0, 0, 1)},
            ]
        ),
        existing,
        LoopConfig(),
        run_id="r1",
    )
    by_trace = {r["trace_id"]: r for r in graded.iter_rows(named=True)}
    assert by_trace["t1"]["decision"] == "duplicate_of:case_old"
    assert by_trace["t1"]["nearest_similarity"] > 0.99
    assert by_trace["t2"]["decision"] == "promote"
    assert by_trace["t2"]["suite_size_before"] == 1


def test_other_apps_cases_are_never_duplicates():
    existing = suite([{"case_id": "case_sql", "app": "sql_assistant", "text_hash": "h0", "embedding": unit(1, 0, 0)}])
    graded = grade_candidates(
        reps([{"trace_id": "t1", "text_hash": "h0", "embedding": unit(1, 0, 0)}]), existing, LoopConfig(), "r"
    )
    assert graded["decision"].to_list() == ["promote"] and graded["nearest_case_id"].to_list() == [None]


def test_within_day_two_close_representatives_promote_once_the_larger_cluster_first():
    graded = grade_candidates(
        reps(
            [
                {"trace_id": "small", "text_hash": "h1", "embedding": unit(1, 0.05, 0), "cluster_size": 2},
                {"trace_id": "large", "text_hash": "h2", "embedding": unit(1, 0, 0), "cluster_size": 9},
            ]
        ),
        suite([]),
        LoopConfig(),
        run_id="r1",
    )
    by_trace = {r["trace_id"]: r for r in graded.iter_rows(named=True)}
    assert by_trace["large"]["decision"] == "promote"
    assert by_trace["small"]["decision"] == f"duplicate_of:{case_id('support_bot', 'h2')}"


def test_threshold_follows_suite_size():
    config = LoopConfig.model_validate({"dedup": {"threshold_schedule": [[0, 0.5], [2, 0.95]]}})
    existing = suite(
        [
            {"case_id": f"c{i}", "app": "support_bot", "text_hash": f"x{i}", "embedding": unit(0, 0, 1, i)}
            for i in (1, 2)
        ]
    )
    # similarity 0.9 to c1 is a duplicate under 0.5 (empty suite) but novel under 0.95 (two cases)
    vec = unit(0.9, 0, math.sqrt(1 - 0.81) / math.sqrt(2), math.sqrt(1 - 0.81) / math.sqrt(2))
    small = grade_candidates(reps([{"trace_id": "t", "text_hash": "h", "embedding": vec}]), existing[:0], config, "r")
    grown = grade_candidates(reps([{"trace_id": "t", "text_hash": "h", "embedding": vec}]), existing, config, "r")
    assert small["dedup_threshold"][0] == 0.5 and grown["dedup_threshold"][0] == 0.95
    assert grown["decision"][0] == "promote"


def test_exact_text_already_in_suite_is_a_duplicate_whatever_the_threshold():
    config = LoopConfig.model_validate({"dedup": {"threshold_schedule": [[0, 1.0]]}})
    existing = suite([{"case_id": "case_same", "app": "support_bot", "text_hash": "h1", "embedding": unit(1, 0)}])
    graded = grade_candidates(
        reps([{"trace_id": "t", "text_hash": "h1", "embedding": unit(1, 0)}]), existing, config, "r"
    )
    assert graded["decision"][0] == "duplicate_of:case_same"


def test_skips_empty_inputs_and_configured_signal_only_failures():
    config = LoopConfig.model_validate({"grading": {"skip_when_only": ["provider_error"]}})
    graded = grade_candidates(
        reps(
            [
                {"trace_id": "empty", "text_hash": "h1", "embedding": unit(1, 0, 0), "input_text": "  "},
                {"trace_id": "outage", "text_hash": "h2", "embedding": unit(0, 1, 0), "signals": ["provider_error"]},
                {
                    "trace_id": "both",
                    "text_hash": "h3",
                    "embedding": unit(0, 0, 1),
                    "signals": ["provider_error", "latency"],
                    "copies": 3,
                },
            ]
        ),
        suite([]),
        config,
        "r",
    )
    decisions = dict(zip(graded["trace_id"], graded["decision"], strict=True))
    assert decisions == {"empty": "skip:empty_input", "outage": "skip:only_provider_error", "both": "promote"}


def test_case_ids_are_stable_and_depend_on_app_and_text():
    assert case_id("a", "h") == case_id("a", "h")
    assert case_id("a", "h") != case_id("b", "h")
    assert case_id("a", "h").startswith("case_")


def test_isolated_latency_or_provider_errors_are_skipped_but_recurring_ones_promote():
    graded = grade_candidates(
        reps(
            [
                {"trace_id": "once", "text_hash": "h1", "embedding": unit(1, 0, 0), "signals": ["latency"]},
                {
                    "trace_id": "often",
                    "text_hash": "h2",
                    "embedding": unit(0, 1, 0),
                    "signals": ["latency"],
                    "copies": 4,
                },
                {
                    "trace_id": "mixed",
                    "text_hash": "h3",
                    "embedding": unit(0, 0, 1),
                    "signals": ["latency", "feedback"],
                },
            ]
        ),
        suite([]),
        LoopConfig(),
        "r",
    )
    decisions = dict(zip(graded["trace_id"], graded["decision"], strict=True))
    assert decisions == {"once": "skip:isolated_latency", "often": "promote", "mixed": "promote"}


def test_a_one_off_that_comes_again_on_a_later_day_is_promoted():
    before = pl.DataFrame(
        {"candidate_id": ["cand_old"], "app": ["support_bot"], "embedding": [unit(1, 0.05, 0)]},
        schema_overrides={"embedding": pl.List(pl.Float32)},
    )
    again = reps([{"trace_id": "t", "text_hash": "h", "embedding": unit(1, 0, 0), "signals": ["latency"]}])
    assert grade_candidates(again, suite([]), LoopConfig(), "r")["decision"][0] == "skip:isolated_latency"
    graded = grade_candidates(again, suite([]), LoopConfig(), "r", isolated=before)
    assert graded["decision"][0] == "promote" and "cand_old" in graded["reason"][0]


def test_two_similar_one_offs_of_one_day_promote_the_second_which_then_covers_the_first():
    graded = grade_candidates(
        reps(
            [
                {"trace_id": "a", "text_hash": "h1", "embedding": unit(1, 0, 0), "signals": ["latency"]},
                {"trace_id": "b", "text_hash": "h2", "embedding": unit(1, 0.1, 0), "signals": ["latency"]},
            ]
        ),
        suite([]),
        LoopConfig(),
        "r",
    )
    decisions = dict(zip(graded["trace_id"], graded["decision"], strict=True))
    assert decisions == {"a": f"duplicate_of:{case_id('support_bot', 'h2')}", "b": "promote"}
    assert graded.filter(pl.col("trace_id") == "a")["covered_similarity"][0] >= 0.7


def test_every_distinct_input_is_covered_not_only_its_family_s_representative():
    # one HDBSCAN family, but the third member is far from the other two: it is its own case
    family = [
        {"trace_id": "a", "text_hash": "h1", "embedding": unit(1, 0, 0), "cluster_id": 0, "cluster_size": 3},
        {"trace_id": "b", "text_hash": "h2", "embedding": unit(1, 0.2, 0), "cluster_id": 0, "cluster_size": 3,
         "is_representative": False},
        {"trace_id": "c", "text_hash": "h3", "embedding": unit(0.3, 1, 0), "cluster_id": 0, "cluster_size": 3,
         "is_representative": False},
    ]  # fmt: skip
    graded = grade_candidates(reps(family), suite([]), LoopConfig(), "r")
    by_trace = {r["trace_id"]: r for r in graded.iter_rows(named=True)}
    assert by_trace["a"]["decision"] == "promote" and by_trace["c"]["decision"] == "promote"
    assert by_trace["b"]["decision"] == f"duplicate_of:{case_id('support_bot', 'h1')}"
    assert by_trace["b"]["covered_by"] == case_id("support_bot", "h1")
    assert by_trace["b"]["covered_similarity"] >= by_trace["b"]["dedup_threshold"]
    assert by_trace["a"]["covered_by"] == by_trace["a"]["case_id"] and by_trace["a"]["covered_similarity"] == 1.0
    # a case stands for its own traces and those it covers
    assert by_trace["a"]["frequency"] == 2 and by_trace["c"]["frequency"] == 1


def test_the_threshold_runs_on_the_apps_own_suite_size():
    others = suite(
        [
            {"case_id": f"c{i}", "app": "sql_assistant", "text_hash": f"x{i}", "embedding": unit(0, 1, i)}
            for i in range(300)
        ]
    )
    graded = grade_candidates(
        reps([{"trace_id": "t", "text_hash": "h", "embedding": unit(1, 0, 0)}]), others, LoopConfig(), "r"
    )
    assert graded["dedup_threshold"][0] == 0.70 and graded["suite_size_before"][0] == 0


def test_earlier_decisions_are_kept_and_only_new_inputs_are_graded_against_the_suite_as_it_is():
    first = grade_candidates(
        reps([{"trace_id": "t1", "text_hash": "h1", "embedding": unit(1, 0, 0)}]), suite([]), LoopConfig(), "run1"
    )
    as_it_is = suite(
        [
            {"case_id": first["case_id"][0], "app": "support_bot", "text_hash": "h1", "embedding": unit(1, 0, 0)},
            {"case_id": "case_later", "app": "support_bot", "text_hash": "hl", "embedding": unit(0, 1, 0.05)},
        ]
    )
    late = reps(
        [
            {"trace_id": "t1", "text_hash": "h1", "embedding": unit(1, 0, 0)},
            {"trace_id": "t0", "text_hash": "h2", "embedding": unit(0, 1, 0)},  # like a case of a later day
            {"trace_id": "t3", "text_hash": "h3", "embedding": unit(0, 0, 1)},
        ]
    )
    again = grade_candidates(late, as_it_is, LoopConfig(), "run2", decided=first, in_suite_from=date(2026, 11, 25))
    by_trace = {r["trace_id"]: r for r in again.iter_rows(named=True)}
    assert again.filter(pl.col("trace_id") == "t1").equals(first)  # kept exactly, not re-decided
    assert by_trace["t0"]["decision"] == "duplicate_of:case_later"
    assert by_trace["t3"]["decision"] == "promote" and by_trace["t3"]["in_suite_from"] == date(2026, 11, 25)
    assert by_trace["t3"]["graded_run_id"] == "run2" and by_trace["t3"]["suite_size_before"] == 2
    # a promoted decision is kept even when its input no longer fails that day
    gone = grade_candidates(late.filter(pl.col("trace_id") != "t1"), as_it_is, LoopConfig(), "run3", decided=again)
    assert set(gone.filter(pl.col("decision") == "promote")["trace_id"]) == {"t1", "t3"}


def test_difficulty_changes_only_the_rows_this_run_graded():
    first = grade_candidates(
        reps([{"trace_id": "t1", "text_hash": "h1", "embedding": unit(1, 0, 0)}]), suite([]), LoopConfig(), "run1"
    )
    both = grade_candidates(
        reps(
            [
                {"trace_id": "t1", "text_hash": "h1", "embedding": unit(1, 0, 0)},
                {"trace_id": "t2", "text_hash": "h2", "embedding": unit(0, 1, 0)},
            ]
        ),
        suite([]),
        LoopConfig(),
        "run2",
        decided=first,
    )
    ids = dict(zip(both["trace_id"], both["candidate_id"], strict=True))
    measured = pl.DataFrame(
        {
            "candidate_id": [ids["t1"], ids["t2"]],
            "difficulty": [1.0, 1.0],
            "difficulty_tries": [3, 3],
            "difficulty_source": ["measured", "measured"],
        }
    )
    weighed = with_difficulty(both, measured, LoopConfig(), "run2")
    by_trace = {r["trace_id"]: r for r in weighed.iter_rows(named=True)}
    assert by_trace["t1"]["difficulty"] is None and by_trace["t1"]["weight"] == first["weight"][0]
    assert by_trace["t2"]["difficulty"] == 1.0 and by_trace["t2"]["weight"] > first["weight"][0]
    unlisted = with_difficulty(both, measured.filter(pl.col("candidate_id") == ids["t1"]), LoopConfig(), "run2")
    assert unlisted.filter(pl.col("trace_id") == "t2")["difficulty_source"][0] == NOT_MEASURED
