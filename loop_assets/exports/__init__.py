"""Exports of the suite into the formats other eval tools read, with provenance and the suite version.

`write_export(suite, fmt, out_dir_or_file, ...)` writes one file in one of the `EXPORTERS` formats:
to the file path the caller chose, or inside an output folder that a name from data cannot leave
(see `paths`); `read_back(fmt, path)` reads a written file back
into one common shape per case (case_id, input, expected_output, grading, weight, provenance, suite,
item), which is what the round-trip tests compare. Each format module's docstring states its field
mapping and what is kept only in metadata.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl

from loop_assets.config import ConfigError, RedactionConfig, load_config
from loop_assets.exports import inspect, jsonl, langfuse, openai_evals, promptfoo
from loop_assets.exports.paths import (
    DEFAULT_EXPORT_DIR,
    UnsafeExportPath,
    resolve_output,
    resolve_user_path,
    write_atomically,
)
from loop_assets.exports.suite import (
    PROVENANCE_FIELDS,
    Case,
    SuiteVersion,
    suite_as_of,
    suite_cases,
    suite_version,
)
from loop_assets.redaction import redact_frame


@dataclass(frozen=True)
class Exporter:
    name: str
    suffix: str
    summary: str
    write: Callable[..., None]
    read: Callable[[Path], list[dict[str, Any]]]


EXPORTERS: dict[str, Exporter] = {
    "jsonl": Exporter("jsonl", jsonl.SUFFIX, "eval-loop's own JSONL, every field", jsonl.write, jsonl.read),
    "openai-evals": Exporter(
        "openai-evals",
        openai_evals.SUFFIX,
        "OpenAI Evals samples (input; ideal when the case has a reference)",
        openai_evals.write,
        openai_evals.read,
    ),
    "inspect": Exporter(
        "inspect", inspect.SUFFIX, "Inspect AI dataset (input, target, id, metadata)", inspect.write, inspect.read
    ),
    "promptfoo": Exporter(
        "promptfoo", promptfoo.SUFFIX, "promptfoo config with tests (vars, assert)", promptfoo.write, promptfoo.read
    ),
    "langfuse": Exporter(
        "langfuse",
        langfuse.SUFFIX,
        "Langfuse dataset items (input, expectedOutput, metadata, sourceTraceId)",
        langfuse.write,
        langfuse.read,
    ),
}


@dataclass(frozen=True)
class ExportResult:
    path: Path
    format: str
    cases: int
    version: SuiteVersion


def default_name(fmt: str, as_of: date | None) -> str:
    return f"eval_suite-{as_of.isoformat() if as_of else 'latest'}{exporter(fmt).suffix}"


def exporter(fmt: str) -> Exporter:
    if fmt not in EXPORTERS:
        raise ValueError(f"unknown export format {fmt!r}; choose one of {', '.join(EXPORTERS)}")
    return EXPORTERS[fmt]


def write_export(
    suite: pl.DataFrame,
    fmt: str,
    out_dir_or_file: str | os.PathLike[str] = DEFAULT_EXPORT_DIR,
    *,
    out: str | os.PathLike[str] | None = None,
    folder: bool | None = None,
    as_of: date | None = None,
    redaction: RedactionConfig | None = None,
    **options: Any,
) -> ExportResult:
    """Write `suite` (rows of eval_suite, e.g. from `suite_as_of`) as `fmt`; the path written and the version.

    `out_dir_or_file` is the output folder (the default file name goes in it, or `out` names a file
    inside it), or the caller's own file path, written where it says (symlinks followed, like a shell
    redirection). It counts as a folder when `folder` is True, when `out` is given, when it is an
    existing folder, or when it has no suffix. `out` may come from data: a name that resolves outside
    the folder raises UnsafeExportPath before anything is written.
    `as_of` is the day the suite was pinned to (None: latest); it is recorded as the suite version.
    Options: `dataset_name` (langfuse).

    The suite is already redacted when promoted; as a second line of defence the exported text fields
    (messages, input text, expected output, label, grading, signal values) are redacted again with
    `redaction` (None: the loaded configuration's, defaults when it cannot be loaded). Values that are
    already clean come out unchanged, so this costs one analyzer pass per distinct text.
    """
    chosen = exporter(fmt)
    given = Path(out_dir_or_file).expanduser()
    if folder is None:
        folder = out is not None or given.is_dir() or not given.suffix or str(out_dir_or_file).endswith(("/", os.sep))
    if folder:
        root, path = given, resolve_output(given, out, default_name(fmt, as_of))
    else:
        path = resolve_user_path(given, default_name(fmt, as_of))
        root = path.parent
    suite = redact_frame(suite, EXPORTED_TEXT_COLUMNS, _redaction(redaction))
    cases: list[Case] = suite_cases(suite)
    version = suite_version(suite, as_of)
    write_atomically(path, root.resolve(), lambda tmp: chosen.write(cases, version, tmp, **options))
    return ExportResult(path=path, format=fmt, cases=len(cases), version=version)


EXPORTED_TEXT_COLUMNS = ["input_messages", "input_text", "expected_output", "label", "grading", "failure_signals"]


def _redaction(given: RedactionConfig | None) -> RedactionConfig:
    if given is not None:
        return given
    try:
        return load_config().redaction
    except ConfigError:
        return RedactionConfig()


def read_back(fmt: str, path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The cases of an exported file, one common dict per case (see the module docstring)."""
    return exporter(fmt).read(Path(path))


__all__ = [
    "DEFAULT_EXPORT_DIR",
    "EXPORTERS",
    "PROVENANCE_FIELDS",
    "ExportResult",
    "Exporter",
    "UnsafeExportPath",
    "read_back",
    "suite_as_of",
    "write_export",
]
