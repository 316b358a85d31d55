"""Selecting speech clips by embeddings ("Which Data Matter?", Aldeneh et al.): relevance to a
target sample on several axes (speaker, acoustic, phonetic, semantic), fused, then diversity by
budget-aware greedy MMR to a budget in seconds of audio, with optional per-speaker caps.

* :func:`axis_relevance` — one axis's relevance of each pool clip to the target sample: the
  mean cosine to its ``k`` nearest target clips (:func:`~tamis.selectors.relevance.knn_relevance`,
  exact and on the grid), or the cosine to the nearest of the target's k-means centroids (a
  target of many clips summarised, so that no single clip dominates); NaN for a clip without
  that axis (a zero row).
* :func:`zscore` — an axis's relevance standardised over the pool (missing values stay NaN).
* :func:`fuse` — late fusion: the weighted mean of the z-scored axes a clip has (a clip
  without a transcript skips the semantic axis; the others' weights are renormalised).
* :func:`budget_mmr` — greedy selection in seconds. A clip's value is its seconds times its
  MMR score, so its *gain per second* is the score itself: each step takes the clip of the
  largest ``λ·rel + (1 − λ)·(1 − max_sim)`` (dividing that by the seconds instead would favour
  short clips whatever they hold), where ``rel`` is the
  fused relevance mapped into [0, 1] and ``max_sim`` the largest similarity (the weighted mean
  of the per-axis cosines) to a clip taken already, or 0 when that is below 0 (a clip unlike
  everything taken gains the whole diversity term, and no more). A clip that no longer fits
  the budget, or its speaker's cap, is passed over and the next one considered; selection
  ends when nothing fits. Gains are float64 on the grid of :mod:`tamis.selectors.precision`;
  equal gains go to the clip of the smallest (seed, id) key, so the selection is the same on
  every CPU and in any input order.
* :func:`select_clips` — all of it: relevance per axis, fusion, a prefilter of the most
  relevant clips (a few times the budget's seconds, so that MMR's cost does not grow with the
  pool), then budget-aware MMR over them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from tamis.selectors.precision import normalize64, quantize, tie_keys


def axis_relevance(pool: np.ndarray, target: np.ndarray, k: int = 10,
                   mode: str = "topk", centroids: int = 16, seed: int = 0) -> np.ndarray:
    """Relevance of each pool row to the target rows on one axis, ``(n,)`` float64 on the grid
    (see the module's docstring); rows of zeros (no such embedding) get NaN."""
    from tamis.selectors.relevance import NeighbourIndex, knn_relevance

    pool = np.asarray(pool, dtype=np.float32)
    target = np.asarray(target, dtype=np.float32)
    target = target[np.any(target != 0, axis=1)]
    out = np.full(len(pool), np.nan)
    have = np.any(pool != 0, axis=1)
    if not len(target) or not have.any():
        return out
    if mode == "centroids":
        from tamis.selectors.clusters import HierarchicalKMeans

        branching = max(1, min(centroids, len(target)))
        tree = HierarchicalKMeans(branching=branching, levels=1, sample_size=len(target),
                                  niter=20, seed=seed).fit(target)
        points = tree.centroids_[0].reshape(-1, target.shape[1])
        target, k = points[np.any(points != 0, axis=1)], 1
    elif mode != "topk":
        raise ValueError(f"mode must be 'topk' or 'centroids', got {mode!r}")
    index = NeighbourIndex(target, seed=seed)
    out[have] = knn_relevance(index, pool[have], k=k)
    return out


def zscore(values: np.ndarray) -> np.ndarray:
    """``(x − mean) / std`` over the finite values, on the grid; NaN stays NaN, and an axis
    without spread gives 0 everywhere it has a value."""
    x = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(x)
    out = np.full(x.shape, np.nan)
    if not finite.any():
        return out
    mean = float(np.mean(x[finite]))
    std = float(np.std(x[finite]))
    out[finite] = 0.0 if std == 0 else (x[finite] - mean) / std
    return quantize(out)


def fuse(relevance: Mapping[str, np.ndarray], weights: Mapping[str, float]) -> np.ndarray:
    """The weighted mean of each clip's z-scored axes (:func:`zscore`), over the axes it has;
    NaN for a clip with none."""
    names = [a for a in relevance if weights.get(a, 0) > 0]
    if not names:
        raise ValueError(f"no axis has a positive weight: weights {dict(weights)}")
    if any(weights[a] < 0 for a in weights):
        raise ValueError(f"axis weights must be >= 0, got {dict(weights)}")
    n = len(next(iter(relevance.values())))
    total, mass = np.zeros(n), np.zeros(n)
    for a in names:
        z = zscore(relevance[a])
        if len(z) != n:
            raise ValueError(f"axis {a!r} has {len(z)} values, the others {n}")
        have = np.isfinite(z)
        total[have] += weights[a] * z[have]
        mass[have] += weights[a]
    with np.errstate(invalid="ignore", divide="ignore"):
        return quantize(np.where(mass > 0, total / mass, np.nan))


def similarity(vectors: Mapping[str, np.ndarray], weights: Mapping[str, float], i: int
               ) -> np.ndarray:
    """Clip ``i``'s similarity to every clip: the weighted mean of the per-axis cosines over
    the axes both clips have (a clip without an axis has a zero row there), on the grid."""
    total = mass = None
    for a, x in vectors.items():
        w = weights.get(a, 0)
        if w <= 0:
            continue
        have = np.any(x != 0, axis=1)
        if not have[i]:
            continue
        cos = np.sum(x * x[i], axis=1)  # elementwise: the same bits on every machine
        total = w * cos if total is None else total + w * cos
        mass = w * have if mass is None else mass + w * have
    if total is None:
        return np.zeros(len(next(iter(vectors.values()))))
    with np.errstate(invalid="ignore", divide="ignore"):
        return quantize(np.where(mass > 0, total / mass, 0.0))


def budget_mmr(vectors: Mapping[str, np.ndarray], weights: Mapping[str, float],
               relevance: np.ndarray, seconds: np.ndarray, budget: float,
               ids: Sequence[str], lam: float = 0.7, seed: int = 0,
               speakers: Sequence[str | None] | None = None,
               speaker_cap: float | None = None) -> np.ndarray:
    """The clips picked, in pick order (indices into the inputs). ``vectors``: per axis, an
    ``(n, d)`` array (rows of a clip without that axis all zero); ``relevance``: the fused
    relevance (NaN: no axis, never picked); ``seconds``: each clip's duration; ``budget`` and
    ``speaker_cap`` in seconds."""
    if not 0 <= lam <= 1:
        raise ValueError(f"lambda must be in [0, 1], got {lam}")
    if budget < 0:
        raise ValueError(f"the budget must be >= 0 seconds, got {budget}")
    seconds = np.asarray(seconds, dtype=np.float64)
    relevance = np.asarray(relevance, dtype=np.float64)
    n = len(seconds)
    if len(relevance) != n or len(ids) != n:
        raise ValueError(f"{n} durations, {len(relevance)} relevances and {len(ids)} ids")
    if n and (seconds <= 0).any():
        raise ValueError("every clip needs a duration > 0 seconds")
    order = np.argsort(tie_keys(list(ids), seed), kind="stable")  # ties: smallest key first
    x = {a: normalize64(np.asarray(v, dtype=np.float64)[order]) for a, v in vectors.items()}
    rel, dur = relevance[order], seconds[order]
    rel01 = _unit(rel)
    capped = speakers is not None and speaker_cap is not None
    if capped:
        names = [s if s is not None else f"\x00{i}" for i, s in enumerate(speakers)]
        _, codes = np.unique(np.asarray(names, dtype=object)[order], return_inverse=True)
        by_speaker = np.zeros(int(codes.max()) + 1 if n else 0)
    max_sim = np.zeros(n)  # to the clips picked; 0 before the first pick
    free = np.isfinite(rel)
    picked: list[int] = []
    spent = 0.0
    while True:
        fits = free & (spent + dur <= budget + 1e-9)
        if capped:
            fits &= by_speaker[codes] + dur <= speaker_cap + 1e-9
        if not fits.any():
            break
        gain = np.where(fits, quantize(lam * rel01 + (1 - lam) * (1 - max_sim)), -np.inf)
        i = int(np.argmax(gain))
        picked.append(i)
        spent += dur[i]
        free[i] = False
        if capped:
            by_speaker[codes[i]] += dur[i]
        max_sim = np.maximum(max_sim, similarity(x, weights, i))
    return order[np.asarray(picked, dtype=np.int64)]


def _unit(rel: np.ndarray) -> np.ndarray:
    """Finite relevance mapped onto [0, 1] (min to 0, max to 1; all equal: 1), on the grid."""
    out = np.zeros(len(rel))
    finite = np.isfinite(rel)
    if finite.any():
        lo, hi = float(rel[finite].min()), float(rel[finite].max())
        out[finite] = 1.0 if hi == lo else (rel[finite] - lo) / (hi - lo)
    return quantize(out)


def select_clips(pool: Mapping[str, np.ndarray], target: Mapping[str, np.ndarray],
                 weights: Mapping[str, float], seconds: np.ndarray, ids: Sequence[str],
                 budget: float, lam: float = 0.7, k: int = 10, mode: str = "topk",
                 prefilter: float = 4.0, speakers: Sequence[str | None] | None = None,
                 speaker_cap: float | None = None, seed: int = 0) -> dict:
    """The whole selection: per-axis relevance of the pool to the target (:func:`axis_relevance`),
    fused (:func:`fuse`), the most relevant candidates kept (``prefilter`` times as many
    seconds as the budget, by fused relevance, ties by (seed, id)), then :func:`budget_mmr`
    over them. Returns ``picked`` (indices in pick order), ``relevance`` (per axis),
    ``fused`` and ``candidates`` (how many the prefilter kept)."""
    if prefilter < 1:
        raise ValueError(f"prefilter must be >= 1 (times the budget), got {prefilter}")
    relevance = {a: axis_relevance(pool[a], target[a], k=k, mode=mode, seed=seed)
                 for a in weights if weights[a] > 0}
    fused = fuse(relevance, weights)
    seconds = np.asarray(seconds, dtype=np.float64)
    keys = tie_keys(list(ids), seed)
    order = np.lexsort((keys, -np.nan_to_num(fused, nan=-np.inf)))
    order = order[np.isfinite(fused[order])]
    spent = np.cumsum(seconds[order])
    candidates = order[: int(np.searchsorted(spent, prefilter * budget, side="right")) + 1]
    picked = budget_mmr({a: np.asarray(pool[a])[candidates] for a in relevance}, weights,
                        fused[candidates], seconds[candidates], budget,
                        [ids[i] for i in candidates], lam=lam, seed=seed,
                        speakers=None if speakers is None else [speakers[i] for i in candidates],
                        speaker_cap=speaker_cap)
    return {"picked": candidates[picked], "relevance": relevance, "fused": fused,
            "candidates": int(len(candidates))}
