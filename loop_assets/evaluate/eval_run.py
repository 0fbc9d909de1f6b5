"""EVAL RUN: grade a model against the suite as of a day, from recorded outputs or a live endpoint.

Pure core, no Dagster. `run_suite` grades every case of a suite version by its own grading rule
(`case_grading.grade_output`) and summarises the run overall, per app and per cluster.

Where the answers come from (exactly one):

- a recorded-outputs file (`load_recorded_outputs`): JSON Lines, one object per case,
  `{"case_id": ..., "output": "...", "finish_reason": "stop", "latency_ms": 812.5, "error": null}`
  (`case_id` and `output` required, `output` may be null; other keys are ignored). A line that is
  not valid is reported with its number and reason, never fatal; a case whose only line is invalid
  is `missing`, with that reason.
- a model endpoint client (`llm_client.ChatClient`, or anything with its `complete_many`): each
  case's `input_messages` is sent once.

Each case ends in exactly one status:

- `passed`: the grading rule passed.
- `failed`: a check failed (the combined rule failed).
- `unknown`: no check failed, but one could not be decided (a rubric without a judge, a latency
  budget without a recorded latency, an unreadable rule).
- `missing`: no (valid) recorded output for the case.
- `error`: the endpoint call failed after its retries, or the case input cannot be sent.

    pass_rate          = passed / (passed + failed)                     (null when nothing was graded)
    weighted_pass_rate = sum(weight, passed) / sum(weight, passed + failed)   (a null weight counts 0)

Unknown, missing and errored cases are not failures of the model, and not passes either: they are
excluded from both rates and reported beside them (`cases` = passed + failed + unknown + missing +
errored, `graded` = passed + failed), so a run whose rates rest on few graded cases says so. A
recorded `error` is the model's answer and fails `no_error`; an endpoint call that fails (network,
5xx after retries, rate limit) says nothing about the model and is `error`.

Scopes: `overall` (scope_key `all`), `app`, and `cluster` = (day, cluster_id) of the case, scope_key
`<day>/<cluster_id>` (-1 gathers the day's unclustered one-offs; clusters never span apps, so `app`
is set except for such a group with several apps).

Storage: `eval_run_results` (one row per case) and `eval_runs` (one row per scope), keyed by
(suite_version, model, run_id); `store_eval_run` replaces the rows of a run_id in one transaction.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Protocol

import duckdb
import polars as pl

from loop_assets.evaluate.answer_checks import CaseVerdict, Judge, JudgeScore, Output, grade_output
from loop_assets.tables import conform, empty
from loop_assets.warehouse import ensure_tables

STATUSES = ("passed", "failed", "unknown", "missing", "error")
SUITE_COLUMNS = ("case_id", "app", "day", "cluster_id", "weight", "grading", "input_messages")

OUTPUTS_SCHEMA = pl.Schema(
    {
        "line": pl.Int64,
        "case_id": pl.String,
        "output": pl.String,
        "finish_reason": pl.String,
        "latency_ms": pl.Float64,
        "error": pl.String,
        "problem": pl.String,
    }
)
MAX_SHOWN_CHARS = 120


class ChatCompleter(Protocol):
    """What run_suite and measure_difficulty need of a chat client (llm_client.ChatClient has it)."""

    def complete_many(self, conversations: list[list[dict]], **params: Any) -> list[Any]: ...


@dataclass(frozen=True)
class EvalRunResult:
    results: pl.DataFrame  # eval_run_results rows, one per case
    summary: pl.DataFrame  # eval_runs rows: overall, then per app, then per cluster
    bad_output_lines: pl.DataFrame  # line, case_id, problem of the recorded-outputs lines not used
    unmatched_outputs: list[str]  # case ids with a recorded output but not in the suite

    @property
    def run_id(self) -> str:
        return self.summary["run_id"][0]

    def overall(self) -> dict[str, Any]:
        return self.summary.filter(pl.col("scope") == "overall").row(0, named=True)


# --------------------------------------------------------------------------- recorded outputs


def _cut(text: str, n: int = MAX_SHOWN_CHARS) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _optional_string(record: dict, key: str) -> tuple[str | None, str | None]:
    value = record.get(key)
    if value is None or isinstance(value, str):
        return value, None
    return None, f"'{key}' must be a string or null, got {type(value).__name__} {_cut(json.dumps(value), 40)}"


def _parse_output_line(number: int, raw: bytes) -> dict[str, Any]:
    """One row of the outputs frame; `problem` says why the line cannot be used (None when it can)."""
    row: dict[str, Any] = dict.fromkeys(OUTPUTS_SCHEMA)
    row["line"] = number
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        row["problem"] = f"line is not UTF-8 (byte {exc.start})"
        return row
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        row["problem"] = f"not valid JSON: {exc.msg} at char {exc.pos}"
        return row
    except RecursionError:
        row["problem"] = "not valid JSON: nested too deeply"
        return row
    if not isinstance(record, dict):
        row["problem"] = f"must be a JSON object, got {type(record).__name__}"
        return row
    case_id = record.get("case_id")
    if not isinstance(case_id, str) or not case_id.strip():
        row["problem"] = "'case_id' must be a non-empty string"
        return row
    row["case_id"] = case_id.strip()
    problems = []
    if "output" not in record:
        problems.append("no 'output' key (use null for no answer)")
    for key in ("output", "finish_reason", "error"):
        row[key], problem = _optional_string(record, key)
        if problem:
            problems.append(problem)
    latency = record.get("latency_ms")
    if latency is not None:
        if (
            isinstance(latency, bool)
            or not isinstance(latency, int | float)
            or not math.isfinite(latency)
            or latency < 0
        ):
            problems.append(f"'latency_ms' must be a non-negative number or null, got {_cut(json.dumps(latency), 40)}")
        else:
            row["latency_ms"] = float(latency)
    if problems:
        row["problem"] = "; ".join(problems)
    return row


def load_recorded_outputs(path: str | os.PathLike[str]) -> pl.DataFrame:
    """Every non-blank line of a recorded-outputs JSONL file, validated.

    Columns: line (1-based), case_id, output, finish_reason, latency_ms, error, problem. A row with a
    `problem` is not used (its case_id is kept when it could be read, so the case's reason can name
    the line). A second line for a case is a problem too: the first one counts. A missing file
    raises FileNotFoundError.
    """
    target = Path(path)
    if not target.is_file():
        raise FileNotFoundError(f"recorded outputs file {target} does not exist")
    rows: list[dict[str, Any]] = []
    first_line: dict[str, int] = {}
    with target.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            row = _parse_output_line(number, raw.rstrip(b"\r\n"))
            case_id = row["case_id"]
            if row["problem"] is None and case_id is not None:
                if case_id in first_line:
                    row["problem"] = f"duplicate case_id {case_id} (first on line {first_line[case_id]}, which counts)"
                else:
                    first_line[case_id] = number
            rows.append(row)
    return pl.DataFrame(rows, schema=OUTPUTS_SCHEMA) if rows else pl.DataFrame(schema=OUTPUTS_SCHEMA)


def _conform_outputs(outputs: pl.DataFrame) -> pl.DataFrame:
    """A frame of outputs built in code or read from a file, with every column of OUTPUTS_SCHEMA."""
    if "case_id" not in outputs.columns or "output" not in outputs.columns:
        raise ValueError("recorded outputs need at least the columns case_id and output")
    missing = [pl.lit(None, dtype=t).alias(c) for c, t in OUTPUTS_SCHEMA.items() if c not in outputs.columns]
    frame = outputs.with_columns(missing).select([pl.col(c).cast(t) for c, t in OUTPUTS_SCHEMA.items()])
    if frame["line"].null_count() == frame.height and frame.height:
        frame = frame.with_columns(pl.int_range(1, frame.height + 1, dtype=pl.Int64).alias("line"))
    first_line: dict[str, int] = {}
    problems = []
    for line, case_id, problem in frame.select("line", "case_id", "problem").iter_rows():
        if problem is None and case_id is not None:
            if case_id in first_line:
                problem = f"duplicate case_id {case_id} (first on line {first_line[case_id]}, which counts)"
            else:
                first_line[case_id] = line
        problems.append(problem)
    return frame.with_columns(pl.Series("problem", problems, dtype=pl.String))


# --------------------------------------------------------------------------- running


def request_params(endpoint: Any) -> dict[str, Any]:
    """Request parameters of a configured endpoint (temperature, max_tokens) that are set."""
    params = {}
    for key in ("temperature", "max_tokens"):
        value = getattr(endpoint, key, None)
        if value is not None:
            params[key] = value
    return params


def parse_messages(input_messages: str | None) -> list[dict] | None:
    """A case's input as chat messages, or None when it is not a JSON list of message objects."""
    if not input_messages:
        return None
    try:
        messages = json.loads(input_messages)
    except (json.JSONDecodeError, RecursionError):
        return None
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        return None
    return messages


def _verdict_row(verdict: CaseVerdict) -> dict[str, Any]:
    status = {True: "passed", False: "failed", None: "unknown"}[verdict.passed]
    return {
        "status": status,
        "passed": verdict.passed,
        "failed_checks": verdict.failed_checks,
        "unknown_checks": verdict.unknown_checks,
        "reason": verdict.reason_text(),
        "judge_score": verdict.judge_score,
    }


def _no_verdict(status: str, reason: str) -> dict[str, Any]:
    return {
        "status": status,
        "passed": None,
        "failed_checks": [],
        "unknown_checks": [],
        "reason": reason,
        "judge_score": None,
    }


def _case_row(
    case: dict[str, Any], verdict: dict[str, Any], output: Output | None, attempts: int | None, source: str | None
) -> dict[str, Any]:
    """One eval_run_results row (before the run's own columns): the case, its verdict and its output."""
    output = output or Output(None)
    return {
        **case,
        **verdict,
        "output_text": output.text,
        "finish_reason": output.finish_reason,
        "latency_ms": output.latency_ms,
        "error": output.error,
        "attempts": attempts,
        "output_source": source,
    }


def run_suite(
    suite: pl.DataFrame,
    outputs: pl.DataFrame | None = None,
    client: ChatCompleter | None = None,
    judge: Judge | Callable[..., JudgeScore] | None = None,
    suite_version: str = "",
    model: str = "",
    run_id: str = "",
    *,
    params: dict[str, Any] | None = None,
    source: str | None = None,
    now: datetime | None = None,
) -> EvalRunResult:
    """Grade every case of `suite` (eval_suite rows: SUITE_COLUMNS) and summarise the run.

    Give either `outputs` (recorded answers, `load_recorded_outputs` or a frame with at least
    case_id and output) or `client` (a model endpoint; `params` go into every request). `judge`
    scores rubric checks (without one they are unknown). `source` names where the answers came
    from (the file, or the endpoint URL by default).
    """
    if (outputs is None) == (client is None):
        raise ValueError("run_suite needs exactly one of recorded outputs or a model endpoint client")
    if not (suite_version and model and run_id):
        raise ValueError("run_suite needs suite_version, model and run_id")
    lacking = [c for c in SUITE_COLUMNS if c not in suite.columns]
    if lacking:
        raise ValueError(f"run_suite: suite frame lacks columns {lacking}")
    if suite["case_id"].is_duplicated().any():
        raise ValueError("run_suite: suite has duplicate case_ids")
    now = now or datetime.now(UTC)
    cases = suite.select(SUITE_COLUMNS).to_dicts()
    bad_lines = pl.DataFrame(schema={"line": pl.Int64, "case_id": pl.String, "problem": pl.String})
    unmatched: list[str] = []

    graded: list[dict[str, Any]] = []
    if outputs is not None:
        frame = _conform_outputs(outputs)
        name = source or "recorded"
        usable = pl.col("problem").is_null() & pl.col("case_id").is_not_null()
        valid = frame.filter(usable)
        bad_lines = frame.filter(~usable).select("line", "case_id", pl.col("problem").fill_null("no case_id"))
        by_case = {r["case_id"]: r for r in valid.iter_rows(named=True)}
        bad_by_case: dict[str, dict] = {}
        for r in bad_lines.iter_rows(named=True):
            if r["case_id"] is not None:
                bad_by_case.setdefault(r["case_id"], r)
        suite_ids = {c["case_id"] for c in cases}
        unmatched = sorted(set(by_case) - suite_ids)
        for case in cases:
            row = by_case.get(case["case_id"])
            if row is None:
                bad = bad_by_case.get(case["case_id"])
                reason = (
                    f"recorded output on line {bad['line']} is invalid: {bad['problem']}"
                    if bad
                    else "no recorded output for this case"
                )
                graded.append(_case_row(case, _no_verdict("missing", reason), None, None, None))
                continue
            output = Output(row["output"], row["finish_reason"], row["latency_ms"], row["error"])
            verdict = grade_output(case["grading"], output, judge, parse_messages(case["input_messages"]))
            graded.append(_case_row(case, _verdict_row(verdict), output, None, f"recorded:{name}:{row['line']}"))
        run_source = f"recorded:{name}"
    else:
        endpoint = source or getattr(client, "base_url", None) or "endpoint"
        run_source = f"endpoint:{endpoint}"
        conversations = [parse_messages(c["input_messages"]) for c in cases]
        asked = [i for i, m in enumerate(conversations) if m is not None]
        answers = client.complete_many([conversations[i] for i in asked], **(params or {}))
        if len(answers) != len(asked):
            raise RuntimeError(f"client returned {len(answers)} results for {len(asked)} conversations")
        answer_of = dict(zip(asked, answers, strict=True))
        for i, case in enumerate(cases):
            answer = answer_of.get(i)
            if answer is None:
                reason = "input_messages is not a JSON list of chat messages: the case cannot be sent"
                graded.append(_case_row(case, _no_verdict("error", reason), None, 0, None))
                continue
            output = Output(answer.text, answer.finish_reason, answer.latency_ms, answer.error)
            if answer.error:
                row = _no_verdict("error", f"endpoint call failed: {answer.error}")
            else:
                row = _verdict_row(grade_output(case["grading"], output, judge, conversations[i]))
            graded.append(_case_row(case, row, output, answer.attempts, run_source))

    results = _results_frame(graded, run_id, suite_version, model, now)
    summary = summarise(results, run_id, suite_version, model, run_source, now)
    return EvalRunResult(results, summary, bad_lines, unmatched)


def _results_frame(rows: list[dict], run_id: str, suite_version: str, model: str, now: datetime) -> pl.DataFrame:
    if not rows:
        return empty("eval_run_results")
    frame = pl.DataFrame(
        rows,
        schema_overrides={
            "failed_checks": pl.List(pl.String),
            "unknown_checks": pl.List(pl.String),
            "passed": pl.Boolean,
            "judge_score": pl.Float64,
            "latency_ms": pl.Float64,
            "attempts": pl.Int64,
            "weight": pl.Float64,
            "cluster_id": pl.Int64,
        },
        infer_schema_length=None,
    )
    frame = frame.with_columns(
        run_id=pl.lit(run_id),
        suite_version=pl.lit(suite_version),
        model=pl.lit(model),
        cluster_key=pl.format("{}/{}", pl.col("day").cast(pl.String), pl.col("cluster_id")),
        graded_at=pl.lit(now).cast(pl.Datetime("us", "UTC")),
    )
    return conform("eval_run_results", frame)


# --------------------------------------------------------------------------- summary


def _aggregations(grouped: bool = True) -> list[pl.Expr]:
    status = pl.col("status")
    weight = pl.col("weight").fill_null(0.0)
    is_graded = status.is_in(["passed", "failed"])
    passed = (status == "passed").sum()
    graded = is_graded.sum()
    graded_weight = weight.filter(is_graded).sum()
    return [
        pl.len().cast(pl.Int64).alias("cases"),
        graded.cast(pl.Int64).alias("graded"),
        passed.cast(pl.Int64).alias("passed"),
        (status == "failed").sum().cast(pl.Int64).alias("failed"),
        (status == "unknown").sum().cast(pl.Int64).alias("unknown"),
        (status == "missing").sum().cast(pl.Int64).alias("missing"),
        (status == "error").sum().cast(pl.Int64).alias("errored"),
        pl.when(graded > 0).then((passed / graded).round(6)).alias("pass_rate"),
        pl.when(graded_weight > 0)
        .then((weight.filter(status == "passed").sum() / graded_weight).round(6))
        .alias("weighted_pass_rate"),
        graded_weight.round(6).alias("graded_weight"),
        (pl.col("app").unique() if grouped else pl.col("app").unique().implode()).alias("_apps"),
    ]


def summarise(
    results: pl.DataFrame, run_id: str, suite_version: str, model: str, source: str, now: datetime | None = None
) -> pl.DataFrame:
    """eval_runs rows of one run: overall, per app (by name), per cluster (by day, cluster_id).

    An empty suite still gets its overall row (0 cases, null rates), so the run is on record.
    """
    now = now or datetime.now(UTC)
    overall = results.select(_aggregations(grouped=False)).with_columns(
        scope=pl.lit("overall"), scope_key=pl.lit("all")
    )
    per_app = results.group_by("app").agg(_aggregations()).sort("app", nulls_last=True)
    per_app = per_app.with_columns(scope=pl.lit("app"), scope_key=pl.col("app").fill_null("(no app)")).drop("app")
    cluster_key = pl.format("{}/{}", pl.col("cluster_day").cast(pl.String), pl.col("cluster_id"))
    per_cluster = results.group_by("day", "cluster_id").agg(_aggregations()).rename({"day": "cluster_day"})
    per_cluster = per_cluster.sort("cluster_day", "cluster_id", nulls_last=True).with_columns(
        scope=pl.lit("cluster"), scope_key=cluster_key
    )
    frame = pl.concat([overall, per_app, per_cluster], how="diagonal_relaxed")
    frame = frame.with_columns(
        app=pl.when(pl.col("scope") != "overall")
        .then(pl.when(pl.col("_apps").list.len() == 1).then(pl.col("_apps").list.first()))
        .cast(pl.String),
        run_id=pl.lit(run_id),
        suite_version=pl.lit(suite_version),
        model=pl.lit(model),
        source=pl.lit(source),
        run_at=pl.lit(now).cast(pl.Datetime("us", "UTC")),
    )
    if "cluster_day" not in frame.columns:
        frame = frame.with_columns(cluster_day=pl.lit(None, dtype=pl.Date), cluster_id=pl.lit(None, dtype=pl.Int64))
    return conform("eval_runs", frame)


# --------------------------------------------------------------------------- storage and display


def read_suite(con: duckdb.DuckDBPyConnection, as_of: date | None = None) -> pl.DataFrame:
    """The suite as of a day (active cases promoted from days up to it), as exports read it."""
    from loop_assets.exports.suite import suite_as_of

    return suite_as_of(con, as_of)


def suite_version_of(suite: pl.DataFrame, as_of: date | None) -> str:
    """The version a run pins: the as-of day, else the latest day the suite holds ('empty' for none)."""
    from loop_assets.exports.suite import suite_version

    effective = suite_version(suite, as_of).as_of
    return effective.isoformat() if effective is not None else "empty"


def store_eval_run(con: duckdb.DuckDBPyConnection, result: EvalRunResult) -> dict[str, int]:
    """Replace the rows of the run's run_id in eval_run_results and eval_runs, in one transaction."""
    ids = set(result.results["run_id"].unique().to_list()) | set(result.summary["run_id"].unique().to_list())
    if len(ids) != 1:
        raise ValueError(f"an eval run result must hold exactly one run_id, got {sorted(map(str, ids))}")
    (run_id,) = ids
    ensure_tables(con)
    frames = {"eval_run_results": result.results, "eval_runs": result.summary}
    con.execute("BEGIN TRANSACTION")
    try:
        for table, frame in frames.items():
            rows = conform(table, frame)
            con.execute(f"DELETE FROM {table} WHERE run_id = ?", [run_id])
            if rows.height:
                con.register("_rows", rows.to_arrow())
                con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _rows")
                con.unregister("_rows")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return {table: frame.height for table, frame in frames.items()}


SUMMARY_COLUMNS = (
    "scope",
    "scope_key",
    "cases",
    "graded",
    "passed",
    "failed",
    "unknown",
    "missing",
    "errored",
    "pass_rate",
    "weighted_pass_rate",
)


def render_summary(result: EvalRunResult, scopes: Sequence[str] = ("overall", "app", "cluster")) -> str:
    """The summary as text tables, one per scope, with notes on what the rates leave out."""
    first = result.summary.row(0, named=True) if result.summary.height else None
    lines = []
    if first:
        lines.append(
            f"eval run {first['run_id']}: model {first['model']}, suite as of {first['suite_version']}, "
            f"outputs from {first['source']}"
        )
    with pl.Config(tbl_rows=500, tbl_cols=20, fmt_str_lengths=60, tbl_width_chars=200, tbl_hide_dataframe_shape=True):
        for scope in scopes:
            part = result.summary.filter(pl.col("scope") == scope).select(SUMMARY_COLUMNS[1:])
            if part.height:
                lines.append(f"\n{scope}\n{part}")
    if first:
        overall = result.overall()
        if overall["unknown"]:
            lines.append(
                f"\n{overall['unknown']} case(s) unknown (a check could not be decided, e.g. a rubric without a "
                "judge): left out of the pass rates."
            )
        if overall["missing"]:
            lines.append(f"{overall['missing']} case(s) have no valid recorded output: left out of the pass rates.")
        if overall["errored"]:
            lines.append(f"{overall['errored']} case(s) errored at the endpoint: left out of the pass rates.")
    if result.bad_output_lines.height:
        lines.append(f"\n{result.bad_output_lines.height} line(s) of the outputs file were not used:")
        for row in result.bad_output_lines.head(20).iter_rows(named=True):
            lines.append(f"  line {row['line']}: {row['problem']}")
        if result.bad_output_lines.height > 20:
            lines.append(f"  ... and {result.bad_output_lines.height - 20} more")
    if result.unmatched_outputs:
        shown = ", ".join(result.unmatched_outputs[:5]) + (" ..." if len(result.unmatched_outputs) > 5 else "")
        lines.append(f"{len(result.unmatched_outputs)} recorded output(s) name no case of this suite: {shown}")
    return "\n".join(lines)


class NoModelToGrade(ValueError):
    """Neither recorded outputs nor a model endpoint: nothing to grade."""


@contextmanager
def run_endpoints(
    config: Any, model: str, outputs_path: str | None, use_judge: bool = True
) -> Iterator[tuple[Any, Any, dict[str, Any] | None]]:
    """(model client or None, judge or None, request params) for an eval run; clients closed on exit.

    With recorded outputs no model is called; otherwise the configured model endpoint answers as
    `model`. The configured judge grades rubric checks unless `use_judge` is false.
    """
    from loop_assets.evaluate.answer_checks import chat_judge
    from loop_assets.llm_client import ChatClient

    clients: list[ChatClient] = []
    try:
        client = params = None
        if outputs_path is None:
            endpoint = config.model_endpoint
            if endpoint is None:
                raise NoModelToGrade(
                    "no model endpoint configured: add a model_endpoint section to the configuration "
                    "(see eval_loop.yaml), or grade recorded answers from a file"
                )
            settings = endpoint.model_dump(include={"timeout_s", "max_retries", "concurrency", "backoff_s"})
            client = ChatClient(endpoint.base_url, model, api_key=endpoint.api_key(), **settings)
            clients.append(client)
            params = request_params(endpoint)
        judge = None
        if config.judge is not None and use_judge:
            judge_client = ChatClient.from_config(config.judge)
            clients.append(judge_client)
            judge = chat_judge(judge_client, **request_params(config.judge))
        yield client, judge, params
    finally:
        for c in clients:
            c.close()


class EmptySuite(ValueError):
    """The suite version asked for holds no active case."""


def evaluate_suite(
    open_warehouse: Callable[[], AbstractContextManager[duckdb.DuckDBPyConnection]],
    config: Any,
    model: str,
    run_id: str,
    as_of: date | None = None,
    outputs_path: str | None = None,
    use_judge: bool = True,
) -> EvalRunResult:
    """EVALUATE's step, as the eval_run asset and `eval-loop run` call it: the suite as of `as_of` graded
    case by case against recorded answers (`outputs_path`) or the model endpoint, not yet stored
    (`store_eval_run`). What to grade with is settled before the warehouse is opened (`open_warehouse`),
    so a missing endpoint or file is named first. Raises NoModelToGrade, EmptySuite, FileNotFoundError."""
    outputs = load_recorded_outputs(outputs_path) if outputs_path else None
    with run_endpoints(config, model, outputs_path, use_judge=use_judge) as (client, judge, params):
        with open_warehouse() as con:
            suite = read_suite(con, as_of)
        if suite.height == 0:
            raise EmptySuite(f"the suite as of {as_of or 'the latest day'} has no active cases")
        version = suite_version_of(suite, as_of)
        return run_suite(suite, outputs, client, judge, version, model, run_id, params=params, source=outputs_path)
