"""Numbers that decide what is kept, made the same on every CPU.

BLAS kernels (AVX2 and AVX-512 machines pick different ones), NumPy's SIMD paths and FAISS's
builds round differently: the same float computation gives different last bits on two machines.
So nothing that decides a keep or a drop compares raw floats. Instead:

* it is computed in float64 (the product of two float32 numbers is exact there, and float64
  rounding noise is about 1e-16);
* it is compared after rounding to the grid of multiples of :data:`STEP` (2**-16, about 1.5e-5).
  Two machines then disagree only when a value lies within its float noise of a cell's edge:
  about one value in 10**11 for float64 noise, and one in a few hundred for the 1e-7 noise of
  float32 inputs made on another machine (vectors embedded elsewhere);
* values that fall in the same cell are ordered by :func:`tie_keys`, a keyed hash of
  (seed, id), never by the order in which rows arrive.

Multiples of a power of two are exact in binary floating point: sums and differences of
quantised values stay on the grid (below 2**36 in magnitude), so they compare exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tamis.selectors.sampling import row_keys

#: The grid every deciding score is rounded to: cosines, probabilities, log weights, gains.
STEP = 2.0**-16
#: Salts the (seed, id) hash that breaks ties, apart from the sampling and order hashes.
TIE_SALT = 0x2545F4914F6CDD1D


def quantize(x, step: float = STEP) -> np.ndarray:
    """``x`` rounded to the nearest multiple of ``step`` (half to even), float64.

    ``nan`` and infinities pass through unchanged."""
    x = np.asarray(x, dtype=np.float64)
    return np.round(x / step) * step


def cells(x, step: float = STEP) -> np.ndarray:
    """The grid cell of each finite value, int64 (``round(x / step)``)."""
    return np.rint(np.asarray(x, dtype=np.float64) / step).astype(np.int64)


def tie_keys(ids: Sequence[str], seed: int) -> np.ndarray:
    """uint64 keys that order rows whose quantised scores are equal: a pure function of
    (seed, id), uncorrelated with the sampling keys of :func:`row_keys`."""
    return row_keys(ids, int(seed) ^ TIE_SALT)


def dot64(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise inner products of ``a`` (n, d) and ``b`` (n, d) in float64, shape (n,).

    Elementwise products then NumPy's pairwise sum: no BLAS kernel, so the same bits on every
    machine for the same inputs."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return np.sum(a * b, axis=-1)


def normalize64(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm in float64 (zero rows stay zero)."""
    x = np.asarray(x, dtype=np.float64)
    norms = np.sqrt(np.sum(x * x, axis=-1, keepdims=True))
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)
