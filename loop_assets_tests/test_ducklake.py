"""The DuckLake backend against a real Postgres catalog (a private server started here, stopped by PID).

The same functions and the same assets as on the DuckDB file: partitions replaced whole with their log
row, keyed tables written with MERGE and read one row per key, two processes writing different
partitions of one table at once (a lost commit is retried whole), the loop's suite equal to the file's,
a catalog that must be created first, and orphaned files cleaned up.
"""

from __future__ import annotations

import multiprocessing
import os
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from loop_assets.definitions import daily_assets
from loop_assets.defs.resources import Warehouse
from loop_assets.scale.lake import maintain
from loop_assets.tables import empty, schema
from loop_assets.warehouse import (
    LakeNotCreated,
    append_rows,
    create_lake,
    logged_days,
    open_lake,
    read_partitions,
    replace_partitions,
    rows_for_keys,
)
from loop_assets_tests.loop_runner import DAYS, checks, new_loop
from loop_assets_tests.services import Postgres, require_services

D1, D2, D3 = date(2026, 11, 16), date(2026, 11, 17), date(2026, 11, 18)


@pytest.fixture(scope="module")
def postgres(tmp_path_factory):
    require_services()
    server = Postgres(tmp_path_factory.mktemp("postgres")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def lake(postgres: Postgres, tmp_path: Path) -> str:
    """A new, created lake: its catalog connection string (the data under tmp_path/lake)."""
    catalog = postgres.create_database(f"lake_{uuid.uuid4().hex[:12]}")
    create_lake(catalog, str(tmp_path / "lake"))
    return catalog


def scored(day: date, ids: list[str]) -> pl.DataFrame:
    frame = empty("scored_traces")
    data = {c: [None] * len(ids) for c in frame.columns} | {"trace_id": ids, "day": [day] * len(ids)}
    data |= {"failure_signals": [[]] * len(ids), "is_failure": [False] * len(ids)}
    return pl.DataFrame(data, schema=frame.schema)


def embeddings(hashes: list[str], value: float) -> pl.DataFrame:
    """embedding_cache rows of model "m" (other columns null)."""
    columns = schema("embedding_cache")
    values = {"model": ["m"] * len(hashes), "text_hash": hashes, "embedding": [[value, 0.0]] * len(hashes)}
    return pl.DataFrame({c: values.get(c, [None] * len(hashes)) for c in columns}, schema=columns)


def ingested(size: int) -> pl.DataFrame:
    """An ingested_files row of a.jsonl with the given size (other columns null)."""
    columns = schema("ingested_files")
    values = {"source_file": ["a.jsonl"], "file_size": [size], "days": [[D1]], "fingerprint": ["f"]}
    return pl.DataFrame({c: values.get(c, [None]) for c in columns}, schema=columns)


def test_a_lake_replaces_partitions_with_their_log_row_and_keeps_one_row_per_cache_key(lake):
    with open_lake(lake) as con:
        both = pl.concat([scored(D1, ["a", "b"]), scored(D2, ["c"])])
        replace_partitions(
            con, "scored_traces", [D1, D2], {"scored_traces": both}, "r1", {"ingested_files": ingested(1)}
        )
        replace_partitions(con, "scored_traces", [D1], {"scored_traces": scored(D1, ["a"])}, "r2",
                           {"ingested_files": ingested(2)})  # fmt: skip
        assert read_partitions(con, "scored_traces", [D1])["trace_id"].to_list() == ["a"]
        assert read_partitions(con, "scored_traces", [D2])["trace_id"].to_list() == ["c"]
        assert logged_days(con, "scored_traces") == {D1, D2}
        assert con.execute("SELECT run_id FROM partition_log WHERE day = ?", [D1]).fetchall() == [("r2",)]
        assert con.execute("SELECT file_size FROM ingested_files").fetchall() == [(2,)]  # replaced by key
        with pytest.raises(ValueError, match="outside the partitions"):
            replace_partitions(con, "scored_traces", [D1], {"scored_traces": scored(D2, ["x"])}, "r3")
        assert read_partitions(con, "scored_traces", [D1])["trace_id"].to_list() == ["a"]

        append_rows(con, "embedding_cache", embeddings(["h1", "h2", "h2"], 1.0))
        append_rows(con, "embedding_cache", embeddings(["h2", "h3"], 2.0))  # h2 is kept as first stored
        stored = con.execute("SELECT text_hash, embedding[1] FROM embedding_cache ORDER BY text_hash").fetchall()
        assert stored == [("h1", 1.0), ("h2", 1.0), ("h3", 2.0)]
        # what two writers adding one key at once leave (a lake has no PRIMARY KEY): readers still see one row
        con.execute(
            "INSERT INTO embedding_cache BY NAME SELECT 'm' AS model, 'h1' AS text_hash, [1.0, 0.0] AS embedding"
        )
        found = rows_for_keys(con, "embedding_cache", pl.DataFrame({"text_hash": ["h1", "h3", "nope"]}), model="m")
        assert sorted(found["text_hash"]) == ["h1", "h3"]


def _write_day(catalog: str, day: date, writes: int, shared_hashes: list[str], out: str) -> None:
    """One writer process: replace its own day `writes` times and add cache keys the other adds too."""
    retries: list[str] = []
    with open_lake(catalog) as con:
        for i in range(writes):
            rows = scored(day, [f"{day}-{i}-{j}" for j in range(500)])
            replace_partitions(
                con, "scored_traces", [day], {"scored_traces": rows}, f"{day}-{i}", on_retry=retries.append
            )
            append_rows(con, "embedding_cache", embeddings(shared_hashes, float(i)))
    Path(out).write_text(str(len(retries)))


def test_two_processes_writing_different_partitions_at_once_both_land_whole(lake, tmp_path):
    with open_lake(lake) as con:
        replace_partitions(con, "scored_traces", [D3], {"scored_traces": scored(D3, ["kept"])}, "before")
    spawn = multiprocessing.get_context("spawn")
    writes, shared = 5, [f"h{i}" for i in range(20)]
    writers = [
        spawn.Process(target=_write_day, args=(lake, day, writes, shared, str(tmp_path / f"{day}.retries")))
        for day in (D1, D2)
    ]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=120)
    assert [w.exitcode for w in writers] == [0, 0]
    with open_lake(lake) as con:
        for day in (D1, D2):
            ids = read_partitions(con, "scored_traces", [day])["trace_id"]
            assert ids.len() == 500 and ids.n_unique() == 500
            assert set(ids.str.slice(0, 13)) == {f"{day}-{writes - 1}-"}  # the last write, whole, once
        assert read_partitions(con, "scored_traces", [D3])["trace_id"].to_list() == ["kept"]
        log = con.execute("SELECT day, run_id FROM partition_log ORDER BY day").fetchall()
        assert log == [(D1, f"{D1}-{writes - 1}"), (D2, f"{D2}-{writes - 1}"), (D3, "before")]
        found = rows_for_keys(con, "embedding_cache", pl.DataFrame({"text_hash": shared}), model="m")
        assert sorted(found["text_hash"]) == sorted(shared)


def test_a_catalog_without_a_lake_is_refused_with_the_command_that_creates_it(postgres):
    catalog = postgres.create_database(f"empty_{uuid.uuid4().hex[:12]}")
    with pytest.raises(LakeNotCreated, match=r"loop_assets\.scale\.lake init"):
        open_lake(catalog)


def test_maintain_deletes_files_no_snapshot_needs_and_orphans_and_keeps_the_tables(lake, tmp_path):
    with open_lake(lake) as con:
        for i in range(3):  # enough rows to be written as Parquet, not inlined in the catalog
            frames = {"scored_traces": scored(D1, [f"{i}-{j}" for j in range(2000)])}
            replace_partitions(con, "scored_traces", [D1], frames, str(i))
    data = tmp_path / "lake"
    parquet = sorted(data.rglob("*.parquet"))
    assert len(parquet) >= 3
    orphan = parquet[0].parent / "ducklake-killed-writer.parquet"  # what a writer killed before its commit leaves
    orphan.write_bytes(parquet[0].read_bytes())
    hour_ago = time.time() - 3600
    os.utime(orphan, (hour_ago, hour_ago))
    with open_lake(lake) as con:
        time.sleep(1.1)  # every snapshot is now older than `keep`
        done = maintain(con, keep=timedelta(seconds=1))
        assert done["snapshots_expired"] >= 2 and done["old_files_deleted"] >= 2 and done["orphan_files_deleted"] >= 1
        assert not orphan.exists()
        ids = read_partitions(con, "scored_traces", [D1])["trace_id"]
        assert ids.len() == 2000 and ids.str.starts_with("2-").all()


DECISIONS = "SELECT candidate_id, app, decision FROM graded_candidates ORDER BY candidate_id"
CASES = "SELECT case_id, app, day, label, input_text FROM eval_suite ORDER BY case_id"


@pytest.mark.slow
def test_the_loop_s_assets_build_the_same_suite_on_a_lake_as_on_the_file(lake, tmp_path, traffic, in_order):
    file_loop, _ = in_order
    loop = new_loop(tmp_path / "loop", traffic)
    resources = loop.resources() | {"warehouse": Warehouse(database="unused.duckdb", ducklake_catalog=lake)}
    for day in DAYS:
        result = dg.materialize(daily_assets, partition_key=str(day), resources=resources, instance=loop.instance)
        assert result.success and checks(result) and all(checks(result).values()), checks(result)
    assert not loop.warehouse.exists() and not Path("unused.duckdb").exists()
    with open_lake(lake) as con:
        cases, decisions = con.execute(CASES).pl(), con.execute(DECISIONS).pl()
        assert (
            con.execute("SELECT count(*) FROM raw_traces").fetchone()
            == file_loop.table("SELECT count(*) n FROM raw_traces").rows()[0]
        )
    assert cases.height > 0
    assert cases.equals(file_loop.table(CASES))
    assert decisions.equals(file_loop.table(DECISIONS))
