"""Issue 16, "nothing lost, nothing leaked, round two": each finding reproduced on real files, a real DuckDB
file and real Dagster runs, and what holds now."""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from loop_assets import cli
from loop_assets.capture.formats.jsonl import decode_line, read_records
from loop_assets.capture.incoming import scan_incoming
from loop_assets.capture.ingest import ingest, list_trace_files
from loop_assets.config import IngestConfig
from loop_assets.defs.resources import LoopSettings
from loop_assets.defs.sensors import new_trace_files
from loop_assets.defs.stale_runs import holders
from loop_assets_tests.loop_runner import checks, new_loop
from loop_assets_tests.paths import ROOT

DAY = date(2026, 11, 16)
CAPTURE = ["raw_traces", "quarantined_records"]


def record(i: int, day: date = DAY, **extra) -> dict:
    return {
        "id": f"r2-{i}",
        "timestamp": f"{day}T10:{i // 60 % 60:02d}:{i % 60:02d}Z",
        "app": "support_bot",
        "request": {"messages": [{"role": "user", "content": f"question {i}"}]},
        "response": {"choices": [{"message": {"role": "assistant", "content": "answer"}, "finish_reason": "stop"}]},
        "latency_ms": 100,
        **extra,
    }


def lines(records: list[dict]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def set_day(path: Path, day: date, hour: int = 12) -> None:
    stamp = datetime(day.year, day.month, day.day, hour, tzinfo=UTC).timestamp()
    os.utime(path, (stamp, stamp), follow_symlinks=False)


@pytest.fixture
def loop(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    return new_loop(tmp_path / "loop", empty)


def tables(loop, sql: str) -> pl.DataFrame:
    return loop.table(sql)


# --- 1. a file with no day is stored by the next run under no day; a file nobody reads fails the check -----------


def test_a_large_file_without_a_readable_day_is_stored_under_no_day_by_the_next_run_of_any_day(loop):
    (loop.incoming / "good.jsonl").write_bytes(lines([record(i) for i in range(3)]))
    big = loop.incoming / "big.jsonl"
    big.write_bytes(b'{"x":"' + b"A" * (17 << 20) + b'"}\n')  # one line over 16 MiB: sampled, no day in it
    set_day(big, date(2026, 11, 20))

    # its modification day is no day of its records: `materialize` and the sensor ask for no day for it
    assert cli.days_with_data(loop.incoming) == [DAY]

    # the run of another day reads it (a new file) and stores its one record under no day: all accounted for
    result = loop.run(DAY, select=CAPTURE)
    assert checks(result)["records_accounted_for"] is True
    undated = (
        "SELECT reason_code, raw_bytes, day, partition_day FROM quarantined_records WHERE source_file = 'big.jsonl'"
    )
    assert tables(loop, undated).rows() == [("too_large", (17 << 20) + 8, None, None)]
    assert tables(loop, "SELECT count(*) FROM partition_log WHERE day = '2026-11-20'").item() == 0

    # replacing days never deletes it; a run that reads the file again replaces it, never duplicates it
    loop.run(date(2026, 11, 17), select=CAPTURE)
    assert tables(loop, undated).height == 1
    with big.open("ab") as handle:
        handle.write(b"not json either\n")
    result = loop.run(DAY, select=CAPTURE)
    assert checks(result)["records_accounted_for"] is True
    assert sorted(tables(loop, undated)["reason_code"]) == ["invalid_json", "too_large"]


def test_a_file_with_a_1980_modification_time_goes_to_no_day_not_to_1980(tmp_path):
    (tmp_path / "old.jsonl").write_bytes(b"not json\n")
    set_day(tmp_path / "old.jsonl", date(1980, 1, 1))
    result = ingest(tmp_path, IngestConfig(), "r")
    assert result.manifest["partition_day"].to_list() == [None]


def test_a_name_that_is_not_a_trace_file_fails_the_check_by_name(loop):
    (loop.incoming / "good.jsonl").write_bytes(lines([record(1)]))
    (loop.incoming / "traces.log").write_bytes(lines([record(2)]))
    result = loop.run(DAY, select=CAPTURE)
    [check] = result.get_asset_check_evaluations()
    assert check.passed is False and "traces.log" in check.metadata["not_accounted"].value


# --- 2. a file name that is not UTF-8 ----------------------------------------------------------------------------


def test_a_file_name_that_is_not_utf8_is_read_by_the_run_and_the_sensor(loop):
    name = os.fsdecode(b"bad\xff.jsonl")
    (loop.incoming / name).write_bytes(lines([record(i) for i in range(4)]))
    set_day(loop.incoming / name, DAY)
    result = loop.run(DAY, select=CAPTURE)
    assert result.success and checks(result)["records_accounted_for"] is True
    stored = tables(loop, "SELECT DISTINCT source_file FROM raw_traces")["source_file"].to_list()
    assert stored == ["bad\\xff.jsonl"]  # the byte written as \xff, as the quarantine does for bad bytes

    # the sensor knows the name as the run stored it: already read, not run again; a grown file is
    resources = {"settings": LoopSettings(incoming_dir=str(loop.incoming)), "warehouse": loop.resources()["warehouse"]}
    first = new_trace_files(dg.build_sensor_context(instance=loop.instance, resources=resources))
    assert not first.run_requests
    with (loop.incoming / name).open("ab") as handle:
        handle.write(lines([record(9)]))
    set_day(loop.incoming / name, DAY)
    context = dg.build_sensor_context(instance=loop.instance, resources=resources, cursor=first.cursor)
    [request] = new_trace_files(context).run_requests
    assert request.partition_key == str(DAY) and "bad\\xff.jsonl" in request.tags["eval_loop/files"]


# --- 4. a plain-text file named .gz ------------------------------------------------------------------------------


def test_a_plain_text_file_named_gz_is_read_as_plain_text_with_every_line(tmp_path):
    (tmp_path / "plain.jsonl.gz").write_bytes(lines([record(i) for i in range(503)]))
    (tmp_path / "real.jsonl").write_bytes(gzip.compress(lines([record(i + 1000) for i in range(7)])))
    result = ingest(tmp_path, IngestConfig(), "r")
    assert result.quarantine.height == 0
    assert result.traces.group_by("source_file").len().sort("source_file").rows() == [
        ("plain.jsonl.gz", 503),
        ("real.jsonl", 7),
    ]


# --- 5. rotated and compressed names -----------------------------------------------------------------------------


ROTATED = [
    "traces.jsonl.1",
    "traces.jsonl-20261112.gz",
    "traces.jsonl.2.gz",
    "traces.jsonl-2026111203",
    "traces.ndjson.2026-11-12",
    "traces.jsonl.gz.1",
    "traces.jsonl.3.bz2",
    "traces.jsonl-20261112.xz",
    "TRACES.JSONL.4.GZ",
]


def test_rotated_and_compressed_names_are_trace_files_and_are_read(tmp_path):
    import bz2
    import lzma

    pack = {".gz": gzip.compress, ".1": gzip.compress, ".bz2": bz2.compress, ".xz": lzma.compress}
    for i, name in enumerate(ROTATED):
        data = lines([record(10 * i + j) for j in range(2)])
        compress = next((f for suffix, f in pack.items() if (name.lower().endswith(suffix) and ".gz" in name.lower())
                         or (name.endswith((".bz2", ".xz")) and name.endswith(suffix))), None)  # fmt: skip
        (tmp_path / name).write_bytes(compress(data) if compress else data)
    (tmp_path / "notes.txt").write_text("not traces")
    assert sorted(p.name for p in list_trace_files(tmp_path)) == sorted(ROTATED)
    result = ingest(tmp_path, IngestConfig(), "r")
    assert result.quarantine.height == 0 and result.traces.height == 2 * len(ROTATED)
    assert scan_incoming(tmp_path).ignored == [("notes.txt", "not a trace file's name (.jsonl, .ndjson or .json)")]


def test_copytruncate_rotation_keeps_every_trace(loop):
    live = loop.incoming / "traces.jsonl"
    live.write_bytes(lines([record(i) for i in range(20)]))
    loop.run(DAY, select=CAPTURE)
    before = tables(loop, "SELECT trace_id FROM raw_traces ORDER BY ALL")
    # logrotate copytruncate + compress + dateext: the records move to traces.jsonl-20261117.gz
    (loop.incoming / "traces.jsonl-20261117.gz").write_bytes(gzip.compress(live.read_bytes()))
    live.write_bytes(b"")
    set_day(live, DAY)  # the emptied log is one `empty_file` record on its modification day
    result = loop.run(DAY, select=CAPTURE)
    assert checks(result)["records_accounted_for"] is True
    assert tables(loop, "SELECT trace_id FROM raw_traces ORDER BY ALL").equals(before)
    assert set(tables(loop, "SELECT source_file FROM raw_traces")["source_file"]) == {"traces.jsonl-20261117.gz"}


# --- 6. a re-delivered copy with an older modification time ----------------------------------------------------


def test_a_redelivered_copy_with_an_older_mtime_never_takes_over_lineage(loop):
    first = loop.incoming / "a.jsonl"
    first.write_bytes(lines([record(i) for i in range(5)]))
    loop.run(DAY, select=CAPTURE)
    copy = loop.incoming / "copy" / "a.jsonl"
    copy.parent.mkdir()
    shutil.copy(first, copy)
    set_day(copy, date(2025, 6, 1))  # `cp -p` of an old backup: older than the original
    loop.run(DAY, select=CAPTURE)
    assert set(tables(loop, "SELECT source_file FROM raw_traces")["source_file"]) == {"a.jsonl"}
    dups = tables(loop, "SELECT reason_code, count(*) n FROM quarantined_records GROUP BY ALL").rows()
    assert dups == [("duplicate_record", 5)]
    # the original grows (a newer mtime than the copy now): it is still the source
    with first.open("ab") as handle:
        handle.write(lines([record(99)]))
    result = loop.run(DAY, select=CAPTURE)
    assert checks(result)["records_accounted_for"] is True
    assert set(tables(loop, "SELECT source_file FROM raw_traces")["source_file"]) == {"a.jsonl"}


# --- 9. symbolic links, FIFOs, dangling links and loops ---------------------------------------------------------


def test_links_outside_the_folder_fifos_dangling_links_and_loops_are_one_row_each_and_never_opened(loop, tmp_path):
    secret = tmp_path / "outside" / "passwd.jsonl"
    secret.parent.mkdir()
    secret.write_bytes(b"root:x:0:0:root:/root:/bin/bash\n" * 25)
    inside = loop.incoming / "sub" / "real.jsonl"
    inside.parent.mkdir()
    inside.write_bytes(lines([record(i) for i in range(3)]))
    (loop.incoming / "outside.jsonl").symlink_to(secret)
    (loop.incoming / "inside.jsonl").symlink_to(inside)
    (loop.incoming / "dangling.jsonl").symlink_to(tmp_path / "nowhere.jsonl")
    (loop.incoming / "loop.jsonl").symlink_to(loop.incoming / "loop2.jsonl")
    (loop.incoming / "loop2.jsonl").symlink_to(loop.incoming / "loop.jsonl")
    os.mkfifo(loop.incoming / "pipe.jsonl")
    for name in ("outside.jsonl", "dangling.jsonl", "loop.jsonl", "loop2.jsonl", "pipe.jsonl", "inside.jsonl"):
        set_day(loop.incoming / name, DAY)

    result = loop.run(DAY, select=CAPTURE)  # a FIFO opened would block here for ever
    assert checks(result)["records_accounted_for"] is True
    refused = tables(
        loop, "SELECT source_file, reason_code, reason, raw FROM quarantined_records WHERE source_line = 0 ORDER BY 1"
    )
    assert refused["source_file"].to_list() == [
        "dangling.jsonl",
        "loop.jsonl",
        "loop2.jsonl",
        "outside.jsonl",
        "pipe.jsonl",
    ]
    assert set(refused["reason_code"]) == {"unreadable_file"} and set(refused["raw"]) == {""}
    reasons = dict(zip(refused["source_file"], refused["reason"], strict=True))
    assert "outside the incoming folder" in reasons["outside.jsonl"] and "dangling" in reasons["dangling.jsonl"]
    assert "loop" in reasons["loop.jsonl"] and "FIFO" in reasons["pipe.jsonl"]
    assert tables(loop, "SELECT count(*) n FROM quarantined_records WHERE raw LIKE 'root:%'")["n"][0] == 0
    # a link to a file inside the folder is read under its own name (a second delivery of the same records)
    assert tables(loop, "SELECT count(*) n FROM raw_traces")["n"][0] == 3
    kept = tables(loop, "SELECT count(*) n FROM quarantined_records WHERE reason_code = 'duplicate_record'")
    assert kept["n"][0] == 3


# --- 10. NaN in stored JSON, duplicated identity keys, UTF-16, the lock wait -----------------------------------


def test_nan_and_infinity_never_reach_the_stored_json(loop):
    (loop.incoming / "nan.jsonl").write_bytes(
        json.dumps(record(1, feedback={"rating": float("nan")}, metadata={"score": float("inf")})).encode()
        + b"\n"
        + json.dumps(record(2, metadata={"big": 1})).replace('"big": 1', '"big": 1e400').encode()
        + b"\n"
    )
    loop.run(DAY, select=CAPTURE)
    stored = tables(loop, "SELECT trace_id, feedback, metadata FROM raw_traces ORDER BY trace_id")
    assert stored.height == 2
    for text in [*stored["feedback"].drop_nulls(), *stored["metadata"]]:
        assert "NaN" not in text.replace('"NaN"', "") and "Infinity" not in text.replace('"Infinity"', "")
        json.loads(text, parse_constant=pytest.fail)  # strict JSON: no NaN or Infinity literal
    assert '"Infinity"' in stored["metadata"][0] and '"Infinity"' in stored["metadata"][1]


def test_an_identity_key_given_twice_with_different_values_is_quarantined_with_both_values():
    raw = b'{"id": "a", "app": "x", "id": "b", "timestamp": "2026-11-16T10:00:00Z"}'
    rec = decode_line(1, raw, len(raw), False, 1_000_000)
    assert rec.error is not None and rec.error.code == "invalid_value"
    assert "`id` ('a', 'b')" in rec.error.reason
    same = b'{"id": "a", "id": "a", "note": {"id": 1, "id": 2}}'  # same value, or nested: read as before
    assert decode_line(1, same, len(same), False, 1_000_000).ok


def test_a_utf16_file_is_quarantined_with_a_reason_that_names_the_encoding(tmp_path):
    path = tmp_path / "utf16.jsonl"
    path.write_bytes(lines([record(i) for i in range(3)]).decode().encode("utf-16"))
    records = list(read_records(path, max_record_bytes=1_000_000, keep_bytes=1000))
    assert records and all(r.error is not None and "UTF-16" in r.error.reason for r in records if r.raw_bytes > 1)


def test_a_blocked_materialize_says_what_it_waits_for_and_a_killed_runs_slot_comes_back(tmp_path, monkeypatch):
    home, incoming = tmp_path / "home", tmp_path / "incoming"
    home.mkdir()
    incoming.mkdir()
    shutil.copy(ROOT / ".dagster_home" / "dagster.yaml", home / "dagster.yaml")
    (incoming / "t.jsonl").write_bytes(lines([record(i) for i in range(3)]))
    marker = tmp_path / "paused"
    for key in [k for k in os.environ if k.startswith("EVAL_LOOP_")]:
        monkeypatch.delenv(key)
    for key, value in {"DAGSTER_HOME": str(home), "EVAL_LOOP_INCOMING": str(incoming),
                       "EVAL_LOOP_WAREHOUSE": str(tmp_path / "w.duckdb"), "HF_HUB_OFFLINE": "1",
                       "EVAL_LOOP_EXECUTOR": "in_process"}.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(ROOT)
    dagster = str(Path(sys.executable).with_name("dagster"))
    command = [dagster, "asset", "materialize", "-m", "loop_assets.definitions", "--select", ",".join(CAPTURE),
               "--partition", str(DAY)]  # fmt: skip
    # the first run stops inside raw_traces' transaction, holding the duckdb slot
    pause = {"EVAL_LOOP_PAUSE_AT": "raw_traces", "EVAL_LOOP_PAUSE_MARKER": str(marker)}
    with (tmp_path / "first.log").open("wb") as out:
        first = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                 env={**os.environ, **pause})  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert first.poll() is None and time.monotonic() < deadline, (tmp_path / "first.log").read_text()[-3000:]
            time.sleep(0.2)
        instance = dg.DagsterInstance.from_config(str(home))
        [held] = holders(instance, ["duckdb"])
        assert held.alive is True and held.status == "STARTED"

        # a second run waits for the slot and says for whom; the first is SIGKILLed; the slot comes back by itself
        said = io.StringIO()
        killer = threading.Thread(target=_kill_when_said, args=(said, first), daemon=True)
        killer.start()
        log = tmp_path / "second.log"
        with log.open("w") as handle, contextlib.redirect_stderr(said):
            code = cli._run_watched(command, handle, log, instance)
        text = said.getvalue()
        assert code == 0, text + log.read_text()[-3000:]
        assert f"waiting for a slot of the Dagster pool duckdb: held by step raw_traces of run {held.run_id}" in text
        assert "(STARTED, pid" in text and "alive)" in text
        assert f"freed the duckdb pool slot held by step raw_traces of run {held.run_id}" in text
        assert instance.get_run_by_id(held.run_id).status == dg.DagsterRunStatus.FAILURE
        assert holders(instance, ["duckdb"]) == []
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=30)


def _kill_when_said(said: io.StringIO, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while "waiting for a slot" not in said.getvalue() and time.monotonic() < deadline:
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
