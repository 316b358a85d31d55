"""The highest keys of a pool up to a token budget, in streaming passes.

A job gives a way to read its rows with a key column (``__key``, float64; ``-inf`` marks a row
that may not be selected) and ``n_tokens``:

ReadForHistogram ─► tokens per key bin ─► cut-off bin (where the budget runs out)
ReadForBoundary ─► rows of the cut-off bin ─► Resolve (highest keys; equal keys by the
(seed, id) tie key, then id, source, row)
then, on the final read, :func:`in_top` says which rows are in.

Keys are binned through a fixed monotone map computed exactly (no pass to find their range, and
the same bin on every CPU, which matters when a histogram and a boundary pass run on different
machines), so memory holds a histogram and one bin's rows, never the pool.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import apache_beam as beam
import numpy as np
import pyarrow as pa

from tamis.selectors.precision import tie_keys
from tamis.selectors.sampling import Cutoff, cutoff, select_boundary
from tamis.storage.records import ROW, SRC

KEY = "__key"
BIN_BITS = 16
N_BINS = 1 << BIN_BITS


@dataclass(frozen=True)
class Binning:
    """Keys (on the grid of :mod:`tamis.selectors.precision`) map to bins by exact arithmetic,
    the same on every CPU: ``relative`` bins by the key's binary exponent and its top 9
    mantissa bits (0.2% wide at any magnitude: log weights), ``linear`` by equal steps over
    ``[low, high]`` (a bounded key: a cosine). Bin 0 holds the highest keys; ``-inf`` keys
    fall past the last bin."""

    transform: str = "relative"  # or "linear"
    low: float = -1.0
    high: float = 1.0

    def bins(self, keys: np.ndarray) -> np.ndarray:
        keys = np.asarray(keys, dtype=np.float64)
        finite = np.isfinite(keys)
        if self.transform == "linear":
            z = (self.high - np.clip(np.where(finite, keys, self.low), self.low, self.high))
            bins = np.floor(z * (N_BINS / (self.high - self.low)))
        else:
            mantissa, exponent = np.frexp(np.abs(np.where(finite, keys, 0.0)))
            code = (np.clip(exponent, EXP_MIN, EXP_MIN + 63) - EXP_MIN) * 512 + np.floor(
                (mantissa - 0.5) * 1024)  # 0..32767, growing with |key|
            code = np.where(mantissa == 0, 0, code)
            z = np.where(keys >= 0, 32768 + code, 32767 - code)  # grows with the key
            bins = N_BINS - 1 - z
        bins = np.clip(bins, 0, N_BINS - 1).astype(np.int64)
        return np.where(finite, bins, N_BINS)


#: Binary exponents below this share the relative binning's lowest bins (keys under 2**-17 in
#: magnitude: zero on the grid).
EXP_MIN = -16
RELATIVE = Binning()
COSINE = Binning("linear", -1.0, 1.0)


def _histogram(table: pa.Table, binning: Binning) -> np.ndarray:
    bins = binning.bins(table.column(KEY).to_numpy())
    tokens = table.column("n_tokens").to_numpy()
    return np.bincount(bins, weights=tokens, minlength=N_BINS + 1).astype(np.int64)


def _cut(hist, budget: float) -> Cutoff:
    if not isinstance(hist, np.ndarray):  # no record at all
        hist = np.zeros(N_BINS + 1, dtype=np.int64)
    return cutoff(hist[:N_BINS], int(budget))


def _boundary(table: pa.Table, cut: Cutoff, binning: Binning, seed: int):
    """``((-key, tie key, id, source, row), tokens)`` of the rows in the cut-off bin."""
    if cut.bin >= N_BINS:  # the budget takes every eligible row: no cut-off bin
        return
    keys = table.column(KEY).to_numpy()
    hit = np.flatnonzero(binning.bins(keys) == cut.bin)
    if hit.size == 0:
        return
    part = table.take(pa.array(hit))
    ids = part.column("id").to_pylist()
    ties = tie_keys(ids, seed).tolist()
    yield from (
        ((-float(k), t, i, int(s), int(r)), int(n))
        for k, t, i, s, r, n in zip(
            keys[hit], ties, ids, part.column(SRC).to_pylist(), part.column(ROW).to_pylist(),
            part.column("n_tokens").to_pylist(), strict=True))


def _resolve(candidates: list, cut: Cutoff) -> set:
    mask = select_boundary([c for c, _ in candidates], [t for _, t in candidates], cut.remaining)
    return {(c[3], c[4]) for (c, _), m in zip(candidates, mask, strict=True) if m}


def top_by_budget(keyed: Callable[[str], beam.PCollection], budget: float, seed: int,
                  binning: Binning = RELATIVE, label: str = ""):
    """``(cut, taken)``: singleton PCollections for :func:`in_top`. ``keyed(name)`` reads the
    pool once more as keyed tables (each call a new read, labelled ``name``); keys lie on the
    grid of :mod:`tamis.selectors.precision`, and equal keys are ordered by the (seed, id)
    tie key."""
    cut = (keyed(f"ForHistogram{label}")
           | f"Histogram{label}" >> beam.Map(_histogram, binning)
           | f"SumHistogram{label}" >> beam.CombineGlobally(sum)
           | f"CutOff{label}" >> beam.Map(_cut, budget))
    taken = (keyed(f"ForBoundary{label}")
             | f"Boundary{label}" >> beam.FlatMap(_boundary, beam.pvalue.AsSingleton(cut),
                                                   binning, seed)
             | f"CollectBoundary{label}" >> beam.combiners.ToList()
             | f"Resolve{label}" >> beam.Map(_resolve, beam.pvalue.AsSingleton(cut)))
    return cut, taken


def in_top(table: pa.Table, cut: Cutoff, taken: set, binning: Binning = RELATIVE) -> np.ndarray:
    """Which rows of a keyed table are among the highest keys within the budget."""
    bins = binning.bins(table.column(KEY).to_numpy())
    keep = bins < cut.bin
    if cut.bin < N_BINS:
        src, row = table.column(SRC).to_numpy(), table.column(ROW).to_numpy()
        for i in np.flatnonzero(bins == cut.bin):
            keep[i] = (int(src[i]), int(row[i])) in taken
    return keep
