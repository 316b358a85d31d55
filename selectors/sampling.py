"""Uniform sampling without replacement to a row or token budget, optionally per stratum.

Every row gets a 64-bit key, a keyed hash of ``(seed, id)``: uniform, independent across rows,
and the same on any worker in any order. A sample of budget B is the shortest run of rows in
key order (ties broken by id, then by position) whose size does not exceed B. Finding that run
needs no global sort: rows are binned by the top bits of their key (``2**bin_bits`` bins), the
bins' counts give the cut-off bin, and only the rows of that one bin are sorted
(:func:`select_boundary`). Memory is a few histograms, whatever the corpus size.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

UNITS = ("rows", "tokens")
ALLOCATIONS = ("proportional", "equal")


def row_keys(ids: Sequence[str], seed: int) -> np.ndarray:
    """Sampling keys, shape ``(n,)``, uint64: a keyed BLAKE2b hash of each id under ``seed``."""
    salt = (int(seed) % (1 << 64)).to_bytes(8, "little")  # = the signed bytes in int64 range
    return np.fromiter(
        (
            int.from_bytes(hashlib.blake2b(i.encode(), digest_size=8, key=salt).digest(), "little")
            for i in ids
        ),
        dtype=np.uint64,
        count=len(ids),
    )


def key_bins(keys: np.ndarray, bin_bits: int) -> np.ndarray:
    """The bin of each key, shape ``(n,)``, int64 in ``[0, 2**bin_bits)``: its top bits."""
    return (np.asarray(keys, dtype=np.uint64) >> np.uint64(64 - bin_bits)).astype(np.int64)


def allocate(sizes: np.ndarray, budget: int, mode: str) -> np.ndarray:
    """Split ``budget`` across strata of ``sizes`` (shape ``(s,)``); never more than a size.

    ``proportional`` keeps each stratum's share of the pool (largest remainders, ties to the
    earlier stratum); ``equal`` gives every stratum the same amount and hands what small strata
    cannot use to the others (water-filling). Returns int64, shape ``(s,)``.
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    if mode not in ALLOCATIONS:
        raise ValueError(f"allocation must be one of {ALLOCATIONS}, got {mode!r}")
    if budget < 0:
        raise ValueError(f"budget must be >= 0, got {budget}")
    total = int(sizes.sum())
    if budget >= total:
        return sizes.copy()
    if mode == "proportional":
        exact = sizes.astype(np.float64) * (budget / total)
        share = np.minimum(np.floor(exact).astype(np.int64), sizes)
        order = np.lexsort((np.arange(len(sizes)), -(exact - share)))
    else:
        share = np.zeros_like(sizes)
        left = budget
        while left > 0:
            open_ = share < sizes
            level = left // int(open_.sum())
            if level == 0:
                break
            grant = np.where(open_, np.minimum(sizes - share, level), 0)
            share += grant
            left -= int(grant.sum())
        order = np.arange(len(sizes))
    left = budget - int(share.sum())
    for i in order:
        if left == 0:
            break
        if share[i] < sizes[i]:
            share[i] += 1
            left -= 1
    return share


@dataclass(frozen=True)
class Cutoff:
    """Where one stratum's sample stops: bins ``< bin`` are taken whole; of bin ``bin``, a
    key-ordered prefix of at most ``remaining`` units. ``bin == n_bins`` means all rows."""

    bin: int
    remaining: int


def cutoff(amount_per_bin: np.ndarray, budget: int) -> Cutoff:
    """The cut-off of a stratum whose bins hold ``amount_per_bin`` (shape ``(n_bins,)``)."""
    cum = np.cumsum(np.asarray(amount_per_bin, dtype=np.int64))
    if len(cum) == 0 or cum[-1] <= budget:
        return Cutoff(bin=len(cum), remaining=0)
    b = int(np.searchsorted(cum, budget, side="right"))
    before = int(cum[b - 1]) if b > 0 else 0
    return Cutoff(bin=b, remaining=budget - before)


def select_boundary(
    candidates: Sequence[tuple[int, str, int, int]], amounts: Sequence[int], remaining: int
) -> list[bool]:
    """Which rows of the cut-off bin are taken.

    ``candidates`` are ``(key, id, source, row)`` tuples and ``amounts`` their sizes; the
    rows are taken in that tuple order while the running size stays ``<= remaining``.
    """
    order = sorted(range(len(candidates)), key=candidates.__getitem__)
    taken = [False] * len(candidates)
    used = 0
    for i in order:
        if used + amounts[i] > remaining:
            break
        used += amounts[i]
        taken[i] = True
    return taken


class UniformSampler:
    """Uniform sampling without replacement to a budget, per stratum.

    Parameters
    ----------
    budget : int
        Rows or tokens to select in all.
    unit : {"rows", "tokens"}
    seed : int
    allocation : {"proportional", "equal"}
        How the budget is split across strata (see :func:`allocate`).
    bin_bits : int
        Histogram resolution; the cut-off bin holds about ``n / 2**bin_bits`` rows.

    After :meth:`fit`: ``strata_`` (sorted labels), ``histograms_`` (shape ``(s, 2, n_bins)``),
    ``pool_rows_`` and ``pool_tokens_``
    (shape ``(s,)``), ``allocation_`` (budget per stratum in ``unit``), ``cutoffs_``.
    """

    def __init__(
        self,
        budget: int,
        unit: str = "rows",
        seed: int = 0,
        allocation: str = "proportional",
        bin_bits: int = 12,
    ) -> None:
        self.budget = budget
        self.unit = unit
        self.seed = seed
        self.allocation = allocation
        self.bin_bits = bin_bits

    @property
    def n_bins(self) -> int:
        return 1 << self.bin_bits

    def keys(self, ids: Sequence[str]) -> np.ndarray:
        return row_keys(ids, self.seed)

    def fit(self, histograms: Mapping[str, np.ndarray]) -> UniformSampler:
        """Learn the cut-offs from per-stratum histograms.

        ``histograms[stratum]`` has shape ``(2, n_bins)``: rows and tokens per key bin, as
        :meth:`histogram` makes them (summed over all the pool's batches).
        """
        if self.unit not in UNITS:
            raise ValueError(f"unit must be one of {UNITS}, got {self.unit!r}")
        if int(self.budget) <= 0:
            raise ValueError(f"budget must be a positive number of {self.unit}, got {self.budget}")
        strata = sorted(histograms)
        hist = np.zeros((len(strata), 2, self.n_bins), dtype=np.int64)
        for i, s in enumerate(strata):
            if np.shape(histograms[s]) != (2, self.n_bins):
                raise ValueError(f"histogram of stratum {s!r} has shape "
                                 f"{np.shape(histograms[s])}, expected (2, {self.n_bins})")
            hist[i] = histograms[s]
        amount = hist[:, 0 if self.unit == "rows" else 1, :]
        self.strata_ = strata
        self.histograms_ = hist
        self.pool_rows_ = hist[:, 0, :].sum(axis=1)
        self.pool_tokens_ = hist[:, 1, :].sum(axis=1)
        self.allocation_ = allocate(amount.sum(axis=1), int(self.budget), self.allocation)
        self.cutoffs_ = {
            s: cutoff(amount[i], int(self.allocation_[i])) for i, s in enumerate(strata)
        }
        return self

    def histogram(self, keys: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        """Rows and tokens per key bin of one batch, shape ``(2, n_bins)``, int64."""
        bins = key_bins(keys, self.bin_bits)
        return np.stack(
            [
                np.bincount(bins, minlength=self.n_bins),
                np.bincount(bins, weights=tokens, minlength=self.n_bins).astype(np.int64),
            ]
        )


def stratum_weights(pool: np.ndarray, selected: np.ndarray) -> np.ndarray:
    """Importance weight per stratum: its pool share over its share of the selection.

    Shapes ``(s,)``; a stratum with nothing selected gets weight 0. With proportional
    allocation the weights are 1 up to rounding; with equal allocation they undo the balancing.
    """
    pool = np.asarray(pool, dtype=np.float64)
    selected = np.asarray(selected, dtype=np.float64)
    if selected.sum() == 0:
        return np.zeros_like(pool)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = (pool / pool.sum()) / (selected / selected.sum())
    return np.where(selected > 0, w, 0.0)


def top_by_budget(keys: np.ndarray, sizes: np.ndarray, budget: float,
                  ties: np.ndarray | None = None) -> np.ndarray:
    """Indices (sorted) of the longest prefix of the rows in descending key order whose sizes
    sum to at most ``budget``; ``-inf`` keys are never taken. Equal keys are ordered by
    ``ties`` (ascending; e.g. :func:`~tamis.selectors.precision.tie_keys`), then position.

    The in-memory reference of the streaming top-by-budget stage."""
    keys = np.asarray(keys, dtype=np.float64)
    ties = np.zeros(len(keys), np.uint64) if ties is None else np.asarray(ties)
    order = np.lexsort((np.arange(len(keys)), ties, -keys))
    order = order[np.isfinite(keys[order])]
    taken = np.cumsum(np.asarray(sizes)[order]) <= budget
    return np.sort(order[: int(np.argmin(taken)) if not taken.all() else len(order)])
