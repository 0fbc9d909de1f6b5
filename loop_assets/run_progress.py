"""What `eval-loop materialize` prints while a Dagster run goes: each step as it starts and ends with
its figures, the assets' `progress: ` lines, warnings, failed checks and errors.

The events come from the run's event log (`defs/run_events.py` turns them into `RunEvent`s); this
module only decides what a person reads. On a terminal the latest progress line is redrawn in place;
otherwise every line is printed plainly, so a log file or CI output stays readable.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Literal, TextIO

PROGRESS_PREFIX = "progress: "
STILL_RUNNING_SECONDS = 30.0
"""Without a terminal, a step that prints nothing for this long gets a "still running" line."""
STEP_WIDTH = 18
WARNING_LEVEL = 30  # logging.WARNING
RUN_ID_IN_LOG = re.compile(r" - ([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}) - ")
"""The run id in a line of Dagster's console log: `<time> - dagster - <LEVEL> - <job> - <run_id> - ...`."""
COUNT_OF_TOTAL = re.compile(r"(\d[\d,]*) of (\d[\d,]*)")
BAR_WIDTH = 20


def day_span(first: date | str, last: date | str) -> str:
    """The days first..last as a label: "2026-11-16", or "2026-11-16...2026-11-23" for several."""
    return str(first) if first == last else f"{first}...{last}"


def with_bar(text: str) -> str:
    """A progress line with a bar when it says "N of M" ("embedding 2,000 of 31,534 texts")."""
    found = COUNT_OF_TOTAL.search(text)
    if not found:
        return text
    done, total = (int(g.replace(",", "")) for g in found.groups())
    if total <= 0:
        return text
    share = min(max(done / total, 0.0), 1.0)
    filled = round(share * BAR_WIDTH)
    return f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {share:4.0%}  {text}"


def run_id_in_log_line(line: str) -> str | None:
    found = RUN_ID_IN_LOG.search(line)
    return found[1] if found else None


RunEventKind = Literal[
    "run_start", "run_success", "run_failure", "step_start", "step_success", "step_failure", "materialization",
    "check", "log",
]  # fmt: skip


@dataclass(frozen=True)
class RunEvent:
    """One event of a run, as the printer needs it (no Dagster types)."""

    kind: RunEventKind
    step: str | None = None
    asset: str | None = None
    partition: str | None = None
    figures: dict[str, int | float] = field(default_factory=dict)
    message: str = ""
    seconds: float | None = None
    passed: bool | None = None
    level: int = 20
    at: float | None = None  # when it happened (epoch seconds), where the printer needs it


def shown_figures(figures: dict[str, int | float]) -> dict[str, int | float]:
    """The figures worth a line: Dagster's own keys and timings (the step line has its time) left out."""
    return {
        k: v
        for k, v in figures.items()
        if not k.startswith("dagster/") and not k.endswith(("_seconds", "_per_second")) and not isinstance(v, bool)
    }


def format_number(value: int | float) -> str:
    if isinstance(value, int):
        return f"{value:,}"
    text = f"{value:,.4f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def format_figures(figures: dict[str, int | float]) -> str:
    return ", ".join(f"{k} {format_number(v)}" for k, v in figures.items())


def merged_figures(materializations: list[RunEvent]) -> dict[str, int | float]:
    """The figures of one partition's materialisations (several assets of one step), in one mapping: each
    asset's first figure, then those that are not 0 (ten signal counts of 0 would bury the two that are
    not); a key two assets share is prefixed with its asset."""
    merged: dict[str, int | float] = {}
    for event in materializations:
        for i, (key, value) in enumerate(shown_figures(event.figures).items()):
            if i == 0 or value != 0:
                merged[f"{event.asset}.{key}" if key in merged else key] = value
    return merged


def same_every_day(per_day: list[dict[str, int | float]]) -> dict[str, int | float]:
    """Figures with one value on every day of a range: said once, so that a run-wide figure (the suite's
    size now) is never read as each day's own."""
    if len(per_day) < 2:
        return {}
    first, *others = per_day
    return {k: v for k, v in first.items() if all(k in d and d[k] == v for d in others)}


class ProgressPrinter:
    """Turns a run's events into lines on `out`; call `tick()` between polls and `close()` at the end."""

    def __init__(
        self,
        out: TextIO,
        days: str,
        *,
        tty: bool | None = None,
        still_running_seconds: float = STILL_RUNNING_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        width: int | None = None,
    ) -> None:
        self.out, self.days = out, days
        self.width = width  # of the terminal (None: asked each time, it may be resized)
        self.tty = out.isatty() if tty is None else tty
        self.still_running_seconds = still_running_seconds
        self.clock = clock
        self.step: str | None = None
        self.step_started = 0.0
        self.step_started_at: float | None = None  # the STEP_START event's own time
        self.last_line_at = clock()
        self.last_progress = ""
        self.live = False  # a progress line is drawn and has no newline yet
        self.materialized: dict[str, list[RunEvent]] = {}
        self.failed_checks: dict[str, list[RunEvent]] = {}
        self.failures: list[RunEvent] = []

    # ------------------------------------------------------------------ output

    def _line(self, text: str) -> None:
        if self.live:
            self.out.write("\r\x1b[2K")
            self.live = False
        self.out.write(text + "\n")
        self.out.flush()
        self.last_line_at = self.clock()

    def _draw(self, text: str) -> None:
        """On a terminal: the one progress line, redrawn in place (cut to the terminal's width: a line that
        wrapped could not be redrawn)."""
        width = self.width or shutil.get_terminal_size((100, 24)).columns
        self.out.write("\r\x1b[2K" + text[: max(width - 1, 20)])
        self.out.flush()
        self.live = True

    def _head(self, step: str | None) -> str:
        return f"{step or 'run':<{STEP_WIDTH}} {self.days}" if self.days else f"{step or 'run':<{STEP_WIDTH}}"

    def note(self, text: str) -> None:
        """A line of the command's own (the run's id, ...)."""
        self._line(text)

    # ------------------------------------------------------------------ events

    def handle(self, event: RunEvent) -> None:
        handler = getattr(self, f"_on_{event.kind}", None)
        if handler is not None:
            handler(event)

    def _on_step_start(self, event: RunEvent) -> None:
        self.step, self.step_started, self.last_progress = event.step, self.clock(), ""
        self.step_started_at = event.at
        self._line(f"{self._head(event.step)}  started")

    def _on_materialization(self, event: RunEvent) -> None:
        self.materialized.setdefault(event.step or "", []).append(event)

    def _on_check(self, event: RunEvent) -> None:
        if event.passed is False:
            self.failed_checks.setdefault(event.step or "", []).append(event)

    def _on_log(self, event: RunEvent) -> None:
        text = event.message.strip()
        if text.startswith(PROGRESS_PREFIX):
            self.last_progress = text[len(PROGRESS_PREFIX) :].strip()
            if self.tty:
                self._draw(f"{self._head(event.step)}  {with_bar(self.last_progress)}")
            else:
                self._line(f"{self._head(event.step)}  {self.last_progress}")
        elif event.level >= WARNING_LEVEL:
            kind = "error" if event.level >= 40 else "warning"
            first = text.splitlines()[0] if text else ""
            self._line(f"{self._head(event.step)}  {kind}: {first[:300]}")

    def _on_step_success(self, event: RunEvent) -> None:
        self._step_end(event, f"done in {_seconds(event.seconds)}")

    def _on_step_failure(self, event: RunEvent) -> None:
        self.failures.append(event)
        seconds = event.seconds
        if seconds is None and event.at is not None and self.step_started_at is not None:
            seconds = event.at - self.step_started_at
        self._step_end(event, f"FAILED after {_seconds(seconds)}: {event.message}")

    def _step_end(self, event: RunEvent, said: str) -> None:
        step = event.step or ""
        events = self.materialized.pop(step, [])
        by_partition: dict[str | None, list[RunEvent]] = {}
        for m in events:
            by_partition.setdefault(m.partition, []).append(m)
        if len(by_partition) <= 1:  # one partition, or none (a step that materialised nothing)
            figures = format_figures(merged_figures(events))
            self._line(f"{self._head(step)}  {said}" + (f": {figures}" if figures else ""))
        else:
            per_day = {
                day: merged_figures(found) for day, found in sorted(by_partition.items(), key=lambda kv: str(kv[0]))
            }
            same = same_every_day(list(per_day.values()))
            days = f" ({len(per_day)} days" + (f"; every day: {format_figures(same)})" if same else ")")
            self._line(f"{self._head(step)}  {said}{days}")
            for day, figures in per_day.items():
                rest = {k: v for k, v in figures.items() if k not in same}
                self._line(f"    {day or '-'}  {format_figures(rest) or '(as above)'}")
        for check in self.failed_checks.pop(step, []):
            where = f" for {check.partition}" if check.partition else ""
            self._line(f"    check {check.message} on {check.asset}{where} FAILED")
        self.step = None

    def _on_run_failure(self, event: RunEvent) -> None:
        if not self.failures and event.message:
            self._line(f"{self._head(None)}  FAILED: {event.message}")

    # ------------------------------------------------------------------ time

    def tick(self) -> None:
        """Between polls: show that a long step is still going."""
        if self.step is None:
            return
        now = self.clock()
        elapsed = now - self.step_started
        if self.tty:
            extra = f" · {with_bar(self.last_progress)}" if self.last_progress else ""
            self._draw(f"{self._head(self.step)}  running {elapsed:.0f}s{extra}")
        elif now - self.last_line_at >= self.still_running_seconds:
            self._line(f"{self._head(self.step)}  still running after {elapsed:.0f}s")

    def close(self) -> None:
        if self.live:
            self.out.write("\r\x1b[2K")
            self.out.flush()
            self.live = False


def _seconds(value: float | None) -> str:
    if value is None:
        return "?"
    return f"{value:.1f}s" if value < 120 else f"{int(value // 60)}m{int(value % 60):02d}s"
