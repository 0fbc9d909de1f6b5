"""Helpers the format tests share: ingest fixture files through capture, and check nothing is lost."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from loop_assets import tables
from loop_assets.capture.formats import REASON_CODES
from loop_assets.capture.ingest import ingest
from loop_assets.capture.rows import SKIPPED_SCHEMA, IngestResult
from loop_assets.config import IngestConfig
from loop_assets_tests.paths import FIXTURES as TEST_FIXTURES

FIXTURES = TEST_FIXTURES / "formats"
NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
CFG = IngestConfig()


def fixture(name: str) -> Path:
    return FIXTURES / name


def load(name: str):
    return json.loads(fixture(name).read_text(encoding="utf-8"))


def lines(name: str) -> list[str]:
    return fixture(name).read_text(encoding="utf-8").splitlines()


def place(folder: Path, name: str, as_name: str | None = None, gz: bool = False) -> Path:
    """Copy a fixture into `folder` (gzip-compressed when `gz`)."""
    target = folder / ((as_name or name) + (".gz" if gz else ""))
    target.parent.mkdir(parents=True, exist_ok=True)
    data = fixture(name).read_bytes()
    target.write_bytes(gzip.compress(data) if gz else data)
    return target


def run(folder: Path, cfg: IngestConfig = CFG, **kwargs) -> IngestResult:
    result = ingest(folder, cfg, "run-1", now=NOW, **kwargs)
    assert result.traces.schema == tables.schema("raw_traces")
    assert result.quarantine.schema == tables.schema("quarantined_records")
    assert result.manifest.schema == tables.schema("ingest_manifest")
    assert result.skipped.schema == SKIPPED_SCHEMA
    assert set(result.quarantine["reason_code"].to_list()) <= set(REASON_CODES)
    check_accounting(result)
    return result


def ingest_fixture(tmp_path: Path, name: str, cfg: IngestConfig = CFG, gz: bool = False) -> IngestResult:
    place(tmp_path, name, gz=gz)
    return run(tmp_path, cfg)


def check_accounting(result: IngestResult) -> None:
    """Per file: sum of records_routed == file_records == traces + quarantine rows, per partition too."""
    m = result.manifest
    rows = pl.concat(
        [result.traces.select("source_file", "day"), result.quarantine.select("source_file", day="partition_day")]
    )
    per_day = (
        rows.group_by("source_file", "day")
        .len()
        .rename({"day": "partition_day", "len": "records_routed"})
        .with_columns(pl.col("records_routed").cast(pl.Int64))
        .sort("source_file", "partition_day")
    )
    assert m.select("source_file", "partition_day", "records_routed").sort(
        "source_file", "partition_day"
    ).to_dicts() == (per_day.to_dicts())
    for file, group in m.group_by("source_file"):
        assert group["file_records"].unique().to_list() == [group["records_routed"].sum()], file
    # a skipped item is routed with a row of its own file
    routed = set(m.select("source_file", "partition_day").iter_rows())
    assert set(result.skipped.select("source_file", "partition_day").iter_rows()) <= routed


def traces_by_span(result: IngestResult) -> dict[str | None, dict]:
    return {row["span_id"]: row for row in result.traces.iter_rows(named=True)}


def only(frame: pl.DataFrame, **where) -> dict:
    rows = frame.filter(*[pl.col(k) == v for k, v in where.items()]).to_dicts()
    assert len(rows) == 1, rows
    return rows[0]


def line_of(name: str, needle: str, before: int = 0) -> int:
    """1-based line of the first line of a fixture containing `needle`, minus `before` lines."""
    for number, text in enumerate(lines(name), start=1):
        if needle in text:
            return number - before
    raise AssertionError(f"{needle!r} not in {name}")
