import json

from loop_assets.capture.file_watch import FileVersion, plan

NOW = 1_800_000_000 * 10**9
FRESH = NOW - 2 * 10**9  # written 2 s ago
OLD = NOW - 3600 * 10**9


def test_a_fresh_file_waits_one_tick_then_is_ready_once():
    first = plan({"a.jsonl": FileVersion(100, FRESH)}, None, NOW, settle_seconds=60)
    assert first.ready == {} and set(first.waiting) == {"a.jsonl"}
    second = plan({"a.jsonl": FileVersion(100, FRESH)}, first.cursor, NOW + 30 * 10**9, 60)
    assert set(second.ready) == {"a.jsonl"}
    third = plan({"a.jsonl": FileVersion(100, FRESH)}, second.cursor, NOW + 60 * 10**9, 60)
    assert third.ready == {} and third.waiting == {}


def test_a_file_written_long_ago_is_ready_at_once():
    assert set(plan({"old.jsonl": FileVersion(10, OLD)}, None, NOW, 60).ready) == {"old.jsonl"}


def test_a_growing_file_waits_until_it_stops_changing_and_a_grown_file_is_taken_again():
    done = plan({"a.jsonl": FileVersion(100, OLD)}, None, NOW, 60)
    growing = plan({"a.jsonl": FileVersion(150, FRESH)}, done.cursor, NOW, 60)
    assert growing.ready == {} and set(growing.waiting) == {"a.jsonl"}
    still = plan({"a.jsonl": FileVersion(200, FRESH + 1)}, growing.cursor, NOW, 60)
    assert still.ready == {}
    stopped = plan({"a.jsonl": FileVersion(200, FRESH + 1)}, still.cursor, NOW, 60)
    assert stopped.ready == {"a.jsonl": FileVersion(200, FRESH + 1)}


def test_removed_files_leave_the_cursor():
    done = plan({"a.jsonl": FileVersion(1, OLD), "b.jsonl": FileVersion(1, OLD)}, None, NOW, 60)
    later = plan({"b.jsonl": FileVersion(1, OLD)}, done.cursor, NOW, 60)
    assert set(json.loads(later.cursor)) == {"b.jsonl"} and later.ready == {}
