"""`eval-loop bench`: the loop at production scale, stage by stage, against naive and library baselines.

What it does, in one process, on one fresh warehouse file (`data/bench/<traces>/warehouse.duckdb`):

1. generates one day of traffic (`sample_traffic.write_bulk_day`: default 100,000 traces, about 5%
   failing, exact repeats and paraphrases as the sample has them), kept between runs of the same size;
2. runs the loop's core steps as the Dagster assets do (same functions, same warehouse writes):
   ingest, score, embed (exact-duplicate collapse, cache, encoder), cluster, grade, promote, and
   prints per stage wall time, rows in and out, rows per second, texts embedded vs served from the
   cache and peak resident memory (sampled every 20 ms during the stage);
3. re-runs the same day on the same warehouse (the cache and idempotency figure);
4. runs the baselines on the same data, each as a ratio to eval-loop's own stage:
   - naive: every failing trace embedded with torch fp32 (no exact-duplicate collapse, no cache),
     HDBSCAN on the raw 384-d vectors, per app as the loop clusters;
   - SemHash (`semhash`) deduplicating the day's failure texts against the suite, with
     all-MiniLM-L6-v2 loaded by sentence-transformers (torch fp32) passed in as its model (its default
     static model, potion-base-8M, would come from a hub: not available offline);
   - BERTopic-style UMAP (5-d, cosine) + HDBSCAN on the same embeddings the loop clusters;
5. measures each embedding backend (torch fp32, onnx int8, openvino int8): texts/s on the same
   texts and how often its dedup decisions agree with torch's (see `decision_agreement`);
6. writes `data/bench/bench-<traces>.json` and `.md` and prints the tables.

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

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

BENCH_DAY = date(2026, 11, 16)
DEFAULT_TRACES = 100_000
MAX_TRACES = 1_000_000
STAGES = ("ingest", "score", "embed", "cluster", "grade", "promote")
TARGETS = {
    "first_run_100k_s": "100,000-trace day, first run end to end < 120 s",
    "ingest_score_traces_per_s": "ingest + score >= 100,000 traces/s",
    "cluster_50k_s": "clustering 50,000 failures < 30 s (figure: this run's failures, scaled linearly to 50,000)",
    "rerun_share": "same-day re-run embeds nothing and takes < 10% of the first run",
    "embedding_speedup": "default backend >= 3x torch fp32 texts/s with >= 99% decision agreement",
    "peak_rss_1m_gib": "1,000,000-trace day completes with peak memory < 4 GiB (the first run's peak)",
    "faster_than_baselines": "eval-loop faster than each baseline on its own stage (ratio > 1)",
}

# Fields every bench JSON has (the CI smoke test checks them, not the timings).
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
    "machine": ("cpu", "cores", "memory_gib", "python", "platform"),
    "params": ("traces", "seed", "day", "backend", "baseline_cap", "hdbscan_cap"),
    "traffic": ("traces", "lines", "failures", "failure_rate", "distinct_failure_texts", "generate_seconds", "bytes"),
    "first_run": ("stages", "total_seconds", "peak_rss_mib"),
    "rerun": ("stages", "total_seconds", "peak_rss_mib", "embedded", "share_of_first_run"),
    "baselines": ("naive", "semhash", "umap_hdbscan"),
    "baselines.naive": ("embed_seconds", "cluster_seconds", "seconds", "sampled", "eval_loop_seconds", "ratio"),
    "baselines.semhash": ("seconds", "model", "sampled", "eval_loop_seconds", "ratio"),
    "baselines.umap_hdbscan": ("seconds", "sampled", "eval_loop_seconds", "ratio"),
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
        missing += [f"backends.{name}.{f}" for f in ("texts_per_s", "agreement", "texts") if f not in row]
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
# Decisions and agreement
# --------------------------------------------------------------------------------------------------


def duplicate_decisions(vectors: np.ndarray, apps: list[str], threshold: float) -> np.ndarray:
    """Per text (in order): duplicate (True) when some earlier text of the same app is at least `threshold`
    similar, else promote. This is the grading decision against everything seen before, taken per text so
    one flipped decision does not cascade into others."""
    decisions = np.zeros(len(apps), dtype=bool)
    app_arr = np.asarray(apps)
    for app in np.unique(app_arr):
        idx = np.flatnonzero(app_arr == app)
        v = vectors[idx]
        for start in range(0, len(idx), 2048):  # blocks of rows: memory stays bounded
            block = v[start : start + 2048] @ v[: start + 2048].T
            rows = np.arange(block.shape[0])[:, None] + start
            block[np.arange(block.shape[1])[None, :] >= rows] = -np.inf  # only earlier texts
            decisions[idx[start : start + 2048]] = block.max(axis=1) >= threshold
    return decisions


def decision_agreement(reference: np.ndarray, other: np.ndarray, apps: list[str], thresholds: list[float]) -> float:
    """The lowest share, over the dedup thresholds, of texts whose promote/duplicate decision is the same."""
    if len(apps) == 0:
        return 1.0
    return min(
        float((duplicate_decisions(reference, apps, t) == duplicate_decisions(other, apps, t)).mean())
        for t in thresholds
    )


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


def naive_baseline(
    texts: pl.DataFrame, config: Any, model_path: str, cap: int, hdbscan_cap: int, seed: int
) -> tuple[dict[str, Any], pl.DataFrame]:
    """Every failing trace embedded with torch fp32, HDBSCAN on raw 384-d vectors per app.

    Returns the figures and the sample's text_hash -> torch vector (the agreement reference)."""
    from loop_assets.dedup.backends import load_encoder

    sample, sampled = _sample(texts, cap, seed)
    started = time.perf_counter()
    encoder = load_encoder(model_path, "torch", config.embedding.batch_size)
    load_seconds = time.perf_counter() - started
    started = time.perf_counter()
    vectors = encoder(sample["text"].to_list()) if sample.height else np.zeros((0, 384), dtype=np.float32)
    encode_seconds = time.perf_counter() - started
    embed_seconds = (
        (load_seconds + encode_seconds * texts.height / max(sample.height, 1))
        if sampled
        else (load_seconds + encode_seconds)
    )

    cluster_sample, cluster_sampled = _sample(sample.with_row_index("_i"), hdbscan_cap, seed)
    started = time.perf_counter()
    for (_app,), group in cluster_sample.group_by("app", maintain_order=True):
        _hdbscan(vectors[group["_i"].to_numpy()], config.clustering.min_cluster_size, config.clustering.min_samples)
    measured = time.perf_counter() - started
    scale = (texts.height / max(cluster_sample.height, 1)) ** 2 if (sampled or cluster_sampled) else 1.0
    cluster_seconds = measured * scale
    reference = sample.select("text_hash", "app", "ts").with_row_index("_i").unique("text_hash", keep="first")
    reference = reference.with_columns(pl.Series("embedding", vectors[reference["_i"].to_numpy()]))
    figures = {
        "embed_seconds": round(embed_seconds, 3),
        "embed_texts": texts.height,
        "encode_texts_per_s": round(sample.height / encode_seconds, 1) if encode_seconds > 0 else None,
        "model_load_seconds": round(load_seconds, 3),
        "cluster_seconds": round(cluster_seconds, 3),
        "cluster_measured_seconds": round(measured, 3),
        "cluster_points": cluster_sample.height,
        "seconds": round(embed_seconds + cluster_seconds, 3),
        "sampled": (
            f"embedded {sample.height:,} of {texts.height:,} failing traces, scaled linearly; "
            f"HDBSCAN on {cluster_sample.height:,} points, scaled by (n/sample)^2"
            if sampled or cluster_sampled
            else "no: every failing trace"
        ),
    }
    return figures, reference.drop("_i")


def semhash_baseline(texts: list[str], suite_texts: list[str], model_path: str, threshold: float, cap: int, seed: int):
    """SemHash: index the suite, then deduplicate the day's failure texts against it."""
    from semhash import SemHash
    from sentence_transformers import SentenceTransformer

    rng = np.random.default_rng(seed)
    sampled = len(texts) > cap
    sample = [texts[i] for i in sorted(rng.choice(len(texts), cap, replace=False))] if sampled else texts
    started = time.perf_counter()
    model = SentenceTransformer(model_path, device="cpu")
    load_seconds = time.perf_counter() - started
    started = time.perf_counter()
    index = SemHash.from_records(suite_texts or ["(empty suite)"], model=model)
    result = index.deduplicate(sample, threshold=threshold)
    work = time.perf_counter() - started
    seconds = load_seconds + (work * len(texts) / max(len(sample), 1) if sampled else work)
    return {
        "seconds": round(seconds, 3),
        "model": "all-MiniLM-L6-v2 via sentence-transformers (torch fp32), passed to SemHash.from_records(model=...)",
        "texts": len(texts),
        "suite_cases": len(suite_texts),
        "threshold": threshold,
        "duplicates_found": len(result.filtered),
        "sampled": f"{len(sample):,} of {len(texts):,} failure texts, scaled linearly" if sampled else "no",
    }


def umap_baseline(canonical: pl.DataFrame, vectors: pl.DataFrame, config: Any, cap: int, seed: int) -> dict[str, Any]:
    """BERTopic-style: UMAP to 5-d (cosine) + HDBSCAN, per app, on the vectors the loop clusters."""
    import umap

    from loop_assets.dedup.embedding import as_matrix

    rows = canonical.join(vectors.select("text_hash", "embedding"), on="text_hash", how="left")
    sample, sampled = _sample(rows, cap, seed)
    warm = np.random.default_rng(0).normal(size=(64, 384)).astype(np.float32)
    umap.UMAP(n_components=5, metric="cosine", n_neighbors=15).fit_transform(warm)  # numba compiles once
    started = time.perf_counter()
    for (_app,), group in sample.group_by("app", maintain_order=True):
        matrix = as_matrix(group["embedding"])
        if matrix.shape[0] <= 16:
            continue
        reduced = umap.UMAP(n_components=5, metric="cosine", n_neighbors=15, min_dist=0.0).fit_transform(matrix)
        _hdbscan(reduced, config.clustering.min_cluster_size, config.clustering.min_samples)
    measured = time.perf_counter() - started
    seconds = measured * rows.height / max(sample.height, 1) if sampled else measured
    return {
        "seconds": round(seconds, 3),
        "points": rows.height,
        "sampled": f"{sample.height:,} of {rows.height:,} points, scaled linearly" if sampled else "no",
        "note": "numba compilation excluded (warmed up on 64 points first)",
    }


def backend_figures(
    reference: pl.DataFrame, config: Any, model_path: str, loop_vectors: pl.DataFrame, torch_rate: float | None
) -> dict[str, dict[str, Any]]:
    """texts/s of each backend on the reference texts and its decision agreement with torch fp32."""
    from loop_assets.dedup.backends import BACKENDS, available, load_encoder
    from loop_assets.grade.candidates import dedup_threshold

    thresholds = sorted(
        {t for _, t in config.dedup.threshold_schedule} | {dedup_threshold(0, config.dedup.threshold_schedule)}
    )
    ordered = reference.sort("ts")
    ref = np.stack(ordered["embedding"].to_list()) if ordered.height else np.zeros((0, 384), dtype=np.float32)
    apps = ordered["app"].to_list()
    figures: dict[str, dict[str, Any]] = {
        "torch": {"texts_per_s": torch_rate, "agreement": 1.0, "texts": ordered.height, "note": "reference"}
    }
    text_of = dict(zip(reference["text_hash"], reference["text"], strict=True)) if "text" in reference.columns else {}
    batch = [text_of[h] for h in ordered["text_hash"]]
    for backend in BACKENDS:
        if backend == "torch":
            continue
        if not available(backend):
            figures[backend] = {"texts_per_s": None, "agreement": None, "texts": 0, "note": "runtime not installed"}
            continue
        started = time.perf_counter()
        encoder = load_encoder(model_path, backend, config.embedding.batch_size)
        encoder(["warm up"])
        load_seconds = time.perf_counter() - started
        started = time.perf_counter()
        vectors = encoder(batch) if batch else np.zeros((0, 384), dtype=np.float32)
        seconds = time.perf_counter() - started
        figures[backend] = {
            "texts_per_s": round(len(batch) / seconds, 1) if seconds > 0 and batch else None,
            "agreement": round(decision_agreement(ref, vectors, apps, thresholds), 5),
            "min_cosine_to_torch": round(float((ref * vectors).sum(axis=1).min()), 5) if batch else None,
            "texts": len(batch),
            "load_seconds": round(load_seconds, 3),
            "thresholds": thresholds,
        }
    return figures


# --------------------------------------------------------------------------------------------------
# The whole benchmark
# --------------------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    import psutil

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_1m": round(os.getloadavg()[0], 2),
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
    baseline_cap: int = 6_000,
    hdbscan_cap: int = 10_000,
    family_share: float = 0.037,
    log: Callable[[str], None] = print,
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
        log("baseline: naive (torch fp32 on every failing trace, HDBSCAN on raw 384-d) ...")
        naive, reference = naive_baseline(first.texts, config, model_path, baseline_cap, hdbscan_cap, seed)
        naive["eval_loop_seconds"] = round(first.seconds_of("embed", "cluster"), 3)
        naive["ratio"] = _ratio(naive["seconds"], naive["eval_loop_seconds"])
        log("baseline: SemHash ...")
        semhash = semhash_baseline(
            first.texts["text"].to_list(), suite_texts, model_path, threshold, baseline_cap, seed
        )
        semhash["eval_loop_seconds"] = round(first.seconds_of("embed", "grade"), 3)
        semhash["eval_loop_rerun_seconds"] = round(rerun.seconds_of("embed", "grade"), 3)
        semhash["ratio"] = _ratio(semhash["seconds"], semhash["eval_loop_seconds"])
        log("baseline: UMAP (5-d, cosine) + HDBSCAN ...")
        umap_fig = umap_baseline(first.canonical, first.vectors, config, max(hdbscan_cap, baseline_cap), seed)
        umap_fig["eval_loop_seconds"] = round(first.seconds_of("cluster"), 3)
        umap_fig["ratio"] = _ratio(umap_fig["seconds"], umap_fig["eval_loop_seconds"])
        log("embedding backends ...")
        reference = reference.join(first.texts.select("text_hash", "text").unique("text_hash"), on="text_hash")
        backends = backend_figures(reference, config, model_path, first.vectors, naive["encode_texts_per_s"])
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
        "baselines": {"naive": naive, "semhash": semhash, "umap_hdbscan": umap_fig},
        "backends": backends,
        "default_backend": encoder.resolved_backend,
        "recommended_backend": recommended_backend(backends),
        "peak_rss_mib": peak,
    }
    result["targets"] = targets(result)
    stem = out_dir / f"bench-{traces}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    stem.with_suffix(".md").write_text(render(result) + "\n", encoding="utf-8")
    log(render(result))
    log(f"\nwritten: {stem.with_suffix('.json')} and {stem.with_suffix('.md')}")
    return result


def recommended_backend(backends: dict[str, dict[str, Any]], min_agreement: float = 0.99) -> str:
    """The fastest backend whose decisions agree with torch fp32 on at least `min_agreement` of the texts,
    among those needing no calibration data (see `dedup.backends.CALIBRATED`)."""
    from loop_assets.dedup.backends import CALIBRATED

    ok = {
        name: f["texts_per_s"]
        for name, f in backends.items()
        if f.get("texts_per_s") and (f.get("agreement") or 0) >= min_agreement and name not in CALIBRATED
    }
    return max(ok, key=ok.__getitem__) if ok else "torch"


def _ratio(baseline: float, ours: float) -> float | None:
    return round(baseline / ours, 2) if ours > 0 else None


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
    torch_rate = result["backends"]["torch"]["texts_per_s"]
    speedup = round(default["texts_per_s"] / torch_rate, 2) if default.get("texts_per_s") and torch_rate else None
    ratios = {k: v["ratio"] for k, v in result["baselines"].items()}
    cluster_50k = round(first["cluster"]["seconds"] * 50_000 / failures, 2) if failures else None
    rows = {
        "first_run_100k_s": (result["first_run"]["total_seconds"], traces == 100_000, lambda v: v < 120),
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
            lambda v: v >= 3 and (default.get("agreement") or 0) >= 0.99,
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


def render(result: dict[str, Any]) -> str:
    m, t = result["machine"], result["traffic"]
    parts = [
        f"## eval-loop bench: {t['traces']:,} traces ({result['params']['day']})",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, Python {m['python']}, {m['platform']}; "
        f"load average {m.get('load_average_1m', '-')} when the results were written.",
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
    parts.append("\n### baselines (same data; ratio = baseline time / eval-loop time on the same stage)\n")
    parts.append(
        _table(
            ["baseline", "stage compared", "baseline s", "eval-loop s", "ratio", "sampled"],
            [
                [
                    "naive: torch fp32 every failing trace + HDBSCAN raw 384-d",
                    "embed + cluster",
                    b["naive"]["seconds"],
                    b["naive"]["eval_loop_seconds"],
                    b["naive"]["ratio"],
                    b["naive"]["sampled"],
                ],
                ["  of which embedding", "embed", b["naive"]["embed_seconds"], None, None, ""],
                ["  of which HDBSCAN on 384-d", "cluster", b["naive"]["cluster_seconds"], None, None, ""],
                [
                    "SemHash (MiniLM torch fp32) vs the suite",
                    "embed + grade",
                    b["semhash"]["seconds"],
                    b["semhash"]["eval_loop_seconds"],
                    b["semhash"]["ratio"],
                    b["semhash"]["sampled"],
                ],
                [
                    "  eval-loop re-run (cache warm)",
                    "embed + grade",
                    b["semhash"]["seconds"],
                    b["semhash"]["eval_loop_rerun_seconds"],
                    _ratio(b["semhash"]["seconds"], b["semhash"]["eval_loop_rerun_seconds"]),
                    "",
                ],
                [
                    "UMAP 5-d cosine + HDBSCAN (BERTopic-style)",
                    "cluster",
                    b["umap_hdbscan"]["seconds"],
                    b["umap_hdbscan"]["eval_loop_seconds"],
                    b["umap_hdbscan"]["ratio"],
                    b["umap_hdbscan"]["sampled"],
                ],
            ],
        )
    )
    parts.append("\n### embedding backends (same texts; agreement = same promote/duplicate decision as torch fp32)\n")
    torch_rate = result["backends"]["torch"]["texts_per_s"]
    parts.append(
        _table(
            ["backend", "texts", "texts/s", "x torch", "agreement", "min cosine to torch"],
            [
                [
                    name,
                    f.get("texts"),
                    f.get("texts_per_s"),
                    round(f["texts_per_s"] / torch_rate, 2) if f.get("texts_per_s") and torch_rate else None,
                    f.get("agreement"),
                    f.get("min_cosine_to_torch"),
                ]
                for name, f in result["backends"].items()
            ],
        )
    )
    parts.append(
        f"\nFastest backend with >= 99% agreement that needs no calibration data on this run: "
        f"**{result['recommended_backend']}** (this run embedded with {result['default_backend']}; "
        "`embedding.backend: auto` uses dedup.backends.MEASURED_DEFAULT; openvino_static is calibrated on "
        "generated traffic, so its agreement here is measured on the traffic it was fitted to)."
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
    parser.add_argument("--baseline-cap", type=int, default=6_000, help="texts the embedding baselines embed at most")
    parser.add_argument("--hdbscan-cap", type=int, default=10_000, help="points raw-384-d HDBSCAN clusters at most")
    parser.add_argument(
        "--family-share", type=float, default=0.037, help="share of traffic from failure families (0.037: ~5%% fail)"
    )
    return parser


def cmd_bench(args: argparse.Namespace) -> int:
    if not 1 <= args.traces <= MAX_TRACES:
        print(f"--traces must be between 1 and {MAX_TRACES:,}")
        return 2
    run_bench(
        traces=args.traces,
        out_dir=Path(args.out_dir),
        seed=args.seed,
        backend=args.backend,
        baseline_cap=args.baseline_cap,
        hdbscan_cap=args.hdbscan_cap,
        family_share=args.family_share,
    )
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
