"""Large JSON Lines files are parsed in batches by worker processes: the rows are exactly the serial ones."""

from __future__ import annotations

import gzip
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from loop_assets.capture import ingest as capture
from loop_assets.capture import workers
from loop_assets.config import LoopConfig
from loop_assets.devtools.sample_traffic import SAMPLE_DIR

NOW = datetime(2026, 11, 27, tzinfo=UTC)
FRAMES = ("traces", "quarantine", "manifest", "skipped", "files")


@pytest.fixture
def incoming(tmp_path: Path) -> Path:
    """The sample week (malformed lines, late lines, a gzipped day), one day delivered twice, and a file
    whose lines are too long, not UTF-8 or not JSON in the middle of good ones."""
    folder = tmp_path / "incoming"
    shutil.copytree(SAMPLE_DIR, folder)
    first = sorted(folder.glob("*.jsonl"))[0]
    (folder / "again.jsonl").write_bytes(first.read_bytes())  # redelivered: every trace a duplicate
    good = first.read_bytes().splitlines()[:40]
    bad = [b"{not json", b"\xff\xfe bytes", b'{"id": "' + b"x" * 3000 + b'"}', b"", b"[1, 2]"]
    mixed = [line for pair in zip(good, bad * 8, strict=False) for line in pair]
    with gzip.open(folder / "mixed.jsonl.gz", "wb") as handle:
        handle.write(b"\n".join(mixed) + b"\n")
    return folder


def ingest(folder: Path, workers: int, ingest_config=None):
    config = ingest_config or LoopConfig.model_validate({"ingest": {"workers": workers}}).ingest
    return capture.ingest(folder, config, "run-1", now=NOW)


def test_worker_processes_give_exactly_the_serial_rows(incoming, monkeypatch):
    serial = ingest(incoming, workers=1)
    monkeypatch.setattr(workers, "BATCH_LINES", 37)  # many batches per file, several in flight
    parallel = ingest(incoming, workers=2)
    assert serial.traces.height > 3000 and serial.quarantine["reason_code"].to_list().count("duplicate_record") > 400
    for frame in FRAMES:
        assert getattr(parallel, frame).equals(getattr(serial, frame)), frame
    kept_bytes = parallel.quarantine.filter(pl.col("reason_code") == "duplicate_record")["raw"]
    assert kept_bytes.null_count() == 0 and kept_bytes.str.starts_with("{").all()


def test_a_batch_whose_worker_is_killed_is_parsed_in_the_run_instead(incoming, monkeypatch, tmp_path):
    serial = ingest(incoming, workers=1)
    marker = tmp_path / "paused"
    monkeypatch.setenv("EVAL_LOOP_PAUSE_AT", "capture:worker")  # workers stop at their first batch...
    monkeypatch.setenv("EVAL_LOOP_PAUSE_MARKER", str(marker))
    monkeypatch.setattr(workers, "BATCH_LINES", 200)
    done: dict[str, object] = {}
    thread = threading.Thread(target=lambda: done.update(result=ingest(incoming, workers=2)))
    thread.start()
    deadline = time.monotonic() + 60
    # both workers write the marker: wait until one has written it whole
    while len((marker.read_text() if marker.exists() else "").split()) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(int(marker.read_text().split()[1]), signal.SIGKILL)  # ...and one is killed there
    thread.join(120)
    assert not thread.is_alive()
    rescued = done["result"]
    for frame in FRAMES:
        assert getattr(rescued, frame).equals(getattr(serial, frame)), frame


def test_workers_is_validated():
    assert LoopConfig().ingest.workers == 0
    with pytest.raises(ValueError, match="workers"):
        LoopConfig.model_validate({"ingest": {"workers": -1}})


def test_a_script_without_a_main_guard_parses_in_its_own_process(tmp_path):
    # spawned workers re-import the main module: an unguarded script would run again in each of them
    folder = tmp_path / "incoming"
    folder.mkdir()
    line = (SAMPLE_DIR / "traces-2026-11-16.jsonl").read_text().splitlines()[0]
    (folder / "big.jsonl").write_text("\n".join([line] * (workers.BATCH_LINES + 10)) + "\n")
    script = tmp_path / "unguarded.py"
    script.write_text(
        "from pathlib import Path\n"
        "from loop_assets.capture import ingest as capture\n"
        "from loop_assets.capture import workers\n"
        "from loop_assets.config import LoopConfig\n"
        "print('workers', workers.Workers(2).size)\n"
        f"result = capture.ingest(Path({str(folder)!r}), LoopConfig().ingest, 'run-1')\n"
        "print('rows', result.traces.height + result.quarantine.height)\n"
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["workers 1", f"rows {workers.BATCH_LINES + 10}"]  # ran once, serially
    assert "bootstrapping" not in done.stderr
    assert workers.Workers(2).size == 2  # pytest's own main is guarded: here the pool is used
