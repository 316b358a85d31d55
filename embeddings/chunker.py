"""Documents cut into WRAP chunks: sentences from ``sentencex`` (rules for about 300
languages, shipped in the wheel), counted with the rephraser's own tokenizer, and packed by
:func:`tamis.selectors.rephrase.pack_sentences`.

A chunk keeps the exact characters of its sentences (whitespace between them included), so
the chunks of a document, joined, give back its text without leading and trailing space.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tamis.embeddings.windows import load_tokenizer
from tamis.selectors.rephrase import chunk_id, pack_sentences


@dataclass(frozen=True)
class Chunk:
    id: str
    doc_id: str
    index: int
    text: str
    n_tokens: int
    reason: str | None  # None: to rephrase; "too_long" or "too_short": not sent


class SentenceChunker:
    """Chunks of about ``target_tokens`` tokens of the tokenizer in ``tokenizer_path``.

    ``max_tokens`` is what the model's context leaves for the chunk; a chunk of fewer than
    ``min_tokens`` tokens that cannot be merged into its neighbour is dropped as too_short.
    Load the tokenizer with :meth:`load`."""

    def __init__(self, tokenizer_path: str, language: str = "en", target_tokens: int = 300,
                 max_tokens: int = 1536, min_tokens: int = 32) -> None:
        if not 0 < target_tokens <= max_tokens or min_tokens < 0:
            raise ValueError(f"need 0 < target_tokens <= max_tokens and min_tokens >= 0, got "
                             f"{target_tokens}, {max_tokens}, {min_tokens}")
        self.tokenizer_path, self.language = tokenizer_path, language
        self.target, self.max_tokens, self.min_tokens = target_tokens, max_tokens, min_tokens
        self._tokenizer = None

    def load(self) -> SentenceChunker:
        if self._tokenizer is None:
            self._tokenizer = load_tokenizer(self.tokenizer_path)
        return self

    def sentences(self, text: str) -> list[str]:
        from sentencex import segment

        return [s for s in segment(self.language, text.strip()) if s.strip()]

    def count(self, texts: Sequence[str]) -> list[int]:
        self.load()
        if not texts:
            return []
        ids = self._tokenizer(list(texts), add_special_tokens=False,
                              return_attention_mask=False, verbose=False)["input_ids"]
        return [len(i) for i in ids]

    def chunks(self, doc_id: str, text: str) -> list[Chunk]:
        """The chunks of one document, in order. A document without text has none: its
        caller must account for it (as ``empty``)."""
        sentences = self.sentences(text)
        packed = pack_sentences(self.count(sentences), self.target, self.max_tokens,
                                self.min_tokens)
        bodies = ["".join(sentences[start:end]).strip() for start, end, _ in packed]
        # A chunk is counted as a whole: tokens can merge across the joins of its sentences.
        counts = self.count(bodies)
        out = []
        for index, ((_, _, too_long), body, n) in enumerate(
                zip(packed, bodies, counts, strict=True)):
            reason = ("too_long" if too_long or n > self.max_tokens else
                      "too_short" if n < self.min_tokens else None)
            out.append(Chunk(chunk_id(doc_id, index), doc_id, index, body, n, reason))
        return out
