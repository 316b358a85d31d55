"""Audio clips as speech selection reads them: decoded with soundfile, mixed down to mono and
resampled to 16 kHz so that every machine gets the same samples, or rejected with a reason.

Resampling is polyphase FIR filtering (``scipy.signal.upfirdn``) by ``up / down`` with
``gcd(rate, 16000)``; the filter is a Kaiser-windowed sinc whose taps are rounded to the
2**-32 grid, so that the last bits of the window's and sinc's library code (which differ
between CPU instruction sets) cannot reach the samples. The filtered samples are rounded to
the 16-bit grid (multiples of 2**-15): the output is the same on every CPU.

Reasons a clip is rejected (:data:`REASONS`): ``missing_file``, ``unreadable`` (soundfile
cannot decode a file of a container it knows), ``unsupported_format`` (a container or codec
libsndfile does not know), ``empty`` (no sample), ``silent`` (peak below
:data:`SILENT_PEAK`), ``clipped`` (more than :data:`CLIPPED_SHARE` of the samples at full
scale), ``too_long`` (above ``max_seconds``).
"""

from __future__ import annotations

import io
import math
import os
from dataclasses import dataclass
from functools import cache

import numpy as np

from tamis.storage.errors import ModelError

TARGET_RATE = 16_000
SILENT_PEAK = 10 ** (-50 / 20)  # -50 dBFS
FULL_SCALE = 0.999
CLIPPED_SHARE = 0.01
REASONS = ("missing_file", "unreadable", "unsupported_format", "empty", "silent", "clipped",
           "too_long")
#: Half-width of the resampling filter, in input samples per phase; Kaiser beta.
TAPS_PER_SIDE, KAISER_BETA = 16, 8.6
TAP_GRID = 2.0 ** -32
SAMPLE_GRID = 2.0 ** -15
#: What libsndfile reads, by file name suffix (soundfile's list, with common spellings).
READABLE = frozenset((".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff",
                      ".aif", ".aifc", ".au", ".snd", ".caf", ".w64", ".rf64", ".sph", ".nist",
                      ".voc", ".htk", ".raw"))


@dataclass(frozen=True)
class Clip:
    """A decoded clip: 16 kHz mono float32 samples and their duration, or the reason it was
    rejected (``samples`` empty then) and a detail for the rejects file."""

    samples: np.ndarray
    seconds: float
    source_rate: int | None
    reason: str | None = None
    detail: str | None = None

    @property
    def ok(self) -> bool:
        return self.reason is None


def _soundfile():
    try:
        import soundfile
    except ImportError:
        raise ModelError("audio decoding needs the package 'soundfile': "
                         "pip install 'tamis[speech]'") from None
    return soundfile


def _rejected(reason: str, detail: str, rate: int | None = None, seconds: float = 0.0) -> Clip:
    return Clip(np.zeros(0, np.float32), seconds, rate, reason, detail)


def decode(source: str | bytes, max_seconds: float = 600.0) -> Clip:
    """Read a clip from a path or from its bytes; 16 kHz mono, or rejected with a reason."""
    sf = _soundfile()
    if isinstance(source, str):
        if not os.path.isfile(source):
            return _rejected("missing_file", f"{source} does not exist")
        suffix = os.path.splitext(source)[1].lower()
        if suffix and suffix not in READABLE:
            return _rejected("unsupported_format", f"{suffix} files are not audio libsndfile "
                                                   f"reads")
        opened = source
    else:
        opened = io.BytesIO(source)
    try:
        info = sf.info(opened)
        if isinstance(opened, io.BytesIO):
            opened.seek(0)
        if info.frames and info.samplerate and info.frames / info.samplerate > max_seconds:
            return _rejected("too_long", f"{info.frames / info.samplerate:.1f} s > "
                                         f"{max_seconds:g} s", info.samplerate,
                             info.frames / info.samplerate)
        data, rate = sf.read(opened, dtype="float64", always_2d=True)
    except sf.LibsndfileError as exc:
        text = str(exc)
        reason = "unsupported_format" if "format" in text.lower() else "unreadable"
        return _rejected(reason, text)
    except (RuntimeError, ValueError, EOFError) as exc:
        return _rejected("unreadable", str(exc))
    if data.size == 0:
        return _rejected("empty", "no sample", rate)
    mono = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    seconds = len(mono) / rate
    if seconds > max_seconds:
        return _rejected("too_long", f"{seconds:.1f} s > {max_seconds:g} s", rate, seconds)
    peak = float(np.max(np.abs(mono)))
    if peak < SILENT_PEAK:
        return _rejected("silent", f"peak {20 * math.log10(max(peak, 1e-12)):.1f} dBFS", rate,
                         seconds)
    clipped = float(np.mean(np.abs(mono) >= FULL_SCALE))
    if clipped > CLIPPED_SHARE:
        return _rejected("clipped", f"{clipped:.1%} of the samples at full scale", rate,
                         seconds)
    return Clip(resample(mono, rate), seconds, rate)


@cache
def _taps(up: int, down: int) -> np.ndarray:
    """The low-pass filter of an ``up / down`` resampler, on :data:`TAP_GRID`."""
    width = max(up, down)
    half = -(-TAPS_PER_SIDE * width // down) * down  # a whole number of output samples
    n = 2 * half + 1
    t = (np.arange(n) - half) / width
    taps = np.sinc(t) * np.kaiser(n, KAISER_BETA) * up / width
    return np.round(taps / TAP_GRID) * TAP_GRID


def resample(samples: np.ndarray, rate: int, target: int = TARGET_RATE) -> np.ndarray:
    """``samples`` (float64, mono) at ``rate`` → float32 at ``target``, the same on every CPU:
    polyphase filtering with grid taps, samples rounded to the 16-bit grid."""
    from scipy.signal import upfirdn

    x = np.asarray(samples, dtype=np.float64)
    if rate == target:
        y = x
    else:
        g = math.gcd(int(rate), int(target))
        up, down = target // g, int(rate) // g
        h = _taps(up, down)
        y = upfirdn(h, x, up, down)
        delay = (len(h) - 1) // 2 // down  # the filter's delay, in output samples
        y = y[delay:delay + int(math.ceil(len(x) * up / down))]
    return (np.clip(np.round(y / SAMPLE_GRID), -32768, 32767) * SAMPLE_GRID).astype(np.float32)
