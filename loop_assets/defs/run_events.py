"""Follow a run's events in the Dagster instance as it goes, for `eval-loop materialize` to print.

The run executes in another process (`dagster job execute`); this reads what it has written to the
instance's event log since the last look, by cursor, and turns each record into a plain
`run_progress.RunEvent`.
"""

from __future__ import annotations

import dagster as dg

from loop_assets.run_progress import RunEvent, RunEventKind

PAGE = 1000

_KINDS: dict[dg.DagsterEventType, RunEventKind] = {
    dg.DagsterEventType.RUN_START: "run_start",
    dg.DagsterEventType.RUN_SUCCESS: "run_success",
    dg.DagsterEventType.RUN_FAILURE: "run_failure",
    dg.DagsterEventType.STEP_START: "step_start",
    dg.DagsterEventType.STEP_SUCCESS: "step_success",
    dg.DagsterEventType.STEP_FAILURE: "step_failure",
    dg.DagsterEventType.ASSET_MATERIALIZATION: "materialization",
    dg.DagsterEventType.ASSET_CHECK_EVALUATION: "check",
}


class RunFollower:
    """The events of one run not yet seen; `poll()` as often as wanted (each call reads only what is new)."""

    def __init__(self, instance: dg.DagsterInstance, run_id: str) -> None:
        self.instance, self.run_id = instance, run_id
        self.cursor: str | None = None

    def poll(self) -> list[RunEvent]:
        events: list[RunEvent] = []
        while True:
            page = self.instance.get_records_for_run(self.run_id, cursor=self.cursor, limit=PAGE)
            self.cursor = page.cursor
            events.extend(e for e in map(to_run_event, page.records) if e is not None)
            if not page.has_more:
                return events


def to_run_event(record: dg.EventLogRecord) -> RunEvent | None:
    entry = record.event_log_entry
    event = entry.dagster_event
    if event is None:  # a context.log line of an asset
        return RunEvent("log", step=entry.step_key, message=entry.user_message or "", level=entry.level)
    kind = _KINDS.get(event.event_type)
    if kind is None:
        return None
    data = event.event_specific_data
    if kind == "materialization":
        materialization = data.materialization
        return RunEvent(
            kind,
            step=event.step_key,
            asset=materialization.asset_key.to_user_string(),
            partition=materialization.partition,
            figures=_numbers(materialization.metadata),
        )
    if kind == "check":
        return RunEvent(
            kind,
            step=event.step_key,
            asset=data.asset_key.to_user_string(),
            partition=data.partition,
            message=data.check_name,
            passed=data.passed,
        )
    if kind == "step_success":
        return RunEvent(kind, step=event.step_key, seconds=data.duration_ms / 1000)
    if kind == "step_failure":
        return RunEvent(kind, step=event.step_key, message=_error_text(data.error), at=entry.timestamp)
    if kind == "run_failure":
        return RunEvent(kind, message=_error_text(getattr(data, "error", None)) or (event.message or ""))
    return RunEvent(kind, step=event.step_key, at=entry.timestamp)


def _numbers(metadata: dict[str, dg.MetadataValue]) -> dict[str, int | float]:
    out: dict[str, int | float] = {}
    for key, value in metadata.items():
        raw = getattr(value, "value", None)
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            out[key] = raw
    return out


def _error_text(error) -> str:
    """The first line of the exception the step raised, not of Dagster's wrapper around it (nor of the
    low-level error it was raised from, whose message is usually less helpful)."""
    if error is None:
        return ""
    while (error.cls_name or "").startswith("Dagster") and getattr(error, "cause", None) is not None:
        error = error.cause
    lines = (error.message or "").strip().splitlines()
    return lines[0] if lines else error.cls_name or "error"
