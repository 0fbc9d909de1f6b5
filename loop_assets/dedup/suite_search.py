"""Nearest suite case by cosine similarity, in blocks so memory stays bounded as the suite grows."""

from __future__ import annotations

import numpy as np


def nearest(queries: np.ndarray, cases: np.ndarray, block: int = 8_192) -> tuple[np.ndarray, np.ndarray]:
    """For each unit-length query row: index of the most similar case row and that similarity.

    With no cases, index is -1 and similarity NaN. Blocks of `block` cases keep the similarity
    matrix at len(queries) x block floats whatever the suite size.
    """
    n = queries.shape[0]
    best_idx = np.full(n, -1, dtype=np.int64)
    best_sim = np.full(n, np.nan, dtype=np.float64)
    if n == 0 or cases.shape[0] == 0:
        return best_idx, best_sim
    best_sim[:] = -np.inf
    for start in range(0, cases.shape[0], block):
        sims = queries @ cases[start : start + block].T
        idx = sims.argmax(axis=1)
        top = sims[np.arange(n), idx]
        better = top > best_sim
        best_sim[better] = top[better]
        best_idx[better] = idx[better] + start
    return best_idx, np.clip(best_sim, -1.0, 1.0)
