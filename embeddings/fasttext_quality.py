"""The DCLM fastText quality classifier: ``__label__hq`` against ``__label__cc``, word
bigrams, fastText's defaults otherwise (lr 0.1, dim 100, epoch 5). A model with files of its
own, hence here and not among the pure selectors; held-out evaluation is the caller's."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Sequence

import numpy as np

HQ, CC = "__label__hq", "__label__cc"


def one_line(text: str) -> str:
    """The text as fastText reads it: newlines and runs of white space become one space."""
    return " ".join(text.split())  # str.split: every Unicode space, in C, ~10x a regex


class FastTextQuality:
    """Train on positives and negatives, score ``P(hq)``. One thread, lines shuffled by a
    keyed hash: the same data and seed give the same model. After :meth:`fit`: ``model_``."""

    def __init__(self, lr: float = 0.1, dim: int = 100, epoch: int = 5, word_ngrams: int = 2,
                 min_count: int = 1, seed: int = 0) -> None:
        self.lr, self.dim, self.epoch = lr, dim, epoch
        self.word_ngrams, self.min_count, self.seed = word_ngrams, min_count, seed

    def fit(self, positives: Sequence[str], negatives: Sequence[str]) -> FastTextQuality:
        import fasttext

        if not len(positives) or not len(negatives):
            raise ValueError(f"a quality classifier needs positives and negatives, got "
                             f"{len(positives)} and {len(negatives)}")
        lines = [f"{HQ} {one_line(t)}" for t in positives]
        lines += [f"{CC} {one_line(t)}" for t in negatives]
        salt = str(self.seed).encode()
        lines.sort(key=lambda line: hashlib.blake2b(line.encode(), digest_size=8,
                                                    key=salt).digest())
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False,
                                         encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
            path = f.name
        try:
            self.model_ = fasttext.train_supervised(
                input=path, lr=self.lr, dim=self.dim, epoch=self.epoch,
                wordNgrams=self.word_ngrams, minCount=self.min_count, thread=1,
                seed=self.seed, verbose=0)
        finally:
            os.unlink(path)
        return self

    def score(self, texts: Sequence[str]) -> np.ndarray:
        """``P(hq)`` per text, shape ``(n,)`` (scikit-learn: ``predict_proba[:, 1]``)."""
        if not len(texts):
            return np.zeros(0)
        # Two labels under softmax: P(hq) is the top probability or its complement.
        labels, probs = self.model_.predict([one_line(t) for t in texts], k=1)
        top = np.asarray(probs, dtype=np.float64).reshape(len(texts))
        is_hq = np.fromiter((names[0] == HQ for names in labels), dtype=bool, count=len(texts))
        return np.clip(np.where(is_hq, top, 1.0 - top), 0.0, 1.0)

    def save(self, path: str) -> None:
        """fastText's own ``.bin`` format (a path: the library writes files, not streams)."""
        self.model_.save_model(path)

    @classmethod
    def load(cls, path: str) -> FastTextQuality:
        import fasttext

        model = cls()
        model.model_ = fasttext.load_model(path)
        return model
