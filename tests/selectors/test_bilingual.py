"""The arithmetic of bilingual filtering: mixing weights, per-language cut-offs from
histograms, and the signals scored neutral in scripts without spaces."""

from __future__ import annotations

import numpy as np
import pytest

from tamis.selectors.bilingual import (
    mixing_weights,
    neutral_signals,
    quality_cut,
    quantiles_from_histogram,
    rows_at_or_above,
    tokens_at_or_above,
)
from tamis.selectors.precision import STEP, quantize
from tamis.selectors.quality_report import score_histogram


def _weighted_share(out: dict, base: int, targets: dict) -> float:
    weighted = {k: out["weights"][k] * v for k, v in targets.items()}
    return sum(weighted.values()) / (base + sum(weighted.values()))


def test_one_share_for_all_targets_gives_one_weight():
    targets = {"fr": 30_000, "de": 10_000}
    out = mixing_weights(1_000_000, targets, target_share=0.05)
    w = 0.05 * 1_000_000 / (0.95 * 40_000)
    assert out["weights"] == {"de": round(w, 6), "fr": round(w, 6)}
    assert out["passes"]["fr"] == pytest.approx(w, abs=1e-3)
    assert _weighted_share(out, 1_000_000, targets) == pytest.approx(0.05, rel=1e-5)
    assert sum(out["shares_reached"].values()) == pytest.approx(0.05, rel=1e-5)
    assert out["warnings"] == [] and out["capped"] == []


def test_a_share_per_language():
    targets = {"fr": 30_000, "de": 10_000, "zh": 5_000}
    out = mixing_weights(1_000_000, targets, shares={"fr": 0.04, "de": 0.01})
    assert out["weights"]["zh"] == 1.0
    assert out["shares_reached"]["fr"] == pytest.approx(0.04, rel=1e-4)
    assert out["shares_reached"]["de"] == pytest.approx(0.01, rel=1e-4)


def test_too_many_passes_warn_and_cap():
    out = mixing_weights(1_000_000, {"fr": 1_000}, target_share=0.05, max_passes=16)
    assert out["weights"]["fr"] > 16 and "above the cap of 16" in out["warnings"][0]
    capped = mixing_weights(1_000_000, {"fr": 1_000}, target_share=0.05, max_passes=16,
                            cap=True)
    assert capped["weights"]["fr"] == 16.0 and capped["capped"] == ["fr"]
    assert capped["shares_reached"]["fr"] == pytest.approx(16_000 / 1_016_000, rel=1e-5)


def test_nothing_to_mix_is_said():
    assert mixing_weights(0, {"fr": 10}, target_share=0.05)["weights"] == {"fr": 1.0}
    assert "no base-language token" in mixing_weights(0, {"fr": 10}, 0.05)["warnings"][0]
    out = mixing_weights(100, {"fr": 0}, shares={"fr": 0.1})
    assert "no token of 'fr'" in out["warnings"][0]
    with pytest.raises(ValueError, match="less than 1"):
        mixing_weights(100, {"fr": 10}, target_share=1.0)
    with pytest.raises(ValueError, match="not both"):
        mixing_weights(100, {"fr": 10}, target_share=0.1, shares={"fr": 0.1})


def test_cuts_from_histograms_match_sorting():
    rng = np.random.default_rng(0)
    scores = quantize(rng.beta(2, 5, 1_001))
    tokens = rng.integers(1, 500, scores.size)
    counts = score_histogram(scores)
    cells = np.rint(scores / STEP).astype(np.int64)
    token_counts = np.bincount(cells, weights=tokens, minlength=counts.size).astype(np.int64)
    cut = quality_cut(counts, 0.2, None)
    assert (scores >= cut).sum() >= np.ceil(0.2 * scores.size)
    assert (scores > cut).sum() < np.ceil(0.2 * scores.size)
    assert rows_at_or_above(counts, cut) == int((scores >= cut).sum())
    assert tokens_at_or_above(token_counts, cut) == int(tokens[scores >= cut].sum())
    assert quality_cut(counts, None, 0.7) == 0.7
    q = quantiles_from_histogram(counts)
    ordered = np.sort(scores)
    assert q[2] == ordered[int(np.ceil(0.5 * scores.size)) - 1]
    assert quantiles_from_histogram(np.zeros_like(counts)) is None
    # the same histogram in any order of its parts
    halves = score_histogram(scores[::2]) + score_histogram(scores[1::2])
    assert quality_cut(halves, 0.2, None) == cut


def test_neutral_signals_by_script_and_stop_list():
    assert neutral_signals("fr", True) == ()
    assert neutral_signals("zh", True) == ("mean_word_length",)
    assert neutral_signals("th", False) == ("mean_word_length", "stop_word_ratio")


def test_a_signals_classifier_on_chosen_signals_with_neutral_ones():
    from tamis.selectors.features import LANGUAGE_AGNOSTIC, FeatureLogistic
    from tamis.selectors.signals import signals

    good = [f"Le fichier numéro {i} est lu en entier, puis fermé. Les erreurs sont notées."
            for i in range(30)]
    junk = [f"menu {i} | accueil | aide\nmenu {i} | accueil | aide\nmenu | contact"
            for i in range(30)]
    model = FeatureLogistic((1.0,), names=LANGUAGE_AGNOSTIC).fit(good, junk)
    assert "mean_word_length" not in model.names and "n_words" not in model.names
    values = signals(good[:3] + junk[:3], "fr")
    z = model.decision(values)
    assert (z[:3] > z[3:].max()).all()
    assert np.allclose(model.score(values), quantize(1 / (1 + np.exp(-z))), atol=STEP)
    neutral = model.decision(values, ("stop_word_ratio",))
    column = model._columns(("stop_word_ratio",))
    assert len(column) == 2 and not np.array_equal(neutral, z)
    shifted = {k: v.copy() for k, v in values.items()}
    shifted["stop_word_ratio"][:] = 0.123  # a neutral signal's value no longer matters
    assert np.array_equal(model.decision(shifted, ("stop_word_ratio",)), neutral)
    with pytest.raises(ValueError, match="signals"):
        FeatureLogistic(names=("no_such_signal",))
