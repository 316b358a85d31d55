"""Reading this machine's French, German and English text for ``bilingual_data.py``: the
translated man pages (manpages-fr, manpages-de) and the English ones (manpages,
manpages-dev), rendered with man(1) and cut into sections; the German fortunes
(fortunes-de); the gettext catalogues under /usr/share/locale/{fr,de}/LC_MESSAGES.

Rendered pages are cached under ~/.cache/tamis-bench/man, one file per page keyed by a
blake2b hash of its path, size and modification time, so a second build does not run man."""

from __future__ import annotations

import gettext
import hashlib
import os
import re
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

CACHE = Path(os.environ.get("TAMIS_BENCH_CACHE", Path.home() / ".cache" / "tamis-bench"))
DPKG_INFO = Path("/var/lib/dpkg/info")
LOCALE = Path("/usr/share/locale")
FORTUNES_DE = Path("/usr/share/games/fortunes/de")
MAN_PACKAGES = {"fr": ("manpages-fr",), "de": ("manpages-de",),
                "en": ("manpages", "manpages-dev")}
#: German fortune files that are not prose: pictures, recipes (ingredient tables), lists of
#: names and of dictionary entries, IRC logs.
FORTUNES_NOT_PROSE = frozenset((
    "asciiart", "beilagen", "brot", "dessert", "hauptgericht", "kalt", "kuchen", "plaetzchen",
    "salat", "sauce", "suppe", "vorspeise", "namen", "vornamen", "woerterbuch", "infodrom",
    "linuxtag", "channel-debian.fortunes", "translations"))

#: Section headings, by role: the name line, cross references, the translators' and authors'
#: credits (boilerplate every translated page carries), usage lines, and examples.
NAME = frozenset(("NOM", "NAME", "BEZEICHNUNG"))
SEE_ALSO = frozenset(("VOIR AUSSI", "SIEHE AUCH", "SEE ALSO"))
CREDITS = frozenset((
    "TRADUCTION", "ÜBERSETZUNG", "AUTEUR", "AUTEURS", "AUTOR", "AUTOREN", "AUTHOR", "AUTHORS",
    "COPYRIGHT", "COLOPHON", "SIGNALER DES BOGUES", "FEHLER MELDEN", "REPORTING BUGS",
    "RAPPORTER DES BOGUES", "RAPPORTS DE BOGUES", "LICENCE", "LIZENZ", "HOMEPAGE",
    "PAGE D'ACCUEIL", "VERSION", "DISPONIBILITÉ", "VERFÜGBARKEIT", "AVAILABILITY"))
SYNOPSIS = frozenset(("SYNOPSIS", "ÜBERSICHT", "RÉSUMÉ", "SYNTAX"))
EXAMPLES = frozenset(("EXEMPLE", "EXEMPLES", "BEISPIEL", "BEISPIELE", "EXAMPLE", "EXAMPLES"))
#: Sections of prose: what a page says about its subject, not its option lists.
PROSE = frozenset((
    "DESCRIPTION", "BESCHREIBUNG", "NOTES", "NOTE", "ANMERKUNGEN", "ANMERKUNG", "HINWEISE",
    "BOGUES", "FEHLER", "BUGS", "HISTORIQUE", "GESCHICHTE", "HISTORY", "VERSIONS",
    "AVERTISSEMENTS", "WARNUNGEN", "SÉCURITÉ", "SICHERHEIT", "CONFORMITÉ", "STANDARDS",
    "KONFORM ZU", "VALEUR RENVOYÉE", "RÜCKGABEWERT", "DÉTAILS", "DETAILS", "INTRODUCTION",
    "EINLEITUNG", "CONCEPTS", "KONZEPTE", "VUE D'ENSEMBLE", "ÜBERBLICK", "OVERVIEW",
    "FONCTIONNEMENT", "ARBEITSWEISE", "CONFIGURATION", "KONFIGURATION", "UTILISATION",
    "VERWENDUNG", "CAVEATS", "LIMITATIONS", "EINSCHRÄNKUNGEN", "RESTRICTIONS"))
HEADING = re.compile(r"^(\S.*\S|\S)\s*$")
SENTENCE_END = re.compile(r"(?<=[.!?…])\s+(?=[«\"'(\[]?[A-ZÀ-ÖØ-Þ])")


@dataclass
class Page:
    """A rendered man page: its name (``at.1``), header and footer lines, and its sections
    in order as (heading, lines), lines as rendered (7 spaces of indentation)."""

    name: str
    header: str = ""
    footer: str = ""
    sections: list[tuple[str, list[str]]] = field(default_factory=list)

    def section(self, headings: frozenset[str]) -> list[list[str]]:
        return [lines for h, lines in self.sections if h in headings]


def key(*parts: object) -> str:
    return hashlib.blake2b("\0".join(map(str, parts)).encode(), digest_size=10).hexdigest()


def man_files(language: str) -> list[Path]:
    """The man page files of the language's packages, symbolic links left out, by path."""
    out = []
    for package in MAN_PACKAGES[language]:
        listed = (DPKG_INFO / f"{package}.list").read_text().split("\n")
        out += [Path(p) for p in listed if p.startswith("/usr/share/man/") and p.endswith(".gz")]
    return sorted(p for p in out if p.is_file() and not p.is_symlink())


def render(path: Path, language: str) -> str:
    """The page as man renders it 100 columns wide, overstrikes removed; cached."""
    st = path.stat()
    cached = CACHE / "man" / language / f"{key(path, st.st_size, st.st_mtime_ns)}.txt"
    if cached.exists():
        return cached.read_text()
    env = {**os.environ, "MANWIDTH": "100", "LC_ALL": "C.UTF-8"}
    man = subprocess.run(["man", "-E", "UTF-8", "--nh", "--nj", "-L", language, "-l",
                          str(path)], capture_output=True, env=env, check=False)
    text = subprocess.run(["col", "-bx"], input=man.stdout, capture_output=True,
                          check=False).stdout.decode("utf-8", errors="replace")
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(cached)
    return text


def parse(name: str, text: str) -> Page:
    """Header, footer and sections of a rendered page (a heading starts at column 0)."""
    lines = text.rstrip("\n").split("\n")
    page = Page(name)
    if lines and lines[0].strip():
        page.header = lines.pop(0).rstrip()
    if lines and lines[-1].strip():
        page.footer = lines.pop().rstrip()
    for line in lines:
        if HEADING.match(line):
            page.sections.append((line.strip().upper(), []))
        elif page.sections:
            page.sections[-1][1].append(line.rstrip())
    return page


def pages(language: str) -> list[Page]:
    """Every page of the language's packages, rendered (two at a time) and parsed."""
    paths = man_files(language)
    with ThreadPoolExecutor(max(2, os.cpu_count() or 2)) as pool:
        texts = list(pool.map(lambda p: render(p, language), paths))
    return [parse(p.name.removesuffix(".gz"), t) for p, t in zip(paths, texts, strict=True)]


def blocks(lines: list[str]) -> list[list[str]]:
    """Lines grouped into blocks between blank lines."""
    out: list[list[str]] = [[]]
    for line in lines:
        if line.strip():
            out[-1].append(line)
        elif out[-1]:
            out.append([])
    return [b for b in out if b]


def indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def is_prose(block: list[str]) -> bool:
    """A running paragraph: every line at one indentation, no column gaps (tables, option
    tags), starts with a letter, ends a sentence, holds 12 words or more."""
    first = indent(block[0])
    if any(indent(line) != first for line in block):
        return False
    text = " ".join(line.strip() for line in block)
    if "   " in text or not text[0].isalpha() or not text.endswith((".", "!", "?", ":", "»")):
        return False
    words = text.split()
    return len(words) >= 12 and sum(w.isalpha() for w in words) >= 0.6 * len(words)


def prose_paragraphs(page: Page) -> list[list[str]]:
    """The running paragraphs of each of the page's prose sections, each on one line."""
    return [[" ".join(line.strip() for line in block) for block in blocks(lines)
             if is_prose(block)] for lines in page.section(PROSE)]


ENGLISH_FUNCTION_WORDS = frozenset(
    "the of and to is are that with for this which be by from it when not can has have "
    "were or its these those there their been".split())


@cache
def native_words(language: str) -> tuple[frozenset[str], frozenset[str]]:
    """The language's stop words that are not English ones, and the English function words
    that are not the language's."""
    from stop_words import get_stop_words

    own = frozenset(get_stop_words(language))
    return own - frozenset(get_stop_words("en")), ENGLISH_FUNCTION_WORDS - own


def english_share(text: str, language: str) -> float:
    """English function words / (those + the language's own stop words) in ``text``: a
    translation's untranslated paragraphs score near 1, translated ones near 0 (1 with
    neither)."""
    own, english = native_words(language)
    words = [w.strip(".,;:!?()[]«»\"'„“”").lower() for w in text.split()]
    e, n = sum(w in english for w in words), sum(w in own for w in words)
    return e / (e + n) if e + n else 1.0


def dedent(lines: list[str]) -> list[str]:
    """Lines with their common indentation removed, blank lines kept."""
    depth = min((indent(line) for line in lines if line.strip()), default=0)
    return [line[depth:] if line.strip() else "" for line in lines]


def furniture(page: Page) -> str:
    """A page's boilerplate, as rendered: header, name line, see-also list, usage lines,
    credits, footer."""
    parts = [page.header] if page.header else []
    for heading, lines in page.sections:
        if heading in NAME | SEE_ALSO | SYNOPSIS | CREDITS:
            parts.append("\n".join([heading, *dedent(lines)]).strip())
    if page.footer:
        parts.append(page.footer.strip())
    return "\n\n".join(parts)


def examples(page: Page) -> str:
    """The page's examples sections, as rendered (code, shell sessions and their notes)."""
    return "\n\n".join("\n".join(dedent(lines)).strip() for lines in page.section(EXAMPLES))


def name_line(page: Page) -> str:
    return " ".join(" ".join(line.split()) for lines in page.section(NAME) for line in lines)


def fortunes_de() -> list[tuple[str, str]]:
    """(file, record) of the German fortunes, files of pictures, recipes and lists aside."""
    out = []
    for path in sorted(FORTUNES_DE.iterdir()):
        if path.is_symlink() or path.suffix in (".dat", ".u8") or not path.is_file():
            continue
        if path.name in FORTUNES_NOT_PROSE:
            continue
        text = path.read_bytes().decode("utf-8", errors="replace")
        for record in re.split(r"\n%\n", text):
            if record.strip():
                out.append((path.name, record.strip("\n")))
    return out


def catalogue(path: Path) -> list[tuple[str, str]]:
    """The (English, translated) string pairs of a .mo file, in the catalogue's order."""
    try:
        with path.open("rb") as f:
            messages = gettext.GNUTranslations(f)._catalog  # noqa: SLF001
    except (OSError, UnicodeDecodeError, ValueError):
        return []
    out = []
    for msgid, msgstr in messages.items():
        if isinstance(msgid, tuple):
            msgid = msgid[0]
        if msgid and msgstr and isinstance(msgid, str) and msgid != msgstr:
            out.append((msgid, msgstr))
    return out


def catalogues(language: str) -> Iterator[tuple[str, list[tuple[str, str]]]]:
    """(domain, pairs) for every .mo file of the language, by file name."""
    for path in sorted((LOCALE / language / "LC_MESSAGES").glob("*.mo")):
        pairs = catalogue(path)
        if pairs:
            yield path.stem, pairs


def sentences(text: str) -> list[str]:
    return [s.strip() for s in SENTENCE_END.split(text) if s.strip()]


DIALOG = re.compile(r"^\s*[\w<][^\s:]{0,14}>?:\s", re.M)


def reflow(record: str) -> str | None:
    """A fortune's paragraphs each on one line, its attribution (a line ``-- Name`` and what
    follows) left out; None for a dialogue or chat log, whose lines are turns, not wrapped
    text."""
    if len(DIALOG.findall(record)) >= 2 or re.search(r"^\s*<[^>]+>", record, re.M):
        return None
    lines = record.split("\n")
    for i, line in enumerate(lines):
        if line.strip().startswith("--"):
            lines = lines[:i]
            break
    paragraphs = (" ".join(block.split()) for block in re.split(r"\n\s*\n", "\n".join(lines)))
    return "\n\n".join(p for p in paragraphs if p)


def code_files() -> dict[str, list[Path]]:
    """Source files of this machine by language: the Python standard library's top-level
    modules, the shell scripts of /usr/bin, /usr/sbin and /etc/init.d, the C headers of
    /usr/include."""
    shell = []
    for root in (Path("/usr/bin"), Path("/usr/sbin"), Path("/etc/init.d")):
        for p in sorted(root.iterdir()):
            if p.is_file() and not p.is_symlink():
                try:
                    with p.open("rb") as f:
                        head = f.read(64)
                except OSError:
                    continue
                if head.startswith(b"#!") and b"sh" in head.split(b"\n")[0]:
                    shell.append(p)
    return {"python": sorted(Path("/usr/lib/python3.11").glob("*.py")), "shell": shell,
            "c": sorted(Path("/usr/include").glob("*.h"))}
