"""Trace formats: one parser per external log format, behind the `TraceFormat` interface.

To add a format (OTel GenAI, OpenInference, Langfuse, LangSmith, ...): write a module with a class
that has `name`, `looks_for`, `detect(obj)` and `normalise(obj, ingest, now=...)` (see
`base.TraceFormat`), and register an instance in `FORMATS` below (and in `IngestConfig.format`'s
allowed values). Capture and the assets need no change.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import islice
from typing import Any

from loop_assets.formats.base import REASON_CODES, RecordError, TraceFormat
from loop_assets.formats.openai_chat import FORMAT as OPENAI_CHAT

# Registry order is detection priority: on a tie, the format listed first wins.
FORMATS: dict[str, TraceFormat] = {
    OPENAI_CHAT.name: OPENAI_CHAT,
}

DETECT_SAMPLE = 20
"""How many decoded records of a file auto-detection looks at."""


def detect_format(objs: Iterable[dict[str, Any]]) -> str | None:
    """The format that recognises most of the first `DETECT_SAMPLE` decoded objects.

    Ties go to the format registered first; None when no format recognises any of them.
    """
    sample = list(islice(objs, DETECT_SAMPLE))
    best, best_hits = None, 0
    for name, fmt in FORMATS.items():
        hits = sum(1 for obj in sample if _safe_detect(fmt, obj))
        if hits > best_hits:
            best, best_hits = name, hits
    return best


def _safe_detect(fmt: TraceFormat, obj: dict[str, Any]) -> bool:
    try:
        return bool(fmt.detect(obj))
    except Exception:
        return False


def describe_formats() -> str:
    """What each registered format looks for, for an `unknown_format` reason."""
    return "; ".join(f"{name} looks for {fmt.looks_for}" for name, fmt in FORMATS.items())


__all__ = [
    "DETECT_SAMPLE",
    "FORMATS",
    "REASON_CODES",
    "RecordError",
    "TraceFormat",
    "describe_formats",
    "detect_format",
]
