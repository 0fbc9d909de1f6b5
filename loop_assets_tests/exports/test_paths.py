"""Exports stay inside the chosen output folder: `..`, absolute paths elsewhere and symlinks are refused."""

from __future__ import annotations

import os

import pytest

from loop_assets.exports import UnsafeExportPath, write_export
from loop_assets.exports.paths import resolve_output

NAME = "eval_suite-latest.jsonl"


@pytest.fixture
def folders(tmp_path):
    root, outside = tmp_path / "exports", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    return root, outside


def test_names_inside_the_folder_are_accepted(folders, monkeypatch):
    root, _ = folders
    r = root.resolve()
    assert resolve_output(root, None, NAME) == r / NAME
    assert resolve_output(root, "suite.jsonl", NAME) == r / "suite.jsonl"
    assert resolve_output(root, "v2/suite.jsonl", NAME) == r / "v2" / "suite.jsonl"
    assert resolve_output(root, "v2/", NAME) == r / "v2" / NAME
    assert resolve_output(root, str(r / "abs.jsonl"), NAME) == r / "abs.jsonl"
    assert resolve_output(root, "v2/../fine.jsonl", NAME) == r / "fine.jsonl"
    assert resolve_output(root, ".", NAME) == r / NAME  # the folder itself: the default name inside
    (root / "existing").mkdir()
    assert resolve_output(root, "existing", NAME) == r / "existing" / NAME
    # A path spelled from the working directory, folder included, is used as it is.
    monkeypatch.chdir(root.parent)
    assert resolve_output("exports", "exports/x.jsonl", NAME) == r / "x.jsonl"
    assert resolve_output("exports", "x.jsonl", NAME) == r / "x.jsonl"


def test_a_symlink_that_stays_inside_is_accepted(folders):
    root, _ = folders
    (root / "real").mkdir()
    (root / "alias").symlink_to(root / "real")
    assert resolve_output(root, "alias/x.jsonl", NAME) == (root / "real" / "x.jsonl").resolve()


@pytest.mark.parametrize("out", ["../escape.jsonl", "v2/../../escape.jsonl", "../outside/escape.jsonl", ".."])
def test_relative_escapes_are_refused(folders, out):
    root, _ = folders
    with pytest.raises(UnsafeExportPath, match="outside the output folder"):
        resolve_output(root, out, NAME)


def test_an_absolute_path_elsewhere_is_refused(folders):
    root, outside = folders
    with pytest.raises(UnsafeExportPath, match=r"resolves to .*outside.*escape\.jsonl.*outside the output folder"):
        resolve_output(root, str(outside / "escape.jsonl"), NAME)
    with pytest.raises(UnsafeExportPath):
        resolve_output(root, "/etc/passwd", NAME)


def test_symlink_escapes_are_refused(folders):
    root, outside = folders
    (root / "door").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafeExportPath, match="outside the output folder"):
        resolve_output(root, "door/escape.jsonl", NAME)
    (outside / "victim.jsonl").write_text("keep me")
    (root / "link.jsonl").symlink_to(outside / "victim.jsonl")
    with pytest.raises(UnsafeExportPath, match="outside the output folder"):
        resolve_output(root, "link.jsonl", NAME)
    (root / "dangling.jsonl").symlink_to(outside / "not-yet.jsonl")
    with pytest.raises(UnsafeExportPath, match="outside the output folder"):
        resolve_output(root, "dangling.jsonl", NAME)


def test_a_folder_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "plain").write_text("x")
    with pytest.raises(UnsafeExportPath, match="is not a folder"):
        resolve_output(tmp_path / "plain", None, NAME)


@pytest.mark.parametrize("fmt", ["jsonl", "promptfoo", "inspect"])
def test_a_refused_export_writes_nothing(suite_frame, folders, fmt):
    root, outside = folders
    (outside / "victim.jsonl").write_text("keep me")
    (root / "link.jsonl").symlink_to(outside / "victim.jsonl")
    for out in ["../escape.jsonl", str(outside / "abs.jsonl"), "link.jsonl"]:
        with pytest.raises(UnsafeExportPath):
            write_export(suite_frame, fmt, root, out=out)
    assert sorted(p.name for p in outside.iterdir()) == ["victim.jsonl"]
    assert (outside / "victim.jsonl").read_text() == "keep me"
    assert sorted(os.listdir(root)) == ["link.jsonl"]
