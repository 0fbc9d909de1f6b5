"""The DuckLake warehouse's two chores, as a command: create it once, and clean it up now and then.

    python -m loop_assets.scale.lake init         # once, before the first run (idempotent)
    python -m loop_assets.scale.lake maintain     # e.g. nightly: expire old snapshots, delete unused files

Both read EVAL_LOOP_DUCKLAKE_CATALOG (libpq connection string of the catalog database) and `init` also
EVAL_LOOP_DUCKLAKE_DATA (where the Parquet files go). Creating the catalog is a separate step because two
processes that create one at once race; every run only attaches to it.

Every replace of a partition writes new Parquet files and leaves the old ones to the snapshots that still
see them; `maintain` expires snapshots older than `--keep` (default 7 days: time travel within a week
still works), deletes the files no snapshot needs any more, and the orphans a writer killed mid-commit
left behind (files no snapshot ever listed, older than `--keep` so an ongoing commit's are spared).
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import timedelta

import duckdb

from loop_assets.warehouse import DUCKLAKE_CATALOG, DUCKLAKE_DATA, LAKE, create_lake, open_lake


def maintain(con: duckdb.DuckDBPyConnection, keep: timedelta) -> dict[str, int]:
    """Expire snapshots older than `keep`, then delete the files they alone used and orphaned files older
    than `keep`. Returns counts of each."""
    older = f"now() - INTERVAL '{int(keep.total_seconds())} seconds'"
    # fetchall, not count(*): a call whose columns nobody reads may be optimised into doing nothing
    expired = con.execute(f"SELECT * FROM ducklake_expire_snapshots('{LAKE}', older_than => {older})").fetchall()
    # files of expired snapshots only: no snapshot a reader could still ask for lists them
    cleaned = con.execute(f"SELECT * FROM ducklake_cleanup_old_files('{LAKE}', cleanup_all => true)").fetchall()
    orphans = con.execute(f"SELECT * FROM ducklake_delete_orphaned_files('{LAKE}', older_than => {older})").fetchall()
    return {"snapshots_expired": len(expired), "old_files_deleted": len(cleaned), "orphan_files_deleted": len(orphans)}


def _required(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise SystemExit(f"{name} is not set: see README, 'Running on a cluster'")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loop_assets.scale.lake", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("init", help="create the lake and the contract's tables (once; safe to repeat)")
    upkeep = commands.add_parser("maintain", help="expire old snapshots, delete unused and orphaned files")
    upkeep.add_argument("--keep", type=float, default=7.0, help="days of history to keep (default 7)")
    args = parser.parse_args(argv)
    catalog = _required(DUCKLAKE_CATALOG)
    if args.command == "init":
        create_lake(catalog, _required(DUCKLAKE_DATA))
        print(f"DuckLake ready in {catalog}")
        return 0
    with open_lake(catalog) as con:
        print(maintain(con, timedelta(days=args.keep)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
