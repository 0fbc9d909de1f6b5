"""The sensor and the schedule, evaluated against a real Dagster instance and a real warehouse."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pytest

from loop_assets.capture.file_days import file_days
from loop_assets.capture.file_watch import MARGIN_NS, read_cursor
from loop_assets.config import IngestConfig
from loop_assets.defs import sensors
from loop_assets.defs.resources import LoopSettings, Warehouse
from loop_assets.defs.schedules import finalise_yesterday
from loop_assets.defs.sensors import DAYS_TAG, RANGE_END, RANGE_START, contiguous_ranges, new_trace_files
from loop_assets.devtools.sample_traffic import write_traffic
from loop_assets_tests.loop_runner import DAYS, checks, metadata, new_loop

HOUR_AGO = time.time() - 3600
CAPTURE = ["raw_traces", "quarantined_records"]


def tick(instance, incoming, cursor=None, warehouse=None) -> dg.SensorResult:
    warehouse = warehouse or incoming.parent / "no-warehouse-yet.duckdb"
    resources = {"settings": LoopSettings(incoming_dir=str(incoming)), "warehouse": Warehouse(database=str(warehouse))}
    return new_trace_files(dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources))


def loop_tick(loop, cursor=None) -> dg.SensorResult:
    return tick(loop.instance, loop.incoming, cursor, loop.warehouse)


def day_file(folder, day: date, name: str | None = None, per_day: int = 40):
    [path] = write_traffic(folder / "gen", days=1, per_day=per_day, seed=5, start=day)
    target = folder / (name or path.name)
    shutil.move(path, target)
    return target


def covered(request: dg.RunRequest) -> tuple[str, str]:
    """(first, last) day of a request, from the tags Dagster runs it by."""
    if request.partition_key:
        return request.partition_key, request.partition_key
    return request.tags[RANGE_START], request.tags[RANGE_END]


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        yield instance


def test_a_new_file_requests_its_days_once_with_the_days_in_a_tag(tmp_path, instance):
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    path = day_file(incoming, DAYS[0], "traces-a.jsonl")
    os.utime(path, (HOUR_AGO, HOUR_AGO))  # written long ago: complete
    first = tick(instance, incoming)
    [request] = first.run_requests
    # the file holds its day plus a few traces logged just after midnight
    assert covered(request) == (str(DAYS[0]), str(DAYS[1]))
    assert request.tags[DAYS_TAG] == f"{DAYS[0]}...{DAYS[1]}" and request.run_key
    time.sleep(MARGIN_NS / 1e9)  # past the cursor's margin: the file is then behind its mark
    again = tick(instance, incoming, first.cursor)
    assert not again.run_requests and "no new" in again.skip_reason.skip_message
    assert read_cursor(again.cursor).recent == {}  # taken, and not listed by name


def test_a_half_written_file_waits_and_a_grown_file_is_requested_again(tmp_path, instance):
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    path = day_file(incoming, DAYS[0], "traces-a.jsonl")
    os.utime(path, (HOUR_AGO, HOUR_AGO))
    done = tick(instance, incoming)
    assert done.run_requests

    lines = day_file(tmp_path, DAYS[2], "more.jsonl").read_bytes().splitlines(keepends=True)
    with path.open("ab") as handle:
        handle.writelines(lines[:10])  # the writer is still going
    waiting = tick(instance, incoming, done.cursor)
    assert not waiting.run_requests and "still being written" in waiting.skip_reason.skip_message
    with path.open("ab") as handle:
        handle.writelines(lines[10:])
    still = tick(instance, incoming, waiting.cursor)
    assert not still.run_requests
    stopped = tick(instance, incoming, still.cursor)  # unchanged since the last tick: finished
    [request] = stopped.run_requests
    assert covered(request) == (str(DAYS[0]), str(DAYS[2] + timedelta(days=1)))
    assert request.run_key != done.run_requests[0].run_key


def test_days_split_into_contiguous_ranges_oldest_first():
    d = date(2026, 11, 16)
    days = {d + timedelta(days=i) for i in (0, 1, 2, 5, 7, 8)}
    assert contiguous_ranges(days) == [
        (d, d + timedelta(days=2)),
        (d + timedelta(days=5), d + timedelta(days=5)),
        (d + timedelta(days=7), d + timedelta(days=8)),
    ]


def test_files_with_a_gap_between_their_days_start_one_run_per_range_and_no_run_for_the_gap(tmp_path, instance):
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    early = day_file(incoming, DAYS[0], "early.jsonl", per_day=20)
    late = day_file(incoming, DAYS[0] + timedelta(days=5), "late.jsonl", per_day=20)
    for path in (early, late):
        os.utime(path, (HOUR_AGO, HOUR_AGO))
    result = tick(instance, incoming)
    spans = [covered(r) for r in result.run_requests]
    wanted = file_days(early, IngestConfig()) | file_days(late, IngestConfig())
    assert spans == [(str(a), str(b)) for a, b in contiguous_ranges(wanted)] and len(spans) == 2
    assert [r.tags["eval_loop/files"] for r in result.run_requests] == ["early.jsonl", "late.jsonl"]


def test_a_garbage_file_and_a_fifo_start_no_run_and_the_next_run_stores_them_under_no_day(tmp_path):
    (tmp_path / "none").mkdir()
    loop = new_loop(tmp_path / "loop", tmp_path / "none")
    garbage = loop.incoming / "garbage.jsonl"
    garbage.write_bytes(b"not json\n{also not\n")
    os.mkfifo(loop.incoming / "pipe.jsonl")
    for path in (garbage, loop.incoming / "pipe.jsonl"):
        os.utime(path, (HOUR_AGO, HOUR_AGO), follow_symlinks=False)
    result = loop_tick(loop)
    assert not result.run_requests
    reason = result.skip_reason.skip_message
    assert "garbage.jsonl" in reason and "pipe.jsonl" in reason and "quarantined" in reason and "next run" in reason

    # the schedule's run of some day (or any run) reads them: every record kept, under no day, no day created
    day_file(loop.incoming, DAYS[0], "traffic.jsonl", per_day=20)
    run = loop.run(DAYS[0], select=CAPTURE)
    assert run.success and checks(run)["records_accounted_for"] is True
    rows = loop.table(
        "SELECT source_file, reason_code, day, partition_day FROM quarantined_records "
        "WHERE source_file IN ('garbage.jsonl', 'pipe.jsonl') ORDER BY ALL"
    ).rows()
    assert rows == [
        ("garbage.jsonl", "invalid_json", None, None),
        ("garbage.jsonl", "invalid_json", None, None),
        ("pipe.jsonl", "unreadable_file", None, None),
    ]
    assert set(loop.instance.get_materialized_partitions(dg.AssetKey("raw_traces"))) == {str(DAYS[0])}
    [quarantine] = metadata(run, "quarantined_records")
    assert quarantine["quarantined_no_day"] == 3  # the quarantine's metadata counts them though no day holds them


@pytest.mark.slow
def test_a_late_file_runs_its_own_days_only_and_later_days_would_not_change_by_rerunning(tmp_path, traffic):
    loop = new_loop(tmp_path / "loop", traffic)
    assert loop.run(days=(DAYS[0], DAYS[-1] + timedelta(days=1))).success  # every day of the files, as `make run`
    first_tick = loop_tick(loop)  # the sensor after `make run`: nothing to run
    assert not first_tick.run_requests
    cursor = first_tick.cursor
    late = day_file(loop.incoming, DAYS[0], "late.jsonl", per_day=60)
    os.utime(late, (HOUR_AGO, HOUR_AGO))
    [request] = loop_tick(loop, cursor).run_requests
    first, last = covered(request)
    assert (first, last) == (str(DAYS[0]), str(DAYS[1]))  # its own days (a few traces after midnight), not DAYS[-1]

    written = f"SELECT asset, day, written_at FROM partition_log WHERE day > '{DAYS[1]}' ORDER BY ALL"
    before = loop.table(written)
    result = loop.run(days=(date.fromisoformat(first), date.fromisoformat(last)))
    assert result.success and all(checks(result).values())
    assert loop.table(written).equals(before)  # the later days were not touched
    later = "SELECT * EXCLUDE (embedding, graded_run_id) FROM graded_candidates WHERE day > '{}' ORDER BY ALL"
    cases = "SELECT * FROM eval_suite WHERE day > '{}' ORDER BY ALL"
    graded, suite = loop.table(later.format(last)), loop.table(cases.format(last))
    assert graded.height and suite.height
    # re-running the later days (what the sensor used to add) changes none of their rows: they do not depend on it
    assert loop.run(days=(DAYS[-1], DAYS[-1] + timedelta(days=1))).success
    assert loop.table(later.format(last)).equals(graded) and loop.table(cases.format(last)).equals(suite)


def test_the_sensor_starts_from_what_the_warehouse_read_and_asks_for_a_day_a_file_still_lacks(tmp_path, traffic):
    loop = new_loop(tmp_path / "loop", traffic)
    assert loop.run(days=(DAYS[0], DAYS[-1] + timedelta(days=1)), select=CAPTURE).success  # as `make run` does
    first = loop_tick(loop)  # an empty cursor: the first `make dev` after `make run`
    assert not first.run_requests and "no new" in first.skip_reason.skip_message
    assert len(first.cursor) < 500 and not read_cursor(first.cursor).empty

    # a file read when only its first day was written still needs its second: the sensor asks for it
    part = day_file(loop.incoming, DAYS[-1] + timedelta(days=5), "part.jsonl", per_day=40)
    os.utime(part, (HOUR_AGO, HOUR_AGO))
    assert loop.run(DAYS[-1] + timedelta(days=5), select=CAPTURE).success
    [request] = loop_tick(loop).run_requests
    assert covered(request) == (str(DAYS[-1] + timedelta(days=5)), str(DAYS[-1] + timedelta(days=6)))
    assert request.tags["eval_loop/files"] == "part.jsonl"


def test_the_first_tick_waits_while_a_run_holds_the_warehouse(tmp_path, traffic, monkeypatch):
    loop = new_loop(tmp_path / "loop", traffic)
    assert loop.run(days=(DAYS[0], DAYS[-1] + timedelta(days=1)), select=CAPTURE).success
    monkeypatch.setattr(sensors, "WAREHOUSE_WAIT_SECONDS", 0.2)
    holder = subprocess.Popen(  # a writer in another process, as a run's step is
        [sys.executable, "-c", f"import duckdb, time; c = duckdb.connect({str(loop.warehouse)!r}); print('ok', "
         "flush=True); time.sleep(60)"], stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "ok"
        blocked = loop_tick(loop)
        assert not blocked.run_requests and "waiting to read" in blocked.skip_reason.skip_message
        assert blocked.cursor is None  # nothing learnt: the next tick starts from the warehouse again
    finally:
        holder.kill()
        holder.wait()
    assert not loop_tick(loop).run_requests  # every file was read: nothing to run


def test_the_cursor_stays_small_however_many_files_arrive(tmp_path, instance):
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    record = {
        "timestamp": f"{DAYS[0]}T10:00:00Z",
        "app": "support_bot",
        "request": {"messages": [{"role": "user", "content": "where is my order?"}]},
        "response": {"choices": [{"message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}]},
    }
    cursor = None
    sizes = []
    for batch in range(2):
        for i in range(2_500):
            path = incoming / f"b{batch}" / f"t{i:04}.jsonl"
            path.parent.mkdir(exist_ok=True)
            path.write_text(json.dumps({**record, "id": f"{batch}-{i}"}) + "\n")
            os.utime(path, (HOUR_AGO, HOUR_AGO))
        time.sleep(MARGIN_NS / 1e9)  # the batch arrived before the tick's margin
        result = tick(instance, incoming, cursor)
        [request] = result.run_requests
        assert covered(request) == (str(DAYS[0]), str(DAYS[0])) and request.tags[DAYS_TAG] == str(DAYS[0])
        cursor = result.cursor
        sizes.append(len(cursor))
    assert max(sizes) < 200, sizes  # 5,000 files taken, none named in the cursor
    assert not tick(instance, incoming, cursor).run_requests


def test_the_schedule_targets_yesterday_and_names_the_day():
    for at, expected in [
        (datetime(2026, 11, 20, 0, 15, tzinfo=UTC), "2026-11-19"),
        (datetime(2026, 1, 1, 0, 15, tzinfo=UTC), "2025-12-31"),
    ]:
        request = finalise_yesterday(dg.build_schedule_context(scheduled_execution_time=at))
        assert request.partition_key == expected and request.run_key == f"finalise-{expected}"
        assert request.tags[DAYS_TAG] == expected


def test_sensor_and_schedule_are_on_by_default():
    assert new_trace_files.default_status == dg.DefaultSensorStatus.RUNNING
    assert finalise_yesterday.default_status == dg.DefaultScheduleStatus.RUNNING
    assert finalise_yesterday.cron_schedule == "15 0 * * *" and finalise_yesterday.execution_timezone == "UTC"
