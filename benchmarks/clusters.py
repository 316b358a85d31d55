"""Hierarchical k-means speed: fit time against raw FAISS k-means, and assignment rows/s
against raw FAISS search.

Synthetic unit vectors (a mixture of Gaussian blobs, 384-d) stand in for sentence embeddings.
Fit: tamis fits the balanced 64 x 64 tree (NumPy Lloyd iterations, float64 near ties, exact
centroid sums: the same tree on every CPU); raw FAISS fits the top level alone, ``faiss.Kmeans``
with 64 centroids on the same rows and iterations (float32, CPU-dependent), the most expensive
part of the tree. Assignment: tamis routes each row greedily down the tree (64 + 64 inner
products); raw FAISS answers the same question for the flat 4,096 leaves with an exhaustive
``IndexFlatIP`` search (4,096 inner products), and for the 64 top-level centroids alone.

    python benchmarks/clusters.py --rows 1000000 --dim 384
"""

from __future__ import annotations

import argparse
import time

import faiss
import numpy as np

from tamis.selectors.clusters import HierarchicalKMeans, normalize


def vectors(n: int, dim: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = normalize(rng.normal(size=(500, dim)))
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 100_000):
        stop = min(n, start + 100_000)
        pick = rng.integers(0, 500, size=stop - start)
        out[start:stop] = centres[pick] + 0.08 * rng.normal(size=(stop - start, dim))
    return normalize(out)


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--assign-rows", type=int, default=200_000)
    parser.add_argument("--threads", type=int, default=faiss.omp_get_max_threads())
    args = parser.parse_args()
    faiss.omp_set_num_threads(args.threads)
    x = vectors(args.rows, args.dim)
    print(f"{args.rows:,} x {args.dim} vectors, {args.threads} threads")
    model = HierarchicalKMeans(branching=64, levels=2, sample_size=args.rows, niter=20)
    fit_s, _ = timed(lambda: model.fit(x))
    print(f"fit, 64 x 64 = 4,096 leaves, on all {args.rows:,} rows: {fit_s:.1f}s "
          f"(inertia {model.inertia_:.4f}, largest top cluster "
          f"{model.sizes_[0].max() / args.rows:.2%} of rows, limit {1.5 / 64:.2%})")
    top = HierarchicalKMeans(branching=64, levels=1, sample_size=args.rows, niter=20,
                             balance=1e9)
    top_s, _ = timed(lambda: top.fit(x))
    km = faiss.Kmeans(args.dim, 64, niter=20, seed=0, spherical=True, verbose=False,
                      min_points_per_centroid=1, max_points_per_centroid=1 << 30)
    raw_s, _ = timed(lambda: km.train(x))
    print(f"fit, the top level alone (64 centroids, 20 iterations, no balancing): tamis "
          f"{top_s:.1f}s, raw faiss.Kmeans {raw_s:.1f}s (tamis {raw_s / top_s:.2f}x)")
    q = x[: args.assign_rows]
    ours_s, ours = timed(lambda: model.assign(q))
    leaves = model.centroids_[1].reshape(-1, args.dim)
    flat = faiss.IndexFlatIP(args.dim)
    flat.add(leaves)
    flat_s, (_, nearest) = timed(lambda: flat.search(q, 1))
    top = faiss.IndexFlatIP(args.dim)
    top.add(model.centroids_[0].reshape(-1, args.dim)[: 64])
    top_s, _ = timed(lambda: top.search(q, 1))
    n = len(q)
    agree = float(np.mean(ours[:, 1] == nearest[:, 0]))
    print(f"assign {n:,} rows:")
    print(f"  tamis tree routing, both levels:       {n / ours_s:12,.0f} rows/s")
    print(f"  raw FAISS flat search, 4,096 leaves:    {n / flat_s:12,.0f} rows/s  "
          f"(tamis {flat_s / ours_s:.2f}x; same leaf for {agree:.1%} of rows)")
    print(f"  raw FAISS flat search, 64 top centres:  {n / top_s:12,.0f} rows/s  "
          f"(tamis {top_s / ours_s:.2f}x, for two levels instead of one)")


if __name__ == "__main__":
    main()
