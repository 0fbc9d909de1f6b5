"""Which files in the incoming folder are new or grown and finished being written.

A file is taken once per version (size and modification time). A version is ready when it was
already seen unchanged on the previous tick, or when its modification time is older than
`settle_seconds` (a file copied in whole, or written long ago). A file whose size or time changes
between ticks is still being written and waits.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from loop_assets.capture.incoming import Entry


@dataclass(frozen=True)
class FileVersion:
    size: int
    mtime_ns: int

    @property
    def key(self) -> str:
        return f"{self.size}:{self.mtime_ns}"


@dataclass(frozen=True)
class WatchPlan:
    ready: dict[str, FileVersion]  # files to process now
    waiting: dict[str, FileVersion]  # seen changing, or too fresh: next tick
    cursor: str  # the new cursor (JSON)


def scan(entries: Iterable[Entry]) -> dict[str, FileVersion]:
    """The version of each entry of `incoming.scan_incoming`, by its source_file name (a refused entry,
    such as a link leading outside the folder, by its own size and time: it is one quarantine row)."""
    return {entry.name: FileVersion(entry.size, entry.mtime_ns) for entry in entries}


def plan(current: dict[str, FileVersion], cursor: str | None, now_ns: int, settle_seconds: float) -> WatchPlan:
    """Compare the folder with the cursor: {file: {"done": key | None, "seen": key}}."""
    state: dict[str, dict[str, str | None]] = json.loads(cursor) if cursor else {}
    ready: dict[str, FileVersion] = {}
    waiting: dict[str, FileVersion] = {}
    new_state: dict[str, dict[str, str | None]] = {}
    for name, version in sorted(current.items()):
        previous = state.get(name, {})
        done = previous.get("done")
        if done == version.key:
            new_state[name] = {"done": done, "seen": version.key}
            continue
        settled = now_ns - version.mtime_ns >= settle_seconds * 1e9
        if previous.get("seen") == version.key or settled:
            ready[name] = version
            new_state[name] = {"done": version.key, "seen": version.key}
        else:
            waiting[name] = version
            new_state[name] = {"done": done, "seen": version.key}
    return WatchPlan(ready=ready, waiting=waiting, cursor=json.dumps(new_state, sort_keys=True))
