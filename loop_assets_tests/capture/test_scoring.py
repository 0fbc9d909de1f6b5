"""Tests of the scoring core: hand-made raw_traces rows with seeded failures."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from typing import Any

import polars as pl
import pytest

from loop_assets import tables
from loop_assets.capture.scoring import SCORERS, json_output_error, schema_validator, score_traces
from loop_assets.config import SIGNALS, LoopConfig, load_config

DAY = date(2025, 3, 14)
RUN_ID = "run-123"
SQL_OK = json.dumps({"sql": "SELECT count(*) FROM orders", "explanation": "Counts the orders."})
FAILED_COLUMNS = [f"{s}_failed" for s in SIGNALS]


def row(trace_id: str, **overrides: Any) -> dict[str, Any]:
    """A healthy support_bot trace; override the fields a test cares about."""
    base: dict[str, Any] = {name: None for name in tables.RAW_TRACES}
    base.update(
        trace_id=trace_id,
        ts=datetime(2025, 3, 14, 12, 0, tzinfo=UTC),
        day=DAY,
        app="support_bot",
        model="gpt-4o-mini",
        input_messages=json.dumps([{"role": "user", "content": "Where is my order?"}]),
        input_text="Where is my order?",
        output_text="Your order shipped yesterday.",
        latency_ms=1200.0,
        finish_reason="stop",
        source_format="openai_chat",
        source_file="day.jsonl",
        source_line=1,
        ingest_run_id="ingest-1",
    )
    unknown = set(overrides) - set(base)
    assert not unknown, f"not raw_traces columns: {unknown}"
    base.update(overrides)
    return base


def raw_frame(*rows: dict[str, Any]) -> pl.DataFrame:
    frame = pl.DataFrame(list(rows), schema=tables.schema("raw_traces"))
    assert frame.schema == tables.empty("raw_traces").schema
    return frame


def by_id(scored: pl.DataFrame) -> dict[str, dict[str, Any]]:
    return {r["trace_id"]: r for r in scored.to_dicts()}


@pytest.fixture(scope="module")
def config() -> LoopConfig:
    return load_config()


# One row per seeded failure kind, healthy rows in between. Expected signals per failing trace.
SEEDED = [
    row("healthy-support", feedback_thumbs="up", feedback_rating=5.0),
    row("provider-error", app="sql_assistant", error="429 rate limit exceeded", output_text=None, finish_reason=None),
    row("empty-output", output_text="   \n"),
    row("truncated", output_text="Your order shipped yester", finish_reason="length"),
    row("healthy-sql", app="sql_assistant", output_text=SQL_OK, latency_ms=5999.0),
    row("fenced-json", app="sql_assistant", output_text=f"```json\n{SQL_OK}\n```"),
    row("missing-key", app="sql_assistant", output_text=json.dumps({"sql": "SELECT 1"})),
    row("feedback", feedback_thumbs="down", feedback_rating=2.0),
    row("slow", latency_ms=8000.5),
    row("healthy-at-budget", latency_ms=8000.0, feedback_rating=3.0),
    row("healthy-no-latency", app="summariser", latency_ms=None, finish_reason=None),
    row("multi", finish_reason="length", latency_ms=9000.0, feedback_thumbs="down"),
]
EXPECTED = {
    "provider-error": {"provider_error": ("429 rate limit exceeded", "error is set")},
    "empty-output": {"empty_output": ("output_text is blank (4 chars)", "non-empty output")},
    "truncated": {"truncated_output": ("length", "finish_reason != length")},
    "fenced-json": {"json_schema": ("not valid JSON: Expecting value at char 0", None)},
    "missing-key": {"json_schema": ("'explanation' is a required property", None)},
    "feedback": {"feedback": ("thumbs=down rating=2", "rating <= 2 (scale 1-5) or thumbs down")},
    "slow": {"latency": ("8000.5", "8000")},
    "multi": {
        "truncated_output": ("length", "finish_reason != length"),
        "feedback": ("thumbs=down", "rating <= 2 (scale 1-5) or thumbs down"),
        "latency": ("9000", "8000"),
    },
}
SCHEMA_THRESHOLD = re.compile(r"^schema sql_assistant \(sha256:[0-9a-f]{8}\)$")


@pytest.fixture(scope="module")
def scored(config: LoopConfig) -> pl.DataFrame:
    return score_traces(raw_frame(*SEEDED), config, RUN_ID)


def test_scorers_cover_the_signals_in_order() -> None:
    assert tuple(SCORERS) == SIGNALS
    assert all(isinstance(v, str) and v for v in SCORERS.values())


def test_output_has_the_contract_schema_and_the_input_order(scored: pl.DataFrame) -> None:
    assert scored.schema == tables.schema("scored_traces")
    assert scored["trace_id"].to_list() == [r["trace_id"] for r in SEEDED]
    assert scored["app"].to_list() == [r["app"] for r in SEEDED]
    assert scored["day"].to_list() == [DAY] * len(SEEDED)
    assert scored["scored_run_id"].to_list() == [RUN_ID] * len(SEEDED)


def test_exactly_the_seeded_rows_fail(scored: pl.DataFrame) -> None:
    failing = set(scored.filter(pl.col("is_failure"))["trace_id"])
    assert failing == set(EXPECTED)


@pytest.mark.parametrize("trace_id", sorted(EXPECTED))
def test_seeded_row_carries_exactly_its_signals(scored: pl.DataFrame, trace_id: str) -> None:
    record = by_id(scored)[trace_id]
    expected = EXPECTED[trace_id]
    signals = record["failure_signals"]
    # Exactly the expected scorers, in the order of SIGNALS.
    assert [s["scorer"] for s in signals] == [s for s in SIGNALS if s in expected]
    for signal in signals:
        value, threshold = expected[signal["scorer"]]
        assert signal["version"] == SCORERS[signal["scorer"]]
        assert signal["value"] == value
        if threshold is None:
            assert SCHEMA_THRESHOLD.match(signal["threshold"]), signal["threshold"]
        else:
            assert signal["threshold"] == threshold
    # The boolean columns agree with the signals.
    for name in SIGNALS:
        if name in expected:
            assert record[f"{name}_failed"] is True, name
        else:
            assert record[f"{name}_failed"] is not True, name


def test_healthy_rows_have_no_signals_and_zero_severity(scored: pl.DataFrame) -> None:
    healthy = scored.filter(~pl.col("trace_id").is_in(list(EXPECTED)))
    assert healthy.height == len(SEEDED) - len(EXPECTED)
    assert healthy["failure_signals"].to_list() == [[]] * healthy.height
    assert healthy["severity"].to_list() == [0.0] * healthy.height
    assert not healthy["is_failure"].any()


def test_severity_is_noisy_or_of_the_fired_weights(scored: pl.DataFrame, config: LoopConfig) -> None:
    weights = config.scoring.severity_weights
    records = by_id(scored)
    for trace_id, expected in EXPECTED.items():
        keep = 1.0
        for name in expected:
            keep *= 1 - weights[name]
        assert records[trace_id]["severity"] == pytest.approx(1 - keep), trace_id
    # truncated 0.6, feedback 0.6, latency 0.3: 1 - 0.4 * 0.4 * 0.7
    assert records["multi"]["severity"] == pytest.approx(0.888)
    assert records["multi"]["severity"] > max(weights[s] for s in EXPECTED["multi"])
    assert records["provider-error"]["severity"] == pytest.approx(0.9)


def test_not_applicable_is_null(scored: pl.DataFrame) -> None:
    records = by_id(scored)
    # support_bot has no output schema.
    assert records["healthy-support"]["json_schema_failed"] is None
    # An errored call: no output to check, empty output is explained by the error.
    errored = records["provider-error"]
    assert errored["json_schema_failed"] is None
    assert errored["empty_output_failed"] is None
    assert errored["truncated_output_failed"] is None
    assert errored["feedback_failed"] is None
    assert errored["latency_failed"] is False
    # No latency logged; no feedback given.
    assert records["healthy-no-latency"]["latency_failed"] is None
    assert records["healthy-no-latency"]["feedback_failed"] is None
    # Always applicable scorers say False, not null, on a healthy row.
    healthy = records["healthy-support"]
    for name in ("provider_error", "empty_output", "truncated_output", "feedback", "latency"):
        assert healthy[f"{name}_failed"] is False, name


def test_healthy_json_passes_and_latency_budget_is_per_app(scored: pl.DataFrame) -> None:
    record = by_id(scored)["healthy-sql"]
    assert record["json_schema_failed"] is False
    assert record["latency_failed"] is False  # 5999 ms against sql_assistant's 6000
    assert record["is_failure"] is False


def test_json_schema_messages_name_the_problem(config: LoopConfig) -> None:
    validator = schema_validator(config.app("sql_assistant").output_schema)
    assert json_output_error(validator, SQL_OK) is None
    assert json_output_error(validator, f"  {SQL_OK}\n") is None
    assert json_output_error(validator, "SELECT 1") == "not valid JSON: Expecting value at char 0"
    assert json_output_error(validator, "```json\n" + SQL_OK + "\n```").startswith("not valid JSON")
    assert json_output_error(validator, '{"sql": "SELECT 1"}') == "'explanation' is a required property"
    nested = json_output_error(validator, json.dumps({"sql": "", "explanation": "x"}))
    assert nested is not None and "$.sql" in nested
    extra = json_output_error(validator, json.dumps({"sql": "SELECT 1", "explanation": "x", "note": 1}))
    assert extra is not None and "'note'" in extra
    assert json_output_error(validator, "[1, 2]") is not None


def test_values_are_cut_to_200_chars(config: LoopConfig) -> None:
    long_error = "upstream failure: " + "x" * 500
    scored = score_traces(raw_frame(row("long", error=long_error, output_text=None)), config, RUN_ID)
    (signal,) = scored["failure_signals"][0]
    assert signal["scorer"] == "provider_error"
    assert signal["value"] == long_error[:200]


def test_blank_error_is_not_an_error(config: LoopConfig) -> None:
    scored = score_traces(raw_frame(row("blank-error", error="  ")), config, RUN_ID)
    assert scored["provider_error_failed"].to_list() == [False]
    assert scored["is_failure"].to_list() == [False]


def test_empty_output_null_text_value(config: LoopConfig) -> None:
    scored = score_traces(raw_frame(row("null-output", output_text=None)), config, RUN_ID)
    assert scored["failure_signals"].to_list() == [
        [{"scorer": "empty_output", "version": "1", "value": "output_text is null", "threshold": "non-empty output"}]
    ]


def test_unknown_app_uses_the_default_budget(config: LoopConfig) -> None:
    frame = raw_frame(
        row("under", app="new_app", latency_ms=9999.0),
        row("over", app="new_app", latency_ms=10001.0),
        row("no-app", app=None, latency_ms=10001.0),
    )
    scored = score_traces(frame, config, RUN_ID)
    assert scored["latency_failed"].to_list() == [False, True, True]
    assert scored["failure_signals"][1].to_list() == [
        {"scorer": "latency", "version": "1", "value": "10001", "threshold": "10000"}
    ]


def test_percentile_mode_uses_each_apps_day(config: LoopConfig) -> None:
    percentile = LoopConfig.model_validate(
        {**config.model_dump(), "scoring": {"latency": {"mode": "percentile", "percentile": 0.99}}}
    )
    fast = [row(f"bot-{i}", latency_ms=100.0) for i in range(9)]
    frame = raw_frame(
        *fast,
        row("bot-slowest", latency_ms=1000.0),
        row("sum-1", app="summariser", latency_ms=20000.0),
        row("sum-2", app="summariser", latency_ms=20000.0),
    )
    # Absolute mode: only the summariser rows break their 12 s budget.
    absolute = score_traces(frame, config, RUN_ID)
    assert set(absolute.filter(pl.col("latency_failed"))["trace_id"]) == {"sum-1", "sum-2"}

    scored = score_traces(frame, percentile, RUN_ID)
    assert set(scored.filter(pl.col("latency_failed"))["trace_id"]) == {"bot-slowest"}
    # Linear interpolation: position 0.99 * 9 = 8.91 between 100 and 1000 -> 919.
    signal = by_id(scored)["bot-slowest"]["failure_signals"]
    assert signal == [
        {"scorer": "latency", "version": "1", "value": "1000", "threshold": "p99 of support_bot over the day = 919"}
    ]
    assert scored["latency_failed"].null_count() == 0


def test_custom_config_changes_thresholds() -> None:
    custom = LoopConfig.model_validate(
        {
            "scoring": {
                "latency": {"default_budget_ms": 500},
                "feedback": {"max_failing_rating": 3, "thumbs_down_fails": False},
                "severity_weights": {"feedback": 0.25},
            },
            "apps": {"support_bot": {"latency_budget_ms": 100}},
        }
    )
    frame = raw_frame(
        row("thumbs-down", feedback_thumbs="down", latency_ms=50.0),
        row("rating-3", feedback_rating=3.0, latency_ms=50.0),
        row("slow-bot", latency_ms=150.0),
        row("other-app", app="sql_assistant", output_text="not json", latency_ms=499.0),
    )
    records = by_id(score_traces(frame, custom, RUN_ID))
    # thumbs down no longer fails, but feedback was given, so the scorer applies.
    assert records["thumbs-down"]["feedback_failed"] is False
    assert records["thumbs-down"]["is_failure"] is False
    assert records["rating-3"]["failure_signals"] == [
        {"scorer": "feedback", "version": "2", "value": "rating=3", "threshold": "rating <= 3 (scale 1-5)"}
    ]
    assert records["rating-3"]["severity"] == pytest.approx(0.25)
    assert records["slow-bot"]["failure_signals"] == [
        {"scorer": "latency", "version": "1", "value": "150", "threshold": "100"}
    ]
    # sql_assistant has no schema in this config: its output is not checked; default budget 500.
    assert records["other-app"]["json_schema_failed"] is None
    assert records["other-app"]["latency_failed"] is False
    assert records["other-app"]["is_failure"] is False


def test_schema_threshold_tracks_the_schema(config: LoopConfig) -> None:
    other_schema = {"type": "object", "required": ["answer"]}
    other = LoopConfig.model_validate({"apps": {"sql_assistant": {"output_schema": other_schema}}})
    frame = raw_frame(row("bad", app="sql_assistant", output_text="{}"))
    default_signal = score_traces(frame, config, RUN_ID)["failure_signals"][0][0]
    other_signal = score_traces(frame, other, RUN_ID)["failure_signals"][0][0]
    assert SCHEMA_THRESHOLD.match(default_signal["threshold"])
    assert SCHEMA_THRESHOLD.match(other_signal["threshold"])
    assert default_signal["threshold"] != other_signal["threshold"]
    assert other_signal["value"] == "'answer' is a required property"


def test_json_rows_keep_their_place_among_other_apps(config: LoopConfig) -> None:
    frame = raw_frame(
        row("s1", app="sql_assistant", output_text="nope"),
        row("b1"),
        row("s2", app="sql_assistant", output_text=SQL_OK),
        row("b2", output_text="nope"),
        row("s3", app="sql_assistant", output_text="nope"),
        row("s4", app="sql_assistant", output_text=SQL_OK),
    )
    scored = score_traces(frame, config, RUN_ID)
    assert scored["trace_id"].to_list() == ["s1", "b1", "s2", "b2", "s3", "s4"]
    assert scored["json_schema_failed"].to_list() == [True, None, False, None, True, False]


def test_empty_frame_gives_empty_scored_frame(config: LoopConfig) -> None:
    scored = score_traces(tables.empty("raw_traces"), config, RUN_ID)
    assert scored.height == 0
    assert scored.schema == tables.schema("scored_traces")
    assert scored.columns[3:10] == [c for c in tables.SCORED_TRACES if c.endswith("_failed")]
    assert set(FAILED_COLUMNS) <= set(scored.columns)


def test_missing_input_column_is_an_error(config: LoopConfig) -> None:
    with pytest.raises(ValueError, match="latency_ms"):
        score_traces(raw_frame(row("t")).drop("latency_ms"), config, RUN_ID)


def test_percentile_is_per_day_when_a_frame_holds_several(config: LoopConfig) -> None:
    percentile = LoopConfig.model_validate({"scoring": {"latency": {"mode": "percentile", "percentile": 0.5}}})
    other_day = date(2025, 3, 15)
    frame = raw_frame(
        row("d1-a", latency_ms=100.0),
        row("d1-b", latency_ms=200.0),
        row("d2-a", day=other_day, latency_ms=1000.0),
        row("d2-b", day=other_day, latency_ms=3000.0),
    )
    scored = score_traces(frame, percentile, RUN_ID)
    # Pooled over both days the median would be 600 and both day-2 rows would fire.
    assert scored["latency_failed"].to_list() == [False, True, False, True]
    thresholds = [s[0]["threshold"] for s in scored["failure_signals"].to_list() if s]
    assert thresholds == ["p50 of support_bot over the day = 150", "p50 of support_bot over the day = 2000"]
