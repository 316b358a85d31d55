"""Text-quality signals: the statistics of the Gopher, C4, FineWeb and FineWeb-2 heuristic
filters, computed for a whole batch of texts in one pass.

Every signal is a float64 array with one value per text (:data:`SIGNALS` names them in
order); a text without words gets 0 for every ratio. Definitions (``words`` are white-space
tokens; in Chinese and Japanese, which do not separate words by spaces, every ideograph and
kana is a word of its own; ``word chars`` are the characters of the words, spaces excluded):

=====================  ==========================================================  ============
signal                 formula                                                     source
=====================  ==========================================================  ============
n_words                number of words                                             Gopher
n_chars                number of characters of the text                            C4
mean_word_length       word chars / words                                          Gopher
symbol_word_ratio      max(``#`` count, ``...`` + ``…`` count) / words             Gopher
alpha_word_share       words holding an alphabetic character / words               Gopher
stop_words             words in the core stop list (``en``: Gopher's eight)        Gopher
stop_word_ratio        words in the language's stop list / words                   FineWeb-2
punct_line_share       lines ending in terminal punctuation / lines                C4, FineWeb
bullet_line_share      lines starting with a bullet / lines                        Gopher
ellipsis_line_share    lines ending in ``...`` or ``…`` / lines                    Gopher
short_line_share       lines of at most 30 characters / lines                      FineWeb
dup_line_chars         chars of lines repeating an earlier line / chars of lines   Gopher
dup_paragraph_chars    the same for paragraphs (split at blank lines)              Gopher
top_{2,3,4}gram_chars  count × word chars of the most frequent n-gram / word chars Gopher
dup_{5..10}gram_chars  word chars covered by repeats of an n-gram / word chars     Gopher
upper_ratio            upper-case letters / letters                                C4-style
digit_ratio            digits / characters                                         FineWeb-2
markup_ratio           characters among ``< > { } [ ] | \\ = &`` / characters      markup debris
url_density            ``http://``, ``https://`` and ``www.`` / words              page links
newline_ratio          newlines / words                                            FineWeb list
=====================  ==========================================================  ============

Lines are stripped and empty ones ignored. N-grams are over words lower-cased and stripped
of surrounding punctuation (a word of punctuation only stays as it is). A top n-gram counts
only when it occurs at least twice (0 otherwise); ties between equally frequent n-grams go to
the one with more characters. A repeat is an occurrence of an n-gram after its first in the
text; characters covered by several repeats count once.

Words, stop words and n-grams are found with one vocabulary per batch, and the n-gram counts
with one sort per n over the whole batch (n-grams longer than 2 are looked for only where
their prefix repeats), so the cost grows with the batch's words, not with its texts times n.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from functools import cache
from itertools import chain, compress, repeat

import numpy as np

from tamis.selectors.ngrams import _P, DUP_NGRAMS, TOP_NGRAMS, _mix, _ratio, ngram_fractions

SIGNALS: tuple[str, ...] = (
    "n_words", "n_chars", "mean_word_length", "symbol_word_ratio", "alpha_word_share",
    "stop_words", "stop_word_ratio", "punct_line_share", "bullet_line_share",
    "ellipsis_line_share", "short_line_share", "dup_line_chars", "dup_paragraph_chars",
    *(f"top_{n}gram_chars" for n in TOP_NGRAMS), *(f"dup_{n}gram_chars" for n in DUP_NGRAMS),
    "upper_ratio", "digit_ratio", "markup_ratio", "url_density", "newline_ratio",
)

#: Gopher's stop words: a document must hold at least two of them.
GOPHER_STOP_WORDS = frozenset(("the", "be", "to", "of", "and", "that", "have", "with"))
TERMINAL = tuple(".!?\"'”’»)…。！？」』")
BULLETS = tuple("•‣◦⁃▪●○■□◆◇–—-*·➢➤→")
MARKUP = "<>{}[]|\\=&"
SHORT_LINE = 30
_EDGE = string.punctuation + "“”‘’«»…–—·•"
_CJK_RANGES = "\u2e80-\u2fff\u3040-\u30ff\u3100-\u312f\u31a0-\u31ff\u3400-\u4dbf" \
              "\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f"
_CJK_TOKENS = re.compile(f"[{_CJK_RANGES}]|[^\\s{_CJK_RANGES}]+")
_PARAGRAPH = re.compile(r"\n[ \t\r\f\v]*\n")

# character classes, a bit each, for the Basic Multilingual Plane
_ALPHA, _UPPER, _DIGIT, _CJK, _MARK, _SPACE, _EDGE_BIT = 1, 2, 4, 8, 16, 32, 64
#: Texts are hashed in chunks of at most this many characters (a longer text alone).
CHUNK = 1 << 21
_P_INVERSE = pow(_P, -1, 1 << 64)


@cache
def _classes() -> tuple[np.ndarray, np.ndarray]:
    """The class bits of every BMP character, and its lower case (itself when lower-casing
    gives more than one character)."""
    table = np.zeros(0x10000, dtype=np.uint8)
    lower = np.arange(0x10000, dtype=np.uint32)
    cjk = re.compile(f"[{_CJK_RANGES}]")
    edge = set(_EDGE)
    for code in range(0x10000):
        if 0xD800 <= code < 0xE000:
            continue
        c = chr(code)
        bits = 0
        if c.isalpha():
            bits |= _ALPHA
            if c.isupper():
                bits |= _UPPER
        if c.isdigit():
            bits |= _DIGIT
        if cjk.match(c):
            bits |= _CJK
        if c in MARKUP:
            bits |= _MARK
        if c.isspace():
            bits |= _SPACE
        if c in edge:
            bits |= _EDGE_BIT
        table[code] = bits
        low = c.lower()
        if len(low) == 1:
            lower[code] = ord(low)
    return table, lower


@cache
def _powers(n: int) -> tuple[np.ndarray, np.ndarray]:
    """``P**i`` and ``P**-i`` modulo 2**64 for i < n."""
    steps = np.full(n, _P, dtype=np.uint64)
    steps[0] = 1
    inverse = np.full(n, _P_INVERSE, dtype=np.uint64)
    inverse[0] = 1
    return np.cumprod(steps, dtype=np.uint64), np.cumprod(inverse, dtype=np.uint64)


def _word_hash(codes: Sequence[int]) -> int:
    """The hash :func:`_words` gives a normalised word of these (lower-case) characters."""
    h = 0
    for j, c in enumerate(codes):
        h = (h + c * pow(_P, j, 1 << 64)) % (1 << 64)
    h ^= (len(codes) * 0x9E3779B97F4A7C15) % (1 << 64)
    return int(_mix(np.array([h], dtype=np.uint64))[0])


@cache
def _stop_hashes(language: str) -> tuple[np.ndarray, np.ndarray]:
    def hashes(words) -> np.ndarray:
        return np.sort(np.array([_word_hash([ord(c) for c in w]) for w in words],
                                dtype=np.uint64))
    return hashes(stop_list(language)), hashes(core_stop_list(language))


@cache
def stop_list(language: str) -> frozenset[str]:
    """The language's stop words (the PyPI package ``stop-words``), lower-case; empty when it
    has none for the language."""
    try:
        from stop_words import get_stop_words
        return frozenset(w.lower() for w in get_stop_words(language.split("-")[0]))
    except Exception:  # the package's own error for a language it lacks
        return frozenset()


def core_stop_list(language: str) -> frozenset[str]:
    """What the ``stop_words`` signal counts: Gopher's eight for English, else the language's
    whole list."""
    return GOPHER_STOP_WORDS if language.split("-")[0] == "en" else stop_list(language)


def tokens(text: str) -> list[str]:
    """The words of a text: white-space tokens, each ideograph or kana a word of its own."""
    if text.isascii():
        return text.split()
    return _CJK_TOKENS.findall(text)


def signals(texts: Sequence[str], language: str = "en") -> dict[str, np.ndarray]:
    """Every signal of :data:`SIGNALS` for ``texts``, in one pass over the batch (in chunks
    of at most :data:`CHUNK` characters)."""
    n = len(texts)
    out = {name: np.zeros(n) for name in SIGNALS}
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=n)
    begin = 0
    while begin < n:
        end = begin + 1
        total = lengths[begin]
        while end < n and total + lengths[end] <= CHUNK:
            total += lengths[end]
            end += 1
        part = texts[begin:end]
        values: dict = {name: np.zeros(len(part)) for name in SIGNALS}
        codes, bits = _characters(part, values)
        _lines(part, values)
        _words(codes, bits, lengths[begin:end], language, values)
        for name in SIGNALS:
            out[name][begin:end] = values[name]
        begin = end
    return out


def matrix(values: dict[str, np.ndarray], names: Sequence[str] = SIGNALS) -> np.ndarray:
    """The signals as an ``(n, len(names))`` float64 matrix."""
    return np.stack([values[name] for name in names], axis=1)


def _characters(texts: Sequence[str], out: dict) -> tuple[np.ndarray, np.ndarray]:
    """Character counts; returns the texts' code points, joined, and their class bits."""
    table, _ = _classes()
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
    codes = np.frombuffer("".join(texts).encode("utf-32-le"), dtype=np.uint32)
    bits = np.zeros(len(codes), dtype=np.uint8)
    bmp = codes < 0x10000
    bits[bmp] = table[codes[bmp]]
    for i in np.flatnonzero(~bmp):  # beyond the BMP: rare, classified one by one
        c = chr(int(codes[i]))
        bits[i] = (_ALPHA if c.isalpha() else 0) | (_UPPER if c.isupper() else 0) | (
            _DIGIT if c.isdigit() else 0) | (_CJK if 0x20000 <= codes[i] < 0x3134F else 0)
    starts = np.cumsum(lengths) - lengths
    filled = lengths > 0

    def per_text(flag: np.ndarray) -> np.ndarray:
        total = np.zeros(len(lengths), dtype=np.int64)
        if filled.any():  # the starts of non-empty texts rise strictly: one segment each
            total[filled] = np.add.reduceat(flag, starts[filled], dtype=np.int64)
        return total

    letters = per_text(bits & _ALPHA)
    out["n_chars"] = lengths.astype(np.float64)
    out["upper_ratio"] = _ratio(per_text((bits & _UPPER) >> 1), letters)
    out["digit_ratio"] = _ratio(per_text((bits & _DIGIT) >> 2), lengths)
    out["markup_ratio"] = _ratio(per_text((bits & _MARK) >> 4), lengths)
    return codes, bits


def _count(texts: Sequence[str], *needles: str) -> np.ndarray:
    total = np.zeros(len(texts))
    for needle in needles:
        total += np.fromiter(map(str.count, texts, repeat(needle)), dtype=np.float64,
                             count=len(texts))
    return total


def _flags(items: list[str], test, argument) -> np.ndarray:
    return np.fromiter(map(test, items, repeat(argument)), dtype=bool, count=len(items))


def _lines(texts: Sequence[str], out: dict) -> None:
    n = len(texts)
    out["_newlines"] = _count(texts, "\n")
    out["_hashes"] = _count(texts, "#")
    out["_dots"] = _count(texts, "...", "…")
    out["_urls"] = _count(texts, "http://", "https://", "www.")
    lines, doc = _parts(list(map(str.split, texts, repeat("\n"))))
    count = np.bincount(doc, minlength=n)

    def share(flag: np.ndarray) -> np.ndarray:
        return _ratio(np.bincount(doc, weights=flag, minlength=n), count)

    length = np.fromiter(map(len, lines), dtype=np.int64, count=len(lines))
    out["punct_line_share"] = share(_flags(lines, str.endswith, TERMINAL))
    out["bullet_line_share"] = share(_flags(lines, str.startswith, BULLETS))
    out["ellipsis_line_share"] = share(_flags(lines, str.endswith, ("...", "…")))
    out["short_line_share"] = share(length <= SHORT_LINE)
    out["dup_line_chars"] = _repeated_chars(lines, doc, length, n)
    paragraphs, pdoc = _parts(list(map(_PARAGRAPH.split, texts)))
    plength = np.fromiter(map(len, paragraphs), dtype=np.int64, count=len(paragraphs))
    out["dup_paragraph_chars"] = _repeated_chars(paragraphs, pdoc, plength, n)


def _parts(split: list[list[str]]) -> tuple[list[str], np.ndarray]:
    """The stripped, non-empty parts of every text, and the text each belongs to."""
    sizes = np.fromiter(map(len, split), dtype=np.int64, count=len(split))
    parts = list(map(str.strip, chain.from_iterable(split)))
    doc = np.repeat(np.arange(len(split)), sizes)
    kept = np.fromiter(map(bool, parts), dtype=bool, count=len(parts))
    return list(compress(parts, kept)), doc[kept]


def _repeated_chars(parts: list[str], doc: np.ndarray, length: np.ndarray,
                    n: int) -> np.ndarray:
    """Per text: characters of the parts equal to an earlier part of the same text, over the
    characters of all its parts."""
    keys = list(zip(doc.tolist(), parts, strict=True))
    # built from the end, a dict maps each part to its first index
    first = dict(zip(reversed(keys), range(len(keys) - 1, -1, -1), strict=True))
    earliest = np.fromiter(map(first.__getitem__, keys), dtype=np.int64, count=len(keys))
    repeated = earliest != np.arange(len(keys))
    return _ratio(np.bincount(doc, weights=length * repeated, minlength=n),
                  np.bincount(doc, weights=length, minlength=n))


def _words(codes: np.ndarray, bits: np.ndarray, lengths: np.ndarray, language: str,
           out: dict) -> None:
    """Word signals from the code points: words are runs of non-space characters (an
    ideograph or kana alone), normalised (lower case, edge punctuation stripped) and hashed
    with a polynomial hash modulo 2**64 of their code points, mixed; the same hashes give
    the stop words (:func:`_stop_hashes`) and, made compact, the words of the n-grams."""
    n_texts = len(lengths)
    total_chars = len(codes)
    ends = np.cumsum(lengths)
    starts = ends - lengths
    word = (bits & _SPACE) == 0
    cjk = (bits & _CJK) > 0
    first = np.zeros(total_chars, dtype=bool)
    last = np.zeros(total_chars, dtype=bool)
    filled = lengths > 0
    first[starts[filled]] = True
    last[ends[filled] - 1] = True
    before_word = np.r_[False, word[:-1]] if total_chars else word
    before_cjk = np.r_[False, cjk[:-1]] if total_chars else cjk
    after_word = np.r_[word[1:], False] if total_chars else word
    after_cjk = np.r_[cjk[1:], False] if total_chars else cjk
    begins = np.flatnonzero(word & (first | ~before_word | cjk | before_cjk))
    finishes = np.flatnonzero(word & (last | ~after_word | cjk | after_cjk)) + 1
    doc = np.searchsorted(ends, begins, side="right")
    counts = np.bincount(doc, minlength=n_texts)
    chars = finishes - begins
    word_chars = np.bincount(doc, weights=chars, minlength=n_texts)
    out["n_words"] = counts.astype(np.float64)
    out["mean_word_length"] = _ratio(word_chars, counts)
    out["symbol_word_ratio"] = np.maximum(_ratio(out.pop("_hashes"), counts),
                                          _ratio(out.pop("_dots"), counts))
    out["url_density"] = _ratio(out.pop("_urls"), counts)
    out["newline_ratio"] = _ratio(out.pop("_newlines"), counts)
    if not len(begins):
        for name in ("alpha_word_share", "stop_words", "stop_word_ratio"):
            out[name] = np.zeros(n_texts)
        ngram_fractions(np.zeros(0, np.uint64), doc, counts, chars, word_chars, out)
        return
    alpha = np.add.reduceat((bits & _ALPHA).astype(np.int64), begins) > 0
    # the core of each word: from its first to its last character that is not punctuation
    index = np.arange(total_chars)
    inner = word & ((bits & _EDGE_BIT) == 0)
    core_start = np.minimum.reduceat(np.where(inner, index, total_chars), begins)
    core_end = np.maximum.reduceat(np.where(inner, index, -1), begins) + 1
    bare = core_start >= total_chars  # punctuation only: the word as it is
    core_start = np.where(bare, begins, core_start)
    core_end = np.where(bare, finishes, core_end)
    _, lower = _classes()
    low = np.where(codes < 0x10000, lower[np.minimum(codes, 0xFFFF)], codes).astype(np.uint64)
    power, inverse = _powers(max(CHUNK, total_chars) + 1) if total_chars > CHUNK else \
        _powers(CHUNK + 1)
    prefix = np.zeros(total_chars + 1, dtype=np.uint64)
    np.cumsum(low * power[:total_chars], dtype=np.uint64, out=prefix[1:])
    size = (core_end - core_start).astype(np.uint64)
    h = (prefix[core_end] - prefix[core_start]) * inverse[core_start]
    h = _mix(h ^ (size * np.uint64(0x9E3779B97F4A7C15)))
    stops, core = _stop_hashes(language)
    out["alpha_word_share"] = _ratio(np.bincount(doc, weights=alpha, minlength=n_texts),
                                     counts)
    out["stop_words"] = np.bincount(doc, weights=np.isin(h, core), minlength=n_texts)
    out["stop_word_ratio"] = _ratio(np.bincount(doc, weights=np.isin(h, stops),
                                                minlength=n_texts), counts)
    ngram_fractions(h, doc, counts, chars, word_chars, out)
