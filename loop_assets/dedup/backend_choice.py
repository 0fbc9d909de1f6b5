"""What `embedding.backend: auto` is on this machine: a short measurement, made once and cached.

The fastest int8 backend depends on the CPU (on 2 AVX2-only EPYC cores onnx was 1.8x torch and openvino
1.1x, where on another machine openvino led), and so, a little, does agreement (int8 kernels differ by
instruction set). So `auto` measures on the machine it runs on: the candidate backends and torch fp32 on
the shipped calibration texts, their texts/s as interleaved repetitions (torch, onnx, openvino, torch,
...: each speed-up is the median of per-repetition ratios, so a busy machine slows both sides alike) and
how often their promote/duplicate decisions agree with torch fp32's at the dedup thresholds, and whether a
text's vector stays the same whatever else is in its batch. It takes the fastest backend whose agreement
is at least MIN_AGREEMENT and whose vectors do not depend on their batch (BATCH_TOLERANCE: the loop's
embedding cache and its determinism rely on it), never a calibrated one (`backends.CALIBRATED`), and
torch when none qualifies.

The choice is written beside the exported models (`<model export folder>/auto-<cpu key>.json`, keyed by
the CPU model and its features and, through the folder, by the model's fingerprint), under a file lock so
concurrent processes measure once, and read from there ever after: `auto` is deterministic once measured.
Delete the file (or run `python -m loop_assets.dedup.backend_choice --remeasure`) to measure again.

Measured on 2 AMD EPYC cores with AVX-512 VNNI (no AMX), from scratch (exports included) in 45 s on a
quiet machine: onnx 7.4x torch but 98.2% agreement and vectors that move by 0.03 with their batch, openvino
7.1x at 99.7% and batch-independent: openvino. On the AVX2-only EPYC of issue 15 (onnx 1.83x at 98.4%,
openvino 1.11x at 99.6%) the same rule gives openvino, or torch if openvino measures no faster there.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import platform
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

MIN_AGREEMENT = 0.99
"""The share of decisions a backend must take as torch fp32 does to be chosen (onnx measured 98.4% on one
AVX2 machine: not chosen there)."""

AGREEMENT_TEXTS = 1000
"""Calibration texts whose decisions are compared (one decision in 1,000 is 0.1% of agreement)."""

SPEED_TEXTS = 128
"""Calibration texts each interleaved speed repetition embeds (texts of every length, in file order)."""

REPEATS = 3
"""Interleaved speed repetitions (after the agreement pass, which is not timed)."""

BATCH_TOLERANCE = 1e-5
"""How far a text's vector may move with the other texts of its batch for a backend to be chosen: the loop
caches vectors and runs may batch a day differently, so a vector must depend on its text alone (onnx's
dynamic activation scales are per batch: its vectors moved by 0.04 here)."""

CHOICE_VERSION = "2"
"""Bump when the measurement changes, so cached choices are redone."""

# CPU features that decide how int8 matrix products run: name shown -> /proc/cpuinfo flag(s), numpy's name.
CPU_FEATURES = {
    "AVX2": (("avx2",), "AVX2"),
    "AVX-512": (("avx512f",), "AVX512F"),
    "AVX-512 VNNI": (("avx512_vnni",), "AVX512VNNI"),
    "AVX-VNNI": (("avx_vnni",), None),
    "AMX": (("amx_tile", "amx_int8"), None),
}

_lock = threading.Lock()
_chosen: dict[tuple[str, str], str] = {}


# --------------------------------------------------------------------------------------------------
# The machine
# --------------------------------------------------------------------------------------------------


def cpu_info(cpuinfo: Path = Path("/proc/cpuinfo")) -> dict[str, Any]:
    """The CPU's model name and which of CPU_FEATURES it has (None: could not tell), and where that came from.

    /proc/cpuinfo on Linux; elsewhere numpy's own CPU dispatch probe (which knows AVX2 and AVX-512 but not
    AMX or AVX-VNNI) and the platform's processor name."""
    model, flags, source = "", None, "none"
    with contextlib.suppress(OSError):
        for line in Path(cpuinfo).read_text(encoding="utf-8", errors="replace").splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key in ("model name", "Model", "cpu model") and not model:
                model = value.strip()
            elif key in ("flags", "Features") and flags is None:
                flags = set(value.split())
        if flags is not None:
            source = str(cpuinfo)
    features: dict[str, bool | None] = {}
    if flags is not None:
        features = {name: all(f in flags for f in proc) for name, (proc, _) in CPU_FEATURES.items()}
    else:
        probe: dict[str, bool] = {}
        with contextlib.suppress(ImportError):
            from numpy._core._multiarray_umath import __cpu_features__ as probe  # type: ignore[no-redef]
        if probe:
            source = "numpy"
        features = {
            name: (bool(probe.get(np_name)) if probe and np_name else None)
            for name, (_, np_name) in CPU_FEATURES.items()
        }
    return {
        "model": model or platform.processor() or platform.machine() or "unknown",
        "features": features,
        "features_source": source,
        "cores": os.cpu_count(),
    }


def describe_features(info: dict[str, Any]) -> str:
    """The features in words, e.g. "AVX2, AVX-512, AVX-512 VNNI; no AVX-VNNI, AMX" (unknown ones left out)."""
    have = [n for n, v in info["features"].items() if v]
    lack = [n for n, v in info["features"].items() if v is False]
    return ", ".join(have or ["none of " + "/".join(CPU_FEATURES)]) + (f"; no {', '.join(lack)}" if lack else "")


@functools.cache
def _this_cpu() -> dict[str, Any]:
    """This process's CPU, read once (`auto` asks for its key on every embedding cache key)."""
    return cpu_info()


def cpu_key(info: dict[str, Any] | None = None) -> str:
    """Names a CPU kind: its model name, features and core count (throughput in OpenVINO's mode follows cores)."""
    info = info or _this_cpu()
    text = json.dumps([info["model"], sorted(n for n, v in info["features"].items() if v), info["cores"]])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def load_average() -> float | None:
    with contextlib.suppress(OSError, AttributeError):
        return round(os.getloadavg()[0], 2)
    return None


# --------------------------------------------------------------------------------------------------
# Interleaved measurement
# --------------------------------------------------------------------------------------------------


def interleaved(sides: Sequence[tuple[str, Callable[[], float]]], repeats: int) -> dict[str, Any]:
    """Runs the sides in turn (A, B, A, B, ...) `repeats` times; each callable does its work and returns the
    seconds it counts (it may leave out its setup or scale a sample up). Returns the seconds per side and
    repetition and the load average before and after."""
    before = load_average()
    seconds: dict[str, list[float]] = {name: [] for name, _ in sides}
    for _ in range(max(1, repeats)):
        for name, run in sides:
            seconds[name].append(float(run()))
    return {"seconds": seconds, "load_average": [before, load_average()], "repeats": max(1, repeats)}


def spread(values: Sequence[float | None]) -> dict[str, Any]:
    """Median, min, max (and the values) of a measurement repeated; None where nothing could be measured."""
    real = [v for v in values if v is not None and np.isfinite(v)]
    if not real:
        return {"median": None, "min": None, "max": None, "values": []}
    return {
        "median": round(statistics.median(real), 3),
        "min": round(min(real), 3),
        "max": round(max(real), 3),
        "values": [round(v, 3) for v in real],
    }


def paired_ratios(numerator: Sequence[float], denominator: Sequence[float]) -> dict[str, Any]:
    """numerator[i] / denominator[i] for each repetition i, summarised by `spread`."""
    return spread([a / b if b > 0 else None for a, b in zip(numerator, denominator, strict=True)])


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
    return agreement_with(reference_decisions(reference, apps, thresholds), other, apps)


def reference_decisions(reference: np.ndarray, apps: list[str], thresholds: list[float]) -> dict[float, np.ndarray]:
    """The reference's decisions at each threshold, taken once for every backend compared with it."""
    return {t: duplicate_decisions(reference, apps, t) for t in thresholds}


def agreement_with(decisions: dict[float, np.ndarray], other: np.ndarray, apps: list[str]) -> float:
    """`decision_agreement` against the reference's decisions taken already (`reference_decisions`)."""
    if len(apps) == 0:
        return 1.0
    return min(float((ref == duplicate_decisions(other, apps, t)).mean()) for t, ref in decisions.items())


def default_thresholds() -> list[float]:
    """Every threshold the default dedup schedule can use at its points."""
    from loop_assets.config import LoopConfig
    from loop_assets.dedup.threshold import schedule_thresholds

    return schedule_thresholds(LoopConfig().dedup.threshold_schedule)


# --------------------------------------------------------------------------------------------------
# Measuring the backends and choosing
# --------------------------------------------------------------------------------------------------


def candidates() -> list[str]:
    """Backends auto may choose: installed, not calibrated on generated traffic, torch last."""
    from loop_assets.dedup.backends import BACKENDS, CALIBRATED, available

    return [b for b in BACKENDS if b != "torch" and b not in CALIBRATED and available(b)]


def load_encoders(
    model_path: str | Path, names: Sequence[str], batch_size: int = 64, log: Callable[[str], None] | None = None
) -> tuple[dict[str, Callable[[list[str]], np.ndarray]], dict[str, float]]:
    """Each backend's encoder, loaded (and exported, the first time) and run once: (encoders, load seconds)."""
    from loop_assets.dedup.backends import load_encoder

    encoders, seconds = {}, {}
    for name in names:
        if log:
            log(f"  loading {name} ...")
        started = time.perf_counter()
        encoders[name] = load_encoder(Path(model_path), name, batch_size)
        encoders[name](["warm up"])
        seconds[name] = round(time.perf_counter() - started, 3)
    return encoders, seconds


def agreements(
    encoders: dict[str, Callable[[list[str]], np.ndarray]],
    texts: list[str],
    apps: list[str] | None = None,
    thresholds: list[float] | None = None,
) -> dict[str, dict[str, float]]:
    """Per backend: the share of `texts` (in order, per app) decided as torch fp32 decides them, at every
    threshold (the lowest), and the lowest cosine between its vector and torch's."""
    apps = apps if apps is not None else ["-"] * len(texts)
    thresholds = thresholds or default_thresholds()
    if not texts:
        return {name: {"agreement": None, "min_cosine_to_torch": None} for name in encoders}
    reference = encoders["torch"](texts)
    decisions = reference_decisions(reference, apps, thresholds)
    out = {}
    for name, encoder in encoders.items():
        vectors = reference if name == "torch" else encoder(texts)
        # torch against itself takes every decision alike: 1.0, not worked out again
        agreement = 1.0 if name == "torch" else agreement_with(decisions, vectors, apps)
        out[name] = {
            "agreement": round(agreement, 5),
            "min_cosine_to_torch": round(float((reference * vectors).sum(axis=1).min()), 5),
        }
    return out


def batch_drift(encoders: dict[str, Callable[[list[str]], np.ndarray]], texts: list[str]) -> dict[str, float]:
    """Per backend: the largest change of any vector of `texts` when they are embedded in other batches
    (reversed order, and the first 37 alone) instead of together."""
    out = {}
    for name, encoder in encoders.items():
        if name == "torch":  # the reference, and the fallback whatever it does
            continue
        together = encoder(texts)
        reversed_ = encoder(texts[::-1])[::-1]
        first = encoder(texts[:37])
        out[name] = round(
            float(max(np.abs(reversed_ - together).max(), np.abs(first - together[:37]).max())) if texts else 0.0, 7
        )
    return out


def speeds(
    encoders: dict[str, Callable[[list[str]], np.ndarray]], texts: list[str], repeats: int = REPEATS
) -> dict[str, Any]:
    """texts/s of each backend on `texts` as `repeats` interleaved repetitions (torch, b1, b2, torch, ...),
    and each backend's speed-up over torch as the spread of its per-repetition ratios."""

    def timed(name: str) -> Callable[[], float]:
        def run() -> float:
            started = time.perf_counter()
            encoders[name](texts)
            return time.perf_counter() - started

        return run

    runs = interleaved([(n, timed(n)) for n in encoders], repeats)
    figures = {
        name: {
            "texts_per_s": spread([len(texts) / s for s in secs]),
            "speedup_vs_torch": paired_ratios(runs["seconds"]["torch"], secs),
        }
        for name, secs in runs["seconds"].items()
    }
    return {"backends": figures, "repeats": runs["repeats"], "load_average": runs["load_average"]}


def measure(
    model_path: str | Path,
    backends: Sequence[str],
    texts: list[str] | None = None,
    speed_texts: list[str] | None = None,
    repeats: int = REPEATS,
    thresholds: list[float] | None = None,
    batch_size: int = 64,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Agreement with torch fp32 on `texts` (default: AGREEMENT_TEXTS calibration texts) and texts/s on
    `speed_texts` (default: SPEED_TEXTS of them) as `repeats` interleaved repetitions of torch and each
    backend. Models are loaded (and exported, the first time) before any timing."""
    from loop_assets.dedup.backends import calibration_texts

    texts = texts if texts is not None else calibration_texts(AGREEMENT_TEXTS)
    speed_texts = speed_texts if speed_texts is not None else texts[:SPEED_TEXTS]
    thresholds = thresholds or default_thresholds()
    names = ["torch", *[b for b in backends if b != "torch"]]
    encoders, load_seconds = load_encoders(model_path, names, batch_size, log)
    figures = agreements(encoders, texts, None, thresholds)
    drift = batch_drift(encoders, speed_texts)
    for name in names:
        figures[name]["batch_drift"] = drift.get(name)
    if log:
        log(f"  {repeats} interleaved repetitions of {', '.join(names)} on {len(speed_texts)} texts ...")
    speed = speeds(encoders, speed_texts, repeats)
    for name in names:
        figures[name] |= speed["backends"][name] | {"load_seconds": load_seconds[name]}
    return {
        "backends": figures,
        "texts": len(texts),
        "speed_texts": len(speed_texts),
        "repeats": speed["repeats"],
        "thresholds": thresholds,
        "load_average": speed["load_average"],
    }


def qualifies(figures: dict[str, Any], min_agreement: float = MIN_AGREEMENT, name: str | None = None) -> bool:
    """Whether a backend's measured figures let it be chosen: its decisions agree with torch fp32's on at
    least `min_agreement` of the texts (and of the real texts, where measured), its vectors do not depend on
    their batch (BATCH_TOLERANCE: the embedding cache relies on it) and, when its `name` is given, it needs
    no calibration data (`backends.CALIBRATED`)."""
    from loop_assets.dedup.backends import CALIBRATED

    real = figures.get("agreement_real")
    return (
        (figures.get("agreement") or 0) >= min_agreement
        and (real is None or real >= min_agreement)
        and (figures.get("batch_drift") or 0.0) <= BATCH_TOLERANCE
        and name not in CALIBRATED
    )


def choose(figures: dict[str, dict[str, Any]], min_agreement: float = MIN_AGREEMENT) -> str:
    """The backend with the highest median speed-up over torch among those that `qualifies`; torch when
    none is faster."""
    best, best_speedup = "torch", 1.0
    for name, f in sorted(figures.items()):
        speedup = (f.get("speedup_vs_torch") or {}).get("median")
        if name == "torch" or speedup is None:
            continue
        if qualifies(f, min_agreement, name) and speedup > best_speedup:
            best, best_speedup = name, speedup
    return best


def choice_file(model_path: str | Path, info: dict[str, Any] | None = None) -> Path:
    """Where this machine's choice for this model lives: beside the model's exports."""
    from loop_assets.dedup.backends import export_dir

    return export_dir(model_path, "torch").parent / f"auto-v{CHOICE_VERSION}-{cpu_key(info)}.json"


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock on `path` across processes (POSIX); elsewhere only this process's lock."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with _lock, open(path, "a+b") as handle:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX
            yield
            return
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def read_choice(model_path: str | Path, path: Path | None = None) -> dict[str, Any] | None:
    """The cached measurement and choice for this machine and model, or None when not measured yet. `path`:
    its `choice_file` where the caller has it already (working it out walks and stats the model folder)."""
    path = path if path is not None else choice_file(model_path)
    with contextlib.suppress(OSError, ValueError):
        return json.loads(path.read_text(encoding="utf-8"))
    return None


def measure_and_store(
    model_path: str | Path, log: Callable[[str], None] | None = None, remeasure: bool = False
) -> dict[str, Any]:
    """The cached choice for this machine and model, measured now (once, under a lock) when there is none."""
    info = _this_cpu()
    path = choice_file(model_path, info)
    with _file_lock(path.with_suffix(".lock")):
        cached = None if remeasure else read_choice(model_path, path)
        if cached is not None:
            return cached
        if log:
            log(f"embedding.backend auto: measuring the backends on this machine ({info['model']}) once ...")
        started = time.perf_counter()
        figures = measure(model_path, candidates(), log=log)
        record = {
            "chosen": choose(figures["backends"]),
            "min_agreement": MIN_AGREEMENT,
            "cpu": info,
            "model_path": str(model_path),
            "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "measure_seconds": round(time.perf_counter() - started, 1),
            **figures,
        }
        fd, tmp = tempfile.mkstemp(prefix=".auto-", suffix=".json", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(record, indent=2) + "\n")
        os.replace(tmp, path)
        return record


def auto_backend(model_path: str | Path) -> str:
    """`embedding.backend: auto` on this machine for this model: the cached choice, measured the first time.

    Asked for on every embedding cache key: the memo is keyed by the model folder and the export cache root,
    not by `choice_file` (whose model fingerprint walks and stats the model's files; they and the CPU do not
    change within a process)."""
    from loop_assets.dedup.backends import cache_root

    key = (str(model_path), str(cache_root()))
    if key not in _chosen:
        if not candidates():
            return "torch"
        _chosen[key] = measure_and_store(model_path)["chosen"]
    return _chosen[key]


def main(argv: list[str] | None = None) -> int:
    import argparse

    from loop_assets.config import load_config
    from loop_assets.dedup.embedding import resolve_model_path

    parser = argparse.ArgumentParser(description="Show (or measure again) what embedding.backend auto is here.")
    parser.add_argument("--remeasure", action="store_true", help="measure again and replace the cached choice")
    args = parser.parse_args(argv)
    model_path = resolve_model_path(load_config().embedding.model)
    record = measure_and_store(model_path, log=print, remeasure=args.remeasure)
    print(render(record))
    print(f"cached in {choice_file(model_path)}")
    return 0


def render(record: dict[str, Any]) -> str:
    """The measurement as a markdown table and the choice in a sentence."""
    cpu = record["cpu"]
    lines = [
        f"auto = **{record['chosen']}** on {cpu['model']} ({cpu['cores']} cores; {describe_features(cpu)}), "
        f"measured {record['measured_at']} in {record['measure_seconds']} s, load average "
        f"{record['load_average'][0]} -> {record['load_average'][1]}; agreement on {record['texts']} calibration "
        f"texts, speed as {record['repeats']} interleaved repetitions on {record['speed_texts']} texts.",
        "",
        "| backend | texts/s (median) | x torch median (min-max) | agreement | min cosine to torch | batch drift |",
        "|---|---|---|---|---|---|",
    ]
    for name, f in record["backends"].items():
        s = f["speedup_vs_torch"]
        lines.append(
            f"| {name} | {f['texts_per_s']['median']} | {s['median']} ({s['min']}-{s['max']}) | "
            f"{f['agreement']:.2%} | {f['min_cosine_to_torch']} | {f.get('batch_drift')} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
