"""DIFFICULTY: how often the model under test still fails a candidate case, by re-asking it N times.

Pure core, no Dagster. Each candidate's input is sent `n` times to the configured model endpoint and
every answer is graded with the grading rule the candidate's case carries (`case_grading`):

    difficulty       = failed tries / answered tries      (in [0, 1])
    difficulty_tries = answered tries = n - errored tries

- A try whose call errored (network, 5xx after the client's retries, rate limit) says nothing about
  the model: it is not counted at all (neither failed nor in `difficulty_tries`).
- A try whose verdict is unknown (no check failed, but one could not be decided, typically a rubric
  without a judge) is not a failure; it stays in the denominator, because every check that could be
  decided passed. Leaving it out would make a rubric case without a judge score 1.0 whenever a
  single try failed a decidable check (its other tries can never pass, only be unknown).
- difficulty is null, with the reason in `difficulty_source`, when no try could be decided (all
  errored, or all unknown), when the input cannot be sent, or when the grading rule is unreadable.
  Without an endpoint (client None) every candidate is `grading.NO_ENDPOINT`, as before.

The counts behind each figure are kept (`difficulty_failures`, `difficulty_unknown`,
`difficulty_errors`) and spelled out in `difficulty_source`, so the figure can be recomputed.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from loop_assets.case_rule import RuleError
from loop_assets.config import LoopConfig
from loop_assets.evaluate.answer_checks import Judge, Output, grade_output, parse_rule
from loop_assets.evaluate.eval_run import ChatCompleter, parse_messages
from loop_assets.grade.candidates import NO_ENDPOINT
from loop_assets.promote.promotion import grading_rule
from loop_assets.redaction import redact_frame

DIFFICULTY_SCHEMA = {
    "difficulty": pl.Float64,
    "difficulty_tries": pl.Int64,
    "difficulty_failures": pl.Int64,
    "difficulty_unknown": pl.Int64,
    "difficulty_errors": pl.Int64,
    "difficulty_source": pl.String,
}
MAX_REASON_CHARS = 200


def _cut(text: str) -> str:
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 1] + "…"


def _key_column(candidates: pl.DataFrame) -> str:
    for key in ("candidate_id", "case_id"):
        if key in candidates.columns:
            return key
    raise ValueError("measure_difficulty: candidates need a candidate_id (or case_id) column")


def _empty(key: str) -> pl.DataFrame:
    return pl.DataFrame(schema={key: pl.String, **DIFFICULTY_SCHEMA})


def _unknown(key_value: str, reason: str, tries: int = 0, unknown: int = 0, errors: int = 0) -> dict[str, Any]:
    return {
        "_key": key_value,
        "difficulty": None,
        "difficulty_tries": tries,
        "difficulty_failures": 0,
        "difficulty_unknown": unknown,
        "difficulty_errors": errors,
        "difficulty_source": _cut(reason),
    }


def measure_difficulty(
    candidates: pl.DataFrame,
    client: ChatCompleter | None,
    n: int,
    judge: Judge | None = None,
    *,
    params: dict[str, Any] | None = None,
) -> pl.DataFrame:
    """Difficulty of each candidate (candidate_id or case_id, input_messages, grading) over `n` re-tries.

    Returns one row per candidate, in order: the key column, difficulty, difficulty_tries,
    difficulty_failures, difficulty_unknown, difficulty_errors, difficulty_source. All n x candidates
    requests go through one `client.complete_many` call (the client bounds concurrency and retries);
    `params` (e.g. temperature) go into every request.
    """
    key = _key_column(candidates)
    lacking = [c for c in ("input_messages", "grading") if c not in candidates.columns]
    if lacking:
        raise ValueError(f"measure_difficulty: candidates lack columns {lacking}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"measure_difficulty: n must be a positive integer, got {n!r}")
    if candidates.height == 0:
        return _empty(key)
    rows = candidates.select(key, "input_messages", "grading").to_dicts()
    if client is None:
        out = [_unknown(r[key], NO_ENDPOINT) for r in rows]
        return _frame(out, key)

    model = getattr(client, "model", None) or "the model endpoint"
    plans: list[tuple[dict, list[dict] | None, str | None]] = []  # (row, messages, why not asked)
    for row in rows:
        messages = parse_messages(row["input_messages"])
        why = None if messages else "unknown: input_messages is not a JSON list of chat messages"
        if why is None:
            try:
                parse_rule(row["grading"] or "")
            except RuleError as exc:
                why = f"unknown: grading rule unreadable: {exc}"
        plans.append((row, messages, why))

    conversations = [m for _, m, why in plans if why is None for _try in range(n)]
    answers = client.complete_many(conversations, **(params or {})) if conversations else []
    if len(answers) != len(conversations):
        raise RuntimeError(f"client returned {len(answers)} results for {len(conversations)} conversations")

    out: list[dict[str, Any]] = []
    cursor = 0
    for row, messages, why in plans:
        if why is not None:
            out.append(_unknown(row[key], why))
            continue
        tries = answers[cursor : cursor + n]
        cursor += n
        out.append(_tally(row[key], row["grading"], messages, tries, judge, n, model))
    return _frame(out, key)


def _tally(key_value: str, grading: str, messages: list[dict], tries: list, judge: Judge | None, n: int, model: str):
    failed = passed = unknown = errors = 0
    first_error = first_unknown = None
    for answer in tries:
        if answer.error:
            errors += 1
            first_error = first_error or answer.error
            continue
        verdict = grade_output(grading, Output(answer.text, answer.finish_reason, answer.latency_ms), judge, messages)
        if verdict.passed is None:
            unknown += 1
            first_unknown = first_unknown or verdict.reason_text()
        elif verdict.passed:
            passed += 1
        else:
            failed += 1
    answered = failed + passed + unknown
    counts = f"{errors} errored, {unknown} unknown"
    if answered == 0:
        return _unknown(key_value, f"unknown: all {n} tries against {model} errored ({first_error})", 0, 0, errors)
    if failed + passed == 0:
        return _unknown(
            key_value,
            f"unknown: no try against {model} could be decided ({counts}; {first_unknown})",
            answered,
            unknown,
            errors,
        )
    return {
        "_key": key_value,
        "difficulty": round(failed / answered, 6),
        "difficulty_tries": answered,
        "difficulty_failures": failed,
        "difficulty_unknown": unknown,
        "difficulty_errors": errors,
        "difficulty_source": _cut(f"retries: {failed} of {answered} answered tries failed against {model} ({counts})"),
    }


def _frame(rows: list[dict[str, Any]], key: str) -> pl.DataFrame:
    frame = pl.DataFrame(rows, schema={"_key": pl.String, **DIFFICULTY_SCHEMA})
    return frame.rename({"_key": key})


def candidates_for_difficulty(
    graded: pl.DataFrame, raw: pl.DataFrame, scored: pl.DataFrame, config: LoopConfig, decisions=("promote",)
) -> pl.DataFrame:
    """candidate_id, input_messages and grading of the graded candidates whose decision is in `decisions`.

    `graded`: graded_candidates rows (candidate_id, trace_id, day, app, decision); `raw`: raw_traces
    (trace_id, day, input_messages, corrected_output); `scored`: scored_traces (trace_id, day,
    failure_signals). The grading rule is the one `promotion` gives the case, so the re-tries are
    graded exactly as an eval run will grade the case.
    """
    chosen = graded.filter(pl.col("decision").is_in(list(decisions))).select("candidate_id", "trace_id", "day", "app")
    frame = chosen.join(
        raw.select("trace_id", "day", "input_messages", "output_text", "corrected_output"),
        on=["trace_id", "day"],
        how="left",
    ).join(scored.select("trace_id", "day", "failure_signals"), on=["trace_id", "day"], how="left")
    # the rule is built from the same redacted answers as the case's (promotion.promote)
    answers = redact_frame(frame, ["output_text", "corrected_output", "failure_signals"], config.redaction)
    rules = [
        grading_rule(r["app"], r["failure_signals"] or [], r["corrected_output"], config, bad_output=r["output_text"])
        for r in answers.iter_rows(named=True)
    ]
    return frame.select("candidate_id", "input_messages").with_columns(pl.Series("grading", rules, dtype=pl.String))
