"""Balanced hierarchical k-means with FAISS, and greedy routing down its tree.

Level 0 splits the (L2-normalised) vectors into ``branching`` clusters; each further level
splits every cluster of the level above into ``branching`` children, fitted on a sample of
that cluster's members. Leaf ``j`` of parent ``p`` has the global id ``p * branching + j``, so
level ``l`` has ``branching ** (l + 1)`` ids (a parent with fewer members than ``branching``
has fewer children, and some ids stay empty).

Every similarity that routes a vector is computed in float64 and compared on the grid of
:mod:`tamis.selectors.precision` (ties to the lowest index), and centroids are float64 means
summed in a fixed order: a fit and its assignments are the same on every CPU.

Balancing: after each k-means, while a child holds more than ``balance / k`` of its parent's
sample, the smallest child is re-seeded by splitting the largest in two (2-means on its
members), and the sample is reassigned. The number of children stays ``k``.
"""

from __future__ import annotations

import json
from typing import BinaryIO

import numpy as np

from tamis.selectors.precision import STEP, dot64, normalize64, quantize

MAX_LEVELS = 3


def normalize(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (zero rows stay zero), float32, C-contiguous."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


def kmeans_pp(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding on ``x`` (n, d): each new centre drawn with probability proportional
    to the squared distance to the nearest centre already chosen. Returns (k, d).

    Distances are float64: their last bits only weigh a random draw, which they could change
    only if the draw fell within 1e-16 of a boundary."""
    x = np.asarray(x, dtype=np.float32)
    x64 = x.astype(np.float64)
    squares = np.sum(x64 * x64, axis=1)
    n = len(x)

    def distances(i: int) -> np.ndarray:
        return np.maximum(squares - 2.0 * (x64 @ x64[i]) + squares[i], 0.0)

    first = int(rng.integers(n))
    centres = [first]
    nearest = distances(first)
    for _ in range(1, k):
        total = nearest.sum()
        i = int(rng.integers(n)) if total <= 0 else int(rng.choice(n, p=nearest / total))
        centres.append(i)
        nearest = np.minimum(nearest, distances(i))
    return x[centres].astype(np.float32)


CHUNK = 16_384
#: Soft histogram masses are rounded to this grid, so that their sums are exact.
SOFT_STEP = 2.0**-32
#: The unit roundoff of float32.
UNIT_ROUNDOFF = 2.0**-24
#: Fitted vectors are rounded to multiples of this (exact in float32 below 1 in magnitude):
#: sums of up to 2**29 of them are exact in float64.
INPUT_STEP = 2.0**-24


def similarities(x: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Inner products of ``x`` (n, d) and ``centroids`` (k, d) in float64, quantised to
    :data:`~tamis.selectors.precision.STEP`, shape (n, k). Float64 BLAS differs between kernels
    by about 1e-16, far below the grid: every CPU gets the same cells."""
    c = np.asarray(centroids, dtype=np.float64)
    out = np.empty((len(x), len(c)), dtype=np.float64)
    for start in range(0, len(x), CHUNK):
        part = np.asarray(x[start:start + CHUNK], dtype=np.float64)
        out[start:start + CHUNK] = quantize(part @ c.T)
    return out


def _assign(x: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Nearest centroid by inner product of unit rows, shape (n,), int64: the highest of
    :func:`similarities`, the lowest index among equal ones.

    Computed in float32 (BLAS) first: where the best centroid leads the next by more than
    twice the float32 rounding bound of a dot product of unit vectors plus two grid steps, the
    float64 rule cannot choose otherwise; the few rows closer than that are decided in
    float64."""
    if len(x) == 0:
        return np.zeros(0, dtype=np.int64)
    c32 = np.ascontiguousarray(centroids, dtype=np.float32)
    if len(c32) == 1:
        return np.zeros(len(x), dtype=np.int64)
    d = x.shape[1]
    # |float32 dot - exact| <= gamma_d * |a| * |b|, with |a|, |b| <= 1 + 1e-6 for unit rows
    margin = 2 * 1.001 * d * UNIT_ROUNDOFF / (1 - d * UNIT_ROUNDOFF) + 2 * STEP
    out = np.empty(len(x), dtype=np.int64)
    for start in range(0, len(x), CHUNK):
        part = np.ascontiguousarray(x[start:start + CHUNK], dtype=np.float32)
        sims = part @ c32.T
        top = np.argmax(sims, axis=1)
        rows = np.arange(len(part))
        best = sims[rows, top].astype(np.float64)
        sims[rows, top] = -np.inf
        close = best - sims.max(axis=1) <= margin
        if close.any():
            top[close] = np.argmax(similarities(part[close], c32), axis=1)
        out[start:start + CHUNK] = top
    return out


def _cluster_sums(x: np.ndarray, labels: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Float64 sums and counts of the rows of each cluster. ``x`` lies on the grid of
    :data:`INPUT_STEP`, so every partial sum is exact in float64 and the result is the same in
    any order of addition, on any CPU."""
    counts = np.bincount(labels, minlength=k)
    order = np.argsort(labels, kind="stable")
    bounds = np.r_[0, np.cumsum(counts)]
    sums = np.zeros((k, x.shape[1]), dtype=np.float64)
    for c in np.flatnonzero(counts):
        members = order[bounds[c]:bounds[c + 1]]
        for start in range(0, len(members), CHUNK):
            sums[c] += np.sum(x[members[start:start + CHUNK]], axis=0, dtype=np.float64)
    return sums, counts


def _lloyd(x: np.ndarray, centroids: np.ndarray, niter: int) -> np.ndarray:
    """Spherical Lloyd iterations from ``centroids`` (k, d); returns unit float32 centroids.
    A cluster left empty keeps its centroid; iterations stop early once no row moves."""
    k = len(centroids)
    c = normalize(centroids)
    labels = None
    for _ in range(niter):
        new = _assign(x, c)
        if labels is not None and np.array_equal(new, labels):
            break
        labels = new
        sums, counts = _cluster_sums(x, labels, k)
        moved = normalize64(sums).astype(np.float32)
        c = np.where((counts > 0)[:, None], moved, c)
    return c


def _kmeans(x: np.ndarray, k: int, niter: int, seed: int) -> np.ndarray:
    """Spherical k-means (k-means++ seeds, then Lloyd iterations); returns (k, d) float32."""
    rng = np.random.default_rng(seed)
    seeds_from = x if len(x) <= 64 * k else x[rng.choice(len(x), 64 * k, replace=False)]
    init = kmeans_pp(seeds_from, k, rng)
    if k == 1:
        sums, _ = _cluster_sums(x, np.zeros(len(x), dtype=np.int64), 1)
        return normalize64(sums).astype(np.float32)
    return _lloyd(x, init, niter) if niter else normalize(init)


def _balanced(x: np.ndarray, k: int, niter: int, seed: int, balance: float,
              max_rounds: int = 8) -> np.ndarray:
    """k-means whose largest cluster holds at most ``balance / k`` of ``x`` (when it can)."""
    centroids = _kmeans(x, k, niter, seed)
    if k < 2:
        return centroids
    limit = balance * len(x) / k
    for r in range(max_rounds):
        labels = _assign(x, centroids)
        sizes = np.bincount(labels, minlength=k)
        big = int(np.argmax(sizes))
        if sizes[big] <= limit:
            break
        small = int(np.argmin(sizes))
        members = x[labels == big]
        pair = _kmeans(members, 2, niter, seed + 1000 + r)
        centroids[big], centroids[small] = pair[0], pair[1]
        centroids = _lloyd(x, centroids, 2)  # a few Lloyd steps so that the others follow
    return centroids


class HierarchicalKMeans:
    """Balanced hierarchical k-means (see the module docstring).

    Parameters
    ----------
    branching : int
        Children per node (k); level ``l`` has up to ``branching ** (l + 1)`` clusters.
    levels : int
        Depth, 1 (flat k-means) to 3.
    sample_size : int
        Vectors the top level is fitted on; each node below is fitted on at most
        ``sample_size // branching`` of its members.
    niter : int
        Lloyd iterations per k-means.
    balance : float
        A child may hold at most ``balance / k`` of its parent's sample (the paper: 1.5).
    seed : int

    After :meth:`fit`: ``centroids_`` (a list, level ``l`` of shape ``(branching ** l,
    branching, d)``, unused children as zero rows), ``n_children_`` (per level, per parent),
    ``inertia_`` (mean cosine distance of the sample to its leaf), ``sizes_`` (sample rows
    per cluster, per level).
    """

    def __init__(self, branching: int = 64, levels: int = 2, sample_size: int = 262_144,
                 niter: int = 20, balance: float = 1.5, seed: int = 0) -> None:
        self.branching, self.levels, self.sample_size = branching, levels, sample_size
        self.niter, self.balance, self.seed = niter, balance, seed

    def _check(self, x: np.ndarray) -> None:
        if not 1 <= self.levels <= MAX_LEVELS:
            raise ValueError(f"levels must be 1 to {MAX_LEVELS}, got {self.levels}")
        if self.branching < 2:
            raise ValueError(f"branching must be >= 2, got {self.branching}")
        if self.balance <= 1:
            raise ValueError(f"balance must be > 1, got {self.balance}")
        if x.ndim != 2 or len(x) < self.branching:
            raise ValueError(f"need at least branching={self.branching} vectors of shape (n, d) "
                             f"to fit, got shape {x.shape}")

    def fit(self, x: np.ndarray) -> HierarchicalKMeans:
        """Fit on ``x`` (n, d); rows are L2-normalised first. ``x`` is the sample: pass at
        most ``sample_size`` rows (extra rows are subsampled by the seed)."""
        x = quantize(normalize(x), INPUT_STEP).astype(np.float32)
        self._check(x)
        rng = np.random.default_rng(self.seed)
        if len(x) > self.sample_size:
            x = x[np.sort(rng.choice(len(x), self.sample_size, replace=False))]
        k, d = self.branching, x.shape[1]
        self.centroids_, self.n_children_, self.sizes_ = [], [], []
        parents = np.zeros(len(x), dtype=np.int64)
        per_node = max(k, self.sample_size // k)
        for level in range(self.levels):
            n_parents = k ** level
            cents = np.zeros((n_parents, k, d), dtype=np.float32)
            counts = np.zeros(n_parents, dtype=np.int64)
            labels = np.zeros(len(x), dtype=np.int64)
            for p in range(n_parents):
                members = np.flatnonzero(parents == p)
                if len(members) == 0:
                    continue
                fit_on = members
                if level > 0 and len(members) > per_node:
                    fit_on = np.sort(rng.choice(members, per_node, replace=False))
                kk = min(k, len(fit_on))
                node = _balanced(x[fit_on], kk, self.niter,
                                 self.seed + 7919 * level + p, self.balance)
                cents[p, :kk] = node
                counts[p] = kk
                labels[members] = p * k + _assign(x[members], node)
            self.centroids_.append(cents)
            self.n_children_.append(counts)
            self.sizes_.append(np.bincount(labels, minlength=k ** (level + 1)))
            parents = labels
        leaf_centres = self.centroids_[-1].reshape(-1, d)[parents]
        self.inertia_ = float(np.mean(1.0 - dot64(x, leaf_centres)))
        self.sample_rows_ = len(x)
        return self

    @property
    def dim(self) -> int:
        return int(self.centroids_[0].shape[2])

    def n_clusters(self, level: int) -> int:
        return self.branching ** (level + 1)

    def assign(self, x: np.ndarray) -> np.ndarray:
        """Greedy routing: the cluster id at every level, shape ``(n, levels)``, int64."""
        x = normalize(x)
        if x.shape[1] != self.dim:
            raise ValueError(f"vectors have {x.shape[1]} dimensions, the clusters {self.dim}")
        k = self.branching
        out = np.zeros((len(x), self.levels), dtype=np.int64)
        parents = np.zeros(len(x), dtype=np.int64)
        for level, cents in enumerate(self.centroids_):
            labels = np.empty(len(x), dtype=np.int64)
            order = np.argsort(parents, kind="stable")
            bounds = np.flatnonzero(np.r_[True, np.diff(parents[order]) != 0, True])
            for a, b in zip(bounds[:-1], bounds[1:], strict=True):
                rows = order[a:b]
                p = int(parents[rows[0]])
                kk = int(self.n_children_[level][p])
                labels[rows] = p * k + _assign(x[rows], cents[p, :kk])
            out[:, level] = labels
            parents = labels
        return out

    def soft_counts(self, x: np.ndarray, level: int, k: int = 8, temperature: float = 0.05,
                    chunk: int = 4096) -> np.ndarray:
        """A histogram over the clusters of ``level`` in which each row spreads its unit mass
        over the ``k`` children of its routed parent most similar to it, ∝ ``exp(cosine /
        temperature)`` (at level 0, over the top clusters). ``k = 1`` gives the histogram of
        :meth:`assign`; larger ``k`` reaches the near clusters a small sample leaves empty."""
        if k < 1 or temperature <= 0:
            raise ValueError(f"k must be >= 1 and temperature > 0, got {k} and {temperature}")
        x = normalize(x)
        out = np.zeros(self.n_clusters(level), dtype=np.float64)
        cents = self.centroids_[level]
        for start in range(0, len(x), chunk):
            part = x[start:start + chunk]
            parents = (self.assign(part)[:, level - 1] if level > 0
                       else np.zeros(len(part), dtype=np.int64))
            sims = np.full((len(part), self.branching), -np.inf)
            for p in np.unique(parents):
                rows = np.flatnonzero(parents == p)
                kk = int(self.n_children_[level][p])
                sims[rows, :kk] = similarities(part[rows], cents[p, :kk])
            top = np.argsort(-sims, axis=1, kind="stable")[:, :k]
            best = np.take_along_axis(sims, top, axis=1)
            w = np.where(np.isfinite(best), np.exp((best - best[:, :1]) / temperature), 0.0)
            # on a grid of 2**-32: sums of these are exact, whatever the exp's last bits
            w = quantize(w / w.sum(axis=1, keepdims=True), SOFT_STEP)
            np.add.at(out, (parents[:, None] * self.branching + top).ravel(), w.ravel())
        return out

    def describe(self) -> dict:
        return {"branching": self.branching, "levels": self.levels,
                "sample_size": self.sample_size, "sample_rows": self.sample_rows_,
                "niter": self.niter, "balance": self.balance, "seed": self.seed,
                "dim": self.dim, "inertia": round(float(self.inertia_), 9),
                "sizes": [s.tolist() for s in self.sizes_]}

    def save(self, f: BinaryIO) -> None:
        """Centroids and child counts as ``.npz`` (no pickle), the description as JSON in it."""
        arrays = {f"centroids_l{i}": c for i, c in enumerate(self.centroids_)}
        arrays.update({f"children_l{i}": c for i, c in enumerate(self.n_children_)})
        arrays.update({f"sizes_l{i}": s for i, s in enumerate(self.sizes_)})
        np.savez(f, description=np.asarray(json.dumps(self.describe())), **arrays)

    @classmethod
    def load(cls, f: BinaryIO) -> HierarchicalKMeans:
        data = np.load(f, allow_pickle=False)
        info = json.loads(str(data["description"]))
        model = cls(info["branching"], info["levels"], info["sample_size"], info["niter"],
                    info["balance"], info["seed"])
        model.centroids_ = [data[f"centroids_l{i}"] for i in range(info["levels"])]
        model.n_children_ = [data[f"children_l{i}"] for i in range(info["levels"])]
        model.sizes_ = [data[f"sizes_l{i}"] for i in range(info["levels"])]
        model.inertia_, model.sample_rows_ = info["inertia"], info["sample_rows"]
        return model
