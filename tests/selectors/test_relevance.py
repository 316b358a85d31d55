from __future__ import annotations

import numpy as np
import pytest

from tamis.selectors.clusters import normalize
from tamis.selectors.precision import STEP, quantize
from tamis.selectors.relevance import NeighbourIndex, knn_relevance, mmr


def unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_knn_relevance_matches_brute_force_cosine():
    rng = np.random.default_rng(0)
    specialist, pool = unit(rng, 60, 16), rng.normal(size=(200, 16)).astype(np.float32)
    got = knn_relevance(NeighbourIndex(specialist), pool, k=5)
    # the vectors the index holds: L2-normalised in float32
    cos = quantize(normalize(pool).astype(np.float64) @ normalize(specialist).astype(np.float64).T)
    # the documented rule: cosines on the grid, their mean on the grid
    assert got.tolist() == quantize(np.sort(cos, axis=1)[:, -5:].mean(axis=1)).tolist()
    # k larger than the specialist set: the mean over all of it
    three = knn_relevance(NeighbourIndex(specialist[:3]), pool, k=10)
    assert three.tolist() == quantize(cos[:, :3].mean(axis=1)).tolist()


def test_the_approximate_index_is_close_and_the_same_when_rebuilt():
    rng = np.random.default_rng(1)
    centres = unit(rng, 20, 24)
    specialist = centres[rng.integers(0, 20, 4000)] + 0.3 * unit(rng, 4000, 24)
    queries = centres[rng.integers(0, 20, 300)] + 0.3 * unit(rng, 300, 24)
    exact = knn_relevance(NeighbourIndex(specialist), queries, k=10)
    ivf = NeighbourIndex(specialist, exact_up_to=1000, nprobe=16, seed=3)
    assert not ivf.exact
    approx = knn_relevance(ivf, queries, k=10)
    assert np.abs(approx - exact).max() < 0.05 and np.all(approx <= exact + 1e-5)
    rebuilt = knn_relevance(NeighbourIndex(specialist, exact_up_to=1000, nprobe=16, seed=3),
                            queries, k=10)
    assert rebuilt.tolist() == approx.tolist()


def brute_force_mmr(x, rel, sizes, budget, lam):
    """The documented rule, one gain at a time: float64 cosines and gains on the grid, equal
    gains to the lowest index."""
    x = x.astype(np.float64) / np.linalg.norm(x.astype(np.float64), axis=1, keepdims=True)
    rel = quantize(rel)
    picked, spent = [], 0.0
    while len(picked) < len(x):
        best, best_gain = None, -np.inf
        for i in range(len(x)):
            if i in picked:
                continue
            penalty = max((float(quantize(np.sum(x[i] * x[j]))) for j in picked), default=0.0)
            gain = float(quantize(lam * rel[i] - (1 - lam) * penalty))
            if gain > best_gain:
                best, best_gain = i, gain
        if spent + sizes[best] > budget:
            break
        picked.append(best)
        spent += sizes[best]
    return picked


def near_duplicates(seed: int = 2):
    rng = np.random.default_rng(seed)
    x = unit(rng, 40, 8)
    x[20:30] = x[0] + 0.01 * unit(rng, 10, 8)  # near-duplicates of the most relevant row
    rel = rng.uniform(0.2, 0.6, 40)
    rel[0], rel[20:30] = 0.9, 0.89
    sizes = rng.integers(1, 5, 40).astype(float)
    return x, rel, sizes


@pytest.mark.parametrize("lam", [0.0, 0.3, 0.7, 1.0])
def test_mmr_matches_a_brute_force_reference(lam):
    x, rel, sizes = near_duplicates()
    got = mmr(x, rel, sizes, budget=40, lam=lam).tolist()
    assert got == brute_force_mmr(x, rel, sizes, 40, lam)
    assert sum(sizes[got]) <= 40
    if lam == 1.0:  # pure relevance: the near-duplicates come right after row 0
        assert set(got[:11]) == {0, *range(20, 30)}
    if lam == 0.3:  # diversity: at most one of the near-duplicate group early on
        assert len({0, *range(20, 30)} & set(got[:10])) == 1
    # every pick is the best available gain to within one grid step (no tie can mislead it)
    unit_x = x.astype(np.float64) / np.linalg.norm(x.astype(np.float64), axis=1, keepdims=True)
    for step, i in enumerate(got):
        done, free = got[:step], [j for j in range(40) if j not in got[:step]]
        penalty = (unit_x[free] @ unit_x[done].T).max(axis=1) if done else np.zeros(len(free))
        gains = lam * rel[free] - (1 - lam) * penalty
        mine = gains[free.index(i)]
        assert mine >= gains.max() - 2 * STEP


@pytest.mark.parametrize("lam", [0.3, 0.7])
def test_mmr_picks_do_not_move_with_float32_noise(lam):
    """Vectors embedded on another machine differ by about 1e-7: the picks stay the same,
    although raw float32 gains of the near-duplicates are closer than that noise."""
    x, rel, sizes = near_duplicates()
    reference = mmr(x, rel, sizes, budget=40, lam=lam).tolist()
    for seed in range(10):
        rng = np.random.default_rng(100 + seed)
        noisy_x = (x * (1 + 1e-7 * rng.standard_normal(x.shape))).astype(np.float32)
        noisy_rel = rel * (1 + 1e-7 * rng.standard_normal(rel.shape))
        assert mmr(noisy_x, noisy_rel, sizes, 40, lam).tolist() == reference
