"""Reading JSONL files (plain or gzip) record by record, without ever crashing.

`read_records(path, ...)` yields one `SourceRecord` per physical line (1-based), in file order: either
the decoded JSON object, or a `RecordError` saying what is wrong with the line. Every line is
accounted for, and a problem of the whole file is one more record:

- `empty_file`: the file has no lines (0 bytes, or a gzip of nothing): one record at line 0.
- `unreadable_file`: the file cannot be opened (line 0), or an I/O error stops reading
  (line = last line read + 1, carrying the bytes of the unfinished line).
- `truncated_gzip`: the gzip stream ends early or is corrupt. The complete lines decoded before
  the damage are yielded normally; then one record at line = last line + 1 carries the bytes of
  the unfinished line (possibly none).
- `too_large`: a line longer than `max_record_bytes`. It is read in bounded chunks: at most
  `max_record_bytes + 1` bytes of one line are held at any time, only its first `keep_bytes`
  are kept (for the quarantine's `raw`), the rest is counted and discarded.
- `blank_line`: a line that is empty or only whitespace.
- `invalid_utf8`: not UTF-8 (the raw bytes are kept; capture stores them backslash-escaped).
- `invalid_json`: not JSON (the reason quotes the parser's message and column).
- `wrong_type`: JSON, but not an object (an array, a number, a string, null).

Line terminators are `\\n` or `\\r\\n`; `raw_bytes` is the line's size without its terminator, so the
sizes of all lines plus their terminators add up to the (decompressed) file size. A UTF-8 byte order
mark at the start of a line is skipped for parsing (and kept in `raw`).

Compression is recognised by the file's first bytes, never by its name (`sniff`): gzip, bzip2 and xz
are decompressed whatever the file is called, and a file named `.gz` that holds plain text is read as
plain text. A damaged bzip2 or xz stream is a `truncated_gzip` record like a damaged gzip one (its
reason names the compression). Zstandard, which the standard library cannot read, is one
`unreadable_file` record saying so.
"""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from loop_assets.capture.formats.base import RecordError, json_type, show

CHUNK_BYTES = 64 * 1024
BOM = b"\xef\xbb\xbf"
GZIP_MAGIC = b"\x1f\x8b"
MAGIC = {GZIP_MAGIC: "gzip", b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz", b"\x28\xb5\x2f\xfd": "zstd"}
"""The first bytes of each compression format, and its name."""
_WHITESPACE = b" \t\r\n\f\v"


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """One physical line of a trace file (or, at line 0 / after the last line, a whole-file problem)."""

    line: int
    raw: bytes
    """The line without its terminator; only the first `keep_bytes` when the line is too large."""
    raw_bytes: int
    """Exact size of the line without its terminator."""
    obj: dict[str, Any] | None = None
    error: RecordError | None = None
    path: tuple[str | int, ...] = ()
    """Where the record sits in a whole-document file (`formats.documents`): (3,) for the 4th array element."""
    undecoded: bool = False
    """A line read with `decode=False`: `decoded` turns it into the record `read_records` would have given."""

    @property
    def ok(self) -> bool:
        return self.error is None


def primed(head: list[SourceRecord], rest: Iterable[SourceRecord]) -> tuple[list[SourceRecord], Iterator[SourceRecord]]:
    """(head, rest) with the first record of `rest` moved into an empty `head`, so a look at the head
    (is this file a Batch output, an OTLP span export?) has a record to look at."""
    rest = iter(rest)
    if not head:
        first = next(rest, None)
        head = [first] if first is not None else []
    return head, rest


def _open(path: Path) -> IO[bytes]:
    return open(path, "rb")


def sniff(fh: IO[bytes]) -> str | None:
    """The compression of an open file by its first bytes ("gzip", "bzip2", "xz", "zstd"), None for
    none; the file is left at its start."""
    head = fh.read(6)
    fh.seek(0)
    return next((name for magic, name in MAGIC.items() if head.startswith(magic)), None)


ZSTD_REASON = (
    "the file is compressed with Zstandard, which eval-loop cannot read (Python's standard library has no "
    "zstd): decompress it (`zstd -d FILE`) or compress it with gzip, bzip2 or xz"
)
DAMAGED = (EOFError, zlib.error, gzip.BadGzipFile, lzma.LZMAError)
"""What a damaged gzip or xz stream raises (a damaged bzip2 stream raises OSError: see `_damaged`)."""


def _chunks(fh: IO[bytes], compression: str | bool | None) -> Iterator[bytes]:
    """The decompressed bytes of the file in chunks of at most CHUNK_BYTES.

    `compression` is `sniff`'s answer (True: gzip). `read1` returns everything decompressed before a
    truncation or corruption is noticed, so no complete line before the damage is lost.
    """
    read: Callable[[int], bytes] = fh.read
    if compression is True or compression == "gzip":
        read = gzip.GzipFile(fileobj=fh, mode="rb").read1
    elif compression in ("bzip2", "xz"):
        opener: Any = bz2.BZ2File if compression == "bzip2" else lzma.LZMAFile
        read = opener(fh, mode="rb").read1
    while True:
        chunk = read(CHUNK_BYTES)
        if not chunk:
            return
        yield chunk


def decode_line(line: int, raw: bytes, size: int, too_large: bool, max_record_bytes: int) -> SourceRecord:
    """Turn one complete line into a SourceRecord (decoded object or problem)."""

    def problem(code: str, reason: str) -> SourceRecord:
        return SourceRecord(line, raw, size, error=RecordError(code, reason))

    if too_large:
        return problem(
            "too_large",
            f"line is {size:,} bytes, longer than ingest.max_record_bytes ({max_record_bytes:,}); not parsed",
        )
    body = raw[len(BOM) :] if raw.startswith(BOM) else raw
    if not body.strip(_WHITESPACE):
        return problem("blank_line", "line is empty" if not body else "line holds only whitespace")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = exc.start + (len(raw) - len(body))
        return problem(
            "invalid_utf8",
            f"line is not valid UTF-8: byte 0x{body[exc.start]:02x} at byte offset {offset} ({exc.reason})"
            + encoding_hint(raw),
        )
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        return problem("invalid_json", f"invalid JSON: {exc.msg} at column {exc.colno}" + encoding_hint(raw))
    except RecursionError:
        return problem("invalid_json", "invalid JSON: nested too deeply to parse")
    except ValueError as exc:  # e.g. an integer literal with too many digits
        return problem("invalid_json", f"invalid JSON: {exc}")
    if not isinstance(obj, dict):
        return problem("wrong_type", f"a record must be a JSON object, got a top-level {json_type(obj)}")
    clash = _conflicting_keys(text, obj)
    if clash:
        return SourceRecord(line, raw, size, error=RecordError("invalid_value", clash))
    return SourceRecord(line, raw, size, obj=obj)


IDENTITY_KEYS = frozenset(
    {
        *("id", "trace_id", "traceId", "span_id", "spanId", "run_id", "request_id"),
        *("app", "app_name", "application", "service", "service_name", "project"),
        *("timestamp", "ts", "time", "created", "created_at", "start_time", "startTime", "model"),
    }
)
"""Top-level keys that say which trace a record is, whose app and when: logged twice with different
values, which one a parser keeps is a guess (Python and JavaScript keep the last, others the first)."""


def _conflicting_keys(text: str, obj: dict[str, Any]) -> str | None:
    """Why the record is ambiguous: an identity key (`IDENTITY_KEYS`) given twice at the top level with
    different values; None otherwise. Cheap: only a key whose quoted name occurs twice is looked at again."""
    suspects = [k for k in IDENTITY_KEYS.intersection(obj) if text.count(f'"{k}"') > 1]
    if not suspects:
        return None
    calls: list[dict[str, list[Any]]] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: dict[str, list[Any]] = {}
        for key, value in items:
            seen.setdefault(key, []).append(value)
        calls.append(seen)
        return dict(items)

    try:
        json.loads(text, object_pairs_hook=pairs)
    except (ValueError, RecursionError):
        return None
    top = calls[-1]  # the outermost object is completed last
    clashes = [
        f"`{k}` ({', '.join(show(v, 40) for v in top[k])})"
        for k in sorted(suspects)
        if len(top.get(k, ())) > 1 and any(v != top[k][0] for v in top[k][1:])
    ]
    if not clashes:
        return None
    return (
        f"the record gives {', '.join(clashes)} more than once with different values: which one is meant is "
        "a guess (JSON parsers disagree), so it is kept here rather than read; log each key once"
    )


_UTF16_BOMS = {b"\xff\xfe\x00\x00": "UTF-32 (little-endian)", b"\x00\x00\xfe\xff": "UTF-32 (big-endian)"}
_UTF16_BOMS |= {b"\xff\xfe": "UTF-16 (little-endian)", b"\xfe\xff": "UTF-16 (big-endian)"}


def encoding_hint(raw: bytes) -> str:
    """ "; the file looks UTF-16 ..." when the bytes are another Unicode encoding, else ""."""
    name = next((n for bom, n in _UTF16_BOMS.items() if raw.startswith(bom)), None)
    if name is None and raw.count(b"\x00") * 3 >= len(raw) > 1:  # ASCII text in UTF-16: every other byte NUL
        name = "UTF-32" if raw.count(b"\x00\x00\x00") * 4 >= len(raw) - 3 > 0 else "UTF-16"
    if name is None:
        return ""
    return (
        f"; the file looks {name}-encoded, not UTF-8: re-encode it as UTF-8 (e.g. "
        f"`iconv -f {name.split()[0]} -t UTF-8 FILE`) and deliver it again"
    )


def decoded(rec: SourceRecord, max_record_bytes: int) -> SourceRecord:
    """The record of a line read with `decode=False` (any other record as it is)."""
    return decode_line(rec.line, rec.raw, rec.raw_bytes, False, max_record_bytes) if rec.undecoded else rec


def read_records(path: Path, *, max_record_bytes: int, keep_bytes: int, decode: bool = True) -> Iterator[SourceRecord]:
    """Yield every line of a JSONL or JSONL.gz file as a SourceRecord; never raises for bad input.

    `keep_bytes` is how much of a too-large line is kept (capture passes quarantine_raw_max_bytes);
    it is capped at max_record_bytes + 1. With `decode=False` lines that fit are yielded undecoded
    (`decoded` decodes one), so another process can parse them.
    """
    keep_bytes = min(keep_bytes, max_record_bytes + 1)
    try:
        fh = _open(path)
    except OSError as exc:
        yield SourceRecord(0, b"", 0, error=RecordError("unreadable_file", f"cannot open the file: {_os_reason(exc)}"))
        return

    with fh:
        try:
            compression = sniff(fh)
        except OSError as exc:
            yield SourceRecord(
                0, b"", 0, error=RecordError("unreadable_file", f"cannot read the file: {_os_reason(exc)}")
            )
            return
        if compression == "zstd":
            yield SourceRecord(0, b"", 0, error=RecordError("unreadable_file", ZSTD_REASON))
            return

        line = 0
        buf = bytearray()  # the current line (its first keep_bytes once it is too large)
        size = 0  # bytes of the current line so far, terminator excluded
        too_large = False
        last_cr = False  # whether the last byte of the current line so far is '\r'
        limit = max_record_bytes + 1  # +1: a '\r' before '\n' belongs to the terminator

        def add(piece: bytes) -> None:
            nonlocal size, too_large, last_cr
            if not piece:
                return
            size += len(piece)
            last_cr = piece[-1:] == b"\r"
            if not too_large and len(buf) + len(piece) <= limit:
                buf.extend(piece)
                return
            too_large = True
            room = keep_bytes - len(buf)
            if room > 0:
                buf.extend(piece[:room])
            elif room < 0:
                del buf[keep_bytes:]

        try:
            for chunk in _chunks(fh, compression):
                start = 0
                while True:
                    newline = chunk.find(b"\n", start)
                    if newline < 0:
                        add(chunk[start:])
                        break
                    add(chunk[start:newline])
                    start = newline + 1
                    line += 1
                    yield _finish(line, buf, size, too_large, last_cr, max_record_bytes, keep_bytes, decode)
                    buf.clear()
                    size, too_large, last_cr = 0, False, False
        except (*DAMAGED, OSError) as exc:
            if isinstance(exc, OSError) and not _damaged(exc, compression):
                yield SourceRecord(
                    line + 1,
                    bytes(buf),
                    size,
                    error=RecordError("unreadable_file", f"reading stopped after line {line}: {_os_reason(exc)}"),
                )
                return
            before = f"after line {line}" if line else "before the first line"
            kept = f"; the {size:,} bytes of an unfinished line after it are kept here" if size else ""
            yield SourceRecord(
                line + 1,
                bytes(buf),
                size,
                error=RecordError(
                    "truncated_gzip",
                    f"{compression if isinstance(compression, str) else 'gzip'} stream is truncated or corrupt "
                    f"{before} ({exc}); "
                    f"the {line:,} complete lines before it were read{kept}",
                ),
            )
            return

        if size or too_large:  # a last line without a terminator
            line += 1
            yield _finish(line, buf, size, too_large, last_cr, max_record_bytes, keep_bytes, decode)
        if line == 0:
            what = f"a {compression} stream of no data" if compression else "0 bytes"
            yield SourceRecord(0, b"", 0, error=RecordError("empty_file", f"the file is empty ({what})"))


def _finish(
    line: int,
    buf: bytearray,
    size: int,
    too_large: bool,
    last_cr: bool,
    max_record_bytes: int,
    keep_bytes: int,
    decode: bool = True,
) -> SourceRecord:
    if last_cr:  # '\r\n' terminator
        size -= 1
        if not too_large:
            del buf[-1:]
    too_large = size > max_record_bytes
    raw = bytes(buf[:keep_bytes]) if too_large else bytes(buf)
    if not decode and not too_large:
        return SourceRecord(line, raw, size, undecoded=True)
    return decode_line(line, raw, size, too_large, max_record_bytes)


def _damaged(exc: OSError, compression: str | bool | None) -> bool:
    """Whether an OSError while decompressing is damage to the stream rather than a failing disk."""
    return bool(compression) and exc.errno is None


def _os_reason(exc: OSError) -> str:
    return f"{type(exc).__name__}: {exc.strerror or exc}"
