"""From a day's failing traces to `failure_clusters` rows: exact-dup collapse, embed, cluster, pick.

Clusters never span apps: the same words mean a different failure in a different application.
Exact duplicates (same app, same normalised text) are collapsed before anything is embedded and
inherit the cluster of the first such trace of the day.
"""

from __future__ import annotations

from datetime import date

import duckdb
import numpy as np
import polars as pl

from loop_assets.config import LoopConfig
from loop_assets.dedup.clustering import cluster_labels, representatives
from loop_assets.dedup.embedding import as_matrix
from loop_assets.dedup.text import normalised_text, text_hash, with_conversation
from loop_assets.dedup.text_cache import cached_texts, input_hashes, store_texts, text_settings_key
from loop_assets.dedup.threshold import strictest_threshold
from loop_assets.redaction import redact_frame
from loop_assets.tables import conform, empty
from loop_assets.warehouse import read_partitions


def read_failing_texts(con: duckdb.DuckDBPyConnection, days: list[date], config: LoopConfig) -> pl.DataFrame:
    """`failing_texts` of the days from the warehouse: only the failures and their inputs are read, and an
    input whose compared text was made before is served from text_cache (new ones are stored)."""
    scored = read_partitions(con, "scored_traces", days, where="is_failure")
    raw = read_partitions(con, "raw_traces", days, trace_ids=scored["trace_id"])
    inputs = failing_inputs(raw, scored, config.dedup.context_chars)
    settings = text_settings_key(config)
    known = cached_texts(con, settings, inputs["input_hash"])
    texts = compared_texts(inputs, config, known)
    store_texts(con, settings, texts, known)
    return texts


def failing_texts(
    raw: pl.DataFrame, scored: pl.DataFrame, config: LoopConfig, known: pl.DataFrame | None = None
) -> pl.DataFrame:
    """trace_id, day, app, ts, text, text_hash, severity, input_hash of the failing traces, oldest first.

    `text` is the input text with its conversation (`with_conversation`) redacted (config.redaction),
    normalised and cut to the embedding length.
    `known` (input_hash, text: `text_cache.cached_texts`) gives the text of inputs already made, so only
    new inputs are redacted; `input_hash` is the sha256 of the input text, its key.
    """
    return compared_texts(failing_inputs(raw, scored, config.dedup.context_chars), config, known)


def failing_inputs(raw: pl.DataFrame, scored: pl.DataFrame, context_chars: int) -> pl.DataFrame:
    """trace_id, day, severity, app, ts, input_text, input_hash of the failing traces.

    `input_text` here is what the failure is compared by: the trace's input text with its conversation.
    """
    failures = scored.filter(pl.col("is_failure")).select("trace_id", "day", "severity")
    joined = failures.join(
        raw.select("trace_id", "day", "app", "ts", "input_text", "input_messages"), on=["trace_id", "day"]
    )
    compared = [
        with_conversation(text, messages, context_chars)
        for text, messages in zip(joined["input_text"], joined["input_messages"], strict=True)
    ]
    joined = joined.drop("input_messages").with_columns(pl.Series("input_text", compared, dtype=pl.String))
    return joined.with_columns(input_hash=input_hashes(joined["input_text"]))


def compared_texts(inputs: pl.DataFrame, config: LoopConfig, known: pl.DataFrame | None = None) -> pl.DataFrame:
    """`failing_texts` from `failing_inputs`: inputs `known` lacks are redacted, normalised and cut."""
    if known is None:
        known = pl.DataFrame(schema={"input_hash": pl.String, "text": pl.String})
    joined = inputs.join(known.select("input_hash", "text").unique("input_hash"), on="input_hash", how="left")
    # PII and secrets never reach the hash, the embedding, its cache or failure_clusters.text.
    new = redact_frame(joined.filter(pl.col("text").is_null()), ["input_text"], config.redaction).with_columns(
        normalised_text(pl.col("input_text"), config.embedding.max_chars).alias("text")
    )
    return (
        pl.concat([joined.filter(pl.col("text").is_not_null()), new])
        .with_columns(text_hash(pl.col("text")).alias("text_hash"))
        .select("trace_id", "day", "app", "ts", "text", "text_hash", "severity", "input_hash")
        .sort("ts", "trace_id")
    )


def collapse_exact_duplicates(texts: pl.DataFrame) -> pl.DataFrame:
    """Adds exact_dup_of: the first trace (by ts, trace_id) of the same day, app and text, else null."""
    first = pl.col("trace_id").sort_by("ts", "trace_id").first().over("day", "app", "text_hash")
    return texts.with_columns(pl.when(first != pl.col("trace_id")).then(first).alias("exact_dup_of"))


def cluster_failures(
    texts: pl.DataFrame, vectors: pl.DataFrame, config: LoopConfig, model: str, run_id: str
) -> pl.DataFrame:
    """Cluster one day of failures (`texts` from failing_texts, `vectors` text_hash -> embedding).

    Cluster ids are numbered per day across apps in app order, so they are unique within a day.
    """
    if texts.height == 0:
        return empty("failure_clusters")
    rows = collapse_exact_duplicates(texts).join(
        vectors.select("text_hash", "embedding", "embedding_source"), on="text_hash", how="left"
    )
    missing = rows.filter(pl.col("embedding").is_null())
    if missing.height:
        raise ValueError(f"{missing.height} failing traces have no embedding (text_hash {missing['text_hash'][0]})")
    rows = rows.with_columns(
        pl.when(pl.col("exact_dup_of").is_not_null())
        .then(pl.lit("exact_dup"))
        .otherwise(pl.col("embedding_source"))
        .alias("embedding_source")
    )
    canon = rows.filter(pl.col("exact_dup_of").is_null())
    dup_counts = rows.group_by("day", "app", "text_hash").agg(pl.len().alias("copies"))
    # sorted after the join (a join keeps no row order): HDBSCAN numbers clusters by input order
    canon = canon.join(dup_counts, on=["day", "app", "text_hash"]).sort("day", "app", "ts", "trace_id")

    cover = strictest_threshold(config.dedup.threshold_schedule)
    parts: list[pl.DataFrame] = []
    next_id = 0
    for (_, _app), group in canon.group_by("day", "app", maintain_order=True):
        vectors_np = as_matrix(group["embedding"])
        labels = cluster_labels(
            vectors_np,
            config.clustering.reduce_to_dims,
            config.clustering.min_cluster_size,
            config.clustering.min_samples,
        )
        # most repeated first, then most severe, then oldest: the order a greedy cover picks representatives in
        order = group.with_row_index("i").sort(
            ["copies", "severity", "ts", "trace_id"], descending=[True, True, False, False]
        )["i"]
        reps = representatives(vectors_np, labels, order.to_numpy(), cover)
        ids = np.where(labels >= 0, labels + next_id, -1)
        next_id += int(labels.max()) + 1 if (labels >= 0).any() else 0
        parts.append(group.with_columns(pl.Series("cluster_id", ids), pl.Series("is_representative", reps)))
    clustered = pl.concat(parts)
    clustered = clustered.with_columns(
        pl.when(pl.col("cluster_id") >= 0)
        .then(pl.col("copies").sum().over("day", "cluster_id"))
        .otherwise(pl.col("copies"))
        .alias("cluster_size")
    )
    canon_cols = clustered.select(pl.col("trace_id").alias("exact_dup_of"), "cluster_id", "cluster_size")
    dups = rows.filter(pl.col("exact_dup_of").is_not_null()).join(canon_cols, on="exact_dup_of")
    out = pl.concat(
        [
            clustered.drop("copies"),
            dups.with_columns(pl.lit(False).alias("is_representative")).select(clustered.drop("copies").columns),
        ]
    ).with_columns(
        pl.lit(model).alias("embedding_model"),
        pl.lit(run_id).alias("clustered_run_id"),
    )
    return conform("failure_clusters", out.sort("day", "ts", "trace_id"))
