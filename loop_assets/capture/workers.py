"""Large JSON Lines files parsed in batches by worker processes, merged back into exactly the serial rows."""

from __future__ import annotations

import functools
import itertools
import multiprocessing
import os
import sys
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime
from itertools import chain
from pathlib import Path
from typing import Any

import polars as pl

from loop_assets.capture.fast_lines import FAST_FORMATS, read_line
from loop_assets.capture.formats import FORMATS
from loop_assets.capture.formats.base import (
    TraceFormat,
)
from loop_assets.capture.formats.jsonl import SourceRecord, decoded
from loop_assets.capture.records import read_one
from loop_assets.capture.rows import QUARANTINE_SCHEMA, Rows, raw_text
from loop_assets.config import IngestConfig
from loop_assets.warehouse import pause_point

BATCH_LINES = 5_000
"""Lines per batch a worker parses. A file of one batch or less is parsed in the run's own process."""


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@functools.cache
def _main_is_guarded() -> bool:
    """Whether spawned workers may start: each re-imports the program's main module, which must keep
    its work under `if __name__ == "__main__":` (the CLI, Dagster and pytest do). A script without that
    guard would run again in every worker, so its ingest parses in its own process instead."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if path is None:  # an interactive session or a notebook: nothing is re-imported
        return True
    try:
        source = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return "__main__" in source


class Workers:
    """A pool of `size` processes, started on first use (small files never start one)."""

    def __init__(self, size: int) -> None:
        self.size = max(1, size) if _main_is_guarded() else 1
        self._pool: ProcessPoolExecutor | None = None

    @classmethod
    def configured(cls, ingest: IngestConfig) -> Workers:
        """`ingest.workers` processes, or one per core."""
        return cls(ingest.workers or cores())

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def submit(self, batch: list[SourceRecord], *args: Any) -> Future | None:
        """The batch's future result, or None when the pool is broken (a worker was killed)."""
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self.size, mp_context=multiprocessing.get_context("spawn"))
        # plain tuples for undecoded lines: pickling them is ~8x cheaper than pickling the records
        payload = [(rec.line, rec.raw, rec.raw_bytes) if rec.undecoded else rec for rec in batch]
        try:
            return self._pool.submit(_parse_batch_in_worker, payload, *args)
        except BrokenProcessPool:
            return None

    def close(self) -> None:
        if self._pool is not None:
            if getattr(self._pool, "_broken", False):
                # A killed worker broke the pool. The pool's own clean-up joins the thread that feeds the
                # workers, which can sit forever on a pipe no live worker reads (cpython gh-107219 fixed
                # this on Windows only): the surviving workers are killed, so nothing waits on them.
                for process in list((getattr(self._pool, "_processes", None) or {}).values()):
                    process.kill()
            self._pool.shutdown(cancel_futures=True)
            self._pool = None


def _parse_batch(
    batch: list[SourceRecord | tuple[int, bytes, int]],
    fmt_name: str,
    source_file: str,
    ingest: IngestConfig,
    now: datetime,
) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """The rows of a run of lines, numbered from 1 (`_merge_batch` moves them into place).

    Runs in a worker process: the same `read_one` as the serial path, so the rows are the same; a line of a
    format in `fast_lines.FAST_FORMATS` is first offered to `fast_lines.read_line`, which gives the same row."""
    rows = Rows()
    fmt = FORMATS[fmt_name]
    fast = fmt_name in FAST_FORMATS and ingest.fast_lines
    for item in batch:
        rec = SourceRecord(*item, undecoded=True) if isinstance(item, tuple) else item
        if fast and rec.undecoded and read_line(rec, fmt, source_file, ingest, now, rows):
            continue
        read_one(decoded(rec, ingest.max_record_bytes), fmt, "", source_file, ingest, now, rows, [])
    traces = pl.concat([*rows.trace_chunks, rows.trace_frame()])
    return traces, pl.DataFrame(rows.quarantine, schema=QUARANTINE_SCHEMA), rows.seq


def _parse_batch_in_worker(*args: Any) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """`_parse_batch` in a worker process."""
    pause_point("capture:worker")  # test-only hook (a worker killed mid-batch), inert unless EVAL_LOOP_PAUSE_AT
    return _parse_batch(*args)


def read_in_batches(
    lines: Iterator[SourceRecord],
    fmt: TraceFormat,
    source_file: str,
    ingest: IngestConfig,
    now: datetime,
    rows: Rows,
    workers: Workers,
) -> None:
    """The rest of a JSON Lines file of a format with one trace per line: batches of lines parsed by the
    workers (a few in flight, merged in file order), or here when the file is one batch or there is one core.

    A batch whose worker fails (a killed process) is parsed here instead: nothing is lost."""
    batches = _batched(lines, BATCH_LINES)
    first = next(batches, None)
    if first is None:
        return
    second = next(batches, None)
    args = (fmt.name, source_file, ingest, now)
    if second is None or workers.size == 1:
        for batch in chain([first], [second] if second else [], batches):
            _merge_batch(rows, _parse_batch(batch, *args), batch, ingest)
        return
    in_flight: deque[tuple[Future | None, list[SourceRecord]]] = deque()
    for batch in chain([first, second], batches):
        in_flight.append((workers.submit(batch, *args), batch))
        while len(in_flight) > 2 * workers.size:
            _merge_next(rows, in_flight, args, ingest)
    while in_flight:
        _merge_next(rows, in_flight, args, ingest)


def _merge_next(
    rows: Rows,
    in_flight: deque[tuple[Future | None, list[SourceRecord]]],
    args: tuple[Any, ...],
    ingest: IngestConfig,
) -> None:
    future, batch = in_flight.popleft()
    try:
        result = future.result() if future is not None else _parse_batch(batch, *args)
    except Exception:  # the worker died or could not run: the batch is still here
        result = _parse_batch(batch, *args)
    _merge_batch(rows, result, batch, ingest)


def _batched(items: Iterable[SourceRecord], size: int) -> Iterator[list[SourceRecord]]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def _merge_batch(
    rows: Rows, result: tuple[pl.DataFrame, pl.DataFrame, int], batch: list[SourceRecord], ingest: IngestConfig
) -> None:
    """Add a parsed batch to `rows` after everything read before it, as if read here.

    Its rows are renumbered after the rows so far. A worker sees only its batch, so a trace it kept
    without bytes may repeat one of an earlier batch: it gets its line's bytes here, as `Rows.add_trace`
    would have given them (one trace per line: the trace's bytes are its line's)."""
    traces, quarantine, count = result
    offset = rows.seq
    rows.seq += count
    if traces.height:
        traces = traces.with_columns(pl.col("_seq") + offset)
        keys = traces.select(pl.col("ts").dt.date(), "trace_id", "span_id").rows()
        raws = traces["_raw"].to_list()
        fill: dict[int, tuple[str, bool]] = {}
        lines: dict[int, SourceRecord] | None = None
        for i, key in enumerate(keys):
            if key not in rows.seen:
                rows.seen.add(key)
            elif raws[i] is None:
                lines = lines if lines is not None else {rec.line: rec for rec in batch}
                fill[i] = raw_text(lines[traces["source_line"][i]], ingest.quarantine_raw_max_bytes)
        if fill:
            at = pl.Series(list(fill), dtype=pl.UInt32)
            traces = traces.with_columns(
                traces["_raw"].scatter(at, [raw for raw, _ in fill.values()]),
                traces["_raw_truncated"].scatter(at, [cut for _, cut in fill.values()]),
            )
        rows.flush_traces()  # the rows read here before this batch stay before it
        rows.trace_chunks.append(traces)
    if quarantine.height:
        for column, values in quarantine.with_columns(pl.col("_seq") + offset).to_dict(as_series=False).items():
            rows.quarantine[column].extend(values)
