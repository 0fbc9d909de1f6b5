"""GRADE: every distinct failing input of a day is covered by a case, or skipped with a reason.

Coverage is the contract (DESIGN decision 5): each distinct failing input (app, compared text) of the
day gets one row whose decision is `promote` (it becomes a case), `duplicate_of:<case_id>` (a case of
its app is at least `dedup_threshold` similar to it), or `skip:<reason>`. Inputs are taken greedily,
the one that stands for most of the day's failures first (`_in_cover_order`); each is compared with
every case of its app in the suite as it is and with the cases this day has promoted before it.
Decisions are final: re-grading a day keeps every earlier decision and grades only inputs it has not
seen, against the suite as it is then (so late data adds cases and never removes one).

The weight (DESIGN decision 7) is a weighted mean of the factors that are known:

    weight = sum(w_f * f for f in known factors) / sum(w_f for f in known factors)

    novelty   = 1 - cosine similarity to the nearest earlier case of the same app (1 with none)
    severity  = 1 - prod(1 - signal weight) over the trace's failure signals (scoring)
    frequency = log(1 + traces the case stands for that day: its copies and the inputs decided
                duplicate_of it) / log(1 + frequency_saturation), capped at 1
    difficulty= failure rate over N re-tries against a model endpoint (difficulty.measure_difficulty,
                failed / answered tries); unknown (null) without one, or when no try could be
                decided, and then left out of the mean instead of invented

A common pattern already well covered by the suite has low novelty, so it weighs less than a rare
one nobody has seen; a common new pattern weighs most.

The threshold follows the app's own suite size (`dedup.threshold`), fixed for the app for the whole
grading of a day and stored on every row.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import polars as pl

from loop_assets.config import FLAGS, GradingConfig, LoopConfig
from loop_assets.dedup.embedding import as_matrix
from loop_assets.dedup.suite_search import nearest
from loop_assets.dedup.threshold import dedup_threshold
from loop_assets.tables import conform, empty

__all__ = ["NOT_MEASURED", "NO_ENDPOINT", "case_id", "dedup_threshold", "grade_candidates", "weight", "with_difficulty"]

NO_ENDPOINT = "unknown: no model endpoint configured"
NOT_MEASURED = "unknown: not re-tried (only new candidates are)"


def frequency_score(frequency: int, saturation: int) -> float:
    return min(1.0, math.log1p(max(frequency, 0)) / math.log1p(saturation))


def weight(
    novelty: float, severity: float, frequency: float, difficulty: float | None, grading: GradingConfig
) -> float:
    factors = {"novelty": novelty, "severity": severity, "frequency": frequency, "difficulty": difficulty}
    known = {k: v for k, v in factors.items() if v is not None and grading.weights.get(k, 0) > 0}
    total = sum(grading.weights[k] for k in known)
    return round(sum(grading.weights[k] * v for k, v in known.items()) / total, 6) if total else 0.0


def case_id(app: str, text_hash: str) -> str:
    """Stable across runs and re-runs: the same app and text always make the same case."""
    return "case_" + hashlib.sha256(f"{app}\x1f{text_hash}".encode()).hexdigest()[:16]


def candidate_id(day: object, trace_id: str) -> str:
    return "cand_" + hashlib.sha256(f"{day}\x1f{trace_id}".encode()).hexdigest()[:16]


def _skip_reason(input_text: str | None, signals: list[str], copies: int, grading: GradingConfig) -> str | None:
    """Why an input makes no useful eval case, if it does not (flags such as invalid_feedback are no signals)."""
    signals = [s for s in signals if s not in FLAGS]
    if not (input_text or "").strip():
        return "empty_input"
    if signals and grading.skip_when_only and set(signals) <= set(grading.skip_when_only):
        return "only_" + "+".join(sorted(set(signals)))
    if copies < 2 and signals and set(signals) <= set(grading.require_recurrence):
        return "isolated_" + "+".join(sorted(set(signals)))
    return None


# Candidates are compared with the day's new cases in blocks: one matrix product per block, then a short
# loop inside it, instead of one product per candidate against a list that grows.
BLOCK = 512


@dataclass
class _Cover:
    """The cases an app's candidates are compared with: the suite as it is, then the day's new cases."""

    ids: list[str]
    vectors: np.ndarray
    hashes: dict[str, str]
    new_ids: list[str] = field(default_factory=list)
    new_rows: list[int] = field(default_factory=list)


def grade_candidates(
    candidates: pl.DataFrame,
    suite: pl.DataFrame,
    config: LoopConfig,
    run_id: str,
    isolated: pl.DataFrame | None = None,
    decided: pl.DataFrame | None = None,
    in_suite_from: date | None = None,
) -> pl.DataFrame:
    """Grade one day's distinct failing inputs; every one ends promoted, covered by a case, or skipped.

    `candidates`: trace_id, day, app, cluster_id, cluster_size, copies, is_representative, text_hash,
    embedding, severity, input_text, signals (list of scorer names) — one row per distinct input.
    `suite`: case_id, app, text_hash, embedding of every active case (any day) as it is now.
    `isolated`: candidate_id, app, embedding of earlier candidates skipped as isolated; one at least
    threshold-similar makes a candidate recurring. `decided`: this day's graded rows from earlier runs:
    an input they hold keeps its row as it is, and their promoted rows stay whatever else changed.
    `in_suite_from`: the first suite version (day) a new case belongs to (the day itself unless later
    days are graded already; then the day after the latest, so a past version never changes).

    Weights are computed without difficulty (`with_difficulty` adds it); decisions never depend on it.
    """
    decided = empty("graded_candidates") if decided is None else _with_coverage(conform("graded_candidates", decided))
    if candidates.height == 0 and decided.height == 0:
        return empty("graded_candidates")
    day = candidates["day"][0] if candidates.height else decided["day"][0]
    in_suite_from = in_suite_from or day
    seen = decided.select("app", "text_hash")
    kept = decided.join(candidates.select("app", "text_hash"), on=["app", "text_hash"], how="semi")
    kept = pl.concat([kept, decided.filter(pl.col("decision") == "promote")]).unique("candidate_id", keep="first")
    new = candidates.join(seen, on=["app", "text_hash"], how="anti").sort("app", "trace_id")
    parts = [kept.sort("candidate_id")]
    for (app,), group in new.group_by("app", maintain_order=True):
        app_suite = suite.filter(pl.col("app") == app)
        app_isolated = isolated.filter(pl.col("app") == app) if isolated is not None else None
        parts.append(_grade_app(group, app_suite, app_isolated, config, run_id, in_suite_from))
    return conform("graded_candidates", pl.concat(parts, how="diagonal_relaxed"))


def _with_coverage(graded: pl.DataFrame) -> pl.DataFrame:
    """Rows decided before coverage was stored (older warehouses) get their covering case from the decision."""
    promoted = pl.col("decision") == "promote"
    duplicate = pl.col("decision").str.starts_with("duplicate_of:")
    return graded.with_columns(
        covered_by=pl.coalesce(
            "covered_by",
            pl.when(promoted)
            .then("case_id")
            .when(duplicate)
            .then(pl.col("decision").str.strip_prefix("duplicate_of:")),
        ),
        covered_similarity=pl.coalesce(
            "covered_similarity", pl.when(promoted).then(pl.lit(1.0)).when(duplicate).then("nearest_similarity")
        ),
    )


def _grade_app(
    group: pl.DataFrame,
    suite: pl.DataFrame,
    isolated: pl.DataFrame | None,
    config: LoopConfig,
    run_id: str,
    in_suite_from: date,
) -> pl.DataFrame:
    """Greedy cover of one app's new inputs of a day, densest first, by the suite and the day's new cases."""
    grading = config.grading
    app = group["app"][0]
    threshold = dedup_threshold(suite.height, config.dedup.threshold_schedule)
    group = _in_cover_order(group, threshold)
    queries = as_matrix(group["embedding"])
    cover = _Cover(
        ids=suite["case_id"].to_list(),
        vectors=as_matrix(suite["embedding"]),
        hashes=dict(zip(suite["text_hash"], suite["case_id"], strict=True)),
    )
    suite_idx, suite_sims = nearest(queries, cover.vectors)
    isolated_ids = [] if isolated is None else isolated["candidate_id"].to_list()
    isolated_vectors = [] if isolated is None else list(as_matrix(isolated["embedding"]))
    rows = group.to_dicts()
    decisions: list[dict] = []
    for start in range(0, len(rows), BLOCK):
        stop = min(start + BLOCK, len(rows))
        block = queries[start:stop]
        before = len(cover.new_rows)
        to_new = block @ queries[cover.new_rows].T if before else np.empty((stop - start, 0), dtype=np.float32)
        for i in range(start, stop):
            rep = rows[i]
            near_id = cover.ids[suite_idx[i]] if suite_idx[i] >= 0 else None
            near_sim = None if math.isnan(suite_sims[i]) else float(suite_sims[i])
            # the day's new cases: those of earlier blocks from the product, this block's one by one
            sims = np.concatenate([to_new[i - start], queries[cover.new_rows[before:]] @ queries[i]])
            if sims.size and (near_sim is None or sims.max() > near_sim):
                j = int(sims.argmax())
                near_id, near_sim = cover.new_ids[j], float(min(1.0, sims[j]))
            this_case = case_id(app, rep["text_hash"])
            if rep["text_hash"] in cover.hashes:  # the same text is already a case: exactly covered
                near_id, near_sim = cover.hashes[rep["text_hash"]], 1.0
            skip = _skip_reason(rep["input_text"], rep["signals"], rep["copies"], grading)
            recurs = None
            if skip and skip.startswith("isolated_") and isolated_vectors:
                seen = np.stack(isolated_vectors) @ queries[i]
                if seen.max() >= threshold:
                    recurs, skip = isolated_ids[int(seen.argmax())], None
            this_candidate = candidate_id(rep["day"], rep["trace_id"])
            if near_sim is not None and near_sim >= threshold:
                decision = f"duplicate_of:{near_id}"
                reason = f"similarity {near_sim:.3f} to {near_id} >= threshold {threshold:.3f}"
            elif skip:
                decision, reason = f"skip:{skip}", f"not a useful eval case: {skip.replace('_', ' ')}"
                if skip.startswith("isolated_"):
                    reason += " (promoted if a similar failure recurs)"
                    isolated_ids.append(this_candidate)
                    isolated_vectors.append(queries[i])
            else:
                decision = "promote"
                reason = (
                    "nothing to compare with"
                    if near_sim is None
                    else f"similarity {near_sim:.3f} to {near_id} < threshold {threshold:.3f}"
                )
                if recurs:
                    reason += f"; recurs: like isolated candidate {recurs}"
                cover.new_ids.append(this_case)
                cover.new_rows.append(i)
                cover.hashes[rep["text_hash"]] = this_case
            decisions.append(
                {
                    "candidate_id": this_candidate,
                    "case_id": this_case,
                    "nearest_case_id": near_id,
                    "nearest_similarity": None if near_sim is None else round(near_sim, 6),
                    "decision": decision,
                    "reason": reason,
                }
            )
    frame = group.with_columns(pl.DataFrame(decisions).to_struct("d")).unnest("d")
    frame = _covered_later(frame, queries, cover, threshold)
    covered_by = (
        pl.when(pl.col("decision") == "promote")
        .then(pl.col("case_id"))
        .when(pl.col("decision").str.starts_with("duplicate_of:"))
        .then(pl.col("decision").str.strip_prefix("duplicate_of:"))
    )
    stands_for = (
        frame.with_columns(covered_by.alias("covered_by"))
        .group_by("covered_by")
        .agg(pl.col("copies").sum().alias("stands_for"))
    )
    frame = (
        frame.with_columns(covered_by.alias("covered_by"))
        .join(stands_for, on="covered_by", how="left")
        .with_columns(
            # a case stands for its own copies and the day's inputs it covers; any other row for its own copies
            frequency=pl.when(pl.col("decision") == "promote").then("stands_for").otherwise("copies"),
            covered_similarity=pl.when(pl.col("decision") == "promote")
            .then(pl.lit(1.0))
            .when(pl.col("covered_by").is_not_null())
            .then("nearest_similarity"),
            novelty=(1 - pl.col("nearest_similarity").fill_null(0.0)).clip(0.0, 1.0).round(6),
            dedup_threshold=pl.lit(threshold),
            suite_size_before=pl.lit(suite.height, dtype=pl.Int64),
            in_suite_from=pl.when(pl.col("decision") == "promote").then(pl.lit(in_suite_from)),
            graded_run_id=pl.lit(run_id),
            difficulty=pl.lit(None, dtype=pl.Float64),
            difficulty_tries=pl.lit(None, dtype=pl.Int64),
            difficulty_source=pl.lit(NO_ENDPOINT),
        )
        # only what later days read keeps its vector: the cases and the isolated one-offs
        .with_columns(
            embedding=pl.when(
                (pl.col("decision") == "promote") | pl.col("decision").str.starts_with("skip:isolated_")
            ).then("embedding")
        )
    )
    return _weighed(frame, grading)


def _in_cover_order(group: pl.DataFrame, threshold: float) -> pl.DataFrame:
    """The order the greedy cover takes inputs in: the one that stands for most of the day's failing traces
    (its copies and every input within the threshold of it) first, then the most severe, then by trace id.

    Taking the densest input first is the classic greedy set cover: each case covers as much of the day
    as it can, so a family of paraphrases needs few cases and a far member still gets its own.
    """
    vectors = as_matrix(group["embedding"])
    copies = group["copies"].to_numpy().astype(np.float64)
    density = np.empty(len(copies))
    for start in range(0, len(copies), BLOCK):
        density[start : start + BLOCK] = (vectors[start : start + BLOCK] @ vectors.T >= threshold) @ copies
    return (
        group.with_columns(pl.Series("_density", density))
        .sort(["_density", "severity", "trace_id"], descending=[True, True, False])
        .drop("_density")
    )


def _covered_later(frame: pl.DataFrame, queries: np.ndarray, cover: _Cover, threshold: float) -> pl.DataFrame:
    """An isolated one-off that a case promoted after it (a recurrence) covers is a duplicate of that case."""
    waiting = frame.with_row_index("i").filter(pl.col("decision").str.starts_with("skip:isolated_"))
    if waiting.height == 0 or not cover.new_rows:
        return frame
    sims = queries[waiting["i"].to_numpy()] @ queries[cover.new_rows].T
    best = sims.argmax(axis=1)
    top = sims[np.arange(len(best)), best]
    updates = {
        i: (cover.new_ids[b], float(min(1.0, t)))
        for i, b, t in zip(waiting["i"].to_list(), best.tolist(), top.tolist(), strict=True)
        if t >= threshold
    }
    if not updates:
        return frame
    decision, reason = frame["decision"].to_list(), frame["reason"].to_list()
    near_id, near_sim = frame["nearest_case_id"].to_list(), frame["nearest_similarity"].to_list()
    for i, (case, sim) in updates.items():
        decision[i], near_id[i], near_sim[i] = f"duplicate_of:{case}", case, round(sim, 6)
        reason[i] = f"similarity {sim:.3f} to {case} >= threshold {threshold:.3f} (a later recurrence became the case)"
    return frame.with_columns(
        pl.Series("decision", decision),
        pl.Series("reason", reason),
        pl.Series("nearest_case_id", near_id, dtype=pl.String),
        pl.Series("nearest_similarity", near_sim, dtype=pl.Float64),
    )


def _weighed(frame: pl.DataFrame, grading: GradingConfig) -> pl.DataFrame:
    """frequency_score and weight from the factors in `frame` (difficulty left out where unknown)."""
    scored = frame.with_columns(
        frequency_score=pl.col("frequency").map_elements(
            lambda f: round(frequency_score(f, grading.frequency_saturation), 6), return_dtype=pl.Float64
        )
    )
    weights = [
        weight(n, s, f, d, grading)
        for n, s, f, d in zip(
            scored["novelty"], scored["severity"], scored["frequency_score"], scored["difficulty"], strict=True
        )
    ]
    return scored.with_columns(pl.Series("weight", weights, dtype=pl.Float64))


def with_difficulty(graded: pl.DataFrame, difficulty: pl.DataFrame, config: LoopConfig, run_id: str) -> pl.DataFrame:
    """`graded` with the measured difficulty of the candidates `difficulty` lists, and their weights again.

    `difficulty`: candidate_id, difficulty, difficulty_tries, difficulty_source (`difficulty.
    measure_difficulty`). A promoted candidate it does not list is unknown with NOT_MEASURED. Only the
    rows graded by `run_id` change: a decision kept from an earlier run keeps its row as it was.
    """
    lacking = [c for c in ("candidate_id", "difficulty", "difficulty_source") if c not in difficulty.columns]
    if lacking:
        raise ValueError(f"with_difficulty: difficulty frame lacks columns {lacking}")
    if "difficulty_tries" not in difficulty.columns:
        difficulty = difficulty.with_columns(difficulty_tries=pl.lit(None, dtype=pl.Int64))
    measured = difficulty.select(
        "candidate_id",
        pl.col("difficulty").cast(pl.Float64).fill_nan(None).alias("m_difficulty"),
        pl.col("difficulty_tries").cast(pl.Int64).alias("m_tries"),
        pl.col("difficulty_source").fill_null(NOT_MEASURED).alias("m_source"),
    ).unique("candidate_id", keep="last")
    fresh = graded.filter(pl.col("graded_run_id") == run_id)
    joined = fresh.join(measured, on="candidate_id", how="left")
    listed = pl.col("m_source").is_not_null()
    joined = joined.with_columns(
        difficulty=pl.when(listed).then("m_difficulty").otherwise("difficulty"),
        difficulty_tries=pl.when(listed).then("m_tries").otherwise("difficulty_tries"),
        difficulty_source=pl.when(listed)
        .then("m_source")
        .when(pl.col("decision") == "promote")
        .then(pl.lit(NOT_MEASURED))
        .otherwise("difficulty_source"),
    ).drop("m_difficulty", "m_tries", "m_source")
    kept = graded.filter(pl.col("graded_run_id") != run_id)
    return conform(
        "graded_candidates", pl.concat([kept, conform("graded_candidates", _weighed(joined, config.grading))])
    )
