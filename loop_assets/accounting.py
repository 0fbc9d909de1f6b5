"""Nothing is lost: every record read from a file is a trace or a quarantined record."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

import duckdb
import polars as pl

from loop_assets.warehouse import ensure_tables


def record_accounting(con: duckdb.DuckDBPyConnection, days: Iterable[date]) -> pl.DataFrame:
    """Per (source_file, partition_day): records the ingest routed there vs rows found in the tables.

    Also, per file, whether all its partitions are written (`file_complete`) and then whether the
    rows over all of them add up to the records read from the whole file.
    """
    ensure_tables(con)
    return con.execute(
        """
        WITH routed AS (SELECT * FROM ingest_manifest),
        found AS (
            SELECT source_file, day AS partition_day, count(*) AS n FROM raw_traces GROUP BY ALL
            UNION ALL
            SELECT source_file, partition_day, count(*) FROM quarantined_records GROUP BY ALL
        ),
        found_by_day AS (SELECT source_file, partition_day, sum(n)::BIGINT AS rows_found FROM found GROUP BY ALL),
        per_file AS (
            SELECT r.source_file,
                   sum(r.records_routed)::BIGINT AS routed_written,
                   any_value(r.file_records) AS file_records,
                   sum(coalesce(f.rows_found, 0))::BIGINT AS rows_in_file
            FROM routed r LEFT JOIN found_by_day f USING (source_file, partition_day)
            GROUP BY ALL
        )
        SELECT r.source_file, r.partition_day, r.records_routed,
               coalesce(f.rows_found, 0)::BIGINT AS rows_found,
               p.file_records, p.rows_in_file,
               p.routed_written = p.file_records AS file_complete,
               r.records_routed = coalesce(f.rows_found, 0)
                 AND (p.routed_written < p.file_records OR p.rows_in_file = p.file_records) AS ok
        FROM routed r
        LEFT JOIN found_by_day f USING (source_file, partition_day)
        JOIN per_file p USING (source_file)
        WHERE r.partition_day IN (SELECT unnest(?::DATE[]))
        ORDER BY r.source_file, r.partition_day
        """,
        [sorted(set(days))],
    ).pl()
