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
    rows over all of them add up to the records read from the whole file. The rows of no day (files
    none of whose records has a day; `partition_day` null) are listed with every run's days.
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
        matched AS (
            SELECT r.*, coalesce(f.rows_found, 0)::BIGINT AS rows_found
            FROM routed r LEFT JOIN found_by_day f
              ON f.source_file = r.source_file AND f.partition_day IS NOT DISTINCT FROM r.partition_day
        ),
        per_file AS (
            SELECT source_file,
                   sum(records_routed)::BIGINT AS routed_written,
                   any_value(file_records) AS file_records,
                   sum(rows_found)::BIGINT AS rows_in_file
            FROM matched GROUP BY ALL
        )
        SELECT m.source_file, m.partition_day, m.records_routed, m.rows_found,
               p.file_records, p.rows_in_file,
               p.routed_written = p.file_records AS file_complete,
               m.records_routed = m.rows_found
                 AND (p.routed_written < p.file_records OR p.rows_in_file = p.file_records) AS ok
        FROM matched m JOIN per_file p USING (source_file)
        WHERE m.partition_day IN (SELECT unnest(?::DATE[])) OR m.partition_day IS NULL
        ORDER BY m.source_file, m.partition_day NULLS FIRST
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
    - a listed file no ingest has read (it is not in `ingested_files`).

    A file whose records have days of their own and go to a day not materialised yet is pending, not
    lost: that day's run (the sensor's, the schedule's, `eval-loop materialize`) reads it. A file none
    of whose records has a day is stored (under no day) by the first run that reads it, whatever its days.
    """
    ensure_tables(con)
    rows = [(name, f"not read: {why}") for name, why in ignored]
    listed = sorted(set(listed))
    if listed:
        found = con.execute(
            """
            SELECT l.name FROM (SELECT unnest(?::VARCHAR[]) AS name) l
            ANTI JOIN ingested_files f ON f.source_file = l.name
            ORDER BY l.name
            """,
            [listed],
        ).fetchall()
        for (name,) in found:
            rows.append((name, "not read by any ingest yet: materialise the days of the incoming files"))
    return pl.DataFrame(rows, schema=FILES_NOT_ACCOUNTED_SCHEMA, orient="row")


def records_of_no_day(con: duckdb.DuckDBPyConnection) -> int:
    """Quarantined records stored under no day (files none of whose records has a day): no partition's
    figures hold them, so the quarantine's metadata counts them on their own."""
    ensure_tables(con)
    return con.execute("SELECT count(*) FROM quarantined_records WHERE partition_day IS NULL").fetchone()[0]
