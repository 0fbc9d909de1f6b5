"""A JSON Lines line read by orjson and the format's own parser, without the steps it cannot need.

The per-record path (`jsonl.decode_line` then `records.read_one`) is written for every line there can
be, and costs ~140 µs a line of the common OpenAI chat shape: the standard library's JSON decoder, a
second decode of nearly every line to look for duplicated top-level keys (`"id"` is both the record's
and its response's key), and text cleaning that only a NaN or a lone surrogate needs. For a line that
orjson decodes to an object (orjson refuses NaN, Infinity, lone surrogates, invalid UTF-8 and a byte
order mark, the cases those steps exist for), this path gives the same row from the same parser:
`read_line` returns False for any other line, and for a line the parser rejects, and the caller reads
it the per-record way, so a quarantined line has the per-record reason. `test_fast_lines.py` reads
the same files both ways and compares every row.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from loop_assets.capture.formats.base import TraceFormat
from loop_assets.capture.formats.jsonl import IDENTITY_KEYS, SourceRecord
from loop_assets.capture.records import check_traces, digest
from loop_assets.capture.rows import Rows
from loop_assets.config import IngestConfig

FAST_FORMATS = frozenset({"openai_chat"})
"""Formats whose lines this path reads: one trace per line, parsed from the decoded object alone."""

_BIG = float(2**63)
"""A float this large may be an integer beyond 64 bits, which orjson reads as a float and the standard
library as an integer (a float beyond the double range is an orjson error: that line goes the per-record way)."""


MAX_DEPTH = 64
"""Records nested this deep or deeper go the per-record way (real trace records nest a dozen levels)."""


def read_line(
    rec: SourceRecord, fmt: TraceFormat, source_file: str, ingest: IngestConfig, now: datetime, rows: Rows
) -> bool:
    """Add the line's trace rows to `rows` and return True, or add nothing and return False."""
    raw = rec.raw
    if rec.raw_bytes != len(raw):
        return False
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return False
    if type(obj) is not dict or _needs_stdlib(raw, obj):
        return False
    try:
        traces = fmt.normalise(obj, ingest, now=now)
        if check_traces(traces, fmt.name) is not None:
            return False
        record_hash = digest(obj, rec)
    except Exception:  # a RecordError, a RecursionError ...: the per-record path says why, in its own words
        return False
    keep = ingest.quarantine_raw_max_bytes
    for trace in traces:
        rows.add_trace(trace, rec, source_file, keep, record_hash, fmt.name)
    return True


def _needs_stdlib(raw: bytes, obj: dict[str, Any]) -> bool:
    """Whether the per-record path may read the line differently: a float of `_BIG` or more; JSON nested
    `MAX_DEPTH` deep or more (how deep the standard library and the parser can follow depends on the
    stack they run on); or an identity key (`jsonl.IDENTITY_KEYS`) perhaps given twice at the top level
    (`jsonl._conflicting_keys` then decides whether the values differ). A key's quoted name occurs once
    per place it is a key, nested or not, and once per string value equal to it: when the nested keys do
    not account for every occurrence but the top-level one, the line may repeat the key at the top level."""
    if raw.count(b"{") + raw.count(b"[") >= MAX_DEPTH and _depth(obj) >= MAX_DEPTH:
        return True
    unexplained = {}
    for key in IDENTITY_KEYS.intersection(obj):
        extra = raw.count(b'"' + key.encode() + b'"') - 1
        if extra > 0:
            unexplained[key] = extra
    stack: list[Any] = list(obj.values())
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is dict:
            for key in unexplained:
                unexplained[key] -= key in item
            stack.extend(item.values())
        elif kind is list:
            stack.extend(item)
        elif kind is float and abs(item) >= _BIG:
            return True
    return any(extra > 0 for extra in unexplained.values())


def _depth(obj: Any) -> int:
    """How many containers deep `obj` nests (without recursion: it may be deeper than the stack allows)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(obj, 1)]
    while stack:
        item, depth = stack.pop()
        if type(item) is dict or type(item) is list:
            deepest = max(deepest, depth)
            values = item.values() if type(item) is dict else item
            stack.extend((value, depth + 1) for value in values)
    return deepest
