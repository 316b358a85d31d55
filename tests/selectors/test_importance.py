from __future__ import annotations

import numpy as np
import pytest

from tamis.selectors import importance as imp


def test_weights_match_a_brute_force_computation():
    spec = np.array([0, 0, 1, 3, 3, 3])
    pool = np.array([0, 1, 1, 1, 2, 2, 3, 3])
    s = imp.histogram(spec, 4)
    g = imp.histogram(pool, 4)
    w = imp.weights(s, g)
    for c in range(4):
        p_spec = np.mean(spec == c)
        p_pool = np.mean(pool == c)
        assert w[c] == pytest.approx(p_spec / p_pool if p_pool else 0.0)
    assert w[2] == 0 and w[3] == pytest.approx((3 / 6) / (2 / 8))


def test_mixing_and_smoothing():
    a, b = np.array([1.0, 0, 0]), np.array([0, 0, 2.0])
    assert imp.mix([a, b], [3, 1]).tolist() == pytest.approx([0.75, 0, 0.25])
    smooth = imp.mix([a], smoothing=0.3)
    assert smooth.sum() == pytest.approx(1) and smooth[1] == pytest.approx(0.1 / 1.3)
    with pytest.raises(ValueError, match="empty"):
        imp.mix([np.zeros(3)])
    with pytest.raises(ValueError, match="proportions must be 2"):
        imp.mix([a, b], [1])


def test_counts_are_a_pure_function_of_seed_and_id_with_the_right_mean():
    ids = [f"doc{i}" for i in range(40_000)]
    clusters = np.arange(40_000) % 4
    lam = np.array([0.0, 0.5, 2.0, 30.0])
    n = imp.draw_counts(ids, clusters, lam, seed=5, cap=16)
    assert np.array_equal(n[::-1], imp.draw_counts(ids[::-1], clusters[::-1], lam, 5, 16))
    assert np.all(n[clusters == 0] == 0)
    assert n[clusters == 1].mean() == pytest.approx(0.5, abs=0.02)
    assert n[clusters == 2].mean() == pytest.approx(2.0, abs=0.04)
    assert n[clusters == 2].var() == pytest.approx(2.0, rel=0.05)  # Poisson
    assert n.max() == 16 and n[clusters == 3].mean() > 15.9  # the cap holds
    assert not np.array_equal(n, imp.draw_counts(ids, clusters, lam, seed=6, cap=16))


def test_rates_spend_the_budget_by_the_target_histogram():
    target = np.array([1.0, 3.0, 0.0])
    tokens = np.array([100.0, 600.0, 50.0])
    lam = imp.rates(target, tokens, budget=400)
    assert (lam * tokens).tolist() == pytest.approx([100, 300, 0])


def test_statistics():
    assert imp.kl_divergence([0.5, 0.5], [0.5, 0.5]) == 0
    assert imp.kl_divergence([1, 0], [0.5, 0.5]) == pytest.approx(np.log(2))
    assert imp.effective_sample_size([1, 1, 1, 1]) == 4
    assert imp.effective_sample_size([4, 0, 0, 0]) == 1
    assert imp.coverage(np.array([1, 1, 2]), np.array([5, 0, 1])) == pytest.approx(0.75)
    with pytest.raises(ValueError, match=r"cluster ids must be in \[0, 3\)"):
        imp.histogram(np.array([0, 3]), 3)


def test_without_replacement_never_repeats_before_a_cluster_is_exhausted():
    ids = [f"doc-{i}" for i in range(3000)]
    clusters = np.arange(3000) % 3
    lam = np.array([0.4, 1.0, 2.5])
    n = imp.without_replacement_counts(ids, clusters, lam, seed=5, cap=16)
    # under one draw per record: 0 or 1 each, about lam of the cluster drawn
    assert set(n[clusters == 0].tolist()) <= {0, 1}
    assert abs(n[clusters == 0].mean() - 0.4) < 0.04
    # exactly exhausted: every record once, none twice
    assert (n[clusters == 1] == 1).all()
    # over-asked: every record at least twice before any third draw, half get the third
    assert set(n[clusters == 2].tolist()) == {2, 3}
    assert abs(n[clusters == 2].mean() - 2.5) < 0.05
    capped = imp.without_replacement_counts(ids, clusters, lam, seed=5, cap=1)
    assert capped.max() == 1 and (capped[clusters == 2] == 1).all()
    again = imp.without_replacement_counts(ids[::-1], clusters[::-1], lam, seed=5, cap=16)
    assert again[::-1].tolist() == n.tolist()  # a pure function of (seed, id)
    assert imp.expected_draws(lam, 2, "without_replacement").tolist() == [0.4, 1.0, 2.0]
    assert imp.expected_draws(lam, 2, "poisson")[2] < 2.0
