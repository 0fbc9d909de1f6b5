"""Which day partitions a trace file's records fall in, without holding a large file in memory.

The sensor and `eval-loop materialize` need this for every new or grown file. A small file, or a
whole-document `.json` file, is read exactly through the same parsers as the ingest, so every format is
covered (the ingest streams lines and bounds a document's size). A large plain file is sampled: blocks
spread evenly over the file, whole lines only. A large compressed file cannot be sought, so it is
streamed and every k-th line parsed. Trace logs are written roughly in time order, so the sampled
minimum and maximum day bound the days in between; the sensor requests the whole range.

When the sample finds no day at all (a large file of lines that do not parse: UTF-16, one huge line,
an unknown format), the file is read exactly after all. A file none of whose records has a day (and an
entry that is refused, never opened) has no days: its records are quarantined under no day by the next
run that reads it, whichever days that run is for; no day is created or run for it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import date
from pathlib import Path

from loop_assets.capture import ingest as capture
from loop_assets.capture.formats import FORMATS, detect_format
from loop_assets.capture.formats.jsonl import DAMAGED, _chunks, sniff
from loop_assets.capture.incoming import Entry, trace_kind
from loop_assets.capture.workers import Workers
from loop_assets.config import IngestConfig

SMALL_FILE_BYTES = 16 * 1024 * 1024
BLOCKS = 32
BLOCK_BYTES = 64 * 1024
GZIP_EVERY = 50


def entry_days(
    entry: Entry, ingest: IngestConfig, small_file_bytes: int = SMALL_FILE_BYTES, workers: Workers | None = None
) -> set[date]:
    """`file_days` of an entry of `incoming.scan_incoming`; none for a refused entry (a link leading
    outside, a FIFO): it is never opened, and its one quarantine row has no day."""
    if entry.refused is not None:
        return set()
    return file_days(entry.path, ingest, small_file_bytes, document=entry.is_document, workers=workers)


def entries_days(entries: Iterable[Entry], ingest: IngestConfig) -> dict[str, set[date]]:
    """`entry_days` of each entry, by its name, with one pool of workers for every file's exact read
    rather than one started and stopped for each."""
    with Workers.configured(ingest) as workers:
        return {entry.name: entry_days(entry, ingest, workers=workers) for entry in entries}


def file_days(
    path: Path,
    ingest: IngestConfig,
    small_file_bytes: int = SMALL_FILE_BYTES,
    document: bool | None = None,
    workers: Workers | None = None,
) -> set[date]:
    """Days of the records in `path` (exact for small files and for large ones whose sample has no day,
    sampled for other large ones). `workers`: a pool shared by the calls for many files, so an exact
    read does not start and stop processes of its own for each file."""
    document = trace_kind(path.name) == "document" if document is None else document
    if document or path.stat().st_size <= small_file_bytes:
        return capture.record_days(path, ingest, document=document, workers=workers)
    with path.open("rb") as handle:
        compression = sniff(handle)
    lines = _stream_sample(path, compression) if compression else _block_sample(path)
    return _days_of_lines(list(lines), ingest) or capture.record_days(path, ingest, document=document, workers=workers)


def _block_sample(path: Path, blocks: int = BLOCKS, block_bytes: int = BLOCK_BYTES) -> Iterator[bytes]:
    """Whole lines from `blocks` evenly spaced windows of the file, the first and last included."""
    size = path.stat().st_size
    step = max(1, (size - block_bytes) // max(1, blocks - 1))
    with path.open("rb") as handle:
        for offset in sorted({min(i * step, max(0, size - block_bytes)) for i in range(blocks)}):
            handle.seek(offset)
            chunk = handle.read(block_bytes)
            lines = chunk.split(b"\n")
            # the first piece is a partial line unless the window starts the file; the last is partial
            yield from lines[0 if offset == 0 else 1 : -1]


def _stream_sample(path: Path, compression: str, every: int = GZIP_EVERY) -> Iterator[bytes]:
    """Every `every`-th line of a compressed file, and its last; a line longer than a block is skipped."""
    if compression not in ("gzip", "bzip2", "xz"):
        return  # not readable here (zstd): the exact read says so
    last = b""
    number = 0
    pending = b""
    with path.open("rb") as handle:
        try:
            for chunk in _chunks(handle, compression):
                pieces = (pending + chunk).split(b"\n")
                pending = pieces.pop()
                if len(pending) > BLOCK_BYTES:  # a huge line: not a sample worth holding
                    pending = b""
                for line in pieces:
                    if number % every == 0:
                        yield line
                    number += 1
                    last = line
        except (*DAMAGED, OSError):
            pass  # a damaged tail: the ingest quarantines it; the lines before still tell the days
    if pending:
        last = pending
    if last:
        yield last


def _days_of_lines(lines: list[bytes], ingest: IngestConfig) -> set[date]:
    objects = []
    for line in lines:
        try:
            obj = json.loads(line)
        except (ValueError, UnicodeDecodeError, RecursionError):
            continue
        if isinstance(obj, dict):
            objects.append(obj)
    name = ingest.format if ingest.format != "auto" else detect_format(objects)
    if name is None or name not in FORMATS:
        return set()
    days: set[date] = set()
    for obj in objects:
        try:
            days.update(trace["ts"].date() for trace in FORMATS[name].normalise(obj, ingest))
        except Exception:  # a bad record says nothing about days; the ingest quarantines it
            continue
    return days
