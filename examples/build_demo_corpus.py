#!/usr/bin/env python3
"""Build a small, real, multi-domain English demo corpus from installed Debian packages.

The corpus mixes four domains, each read from text that ships with Debian 12:

* ``fortunes``    -- quotations and jokes from ``fortunes`` / ``fortunes-min``;
* ``bible``       -- the King James Version from ``sword-text-kjv`` (read with ``diatheke``);
* ``python_docs`` -- the reStructuredText sources of the Python documentation (``python3-doc``);
* ``manpages``    -- the Linux man-pages project (``manpages`` / ``manpages-dev``), rendered
  with ``man`` and ``col``.

Everything is deterministic: every "random" choice is a keyed BLAKE2b hash of a stable string,
so the same installed packages always give byte-identical Parquet files.

Outputs (under ``--out``, default ``examples/demo``)::

    corpus/part-0000{0..3}.parquet   generalist pool, all domains mixed, hash-sharded by id
    specialist/python_docs.parquet   python_docs records held out of the pool
    heldout/python_docs.parquet      further python_docs records held out of both
    SOURCES.md                       provenance, versions, licences and counts

Usage::

    apt-get install fortunes fortunes-min sword-text-kjv diatheke python3-doc \\
        manpages manpages-dev man-db
    python examples/build_demo_corpus.py [--out examples/demo]
"""

import argparse
import gzip
import hashlib
import os
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

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


# --------------------------------------------------------------------------- helpers


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


# --------------------------------------------------------------------------- fortunes


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


# --------------------------------------------------------------------------- bible

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


# --------------------------------------------------------------------------- python docs

ADORNMENT_RE = re.compile(r"^\s*([=\-~^*#\"'`:+_.<>])\1{2,}\s*$")
TABLE_RULE_RE = re.compile(r"^\s*[=\-+|]{3,}[=\-+|\s]*$")
DIRECTIVE_RE = re.compile(r"^\s*\.\.\s+(?P<name>[\w:-]+)::\s*(?P<arg>.*)$")
OPTION_RE = re.compile(r"^\s*:[\w -]+:(\s|$)")
ROLE_RE = re.compile(r":(?P<name>[\w.+-]+(?::[\w.+-]+)*):`(?P<body>[^`]+)`")
LINK_RE = re.compile(r"`(?P<text>[^`<]+?)\s*<[^>`]+>`_{1,2}")
REF_RE = re.compile(r"`(?P<text>[^`]+)`_{1,2}")
FOOTNOTE_RE = re.compile(r"\s*\[(?:#\w*|\d+|\*)\]_")
VERSION_RE = re.compile(r"^[\d.,\s]+$")

# Directives whose following indented body is code, a table of contents or raw data.
SKIP_BODY_DIRECTIVES = frozenset(
    {
        "code-block", "sourcecode", "code", "testcode", "testoutput", "testsetup",
        "testcleanup", "doctest", "productionlist", "literalinclude", "toctree", "highlight",
        "csv-table", "list-table", "table", "raw", "include", "audit-event-table",
    }
)  # fmt: skip
# Directives whose own block holds prose worth keeping.
PROSE_DIRECTIVES = frozenset(
    {
        "note", "warning", "seealso", "versionadded", "versionchanged", "deprecated",
        "deprecated-removed", "impl-detail", "important", "tip", "caution", "attention",
        "hint", "admonition", "topic", "sidebar", "danger", "error",
    }
)  # fmt: skip


def indent_of(lines: Sequence[str]) -> int:
    """Smallest indentation among the non-blank ``lines``."""
    return min(len(line) - len(line.lstrip()) for line in lines if line.strip())


def clean_inline(text: str) -> str:
    """Reduce inline reStructuredText markup to the text a reader would see."""

    def role(match: re.Match[str]) -> str:
        body = match["body"].strip()
        titled = re.match(r"^(?P<title>.+?)\s*<[^>]+>$", body, flags=re.DOTALL)
        body = titled["title"] if titled else body
        body = body.lstrip("!")
        if match["name"] in ("rfc", "pep"):
            return f"{match['name'].upper()} {body.split('#')[0]}"
        return body[1:].rsplit(".", 1)[-1] if body.startswith("~") else body

    text = ROLE_RE.sub(role, text)
    text = text.replace("``", "")
    text = LINK_RE.sub(lambda m: m["text"], text)
    text = REF_RE.sub(lambda m: m["text"], text)
    text = FOOTNOTE_RE.sub("", text)
    text = text.replace("\\ ", "")  # an escaped space joins its neighbours
    text = re.sub(r"\\([*|_`])", r"\1", text)
    text = re.sub(r"(?<=[A-Za-z])\\(?=s\b)", "", text)  # plural of a role: ``x``\s
    text = re.sub(r"\*\*(?P<strong>[^*]+)\*\*", lambda m: m["strong"], text)
    text = re.sub(r"\s+::$", "", text)
    return re.sub(r"::$", ":", text)


def drop_markup_lines(lines: Sequence[str]) -> list[str]:
    """Remove section titles with their adornment, table rules and directive options."""
    kept = []
    for i, line in enumerate(lines):
        next_line = lines[i + 1] if i + 1 < len(lines) else ""
        if ADORNMENT_RE.match(line) or TABLE_RULE_RE.match(line) or OPTION_RE.match(line):
            continue
        if line.strip() and ADORNMENT_RE.match(next_line):
            continue  # a section title
        kept.append(line)
    return kept


def directive_prose(lines: Sequence[str]) -> list[str]:
    """The prose inside a block that starts with a directive, or ``[]`` if there is none."""
    match = DIRECTIVE_RE.match(lines[0])
    if match is None or match["name"] not in PROSE_DIRECTIVES:
        return []  # comments, labels and signature directives carry no prose
    arg = match["arg"].strip()
    first = [arg] if arg and not VERSION_RE.match(arg) else []
    return first + list(lines[1:])


def rst_blocks(source: str) -> list[list[str]]:
    """Blocks of non-blank lines, also split where an explicit markup line (``..``) starts."""
    blocks = []
    for block in re.split(r"\n[ \t]*\n", source):
        current: list[str] = []
        for line in block.splitlines():
            if not line.strip():
                continue
            if current and line.lstrip().startswith(".. "):
                blocks.append(current)
                current = []
            current.append(line)
        if current:
            blocks.append(current)
    return blocks


def rst_paragraphs(source: str) -> list[str]:
    """Prose paragraphs of one reStructuredText file, markup removed, whitespace collapsed."""
    paragraphs = []
    skip_deeper_than: int | None = None
    for lines in rst_blocks(source):
        indent = indent_of(lines)
        if skip_deeper_than is not None and indent > skip_deeper_than:
            continue  # body of a literal block or of a code/toctree directive
        skip_deeper_than = None
        directive = DIRECTIVE_RE.match(lines[0])
        if directive and directive["name"] in SKIP_BODY_DIRECTIVES:
            skip_deeper_than = indent
            continue
        if lines[0].lstrip().startswith(".."):
            lines = directive_prose(lines)
        if lines and lines[-1].rstrip().endswith("::"):
            skip_deeper_than = indent
        lines = drop_markup_lines(lines)
        if not lines or looks_like_code(lines) or lines[0].lstrip().startswith(("|", "+")):
            continue
        text = collapse(clean_inline(collapse(" ".join(lines))))
        if word_count(text) >= PARAGRAPH_MIN_WORDS and is_prose(text):
            paragraphs.append(text)
    return paragraphs


def pydoc_subdomain(path: Path) -> str:
    """Top-level folder of a documentation source, or ``other`` for top-level files."""
    parts = path.relative_to(PYDOC_DIR).parts
    return parts[0] if len(parts) > 1 else "other"


def read_python_docs() -> list[Record]:
    """Chunks of Python documentation prose, with subdomain = top-level folder."""
    paths = sorted(PYDOC_DIR.rglob("*.rst.txt"), key=lambda p: (pydoc_subdomain(p), str(p)))
    if not paths:
        raise SystemExit(f"no documentation sources under {PYDOC_DIR}")
    source = owner_package(paths[0])
    items = []
    for path in paths:
        text = path.read_text(encoding="utf-8", errors="replace")
        for chunk in chunk_paragraphs(rst_paragraphs(text)):
            items.append((pydoc_subdomain(path), chunk, source))
    return number_records("python_docs", items)


# --------------------------------------------------------------------------- man pages


def man_pages() -> list[tuple[str, str]]:
    """``(path, package)`` for every regular man page file of ``MAN_PACKAGES``, sorted."""
    pages = []
    for package in MAN_PACKAGES:
        for name in package_files(package):
            path = Path(name)
            in_section = path.parent.parent == MAN_DIR and path.parent.name.startswith("man")
            if in_section and path.is_file() and not path.is_symlink():
                pages.append((name, package))
    return sorted(pages)


def is_redirect(path: str) -> bool:
    """True when a man page source only points at another page with ``.so``."""
    data = Path(path).read_bytes()
    if path.endswith(".gz"):
        data = gzip.decompress(data)
    for line in data.decode("utf-8", errors="replace").splitlines():
        if line.startswith(".so "):
            return True
        if line.strip() and not line.startswith(('.\\"', "'\\\"")):
            return False
    return False


def man_environment() -> dict[str, str]:
    """Environment that makes ``man`` render plain, fixed-width UTF-8 text."""
    env = dict(os.environ)
    env.update({"MANWIDTH": str(MAN_WIDTH), "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"})
    env.update({"MANPAGER": "cat", "PAGER": "cat"})
    env.pop("MAN_KEEP_FORMATTING", None)
    return env


def render_man(path: str) -> str:
    """Render one man page to plain text: ``man -E UTF-8 --nh --nj -l FILE | col -bx``."""
    env = man_environment()
    man = subprocess.run(
        ["man", "-E", "UTF-8", "--nh", "--nj", "-l", path], capture_output=True, env=env
    )
    col = subprocess.run(["col", "-bx"], input=man.stdout, capture_output=True, env=env)
    return col.stdout.decode("utf-8", errors="replace")


def join_hyphenated(lines: Sequence[str]) -> list[str]:
    """Join lines broken after a compound-word hyphen (``lowest-`` / ``numbered``)."""
    joined: list[str] = []
    for line in lines:
        stripped = line.strip()
        previous = joined[-1] if joined else ""
        if re.search(r"[a-z]-$", previous) and stripped[:1].islower():
            joined[-1] = previous + stripped
        else:
            joined.append(stripped)
    return joined


def man_paragraphs(rendered: str) -> list[str]:
    """Prose paragraphs of a rendered man page.

    The page header and footer, section titles, the SYNOPSIS and EXAMPLES sections and
    code-like paragraphs are left out.
    """
    rendered = rendered.replace("\u2010", "-").replace("\u2011", "-").replace("\u2212", "-")
    lines = rendered.splitlines()
    content = [i for i, line in enumerate(lines) if line.strip()]
    if len(content) < 3:
        return []
    body = lines[content[0] + 1 : content[-1]]  # drop the page header and footer
    blocks: list[list[str]] = [[]]
    section = ""
    for line in body:
        indent = len(line) - len(line.lstrip())
        if line.strip() and indent == 0:
            section = line.strip()
        if not line.strip() or indent < MAN_BODY_INDENT:  # blank line or (sub)section title
            blocks.append([])
        elif section not in MAN_SKIP_SECTIONS:
            blocks[-1].append(line)
    paragraphs = []
    for block in blocks:
        if not block or looks_like_code(block):
            continue
        text = collapse(" ".join(join_hyphenated(block)))
        if word_count(text) >= PARAGRAPH_MIN_WORDS and is_prose(text):
            paragraphs.append(text)
    return paragraphs


def read_manpages(jobs: int) -> list[Record]:
    """Chunks of man page prose, with subdomain = man section."""
    pages = [(path, pkg) for path, pkg in man_pages() if not is_redirect(path)]
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        rendered = list(pool.map(render_man, [path for path, _ in pages]))
    items = []
    for (path, package), text in zip(pages, rendered, strict=True):
        if word_count(text) < MAN_MIN_WORDS:
            continue
        section = Path(path).parent.name
        items.extend((section, chunk, package) for chunk in chunk_paragraphs(man_paragraphs(text)))
    return number_records("manpages", items)


# --------------------------------------------------------------------------- selection


def natural_order(records: Iterable[Record]) -> list[Record]:
    """Records sorted by ``(subdomain, position)``."""
    return sorted(records, key=lambda r: (r.subdomain, r.position))


def split_domain(records: Sequence[Record]) -> Split:
    """Pick a deterministic pool (and, for the specialist domain, held-out sets)."""
    domain = records[0].domain if records else ""
    ranked = sorted(records, key=lambda r: (keyed_hash(f"select/{domain}/{r.id}"), r.id))
    held, special = 0, 0
    if domain == SPECIALIST_DOMAIN:
        held, special = HELDOUT_SIZE, SPECIALIST_SIZE
    return Split(
        candidates=len(records),
        pool=natural_order(ranked[held + special : held + special + POOL_CAP]),
        specialist=natural_order(ranked[held : held + special]),
        heldout=natural_order(ranked[:held]),
    )


def shard_of(record: Record) -> int:
    """Pool shard of a record, from a hash of its id."""
    return keyed_hash(record.id) % NUM_SHARDS


# --------------------------------------------------------------------------- output


def write_records(records: Sequence[Record], path: Path) -> None:
    """Write records to a zstd-compressed Parquet file with the fixed schema."""
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = {
        "id": [r.id for r in records],
        "text": [r.text for r in records],
        "domain": [r.domain for r in records],
        "subdomain": [r.subdomain for r in records],
        "source": [r.source for r in records],
    }
    table = pa.Table.from_pydict(columns, schema=SCHEMA)
    pq.write_table(table, path, compression="zstd", use_dictionary=True)


def write_pool(pool: Sequence[Record], out: Path) -> None:
    """Write the pool as ``NUM_SHARDS`` shards, rows ordered by id within each shard."""
    corpus = out / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    for old in corpus.glob("part-*.parquet"):
        old.unlink()
    for shard in range(NUM_SHARDS):
        rows = sorted((r for r in pool if shard_of(r) == shard), key=lambda r: r.id)
        write_records(rows, corpus / f"part-{shard:05d}.parquet")


def domain_table(splits: dict[str, Split], versions: dict[str, str]) -> list[str]:
    """Markdown table: package, licence and counts of every domain."""
    lines = [
        "| domain | Debian package (version) | licence | candidates | pool records | pool words |",
        "|---|---|---|---:|---:|---:|",
    ]
    for domain in DOMAINS:
        split = splits[domain]
        packages = sorted({r.source for r in split.pool})
        pkgs = ", ".join(f"`{p}` {versions[p]}" for p in packages)
        words = sum(word_count(r.text) for r in split.pool)
        row = [f"`{domain}`", pkgs, LICENCES[domain], str(split.candidates)]
        lines.append("| " + " | ".join([*row, str(len(split.pool)), str(words)]) + " |")
    return lines


def sources_markdown(splits: dict[str, Split], versions: dict[str, str], module: str) -> str:
    """The text of ``SOURCES.md``: provenance, versions, licences and counts."""
    special = splits[SPECIALIST_DOMAIN]
    total = sum(len(s.pool) for s in splits.values())
    installed = [f"`{p}` {versions[p] or '(not installed)'}" for p in APT_PACKAGES]
    lines = [
        "# Demo corpus: sources",
        "",
        "A small multi-domain English corpus built only from text shipped in Debian 12",
        "packages. It is generated by `examples/build_demo_corpus.py`; do not edit the",
        "files by hand.",
        "",
        *domain_table(splits, versions),
        "",
        f"Pool total: {total} records in {NUM_SHARDS} shards. `candidates` counts every",
        "usable record of the domain before selection.",
        "",
        "## Domains",
        "",
        *[f"- `{domain}`: {DESCRIPTIONS[domain]}" for domain in DOMAINS],
        "",
        f"The Bible is read from the SWORD module `{module}`. The Python documentation files",
        "belong to the package that `python3-doc` depends on.",
        "",
        "Packages installed when this corpus was built: " + ", ".join(installed) + ".",
        "",
        "## Files",
        "",
        f"- `corpus/part-00000.parquet` ... `part-{NUM_SHARDS - 1:05d}.parquet`: the generalist"
        " pool, all domains mixed, rows ordered by id within a shard.",
        f"- `specialist/{SPECIALIST_DOMAIN}.parquet`: {len(special.specialist)} "
        f"`{SPECIALIST_DOMAIN}` records that are not in the pool.",
        f"- `heldout/{SPECIALIST_DOMAIN}.parquet`: {len(special.heldout)} further "
        f"`{SPECIALIST_DOMAIN}` records, in neither the pool nor the specialist sample.",
        "",
        "Columns: `id` (`domain/subdomain-slug/index`, the index running over all candidate",
        "records of that subdomain in natural order), `text`, `domain`, `subdomain`, `source`",
        "(the Debian package the text was read from).",
        "",
        "## Selection",
        "",
        "`h(s)` below is the 8-byte BLAKE2b digest of the UTF-8 string `s`, read as a",
        f"big-endian integer. Each domain is capped at {POOL_CAP} pool records: candidates are",
        'ranked by `h("select/<domain>/<id>")`; for the specialist domain the first ranks go',
        "to the held-out set, the next to the specialist sample and the rest (up to the cap)",
        f"to the pool. A pool record goes to shard `h(id) % {NUM_SHARDS}`. No random number",
        "generator is used: the same installed packages give byte-identical files.",
        "",
        "## Processing",
        "",
        *[f"- {note}" for note in NOTES],
        "",
        "## Rebuild",
        "",
        "```sh",
        "apt-get install " + " ".join(APT_PACKAGES),
        "python examples/build_demo_corpus.py --out examples/demo",
        "```",
        "",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def build(out: Path, jobs: int) -> dict[str, Split]:
    """Read every domain, split it and write all outputs under ``out``."""
    module = find_sword_module()
    readers: dict[str, Callable[[], list[Record]]] = {
        "fortunes": read_fortunes,
        "bible": lambda: read_bible(module),
        "python_docs": read_python_docs,
        "manpages": lambda: read_manpages(jobs),
    }
    splits = {domain: split_domain(readers[domain]()) for domain in DOMAINS}
    write_pool([r for s in splits.values() for r in s.pool], out)
    special = splits[SPECIALIST_DOMAIN]
    write_records(special.specialist, out / "specialist" / f"{SPECIALIST_DOMAIN}.parquet")
    write_records(special.heldout, out / "heldout" / f"{SPECIALIST_DOMAIN}.parquet")
    packages = {r.source for s in splits.values() for r in s.pool} | set(APT_PACKAGES)
    versions = {p: package_version(p) for p in sorted(packages)}
    text = sources_markdown(splits, versions, module)
    (out / "SOURCES.md").write_text(text, encoding="utf-8")
    return splits


def summarise(splits: dict[str, Split]) -> None:
    """Print one line per domain with its record and word counts."""
    for domain, split in splits.items():
        words = sum(word_count(r.text) for r in split.pool)
        extra = ""
        if split.specialist or split.heldout:
            extra = f" (+{len(split.specialist)} specialist, +{len(split.heldout)} held out)"
        counts = f"{len(split.pool):6d} records (of {split.candidates:5d}) {words:9d} words"
        print(f"{domain:12s} {counts}{extra}")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    default_out = Path(__file__).resolve().parent / "demo"
    parser.add_argument("--out", type=Path, default=default_out, help="output folder")
    parser.add_argument("--jobs", type=int, default=2, help="parallel man page renderers")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Build the demo corpus and print a summary."""
    args = parse_args(argv)
    started = time.monotonic()
    splits = build(args.out, args.jobs)
    summarise(splits)
    print(f"wrote {args.out} in {time.monotonic() - started:.1f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
