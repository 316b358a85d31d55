"""Fortunes: quotations and jokes from ``fortunes`` / ``fortunes-min``."""

from __future__ import annotations

import re

from demo_corpus.common import (
    FORTUNE_DIR,
    FORTUNE_MIN_WORDS,
    FORTUNE_PACKAGES,
    FORTUNE_SKIP,
    Record,
    collapse,
    number_records,
    package_files,
    word_count,
)


def strip_overstrike(text: str) -> str:
    """Remove backspace overstriking (``_\\bx``) and other stray control characters."""
    while "\b" in text:
        new = re.sub(r"[^\x08]\x08", "", text)
        if new == text:
            new = text.replace("\b", "")
        text = new
    return re.sub(r"[\x00-\x08\x0b-\x1f\x7f]", "", text)


def fortune_records_of(text: str) -> list[str]:
    """Split a fortune file into cleaned records (``%`` separators, paragraphs kept)."""
    records = []
    for raw in re.split(r"^%\s*$", strip_overstrike(text), flags=re.MULTILINE):
        paragraphs = [collapse(p) for p in re.split(r"\n\s*\n", raw)]
        record = "\n\n".join(p for p in paragraphs if p)
        if word_count(record) >= FORTUNE_MIN_WORDS:
            records.append(record)
    return records


def read_fortunes() -> list[Record]:
    """All usable fortunes, one record each, with subdomain = fortune file."""
    owners = {path: pkg for pkg in FORTUNE_PACKAGES for path in package_files(pkg)}
    items = []
    for path in sorted(FORTUNE_DIR.iterdir()):
        usable = path.is_file() and not path.is_symlink() and not path.suffix
        if not usable or path.name in FORTUNE_SKIP or str(path) not in owners:
            continue
        text = path.read_bytes().decode("utf-8", errors="replace")
        items.extend((path.name, rec, owners[str(path)]) for rec in fortune_records_of(text))
    return number_records("fortunes", items)
