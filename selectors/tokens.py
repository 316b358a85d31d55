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


# Byte classes: 0 space (RE2's \s and \p{Z}), 1 word (\p{L}, \p{N}, \p{M}, _), 2 a token of
# its own (anything else: punctuation, symbols, control characters).
_ASCII = np.full(128, 2, dtype=np.uint8)
_ASCII[[0x09, 0x0A, 0x0C, 0x0D, 0x20]] = 0
_ASCII[[*range(ord("0"), ord("9") + 1), *range(ord("A"), ord("Z") + 1),
        *range(ord("a"), ord("z") + 1), ord("_")]] = 1
_UNKNOWN = 255
_CODE_POINTS = np.full(0x110000, _UNKNOWN, dtype=np.uint8)  # filled as code points are met
_CODE_POINTS[:0x80] = _ASCII
_CATEGORY = {"L": 1, "N": 1, "M": 1, "Z": 0}


def _code_point_classes(cp: np.ndarray) -> np.ndarray:
    """The class of each code point, from its Unicode category (looked up once per process
    for each distinct code point met)."""
    classes = _CODE_POINTS[cp]
    unknown = classes == _UNKNOWN
    if unknown.any():
        import unicodedata

        for c in np.unique(cp[unknown]).tolist():
            category = unicodedata.category(chr(c))
            # unassigned in this Python's Unicode: ask RE2, whose tables may be newer
            _CODE_POINTS[c] = (_re2_class(chr(c)) if category == "Cn"
                               else _CATEGORY.get(category[0], 2))
        classes = _CODE_POINTS[cp]
    return classes


def _re2_class(char: str) -> int:
    one = pa.array([char])
    if pc.match_substring_regex(one, r"^[\p{L}\p{N}\p{M}_]$")[0].as_py():
        return 1
    return 0 if pc.match_substring_regex(one, r"^[\s\p{Z}]$")[0].as_py() else 2


def count_tokens(texts: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Tokens per text, shape ``(n,)``, int64; null texts count 0.

    Bytes are classified in NumPy (ASCII by a table, other characters by their decoded code
    point's Unicode category), several times faster than Arrow's regex over the same texts,
    which counts the same tokens (``TOKEN_PATTERN``; code points this Python's Unicode does not
    know are classed by the regex engine itself).
    """
    chunks = texts.chunks if isinstance(texts, pa.ChunkedArray) else [texts]
    parts = [_count_chunk(c) for c in chunks]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def _regex_counts(texts: pa.Array) -> np.ndarray:
    counts = pc.count_substring_regex(texts, TOKEN_PATTERN)
    return np.asarray(pc.fill_null(counts, 0).to_numpy(zero_copy_only=False), dtype=np.int64)


def _byte_classes(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """``(class of the character each byte belongs to, whether the byte starts a character)``
    of valid UTF-8 bytes; the second is None when every byte is ASCII."""
    if len(raw) == 0 or raw.max() < 0x80:
        return _ASCII[raw], None
    lead = np.flatnonzero(raw >= 0xC0)  # first bytes of the non-ASCII characters
    kind = _ASCII[raw & 0x7F]  # ASCII bytes; the others are set below
    b = [raw[np.minimum(lead + i, len(raw) - 1)].astype(np.int32) for i in range(4)]
    size = np.where(b[0] >= 0xF0, 4, np.where(b[0] >= 0xE0, 3, 2))
    cp = np.where(size == 4, ((b[0] & 0x07) << 18) | ((b[1] & 0x3F) << 12)
                  | ((b[2] & 0x3F) << 6) | (b[3] & 0x3F),
                  np.where(size == 3, ((b[0] & 0x0F) << 12) | ((b[1] & 0x3F) << 6)
                           | (b[2] & 0x3F), ((b[0] & 0x1F) << 6) | (b[1] & 0x3F)))
    classes = _code_point_classes(np.clip(cp, 0, 0x10FFFF))
    starts = np.ones(len(raw), dtype=bool)
    kind[lead] = classes
    for i in range(1, 4):  # continuation bytes take their character's class
        more = size > i
        kind[lead[more] + i] = classes[more]
        starts[lead[more] + i] = False
    return kind, starts


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
    counts = np.zeros(n, dtype=np.int64)
    if len(raw) == 0:
        return counts
    kind, char_start = _byte_classes(raw)
    word = kind == 1
    # a token starts at the first byte of every character of class 2, and at the first byte
    # of every word run; a text's first byte never continues the previous text's word
    begins = kind == 2
    if char_start is not None:
        begins &= char_start
    begins[1:] |= word[1:] & ~word[:-1]
    nonempty = np.flatnonzero(np.diff(starts) > 0)
    first = starts[nonempty]
    begins[first] |= word[first]
    counts[nonempty] = np.add.reduceat(begins, first, dtype=np.int64)
    if texts.null_count:
        counts[np.asarray(texts.is_null())] = 0
    return counts


def estimate_tokens(text_bytes: int) -> int:
    """Estimated tokens in ``text_bytes`` bytes of uncompressed UTF-8 text."""
    return int(round(text_bytes / BYTES_PER_TOKEN))
