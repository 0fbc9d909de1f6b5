"""Density clustering of one app's failures on reduced dimensions.

HDBSCAN on raw 384-d vectors grows roughly quadratically (about 70 s for 10,000 points here); after
PCA to 16 dimensions it takes about a second. The reduced vectors are re-normalised so Euclidean
distance still ranks pairs as cosine similarity does (hdbscan rejects metric="cosine").
"""

from __future__ import annotations

import numpy as np


def reduce_dimensions(vectors: np.ndarray, dims: int) -> np.ndarray:
    n, d = vectors.shape
    if n <= 2 or d <= dims:
        return vectors
    from sklearn.decomposition import PCA

    components = min(dims, n - 1, d)
    reduced = PCA(n_components=components, svd_solver="full" if n < 5_000 else "randomized", random_state=0)
    reduced = reduced.fit_transform(vectors)
    norms = np.linalg.norm(reduced, axis=1, keepdims=True)
    return reduced / np.where(norms == 0, 1, norms)


def cluster_labels(vectors: np.ndarray, dims: int, min_cluster_size: int, min_samples: int | None) -> np.ndarray:
    """HDBSCAN labels (-1 noise); fewer points than a cluster needs are all noise."""
    n = vectors.shape[0]
    if n < min_cluster_size:
        return np.full(n, -1, dtype=np.int64)
    import hdbscan

    clusterer = hdbscan.HDBSCAN(
        min_cluster_size=min_cluster_size,
        min_samples=min_samples,
        metric="euclidean",
        cluster_selection_method="eom",
        core_dist_n_jobs=1,
    )
    return clusterer.fit_predict(reduce_dimensions(vectors, dims)).astype(np.int64)


def representatives(vectors: np.ndarray, labels: np.ndarray, order: np.ndarray, threshold: float) -> np.ndarray:
    """Boolean mask: a greedy cover of each cluster, so every member is within `threshold` of a representative.

    HDBSCAN on reduced dimensions finds families, but a family can hold texts far apart in the full
    space (on real traffic, members at cosine 0.1 of the member nearest the centroid): one exemplar
    cannot stand for them. Members are taken in `order` (most frequent and most severe first); one not
    yet within `threshold` of a representative becomes one. Every noise point represents itself.
    """
    chosen = labels == -1
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    for label in np.unique(labels[labels >= 0]):
        members = np.flatnonzero(labels == label)
        members = members[np.argsort(rank[members], kind="stable")]
        group = vectors[members]
        covered = np.zeros(len(members), dtype=bool)
        for i in range(len(members)):
            if not covered[i]:
                chosen[members[i]] = True
                covered |= group @ group[i] >= threshold
    return chosen
