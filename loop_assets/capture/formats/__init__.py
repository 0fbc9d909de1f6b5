"""Trace formats: one parser per external log format, behind the `TraceFormat` interface.

Registered: `langsmith` (LangSmith runs), `langfuse` (Langfuse observations and traces),
`openinference` (OpenInference spans), `otel_genai` (OpenTelemetry GenAI spans, and any OTLP
export request), `openai_chat` (OpenAI chat logs). Each module's docstring lists the fields it reads.

Detection is per file: the format that recognises most of the file's first `DETECT_SAMPLE` decoded
records wins; on a tie, the one registered first (the most specific shapes come first, the loose
`openai_chat` last). `ingest.format` names a format to use without detection.

To add a format: write a module with a class that has `name`, `looks_for`, `detect(obj)` and
`normalise(obj, ingest, now=...)` (and `split(obj)` when one record can hold several items; see
`base.TraceFormat` and `base.Part`), register an instance in `FORMATS` below and add its name to
`config.FormatName`. Capture and the assets need no change.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import islice
from typing import Any

from loop_assets.capture.formats.base import REASON_CODES, RecordError, TraceFormat
from loop_assets.capture.formats.langfuse import FORMAT as LANGFUSE
from loop_assets.capture.formats.langsmith import FORMAT as LANGSMITH
from loop_assets.capture.formats.openai_chat import FORMAT as OPENAI_CHAT
from loop_assets.capture.formats.openinference import FORMAT as OPENINFERENCE
from loop_assets.capture.formats.otel_genai import FORMAT as OTEL_GENAI

# Registry order is detection priority: on a tie, the format listed first wins.
FORMATS: dict[str, TraceFormat] = {
    LANGSMITH.name: LANGSMITH,
    LANGFUSE.name: LANGFUSE,
    OPENINFERENCE.name: OPENINFERENCE,
    OTEL_GENAI.name: OTEL_GENAI,
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
