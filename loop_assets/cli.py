"""The `eval-loop` command: generate traffic, run the loop through Dagster, inspect and export the suite."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from loop_assets.run_progress import ProgressPrinter, day_span, run_id_in_log_line
from loop_assets.warehouse import warehouse_path


def _incoming() -> Path:
    return Path(os.environ.get("EVAL_LOOP_INCOMING", "data/incoming"))


def cmd_generate(args: argparse.Namespace) -> int:
    from loop_assets.devtools.sample_traffic import write_traffic

    paths = write_traffic(
        Path(args.out), days=args.days, per_day=args.per_day, seed=args.seed, start=date.fromisoformat(args.start)
    )
    print(f"wrote {len(paths)} trace files to {args.out}")
    return 0


def days_with_data(incoming: Path) -> list[date]:
    """The days of the incoming files' records, as the sensor finds them: exactly for files up to 16 MiB,
    by sampling a larger one (its first and last days bound the range materialised) — never a full parse
    of every file just to learn the range."""
    from loop_assets.capture.file_days import entries_days
    from loop_assets.capture.incoming import scan_incoming
    from loop_assets.config import load_config

    ingest = load_config().ingest
    days = entries_days(scan_incoming(incoming).entries, ingest)
    return sorted(set().union(*days.values()))


def cmd_materialize(args: argparse.Namespace) -> int:
    """Materialise every asset over the day range of the incoming files, as one Dagster run, printing each
    step as it starts and ends with its figures."""
    incoming = _incoming()
    if not incoming.is_dir():
        print(
            f"eval-loop materialize: the incoming folder {incoming} does not exist: create it and put trace files "
            "in it, or set EVAL_LOOP_INCOMING",
            file=sys.stderr,
        )
        return 2
    days = days_with_data(incoming)
    if not days:
        print(f"no trace records under {incoming}: nothing to materialise", file=sys.stderr)
        return 1
    first, last = (args.start or str(days[0])), (args.end or str(days[-1]))
    for name, value in (("--start", first), ("--end", last)):
        try:
            date.fromisoformat(value)
        except ValueError:
            print(f"eval-loop materialize: {name} must be a day YYYY-MM-DD, got {value!r}", file=sys.stderr)
            return 2
    if first > last:
        print(f"eval-loop materialize: --start {first} is after --end {last}", file=sys.stderr)
        return 2
    label = day_span(first, last)
    home = os.environ.get("DAGSTER_HOME")
    if home and not Path(home).is_dir():
        print(f"eval-loop materialize: DAGSTER_HOME={home} is not a folder: create it, or unset it", file=sys.stderr)
        return 2
    log = Path(args.log) if args.log else run_log_path(first, last)
    log.parent.mkdir(parents=True, exist_ok=True)
    print(f"materialising all assets for {label} through Dagster ({len(days)} days have data; run log: {log})")
    with contextlib.ExitStack() as stack:
        if not home:
            home = stack.enter_context(tempfile.TemporaryDirectory(prefix="eval-loop-dagster-home-"))
            Path(home, "dagster.yaml").write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
            print(
                "DAGSTER_HOME is not set: this run's history lives in a temporary Dagster instance, removed when "
                "it ends (make run keeps it in .dagster_home)",
                file=sys.stderr,
            )
        return _materialize(first, last, label, home, log, kept=bool(os.environ.get("DAGSTER_HOME")))


def run_log_path(first: str, last: str) -> Path:
    """Dagster's full output of a `materialize`: in `logs/` beside the warehouse, the data folder every
    command already writes (with `make run`, data/logs/), never in whatever folder the command runs from."""
    return Path(warehouse_path()).expanduser().absolute().parent / "logs" / f"materialize-{first}-{last}.log"


def _materialize(first: str, last: str, label: str, home: str, log: Path, kept: bool) -> int:
    from loop_assets.defs.jobs import loop_job
    from loop_assets.defs.sensors import DAYS_TAG, RANGE_END, RANGE_START

    dagster = str(Path(sys.executable).with_name("dagster"))
    # the tags the sensor gives its runs: the range the run covers, and its days as the Runs list shows them
    tags = {RANGE_START: first, RANGE_END: last, DAYS_TAG: label}
    runs = [
        # the loop for every day in the range, in order, as one run of the job the sensor launches
        (label, [dagster, "job", "execute", "-m", "loop_assets.definitions", "-j", loop_job.name,
                 "--tags", json.dumps(tags)]),
        # the coverage report over all days (not partitioned)
        ("all days", [dagster, "asset", "materialize", "-m", "loop_assets.definitions", "--select", "suite_coverage"]),
    ]  # fmt: skip
    env = {**os.environ, "DAGSTER_HOME": home}
    started = time.perf_counter()
    instance = _instance(home)
    if instance is not None:
        _release(instance, "before the run")
    with log.open("w", encoding="utf-8") as handle:
        for days, command in runs:
            printer = ProgressPrinter(sys.stdout, days)
            code = _run_watched(command, handle, log, instance, printer, env)
            if code != 0:
                break
    elapsed = time.perf_counter() - started
    if code != 0:
        if not printer.failures:  # it failed before or outside a step: Dagster's own output says why
            print("".join(log.read_text(encoding="utf-8").splitlines(keepends=True)[-40:]), file=sys.stderr)
        print(f"the Dagster run failed after {elapsed:.1f}s; full log: {log}", file=sys.stderr)
        return code
    history = f"; history in the Dagster UI of DAGSTER_HOME={home}" if kept else ""
    print(f"the Dagster runs succeeded in {elapsed:.1f}s (run log: {log}{history})")
    return 0


WATCH_SECONDS = 0.5
"""How often a running `materialize` looks at its run's events and log."""
STILL_WAITING_SECONDS = 30.0


def _instance(home: str):
    """The Dagster instance in `home`, to read the run's events and free dead runs' pool slots (None when it
    cannot be opened: the run itself reports a broken instance)."""
    import dagster as dg

    try:
        return dg.DagsterInstance.from_config(home)
    except Exception as exc:
        print(f"cannot open the Dagster instance in {home}: {exc}", file=sys.stderr)
        return None


def _release(instance, when: str) -> int:
    """Free the pool slots of runs whose process is gone (see `defs.stale_runs`), saying so."""
    from loop_assets.defs.stale_runs import release_dead_runs

    released = release_dead_runs(instance)
    for holder in released:
        print(f"{when}: freed the {holder.pool} pool slot held by {holder.describe()}", file=sys.stderr)
    return len(released)


def _run_watched(
    command: list[str],
    handle,
    log: Path,
    instance,
    printer: ProgressPrinter | None = None,
    env: dict[str, str] | None = None,
) -> int:
    """Run one `dagster` command with its output in `log`; print its run's steps, figures and progress as
    they happen (from the instance's event log), and say on stderr what it waits for: the pool slot
    another run holds (freeing it when that run's process is gone) or the warehouse's lock."""
    printer = printer or ProgressPrinter(sys.stdout, "")
    handle.flush()
    watcher = _Watcher(log, instance, offset=log.stat().st_size, before_saying=printer.close)
    proc = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=env)
    follower = None
    while True:
        try:
            code = proc.wait(timeout=WATCH_SECONDS)
        except subprocess.TimeoutExpired:
            code = None
        watcher.poll()
        follower = _follow(follower, watcher.run_id, instance, printer)
        if code is not None:
            printer.close()
            return code
        printer.tick()


def _follow(follower, run_id: str | None, instance, printer: ProgressPrinter):
    """Print the run's new events; the follower starts once the run's id has shown up in its log."""
    if follower is None:
        if run_id is None or instance is None:
            return None
        from loop_assets.defs.run_events import RunFollower

        follower = RunFollower(instance, run_id)
        printer.note(f"Dagster run {run_id} started")
    try:
        events = follower.poll()
    except Exception as exc:  # never let reporting stop the run; the next poll tries again
        if not getattr(follower, "told", False):  # once, not every half second
            printer.close()
            print(f"cannot read the run's events (the run goes on; its log is complete): {exc}", file=sys.stderr)
            follower.told = True
        return follower
    for event in events:
        printer.handle(event)
    return follower


class _Watcher:
    """Reads the run's log as it grows and reports waits (Dagster writes them to the log only)."""

    def __init__(self, log: Path, instance, offset: int = 0, before_saying=lambda: None) -> None:
        self.log, self.instance = log, instance
        self.offset = offset  # where this command's output starts in the log
        self.before_saying = before_saying
        self.run_id: str | None = None
        self.blocked: str | None = None  # the pool a step waits for
        self.since = 0.0
        self.last_said = 0.0

    def _say(self, text: str) -> None:
        self.before_saying()
        print(text, file=sys.stderr)

    def poll(self) -> None:
        try:
            with self.log.open("rb") as handle:
                handle.seek(self.offset)
                data = handle.read()
        except OSError:
            return
        end = data.rfind(b"\n") + 1  # whole lines only
        self.offset += end
        for line in data[:end].decode("utf-8", "replace").splitlines():
            self._line(line)
        if self.blocked is not None:
            self._still_blocked()

    def _line(self, line: str) -> None:
        if self.run_id is None:
            self.run_id = run_id_in_log_line(line)
        if "blocked by limit for pool" in line and self.blocked is None:
            self.blocked = line.rsplit("pool", 1)[1].strip()
            self.since = self.last_said = time.monotonic()
            self._say(f"waiting for a slot of the Dagster pool {self.blocked}: {self._holders()}")
            self._free()
        elif "Started execution of step" in line and self.blocked is not None:
            self._say(f"got the {self.blocked} pool slot after {time.monotonic() - self.since:.0f}s")
            self.blocked = None
        elif "is locked by" in line and "waiting up to" in line and self.instance is None:  # else in the events
            self._say("waiting: " + line.split(" - ")[-1].strip())

    def _still_blocked(self) -> None:
        self._free()
        now = time.monotonic()
        if now - self.last_said >= STILL_WAITING_SECONDS:
            self.last_said = now
            self._say(
                f"still waiting ({now - self.since:.0f}s) for the {self.blocked} pool: {self._holders()}; a run in the "
                "Dagster UI can be terminated to free it"
            )

    def _holders(self) -> str:
        if self.instance is None:
            return "another run holds it"
        from loop_assets.defs.stale_runs import holders

        try:
            found = holders(self.instance, [self.blocked] if self.blocked else None)
        except Exception as exc:  # never let reporting stop the run
            return f"(cannot read the pool: {exc})"
        return "held by " + "; ".join(h.describe() for h in found) if found else "no run holds it now"

    def _free(self) -> None:
        if self.instance is None:
            return
        try:
            _release(self.instance, "while waiting")
        except Exception as exc:  # never let the check stop the run
            self._say(f"cannot check the pool's holders: {exc}")


def _connect():
    from loop_assets.warehouse import connect

    return connect(read_only=True)


def cmd_summary(_: argparse.Namespace) -> int:
    import polars as pl

    from loop_assets.config import load_config
    from loop_assets.report.stats import apps_report, loop_summary, render

    config = load_config()
    with _connect() as con:
        tables = loop_summary(con)
        tables["apps and their settings"], warnings = apps_report(con, config)
        example = con.execute("SELECT case_id FROM eval_suite ORDER BY weight DESC LIMIT 1").fetchone()
    print(render(tables))
    print(
        "\n(settings: configured = named under apps:, defaults = seen in traffic but not configured, never seen = "
        "configured but not in traffic; caught = cases an eval run fails without a judge when the known bad answer "
        "comes back, judge_only = cases only a judge can grade)"
    )
    by_app = next(frame for title, frame in tables.items() if title.startswith("suite quality by app "))
    uncovered = by_app.filter(pl.col("uncovered") > 0)
    if uncovered.height:
        print("\nWARNING, failures no case covers (the every_failure_covered check fails; re-run graded_candidates):")
        for app, n in uncovered.select("app", "uncovered").iter_rows():
            print(f"  - {app}: {n} failing inputs")
    if warnings:
        print("\nWARNING, configuration against traffic:")
        for line in warnings:
            print(f"  - {line}")
    print(f"\nwarehouse: {Path(warehouse_path()).resolve()}")
    if example:
        print(f"trace a case to its log line:  .venv/bin/eval-loop lineage {example[0]}")
    print("open the Dagster UI:           make dev   (then http://127.0.0.1:3000)")
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    """The suite per app, failure signal and family; every case with --cases."""
    from loop_assets.report.stats import render, suite_cases, suite_stats

    with _connect() as con:
        if args.cases:
            print(render({"active cases": suite_cases(con)}, rows=-1))
            return 0
        print(render(suite_stats(con, families=args.families)))
    print("\n(every case, one line each: eval-loop stats --cases; one case's chain: eval-loop lineage CASE_ID)")
    return 0


def cmd_lineage(args: argparse.Namespace) -> int:
    from loop_assets.report.lineage import CaseNotFound, case_lineage, format_lineage, lineage_json

    with _connect() as con:
        try:
            chain = case_lineage(con, args.case_id, _incoming())
        except CaseNotFound as exc:
            print(exc, file=sys.stderr)
            return 2
    print(lineage_json(chain) if args.json else format_lineage(chain))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Write the suite as of a day in one format: to the user's --out path, else into the output folder."""
    from loop_assets.exports import DEFAULT_EXPORT_DIR, UnsafeExportPath, suite_as_of, write_export

    try:
        as_of = date.fromisoformat(args.as_of) if args.as_of else None
    except ValueError:
        print(f"--as-of must be a day YYYY-MM-DD, got {args.as_of!r}", file=sys.stderr)
        return 2
    with _connect() as con:
        suite = suite_as_of(con, as_of)
    options = {"as_of": as_of, "dataset_name": args.dataset_name}
    try:
        if args.out:
            # the user's own path: relative to --out-dir when one is given, else to the working directory
            target = Path(args.out_dir or ".").expanduser() / Path(args.out).expanduser()
            is_folder = args.out.endswith(("/", os.sep)) or target.is_dir()
            result = write_export(suite, args.format, target, folder=is_folder, **options)
        else:
            result = write_export(suite, args.format, args.out_dir or DEFAULT_EXPORT_DIR, folder=True, **options)
    except UnsafeExportPath as exc:
        print(exc, file=sys.stderr)
        return 2
    except (NotADirectoryError, FileExistsError, PermissionError, IsADirectoryError) as exc:
        print(f"cannot write the export to {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 2
    version = result.version.as_of or "no day (the suite is empty)"
    print(f"wrote {result.cases} cases as {args.format} (suite as of {version}) to {result.path}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """Grade a model on the suite as of a day (recorded outputs or the model endpoint); store and print the run."""
    import uuid
    from datetime import UTC, datetime

    import duckdb

    from loop_assets.config import ConfigError, load_config
    from loop_assets.evaluate.eval_run import (
        EmptySuite,
        NoModelToGrade,
        evaluate_suite,
        render_summary,
        store_eval_run,
    )
    from loop_assets.warehouse import connect

    try:
        as_of = date.fromisoformat(args.as_of) if args.as_of else None
    except ValueError:
        print(f"--as-of must be a day YYYY-MM-DD, got {args.as_of!r}", file=sys.stderr)
        return 2
    run_id = args.run_id or f"cli-{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
    try:
        config = load_config()
        # the suite is read on a read-only connection: a long run against an endpoint never holds the writer's lock
        result = evaluate_suite(
            lambda: connect(read_only=True), config, args.model, run_id, as_of, args.outputs, not args.no_judge
        )
        with connect() as con:
            store_eval_run(con, result)
    except EmptySuite as exc:
        print(exc, file=sys.stderr)
        return 1
    except (ConfigError, FileNotFoundError, NoModelToGrade) as exc:
        print(exc, file=sys.stderr)
        return 2
    except duckdb.IOException as exc:
        print(f"cannot open the warehouse ({exc}); is a Dagster run writing it?", file=sys.stderr)
        return 2
    except duckdb.Error as exc:
        print(f"cannot use the warehouse ({exc}); if it is older, materialise the loop once", file=sys.stderr)
        return 2
    print(render_summary(result))
    print(f"\nstored as run {run_id} in eval_runs and eval_run_results ({Path(warehouse_path()).resolve()})")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from loop_assets.devtools.bench import cmd_bench as run

    return run(args)


def build_parser() -> argparse.ArgumentParser:
    from loop_assets.report.stats import FAMILIES_SHOWN

    parser = argparse.ArgumentParser(prog="eval-loop", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="write deterministic sample traffic (OpenAI chat JSONL)")
    gen.add_argument("--days", type=int, default=7)
    gen.add_argument("--per-day", type=int, default=500)
    gen.add_argument("--seed", type=int, default=7)
    gen.add_argument("--start", default="2026-11-16", help="first day, YYYY-MM-DD")
    gen.add_argument("--out", default="data/incoming")
    gen.set_defaults(func=cmd_generate)

    mat = sub.add_parser("materialize", help="run every asset over the days of the incoming files")
    mat.add_argument("--start", help="first day (default: earliest day with data)")
    mat.add_argument("--end", help="last day (default: latest day with data)")
    mat.add_argument("--log", help="file for Dagster's full output (default logs/ beside the warehouse)")
    mat.set_defaults(func=cmd_materialize)

    sub.add_parser("summary", help="traffic, failures, quarantine and suite at a glance").set_defaults(func=cmd_summary)
    stats = sub.add_parser("stats", help="the suite summarised by app, failure signal and family (cases, weights)")
    stats.add_argument("--families", type=int, default=FAMILIES_SHOWN, help="families shown (default %(default)s)")
    stats.add_argument("--cases", action="store_true", help="list every active case instead")
    stats.set_defaults(func=cmd_stats)

    lin = sub.add_parser("lineage", help="trace a case back to its source line")
    lin.add_argument("case_id")
    lin.add_argument("--json", action="store_true", help="machine-readable output")
    lin.set_defaults(func=cmd_lineage)

    from loop_assets.exports import DEFAULT_EXPORT_DIR, EXPORTERS

    exp = sub.add_parser(
        "export",
        help="write the suite with provenance in a format other eval tools read",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Write the suite as of a day (active cases, with provenance and the suite version in each\n"
        "item's metadata) in one of these formats:\n\n"
        + "\n".join(f"  {name:<13} {e.summary} -> *{e.suffix}" for name, e in EXPORTERS.items())
        + "\n\n--out FILE writes where it says (relative to the working directory, or to --out-dir when given);\n"
        f"without it the file gets its default name in --out-dir (default {DEFAULT_EXPORT_DIR}).",
    )
    exp.add_argument("--format", choices=list(EXPORTERS), default="jsonl", help="export format (default jsonl)")
    exp.add_argument("--as-of", help="suite as of this day (YYYY-MM-DD); default all days")
    exp.add_argument("--out-dir", help=f"folder of the default file name (default {DEFAULT_EXPORT_DIR})")
    exp.add_argument(
        "--out",
        help="file to write (a folder, or a path ending in /, gets the default name "
        "eval_suite-<as-of or latest><format suffix>)",
    )
    exp.add_argument("--dataset-name", help="langfuse: the datasetName of every item (default eval-loop)")
    exp.set_defaults(func=cmd_export)

    run = sub.add_parser("run", help="grade a model on the suite as of a day and store the pass rates")
    run.add_argument("--model", required=True, help="model to ask (endpoint) or name of the recorded answers")
    run.add_argument("--as-of", help="suite as of this day (YYYY-MM-DD); default all days")
    run.add_argument("--outputs", help="JSONL of recorded answers (case_id, output, ...) instead of the endpoint")
    run.add_argument("--run-id", help="id of the run (default cli-<timestamp>-<random>); a re-used id is replaced")
    run.add_argument("--no-judge", action="store_true", help="leave rubric checks unknown even if a judge is set")
    run.set_defaults(func=cmd_run)

    from loop_assets.devtools.bench import build_parser as bench_arguments

    bench = sub.add_parser(
        "bench",
        help="measure the loop on a generated day (default 100,000 traces) against naive and library baselines",
        description="Generate one day of traffic, run the loop stage by stage on a fresh warehouse, re-run it, "
        "run the baselines and embedding backends on the same data; print the tables and write "
        "data/bench/bench-<traces>.json and .md.",
    )
    bench_arguments(bench).set_defaults(func=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; a problem the user can fix (a missing warehouse or configuration file, a bad
    configuration, a locked warehouse, a name too long for the file system) is one clear message on
    stderr and exit code 2, not a traceback."""
    import errno

    import duckdb

    from loop_assets.config import ConfigError
    from loop_assets.warehouse import WarehouseLocked

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, WarehouseLocked, FileNotFoundError) as exc:
        print(f"eval-loop {args.command}: {exc}", file=sys.stderr)
        return 2
    except duckdb.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(
            f"eval-loop {args.command}: cannot use the warehouse {warehouse_path()} ({first}); "
            "if it is from an older version or not a warehouse, materialise the loop into a new one",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:  # Ctrl-C reached a Dagster run too: it stops and records itself as failed
        print(f"\neval-loop {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `eval-loop stats | head`: the reader has gone, nothing left to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:
        if exc.errno != errno.ENAMETOOLONG:
            raise
        print(
            f"eval-loop {args.command}: a file name is too long for the file system ({exc.strerror}): "
            f"{str(exc.filename)[:80]}…; choose a shorter name",
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
