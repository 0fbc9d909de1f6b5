"""Reading JSONL / JSONL.gz record by record: every line accounted for, nothing crashes."""

from __future__ import annotations

import gzip
import hashlib
import json
import tracemalloc
from pathlib import Path

import pytest

from loop_assets.capture.formats import jsonl
from loop_assets.capture.formats.base import canonical_json, record_hash
from loop_assets.capture.formats.jsonl import SourceRecord, decode_line, read_records

GOOD = b'{"a": 1}'


def read(path: Path, max_record_bytes: int = 1000, keep_bytes: int = 100) -> list[SourceRecord]:
    return list(read_records(path, max_record_bytes=max_record_bytes, keep_bytes=keep_bytes))


def write(tmp_path: Path, data: bytes, name: str = "t.jsonl") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def codes(records: list[SourceRecord]) -> list[tuple[int, str | None]]:
    return [(r.line, r.error.code if r.error else None) for r in records]


def test_each_line_is_one_record_with_its_line_number(tmp_path):
    recs = read(write(tmp_path, b'{"a": 1}\n{"b": 2}\r\n{"c": 3}'))
    assert codes(recs) == [(1, None), (2, None), (3, None)]
    assert [r.obj for r in recs] == [{"a": 1}, {"b": 2}, {"c": 3}]
    assert [r.raw_bytes for r in recs] == [8, 8, 8]  # terminators (\n, \r\n) excluded
    assert recs[1].raw == b'{"b": 2}'


def test_bom_is_skipped_for_parsing_and_kept_in_raw(tmp_path):
    recs = read(write(tmp_path, b"\xef\xbb\xbf" + GOOD + b"\n" + GOOD + b"\n"))
    assert codes(recs) == [(1, None), (2, None)]
    assert recs[0].obj == {"a": 1}
    assert recs[0].raw.startswith(b"\xef\xbb\xbf") and recs[0].raw_bytes == len(GOOD) + 3


def test_blank_and_whitespace_lines_are_problems(tmp_path):
    recs = read(write(tmp_path, GOOD + b"\n\n   \t\n" + GOOD + b"\n"))
    assert codes(recs) == [(1, None), (2, "blank_line"), (3, "blank_line"), (4, None)]
    assert "empty" in recs[1].error.reason and "whitespace" in recs[2].error.reason


def test_a_trailing_newline_adds_no_line_but_a_lone_newline_is_a_blank_line(tmp_path):
    assert codes(read(write(tmp_path, GOOD + b"\n"))) == [(1, None)]
    assert codes(read(write(tmp_path, b"\n", "nl.jsonl"))) == [(1, "blank_line")]


def test_empty_file_is_one_problem_at_line_zero(tmp_path):
    recs = read(write(tmp_path, b""))
    assert codes(recs) == [(0, "empty_file")]
    assert recs[0].raw == b"" and recs[0].raw_bytes == 0


def test_empty_gzip_is_an_empty_file(tmp_path):
    assert codes(read(write(tmp_path, gzip.compress(b""), "t.jsonl.gz"))) == [(0, "empty_file")]


def test_invalid_utf8_is_kept_raw_and_named(tmp_path):
    line = b'{"text": "caf\xe9"}'
    recs = read(write(tmp_path, GOOD + b"\n" + line + b"\n"))
    assert codes(recs) == [(1, None), (2, "invalid_utf8")]
    assert recs[1].raw == line
    assert "0xe9" in recs[1].error.reason and "offset 13" in recs[1].error.reason


@pytest.mark.parametrize(
    ("line", "code", "words"),
    [
        (b'{"a": 1', "invalid_json", ["invalid JSON", "column"]),
        (b"not json", "invalid_json", ["invalid JSON"]),
        (b"[1, 2]", "wrong_type", ["JSON object", "array"]),
        (b"42", "wrong_type", ["number"]),
        (b'"text"', "wrong_type", ["string"]),
        (b"null", "wrong_type", ["null"]),
        (b"[" * 100_000 + b"]" * 100_000, "invalid_json", ["invalid JSON"]),
    ],
)
def test_json_problems(tmp_path, line, code, words):
    recs = read(write(tmp_path, line + b"\n"), max_record_bytes=1_000_000)
    assert codes(recs) == [(1, code)]
    for word in words:
        assert word in recs[0].error.reason


def test_too_large_line_keeps_only_the_head_and_counts_every_byte(tmp_path):
    big = b'{"x": "' + b"y" * 5000 + b'"}'
    recs = read(write(tmp_path, GOOD + b"\n" + big + b"\r\n" + GOOD), max_record_bytes=1000, keep_bytes=100)
    assert codes(recs) == [(1, None), (2, "too_large"), (3, None)]
    assert recs[1].raw == big[:100]
    assert recs[1].raw_bytes == len(big)
    assert "5,009 bytes" in recs[1].error.reason and "1,000" in recs[1].error.reason


def test_line_exactly_at_the_limit_is_read(tmp_path):
    line = b'{"x": "' + b"y" * 91 + b'"}'
    assert len(line) == 100
    assert codes(read(write(tmp_path, line + b"\r\n" + line), max_record_bytes=100)) == [(1, None), (2, None)]
    assert codes(read(write(tmp_path, line + b"z\n", "b.jsonl"), max_record_bytes=100)) == [(1, "too_large")]


def test_a_huge_line_is_read_in_bounded_memory(tmp_path):
    size = 10 * 1024 * 1024
    path = write(tmp_path, b'{"x": "' + b"y" * size + b'"}\n' + GOOD + b"\n")
    tracemalloc.start()
    try:
        recs = read(path, max_record_bytes=200_000, keep_bytes=1000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert codes(recs) == [(1, "too_large"), (2, None)]
    assert recs[0].raw_bytes == size + 9 and len(recs[0].raw) == 1000
    assert peak < 2 * 1024 * 1024, f"peak {peak} bytes while reading a 10 MB line"


def test_gzip_is_read_and_recognised_by_magic_bytes(tmp_path):
    data = gzip.compress(GOOD + b"\n" + b"bad\n")
    for name in ("t.jsonl.gz", "really_gzip.jsonl"):
        assert codes(read(write(tmp_path, data, name))) == [(1, None), (2, "invalid_json")]


def test_truncated_gzip_keeps_the_lines_before_the_damage(tmp_path):
    lines = [json.dumps({"i": i, "pad": "x" * 50}).encode() for i in range(2000)]
    data = gzip.compress(b"\n".join(lines) + b"\n")
    recs = read(write(tmp_path, data[: len(data) // 2], "t.jsonl.gz"))
    *good, last = recs
    assert good and all(r.ok for r in good)
    assert [r.obj["i"] for r in good] == list(range(len(good)))
    assert last.error.code == "truncated_gzip"
    assert last.line == len(good) + 1
    assert f"after line {len(good)}" in last.error.reason
    assert lines[len(good)].startswith(last.raw)  # the unfinished line's bytes are carried


def test_corrupt_gzip_and_a_gz_name_on_plain_text_is_read_as_plain_text(tmp_path):
    data = bytearray(gzip.compress(b"\n".join([GOOD] * 1000) + b"\n"))
    data[-6] ^= 0xFF  # damage the CRC / size trailer: every line decodes, then the check fails
    recs = read(write(tmp_path, bytes(data), "crc.jsonl.gz"))
    assert codes(recs)[-1] == (1001, "truncated_gzip")
    assert all(r.ok for r in recs[:-1]) and len(recs) == 1001

    # compression is read from the content, not the name: a plain file called .gz is plain text
    recs = read(write(tmp_path, GOOD + b"\n" + GOOD + b"\n", "plain.jsonl.gz"))
    assert codes(recs) == [(1, None), (2, None)]


def test_unreadable_file_is_one_problem(tmp_path, monkeypatch):
    path = write(tmp_path, GOOD + b"\n")

    def deny(_path):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(jsonl, "_open", deny)
    recs = read(path)
    assert codes(recs) == [(0, "unreadable_file")]
    assert "Permission denied" in recs[0].error.reason


def test_missing_file_is_unreadable_not_a_crash(tmp_path):
    assert codes(read(tmp_path / "gone.jsonl")) == [(0, "unreadable_file")]


TRICKY_LINES = [
    b'{"n": 123456789012345678901234567890, "m": -9223372036854775809}',  # beyond 64 bits: orjson would float them
    b'{"x": NaN, "y": Infinity, "z": -Infinity}',  # json reads them, orjson refuses
    b'{"s": "\\ud800 lone surrogate"}',
    b'{"f": 1e400}',
    b'{"e": [1e-7, 1e+16, 5e-324, -0.0, 0.1]}',
    b'{"a": 1, "a": 2}',
    b'{"a": null, "a": 1, "s": "null", "n": [null]}',
    b'{"big": 1' + b"0" * 400 + b".5}",
    b'{"ctl": "\\u0000\\u001f\\u007f\\u2028", "emoji": "\\ud83d\\ude00"}',
    b'{"deep": ' + b"[" * 2000 + b"]" * 2000 + b"}",
    b'  {"padded": true}  ',
    b'{"a": 1} trailing',
    b"[1, 2]",
]


@pytest.mark.parametrize("raw", TRICKY_LINES)
def test_decoding_and_the_fast_record_hash_give_exactly_what_json_gives(raw):
    record = decode_line(1, raw, len(raw), False, 10_000_000)
    try:
        expected = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):
        assert record.error is not None and record.error.code == "invalid_json"
        return
    if not isinstance(expected, dict):
        assert record.error is not None and record.error.code == "wrong_type"
        return
    assert record.error is None
    assert json.dumps(record.obj) == json.dumps(expected)  # NaN != NaN, so compare the serialisation
    if len(raw) < 1000:
        assert (
            record_hash(record.obj, raw)
            == hashlib.sha256(canonical_json(expected).encode("utf-8", "surrogatepass")).hexdigest()
        )


def test_the_fast_record_hash_equals_json_s_on_random_records():
    import random

    rng = random.Random(5)

    def value(depth: int):
        kind = rng.randrange(9 if depth < 3 else 6)
        if kind == 0:
            return rng.choice([None, True, False])
        if kind == 1:
            return rng.randint(-(2**70), 2**70) if rng.random() < 0.1 else rng.randint(-1000, 10**12)
        if kind == 2:
            return rng.choice([rng.uniform(-1e6, 1e6), 10 ** rng.uniform(-320, 308), -(10 ** rng.uniform(-12, 20))])
        if kind in (3, 4, 5):
            return "".join(rng.choice('ab é😀\n\t"\\/\x00\x7fnull-e-5') for _ in range(rng.randrange(12)))
        if kind in (6, 7):
            return {rng.choice(["k", "K", "é", "a b", "null", "z"]) + str(i): value(depth + 1) for i in range(4)}
        return [value(depth + 1) for _ in range(rng.randrange(4))]

    for _ in range(3000):
        obj = {"id": value(3), "data": value(0)}
        raw = json.dumps(obj).encode()
        decoded = json.loads(raw)
        reference = hashlib.sha256(canonical_json(decoded).encode("utf-8", "surrogatepass")).hexdigest()
        assert record_hash(decoded, raw) == reference, raw
