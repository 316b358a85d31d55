"""The highest keys of a pool up to a token budget, in streaming passes.

A job gives a way to read its rows with a key column (``__key``, float64; ``-inf`` marks a row
that may not be selected) and ``n_tokens``:

ReadForHistogram ─► tokens per key bin ─► cut-off bin (where the budget runs out)
ReadForBoundary ─► rows of the cut-off bin ─► Resolve (highest keys, ties by id, source, row)
then, on the final read, :func:`in_top` says which rows are in.

Keys are binned through a fixed monotone map (no pass to find their range), so memory holds a
histogram and one bin's rows, never the pool.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import apache_beam as beam
import numpy as np
import pyarrow as pa

from tamis.pipelines.records import ROW, SRC
from tamis.selectors.sampling import Cutoff, cutoff, select_boundary

KEY = "__key"
BIN_BITS = 16
N_BINS = 1 << BIN_BITS


@dataclass(frozen=True)
class Binning:
    """Keys map to bins through ``transform`` over ``[low, high]``: ``asinh`` has relative
    resolution over a huge range (log weights), ``linear`` suits a bounded key (a cosine)."""

    transform: str = "asinh"  # or "linear"
    low: float = -24.0
    high: float = 24.0

    def bins(self, keys: np.ndarray) -> np.ndarray:
        """Bin 0 holds the highest keys; ``-inf`` keys fall past the last bin."""
        keys = np.asarray(keys, dtype=np.float64)
        z = np.arcsinh(np.clip(keys, -1e10, 1e10)) if self.transform == "asinh" else keys
        z = (self.high - np.nan_to_num(z, neginf=self.low)) / (self.high - self.low) * N_BINS
        bins = np.clip(np.floor(z), 0, N_BINS - 1).astype(np.int64)
        return np.where(np.isfinite(keys), bins, N_BINS)


ASINH = Binning()
COSINE = Binning("linear", -1.0, 1.0)


def _histogram(table: pa.Table, binning: Binning) -> np.ndarray:
    bins = binning.bins(table.column(KEY).to_numpy())
    tokens = table.column("n_tokens").to_numpy()
    return np.bincount(bins, weights=tokens, minlength=N_BINS + 1).astype(np.int64)


def _cut(hist, budget: float) -> Cutoff:
    if not isinstance(hist, np.ndarray):  # no record at all
        hist = np.zeros(N_BINS + 1, dtype=np.int64)
    return cutoff(hist[:N_BINS], int(budget))


def _boundary(table: pa.Table, cut: Cutoff, binning: Binning):
    if cut.bin >= N_BINS:  # the budget takes every eligible row: no cut-off bin
        return
    keys = table.column(KEY).to_numpy()
    ids, src = table.column("id"), table.column(SRC)
    row, tokens = table.column(ROW), table.column("n_tokens")
    for i in np.flatnonzero(binning.bins(keys) == cut.bin):
        yield ((-float(keys[i]), ids[i].as_py(), int(src[i].as_py()), int(row[i].as_py())),
               int(tokens[i].as_py()))


def _resolve(candidates: list, cut: Cutoff) -> set:
    mask = select_boundary([c for c, _ in candidates], [t for _, t in candidates], cut.remaining)
    return {(c[2], c[3]) for (c, _), m in zip(candidates, mask, strict=True) if m}


def top_by_budget(keyed: Callable[[str], beam.PCollection], budget: float,
                  binning: Binning = ASINH, label: str = ""):
    """``(cut, taken)``: singleton PCollections for :func:`in_top`. ``keyed(name)`` reads the
    pool once more as keyed tables (each call a new read, labelled ``name``)."""
    cut = (keyed(f"ForHistogram{label}")
           | f"Histogram{label}" >> beam.Map(_histogram, binning)
           | f"SumHistogram{label}" >> beam.CombineGlobally(sum)
           | f"CutOff{label}" >> beam.Map(_cut, budget))
    taken = (keyed(f"ForBoundary{label}")
             | f"Boundary{label}" >> beam.FlatMap(_boundary, beam.pvalue.AsSingleton(cut),
                                                   binning)
             | f"CollectBoundary{label}" >> beam.combiners.ToList()
             | f"Resolve{label}" >> beam.Map(_resolve, beam.pvalue.AsSingleton(cut)))
    return cut, taken


def in_top(table: pa.Table, cut: Cutoff, taken: set, binning: Binning = ASINH) -> np.ndarray:
    """Which rows of a keyed table are among the highest keys within the budget."""
    bins = binning.bins(table.column(KEY).to_numpy())
    keep = bins < cut.bin
    if cut.bin < N_BINS:
        src, row = table.column(SRC).to_numpy(), table.column(ROW).to_numpy()
        for i in np.flatnonzero(bins == cut.bin):
            keep[i] = (int(src[i]), int(row[i])) in taken
    return keep
