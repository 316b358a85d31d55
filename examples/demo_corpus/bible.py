"""The King James Version from ``sword-text-kjv``, read with ``diatheke``, in passages."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from demo_corpus.common import (
    BIBLE_RANGE,
    PASSAGE_MAX_WORDS,
    SWORD_CONF_DIR,
    SWORD_MODULES,
    Record,
    collapse,
    number_records,
    owner_package,
    run_command,
    word_count,
)

VERSE_RE = re.compile(r"^\s*(?P<book>\S.*?) (?P<chapter>\d+):(?P<verse>\d+): (?P<text>.*)$")


def find_sword_module() -> str:
    """The first installed SWORD module name from ``SWORD_MODULES`` that yields Genesis 1:1."""
    for module in SWORD_MODULES:
        out = run_command(["diatheke", "-b", module, "-f", "plain", "-k", "Gen 1:1"])
        if VERSE_RE.search(out.splitlines()[0] if out.strip() else ""):
            return module
    raise SystemExit(f"none of the SWORD modules {SWORD_MODULES} is installed")


def sword_module_package(module: str) -> str:
    """The Debian package that ships the configuration of a SWORD module."""
    for conf in sorted(SWORD_CONF_DIR.glob("*.conf")):
        if conf.stem.lower() == module.lower():
            return owner_package(conf)
    raise SystemExit(f"no configuration for SWORD module {module} in {SWORD_CONF_DIR}")


def read_chapters(module: str) -> list[tuple[str, list[str]]]:
    """The Bible as ``(book, verse texts)`` per chapter, in canonical order.

    Only verse lines are kept: diatheke also prints section titles (e.g. psalm titles),
    but in plain mode it repeats a stale title before many later verses, so they are dropped.
    Paragraph marks (pilcrows) are removed.
    """
    out = run_command(["diatheke", "-b", module, "-f", "plain", "-k", BIBLE_RANGE])
    chapters: list[tuple[str, list[str]]] = []
    current_key: tuple[str, str] | None = None
    for line in out.splitlines():
        match = VERSE_RE.match(line)
        if not match or not match["text"].strip():
            continue
        key = (match["book"], match["chapter"])
        if key != current_key:
            chapters.append((match["book"], []))
            current_key = key
        chapters[-1][1].append(collapse(match["text"].replace("\u00b6", " ")))
    return chapters


def assign_verses(sizes: Sequence[int], parts: int) -> list[int]:
    """Group index of each verse when cutting a chapter into ``parts`` balanced groups."""
    target = sum(sizes) / parts
    groups, seen = [], 0
    for size in sizes:
        groups.append(min(parts - 1, int((seen + size / 2) / target)))
        seen += size
    return groups


def group_verses(verses: Sequence[str], max_words: int = PASSAGE_MAX_WORDS) -> list[str]:
    """Cut a chapter into the fewest balanced, contiguous passages of at most ``max_words``.

    A chapter of more than ``max_words`` words gives passages of roughly ``max_words / 2``
    to ``max_words`` words each; a shorter chapter stays whole.
    """
    sizes = [word_count(v) for v in verses]
    parts = max(1, -(-sum(sizes) // max_words))
    while True:
        groups = assign_verses(sizes, parts)
        totals: Counter[int] = Counter()
        for group, size in zip(groups, sizes, strict=True):
            totals[group] += size
        if max(totals.values()) <= max_words or parts >= len(verses):
            break
        parts += 1
    passages: list[list[str]] = [[] for _ in range(parts)]
    for group, verse in zip(groups, verses, strict=True):
        passages[group].append(verse)
    return [" ".join(passage) for passage in passages if passage]


def read_bible(module: str) -> list[Record]:
    """Bible passages of a SWORD module, never crossing a chapter, with subdomain = book."""
    source = sword_module_package(module)
    items = [
        (book, passage, source)
        for book, verses in read_chapters(module)
        for passage in group_verses(verses)
    ]
    return number_records("bible", items)
