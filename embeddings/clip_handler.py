"""The ``ModelHandler`` every speech-clip model shares: a batch is a list of examples, each a
list of 16 kHz sample arrays, and each prediction is what the model's ``method`` gives for
one example (vectors, speech shares or transcripts)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
from apache_beam.ml.inference.base import ModelHandler


class ClipHandler(ModelHandler[Sequence[np.ndarray], Any, Any]):
    """``load`` builds the loaded model once per worker; ``method`` names what runs on an
    example (``encode``, ``speech_ratio``, ``transcribe``)."""

    def __init__(self, load: Callable[[], Any], method: str = "encode",
                 share_across_processes: bool = False) -> None:
        super().__init__(min_batch_size=1, max_batch_size=1)
        self._load, self._method, self._share = load, method, share_across_processes

    def load_model(self) -> Any:
        return self._load()

    def run_inference(self, batch: Sequence[Sequence[np.ndarray]], model: Any,
                      inference_args: dict | None = None) -> Iterable[Any]:
        return [getattr(model, self._method)(list(clips)) for clips in batch]

    def get_metrics_namespace(self) -> str:
        return "tamis_speech"

    def get_num_bytes(self, batch: Any) -> int:
        return sum(int(c.nbytes) for clips in batch for c in clips)

    def share_model_across_processes(self) -> bool:
        return self._share
