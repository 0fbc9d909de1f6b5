"""Every format: write, read back, same cases in the same order, provenance and suite version intact."""

from __future__ import annotations

import json

import polars as pl
import pytest

from loop_assets.exports import EXPORTERS, read_back, write_export
from loop_assets_tests.exports.conftest import D1, D2, EMBEDDING_MARK, expected_provenance

FORMATS = list(EXPORTERS)


def test_every_requested_format_is_registered():
    assert set(FORMATS) == {"jsonl", "openai-evals", "inspect", "promptfoo", "langfuse"}


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip_keeps_cases_provenance_and_version(suite_frame, tmp_path, fmt):
    result = write_export(suite_frame, fmt, tmp_path)
    assert result.path.parent == tmp_path.resolve() and result.path.name == f"eval_suite-latest{EXPORTERS[fmt].suffix}"
    cases = read_back(fmt, result.path)

    rows = list(suite_frame.iter_rows(named=True))
    assert result.cases == len(cases) == len(rows) == 3
    assert [c["case_id"] for c in cases] == [r["case_id"] for r in rows]
    for case, row in zip(cases, rows, strict=True):
        assert case["provenance"] == expected_provenance(row)
        assert case["grading"] == json.loads(row["grading"])
        assert case["weight"] == pytest.approx(row["weight"])
        assert case["expected_output"] == row["expected_output"]
        assert case["suite"] == {
            "tool": "eval-loop",
            "as_of": D2.isoformat(),
            "pinned": False,
            "cases": 3,
            "case_ids_sha256": result.version.digest,
        }
    signals = cases[0]["provenance"]["failure_signals"]
    assert signals[1] == {"scorer": "latency", "version": "1", "value": "9120.5", "threshold": "latency_ms > 6000"}


@pytest.mark.parametrize("fmt", FORMATS)
def test_as_of_pins_the_version_in_the_file(suite_frame, tmp_path, fmt):
    pinned = suite_frame.filter(pl.col("day") <= D1)
    result = write_export(pinned, fmt, tmp_path, as_of=D1)
    assert result.path.name.startswith(f"eval_suite-{D1.isoformat()}")
    cases = read_back(fmt, result.path)
    assert [c["case_id"] for c in cases] == ["case_sql_1", "case_support_2"]
    assert {json.dumps(c["suite"], sort_keys=True) for c in cases} == {
        json.dumps(
            {
                "as_of": D1.isoformat(),
                "case_ids_sha256": result.version.digest,
                "cases": 2,
                "pinned": True,
                "tool": "eval-loop",
            },
            sort_keys=True,
        )
    }
    assert result.version.digest != write_export(suite_frame, fmt, tmp_path / "all").version.digest


@pytest.mark.parametrize("fmt", FORMATS)
def test_no_embedding_leaves_the_warehouse(suite_frame, tmp_path, fmt):
    text = write_export(suite_frame, fmt, tmp_path).path.read_text(encoding="utf-8")
    assert str(EMBEDDING_MARK)[:8] not in text
    assert '"embedding"' not in text and "embedding:" not in text
    assert "all-MiniLM-L6-v2" in text  # the model name is provenance, the vector is not


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_empty_suite_exports_and_reads_back_empty(suite_frame, tmp_path, fmt):
    result = write_export(suite_frame.clear(), fmt, tmp_path)
    assert result.cases == 0 and read_back(fmt, result.path) == []
    assert result.version.as_of is None


@pytest.mark.parametrize("fmt", FORMATS)
def test_exports_are_byte_for_byte_reproducible(suite_frame, tmp_path, fmt):
    a = write_export(suite_frame, fmt, tmp_path / "a").path.read_bytes()
    b = write_export(suite_frame, fmt, tmp_path / "b").path.read_bytes()
    assert a == b


def test_a_frame_without_the_contract_columns_is_refused(suite_frame, tmp_path):
    with pytest.raises(ValueError, match="trace_id"):
        write_export(suite_frame.drop("trace_id"), "jsonl", tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_format_is_refused(suite_frame, tmp_path):
    with pytest.raises(ValueError, match="unknown export format 'csv'"):
        write_export(suite_frame, "csv", tmp_path)
    with pytest.raises(ValueError, match="choose one of"):
        read_back("csv", tmp_path / "x")


def test_a_file_path_names_the_file_and_its_folder(suite_frame, tmp_path):
    result = write_export(suite_frame, "jsonl", tmp_path / "v1" / "suite.jsonl")
    assert result.path == (tmp_path / "v1" / "suite.jsonl").resolve()
    assert len(read_back("jsonl", result.path)) == 3
    assert [p.name for p in result.path.parent.iterdir()] == ["suite.jsonl"]  # no temporary file left


@pytest.mark.parametrize("fmt", FORMATS)
def test_not_a_number_is_written_as_null(suite_frame, tmp_path, fmt):
    frame = suite_frame.with_columns(pl.lit(float("nan")).alias("nearest_similarity"))
    cases = read_back(fmt, write_export(frame, fmt, tmp_path).path)
    assert [c["provenance"]["nearest_similarity"] for c in cases] == [None, None, None]
