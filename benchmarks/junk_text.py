"""The text side of the quality junk benchmark (``quality_junk.py``): hashing, splitting
and cutting real text into length-matched documents, and reading this machine's sources of
junk (HTML manuals, info manuals, man pages, dpkg, /usr/share/doc, /var/log)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Iterator
from functools import lru_cache
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "examples" / "demo" / "corpus"
DOC = Path("/usr/share/doc")
PYHTML = DOC / "python3.11" / "html"
INFO = Path("/usr/share/info")
DPKG = Path("/var/lib/dpkg")
LOGS = Path("/var/log")
STATIC = [DOC, Path("/usr/share/javascript"), Path("/usr/share/gitweb"),
          Path("/usr/share/gtk-doc"), Path("/usr/share/sgml")]

KINDS = ("navigation", "markup", "listings", "spam", "keywords", "licence", "shuffled")
#: Degraded prose reported beside the junk, not trained on and not in "all": a document's own
#: sentences in another order (every sentence real, on topic, the order lost).
PROBES = ("reordered",)
TEST_SHARE = 0.3
GOOD_SHARE = 0.6
RUN = 8
STREAM_WORDS = 3000
MAX_TRIES = 500
FOOTNOTES = "---------- Footnotes ----------"

SPACE = np.array([c for c in range(0x3001) if chr(c).isspace()], dtype=np.uint32)
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z])")
SCRIPT = re.compile(r"<(script|style|form)\b.*?</\1\s*>", re.I | re.S)
BLOCK = re.compile(r"</?(?:br|li|p|h[1-6]|div|tr|dt|dd|ul|ol|table|nav|section)\b[^>]*>", re.I)
TAG = re.compile(r"<[^>]*>")
PY_FURNITURE = re.compile(
    r'<(div) class="(?:related|sphinxsidebar|footer|toctree-wrapper)\b', re.I)
NAV_FURNITURE = re.compile(
    r'<(div|nav|table|ul|header|footer)\b[^>]*\b(?:class|id|role)="[^"]*\b(?:nav|navigation|'
    r'navheader|navfooter|toc|gtoc|menu|sidebar|breadcrumbs?|footer)\b[^"]*"', re.I)
REFS = re.compile(r",?\s*\[\d+\]")
INFO_ENTRY = re.compile(r"^\* (.+?):\s+.*\(line\s+\d+\)\s*$", re.M)
ROFF_FONT = re.compile(r"\\f(?:\[[^\]]*\]|\(..|.)")
ROFF_ESCAPE = re.compile(r"\\(?:\(..|\*\(..|\*.|\[[^\]]*\]|.)")
ROFF_ARGS = re.compile(r'"([^"]*)"?|(\S+)')
FUNCTION_WORDS = frozenset(
    "a an the of to and or in on for is are be by with that this it as at from if not can "
    "will may must which when then than its into".split())
STOP_WORDS = frozenset({"the", "be", "to", "of", "and", "that", "have", "with"})
BULLETS = ("-", "*", "•", "‣", "◦", "·", "–", "+")
END_PUNCT = tuple(".!?:;\"')")


# ---------------------------------------------------------------------------------------------
# hashing, splitting, cutting


def digest(text: str, seed: int, purpose: bytes) -> int:
    h = hashlib.blake2b(text.encode(), digest_size=8, key=str(seed).encode(), person=purpose)
    return int.from_bytes(h.digest(), "big")


def hash_order(texts: Iterable[str], seed: int) -> list[str]:
    return sorted(texts, key=lambda t: digest(t, seed, b"order"))


def is_test(text: str, seed: int) -> bool:
    return digest(text, seed, b"split") < TEST_SHARE * 2**64


def split(texts: list[str], seed: int) -> tuple[list[str], list[str]]:
    flags = [is_test(t, seed) for t in texts]
    return ([t for t, x in zip(texts, flags, strict=True) if not x],
            [t for t, x in zip(texts, flags, strict=True) if x])


def runs(text: str) -> set[tuple[str, ...]]:
    """The runs of RUN consecutive words of ``text``."""
    w = text.split()
    return set(zip(*(w[i:] for i in range(RUN)), strict=False))


@lru_cache(maxsize=1024)
def first_words(n: int) -> re.Pattern[str]:
    return re.compile(rf"\s*(?:\S+\s+){{{n - 1}}}\S+")


def truncate(text: str, n: int) -> str:
    """The first ``n`` words of ``text`` with the whitespace between them (all of ``text``
    if it has fewer)."""
    m = first_words(n).match(text)
    return text[:m.end()].lstrip() if m else text


def word_bounds(text: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Start and end offsets of the words of ``text`` (as ``str.split`` finds them), and the
    indices of the words that begin a line."""
    code = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    space = np.isin(code, SPACE)
    edge = np.diff(np.r_[True, space, True].astype(np.int8))
    first, last = np.flatnonzero(edge == -1), np.flatnonzero(edge == 1)
    breaks = np.r_[0, np.cumsum(code == 10)]
    begins = np.r_[True, breaks[first[1:]] > breaks[last[:-1]]] if len(first) else first
    return first, last, np.flatnonzero(begins)


class Guard:
    """Admits a text once, and only if it shares no run of 8 words with a protected text."""

    def __init__(self, protected: list[str]):
        self.protected: set[tuple[str, ...]] = set().union(*map(runs, protected))
        self.seen = set(protected)

    def admit(self, text: str, plain: str | None = None) -> bool:
        if text in self.seen or not runs(text if plain is None else plain).isdisjoint(
                self.protected):
            return False
        self.seen.add(text)
        return True


def stream(texts: Iterable[str], protected: set[tuple[str, ...]] | None = None,
           words: int = STREAM_WORDS) -> Iterator[str]:
    """Consecutive non-empty ``texts`` joined by blank lines into pieces of >= ``words``;
    with ``protected``, paragraphs sharing one of its runs of words are left out first."""
    part: list[str] = []
    count = 0
    for text in texts:
        if protected is not None:
            text = "\n\n".join(p for p in text.split("\n\n") if runs(p).isdisjoint(protected))
        text = text.strip()
        if not text:
            continue
        part.append(text)
        count += len(text.split())
        if count >= words:
            yield "\n\n".join(part)
            part, count = [], 0
    if part:
        yield "\n\n".join(part)


def cut(texts: Iterable[str], lengths: np.ndarray, rng: np.random.Generator,
        accept: Callable[[str], bool]) -> Iterator[str]:
    """Pieces of ``texts`` as long in words as draws from ``lengths``, each starting at a line
    start where one is near, whitespace kept. A target length stays until a piece of that
    length is accepted (or MAX_TRIES pieces were not)."""
    target, tries = int(rng.choice(lengths)), 0
    for text in texts:
        first, last, starts = word_bounds(text)
        i = 0
        while i + target <= len(first):
            piece = text[first[i]:last[i + target - 1]]
            end = i + target
            k = int(np.searchsorted(starts, end))
            i = int(starts[k]) if k < len(starts) and starts[k] < end + 50 else end
            if accept(piece):
                yield piece
                target, tries = int(rng.choice(lengths)), 0
            else:
                tries += 1
                if tries >= MAX_TRIES:
                    target, tries = int(rng.choice(lengths)), 0


def interleave(sources: list[Iterator[str]], limit: int) -> list[str]:
    """Up to ``limit`` items taken from ``sources`` in turn, skipping exhausted ones."""
    out: list[str] = []
    active = list(sources)
    while active and len(out) < limit:
        for source in list(active):
            item = next(source, None)
            if item is None:
                active.remove(source)
            else:
                out.append(item)
                if len(out) >= limit:
                    break
    return out


def keyword_maker(pools: list[list[str]], rng: np.random.Generator) -> Callable[[int], str]:
    pools = [p for p in pools if p]
    sizes = [np.array([len(e.split()) for e in p]) for p in pools]

    def make(n: int) -> str:
        k = int(rng.integers(len(pools)))
        pool, size = pools[k], sizes[k]
        if rng.random() < 0.5:
            start = int(rng.integers(len(pool)))
            index = np.arange(start, start + n) % len(pool)
        else:
            index = rng.choice(len(pool), min(n, len(pool)), replace=False)
        take = int(np.searchsorted(np.cumsum(size[index]), n)) + 1
        sep = str(rng.choice(["\n", "\n", "\n", ", ", "; ", " | "], p=[0.2] * 3 + [0.4 / 3] * 3))
        return sep.join(pool[i] for i in index[:take])

    return make


def shuffle_document(text: str, rng: np.random.Generator, by_sentence: bool) -> str:
    """``text`` with its sentences (``by_sentence``, if it has 3 or more) or else its words in
    a random order, poured back into its lines: each keeps its number of sentences, or words."""
    lines = text.split("\n")
    per_line = [SENTENCE_END.split(line.strip()) if line.strip() else [] for line in lines]
    parts = [s for p in per_line for s in p]
    if by_sentence and len(parts) >= 3:
        order = rng.permutation(len(parts))
        if (order == np.arange(len(parts))).all():
            order = order[::-1]
        moved = iter([parts[i] for i in order])
        return "\n".join(" ".join(next(moved) for _ in p) for p in per_line)
    words = text.split()
    words = [words[i] for i in rng.permutation(len(words))]
    out, pos = [], 0
    for line in lines:
        k = len(line.split())
        out.append(" ".join(words[pos:pos + k]))
        pos += k
    return "\n".join(out)
