"""The quality classifiers behind a Beam ``ModelHandler``: the DCLM fastText model on text and
the logistic regression on embeddings, loaded from the file an earlier step saved.

``embeddings/`` holds more than embedders: every model a stage runs lives here, behind a
``ModelHandler`` (sentence encoders and LSI; these classifiers; later speech encoders, language
identification and the LLM rewriters), its heavy imports inside ``load_model``.

:class:`QualityHandler` loads either kind from a local path or a URI (fastText reads local
files only: a remote model is copied to a temporary file first) and scores batches: each
example is a list of texts (fastText) or an ``(n, d)`` matrix (logistic), each prediction the
matching ``P(high quality)`` per row. :func:`save_classifier` writes either, all or nothing.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from apache_beam.ml.inference.base import ModelHandler

from tamis.embeddings.fasttext_quality import FastTextQuality
from tamis.selectors.quality import EmbeddingLogistic
from tamis.storage.files import filesystem, write_atomically

Classifier = FastTextQuality | EmbeddingLogistic


def save_classifier(model: Classifier, path: str) -> None:
    """All or nothing. fastText writes models to local paths only: save beside the target and
    rename, or save locally and copy to a remote file system."""
    if isinstance(model, EmbeddingLogistic):
        buffer = io.BytesIO()
        model.save(buffer)
        write_atomically(path, lambda f: f.write(buffer.getvalue()))
        return
    if "://" not in path:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        tmp = f"{path}.tmp-{os.getpid()}"
        model.save(tmp)
        os.replace(tmp, path)
        return
    with tempfile.TemporaryDirectory() as folder:
        local = os.path.join(folder, "m.bin")
        model.save(local)

        def copy(sink) -> None:
            with open(local, "rb") as src:
                while chunk := src.read(1 << 24):
                    sink.write(chunk)

        write_atomically(path, copy)


def load_classifier(path: str) -> Classifier:
    """A classifier saved by :func:`save_classifier` (``.npz``: logistic; else fastText)."""
    if path.endswith(".npz"):
        fs, inner = filesystem(path)
        with fs.open_input_stream(inner) as f:
            return EmbeddingLogistic.load(io.BytesIO(f.read()))
    if "://" not in path:
        return FastTextQuality.load(path)
    fs, inner = filesystem(path)
    with tempfile.TemporaryDirectory() as tmp:
        local = os.path.join(tmp, "m.bin")
        with fs.open_input_stream(inner) as src, open(local, "wb") as dst:
            while chunk := src.read(1 << 24):
                dst.write(chunk)
        return FastTextQuality.load(local)


class QualityHandler(ModelHandler[Any, np.ndarray, Classifier]):
    """Score batches with the quality classifier saved at ``path``."""

    def __init__(self, path: str) -> None:
        super().__init__(min_batch_size=1, max_batch_size=1)
        self.path = path

    def load_model(self) -> Classifier:
        return load_classifier(self.path)

    def run_inference(self, batch: Sequence[Any], model: Classifier,
                      inference_args: dict | None = None) -> Iterable[np.ndarray]:
        return [np.asarray(model.score(example), dtype=np.float64) for example in batch]

    def get_metrics_namespace(self) -> str:
        return "tamis_quality"
