"""What `eval-loop materialize` prints for a run's events: step lines with per-day figures, progress."""

from __future__ import annotations

import dataclasses
import io

from loop_assets.run_progress import ProgressPrinter, RunEvent, format_number, run_id_in_log_line

DAYS = "2026-11-16...2026-11-17"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def printer(tty: bool = False) -> tuple[ProgressPrinter, io.StringIO, Clock]:
    out, clock = io.StringIO(), Clock()
    return ProgressPrinter(out, DAYS, tty=tty, still_running_seconds=30, clock=clock, width=200), out, clock


def materialization(asset: str, day: str, step: str = "raw_traces", **figures) -> RunEvent:
    return RunEvent("materialization", step=step, asset=asset, partition=day, figures=figures)


def test_a_range_prints_each_days_own_figures_under_the_step_line():
    p, out, _ = printer()
    p.handle(RunEvent("step_start", step="raw_traces"))
    p.handle(RunEvent("log", step="raw_traces", message="progress: reading 2 files"))
    p.handle(RunEvent("log", step="raw_traces", message="an info line nobody asked for"))
    p.handle(materialization("raw_traces", "2026-11-16", traces=1500, files=2, ingest_seconds=1.5))
    p.handle(materialization("raw_traces", "2026-11-17", traces=2000, files=1, ingest_seconds=2.5))
    p.handle(materialization("quarantined_records", "2026-11-16", quarantined=12))
    p.handle(materialization("quarantined_records", "2026-11-17", quarantined=0))
    p.handle(RunEvent("step_success", step="raw_traces", seconds=3.21))
    assert out.getvalue().splitlines() == [
        f"raw_traces         {DAYS}  started",
        f"raw_traces         {DAYS}  reading 2 files",
        f"raw_traces         {DAYS}  done in 3.2s (2 days)",
        "    2026-11-16  traces 1,500, files 2, quarantined 12",
        "    2026-11-17  traces 2,000, files 1, quarantined 0",
    ]


def test_a_figure_with_one_value_on_every_day_is_said_once_not_as_each_days_own():
    p, out, _ = printer()
    p.handle(RunEvent("step_start", step="eval_suite"))
    p.handle(materialization("eval_suite", "2026-11-16", step="eval_suite", suite_now_size=52, promoted=13))
    p.handle(materialization("eval_suite", "2026-11-17", step="eval_suite", suite_now_size=52, promoted=4))
    p.handle(RunEvent("step_success", step="eval_suite", seconds=1.9))
    assert out.getvalue().splitlines()[1:] == [
        f"eval_suite         {DAYS}  done in 1.9s (2 days; every day: suite_now_size 52)",
        "    2026-11-16  promoted 13",
        "    2026-11-17  promoted 4",
    ]


def test_one_partition_folds_its_figures_into_the_step_line_and_leaves_out_zeros_after_the_first():
    p, out, _ = printer()
    p.handle(RunEvent("step_start", step="scored_traces"))
    figures = {"dagster/row_count": 40, "traces": 40, "failures": 2, "failure_rate": 0.05, "failures_latency": 0}
    p.handle(RunEvent("materialization", step="scored_traces", asset="scored_traces", partition="d", figures=figures))
    p.handle(RunEvent("step_success", step="scored_traces", seconds=0.2))
    assert out.getvalue().splitlines()[-1] == (
        f"scored_traces      {DAYS}  done in 0.2s: traces 40, failures 2, failure_rate 0.05"
    )


def test_a_failed_step_says_why_and_lists_failed_checks_and_warnings():
    p, out, _ = printer()
    p.handle(RunEvent("step_start", step="eval_suite", at=1000.0))
    p.handle(RunEvent("log", step="eval_suite", message="the judge timed out\ndetails", level=30))
    for name, passed in (("ok", True), ("x", False)):
        check = RunEvent("check", step="eval_suite", asset="eval_suite", partition="2026-11-17", message=name)
        p.handle(dataclasses.replace(check, passed=passed))
    p.handle(RunEvent("step_failure", step="eval_suite", message="ValueError: boom", at=1004.5))
    p.handle(RunEvent("run_failure", message="Execution of run failed."))
    lines = out.getvalue().splitlines()
    assert lines[1] == f"eval_suite         {DAYS}  warning: the judge timed out"
    assert lines[2] == f"eval_suite         {DAYS}  FAILED after 4.5s: ValueError: boom"
    assert lines[3:] == ["    check x on eval_suite for 2026-11-17 FAILED"]  # the run's own failure adds nothing
    assert p.failures


def test_without_a_terminal_a_long_silent_step_says_it_is_still_running():
    p, out, clock = printer()
    p.handle(RunEvent("step_start", step="failure_clusters"))
    clock.now += 29
    p.tick()
    assert len(out.getvalue().splitlines()) == 1
    clock.now += 2
    p.tick()
    p.tick()
    assert out.getvalue().splitlines()[1:] == [f"failure_clusters   {DAYS}  still running after 31s"]


def test_on_a_terminal_progress_is_one_line_redrawn_in_place():
    p, out, clock = printer(tty=True)
    p.handle(RunEvent("step_start", step="failure_clusters"))
    p.handle(RunEvent("log", step="failure_clusters", message="progress: embedding 2,000 of 31,534 texts"))
    clock.now += 5
    p.tick()
    p.handle(RunEvent("step_success", step="failure_clusters", seconds=5.0))
    p.close()
    text = out.getvalue()
    bar = "[#...................]   6%  embedding 2,000 of 31,534 texts"
    assert f"\r\x1b[2Kfailure_clusters   {DAYS}  {bar}" in text
    assert f"running 5s · {bar}" in text
    assert text.endswith(f"\r\x1b[2Kfailure_clusters   {DAYS}  done in 5.0s\n")
    assert text.count("\n") == 2  # progress never left a line behind


def test_on_a_terminal_the_progress_line_is_cut_to_its_width():
    out = io.StringIO()
    p = ProgressPrinter(out, DAYS, tty=True, width=40)
    p.handle(RunEvent("step_start", step="failure_clusters"))
    p.handle(RunEvent("log", step="failure_clusters", message="progress: embedding 2,000 of 31,534 texts"))
    drawn = out.getvalue().rsplit("\r\x1b[2K", 1)[1]
    assert drawn == f"failure_clusters   {DAYS}"[:39]


def test_numbers_read_like_figures():
    assert [format_number(v) for v in (3500, 0.10834, 2.0, 0.0, 1234567.5)] == [
        "3,500",
        "0.1083",
        "2",
        "0",
        "1,234,567.5",
    ]


def test_the_run_id_is_read_from_a_dagster_log_line():
    line = (
        "2026-12-05 21:10:48 +0000 - dagster - DEBUG - eval_loop - 1c80ad0e-bc82-43f2-a9d9-ba9f09ed5ca2 - 30272 - "
        'RUN_START - Started execution of run for "eval_loop".'
    )
    assert run_id_in_log_line(line) == "1c80ad0e-bc82-43f2-a9d9-ba9f09ed5ca2"
    assert run_id_in_log_line("  return callback(*args, **kwargs)") is None
