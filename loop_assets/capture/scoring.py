"""Score raw traces: which failure signals fired, how severe the trace is, whether it is a failure.

Pure core, no Dagster. `score_traces` turns one day's `raw_traces` frame into `scored_traces`, one
row per input row in the same order. Every scorer has a name (one of `config.SIGNALS`) and a version
(`SCORERS`); bump the version whenever a scorer's decision or its value/threshold strings change, so
a suite case can tell which logic flagged it.

Each scorer fills a `<name>_failed` column: True when it fired, False when it passed, null when it
does not apply to the trace (no latency logged, no feedback given, no output schema for the app,
...). A fired scorer also adds a `{scorer, version, value, threshold}` signal (all strings) to
`failure_signals`: `value` is what was observed, `threshold` what it was held against.

Scorers (applies when / fires when / value / threshold):

- provider_error: always / `error` is set (not blank) / the error, cut to 200 chars / `error is set`.
- empty_output: no error / `output_text` is null or blank / `output_text is null` or
  `output_text is blank (N chars)` / `non-empty output`.
- truncated_output: `finish_reason` is logged / it is `length` / the finish reason (`length`) /
  `finish_reason != length`.
- json_schema: the app has an `output_schema`, the output is not blank and there is no error /
  the output is not a JSON document (a ```json fence included) or breaks the schema / the first
  error, cut to 200 chars, e.g. `not valid JSON: Expecting value at char 0` or
  `'explanation' is a required property` / `schema <app> (sha256:<first 8 hex of the schema>)`.
- feedback: a thumbs or a rating within the app's `rating_scale` is logged / thumbs down (when
  the app's `thumbs_down_fails`) or rating <= the app's `max_failing_rating` / `thumbs=down
  rating=2` (the parts logged) / `rating <= 2 (scale 1-5) or thumbs down`. The settings are the
  app's (`apps.<name>.feedback`), else `scoring.feedback`. A rating outside the app's scale is not
  read as good or bad: it is the `invalid_feedback` flag below.
- latency: `latency_ms` is logged / `latency_ms > budget` / the latency in ms, e.g. `6500` /
  absolute mode: the budget, e.g. `6000` (the app's `latency_budget_ms`, else
  `default_budget_ms`); percentile mode: `p99 of <app> over the day = 1234.5`.
- judge: not run here. `score_traces` leaves `judge_failed`, `judge_score`, `judge_status` and
  `judge_reason` null; `judge.apply_judgements` merges the LLM judge's results afterwards (its
  signal's version is the rubric version, its value the score, its threshold `score <= 2`) and
  recomputes severity and is_failure with `severity_and_failure`.

Flags (in `failure_signals` too, but they never make a trace a failure and carry no severity):

- invalid_feedback: a rating is logged / it lies outside the app's `rating_scale` (NaN and
  infinities included) / `rating=7` / `rating in 1-5 (rating_scale of <app>)`. Scored traffic with
  such ratings means the configuration declares the wrong scale for the app (or the logging is
  broken): the scored_traces metadata and `eval-loop summary` count them per app.

`severity` = 1 - prod(1 - w) over the fired signals, with `scoring.severity_weights` (0.0 when none
fired); `is_failure` = any signal fired.

Everything is a Polars expression except the JSON-schema check, which runs Python per distinct
output text, and only over rows of apps that have a schema.
"""

from __future__ import annotations

import hashlib
import json
import operator
from collections.abc import Callable, Mapping
from functools import reduce
from typing import Any

import polars as pl
from jsonschema.exceptions import best_match
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for

from loop_assets import tables
from loop_assets.config import FLAGS, SIGNALS, AppSettings, LoopConfig

SCORERS: dict[str, str] = {
    "provider_error": "1",
    "empty_output": "1",
    "truncated_output": "1",
    "json_schema": "1",
    "feedback": "2",  # 2: per-app rating scale, the scale in the threshold
    "latency": "1",
    "judge": "1",
}
assert tuple(SCORERS) == SIGNALS, "SCORERS must list config.SIGNALS, in order"
FLAG_VERSIONS: dict[str, str] = {"invalid_feedback": "1"}
assert tuple(FLAG_VERSIONS) == FLAGS, "FLAG_VERSIONS must list config.FLAGS, in order"

MAX_VALUE_CHARS = 200

# Columns of raw_traces the scorers read.
INPUT_COLUMNS = (
    "trace_id",
    "day",
    "app",
    "output_text",
    "latency_ms",
    "finish_reason",
    "error",
    "feedback_thumbs",
    "feedback_rating",
)


def failed_column(scorer: str) -> str:
    """Name of the scored_traces column that holds one scorer's outcome."""
    return f"{scorer}_failed"


# --------------------------------------------------------------------------- JSON schema helpers


def schema_fingerprint(schema: Mapping[str, Any]) -> str:
    """First 8 hex digits of the sha256 of the schema's canonical JSON."""
    canonical = json.dumps(schema, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:8]


def schema_threshold(app: str, schema: Mapping[str, Any]) -> str:
    """The threshold string of the json_schema signal for one app."""
    return f"schema {app} (sha256:{schema_fingerprint(schema)})"


def schema_validator(schema: Mapping[str, Any]) -> Validator:
    """A validator of the schema's own draft (the schema was checked when the config loaded)."""
    return validator_for(schema)(schema)


def json_output_error(validator: Validator, text: str) -> str | None:
    """Why `text` breaks the JSON contract of `validator`, or None when it satisfies it.

    The text must be a JSON document on its own: a Markdown-fenced answer is not JSON and fails.
    Of several schema violations the most relevant one (jsonschema's `best_match`) is reported,
    with its location when it is not the document root.
    """
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        return f"not valid JSON: {exc.msg} at char {exc.pos}"
    except RecursionError:
        return "not valid JSON: nested too deeply to parse"
    try:
        error = best_match(validator.iter_errors(document))
    except RecursionError:
        return "schema check failed: document nested too deeply"
    if error is None:
        return None
    if error.absolute_path:
        return f"{error.message} (at {error.json_path})"
    return error.message


def _json_schema_columns(frame: pl.DataFrame, applicable: pl.Series, config: LoopConfig) -> pl.DataFrame:
    """json_schema_failed, value and threshold for every row of `frame` (null where not applicable)."""
    height = frame.height
    failed = pl.Series("json_schema_failed", [None] * height, dtype=pl.Boolean)
    value = pl.Series("json_schema_value", [None] * height, dtype=pl.String)
    threshold = pl.Series("json_schema_threshold", [None] * height, dtype=pl.String)
    for app in sorted(config.apps):
        app_config = config.app(app)
        if app_config.output_schema is None:
            continue
        rows = frame.select(pl.int_range(pl.len(), dtype=pl.UInt32).alias("row"), "app", "output_text").filter(
            applicable & (pl.col("app") == app)
        )
        if rows.is_empty():
            continue
        validator = schema_validator(app_config.output_schema)
        seen: dict[str, str | None] = {}
        messages: list[str | None] = []
        for text in rows["output_text"]:
            if text not in seen:
                message = json_output_error(validator, text)
                seen[text] = None if message is None else message[:MAX_VALUE_CHARS]
            messages.append(seen[text])
        indices = rows["row"]
        failed.scatter(indices, [m is not None for m in messages])
        value.scatter(indices, messages)
        threshold.scatter(indices, schema_threshold(app, app_config.output_schema))
    return pl.DataFrame([failed, value, threshold])


# --------------------------------------------------------------------------- expressions


def _number(expr: pl.Expr) -> pl.Expr:
    """A float as a short string: 6500.0 -> '6500', 1234.5678 -> '1234.568'."""
    return expr.round(3).cast(pl.String).str.strip_suffix(".0")


def _fmt(x: float) -> str:
    return f"{x:g}" if abs(x) < 1e15 else repr(x)


def _text_is_set(column: str) -> pl.Expr:
    return pl.col(column).str.strip_chars().str.len_chars().fill_null(0) > 0


def _latency_budget(config: LoopConfig) -> tuple[pl.Expr, pl.Expr]:
    """(budget in ms, threshold string) as expressions over the frame."""
    latency = config.scoring.latency
    if latency.mode == "percentile":
        p = latency.percentile
        budget = pl.col("latency_ms").quantile(p, interpolation="linear").over("app", "day")
        label = f"p{_fmt(round(p * 100, 6))}"
        threshold = pl.format(
            "{} of {} over the day = {}",
            pl.lit(label),
            pl.col("app").fill_null("(no app)"),
            _number(budget),
        )
        return budget, threshold
    budget = per_app(config, lambda a: a.latency_budget_ms, pl.Float64)
    return budget, _number(budget)


def per_app(config: LoopConfig, setting: Callable[[AppSettings], Any], dtype: pl.DataType) -> pl.Expr:
    """One app setting per row: the app's own (`config.app`), the default's for an app not under `apps:`."""
    default = setting(config.app(None))
    values = {name: setting(config.app(name)) for name in config.apps}
    if all(v == default for v in values.values()):
        return pl.lit(default, dtype=dtype)
    return pl.col("app").replace_strict(values, default=default, return_dtype=dtype)


def _signal(scorer: str, value: pl.Expr, threshold: pl.Expr) -> pl.Expr:
    """The signal struct of one scorer or flag (meaningful on the rows where it fired)."""
    return pl.struct(
        scorer=pl.lit(scorer, dtype=pl.String),
        version=pl.lit(SCORERS.get(scorer) or FLAG_VERSIONS[scorer], dtype=pl.String),
        value=value.cast(pl.String),
        threshold=threshold.cast(pl.String),
    )


def _failure_signals(frame: pl.DataFrame, signals: Mapping[str, pl.Expr]) -> pl.Series:
    """The list of fired signals per row, in the order of SIGNALS, [] when none fired.

    Built long (one row per fired signal, grouped back per trace) rather than with
    `concat_list` over struct columns, which is some 50x slower on a million rows.
    """
    indexed = frame.with_row_index("__row")
    fired = pl.concat(
        [
            indexed.filter(pl.col(failed_column(name)).fill_null(False)).select(
                "__row", pl.lit(order, dtype=pl.UInt8).alias("__order"), signal.alias("signal")
            )
            for order, (name, signal) in enumerate(signals.items())
        ]
    )
    per_row = fired.sort("__row", "__order").group_by("__row", maintain_order=True).agg("signal")
    return (
        indexed.select("__row")
        .join(per_row, on="__row", how="left", maintain_order="left")
        .select(pl.col("signal").fill_null(pl.lit([], dtype=pl.List(tables.SIGNAL))).cast(pl.List(tables.SIGNAL)))
        .to_series()
        .alias("failure_signals")
    )


# --------------------------------------------------------------------------- entry point


def score_traces(raw: pl.DataFrame, config: LoopConfig, run_id: str) -> pl.DataFrame:
    """Score one partition of raw_traces; returns scored_traces rows in the order of `raw`."""
    missing = [c for c in INPUT_COLUMNS if c not in raw.columns]
    if missing:
        raise ValueError(f"score_traces: raw frame lacks columns {missing}")
    raw_schema = tables.schema("raw_traces")
    frame = raw.select([pl.col(c).cast(raw_schema[c]) for c in INPUT_COLUMNS])

    has_error = _text_is_set("error")
    has_output = _text_is_set("output_text")

    # json_schema: Python per distinct output, only over applicable rows of apps with a schema.
    schema_applicable = frame.select((~has_error & has_output).alias("ok"))["ok"]
    frame = frame.hstack(_json_schema_columns(frame, schema_applicable, config))

    # feedback, on each app's own scale
    thumbs = pl.col("feedback_thumbs").str.strip_chars().str.to_lowercase()
    rating = pl.col("feedback_rating")
    low = per_app(config, lambda a: float(a.feedback.rating_scale[0]), pl.Float64)
    high = per_app(config, lambda a: float(a.feedback.rating_scale[1]), pl.Float64)
    max_failing = per_app(config, lambda a: float(a.feedback.max_failing_rating), pl.Float64)
    thumbs_fail = per_app(config, lambda a: a.feedback.thumbs_down_fails, pl.Boolean)
    # NaN compares as the largest float in Polars: is_finite keeps it (and the infinities) out of every scale.
    in_scale = rating.is_finite() & (rating >= low) & (rating <= high)
    out_of_scale = rating.is_not_null() & ~in_scale.fill_null(False)
    thumbs_down = (thumbs == "down").fill_null(False) & thumbs_fail
    low_rating = (in_scale & (rating <= max_failing)).fill_null(False)
    rating_text = pl.format("rating={}", _number(rating))
    feedback_value = pl.concat_str(
        [pl.format("thumbs={}", thumbs), pl.when(in_scale).then(rating_text)], separator=" ", ignore_nulls=True
    )
    scale_text = pl.format("{}-{}", _number(low), _number(high))
    feedback_threshold = pl.concat_str(
        [
            pl.format("rating <= {} (scale {})", _number(max_failing), scale_text),
            pl.when(thumbs_fail).then(pl.lit("or thumbs down")),
        ],
        separator=" ",
        ignore_nulls=True,
    )

    # latency
    budget, latency_threshold = _latency_budget(config)

    frame = frame.with_columns(
        provider_error_failed=has_error,
        empty_output_failed=pl.when(~has_error).then(~has_output),
        truncated_output_failed=pl.col("finish_reason").str.strip_chars().str.to_lowercase() == "length",
        feedback_failed=pl.when(thumbs.is_not_null() | in_scale.fill_null(False)).then(thumbs_down | low_rating),
        invalid_feedback_failed=out_of_scale,
        latency_failed=pl.col("latency_ms") > budget,
        latency_budget=budget,
        latency_threshold=latency_threshold,
    )

    signals = {
        "provider_error": _signal(
            "provider_error", pl.col("error").str.slice(0, MAX_VALUE_CHARS), pl.lit("error is set")
        ),
        "empty_output": _signal(
            "empty_output",
            pl.when(pl.col("output_text").is_null())
            .then(pl.lit("output_text is null"))
            .otherwise(pl.format("output_text is blank ({} chars)", pl.col("output_text").str.len_chars())),
            pl.lit("non-empty output"),
        ),
        "truncated_output": _signal("truncated_output", pl.col("finish_reason"), pl.lit("finish_reason != length")),
        "json_schema": _signal("json_schema", pl.col("json_schema_value"), pl.col("json_schema_threshold")),
        "feedback": _signal("feedback", feedback_value, feedback_threshold),
        "latency": _signal("latency", _number(pl.col("latency_ms")), pl.col("latency_threshold")),
    }
    # The judge runs later (judge.apply_judgements): its columns stay null here and it never fires.
    frame = frame.with_columns(
        judge_failed=pl.lit(None, dtype=pl.Boolean),
        judge_score=pl.lit(None, dtype=pl.Float64),
        judge_status=pl.lit(None, dtype=pl.String),
        judge_reason=pl.lit(None, dtype=pl.String),
    )
    severity, is_failure = severity_and_failure(config)
    signals["invalid_feedback"] = _signal(
        "invalid_feedback",
        rating_text,
        pl.format("rating in {} (rating_scale of {})", scale_text, pl.col("app").fill_null("(no app)")),
    )
    frame = frame.with_columns(
        _failure_signals(frame, {name: signals[name] for name in (*SIGNALS, *FLAGS) if name in signals}),
        severity=severity,
        is_failure=is_failure,
        scored_run_id=pl.lit(run_id, dtype=pl.String),
    )
    return tables.conform("scored_traces", frame)


def severity_and_failure(config: LoopConfig) -> tuple[pl.Expr, pl.Expr]:
    """(severity, is_failure) expressions over the `<signal>_failed` columns of every signal.

    severity = 1 - prod(1 - w) over the fired signals (0.0 when none fired); is_failure = any fired.
    """
    weights = config.scoring.severity_weights
    fired = [pl.col(failed_column(s)).fill_null(False) for s in SIGNALS]
    # Probability that no fired signal "means it": the product of (1 - w) over fired signals.
    keep = reduce(
        operator.mul,
        [pl.when(f).then(pl.lit(1.0 - weights[s])).otherwise(pl.lit(1.0)) for s, f in zip(SIGNALS, fired, strict=True)],
    )
    return (1.0 - keep).clip(0.0, 1.0).alias("severity"), pl.any_horizontal(fired).alias("is_failure")
