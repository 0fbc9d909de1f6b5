"""capture.ingest: trace files become raw_traces, quarantined_records and manifest rows, nothing lost."""

from __future__ import annotations

import gzip
import json
import os
import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest

from loop_assets import tables
from loop_assets.capture.formats import REASON_CODES
from loop_assets.capture.formats.base import record_hash
from loop_assets.capture.ingest import ingest, list_trace_files
from loop_assets.capture.rows import IngestResult
from loop_assets.config import IngestConfig
from loop_assets_tests.paths import FIXTURES

SAMPLE = FIXTURES / "capture" / "sample.jsonl"
NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
CFG = IngestConfig()
D16, D17 = date(2026, 11, 16), date(2026, 11, 17)


def rec(i: int | str, ts: str = "2026-11-16T08:00:00Z", text: str = "How do I reset my password, please?", **extra):
    record = {
        "id": i if isinstance(i, str) else f"tr_{i:016x}",
        "timestamp": ts,
        "app": "support_bot",
        "request": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]},
        "response": {"model": "gpt-4o-mini", "choices": [{"message": {"role": "assistant", "content": "ok"}}]},
        "latency_ms": 100.0,
    }
    record.update(extra)
    return record


def line(obj) -> bytes:
    return json.dumps(obj).encode()


def write(folder: Path, name: str, *lines: bytes, end: bytes = b"\n", mtime: datetime | None = None) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    data = end.join(lines) + (end if lines else b"")
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    if mtime is not None:
        os.utime(path, (mtime.timestamp(), mtime.timestamp()))
    return path


def run(folder: Path, cfg: IngestConfig = CFG, **kwargs) -> IngestResult:
    result = ingest(folder, cfg, "run-1", now=NOW, **kwargs)
    check_schemas(result)
    return result


def check_schemas(result: IngestResult) -> None:
    assert result.traces.schema == tables.schema("raw_traces")
    assert result.quarantine.schema == tables.schema("quarantined_records")
    assert result.manifest.schema == tables.schema("ingest_manifest")
    assert set(result.quarantine["reason_code"].to_list()) <= set(REASON_CODES)


def check_accounting(result: IngestResult) -> None:
    """Per file: sum of records_routed == file_records == traces + quarantine rows."""
    m = result.manifest
    routed = m.group_by("source_file").agg(pl.col("records_routed").sum(), pl.col("file_records").unique())
    rows = pl.concat(
        [result.traces.select("source_file", "day"), result.quarantine.select("source_file", day="partition_day")]
    )
    counted = rows.group_by("source_file").len()
    joined = routed.join(counted, on="source_file", how="full", coalesce=True).sort("source_file")
    for file, routed_sum, file_records, n in joined.iter_rows():
        assert file_records == [routed_sum], file
        assert routed_sum == n, file
    per_day = rows.group_by("source_file", "day").len().rename({"day": "partition_day", "len": "records_routed"})
    expected = per_day.sort("source_file", "partition_day")
    actual = m.select("source_file", "partition_day", "records_routed").sort("source_file", "partition_day")
    assert actual.to_dicts() == expected.with_columns(pl.col("records_routed").cast(pl.Int64)).to_dicts()


def only(frame: pl.DataFrame, **where) -> dict:
    rows = frame.filter(*[pl.col(k) == v for k, v in where.items()]).to_dicts()
    assert len(rows) == 1, rows
    return rows[0]


# --- listing -------------------------------------------------------------------------------------


def test_list_trace_files_is_recursive_sorted_and_skips_partial_and_hidden(tmp_path):
    for name in [
        "b.jsonl",
        "a.jsonl.gz",
        "sub/c.ndjson",
        "sub/d.NDJSON.gz",
        "e.jsonl.tmp",
        "f.jsonl.part",
        ".hidden.jsonl",
        ".staging/g.jsonl",
        "notes.txt",
        "h.yaml",
        "i.json",
        "sub/j.JSON.gz",
        "k.json.part",
    ]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "dir.jsonl").mkdir()
    for name in ("b.jsonl", "a.jsonl.gz", "sub/c.ndjson", "sub/d.NDJSON.gz", "i.json", "sub/j.JSON.gz"):
        os.utime(tmp_path / name, (1_700_000_000, 1_700_000_000))  # same age: path order
    names = [p.relative_to(tmp_path).as_posix() for p in list_trace_files(tmp_path)]
    assert names == ["a.jsonl.gz", "b.jsonl", "i.json", "sub/c.ndjson", "sub/d.NDJSON.gz", "sub/j.JSON.gz"]
    os.utime(tmp_path / "sub/d.NDJSON.gz", (1_600_000_000, 1_600_000_000))  # delivered first: read first
    names = [p.relative_to(tmp_path).as_posix() for p in list_trace_files(tmp_path)]
    assert names == ["sub/d.NDJSON.gz", "a.jsonl.gz", "b.jsonl", "i.json", "sub/c.ndjson", "sub/j.JSON.gz"]
    assert list_trace_files(tmp_path / "missing") == []


# --- the sample ----------------------------------------------------------------------------------


def test_sample_file_is_ingested(tmp_path):
    shutil.copy(SAMPLE, tmp_path / "sample.jsonl")
    result = run(tmp_path)
    assert result.quarantine.height == 0
    t = result.traces
    assert t.height == 6
    assert t["trace_id"].to_list() == [f"tr_{i:016x}" for i in range(1, 7)]
    assert t["source_line"].to_list() == list(range(1, 7))
    assert set(t["source_file"]) == {"sample.jsonl"}
    assert set(t["source_format"]) == {"openai_chat"}
    assert set(t["ingest_run_id"]) == {"run-1"}
    assert t["day"].to_list() == [D16] * 5 + [D17]  # 23:59:59.999 and 00:00:00.001 split at midnight
    first = json.loads(SAMPLE.read_text(encoding="utf-8").splitlines()[0])
    assert t["record_hash"][0] == record_hash(first)
    outage = only(t, trace_id="tr_0000000000000004")
    assert outage["error"].startswith("server_error 500:") and outage["output_text"] is None
    assert only(t, trace_id="tr_0000000000000002")["feedback_thumbs"] == "down"
    assert only(t, trace_id="tr_0000000000000006")["app"] == "support_bot_de"
    assert result.manifest.select("partition_day", "records_routed", "file_records").rows() == [
        (D16, 5, 6),
        (D17, 1, 6),
    ]
    assert result.manifest["file_size"][0] == SAMPLE.stat().st_size
    check_accounting(result)


def test_source_file_is_relative_posix_and_gzip_and_ndjson_are_read(tmp_path):
    write(tmp_path, "2026/11/16/calls.jsonl.gz", line(rec(1)), line(rec(2)))
    write(tmp_path, "other.ndjson", line(rec(3)))
    result = run(tmp_path)
    assert result.traces.select("source_file", "source_line").rows() == [
        ("2026/11/16/calls.jsonl.gz", 1),
        ("2026/11/16/calls.jsonl.gz", 2),
        ("other.ndjson", 1),
    ]


# --- every malformed kind is quarantined with a reason ------------------------------------------


def test_malformed_records_are_quarantined_with_reasons(tmp_path):
    no_ts = rec(6)
    del no_ts["timestamp"]
    no_msgs = rec(7)
    del no_msgs["request"]
    write(
        tmp_path,
        "mixed.jsonl",
        line(rec(1)),
        b'{"id": "broken", "timestamp": ',
        line(rec(3, request={"messages": "hello"})),
        line(rec(4, latency_ms="fast")),
        line(rec(5, timestamp=True)),
        line(no_ts),
        line(no_msgs),
        b"[" + line(rec(8)) + b"]",
        b'{"text": "caf\xe9"}',
        b"",
        line(rec(11, timestamp="1999-12-31T00:00:00Z")),
        line(rec(12, timestamp="2027-01-01T00:00:00Z")),
        b"\xef\xbb\xbf" + line(rec(13)),
        line(rec(14)),
    )
    result = run(tmp_path)
    q = result.quarantine
    expected = {
        2: ("invalid_json", "invalid JSON"),
        3: ("wrong_type", "`request.messages` must be a list"),
        4: ("wrong_type", "`latency_ms` must be a number, got string 'fast'"),
        5: ("wrong_type", "`timestamp` must be an ISO 8601 date-time or epoch number, got boolean"),
        6: ("missing_field", "no timestamp"),
        7: ("missing_field", "no request messages"),
        8: ("wrong_type", "must be a JSON object, got a top-level array"),
        9: ("invalid_utf8", "not valid UTF-8"),
        10: ("blank_line", "empty"),
        11: ("bad_timestamp", "earlier than ingest.earliest_timestamp"),
        12: ("bad_timestamp", "after the ingest clock"),
    }
    assert q["source_line"].to_list() == list(expected)
    for row in q.iter_rows(named=True):
        code, words = expected[row["source_line"]]
        assert row["reason_code"] == code, row
        assert words in row["reason"], row
        assert row["source_format"] == "openai_chat"
        assert row["partition_day"] == D16
        assert row["ingest_run_id"] == "run-1"
    assert result.traces["source_line"].to_list() == [1, 13, 14]  # a BOM line parses
    # the original bytes are kept, invalid UTF-8 backslash-escaped
    assert only(q, source_line=9)["raw"] == '{"text": "caf\\xe9"}'
    assert only(q, source_line=2)["raw"] == '{"id": "broken", "timestamp": '
    assert only(q, source_line=2)["raw_bytes"] == 30
    # day is the record's own when its timestamp was read, null otherwise
    assert only(q, source_line=4)["day"] == D16
    for n in (2, 5, 6, 8, 9, 10, 11, 12):
        assert only(q, source_line=n)["day"] is None
    check_accounting(result)


def test_ten_megabyte_line_is_quarantined_truncated_with_exact_size(tmp_path):
    big = line(rec(2, text="x" * (10 * 1024 * 1024)))
    write(tmp_path, "big.jsonl", line(rec(1)), big, line(rec(3)))
    cfg = IngestConfig(quarantine_raw_max_bytes=4096)
    result = run(tmp_path, cfg)
    row = only(result.quarantine, source_line=2)
    assert row["reason_code"] == "too_large"
    assert "max_record_bytes" in row["reason"]
    assert row["raw_bytes"] == len(big)
    assert row["raw_truncated"] is True
    assert row["raw"] == big[:4096].decode()
    assert result.traces.height == 2
    check_accounting(result)


def test_short_quarantined_lines_are_not_flagged_and_long_ones_are(tmp_path):
    long_bad = b"{" + b"x" * 200
    write(tmp_path, "q.jsonl", b"{bad", long_bad)
    result = run(tmp_path, IngestConfig(quarantine_raw_max_bytes=50))
    rows = result.quarantine.select("raw", "raw_truncated", "raw_bytes").rows()
    assert rows == [("{bad", False, 4), (long_bad[:50].decode(), True, 201)]


def test_empty_file_is_one_quarantined_record_of_no_day(tmp_path):
    # its modification day is no day of its records: it creates no partition (the row has no partition day)
    write(tmp_path, "empty.jsonl", mtime=datetime(2026, 11, 15, 23, 30, tzinfo=UTC))
    result = run(tmp_path)
    row = only(result.quarantine, source_file="empty.jsonl")
    assert (row["source_line"], row["reason_code"], row["day"]) == (0, "empty_file", None)
    assert row["partition_day"] is None
    assert result.manifest.select("partition_day", "records_routed", "file_records", "file_size").rows() == [
        (None, 1, 1, 0)
    ]
    assert result.files["days"].to_list() == [[]]


def test_truncated_gzip_keeps_the_good_lines_and_reports_the_damage(tmp_path):
    lines = [line(rec(i, text=f"question number {i} " + "pad " * 20)) for i in range(1, 400)]
    data = gzip.compress(b"\n".join(lines) + b"\n")
    (tmp_path / "cut.jsonl.gz").write_bytes(data[: len(data) * 2 // 3])
    result = run(tmp_path)
    good = result.traces.height
    assert 0 < good < 399
    assert result.traces["source_line"].to_list() == list(range(1, good + 1))
    row = only(result.quarantine, reason_code="truncated_gzip")
    assert row["source_line"] == good + 1
    assert row["partition_day"] == D16  # the day of the lines before it
    assert result.manifest["file_records"].to_list() == [good + 1]
    check_accounting(result)


def test_unknown_format_file_quarantines_every_record_and_says_what_was_looked_for(tmp_path):
    write(
        tmp_path,
        "spans.jsonl",
        line({"span": "a", "attributes": {}}),
        b"not json",
        line({"span": "b"}),
        mtime=datetime(2026, 11, 18, 5, tzinfo=UTC),
    )
    result = run(tmp_path)
    assert result.traces.height == 0
    q = result.quarantine
    assert q["reason_code"].to_list() == ["unknown_format", "invalid_json", "unknown_format"]
    reason = q["reason"][0]
    assert "no registered trace format" in reason and "openai_chat" in reason and "`request.messages`" in reason
    assert "'span'" in reason  # names what was found
    assert q["source_format"].to_list() == [None, None, None]
    assert set(q["partition_day"]) == {None}  # no record has a day: not the file's modification day
    check_accounting(result)


def test_configured_format_is_used_without_detection(tmp_path):
    write(tmp_path, "a.jsonl", line({"span": "a", "timestamp": "2026-11-16T00:00:00Z"}), line(rec(2)))
    result = run(tmp_path, IngestConfig(format="openai_chat"))
    assert only(result.quarantine, source_line=1)["reason_code"] == "missing_field"
    assert result.traces.height == 1


def test_unreadable_file_is_quarantined(tmp_path, monkeypatch):
    from loop_assets.capture.formats import jsonl

    write(tmp_path, "locked.jsonl", line(rec(1)))
    write(tmp_path, "ok.jsonl", line(rec(2)))
    real_open = jsonl._open

    def deny(path):
        if path.name == "locked.jsonl":
            raise PermissionError(13, "Permission denied")
        return real_open(path)

    monkeypatch.setattr(jsonl, "_open", deny)
    result = run(tmp_path)
    row = only(result.quarantine, source_file="locked.jsonl")
    assert (row["source_line"], row["reason_code"]) == (0, "unreadable_file")
    assert result.traces["source_file"].to_list() == ["ok.jsonl"]
    check_accounting(result)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_file_without_read_permission_is_quarantined(tmp_path):
    path = write(tmp_path, "locked.jsonl", line(rec(1)))
    path.chmod(0)
    try:
        assert only(run(tmp_path).quarantine, source_file="locked.jsonl")["reason_code"] == "unreadable_file"
    finally:
        path.chmod(0o644)


# --- timestamps and routing -----------------------------------------------------------------------


def test_naive_timestamps_are_utc_and_epochs_are_seconds_or_ms(tmp_path):
    write(
        tmp_path,
        "t.jsonl",
        line(rec(1, timestamp="2026-11-16T23:59:59")),
        line(rec(2, timestamp=1794787200)),  # 2026-11-16T00:00:00Z in seconds
        line(rec(3, timestamp=1794873600500)),  # 2026-11-17T00:00:00.5Z in ms
        line(rec(4, timestamp="2026-11-16T22:30:00-03:00")),  # 01:30Z on the 17th
    )
    t = run(tmp_path).traces
    assert t["ts"].to_list() == [
        datetime(2026, 11, 16, 23, 59, 59, tzinfo=UTC),
        datetime(2026, 11, 16, tzinfo=UTC),
        datetime(2026, 11, 17, 0, 0, 0, 500000, tzinfo=UTC),
        datetime(2026, 11, 17, 1, 30, tzinfo=UTC),
    ]
    assert t["day"].to_list() == [D16, D16, D17, D17]


def test_cross_midnight_routing_of_records_without_a_day(tmp_path):
    write(
        tmp_path,
        "night.jsonl",
        b"junk before anything",  # no preceding day: takes the following one (16th)
        line(rec(1, timestamp="2026-11-16T23:59:59.999Z")),
        b"junk after the 16th",  # preceding record wins: 16th
        b"",
        line(rec(2, timestamp="2026-11-17T00:00:00Z")),
        b"junk after the 17th",  # 17th
        line(rec(3, timestamp="2099-01-01T00:00:00Z")),  # rejected timestamp: no day, routed with neighbours
    )
    result = run(tmp_path)
    q = result.quarantine.select("source_line", "day", "partition_day").rows()
    assert q == [(1, None, D16), (3, None, D16), (4, None, D16), (6, None, D17), (7, None, D17)]
    assert result.traces.select("source_line", "day").rows() == [(2, D16), (5, D17)]
    assert result.manifest.select("partition_day", "records_routed", "file_records").rows() == [
        (D16, 4, 7),
        (D17, 3, 7),
    ]
    check_accounting(result)


# --- duplicates ------------------------------------------------------------------------------------


def test_a_file_delivered_twice_adds_nothing_and_reports_duplicates(tmp_path):
    lines = [line(rec(i)) for i in range(1, 4)] + [line(rec("no-id", id=None))]
    write(tmp_path, "a.jsonl", *lines)
    once = run(tmp_path)
    write(tmp_path, "redelivered/a.jsonl", *lines)
    twice = run(tmp_path)
    assert twice.traces.equals(once.traces)
    q = twice.quarantine
    assert q.height == 4
    assert set(q["reason_code"]) == {"duplicate_record"}
    assert q["source_file"].to_list() == ["redelivered/a.jsonl"] * 4
    assert "already read from a.jsonl:1" in q["reason"][0]
    assert "a.jsonl:4" in q["reason"][3]  # records without an id dedup on their content hash
    assert q["day"].to_list() == [D16] * 4
    assert q["raw"][0] == lines[0].decode()
    check_accounting(twice)


def test_conflicting_duplicate_is_reported_with_both_places(tmp_path):
    write(tmp_path, "a.jsonl", line(rec(1, text="first version of the question here")), line(rec(2)))
    write(tmp_path, "b.jsonl", line(rec(2)), line(rec(1, text="a different question under the same id")))
    result = run(tmp_path)
    assert result.traces.select("source_file", "source_line").rows() == [("a.jsonl", 1), ("a.jsonl", 2)]
    conflict = only(result.quarantine, reason_code="conflicting_duplicate")
    assert (conflict["source_file"], conflict["source_line"]) == ("b.jsonl", 2)
    assert "a.jsonl:1" in conflict["reason"] and "b.jsonl:2" in conflict["reason"]
    assert "different" in conflict["reason"]
    assert only(result.quarantine, reason_code="duplicate_record")["source_file"] == "b.jsonl"


def test_same_id_on_different_days_is_not_a_duplicate(tmp_path):
    write(tmp_path, "a.jsonl", line(rec(1)), line(rec(1, timestamp="2026-11-17T08:00:00Z")))
    result = run(tmp_path)
    assert result.traces["day"].to_list() == [D16, D17]
    assert result.quarantine.height == 0


# --- the accounting invariant and the days filter ---------------------------------------------


def messy_folder(folder: Path) -> None:
    write(
        folder,
        "a.jsonl",
        b"garbage",
        line(rec(1, timestamp="2026-11-15T23:00:00Z")),
        line(rec(2, timestamp="2026-11-16T01:00:00Z")),
        b"",
        line(rec(3, timestamp="2026-11-17T02:00:00Z")),
        b"[1]",
    )
    write(folder, "b/b.jsonl.gz", line(rec(2, timestamp="2026-11-16T01:00:00Z")), line(rec(4)), b"{")
    data = gzip.compress(b"\n".join(line(rec(100 + i, text="t " * 40)) for i in range(300)) + b"\n")
    (folder / "c.jsonl.gz").write_bytes(data[:-200])
    write(folder, "d.jsonl", mtime=datetime(2026, 11, 14, tzinfo=UTC))
    write(folder, "e.jsonl", line({"unrelated": True}), mtime=datetime(2026, 11, 17, 3, tzinfo=UTC))
    write(folder, "f.jsonl", line(rec(1, timestamp="2026-11-15T23:00:00Z", text="conflicting content")))


def test_accounting_invariant_holds_per_file(tmp_path):
    messy_folder(tmp_path)
    result = run(tmp_path)
    check_accounting(result)
    assert set(result.manifest["source_file"]) == {
        "a.jsonl",
        "b/b.jsonl.gz",
        "c.jsonl.gz",
        "d.jsonl",
        "e.jsonl",
        "f.jsonl",
    }
    file_records = dict(result.manifest.select("source_file", "file_records").unique().rows())
    assert file_records["a.jsonl"] == 6 and file_records["b/b.jsonl.gz"] == 3 and file_records["d.jsonl"] == 1
    # every physical line of every file appears exactly once
    lines = pl.concat(
        [result.traces.select("source_file", "source_line"), result.quarantine.select("source_file", "source_line")]
    )
    assert lines.is_duplicated().sum() == 0
    a_lines = lines.filter(pl.col("source_file") == "a.jsonl")["source_line"].sort().to_list()
    assert a_lines == [1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize("wanted", [{D16}, {date(2026, 11, 15), D17}, {date(2026, 11, 14)}, {date(2020, 1, 1)}])
def test_days_filter_gives_the_rows_of_the_full_result(tmp_path, wanted):
    messy_folder(tmp_path)
    full = run(tmp_path)
    part = run(tmp_path, days=wanted)
    days = sorted(wanted)
    assert part.traces.equals(full.traces.filter(pl.col("day").is_in(days)))
    # rows of no day (d.jsonl, e.jsonl) come with every request: whichever run reads a file stores them
    wanted_rows = pl.col("partition_day").is_in(days) | pl.col("partition_day").is_null()
    assert part.quarantine.equals(full.quarantine.filter(wanted_rows))
    assert part.manifest.equals(full.manifest.filter(wanted_rows))


def test_days_filter_keeps_duplicate_decisions_of_the_whole_file_set(tmp_path):
    # b.jsonl's copy of tr_2 is a duplicate even when only its day is asked for
    messy_folder(tmp_path)
    part = run(tmp_path, days={D16})
    dup = only(part.quarantine, reason_code="duplicate_record")
    assert (dup["source_file"], dup["source_line"]) == ("b/b.jsonl.gz", 1)


# --- misc -----------------------------------------------------------------------------------------


def test_empty_or_missing_incoming_folder_gives_empty_frames(tmp_path):
    for folder in (tmp_path, tmp_path / "missing"):
        result = run(folder)
        assert result.traces.height == result.quarantine.height == result.manifest.height == 0


def test_bad_earliest_timestamp_fails_naming_the_key(tmp_path):
    # the config validates it at load; ingest still refuses an unvalidated one up front
    bad = IngestConfig.model_construct(earliest_timestamp="last year")
    with pytest.raises(ValueError, match=r"ingest\.earliest_timestamp"):
        ingest(tmp_path, bad, "r", now=NOW)


def test_lone_surrogates_in_text_do_not_crash(tmp_path):
    write(tmp_path, "s.jsonl", line(rec(1, text="broken \ud800 text that is long enough to stand")))
    t = run(tmp_path).traces
    assert t.height == 1
    assert "\\ud800" in t["input_text"][0]


def test_result_is_deterministic(tmp_path):
    messy_folder(tmp_path)
    first, second = run(tmp_path), run(tmp_path)
    assert first.traces.equals(second.traces)
    assert first.quarantine.equals(second.quarantine)
    assert first.manifest.equals(second.manifest)


# --- the other trace formats -------------------------------------------------------------------------

FORMAT_FIXTURES = FIXTURES / "formats"
# per fixture: (format detected, traces, quarantine rows, skipped items)
FORMAT_FILES = {
    "otel_genai.jsonl": ("otel_genai", 4, 3, 3),
    "otel_genai_document.json": ("otel_genai", 1, 1, 1),
    "openinference.jsonl": ("openinference", 3, 2, 1),
    "langfuse.json": ("langfuse", 3, 1, 2),
    "langsmith.jsonl": ("langsmith", 5, 3, 3),
}


def formats_folder(folder: Path, gz: bool = False) -> None:
    for name in FORMAT_FILES:
        data = (FORMAT_FIXTURES / name).read_bytes()
        (folder / (name + (".gz" if gz else ""))).write_bytes(gzip.compress(data) if gz else data)
    shutil.copy(SAMPLE, folder / "sample.jsonl")


@pytest.mark.parametrize("gz", [False, True])
def test_each_file_is_detected_on_its_own_and_every_record_is_accounted_for(tmp_path, gz):
    formats_folder(tmp_path, gz)
    result = run(tmp_path)
    check_accounting(result)
    suffix = ".gz" if gz else ""
    for name, (fmt, n_traces, n_quarantined, n_skipped) in FORMAT_FILES.items():
        file = name + suffix
        traces = result.traces.filter(pl.col("source_file") == file)
        quarantined = result.quarantine.filter(pl.col("source_file") == file)
        assert set(traces["source_format"]) == {fmt}, file
        assert (traces.height, quarantined.height) == (n_traces, n_quarantined), file
        assert result.skipped.filter(pl.col("source_file") == file).height == n_skipped, file
        file_records = result.manifest.filter(pl.col("source_file") == file)["file_records"].unique().to_list()
        assert file_records == [n_traces + n_quarantined], file
    assert result.traces.filter(pl.col("source_file") == "sample.jsonl")["source_format"].unique().to_list() == [
        "openai_chat"
    ]
    # every LLM call appears once, by its own (trace_id, span_id)
    spans = result.traces.filter(pl.col("span_id").is_not_null()).select("trace_id", "span_id")
    assert spans.is_duplicated().sum() == 0


def test_ingest_format_overrides_detection(tmp_path):
    shutil.copy(FORMAT_FIXTURES / "openinference.jsonl", tmp_path / "spans.jsonl")
    as_genai = run(tmp_path, IngestConfig(format="otel_genai"))
    assert set(as_genai.traces["source_format"]) == {"otel_genai"}
    # the OpenInference spans are still read, by their own convention
    assert as_genai.traces.height == 3
    assert {json.loads(m)["convention"] for m in as_genai.traces["metadata"]} == {"openinference"}
    as_langfuse = run(tmp_path, IngestConfig(format="langfuse"))
    assert as_langfuse.traces.height == 0
    assert as_langfuse.quarantine["reason_code"].to_list() == ["unknown_format"] * 4 + ["invalid_json"]
    assert "not a Langfuse observation or trace" in as_langfuse.quarantine["reason"][0]
    check_accounting(as_langfuse)


def test_unknown_document_names_every_format_looked_for(tmp_path):
    (tmp_path / "x.json").write_text(json.dumps([{"foo": 1}, {"bar": 2}], indent=2))
    result = run(tmp_path)
    assert result.quarantine.select("source_line", "reason_code").rows() == [
        (2, "unknown_format"),
        (5, "unknown_format"),
    ]
    reason = result.quarantine["reason"][0]
    for fmt in ("langsmith", "langfuse", "openinference", "otel_genai", "openai_chat"):
        assert fmt in reason


def test_a_span_redelivered_in_another_export_request_is_a_duplicate(tmp_path):
    line1 = json.loads((FORMAT_FIXTURES / "otel_genai.jsonl").read_text().splitlines()[0])
    spans = line1["resourceSpans"][0]["scopeSpans"][0]["spans"]
    again = json.loads(json.dumps(line1))
    again["resourceSpans"][0]["scopeSpans"][0]["spans"] = [spans[3]]  # the last chat span alone
    changed = json.loads(json.dumps(again))
    changed["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["name"] = "renamed"
    write(tmp_path, "a.jsonl", line(line1))
    write(tmp_path, "b.jsonl", line(again), line(changed))
    result = run(tmp_path)
    assert result.traces.select("source_file", "span_id").rows() == [
        ("a.jsonl", "b7ad6b7169203332"),
        ("a.jsonl", "b7ad6b7169203334"),
    ]
    assert result.quarantine.select("source_line", "reason_code").rows() == [
        (1, "duplicate_record"),
        (2, "conflicting_duplicate"),
    ]
    assert "b7ad6b7169203334" in result.quarantine["reason"][0]
    assert json.loads(result.quarantine["raw"][0])["spanId"] == "b7ad6b7169203334"  # the span's own bytes
    check_accounting(result)


def test_days_filter_applies_to_skipped_items(tmp_path):
    formats_folder(tmp_path)
    full = run(tmp_path)
    assert set(full.skipped["partition_day"]) == {D16}
    assert run(tmp_path, days={D16}).skipped.equals(full.skipped)
    assert run(tmp_path, days={D17}).skipped.height == 0


def test_huge_and_deeply_nested_inputs_never_crash(tmp_path):
    deep = '{"resourceSpans": ' + "[" * 100_000 + "]" * 100_000 + "}"
    write(tmp_path, "deep.jsonl", deep.encode(), mtime=datetime(2026, 11, 16, tzinfo=UTC))
    (tmp_path / "deep.json").write_text("[" + '{"a": ' * 50_000 + "1" + "}" * 50_000 + "]")
    nested = {"x": 1}
    for _ in range(900):  # deep enough that serialising it again may hit the recursion limit
        nested = {"n": nested}
    record = rec(1, metadata={"deep": nested})
    text = json.dumps(record)
    write(tmp_path, "nested.jsonl", text.encode())
    result = run(tmp_path, IngestConfig(max_record_bytes=50_000_000))
    check_accounting(result)
    assert only(result.quarantine, source_file="deep.json")["reason_code"] == "invalid_json"
    assert only(result.quarantine, source_file="deep.jsonl")["reason_code"] == "invalid_json"
    nested_rows = result.traces.height + result.quarantine.filter(pl.col("source_file") == "nested.jsonl").height
    assert nested_rows == 1
