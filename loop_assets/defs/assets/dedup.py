"""DEDUP: a day's failing traces to `failure_clusters`."""

import time

import dagster as dg
import polars as pl

from loop_assets.dedup.checks import unclustered_failures
from loop_assets.dedup.embedding import embed_with_cache, sources_by_day
from loop_assets.dedup.embedding_cache import cached_embeddings, store_embeddings
from loop_assets.dedup.failure_clusters import cluster_failures, read_failing_texts
from loop_assets.dedup.threshold import strictest_threshold
from loop_assets.defs.metadata import (
    add_day_metadata,
    markdown_preview,
    problems_check,
    run_metadata,
    table_metadata,
)
from loop_assets.defs.partitions import DUCKDB_POOL, daily_partitions, partition_days, single_run
from loop_assets.defs.resources import Embedder, LoopSettings, Warehouse
from loop_assets.tables import empty
from loop_assets.warehouse import pause_point, replace_partitions

EVERY_FAILURE_CLUSTERED = "every_failure_clustered"


@dg.asset(
    deps=["scored_traces"],
    description="Each failing trace with its compared text (input with its conversation, normalised), "
    "exact-duplicate link, embedding (cached by model and text hash), failure family (HDBSCAN cluster on "
    "PCA-reduced vectors) and whether it is one of the family's representatives (a greedy cover: every member "
    "is within the strictest dedup threshold of one).",
    kinds={"duckdb", "polars", "sentence-transformers"},
    group_name="dedup",
    metadata=table_metadata("failure_clusters"),
    partitions_def=daily_partitions,
    backfill_policy=single_run,
    pool=DUCKDB_POOL,
    check_specs=[
        dg.AssetCheckSpec(
            EVERY_FAILURE_CLUSTERED,
            asset="failure_clusters",
            description="Every failing trace is in failure_clusters; every cluster member is within the strictest "
            "dedup threshold of one of its cluster's representatives.",
        ),
    ],
)
def failure_clusters(
    context: dg.AssetExecutionContext, settings: LoopSettings, warehouse: Warehouse, embedder: Embedder
):
    config = settings.config()
    days = partition_days(context)
    model = embedder.model_id(config)

    def progress(done: int, total: int) -> None:
        context.log.info(f"progress: embedding {done:,} of {total:,} texts")

    with warehouse.get_connection() as con:
        texts = read_failing_texts(con, days, config)
        canonical = texts.unique(["day", "app", "text_hash"])
        cached = cached_embeddings(con, model, canonical["text_hash"])
        started = time.perf_counter()
        embedded = embed_with_cache(canonical, cached, embedder.encoder(config), model, progress)
        embed_seconds = time.perf_counter() - started
        store_embeddings(con, embedded.new_cache_rows)
        pause_point("failure_clusters:embedded")  # test-only crash hook, inert unless EVAL_LOOP_PAUSE_AT is set
        started = time.perf_counter()
        clusters = pl.concat(
            [empty("failure_clusters")]
            + [
                cluster_failures(texts.filter(pl.col("day") == day), embedded.vectors, config, model, context.run_id)
                for day in days
            ]
        )
        cluster_seconds = time.perf_counter() - started
        replace_partitions(con, "failure_clusters", days, {"failure_clusters": clusters}, context.run_id)
        gaps = unclustered_failures(con, days, strictest_threshold(config.dedup.threshold_schedule))
    sources = sources_by_day(canonical, embedded.vectors)
    add_day_metadata(
        context,
        "failure_clusters",
        {
            day: _cluster_figures(
                texts.filter(pl.col("day") == day), clusters.filter(pl.col("day") == day), sources.get(day, {})
            )
            for day in days
        },
    )
    run = run_metadata(
        days,
        embedded=embedded.embedded,
        cached=embedded.cached,
        model_loaded=embedder.encoder(config).loads > 0,
        embed_seconds=round(embed_seconds, 3),
        texts_per_second=round(embedded.embedded / embed_seconds, 1) if embedded.embedded else None,
        cluster_seconds=round(cluster_seconds, 3),
    )
    context.log.info(f"embedded {embedded.embedded:,} texts ({embedded.cached:,} cached) in {embed_seconds:.1f}s")
    return dg.MaterializeResult(
        check_results=[problems_check(EVERY_FAILURE_CLUSTERED, gaps, "problem_days")],
        metadata={**run, "embedding_model": model},
    )


def _cluster_figures(texts: pl.DataFrame, clusters: pl.DataFrame, sources: dict[str, int]) -> dict[str, object]:
    """A day's figures of failure_clusters: failures, exact duplicates, vectors embedded vs cached, families."""
    reps = clusters.filter(pl.col("is_representative"))
    distinct = texts.select("app", "text_hash").n_unique() if texts.height else 0
    return {
        "dagster/row_count": clusters.height,
        "failures": texts.height,
        "exact_dups_collapsed": texts.height - distinct,
        "distinct_texts": int(sources.get("distinct_texts", 0)),
        "embedded": int(sources.get("embedded", 0)),
        "cached": int(sources.get("cached", 0)),
        "clusters": clusters.filter(pl.col("cluster_id") >= 0)["cluster_id"].n_unique(),
        "noise": reps.filter(pl.col("cluster_id") < 0).height,
        "representatives": reps.height,
        "preview": markdown_preview(
            reps.sort("cluster_size", descending=True).select("day", "app", "cluster_id", "cluster_size", "text")
        ),
    }
