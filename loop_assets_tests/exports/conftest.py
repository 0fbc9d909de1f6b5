"""A small eval_suite frame built in code: three cases that exercise every grading check and message shape."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import polars as pl
import pytest

from loop_assets.tables import conform, empty

D1, D2 = date(2026, 11, 16), date(2026, 11, 17)
EMBEDDING_MARK = 0.123456789  # must never appear in an export

SQL_SCHEMA = {
    "type": "object",
    "required": ["sql", "explanation"],
    "properties": {"sql": {"type": "string", "minLength": 1}, "explanation": {"type": "string"}},
    "additionalProperties": False,
}


def _signal(scorer: str, value: str, threshold: str) -> dict:
    return {"scorer": scorer, "version": "1", "value": value, "threshold": threshold}


def _grading(*checks: dict) -> str:
    return json.dumps({"pass": "all", "checks": [{"type": "no_error"}, {"type": "non_empty"}, *checks]}, sort_keys=True)


CASES = [
    {
        "case_id": "case_sql_1",
        "day": D1,
        "app": "sql_assistant",
        "input_messages": [
            {"role": "system", "content": "Answer with JSON {sql, explanation}."},
            {"role": "user", "content": "How many orders shipped last week?"},
        ],
        "input_text": "How many orders shipped last week?",
        "expected_output": None,
        "grading": _grading({"type": "json_schema", "schema": SQL_SCHEMA}, {"type": "latency", "max_ms": 6000.0}),
        "signals": [
            _signal("json_schema", "missing sql", "output matches the app schema"),
            _signal("latency", "9120.5", "latency_ms > 6000"),
        ],
        "trace_id": "tr_sql_1",
        "span_id": "span_sql_1",
        "source_file": "traces-2026-11-16.jsonl",
        "source_line": 17,
        "cluster_id": 3,
        "nearest_case_id": None,
        "nearest_similarity": None,
    },
    {
        "case_id": "case_support_2",
        "day": D1,
        "app": "support_bot",
        "input_messages": [
            {"role": "system", "content": "You are the support bot."},
            {"role": "user", "content": "Where is my refund for order 42?", "name": "customer"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": '{"order": 42}'}}
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": '{"status": "refunded"}'},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "And this receipt?"},
                    {"type": "image_url", "image_url": {"url": "https://example.invalid/r.png", "detail": "low"}},
                    {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
                ],
            },
        ],
        "input_text": "And this receipt?",
        "expected_output": "Your refund for order 42 was issued on 12 November.",
        "grading": _grading(
            {
                "type": "rubric",
                "rubric": "The answer follows the refund policy.",
                "reference": "Your refund for order 42 was issued on 12 November.",
            }
        ),
        "signals": [_signal("feedback", "thumbs=down", "rating <= 2 or thumbs down")],
        "trace_id": "tr_support_2",
        "span_id": None,
        "source_file": "traces-2026-11-16.jsonl",
        "source_line": 230,
        "cluster_id": -1,
        "nearest_case_id": "case_sql_1",
        "nearest_similarity": 0.41,
    },
    {
        "case_id": "case_summary_3",
        "day": D2,
        "app": "summariser",
        "input_messages": [
            {"role": "developer", "content": "Summarise in at most five sentences."},
            {"role": "user", "content": "Summarise: the {{quarterly}} report ..."},
        ],
        "input_text": "Summarise: the {{quarterly}} report ...",
        "expected_output": None,
        "grading": _grading(
            {"type": "finish_reason", "not": "length"},
            {"type": "rubric", "rubric": "Faithful to the {{document}}; at most five sentences."},
            {"type": "exact", "value": "no such check yet"},
        ),
        "signals": [_signal("truncated_output", "length", "finish_reason == length")],
        "trace_id": "tr_summary_3",
        "span_id": None,
        "source_file": "nested/traces-2026-11-17.jsonl.gz",
        "source_line": 5,
        "cluster_id": 0,
        "nearest_case_id": "case_support_2",
        "nearest_similarity": 0.62,
    },
]


def suite_rows(cases: list[dict] = CASES) -> pl.DataFrame:
    rows = []
    for i, c in enumerate(cases):
        ts = datetime(c["day"].year, c["day"].month, c["day"].day, 9, i, 30, 250000, tzinfo=UTC)
        rows.append(
            {
                "case_id": c["case_id"],
                "day": c["day"],
                "app": c["app"],
                "input_messages": json.dumps(c["input_messages"]),
                "input_text": c["input_text"],
                "expected_output": c["expected_output"],
                "grading": c["grading"],
                "weight": 0.5 + i / 10,
                "label": f"{c['app']} · {'+'.join(s['scorer'] for s in c['signals'])} · {c['input_text'][:30]}",
                "status": "active",
                "source": "production_failure",
                "trace_id": c["trace_id"],
                "span_id": c["span_id"],
                "source_file": c["source_file"],
                "source_line": c["source_line"],
                "source_format": "openai_chat",
                "raw_partition": c["day"],
                "failure_signals": c["signals"],
                "severity": 0.6,
                "cluster_id": c["cluster_id"],
                "cluster_size": 4,
                "candidate_id": f"cand_{i}",
                "nearest_case_id": c["nearest_case_id"],
                "nearest_similarity": c["nearest_similarity"],
                "dedup_threshold": 0.85,
                "text_hash": f"{i:064x}",
                "embedding": [EMBEDDING_MARK, 0.5],
                "embedding_model": "all-MiniLM-L6-v2",
                "promoted_run_id": f"run-{c['day']}",
                "promoted_partition": str(c["day"]),
                "first_seen_at": ts,
                "promoted_at": ts.replace(hour=23),
                "last_run_id": f"run-{c['day']}-b",
            }
        )
    frame = pl.DataFrame(rows, schema=empty("eval_suite").schema)
    return conform("eval_suite", frame)


@pytest.fixture
def suite_frame() -> pl.DataFrame:
    return suite_rows()


def expected_provenance(row: dict) -> dict:
    """The provenance an export must carry for a suite row, as JSON values."""
    return {
        "source": row["source"],
        "trace_id": row["trace_id"],
        "span_id": row["span_id"],
        "source_file": row["source_file"],
        "source_line": row["source_line"],
        "source_format": row["source_format"],
        "raw_partition": row["raw_partition"].isoformat(),
        "failure_signals": row["failure_signals"],
        "severity": row["severity"],
        "cluster_id": row["cluster_id"],
        "cluster_size": row["cluster_size"],
        "candidate_id": row["candidate_id"],
        "nearest_case_id": row["nearest_case_id"],
        "nearest_similarity": row["nearest_similarity"],
        "dedup_threshold": row["dedup_threshold"],
        "text_hash": row["text_hash"],
        "embedding_model": row["embedding_model"],
        "promoted_run_id": row["promoted_run_id"],
        "promoted_partition": row["promoted_partition"],
        "last_run_id": row["last_run_id"],
        "first_seen_at": row["first_seen_at"].isoformat(),
        "promoted_at": row["promoted_at"].isoformat(),
    }
