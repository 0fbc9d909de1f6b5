from datetime import date

import duckdb
import polars as pl
import pytest

from loop_assets.tables import TABLES, empty
from loop_assets.warehouse import ensure_tables, logged_days, read_partitions, replace_partitions

D1, D2 = date(2026, 11, 16), date(2026, 11, 17)


def rows(day: date, ids: list[str]) -> pl.DataFrame:
    frame = empty("scored_traces")
    data = {c: [None] * len(ids) for c in frame.columns} | {"trace_id": ids, "day": [day] * len(ids)}
    data |= {"failure_signals": [[]] * len(ids), "is_failure": [False] * len(ids)}
    return pl.DataFrame(data, schema=frame.schema)


def test_replacing_a_partition_touches_only_that_partition_and_logs_it(tmp_path):
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        replace_partitions(
            con, "scored_traces", [D1, D2], {"scored_traces": pl.concat([rows(D1, ["a", "b"]), rows(D2, ["c"])])}, "r1"
        )
        replace_partitions(con, "scored_traces", [D1], {"scored_traces": rows(D1, ["a"])}, "r2")
        replace_partitions(con, "scored_traces", [D1], {"scored_traces": rows(D1, ["a"])}, "r3")
        assert read_partitions(con, "scored_traces", [D1])["trace_id"].to_list() == ["a"]
        assert read_partitions(con, "scored_traces", [D2])["trace_id"].to_list() == ["c"]
        assert logged_days(con, "scored_traces") == {D1, D2}
        assert con.execute("SELECT run_id FROM partition_log WHERE day = ?", [D1]).fetchall() == [("r3",)]


def test_a_failed_write_leaves_the_old_partition_whole(tmp_path):
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        replace_partitions(con, "scored_traces", [D1], {"scored_traces": rows(D1, ["a", "b"])}, "r1")
        with pytest.raises(ValueError, match="outside the partitions"):
            replace_partitions(con, "scored_traces", [D1], {"scored_traces": rows(D2, ["x"])}, "r2")
        assert sorted(read_partitions(con, "scored_traces", [D1])["trace_id"]) == ["a", "b"]


def test_an_older_warehouse_gains_new_columns_and_keeps_its_rows(tmp_path):
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        con.execute("CREATE TABLE scored_traces (trace_id VARCHAR, day DATE)")
        con.execute("INSERT INTO scored_traces VALUES ('old', ?)", [D1])
        ensure_tables(con)
        columns = [r[0] for r in con.execute("SELECT column_name FROM (DESCRIBE scored_traces)").fetchall()]
        assert set(columns) == set(TABLES["scored_traces"])
        assert read_partitions(con, "scored_traces", [D1])["trace_id"].to_list() == ["old"]
        replace_partitions(con, "scored_traces", [D2], {"scored_traces": rows(D2, ["new"])}, "r")
        assert read_partitions(con, "scored_traces", [D2])["trace_id"].to_list() == ["new"]


def test_a_step_reads_only_the_rows_and_columns_it_needs(tmp_path):
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        frame = rows(D1, ["a", "b", "c"]).with_columns(is_failure=pl.Series([True, False, True]))
        replace_partitions(con, "scored_traces", [D1], {"scored_traces": frame}, "r1")
        assert read_partitions(con, "scored_traces", [D1], where="is_failure")["trace_id"].sort().to_list() == [
            "a",
            "c",
        ]
        assert read_partitions(con, "scored_traces", [D1], trace_ids=["b", "zz"])["trace_id"].to_list() == ["b"]
        narrow = read_partitions(con, "scored_traces", [D1], columns=["trace_id", "day"], trace_ids=pl.Series(["c"]))
        assert narrow.columns == ["trace_id", "day"] and narrow.schema["day"] == pl.Date and narrow.height == 1
        assert read_partitions(con, "scored_traces", [D2], columns=["trace_id"]).columns == ["trace_id"]


def test_ingested_files_rows_are_replaced_by_key_in_the_partition_s_transaction(tmp_path):
    from datetime import UTC, datetime

    from loop_assets.tables import schema

    def files(size: int) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "source_file": ["a.jsonl"],
                "file_size": [size],
                "file_mtime": [datetime(2026, 11, 16, tzinfo=UTC)],
                "days": [[D1]],
                "fingerprint": ["f"],
                "ingest_run_id": ["r"],
                "read_order": [1],
            },
            schema=schema("ingested_files"),
        )

    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        replace_partitions(
            con, "scored_traces", [D1], {"scored_traces": rows(D1, ["a"])}, "r1", {"ingested_files": files(1)}
        )
        replace_partitions(
            con, "scored_traces", [D1], {"scored_traces": rows(D1, ["a"])}, "r2", {"ingested_files": files(2)}
        )
        assert con.execute("SELECT file_size FROM ingested_files").fetchall() == [(2,)]
        with pytest.raises(ValueError, match="outside the partitions"):
            replace_partitions(
                con, "scored_traces", [D1], {"scored_traces": rows(D2, ["x"])}, "r3", {"ingested_files": files(3)}
            )
        assert con.execute("SELECT file_size FROM ingested_files").fetchall() == [(2,)]  # failed: unchanged
