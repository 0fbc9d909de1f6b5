"""CAPTURE through real Dagster runs: idempotent partitions, redelivered files, bad input kept."""

from __future__ import annotations

import gzip
import json
import os
import shutil
from datetime import UTC, datetime

import pytest

from loop_assets_tests.loop_runner import DAYS, checks, metadata, new_loop

CAPTURE = {"raw_traces", "scored_traces"}
RUN_COLUMN = {"raw_traces": "ingest_run_id", "quarantined_records": "ingest_run_id", "scored_traces": "scored_run_id"}


def content(table: str) -> str:
    """Everything but the run that wrote it."""
    return f"SELECT * EXCLUDE ({RUN_COLUMN[table]}) FROM {table} ORDER BY ALL"


@pytest.fixture
def loop(tmp_path, traffic):
    return new_loop(tmp_path, traffic)


def good_record(i: int, day: str) -> dict:
    return {
        "id": f"bad-file-{i}",
        "timestamp": f"{day}T10:{i // 60:02d}:{i % 60:02d}Z",
        "app": "support_bot",
        "request": {"messages": [{"role": "user", "content": f"question {i}"}]},
        "response": {"choices": [{"message": {"role": "assistant", "content": "answer"}, "finish_reason": "stop"}]},
        "latency_ms": 100,
    }


def test_rematerialising_a_partition_gives_the_same_rows_never_duplicates(loop):
    loop.run(DAYS[0], select=CAPTURE)
    first = {t: loop.table(content(t)) for t in RUN_COLUMN}
    result = loop.run(DAYS[0], select=CAPTURE)
    assert result.success and all(checks(result).values())
    for table, rows in first.items():
        assert loop.table(content(table)).equals(rows), table
    assert loop.table("SELECT count(*) - count(DISTINCT trace_id) AS dups FROM raw_traces")["dups"][0] == 0


def test_a_file_delivered_twice_adds_no_trace_and_every_line_is_accounted_for(loop):
    loop.run(DAYS[0], select=CAPTURE)
    before = loop.table("SELECT count(*) n FROM raw_traces")["n"][0]
    original = sorted(loop.incoming.glob("*.jsonl"))[0]
    (loop.incoming / "redelivered").mkdir()
    shutil.copy(original, loop.incoming / "redelivered" / original.name)
    result = loop.run(DAYS[0], select=CAPTURE)
    assert loop.table("SELECT count(*) n FROM raw_traces")["n"][0] == before
    dups = loop.table(
        "SELECT reason_code, reason FROM quarantined_records WHERE source_file LIKE 'redelivered/%' "
        "AND reason_code = 'duplicate_record'"
    )
    assert dups.height > 0 and original.name in dups["reason"][0]
    assert checks(result)["records_accounted_for"] is True


def test_bad_files_are_quarantined_with_reasons_and_the_run_completes(loop):
    day = str(DAYS[0])
    lines = [json.dumps(good_record(1, day)), "{not json", json.dumps(good_record(2, day))[:40]]
    lines.append(json.dumps(good_record(3, day) | {"latency_ms": "slow"}))
    lines.append(json.dumps(good_record(4, day) | {"request": {"messages": "hello"}}))
    lines.append(json.dumps({k: v for k, v in good_record(5, day).items() if k != "timestamp"}))
    lines.append(json.dumps(good_record(6, day) | {"padding": "x" * 10_500_000}))
    (loop.incoming / "mixed.jsonl").write_text("\n".join(lines) + "\n")
    (loop.incoming / "latin1.jsonl").write_bytes(json.dumps(good_record(7, day)).encode()[:-2] + b'\xe9"}\n')
    (loop.incoming / "empty.jsonl").write_bytes(b"")
    records = [good_record(8 + i, day) | {"metadata": {"nonce": os.urandom(16).hex()}} for i in range(400)]
    payload = gzip.compress(("\n".join(json.dumps(r) for r in records) + "\n").encode())
    (loop.incoming / "cut.jsonl.gz").write_bytes(payload[: len(payload) * 2 // 3])

    # records without a readable day go to the partition of their file's day (its modification time)
    noon = datetime(DAYS[0].year, DAYS[0].month, DAYS[0].day, 12, tzinfo=UTC).timestamp()
    for name in ("mixed.jsonl", "latin1.jsonl", "empty.jsonl", "cut.jsonl.gz"):
        os.utime(loop.incoming / name, (noon, noon))

    result = loop.run(DAYS[0], select=CAPTURE)
    assert result.success
    assert checks(result)["records_accounted_for"] is True
    quarantine = loop.table(
        "SELECT source_file, source_line, reason_code, reason, raw_truncated FROM quarantined_records "
        "WHERE source_file IN ('mixed.jsonl', 'latin1.jsonl', 'empty.jsonl', 'cut.jsonl.gz') ORDER BY ALL"
    )
    codes = {(r["source_file"], r["source_line"]): r["reason_code"] for r in quarantine.iter_rows(named=True)}
    assert codes[("mixed.jsonl", 2)] == "invalid_json"
    assert codes[("mixed.jsonl", 3)] == "invalid_json"
    assert codes[("mixed.jsonl", 4)] == "wrong_type"
    assert codes[("mixed.jsonl", 5)] == "wrong_type"
    assert codes[("mixed.jsonl", 6)] == "missing_field"
    assert codes[("mixed.jsonl", 7)] == "too_large"
    assert codes[("latin1.jsonl", 1)] == "invalid_utf8"
    assert codes[("empty.jsonl", 0)] == "empty_file"
    assert "truncated_gzip" in {c for (f, _), c in codes.items() if f == "cut.jsonl.gz"}
    assert quarantine.filter(quarantine["reason_code"] == "too_large")["raw_truncated"][0] is True
    traces = loop.table("SELECT trace_id FROM raw_traces WHERE trace_id LIKE 'bad-file-%'")["trace_id"].to_list()
    assert "bad-file-1" in traces and "bad-file-8" in traces
    [raw_meta] = metadata(result, "quarantined_records")
    assert raw_meta["quarantined"] >= 9


def test_a_day_whose_files_did_not_change_is_left_as_it_is_and_unrelated_files_are_not_read(loop):
    capture_only = ["raw_traces", "quarantined_records"]
    first = loop.run(DAYS[0], select=capture_only)
    [meta] = metadata(first, "raw_traces")
    assert meta["run"]["files_read"] == 3 and meta["run"]["days_reused"] == 0
    before = {t: loop.table(content(t)) for t in ("raw_traces", "quarantined_records")}

    again = loop.run(DAYS[0], select=capture_only)
    [meta] = metadata(again, "raw_traces")
    assert (meta["run"]["days_reused"], meta["run"]["files_read"]) == (1, 0)
    assert meta["traces"] == before["raw_traces"].height and checks(again)["records_accounted_for"]
    for table, rows in before.items():
        assert loop.table(content(table)).equals(rows), table

    # the next day: the file of the day after it holds none of its records and is not read
    second = loop.run(DAYS[1], select=capture_only)
    [meta] = metadata(second, "raw_traces")
    assert meta["run"]["files_skipped"] >= 1 and meta["run"]["days_reused"] == 0 and meta["traces"] > 0

    # a line appended to the first day's file: the day is read again and the new trace is there
    first_file = sorted(p for p in loop.incoming.iterdir() if p.suffix == ".jsonl")[0]
    line = json.loads(first_file.read_text().splitlines()[0])
    line["id"] = "appended-later"
    with first_file.open("a") as handle:
        handle.write(json.dumps(line) + "\n")
    third = loop.run(DAYS[0], select=capture_only)
    [meta] = metadata(third, "raw_traces")
    assert meta["run"]["days_reused"] == 0 and meta["traces"] == before["raw_traces"].height + 1
    assert loop.table("SELECT count(*) AS n FROM raw_traces WHERE trace_id = 'appended-later'")["n"][0] == 1
