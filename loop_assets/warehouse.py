"""DuckDB storage: tables from the contract, partitions replaced atomically.

A partition is always replaced delete-then-insert inside one transaction, together with its row in
`partition_log`, so a crash leaves either the old or the new partition, never a mix, and a re-run
never duplicates rows.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import polars as pl

from loop_assets.tables import PARTITION_COLUMN, TABLES, conform, empty

DEFAULT_WAREHOUSE = "data/warehouse.duckdb"

# Tables appended to by concurrent runs get a key, so a second insert of the same key is ignored.
KEYED_TABLES = {
    "embedding_cache": "CREATE TABLE embedding_cache (model VARCHAR, text_hash VARCHAR, embedding FLOAT[], "
    "created_at TIMESTAMPTZ, PRIMARY KEY (model, text_hash))",
    "judge_cache": "CREATE TABLE judge_cache (judge_model VARCHAR, rubric_version VARCHAR, trace_id VARCHAR, day DATE, "
    "app VARCHAR, score DOUBLE, reason VARCHAR, created_at TIMESTAMPTZ, PRIMARY KEY (judge_model, rubric_version, "
    "trace_id))",
}


def warehouse_path() -> str:
    return os.environ.get("EVAL_LOOP_WAREHOUSE", DEFAULT_WAREHOUSE)


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create every contract table that does not exist yet, and add columns the contract has gained.

    A warehouse written by an earlier version keeps its rows; new columns arrive as nulls.
    """
    existing: dict[str, set[str]] = {}
    for table, column in con.execute("SELECT table_name, column_name FROM information_schema.columns").fetchall():
        existing.setdefault(table, set()).add(column)
    for table in TABLES:
        if table in KEYED_TABLES and table not in existing:
            con.execute(KEYED_TABLES[table])
            continue
        con.register("_template", empty(table).to_arrow())
        try:
            if table not in existing:
                con.execute(f"CREATE TABLE {table} AS SELECT * FROM _template")
                continue
            missing = [c for c in TABLES[table] if c not in existing[table]]
            if missing:
                types = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE _template)").fetchall())
                for column in missing:
                    con.execute(f'ALTER TABLE {table} ADD COLUMN "{column}" {types[column]}')
        finally:
            con.unregister("_template")


def replace_partitions(
    con: duckdb.DuckDBPyConnection,
    asset: str,
    days: Iterable[date],
    frames: Mapping[str, pl.DataFrame],
    run_id: str,
) -> dict[str, int]:
    """Replace the given days of each table with the rows in its frame, in one transaction.

    `frames` maps table name to the new rows of those days; rows outside `days` are a bug.
    Returns rows written per table.
    """
    days = sorted(set(days))
    ensure_tables(con)
    written: dict[str, int] = {}
    con.execute("BEGIN TRANSACTION")
    try:
        for table, frame in frames.items():
            column = PARTITION_COLUMN[table]
            rows = conform(table, frame)
            stray = rows.filter(~pl.col(column).is_in(days))
            if stray.height:
                raise ValueError(f"{table}: {stray.height} rows outside the partitions being written")
            con.execute(f"DELETE FROM {table} WHERE {column} IN (SELECT unnest(?::DATE[]))", [days])
            if rows.height:
                con.register("_rows", rows.to_arrow())
                con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _rows")
                con.unregister("_rows")
            written[table] = rows.height
        now = datetime.now(UTC)
        con.execute("DELETE FROM partition_log WHERE asset = ? AND day IN (SELECT unnest(?::DATE[]))", [asset, days])
        primary = next(iter(frames.values()), None)
        primary_column = PARTITION_COLUMN[next(iter(frames))] if frames else "day"
        for day in days:
            n = 0 if primary is None else primary.filter(pl.col(primary_column) == day).height
            con.execute("INSERT INTO partition_log VALUES (?, ?, ?, ?, ?)", [asset, day, run_id, n, now])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return written


def append_rows(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame) -> int:
    """Append rows to an unpartitioned keyed table; rows whose key is already there are ignored."""
    ensure_tables(con)
    if frame.height == 0:
        return 0
    con.register("_rows", conform(table, frame).to_arrow())
    con.execute(f"INSERT OR IGNORE INTO {table} BY NAME SELECT * FROM _rows")
    con.unregister("_rows")
    return frame.height


def query(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> pl.DataFrame:
    return con.execute(sql, params or []).pl()


def read_partitions(con: duckdb.DuckDBPyConnection, table: str, days: Iterable[date]) -> pl.DataFrame:
    """Rows of the given days, typed as the contract says (empty frame when the table is new)."""
    ensure_tables(con)
    column = PARTITION_COLUMN[table]
    frame = con.execute(f"SELECT * FROM {table} WHERE {column} IN (SELECT unnest(?::DATE[]))", [sorted(set(days))]).pl()
    return conform(table, frame) if frame.height else empty(table)


def logged_days(con: duckdb.DuckDBPyConnection, asset: str) -> set[date]:
    ensure_tables(con)
    return {r[0] for r in con.execute("SELECT day FROM partition_log WHERE asset = ?", [asset]).fetchall()}


def connect(path: str | os.PathLike[str] | None = None, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """A connection for the command line (the Dagster layer uses its DuckDB resource)."""
    target = Path(path or warehouse_path())
    if read_only and not target.exists():
        raise FileNotFoundError(f"no warehouse at {target}: run `make run` (or set EVAL_LOOP_WAREHOUSE)")
    target.parent.mkdir(parents=True, exist_ok=True)
    return duckdb.connect(str(target), read_only=read_only)
