"""The reStructuredText sources of the Python documentation (``python3-doc``) as prose."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from demo_corpus.common import (
    PARAGRAPH_MIN_WORDS,
    PYDOC_DIR,
    Record,
    chunk_paragraphs,
    collapse,
    is_prose,
    looks_like_code,
    number_records,
    owner_package,
    word_count,
)

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
