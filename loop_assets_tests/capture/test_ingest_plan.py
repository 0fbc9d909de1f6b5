"""Which files and days an ingest reads: unchanged days are left as they are, unrelated files are not read,
and what is skipped is exactly what reading would have produced again."""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest

from loop_assets.capture import ingest as capture
from loop_assets.capture.ingest_plan import ingest_fingerprint, listed_versions, plan_ingest
from loop_assets.config import LoopConfig

D1, D2, D3 = date(2026, 11, 16), date(2026, 11, 17), date(2026, 11, 18)
NOW = datetime(2026, 11, 27, tzinfo=UTC)
CONFIG = LoopConfig()


def record(trace_id: str, day: date, text: str = "where is my order?") -> str:
    return json.dumps(
        {
            "id": trace_id,
            "timestamp": f"{day.isoformat()}T10:00:00Z",
            "app": "support_bot",
            "request": {"messages": [{"role": "user", "content": text}]},
            "response": {"choices": [{"message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}]},
        }
    )


def write(path: Path, lines: list[str], age_s: int) -> None:
    path.write_text("\n".join(lines) + "\n")
    stamp = NOW.timestamp() - age_s
    os.utime(path, (stamp, stamp))


@pytest.fixture
def incoming(tmp_path: Path) -> Path:
    folder = tmp_path / "incoming"
    folder.mkdir()
    write(folder / "a.jsonl", [record("a1", D1), record("a2", D1), record("a3", D2)], 300)  # one late line: D2
    write(folder / "b.jsonl", [record("b1", D2), record("a3", D2), "{broken"], 200)  # a redelivered a3
    write(folder / "c.jsonl", [record("c1", D3)], 100)
    return folder


def stored_after(incoming: Path, fingerprint: str) -> tuple[pl.DataFrame, pl.DataFrame, set[date]]:
    """ingested_files, ingest_manifest and the written days after ingesting every day."""
    result = capture.ingest(incoming, CONFIG.ingest, "run-1", now=NOW)
    known = result.files.with_columns(fingerprint=pl.lit(fingerprint), ingest_run_id=pl.lit("run-1"))
    return known, result.manifest, set(result.manifest["partition_day"])


def test_an_unchanged_day_is_left_as_it_is_and_files_of_other_days_are_not_read(incoming):
    fp = ingest_fingerprint(CONFIG)
    known, manifest, written = stored_after(incoming, fp)
    assert dict(zip(known["source_file"], known["days"].to_list(), strict=True)) == {
        "a.jsonl": [D1, D2],
        "b.jsonl": [D2],
        "c.jsonl": [D3],
    }
    plan = plan_ingest([D1, D2], listed_versions(incoming), known, manifest, written, fp)
    assert plan.reused_days == [D1, D2] and plan.read_days == []

    # a changed file: every requested day is read again; an unchanged file of other days is not read
    write(incoming / "b.jsonl", [record("b1", D2), record("b2", D2)], 50)
    plan = plan_ingest([D1], listed_versions(incoming), known, manifest, written, fp)
    assert plan.read_days == [D1] and plan.reused_days == [] and plan.skip_files == {"c.jsonl"}
    plan = plan_ingest([D2], listed_versions(incoming), known, manifest, written, fp)
    assert plan.skip_files == {"c.jsonl"}  # a.jsonl holds a D2 line: it is read


def test_new_files_other_settings_deleted_files_and_unwritten_days_are_read(incoming):
    fp = ingest_fingerprint(CONFIG)
    known, manifest, written = stored_after(incoming, fp)
    listed = listed_versions(incoming)

    assert plan_ingest([D1], listed, known, manifest, written, "another").read_days == [D1]
    assert plan_ingest([D1], listed, known, manifest, written, "another").skip_files == set()
    assert plan_ingest([D1], listed, known, manifest, written - {D1}, fp).read_days == [D1]
    assert plan_ingest([D1], listed, known, manifest, written, fp, reuse=False).read_days == [D1]

    write(incoming / "d.jsonl", [record("d1", D3)], 10)
    assert plan_ingest([D1, D3], listed_versions(incoming), known, manifest, written, fp).reused_days == []

    (incoming / "d.jsonl").unlink()
    (incoming / "c.jsonl").unlink()  # the day's rows came from a file that is gone: read it again
    plan = plan_ingest([D1, D3], listed_versions(incoming), known, manifest, written, fp)
    assert plan.reused_days == [D1] and plan.read_days == [D3]


def test_skipping_files_gives_exactly_the_rows_reading_them_would(incoming):
    fp = ingest_fingerprint(CONFIG)
    known, manifest, written = stored_after(incoming, fp)
    write(incoming / "a.jsonl", [record("a1", D1), record("a2", D1), record("a3", D2), record("a4", D1)], 40)
    for days in ([D1], [D2], [D3], [D1, D3]):
        plan = plan_ingest(days, listed_versions(incoming), known, manifest, written, fp)
        assert plan.skip_files, days
        full = capture.ingest(incoming, CONFIG.ingest, "run-2", days=set(days), now=NOW)
        lean = capture.ingest(incoming, CONFIG.ingest, "run-2", days=set(days), now=NOW, skip_files=plan.skip_files)
        for frame in ("traces", "quarantine", "manifest", "skipped"):
            assert getattr(lean, frame).equals(getattr(full, frame)), (days, frame)
        assert set(lean.files["source_file"]) == set(full.files["source_file"]) - plan.skip_files


def test_the_fingerprint_follows_what_turns_bytes_into_rows():
    fp = ingest_fingerprint(CONFIG)
    assert ingest_fingerprint(LoopConfig()) == fp
    assert ingest_fingerprint(LoopConfig.model_validate({"ingest": {"context_min_chars": 10}})) != fp
    assert ingest_fingerprint(LoopConfig.model_validate({"redaction": {"at_ingest": True}})) != fp
    assert ingest_fingerprint(LoopConfig.model_validate({"scoring": {"latency": {"default_budget_ms": 1}}})) == fp


def test_rows_of_no_day_are_stored_by_whichever_run_reads_the_file_and_no_days_replace_deletes_them(incoming, tmp_path):
    import duckdb

    from loop_assets.capture.accounting import record_accounting
    from loop_assets.capture.ingest_plan import plan_from_warehouse, store_ingest, stored_versions

    write(incoming / "junk.jsonl", ["{broken", "not json either"], 50)  # no record has a day

    def run(days: list[date], run_id: str):
        plan = plan_from_warehouse(con, incoming, days, CONFIG)
        if plan.read_days:
            result = capture.ingest(
                incoming, CONFIG.ingest, run_id, set(plan.read_days), NOW, plan.skip_files, plan.first_read
            )
            store_ingest(con, plan, result, run_id)
        return plan

    no_day = "SELECT source_line, ingest_run_id FROM quarantined_records WHERE partition_day IS NULL ORDER BY ALL"
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        run([D1], "r1")  # a run of another day reads the new file and stores its rows under no day
        assert con.execute(no_day).fetchall() == [(1, "r1"), (2, "r1")]
        assert "junk.jsonl" in stored_versions(con)
        assert run([D3], "r2").skip_files >= {"junk.jsonl"}  # unchanged, no day: not read again
        run([D1, D2, D3], "r3")
        assert con.execute(no_day).fetchall() == [(1, "r1"), (2, "r1")]  # replacing days leaves them
        write(incoming / "junk.jsonl", ["{broken", "not json either", "{third"], 20)
        run([D2], "r4")  # the grown file is read again: its rows replaced, never duplicated
        assert con.execute(no_day).fetchall() == [(1, "r4"), (2, "r4"), (3, "r4")]
        [junk] = record_accounting(con, [D2]).filter(pl.col("source_file") == "junk.jsonl").to_dicts()
        assert junk["partition_day"] is None and junk["ok"] and junk["rows_in_file"] == junk["file_records"] == 3
