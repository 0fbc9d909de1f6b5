"""Which day partitions a trace file's records fall in, without holding a large file in memory.

The sensor needs this on every new or grown file. A small file, or a whole-document `.json` file, is
read exactly through the same parsers as the ingest, so every format is covered (the ingest streams
lines and bounds a document's size). A large plain file is sampled: blocks
spread evenly over the file, whole lines only. A large gzip file cannot be sought, so it is streamed
and every k-th line parsed. Trace logs are written roughly in time order, so the sampled minimum and
maximum day bound the days in between; the sensor requests the whole range.
"""

from __future__ import annotations

import gzip
import json
import os
import tempfile
from collections.abc import Iterator
from datetime import date
from pathlib import Path

from loop_assets import capture
from loop_assets.config import IngestConfig
from loop_assets.formats import FORMATS, detect_format

SMALL_FILE_BYTES = 16 * 1024 * 1024
BLOCKS = 32
BLOCK_BYTES = 64 * 1024
GZIP_EVERY = 50


def file_days(path: Path, ingest: IngestConfig, small_file_bytes: int = SMALL_FILE_BYTES) -> set[date]:
    """Days of the records in `path` (exact for small files, sampled for large ones)."""
    if path.stat().st_size <= small_file_bytes or _is_document(path):
        return _exact_days(path, ingest)
    lines = _gzip_sample(path) if _is_gzip(path) else _block_sample(path)
    return _days_of_lines(list(lines), ingest)


def _exact_days(path: Path, ingest: IngestConfig) -> set[date]:
    with tempfile.TemporaryDirectory(prefix="eval-loop-days-") as folder:
        link = Path(folder) / path.name
        os.symlink(path.resolve(), link)
        result = capture.ingest(Path(folder), ingest, run_id="sensor")
    return set(result.manifest["partition_day"].to_list())


def _is_document(path: Path) -> bool:
    """A whole-document file (OTLP export, JSON array): its lines are not records, so it is read whole."""
    name = path.name.lower()
    return name.endswith((".json", ".json.gz"))


def _is_gzip(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(2) == b"\x1f\x8b"


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


def _gzip_sample(path: Path, every: int = GZIP_EVERY) -> Iterator[bytes]:
    last = b""
    with gzip.open(path, "rb") as handle:
        try:
            for number, line in enumerate(handle):
                if number % every == 0:
                    yield line
                last = line
        except (EOFError, OSError):
            pass  # a damaged tail: the ingest quarantines it; the lines before still tell the days
    if last:
        yield last


def _days_of_lines(lines: list[bytes], ingest: IngestConfig) -> set[date]:
    objects = []
    for line in lines:
        try:
            obj = json.loads(line)
        except (ValueError, UnicodeDecodeError):
            continue
        if isinstance(obj, dict):
            objects.append(obj)
    name = ingest.format if ingest.format != "auto" else detect_format(objects)
    if name is None:
        return set()
    days: set[date] = set()
    for obj in objects:
        try:
            days.update(trace["ts"].date() for trace in FORMATS[name].normalise(obj, ingest))
        except Exception:  # a bad record says nothing about days; the ingest quarantines it
            continue
    return days
