"""DSIR-style selection: hashed word n-gram features and a log importance weight.

Xie et al. (2023): lower-cased word unigrams and bigrams are hashed into ``num_buckets``
buckets; a record's log importance weight is ``sum_b counts(b) * (log p_target(b) - log
p_raw(b))``, with 1e-8 floors; records are drawn without replacement with probability
proportional to the weight, by Gumbel top-k. Words are hashed once each (a memo), and a bigram's
bucket is mixed from its two word hashes with integer arithmetic, so featurising costs a regex
pass and a few NumPy operations per record.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

from tamis.selectors.importance import uniforms
from tamis.selectors.precision import quantize

WORDS = re.compile(r"\w+|[^\w\s]+")  # the word-punctuation split DSIR uses
MIX = np.uint64(0x9E3779B97F4A7C15)
MEMO_LIMIT = 2_000_000


class HashedNgramSelector:
    """Score records by their DSIR log importance weight, select by Gumbel top-k.

    Parameters
    ----------
    num_buckets : int
    ngrams : int
        1 (words) or 2 (words and bigrams).
    floor : float
        Added to bucket probabilities before the logarithm.
    min_tokens : int
        Records with fewer words get weight ``-inf`` (DSIR drops records under 100 tokens;
        the default keeps all).

    After :meth:`fit`: ``log_ratio_`` (shape ``(num_buckets,)``), ``target_probs_``,
    ``raw_probs_``.
    """

    def __init__(self, num_buckets: int = 10_000, ngrams: int = 2, floor: float = 1e-8,
                 min_tokens: int = 0) -> None:
        self.num_buckets, self.ngrams, self.floor, self.min_tokens = (
            num_buckets, ngrams, floor, min_tokens)
        self._memo: dict[str, int] = {}

    def _word_hashes(self, words: list[str]) -> np.ndarray:
        memo = self._memo
        if len(memo) > MEMO_LIMIT:
            memo.clear()
        out = np.empty(len(words), dtype=np.uint64)
        for i, w in enumerate(words):
            h = memo.get(w)
            if h is None:
                h = int.from_bytes(hashlib.blake2b(w.encode(), digest_size=8).digest(), "little")
                memo[w] = h
            out[i] = h
        return out

    def buckets(self, text: str) -> np.ndarray:
        """The bucket of every n-gram of ``text``, shape ``(n_ngrams,)``, int64."""
        hashes = self._word_hashes(WORDS.findall(text.lower()))
        if self.ngrams >= 2 and len(hashes) > 1:
            with np.errstate(over="ignore"):
                pairs = hashes[:-1] * MIX ^ (hashes[1:] + np.uint64(1))
            hashes = np.concatenate([hashes, pairs])
        return (hashes % np.uint64(self.num_buckets)).astype(np.int64)

    def counts(self, texts: Sequence[str]) -> np.ndarray:
        """Summed bucket counts of ``texts``, shape ``(num_buckets,)``."""
        total = np.zeros(self.num_buckets, dtype=np.float64)
        for t in texts:
            total += np.bincount(self.buckets(t), minlength=self.num_buckets)
        return total

    def fit(self, target: Sequence[str], raw: Sequence[str]) -> HashedNgramSelector:
        """Learn bucket distributions of the target set and of (a sample of) the raw pool."""
        if self.ngrams not in (1, 2):
            raise ValueError(f"ngrams must be 1 or 2, got {self.ngrams}")
        if not len(target) or not len(raw):
            raise ValueError(f"need target and raw texts, got {len(target)} and {len(raw)}")
        return self.fit_counts(self.counts(target), self.counts(raw))

    def fit_counts(self, target: np.ndarray, raw: np.ndarray) -> HashedNgramSelector:
        """Learn from summed bucket counts (:meth:`counts`) of the target and the raw pool."""
        t, r = np.asarray(target, dtype=np.float64), np.asarray(raw, dtype=np.float64)
        if t.sum() == 0 or r.sum() == 0:
            raise ValueError("the target or raw texts have no word at all")
        self.target_probs_ = t / t.sum()
        self.raw_probs_ = r / r.sum()
        self.log_ratio_ = (np.log(self.target_probs_ + self.floor)
                           - np.log(self.raw_probs_ + self.floor))
        return self

    def score(self, texts: Sequence[str]) -> np.ndarray:
        """Log importance weight per text, shape ``(n,)``, on the grid of
        :mod:`tamis.selectors.precision` (scikit-learn: ``score_samples``)."""
        out = np.empty(len(texts), dtype=np.float64)
        for i, t in enumerate(texts):
            b = self.buckets(t)
            words = len(b) if self.ngrams == 1 else (len(b) + 1) // 2
            out[i] = -np.inf if words < self.min_tokens else float(self.log_ratio_[b].sum())
        return quantize(out)


def gumbel_keys(log_weights: np.ndarray, ids: Sequence[str], seed: int) -> np.ndarray:
    """Top-k of these keys = k rows drawn without replacement, p ∝ exp(log_weights).
    The noise depends only on (seed, id), so every worker computes the same key for a row; it
    is put on the grid of :mod:`tamis.selectors.precision`, so the key (a sum of two grid
    values) is the same on every CPU."""
    u = uniforms(ids, seed)
    return quantize(log_weights) + quantize(-np.log(-np.log(u)))
