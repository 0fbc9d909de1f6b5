"""`eval-loop export --format X` for every format, against a warehouse built by real Dagster runs."""

from __future__ import annotations

import pytest
from inspect_ai.dataset import json_dataset

from loop_assets.cli import main
from loop_assets.exports import EXPORTERS, read_back


@pytest.fixture(scope="module")
def warehouse(in_order):
    loop, _ = in_order
    return loop


@pytest.fixture
def env(warehouse, monkeypatch):
    monkeypatch.setenv("EVAL_LOOP_WAREHOUSE", str(warehouse.warehouse))
    monkeypatch.setenv("EVAL_LOOP_INCOMING", str(warehouse.incoming))
    return warehouse


SUITE_SQL = (
    "SELECT case_id, day, trace_id, source_file, source_line, cluster_id, dedup_threshold, promoted_run_id "
    "FROM eval_suite WHERE status = 'active' ORDER BY day, case_id"
)


@pytest.mark.parametrize("fmt", list(EXPORTERS))
def test_every_format_exports_the_suite_from_the_warehouse(env, tmp_path, capsys, fmt):
    suite = env.table(SUITE_SQL)
    assert suite.height > 0
    assert main(["export", "--format", fmt, "--out-dir", str(tmp_path)]) == 0
    path = tmp_path / f"eval_suite-latest{EXPORTERS[fmt].suffix}"
    assert f"wrote {suite.height} cases as {fmt}" in capsys.readouterr().out
    cases = read_back(fmt, path)
    if fmt == "inspect":  # Inspect's own reader takes the real suite as it is
        assert [s.id for s in json_dataset(str(path))] == suite["case_id"].to_list()
    assert [c["case_id"] for c in cases] == suite["case_id"].to_list()
    for case, row in zip(cases, suite.iter_rows(named=True), strict=True):
        p = case["provenance"]
        for key in ("trace_id", "source_file", "source_line", "cluster_id", "dedup_threshold", "promoted_run_id"):
            assert p[key] == row[key], key
        assert p["failure_signals"] and {"scorer", "version", "value", "threshold"} <= set(p["failure_signals"][0])
        assert case["suite"]["cases"] == suite.height and case["suite"]["as_of"] == str(max(suite["day"]))
        assert case["grading"]["checks"]

    first_day = min(suite["day"])
    assert main(["export", "--format", fmt, "--as-of", str(first_day), "--out-dir", str(tmp_path)]) == 0
    pinned = read_back(fmt, tmp_path / f"eval_suite-{first_day}{EXPORTERS[fmt].suffix}")
    assert [c["case_id"] for c in pinned] == suite.filter(suite["day"] <= first_day)["case_id"].to_list()
    assert {c["suite"]["as_of"] for c in pinned} == {str(first_day)} and all(c["suite"]["pinned"] for c in pinned)


def test_out_is_the_users_own_path_and_is_written_where_it_says(env, tmp_path, monkeypatch, capsys):
    """The containment rule is for names that come from data (see test_paths), not for the user's --out."""
    cases = env.table(SUITE_SQL).height
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    work.mkdir()
    elsewhere.mkdir()
    (work / "door").symlink_to(elsewhere, target_is_directory=True)
    monkeypatch.chdir(work)
    wanted = {
        str(elsewhere / "absolute.jsonl"): elsewhere / "absolute.jsonl",
        "../relative.jsonl": tmp_path / "relative.jsonl",
        "door/through.jsonl": elsewhere / "through.jsonl",
        f"{elsewhere}/": elsewhere / "eval_suite-latest.jsonl",
    }
    for out, path in wanted.items():
        assert main(["export", "--out", out]) == 0, capsys.readouterr().err
        assert f"to {path.resolve()}" in capsys.readouterr().out
        assert len(read_back("jsonl", path)) == cases
    assert sorted(p.name for p in work.iterdir()) == ["door"]  # nothing written in the working directory
    (work / "plain").write_text("a file")
    assert main(["export", "--out", "plain/suite.jsonl"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("cannot write the export to") and "plain" in err[0]


def test_a_bad_day_is_a_clear_error(env, tmp_path, capsys):
    assert main(["export", "--as-of", "yesterday", "--out-dir", str(tmp_path)]) == 2
    assert "--as-of must be a day YYYY-MM-DD" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_the_default_folder_is_data_exports(env, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["export", "--format", "promptfoo"]) == 0
    assert (tmp_path / "data" / "exports" / "eval_suite-latest.promptfoo.yaml").is_file()
    assert main(["export", "--format", "inspect", "--out", "data/exports/named.jsonl"]) == 0
    assert (tmp_path / "data" / "exports" / "named.jsonl").is_file()
