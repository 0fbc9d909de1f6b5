import numpy as np

from loop_assets.dedup.suite_search import nearest


def test_blocked_search_equals_full_matrix_product():
    rng = np.random.default_rng(0)
    q = rng.normal(size=(40, 16)).astype(np.float32)
    c = rng.normal(size=(1000, 16)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    idx, sim = nearest(q, c, block=64)
    full = q @ c.T
    assert idx.tolist() == full.argmax(axis=1).tolist()
    np.testing.assert_allclose(sim, full.max(axis=1), rtol=1e-5)


def test_empty_suite_has_no_nearest_case():
    idx, sim = nearest(np.ones((2, 4), dtype=np.float32), np.zeros((0, 4), dtype=np.float32))
    assert idx.tolist() == [-1, -1] and np.isnan(sim).all()
