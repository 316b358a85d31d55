"""Relevance to a specialist sample, and diversity among what is selected.

Written for any vectors (sentence or LSI embeddings of text, speaker or phonetic embeddings of
speech): rows are L2-normalised, so inner products are cosines.

* :class:`NeighbourIndex` — the specialist vectors in a FAISS inner-product index: exact (flat)
  up to ``exact_up_to`` vectors, an IVF index beyond (k-means trained with a fixed seed, so
  every worker that builds it gets the same index).
* :func:`knn_relevance` — the mean cosine of a record to its ``k`` nearest specialist vectors.
* :func:`mmr` — greedy maximal marginal relevance under a size budget:
  ``argmax λ·rel(x) − (1−λ)·max_{s∈S} cos(x, s)``.
"""

from __future__ import annotations

import numpy as np

from tamis.selectors.clusters import normalize


class NeighbourIndex:
    """Nearest specialist vectors by cosine. After construction: ``size``, ``exact``."""

    def __init__(self, vectors: np.ndarray, exact_up_to: int = 100_000, nprobe: int = 32,
                 seed: int = 0) -> None:
        import faiss

        x = np.ascontiguousarray(normalize(np.asarray(vectors, dtype=np.float32)))
        if x.ndim != 2 or len(x) == 0:
            raise ValueError(f"a neighbour index needs vectors of shape (n, d), n > 0, got "
                             f"shape {x.shape}")
        self.size, self.dim = len(x), x.shape[1]
        self.exact = len(x) <= exact_up_to
        if self.exact:
            self._index = faiss.IndexFlatIP(self.dim)
        else:
            nlist = int(min(65_536, max(16, 4 * np.sqrt(len(x)))))
            quantizer = faiss.IndexFlatIP(self.dim)
            self._index = faiss.IndexIVFFlat(quantizer, self.dim, nlist,
                                             faiss.METRIC_INNER_PRODUCT)
            self._index.cp.seed = seed
            self._index.train(x)
            self._index.nprobe = min(nprobe, nlist)
            self._quantizer = quantizer  # the IVF index does not own it
        self._index.add(x)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``(cosines, indices)``, each ``(n, min(k, size))``, nearest first. Approximate
        search may find fewer than ``k``: missing neighbours have index -1 and cosine nan."""
        q = np.ascontiguousarray(normalize(np.asarray(queries, dtype=np.float32)))
        if q.shape[1] != self.dim:
            raise ValueError(f"queries have {q.shape[1]} dimensions, the index {self.dim}")
        k = min(k, self.size)
        if len(q) == 0:
            return np.zeros((0, k), np.float32), np.zeros((0, k), np.int64)
        sims, idx = self._index.search(q, k)
        return np.where(idx >= 0, sims, np.nan), idx


def knn_relevance(index: NeighbourIndex, queries: np.ndarray, k: int = 10) -> np.ndarray:
    """Mean cosine of each query to its ``k`` nearest specialist vectors, shape ``(n,)``."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    sims, _ = index.search(queries, k)
    if sims.shape[0] == 0:
        return np.zeros(0, np.float64)
    with np.errstate(invalid="ignore"):
        out = np.nanmean(sims.astype(np.float64), axis=1) if sims.shape[1] else np.zeros(0)
    return np.nan_to_num(out, nan=-1.0)


def mmr(vectors: np.ndarray, relevance: np.ndarray, sizes: np.ndarray, budget: float,
        lam: float = 0.7) -> np.ndarray:
    """Greedy maximal marginal relevance: the indices picked, in pick order.

    Each step picks ``argmax λ·relevance − (1−λ)·(max cosine to the rows already picked)``
    (the first pick: the most relevant row); ties go to the lowest index, so callers order
    candidates by a stable key. Picking stops before the first pick that would take the sizes
    past ``budget``. Cost: one ``(n, d)`` product per pick.
    """
    if not 0 <= lam <= 1:
        raise ValueError(f"lambda must be in [0, 1], got {lam}")
    x = normalize(np.asarray(vectors, dtype=np.float32))
    rel = np.asarray(relevance, dtype=np.float64)
    sizes = np.asarray(sizes, dtype=np.float64)
    n = len(x)
    closest = np.full(n, -np.inf)  # max cosine to the picked rows; -inf: none picked yet
    free = np.ones(n, dtype=bool)
    picked: list[int] = []
    spent = 0.0
    while free.any():
        penalty = np.where(np.isfinite(closest), closest, 0.0)
        gain = np.where(free, lam * rel - (1 - lam) * penalty, -np.inf)
        i = int(np.argmax(gain))
        if spent + sizes[i] > budget:
            break
        picked.append(i)
        spent += sizes[i]
        free[i] = False
        closest = np.maximum(closest, (x @ x[i]).astype(np.float64))
    return np.asarray(picked, dtype=np.int64)
