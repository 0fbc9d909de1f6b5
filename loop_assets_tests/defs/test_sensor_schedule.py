"""The sensor and the schedule, evaluated against a real Dagster instance."""

from __future__ import annotations

import os
import shutil
import time
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pytest

from loop_assets.defs.resources import LoopSettings
from loop_assets.defs.schedules import finalise_yesterday
from loop_assets.defs.sensors import RANGE_END, RANGE_START, new_trace_files
from loop_assets.devtools.sample_traffic import write_traffic
from loop_assets_tests.loop_runner import DAYS, new_loop

HOUR_AGO = time.time() - 3600


def tick(instance, incoming, cursor=None) -> dg.SensorResult:
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"settings": LoopSettings(incoming_dir=str(incoming))}
    )
    return new_trace_files(context)


def day_file(folder, day: date, name: str | None = None, per_day: int = 40):
    [path] = write_traffic(folder / "gen", days=1, per_day=per_day, seed=5, start=day)
    target = folder / (name or path.name)
    shutil.move(path, target)
    return target


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        yield instance


def test_a_new_file_requests_its_days_once(tmp_path, instance):
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    path = day_file(incoming, DAYS[0], "traces-a.jsonl")
    os.utime(path, (HOUR_AGO, HOUR_AGO))  # written long ago: complete
    first = tick(instance, incoming)
    [request] = first.run_requests
    # the file holds its day plus a few traces logged just after midnight
    assert request.tags[RANGE_START] == str(DAYS[0]) and request.tags[RANGE_END] == str(DAYS[1])
    assert request.run_key
    again = tick(instance, incoming, first.cursor)
    assert not again.run_requests and "no new" in again.skip_reason.skip_message


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
    assert request.tags[RANGE_START] == str(DAYS[0]) and request.tags[RANGE_END] == str(DAYS[2] + timedelta(days=1))
    assert request.run_key != done.run_requests[0].run_key


def test_a_late_file_reruns_its_day_and_every_later_suite_day(in_order, tmp_path):
    loop, _ = in_order
    late_incoming = tmp_path / "late"
    late_incoming.mkdir()
    path = day_file(late_incoming, DAYS[0] - timedelta(days=2), "late.jsonl", per_day=20)
    os.utime(path, (HOUR_AGO, HOUR_AGO))
    [request] = tick(loop.instance, late_incoming).run_requests
    assert request.tags[RANGE_START] == str(DAYS[0] - timedelta(days=2))
    assert request.tags[RANGE_END] == str(DAYS[-1])  # later suite days are brought up to date, in order


def test_the_schedule_targets_yesterday():
    for at, expected in [
        (datetime(2026, 11, 20, 0, 15, tzinfo=UTC), "2026-11-19"),
        (datetime(2026, 1, 1, 0, 15, tzinfo=UTC), "2025-12-31"),
    ]:
        request = finalise_yesterday(dg.build_schedule_context(scheduled_execution_time=at))
        assert request.partition_key == expected and request.run_key == f"finalise-{expected}"


def test_sensor_and_schedule_are_on_by_default():
    assert new_trace_files.default_status == dg.DefaultSensorStatus.RUNNING
    assert finalise_yesterday.default_status == dg.DefaultScheduleStatus.RUNNING
    assert finalise_yesterday.cron_schedule == "15 0 * * *" and finalise_yesterday.execution_timezone == "UTC"


def test_the_sensors_range_request_runs_the_late_day_and_later_days_in_order(tmp_path, traffic):
    loop = new_loop(tmp_path / "loop", traffic)
    for day in DAYS:
        loop.run(day)
    before = loop.table("SELECT day, written_at FROM partition_log WHERE asset = 'graded_candidates' ORDER BY day")
    day_file(loop.incoming, DAYS[0], "late-for-day-0.jsonl", per_day=60)
    result = loop.run(days=(DAYS[0], DAYS[-1]))
    assert result.success
    after = loop.table("SELECT day, written_at FROM partition_log WHERE asset = 'graded_candidates' ORDER BY day")
    for (day, old), (_, new) in zip(before.rows(), after.rows(), strict=True):
        if day in DAYS:
            assert new > old, f"{day} was not re-graded"
