from __future__ import annotations

import io

import numpy as np
import pytest

from tamis.selectors.clusters import HierarchicalKMeans, kmeans_pp, normalize
from tamis.selectors.precision import quantize


def blobs(sizes, dim=16, spread=0.15, seed=0):
    rng = np.random.default_rng(seed)
    centres = normalize(rng.normal(size=(len(sizes), dim)))
    x = np.concatenate([c + spread * rng.normal(size=(n, dim)) for c, n in zip(centres, sizes,
                                                                                strict=True)])
    labels = np.repeat(np.arange(len(sizes)), sizes)
    return x.astype(np.float32), labels


def test_balancing_splits_a_dominant_cluster():
    x, _ = blobs([6000, 300, 300, 300, 300, 300, 300, 300])  # one blob holds 70%
    k = 8
    model = HierarchicalKMeans(branching=k, levels=1, niter=10, balance=1.5).fit(x)
    sizes = np.bincount(model.assign(x)[:, 0], minlength=k)
    assert sizes.max() <= 1.5 * len(x) / k
    unbalanced = HierarchicalKMeans(branching=k, levels=1, niter=10, balance=100).fit(x)
    assert np.bincount(unbalanced.assign(x)[:, 0], minlength=k).max() > 1.5 * len(x) / k


def test_two_levels_nest_and_route_greedily():
    x, labels = blobs([400] * 6, dim=8, spread=0.05)
    model = HierarchicalKMeans(branching=4, levels=2, niter=10).fit(x)
    ids = model.assign(x)
    assert ids.shape == (len(x), 2)
    assert np.all(ids[:, 1] // 4 == ids[:, 0])  # a leaf lies under its parent
    assert ids[:, 1].max() < model.n_clusters(1) == 16
    # greedy routing: the leaf is the nearest child of the chosen parent
    xn = normalize(x)
    for i in range(0, len(x), 97):
        p = ids[i, 0]
        children = model.centroids_[1][p, : model.n_children_[1][p]]
        assert ids[i, 1] == p * 4 + int(np.argmax(children @ xn[i]))
    # well-separated blobs stay together at the top level
    for blob in range(6):
        assert len(np.unique(ids[labels == blob, 0])) == 1


def test_fit_and_routing_are_deterministic_and_survive_save_load():
    x, _ = blobs([300] * 5, dim=8)
    a = HierarchicalKMeans(branching=4, levels=2, niter=5, seed=3).fit(x)
    b = HierarchicalKMeans(branching=4, levels=2, niter=5, seed=3).fit(x)
    assert all(np.array_equal(p, q) for p, q in zip(a.centroids_, b.centroids_, strict=True))
    assert np.array_equal(a.assign(x), a.assign(x[::-1])[::-1])  # order does not matter
    buffer = io.BytesIO()
    a.save(buffer)
    buffer.seek(0)
    loaded = HierarchicalKMeans.load(buffer)
    assert np.array_equal(loaded.assign(x), a.assign(x))
    assert loaded.describe() == a.describe()
    assert a.describe()["sizes"][0] == np.bincount(a.assign(x)[:, 0], minlength=4).tolist()


def test_small_parents_get_fewer_children():
    x, _ = blobs([200, 3], dim=8, spread=0.01)
    model = HierarchicalKMeans(branching=2, levels=2, niter=5).fit(x)
    assert set(model.n_children_[1].tolist()) <= {1, 2}
    ids = model.assign(x)
    assert ids[:, 1].max() < 4


def test_kmeans_pp_picks_distinct_points():
    x, _ = blobs([50] * 4, dim=4, spread=0.01)
    centres = kmeans_pp(x, 4, np.random.default_rng(0))
    assert len({tuple(np.round(c, 4)) for c in centres}) == 4


def test_bad_arguments_name_the_value():
    x, _ = blobs([20], dim=4)
    with pytest.raises(ValueError, match="levels must be 1 to 3, got 4"):
        HierarchicalKMeans(branching=2, levels=4).fit(x)
    with pytest.raises(ValueError, match="need at least branching=64 vectors"):
        HierarchicalKMeans(branching=64).fit(x)
    model = HierarchicalKMeans(branching=2, levels=1, niter=2).fit(x)
    with pytest.raises(ValueError, match="vectors have 5 dimensions, the clusters 4"):
        model.assign(np.ones((2, 5), np.float32))


def test_soft_counts_spread_over_the_routed_parents_children():
    x, _ = blobs([300, 300, 300, 300], dim=16, seed=3)
    model = HierarchicalKMeans(branching=4, levels=2, niter=10, seed=1).fit(x)
    docs = x[::37]
    routed = model.assign(docs)
    for level in (0, 1):
        hard = model.soft_counts(docs, level, k=1)
        assert hard.tolist() == np.bincount(routed[:, level],
                                            minlength=model.n_clusters(level)).tolist()
    soft = model.soft_counts(docs, 1, k=3, temperature=0.1)
    assert soft.sum() == pytest.approx(len(docs))
    # brute force: each document over the 3 children of its routed parent most like it, by
    # cosines on the documented grid
    expected = np.zeros(16)
    for v, parent in zip(normalize(docs), routed[:, 0], strict=True):
        kids = model.centroids_[1][parent, :model.n_children_[1][parent]]
        sims = quantize(kids.astype(np.float64) @ v.astype(np.float64))
        top = np.argsort(-sims, kind="stable")[:3]
        w = np.exp((sims[top] - sims[top[0]]) / 0.1)
        expected[parent * 4 + top] += w / w.sum()
    np.testing.assert_allclose(soft, expected, rtol=1e-5, atol=1e-9)
