"""CRISP clustered importance sampling: histograms, weights and per-row draw counts.

The paper's sampler draws a cluster from the specialist histogram, then a record uniformly
inside that cluster, with replacement, until the budget is spent. For a budget of B tokens,
cluster c receives B * P(c | specialist) tokens in expectation, and each of its records is
drawn a Binomial number of times, close to Poisson with mean
``lambda_c = B * P(c | specialist) / tokens(c)``. Here every record's count is that Poisson
draw, made by inverting its CDF at a uniform that is a keyed hash of (seed, id): a pure
function of the record, the same on any worker, with the paper's expectation per cluster.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tamis.selectors.sampling import row_keys


def histogram(cluster_ids: np.ndarray, n_clusters: int,
              amounts: np.ndarray | None = None) -> np.ndarray:
    """Rows (or ``amounts``, e.g. tokens) per cluster, shape ``(n_clusters,)``, float64."""
    ids = np.asarray(cluster_ids, dtype=np.int64)
    if ids.size and (ids.min() < 0 or ids.max() >= n_clusters):
        raise ValueError(f"cluster ids must be in [0, {n_clusters}), got {ids.min()}..{ids.max()}")
    return np.bincount(ids, weights=amounts, minlength=n_clusters).astype(np.float64)


def mix(histograms: Sequence[np.ndarray], proportions: Sequence[float] | None = None,
        smoothing: float = 0.0) -> np.ndarray:
    """Multi-task target: ``sum_t pi_t P(c | specialist_t)``, each histogram normalised first
    and additively smoothed by ``smoothing`` (a pseudo-count share spread over all clusters).
    Returns a distribution, shape ``(n_clusters,)``."""
    if not histograms:
        raise ValueError("at least one specialist histogram is needed")
    pi = np.ones(len(histograms)) if proportions is None else np.asarray(proportions, float)
    if len(pi) != len(histograms) or np.any(pi < 0) or pi.sum() <= 0:
        raise ValueError(f"proportions must be {len(histograms)} non-negative numbers with a "
                         f"positive sum, got {list(pi)}")
    pi = pi / pi.sum()
    out = np.zeros_like(np.asarray(histograms[0], dtype=np.float64))
    for p, h in zip(pi, histograms, strict=True):
        h = np.asarray(h, dtype=np.float64)
        if h.sum() <= 0:
            raise ValueError("a specialist histogram is empty: its set has no record")
        out += p * _smooth(h / h.sum(), smoothing)
    return out


def _smooth(p: np.ndarray, smoothing: float) -> np.ndarray:
    if smoothing < 0:
        raise ValueError(f"smoothing must be >= 0, got {smoothing}")
    return (p + smoothing / len(p)) / (1.0 + smoothing)


def weights(target: np.ndarray, pool: np.ndarray) -> np.ndarray:
    """``w(c) = P(c | target) / P(c | pool)``; 0 where the pool has nothing."""
    target = np.asarray(target, dtype=np.float64)
    pool = np.asarray(pool, dtype=np.float64)
    p = pool / pool.sum()
    t = target / target.sum()
    return np.divide(t, p, out=np.zeros_like(t), where=p > 0)


def rates(target: np.ndarray, pool_tokens: np.ndarray, budget: float) -> np.ndarray:
    """Expected draws per record of each cluster, ``lambda_c = budget * P(c) / tokens(c)``
    (0 where the pool has no token)."""
    target = np.asarray(target, dtype=np.float64)
    share = target / target.sum()
    pool_tokens = np.asarray(pool_tokens, dtype=np.float64)
    return np.divide(budget * share, pool_tokens, out=np.zeros_like(share),
                     where=pool_tokens > 0)


def uniforms(ids: Sequence[str], seed: int) -> np.ndarray:
    """A uniform in (0, 1) per id, a pure function of (seed, id)."""
    return (row_keys(ids, seed) >> np.uint64(11)).astype(np.float64) / float(1 << 53) + 2**-54


def poisson_counts(u: np.ndarray, lam: np.ndarray, cap: int) -> np.ndarray:
    """Poisson(lam) draws by inverse CDF at ``u``, capped at ``cap``; int64, shape (n,)."""
    u = np.asarray(u, dtype=np.float64)
    lam = np.asarray(lam, dtype=np.float64)
    k = np.zeros(u.shape, dtype=np.int64)
    pmf = np.exp(-lam)
    cdf = pmf.copy()
    active = (u > cdf) & (k < cap)
    while active.any():
        k[active] += 1
        pmf = np.where(active, pmf * lam / np.maximum(k, 1), pmf)
        cdf = np.where(active, cdf + pmf, cdf)
        active = active & (u > cdf) & (k < cap)
    return k


def draw_counts(ids: Sequence[str], clusters: np.ndarray, lam: np.ndarray, seed: int,
                cap: int) -> np.ndarray:
    """``n_samples`` per record: Poisson with its cluster's rate, capped at ``cap``."""
    return poisson_counts(uniforms(ids, seed), np.asarray(lam)[np.asarray(clusters)], cap)


def without_replacement_counts(ids: Sequence[str], clusters: np.ndarray, lam: np.ndarray,
                               seed: int, cap: int) -> np.ndarray:
    """``n_samples`` per record when a cluster's records are drawn without replacement.

    A cluster with rate ``lam <= 1`` gives each record 0 or 1 draws (1 when its uniform of
    (seed, id) is below ``lam``): no record repeats. Only an exhausted cluster (``lam > 1``)
    repeats, and then every one of its records: ``floor(lam)`` draws, one more below the
    fractional part. Capped at ``cap``. The expectation per record is ``min(lam, cap)``.
    """
    rate = np.asarray(lam, dtype=np.float64)[np.asarray(clusters)]
    whole = np.floor(rate)
    n = whole.astype(np.int64) + (uniforms(ids, seed) < rate - whole)
    return np.minimum(n, cap)


def expected_draws(lam: np.ndarray, cap: int, sampler: str = "poisson") -> np.ndarray:
    """Draws a record of each cluster gets on average under ``cap``, for either sampler."""
    if sampler == "poisson":
        return capped_mean(lam, cap)
    return np.minimum(np.asarray(lam, dtype=np.float64), cap)


def kl_divergence(p: np.ndarray, q: np.ndarray, eps: float = 1e-12) -> float:
    """KL(p || q) in nats over clusters, both normalised; clusters where p is 0 add nothing."""
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    p, q = p / p.sum(), q / q.sum()
    mask = p > 0
    return float(np.sum(p[mask] * np.log(p[mask] / np.maximum(q[mask], eps))))


def effective_sample_size(counts: np.ndarray) -> float:
    """Kish's effective sample size of a resampled set: ``(sum n)^2 / sum n^2``."""
    counts = np.asarray(counts, dtype=np.float64)
    square = float(np.sum(counts**2))
    return float(np.sum(counts)) ** 2 / square if square else 0.0


def coverage(target: np.ndarray, pool: np.ndarray) -> float:
    """Share of the target's mass in clusters the pool has records in."""
    target = np.asarray(target, dtype=np.float64)
    return float(target[np.asarray(pool) > 0].sum() / target.sum())


def mixture_report(target: np.ndarray, pool: np.ndarray, selected: np.ndarray,
                   top: int = 20) -> dict:
    """The largest clusters of the selection: shares in target, pool and selection."""
    t, p, s = (np.asarray(a, dtype=np.float64) for a in (target, pool, selected))
    t, p = t / t.sum(), p / max(p.sum(), 1e-300)
    s = s / s.sum() if s.sum() else s
    order = np.argsort(-s, kind="stable")[:top]
    return {int(c): {"target_share": round(float(t[c]), 6), "pool_share": round(float(p[c]), 6),
                     "selected_share": round(float(s[c]), 6)} for c in order if s[c] > 0}


def capped_mean(lam: np.ndarray, cap: int) -> np.ndarray:
    """``E[min(X, cap)]`` for ``X ~ Poisson(lam)``: the draws a record gets under the cap."""
    lam = np.asarray(lam, dtype=np.float64)
    pmf = np.exp(-lam)
    cdf = pmf.copy()
    out = np.zeros_like(lam)
    for k in range(cap):  # E[min(X, m)] = sum_{k<m} P(X > k)
        out += 1.0 - cdf
        pmf = pmf * lam / (k + 1)
        cdf = cdf + pmf
    return out
