"""Classifier quality filters: an embedding logistic regression and the helpers both quality
classifiers share (the DCLM fastText model is in :mod:`tamis.embeddings.fasttext_quality`).

Both learn to tell a high-quality set (positives) from the generalist pool (negatives) and
score a record by ``P(high quality)``. As the "Data-Quality Illusion" analysis notes, such a
score ranks by the likelihood ratio ``p_HQ / p_pool``: it also filters the high-quality set,
and it learns length unless the negatives are length-matched (:func:`length_matched`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import BinaryIO

import numpy as np

from tamis.selectors.importance import uniforms
from tamis.selectors.precision import quantize
from tamis.selectors.sampling import row_keys


def holdout_mask(ids: Sequence[str], fraction: float, seed: int) -> np.ndarray:
    """Which records are held out for evaluation: a pure function of (seed, id)."""
    return uniforms(ids, seed + 7_777) < fraction


def length_matched(positive_lengths: np.ndarray, negative_lengths: np.ndarray,
                   negative_ids: Sequence[str], n: int, seed: int, bins: int = 10) -> np.ndarray:
    """Indices of ``n`` negatives whose length distribution follows the positives'.

    Lengths are cut at the positives' quantiles into ``bins`` bins; each bin gets its
    positives' share of ``n``, filled with the bin's negatives in key order (seed, id). A bin
    short of negatives gives what it has.
    """
    pos = np.asarray(positive_lengths, dtype=np.float64)
    neg = np.asarray(negative_lengths, dtype=np.float64)
    edges = np.unique(np.quantile(pos, np.linspace(0, 1, bins + 1)[1:-1]))
    pos_bin, neg_bin = np.searchsorted(edges, pos), np.searchsorted(edges, neg)
    want = np.bincount(pos_bin, minlength=len(edges) + 1) / len(pos) * n
    keys = uniforms(negative_ids, seed)
    chosen = []
    for b, count in enumerate(np.round(want).astype(int)):
        members = np.flatnonzero(neg_bin == b)
        chosen.extend(members[np.argsort(keys[members], kind="stable")][:count].tolist())
    return np.sort(np.asarray(chosen, dtype=np.int64))


class EmbeddingLogistic:
    """L2-regularised logistic regression on standardised embeddings, ``C`` chosen by k-fold
    cross-validated log-loss.

    **Features.** Each dimension is centred and scaled by its mean and standard deviation on
    the training rows (a deviation below :data:`STD_FLOOR` counts as 1). Embedding dimensions
    differ in scale by orders of magnitude, and one penalty ``|w|**2`` weighs them all alike
    only once they share a scale; the same ``C`` then means the same on LSI and MiniLM
    vectors. ``score`` applies the stored ``mean_`` and ``scale_``.

    **Why cross-validated log-loss.** The negatives are an unlabelled sample of the pool, some
    of them as good as the positives, so many rows lie near 0.5. Accuracy on one held-out
    split only asks on which side of 0.5 each of them falls: it moves with the split (the
    seed) more than from one ``C`` to the next, and the ``C`` it picks, hence the ranking,
    moves with it. The log-loss weighs every score by how far it is from its label, and
    ``k`` folds use every row once, so its minimum over ``C`` hardly moves with the seed.
    Among the ``Cs`` whose mean out-of-fold loss, rounded to the grid of
    :mod:`tamis.selectors.precision`, is within ``tolerance`` nats of the best, the smallest
    ``C`` (the most regularised model, the least dependent on its rows) wins; exact ties go
    to the smaller ``C`` too. The rounding makes the choice immune to the last bits of BLAS.

    Folds are stratified by class and assigned by a keyed hash of (seed, row index)
    (:func:`cv_folds`): the seed changes them, nothing else does. Each fold standardises on
    its own training rows. A single ``C`` in ``Cs`` skips the cross-validation (a fixed ``C``:
    ``cv_["folds"]`` is then 0), as do fewer than two rows of a class (then the smallest C).

    Fitted by Newton's method in float64 to full convergence (the optimum is unique), so every
    CPU finds the same model to float64 rounding; scores are compared on the grid. The
    objective is scikit-learn's on the standardised features:
    ``C * sum(log-loss) + |w|**2 / 2``, the intercept unpenalised.

    After :meth:`fit`: ``coef_`` (shape ``(d,)``, weights of the standardised features),
    ``intercept_``, ``mean_`` and ``scale_`` (shape ``(d,)``), ``C_``, ``cv_`` (see
    :meth:`fit`) and ``heldout_accuracy_`` (the pooled out-of-fold accuracy at ``C_``,
    ``None`` without cross-validation)."""

    def __init__(self, Cs: Sequence[float] = (0.01, 0.1, 1.0, 10.0), seed: int = 0,
                 folds: int = 5, tolerance: float = 1e-3) -> None:
        self.Cs, self.seed, self.folds, self.tolerance = tuple(Cs), seed, folds, tolerance

    def fit(self, positives: np.ndarray, negatives: np.ndarray) -> EmbeddingLogistic:
        """Choose ``C``, then fit on every row with it.

        ``cv_`` holds: ``folds`` (used; 0 when skipped), ``Cs`` (ascending), ``log_loss`` (the
        mean out-of-fold log-loss per C, on the grid, the figures compared), ``auc`` (the mean
        fold AUC per C), and at the chosen C: ``fold_auc`` (per fold), ``auc_mean``,
        ``auc_min``, ``auc_max``, ``auc_std`` (their spread: how much the ranking depends on
        the rows it was trained on) and ``accuracy`` (pooled out-of-fold, at 0.5). Without
        cross-validation the lists are empty and the figures ``None``."""
        check_sets(positives, negatives)
        if not self.Cs or any(not c > 0 for c in self.Cs):
            raise ValueError(f"Cs must be positive numbers, got {self.Cs}")
        x = np.concatenate([positives, negatives]).astype(np.float64)
        y = np.r_[np.ones(len(positives)), np.zeros(len(negatives))]
        Cs = sorted(set(float(c) for c in self.Cs))
        k = min(int(self.folds), len(positives), len(negatives))
        if len(Cs) == 1 or k < 2:
            self.C_ = Cs[0]
            self.cv_ = _no_cv(Cs)
        else:
            self.cv_ = cross_validate(x, y, Cs, cv_folds(y, k, self.seed), self.tolerance)
            self.C_ = self.cv_["C"]
        self.heldout_accuracy_ = self.cv_["accuracy"]
        self.mean_, self.scale_ = standardizer(x)
        w = newton_logistic((x - self.mean_) / self.scale_, y, self.C_)
        self.coef_, self.intercept_ = w[:-1], float(w[-1])
        return self

    def decision(self, x: np.ndarray) -> np.ndarray:
        """The linear score ``z`` (log-odds) per row, float64, before the grid."""
        z = (np.asarray(x, dtype=np.float64) - self.mean_) / self.scale_
        return z @ self.coef_ + self.intercept_

    def score(self, x: np.ndarray) -> np.ndarray:
        """``P(high quality)`` per row, shape ``(n,)``, on the grid."""
        return quantize(_sigmoid(self.decision(x)))

    def arrays(self) -> dict[str, np.ndarray]:
        """What :meth:`save` writes: the weights, the standardisation and a JSON string."""
        info = {"C": self.C_, "heldout_accuracy": self.heldout_accuracy_, "Cs": self.Cs,
                "folds": self.folds, "tolerance": self.tolerance, "seed": self.seed,
                "cv": self.cv_}
        return {"coef": self.coef_, "intercept": np.asarray(self.intercept_),
                "mean": self.mean_, "scale": self.scale_, "info": np.asarray(json.dumps(info))}

    def save(self, f: BinaryIO) -> None:
        np.savez(f, **self.arrays())

    @classmethod
    def from_arrays(cls, data) -> EmbeddingLogistic:
        """A model from :meth:`arrays` (or an ``np.load`` of :meth:`save`); one saved before
        standardisation (no ``mean`` and ``scale``) scores as it did, on raw features."""
        info = json.loads(str(data["info"]))
        model = cls(Cs=info["Cs"], seed=info.get("seed", 0), folds=info.get("folds", 5),
                    tolerance=info.get("tolerance", 1e-3))
        model.coef_, model.intercept_ = data["coef"], float(data["intercept"])
        d = len(model.coef_)
        model.mean_ = data["mean"] if "mean" in data else np.zeros(d)
        model.scale_ = data["scale"] if "scale" in data else np.ones(d)
        model.C_, model.heldout_accuracy_ = info["C"], info["heldout_accuracy"]
        model.cv_ = info.get("cv", _no_cv([info["C"]]))
        return model

    @classmethod
    def load(cls, f: BinaryIO) -> EmbeddingLogistic:
        return cls.from_arrays(np.load(f, allow_pickle=False))


#: A feature's standard deviation at or below this counts as 1 (a constant dimension).
STD_FLOOR = 1e-12


def standardizer(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and standard deviation of ``x`` (n, d), float64, deviations at or
    below :data:`STD_FLOOR` replaced by 1. NumPy reductions, no BLAS."""
    x = np.asarray(x, dtype=np.float64)
    mean = x.mean(axis=0)
    std = np.sqrt(np.mean((x - mean) ** 2, axis=0))
    return mean, np.where(std > STD_FLOOR, std, 1.0)


def cv_folds(labels: np.ndarray, k: int, seed: int) -> np.ndarray:
    """The fold (0..k-1) of each row, int64, shape ``(n,)``, stratified: each class's rows in
    the order of a keyed hash of (seed, row index) are dealt to the folds in turn, so every
    fold holds ``n_class // k`` or one more rows of each class (both classes in every fold
    when each has ``k`` rows), and the assignment is a pure function of (seed, labels)."""
    labels = np.asarray(labels)
    keys = row_keys([str(i) for i in range(len(labels))], seed + 9_191)
    folds = np.empty(len(labels), dtype=np.int64)
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        order = members[np.argsort(keys[members], kind="stable")]
        folds[order] = np.arange(len(order)) % k
    return folds


def log_loss(z: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-row log-loss (nats) of log-odds ``z`` for ``labels`` (1 or 0), computed stably."""
    sign = 2.0 * np.asarray(labels, dtype=np.float64) - 1.0
    return np.logaddexp(0.0, -sign * np.asarray(z, dtype=np.float64))


def cross_validate(x: np.ndarray, y: np.ndarray, Cs: Sequence[float], folds: np.ndarray,
                   tolerance: float) -> dict:
    """:class:`EmbeddingLogistic`'s choice of ``C`` from ascending ``Cs``: the ``cv_``
    figures of :meth:`EmbeddingLogistic.fit`, plus ``C``, the choice.

    Losses are pooled over the out-of-fold rows (each row counts once) and rounded to the
    grid before they are compared, so float noise cannot flip the choice."""
    k = int(folds.max()) + 1
    z = np.empty((len(Cs), len(y)))
    for f in range(k):
        train, held = folds != f, folds == f
        mean, scale = standardizer(x[train])
        xt, xh = (x[train] - mean) / scale, (x[held] - mean) / scale
        w = None
        for i, c in enumerate(Cs):  # ascending: each solve starts at the last optimum
            w = _newton_from(xt, y[train], c, w)
            z[i, held] = xh @ w[:-1] + w[-1]
    losses = [float(quantize(np.mean(log_loss(z[i], y)))) for i in range(len(Cs))]
    fold_aucs = [[auc(_sigmoid(z[i, folds == f]), y[folds == f]) for f in range(k)]
                 for i in range(len(Cs))]
    best = min(losses)
    chosen = next(i for i, loss in enumerate(losses) if loss <= best + tolerance)
    at = np.asarray(fold_aucs[chosen], dtype=np.float64)
    return {"folds": k, "Cs": list(Cs), "log_loss": losses,
            "auc": [float(np.mean(a)) for a in fold_aucs], "C": Cs[chosen],
            "fold_auc": at.tolist(), "auc_mean": float(at.mean()), "auc_min": float(at.min()),
            "auc_max": float(at.max()), "auc_std": float(at.std()),
            "accuracy": accuracy(_sigmoid(z[chosen]), y)}


def _no_cv(Cs: Sequence[float]) -> dict:
    return {"folds": 0, "Cs": list(Cs), "log_loss": [], "auc": [], "C": Cs[0],
            "fold_auc": [], "auc_mean": None, "auc_min": None, "auc_max": None,
            "auc_std": None, "accuracy": None}


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(z, dtype=np.float64)))


def newton_logistic(x: np.ndarray, y: np.ndarray, C: float, max_iter: int = 100,
                    tol: float = 1e-10) -> np.ndarray:
    """Weights then intercept, shape ``(d + 1,)``, minimising
    ``C * sum(log(1 + exp(-s_i z_i))) + |w|**2 / 2`` (``s_i = ±1``, ``z = x @ w + b``).

    Damped Newton steps (backtracking on the objective) until a step moves no weight by more
    than ``tol`` (relative): quadratic convergence leaves the optimum's float64 rounding."""
    return _newton_from(x, y, C, None, max_iter, tol)


def _newton_from(x: np.ndarray, y: np.ndarray, C: float, w0: np.ndarray | None,
                 max_iter: int = 100, tol: float = 1e-10) -> np.ndarray:
    """:func:`newton_logistic` started at ``w0`` (zeros when None): a warm start from a
    nearby ``C``'s optimum saves iterations and, the optimum being unique, changes the result
    only by the convergence tolerance."""
    n, d = x.shape
    xb = np.hstack([np.asarray(x, dtype=np.float64), np.ones((n, 1))])
    reg = np.r_[np.full(d, 1.0 / C), 0.0]
    sign = 2.0 * np.asarray(y, dtype=np.float64) - 1.0

    def objective(w: np.ndarray) -> float:
        return float(np.sum(np.logaddexp(0.0, -sign * (xb @ w))) + 0.5 * np.sum(reg * w * w))

    w = np.zeros(d + 1) if w0 is None else np.array(w0, dtype=np.float64)
    f = objective(w)
    for _ in range(max_iter):
        p = _sigmoid(xb @ w)
        grad = xb.T @ (p - y) + reg * w
        hess = (xb * (p * (1.0 - p))[:, None]).T @ xb + np.diag(reg + 1e-12)
        step = np.linalg.solve(hess, grad)
        t, slope = 1.0, float(grad @ step)
        while True:
            trial = w - t * step
            f_trial = objective(trial)
            if f_trial <= f - 1e-4 * t * slope or t < 1e-12:
                break
            t /= 2
        w, f = trial, f_trial
        if np.max(np.abs(t * step)) <= tol * max(1.0, float(np.max(np.abs(w)))):
            break
    return w


def check_sets(positives, negatives) -> None:
    if len(positives) == 0 or len(negatives) == 0:
        raise ValueError(f"a quality classifier needs positives and negatives, got "
                         f"{len(positives)} and {len(negatives)}")


def accuracy(scores: np.ndarray, labels: np.ndarray) -> float | None:
    """Share of ``labels`` (1 or 0) that scores on the grid, at 0.5, get right."""
    if not len(labels):
        return None
    return float(np.mean((quantize(scores) >= 0.5) == (np.asarray(labels) == 1)))


def auc(scores: np.ndarray, labels: np.ndarray) -> float | None:
    """The area under the ROC curve of scores on the grid (ties count one half): the chance
    that a positive outranks a negative. None without both classes."""
    labels = np.asarray(labels) == 1
    if labels.all() or not labels.any():
        return None
    grid = quantize(scores)
    order = np.argsort(grid, kind="stable")
    ranks = np.empty(len(grid), dtype=np.float64)
    ranks[order] = np.arange(1, len(grid) + 1)
    values, first, counts = np.unique(grid[order], return_index=True, return_counts=True)
    mean_rank = first + (counts + 1) / 2.0  # tied scores share their mean rank
    ranks = mean_rank[np.searchsorted(values, grid)]
    pos, neg = int(labels.sum()), int((~labels).sum())
    return float((ranks[labels].sum() - pos * (pos + 1) / 2.0) / (pos * neg))
