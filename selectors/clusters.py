"""Balanced hierarchical k-means with FAISS, and greedy routing down its tree.

Level 0 splits the (L2-normalised) vectors into ``branching`` clusters; each further level
splits every cluster of the level above into ``branching`` children, fitted on a sample of
that cluster's members. Leaf ``j`` of parent ``p`` has the global id ``p * branching + j``, so
level ``l`` has ``branching ** (l + 1)`` ids (a parent with fewer members than ``branching``
has fewer children, and some ids stay empty).

Balancing: after each k-means, while a child holds more than ``balance / k`` of its parent's
sample, the smallest child is re-seeded by splitting the largest in two (2-means on its
members), and the sample is reassigned. The number of children stays ``k``.
"""

from __future__ import annotations

import json
from typing import BinaryIO

import faiss
import numpy as np

MAX_LEVELS = 3


def normalize(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (zero rows stay zero), float32, C-contiguous."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


def kmeans_pp(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding on ``x`` (n, d): each new centre drawn with probability proportional
    to the squared distance to the nearest centre already chosen. Returns (k, d)."""
    n = len(x)
    centres = [x[rng.integers(n)]]
    nearest = ((x - centres[0]) ** 2).sum(axis=1)
    for _ in range(1, k):
        total = nearest.sum()
        i = rng.integers(n) if total <= 0 else rng.choice(n, p=nearest / total)
        centres.append(x[i])
        nearest = np.minimum(nearest, ((x - x[i]) ** 2).sum(axis=1))
    return np.stack(centres).astype(np.float32)


def _kmeans(x: np.ndarray, k: int, niter: int, seed: int) -> np.ndarray:
    """Spherical k-means (k-means++ seeds, then FAISS Lloyd iterations); returns (k, d)."""
    rng = np.random.default_rng(seed)
    seeds_from = x if len(x) <= 64 * k else x[rng.choice(len(x), 64 * k, replace=False)]
    init = kmeans_pp(seeds_from, k, rng)
    if niter == 0 or k == 1:
        return normalize(init) if k > 1 else normalize(x.mean(axis=0, keepdims=True))
    km = faiss.Kmeans(x.shape[1], k, niter=niter, seed=seed, spherical=True, verbose=False,
                      min_points_per_centroid=1, max_points_per_centroid=1 << 30)
    km.train(x, init_centroids=init)
    return normalize(km.centroids)


def _assign(x: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Nearest centroid by inner product (unit vectors), shape (n,), int64."""
    scores = x @ centroids.T
    return np.argmax(scores, axis=1).astype(np.int64)


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
        # a few Lloyd steps so that the other centroids follow
        for _ in range(2):
            labels = _assign(x, centroids)
            for c in range(k):
                if (labels == c).any():
                    centroids[c] = x[labels == c].mean(axis=0)
            centroids = normalize(centroids)
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
        x = normalize(x)
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
        self.inertia_ = float(np.mean(1.0 - np.sum(x * leaf_centres, axis=1)))
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
            sims = np.einsum("nd,nkd->nk", part, cents[parents]).astype(np.float64)
            used = np.arange(self.branching)[None, :] < self.n_children_[level][parents][:, None]
            sims = np.where(used, sims, -np.inf)
            top = np.argsort(-sims, axis=1, kind="stable")[:, :k]
            best = np.take_along_axis(sims, top, axis=1)
            w = np.where(np.isfinite(best), np.exp((best - best[:, :1]) / temperature), 0.0)
            w /= w.sum(axis=1, keepdims=True)
            np.add.at(out, (parents[:, None] * self.branching + top).ravel(), w.ravel())
        return out

    def describe(self) -> dict:
        return {"branching": self.branching, "levels": self.levels,
                "sample_size": self.sample_size, "sample_rows": self.sample_rows_,
                "niter": self.niter, "balance": self.balance, "seed": self.seed,
                "dim": self.dim, "inertia": self.inertia_,
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
