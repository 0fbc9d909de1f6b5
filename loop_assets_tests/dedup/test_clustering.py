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


def test_representative_is_the_member_nearest_the_centroid_and_noise_represents_itself():
    vectors = np.array(
        [[1, 0, 0], [0.8, 0.6, 0], [0.8, -0.6, 0], [0, 0, 1], [0, 1, 0]], dtype=np.float32
    )  # the centroid of the first three points is along x: point 0 is nearest
    labels = np.array([0, 0, 0, -1, -1])
    chosen = representatives(vectors, labels, ["c", "b", "a", "d", "e"])
    assert chosen.tolist() == [True, False, False, True, True]


def test_representative_ties_go_to_the_smallest_key():
    vectors = np.array([[0.8, 0.6], [0.8, -0.6]], dtype=np.float32)
    chosen = representatives(vectors, np.array([0, 0]), ["z", "a"])
    assert chosen.tolist() == [False, True]
