"""The incoming folder: which entries are trace files, the name each is stored under, and what is not read.

- A trace file is a name ending `.jsonl` or `.ndjson` (JSON Lines) or `.json` (one document), in any
  case, also as log rotation leaves it: numbered or dated (`traces.jsonl.1`, `traces.jsonl-20261112`,
  `traces.jsonl.2026-11-12`, `traces.jsonl-2026111203`) and compressed (`.gz`, `.bz2`, `.xz`, `.zst`),
  in either order (`traces.jsonl.2.gz`, `traces.jsonl.gz.1`). How a file is compressed is read from its
  first bytes, never from its name (`formats.jsonl.sniff`).
- Hidden entries (a leading dot) and names ending `.tmp` or `.part` (still being written) are passed
  over without a word. Every other entry that is not read is *ignored* and listed with why (a name that
  is not a trace file's, a symlinked folder, a folder that cannot be listed), so the accounting check
  can name it.
- A symbolic link is followed only when it leads to a regular file inside the incoming folder; it is
  read under the link's own name. A link that leads outside the folder, a dangling link, a loop of
  links and anything that is not a regular file (a FIFO, a socket, a device) is *refused*: never
  opened, and one `unreadable_file` quarantine row says why, so it is accounted for like a file.
- `source_file` is the path relative to the folder, `/`-separated; bytes of a name that are not UTF-8
  are written `\\xNN` (a file called `bad\\xff.jsonl` is stored as `bad\\\\xff.jsonl`).
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

SKIP_SUFFIXES = (".tmp", ".part")
_ROTATED = r"(?:[._-]\d[\d._:T-]*)?"
TRACE_NAME = re.compile(
    rf"\.(?P<kind>jsonl|ndjson|json){_ROTATED}(?:\.(?:gz|gzip|bz2|xz|zst|zstd))?{_ROTATED}$", re.IGNORECASE
)


def trace_kind(name: str) -> str | None:
    """ "lines" (JSON Lines), "document" (one JSON document) or None (not a trace file's name)."""
    found = TRACE_NAME.search(name)
    if found is None:
        return None
    return "document" if found["kind"].lower() == "json" else "lines"


def source_name(path: Path, incoming: Path) -> str:
    """`path` relative to `incoming`, as stored in `source_file`: bytes that are not UTF-8 as `\\xNN`."""
    relative = path.relative_to(incoming).as_posix()
    try:
        relative.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes arrive as lone surrogates (surrogateescape)
        return os.fsencode(relative).decode("utf-8", "backslashreplace")
    return relative


@dataclass(frozen=True)
class Entry:
    """One trace-named entry of the folder."""

    path: Path
    name: str
    """`source_file`: see `source_name`."""
    size: int
    mtime_ns: int
    """Of the file, or for a refused entry of the entry itself (lstat)."""
    mtime: float
    """`st_mtime` of the same, in seconds (what `ingest_manifest.file_mtime` is made from)."""
    refused: str | None = None
    """Why it is not opened (see the module docstring), None for a file that is read."""
    ctime_ns: int | None = None
    """`st_ctime_ns` of the same: when it last changed or arrived (the sensor's clock, `file_watch`)."""

    @property
    def is_document(self) -> bool:
        return trace_kind(self.path.name) == "document"

    @property
    def version(self) -> tuple[int, datetime]:
        """(size, modification time): the version `ingest_manifest` and `ingested_files` record."""
        return self.size, datetime.fromtimestamp(self.mtime, UTC)


@dataclass(frozen=True)
class Listing:
    entries: list[Entry]
    """Trace-named entries in reading order (see `scan_incoming`)."""
    ignored: list[tuple[str, str]] = field(default_factory=list)
    """(name, why) of every other entry that is not read."""


def scan_incoming(incoming: Path, first_read: Mapping[str, int] | None = None) -> Listing:
    """Every entry under `incoming`, recursively. A missing folder has none.

    Reading order decides which copy of a duplicated record is kept: the first delivered. Files an
    earlier ingest read come first, in the order they were first read (`first_read`: source_file ->
    order, from `ingested_files.read_order`), so a later copy never takes over, whatever its
    modification time; new files follow, oldest modification time first, then by name.
    """
    incoming = Path(incoming)
    if not incoming.exists():
        return Listing([])
    if not incoming.is_dir():
        raise NotADirectoryError(f"the incoming trace folder {incoming} is not a folder")
    root_real = incoming.resolve()
    entries: list[Entry] = []
    ignored: list[tuple[str, str]] = []

    def unlistable(error: OSError) -> None:
        if error.filename is not None and Path(error.filename) != incoming:
            name = source_name(Path(error.filename), incoming)
            ignored.append((name, f"a folder that cannot be listed: {error.strerror or error}"))

    for root, dirs, names in os.walk(incoming, onerror=unlistable):
        here = Path(root)
        kept_dirs = []
        for d in dirs:
            if d.startswith("."):
                continue
            if (here / d).is_symlink():
                ignored.append((source_name(here / d, incoming), "a symbolic link to a folder: not followed"))
                continue
            kept_dirs.append(d)
        dirs[:] = kept_dirs
        for name in names:
            path = here / name
            if name.startswith(".") or name.lower().endswith(SKIP_SUFFIXES):
                continue
            if trace_kind(name) is None:
                ignored.append((source_name(path, incoming), "not a trace file's name (.jsonl, .ndjson or .json)"))
                continue
            entry = _entry(path, incoming, root_real)
            if entry is not None:
                entries.append(entry)
    order = first_read or {}
    never = len(order) + 1
    entries.sort(key=lambda e: (order.get(e.name, never), e.mtime_ns if e.name not in order else 0, e.name))
    return Listing(entries, sorted(ignored))


def _entry(path: Path, incoming: Path, root_real: Path) -> Entry | None:
    """The entry for a trace-named path; None when it vanished while the folder was listed."""
    name = source_name(path, incoming)
    try:
        link = path.lstat()
    except OSError:
        return None
    refused = None
    if stat.S_ISLNK(link.st_mode):
        try:
            target = path.resolve(strict=True)
        except RuntimeError:  # Python < 3.13: a loop of links
            refused = "a symbolic link in a loop of links: not followed"
        except OSError as exc:
            refused = (
                "a symbolic link in a loop of links: not followed"
                if getattr(exc, "errno", None) == 40  # ELOOP
                else f"a dangling symbolic link (to {os.readlink(path)!r}, which does not exist): not followed"
            )
        else:
            if not target.is_relative_to(root_real):
                refused = (
                    f"a symbolic link to {str(target)!r}, outside the incoming folder: not followed (only links "
                    "to files inside the folder are read; copy the file in instead)"
                )
    if refused is None:
        try:
            info = path.stat()
        except OSError as exc:
            refused = f"cannot read its status: {exc.strerror or exc}"
        else:
            if not stat.S_ISREG(info.st_mode):
                refused = f"not a regular file ({_kind(info.st_mode)}): not opened"
            else:
                return Entry(path, name, info.st_size, info.st_mtime_ns, info.st_mtime, ctime_ns=info.st_ctime_ns)
    return Entry(path, name, link.st_size, link.st_mtime_ns, link.st_mtime, refused=refused, ctime_ns=link.st_ctime_ns)


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "not a file"
