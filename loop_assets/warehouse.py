"""DuckDB storage: tables from the contract, partitions replaced atomically.

A partition is always replaced delete-then-insert inside one transaction, together with its row in
`partition_log`, so a crash leaves either the old or the new partition, never a mix, and a re-run
never duplicates rows.

Two backends run the same SQL: one DuckDB file (the default: one writing process at a time) and a
DuckLake (catalog in Postgres, Parquet under a data path, many writers on many machines; see
`open_lake`). On a lake a transaction that meets a concurrent commit on the same table fails cleanly
and is retried whole (`retry_on_conflict`); keyed tables have no PRIMARY KEY there, so they are written
with MERGE and read keeping one row per key.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import polars as pl

from loop_assets.tables import PARTITION_COLUMN, TABLES, conform, empty

DEFAULT_WAREHOUSE = "data/warehouse.duckdb"
LOCK_TIMEOUT = "EVAL_LOOP_LOCK_TIMEOUT"
DEFAULT_LOCK_TIMEOUT_SECONDS = 300.0
"""How long a run waits for another process (a read-only session, a second writer) to let go of the file."""
CLI_LOCK_TIMEOUT_SECONDS = 15.0
PAUSE_AT = "EVAL_LOOP_PAUSE_AT"
PAUSE_MARKER = "EVAL_LOOP_PAUSE_MARKER"

# Tables appended to by concurrent runs get a key, so a second insert of the same key is ignored.
TABLE_KEYS = {
    "embedding_cache": ("model", "text_hash"),
    "judge_cache": ("judge_model", "rubric_version", "trace_id"),
    "text_cache": ("settings", "input_hash"),
    "ingested_files": ("source_file",),
}


DUCKLAKE_CATALOG = "EVAL_LOOP_DUCKLAKE_CATALOG"
"""libpq connection string of the DuckLake catalog database (`dbname=lake host=... user=...`); set, it
selects the DuckLake backend. The password comes from PGPASSWORD (or ~/.pgpass), never from this string."""
DUCKLAKE_DATA = "EVAL_LOOP_DUCKLAKE_DATA"
"""Where the lake's Parquet files go (a shared folder or an object-store URL); read once, when the lake
is created: an existing catalog keeps the path it was created with."""
LAKE = "lake"  # the name the lake is attached under; every connection then USEs it
CONFLICT_RETRIES = 12
T = TypeVar("T")


def warehouse_path() -> str:
    return os.environ.get("EVAL_LOOP_WAREHOUSE", DEFAULT_WAREHOUSE)


class LakeNotCreated(RuntimeError):
    """The catalog database holds no DuckLake yet: it is created once, before any run (`lake init`)."""


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def load_lake_extensions(con: duckdb.DuckDBPyConnection) -> None:
    """Load ducklake and postgres_scanner from their PyPI wheels (the `cluster` extra): nothing is
    downloaded at run time. The wheels are built for one DuckDB release (pyproject pins it)."""
    from duckdb_extensions import import_extension

    for name in ("ducklake", "postgres_scanner"):
        import_extension(name, con=con)


def open_lake(
    catalog: str, data_path: str | None = None, *, create: bool = False, config: Mapping[str, object] | None = None
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with the DuckLake in Postgres `catalog` attached and in USE, so the
    unqualified table names of every query are the lake's.

    `create=False` (every run) refuses a catalog database without a lake: two processes creating one at
    once race, so `create_lake` makes it once, first. `data_path` is needed only then.
    """
    con = duckdb.connect(config=dict(config or {}))
    try:
        load_lake_extensions(con)
        options = [f"CREATE_IF_NOT_EXISTS {'true' if create else 'false'}"]
        if data_path:
            options.append(f"DATA_PATH {_quote(data_path.rstrip('/') + '/')}")
        try:
            con.execute(f"ATTACH {_quote('ducklake:postgres:' + catalog)} AS {LAKE} ({', '.join(options)})")
        except duckdb.Error as exc:
            if not create and "does not exist" in str(exc).lower():
                raise LakeNotCreated(
                    f"no DuckLake in the catalog database ({catalog}): create it once with "
                    f"`python -m loop_assets.scale.lake init` ({DUCKLAKE_CATALOG} and {DUCKLAKE_DATA} set). "
                    f"DuckDB said: {exc}"
                ) from exc
            raise
        con.execute(f"USE {LAKE}")
    except BaseException:
        con.close()
        raise
    return con


_ATTACHED: dict[str, tuple[int, duckdb.DuckDBPyConnection]] = {}
_ATTACHING = threading.Lock()


def lake_cursor(catalog: str) -> duckdb.DuckDBPyConnection:
    """A connection to the lake in `catalog` from this process's one attachment of it.

    Loading the extensions and attaching cost ~0.35 s a connection and a step opens several: the process
    attaches once and hands out cursors (connections to the same DuckDB instance, each with its own
    transaction; closing one leaves the attachment). Every transaction reads the catalog's latest snapshot,
    so other processes' commits are seen. A forked child attaches anew.
    """
    with _ATTACHING:
        pid, base = _ATTACHED.get(catalog, (None, None))
        if base is None or pid != os.getpid():
            base = open_lake(catalog)
            _ATTACHED[catalog] = (os.getpid(), base)
    con = base.cursor()
    con.execute(f"USE {LAKE}")
    return con


def create_lake(catalog: str, data_path: str) -> None:
    """Create the DuckLake and every contract table, once, before the first run (idempotent)."""
    if "://" not in data_path:
        Path(data_path).mkdir(parents=True, exist_ok=True)
    with open_lake(catalog, data_path, create=True) as con:
        retry_on_conflict(lambda: ensure_tables(con))


def is_lake(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether `con` works in a DuckLake (else in a DuckDB file or in memory)."""
    found = con.execute("SELECT type FROM duckdb_databases() WHERE database_name = current_database()").fetchone()
    return found is not None and found[0] == "ducklake"


def is_conflict(error: BaseException) -> bool:
    """A commit that lost to a concurrent one (DuckLake's optimistic concurrency): safe to retry whole."""
    return isinstance(error, duckdb.TransactionException) and "conflict" in str(error).lower()


def retry_on_conflict(
    attempt: Callable[[], T], retries: int = CONFLICT_RETRIES, on_retry: Callable[[str], None] | None = None
) -> T:
    """`attempt()`, run again after a transaction conflict with exponential backoff and jitter (0.05 s
    doubling to 5 s), up to `retries` times. Other errors, and the last conflict, are raised.

    Only a lake has conflicts: a DuckDB file has one writing process, so there the first attempt is the
    only one. `attempt` must be one whole transaction (its rollback leaves nothing behind).
    """
    delay = 0.05
    for tries in range(retries + 1):
        try:
            return attempt()
        except duckdb.Error as exc:
            if tries == retries or not is_conflict(exc):
                raise
            if on_retry is not None:
                on_retry(f"transaction conflict, retry {tries + 1} of {retries}: {exc}")
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 5.0)
    raise AssertionError("unreachable")


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    """ROLLBACK, when a transaction is still open (a failed COMMIT has already ended it)."""
    with contextlib.suppress(duckdb.TransactionException):
        con.execute("ROLLBACK")


class WarehouseLocked(RuntimeError):
    """Another process kept the warehouse file locked for longer than the lock timeout."""


_HOLDER = re.compile(r"Conflicting lock is held in (?P<program>.+?) \(PID (?P<pid>\d+)\)")


def lock_holder(error: BaseException) -> str | None:
    """'PID 1234 (/usr/bin/python3)' from DuckDB's lock error, None when it names no holder."""
    found = _HOLDER.search(str(error))
    return f"PID {found['pid']} ({found['program']})" if found else None


def lock_timeout_seconds() -> float:
    """EVAL_LOOP_LOCK_TIMEOUT (seconds), default 300; a ValueError naming the variable when unusable."""
    raw = os.environ.get(LOCK_TIMEOUT, "").strip()
    if not raw:
        return DEFAULT_LOCK_TIMEOUT_SECONDS
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise ValueError(f"{LOCK_TIMEOUT} must be a number of seconds >= 0 (e.g. 300), got {raw!r}")
    return value


def open_warehouse(
    path: str | os.PathLike[str],
    *,
    read_only: bool = False,
    timeout_seconds: float = DEFAULT_LOCK_TIMEOUT_SECONDS,
    config: Mapping[str, object] | None = None,
    on_wait: Callable[[str], None] | None = None,
) -> duckdb.DuckDBPyConnection:
    """`duckdb.connect`, retried with exponential backoff (0.1 s doubling to 5 s) while the file is locked.

    DuckDB lets one process open a file for writing, and no other process may open it meanwhile, not
    even read-only; a read-only session elsewhere blocks every writer. Up to `timeout_seconds` this
    waits (calling `on_wait` once with a message naming the holder), then raises WarehouseLocked naming
    the process DuckDB says holds the lock. Other errors are raised at once.
    """
    deadline = time.monotonic() + timeout_seconds
    delay = 0.1
    told = False
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only, config=dict(config or {}))
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise
            holder = lock_holder(exc) or "another process"
            left = deadline - time.monotonic()
            if left <= 0:
                why = (
                    "a process that writes the file (a Dagster run of the loop) keeps every other process out "
                    "until its step ends: try again when the run's current step has finished"
                    if read_only
                    else "a process that has the file open, even read-only (a notebook, the duckdb CLI, a BI "
                    "tool), keeps every writer out: close that session (or give it a copy of the file) and "
                    f"re-run; {LOCK_TIMEOUT} sets how long a run waits"
                )
                raise WarehouseLocked(
                    f"cannot open the warehouse {path}{' read-only' if read_only else ' for writing'}: {holder} "
                    f"has held its lock for more than {timeout_seconds:g} s. DuckDB lets one process at a time "
                    f"open a database file for writing; {why}. DuckDB said: {exc}"
                ) from exc
            if on_wait is not None and not told:
                on_wait(f"the warehouse {path} is locked by {holder}; waiting up to {timeout_seconds:g} s for it")
                told = True
            time.sleep(min(delay, left))
            delay = min(delay * 2, 5.0)


def pause_point(*stages: str) -> None:
    """Test-only crash hook, inert unless the environment variable EVAL_LOOP_PAUSE_AT names one of `stages`.

    Then it writes the stage and this process's id to the file EVAL_LOOP_PAUSE_MARKER and sleeps, so a
    crash-safety test knows the run is at that moment and can SIGKILL it there. Stages: `<asset>` and
    `<asset>:<day>` inside `replace_partitions`, after the partition's rows are written and before the
    transaction commits; `failure_clusters:embedded`, after new embeddings are cached.
    """
    wanted = os.environ.get(PAUSE_AT)
    if not wanted or wanted not in stages:
        return
    Path(os.environ.get(PAUSE_MARKER, "eval-loop-paused")).write_text(f"{wanted} {os.getpid()}\n")
    time.sleep(3600)


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create every contract table that does not exist yet, and add columns the contract has gained.

    A warehouse written by an earlier version keeps its rows; new columns arrive as nulls.
    """
    existing: dict[str, set[str]] = {}
    columns = con.execute(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_catalog = current_database()"
    ).fetchall()
    for table, column in columns:
        existing.setdefault(table, set()).add(column)
    if all(table in existing and set(TABLES[table]) <= existing[table] for table in TABLES):
        return
    lake = is_lake(con)  # a lake has no PRIMARY KEY: its keyed tables are written with MERGE instead
    for table in TABLES:
        con.register("_template", empty(table).to_arrow())
        try:
            if table in TABLE_KEYS and table not in existing and not lake:
                types = con.execute("SELECT column_name, column_type FROM (DESCRIBE _template)").fetchall()
                columns = ", ".join(f'"{name}" {kind}' for name, kind in types)
                con.execute(f"CREATE TABLE {table} ({columns}, PRIMARY KEY ({', '.join(TABLE_KEYS[table])}))")
                continue
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


def _arrow(frame: pl.DataFrame) -> object:
    """The frame as Arrow without copying its strings: Polars' string views as they are (the default
    export converts every string column to Arrow's older layout, a copy of the whole day: +1.7 GiB while
    writing a million traces)."""
    return frame.to_arrow(compat_level=pl.CompatLevel.newest())


def _in_partitions(rows: pl.DataFrame, column: str, days: list[date], undated: list[str]) -> pl.Expr:
    """Rows of the days being written, or of no day from one of the `undated` files."""
    in_days = pl.col(column).is_in(days)
    if undated and "source_file" in rows.columns:
        in_days = in_days.fill_null(pl.col("source_file").is_in(undated))
    return in_days.fill_null(False)


def replace_partitions(
    con: duckdb.DuckDBPyConnection,
    asset: str,
    days: Iterable[date],
    frames: Mapping[str, pl.DataFrame],
    run_id: str,
    upserts: Mapping[str, pl.DataFrame] | None = None,
    on_retry: Callable[[str], None] | None = None,
    undated_files: Iterable[str] = (),
) -> dict[str, int]:
    """Replace the given days of each table with the rows in its frame, in one transaction.

    `frames` maps table name to the new rows of those days; rows outside `days` are a bug. `upserts`
    maps keyed tables to rows that replace the rows with the same key, in the same transaction.
    `undated_files`: source files whose rows of no day (a null partition column: a file none of whose
    records has a day) are replaced too, by the frames' rows of no day; a day's replace never touches them.
    Returns rows written per table. On a lake, a transaction that loses to a concurrent commit on the
    same table (another partition of it) is rolled back and run again whole (`retry_on_conflict`).
    """
    days = sorted(set(days))
    undated = sorted(set(undated_files))
    ensure_tables(con)
    checked = {}
    for table, frame in frames.items():
        rows = conform(table, frame)
        stray = rows.filter(~_in_partitions(rows, PARTITION_COLUMN[table], days, undated))
        if stray.height:
            raise ValueError(f"{table}: {stray.height} rows outside the partitions being written")
        checked[table] = rows
    lake = is_lake(con)
    return retry_on_conflict(
        lambda: _replace_once(con, asset, days, checked, run_id, upserts or {}, lake, undated), on_retry=on_retry
    )


def _replace_once(
    con: duckdb.DuckDBPyConnection,
    asset: str,
    days: list[date],
    frames: Mapping[str, pl.DataFrame],
    run_id: str,
    upserts: Mapping[str, pl.DataFrame],
    lake: bool,
    undated: list[str],
) -> dict[str, int]:
    """One attempt of `replace_partitions`: the whole transaction, committed or rolled back."""
    written: dict[str, int] = {}
    con.execute("BEGIN TRANSACTION")
    try:
        for table, rows in frames.items():
            column = PARTITION_COLUMN[table]
            con.execute(f"DELETE FROM {table} WHERE {column} IN (SELECT unnest(?::DATE[]))", [days])
            if undated:
                con.execute(
                    f"DELETE FROM {table} WHERE {column} IS NULL AND source_file IN (SELECT unnest(?::VARCHAR[]))",
                    [undated],
                )
            if rows.height:
                con.register("_rows", _arrow(rows))
                con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _rows")
                con.unregister("_rows")
            written[table] = rows.height
        for table, frame in upserts.items():
            if frame.height:
                con.register("_rows", _arrow(conform(table, frame)))
                con.execute(_keyed_insert_sql(table, lake=lake, replace=True))
                con.unregister("_rows")
            written[table] = frame.height
        now = datetime.now(UTC)
        con.execute("DELETE FROM partition_log WHERE asset = ? AND day IN (SELECT unnest(?::DATE[]))", [asset, days])
        primary = next(iter(frames.values()), None)
        primary_column = PARTITION_COLUMN[next(iter(frames))] if frames else "day"
        for day in days:
            n = 0 if primary is None else primary.filter(pl.col(primary_column) == day).height
            con.execute("INSERT INTO partition_log VALUES (?, ?, ?, ?, ?)", [asset, day, run_id, n, now])
        pause_point(asset, *(f"{asset}:{day}" for day in days))
        con.execute("COMMIT")
    except BaseException:
        _rollback(con)
        raise
    return written


def _keyed_insert_sql(table: str, *, lake: bool, replace: bool) -> str:
    """Insert of the registered `_rows` into keyed `table` where an existing key is updated (`replace`) or
    kept as it is: INSERT OR REPLACE / OR IGNORE on a file; on a lake (no PRIMARY KEY) a MERGE taking one
    row per key from `_rows`."""
    if not lake:
        return f"INSERT OR {'REPLACE' if replace else 'IGNORE'} INTO {table} BY NAME SELECT * FROM _rows"
    keys = TABLE_KEYS[table]
    on = " AND ".join(f't."{k}" IS NOT DISTINCT FROM s."{k}"' for k in keys)
    source = f"SELECT * FROM _rows QUALIFY row_number() OVER (PARTITION BY {', '.join(keys)}) = 1"
    matched = "WHEN MATCHED THEN UPDATE " if replace else ""
    return f"MERGE INTO {table} t USING ({source}) s ON ({on}) {matched}WHEN NOT MATCHED THEN INSERT BY NAME"


def append_rows(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame) -> int:
    """Append rows to an unpartitioned keyed table; rows whose key is already there are ignored."""
    ensure_tables(con)
    if frame.height == 0:
        return 0
    con.register("_rows", _arrow(conform(table, frame)))
    try:
        lake = is_lake(con)  # two writers may both add a key here: readers keep one row per key
        sql = _keyed_insert_sql(table, lake=lake, replace=False)
        # only a lake has conflicts: on a file retries=0 is the one attempt
        retry_on_conflict(lambda: con.execute(sql), retries=CONFLICT_RETRIES if lake else 0)
    finally:
        con.unregister("_rows")
    return frame.height


def query(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> pl.DataFrame:
    return con.execute(sql, params or []).pl()


def rows_for_keys(
    con: duckdb.DuckDBPyConnection, table: str, keys: pl.DataFrame, columns: list[str] | None = None, **equal: object
) -> pl.DataFrame:
    """`columns` (default all) of the rows of `table` matching a row of `keys` on its columns and whose
    `equal` columns hold the given values: a cache lookup of many keys in one query.

    On a lake two writers may have stored one key twice (no PRIMARY KEY there): one row per key is kept.
    """
    ensure_tables(con)
    selected = ", ".join(f"c.{c}" for c in columns) if columns else "c.*"
    where = " AND ".join(f"c.{c} = ?" for c in equal) or "TRUE"
    one_per_key = ""
    if table in TABLE_KEYS and is_lake(con):
        one_per_key = f" QUALIFY row_number() OVER (PARTITION BY {', '.join(f'c.{k}' for k in TABLE_KEYS[table])}) = 1"
    con.register("_wanted", keys.unique().to_arrow())
    try:
        return con.execute(
            f"SELECT {selected} FROM {table} c JOIN _wanted USING ({', '.join(keys.columns)}) WHERE {where}"
            + one_per_key,
            list(equal.values()),
        ).pl()
    finally:
        con.unregister("_wanted")


def read_partitions(
    con: duckdb.DuckDBPyConnection,
    table: str,
    days: Iterable[date],
    *,
    trace_ids: Iterable[str] | None = None,
    where: str | None = None,
    columns: Iterable[str] | None = None,
) -> pl.DataFrame:
    """Rows of the given days, typed as the contract says (empty frame when the table is new).

    `trace_ids` keeps only those traces' rows and `where` (SQL written in this code base, never user
    input) only the rows it holds for: a step that needs the failures or a few cases of a day of a
    million traces reads just those, so its memory follows what it uses, not the day's traffic.
    `columns` reads only those columns (typed as the contract says).
    """
    ensure_tables(con)
    column = PARTITION_COLUMN[table]
    wanted = list(columns) if columns is not None else None
    selected = ", ".join(f'"{c}"' for c in wanted) if wanted else "*"
    sql = f"SELECT {selected} FROM {table} WHERE {column} IN (SELECT unnest(?::DATE[]))"
    params: list[Any] = [sorted(set(days))]
    if trace_ids is not None:
        sql += " AND trace_id IN (SELECT unnest(?::VARCHAR[]))"
        params.append(sorted(set(trace_ids)))
    if where is not None:
        sql += f" AND ({where})"
    frame = con.execute(sql, params).pl()
    if wanted:
        types = TABLES[table]
        return frame.select([pl.col(c).cast(types[c][0]) for c in wanted])
    return conform(table, frame) if frame.height else empty(table)


def logged_days(con: duckdb.DuckDBPyConnection, asset: str) -> set[date]:
    ensure_tables(con)
    return {r[0] for r in con.execute("SELECT day FROM partition_log WHERE asset = ?", [asset]).fetchall()}


def connect(
    path: str | os.PathLike[str] | None = None,
    read_only: bool = False,
    timeout_seconds: float = CLI_LOCK_TIMEOUT_SECONDS,
) -> duckdb.DuckDBPyConnection:
    """A connection for the command line (the Dagster layer uses its DuckDB resource).

    While a run is writing the file, this waits up to `timeout_seconds` for it, then says who holds it.
    """
    if os.environ.get(DUCKLAKE_CATALOG) and path is None:  # a lake has no lock to wait for
        return lake_cursor(os.environ[DUCKLAKE_CATALOG])
    target = Path(path or warehouse_path())
    if read_only and not target.exists():
        raise FileNotFoundError(f"no warehouse at {target}: run `make run` (or set EVAL_LOOP_WAREHOUSE)")
    target.parent.mkdir(parents=True, exist_ok=True)
    return open_warehouse(target, read_only=read_only, timeout_seconds=timeout_seconds)
