"""Coverage is the contract: every distinct failure ends as a case, a duplicate of one, or a skip, on real runs.

Real Dagster runs with the real embedding model, on real labelled chats from ../shared/realdata (DICES
safety chats and the first day of HH-RLHF red-teaming) and on generated traffic with a late file.
"""

from __future__ import annotations

import json
import shutil
from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from loop_assets.exports import suite_as_of
from loop_assets.report.suite_quality import suite_quality
from loop_assets.warehouse import connect
from loop_assets_tests.loop_runner import DAYS, Loop, checks, metadata, new_loop
from loop_assets_tests.paths import REALDATA

REAL_DAYS = (date(2026, 11, 25), date(2026, 11, 29))


def vectors(column: pl.Series) -> np.ndarray:
    return np.asarray(column.to_list(), dtype=np.float32)


@pytest.fixture(scope="module")
def real_loop(tmp_path_factory) -> tuple[Loop, object]:
    if not REALDATA.is_dir():
        pytest.skip("../shared/realdata is not beside the project")
    loop = Loop(tmp_path_factory.mktemp("realdata"))
    for path in sorted((REALDATA / "dices_safety").glob("*.jsonl")):
        shutil.copy(path, loop.incoming / path.name)
    shutil.copy(REALDATA / "hh_rlhf_harmless" / "hh_rlhf_harmless-2026-11-25.jsonl", loop.incoming)
    return loop, loop.run(days=REAL_DAYS)


def test_on_real_chats_every_distinct_failing_input_has_a_case_within_the_threshold_or_a_skip(real_loop):
    loop, result = real_loop
    assert result.success and all(checks(result).values()), checks(result)
    failures = loop.table(
        "SELECT c.day, c.app, c.text_hash, c.embedding, g.dedup_threshold, g.decision FROM failure_clusters c "
        "JOIN graded_candidates g USING (day, app, text_hash)"
    )
    all_failures = loop.table("SELECT count(*) AS n FROM scored_traces WHERE is_failure")["n"][0]
    assert failures.height == all_failures > 150  # every failing trace has its input's graded row
    suite = loop.table("SELECT app, text_hash, embedding FROM eval_suite WHERE status = 'active'")
    for app in failures["app"].unique():
        mine = failures.filter(pl.col("app") == app)
        cases = suite.filter(pl.col("app") == app)
        best = (vectors(mine["embedding"]) @ vectors(cases["embedding"]).T).max(axis=1)
        skipped = mine["decision"].str.starts_with("skip:").to_numpy()
        uncovered = (best < mine["dedup_threshold"].to_numpy() - 1e-5) & ~skipped
        assert not uncovered.any(), f"{app}: {int(uncovered.sum())} failing inputs without a case"
        assert cases["text_hash"].n_unique() == cases.height  # no exact duplicate cases
    with connect(loop.warehouse, read_only=True) as con:
        quality = suite_quality(con)
    assert quality["uncovered"].sum() == 0 and set(quality["app"]) == {"dices_safety", "hh_rlhf_harmless"}
    for suite_meta in metadata(result, "eval_suite"):
        assert suite_meta["coverage"] == 1.0 and suite_meta["uncovered_inputs"] == 0


def test_on_real_chats_every_family_member_is_within_the_threshold_of_a_representative(real_loop):
    loop, _ = real_loop
    clusters = loop.table("SELECT day, cluster_id, embedding, is_representative FROM failure_clusters")
    families = clusters.filter(pl.col("cluster_id") >= 0).partition_by("day", "cluster_id")
    assert families
    for family in families:
        members = vectors(family["embedding"])
        reps = vectors(family.filter(pl.col("is_representative"))["embedding"])
        assert ((members @ reps.T).max(axis=1) >= 0.85 - 1e-5).all()


def test_each_app_s_threshold_follows_its_own_suite(real_loop):
    loop, _ = real_loop
    thresholds = loop.table(
        "SELECT app, day, max(dedup_threshold) AS t, max(suite_size_before) AS n FROM graded_candidates "
        "GROUP BY ALL ORDER BY app, day"
    )
    first = thresholds.group_by("app").agg(pl.all().first())
    # each app's first day is judged at the empty-suite threshold whatever the other app holds
    assert set(first["t"]) == {0.70} and set(first["n"]) == {0}
    dices = thresholds.filter(pl.col("app") == "dices_safety")
    assert dices["t"].to_list() == sorted(dices["t"].to_list()) and dices["t"][-1] > 0.70


LATE_QUESTIONS = [
    "My espresso machine firmware update bricked the grinder, how do I roll it back?",
    "Why was I charged twice in two currencies for one hotel booking in Lisbon?",
    "Can you translate my warranty claim into Japanese and file it for me?",
]


def late_file(day: date, copy_of: str) -> str:
    """Failing traces of `day` logged late: new questions, and one input the suite already has."""
    lines = []
    for i, question in enumerate([*LATE_QUESTIONS, copy_of]):
        lines.append(
            json.dumps(
                {
                    "id": f"late-{i}",
                    "timestamp": f"{day}T23:0{i}:00Z",
                    "app": "support_bot",
                    "request": {"model": "m", "messages": [{"role": "user", "content": question}]},
                    "response": {
                        "choices": [{"message": {"role": "assistant", "content": "No idea."}, "finish_reason": "stop"}]
                    },
                    "latency_ms": 900,
                    "feedback": {"thumbs": "down"},
                }
            )
        )
    return "\n".join(lines) + "\n"


SUITE = "SELECT * FROM eval_suite ORDER BY case_id"
GRADED = "SELECT * EXCLUDE (embedding) FROM graded_candidates ORDER BY candidate_id"


def test_a_late_file_adds_cases_and_never_removes_one_and_past_versions_stay_as_they_were(tmp_path, traffic):
    loop = new_loop(tmp_path, traffic)
    assert loop.run(days=(DAYS[0], DAYS[-1])).success
    suite_before, graded_before = loop.table(SUITE), loop.table(GRADED)
    with connect(loop.warehouse, read_only=True) as con:
        versions = {day: suite_as_of(con, day)["case_id"].to_list() for day in DAYS}
    assert suite_before.height > 0
    copy_of = loop.table(f"SELECT input_text FROM eval_suite WHERE app = 'support_bot' AND day = '{DAYS[0]}' LIMIT 1")
    (loop.incoming / "late.jsonl").write_text(late_file(DAYS[0], copy_of["input_text"][0]))

    late = loop.run(days=(DAYS[0], DAYS[-1]))  # a backfill over the old day and every later one (the harder case)
    assert late.success and all(checks(late).values()), checks(late)
    suite_after = loop.table(SUITE)
    kept = suite_after.join(suite_before.select("case_id"), on="case_id", how="semi")
    assert kept.equals(suite_before)  # not one case deleted or rewritten
    added = suite_after.join(suite_before.select("case_id"), on="case_id", how="anti")
    late_cases = added.filter(pl.col("trace_id").str.starts_with("late-"))
    assert late_cases.height == len(LATE_QUESTIONS) == added.height
    assert set(late_cases["day"]) == {DAYS[0]} and set(late_cases["in_suite_from"]) == {DAYS[-1] + timedelta(days=1)}
    graded_after = loop.table(GRADED)
    assert graded_after.join(graded_before.select("candidate_id"), on="candidate_id", how="semi").equals(graded_before)
    # the late copy of a case's input is that input again: covered by the case it already has
    copy = loop.table(
        "SELECT g.decision, g.covered_similarity FROM failure_clusters c JOIN graded_candidates g "
        f"USING (day, app, text_hash) WHERE c.trace_id = 'late-{len(LATE_QUESTIONS)}'"
    )
    assert copy.rows() == [("promote", 1.0)]
    with connect(loop.warehouse, read_only=True) as con:
        assert {day: suite_as_of(con, day)["case_id"].to_list() for day in DAYS} == versions
        assert set(late_cases["case_id"]) <= set(suite_as_of(con, None)["case_id"])

    again = loop.run(days=(DAYS[0], DAYS[-1]))  # the same inputs once more: identical tables
    assert again.success
    assert loop.table(SUITE).equals(suite_after) and loop.table(GRADED).equals(graded_after)


def test_the_coverage_check_and_report_name_a_failure_left_without_a_case(real_loop, tmp_path):
    from loop_assets.grade.checks import uncovered_failures

    loop, _ = real_loop
    broken = tmp_path / "broken.duckdb"
    shutil.copy(loop.warehouse, broken)
    with connect(broken) as con:
        dup = con.execute(
            "SELECT day, trace_id FROM graded_candidates WHERE starts_with(decision, 'duplicate_of:') LIMIT 1"
        ).fetchone()
        gone = con.execute(
            "SELECT day, trace_id FROM graded_candidates WHERE decision = 'promote' ORDER BY trace_id LIMIT 1"
        ).fetchone()
        con.execute("UPDATE graded_candidates SET covered_similarity = 0.5 WHERE trace_id = ?", [dup[1]])
        con.execute("DELETE FROM graded_candidates WHERE trace_id = ?", [gone[1]])
        problems = uncovered_failures(con, [dup[0], gone[0]])
        quality = suite_quality(con)
    assert set(problems["trace_id"]) >= {dup[1], gone[1]}
    assert any(p.startswith("covered at 0.5") for p in problems["problem"])
    assert "no graded row for its input" in set(problems["problem"])
    assert quality["uncovered"].sum() >= 2
