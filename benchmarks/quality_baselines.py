"""Two quality filters a user could write in an afternoon, for the quality benchmarks: a
hashed word 1-2-gram logistic regression and twelve Gopher-style text statistics with a
logistic regression (both scikit-learn), and length alone as a check."""

from __future__ import annotations

import math
import string
from collections.abc import Callable

import numpy as np
from junk_text import BULLETS, END_PUNCT, STOP_WORDS

Fit = Callable[[list[str], list[str]], Callable[[list[str]], np.ndarray]]

# ---------------------------------------------------------------------------------------------
# baselines


def ngram_lr(positives: list[str], negatives: list[str]) -> Callable[[list[str]], np.ndarray]:
    """Hashed word 1-2-grams, sublinear tf, l2 norm, logistic regression."""
    from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    model = make_pipeline(
        HashingVectorizer(ngram_range=(1, 2), n_features=2**20, alternate_sign=False,
                          norm=None),
        TfidfTransformer(use_idf=False, sublinear_tf=True, norm="l2"),
        LogisticRegression(C=1.0, max_iter=1000))
    model.fit(positives + negatives, [1] * len(positives) + [0] * len(negatives))
    return lambda texts: model.decision_function(texts)


def text_stats(text: str) -> list[float]:
    """12 Gopher-style statistics of ``text``."""
    words = text.split()
    n = max(len(words), 1)
    chars = max(len(text), 1)
    lines = [line.strip() for line in text.split("\n") if line.strip()]
    n_lines = max(len(lines), 1)
    seen: set[str] = set()
    duplicated = 0
    for line in lines:
        if line in seen:
            duplicated += len(line)
        seen.add(line)
    letters = sum(map(str.isalpha, text))
    alnum = sum(map(str.isalnum, text))
    space = sum(map(str.isspace, text))
    bare = (w.lower().strip(string.punctuation) for w in words)
    return [
        math.log1p(len(words)),
        sum(map(len, words)) / n,
        (text.count("#") + text.count("...") + text.count("…")) / n,
        sum(any(c.isalpha() for c in w) for w in words) / n,
        sum(line.endswith(END_PUNCT) for line in lines) / n_lines,
        sum(line.startswith(BULLETS) for line in lines) / n_lines,
        duplicated / max(sum(map(len, lines)), 1),
        sum(w in STOP_WORDS for w in bare) / n,
        sum(map(str.isupper, text)) / max(letters, 1),
        sum(map(str.isdigit, text)) / chars,
        (chars - alnum - space) / chars,
        text.count("\n") / n,
    ]


def stats_lr(positives: list[str], negatives: list[str]) -> Callable[[list[str]], np.ndarray]:
    """Gopher-style statistics, standardised, logistic regression."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def features(texts: list[str]) -> np.ndarray:
        return np.array([text_stats(t) for t in texts], dtype=np.float64).reshape(-1, 12)

    model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=1000))
    model.fit(features(positives + negatives), [1] * len(positives) + [0] * len(negatives))
    return lambda texts: model.decision_function(features(texts))


def baselines() -> dict[str, Fit]:
    """Name -> fit(positives, negatives) -> scorer(texts) (higher = better quality)."""
    return {"ngram-lr": ngram_lr, "stats-lr": stats_lr}


def length_only(positives: list[str], negatives: list[str]) -> Callable[[list[str]], np.ndarray]:
    """Logistic regression on log word count: the length-matching check."""
    from sklearn.linear_model import LogisticRegression

    def feature(texts: list[str]) -> np.ndarray:
        return np.log1p([[len(t.split())] for t in texts])

    model = LogisticRegression().fit(feature(positives + negatives),
                                     [1] * len(positives) + [0] * len(negatives))
    return lambda texts: model.decision_function(feature(texts))


def auc(good: np.ndarray, junk: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(np.r_[np.ones(len(good)), np.zeros(len(junk))], np.r_[good, junk]))


