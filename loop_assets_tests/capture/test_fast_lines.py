"""OpenAI chat lines read by orjson and the parser alone give exactly the per-record path's rows."""

from __future__ import annotations

import gzip
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from loop_assets.capture import fast_lines
from loop_assets.capture.formats import FORMATS
from loop_assets.capture.formats.jsonl import SourceRecord
from loop_assets.capture.ingest import ingest
from loop_assets.capture.rows import Rows
from loop_assets.config import IngestConfig
from loop_assets.devtools.sample_traffic import SAMPLE_DIR, write_traffic
from loop_assets_tests.capture.test_fuzz_ingest import CFG, fuzz_folder, seeds

NOW = datetime(2026, 11, 27, tzinfo=UTC)
FRAMES = ("traces", "quarantine", "manifest", "skipped", "files")
COMMON = json.loads((SAMPLE_DIR / "traces-2026-11-16.jsonl").read_text(encoding="utf-8").splitlines()[0])


def both_ways(folder: Path, config: IngestConfig) -> None:
    fast = ingest(folder, config.model_copy(update={"fast_lines": True}), "run-1", now=NOW)
    slow = ingest(folder, config.model_copy(update={"fast_lines": False}), "run-1", now=NOW)
    assert fast.traces.height > 0
    for frame in FRAMES:
        assert getattr(fast, frame).equals(getattr(slow, frame)), frame


def _nested(depth: int) -> object:
    value: object = "leaf"
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


def line(obj: object, text: str | None = None) -> SourceRecord:
    raw = (text if text is not None else json.dumps(obj)).encode("utf-8", "surrogatepass")
    return SourceRecord(7, raw, len(raw), undecoded=True)


def read(rec: SourceRecord) -> bool:
    return fast_lines.read_line(rec, FORMATS["openai_chat"], "f.jsonl", IngestConfig(), NOW, Rows())


def test_the_sample_week_gives_the_same_rows(tmp_path):
    folder = tmp_path / "incoming"
    shutil.copytree(SAMPLE_DIR, folder)
    (folder / "again.jsonl").write_bytes((SAMPLE_DIR / "traces-2026-11-16.jsonl").read_bytes())  # duplicates
    both_ways(folder, IngestConfig())


def test_generated_traffic_gives_the_same_rows(tmp_path):
    folder = tmp_path / "incoming"
    write_traffic(folder, days=2, per_day=1_500, seed=11)
    both_ways(folder, IngestConfig())


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, list[dict]]:
    return seeds(tmp_path_factory.mktemp("seeds"))


@pytest.mark.parametrize("seed", range(3))
def test_fuzzed_folders_give_the_same_rows(tmp_path, corpus, seed):
    """Broken variants of every format (wrong types, NaN, huge integers, surrogates, BOMs, CRLF, gzip ...)."""
    fuzzed = fuzz_folder(tmp_path / "incoming", corpus, seed=seed, files=40, per_file=50)
    both_ways(fuzzed.folder, CFG)


def test_a_common_line_is_read_here():
    rows = Rows()
    assert fast_lines.read_line(line(COMMON), FORMATS["openai_chat"], "f.jsonl", IngestConfig(), NOW, rows)
    assert rows.traces["trace_id"] == [COMMON["id"]] and rows.traces["record_hash"][0]


@pytest.mark.parametrize(
    ("why", "record"),
    [
        ("an id given twice at the top level", None),
        ("an integer beyond 64 bits", {**COMMON, "metadata": {"n": 123456789012345678901234567890}}),
        ("a float beyond the double range", None),
        ("NaN", None),
        ("a lone surrogate", {**COMMON, "app": "\ud800"}),
        ("a byte order mark", None),
        ("not UTF-8", None),
        ("not an object", [COMMON]),
        ("a record the parser rejects", {**COMMON, "timestamp": None}),
        ("nesting as deep as the stack may allow", {**COMMON, "metadata": {"x": _nested(fast_lines.MAX_DEPTH)}}),
    ],
)
def test_lines_the_standard_library_or_the_parser_must_read_go_the_per_record_way(why, record):
    text = json.dumps(COMMON)
    special = {
        "an id given twice at the top level": text[:-1] + ', "id": "other"}',
        "a float beyond the double range": text[:-1] + ', "x": 1e400}',
        "NaN": text[:-1] + ', "x": NaN}',
        "a byte order mark": "\ufeff" + text,
    }
    if why == "not UTF-8":
        raw = text.encode()[:-2] + b'\xff"}'
        rec = SourceRecord(7, raw, len(raw), undecoded=True)
    elif record is None:
        rec = line(None, special[why])
    else:
        rec = line(record)
    assert not read(rec), why


def test_a_record_nested_a_little_less_deep_is_read_here():
    assert read(line({**COMMON, "metadata": {"x": _nested(fast_lines.MAX_DEPTH - 3)}}))


def test_an_id_nested_in_the_record_does_not_stop_a_line():
    nested = {**COMMON, "metadata": {**COMMON["metadata"], "ref": {"id": "x"}}}  # and the response's own id
    assert read(line(nested))
    # a value equal to the key's name may hide a repeated key: the per-record path decides
    assert not read(line({**COMMON, "metadata": {**COMMON["metadata"], "label": "id"}}))
    twice = json.dumps(COMMON)[:-1] + ', "id": "' + COMMON["id"] + '"}'
    assert not read(line(None, twice))


def test_a_gzipped_file_with_bad_lines_gives_the_same_rows(tmp_path):
    folder = tmp_path / "incoming"
    folder.mkdir()
    good = (SAMPLE_DIR / "traces-2026-11-16.jsonl").read_bytes().splitlines()[:60]
    bad = [b"{not json", b"\xff\xfe", b"", b"[1]", json.dumps({**COMMON, "latency_ms": -1}).encode()]
    mixed = [x for pair in zip(good, bad * 12, strict=False) for x in pair]
    with gzip.open(folder / "mixed.jsonl.gz", "wb") as handle:
        handle.write(b"\r\n".join(mixed) + b"\r\n")
    both_ways(folder, IngestConfig())
