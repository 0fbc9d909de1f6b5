"""CAPTURE's figures for the run's metadata: counts and previews of each requested day, as stored."""

from __future__ import annotations

from datetime import date
from typing import Any

import duckdb
import polars as pl

from loop_assets.warehouse import query

IN_DAYS = "IN (SELECT unnest(?::DATE[]))"


def stored_figures(con: duckdb.DuckDBPyConnection, days: list[date], preview_rows: int) -> dict[date, dict[str, Any]]:
    """Each requested day's counts and previews as stored, whether this run read it or left it as it was.
    One query per table for all the days: a backfill of many days does not ask the warehouse per day."""
    day_list = [sorted(days)]
    apps = query(
        con, f"SELECT day, app, count(*) AS len FROM raw_traces WHERE day {IN_DAYS} GROUP BY ALL ORDER BY app", day_list
    )
    reasons = query(
        con,
        "SELECT partition_day AS day, reason_code, count(*) AS len FROM quarantined_records "
        f"WHERE partition_day {IN_DAYS} GROUP BY ALL ORDER BY len DESC, reason_code",
        day_list,
    )
    files = _per_day(con, "count(DISTINCT source_file)", "ingest_manifest", day_list)
    skipped = _per_day(con, "count(*)", "skipped_items", day_list)
    trace_preview = query(
        con,
        "SELECT day, trace_id, ts, app, input_text, output_text, source_file, source_line FROM raw_traces "
        f"WHERE day {IN_DAYS} QUALIFY row_number() OVER (PARTITION BY day ORDER BY source_file, source_line) "
        f"<= {preview_rows} ORDER BY day, source_file, source_line",
        day_list,
    )
    quarantine_preview = query(
        con,
        "SELECT partition_day AS day, source_file, source_line, reason_code, reason FROM quarantined_records "
        f"WHERE partition_day {IN_DAYS} QUALIFY row_number() OVER (PARTITION BY partition_day "
        f"ORDER BY source_file, source_line) <= {preview_rows} ORDER BY day, source_file, source_line",
        day_list,
    )
    figures = {}
    for day in sorted(days):
        day_apps = apps.filter(pl.col("day") == day).drop("day")
        day_reasons = reasons.filter(pl.col("day") == day).drop("day")
        figures[day] = {
            "traces": int(day_apps["len"].sum() or 0),
            "apps": day_apps.to_dicts(),
            "quarantined": int(day_reasons["len"].sum() or 0),
            "by_reason": day_reasons.to_dicts(),
            "files": files.get(day, 0),
            "skipped_items": skipped.get(day, 0),
            "trace_preview": trace_preview.filter(pl.col("day") == day).drop("day"),
            "quarantine_preview": quarantine_preview.filter(pl.col("day") == day).drop("day"),
        }
    return figures


def _per_day(con: duckdb.DuckDBPyConnection, count: str, table: str, day_list: list) -> dict[date, int]:
    sql = f"SELECT partition_day, {count} FROM {table} WHERE partition_day {IN_DAYS} GROUP BY ALL"
    return dict(query(con, sql, day_list).iter_rows())
