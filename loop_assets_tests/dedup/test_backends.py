"""Embedding backends: int8 ONNX Runtime and OpenVINO exports of the shipped model, made once, agreeing with torch."""

import numpy as np
import pytest

from loop_assets.config import ConfigError, LoopConfig
from loop_assets.dedup import backends
from loop_assets.dedup.embedding import SentenceEncoder, model_id, resolve_model_path

TEXTS = [
    "where is my parcel?",
    "my package has not arrived, where is it?",
    "write a SQL query with a running total of spend per customer",
    "summarise this contract: " + "the provider shall deliver the services described in schedule A. " * 30,
]


@pytest.fixture(scope="module")
def torch_vectors(real_encoder):
    return real_encoder(TEXTS)


@pytest.mark.parametrize("backend", ["onnx", "openvino", "openvino_static"])
def test_int8_backends_give_unit_vectors_close_to_torch(backend, torch_vectors):
    encoder = SentenceEncoder(model="all-MiniLM-L6-v2", backend=backend)
    vectors = encoder(TEXTS)
    assert vectors.shape == (len(TEXTS), 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    assert (vectors * torch_vectors).sum(axis=1).min() > 0.97
    # paraphrases still rank above an unrelated request
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2
    assert encoder.model_id == f"sentence-transformers/all-MiniLM-L6-v2@{backend}"


@pytest.mark.parametrize("export", [backends.export_onnx, backends.export_openvino, backends.export_openvino_static])
def test_exports_come_from_the_local_model_and_are_made_once(export):
    model_path = resolve_model_path("all-MiniLM-L6-v2")
    folder = export(model_path)
    assert folder == backends.export_dir(model_path, folder.name) and folder.name in backends.BACKENDS
    assert folder.is_relative_to(backends.cache_root()) and (folder / "done").is_file()
    files = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    assert export(model_path) == folder
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == files  # reused, not redone


def test_an_export_is_atomic_and_a_failed_build_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("EVAL_LOOP_MODEL_CACHE", str(tmp_path))
    target = tmp_path / "m" / "onnx"

    def broken(tmp):
        (tmp / "half.onnx").write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        backends._atomic_export(target, broken)
    assert not target.exists() and list((tmp_path / "m").iterdir()) == []
    assert backends._atomic_export(target, lambda tmp: (tmp / "model.onnx").write_text("ok")) == target
    assert (target / "model.onnx").read_text() == "ok" and (target / "done").is_file()


def test_auto_is_the_measured_default_and_names_are_checked():
    assert backends.MEASURED_DEFAULT in backends.BACKENDS
    assert backends.resolve_backend("auto") == backends.MEASURED_DEFAULT  # its runtime is a dependency
    assert backends.resolve_backend("torch") == "torch"
    with pytest.raises(ValueError, match="unknown embedding backend"):
        backends.resolve_backend("tpu")
    assert SentenceEncoder(model="all-MiniLM-L6-v2").model_id == model_id("all-MiniLM-L6-v2", "torch")


def test_the_config_validates_the_backend(tmp_path):
    assert LoopConfig().embedding.backend == "auto"
    for name in ("torch", "onnx", "openvino", "openvino_static"):
        assert LoopConfig.model_validate({"embedding": {"backend": name}}).embedding.backend == name
    from loop_assets.config import load_config

    bad = tmp_path / "bad.yaml"
    bad.write_text("embedding:\n  backend: tpu\n")
    with pytest.raises(ConfigError, match=r"embedding\.backend"):
        load_config(bad)


def test_calibration_texts_are_made_locally_and_look_like_the_loop_s_texts():
    texts = backends.calibration_texts(50)
    assert 40 <= len(texts) <= 50 and all(t == t.lower() and "  " not in t for t in texts)


def test_a_backend_without_its_runtime_is_refused_at_load(monkeypatch):
    monkeypatch.setattr(backends, "available", lambda name: name == "torch")
    with pytest.raises(ValueError, match="openvino, nncf and onnx"):
        LoopConfig.model_validate({"embedding": {"backend": "openvino"}})
    assert backends.resolve_backend("auto") == "torch"


# int8 kernels block their work by batch shape (OpenVINO on AVX2 differs from AVX-512), so a text's vector may
# move in the last bits with its batch; 1e-5 is far above that and far below anything a decision can see.
BATCH_TOLERANCE = 1e-5


@pytest.mark.parametrize("backend", ["openvino", "openvino_static"])
def test_a_text_gets_the_same_vector_and_decisions_whatever_else_is_in_its_batch(backend):
    # Two runs embedding the same day in other batches must store vectors that decide alike (cache, concurrency).
    encoder = SentenceEncoder(model="all-MiniLM-L6-v2", backend=backend)
    texts = TEXTS + backends.calibration_texts(120)
    together = encoder(texts)
    shapes = {
        "first 37": (encoder(texts[:37]), together[:37]),
        "alone": (encoder(texts[3:4]), together[3:4]),
        "reversed": (encoder(list(reversed(texts)))[::-1], together),
    }
    thresholds = [0.70, 0.80, 0.85]
    for name, (other, same) in shapes.items():
        np.testing.assert_allclose(other, same, atol=BATCH_TOLERANCE, rtol=0, err_msg=name)
        sims_other, sims_same = other @ together.T, same @ together.T
        clear = np.abs(sims_same[..., None] - np.array(thresholds)) > 2 * BATCH_TOLERANCE
        decided_other = sims_other[..., None] >= np.array(thresholds)
        decided_same = sims_same[..., None] >= np.array(thresholds)
        assert (decided_other == decided_same)[clear].all(), name


def test_the_loop_embeds_with_the_configured_backend():
    from loop_assets.defs.resources import Embedder

    default = LoopConfig()
    assert Embedder().model_id(default) == model_id("all-MiniLM-L6-v2", backends.MEASURED_DEFAULT)
    assert Embedder().encoder(default).resolved_backend == backends.MEASURED_DEFAULT
    pinned = LoopConfig.model_validate({"embedding": {"backend": "torch"}})
    assert Embedder().model_id(pinned) == "sentence-transformers/all-MiniLM-L6-v2@torch"
    assert Embedder(backend="openvino").model_id(pinned).endswith("@openvino")  # the resource overrides the file
