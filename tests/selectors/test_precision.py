"""Selections that do not move when scores carry the float noise of another CPU.

Another machine's BLAS kernel, or vectors embedded there, change float32 results by about
1e-7 relative. Each test perturbs its inputs by that much and expects exactly the same
selection; where the old float comparison would have changed, the test says so, so that it
cannot pass by luck of the data.
"""

from __future__ import annotations

import numpy as np
import pytest

from tamis.selectors.clusters import HierarchicalKMeans, normalize
from tamis.selectors.dsir import gumbel_keys
from tamis.selectors.precision import STEP, cells, quantize, tie_keys
from tamis.selectors.quality_report import score_histogram, threshold_from_histogram
from tamis.selectors.relevance import NeighbourIndex, knn_relevance
from tamis.selectors.sampling import top_by_budget

NOISE = 1e-7


def jitter(x: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.asarray(x) * (1 + NOISE * rng.standard_normal(np.shape(x)))


def tied_scores(n: int, seed: int = 0) -> np.ndarray:
    """Scores in [0, 1] with many exact duplicates (copies of the same document), each within a
    quarter cell of a grid point: no noise of 1e-7 can carry one across a cell's edge."""
    rng = np.random.default_rng(seed)
    distinct = rng.integers(1, int(1 / STEP), size=n // 4) * STEP
    distinct = distinct + rng.uniform(-STEP / 4, STEP / 4, size=len(distinct))
    return rng.choice(distinct, size=n)


def test_quantize_is_exact_on_the_grid_and_passes_infinities():
    x = np.array([0.1, -0.3, 1.0, 12345.678, -np.inf, np.inf])
    q = quantize(x)
    assert np.all(np.abs(q[:4] - x[:4]) <= STEP / 2)
    assert np.array_equal(q[4:], x[4:])
    assert np.array_equal(quantize(q), q)
    assert np.array_equal(cells(q[:4]) * STEP, q[:4])
    a, b = quantize([0.25, 0.5]), quantize([0.125, 0.0625])
    assert np.array_equal(quantize(a + b), a + b)  # sums of grid values stay on the grid


def test_top_by_budget_ignores_noise_between_duplicates():
    scores = tied_scores(400)
    ids = [f"doc-{i}" for i in range(400)]
    sizes = np.random.default_rng(1).integers(1, 50, size=400)
    ties = tie_keys(ids, seed=5)
    reference = top_by_budget(quantize(scores), sizes, 3000, ties)
    moved = 0
    for seed in range(20):
        noisy = jitter(scores, seed)
        assert np.array_equal(top_by_budget(quantize(noisy), sizes, 3000, ties), reference)
        moved += not np.array_equal(top_by_budget(noisy, sizes, 3000), top_by_budget(
            scores, sizes, 3000))
    assert moved > 0  # comparing the raw floats would have changed the selection


def test_the_quality_threshold_ignores_noise():
    scores = tied_scores(5000, seed=2)
    reference = quantize(scores)
    for keep in (0.05, 0.3):
        threshold = threshold_from_histogram(score_histogram(reference), keep)
        for seed in range(10):
            noisy = quantize(jitter(scores, seed))
            assert threshold_from_histogram(score_histogram(noisy), keep) == threshold
            assert np.array_equal(noisy >= threshold, reference >= threshold)


def test_dsir_keys_ignore_noise_in_the_log_weights():
    rng = np.random.default_rng(3)
    ids = [str(i) for i in range(2000)]
    log_weights = np.repeat(rng.normal(0, 3, size=200), 10)  # duplicated documents
    sizes = rng.integers(50, 500, size=2000)
    ties = tie_keys(ids, 7)
    reference = top_by_budget(gumbel_keys(log_weights, ids, 7), sizes, 40_000, ties)
    for seed in range(10):
        keys = gumbel_keys(jitter(log_weights, seed), ids, 7)
        assert np.array_equal(top_by_budget(keys, sizes, 40_000, ties), reference)


def blobs(n_per: int, k: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = normalize(rng.normal(size=(k, dim)))
    x = np.repeat(centres, n_per, axis=0) + 0.2 * rng.normal(size=(k * n_per, dim))
    return normalize(x.astype(np.float32))


def test_cluster_fits_and_routes_ignore_noise():
    x = blobs(300, 6, 16, seed=4)
    x = np.concatenate([x, x[:300]])  # exact duplicates land in the same cluster
    model = HierarchicalKMeans(branching=4, levels=2, niter=10, seed=2).fit(x)
    reference = model.assign(x)
    for seed in range(5):
        noisy = jitter(x, seed).astype(np.float32)
        assert np.array_equal(model.assign(noisy), reference)
        again = HierarchicalKMeans(branching=4, levels=2, niter=10, seed=2).fit(noisy)
        assert np.array_equal(again.assign(x), reference)
        assert again.sizes_[1].tolist() == model.sizes_[1].tolist()


@pytest.mark.parametrize("exact_up_to", [100_000, 500])
def test_relevance_and_its_top_ignore_noise(exact_up_to):
    rng = np.random.default_rng(5)
    specialist = blobs(200, 5, 24, seed=6)
    pool = np.concatenate([blobs(300, 8, 24, seed=7)] * 2)  # every document twice
    index = NeighbourIndex(specialist, exact_up_to=exact_up_to, nprobe=8, seed=1)
    assert index.exact == (exact_up_to > 1000)
    ids = [f"p{i}" for i in range(len(pool))]
    sizes = rng.integers(10, 100, size=len(pool))
    reference_scores = knn_relevance(index, pool, k=10)
    reference = top_by_budget(reference_scores, sizes, 20_000, tie_keys(ids, 0))
    half = len(pool) // 2
    assert np.array_equal(reference_scores[:half], reference_scores[half:])
    for seed in range(5):
        noisy_index = NeighbourIndex(jitter(specialist, 50 + seed).astype(np.float32),
                                     exact_up_to=exact_up_to, nprobe=8, seed=1)
        scores = knn_relevance(noisy_index, jitter(pool, seed).astype(np.float32), k=10)
        assert np.mean(scores != reference_scores) < 0.01  # only scores by a cell's edge
        assert np.array_equal(top_by_budget(scores, sizes, 20_000, tie_keys(ids, 0)),
                              reference)
