import json

from loop_assets.capture.file_watch import SEEN_LIMIT, FileVersion, plan, read_cursor

S = 10**9
NOW = 1_800_000_000 * S
FRESH = NOW - 2 * S  # written 2 s ago
OLD = NOW - 3600 * S


def fresh(size: int, at: int = FRESH) -> FileVersion:
    return FileVersion(size, at, ctime_ns=at)


def test_a_fresh_file_waits_one_tick_then_is_ready_once():
    first = plan({"a.jsonl": fresh(100)}, None, NOW, settle_seconds=60)
    assert first.ready == {} and set(first.waiting) == {"a.jsonl"}
    second = plan({"a.jsonl": fresh(100)}, first.cursor, NOW + 30 * S, 60)
    assert set(second.ready) == {"a.jsonl"}
    third = plan({"a.jsonl": fresh(100)}, second.cursor, NOW + 60 * S, 60)
    assert third.ready == {} and third.waiting == {}


def test_a_file_written_long_ago_is_ready_at_once():
    assert set(plan({"old.jsonl": FileVersion(10, OLD, OLD)}, None, NOW, 60).ready) == {"old.jsonl"}


def test_a_growing_file_waits_until_it_stops_changing_and_a_grown_file_is_taken_again():
    done = plan({"a.jsonl": FileVersion(100, OLD, OLD)}, None, NOW - 30 * S, 60)  # the tick before it grew
    growing = plan({"a.jsonl": fresh(150)}, done.cursor, NOW, 60)
    assert growing.ready == {} and set(growing.waiting) == {"a.jsonl"}
    still = plan({"a.jsonl": fresh(200, FRESH + 1)}, growing.cursor, NOW + 30 * S, 60)
    assert still.ready == {}
    stopped = plan({"a.jsonl": fresh(200, FRESH + 1)}, still.cursor, NOW + 60 * S, 60)
    assert stopped.ready == {"a.jsonl": fresh(200, FRESH + 1)}


def test_a_copy_that_keeps_an_old_modification_time_is_taken_when_it_arrives():
    done = plan({"a.jsonl": FileVersion(1, OLD, OLD)}, None, NOW, 60)
    # `cp -p` of a file written two hours ago: its change time is when it arrived, after the mark
    late = FileVersion(5, OLD - 3600 * S, ctime_ns=NOW + 30 * S)
    later = plan({"a.jsonl": FileVersion(1, OLD, OLD), "late.jsonl": late}, done.cursor, NOW + 31 * S, 60)
    assert later.ready == {"late.jsonl": late}


def test_the_cursor_names_no_file_taken_before_its_mark_however_many():
    many = {f"f{i:05}.jsonl": FileVersion(10, OLD + i, OLD + i) for i in range(5_000)}
    first = plan(many, None, NOW, 60)
    assert len(first.ready) == 5_000
    state = read_cursor(first.cursor)
    assert state.recent == {} and state.seen == {} and len(first.cursor) < 200
    again = plan(many, first.cursor, NOW + 30 * S, 60)
    assert again.ready == {} and len(again.cursor) < 200


def test_files_still_being_written_hold_the_mark_and_the_seen_list_is_capped():
    writing = {f"w{i}.jsonl": fresh(i + 1, FRESH + i) for i in range(SEEN_LIMIT + 10)}
    first = plan(writing, None, NOW, 60)
    state = read_cursor(first.cursor)
    assert len(state.seen) == SEEN_LIMIT and state.mark < FRESH  # none of them is taken by the mark
    later = plan(writing, first.cursor, NOW + 30 * S, 60)
    assert len(later.ready) == SEEN_LIMIT  # seen unchanged: ready; the others settle by age
    settled = plan(writing, later.cursor, NOW + 62 * S, 60)
    assert len(settled.ready) == 10 and read_cursor(settled.cursor).seen == {}


def test_files_the_warehouse_already_read_are_taken_without_a_run():
    files = {"read.jsonl": FileVersion(1, OLD, OLD), "new.jsonl": FileVersion(2, OLD, OLD)}
    first = plan(files, None, NOW, 60, already={"read.jsonl"})
    assert set(first.ready) == {"new.jsonl"}
    assert plan(files, first.cursor, NOW + 30 * S, 60).ready == {}


def test_removed_files_leave_the_cursor():
    near = NOW - S // 2  # changed after the mark (the last moment before the tick): listed in `recent`
    done = plan({"a.jsonl": FileVersion(1, OLD, near), "b.jsonl": FileVersion(1, OLD, near)}, None, NOW, 60)
    assert set(read_cursor(done.cursor).recent) == {"a.jsonl", "b.jsonl"}
    later = plan({"b.jsonl": FileVersion(1, OLD, near)}, done.cursor, NOW, 60)
    assert set(read_cursor(later.cursor).recent) == {"b.jsonl"} and later.ready == {}


def test_the_first_cursor_format_is_read_as_what_it_took():
    old = json.dumps({"a.jsonl": {"done": "1:5", "seen": "1:5"}, "b.jsonl": {"done": None, "seen": "2:7"}})
    state = read_cursor(old)
    assert state.mark is None and state.recent == {"a.jsonl": "1:5"} and state.seen == {"b.jsonl": "2:7"}
    result = plan({"a.jsonl": FileVersion(1, 5, 5), "b.jsonl": FileVersion(2, 7, NOW)}, old, NOW, 60)
    assert set(result.ready) == {"b.jsonl"}  # seen unchanged on the last tick


def test_a_grown_file_whose_change_time_stays_its_creation_time_is_taken_again():
    # Windows reports the creation time as st_ctime: growing the file moves only its modification time
    done = plan({"a.jsonl": FileVersion(1, OLD, OLD)}, None, NOW, 60)
    grown = FileVersion(2, NOW + 5 * S, ctime_ns=OLD)
    assert plan({"a.jsonl": grown}, done.cursor, NOW + 70 * S, 60).ready == {"a.jsonl": grown}
