"""Where an export may be written.

Two kinds of path. A path the user typed (`eval-loop export --out FILE`, or a file path handed to
`write_export`) is theirs: it is written where it says, like a shell redirection (`resolve_user_path`).
A name that may come from data (the `out=` of `write_export`, the default name) is joined to an output
folder and must stay inside it: it is resolved first (`..` collapsed, symlinks followed, including a
symlinked file or folder that already exists) and a result outside the folder is refused before
anything is written (`resolve_output`).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path

DEFAULT_EXPORT_DIR = "data/exports"
TMP_NAME_EXTRA_BYTES = 40  # write_atomically's temporary name: ".{name}.{pid}.{12 hex}.tmp"
MAX_NAME_BYTES = 255 - TMP_NAME_EXTRA_BYTES


class UnsafeExportPath(ValueError):
    """The requested output path resolves outside the output folder (or is not a usable file path)."""


def _inside(path: Path, root: Path) -> bool:
    return path != root and path.is_relative_to(root)


def resolve_output(out_dir: str | os.PathLike[str], out: str | os.PathLike[str] | None, default_name: str) -> Path:
    """The absolute file path to write, or UnsafeExportPath when it would land outside `out_dir`.

    `out` may be None (the default name in the folder), a name relative to the folder, a path that
    already points into the folder (such as `data/exports/x.jsonl`, or an absolute path inside it), or
    a sub-folder (an existing one, or a name ending in `/`), which then gets the default name.
    """
    folder = Path(out_dir).expanduser()
    if folder.exists() and not folder.is_dir():
        raise UnsafeExportPath(f"the output folder {folder} exists and is not a folder")
    root = folder.resolve()
    if out is None or str(out) == "":
        candidate = root / default_name
    else:
        given = Path(out).expanduser()
        if given.is_absolute():
            candidate = given
        elif _inside(given.resolve(), root):
            candidate = given  # spelled from the working directory, folder included
        else:
            candidate = root / given
        candidate = _default_name_if_folder(candidate, str(out), default_name)
    resolved = candidate.resolve()
    _check_name_length(resolved)
    if not _inside(resolved, root):
        raise UnsafeExportPath(
            f"refusing to write the export to {str(out)!r}: it resolves to {resolved}, which is outside the "
            f"output folder {root}. Name a file inside the folder, or choose the folder with --out-dir."
        )
    return _refuse_folder(resolved)


def resolve_user_path(path: str | os.PathLike[str], default_name: str) -> Path:
    """The absolute file path for a path the user chose: relative to the working directory, anywhere on
    disk, symlinks followed; a folder (an existing one, or a path ending in `/`) gets the default name."""
    resolved = _default_name_if_folder(Path(path).expanduser(), str(path), default_name).resolve()
    _check_name_length(resolved)
    return _refuse_folder(resolved)


def _default_name_if_folder(candidate: Path, spelled: str, default_name: str) -> Path:
    """`candidate`, or the default name inside it when it is a folder: an existing one, or `spelled` (the path
    as given) ends in `/`."""
    if spelled.endswith(("/", os.sep)) or candidate.is_dir():
        return candidate / default_name
    return candidate


def _refuse_folder(resolved: Path) -> Path:
    """`resolved`, unless it is an existing folder (a file cannot be written in its place)."""
    if resolved.is_dir():
        raise UnsafeExportPath(f"refusing to write the export to {resolved}: it is a folder")
    return resolved


def _check_name_length(resolved: Path) -> None:
    if len(resolved.name.encode("utf-8")) > MAX_NAME_BYTES:
        raise UnsafeExportPath(
            f"refusing to write the export to a file name of {len(resolved.name.encode('utf-8'))} bytes "
            f"({resolved.name[:40]}…): file systems allow 255, and the export is first written beside it under a "
            f"temporary name {TMP_NAME_EXTRA_BYTES} bytes longer; name it in at most {MAX_NAME_BYTES} bytes"
        )


def write_atomically(path: Path, root: Path, write: Callable[[Path], None]) -> None:
    """Create the parent folders, write to a temporary file beside `path`, then move it into place.

    The parent is checked again after it is created, so a folder swapped for a symlink in between
    still cannot take the file outside `root`.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if not _inside(path.parent.resolve() / path.name, root.resolve()):
        raise UnsafeExportPath(f"refusing to write {path}: its folder now resolves outside {root}")
    tmp = path.parent / f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp"
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
