"""CAPTURE's figures for the run's metadata: counts and previews of the requested days, as stored."""

from __future__ import annotations

from datetime import date
from typing import Any

import duckdb

from loop_assets.warehouse import query


def stored_figures(con: duckdb.DuckDBPyConnection, days: list[date], preview_rows: int) -> dict[str, Any]:
    """Counts and previews of the requested days as stored, whether this run read them or left them as they were."""
    day_list = [sorted(days)]
    in_days = "IN (SELECT unnest(?::DATE[]))"
    apps = query(
        con, f"SELECT app, count(*) AS len FROM raw_traces WHERE day {in_days} GROUP BY app ORDER BY app", day_list
    )
    reasons = query(
        con,
        f"SELECT reason_code, count(*) AS len FROM quarantined_records WHERE partition_day {in_days} "
        "GROUP BY reason_code ORDER BY len DESC, reason_code",
        day_list,
    )
    return {
        "traces": int(apps["len"].sum() or 0),
        "apps": apps.to_dicts(),
        "quarantined": int(reasons["len"].sum() or 0),
        "by_reason": reasons.to_dicts(),
        "files": query(
            con, f"SELECT count(DISTINCT source_file) AS n FROM ingest_manifest WHERE partition_day {in_days}", day_list
        )["n"][0],
        "skipped_items": query(con, f"SELECT count(*) AS n FROM skipped_items WHERE partition_day {in_days}", day_list)[
            "n"
        ][0],
        "trace_preview": query(
            con,
            "SELECT trace_id, ts, app, input_text, output_text, source_file, source_line FROM raw_traces "
            f"WHERE day {in_days} ORDER BY day, source_file, source_line LIMIT {preview_rows}",
            day_list,
        ),
        "quarantine_preview": query(
            con,
            "SELECT source_file, source_line, reason_code, reason FROM quarantined_records "
            f"WHERE partition_day {in_days} ORDER BY partition_day, source_file, source_line LIMIT {preview_rows}",
            day_list,
        ),
    }
