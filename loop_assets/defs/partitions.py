"""Day partitions (UTC, by the trace's own timestamp) shared by every asset of the loop."""

from __future__ import annotations

from datetime import date

import dagster as dg

from loop_assets.config import load_config

# end_offset=1: today's partition exists, so traffic logged today can be materialised today.
daily_partitions = dg.DailyPartitionsDefinition(
    start_date=load_config().partitions_start, end_offset=1, timezone="UTC", fmt="%Y-%m-%d"
)

# One writer at a time: every asset that writes DuckDB runs in this pool (size 1 in dagster.yaml).
DUCKDB_POOL = "duckdb"

single_run = dg.BackfillPolicy.single_run()


def partition_days(context: dg.AssetExecutionContext) -> list[date]:
    """The days of this run, oldest first (one for a normal run, several for a range backfill)."""
    return sorted(date.fromisoformat(key) for key in context.partition_keys)
