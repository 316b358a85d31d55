"""Voice activity: the share of a clip that is speech, by the Silero VAD model whose weights
ship in the PyPI package ``silero-vad`` (a TorchScript model, 16 kHz, 32 ms frames). Speech
selection uses it as a filter (clips of music, noise or silence) and as a feature.

``speech_ratio`` is the seconds inside the speech segments Silero finds
(``get_speech_timestamps`` with its defaults: threshold 0.5, segments of 250 ms at least,
silences of 100 ms at least between them) over the clip's seconds, on the 2**-16 grid. A frame
whose speech probability lies within float noise of the threshold could fall either way on
another CPU; the segment rules (minimum lengths) make that rarely change a ratio.
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

RATE = 16_000


@cache
def content_hash() -> str:
    import importlib.util

    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("voice activity needs the package 'silero-vad': pip install "
                         "'tamis[speech]'")
    folder = os.path.join(list(spec.submodule_search_locations)[0], "data")
    digest = hashlib.sha256()
    for name in sorted(os.listdir(folder)):
        if name.endswith(".jit"):
            with open(os.path.join(folder, name), "rb") as f:
                digest.update(f.read())
    return "sha256:" + digest.hexdigest()


class VoiceActivity:
    """Silero VAD on batches of 16 kHz clips."""

    name = "silero-vad"

    def __init__(self, threshold: float = 0.5) -> None:
        if not 0 < threshold < 1:
            raise ValueError(f"threshold must be in (0, 1), got {threshold}")
        self.threshold = threshold
        self._model = None

    def load(self) -> VoiceActivity:
        if self._model is None:
            content_hash()
            from silero_vad import load_silero_vad

            self._model = load_silero_vad()
        return self

    def segments(self, clip: np.ndarray) -> list[tuple[int, int]]:
        """``(start, end)`` sample spans of speech in a clip."""
        import torch
        from silero_vad import get_speech_timestamps

        x = torch.from_numpy(np.ascontiguousarray(clip, dtype=np.float32))
        found = get_speech_timestamps(x, self.load()._model, threshold=self.threshold,
                                      sampling_rate=RATE)
        return [(int(s["start"]), int(s["end"])) for s in found]

    def speech_ratio(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        out = np.zeros(len(clips))
        for i, clip in enumerate(clips):
            if len(clip):
                out[i] = sum(e - s for s, e in self.segments(clip)) / len(clip)
        return quantize(out)

    def identity(self) -> dict:
        return {"embedder": self.name, "threshold": self.threshold,
                "content_hash": content_hash()}


class VoiceActivityHandler(ClipHandler):
    """Batches of clips to their speech shares."""

    def __init__(self, threshold: float = 0.5) -> None:
        super().__init__(lambda: VoiceActivity(threshold).load(), "speech_ratio")
