"""Speaker embeddings of speech clips: the pretrained voice encoder (a 3-layer LSTM over
40-band mel frames, 256-d, L2-normalised; Wan et al.'s GE2E) whose weights ship in the PyPI
package ``resemblyzer``. Loaded once per worker, on the CPU or a GPU.

A clip (16 kHz mono, :mod:`tamis.storage.audio`) is embedded whole (``embed_utterance``: the
mean of the embeddings of 1.6 s windows at 50% overlap, renormalised); a clip shorter than one
window is padded with silence to it. The vectors are rounded to the 2**-16 grid: an LSTM's last
bits differ between CPU kernels, the grid keeps selections the same.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from functools import cache

import numpy as np

from tamis.embeddings.clip_handler import ClipHandler
from tamis.selectors.precision import quantize
from tamis.storage.errors import ModelError

DIM = 256
RATE = 16_000
MIN_SAMPLES = int(1.6 * RATE)


def _package_dir() -> str:
    import importlib.util

    spec = importlib.util.find_spec("resemblyzer")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("speaker embeddings need the package 'resemblyzer': pip install "
                         "'tamis[speech]' and pip install --no-deps resemblyzer")
    return list(spec.submodule_search_locations)[0]


@cache
def content_hash() -> str:
    path = os.path.join(_package_dir(), "pretrained.pt")
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


class SpeakerEmbedder:
    """resemblyzer's voice encoder on batches of 16 kHz clips."""

    name = "resemblyzer-ge2e"
    dim = DIM

    def __init__(self, device: str = "cpu") -> None:
        self.device = device
        self._encoder = None

    def load(self) -> SpeakerEmbedder:
        if self._encoder is None:
            _package_dir()
            try:
                from resemblyzer import VoiceEncoder
            except ImportError as exc:
                raise ModelError(f"resemblyzer cannot be imported ({exc}): pip install "
                                 f"'tamis[speech]' (librosa, webrtcvad-wheels)") from None
            self._encoder = VoiceEncoder(device=self.device, verbose=False)
        return self

    def encode(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        if not clips:
            return np.zeros((0, DIM), np.float32)
        encoder = self.load()._encoder
        out = []
        for clip in clips:
            x = np.asarray(clip, dtype=np.float32)
            if len(x) < MIN_SAMPLES:
                x = np.pad(x, (0, MIN_SAMPLES - len(x)))
            out.append(encoder.embed_utterance(x))
        return quantize(np.stack(out)).astype(np.float32)

    def identity(self) -> dict:
        return {"embedder": self.name, "dim": DIM, "content_hash": content_hash(),
                "normalized": True}


class SpeakerHandler(ClipHandler):
    """Batches of clips to their speaker vectors, the encoder loaded once per worker."""

    def __init__(self, device: str = "cpu") -> None:
        super().__init__(lambda: SpeakerEmbedder(device).load(),
                         share_across_processes=device.startswith("cuda"))
