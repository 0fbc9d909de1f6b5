"""`eval-loop bench`: the loop at production scale, stage by stage, against naive and library baselines.

What it does, in one process, on one fresh warehouse file (`data/bench/<traces>/warehouse.duckdb`):

1. generates one day of traffic (`sample_traffic.write_bulk_day`: default 100,000 traces, about 5%
   failing, exact repeats and paraphrases as the sample has them), kept between runs of the same size;
2. runs the loop's core steps as the Dagster assets do (same functions, same warehouse writes):
   ingest, score, embed (exact-duplicate collapse, cache, encoder), cluster, grade, promote, and
   prints per stage wall time, rows in and out, rows per second, texts embedded vs served from the
   cache and peak resident memory (sampled every 20 ms during the stage);
3. re-runs the same day on the same warehouse (the cache and idempotency figure);
4. runs the baselines on the same data, each against eval-loop's own stage as `--repeats` interleaved
   repetitions (baseline, eval-loop, baseline, eval-loop, ...), models loaded beforehand on both sides:
   the ratio reported is the median of the per-repetition ratios with their min and max, and the load
   average before and after (two sides timed at different moments of a busy machine are no ratio):
   - naive: every failing trace embedded with torch fp32 (no exact-duplicate collapse, no cache),
     HDBSCAN on the raw 384-d vectors, per app as the loop clusters;
   - SemHash (`semhash`) deduplicating the day's failure texts against the suite, with
     all-MiniLM-L6-v2 loaded by sentence-transformers (torch fp32) passed in as its model (its default
     static model, potion-base-8M, would come from a hub: not available offline);
   - BERTopic-style UMAP (5-d, cosine) + HDBSCAN on the same embeddings the loop clusters;
5. measures each embedding backend (torch fp32, onnx int8, openvino int8, openvino_static): texts/s as
   interleaved repetitions, and how often its dedup decisions agree with torch's on the day's texts and
   on real traffic (`--real-data`, default ../shared/realdata; see `backend_choice.decision_agreement`);
6. says which CPU it ran on and the features int8 inference depends on (AVX2, AVX-512, AVX-512 VNNI,
   AVX-VNNI, AMX) and what `embedding.backend: auto` chose here (`dedup.backend_choice`);
7. writes `data/bench/bench-<traces>.json` and `.md` and prints the tables.

Baselines that would take more than a few minutes run on a sample (`--baseline-cap` texts,
`--hdbscan-cap` points) and are extrapolated (linearly for embedding, quadratically for raw HDBSCAN);
the tables say so. Timings are measurements of this machine, never asserted by tests.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from loop_assets.dedup.backend_choice import MIN_AGREEMENT, qualifies

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

BENCH_DAY = date(2026, 11, 16)
DEFAULT_TRACES = 100_000
DEFAULT_REPEATS = 3
"""Interleaved repetitions behind every ratio (median and min-max reported)."""
DEFAULT_BASELINE_CAP = 500
"""Texts the embedding sides of a ratio embed at most per repetition (scaled linearly to the day)."""
DEFAULT_HDBSCAN_CAP = 5_000
"""Points the naive baseline's HDBSCAN on raw 384-d vectors clusters at most per repetition (more: scaled
by (n/sample)^2; 10,000 points take about 70 s on 2 cores)."""
DEFAULT_SPEED_TEXTS = 200
"""Texts each backend embeds per interleaved speed repetition."""
DEFAULT_REAL_CAP = 600
"""Distinct real texts (../shared/realdata) the backends' agreement is measured on."""
DEFAULT_REAL_DATA = Path("../shared/realdata")
MAX_TRACES = 1_000_000
STAGES = ("ingest", "score", "embed", "cluster", "grade", "promote")
TARGETS = {
    "first_run_100k_s": "100,000-trace day, first run end to end < 120 s",
    "first_run_1m_s": "1,000,000-trace day, first run end to end < 120 s",
    "ingest_score_traces_per_s": "ingest + score >= 100,000 traces/s",
    "cluster_50k_s": "clustering 50,000 failures < 30 s (figure: this run's failures, scaled linearly to 50,000)",
    "rerun_share": "same-day re-run embeds nothing and takes < 10% of the first run",
    "embedding_speedup": "default backend >= 4x torch fp32 texts/s (median interleaved ratio) with >= 99% decision "
    "agreement on generated and real text",
    "peak_rss_1m_gib": "1,000,000-trace day completes with peak memory < 4 GiB (the first run's peak)",
    "faster_than_baselines": "eval-loop faster than each baseline on its own stage (median interleaved ratio > 1)",
}

BACKEND_FIELDS = ("texts_per_s", "agreement", "texts")
# Fields every bench JSON has (the CI smoke test checks them, not the timings).
RATIO_FIELDS = ("ratio", "ratio_min", "ratio_max", "ratios", "repeats", "load_average")
STAGE_FIELDS = ("stage", "seconds", "rows_in", "rows_out", "rows_per_s", "embedded", "cached", "peak_rss_mib")
REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    "": (
        "machine",
        "params",
        "traffic",
        "first_run",
        "rerun",
        "baselines",
        "backends",
        "default_backend",
        "recommended_backend",
        "targets",
    ),
    "machine": ("cpu", "cpu_features", "cores", "memory_gib", "python", "platform", "load_average_1m"),
    "params": ("traces", "seed", "day", "backend", "baseline_cap", "hdbscan_cap", "repeats"),
    "traffic": ("traces", "lines", "failures", "failure_rate", "distinct_failure_texts", "generate_seconds", "bytes"),
    "first_run": ("stages", "total_seconds", "peak_rss_mib"),
    "rerun": ("stages", "total_seconds", "peak_rss_mib", "embedded", "share_of_first_run"),
    "baselines": ("per_record_ingest", "naive", "semhash", "umap_hdbscan"),
    "baselines.per_record_ingest": ("seconds", "sampled", "eval_loop_seconds", *RATIO_FIELDS),
    "baselines.naive": ("embed_seconds", "cluster_seconds", "seconds", "sampled", "eval_loop_seconds", *RATIO_FIELDS),
    "baselines.semhash": ("seconds", "model", "sampled", "eval_loop_seconds", *RATIO_FIELDS),
    "baselines.umap_hdbscan": ("seconds", "sampled", "eval_loop_seconds", *RATIO_FIELDS),
    "backends": ("torch", "onnx", "openvino", "openvino_static"),
    "targets": tuple(TARGETS),
}


def missing_fields(result: dict[str, Any]) -> list[str]:
    """Dotted names of the REQUIRED_FIELDS the result lacks (and of stage rows lacking STAGE_FIELDS)."""
    missing = []
    for section, names in REQUIRED_FIELDS.items():
        node: Any = result
        for part in section.split(".") if section else []:
            node = node.get(part, {}) if isinstance(node, dict) else {}
        missing += [
            f"{section + '.' if section else ''}{n}" for n in names if not isinstance(node, dict) or n not in node
        ]
    for run in ("first_run", "rerun"):
        for i, row in enumerate(result.get(run, {}).get("stages", [])):
            missing += [f"{run}.stages[{i}].{f}" for f in STAGE_FIELDS if f not in row]
        if run in result and [r.get("stage") for r in result[run].get("stages", [])] != list(STAGES):
            missing.append(f"{run}.stages (expected {list(STAGES)})")
    for name, row in result.get("backends", {}).items():
        missing += [f"backends.{name}.{f}" for f in BACKEND_FIELDS if f not in row]
    return missing


# --------------------------------------------------------------------------------------------------
# Measuring
# --------------------------------------------------------------------------------------------------


def _rss_mib() -> float:
    """Resident memory of this process and its children (the ingest's parsing workers), summed."""
    import psutil

    me = psutil.Process()
    total = me.memory_info().rss
    for child in me.children(recursive=True):
        with contextlib.suppress(psutil.Error):  # ended between listing and reading
            total += child.memory_info().rss
    return total / 2**20


class RssSampler:
    """Peak resident memory of this process and its worker processes, sampled every `interval` seconds."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.peak = _rss_mib()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, _rss_mib())

    def reset(self) -> None:
        """Start a new stage: `read` gives the peak since this call."""
        self.overall = max(getattr(self, "overall", 0.0), self.peak)
        self.peak = _rss_mib()

    def read(self) -> float:
        self.peak = max(self.peak, _rss_mib())
        return self.peak

    def process_peak(self) -> float:
        """The peak of the whole process so far (never reset; the kernel's high-water mark included)."""
        import resource

        kernel = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        return max(getattr(self, "overall", 0.0), self.read(), kernel)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class Stage:
    stage: str
    seconds: float = 0.0
    rows_in: int = 0
    rows_out: int = 0
    rows_per_s: float = 0.0
    embedded: int | None = None
    cached: int | None = None
    peak_rss_mib: float = 0.0
    note: str = ""


@dataclass
class TimedEncoder:
    """Wraps an encoder, adding up texts and seconds per call."""

    encoder: Callable[[list[str]], np.ndarray]
    texts: int = 0
    seconds: float = 0.0
    calls: list[float] = field(default_factory=list)

    def __call__(self, texts: list[str]) -> np.ndarray:
        started = time.perf_counter()
        out = self.encoder(texts)
        elapsed = time.perf_counter() - started
        self.texts += len(texts)
        self.seconds += elapsed
        self.calls.append(elapsed)
        return out


class _Stages:
    def __init__(self, sampler: RssSampler, log: Callable[[str], None] | None = None) -> None:
        self.sampler = sampler
        self.rows: list[Stage] = []
        self.log = log

    @contextmanager
    def stage(self, name: str) -> Iterator[Stage]:
        row = Stage(name)
        self.sampler.reset()
        started = time.perf_counter()
        yield row
        row.seconds = round(time.perf_counter() - started, 3)
        row.rows_per_s = round(row.rows_in / row.seconds, 1) if row.seconds > 0 else 0.0
        row.peak_rss_mib = round(self.sampler.read(), 1)
        self.rows.append(row)
        if self.log is not None:
            self.log(f"  {name}: {row.seconds:,.1f} s, {row.rows_in:,} rows in, peak RSS {row.peak_rss_mib:,.0f} MiB")


# --------------------------------------------------------------------------------------------------
# The loop, stage by stage (the same core functions and warehouse writes as the Dagster assets)
# --------------------------------------------------------------------------------------------------


@dataclass
class LoopRun:
    stages: list[Stage]
    texts: pl.DataFrame  # failing_texts of every day
    vectors: pl.DataFrame  # text_hash -> embedding, embedding_source
    canonical: pl.DataFrame  # the texts the loop embedded or served from cache (distinct per day, app)
    clusters: pl.DataFrame
    model: str
    encoder: TimedEncoder

    @property
    def total_seconds(self) -> float:
        return round(sum(s.seconds for s in self.stages), 3)

    def seconds_of(self, *names: str) -> float:
        return sum(s.seconds for s in self.stages if s.stage in names)


def run_loop(
    incoming: Path,
    warehouse: Path,
    config: Any,
    encoder: Any,
    run_id: str,
    sampler: RssSampler,
    log: Callable[[str], None] | None = None,
) -> LoopRun:
    from loop_assets.capture import ingest as capture
    from loop_assets.capture import scoring
    from loop_assets.capture.ingest_plan import plan_from_warehouse, store_ingest
    from loop_assets.dedup.embedding import embed_with_cache
    from loop_assets.dedup.embedding_cache import cached_embeddings, store_embeddings
    from loop_assets.dedup.failure_clusters import cluster_failures, read_failing_texts
    from loop_assets.grade.grade_day import grade_day
    from loop_assets.promote.promotion import promote_day
    from loop_assets.tables import empty
    from loop_assets.warehouse import connect, ensure_tables, query, read_partitions, replace_partitions

    timed = TimedEncoder(encoder)
    model = encoder.model_id
    stages = _Stages(sampler, log)
    con = connect(warehouse)
    try:
        ensure_tables(con)
        with stages.stage("ingest") as row:
            # as the raw_traces asset: plan (unchanged days and files are not read again), read, write
            days = [BENCH_DAY]
            plan = plan_from_warehouse(con, incoming, days, config)
            if plan.read_days:
                result = capture.ingest(
                    incoming, config.ingest, run_id, days=set(plan.read_days), skip_files=plan.skip_files
                )
                store_ingest(con, plan, result, run_id)
                del result
            manifest = read_partitions(con, "ingest_manifest", days)
            row.rows_in = int(manifest.unique("source_file")["file_records"].sum() or 0)
            row.rows_out = query(con, "SELECT count(*) AS n FROM raw_traces WHERE day = ?", [BENCH_DAY])["n"][0]
            quarantined = query(
                con, "SELECT count(*) AS n FROM quarantined_records WHERE partition_day = ?", [BENCH_DAY]
            )["n"][0]
            row.note = f"{quarantined} quarantined" + (
                "; day unchanged since read: left as it is" if plan.reused_days else ""
            )
        with stages.stage("score") as row:
            raw = read_partitions(con, "raw_traces", days, columns=scoring.INPUT_COLUMNS)  # as the asset, no judge
            scored = pl.concat([scoring.score_traces(raw.filter(pl.col("day") == d), config, run_id) for d in days])
            replace_partitions(con, "scored_traces", days, {"scored_traces": scored}, run_id)
            row.rows_in, row.rows_out = raw.height, int(scored["is_failure"].sum())
            row.note = "rows out = failures"
        del raw, scored
        with stages.stage("embed") as row:
            texts = read_failing_texts(con, days, config)
            canonical = texts.unique(["day", "app", "text_hash"], keep="first", maintain_order=True)
            cached = cached_embeddings(con, model, canonical["text_hash"])
            embedded = embed_with_cache(canonical, cached, timed, model)
            store_embeddings(con, embedded.new_cache_rows)
            row.rows_in, row.rows_out = texts.height, embedded.vectors.height
            row.embedded, row.cached = embedded.embedded, embedded.cached
            row.note = f"{texts.height - canonical.height} exact duplicates collapsed"
        with stages.stage("cluster") as row:
            clusters = pl.concat(
                [empty("failure_clusters")]
                + [
                    cluster_failures(texts.filter(pl.col("day") == d), embedded.vectors, config, model, run_id)
                    for d in days
                ]
            )
            replace_partitions(con, "failure_clusters", days, {"failure_clusters": clusters}, run_id)
            reps = int(clusters["is_representative"].sum())
            row.rows_in, row.rows_out = texts.height, reps
            n_clusters = clusters.filter(pl.col("cluster_id") >= 0).select(pl.struct("day", "cluster_id").n_unique())
            row.note = f"{n_clusters.item()} clusters; rows out = representatives"
        with stages.stage("grade") as row:
            graded_rows = 0
            promoted = 0
            for d in days:
                graded = grade_day(con, d, config, run_id)
                replace_partitions(con, "graded_candidates", [d], {"graded_candidates": graded}, run_id)
                row.rows_in += graded.height
                graded_rows += graded.height
                promoted += int((graded["decision"] == "promote").sum()) if graded.height else 0
            row.rows_out = promoted
            row.note = "rows out = promoted"
        with stages.stage("promote") as row:
            row.rows_in = graded_rows
            for d in days:
                cases = promote_day(con, d, config, run_id, model)
                replace_partitions(con, "eval_suite", [d], {"eval_suite": cases}, run_id)
                row.rows_out += cases.height
    finally:
        con.close()
    return LoopRun(stages.rows, texts, embedded.vectors, canonical, clusters, model, timed)


# --------------------------------------------------------------------------------------------------
# Baselines
# --------------------------------------------------------------------------------------------------


def _sample(frame: pl.DataFrame, cap: int, seed: int) -> tuple[pl.DataFrame, bool]:
    if frame.height <= cap:
        return frame, False
    return frame.sample(cap, seed=seed).sort("ts", "trace_id"), True


def _hdbscan(vectors: np.ndarray, min_cluster_size: int, min_samples: int | None) -> np.ndarray:
    import hdbscan

    if vectors.shape[0] < min_cluster_size:
        return np.full(vectors.shape[0], -1)
    return hdbscan.HDBSCAN(
        min_cluster_size=min_cluster_size, min_samples=min_samples, metric="euclidean", core_dist_n_jobs=1
    ).fit_predict(vectors)


def _loop_embed(canonical: pl.DataFrame, texts: pl.DataFrame, encoder: Any, cap: int, seed: int) -> Callable[[], float]:
    """The loop's embedding of a day, cache cold, model loaded: collapse exact duplicates, encode the distinct
    texts (at most `cap` of them, scaled linearly to all)."""
    sample, sampled = _sample(canonical, cap, seed)
    batch = sample["text"].to_list()
    scale = canonical.height / max(sample.height, 1) if sampled else 1.0

    def run() -> float:
        started = time.perf_counter()
        texts.unique(["day", "app", "text_hash"], keep="first", maintain_order=True)
        collapse = time.perf_counter() - started
        started = time.perf_counter()
        if batch:
            encoder(batch)
        return collapse + (time.perf_counter() - started) * scale

    return run


def _loop_cluster(texts: pl.DataFrame, vectors: pl.DataFrame, config: Any, model: str) -> Callable[[], float]:
    """The loop's clustering of the whole day (PCA, HDBSCAN per app, representatives) on its own vectors."""
    from loop_assets.dedup.failure_clusters import cluster_failures

    def run() -> float:
        started = time.perf_counter()
        for d in texts["day"].unique(maintain_order=True):
            cluster_failures(texts.filter(pl.col("day") == d), vectors, config, model, "bench-ratio")
        return time.perf_counter() - started

    return run


def _ratio_figures(runs: dict[str, Any], baseline: str, ours: str) -> dict[str, Any]:
    """The interleaved measurement as figures: medians of each side, and the median per-repetition ratio
    baseline / eval-loop with its min and max."""
    from loop_assets.dedup.backend_choice import paired_ratios, spread

    secs = runs["seconds"]
    ratios = paired_ratios(secs[baseline], secs[ours])
    return {
        "seconds": spread(secs[baseline])["median"],
        "eval_loop_seconds": spread(secs[ours])["median"],
        "ratio": ratios["median"],
        "ratio_min": ratios["min"],
        "ratio_max": ratios["max"],
        "ratios": ratios["values"],
        "repeats": runs["repeats"],
        "load_average": runs["load_average"],
    }


def naive_baseline(
    first: LoopRun, loop_encoder: Any, config: Any, model_path: str, cap: int, hdbscan_cap: int, seed: int, repeats: int
) -> dict[str, Any]:
    """Every failing trace embedded with torch fp32, HDBSCAN on raw 384-d vectors per app, against the loop's
    embed (exact-duplicate collapse, its backend) + cluster on the same day, as interleaved repetitions."""
    from loop_assets.dedup.backend_choice import interleaved, load_encoders, spread
    from loop_assets.dedup.embedding import as_matrix

    texts = first.texts
    sample, sampled = _sample(texts, cap, seed)
    loaded, load_seconds = load_encoders(model_path, ["torch"], config.embedding.batch_size)  # loaded, run once
    torch_encoder = loaded["torch"]
    # HDBSCAN's time hardly depends on the last bits of the vectors: it clusters the loop's own vectors of
    # every failing trace (duplicates included, as the naive pipeline has them), up to hdbscan_cap of them.
    cluster_sample, cluster_sampled = _sample(texts, hdbscan_cap, seed)
    points = cluster_sample.select("app", "text_hash").join(
        first.vectors.select("text_hash", "embedding"), on="text_hash", how="left", maintain_order="left"
    )
    groups = [as_matrix(g["embedding"]) for _, g in points.group_by("app", maintain_order=True)]
    embed_scale = texts.height / max(sample.height, 1) if sampled else 1.0
    cluster_scale = (texts.height / max(cluster_sample.height, 1)) ** 2 if cluster_sampled else 1.0
    parts: dict[str, list[float]] = {"embed": [], "cluster": [], "encode_texts_per_s": []}

    def naive() -> float:
        started = time.perf_counter()
        if sample.height:
            torch_encoder(sample["text"].to_list())
        encode = time.perf_counter() - started
        started = time.perf_counter()
        for matrix in groups:
            _hdbscan(matrix, config.clustering.min_cluster_size, config.clustering.min_samples)
        cluster = time.perf_counter() - started
        parts["embed"].append(encode * embed_scale)
        parts["cluster"].append(cluster * cluster_scale)
        parts["encode_texts_per_s"].append(sample.height / encode if encode > 0 else float("nan"))
        return encode * embed_scale + cluster * cluster_scale

    embed = _loop_embed(first.canonical, texts, loop_encoder, cap, seed)
    cluster = _loop_cluster(texts, first.vectors, config, first.model)
    runs = interleaved([("naive", naive), ("eval-loop", lambda: embed() + cluster())], repeats)
    return {
        **_ratio_figures(runs, "naive", "eval-loop"),
        "embed_seconds": spread(parts["embed"])["median"],
        "embed_texts": texts.height,
        "encode_texts_per_s": spread(parts["encode_texts_per_s"])["median"],
        "model_load_seconds": load_seconds["torch"],
        "cluster_seconds": spread(parts["cluster"])["median"],
        "cluster_points": cluster_sample.height,
        "eval_loop_first_run_seconds": round(first.seconds_of("embed", "cluster"), 3),
        "sampled": (
            f"embedded {sample.height:,} of {texts.height:,} failing traces, scaled linearly; HDBSCAN on "
            f"{cluster_sample.height:,} of {texts.height:,} points"
            + (", scaled by (n/sample)^2" if cluster_sampled else "")
            + f"; eval-loop: {min(cap, first.canonical.height):,} of its {first.canonical.height:,} distinct "
            "texts embedded, scaled linearly"
            if sampled or cluster_sampled or first.canonical.height > cap
            else "no: every failing trace"
        ),
        "note": "model loading left out of both sides (a long-running worker loads once); cache cold",
    }


def semhash_baseline(
    first: LoopRun,
    loop_encoder: Any,
    warehouse: Path,
    suite_texts: list[str],
    config: Any,
    model_path: str,
    threshold: float,
    cap: int,
    seed: int,
    repeats: int,
) -> dict[str, Any]:
    """SemHash indexing the suite and deduplicating the day's failure texts against it, against the loop's
    embed + grade of the same day, as interleaved repetitions."""
    from semhash import SemHash
    from sentence_transformers import SentenceTransformer

    from loop_assets.dedup.backend_choice import interleaved
    from loop_assets.grade.grade_day import grade_day
    from loop_assets.warehouse import connect

    texts = first.texts["text"].to_list()
    rng = np.random.default_rng(seed)
    sampled = len(texts) > cap
    sample = [texts[i] for i in sorted(rng.choice(len(texts), cap, replace=False))] if sampled else texts
    started = time.perf_counter()
    model = SentenceTransformer(model_path, device="cpu")
    load_seconds = time.perf_counter() - started
    found: list[int] = []

    def semhash() -> float:
        started = time.perf_counter()
        index = SemHash.from_records(suite_texts or ["(empty suite)"], model=model)
        result = index.deduplicate(sample, threshold=threshold)
        found.append(len(result.filtered))
        work = time.perf_counter() - started
        return work * len(texts) / max(len(sample), 1) if sampled else work

    embed = _loop_embed(first.canonical, first.texts, loop_encoder, cap, seed)
    with connect(warehouse) as con:

        def grade() -> float:
            started = time.perf_counter()
            grade_day(con, BENCH_DAY, config, "bench-ratio")
            return time.perf_counter() - started

        runs = interleaved([("semhash", semhash), ("eval-loop", lambda: embed() + grade())], repeats)
    return {
        **_ratio_figures(runs, "semhash", "eval-loop"),
        "model": "all-MiniLM-L6-v2 via sentence-transformers (torch fp32), passed to SemHash.from_records(model=...)",
        "model_load_seconds": round(load_seconds, 3),
        "texts": len(texts),
        "suite_cases": len(suite_texts),
        "threshold": threshold,
        "duplicates_found": found[-1] if found else 0,
        "eval_loop_first_run_seconds": round(first.seconds_of("embed", "grade"), 3),
        "sampled": f"{len(sample):,} of {len(texts):,} failure texts, scaled linearly" if sampled else "no",
    }


def umap_baseline(first: LoopRun, config: Any, cap: int, seed: int, repeats: int) -> dict[str, Any]:
    """BERTopic-style: UMAP to 5-d (cosine) + HDBSCAN per app on the vectors the loop clusters, against the
    loop's clustering of the same day, as interleaved repetitions."""
    import umap

    from loop_assets.dedup.backend_choice import interleaved
    from loop_assets.dedup.embedding import as_matrix

    rows = first.canonical.join(first.vectors.select("text_hash", "embedding"), on="text_hash", how="left")
    sample, sampled = _sample(rows, cap, seed)
    matrices = [as_matrix(g["embedding"]) for _, g in sample.group_by("app", maintain_order=True)]
    warm = np.random.default_rng(0).normal(size=(64, 384)).astype(np.float32)
    umap.UMAP(n_components=5, metric="cosine", n_neighbors=15).fit_transform(warm)  # numba compiles once

    def run_umap() -> float:
        started = time.perf_counter()
        for matrix in matrices:
            if matrix.shape[0] <= 16:
                continue
            reduced = umap.UMAP(n_components=5, metric="cosine", n_neighbors=15, min_dist=0.0).fit_transform(matrix)
            _hdbscan(reduced, config.clustering.min_cluster_size, config.clustering.min_samples)
        measured = time.perf_counter() - started
        return measured * rows.height / max(sample.height, 1) if sampled else measured

    runs = interleaved(
        [("umap", run_umap), ("eval-loop", _loop_cluster(first.texts, first.vectors, config, first.model))], repeats
    )
    return {
        **_ratio_figures(runs, "umap", "eval-loop"),
        "points": rows.height,
        "eval_loop_first_run_seconds": round(first.seconds_of("cluster"), 3),
        "sampled": f"{sample.height:,} of {rows.height:,} points, scaled linearly" if sampled else "no",
        "note": "numba compilation excluded (warmed up on 64 points first)",
    }


INGEST_BASELINE_LINES = 100_000
"""Lines of the day each side of the ingest ratio reads per repetition (scaled linearly to a bigger day):
enough that starting the worker processes, which both sides pay, does not hide the parse."""


def ingest_baseline(incoming: Path, config: Any, lines: int, repeats: int) -> dict[str, Any]:
    """The per-record parse (`ingest.fast_lines` off: every line decoded by the standard library and read
    the way any line can be) against the loop's ingest, on the day's first `lines` lines, as interleaved
    repetitions; both parse in the same worker processes and return the same rows."""
    import shutil
    import tempfile

    from loop_assets.capture import ingest as capture
    from loop_assets.dedup.backend_choice import interleaved

    source = sorted(p for p in Path(incoming).iterdir() if p.is_file())[0]
    folder = Path(tempfile.mkdtemp(prefix="eval-loop-ingest-"))
    try:
        total = 0  # the day's lines, counted while the first `lines` of them are copied
        with source.open("rb") as src, (folder / source.name).open("wb") as dst:
            for total, text in enumerate(src, start=1):
                if total <= lines:
                    dst.write(text)
        taken = min(lines, total)
        scale = total / max(taken, 1)

        def read(fast: bool) -> Callable[[], float]:
            ingest = config.ingest.model_copy(update={"fast_lines": fast})

            def run() -> float:
                started = time.perf_counter()
                capture.ingest(folder, ingest, "bench-ingest")
                return (time.perf_counter() - started) * scale

            return run

        runs = interleaved([("per-record", read(False)), ("eval-loop", read(True))], repeats)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return {
        **_ratio_figures(runs, "per-record", "eval-loop"),
        "sampled": f"{taken:,} of {total:,} lines, scaled linearly" if taken < total else "no",
        "note": "ingest only (no warehouse write); worker processes started on each side",
    }


def real_texts(folder: Path, config: Any, cap: int, seed: int) -> pl.DataFrame:
    """app, ts, text of real traffic (e.g. ../shared/realdata) as the loop compares texts: every trace read by
    the loop's ingest, its input with its conversation normalised as a failure's would be, one row per
    distinct text, at most `cap` of them, oldest first."""
    from loop_assets.capture import ingest as capture
    from loop_assets.dedup.failure_clusters import failing_texts

    raw = capture.ingest(folder, config.ingest, "bench-real").traces
    if raw.height == 0:
        return pl.DataFrame(schema={"app": pl.String, "ts": pl.Datetime("us", "UTC"), "text": pl.String})
    every = raw.select("trace_id", "day", severity=pl.lit(1.0), is_failure=pl.lit(True))  # compare every input
    texts = failing_texts(raw, every, config).unique("text_hash", keep="first", maintain_order=True)
    sample, _ = _sample(texts, cap, seed)
    return sample.sort("ts", "trace_id").select("app", "ts", "text")


def backend_figures(
    generated: pl.DataFrame,
    real: pl.DataFrame | None,
    config: Any,
    model_path: str,
    repeats: int,
    speed_texts: int,
    log: Callable[[str], None] | None = None,
) -> dict[str, dict[str, Any]]:
    """Each backend against torch fp32: decision agreement on the generated texts and on real texts (in time
    order, per app, at every dedup threshold), and texts/s as interleaved repetitions on `speed_texts` of
    the generated texts, with each speed-up the median of per-repetition ratios."""
    from loop_assets.dedup.backend_choice import agreements, batch_drift, load_encoders, speeds
    from loop_assets.dedup.backends import BACKENDS, available
    from loop_assets.dedup.threshold import schedule_thresholds

    thresholds = schedule_thresholds(config.dedup.threshold_schedule)
    names = [b for b in BACKENDS if available(b)]
    encoders, load_seconds = load_encoders(model_path, names, config.embedding.batch_size, log)
    ordered = generated.sort("ts")
    gen = agreements(encoders, ordered["text"].to_list(), ordered["app"].to_list(), thresholds)
    real = real if real is not None else pl.DataFrame(schema={"app": pl.String, "text": pl.String})
    on_real = agreements(encoders, real["text"].to_list(), real["app"].to_list(), thresholds)
    speed_batch = ordered["text"].head(speed_texts).to_list()
    drift = batch_drift(encoders, speed_batch)
    speed = speeds(encoders, speed_batch, repeats)
    figures: dict[str, dict[str, Any]] = {}
    for name in BACKENDS:
        if name not in encoders:
            figures[name] = {"texts_per_s": None, "agreement": None, "texts": 0, "note": "runtime not installed"}
            continue
        rate, speedup = speed["backends"][name]["texts_per_s"], speed["backends"][name]["speedup_vs_torch"]
        figures[name] = {
            "texts_per_s": rate["median"],
            "texts_per_s_min": rate["min"],
            "texts_per_s_max": rate["max"],
            "speedup_vs_torch": speedup["median"],
            "speedup_min": speedup["min"],
            "speedup_max": speedup["max"],
            "agreement": gen[name]["agreement"],
            "min_cosine_to_torch": gen[name]["min_cosine_to_torch"],
            "texts": ordered.height,
            "agreement_real": on_real[name]["agreement"],
            "min_cosine_real": on_real[name]["min_cosine_to_torch"],
            "batch_drift": drift.get(name),
            "real_texts": real.height,
            "speed_texts": min(speed_texts, ordered.height),
            "repeats": speed["repeats"],
            "load_average": speed["load_average"],
            "load_seconds": load_seconds[name],
            "thresholds": thresholds,
        }
        if name == "torch":
            figures[name]["note"] = "reference"
    return figures


# --------------------------------------------------------------------------------------------------
# The whole benchmark
# --------------------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """This machine: CPU model and the features int8 inference depends on, cores, memory, load average."""
    import psutil

    from loop_assets.dedup.backend_choice import cpu_info, describe_features, load_average

    cpu = cpu_info()
    return {
        "cpu": cpu["model"],
        "cpu_features": cpu["features"],
        "cpu_features_seen": describe_features(cpu),
        "cpu_features_source": cpu["features_source"],
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_1m": load_average(),
    }


def _warm_imports() -> None:
    """Import the libraries the stages use before timing them: a long-running process (the Dagster code
    server, a run worker) pays this once, not per stage. Model loading stays inside the embed stage."""
    import hdbscan  # noqa: F401
    import sklearn.decomposition  # noqa: F401

    import loop_assets.grade.grade_day  # noqa: F401


def _prepare_backend(encoder: Any) -> None:
    """Export the encoder's backend now if this machine has not yet (a one-time step, like installing the
    model): the embed stage then measures loading it, as every later run pays, not exporting it."""
    from loop_assets.dedup import backends
    from loop_assets.dedup.embedding import resolve_model_path

    export = {
        "onnx": backends.export_onnx,
        "openvino": backends.export_openvino,
        "openvino_static": backends.export_openvino_static,
    }.get(encoder.resolved_backend)
    if export is not None:
        export(resolve_model_path(encoder.model))


def _traffic(root: Path, traces: int, seed: int, family_share: float) -> tuple[Path, float]:
    from loop_assets.devtools.sample_traffic import write_bulk_day

    folder = root / f"traffic-{traces}-s{seed}-f{family_share}"
    stamp = folder / ".complete"
    if stamp.is_file():
        return folder / "incoming", float(stamp.read_text() or 0)
    shutil.rmtree(folder, ignore_errors=True)
    started = time.perf_counter()
    write_bulk_day(folder / "incoming", traces, seed=seed, day=BENCH_DAY, family_share=family_share)
    seconds = round(time.perf_counter() - started, 3)
    stamp.write_text(str(seconds))
    return folder / "incoming", seconds


def run_bench(
    traces: int = DEFAULT_TRACES,
    out_dir: Path = Path("data/bench"),
    seed: int = 7,
    backend: str | None = None,
    baseline_cap: int = DEFAULT_BASELINE_CAP,
    hdbscan_cap: int = DEFAULT_HDBSCAN_CAP,
    family_share: float = 0.037,
    log: Callable[[str], None] = print,
    repeats: int = DEFAULT_REPEATS,
    speed_texts: int = DEFAULT_SPEED_TEXTS,
    real_data: Path | None = None,
    real_cap: int = DEFAULT_REAL_CAP,
) -> dict[str, Any]:
    from loop_assets.config import load_config
    from loop_assets.dedup.embedding import SentenceEncoder, resolve_model_path
    from loop_assets.grade.candidates import dedup_threshold
    from loop_assets.warehouse import connect

    if not 1 <= traces <= MAX_TRACES:
        raise ValueError(f"--traces must be between 1 and {MAX_TRACES:,}, got {traces:,}")
    config = load_config()
    backend = backend or config.embedding.backend
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sampler = RssSampler()
    try:
        log(f"generating one day of {traces:,} traces ...")
        incoming, generate_seconds = _traffic(out_dir, traces, seed, family_share)
        work = out_dir / f"run-{traces}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        warehouse = work / "warehouse.duckdb"
        encoder = SentenceEncoder(model=config.embedding.model, batch_size=config.embedding.batch_size, backend=backend)
        _warm_imports()
        _prepare_backend(encoder)
        log(f"first run (fresh warehouse, embedding backend {encoder.resolved_backend}) ...")
        first = run_loop(incoming, warehouse, config, encoder, "bench-first", sampler, log)
        log(render_stages("first run", first.stages))
        log("same day again (warm cache) ...")
        rerun = run_loop(incoming, warehouse, config, encoder, "bench-rerun", sampler, log)
        log(render_stages("re-run", rerun.stages))

        model_path = resolve_model_path(config.embedding.model)
        with connect(warehouse) as con:
            suite_texts = [r[0] for r in con.execute("SELECT input_text FROM eval_suite ORDER BY case_id").fetchall()]
        threshold = dedup_threshold(len(suite_texts), config.dedup.threshold_schedule)
        log(f"baselines as {repeats} interleaved repetitions each (baseline, eval-loop, baseline, ...) ...")
        log("baseline: per-record ingest (every line parsed the way any line can be) ...")
        per_record = ingest_baseline(incoming, config, INGEST_BASELINE_LINES, repeats)
        log("baseline: naive (torch fp32 on every failing trace, HDBSCAN on raw 384-d) ...")
        naive = naive_baseline(first, encoder, config, model_path, baseline_cap, hdbscan_cap, seed, repeats)
        log("baseline: SemHash ...")
        semhash = semhash_baseline(
            first, encoder, warehouse, suite_texts, config, model_path, threshold, baseline_cap, seed, repeats
        )
        semhash["eval_loop_rerun_seconds"] = round(rerun.seconds_of("embed", "grade"), 3)
        log("baseline: UMAP (5-d, cosine) + HDBSCAN ...")
        umap_fig = umap_baseline(first, config, max(hdbscan_cap, baseline_cap), seed, repeats)
        log("embedding backends ...")
        real = real_texts(real_data, config, real_cap, seed) if real_data and Path(real_data).is_dir() else None
        generated, _ = _sample(first.canonical, baseline_cap, seed)
        backends = backend_figures(generated, real, config, model_path, repeats, speed_texts, log)
        peak = round(sampler.process_peak(), 1)
    finally:
        sampler.close()

    failures = first.texts.height
    result: dict[str, Any] = {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "params": {
            "traces": traces,
            "seed": seed,
            "day": BENCH_DAY.isoformat(),
            "backend": encoder.resolved_backend,
            "baseline_cap": baseline_cap,
            "hdbscan_cap": hdbscan_cap,
            "family_share": family_share,
            "repeats": repeats,
            "speed_texts": speed_texts,
            "real_data": str(real_data) if real is not None else None,
            "real_cap": real_cap,
        },
        "traffic": {
            "traces": traces,
            "lines": first.stages[0].rows_in,
            "failures": failures,
            "failure_rate": round(failures / max(first.stages[1].rows_in, 1), 4),
            "distinct_failure_texts": first.canonical.height,
            "generate_seconds": generate_seconds,
            "bytes": sum(p.stat().st_size for p in incoming.iterdir()),
        },
        "first_run": _run_dict(first, peak_of=first.stages),
        "rerun": {
            **_run_dict(rerun, peak_of=rerun.stages),
            "embedded": sum(s.embedded or 0 for s in rerun.stages),
            "share_of_first_run": round(rerun.total_seconds / first.total_seconds, 4) if first.total_seconds else None,
        },
        "baselines": {"per_record_ingest": per_record, "naive": naive, "semhash": semhash, "umap_hdbscan": umap_fig},
        "backends": backends,
        "default_backend": encoder.resolved_backend,
        "recommended_backend": recommended_backend(backends),
        "auto_backend": _auto_summary(model_path),
        "peak_rss_mib": peak,
    }
    result["targets"] = targets(result)
    stem = out_dir / f"bench-{traces}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    stem.with_suffix(".md").write_text(render(result) + "\n", encoding="utf-8")
    log(render(result))
    log(f"\nwritten: {stem.with_suffix('.json')} and {stem.with_suffix('.md')}")
    return result


def recommended_backend(backends: dict[str, dict[str, Any]], min_agreement: float = MIN_AGREEMENT) -> str:
    """The fastest backend that `backend_choice.qualifies`: decisions agreeing with torch fp32 on at least
    `min_agreement` of the generated texts and of the real texts (where measured), vectors independent of
    their batch, no calibration data (see `dedup.backends.CALIBRATED`)."""
    ok = {
        name: f["texts_per_s"]
        for name, f in backends.items()
        if f.get("texts_per_s") and qualifies(f, min_agreement, name)
    }
    return max(ok, key=ok.__getitem__) if ok else "torch"


def _auto_summary(model_path: str) -> dict[str, Any] | None:
    """What `embedding.backend: auto` chose on this machine (dedup.backend_choice's cached measurement)."""
    from loop_assets.dedup.backend_choice import choice_file, read_choice

    path = choice_file(model_path)
    record = read_choice(model_path, path)
    if record is None:
        return None
    return {
        "chosen": record["chosen"],
        "measured_at": record["measured_at"],
        "file": str(path),
        "backends": {
            name: {
                "speedup_vs_torch": f["speedup_vs_torch"],
                "agreement": f["agreement"],
            }
            for name, f in record["backends"].items()
        },
    }


def _run_dict(run: LoopRun, peak_of: list[Stage]) -> dict[str, Any]:
    return {
        "stages": [asdict(s) for s in run.stages],
        "total_seconds": run.total_seconds,
        "peak_rss_mib": max((s.peak_rss_mib for s in peak_of), default=0.0),
        "embedding_model": run.model,
        "encoder_texts": run.encoder.texts,
        "encoder_seconds": round(run.encoder.seconds, 3),
    }


def targets(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each target of the issue with this run's figure and whether it was met (None: not measured here)."""
    traces = result["params"]["traces"]
    first = {s["stage"]: s for s in result["first_run"]["stages"]}
    ingest_score = first["ingest"]["seconds"] + first["score"]["seconds"]
    failures = result["traffic"]["failures"]
    default = result["backends"].get(result["default_backend"], {})
    speedup = default.get("speedup_vs_torch")  # the median of interleaved per-repetition ratios
    ratios = {k: v["ratio"] for k, v in result["baselines"].items()}
    cluster_50k = round(first["cluster"]["seconds"] * 50_000 / failures, 2) if failures else None
    rows = {
        "first_run_100k_s": (result["first_run"]["total_seconds"], traces == 100_000, lambda v: v < 120),
        "first_run_1m_s": (result["first_run"]["total_seconds"], traces == MAX_TRACES, lambda v: v < 120),
        "ingest_score_traces_per_s": (
            round(traces / ingest_score, 1) if ingest_score else None,
            True,
            lambda v: v >= 100_000,
        ),
        "cluster_50k_s": (cluster_50k, failures >= 1_000, lambda v: v < 30),
        "rerun_share": (
            result["rerun"]["share_of_first_run"],
            True,
            lambda v: v < 0.10 and result["rerun"]["embedded"] == 0,
        ),
        "embedding_speedup": (
            speedup,
            True,
            lambda v: v >= 4 and bool(default.get("texts_per_s")) and qualifies(default),
        ),
        "peak_rss_1m_gib": (
            round(result["first_run"]["peak_rss_mib"] / 1024, 2),
            traces == MAX_TRACES,
            lambda v: v < 4,
        ),
        "faster_than_baselines": (
            min((r for r in ratios.values() if r is not None), default=None),
            True,
            lambda v: v > 1,
        ),
    }
    out = {}
    for name, (value, applies, check) in rows.items():
        out[name] = {
            "target": TARGETS[name],
            "value": value,
            "met": (bool(check(value)) if value is not None else None) if applies else None,
        }
        if not applies:
            out[name]["note"] = "not applicable at this scale"
    return out


# --------------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------------


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def render_stages(title: str, stages: list[Stage]) -> str:
    rows = [
        [s.stage, s.seconds, s.rows_in, s.rows_out, s.rows_per_s, s.embedded, s.cached, s.peak_rss_mib, s.note]
        for s in stages
    ]
    total = round(sum(s.seconds for s in stages), 3)
    rows.append(["**total**", total, None, None, None, None, None, max(s.peak_rss_mib for s in stages), ""])
    header = ["stage", "wall s", "rows in", "rows out", "rows/s", "embedded", "from cache", "peak RSS MiB", "note"]
    return f"\n### {title}\n\n" + _table(header, rows)


def _spread_text(low: Any, high: Any) -> str:
    return f"{_fmt(low)}-{_fmt(high)}" if low is not None else "-"


def _load_text(load: list[float | None] | None) -> str:
    return f"{_fmt(load[0])} -> {_fmt(load[1])}" if load else "-"


def render(result: dict[str, Any]) -> str:
    m, t, p = result["machine"], result["traffic"], result["params"]
    parts = [
        f"## eval-loop bench: {t['traces']:,} traces ({p['day']})",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, Python {m['python']}, {m['platform']}. "
        f"CPU features seen ({m.get('cpu_features_source', '-')}): {m.get('cpu_features_seen', '-')}. "
        f"Load average {m.get('load_average_1m', '-')} when the results were written (each ratio below gives "
        "the load average before and after its repetitions).",
        f"Traffic: {t['lines']:,} lines, {t['failures']:,} failures ({t['failure_rate']:.1%}), "
        f"{t['distinct_failure_texts']:,} distinct failure texts; generated in {t['generate_seconds']:.1f} s "
        f"({t['bytes'] / 2**20:,.0f} MiB). Embedding backend: {result['default_backend']}. "
        f"Peak RSS (this process plus its parsing workers, sampled every 20 ms): first run "
        f"{result['first_run']['peak_rss_mib'] / 1024:.2f} GiB, whole bench (re-run and baselines in the same "
        f"process included) {result['peak_rss_mib'] / 1024:.2f} GiB.",
        render_stages("first run (fresh warehouse)", [Stage(**s) for s in result["first_run"]["stages"]]),
        render_stages("same day again (warm cache)", [Stage(**s) for s in result["rerun"]["stages"]]),
        f"\nRe-run: {result['rerun']['embedded']:,} texts embedded, "
        f"{result['rerun']['share_of_first_run']:.1%} of the first run's time.",
    ]
    b = result["baselines"]
    parts.append(
        f"\n### baselines (same data; {p.get('repeats', '-')} interleaved repetitions: baseline, eval-loop, "
        "baseline, ...; ratio = baseline time / eval-loop time of the same repetition, median and min-max; "
        "models loaded beforehand on both sides)\n"
    )
    rows = [
        ("per-record parse: every line decoded by the standard library", "ingest", b["per_record_ingest"]),
        ("naive: torch fp32 every failing trace + HDBSCAN raw 384-d", "embed + cluster", b["naive"]),
        ("SemHash (MiniLM torch fp32) vs the suite", "embed + grade", b["semhash"]),
        ("UMAP 5-d cosine + HDBSCAN (BERTopic-style)", "cluster", b["umap_hdbscan"]),
    ]
    table = []
    for name, stage, f in rows:
        table.append(
            [
                name,
                stage,
                f["seconds"],
                f["eval_loop_seconds"],
                f["ratio"],
                _spread_text(f.get("ratio_min"), f.get("ratio_max")),
                _load_text(f.get("load_average")),
                f["sampled"],
            ]
        )
        if f is b["naive"]:
            table.append(["  of which embedding", "embed", f["embed_seconds"], None, None, "", "", ""])
            table.append(["  of which HDBSCAN on 384-d", "cluster", f["cluster_seconds"], None, None, "", "", ""])
    parts.append(
        _table(
            ["baseline", "stage compared", "baseline s", "eval-loop s", "ratio (median)", "min-max", "load", "sampled"],
            table,
        )
    )
    parts.append(
        "\nFor reference, one pass each in the loop runs above: embed + cluster "
        f"{_fmt(b['naive'].get('eval_loop_first_run_seconds'))} s, "
        f"embed + grade {_fmt(b['semhash'].get('eval_loop_first_run_seconds'))} s (re-run, cache warm: "
        f"{_fmt(b['semhash'].get('eval_loop_rerun_seconds'))} s), cluster "
        f"{_fmt(b['umap_hdbscan'].get('eval_loop_first_run_seconds'))} s (model loading and warehouse writes included)."
    )
    torch_row = result["backends"].get("torch", {})
    parts.append(
        f"\n### embedding backends (agreement = same promote/duplicate decision as torch fp32, lowest over the "
        f"dedup thresholds, on {torch_row.get('texts', 0):,} generated and {torch_row.get('real_texts', 0):,} real "
        f"texts; speed as {torch_row.get('repeats', '-')} interleaved repetitions on "
        f"{torch_row.get('speed_texts', 0):,} texts, x torch = median per-repetition ratio)\n"
    )
    parts.append(
        _table(
            [
                "backend",
                "texts/s (median)",
                "x torch",
                "min-max",
                "agreement generated",
                "agreement real",
                "min cosine",
                "batch drift",
                "load",
            ],
            [
                [
                    name,
                    f.get("texts_per_s"),
                    f.get("speedup_vs_torch"),
                    _spread_text(f.get("speedup_min"), f.get("speedup_max")),
                    f.get("agreement"),
                    f.get("agreement_real"),
                    f.get("min_cosine_to_torch"),
                    f.get("batch_drift"),
                    _load_text(f.get("load_average")),
                ]
                for name, f in result["backends"].items()
            ],
        )
    )
    auto = result.get("auto_backend")
    auto_text = (
        f"`embedding.backend: auto` on this machine is **{auto['chosen']}** (measured {auto['measured_at']} on the "
        f"shipped calibration texts, cached in {auto['file']})"
        if auto
        else "`embedding.backend: auto` has not measured this machine yet"
    )
    parts.append(
        "\nFastest backend with >= 99% agreement on generated and real text, vectors independent of their batch "
        "(batch drift: the largest change of a vector embedded in other batches) and no calibration data, on "
        f"this run: **{result['recommended_backend']}**; this run embedded with {result['default_backend']}. "
        f"{auto_text}. openvino_static is calibrated on generated traffic, so its generated-text agreement is "
        "measured on the kind of text it was fitted to."
    )
    parts.append("\n### targets\n")
    parts.append(
        _table(
            ["target", "this run", "met"],
            [
                [v["target"], v["value"], {True: "yes", False: "**no**", None: "n/a"}[v["met"]]]
                for v in result["targets"].values()
            ],
        )
    )
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser(argparse.ArgumentParser(prog="eval-loop bench", description=__doc__))
    return cmd_bench(parser.parse_args(argv))


def build_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--traces", type=int, default=DEFAULT_TRACES, help="traces in the day (up to 1,000,000)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out-dir", default="data/bench", help="where traffic, warehouse and results go")
    parser.add_argument(
        "--backend", choices=["auto", "torch", "onnx", "openvino", "openvino_static"], help="default: the config's"
    )
    parser.add_argument(
        "--baseline-cap",
        type=int,
        default=DEFAULT_BASELINE_CAP,
        help="texts each embedding side of a ratio embeds at most per repetition (scaled linearly to the day)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=DEFAULT_REPEATS,
        help="interleaved repetitions behind every ratio (baseline, eval-loop, baseline, ...; median and min-max)",
    )
    parser.add_argument(
        "--speed-texts", type=int, default=DEFAULT_SPEED_TEXTS, help="texts per backend per speed repetition"
    )
    parser.add_argument(
        "--real-data",
        default=str(DEFAULT_REAL_DATA),
        help="folder of real trace files for the backends' agreement on real text (skipped when missing)",
    )
    parser.add_argument("--real-cap", type=int, default=DEFAULT_REAL_CAP, help="distinct real texts compared at most")
    parser.add_argument(
        "--hdbscan-cap", type=int, default=DEFAULT_HDBSCAN_CAP, help="points raw-384-d HDBSCAN clusters at most"
    )
    parser.add_argument(
        "--family-share", type=float, default=0.037, help="share of traffic from failure families (0.037: ~5%% fail)"
    )
    return parser


def cmd_bench(args: argparse.Namespace) -> int:
    if not 1 <= args.traces <= MAX_TRACES:
        print(f"--traces must be between 1 and {MAX_TRACES:,}")
        return 2
    if args.repeats < 1:
        print("--repeats must be at least 1")
        return 2
    run_bench(
        traces=args.traces,
        out_dir=Path(args.out_dir),
        seed=args.seed,
        backend=args.backend,
        baseline_cap=args.baseline_cap,
        hdbscan_cap=args.hdbscan_cap,
        family_share=args.family_share,
        repeats=args.repeats,
        speed_texts=args.speed_texts,
        real_data=Path(args.real_data) if args.real_data else None,
        real_cap=args.real_cap,
    )
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
