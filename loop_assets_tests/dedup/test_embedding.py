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
