"""GRADE: how novel, severe, frequent and hard each representative is, and whether it joins the suite.

The weight (DESIGN decision 7) is a weighted mean of the factors that are known:

    weight = sum(w_f * f for f in known factors) / sum(w_f for f in known factors)

    novelty   = 1 - cosine similarity to the nearest earlier case of the same app (1 with none)
    severity  = 1 - prod(1 - signal weight) over the trace's failure signals (scoring)
    frequency = log(1 + traces in the cluster) / log(1 + frequency_saturation), capped at 1
    difficulty= failure rate over N re-tries against a model endpoint (difficulty.measure_difficulty,
                failed / answered tries); unknown (null) without one, or when no try could be
                decided, and then left out of the mean instead of invented

A common pattern already well covered by the suite has low novelty, so it weighs less than a rare
one nobody has seen; a common new pattern weighs most.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

import numpy as np
import polars as pl

from loop_assets.config import GradingConfig, LoopConfig
from loop_assets.dedup.embedding import as_matrix
from loop_assets.dedup.suite_search import nearest
from loop_assets.tables import conform, empty

NO_ENDPOINT = "unknown: no model endpoint configured"
NOT_MEASURED = "unknown: not re-tried (only new candidates are)"


def dedup_threshold(suite_size: int, schedule: Sequence[tuple[int, float]]) -> float:
    """Similarity threshold for a suite of `suite_size` active cases: linear between points, flat outside."""
    sizes = [s for s, _ in schedule]
    values = [t for _, t in schedule]
    return round(float(np.interp(suite_size, sizes, values)), 6)


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


def _difficulty_by_candidate(difficulty: pl.DataFrame) -> dict[str, tuple[float | None, int | None, str]]:
    """candidate_id -> (difficulty, tries, source)."""
    lacking = [c for c in ("candidate_id", "difficulty", "difficulty_source") if c not in difficulty.columns]
    if lacking:
        raise ValueError(f"grade_candidates: difficulty frame lacks columns {lacking}")
    tries = difficulty["difficulty_tries"] if "difficulty_tries" in difficulty.columns else [None] * difficulty.height
    return {
        cid: (None if d is None or math.isnan(d) else float(d), None if t is None else int(t), source or NOT_MEASURED)
        for cid, d, t, source in zip(
            difficulty["candidate_id"], difficulty["difficulty"], tries, difficulty["difficulty_source"], strict=True
        )
    }


def _skip_reason(input_text: str | None, signals: list[str], frequency: int, grading: GradingConfig) -> str | None:
    """Why a candidate makes no useful eval case, if it does not."""
    if not (input_text or "").strip():
        return "empty_input"
    if signals and grading.skip_when_only and set(signals) <= set(grading.skip_when_only):
        return "only_" + "+".join(sorted(set(signals)))
    if frequency < 2 and signals and set(signals) <= set(grading.require_recurrence):
        return "isolated_" + "+".join(sorted(set(signals)))
    return None


def grade_candidates(
    representatives: pl.DataFrame,
    suite: pl.DataFrame,
    config: LoopConfig,
    run_id: str,
    isolated: pl.DataFrame | None = None,
    difficulty: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Grade one day's representatives against the suite of earlier days.

    `representatives`: trace_id, day, app, cluster_id, cluster_size, text_hash, embedding, severity,
    input_text, signals (list of scorer names). `suite`: case_id, app, text_hash, embedding of the
    active cases promoted from earlier days. `isolated`: candidate_id, app, embedding of earlier
    candidates skipped as isolated; one at least `threshold` similar makes a candidate recurring.

    Decisions are greedy in a fixed order (largest cluster, then most severe, then trace_id): a
    candidate is compared with the earlier suite and with the candidates of the same day promoted
    before it, so two near-identical representatives of one day promote once.

    `difficulty`: candidate_id, difficulty, difficulty_tries, difficulty_source (`difficulty.
    measure_difficulty`), used in the weight. Without it difficulty is unknown (NO_ENDPOINT); a
    candidate it does not list is unknown with NOT_MEASURED. Decisions never depend on difficulty.
    """
    if representatives.height == 0:
        return empty("graded_candidates")
    grading = config.grading
    measured = None if difficulty is None else _difficulty_by_candidate(difficulty)
    threshold = dedup_threshold(suite.height, config.dedup.threshold_schedule)
    ordered = representatives.sort(
        ["cluster_size", "severity", "trace_id"], descending=[True, True, False], maintain_order=True
    )
    rows: list[dict] = []
    for (app,), group in ordered.group_by("app", maintain_order=True):
        app_suite = suite.filter(pl.col("app") == app)
        suite_ids = app_suite["case_id"].to_list()
        suite_hashes = dict(zip(app_suite["text_hash"], suite_ids, strict=True))
        queries = as_matrix(group["embedding"])
        idx, sims = nearest(queries, as_matrix(app_suite["embedding"]))
        accepted_ids: list[str] = []
        accepted_vectors: list[np.ndarray] = []
        app_isolated = isolated.filter(pl.col("app") == app) if isolated is not None else None
        isolated_ids = [] if app_isolated is None else app_isolated["candidate_id"].to_list()
        isolated_vectors = [] if app_isolated is None else list(as_matrix(app_isolated["embedding"]))
        for i, rep in enumerate(group.iter_rows(named=True)):
            near_id = suite_ids[idx[i]] if idx[i] >= 0 else None
            near_sim = None if math.isnan(sims[i]) else float(sims[i])
            if accepted_vectors:
                today = np.stack(accepted_vectors) @ queries[i]
                j = int(today.argmax())
                if near_sim is None or today[j] > near_sim:
                    near_id, near_sim = accepted_ids[j], float(min(1.0, today[j]))
            this_case = case_id(app, rep["text_hash"])
            skip = _skip_reason(rep["input_text"], rep["signals"], rep["cluster_size"], grading)
            recurs = None
            if skip and skip.startswith("isolated_") and isolated_vectors:
                seen = np.stack(isolated_vectors) @ queries[i]
                if seen.max() >= threshold:
                    recurs, skip = isolated_ids[int(seen.argmax())], None
            if rep["text_hash"] in suite_hashes or this_case in accepted_ids:
                near_id = suite_hashes.get(rep["text_hash"], this_case)
                near_sim = 1.0
            novelty = 1.0 if near_sim is None else min(1.0, max(0.0, 1.0 - near_sim))
            freq = frequency_score(rep["cluster_size"], grading.frequency_saturation)
            this_candidate = candidate_id(rep["day"], rep["trace_id"])
            hard, tries, hard_source = (
                (None, None, NO_ENDPOINT)
                if measured is None
                else measured.get(this_candidate, (None, None, NOT_MEASURED))
            )
            w = weight(novelty, rep["severity"], freq, hard, grading)
            if near_sim is not None and near_sim >= threshold:
                decision = f"duplicate_of:{near_id}"
                reason = f"similarity {near_sim:.3f} to {near_id} >= threshold {threshold:.3f}"
            elif skip:
                decision, reason = f"skip:{skip}", f"not a useful eval case: {skip.replace('_', ' ')}"
                if skip.startswith("isolated_"):
                    reason += " (promoted if a similar failure recurs)"
                    isolated_ids.append(candidate_id(rep["day"], rep["trace_id"]))
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
                accepted_ids.append(this_case)
                accepted_vectors.append(queries[i])
            rows.append(
                {
                    **{k: rep[k] for k in ("trace_id", "day", "app", "cluster_id", "text_hash", "embedding")},
                    "candidate_id": this_candidate,
                    "case_id": this_case,
                    "nearest_case_id": near_id,
                    "nearest_similarity": None if near_sim is None else round(near_sim, 6),
                    "dedup_threshold": threshold,
                    "suite_size_before": suite.height,
                    "novelty": round(novelty, 6),
                    "severity": rep["severity"],
                    "frequency": rep["cluster_size"],
                    "frequency_score": round(freq, 6),
                    "difficulty": hard,
                    "difficulty_tries": tries,
                    "difficulty_source": hard_source,
                    "weight": w,
                    "decision": decision,
                    "reason": reason,
                    "graded_run_id": run_id,
                }
            )
    frame = pl.DataFrame(rows, schema_overrides={"embedding": pl.List(pl.Float32)}, infer_schema_length=None)
    return conform("graded_candidates", frame)
