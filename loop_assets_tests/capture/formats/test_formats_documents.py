"""Whole-document JSON files: one record per array element with its line, whole-file problems, and `locate`."""

from __future__ import annotations

import gzip
import json

import pytest

from loop_assets.capture.formats.documents import locate, path_text, read_document

MAX = 1_000_000


def read(path, **kw) -> list:
    return list(read_document(path, max_record_bytes=kw.pop("max_record_bytes", MAX), keep_bytes=1000, **kw))


def summary(records) -> list[tuple]:
    return [(r.line, r.error.code if r.error else None, r.path) for r in records]


def test_pretty_array_gives_each_element_its_start_line_bytes_and_path(tmp_path):
    items = [{"id": 1}, {"id": 2, "nested": {"a": [1, 2]}}, {"id": 3}]
    path = tmp_path / "a.json"
    path.write_text(json.dumps(items, indent=2))
    records = read(path)
    text_lines = path.read_text().splitlines()
    assert summary(records) == [(2, None, (0,)), (5, None, (1,)), (14, None, (2,))]
    for rec, item in zip(records, items, strict=True):
        assert text_lines[rec.line - 1].strip() == "{"
        assert json.loads(rec.raw) == item == rec.obj
        assert rec.raw_bytes == len(rec.raw)


def test_one_line_array_puts_every_element_on_line_one(tmp_path):
    path = tmp_path / "a.json"
    path.write_text(json.dumps([{"id": 1}, {"id": 2}]))
    assert summary(read(path)) == [(1, None, (0,)), (1, None, (1,))]


def test_bad_elements_and_a_syntax_error_keep_the_elements_before(tmp_path):
    path = tmp_path / "a.json"
    path.write_text('[\n {"id": 1},\n 7,\n {"id": 3, "big": "' + "x" * 200 + '"},\n {"id": 4,,\n {"id": 5}\n]')
    records = read(path, max_record_bytes=100)
    assert summary(records) == [
        (2, None, (0,)),
        (3, "wrong_type", (1,)),
        (4, "too_large", (2,)),
        (5, "invalid_json", ()),
    ]
    assert "array element 1 must be a JSON object, got number 7" in records[1].error.reason
    assert (records[2].raw_bytes > 200 and len(records[2].raw) == 1000) or len(records[2].raw) == records[2].raw_bytes
    assert "to the end of the document" in records[3].error.reason
    assert records[3].raw.startswith(b'{"id": 4,,')


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", [(0, "empty_file", ())]),
        (b"  \n ", [(0, "empty_file", ())]),
        (b"[]", [(0, "empty_file", ())]),
        (b'"text"', [(1, "wrong_type", ())]),
        (b'{"a": 1}\n{"b": 2}\n', [(1, None, ()), (2, None, ())]),  # JSON Lines in a .json file
        (b'{"a": 1} x', [(1, "invalid_json", ())]),
        (b'\n\n{"a": \xff}', [(3, "invalid_utf8", ())]),
        (b'{"a": [1, 2}', [(1, "invalid_json", ())]),
        (b"\xef\xbb\xbf" + b'{"a": 1}', [(1, None, ())]),
    ],
)
def test_whole_file_problems(tmp_path, content, expected):
    path = tmp_path / "a.json"
    path.write_bytes(content)
    assert summary(read(path)) == expected


def test_single_object_and_api_page(tmp_path):
    path = tmp_path / "doc.json"
    path.write_text('\n\n{"resourceSpans": []}\n')
    [rec] = read(path)
    assert (rec.line, rec.obj, rec.path) == (3, {"resourceSpans": []}, ())
    path.write_text(json.dumps({"data": [{"id": 1}, {"id": 2}], "meta": {"page": 1}}, indent=2))
    assert summary(read(path)) == [(3, None, ("data", 0)), (6, None, ("data", 1))]


def test_too_large_document_and_truncated_gzip(tmp_path):
    path = tmp_path / "big.json"
    path.write_text(json.dumps([{"i": i} for i in range(1000)]))
    [rec] = read(path, max_document_bytes=1000)
    assert (rec.line, rec.error.code) == (0, "too_large")
    data = gzip.compress(json.dumps([{"i": i, "pad": "p" * 50} for i in range(300)], indent=1).encode())
    cut = tmp_path / "cut.json.gz"
    cut.write_bytes(data[: len(data) // 2])
    records = read(cut)
    good = [r for r in records if r.ok]
    assert 0 < len(good) < 300 and [r.obj["i"] for r in good] == list(range(len(good)))
    assert records[-1].error.code == "truncated_gzip"
    assert len(records) == len(good) + 1


def test_unreadable_file(tmp_path, monkeypatch):
    from loop_assets.capture.formats import jsonl

    def deny(path):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(jsonl, "_open", deny)
    [rec] = read(tmp_path / "x.json")
    assert (rec.line, rec.error.code) == (0, "unreadable_file")


def test_locate_finds_nested_objects_by_path():
    doc = {"resourceSpans": [{"scopeSpans": [{"spans": [{"a": '},{["'}, {"b": [1, {"c": 2}]}, {"d": 3}]}]}]}
    raw = json.dumps(doc, indent=1).encode()
    wanted = {("resourceSpans", 0, "scopeSpans", 0, "spans", k) for k in range(3)}
    found = locate(raw, wanted)
    assert [json.loads(raw[s:e]) for s, e in (found[p] for p in sorted(wanted))] == doc["resourceSpans"][0][
        "scopeSpans"
    ][0]["spans"]
    assert locate(raw, {("nope",)}) == {}
    assert path_text(("resourceSpans", 0, "spans", 3)) == "resourceSpans[0].spans[3]"
    assert path_text((3, "observations", 1)) == "[3].observations[1]"
