"""Fuzzed input: thousands of broken variants of valid records of every format; nothing is lost, nothing raises.

A small deterministic mutator (no extra dependency; a fixed seed per case, so CI sees the same inputs
every time) starts from valid records of the five formats (the format fixtures, the capture fixture,
generated sample traffic) and breaks them the ways production logs break: truncated JSON, a wrong
JSON type in any field (null, numbers, booleans, strings, arrays, objects, NaN, huge integers),
deleted keys, deep nesting, huge strings, invalid UTF-8, byte-order marks at the start of a file or a
line, NUL and lone-surrogate escapes, control bytes, timestamps far in the past or future or without a
zone, several formats mixed in one file, CRLF files, gzip (whole and truncated), whole-document
`.json` files, and duplicate ids with different content.

For every fuzzed folder:

- `capture.ingest` never raises;
- every physical line of every JSON Lines file is in `raw_traces` or `quarantined_records` (checked
  against the bytes written, independently of the ingest's own manifest), and the manifest adds up
  per file and per partition (the `records_accounted_for` check computes the same in DuckDB);
- no record is `parser_error` (a format's parser crashing on a wrong type is a bug, not a reason);
- no two kept traces share a (day, trace_id, span_id); a duplicate id is reported as
  `duplicate_record` (same content) or `conflicting_duplicate` (different content), never merged.

One real Dagster materialisation of `raw_traces` over a fuzzed folder (every day it routes records
to) checks that the asset does not raise and its `records_accounted_for` check passes.
"""

from __future__ import annotations

import copy
import gzip
import json
import math
import os
import random
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from loop_assets.capture.formats import REASON_CODES
from loop_assets.capture.ingest import ingest
from loop_assets.capture.rows import IngestResult
from loop_assets.config import IngestConfig
from loop_assets.devtools.sample_traffic import write_traffic
from loop_assets_tests.capture.formats.helpers import check_accounting
from loop_assets_tests.loop_runner import START, Loop, checks
from loop_assets_tests.paths import FIXTURES

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
# A small max_record_bytes keeps "huge" lines cheap while still crossing the limit.
CFG = IngestConfig(max_record_bytes=64 * 1024, quarantine_raw_max_bytes=2048)
BOM = b"\xef\xbb\xbf"

TIME_KEYS = {
    "timestamp", "ts", "created_at", "start_time", "end_time", "created", "startTime", "endTime",
    "startTimeUnixNano", "endTimeUnixNano", "start_time_unix_nano", "end_time_unix_nano", "ended_at",
    "completed_at", "completionStartTime", "time", "timeUnixNano",
}  # fmt: skip
ID_KEYS = {
    "id", "trace_id", "traceId", "span_id", "spanId", "request_id", "parent_run_id", "parentSpanId",
    "parent_id", "context",
}  # fmt: skip

# --- seeds: valid records of every format --------------------------------------------------------------


def _json_lines(path: Path) -> list[dict]:
    """The JSON objects among a file's lines (fixtures hold broken lines on purpose)."""
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
        text = fh.read()
    out = []
    for line in text.splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict):
            out.append(obj)
    return out


def seeds(tmp: Path) -> dict[str, list[dict]]:
    """Decoded records per format, each a valid (or deliberately odd) record of that format."""
    formats = FIXTURES / "formats"
    traffic = tmp / "seed_traffic"
    write_traffic(traffic, days=2, per_day=20, seed=5, start=START)
    openai = _json_lines(FIXTURES / "capture" / "sample.jsonl")
    for f in sorted(traffic.iterdir()):
        openai += _json_lines(f)[:10]
    return {
        "openai_chat": openai,
        "otel_genai": [
            *_json_lines(formats / "otel_genai.jsonl"),
            json.loads((formats / "otel_genai_document.json").read_text(encoding="utf-8")),
        ],
        "openinference": _json_lines(formats / "openinference.jsonl"),
        "langfuse": json.loads((formats / "langfuse.json").read_text(encoding="utf-8")),
        "langsmith": _json_lines(formats / "langsmith.jsonl"),
    }


# --- the mutator ------------------------------------------------------------------------------------------


def _paths(obj: Any, prefix: tuple = (), out: list | None = None, limit: int = 400) -> list[tuple]:
    """Every place in the JSON tree (key or index paths), breadth bounded."""
    out = [] if out is None else out
    if len(out) >= limit:
        return out
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.append((*prefix, k))
            _paths(v, (*prefix, k), out, limit)
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out.append((*prefix, i))
            _paths(v, (*prefix, i), out, limit)
    return out


def _get(obj: Any, path: tuple) -> Any:
    for step in path:
        obj = obj[step]
    return obj


def _set(obj: Any, path: tuple, value: Any) -> None:
    _get(obj, path[:-1])[path[-1]] = value


def _nested(depth: int, leaf: Any = "deep") -> Any:
    """`leaf` inside `depth` levels of objects and arrays (kept shallow in Python: see `_deep`)."""
    if depth > 40:
        return f"@@NEST:{depth}@@"  # expanded to JSON text by `dumps`, so the mutator never recurses deeply
    value = leaf
    for i in range(depth):
        value = [value] if i % 2 else {"n": value}
    return value


_DEEP = re.compile(r'"@@NEST:(\d+)@@"')


def _deep(match: re.Match) -> str:
    depth = int(match.group(1))
    return '{"n":[' * (depth // 2) + '"deep"' + "]}" * (depth // 2)


def wrong_values(rng: random.Random) -> list[Any]:
    return [
        None, True, False, 0, -1, 1.5, -1e308, 1e308, 10**40, -(10**40), math.nan, math.inf, "", " ", "x",
        "null", "0", "-5", "1e999", "NaN", "true", "\u0000nul", "\ud800lone", "\u202e\u200bbidi", "🙂" * 3,
        "x" * rng.choice([300, 5_000, 70_000]), [], [None], [1, "a", {}], {}, {"": None}, {"role": 5},
        [{"role": None, "content": None}], {"content": [{"type": "text", "text": None}]},
        _nested(rng.choice([20, 200, 900])),
    ]  # fmt: skip


TIMES = [
    "0001-01-01T00:00:00Z", "1970-01-01T00:00:00Z", "1900-01-01", "2024-12-31T23:59:59Z", "9999-12-31T23:59:59Z",
    "2999-01-01T00:00:00+00:00", "2026-11-17T10:00:00", "2026-11-17 10:00:00", "2026-11-17T10:00:00.123456789",
    "2026-11-17T10:00:00+14:00", "2026-11-17T10:00:00-12:00", "2026-11-17", "2026-02-30T00:00:00Z",
    "2026-11-17T25:61:00Z",
    "17/11/2026 10:00", "yesterday", "", "  ", "1795000000", "1795000000000", "1795000000000000000",
    1795000000, 1795000000.5, 1795000000123, 1795000000123456789, -1, 0, 1e30, -1e30, 253402300800, math.nan,
    True, None, [], {}, "2026-11-17T10:00:00Z\u0000", "+002026-11-17T10:00:00Z", "²" * 19, "١٧٩٥٠٠٠٠٠٠",
]  # fmt: skip


def mutate_tree(obj: dict, rng: random.Random) -> tuple[dict, str]:
    """One structural mutation of a decoded record, and what changed (for a failure message)."""
    obj = copy.deepcopy(obj)
    paths = _paths(obj)
    if not paths:
        return obj, "empty record"
    kind = rng.choice(["type", "type", "type", "delete", "time", "time", "id", "nest", "huge", "empty", "swap", "key"])
    path = rng.choice(paths)
    if kind == "time":
        path = rng.choice([p for p in paths if p[-1] in TIME_KEYS] or paths)
        _set(obj, path, rng.choice(TIMES))
    elif kind == "id":
        path = rng.choice([p for p in paths if p[-1] in ID_KEYS] or paths)
        _set(obj, path, rng.choice([None, 0, 10**30, "", " ", "id\u0000x", "\ud800", [], {}, True, "x" * 3000]))
    elif kind == "type":
        _set(obj, path, rng.choice(wrong_values(rng)))
    elif kind == "delete":
        del _get(obj, path[:-1])[path[-1]]
    elif kind == "nest":
        _set(obj, path, _nested(rng.choice([5, 30, 400, 980, 5000]), _get(obj, path)))
    elif kind == "huge":
        _set(obj, path, "ü" * rng.choice([1_000, 40_000, 80_000]))
    elif kind == "empty":  # an object or array emptied
        target = _get(obj, path)
        if isinstance(target, dict | list):
            target.clear()
    elif kind == "key" and isinstance(_get(obj, path[:-1]), dict):  # a key renamed (digits that int() refuses)
        parent, key = _get(obj, path[:-1]), path[-1]
        new = rng.choice([re.sub(r"\d", "²", key), re.sub(r"\d", "١", key), key.upper(), key + " ", "", key + ".0"])
        parent[new] = parent.pop(key)
    else:  # "swap": a subtree replaced by another subtree of the same record
        other = rng.choice(paths)
        _set(obj, path, copy.deepcopy(_get(obj, other)) if other[: len(path)] != path else None)
    return obj, f"{kind} {path}"


def dumps(obj: Any, rng: random.Random) -> bytes:
    """JSON bytes: compact or spaced, ASCII-escaped or raw UTF-8; lone surrogates as escapes."""
    text = json.dumps(obj, ensure_ascii=rng.random() < 0.3, separators=rng.choice([(",", ":"), (", ", ": ")]))
    return _DEEP.sub(_deep, text).encode("utf-8", "surrogatepass")


def mutate_bytes(line: bytes, rng: random.Random) -> tuple[bytes, str]:
    kind = rng.choice(["truncate", "truncate", "utf8", "bom", "flip", "ctrl", "notobject", "blank", "cr", "junk"])
    at = rng.randrange(len(line) + 1) if line else 0
    if kind == "truncate":
        return line[:at], f"truncate at {at}"
    if kind == "utf8":
        bad = rng.choice([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf4\x90\x80\x80", b"\xe2\x82"])
        return line[:at] + bad + line[at:], f"invalid utf-8 {bad!r} at {at}"
    if kind == "bom":
        return (BOM + line, "bom at start") if rng.random() < 0.6 else (line[:at] + BOM + line[at:], f"bom at {at}")
    if kind == "flip":
        data = bytearray(line)
        for _ in range(rng.randint(1, 4)):
            if data:
                data[rng.randrange(len(data))] = rng.randrange(256) & 0xFF if rng.random() < 0.5 else 0x0A ^ 0x2A
        return bytes(data).replace(b"\n", b" "), "flipped bytes"
    if kind == "ctrl":
        return line[:at] + rng.choice([b"\x00", b"\x1b", b"\x0b", b"\x0c", b"\x85", b"\r"]) + line[at:], f"ctrl at {at}"
    if kind == "notobject":
        return rng.choice([b"[1,2]", b"null", b'"text"', b"42", b"true", b"[]", b"{}", b"[" * 5000]), "not an object"
    if kind == "blank":
        return rng.choice([b"", b"   ", b"\t", BOM]), "blank"
    if kind == "cr":
        return line + b"\r", "trailing cr"
    return line + rng.choice([b"}", b"]", b",", b' {"a":1}', b"garbage"]), "junk after"


# --- fuzzed folders ----------------------------------------------------------------------------------------


@dataclass
class Written:
    """A JSON Lines file written by the fuzzer: its name and the number of physical lines in it."""

    name: str
    lines: int
    """Physical lines (0: an empty file, one `empty_file` record at line 0)."""
    exact: bool = True
    """False for a truncated gzip: only the lines before the damage are known, then one `truncated_gzip` row."""

    def check(self, seen: set[int]) -> None:
        """The source lines of this file's rows cover every line, and nothing else."""
        if not self.exact:
            assert seen and seen == set(range(1, max(seen) + 1)) and max(seen) <= self.lines + 1, (self.name, seen)
        elif self.lines == 0:
            assert seen == {0}, (self.name, sorted(seen)[:10])
        else:
            assert seen == set(range(1, self.lines + 1)), (self.name, sorted(seen ^ set(range(1, self.lines + 1))))


@dataclass
class Fuzzed:
    folder: Path
    files: list[Written] = field(default_factory=list)
    documents: list[str] = field(default_factory=list)
    tried: int = 0


def variant(fmt_records: list[dict], rng: random.Random) -> bytes:
    """One fuzzed line: a valid record, a tree mutation, a byte mutation, or both."""
    obj = rng.choice(fmt_records)
    roll = rng.random()
    if roll < 0.1:
        return dumps(obj, rng)
    if roll < 0.65:
        for _ in range(rng.choice([1, 1, 1, 2, 3])):
            obj, _ = mutate_tree(obj, rng)
        return dumps(obj, rng)
    line = dumps(obj, rng)
    if roll < 0.85:
        return mutate_bytes(line, rng)[0]
    obj, _ = mutate_tree(obj, rng)
    return mutate_bytes(dumps(obj, rng), rng)[0]


def write_jsonl(folder: Path, name: str, lines: list[bytes], rng: random.Random) -> Written:
    """Lines joined with LF or CRLF, sometimes a BOM first, sometimes no final newline, sometimes gzip."""
    lines = [line.replace(b"\n", b" ") for line in lines]
    eol = b"\r\n" if rng.random() < 0.2 else b"\n"
    data = eol.join(lines) + (eol if rng.random() < 0.8 else b"")
    if rng.random() < 0.1:
        data = BOM + data
    count = data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if name.endswith(".gz"):
        packed = gzip.compress(data)
        if rng.random() < 0.3 and len(packed) > 40:  # a truncated gzip: the line count is not known
            path.write_bytes(packed[: rng.randrange(20, len(packed))])
            return Written(name, count, exact=False)
        path.write_bytes(packed)
    else:
        path.write_bytes(data)
    return Written(name, count)


def fuzz_folder(folder: Path, corpus: dict[str, list[dict]], seed: int, files: int, per_file: int) -> Fuzzed:
    rng = random.Random(seed)
    fuzzed = Fuzzed(folder)
    names = sorted(corpus)
    mtime = 1_795_000_000
    for n in range(files):
        shape = rng.random()
        if shape < 0.55:  # one format per file
            pool = [corpus[rng.choice(names)]]
        else:  # several formats mixed in one file
            pool = [corpus[name] for name in rng.sample(names, rng.randint(2, len(names)))]
        lines = [variant(rng.choice(pool), rng) for _ in range(rng.randint(per_file // 2, per_file))]
        if rng.random() < 0.03:
            lines = []
        suffix = rng.choice([".jsonl"] * 6 + [".ndjson", ".jsonl.gz", ".JSONL"])
        name = f"{'sub/' if n % 7 == 0 else ''}fuzz_{seed}_{n:03d}{suffix}"
        written = write_jsonl(folder, name, lines, rng)
        fuzzed.files.append(written)
        fuzzed.tried += len(lines)
        mtime += 1
        os.utime(folder / name, (mtime, mtime))
    for n in range(max(1, files // 10)):  # whole-document files: an array of elements, maybe broken
        fmt = rng.choice(["langfuse", "langsmith", "otel_genai"])
        if fmt == "otel_genai":
            doc: Any = corpus["otel_genai"][-1]
            for _ in range(rng.randint(0, 2)):
                doc, _ = mutate_tree(doc, rng)
        else:
            doc = []
            for _ in range(rng.randint(1, 8)):
                obj = rng.choice(corpus[fmt])
                doc.append(mutate_tree(obj, rng)[0] if rng.random() < 0.6 else obj)
            if rng.random() < 0.3:
                doc = {"data" if fmt == "langfuse" else "runs": doc, "meta": {"page": 1}}
        data = _DEEP.sub(_deep, json.dumps(doc, indent=rng.choice([None, 2]))).encode("utf-8", "surrogatepass")
        if rng.random() < 0.4:
            data = mutate_bytes(data, rng)[0]
        name = f"doc_{seed}_{n:03d}.json" + (".gz" if rng.random() < 0.2 else "")
        (folder / name).write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
        mtime += 1
        os.utime(folder / name, (mtime, mtime))
        fuzzed.documents.append(name)
        fuzzed.tried += len(doc) if isinstance(doc, list) else 1
    return fuzzed


# --- what must hold for every fuzzed folder ---------------------------------------------------------------


def check_nothing_lost(fuzzed: Fuzzed, result: IngestResult) -> int:
    """Every line of every file ends as a row; the manifest adds up; no parser error; ids unique. Rows seen."""
    check_accounting(result)
    rows = pl.concat(
        [result.traces.select("source_file", "source_line"), result.quarantine.select("source_file", "source_line")]
    )
    lines_of = {f: set(g["source_line"].to_list()) for (f,), g in rows.group_by("source_file")}
    for written in fuzzed.files:
        written.check(lines_of.get(written.name, set()))
    for name in fuzzed.documents:
        assert lines_of.get(name), name
    assert set(result.manifest["source_file"].to_list()) == {w.name for w in fuzzed.files} | set(fuzzed.documents)
    assert set(result.quarantine["reason_code"].to_list()) <= set(REASON_CODES)
    parser_errors = result.quarantine.filter(pl.col("reason_code") == "parser_error")
    assert parser_errors.height == 0, parser_errors.select("source_file", "source_line", "reason").to_dicts()[:5]
    keys = result.traces.group_by("day", "trace_id", "span_id").len().filter(pl.col("len") > 1)
    assert keys.height == 0, keys.to_dicts()[:5]
    assert result.quarantine["raw"].null_count() == 0
    return rows.height


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, list[dict]]:
    found = seeds(tmp_path_factory.mktemp("seeds"))
    assert all(found.values()), {k: len(v) for k, v in found.items()}
    return found


SEEDS = range(6)
FILES, PER_FILE = 40, 50  # about 1,500 fuzzed records a folder, 9,000 over the seeds


@pytest.mark.parametrize("seed", SEEDS)
def test_fuzzed_folders_lose_nothing_and_never_raise(tmp_path, corpus, seed):
    fuzzed = fuzz_folder(tmp_path / "incoming", corpus, seed=seed, files=FILES, per_file=PER_FILE)
    assert fuzzed.tried >= 1_000
    result = ingest(fuzzed.folder, CFG, f"fuzz-{seed}", now=NOW)
    check_nothing_lost(fuzzed, result)
    # the mutations reached the parsers: most records are quarantined, for many different reasons
    assert result.traces.height > 0 and result.quarantine.height > result.traces.height
    assert result.quarantine["reason_code"].n_unique() >= 8


def test_fuzzed_records_with_the_default_limits(tmp_path, corpus):
    """The production limits (1 MiB lines, 64 KiB kept) with the huge variants: still nothing lost."""
    fuzzed = fuzz_folder(tmp_path / "incoming", corpus, seed=99, files=12, per_file=40)
    check_nothing_lost(fuzzed, ingest(fuzzed.folder, IngestConfig(), "fuzz-default", now=NOW))


# --- duplicate ids with different content ---------------------------------------------------------------


def _string_leaves(obj: Any) -> list[tuple]:
    """Places of string values that are neither ids nor timestamps (changing them keeps the trace's key)."""
    return [
        p
        for p in _paths(obj, limit=2_000)
        if isinstance(_get(obj, p), str) and not any(step in ID_KEYS or step in TIME_KEYS for step in p)
        and not (p[-1] == "stringValue" and "id" in json.dumps(_get(obj, p[:-2])).lower())
    ]  # fmt: skip


def _keys(frame: pl.DataFrame) -> dict[tuple, str]:
    return {(r["day"], r["trace_id"], r["span_id"]): r["record_hash"] for r in frame.iter_rows(named=True)}


@pytest.mark.parametrize("same_file", [False, True])
def test_duplicate_ids_with_different_content_are_reported_not_merged(tmp_path, corpus, same_file):
    """Each valid record twice, the second copy with one text changed (or not): every copy is accounted for.

    Alone, the originals give traces A and the copies traces B. Together, the kept traces are exactly A
    plus B's new keys; every copy whose key A has is quarantined as `duplicate_record` when its item is
    identical and `conflicting_duplicate` (naming where the kept one is) when it differs. Copies follow
    their originals in the same file, or come in a later file.
    """
    rng = random.Random(7)
    a, b, both = tmp_path / "a", tmp_path / "b", tmp_path / "both"
    for fmt in sorted(corpus):  # one file per format, so each is detected as that format
        originals, copies = [], []
        for obj in corpus[fmt]:
            edited = copy.deepcopy(obj)
            leaves = _string_leaves(edited)
            if leaves and rng.random() < 0.85:
                place = rng.choice(leaves)
                _set(edited, place, _get(edited, place) + rng.choice([" (edited)", "!", "\u00a0", "x" * 50]))
            originals.append(json.dumps(obj).encode())
            copies.append(json.dumps(edited).encode())
        write = {
            a / f"{fmt}.jsonl": originals,
            b / f"{fmt}.copy.jsonl": copies,
            **(
                {both / f"{fmt}.jsonl": originals + copies}
                if same_file
                else {both / f"{fmt}.jsonl": originals, both / f"{fmt}.copy.jsonl": copies}
            ),
        }
        for path, lines in write.items():
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(b"\n".join(lines) + b"\n")
            stamp = 1_795_000_100 if path.name.endswith(".copy.jsonl") else 1_795_000_000
            os.utime(path, (stamp, stamp))
    only_a, only_b, together = (ingest(folder, CFG, "dup", now=NOW) for folder in (a, b, both))
    keys_a, keys_b, kept = _keys(only_a.traces), _keys(only_b.traces), _keys(together.traces)
    assert kept == {**{k: v for k, v in keys_b.items() if k not in keys_a}, **keys_a}
    copy_rows = pl.col("source_file").str.ends_with(".copy.jsonl")
    if same_file:
        first_copy = {f"{fmt}.jsonl": len(corpus[fmt]) + 1 for fmt in corpus}
        copy_rows = pl.col("source_line") >= pl.col("source_file").replace_strict(first_copy)
    reported = together.quarantine.filter(
        copy_rows & pl.col("reason_code").is_in(["duplicate_record", "conflicting_duplicate"])
    )
    expected_codes = sorted(
        "duplicate_record" if keys_a[k] == h else "conflicting_duplicate" for k, h in keys_b.items() if k in keys_a
    )
    assert sorted(reported["reason_code"].to_list()) == expected_codes
    conflicts = reported.filter(pl.col("reason_code") == "conflicting_duplicate")
    assert conflicts.height >= 20 and reported.height > conflicts.height  # both kinds really happened
    assert set(conflicts["source_format"].to_list()) == set(corpus)  # in every format
    assert all("is used by two different records: kept " in r for r in conflicts["reason"])
    check_accounting(together)


# --- a real Dagster run over a fuzzed folder ------------------------------------------------------------


def test_raw_traces_materialises_a_fuzzed_folder_and_accounts_for_every_record(tmp_path, corpus):
    loop = Loop(tmp_path)
    fuzzed = fuzz_folder(loop.incoming, corpus, seed=1234, files=16, per_file=40)
    days = sorted(ingest(loop.incoming, IngestConfig(), "scan").manifest["partition_day"].drop_nulls().unique())
    assert days and days[-1] <= datetime.now(UTC).date()
    result = loop.run(days=(days[0], days[-1]), select=["raw_traces", "quarantined_records"])
    assert result.success
    assert checks(result) == {"records_accounted_for": True}
    lines = loop.table(
        "SELECT source_file, source_line FROM raw_traces "
        "UNION ALL SELECT source_file, source_line FROM quarantined_records"
    )
    per_file = {f: set(g["source_line"].to_list()) for (f,), g in lines.group_by("source_file")}
    for written in fuzzed.files:
        written.check(per_file.get(written.name, set()))
    assert all(per_file.get(name) for name in fuzzed.documents)
    rows = loop.table("SELECT (SELECT count(*) FROM raw_traces) + (SELECT count(*) FROM quarantined_records) AS n")
    assert rows["n"][0] >= fuzzed.tried - 60 * sum(1 for w in fuzzed.files if not w.exact)


# --- what the fuzzer found (regressions) --------------------------------------------------------------------


def test_fuzzer_findings_are_quarantined_with_a_reason_not_a_parser_error(tmp_path, corpus):
    """Each of these crashed a parser (`parser_error`) before; now each is read or quarantined with its reason."""
    otel = json.dumps(corpus["otel_genai"][1])
    span_attr = '{"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o-mini"}}'
    openinference = dict(corpus["openinference"][3])
    openinference["llm.input_messages.².message.role"] = "user"  # "²".isdigit() is True, int("²") fails
    langfuse = {**corpus["langfuse"][1], "scores": 5}  # scores not a list
    langsmith = {**corpus["langsmith"][0], "feedback": True}  # feedback not a list
    infinity = ', {"key": "gen_ai.usage.input_tokens", "value": {"intValue": Infinity}}'
    files = {
        # an OTLP intValue of Infinity (json reads it as a float): int(inf) raised OverflowError
        "otel_inf.jsonl": [otel.replace(span_attr, span_attr + infinity)],
        # an end time of 19 superscript digits: "²...".isdigit() is True, int() refused it
        "otel_digits.jsonl": [
            otel.replace('"endTimeUnixNano": "1794816600250000000"', '"endTimeUnixNano": "' + "²" * 19 + '"')
        ],
        "openinference.jsonl": [json.dumps(openinference)],
        "langfuse.jsonl": [json.dumps(langfuse)],
        "langsmith.jsonl": [json.dumps(langsmith)],
        # valid JSON nested deeper than the parser can follow (json.loads reads it, normalising recursed)
        "deep.jsonl": [
            json.dumps({**corpus["openai_chat"][0], "id": f"deep-{depth}", "metadata": f"@@NEST:{depth}@@"})
            for depth in range(900, 1000, 2)
        ],
    }
    for name, lines in files.items():
        (tmp_path / name).write_text("\n".join(_DEEP.sub(_deep, line) for line in lines) + "\n", encoding="utf-8")
    result = ingest(tmp_path, CFG, "regressions", now=NOW)
    check_accounting(result)
    codes = {
        name: sorted(set(result.quarantine.filter(pl.col("source_file") == name)["reason_code"].to_list()))
        for name in files
    }
    kept = set(result.traces["source_file"].to_list())
    assert "otel_inf.jsonl" in kept and codes["otel_inf.jsonl"] == []
    assert codes["otel_digits.jsonl"] == ["bad_timestamp"]
    assert "openinference.jsonl" in kept or "parser_error" not in codes["openinference.jsonl"]
    assert codes["langfuse.jsonl"] == ["wrong_type"] and codes["langsmith.jsonl"] == ["wrong_type"]
    reasons = result.quarantine.filter(pl.col("source_file").is_in(["langfuse.jsonl", "langsmith.jsonl"]))["reason"]
    assert sorted(r.split(" must")[0] for r in reasons) == ["`feedback`", "`scores`"]
    deep = result.quarantine.filter(pl.col("source_file") == "deep.jsonl")
    assert "invalid_value" in codes["deep.jsonl"] and set(codes["deep.jsonl"]) <= {"invalid_value", "invalid_json"}
    assert all("nested too deeply" in r for r in deep["reason"])
