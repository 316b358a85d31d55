from __future__ import annotations

import io

import numpy as np
import pytest

from tamis.selectors.quality import (
    EmbeddingLogistic,
    accuracy,
    diagnostics,
    holdout_mask,
    length_matched,
    top_fraction_threshold,
)


def test_length_matching_follows_the_positive_lengths():
    rng = np.random.default_rng(0)
    positives = rng.lognormal(6, 0.3, size=500)  # long
    negatives = np.r_[rng.lognormal(4, 0.5, size=5000), rng.lognormal(6, 0.3, size=1000)]
    ids = [f"n{i}" for i in range(len(negatives))]
    chosen = length_matched(positives, negatives, ids, n=400, seed=1)
    assert abs(len(chosen) - 400) <= 10
    assert abs(np.median(negatives[chosen]) - np.median(positives)) < 0.1 * np.median(positives)
    assert np.median(negatives) < 0.3 * np.median(positives)  # unmatched: far shorter
    assert np.array_equal(chosen, length_matched(positives, negatives, ids, 400, seed=1))


def test_exact_threshold_keeps_the_top_share():
    scores = np.arange(100) / 100
    threshold = top_fraction_threshold(scores, 0.1)
    assert threshold == 0.90 and np.sum(scores >= threshold) == 10
    assert top_fraction_threshold(scores, 1.0) == 0.0
    with pytest.raises(ValueError, match=r"keep must be in \(0, 1\]"):
        top_fraction_threshold(scores, 0)


def test_the_histogram_threshold_is_the_exact_percentile_of_the_grid_scores():
    from tamis.selectors.precision import quantize
    from tamis.selectors.quality import score_histogram, threshold_from_histogram

    rng = np.random.default_rng(3)
    scores = quantize(np.r_[rng.beta(2, 5, 5000), np.full(300, 0.5), [0.0, 1.0]])
    halves = score_histogram(scores[:2000]) + score_histogram(scores[2000:])  # mergeable
    for keep in (0.001, 0.1, 0.25, 0.5, 0.9, 1.0):
        threshold = threshold_from_histogram(halves, keep)
        assert threshold == top_fraction_threshold(scores, keep)
        assert np.sum(scores >= threshold) >= np.ceil(keep * len(scores))
    assert threshold_from_histogram(np.zeros_like(halves), 0.5) == 1.0


def test_diagnostics_report_hq_pass_share_and_length_correlation():
    pool = np.linspace(0, 1, 50)
    lengths = np.arange(50)[::-1]  # short = good
    d = diagnostics(pool, lengths, hq_scores=np.array([0.95, 0.2, 0.99, 0.5]), threshold=0.9)
    assert d["hq_pass_share"] == 0.5
    assert d["score_length_spearman"] == pytest.approx(-1.0)
    assert sum(d["score_histogram"]["counts"]) == 50


def test_logistic_chooses_c_by_held_out_accuracy_and_round_trips():
    rng = np.random.default_rng(0)
    pos = rng.normal(0.3, 1, size=(300, 8))
    neg = rng.normal(-0.3, 1, size=(300, 8))
    model = EmbeddingLogistic(Cs=(1e-4, 1.0), seed=2).fit(pos, neg)
    assert model.C_ == 1.0 and model.heldout_accuracy_ > 0.7
    scores = model.score(np.r_[pos, neg])
    assert accuracy(scores, np.r_[np.ones(300), np.zeros(300)]) > 0.75
    buffer = io.BytesIO()
    model.save(buffer)
    buffer.seek(0)
    assert np.array_equal(EmbeddingLogistic.load(buffer).score(pos), model.score(pos))
    with pytest.raises(ValueError, match="needs positives and negatives, got 0 and 600"):
        EmbeddingLogistic().fit(np.zeros((0, 8)), np.r_[pos, neg])


def test_holdout_is_a_pure_function_of_ids():
    ids = [str(i) for i in range(10_000)]
    mask = holdout_mask(ids, 0.2, seed=3)
    assert abs(mask.mean() - 0.2) < 0.02
    assert np.array_equal(mask[::-1], holdout_mask(ids[::-1], 0.2, seed=3))


def test_spearman_matches_scipy_with_ties():
    from scipy.stats import spearmanr

    from tamis.selectors.quality import spearman

    rng = np.random.default_rng(4)
    x = rng.integers(0, 20, 500).astype(float)
    y = x * 0.5 + rng.integers(0, 10, 500)
    assert spearman(x, y) == pytest.approx(spearmanr(x, y).statistic, abs=1e-12)
    assert np.isnan(spearman(np.ones(5), np.arange(5)))
