"""Token counts that need no model: words and punctuation marks, counted by Arrow.

A "token" here is a run of letters, digits, combining marks or underscores, or a single other
non-space character ("it's" is three tokens: ``it``, ``'``, ``s``). On English prose this is
within about 10% of a BPE tokenizer's count, costs nothing to load, and is the same on every
machine. Jobs that embed text count with the model's own tokenizer instead.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# RE2 syntax; \w and \s are ASCII-only in RE2, hence the Unicode classes.
TOKEN_PATTERN = r"[\p{L}\p{N}\p{M}_]+|[^\p{L}\p{N}\p{M}_\s\p{Z}]"

#: Bytes of UTF-8 text per token, measured on the demo corpus; used only for estimates made
#: from Parquet footers, before any text is read.
BYTES_PER_TOKEN = 4.8


# ASCII bytes by class, for the fast path: 0 space (RE2's \s and \p{Z}), 1 word, 2 a token
# of its own (punctuation, symbols and control characters).
_ASCII = np.full(256, 2, dtype=np.uint8)
_ASCII[[0x09, 0x0A, 0x0C, 0x0D, 0x20]] = 0
_ASCII[[*range(ord("0"), ord("9") + 1), *range(ord("A"), ord("Z") + 1),
        *range(ord("a"), ord("z") + 1), ord("_")]] = 1


def count_tokens(texts: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Tokens per text, shape ``(n,)``, int64; null texts count 0.

    ASCII texts are counted by classifying their bytes in NumPy (about 10x the regex); texts
    with other characters by the Unicode regex. Both count the same tokens.
    """
    chunks = texts.chunks if isinstance(texts, pa.ChunkedArray) else [texts]
    parts = [_count_chunk(c) for c in chunks]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def _regex_counts(texts: pa.Array) -> np.ndarray:
    counts = pc.count_substring_regex(texts, TOKEN_PATTERN)
    return np.asarray(pc.fill_null(counts, 0).to_numpy(zero_copy_only=False), dtype=np.int64)


def _count_chunk(texts: pa.Array) -> np.ndarray:
    if not (pa.types.is_string(texts.type) or pa.types.is_large_string(texts.type)):
        return _regex_counts(texts)
    n = len(texts)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    width = np.int64 if pa.types.is_large_string(texts.type) else np.int32
    offsets = np.frombuffer(texts.buffers()[1], dtype=width)[texts.offset:texts.offset + n + 1]
    offsets = offsets.astype(np.int64)
    data = texts.buffers()[2]
    raw = (np.frombuffer(data, dtype=np.uint8)[offsets[0]:offsets[-1]] if data is not None
           else np.zeros(0, dtype=np.uint8))
    starts = offsets - offsets[0]
    kind = _ASCII[raw]
    word = kind == 1
    # a token starts at every non-word, non-space byte and at the first byte of a word run;
    # a text's first byte never continues the previous text's word
    begins = kind == 2
    begins[1:] |= word[1:] & ~word[:-1]
    if len(raw):
        begins[0] |= word[0]
        first = starts[:-1][starts[:-1] < len(raw)]
        begins[first] |= word[first]
    marks = np.flatnonzero(begins)
    counts = np.diff(np.searchsorted(marks, starts))
    if texts.null_count:
        counts[np.asarray(texts.is_null())] = 0
    wide = np.flatnonzero(~np.asarray(pc.fill_null(pc.string_is_ascii(texts), True)))
    if len(wide):  # texts with non-ASCII characters: the Unicode regex
        counts[wide] = _regex_counts(texts.take(pa.array(wide)))
    return counts.astype(np.int64)


def estimate_tokens(text_bytes: int) -> int:
    """Estimated tokens in ``text_bytes`` bytes of uncompressed UTF-8 text."""
    return int(round(text_bytes / BYTES_PER_TOKEN))
