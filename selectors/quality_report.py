"""What a quality classifier's scores say: the warnings a person must hear, the exact
top-share threshold (from a mergeable histogram of grid scores) and the diagnostics the
manifest reports (the high-quality set's pass share, the score-length correlation)."""

from __future__ import annotations

import numpy as np

from tamis.selectors.precision import STEP, cells

#: Below these, a classifier's held-out figures say little (warned in the manifest).
MIN_HELDOUT_PER_CLASS = 10
CHANCE_AUC = 0.6


def classifier_warnings(heldout_auc: float | None, held_positives: int | None,
                        held_negatives: int,
                        pool_scores: np.ndarray, keep_top: float | None,
                        pool_pass_share: float | None) -> list[str]:
    """What a person must hear about a quality classifier before trusting its selection."""
    out = []
    if held_positives is None:  # a model reused without its held-out figures
        pass
    elif min(held_positives, held_negatives) < MIN_HELDOUT_PER_CLASS:
        out.append(f"the held-out split has {held_positives} positives and {held_negatives} "
                   f"negatives, too few to measure the classifier (at least "
                   f"{MIN_HELDOUT_PER_CLASS} of each): give more positives or a larger "
                   f"'holdout'")
    elif heldout_auc is not None and heldout_auc < CHANCE_AUC:
        out.append(f"the classifier is at chance on its held-out split (AUC "
                   f"{heldout_auc:.3f}): its scores rank the pool little better than a coin")
    scores = np.asarray(pool_scores, dtype=np.float64)
    if scores.size >= 20:
        low, high = np.quantile(scores, [0.005, 0.995])
        if high - low < 0.05:
            out.append(f"99% of the pool's scores lie between {low:.3f} and {high:.3f}: the "
                       f"classifier barely separates anything, and a fixed threshold means "
                       f"little")
    if keep_top is not None and pool_pass_share is not None and scores.size:
        extra = int(round((pool_pass_share - keep_top) * scores.size))
        if extra > max(1, 0.001 * scores.size):
            out.append(f"ties at the cut-off score keep {pool_pass_share:.1%} of the pool, "
                       f"not the {keep_top:.1%} asked ({extra:,} rows more)")
    return out


def top_fraction_threshold(scores: np.ndarray, keep: float) -> float:
    """The score at or above which the top ``keep`` share of ``scores`` lies (exact)."""
    if not 0 < keep <= 1:
        raise ValueError(f"keep must be in (0, 1], got {keep}")
    ordered = np.sort(np.asarray(scores, dtype=np.float64))[::-1]
    k = max(1, int(np.ceil(keep * len(ordered))))
    return float(ordered[k - 1])


#: Cells of a score histogram: the grid points 0, STEP, ..., 1 of a probability.
SCORE_CELLS = int(round(1 / STEP)) + 1


def score_histogram(scores: np.ndarray) -> np.ndarray:
    """Rows per grid cell of probabilities in [0, 1], shape ``(SCORE_CELLS,)``, int64: a
    mergeable summary from which :func:`threshold_from_histogram` finds an exact percentile
    of the quantised scores with bounded memory, at any corpus size."""
    c = np.clip(cells(scores), 0, SCORE_CELLS - 1)
    return np.bincount(c, minlength=SCORE_CELLS).astype(np.int64)


def threshold_from_histogram(counts: np.ndarray, keep: float) -> float:
    """:func:`top_fraction_threshold` of the quantised scores that ``counts`` summarises."""
    if not 0 < keep <= 1:
        raise ValueError(f"keep must be in (0, 1], got {keep}")
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    if total == 0:
        return 1.0
    k = max(1, int(np.ceil(keep * total)))
    from_top = np.cumsum(counts[::-1])
    cell = len(counts) - 1 - int(np.searchsorted(from_top, k))
    return float(cell * STEP)


def ranks(x: np.ndarray) -> np.ndarray:
    """Ranks from 1, ties given their mean rank."""
    values, inverse, counts = np.unique(np.asarray(x), return_inverse=True, return_counts=True)
    first = np.cumsum(counts) - counts  # rank - 1 of each value's first occurrence
    return (first + (counts + 1) / 2.0)[inverse]


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rank correlation (Pearson's on tie-averaged ranks); nan if one side is
    constant."""
    rx, ry = ranks(x), ranks(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denominator = np.sqrt((rx * rx).sum() * (ry * ry).sum())
    return float((rx * ry).sum() / denominator) if denominator else float("nan")


def diagnostics(pool_scores: np.ndarray, pool_lengths: np.ndarray,
                hq_scores: np.ndarray, threshold: float, bins: int = 20) -> dict:
    """What the papers ask to see: the share of the high-quality set that passes, the
    correlation of score with length (Spearman), and the score distribution."""
    pool_scores = np.asarray(pool_scores, dtype=np.float64)
    hist, edges = np.histogram(pool_scores, bins=bins, range=(0.0, 1.0))
    rho = spearman(pool_scores, pool_lengths) if len(pool_scores) > 2 else None
    return {
        "threshold": threshold,
        "hq_pass_share": float(np.mean(np.asarray(hq_scores) >= threshold))
        if len(hq_scores) else None,
        "pool_pass_share": float(np.mean(pool_scores >= threshold)) if len(pool_scores) else None,
        "score_length_spearman": None if rho is None or np.isnan(rho) else float(rho),
        "score_histogram": {"edges": edges.round(4).tolist(), "counts": hist.tolist()},
    }
