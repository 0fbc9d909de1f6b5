"""OpenAI Batch API files: an output file's answers paired with the requests of the input file beside it.

The Batch API splits each call in two: the request is a line of the input file (`{custom_id, method,
url, body}`), the answer a line of the output or error file (`{id, custom_id, response: {status_code,
body}, error}`), matched by `custom_id`. When capture reads an output file whose first records are such
lines, `pair_output` adds to each line the `body` of the input line with its `custom_id`, found in the
other JSON Lines files of the same folder, as `request`; `openai_chat.batch_record` then reads the pair
as one call (the line's own bytes stay its raw record and provenance). The input file's lines are
quarantined as `no_trace`: each is a request whose answer is read from the output file.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace
from itertools import chain
from pathlib import Path
from typing import Any

from loop_assets.capture.formats.jsonl import SourceRecord, primed, read_records
from loop_assets.capture.formats.openai_chat import is_batch_line
from loop_assets.capture.incoming import trace_kind

MAX_INPUT_FILES = 50
"""At most this many other JSON Lines files of the folder are opened to look for the requests."""


def is_output_line(obj: Any) -> bool:
    return is_batch_line(obj) and "response" in obj


def is_input_line(obj: Any) -> bool:
    return is_batch_line(obj) and "url" in obj and "response" not in obj


def pair_output(
    path: Path, head: list[SourceRecord], rest: Iterable[SourceRecord], max_record_bytes: int
) -> tuple[list[SourceRecord], Iterator[SourceRecord], bool]:
    """(head, rest, paired): the records of `path` with their requests added when it is a Batch output
    file; unchanged (and paired False) otherwise. `head` is the records already decoded (detection);
    when it is empty, the first record is decoded here to tell."""
    head, rest = primed(head, rest)
    if not any(rec.obj is not None and is_output_line(rec.obj) for rec in head):
        return head, rest, False
    wanted = _requests(path, max_record_bytes)
    return [_with_request(r, wanted) for r in head], (_with_request(r, wanted) for r in rest), True


def _with_request(rec: SourceRecord, requests: dict[str, dict[str, Any]]) -> SourceRecord:
    obj = rec.obj
    if obj is None or not is_output_line(obj) or "request" in obj:
        return rec
    body = requests.get(str(obj.get("custom_id")))
    return rec if body is None else replace(rec, obj={**obj, "request": body})


def _requests(path: Path, max_record_bytes: int) -> dict[str, dict[str, Any]]:
    """custom_id -> request body, from the Batch input files (JSON Lines) in `path`'s folder."""
    found: dict[str, dict[str, Any]] = {}
    others = sorted(
        p
        for p in path.parent.iterdir()
        if p != path and not p.is_symlink() and p.is_file() and trace_kind(p.name) == "lines"
    )
    for other in others[:MAX_INPUT_FILES]:
        records = read_records(other, max_record_bytes=max_record_bytes, keep_bytes=0)
        first = next((r for r in records if r.obj is not None), None)
        if first is None or not is_input_line(first.obj):
            continue
        for rec in chain([first], records):
            if rec.obj is not None and is_input_line(rec.obj) and isinstance(rec.obj.get("body"), dict):
                found.setdefault(str(rec.obj["custom_id"]), rec.obj["body"])
    return found
