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


FILES_NOT_ACCOUNTED_SCHEMA = pl.Schema({"source_file": pl.String, "problem": pl.String})


def files_not_accounted(
    con: duckdb.DuckDBPyConnection, listed: Iterable[str], ignored: Iterable[tuple[str, str]] = ()
) -> pl.DataFrame:
    """Entries of the incoming folder whose records are in no table, each with the problem in words.

    `listed`: the trace files a run saw (`ingest_plan.IngestPlan.listed`); `ignored`: the other entries
    it did not read, with why (`incoming.Listing.ignored`). A problem is:

    - an ignored entry (a name that is not a trace file's, a symlinked folder): nobody reads it;
    - a listed file no ingest has read (it is not in `ingested_files`);
    - a file none of whose records has a day of its own (all unreadable, say), whose records therefore
      went to its modification day, when that day's partition does not hold them: no run would
      otherwise ever ask for that day, and the file would be lost while every partition adds up.

    A file whose records have days of their own and go to a day not materialised yet is pending, not
    lost: that day's run (the sensor's, the schedule's, `eval-loop materialize`) reads it.
    """
    ensure_tables(con)
    rows = [(name, f"not read: {why}") for name, why in ignored]
    listed = sorted(set(listed))
    if listed:
        found = con.execute(
            """
            SELECT l.name,
                   f.source_file IS NULL AS never_read,
                   f.undated_day,
                   f.undated_day IS NOT NULL AND NOT EXISTS (
                       SELECT 1 FROM ingest_manifest m
                       WHERE m.source_file = l.name AND m.partition_day = f.undated_day
                   ) AS undated_unwritten
            FROM (SELECT unnest(?::VARCHAR[]) AS name) l
            LEFT JOIN ingested_files f ON f.source_file = l.name
            ORDER BY l.name
            """,
            [listed],
        ).fetchall()
        for name, never_read, undated_day, unwritten in found:
            if never_read:
                rows.append((name, "not read by any ingest yet: materialise the days of the incoming files"))
            elif unwritten:
                rows.append(
                    (
                        name,
                        f"its records went to {undated_day}, not materialised since: none has a day of its own, "
                        f"so they go to the file's modification day; materialise {undated_day}",
                    )
                )
    return pl.DataFrame(rows, schema=FILES_NOT_ACCOUNTED_SCHEMA, orient="row")
