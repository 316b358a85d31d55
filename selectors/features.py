"""Quality classifiers on the text-quality signals, and the stacked ensemble's combiner.

:class:`FeatureLogistic` is the logistic regression of
:class:`~tamis.selectors.quality.EmbeddingLogistic` (standardised inputs, ``C`` by
cross-validated log-loss) on a fixed expansion of the signals of
:mod:`tamis.selectors.signals`: counts as ``log1p``, shares and fractions as they are and
as their square root (which spreads the small values where junk and prose differ most).
:class:`Stacker` combines members' out-of-fold scores: a logistic regression on their logits.
Both save to ``.npz`` files of arrays and one JSON string, never a pickle.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import BinaryIO

import numpy as np

from tamis.selectors.importance import uniforms
from tamis.selectors.precision import quantize
from tamis.selectors.quality import EmbeddingLogistic, newton_logistic
from tamis.selectors.signals import SIGNALS, signals

#: Signals read as ``log1p``: counts, not shares.
COUNTS = frozenset(("n_words", "n_chars", "stop_words"))
#: The signals that mean the same in every language and script, what a classifier trained on
#: one language reads when it scores another: shares and fractions only (no counts, whose
#: scale depends on how a script separates words), the stop-word share from each language's
#: own list. The mean word length is left out: it moves with the language itself (German
#: compounds, French elisions, a word per ideograph in Chinese), and on the French and German
#: train splits of the bilingual benchmark (BENCHMARKS.md) a classifier trained on English
#: transferred better without it, with both seeds.
LANGUAGE_AGNOSTIC: tuple[str, ...] = tuple(
    s for s in SIGNALS if s not in COUNTS and s != "mean_word_length")


def expand(values: Mapping[str, np.ndarray], names: Sequence[str] = SIGNALS) -> np.ndarray:
    """The feature matrix of signal values: ``log1p`` of counts; shares and their roots."""
    columns = []
    for name in names:
        v = np.asarray(values[name], dtype=np.float64)
        if name in COUNTS:
            columns.append(np.log1p(v))
        else:
            columns += [v, np.sqrt(np.maximum(v, 0.0))]
    return np.stack(columns, axis=1) if columns else np.zeros((0, 0))


class FeatureLogistic:
    """Logistic regression on the signals of texts. After :meth:`fit`: ``model_`` (the
    fitted :class:`EmbeddingLogistic`), ``C_``."""

    kind = "features"

    def __init__(self, Cs: Sequence[float] = (0.01, 0.1, 1.0, 10.0), seed: int = 0,
                 language: str = "en", names: Sequence[str] = SIGNALS) -> None:
        self.Cs, self.seed, self.language = tuple(Cs), seed, language
        unknown = [n for n in names if n not in SIGNALS]
        if unknown or not names:
            raise ValueError(f"names must be signals of tamis.selectors.signals, got {unknown}")
        self.names = tuple(names)

    def features(self, texts: Sequence[str] | Mapping[str, np.ndarray]) -> np.ndarray:
        values = texts if isinstance(texts, Mapping) else signals(list(texts), self.language)
        return expand(values, self.names)

    def fit(self, positives, negatives) -> FeatureLogistic:
        self.model_ = EmbeddingLogistic(self.Cs, seed=self.seed).fit(
            self.features(positives), self.features(negatives))
        self.C_ = self.model_.C_
        return self

    def score(self, texts, neutral: Sequence[str] = ()) -> np.ndarray:
        """``P(high quality)`` per text (or per row of precomputed signals), on the grid.

        ``neutral`` signals are set to their training mean, so they add nothing: the signals
        that mean something else in the text's script or language (the mean word length of a
        script written without spaces, the stop-word share of a language without a list)."""
        z = self.decision(texts, neutral)
        return quantize(0.5 * (1.0 + np.tanh(0.5 * z))) if len(z) else np.zeros(0)

    def decision(self, texts, neutral: Sequence[str] = ()) -> np.ndarray:
        """The log-odds behind :meth:`score`, float64, before the grid."""
        x = self.features(texts)
        if not len(x):
            return np.zeros(0)
        if neutral:
            columns = self._columns(neutral)
            x[:, columns] = np.asarray(self.model_.mean_)[columns]
        return self.model_.decision(x)

    def _columns(self, names: Sequence[str]) -> list[int]:
        out, at = [], 0
        for name in self.names:
            width = 1 if name in COUNTS else 2
            if name in names:
                out += list(range(at, at + width))
            at += width
        return out

    def weights(self) -> dict[str, float]:
        """Each feature's weight on the standardised scale, by name, largest first."""
        labels = [f"log1p({n})" if n in COUNTS else part for n in self.names
                  for part in ((n,) if n in COUNTS else (n, f"sqrt({n})"))]
        coef = np.asarray(self.model_.coef_, dtype=np.float64)
        scale = getattr(self.model_, "scale_", None)
        if scale is not None:
            coef = coef * np.asarray(scale)
        order = np.argsort(-np.abs(coef), kind="stable")
        return {labels[i]: round(float(coef[i]), 4) for i in order}

    def save(self, f: BinaryIO) -> None:
        info = {"kind": self.kind, "signals": list(self.names), "language": self.language,
                "Cs": list(self.Cs), "seed": self.seed}
        inner = {f"logistic_{k}": v for k, v in self.model_.arrays().items()}
        np.savez(f, **inner, info=np.asarray(json.dumps(info)))

    @classmethod
    def load(cls, f: BinaryIO) -> FeatureLogistic:
        data = np.load(f, allow_pickle=False)
        info = json.loads(str(data["info"]))
        if info.get("kind") != cls.kind:
            raise ValueError(f"not a features classifier (kind {info.get('kind')!r})")
        if list(info["signals"]) != [s for s in SIGNALS if s in info["signals"]]:
            raise ValueError("the model reads signals this version does not compute")
        model = cls(info["Cs"], info["seed"], info["language"])
        model.names = tuple(info["signals"])
        model.model_ = EmbeddingLogistic.from_arrays(
            {k[len("logistic_"):]: data[k] for k in data.files if k.startswith("logistic_")})
        model.C_ = model.model_.C_
        return model


def fold_of(ids: Sequence[str], folds: int, seed: int) -> np.ndarray:
    """The fold (0 to ``folds - 1``) of each id: a pure function of (seed, id)."""
    return np.minimum((uniforms(ids, seed + 9_191) * folds).astype(np.int64), folds - 1)


def logit(p: np.ndarray) -> np.ndarray:
    """log(p / (1 - p)) of probabilities kept inside [2**-16, 1 - 2**-16]."""
    p = np.clip(np.asarray(p, dtype=np.float64), 2.0 ** -16, 1.0 - 2.0 ** -16)
    return np.log(p) - np.log1p(-p)


class Stacker:
    """A logistic regression on the logits of members' scores: ``weights_`` by member and
    ``intercept_``. Fitted with a mild fixed penalty (C = 1): a handful of inputs, out-of-fold
    scores, nothing to tune."""

    def __init__(self, members: Sequence[str], C: float = 1.0) -> None:
        self.members, self.C = tuple(members), C

    def fit(self, scores: np.ndarray, labels: np.ndarray) -> Stacker:
        w = newton_logistic(logit(scores), np.asarray(labels, dtype=np.float64), self.C)
        self.weights_ = dict(zip(self.members, (float(v) for v in w[:-1]), strict=True))
        self.intercept_ = float(w[-1])
        return self

    def score(self, scores: np.ndarray) -> np.ndarray:
        """``scores``: ``(n, members)`` member probabilities; the combined ``P(hq)``."""
        w = np.array([self.weights_[m] for m in self.members])
        z = np.sum(logit(scores) * w, axis=1) + self.intercept_  # no BLAS kernel
        return quantize(0.5 * (1.0 + np.tanh(0.5 * z)))

    def to_json(self) -> dict:
        return {"members": list(self.members), "C": self.C, "weights": self.weights_,
                "intercept": self.intercept_}

    @classmethod
    def from_json(cls, data: dict) -> Stacker:
        model = cls(data["members"], data["C"])
        model.weights_ = {k: float(v) for k, v in data["weights"].items()}
        model.intercept_ = float(data["intercept"])
        return model
