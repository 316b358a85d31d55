"""Language codes, scripts and the letter evidence behind language identification.

**Codes.** fastText's lid.176 names its 176 languages with ISO 639-1 codes where one exists
and three-letter codes otherwise (:data:`LID_CODES`); FineWeb-2 and GlotLID name them with
ISO 639-3 plus an ISO 15924 script (``fra_Latn``). :func:`normalize` maps every spelling met in
configurations and datasets to the lid.176 code: ``__label__fr``, ``fr``, ``FR``, ``fra``,
``fre``, ``fra_Latn``, ``fr-FR``, ``zh-Hans`` and ``zh_CN`` all give ``fr`` or ``zh``. What
follows the first ``-`` or ``_`` (a script, a region) is dropped; three letters are read as
ISO 639-3 (:data:`ISO3`, inverted), as an ISO 639-2/B code (``ger``, ``chi``) or as a common
individual language of a macrolanguage (``cmn`` → ``zh``, ``nob`` → ``no``). A code lid.176
does not know raises ``ValueError``. Two lid.176 codes are not what ISO says: ``als`` is
Alemannic (ISO ``gsw``; ISO's ``als`` is Tosk Albanian) and ``eml`` (Emilian-Romagnol) is a
retired code, kept.

**Scripts.** :func:`script_of` names the script most of a text's letters are written in,
from a table over code points: Han with kana is ``Jpan``, Han with Hangul ``Kore``.

**Evidence.** Language identification on a few words is a guess: lid.176 gives "Paris" or
"OK" a confident label. :func:`letter_counts` measures how much a text says: its alphabetic
characters (``str.isalpha``), where an ideograph, a kana or a Hangul syllable counts
:data:`CJK_WEIGHT` (one of them carries about a word, an alphabetic letter a fifth of one).
Callers identify only texts with enough letters and call the others ``short``.

**Mixed documents.** A document is split into :func:`segments` (paragraphs or lines), each
identified; :func:`foreign_shares` is the share of a document's letters in segments
confidently identified as another language. :func:`min_score_from_histogram` is FineWeb-2's
per-language confidence threshold, from a histogram of scores.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from functools import cache
from typing import Literal

import numpy as np

#: The labels of fastText's lid.176 model, without ``__label__``, in alphabetical order.
LID_CODES: tuple[str, ...] = tuple("""
af als am an ar arz as ast av az azb ba bar bcl be bg bh bn bo bpy br bs bxr ca cbk ce ceb ckb
co cs cv cy da de diq dsb dty dv el eml en eo es et eu fa fi fr frr fy ga gd gl gn gom gu gv he
hi hif hr hsb ht hu hy ia id ie ilo io is it ja jbo jv ka kk km kn ko krc ku kv kw ky la lb lez
li lmo lo lrc lt lv mai mg mhr min mk ml mn mr mrj ms mt mwl my myv mzn nah nap nds ne new nl nn
no oc or os pa pam pfl pl pms pnb ps pt qu rm ro ru rue sa sah sc scn sco sd sh si sk sl so sq sr
su sv sw ta te tg th tk tl tr tt tyv ug uk ur uz vec vep vi vls vo wa war wuu xal xmf yi yo yue
zh""".split())

_THREE = ("arz ast azb bar bcl bpy bxr cbk ceb ckb diq dsb dty eml frr gom hif hsb ilo jbo krc "
          "lez lmo lrc mai mhr min mrj mwl myv mzn nah nap nds new pam pfl pms pnb rue sah scn "
          "sco tyv vec vep vls war wuu xal xmf yue").split()

#: Each lid.176 code's ISO 639-3 code (the macrolanguage where ISO 639-1 names one).
ISO3: dict[str, str] = {
    "af": "afr", "als": "gsw", "am": "amh", "an": "arg", "ar": "ara", "as": "asm", "av": "ava",
    "az": "aze", "ba": "bak", "be": "bel", "bg": "bul", "bh": "bih", "bn": "ben", "bo": "bod",
    "br": "bre", "bs": "bos", "ca": "cat", "ce": "che", "co": "cos", "cs": "ces", "cv": "chv",
    "cy": "cym", "da": "dan", "de": "deu", "dv": "div", "el": "ell", "en": "eng", "eo": "epo",
    "es": "spa", "et": "est", "eu": "eus", "fa": "fas", "fi": "fin", "fr": "fra", "fy": "fry",
    "ga": "gle", "gd": "gla", "gl": "glg", "gn": "grn", "gu": "guj", "gv": "glv", "he": "heb",
    "hi": "hin", "hr": "hrv", "ht": "hat", "hu": "hun", "hy": "hye", "ia": "ina", "id": "ind",
    "ie": "ile", "io": "ido", "is": "isl", "it": "ita", "ja": "jpn", "jv": "jav", "ka": "kat",
    "kk": "kaz", "km": "khm", "kn": "kan", "ko": "kor", "ku": "kur", "kv": "kom", "kw": "cor",
    "ky": "kir", "la": "lat", "lb": "ltz", "li": "lim", "lo": "lao", "lt": "lit", "lv": "lav",
    "mg": "mlg", "mk": "mkd", "ml": "mal", "mn": "mon", "mr": "mar", "ms": "msa", "mt": "mlt",
    "my": "mya", "ne": "nep", "nl": "nld", "nn": "nno", "no": "nor", "oc": "oci", "or": "ori",
    "os": "oss", "pa": "pan", "pl": "pol", "ps": "pus", "pt": "por", "qu": "que", "rm": "roh",
    "ro": "ron", "ru": "rus", "sa": "san", "sc": "srd", "sd": "snd", "sh": "hbs", "si": "sin",
    "sk": "slk", "sl": "slv", "so": "som", "sq": "sqi", "sr": "srp", "su": "sun", "sv": "swe",
    "sw": "swa", "ta": "tam", "te": "tel", "tg": "tgk", "th": "tha", "tk": "tuk", "tl": "tgl",
    "tr": "tur", "tt": "tat", "ug": "uig", "uk": "ukr", "ur": "urd", "uz": "uzb", "vi": "vie",
    "vo": "vol", "wa": "wln", "yi": "yid", "yo": "yor", "zh": "zho", **{c: c for c in _THREE},
}

#: ISO 639-2/B codes (bibliographic) and their ISO 639-3 equivalents.
_BIBLIOGRAPHIC = {
    "alb": "sqi", "arm": "hye", "baq": "eus", "bur": "mya", "chi": "zho", "cze": "ces",
    "dut": "nld", "fre": "fra", "geo": "kat", "ger": "deu", "gre": "ell", "ice": "isl",
    "mac": "mkd", "mao": "mri", "may": "msa", "per": "fas", "rum": "ron", "slo": "slk",
    "tib": "bod", "wel": "cym",
}
#: Individual languages (as GlotLID and FineWeb-2 name them) of a lid.176 macrolanguage, and
#: codes ISO 639-1 has withdrawn.
_INDIVIDUAL = {
    "arb": "ar", "azj": "az", "cmn": "zh", "ekk": "et", "gug": "gn", "khk": "mn", "kmr": "ku",
    "kpv": "kv", "lvs": "lv", "npi": "ne", "nob": "no", "ory": "or", "pbu": "ps", "pes": "fa",
    "plt": "mg", "quz": "qu", "swh": "sw", "uzn": "uz", "ydd": "yi", "zsm": "ms",
    "in": "id", "iw": "he", "ji": "yi", "mo": "ro",
}
_LID = frozenset(LID_CODES)
_FROM_ISO3 = {v: k for k, v in ISO3.items()}


def normalize(code: str) -> str:
    """The lid.176 code of a language code in any common spelling (see the module docstring).

    Raises ``ValueError`` naming ``code`` when lid.176 does not identify that language."""
    raw = str(code).strip()
    base = raw.removeprefix("__label__").replace("-", "_").split("_", 1)[0].lower()
    if base in _LID:
        return base
    if base in _INDIVIDUAL:
        return _INDIVIDUAL[base]
    found = _FROM_ISO3.get(_BIBLIOGRAPHIC.get(base, base))
    if found is None:
        raise ValueError(f"unknown language code {raw!r}: not one of the 176 languages of "
                         f"lid.176 (ISO 639-1, 639-2/B or 639-3, optionally with a script)")
    return found


def with_script(code: str, script: str) -> str:
    """``ISO 639-3 + "_" + ISO 15924``, FineWeb-2's name of a subset: ``("fr", "Latn")`` →
    ``"fra_Latn"``."""
    if len(script) != 4 or not script.isascii() or not script.isalpha():
        raise ValueError(f"script {script!r} is not an ISO 15924 code (four letters)")
    return f"{ISO3[normalize(code)]}_{script.title()}"


#: What an ideograph, a kana or a Hangul syllable counts in :func:`letter_counts`.
CJK_WEIGHT = 3
#: Code points the lookup tables cover (through CJK Extension H); those above are no letters.
_TABLE_SIZE = 0x32400
#: Unicode blocks by script, ``(first, last, script)``; ``Kana`` and ``Hang`` are resolved to
#: ``Jpan`` and ``Kore`` per text. Only the letters of a block (``str.isalpha``) count.
_BLOCKS = (
    (0x0041, 0x02FF, "Latn"), (0x0370, 0x03FF, "Grek"), (0x0400, 0x052F, "Cyrl"),
    (0x0530, 0x058F, "Armn"), (0x0590, 0x05FF, "Hebr"), (0x0600, 0x06FF, "Arab"),
    (0x0750, 0x077F, "Arab"), (0x0780, 0x07BF, "Thaa"), (0x0870, 0x08FF, "Arab"),
    (0x0900, 0x097F, "Deva"), (0x0980, 0x09FF, "Beng"), (0x0A00, 0x0A7F, "Guru"),
    (0x0A80, 0x0AFF, "Gujr"), (0x0B00, 0x0B7F, "Orya"), (0x0B80, 0x0BFF, "Taml"),
    (0x0C00, 0x0C7F, "Telu"), (0x0C80, 0x0CFF, "Knda"), (0x0D00, 0x0D7F, "Mlym"),
    (0x0D80, 0x0DFF, "Sinh"), (0x0E00, 0x0E7F, "Thai"), (0x0E80, 0x0EFF, "Laoo"),
    (0x0F00, 0x0FFF, "Tibt"), (0x1000, 0x109F, "Mymr"), (0x10A0, 0x10FF, "Geor"),
    (0x1100, 0x11FF, "Hang"), (0x1200, 0x139F, "Ethi"), (0x1780, 0x17FF, "Khmr"),
    (0x19E0, 0x19FF, "Khmr"), (0x1C80, 0x1C8F, "Cyrl"), (0x1C90, 0x1CBF, "Geor"),
    (0x1D00, 0x1DBF, "Latn"), (0x1E00, 0x1EFF, "Latn"), (0x1F00, 0x1FFF, "Grek"),
    (0x2C60, 0x2C7F, "Latn"), (0x2D00, 0x2D2F, "Geor"), (0x2D80, 0x2DDF, "Ethi"),
    (0x2DE0, 0x2DFF, "Cyrl"), (0x2E80, 0x2FDF, "Hani"), (0x3005, 0x3007, "Hani"),
    (0x3021, 0x3029, "Hani"), (0x3038, 0x303B, "Hani"), (0x3040, 0x30FF, "Kana"),
    (0x3130, 0x318F, "Hang"), (0x31F0, 0x31FF, "Kana"), (0x3400, 0x4DBF, "Hani"),
    (0x4E00, 0x9FFF, "Hani"), (0xA640, 0xA69F, "Cyrl"), (0xA720, 0xA7FF, "Latn"),
    (0xA8E0, 0xA8FF, "Deva"), (0xA960, 0xA97F, "Hang"), (0xA9E0, 0xA9FF, "Mymr"),
    (0xAA60, 0xAA7F, "Mymr"), (0xAB00, 0xAB2F, "Ethi"), (0xAB30, 0xAB6F, "Latn"),
    (0xAC00, 0xD7FF, "Hang"), (0xF900, 0xFAFF, "Hani"), (0xFB00, 0xFB06, "Latn"),
    (0xFB13, 0xFB17, "Armn"), (0xFB1D, 0xFB4F, "Hebr"), (0xFB50, 0xFDFF, "Arab"),
    (0xFE70, 0xFEFF, "Arab"), (0xFF21, 0xFF5A, "Latn"), (0xFF66, 0xFF9F, "Kana"),
    (0xFFA0, 0xFFDC, "Hang"), (0x1B000, 0x1B16F, "Kana"), (0x20000, 0x323AF, "Hani"),
)
#: Ranges whose letters count :data:`CJK_WEIGHT`: ideographs, kana and Hangul syllables.
_HEAVY = ((0x3005, 0x3007), (0x3021, 0x3029), (0x3038, 0x303B), (0x3040, 0x30FF),
          (0x31F0, 0x31FF), (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xAC00, 0xD7A3),
          (0xF900, 0xFAFF), (0xFF66, 0xFF9F), (0x1B000, 0x1B16F), (0x20000, 0x323AF))
#: Script slots of :func:`_tables`: 0 is "no letter", the last one a letter of another script.
_SCRIPTS = ("", *dict.fromkeys(s for *_, s in _BLOCKS), "Zzzz")


@cache
def _tables() -> tuple[np.ndarray, np.ndarray]:
    """``(weight, script)`` per code point, one entry past :data:`_TABLE_SIZE` for "none":
    a letter's weight (0, 1 or :data:`CJK_WEIGHT`) and its slot in :data:`_SCRIPTS`."""
    alpha = np.zeros(_TABLE_SIZE + 1, dtype=bool)
    alpha[:_TABLE_SIZE] = np.fromiter((chr(c).isalpha() for c in range(_TABLE_SIZE)), bool,
                                      count=_TABLE_SIZE)
    alpha[0xD800:0xE000] = False  # surrogates
    slot = {s: i for i, s in enumerate(_SCRIPTS)}
    script = np.full(_TABLE_SIZE + 1, len(_SCRIPTS) - 1, dtype=np.int8)
    for first, last, name in _BLOCKS:
        script[first:last + 1] = slot[name]
    script[~alpha] = 0
    weight = alpha.astype(np.int8)
    for first, last in _HEAVY:
        weight[first:last + 1] *= CJK_WEIGHT
    return weight, script


def _code_points(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Every code point of ``texts`` in one array (read through the tables with ``mode="clip"``:
    past their end is their "none" entry), and each text's ``[start, end)`` offsets into it,
    shape (n + 1,)."""
    offsets = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum([len(t) for t in texts], out=offsets[1:])
    raw = "".join(texts).encode("utf-32-le", "surrogatepass")
    return np.frombuffer(raw, dtype="<u4"), offsets


def evidence(texts: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """:func:`letter_counts` and :func:`script_of` of ``texts`` from one read of their code
    points (what language identification asks of every text)."""
    points, offsets = _code_points(texts)
    return _letters(points, offsets), _scripts(points, offsets, len(texts))


def _letters(points: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    weight, _ = _tables()
    total = np.zeros(len(points) + 1, dtype=np.int64)
    np.cumsum(np.take(weight, points, mode="clip"), out=total[1:])
    return total[offsets[1:]] - total[offsets[:-1]]


def letter_counts(texts: Sequence[str]) -> np.ndarray:
    """The evidence each text gives language identification, int64 (n,): its letters, an
    ideograph, kana or Hangul syllable counting :data:`CJK_WEIGHT`."""
    points, offsets = _code_points(texts)
    return _letters(points, offsets)


def script_of(texts: Sequence[str]) -> list[str]:
    """The ISO 15924 script most letters of each text are written in: ``Hani`` for Han alone,
    ``Jpan`` for kana (with or without Han, which then counts with them), ``Kore`` for Hangul
    (likewise), ``Zzzz`` for a script outside the table, ``Zyyy`` for a text without letters.
    Ties go to the script listed first (Latin)."""
    points, offsets = _code_points(texts)
    return _scripts(points, offsets, len(texts))


def _scripts(points: np.ndarray, offsets: np.ndarray, n: int) -> list[str]:
    _, script = _tables()
    width = len(_SCRIPTS)
    owner = np.repeat(np.arange(n, dtype=np.int64), np.diff(offsets))
    slots = owner * width + np.take(script, points, mode="clip")
    counts = np.bincount(slots, minlength=n * width).reshape(n, width)
    counts[:, 0] = 0
    han, kana, hangul = (_SCRIPTS.index(s) for s in ("Hani", "Kana", "Hang"))
    japanese, korean = counts[:, kana] > 0, (counts[:, hangul] > 0) & (counts[:, kana] == 0)
    counts[japanese, kana] += counts[japanese, han]
    counts[korean, hangul] += counts[korean, han]
    counts[japanese | korean, han] = 0
    best = counts.argmax(axis=1)
    names = {"Kana": "Jpan", "Hang": "Kore", "": "Zyyy"}
    return [names.get(_SCRIPTS[i], _SCRIPTS[i]) for i in best.tolist()]


def segments(text: str, unit: Literal["paragraph", "line"]) -> list[str]:
    """The paragraphs of ``text`` (split at blank lines: a line of white space is blank) or
    its lines, each stripped, the empty ones dropped."""
    lines = text.splitlines()
    if unit == "line":
        return [s for s in (line.strip() for line in lines) if s]
    if unit != "paragraph":
        raise ValueError(f"unit must be 'paragraph' or 'line', got {unit!r}")
    out, current = [], []
    for line in lines:
        if line.strip():
            current.append(line)
        elif current:
            out.append("\n".join(current).strip())
            current = []
    if current:
        out.append("\n".join(current).strip())
    return out


def foreign_shares(segment_document: np.ndarray, segment_letters: np.ndarray,
                   segment_languages: Sequence[str], segment_scores: np.ndarray,
                   document_languages: Sequence[str], min_score: float) -> np.ndarray:
    """For each document, the share of its letters in segments identified as a language
    other than the document's, float64 (n_documents,).

    Parameters
    ----------
    segment_document : (m,) int
        The document (index into ``document_languages``) each segment belongs to.
    segment_letters : (m,) int
        Each segment's :func:`letter_counts`.
    segment_languages, segment_scores : (m,)
        Each segment's top language and its score; a score of 0 means "not identified".
    document_languages : (n,) str
    min_score : float in (0, 1]
        Segments scoring less count in the denominator as the document's language.

    A document without letters gets 0.0."""
    if not 0.0 < min_score <= 1.0:
        raise ValueError(f"min_score must be in (0, 1], got {min_score!r}")
    owner = np.asarray(segment_document, dtype=np.int64)
    letters = np.asarray(segment_letters, dtype=np.int64)
    scores = np.asarray(segment_scores, dtype=np.float64)
    if not len(owner) == len(letters) == len(scores) == len(segment_languages):
        raise ValueError(f"segment arrays differ in length: {len(owner)}, {len(letters)}, "
                         f"{len(segment_languages)}, {len(scores)}")
    n = len(document_languages)
    if len(owner) and (owner.min() < 0 or owner.max() >= n):
        raise ValueError(f"segment_document must index {n} documents")
    own = np.asarray(list(document_languages), dtype=str)[owner]
    other = np.asarray(list(segment_languages), dtype=str) != own
    foreign = other & (scores >= min_score)
    total = np.bincount(owner, weights=letters, minlength=n)
    alien = np.bincount(owner, weights=np.where(foreign, letters, 0), minlength=n)
    return np.divide(alien, total, out=np.zeros(n), where=total > 0)


def foreign_share(segment_letters: np.ndarray, segment_languages: Sequence[str],
                  segment_scores: np.ndarray, document_language: str,
                  min_score: float) -> float:
    """:func:`foreign_shares` for the segments of one document."""
    owner = np.zeros(len(segment_letters), dtype=np.int64)
    return float(foreign_shares(owner, segment_letters, segment_languages, segment_scores,
                                [document_language], min_score)[0])


def min_score_from_histogram(counts: np.ndarray, step: float, low: float = 0.3,
                             high: float = 0.9) -> float:
    """FineWeb-2's minimum language score of one language: ``clamp(median - σ, low, high)``
    over the scores its documents got, rounded down to a multiple of ``step``.

    Parameters
    ----------
    counts : (b,) int
        ``counts[i]`` is the number of scores equal to ``i * step``.
    step : float
        The grid of the scores.

    The median is the lower median of the scores, σ their population standard deviation;
    both come from the integer counts (sums over bins, in float64), so the result does not
    depend on the order the scores arrived in. Raises ``ValueError`` for an empty histogram:
    a language without documents has no threshold."""
    counts = np.asarray(counts)
    if counts.ndim != 1 or not np.issubdtype(counts.dtype, np.integer):
        raise ValueError(f"counts must be a 1-d integer array, got {counts.dtype} "
                         f"of shape {counts.shape}")
    if (counts < 0).any():
        raise ValueError("counts must not be negative")
    if not step > 0 or not low <= high:
        raise ValueError(f"need step > 0 and low <= high, got step={step!r}, low={low!r}, "
                         f"high={high!r}")
    n = int(counts.sum())
    if n == 0:
        raise ValueError("empty histogram: no scores to take a minimum from")
    cumulative = np.cumsum(counts, dtype=np.int64)
    median = int(np.searchsorted(cumulative, (n - 1) // 2 + 1))  # in steps
    bins = np.arange(len(counts), dtype=np.float64)
    weights = counts.astype(np.float64)
    mean = float(np.sum(weights * bins)) / n
    sigma = math.sqrt(float(np.sum(weights * (bins - mean) ** 2)) / n)
    value = min(max(median - sigma, low / step), high / step)
    return math.floor(value + 1e-9) * step


#: UTF-8 read as cp1252 or Latin-1: a lead byte of a multi-byte sequence (U+00C2 to U+00F4 as
#: a character) followed by a continuation byte as either code page shows it (U+0080 to
#: U+00BF, or cp1252's characters for 0x80 to 0x9F). Written text almost never holds such a
#: pair: an accented letter is one character, not two.
_MOJIBAKE = re.compile(
    "[\u00c2-\u00f4][\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e"
    "\u0192\u02c6\u02dc\u2013\u2014\u2018\u2019\u201a\u201c\u201d\u201e\u2020"
    "\u2021\u2022\u2026\u2030\u2039\u203a\u20ac\u2122]+")


def mojibake_shares(texts: Sequence[str]) -> np.ndarray:
    """The share of each text's characters inside mojibake sequences
    (:data:`_MOJIBAKE`), float64 (n,): about 0.1 or more for a text decoded with the wrong
    code page, 0 for text written as it was meant."""
    out = np.zeros(len(texts))
    for i, text in enumerate(texts):
        if text.isascii():
            continue
        found = sum(len(m) for m in _MOJIBAKE.findall(text))
        if found:
            out[i] = found / len(text)
    return out
