"""DEDUP's core: exact duplicates collapse before anything is embedded, families cover every member."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from loop_assets.config import LoopConfig
from loop_assets.dedup.failure_clusters import cluster_failures, collapse_exact_duplicates

DAY = date(2026, 11, 16)


def texts(rows: list[tuple[str, str, str, date]]) -> pl.DataFrame:
    """(trace_id, app, text_hash, day) in logging order."""
    start = datetime(2026, 11, 16, tzinfo=UTC)
    return pl.DataFrame(
        [
            {"trace_id": t, "app": a, "text_hash": h, "day": d, "ts": start + timedelta(minutes=i),
             "text": f"text {h}", "severity": 0.6}
            for i, (t, a, h, d) in enumerate(rows)
        ]
    )  # fmt: skip


def test_exact_duplicates_collapse_onto_the_first_trace_of_the_same_day_and_app():
    frame = texts(
        [
            ("t1", "bot", "h", DAY),
            ("t2", "bot", "h", DAY),
            ("t3", "sql", "h", DAY),  # same text, another app: its own input
            ("t4", "bot", "h", DAY + timedelta(days=1)),  # another day: graded against the suite on its day
            ("t5", "bot", "h", DAY),
        ]
    )
    links = dict(zip(*collapse_exact_duplicates(frame).select("trace_id", "exact_dup_of"), strict=True))
    assert links == {"t1": None, "t2": "t1", "t3": None, "t4": None, "t5": "t1"}
    # the first is first by time, not by row order
    shuffled = collapse_exact_duplicates(frame.reverse())
    assert dict(zip(*shuffled.select("trace_id", "exact_dup_of"), strict=True)) == links


def family(rng: np.random.Generator, center: np.ndarray, n: int, spread: float) -> list[np.ndarray]:
    vectors = center + rng.normal(scale=spread, size=(n, center.size))
    return list(vectors / np.linalg.norm(vectors, axis=1, keepdims=True))


def test_every_failure_is_clustered_copies_follow_their_first_trace_and_representatives_cover_families():
    rng = np.random.default_rng(3)
    centers = rng.normal(size=(3, 64))
    vectors = family(rng, centers[0], 12, 0.05) + family(rng, centers[1], 12, 0.4) + family(rng, centers[2], 1, 0)
    rows = [(f"t{i:02d}", "bot", f"h{i:02d}", DAY) for i in range(len(vectors))]
    rows += [("t90", "bot", "h00", DAY), ("t91", "bot", "h00", DAY)]  # two copies of t00's input
    frame = texts(rows)
    embeddings = pl.DataFrame(
        {"text_hash": [f"h{i:02d}" for i in range(len(vectors))], "embedding": [v.tolist() for v in vectors],
         "embedding_source": ["cache"] * len(vectors)},
        schema_overrides={"embedding": pl.List(pl.Float32)},
    )  # fmt: skip
    clusters = cluster_failures(frame, embeddings, LoopConfig(), "m", "run")
    assert clusters.height == frame.height and set(clusters["trace_id"]) == set(frame["trace_id"])
    by_trace = {r["trace_id"]: r for r in clusters.iter_rows(named=True)}
    for copy in ("t90", "t91"):
        assert by_trace[copy]["exact_dup_of"] == "t00" and by_trace[copy]["embedding_source"] == "exact_dup"
        assert by_trace[copy]["cluster_id"] == by_trace["t00"]["cluster_id"] and not by_trace[copy]["is_representative"]
    tight = by_trace["t00"]["cluster_id"]
    assert tight >= 0 and by_trace["t00"]["cluster_size"] == 14  # 12 members and t00's two copies
    for (_, cid), members in clusters.filter(pl.col("cluster_id") >= 0).group_by("day", "cluster_id"):
        vecs = np.asarray(members["embedding"].to_list())
        reps = np.asarray(members.filter(pl.col("is_representative"))["embedding"].to_list())
        assert len(reps) >= 1 and ((vecs @ reps.T).max(axis=1) >= 0.85 - 1e-5).all(), cid
    noise = clusters.filter(pl.col("cluster_id") == -1)
    assert noise.filter(pl.col("exact_dup_of").is_null())["is_representative"].all()


def test_a_failure_without_an_embedding_is_an_error_not_a_silent_drop():
    frame = texts([("t1", "bot", "h1", DAY)])
    none = pl.DataFrame(
        schema={"text_hash": pl.String, "embedding": pl.List(pl.Float32), "embedding_source": pl.String}
    )
    with pytest.raises(ValueError, match="no embedding"):
        cluster_failures(frame, none, LoopConfig(), "m", "run")
