"""Relevance to a specialist sample, and diversity among what is selected.

Written for any vectors (sentence or LSI embeddings of text, speaker or phonetic embeddings of
speech): rows are L2-normalised, so inner products are cosines.

* :class:`NeighbourIndex` — the specialist vectors in a FAISS inner-product index: exact (flat)
  up to ``exact_up_to`` vectors, an IVF index beyond. FAISS proposes the neighbours; their
  cosines are then recomputed in float64 and quantised (:mod:`tamis.selectors.precision`), so
  a score is the same on every CPU whatever FAISS build or BLAS kernel proposed them. The IVF
  lists come from :class:`~tamis.selectors.clusters.HierarchicalKMeans` (one level), and which
  lists a query visits is decided on the same grid, so approximate search is reproducible too.
* :func:`knn_relevance` — the mean cosine of a record to its ``k`` nearest specialist vectors.
* :func:`mmr` — greedy maximal marginal relevance under a size budget:
  ``argmax λ·rel(x) − (1−λ)·max_{s∈S} cos(x, s)``.
"""

from __future__ import annotations

import numpy as np

from tamis.selectors.clusters import HierarchicalKMeans, normalize, similarities
from tamis.selectors.precision import dot64, normalize64, quantize

#: Neighbours FAISS is asked for beyond ``k``: a float32 near-tie at the k-th place cannot push
#: a true neighbour out of the candidates whose cosines are recomputed exactly.
MARGIN = 8
CHUNK = 1024


class NeighbourIndex:
    """Nearest specialist vectors by cosine. After construction: ``size``, ``dim``, ``exact``,
    ``nlist`` (IVF lists; 0 when exact)."""

    def __init__(self, vectors: np.ndarray, exact_up_to: int = 100_000, nprobe: int = 32,
                 seed: int = 0) -> None:
        import faiss

        x = np.ascontiguousarray(normalize(np.asarray(vectors, dtype=np.float32)))
        if x.ndim != 2 or len(x) == 0:
            raise ValueError(f"a neighbour index needs vectors of shape (n, d), n > 0, got "
                             f"shape {x.shape}")
        self.size, self.dim = len(x), x.shape[1]
        self.exact = len(x) <= exact_up_to
        self._vectors = x
        self.nlist = 0
        if self.exact:
            self._index = faiss.IndexFlatIP(self.dim)
            self._index.add(x)
            return
        from faiss.contrib.ivf_tools import add_preassigned

        # The lists are the leaves of a two-level tree: seeding stays cheap at any nlist.
        wanted = int(min(65_536, max(16, 4 * np.sqrt(len(x)))))
        branching = int(np.ceil(np.sqrt(wanted)))
        tree = HierarchicalKMeans(branching=branching, levels=2,
                                  sample_size=min(len(x), 256 * branching * branching),
                                  niter=10, seed=seed).fit(x)
        self._centroids = tree.centroids_[1].reshape(-1, self.dim)
        self._unused = np.repeat(np.arange(branching)[None, :], branching, axis=0).ravel() >= \
            np.repeat(tree.n_children_[1], branching)
        self.nlist = len(self._centroids)
        self._nprobe = min(nprobe, self.nlist)
        quantizer = faiss.IndexFlatIP(self.dim)
        quantizer.add(np.ascontiguousarray(self._centroids))
        self._index = faiss.IndexIVFFlat(quantizer, self.dim, self.nlist,
                                         faiss.METRIC_INNER_PRODUCT)
        self._index.is_trained = True
        self._index.nprobe = self._nprobe
        self._quantizer = quantizer  # the IVF index does not own it
        add_preassigned(self._index, x, tree.assign(x)[:, 1].astype(np.int64))

    def _candidates(self, q: np.ndarray, k: int) -> np.ndarray:
        """Indices of at least the ``k`` nearest vectors (-1 where fewer exist)."""
        if self.exact:
            return self._index.search(q, k)[1]
        from faiss.contrib.ivf_tools import search_preassigned

        sims = np.where(self._unused, -np.inf, similarities(q, self._centroids))
        # the nprobe nearest lists on the grid, ties to the lower list number
        probes = np.argsort(-sims, axis=1, kind="stable")[:, : self._nprobe]
        return search_preassigned(self._index, q, k, probes.astype(np.int64))[1]

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``(cosines, indices)``, each ``(n, min(k, size))``, nearest first, cosines in
        float64 on the grid; equal cosines in index order. Approximate search may find fewer
        than ``k``: missing neighbours have index -1 and cosine nan."""
        q = np.ascontiguousarray(normalize(np.asarray(queries, dtype=np.float32)))
        if q.ndim != 2 or q.shape[1] != self.dim:
            raise ValueError(f"queries have {q.shape[-1]} dimensions, the index {self.dim}")
        k = min(k, self.size)
        if len(q) == 0:
            return np.zeros((0, k), np.float64), np.zeros((0, k), np.int64)
        wide = min(k + MARGIN, self.size)
        sims = np.empty((len(q), k), dtype=np.float64)
        idx = np.empty((len(q), k), dtype=np.int64)
        for start in range(0, len(q), CHUNK):
            part = q[start:start + CHUNK]
            found = self._candidates(part, wide)
            exact = quantize(dot64(part[:, None, :], self._vectors[np.maximum(found, 0)]))
            exact = np.where(found >= 0, exact, -np.inf)
            # nearest first on the grid; equal cosines by index, missing ones last
            order = np.lexsort((np.where(found >= 0, found, np.iinfo(np.int64).max), -exact),
                               axis=1)[:, :k]
            chosen = np.take_along_axis(found, order, axis=1)
            sims[start:start + CHUNK] = np.where(chosen >= 0,
                                                 np.take_along_axis(exact, order, axis=1),
                                                 np.nan)
            idx[start:start + CHUNK] = chosen
        return sims, idx


def knn_relevance(index: NeighbourIndex, queries: np.ndarray, k: int = 10) -> np.ndarray:
    """Mean cosine of each query to its ``k`` nearest specialist vectors, shape ``(n,)``,
    float64 on the grid of :mod:`tamis.selectors.precision`."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    sims, _ = index.search(queries, k)
    if sims.shape[0] == 0:
        return np.zeros(0, np.float64)
    with np.errstate(invalid="ignore"):
        out = np.nanmean(sims, axis=1) if sims.shape[1] else np.zeros(len(sims))
    return quantize(np.nan_to_num(out, nan=-1.0))


def mmr(vectors: np.ndarray, relevance: np.ndarray, sizes: np.ndarray, budget: float,
        lam: float = 0.7) -> np.ndarray:
    """Greedy maximal marginal relevance: the indices picked, in pick order.

    Each step picks ``argmax λ·relevance − (1−λ)·(max cosine to the rows already picked)``
    (the first pick: the most relevant row). Gains are computed in float64 and compared on the
    grid of :mod:`tamis.selectors.precision`; equal gains go to the lowest index, so callers
    order candidates by a stable key. Picking stops before the first pick that would take the
    sizes past ``budget``. Cost: one ``(n, d)`` product per pick.
    """
    if not 0 <= lam <= 1:
        raise ValueError(f"lambda must be in [0, 1], got {lam}")
    x = normalize64(vectors)
    rel = quantize(relevance)
    sizes = np.asarray(sizes, dtype=np.float64)
    n = len(x)
    closest = np.full(n, -np.inf)  # max cosine to the picked rows; -inf: none picked yet
    free = np.ones(n, dtype=bool)
    picked: list[int] = []
    spent = 0.0
    while free.any():
        penalty = np.where(np.isfinite(closest), closest, 0.0)
        gain = np.where(free, quantize(lam * rel - (1 - lam) * penalty), -np.inf)
        i = int(np.argmax(gain))
        if spent + sizes[i] > budget:
            break
        picked.append(i)
        spent += sizes[i]
        free[i] = False
        closest = np.maximum(closest, quantize(x @ x[i]))
    return np.asarray(picked, dtype=np.int64)
