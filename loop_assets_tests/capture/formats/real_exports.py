"""The tools' real exports (fixtures/formats/real-exports) and how each of their LLM calls comes out of capture.

`expected.json` beside the files says, per file, the LLM calls counted by hand and what each must give;
`outcome` compares what capture made of a file with that. The tests (test_real_exports.py) and
scripts/real_exports_report.py (the table for a person) both use it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loop_assets.capture.ingest import ingest_file
from loop_assets.capture.rows import IngestResult
from loop_assets.config import IngestConfig
from loop_assets_tests.paths import FIXTURES

REAL_EXPORTS = FIXTURES / "formats" / "real-exports"
NOW = datetime(2026, 12, 31, tzinfo=UTC)
"""After the newest file: the GENERATED OTel files were recorded on 2026-12-05."""
CFG = IngestConfig(workers=1, earliest_timestamp="2000-01-01")
"""The files go back to 2024: the shipped floor (partitions_start) would quarantine them as bad_timestamp."""


def expected() -> dict[str, dict[str, Any]]:
    data = json.loads((REAL_EXPORTS / "expected.json").read_text(encoding="utf-8"))
    return {k: v for k, v in data.items() if not k.startswith("_")}


def real_files(root: Path = REAL_EXPORTS) -> list[str]:
    """Every export under `root`, as a path relative to it."""
    return sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and p.name.endswith((".json", ".jsonl")) and p.name != "expected.json"
    )


def read(path: Path, now: datetime = NOW, cfg: IngestConfig = CFG) -> IngestResult:
    return ingest_file(path, cfg, "real-exports", now=now)


@dataclass
class Outcome:
    """What capture made of one file, against what the file holds."""

    file: str
    formats: list[str]
    traces: int
    quarantined: dict[str, int]
    expected_calls: int | None = None
    right: list[str] = field(default_factory=list)
    wrong: dict[str, list[str]] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    quarantined_as_expected: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        if self.expected_calls is None:
            return "-"
        if self.wrong or self.missing or self.unexpected:
            return "partly" if self.right else "rejected"
        if self.expected_calls == len(self.right):
            return "right"
        return "right, rest quarantined (not in file)" if self.right else "quarantined (not in file)"


UNDATED_DAY = "2026-11-20"
UNDATED_CFG = CFG.model_copy(update={"undated_day": UNDATED_DAY})
"""The ingest settings under which files whose records carry no time give their calls (`calls_with_undated_day`)."""


def outcome(rel: str, result: IngestResult, spec: dict[str, Any] | None, undated: bool = False) -> Outcome:
    logged = result.traces["source_format"].to_list() + result.quarantine["source_format"].to_list()
    formats = sorted({f for f in logged if f})
    codes: dict[str, int] = {}
    for code in result.quarantine["reason_code"].to_list():
        codes[code] = codes.get(code, 0) + 1
    out = Outcome(rel, formats, result.traces.height, codes)
    if spec is None:
        return out
    calls, held = spec.get("calls", {}), spec.get("quarantined", {})
    if undated and "calls_with_undated_day" in spec:
        calls, held = spec["calls_with_undated_day"], {}
    out.expected_calls = len(calls) + len(held)
    rows = result.traces.to_dicts()
    used: set[int] = set()
    for key, want in calls.items():
        found = [i for i, r in enumerate(rows) if _matches(key, r["span_id"], r["source_line"])]
        if len(found) != 1:
            out.missing.append(key)
            continue
        used.add(found[0])
        problems = check_call(rows[found[0]], want, spec.get("format"))
        if problems:
            out.wrong[key] = problems
        else:
            out.right.append(key)
    out.unexpected += [f"row span {r['span_id']} line {r['source_line']}" for i, r in enumerate(rows) if i not in used]
    qrows = result.quarantine.to_dicts()
    qused: set[int] = set()
    for key, want in held.items():
        found = [
            i
            for i, q in enumerate(qrows)
            if (q["source_line"] == int(key[5:]) if key.startswith("line:") else f" {key}" in q["reason"])
        ]
        ok = [i for i in found if q_ok(qrows[i], want)]
        if len(ok) == 1:
            qused.add(ok[0])
            out.quarantined_as_expected.append(key)
        else:
            out.missing.append(f"{key} (quarantined as expected)")
    out.unexpected += [
        f"quarantine line {q['source_line']} {q['reason_code']}: {q['reason'][:160]}"
        for i, q in enumerate(qrows)
        if i not in qused
    ]
    return out


def _matches(key: str, span_id: str | None, line: int) -> bool:
    return line == int(key[5:]) if key.startswith("line:") else span_id == key


def q_ok(row: dict[str, Any], want: dict[str, Any]) -> bool:
    return row["reason_code"] == want["code"] and want["reason"] in row["reason"]


def check_call(row: dict[str, Any], want: dict[str, Any], fmt: str | None) -> list[str]:
    """What differs between a raw_traces row and the expected call (empty when it is right)."""
    problems: list[str] = []
    meta = json.loads(row["metadata"])
    if fmt and row["source_format"] != fmt:
        problems.append(f"source_format {row['source_format']!r}, expected {fmt!r}")
    for key, value in want.items():
        if key in ("trace_id", "app", "model", "input_text", "output_text", "finish_reason", "error"):
            if row[key] != value:
                problems.append(f"{key} {_short(row[key])}, expected {_short(value)}")
        elif key == "ts":
            if row["ts"].isoformat() != value:
                problems.append(f"ts {row['ts'].isoformat()}, expected {value}")
        elif key in ("input_starts", "output_starts"):
            got = row["input_text" if key == "input_starts" else "output_text"] or ""
            if not got.startswith(value):
                problems.append(f"{key[:-7]}_text {_short(got)}, expected to start with {_short(value)}")
        elif key == "error_contains":
            if value not in (row["error"] or ""):
                problems.append(f"error {_short(row['error'])}, expected to contain {value!r}")
        elif key == "latency_ms":
            if value is None or row["latency_ms"] is None:
                if row["latency_ms"] != value:
                    problems.append(f"latency_ms {row['latency_ms']}, expected {value}")
            elif abs(row["latency_ms"] - value) > 0.01:
                problems.append(f"latency_ms {row['latency_ms']}, expected {value}")
        elif key == "usage":
            usage = meta.get("usage") or {}
            if any(usage.get(k) != v for k, v in value.items()):
                problems.append(f"usage {usage}, expected {value}")
        elif key == "feedback":
            names = sorted(s.get("name") for s in json.loads(row["feedback"] or "[]"))
            if names != sorted(value):
                problems.append(f"feedback {names}, expected {sorted(value)}")
        elif key == "tool_calls":
            names = [c["function"]["name"] for c in meta.get("tool_calls") or []]
            if names != value:
                problems.append(f"tool_calls {names}, expected {value}")
        elif key == "messages_roles":
            roles = [m["role"] for m in json.loads(row["input_messages"])]
            if roles != value:
                problems.append(f"input message roles {roles}, expected {value}")
        else:
            problems.append(f"unknown expectation {key!r}")
    return problems


def _short(value: Any, limit: int = 70) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
