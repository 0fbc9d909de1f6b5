import numpy as np

from loop_assets.dedup.clustering import cluster_labels, representatives

FAMILIES = {
    "refund": [
        "can I get a refund for an opened item after 30 days",
        "I opened the box 5 weeks ago, can I still return it for a refund?",
        "refund for an opened product bought over a month ago?",
        "is a refund possible 40 days after purchase if I opened it",
        "want my money back for an item I opened, bought 2 months ago",
        "return and refund an opened item past the 30 day window",
    ],
    "sql": [
        "write a query for the running total of sales per region",
        "SQL to compute cumulative revenue by region ordered by date",
        "running sum of order amounts for each region in SQL",
        "how do I get a cumulative total of sales grouped by region",
        "query: rolling total of revenue per region over time",
        "cumulative sales per region, SQL please",
    ],
    "contract": [
        "summarise this 40 page supplier contract",
        "give me a summary of the attached service agreement",
        "please summarize the following lease contract",
        "short summary of this employment contract please",
        "summarise the key terms of this licensing agreement",
        "can you summarise this vendor contract for me",
    ],
}


def test_paraphrase_families_become_clusters(real_encoder):
    texts = [t for family in FAMILIES.values() for t in family]
    truth = [name for name, family in FAMILIES.items() for _ in family]
    labels = cluster_labels(real_encoder(texts), dims=16, min_cluster_size=3, min_samples=2)
    by_family = {name: {int(label) for label, t in zip(labels, truth, strict=True) if t == name} for name in FAMILIES}
    # each family lands in exactly one cluster, and different families in different clusters
    assert all(len(ls) == 1 and -1 not in ls for ls in by_family.values()), by_family
    assert len({next(iter(ls)) for ls in by_family.values()}) == 3


def test_too_few_points_are_noise():
    assert cluster_labels(np.eye(2, 8, dtype=np.float32), 16, 3, 2).tolist() == [-1, -1]


def test_representatives_cover_every_member_of_a_family_within_the_threshold_and_noise_represents_itself():
    vectors = np.array(
        [[1, 0, 0], [0.95, 0.31, 0], [0.1, 0.99, 0], [0, 0, 1], [0, 1, 0]], dtype=np.float32
    )  # one family of three where the third member is far from the first two
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    labels = np.array([0, 0, 0, -1, -1])
    chosen = representatives(vectors, labels, np.arange(5), 0.85)
    assert chosen.tolist() == [True, False, True, True, True]
    family = np.flatnonzero(labels == 0)
    assert ((vectors[family] @ vectors[chosen & (labels == 0)].T).max(axis=1) >= 0.85).all()


def test_representatives_are_taken_in_the_given_order():
    vectors = np.array([[1.0, 0.0], [0.95, 0.31]], dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    assert representatives(vectors, np.array([0, 0]), np.array([1, 0]), 0.85).tolist() == [False, True]
    assert representatives(vectors, np.array([0, 0]), np.array([0, 1]), 0.85).tolist() == [True, False]
