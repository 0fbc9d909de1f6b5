"""Invariants of the promoted suite, checked after every promotion."""

from __future__ import annotations

import numpy as np
import polars as pl

from loop_assets.dedup.embedding import as_matrix

PROVENANCE = [
    "case_id",
    "day",
    "app",
    "input_messages",
    "grading",
    "weight",
    "status",
    "source",
    "trace_id",
    "source_file",
    "source_line",
    "source_format",
    "raw_partition",
    "failure_signals",
    "cluster_id",
    "dedup_threshold",
    "text_hash",
    "promoted_run_id",
    "promoted_partition",
    "first_seen_at",
    "promoted_at",
]


def near_duplicate_pairs(suite: pl.DataFrame, block: int = 2_048) -> pl.DataFrame:
    """Pairs of active cases of one app at or above the threshold the later of the two was promoted under.

    Cases of one day were promoted under one threshold; a case of a later day was compared with every
    earlier one under its own threshold, so that is the one a pair must stay below.
    """
    active = suite.filter(pl.col("status") == "active").sort("day", "case_id")
    found: list[dict] = []
    for (_,), group in active.group_by("app", maintain_order=True):
        vectors = as_matrix(group["embedding"])
        thresholds = group["dedup_threshold"].to_numpy()
        days = group["day"].to_numpy()
        ids = group["case_id"].to_list()
        for start in range(0, len(ids), block):
            rows = np.arange(start, min(start + block, len(ids)))
            sims = vectors[rows] @ vectors.T
            later_is_col = days[None, :] >= days[rows][:, None]
            limit = np.where(later_is_col, thresholds[None, :], thresholds[rows][:, None])
            upper = np.arange(len(ids))[None, :] > rows[:, None]
            for r, j in zip(*np.nonzero(upper & (sims >= limit + 1e-6)), strict=True):
                found.append(
                    {
                        "case_a": ids[rows[r]],
                        "case_b": ids[j],
                        "similarity": float(sims[r, j]),
                        "threshold": float(limit[r, j]),
                    }
                )
    return pl.DataFrame(
        found, schema={"case_a": pl.String, "case_b": pl.String, "similarity": pl.Float64, "threshold": pl.Float64}
    )


def incomplete_provenance(suite: pl.DataFrame) -> pl.DataFrame:
    """case_id and the provenance columns that are null (or an empty signal list)."""
    missing = [
        pl.when(pl.col(c).is_null() | (pl.col(c).list.len() == 0 if c == "failure_signals" else pl.lit(False))).then(
            pl.lit(c)
        )
        for c in PROVENANCE
    ]
    return suite.select("case_id", pl.concat_list(missing).list.drop_nulls().alias("missing")).filter(
        pl.col("missing").list.len() > 0
    )


def repeated_text_hashes(suite: pl.DataFrame) -> pl.DataFrame:
    return (
        suite.filter(pl.col("status") == "active")
        .group_by("app", "text_hash")
        .agg(pl.col("case_id"), pl.len().alias("cases"))
        .filter(pl.col("cases") > 1)
    )
