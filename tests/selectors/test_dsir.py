from __future__ import annotations

import numpy as np
import pytest

from tamis.selectors.dsir import HashedNgramSelector, gumbel_keys
from tamis.selectors.precision import STEP

TARGET = ["import the module and call the function", "the function returns a list",
          "call the method of the class"]
RAW = ["the river runs to the sea", "a storm over the sea", "the function of the heart",
       "import goods across the sea"]


def test_log_weight_is_the_sum_over_ngrams_of_the_log_ratio():
    s = HashedNgramSelector(num_buckets=64).fit(TARGET, RAW)
    text = "Call the function"
    b = s.buckets(text)
    assert len(b) == 3 + 2  # three words, two bigrams
    assert s.score([text])[0] == pytest.approx(s.log_ratio_[b].sum())
    t = s.counts(TARGET) / s.counts(TARGET).sum()
    assert np.allclose(s.target_probs_, t)
    assert s.score(["call the function of the class"])[0] > s.score(["storm over the sea"])[0]


def test_buckets_are_stable_and_case_blind():
    s = HashedNgramSelector(num_buckets=10_000)
    assert np.array_equal(s.buckets("Hello, World"), s.buckets("hello , world"))
    assert s.buckets("hello world").tolist() == HashedNgramSelector().buckets(
        "hello world").tolist()
    unigram = HashedNgramSelector(ngrams=1)
    assert len(unigram.buckets("a b c")) == 3


def test_gumbel_top_k_samples_proportionally_to_weight():
    ids = [str(i) for i in range(3)]
    logw = np.log(np.array([1.0, 2.0, 7.0]))
    firsts = np.zeros(3)
    for seed in range(3000):
        firsts[np.argmax(gumbel_keys(logw, ids, seed))] += 1
    assert firsts / 3000 == pytest.approx([0.1, 0.2, 0.7], abs=0.03)


def test_scores_and_keys_lie_on_the_grid():
    s = HashedNgramSelector(num_buckets=64).fit(TARGET, RAW)
    scores = s.score(TARGET + RAW)
    assert np.all(scores / STEP == np.round(scores / STEP))
    keys = gumbel_keys(scores, [str(i) for i in range(len(scores))], seed=1)
    assert np.all(keys / STEP == np.round(keys / STEP))


def test_errors():
    with pytest.raises(ValueError, match="need target and raw texts"):
        HashedNgramSelector().fit([], RAW)
    with pytest.raises(ValueError, match="ngrams must be 1 or 2"):
        HashedNgramSelector(ngrams=3).fit(TARGET, RAW)
