"""The junk kinds of the bilingual benchmark (``bilingual_data.py``), each made from real text
in the document's language: how a man page's furniture, a gettext catalogue's strings, a
source file or a prose paragraph becomes a junk document of a given length."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import numpy as np
from bilingual_sources import Page, blocks, examples, furniture, is_prose, sentences
from junk_text import shuffle_document, truncate

MNEMONIC = re.compile(r"(?<![\w_])[_&](?=\w)")
NOT_UI = re.compile(r"[%{}<>\n\t\\/=$@]|\w_\w|^\W|\.\s*$|\s{2,}")
CP1252 = [bytes([b]).decode("cp1252", errors="replace") for b in range(256)]
#: Bytes cp1252 leaves undefined decode as the Latin-1 control character (as browsers do).
CP1252 = [chr(b) if c == "\ufffd" else c for b, c in enumerate(CP1252)]


def ui_items(pairs: list[tuple[str, str]], limit: int, rng: np.random.Generator) -> list[str]:
    """Interface strings of a catalogue: 1-4 translated words, no format specifier or
    sentence, mnemonic markers (``_Fichier``, ``&Datei``) removed as the interface shows
    them; at most ``limit`` of them, a random sample."""
    items = []
    for _, msgstr in pairs:
        text = MNEMONIC.sub("", msgstr.strip())
        if text and 1 <= len(text.split()) <= 4 and not NOT_UI.search(text) and len(text) < 40:
            items.append(text)
    items = list(dict.fromkeys(items))
    if len(items) > limit:
        items = [items[i] for i in sorted(rng.choice(len(items), limit, replace=False))]
    return items


def menus(items: list[str], rng: np.random.Generator) -> str:
    """Menus, button rows, navigation bars and breadcrumbs of ``items``, in a random order."""
    order = [items[i] for i in rng.permutation(len(items))]
    out, i = [], 0
    while i < len(order):
        size = int(rng.integers(3, 13))
        group, i = order[i:i + size], i + size
        style = rng.random()
        if style < 0.45:
            out.append("\n".join(group))
        elif style < 0.7:
            out.append(str(rng.choice([" | ", " · ", "  ", " • ", " / "])).join(group))
        elif style < 0.85:
            out.append(" ".join(f"[ {g} ]" for g in group))
        else:
            out.append(" > ".join(group[:4]))
    return "\n\n".join(out)


def furniture_once(pages: list[Page]) -> Iterator[str]:
    """Per page: its furniture, each block (between blank lines) once over all pages (the
    translators' credits repeat on every page)."""
    seen: set[str] = set()
    for page in pages:
        parts = []
        for block in furniture(page).split("\n\n"):
            flat = " ".join(block.split())
            if flat and flat not in seen:
                seen.add(flat)
                parts.append(block)
        yield "\n\n".join(parts)


def example_code(pages: list[Page]) -> Iterator[str]:
    """Per page: its examples sections without their running-prose paragraphs."""
    for page in pages:
        text = examples(page)
        if text:
            kept = ["\n".join(b) for b in blocks(text.split("\n")) if not is_prose(b)]
            yield "\n\n".join(kept)


def source_text(text: str) -> str:
    """A source file without its licence header (the first comment block of 8+ lines)."""
    lines = text.split("\n")
    start = 0
    while start < len(lines) and (not lines[start].strip() or lines[start].startswith("#!")):
        start += 1
    end = start
    while end < len(lines) and re.match(r"\s*(#|/\*|\*|//)", lines[end]):
        end += 1
    return "\n".join(lines[end if end - start >= 8 else 0:])


def name_lines(pages: list[Page]) -> list[str]:
    out = []
    for page in pages:
        for lines in page.section(frozenset(("NOM", "NAME", "BEZEICHNUNG"))):
            line = " ".join(" ".join(x.split()) for x in lines)
            if line:
                out.append(line)
    return sorted(set(out))


def terms(pairs: list[tuple[str, str]]) -> list[str]:
    """Index-like terms of a catalogue: translations of 1-3 words without specifiers."""
    out = []
    for _, msgstr in pairs:
        text = MNEMONIC.sub("", msgstr.strip()).rstrip(":").strip()
        if text and len(text.split()) <= 3 and not NOT_UI.search(text) and any(
                c.isalpha() for c in text):
            out.append(text)
    return out


def mojibake(text: str, rng: np.random.Generator) -> str | None:
    """``text`` encoded as UTF-8 and decoded as cp1252 or Latin-1, wholly or a run of its
    sentences (30-70% of them), sometimes twice; None when too little of it changes."""
    table = CP1252 if rng.random() < 0.6 else [chr(b) for b in range(256)]
    rounds = 2 if rng.random() < 0.15 else 1

    def garble(part: str) -> str:
        for _ in range(rounds):
            part = "".join(table[b] for b in part.encode("utf-8"))
        return part

    if rng.random() < 0.5:
        target = text
        out = garble(text)
    else:
        parts = re.split(r"(?<=[.!?:])(\s+)", text)
        spans = list(range(0, len(parts), 2))
        k = max(1, int(round(len(spans) * rng.uniform(0.3, 0.7))))
        first = int(rng.integers(0, len(spans) - k + 1))
        chosen = set(spans[first:first + k])
        target = "".join(p for i, p in enumerate(parts) if i in chosen)
        out = "".join(garble(p) if i in chosen else p for i, p in enumerate(parts))
    if sum(not c.isascii() for c in target) < 3:
        return None
    return out


def shuffled_sentences(text: str, rng: np.random.Generator) -> str | None:
    """``text``'s sentences (2 or more) in another order, poured back into its paragraphs,
    each keeping its number of sentences."""
    paragraphs = [sentences(p) for p in text.split("\n\n")]
    flat = [s for p in paragraphs for s in p]
    if len(flat) < 2:
        return None
    order = rng.permutation(len(flat))
    if (order == np.arange(len(flat))).all():
        order = order[::-1]
    moved = iter([flat[i] for i in order])
    return "\n\n".join(" ".join(next(moved) for _ in p) for p in paragraphs)


def repeated_lines(text: str, n: int, rng: np.random.Generator) -> str:
    """A document of ``n`` words of ``text``'s sentences, a line each, repeated: one to
    three sentences over and over, or every sentence stuttered two to four times."""
    lines = [s for p in text.split("\n\n") for s in sentences(p)]
    out: list[str] = []
    if rng.random() < 0.5 or len(lines) < 2:
        k = int(rng.integers(1, min(3, len(lines)) + 1))
        start = int(rng.integers(0, len(lines) - k + 1))
        block = lines[start:start + k]
        while sum(len(x.split()) for x in out) < n:
            out += block
    else:
        times = int(rng.integers(2, 5))
        while sum(len(x.split()) for x in out) < n:
            for line in lines:
                out += [line] * times
    return truncate("\n".join(out), n)


def shuffled_words(text: str, rng: np.random.Generator) -> str:
    return shuffle_document(text, rng, by_sentence=False)


def take_sentences(paragraphs: list[str], words: int) -> list[str]:
    """Whole sentences from the start of ``paragraphs``, as paragraphs, the cut nearest
    ``words`` words (at least one sentence)."""
    chosen: list[list[str]] = []
    total = 0
    for p in paragraphs:
        chosen.append([])
        for s in sentences(p):
            size = len(s.split())
            if total and abs(total + size - words) > abs(total - words):
                return [" ".join(c) for c in chosen if c]
            chosen[-1].append(s)
            total += size
    return [" ".join(c) for c in chosen if c]


def untranslated(text: str, n: int, english: Callable[[], list[str]],
                 rng: np.random.Generator) -> str | None:
    """A document of ``n`` words (within 15%, or 5 words): a run of sentences of ``text``
    (the run nearest its share of ``n``) with one or more English paragraphs (from
    ``english()``) making up 30-70% of its words, put before, after or between them; None
    when the shares or the length cannot be met."""
    share = rng.uniform(0.3, 0.7)
    own = [sentences(p) for p in text.split("\n\n")]
    starts = [[" ".join(p[j:]), *(" ".join(q) for q in own[i + 1:])]
              for i, p in enumerate(own) for j in range(len(p))]
    native = min((take_sentences(s, round((1 - share) * n)) for s in starts),
                 key=lambda o: abs(sum(len(p.split()) for p in o) - (1 - share) * n))
    n_native = sum(len(p.split()) for p in native)
    need = n - n_native
    if not 0.3 * n <= need <= 0.7 * n:
        return None
    offered = english()
    options = [take_sentences(offered[i:], need) for i in range(len(offered))]
    if not options:
        return None
    foreign = min(options, key=lambda o: abs(sum(len(p.split()) for p in o) - need))
    n_foreign = sum(len(p.split()) for p in foreign)
    if not (0.3 <= n_foreign / (n_native + n_foreign) <= 0.7
            and abs(n_native + n_foreign - n) <= max(5, 0.15 * n)):
        return None
    sents = [s for p in native for s in sentences(p)]
    where = rng.random()
    if where < 0.35:
        parts = foreign + native
    elif where < 0.7 or len(sents) < 2:
        parts = native + foreign
    else:
        cut = int(rng.integers(1, len(sents)))
        parts = [" ".join(sents[:cut]), *foreign, " ".join(sents[cut:])]
    return "\n\n".join(parts)


def derived(make: Callable[[str, int], str | None], raw: list[str], lengths: np.ndarray,
            rng: np.random.Generator, admit: Callable[[str], bool], want: int) -> list[str]:
    """Up to ``want`` documents ``make(raw_doc, n)``: ``n`` a draw from ``lengths``, the raw
    document the unused one nearest ``n`` words long (the first in ``raw`` on a tie); a raw
    document that makes nothing is dropped and the next nearest tried with the same ``n``."""
    out: list[str] = []
    left = list(raw)
    sizes = np.array([len(t.split()) for t in left])
    n = int(rng.choice(lengths))
    while len(out) < want and left:
        i = int(np.argmin(np.abs(sizes - n)))
        doc = left.pop(i)
        sizes = np.delete(sizes, i)
        made = make(doc, n)
        if made is not None and admit(made):
            out.append(made)
            n = int(rng.choice(lengths))
    return out
