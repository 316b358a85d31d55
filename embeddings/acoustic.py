"""Acoustic and channel embeddings of speech clips by signal processing alone: statistics of
the log-mel spectrum and of the MFCCs over a clip's frames. They tell a telephone band, a
codec, reverberation or noise from clean studio speech, whoever speaks; no model, no weights.

A clip (16 kHz mono, :mod:`tamis.storage.audio`) is cut into 25 ms frames every 10 ms, each
Hann-windowed; its power spectrum (``numpy.fft.rfft``) goes through 40 triangular mel filters
(HTK mel scale, 20 Hz to 8 kHz), then ``log10(max(power, 1e-10))``; the MFCCs are the
orthonormal DCT-II of that, first 13. The embedding is, in order: the mean and the standard
deviation over frames of the 40 log-mel bands, then of the 13 MFCCs, then the standard
deviation of the MFCCs' frame-to-frame differences (119 numbers), float32, rounded to the
2**-16 grid so that FFT kernels of other CPUs cannot change it. Compare clips after
standardising each dimension over the pool (the raw statistics share a large common part).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from functools import cache

import numpy as np

from tamis.embeddings.clip_handler import ClipHandler
from tamis.selectors.precision import quantize

RATE = 16_000
FRAME, HOP = 400, 160
N_MELS, N_MFCC = 40, 13
F_MIN, F_MAX = 20.0, 8_000.0
FLOOR = 1e-10
DIM = 2 * N_MELS + 2 * N_MFCC + N_MFCC


def _mel(f):
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def _hz(m):
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


@cache
def _filters() -> np.ndarray:
    """``(N_MELS, FRAME // 2 + 1)`` triangular mel filters on the rfft bins."""
    bins = np.arange(FRAME // 2 + 1) * RATE / FRAME
    edges = _hz(np.linspace(_mel(F_MIN), _mel(F_MAX), N_MELS + 2))
    out = np.zeros((N_MELS, len(bins)))
    for m in range(N_MELS):
        lo, mid, hi = edges[m], edges[m + 1], edges[m + 2]
        rise = (bins - lo) / (mid - lo)
        fall = (hi - bins) / (hi - mid)
        out[m] = np.maximum(0.0, np.minimum(rise, fall))
    return out


@cache
def _dct() -> np.ndarray:
    """The orthonormal DCT-II matrix, first ``N_MFCC`` rows."""
    n = np.arange(N_MELS)
    k = np.arange(N_MFCC)[:, None]
    m = np.cos(np.pi / N_MELS * (n + 0.5) * k) * np.sqrt(2.0 / N_MELS)
    m[0] /= np.sqrt(2.0)
    return m


def log_mel(samples: np.ndarray) -> np.ndarray:
    """``(frames, N_MELS)`` log10 mel energies of a 16 kHz clip (one frame at least)."""
    x = np.asarray(samples, dtype=np.float64)
    if len(x) < FRAME:
        x = np.pad(x, (0, FRAME - len(x)))
    count = 1 + (len(x) - FRAME) // HOP
    index = np.arange(FRAME)[None, :] + HOP * np.arange(count)[:, None]
    frames = x[index] * np.hanning(FRAME)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    return np.log10(np.maximum(power @ _filters().T, FLOOR))


def embed_clip(samples: np.ndarray) -> np.ndarray:
    """One clip's acoustic embedding, ``(DIM,)`` float32 on the grid."""
    mel = log_mel(samples)
    cep = mel @ _dct().T
    delta = np.diff(cep, axis=0) if len(cep) > 1 else np.zeros((1, N_MFCC))
    stats = np.concatenate([mel.mean(0), mel.std(0), cep.mean(0), cep.std(0), delta.std(0)])
    return quantize(stats).astype(np.float32)


class AcousticEmbedder:
    """Log-mel and MFCC statistics of clips (see the module's docstring)."""

    name = "acoustic-logmel-mfcc"
    dim = DIM

    def encode(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        if not clips:
            return np.zeros((0, DIM), np.float32)
        return np.stack([embed_clip(c) for c in clips])

    def identity(self) -> dict:
        settings = {"rate": RATE, "frame": FRAME, "hop": HOP, "n_mels": N_MELS,
                    "n_mfcc": N_MFCC, "f_min": F_MIN, "f_max": F_MAX, "floor": FLOOR}
        digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()
        return {"embedder": self.name, "dim": DIM, "settings": settings,
                "content_hash": f"sha256:{digest}"}


class AcousticHandler(ClipHandler):
    """Batches of clips to their acoustic embeddings."""

    def __init__(self) -> None:
        super().__init__(AcousticEmbedder)
