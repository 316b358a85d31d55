"""The Linux man-pages project (``manpages`` / ``manpages-dev``), rendered with ``man``."""

from __future__ import annotations

import gzip
import os
import re
import subprocess
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from demo_corpus.common import (
    MAN_BODY_INDENT,
    MAN_DIR,
    MAN_MIN_WORDS,
    MAN_PACKAGES,
    MAN_SKIP_SECTIONS,
    MAN_WIDTH,
    PARAGRAPH_MIN_WORDS,
    Record,
    chunk_paragraphs,
    collapse,
    is_prose,
    looks_like_code,
    number_records,
    package_files,
    word_count,
)


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
