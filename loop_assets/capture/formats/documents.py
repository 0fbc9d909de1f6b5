"""Reading whole-document JSON files (`.json`, `.json.gz`) record by record, and finding items inside records.

Exports are often one JSON document rather than JSON Lines: an OTLP export request
(`{"resourceSpans": [...]}`), a JSON array of Langfuse observations or LangSmith runs, an API page
(`{"data": [...]}` from Langfuse, `{"runs": [...]}` from LangSmith; the page's other keys, such as
`meta` and `cursors`, are pagination and not read). `read_document(path, ...)` yields
`jsonl.SourceRecord`s like the line reader does, so capture treats both alike:

- a JSON array (or an API page): one record per element. `line` is the 1-based line where the
  element starts (so a pretty-printed export points at the element; a one-line document gives line
  1 for every element), `raw` is the element's exact bytes, and `path` is its place, `(3,)` or
  `("data", 3)`; capture puts it into the trace's metadata as `source_path` (`[3]`, `data[3]`), so an
  element of a one-line document can still be found. An element longer than
  `ingest.max_record_bytes` is `too_large`; an element that is not an object is `wrong_type`.
- any other object: one record for the whole document at the line where it starts, `path` ().
  Its items (the spans of an OTLP document) are found by `locate`, so each span's `source_line`
  is the line its object starts on. The document itself is not held to `max_record_bytes`.
- whole-file problems, one record each: `unreadable_file` (line 0), `too_large` when the
  (decompressed) document is longer than `MAX_DOCUMENT_BYTES` (line 0, not parsed), `empty_file`
  (no bytes, only whitespace, or an empty array; line 0), `invalid_utf8` (at the line of the bad
  byte), `invalid_json` (at the line of the error), `wrong_type` (a top-level number, string, null).
  In a JSON array, the elements before a syntax error are read; the rest of the document from the
  broken element on is one `invalid_json` record at the line that element starts. A truncated gzip
  keeps the elements decoded before the damage; the damage is one `truncated_gzip` record.
- a `.json` file that holds several JSON values one per line (the OpenTelemetry Collector's file
  exporter writes JSON Lines whatever the file is called) is read as JSON Lines.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from loop_assets.capture.formats import jsonl
from loop_assets.capture.formats.base import RecordError, json_type, show
from loop_assets.capture.formats.jsonl import BOM, SourceRecord

MAX_DOCUMENT_BYTES = 256 * 1024 * 1024
"""A whole-document file larger than this (decompressed) is one `too_large` record, not parsed."""

DOCUMENT_SUFFIXES = (".json", ".json.gz")
PAGE_KEYS = ("data", "runs")
"""Keys of an API page whose list holds the records."""

_WS = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


def is_document(path: Path) -> bool:
    return path.name.lower().endswith(DOCUMENT_SUFFIXES)


def read_document(
    path: Path, *, max_record_bytes: int, keep_bytes: int, max_document_bytes: int = MAX_DOCUMENT_BYTES
) -> Iterator[SourceRecord]:
    """Yield every record of a whole-document JSON file (see the module docstring); never raises for bad input."""
    try:
        fh = jsonl._open(path)
    except OSError as exc:
        yield _whole(0, "unreadable_file", f"cannot open the file: {jsonl._os_reason(exc)}")
        return
    damage: str | None = None
    data = bytearray()
    with fh:
        try:
            compression = jsonl.sniff(fh)  # by content, never by name: a plain `.json.gz` is plain
            if compression == "zstd":
                yield _whole(0, "unreadable_file", jsonl.ZSTD_REASON)
                return
            for chunk in jsonl._chunks(fh, compression):
                data += chunk
                if len(data) > max_document_bytes:
                    yield _whole(
                        0,
                        "too_large",
                        f"the document is larger than {max_document_bytes:,} bytes (formats.documents."
                        "MAX_DOCUMENT_BYTES); not parsed: split it or export JSON Lines",
                        raw=bytes(data[:keep_bytes]),
                        size=len(data),
                    )
                    return
        except (*jsonl.DAMAGED, OSError) as exc:
            if isinstance(exc, OSError) and not jsonl._damaged(exc, compression):
                yield _whole(0, "unreadable_file", f"reading stopped: {jsonl._os_reason(exc)}")
                return
            damage = f"{compression or 'gzip'} stream is truncated or corrupt ({exc})"
    raw = bytes(data)
    if not raw.strip() and damage is None:
        yield _whole(0, "empty_file", "the file is empty (0 bytes)" if not raw else "the file holds only whitespace")
        return
    yield from _parse(path, raw, damage, max_record_bytes=max_record_bytes, keep_bytes=keep_bytes)


def _whole(line: int, code: str, reason: str, raw: bytes = b"", size: int | None = None) -> SourceRecord:
    return SourceRecord(line, raw, len(raw) if size is None else size, error=RecordError(code, reason))


def _parse(path: Path, raw: bytes, damage: str | None, *, max_record_bytes: int, keep_bytes: int):
    offset = len(BOM) if raw.startswith(BOM) else 0
    try:
        text = raw[offset:].decode("utf-8")
    except UnicodeDecodeError as exc:
        at = offset + exc.start
        line = raw[:at].count(b"\n") + 1
        code = "truncated_gzip" if damage and exc.reason == "unexpected end of data" else "invalid_utf8"
        reason = damage or f"the document is not valid UTF-8: byte 0x{raw[at]:02x} at byte offset {at} ({exc.reason})"
        yield SourceRecord(line, raw[:keep_bytes], len(raw), error=RecordError(code, reason))
        return
    data = raw[offset:]  # the bytes of `text`: valid UTF-8 decoded strictly encodes back to itself

    def problem(line: int, code: str, reason: str) -> SourceRecord:
        """The document as one problem record (its first keep_bytes kept)."""
        return SourceRecord(line, data[:keep_bytes], len(raw), error=RecordError(code, reason))

    start = _WS.match(text, 0).end()
    if start >= len(text):
        yield _whole(0, "truncated_gzip" if damage else "empty_file", damage or "the file holds only whitespace")
        return
    line_of = _Lines(text)
    try:
        obj, end = _DECODER.raw_decode(text, start)
    except json.JSONDecodeError as exc:
        if text[start] == "[":  # read the elements before the damage
            yield from _elements(text, start, (), line_of, damage, max_record_bytes, keep_bytes)
            return
        code, reason = _json_problem(exc, damage)
        yield problem(exc.lineno, code, reason)
        return
    except RecursionError:
        yield problem(line_of(start), "invalid_json", "invalid JSON: nested too deeply to parse")
        return
    after = _WS.match(text, end).end()
    if after < len(text):
        if "\n" in text[end:after]:  # several values, one per line: JSON Lines in a .json file
            yield from jsonl.read_records(path, max_record_bytes=max_record_bytes, keep_bytes=keep_bytes)
            return
        line = line_of(after)
        yield problem(line_of(start), "invalid_json", f"invalid JSON: extra data after the document at line {line}")
        return
    if isinstance(obj, list):
        yield from _elements(text, start, (), line_of, damage, max_record_bytes, keep_bytes)
        return
    if not isinstance(obj, dict):
        yield problem(line_of(start), "wrong_type", f"a document must be a JSON object or array, got {json_type(obj)}")
        return
    page = _page_key(obj)
    if page is not None:
        where = locate(data, {(page,)})
        array_start = len(data[: where[(page,)][0]].decode("utf-8")) if (page,) in where else None
        if array_start is not None:
            yield from _elements(text, array_start, (page,), line_of, damage, max_record_bytes, keep_bytes)
            return
    body = _bytes(text[start:end])
    yield SourceRecord(line_of(start), body, len(body), obj=obj)
    if damage:
        yield _whole(line_of(len(text)) + 1, "truncated_gzip", damage + "; the document before it was read")


def _page_key(obj: dict[str, Any]) -> str | None:
    if any(k in obj for k in ("resourceSpans", "resource_spans", "run_type", "type", "observations", "traceId")):
        return None
    for key in PAGE_KEYS:
        if isinstance(obj.get(key), list):
            return key
    return None


def _elements(
    text: str,
    start: int,
    prefix: tuple[str | int, ...],
    line_of: _Lines,
    damage: str | None,
    max_record_bytes: int,
    keep_bytes: int,
) -> Iterator[SourceRecord]:
    """One record per element of the array starting at text[start] ('['); stops at the first syntax error."""
    i = _WS.match(text, start + 1).end()
    index = 0
    while True:
        if i < len(text) and text[i] == "]":
            if index == 0:
                yield _whole(0, "empty_file", "the document is an empty JSON array: no records")
            elif damage:
                yield _whole(line_of(len(text)) + 1, "truncated_gzip", damage + "; the elements before it were read")
            return
        if index > 0:
            if i < len(text) and text[i] == ",":
                i = _WS.match(text, i + 1).end()
            else:
                yield _rest(text, i, line_of, damage, keep_bytes, "expected ',' or ']' after an element")
                return
        try:
            obj, end = _DECODER.raw_decode(text, i)
        except json.JSONDecodeError as exc:
            yield _rest(text, i, line_of, damage, keep_bytes, f"{exc.msg} at line {exc.lineno} column {exc.colno}")
            return
        except RecursionError:
            yield _rest(text, i, line_of, damage, keep_bytes, "nested too deeply to parse")
            return
        body = _bytes(text[i:end])
        path = (*prefix, index)
        line = line_of(i)
        if len(body) > max_record_bytes:
            reason = (
                f"array element {index} is {len(body):,} bytes, longer than ingest.max_record_bytes "
                f"({max_record_bytes:,}); not parsed"
            )
            yield SourceRecord(line, body[:keep_bytes], len(body), error=RecordError("too_large", reason), path=path)
        elif not isinstance(obj, dict):
            reason = f"array element {index} must be a JSON object, got {json_type(obj)} {show(obj)}"
            yield SourceRecord(line, body, len(body), error=RecordError("wrong_type", reason), path=path)
        else:
            yield SourceRecord(line, body, len(body), obj=obj, path=path)
        index += 1
        i = _WS.match(text, end).end()


def _rest(text: str, i: int, line_of: _Lines, damage: str | None, keep_bytes: int, what: str) -> SourceRecord:
    body = _bytes(text[i:])
    if damage:
        code, reason = "truncated_gzip", f"{damage}; the elements before line {line_of(i)} were read"
    else:
        code, reason = "invalid_json", f"invalid JSON from here to the end of the document: {what}"
    return SourceRecord(line_of(i), body[:keep_bytes], len(body), error=RecordError(code, reason))


def _json_problem(exc: json.JSONDecodeError, damage: str | None) -> tuple[str, str]:
    if damage:
        return "truncated_gzip", f"{damage}; the document could not be read"
    return "invalid_json", f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"


def _bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


class _Lines:
    """1-based line of a character offset, counting forward from the last offset asked (offsets mostly grow)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.line = 1

    def __call__(self, offset: int) -> int:
        if offset < self.pos:
            self.pos, self.line = 0, 1
        self.line += self.text.count("\n", self.pos, offset)
        self.pos = offset
        return self.line


# --- finding items inside a record -------------------------------------------------------------------

_TOKENS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{},]')


class _Frame:
    __slots__ = ("expect_key", "is_object", "key", "path", "start")

    def __init__(self, is_object: bool, start: int, path: tuple[str | int, ...] | None) -> None:
        self.is_object = is_object
        self.key: str | int | None = None if is_object else 0
        self.expect_key = is_object
        self.start = start
        self.path = path


def locate(raw: bytes, wanted: set[tuple[str | int, ...]]) -> dict[tuple[str | int, ...], tuple[int, int]]:
    """Byte offsets (start, end) of the objects and arrays at the `wanted` paths of a valid JSON text.

    A path is the keys and indexes from the top, e.g. ("resourceSpans", 0, "scopeSpans", 0, "spans", 3).
    One pass over the structural tokens; strings are skipped whole, nothing is decoded but keys.
    """
    if not wanted:
        return {}
    deepest = max(len(p) for p in wanted)
    found: dict[tuple[str | int, ...], tuple[int, int]] = {}
    frames: list[_Frame] = []
    for match in _TOKENS.finditer(raw):
        token = match.group()
        first = token[0]
        if first == 0x22:  # a string: a key when an object expects one
            if frames and frames[-1].expect_key:
                top = frames[-1]
                try:
                    top.key = json.loads(token)
                except ValueError:
                    top.key = token.decode("utf-8", "replace")[1:-1]
                top.expect_key = False
        elif first in (0x7B, 0x5B):  # { [
            path = None
            if len(frames) <= deepest:
                here = tuple(f.key for f in frames)
                if here in wanted:
                    path = here
            frames.append(_Frame(first == 0x7B, match.start(), path))
        elif first in (0x7D, 0x5D):  # } ]
            if not frames:
                break
            frame = frames.pop()
            if frame.path is not None:
                found[frame.path] = (frame.start, match.end())
                if len(found) == len(wanted):
                    break
        elif frames:  # ','
            top = frames[-1]
            if top.is_object:
                top.expect_key = True
            else:
                top.key = (top.key or 0) + 1  # type: ignore[operator]
    return found


def path_text(path: tuple[str | int, ...]) -> str:
    """("resourceSpans", 0, "spans", 3) -> "resourceSpans[0].spans[3]"; (3,) -> "[3]"."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
