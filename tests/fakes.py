"""Fake models behind the real handlers, for stage tests that need a model's shape but not its
weights. Every fake is deterministic and needs no download, no GPU and no BLAS."""

from __future__ import annotations

import hashlib
import re

import numpy as np

from tamis.embeddings.sentence import SentenceTransformerHandler

WORDS = re.compile(r"\w+")


class HashingSentenceModel:
    """Stands in for a ``SentenceTransformer``: a text's vector is the normalised sum of its
    words' hashed ±1 vectors (similar texts get similar vectors). Counts its calls."""

    def __init__(self, dim: int = 16) -> None:
        self.dim = dim
        self.calls: list[int] = []

    def get_embedding_dimension(self) -> int:
        return self.dim

    def _word(self, word: str) -> np.ndarray:
        digest = hashlib.blake2b(word.lower().encode(), digest_size=self.dim).digest()
        return np.where(np.frombuffer(digest, np.uint8) & 1, 1.0, -1.0)

    def encode(self, texts, batch_size: int = 32, normalize_embeddings: bool = True,
               convert_to_numpy: bool = True, show_progress_bar: bool = False) -> np.ndarray:
        self.calls.append(len(texts))
        out = np.zeros((len(texts), self.dim))
        for i, text in enumerate(texts):
            for word in WORDS.findall(text):
                out[i] += self._word(word)
        if normalize_embeddings:
            norms = np.linalg.norm(out, axis=1, keepdims=True)
            out = np.divide(out, norms, out=np.zeros_like(out), where=norms > 0)
        return out.astype(np.float32)


class FakeSentenceHandler(SentenceTransformerHandler):
    """The real handler (batching, progress, dimensions) with :class:`HashingSentenceModel`
    behind it instead of a model folder."""

    def __init__(self, dim: int = 16, **kwargs) -> None:
        super().__init__("(fake)", **kwargs)
        self.dim = dim

    def load_model(self) -> HashingSentenceModel:
        return HashingSentenceModel(self.dim)


class CountingProgress:
    """A progress writer that remembers what it was told."""

    def __init__(self) -> None:
        self.done = 0
        self.flushes = 0

    def add(self, n: int) -> None:
        self.done += n

    def flush(self) -> None:
        self.flushes += 1
