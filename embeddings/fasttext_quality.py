"""The DCLM fastText quality classifier: ``__label__hq`` against ``__label__cc``, word
bigrams, fastText's defaults otherwise (lr 0.1, dim 100, 2M hash buckets). A model with files
of its own, hence here and not among the pure selectors; held-out evaluation is the caller's.

The number of epochs is chosen on the data by default (``epoch="auto"``): fastText's 5 epochs
suit DCLM's 400k training lines, but on a few thousand documents they leave every score
between 0.49 and 0.52, while too many overfit (see :class:`FastTextQuality`).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Sequence
from typing import Literal

import numpy as np

from tamis.selectors.precision import quantize
from tamis.selectors.quality import auc

HQ, CC = "__label__hq", "__label__cc"

#: The epochs ``epoch="auto"`` tries.
AUTO_EPOCHS = (5, 10, 25, 50)
#: The share of training lines ``epoch="auto"`` holds out to compare them.
TUNE_HOLDOUT = 0.2
#: Fewer held-out lines of a class than this: no tuning, the middle of the candidate epochs.
MIN_TUNE_PER_CLASS = 5
#: The smallest input matrix (bytes) that ``bucket`` may ask for: glibc's largest threshold
#: above which ``malloc`` maps fresh, zeroed pages. fastText on one thread initialises only the
#: first tenth of that matrix and leaves the rest as allocated (zeros from fresh pages); a
#: smaller matrix can come from reused heap memory, and the model (even a NaN) would depend
#: on what the process did before.
MIN_MATRIX_BYTES = 32 << 20
#: fastText's probabilities carry about five digits (it adds 1e-5 before its logarithm): the
#: log-loss clips them to [PROB_FLOOR, 1 - PROB_FLOOR].
PROB_FLOOR = 1e-5


def one_line(text: str) -> str:
    """The text as fastText reads it: newlines and runs of white space become one space."""
    return " ".join(text.split())  # str.split: every Unicode space, in C, ~10x a regex


def _key(line: str, salt: bytes) -> bytes:
    return hashlib.blake2b(line.encode(), digest_size=8, key=salt).digest()


class FastTextQuality:
    """Train on positives and negatives, score ``P(hq)``. One thread, lines shuffled by a
    keyed hash: the same data and seed give the same model.

    ``epoch`` is a number of passes, or ``"auto"`` (the default): fastText is trained with each
    of ``epochs`` (and each of ``lrs``, by default ``lr`` alone) on the training lines less a
    held-out ``tune_holdout`` share, the choice with the lowest held-out log-loss wins (losses
    rounded to the grid of :mod:`tamis.selectors.precision`; ties go to fewer epochs, then
    the lower rate), and the model is trained again on every line with it. Log-loss rather
    than accuracy or AUC: it sees whether scores spread out (too few epochs leave every score
    near 0.5, which ranks but thresholds badly) and punishes the confident mistakes of an
    overfit model. The held-out lines are a keyed hash of (seed, line): identical lines fall
    on the same side, and the split is the same on every run. Since the learning rate decays
    to zero over the epochs, ``lr * epoch`` is what matters most: a higher ``lr`` with fewer
    epochs reaches about the same model, so tuning both buys little.

    ``bucket`` is fastText's number of hashed n-gram rows (2M, its default, about 0.8 GB at
    ``dim`` 100 in memory and on disk; fewer shrink the model, more n-grams then share a row).
    It may not go below :data:`MIN_MATRIX_BYTES` of matrix (83,887 rows at ``dim`` 100).

    After :meth:`fit`: ``model_``, ``epoch_`` and ``lr_`` (those trained with), and
    ``tuning_`` (``None`` for a fixed ``epoch``): ``holdout``, ``held_positives``,
    ``held_negatives`` and ``candidates``, one ``{"epoch", "lr", "log_loss", "auc"}`` per
    choice tried (empty when too few lines of a class were held out to compare them)."""

    def __init__(self, lr: float = 0.1, dim: int = 100, epoch: int | Literal["auto"] = "auto",
                 word_ngrams: int = 2, min_count: int = 1, seed: int = 0, *,
                 bucket: int = 2_000_000, epochs: Sequence[int] = AUTO_EPOCHS,
                 lrs: Sequence[float] | None = None, tune_holdout: float = TUNE_HOLDOUT) -> None:
        if epoch != "auto" and (isinstance(epoch, bool) or not isinstance(epoch, int)
                                or epoch < 1):
            raise ValueError(f"epoch must be a positive integer or 'auto', got {epoch!r}")
        if not epochs or any(isinstance(e, bool) or not isinstance(e, int) or e < 1
                             for e in epochs):
            raise ValueError(f"epochs must be positive integers, got {epochs!r}")
        if not 0 < tune_holdout < 1:
            raise ValueError(f"tune_holdout must be in (0, 1), got {tune_holdout}")
        if word_ngrams > 1 and bucket * dim * 4 < MIN_MATRIX_BYTES:
            raise ValueError(f"bucket {bucket:,} at dim {dim} makes an n-gram matrix under "
                             f"{MIN_MATRIX_BYTES >> 20} MiB, which fastText would not train "
                             f"deterministically: give at least "
                             f"{-(-MIN_MATRIX_BYTES // (4 * dim)):,}")
        self.lr, self.dim, self.epoch = lr, dim, epoch
        self.word_ngrams, self.min_count, self.seed = word_ngrams, min_count, seed
        self.bucket, self.epochs, self.tune_holdout = bucket, tuple(epochs), tune_holdout
        self.lrs = None if lrs is None else tuple(lrs)

    def fit(self, positives: Sequence[str], negatives: Sequence[str]) -> FastTextQuality:
        if not len(positives) or not len(negatives):
            raise ValueError(f"a quality classifier needs positives and negatives, got "
                             f"{len(positives)} and {len(negatives)}")
        lines = [f"{HQ} {one_line(t)}" for t in positives]
        lines += [f"{CC} {one_line(t)}" for t in negatives]
        salt = str(self.seed).encode()
        lines.sort(key=lambda line: _key(line, salt))
        if self.epoch == "auto":
            self.epoch_, self.lr_, self.tuning_ = self._tune(lines)
        else:
            self.epoch_, self.lr_, self.tuning_ = self.epoch, self.lr, None
        self.model_ = self._train(lines, self.epoch_, self.lr_)
        return self

    def _train(self, lines: list[str], epoch: int, lr: float):
        import fasttext

        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False,
                                         encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
            path = f.name
        try:
            return fasttext.train_supervised(
                input=path, lr=lr, dim=self.dim, epoch=epoch, wordNgrams=self.word_ngrams,
                minCount=self.min_count, bucket=self.bucket, thread=1, seed=self.seed,
                verbose=0)
        finally:
            os.unlink(path)

    def _tune(self, lines: list[str]) -> tuple[int, float, dict]:
        """The (epoch, lr) to train with, and the ``tuning_`` figures behind the choice."""
        salt = f"tune-{self.seed}".encode()
        held = np.fromiter((int.from_bytes(_key(line, salt), "little") / 2.0**64
                            < self.tune_holdout for line in lines), dtype=bool,
                           count=len(lines))
        is_hq = np.fromiter((line.startswith(HQ + " ") for line in lines), dtype=bool,
                            count=len(lines))
        epochs = sorted(set(self.epochs))
        lrs = sorted(set(self.lrs if self.lrs is not None else (self.lr,)))
        tuning = {"holdout": self.tune_holdout, "held_positives": int((held & is_hq).sum()),
                  "held_negatives": int((held & ~is_hq).sum()), "candidates": []}
        if min(tuning["held_positives"], tuning["held_negatives"],
               int((~held & is_hq).sum()), int((~held & ~is_hq).sum())) < MIN_TUNE_PER_CLASS:
            return epochs[len(epochs) // 2], lrs[0], tuning
        train = [line for line, h in zip(lines, held, strict=True) if not h]
        texts = [line.split(" ", 1)[1] for line, h in zip(lines, held, strict=True) if h]
        labels = is_hq[held].astype(np.float64)
        for epoch in epochs:
            for lr in lrs:
                scores = _p_hq(self._train(train, epoch, lr), texts)
                p = np.clip(scores, PROB_FLOOR, 1.0 - PROB_FLOOR)
                loss = -np.mean(labels * np.log(p) + (1.0 - labels) * np.log(1.0 - p))
                tuning["candidates"].append({"epoch": epoch, "lr": lr,
                                             "log_loss": float(quantize(loss)),
                                             "auc": auc(scores, labels)})
        best = min(tuning["candidates"], key=lambda c: (c["log_loss"], c["epoch"], c["lr"]))
        return best["epoch"], best["lr"], tuning

    def score(self, texts: Sequence[str]) -> np.ndarray:
        """``P(hq)`` per text, shape ``(n,)`` (scikit-learn: ``predict_proba[:, 1]``)."""
        return _p_hq(self.model_, texts)

    def save(self, path: str) -> None:
        """fastText's own ``.bin`` format (a path: the library writes files, not streams). It
        keeps the epochs trained with, not the learning rate nor ``tuning_``."""
        self.model_.save_model(path)

    @classmethod
    def load(cls, path: str) -> FastTextQuality:
        """A saved model with the settings its file keeps: ``epoch_`` and the shape
        (``dim``, ``word_ngrams``, ``min_count``, ``bucket``). fastText's file does not keep the
        learning rate or the seed: ``lr_`` and ``tuning_`` are ``None``."""
        import fasttext

        ft = fasttext.load_model(path)
        args = ft.f.getArgs()
        model = cls(epoch=args.epoch)
        model.dim, model.word_ngrams, model.min_count = args.dim, args.wordNgrams, args.minCount
        model.bucket = args.bucket  # a model trained elsewhere may have any
        model.model_, model.epoch_, model.lr_, model.tuning_ = ft, args.epoch, None, None
        return model


def _p_hq(model, texts: Sequence[str]) -> np.ndarray:
    """``P(hq)`` per text under a trained fastText ``model``."""
    if not len(texts):
        return np.zeros(0)
    # Two labels under softmax: P(hq) is the top probability or its complement.
    labels, probs = model.predict([one_line(t) for t in texts], k=1)
    top = np.asarray(probs, dtype=np.float64).reshape(len(texts))
    is_hq = np.fromiter((names[0] == HQ for names in labels), dtype=bool, count=len(texts))
    return np.clip(np.where(is_hq, top, 1.0 - top), 0.0, 1.0)
