"""Splitting documents into non-overlapping token windows.

A window is ``(token_start, token_end, char_start, char_end)``: tokens ``[token_start,
token_end)`` of the document, which cover characters ``[char_start, char_end)``. Tokens come
from the embedding model's own tokenizer (special tokens excluded), or, for models without one,
from a word-and-punctuation pattern.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

Window = tuple[int, int, int, int]
WORDS = re.compile(r"\w+|[^\w\s]")


def windows_from_offsets(offsets: Sequence[tuple[int, int]], size: int) -> list[Window]:
    """Cut a document's token character offsets into windows of at most ``size`` tokens."""
    out = []
    for start in range(0, len(offsets), size):
        end = min(start + size, len(offsets))
        out.append((start, end, offsets[start][0], offsets[end - 1][1]))
    return out


def offline_transformers() -> None:
    """Make ``transformers`` work offline and quietly (no hub calls, no progress bars, no
    "sequence longer than max length" notes); call before loading from a local folder."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()


def load_tokenizer(model_path: str):
    """The fast tokenizer of the local model folder ``model_path``."""
    offline_transformers()
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_path, use_fast=True)


class TokenWindower:
    """Windows of at most ``window_tokens`` tokens of the tokenizer in ``model_path``
    (``None``: words and punctuation marks). Load the tokenizer with :meth:`load`."""

    def __init__(self, model_path: str | None, window_tokens: int) -> None:
        if window_tokens < 1:
            raise ValueError(f"window_tokens must be >= 1, got {window_tokens}")
        self.model_path, self.window_tokens = model_path, window_tokens
        self._tokenizer = None

    def load(self) -> TokenWindower:
        if self.model_path is not None and self._tokenizer is None:
            self._tokenizer = load_tokenizer(self.model_path)
        return self

    def split(self, texts: Sequence[str]) -> list[list[Window]]:
        """The windows of each text; a text without any token has none."""
        if self.model_path is None:
            offsets = [[m.span() for m in WORDS.finditer(t)] for t in texts]
        else:
            self.load()
            encoded = self._tokenizer(list(texts), add_special_tokens=False,
                                      return_offsets_mapping=True, return_attention_mask=False,
                                      return_token_type_ids=False, verbose=False)
            offsets = encoded["offset_mapping"]
        return [windows_from_offsets(o, self.window_tokens) for o in offsets]
