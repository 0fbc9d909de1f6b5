import numpy as np
import polars as pl
import pytest

from loop_assets.dedup.embedding import embed_with_cache, model_id, resolve_model_path
from loop_assets.dedup.text import text_hash

MODEL = "sentence-transformers/all-MiniLM-L6-v2@torch"


def _texts(texts: list[str]) -> pl.DataFrame:
    return pl.DataFrame({"text": texts}).with_columns(text_hash(pl.col("text")).alias("text_hash"))


def test_each_distinct_text_is_embedded_once_and_then_served_from_cache(counting_encoder):
    texts = _texts(["where is my parcel", "where is my parcel", "cancel my plan"])
    empty_cache = pl.DataFrame(schema={"text_hash": pl.String, "embedding": pl.List(pl.Float32)})
    first = embed_with_cache(texts, empty_cache, counting_encoder, MODEL)
    assert counting_encoder.texts_embedded == 2  # the repeated text is embedded once
    assert (first.embedded, first.cached) == (2, 0)
    assert set(first.vectors["embedding_source"]) == {"embedded"}

    again = embed_with_cache(texts, first.new_cache_rows, counting_encoder, MODEL)
    assert counting_encoder.texts_embedded == 2  # nothing new was embedded
    assert (again.embedded, again.cached) == (0, 2)
    assert set(again.vectors["embedding_source"]) == {"cache"}
    a = np.asarray(first.vectors.sort("text_hash")["embedding"].to_list())
    b = np.asarray(again.vectors.sort("text_hash")["embedding"].to_list())
    np.testing.assert_allclose(a, b)


def test_real_model_gives_unit_vectors_that_rank_paraphrases_close(real_encoder):
    vectors = real_encoder(["where is my parcel?", "my package has not arrived, where is it?", "write a SQL join"])
    assert vectors.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2


def test_nothing_loads_the_model_when_nothing_needs_embedding():
    from loop_assets.dedup.embedding import SentenceEncoder

    encoder = SentenceEncoder(model="all-MiniLM-L6-v2")
    cache_rows = pl.DataFrame(
        {"text_hash": ["h1"], "embedding": [[0.1] * 384]},
        schema={"text_hash": pl.String, "embedding": pl.List(pl.Float32)},
    )
    result = embed_with_cache(pl.DataFrame({"text": ["x"], "text_hash": ["h1"]}), cache_rows, encoder, MODEL)
    assert result.cached == 1 and encoder.loads == 0


def test_models_come_from_the_package_or_a_local_folder_never_a_hub(tmp_path):
    assert resolve_model_path("all-MiniLM-L6-v2").endswith("model")
    assert resolve_model_path(str(tmp_path)) == str(tmp_path)
    with pytest.raises(ValueError, match="never downloaded"):
        resolve_model_path("BAAI/bge-small-en-v1.5")
    assert model_id("all-MiniLM-L6-v2") == MODEL


def test_chunks_for_progress_give_each_text_its_own_vector_in_its_own_place(real_encoder, monkeypatch):
    """With progress, texts are embedded in chunks shortest first; the vectors come back in the texts' order."""
    from loop_assets.dedup import embedding

    monkeypatch.setattr(embedding, "PROGRESS_CHUNK", 4)
    words = ["refund", "where is my parcel", "a much longer question about the invoice I got last week", "hi"]
    texts = _texts([f"{w} {i}" for i in range(3) for w in words])
    empty_cache = pl.DataFrame(schema={"text_hash": pl.String, "embedding": pl.List(pl.Float32)})
    seen: list[tuple[int, int]] = []
    chunked = embed_with_cache(texts, empty_cache, real_encoder, MODEL, progress=lambda a, b: seen.append((a, b)))
    whole = embed_with_cache(texts, empty_cache, real_encoder, MODEL)
    assert seen == [(4, 12), (8, 12), (12, 12)]
    by_hash = dict(zip(whole.vectors["text_hash"], whole.vectors["embedding"].to_list(), strict=True))
    for text_hash_, vector in zip(chunked.vectors["text_hash"], chunked.vectors["embedding"].to_list(), strict=True):
        np.testing.assert_allclose(vector, by_hash[text_hash_], atol=1e-5)  # torch pads per batch: not bit-equal
    direct = real_encoder([texts["text"][5]])[0]
    got = dict(zip(chunked.vectors["text_hash"], chunked.vectors["embedding"].to_list(), strict=True))
    np.testing.assert_allclose(got[texts["text_hash"][5]], direct, atol=1e-5)
