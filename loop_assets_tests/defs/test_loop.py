"""The whole loop through real Dagster materialisations with the real embedding model."""

from __future__ import annotations

import gzip
import json

import dagster as dg
import polars as pl

from loop_assets_tests.loop_runner import DAYS, checks, metadata, new_loop

SUITE_CONTENT = "SELECT * EXCLUDE (last_run_id, promoted_run_id, promoted_at, promoted_partition) FROM eval_suite"


def test_every_day_builds_every_table_and_every_check_passes(in_order):
    loop, results = in_order
    for result in results:
        assert result.success
        assert checks(result) and all(checks(result).values()), checks(result)
    per_day = loop.table("SELECT day, count(*) n FROM raw_traces GROUP BY day ORDER BY day")
    assert per_day["day"].to_list()[: len(DAYS)] == DAYS
    for table in ("scored_traces", "failure_clusters", "graded_candidates", "eval_suite"):
        days = set(loop.table(f"SELECT DISTINCT day FROM {table}")["day"])
        assert days == set(DAYS), table
    assert loop.table("SELECT count(*) n FROM quarantined_records")["n"][0] > 0


def test_suite_has_one_case_per_family_not_a_flood(in_order):
    loop, _ = in_order
    suite = loop.table(
        "SELECT e.case_id, json_extract_string(r.metadata, '$.scenario') AS family FROM eval_suite e "
        "JOIN raw_traces r USING (trace_id, day)"
    )
    from loop_assets.devtools.sample_traffic import FAILURE_FAMILIES

    failing = loop.table(
        "SELECT DISTINCT json_extract_string(r.metadata, '$.scenario') AS family FROM scored_traces s "
        "JOIN raw_traces r USING (trace_id, day) WHERE s.is_failure"
    )
    seen = set(failing["family"]) & set(FAILURE_FAMILIES)
    promoted = suite.group_by("family").len()
    counts = dict(zip(promoted["family"], promoted["len"], strict=True))
    assert seen <= set(counts), f"families never promoted: {seen - set(counts)}"
    traces_per_family = loop.table(
        "SELECT json_extract_string(r.metadata, '$.scenario') AS family, count(*) n FROM scored_traces s "
        "JOIN raw_traces r USING (trace_id, day) WHERE s.is_failure GROUP BY ALL"
    )
    for family, n in zip(traces_per_family["family"], traces_per_family["n"], strict=True):
        if family in FAILURE_FAMILIES:
            assert counts[family] <= max(3, n // 4), (family, counts[family], n)


def test_rerunning_a_day_embeds_nothing_and_leaves_the_suite_unchanged(in_order):
    loop, _ = in_order
    before = loop.table(SUITE_CONTENT + " ORDER BY case_id")
    raw_days = loop.table("SELECT day, count(*) n FROM raw_traces GROUP BY day ORDER BY day")
    rerun = loop.run(DAYS[1])
    assert rerun.success
    [clusters] = metadata(rerun, "failure_clusters")
    assert clusters["embedded"] == 0 and clusters["cached"] == clusters["distinct_texts"] > 0
    assert clusters["run"]["model_loaded"] is False
    assert loop.table(SUITE_CONTENT + " ORDER BY case_id").equals(before)
    assert raw_days.equals(loop.table("SELECT day, count(*) n FROM raw_traces GROUP BY day ORDER BY day"))


def test_a_range_backfill_and_reverse_order_capture_give_the_same_suite(in_order, tmp_path, traffic):
    loop, _ = in_order
    expected = loop.table("SELECT case_id, day, trace_id, weight FROM eval_suite ORDER BY case_id")
    assert expected.height > 0

    backfill = new_loop(tmp_path / "backfill", traffic)
    # capture and dedup the days newest first, then grade and promote the range (days in order, one run)
    for day in reversed(DAYS):
        backfill.run(day, select={"raw_traces", "scored_traces", "failure_clusters"})
    backfill.run(days=(DAYS[0], DAYS[-1]), select={"graded_candidates", "eval_suite"})
    got = backfill.table("SELECT case_id, day, trace_id, weight FROM eval_suite ORDER BY case_id")
    # the days were embedded in other batches: vectors (and so weights) may move in the last bits, never more
    assert got.drop("weight").equals(expected.drop("weight"))
    assert (got["weight"] - expected["weight"]).abs().max() < 1e-4


def test_grading_a_day_before_the_days_it_depends_on_fails_and_says_which(tmp_path, traffic):
    loop = new_loop(tmp_path, traffic)
    for day in DAYS:
        loop.run(day, select={"raw_traces", "scored_traces", "failure_clusters"})
    result = loop.run(DAYS[2], select={"graded_candidates"}, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
    message = failure.step_failure_data.user_failure_data.description
    assert str(DAYS[0]) in message and str(DAYS[1]) in message and "backfill" in message
    assert loop.table("SELECT count(*) n FROM graded_candidates")["n"][0] == 0


def test_lineage_reaches_the_exact_source_line_of_every_case(in_order):
    from loop_assets.report.lineage import case_lineage, format_lineage
    from loop_assets.warehouse import connect

    loop, _ = in_order
    with connect(loop.warehouse, read_only=True) as con:
        ids = con.execute("SELECT case_id FROM eval_suite").fetchall()
        assert ids
        for (case_id,) in ids:
            chain = case_lineage(con, case_id, loop.incoming)
            source = chain["source"]
            path = loop.incoming / source["file"]
            opener = gzip.open if path.name.endswith(".gz") else open
            with opener(path, "rt", encoding="utf-8") as handle:
                line = handle.readlines()[source["line"] - 1]
            assert json.loads(line)["id"] == chain["raw"]["trace_id"] == chain["case"]["trace_id"]
            assert source["text"] == line.rstrip("\n")
            assert chain["candidate"]["decision"] == "promote"
            assert chain["scored"]["failure_signals"]
        text = format_lineage(case_lineage(con, ids[0][0], loop.incoming))
    assert f"{chain['source']['file']}:" in text or "source " in text


def test_every_case_carries_its_provenance(in_order):
    loop, _ = in_order
    suite = loop.table("SELECT * FROM eval_suite")
    assert suite.height > 0
    assert suite.filter(pl.col("source_line").is_null() | pl.col("promoted_run_id").is_null()).height == 0
    signal = suite["failure_signals"][0][0]
    assert set(signal) == {"scorer", "version", "value", "threshold"} and signal["threshold"]
    grading = json.loads(suite["grading"][0])
    assert grading["checks"] and grading["pass"] == "all"
