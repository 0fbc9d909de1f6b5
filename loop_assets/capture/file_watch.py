"""Which files in the incoming folder are new or grown and finished being written, under a bounded cursor.

A file is taken once per version (size and modification time). A version is ready when it was
already seen unchanged on the previous tick, or when its modification time is older than
`settle_seconds` (a file copied in whole, or written long ago). A file whose size or time changes
between ticks is still being written and waits.

The cursor does not list every file ever taken. Its `mark` is a time on the files' change clock
(st_ctime: creating a file, moving it into the folder, writing or touching it set it to now, so it
says when a version arrived even for a copy that keeps an old modification time): every entry whose
change time is at or before the mark has been taken. Beside the mark the cursor keeps only `recent`
(entries taken whose change time is after the mark: those of the last moment before a tick) and `seen`
(versions of files still being written, at most SEEN_LIMIT; more simply wait to settle). The mark
trails the tick's start by MARGIN_NS (the file clock is coarser than the sensor's) and never passes a
file still waiting. An empty cursor (the first tick, a reset) knows nothing; what the warehouse
already read stands in for it (`already`, from `ingest_plan.stored_versions`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Set
from dataclasses import dataclass, field

from loop_assets.capture.incoming import Entry

MARGIN_NS = 1_000_000_000
SEEN_LIMIT = 1_000


@dataclass(frozen=True)
class FileVersion:
    size: int
    mtime_ns: int
    ctime_ns: int | None = None
    """When the entry last changed (st_ctime); None: its modification time stands in."""

    @property
    def key(self) -> str:
        return f"{self.size}:{self.mtime_ns}"

    @property
    def changed_ns(self) -> int:
        """The later of the two times: on Windows st_ctime is the creation time, which growing leaves alone."""
        return self.mtime_ns if self.ctime_ns is None else max(self.ctime_ns, self.mtime_ns)


@dataclass(frozen=True)
class Cursor:
    mark: int | None = None
    """Every entry whose change time is at or before this was taken; None: nothing is known."""
    recent: dict[str, str] = field(default_factory=dict)
    """Entries taken whose change time is after the mark: name -> version key."""
    seen: dict[str, str] = field(default_factory=dict)
    """Files still being written: name -> the version seen on the last tick."""

    @property
    def empty(self) -> bool:
        return self.mark is None and not self.recent

    def dumps(self) -> str:
        return json.dumps({"v": 2, "mark": self.mark, "recent": self.recent, "seen": self.seen}, sort_keys=True)


def read_cursor(text: str | None) -> Cursor:
    """The cursor of the last tick. The first version of this cursor ({name: {"done", "seen"}}, every file
    ever taken) is read as what it says: its taken versions become `recent`, to be dropped by the mark."""
    if not text:
        return Cursor()
    state = json.loads(text)
    if state.get("v") == 2:
        return Cursor(state.get("mark"), dict(state.get("recent") or {}), dict(state.get("seen") or {}))
    recent = {name: entry["done"] for name, entry in state.items() if entry.get("done")}
    seen = {name: entry["seen"] for name, entry in state.items() if entry.get("seen") != entry.get("done")}
    return Cursor(None, recent, seen)


@dataclass(frozen=True)
class WatchPlan:
    ready: dict[str, FileVersion]  # files to process now
    waiting: dict[str, FileVersion]  # seen changing, or too fresh: next tick
    cursor: str  # the new cursor (JSON)


def scan(entries: Iterable[Entry]) -> dict[str, FileVersion]:
    """The version of each entry of `incoming.scan_incoming`, by its source_file name (a refused entry,
    such as a link leading outside the folder, by its own size and time: it is one quarantine row)."""
    return {entry.name: FileVersion(entry.size, entry.mtime_ns, entry.ctime_ns) for entry in entries}


def untaken(current: dict[str, FileVersion], cursor: Cursor) -> set[str]:
    """Entries the cursor does not account for: new, or changed since they were taken."""
    return {
        name
        for name, version in current.items()
        if not (cursor.mark is not None and version.changed_ns <= cursor.mark)
        and cursor.recent.get(name) != version.key
    }


def plan(
    current: dict[str, FileVersion],
    cursor: str | Cursor | None,
    now_ns: int,
    settle_seconds: float,
    already: Set[str] = frozenset(),
    started_ns: int | None = None,
) -> WatchPlan:
    """Compare the folder with the cursor. `already`: entries the warehouse holds at their present version
    (taken without a run); `started_ns`: when the folder was listed (default `now_ns`)."""
    state = cursor if isinstance(cursor, Cursor) else read_cursor(cursor)
    fresh = untaken(current, state) - set(already)
    ready: dict[str, FileVersion] = {}
    waiting: dict[str, FileVersion] = {}
    for name in sorted(fresh):
        version = current[name]
        settled = now_ns - version.mtime_ns >= settle_seconds * 1e9
        if state.seen.get(name) == version.key or settled:
            ready[name] = version
        else:
            waiting[name] = version
    # The mark moves up to just before the listing began, never past a file still waiting (nor back).
    mark = (now_ns if started_ns is None else started_ns) - MARGIN_NS
    if waiting:
        mark = min(mark, min(v.changed_ns for v in waiting.values()) - 1)
    if state.mark is not None:
        mark = max(mark, state.mark)
    taken = {name: v for name, v in current.items() if name not in waiting}
    new = Cursor(
        mark,
        {name: v.key for name, v in sorted(taken.items()) if v.changed_ns > mark},
        {name: v.key for name, v in sorted(waiting.items())[:SEEN_LIMIT]},
    )
    return WatchPlan(ready=ready, waiting=waiting, cursor=new.dumps())
