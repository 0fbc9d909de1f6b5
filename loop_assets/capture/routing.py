"""A read's rows to partitions: each trace to its day, duplicates quarantined, every other row to a day
when its file has one (else to no day: null, stored by whichever run reads the file)."""

from __future__ import annotations

from datetime import date

import polars as pl

from loop_assets import tables
from loop_assets.capture.rows import (
    FILE_SCHEMA,
    FILES_READ_SCHEMA,
    KEY_COLUMNS,
    QUARANTINE_SCHEMA,
    SKIPPED_ROWS,
    SKIPPED_SCHEMA,
    IngestResult,
    Rows,
)

DEDUP_KEYS = ["day", "trace_id", "span_id"]


def assemble(rows: Rows, run_id: str, days: set[date] | None) -> IngestResult:
    files = pl.DataFrame(rows.files, schema=FILE_SCHEMA)
    # The parsed traces stay in their chunks, each filtered once at the end and let go; dedup and
    # routing work on narrow key columns, so a day of a million traces is never copied whole (sorts
    # and joins of the wide frame made ~4 copies).
    chunks = [*rows.trace_chunks, rows.trace_frame()]
    rows.trace_chunks.clear()
    keys = pl.concat([chunk.select(KEY_COLUMNS) for chunk in chunks]).with_columns(day=pl.col("ts").dt.date())
    if not keys["_seq"].is_sorted():  # never expected: chunks are made in reading order
        chunks = [pl.concat(chunks).sort("_seq")]
        keys = keys.sort("_seq")
    problems = pl.DataFrame(rows.quarantine, schema=QUARANTINE_SCHEMA)
    skipped_rows = pl.DataFrame(rows.skipped, schema=SKIPPED_ROWS)

    # Duplicates: per (day, trace_id, span_id), the first in reading order is kept.
    ranked = keys.select(
        "_seq",
        "day",
        "trace_id",
        "span_id",
        "record_hash",
        "source_file",
        "source_line",
        "source_format",
        _rank=pl.int_range(pl.len()).over(DEDUP_KEYS),
        _kept_file=pl.col("source_file").first().over(DEDUP_KEYS),
        _kept_line=pl.col("source_line").first().over(DEDUP_KEYS),
        _kept_hash=pl.col("record_hash").first().over(DEDUP_KEYS),
    )
    is_duplicate = ranked["_rank"] > 0
    same = pl.col("record_hash") == pl.col("_kept_hash")
    trace_label = (
        pl.when(pl.col("span_id").is_null())
        .then(pl.col("trace_id"))
        .otherwise(pl.format("{} span {}", pl.col("trace_id"), pl.col("span_id")))
    )
    kept_at = pl.format("{}:{}", pl.col("_kept_file"), pl.col("_kept_line"))
    here = pl.format("{}:{}", pl.col("source_file"), pl.col("source_line"))
    keep = ~is_duplicate  # a trace's partition is its own day
    if days is not None:
        keep = keep & ranked["day"].is_in(sorted(days))
    kept: list[pl.DataFrame] = []
    copies: list[pl.DataFrame] = []
    start = 0
    while chunks:
        chunk = chunks.pop(0)
        copies.append(
            chunk.filter(is_duplicate.slice(start, chunk.height)).select("_seq", "_raw", "_raw_truncated", "_raw_bytes")
        )
        kept.append(chunk.filter(keep.slice(start, chunk.height)).with_columns(day=pl.col("ts").dt.date()))
        start += chunk.height
        del chunk
    later_copies = ranked.filter(is_duplicate).join(pl.concat(copies), on="_seq", how="left")
    duplicates = later_copies.select(
        "source_file",
        "source_line",
        raw=pl.col("_raw"),
        raw_truncated=pl.col("_raw_truncated"),
        raw_bytes=pl.col("_raw_bytes"),
        reason_code=pl.when(same).then(pl.lit("duplicate_record")).otherwise(pl.lit("conflicting_duplicate")),
        reason=pl.when(same)
        .then(
            pl.format(
                "trace `{}` of {} was already read from {} with identical content (a redelivery); kept that one",
                trace_label,
                pl.col("day"),
                kept_at,
            )
        )
        .otherwise(
            pl.format(
                "trace id `{}` of {} is used by two different records: kept {}, quarantined this one ({})",
                trace_label,
                pl.col("day"),
                kept_at,
                here,
            )
        ),
        day=pl.col("day"),
        source_format=pl.col("source_format"),
        _seq=pl.col("_seq"),
    )

    # Routing: a record without a day of its own goes with its neighbours in the file. A file with no
    # dated record at all has no day: its rows keep a null partition day, so they create and force no
    # partition; every run that reads the file stores them (`warehouse.replace_partitions(undated_files=)`).
    ledger = (
        pl.concat([ranked.select("_seq", "source_file", "day"), problems.select("_seq", "source_file", "day")])
        .sort("_seq")
        .with_columns(partition_day=pl.col("day").forward_fill().backward_fill().over("source_file"))
        .select("_seq", "source_file", "partition_day")
    )
    routes = ledger.select("_seq", "partition_day")

    traces = pl.concat(kept).with_columns(ingest_run_id=pl.lit(run_id, pl.String))
    del kept
    quarantine = (
        pl.concat([problems, duplicates])
        .join(routes, on="_seq", how="left")
        .sort("_seq")
        .with_columns(ingest_run_id=pl.lit(run_id, pl.String))
    )
    skipped = (
        skipped_rows.join(routes.rename({"_seq": "_anchor"}), on="_anchor", how="left")
        .with_columns(ingest_run_id=pl.lit(run_id, pl.String))
        .sort("_anchor", maintain_order=True)
        .select(list(SKIPPED_SCHEMA))
    )
    manifest = (
        ledger.group_by("source_file", "partition_day")
        .agg(records_routed=pl.len().cast(pl.Int64))
        .with_columns(file_records=pl.col("records_routed").sum().over("source_file"))
        .join(files, on="source_file", how="left")
        .with_columns(ingest_run_id=pl.lit(run_id, pl.String))
        .sort("source_file", "partition_day")
    )

    files_read = (
        ledger.group_by("source_file")
        .agg(days=pl.col("partition_day").drop_nulls().unique().sort())
        .join(files, on="source_file", how="right")
        .with_columns(pl.col("days").fill_null(pl.lit([], pl.List(pl.Date))))
        .select(list(FILES_READ_SCHEMA))
    )

    if days is not None:  # the requested days, and the rows of no day, which every read stores
        wanted = pl.col("partition_day").is_in(sorted(days)) | pl.col("partition_day").is_null()
        quarantine = quarantine.filter(wanted)
        manifest = manifest.filter(wanted)
        skipped = skipped.filter(wanted)

    return IngestResult(
        traces=tables.conform("raw_traces", traces),
        quarantine=tables.conform("quarantined_records", quarantine),
        manifest=tables.conform("ingest_manifest", manifest),
        skipped=skipped.cast(dict(SKIPPED_SCHEMA)),
        files=files_read.cast(dict(FILES_READ_SCHEMA)),
    )
