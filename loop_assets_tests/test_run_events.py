"""A real Dagster run's events, read back from its instance as `eval-loop materialize` reads them."""

import io

import dagster as dg

from loop_assets.defs.run_events import RunFollower
from loop_assets.run_progress import ProgressPrinter


@dg.asset(check_specs=[dg.AssetCheckSpec("has_rows", asset="counted")])
def counted(context: dg.AssetExecutionContext):
    context.log.info("progress: counting 1 of 2 files")
    context.log.warning("file b.jsonl is empty")
    return dg.MaterializeResult(
        metadata={"rows": 3, "rate": 0.25, "count_seconds": 0.5, "complete": True, "note": "text"},
        check_results=[dg.AssetCheckResult(check_name="has_rows", passed=False)],
    )


@dg.asset(deps=[counted])
def broken() -> None:
    raise ValueError("no rows for 2026-11-16\nsecond line")


def test_a_runs_events_read_back_become_the_lines_a_person_reads():
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([counted, broken], instance=instance, raise_on_error=False)
    assert not result.success
    follower = RunFollower(instance, result.run_id)
    events = follower.poll()
    assert follower.poll() == []  # the cursor: each event is read once

    kinds = [(e.kind, e.step) for e in events if e.kind != "log" or e.message.startswith("progress: ")]
    assert kinds[0] == ("run_start", None) and kinds[-1] == ("run_failure", None)
    assert ("step_success", "counted") in kinds and ("step_failure", "broken") in kinds
    [materialization] = [e for e in events if e.kind == "materialization"]
    assert (materialization.asset, materialization.figures) == (
        "counted",
        {"rows": 3, "rate": 0.25, "count_seconds": 0.5},
    )
    [check] = [e for e in events if e.kind == "check"]
    assert (check.message, check.asset, check.passed) == ("has_rows", "counted", False)
    [failure] = [e for e in events if e.kind == "step_failure"]
    assert failure.message == "ValueError: no rows for 2026-11-16"  # the asset's error, not Dagster's wrapper

    out = io.StringIO()
    printer = ProgressPrinter(out, "", tty=False)
    for event in events:
        printer.handle(event)
    lines = out.getvalue().splitlines()
    assert lines[:3] == ["counted             started", "counted             counting 1 of 2 files",
                         "counted             warning: file b.jsonl is empty"]  # fmt: skip
    assert lines[3].startswith("counted             done in ") and lines[3].endswith("s: rows 3, rate 0.25")
    assert lines[4:6] == ["    check has_rows on counted FAILED", "broken              started"]
    assert lines[6].startswith("broken              FAILED after ")
    assert lines[6].endswith(": ValueError: no rows for 2026-11-16") and len(lines) == 7
