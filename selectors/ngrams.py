"""Repeated n-grams of a batch of texts, for :mod:`tamis.selectors.signals`: the Gopher
top-n-gram and duplicated-n-gram character fractions, by one sort of 64-bit keys per n."""

from __future__ import annotations

import numpy as np

TOP_NGRAMS = (2, 3, 4)
DUP_NGRAMS = (5, 6, 7, 8, 9, 10)
_P = 0x100000001B3  # odd: invertible modulo 2**64


def _ratio(a, b) -> np.ndarray:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return np.divide(a, b, out=np.zeros_like(a), where=b > 0)


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: every bit of the input moves every bit of the output."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _groups(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each key, its group (equal keys); for each group, its first index and its size."""
    order = np.argsort(keys)
    ordered = keys[order]
    new = np.empty(len(keys), dtype=bool)
    new[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=new[1:])
    bounds = np.flatnonzero(new)
    group = np.empty(len(keys), dtype=np.int64)
    group[order] = np.cumsum(new) - 1
    first = np.minimum.reduceat(order, bounds)
    sizes = np.diff(np.r_[bounds, len(keys)])
    return group, first, sizes


def ngram_fractions(words: np.ndarray, doc: np.ndarray, counts: np.ndarray, chars: np.ndarray,
            word_chars: np.ndarray, out: dict) -> None:
    """Top and duplicated n-gram character fractions, by one sort per n over the batch.

    ``gram[p]`` is a 64-bit hash of the text and the (n-1)-gram starting at word ``p``, kept
    only where that (n-1)-gram repeats in its text: an n-gram can repeat only where its
    prefix does, so each n sorts fewer keys than the last."""
    total = len(words)
    n_texts = len(counts)
    if not total:
        return
    starts = np.cumsum(counts) - counts
    position = np.arange(total) - starts[doc]  # index of each word within its text
    prefix = np.concatenate([[0], np.cumsum(chars)])
    step = np.uint64(_P)
    gram = _mix(words ^ _mix(doc.astype(np.uint64) + np.uint64(0x632BE59BD9B4E019)))
    group, _, seen = _groups(gram)
    candidates = np.flatnonzero(seen[group] >= 2)  # words that repeat: where repeats start
    gram_at = gram
    for n in range(2, max(DUP_NGRAMS) + 1):
        fits = candidates[position[candidates] + n <= counts[doc[candidates]]]
        if not len(fits):
            return  # no longer n-gram repeats: the rest stay 0
        keys = _mix(gram_at[fits] * step + words[fits + n - 1])
        group, first, times = _groups(keys)
        span = prefix[fits + n] - prefix[fits]
        if n in TOP_NGRAMS:
            value = np.zeros(n_texts)
            heavy = times >= 2
            owner = doc[fits[first[heavy]]]
            # the most frequent n-gram, ties to the longest: a key of (count, chars)
            score = times[heavy].astype(np.int64) * (1 << 32) + span[first[heavy]]
            best = np.full(n_texts, -1, dtype=np.int64)
            np.maximum.at(best, owner, score)
            has = best >= 0
            value[has] = (best[has] >> 32) * (best[has] & ((1 << 32) - 1))
            out[f"top_{n}gram_chars"] = _ratio(value, word_chars)
        if n in DUP_NGRAMS:
            repeat = np.arange(len(fits)) != first[group]
            opened = fits[repeat]
            cover = (np.bincount(opened, minlength=total + 1)
                     - np.bincount(opened + n, minlength=total + n + 1)[:total + 1])
            covered = np.cumsum(cover[:-1]) > 0
            out[f"dup_{n}gram_chars"] = _ratio(
                np.bincount(doc, weights=chars * covered, minlength=n_texts), word_chars)
        keep = times[group] >= 2
        candidates = fits[keep]
        gram_at = np.zeros(total, dtype=np.uint64)
        gram_at[candidates] = keys[keep]
