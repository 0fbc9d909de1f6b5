from datetime import date

import polars as pl

from loop_assets.promote.suite_checks import incomplete_provenance, near_duplicate_pairs, repeated_text_hashes


def frame(rows):
    base = {"app": "a", "status": "active", "dedup_threshold": 0.8}
    return pl.DataFrame([{**base, **r} for r in rows], schema_overrides={"embedding": pl.List(pl.Float32)})


def test_pairs_above_the_later_cases_threshold_are_reported():
    suite = frame([
        {"case_id": "x", "day": date(2026, 1, 1), "embedding": [1.0, 0.0], "dedup_threshold": 0.95},
        {"case_id": "y", "day": date(2026, 1, 2), "embedding": [0.9, 0.43589], "dedup_threshold": 0.85},
        {"case_id": "z", "day": date(2026, 1, 2), "embedding": [0.0, 1.0], "dedup_threshold": 0.85},
    ])  # fmt: skip
    pairs = near_duplicate_pairs(suite)
    # x-y at 0.9: above y's (the later case's) 0.85 though below x's 0.95
    assert pairs.select("case_a", "case_b").rows() == [("x", "y")]
    assert near_duplicate_pairs(suite.with_columns(pl.lit(0.95).alias("dedup_threshold"))).height == 0


def test_other_apps_and_retired_cases_do_not_count():
    suite = frame([
        {"case_id": "x", "day": date(2026, 1, 1), "embedding": [1.0, 0.0]},
        {"case_id": "y", "day": date(2026, 1, 1), "embedding": [1.0, 0.0], "app": "b"},
        {"case_id": "z", "day": date(2026, 1, 1), "embedding": [1.0, 0.0], "status": "retired"},
    ])  # fmt: skip
    assert near_duplicate_pairs(suite).height == 0
    assert repeated_text_hashes(suite.with_columns(pl.lit("h").alias("text_hash"))).height == 0
    twice = suite.with_columns(pl.lit("h").alias("text_hash"), pl.lit("a").alias("app"))
    assert repeated_text_hashes(twice)["cases"].to_list() == [2]


def test_incomplete_provenance_names_the_missing_columns():
    from loop_assets.promote.suite_checks import PROVENANCE

    row = {c: "v" for c in PROVENANCE} | {"failure_signals": [{"scorer": "latency"}]}
    full = pl.DataFrame([row, row | {"case_id": "c2", "source_line": None, "failure_signals": []}])
    gaps = incomplete_provenance(full)
    assert gaps.rows() == [("c2", ["source_line", "failure_signals"])]
