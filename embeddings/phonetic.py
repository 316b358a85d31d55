"""Phonetic embeddings of speech clips: a self-supervised speech model of the WavLM, HuBERT or
wav2vec 2.0 family, from a local ``transformers`` folder (no such weights ship in any package;
a user points at the ones they have). Loaded once per worker, on the CPU or a GPU.

A clip (16 kHz mono, :mod:`tamis.storage.audio`) is normalised as the folder's feature
extractor asks, run through the model, and the hidden states of one layer are averaged over
frames (``layer``: by default the middle one, where these models carry the most phonetic
information). The vector is L2-normalised and rounded to the 2**-16 grid, so that the last
bits of another CPU's kernels cannot change a selection.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence

import numpy as np

from tamis.embeddings.clip_handler import ClipHandler
from tamis.selectors.precision import normalize64, quantize
from tamis.storage.errors import ModelError

RATE = 16_000
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


class PhoneticEmbedder:
    """Mean-pooled hidden states of one layer of a local speech model folder."""

    def __init__(self, folder: str, layer: int | None = None, device: str = "cpu",
                 max_seconds: float = 30.0) -> None:
        self.folder, self.layer, self.device, self.max_seconds = folder, layer, device, max_seconds
        self._model = self._extractor = None

    def load(self) -> PhoneticEmbedder:
        if self._model is not None:
            return self
        if not os.path.isfile(os.path.join(self.folder, "config.json")):
            raise ModelError(f"the phonetic model folder {self.folder} holds no transformers "
                             f"model (no config.json)")
        try:
            import torch
            from transformers import AutoFeatureExtractor, AutoModel
        except ImportError:
            raise ModelError("phonetic embeddings need torch and transformers: pip install "
                             "'tamis[rephrase]'") from None
        try:
            self._extractor = AutoFeatureExtractor.from_pretrained(self.folder)
            self._model = AutoModel.from_pretrained(self.folder).to(self.device).eval()
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot load the speech model in {self.folder}: {exc}") from None
        layers = self._model.config.num_hidden_layers
        if self.layer is None:
            self.layer = max(1, layers // 2)
        if not 0 <= self.layer <= layers:
            raise ModelError(f"layer {self.layer} does not exist: the model has {layers}")
        self._torch = torch
        return self

    @property
    def dim(self) -> int:
        return int(self.load()._model.config.hidden_size)

    def encode(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        self.load()
        if not clips:
            return np.zeros((0, self.dim), np.float32)
        torch, out = self._torch, []
        longest = int(self.max_seconds * RATE)
        for clip in clips:
            x = np.asarray(clip, dtype=np.float32)[:longest]
            if len(x) < 400:  # one frame of the convolutional front end, at least
                x = np.pad(x, (0, 400 - len(x)))
            inputs = self._extractor(x, sampling_rate=RATE, return_tensors="pt")
            with torch.no_grad():
                hidden = self._model(inputs["input_values"].to(self.device),
                                     output_hidden_states=True).hidden_states[self.layer]
            out.append(hidden[0].mean(dim=0).double().cpu().numpy())
        return quantize(normalize64(np.stack(out))).astype(np.float32)

    def identity(self) -> dict:
        digest = hashlib.sha256()
        for name in ("config.json", *WEIGHT_FILES):
            path = os.path.join(self.folder, name)
            if os.path.isfile(path):
                with open(path, "rb") as f:
                    while chunk := f.read(1 << 22):
                        digest.update(chunk)
        self.load()
        with open(os.path.join(self.folder, "config.json")) as f:
            config = json.load(f)
        architecture = (config.get("architectures") or [config.get("model_type")])[0]
        return {"embedder": "speech-ssl", "model": self.folder, "architecture": architecture,
                "layer": self.layer, "dim": self.dim,
                "content_hash": f"sha256:{digest.hexdigest()}", "normalized": True}


class PhoneticHandler(ClipHandler):
    """Batches of clips to their phonetic vectors, the model loaded once per worker."""

    def __init__(self, folder: str, layer: int | None = None, device: str = "cpu") -> None:
        super().__init__(lambda: PhoneticEmbedder(folder, layer, device).load(),
                         share_across_processes=device.startswith("cuda"))
