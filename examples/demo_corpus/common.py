"""What every source of the demo corpus shares: records, splits, the settings, hashing and
the chunking of prose into documents."""

from __future__ import annotations

import hashlib
import re
import subprocess
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

FORTUNE_DIR = Path("/usr/share/games/fortunes")
# ``ascii-art`` is pictures, not prose; ``translate-me`` is mostly Latin.
FORTUNE_SKIP = frozenset({"ascii-art", "translate-me"})
FORTUNE_PACKAGES = ("fortunes", "fortunes-min")
FORTUNE_MIN_WORDS = 5

SWORD_MODULES = ("KJV", "engKJV2006eb")
SWORD_CONF_DIR = Path("/usr/share/sword/mods.d")
BIBLE_RANGE = "Gen 1:1-Rev 22:21"
PASSAGE_MAX_WORDS = 150

PYDOC_DIR = Path("/usr/share/doc/python3.11/html/_sources")
MAN_PACKAGES = ("manpages", "manpages-dev")
MAN_DIR = Path("/usr/share/man")
MAN_WIDTH = 100
MAN_BODY_INDENT = 7
MAN_MIN_WORDS = 20
MAN_SKIP_SECTIONS = frozenset({"SYNOPSIS", "EXAMPLE", "EXAMPLES"})  # mostly C code and shell

CHUNK_MIN_WORDS = 80
CHUNK_MAX_WORDS = 200
PARAGRAPH_MIN_WORDS = 4
CHUNK_FLOOR_WORDS = 30  # documents whose whole prose is shorter than this are dropped

POOL_CAP = 2500
SPECIALIST_DOMAIN = "python_docs"
SPECIALIST_SIZE = 150
HELDOUT_SIZE = 300
NUM_SHARDS = 4

SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("text", pa.string()),
        ("domain", pa.string()),
        ("subdomain", pa.string()),
        ("source", pa.string()),
    ]
)

LICENCES = {
    "fortunes": "BSD licence of fortune-mod (see /usr/share/doc/fortunes/copyright); "
    "the sayings themselves are short quotations, largely public domain",
    "bible": "public domain (outside the UK, where the Crown's letters patent apply; "
    "see /usr/share/doc/sword-text-kjv/copyright)",
    "python_docs": "PSF License Agreement (see /usr/share/doc/python3.11/copyright)",
    "manpages": "various free licences of the Linux man-pages project (GPL, BSD, MIT and the "
    "Linux-man-pages-copyleft licence; see /usr/share/doc/manpages/copyright)",
}

DESCRIPTIONS = {
    "fortunes": "Quotations, jokes and aphorisms from the BSD `fortune` databases; "
    "one record per fortune (at least 5 words). Subdomain: the fortune file (category).",
    "bible": "The King James Version; consecutive verses of one chapter grouped into passages "
    "of up to about 150 words. Subdomain: the book.",
    "python_docs": "Prose of the Python 3.11 documentation (reStructuredText sources), "
    "paragraphs merged into chunks of about 80-200 words. Subdomain: top-level folder "
    "(`library`, `reference`, `tutorial`, ...; `other` for top-level files).",
    "manpages": "Linux man pages (sections 1-8) rendered as plain text, paragraphs merged into "
    "chunks of about 80-200 words. Subdomain: the man section (`man2`, ...).",
}

DOMAINS = ("fortunes", "bible", "python_docs", "manpages")
APT_PACKAGES = (
    "fortunes", "fortunes-min", "sword-text-kjv", "diatheke", "python3-doc",
    "manpages", "manpages-dev", "man-db",
)  # fmt: skip

NOTES = (
    "Whitespace runs inside a paragraph are collapsed to one space; merged paragraphs are "
    "separated by a blank line (`\\n\\n`).",
    "`fortunes`: backspace overstriking is removed; the files `ascii-art` (pictures) and "
    "`translate-me` (mostly Latin) are skipped.",
    "`bible`: only verse text is kept. In plain mode `diatheke` repeats stale section titles "
    "(psalm titles) before later verses, so all titles are dropped; pilcrows are removed.",
    "`python_docs`: directives, labels, comments, section titles, tables, literal and code "
    "blocks are dropped; inline roles are reduced to their text (`:rfc:` and `:pep:` become "
    "`RFC n` / `PEP n`).",
    "`manpages`: rendered with `MANWIDTH=100 man -E UTF-8 --nh --nj -l FILE | col -bx`; pages "
    "that are `.so` redirects, the page header and footer, section titles and the SYNOPSIS "
    "and EXAMPLES sections (mostly code) are dropped.",
    "Over-long paragraphs are cut at sentence ends; documents with under 30 words of prose "
    "are dropped.",
)


@dataclass(frozen=True)
class Record:
    """One text of the corpus, with its place in the natural order of its domain."""

    domain: str
    subdomain: str
    position: int
    text: str
    source: str

    @property
    def id(self) -> str:
        """Stable identifier: ``domain/subdomain-slug/position``."""
        return f"{self.domain}/{slugify(self.subdomain)}/{self.position:06d}"


@dataclass(frozen=True)
class Split:
    """The records of one domain, divided between pool, specialist and held-out sets."""

    candidates: int
    pool: list[Record]
    specialist: list[Record]
    heldout: list[Record]




def slugify(name: str) -> str:
    """Lower-case ``name`` and replace runs of non-alphanumerics with ``-``."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def keyed_hash(key: str) -> int:
    """A stable 64-bit integer derived from ``key`` (BLAKE2b)."""
    return int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest(), "big")


def word_count(text: str) -> int:
    """Number of whitespace-separated words in ``text``."""
    return len(text.split())


def collapse(text: str) -> str:
    """Collapse every run of whitespace to one space and strip the ends."""
    return " ".join(text.split())


def run_command(args: Sequence[str]) -> str:
    """Run ``args`` and return its standard output decoded as UTF-8."""
    done = subprocess.run(args, capture_output=True, check=True)
    return done.stdout.decode("utf-8", errors="replace")


def package_files(package: str) -> set[str]:
    """Paths installed by a Debian package, from ``dpkg -L``."""
    return set(run_command(["dpkg", "-L", package]).splitlines())


def package_version(package: str) -> str:
    """Installed version of a Debian package, from ``dpkg-query`` (``""`` if not installed)."""
    try:
        return run_command(["dpkg-query", "-W", "-f=${Version}", package]).strip()
    except subprocess.CalledProcessError:
        return ""


def owner_package(path: Path) -> str:
    """The Debian package that installed ``path``, from ``dpkg -S``."""
    line = run_command(["dpkg", "-S", str(path)]).splitlines()[0]
    return line.split(":", 1)[0].split(",")[0].strip()


def is_prose(text: str) -> bool:
    """True when most words contain a letter (rules out tables of numbers and symbols)."""
    words = text.split()
    if not words:
        return False
    wordy = sum(1 for word in words if any(ch.isalpha() for ch in word))
    return wordy / len(words) >= 0.7


CODE_LINE_RE = re.compile(
    r"^\s*(>>>|\.\.\.\s|#\s*include|#\s*define|\$ |/\*|[{}]\s*$)"  # prompts, comments, braces
    r"|[;{]\s*$|\*/\s*$"  # statement or block ends, trailing comments
    r"|^\s*\w+\s*\(.*\)\s*;?\s*$"  # a bare call
)


def looks_like_code(lines: Sequence[str]) -> bool:
    """True when at least half of the non-blank lines look like source code or a shell session."""
    lines = [line for line in lines if line.strip()]
    if not lines:
        return False
    code = sum(1 for line in lines if CODE_LINE_RE.search(line))
    return code * 2 >= len(lines)


def split_sentences(text: str, max_words: int) -> list[str]:
    """Split an over-long paragraph at sentence ends into pieces of at most ``max_words``."""
    sentences = re.split(r"(?<=[.!?])\s+(?=[A-Z(\"'])", text)
    pieces: list[str] = []
    current: list[str] = []
    for sentence in sentences:
        words = sentence.split()
        while len(words) > max_words:  # a single giant "sentence": cut it by words
            pieces.extend([" ".join(current)] if current else [])
            current = []
            pieces.append(" ".join(words[:max_words]))
            words = words[max_words:]
        if current and len(current) + len(words) > max_words:
            pieces.append(" ".join(current))
            current = []
        current.extend(words)
    if current:
        pieces.append(" ".join(current))
    return pieces


def chunk_paragraphs(
    paragraphs: Iterable[str],
    min_words: int = CHUNK_MIN_WORDS,
    max_words: int = CHUNK_MAX_WORDS,
) -> list[str]:
    """Merge consecutive paragraphs into chunks of about ``min_words``-``max_words`` words.

    Paragraphs are joined with a blank line. Over-long paragraphs are first cut at sentence
    ends. A short tail is folded into the previous chunk when that keeps it reasonably sized.
    """
    units = [piece for para in paragraphs for piece in split_sentences(para, max_words)]
    if sum(map(word_count, units)) < CHUNK_FLOOR_WORDS:
        return []
    chunks: list[list[str]] = []
    current: list[str] = []
    size = 0
    for unit in units:
        n = word_count(unit)
        if current and size + n > max_words and size >= min_words:
            chunks.append(current)
            current, size = [], 0
        current.append(unit)
        size += n
    if current:
        tail_fits = bool(chunks) and size < min_words
        tail_fits = tail_fits and sum(map(word_count, chunks[-1])) + size <= max_words * 3 // 2
        if tail_fits:
            chunks[-1].extend(current)
        else:
            chunks.append(current)
    return ["\n\n".join(chunk) for chunk in chunks]


def number_records(domain: str, items: Iterable[tuple[str, str, str]]) -> list[Record]:
    """Turn ``(subdomain, text, source)`` items, in natural order, into numbered records."""
    counters: Counter[str] = Counter()
    records = []
    for subdomain, text, source in items:
        records.append(Record(domain, subdomain, counters[subdomain], text, source))
        counters[subdomain] += 1
    return records
