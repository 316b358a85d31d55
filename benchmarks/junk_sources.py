"""Reading this machine's sources of junk for ``quality_junk.py``: the HTML, info and man
manuals' furniture and indexes, dpkg's records, /usr/share/doc and /var/log."""

from __future__ import annotations

import grp
import gzip
import html
import lzma
import os
import pwd
import re
import stat
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from junk_text import (
    BLOCK,
    DOC,
    DPKG,
    FOOTNOTES,
    INFO,
    INFO_ENTRY,
    LOGS,
    PYHTML,
    REFS,
    ROFF_ARGS,
    ROFF_ESCAPE,
    ROFF_FONT,
    SCRIPT,
    STATIC,
    TAG,
    hash_order,
)

# ---------------------------------------------------------------------------------------------
# reading the machine


def read(path: Path) -> str:
    """A text file, gz or xz decompressed; "" if it is binary or unreadable."""
    try:
        data = path.read_bytes()
        if path.suffix == ".gz":
            data = gzip.decompress(data)
        elif path.suffix == ".xz":
            data = lzma.decompress(data)
    except (OSError, EOFError, lzma.LZMAError, gzip.BadGzipFile):
        return ""
    if b"\0" in data[:4096]:
        return ""
    return data.decode("utf-8", errors="replace")


def files(paths: Iterable[Path], seed: int) -> list[Path]:
    """Regular files among ``paths``, one per real path, in hash order."""
    real: dict[str, Path] = {}
    for p in paths:
        if p.is_file():
            real.setdefault(os.path.realpath(p), p)
    return [real[k] for k in hash_order(real, seed)]


def html_text(fragment: str) -> str:
    """Visible text of an HTML fragment, a line per block element."""
    t = TAG.sub("", BLOCK.sub("\n", SCRIPT.sub(" ", fragment)))
    lines = (" ".join(line.split()) for line in html.unescape(t).split("\n"))
    return "\n".join(line for line in lines if line)


def element(page: str, start: int, tag: str) -> str:
    """The ``tag`` element opening at ``start``, through its matching closing tag."""
    depth = 0
    for m in re.compile(rf"<(/?){tag}\b", re.I).finditer(page, start):
        depth += -1 if m.group(1) else 1
        if depth == 0:
            return page[start:page.find(">", m.end()) + 1]
    return page[start:]


def furniture(paths: Iterable[Path], opening: re.Pattern[str]) -> Iterator[str]:
    """Per HTML page: the text of its elements whose opening tag matches ``opening`` (tag
    name in group 1; an element inside an earlier one is part of it), each distinct block
    once over all pages, toctrees cut to 400 lines."""
    seen: set[str] = set()
    for path in paths:
        page, end, parts = read(path), 0, []
        for m in opening.finditer(page):
            if m.start() < end:
                continue
            block = element(page, m.start(), m.group(1))
            end = m.start() + len(block)
            text = "\n".join(html_text(block).split("\n")[:400])
            if text and text not in seen:
                seen.add(text)
                parts.append(text)
        yield "\n\n".join(parts)


def html_files(seed: int, python: bool) -> list[Path]:
    """The Python docs' HTML pages, or the other HTML files under /usr/share/doc."""
    if python:
        return files(PYHTML.rglob("*.html"), seed)
    return files((p for p in DOC.rglob("*.htm*") if PYHTML not in p.parents), seed)


def info_nodes(seed: int) -> Iterator[list[str]]:
    """The nodes of each GNU info file."""
    for path in files(INFO.glob("*.info*.gz"), seed):
        nodes = [n.strip("\n") for n in read(path).split("\x1f")]
        yield [n for n in nodes if n.startswith("File:")]


def info_navigation(seed: int) -> Iterator[str]:
    """Per info manual: each node's header line, title and (non-index) menu."""
    for nodes in info_nodes(seed):
        out = []
        for node in nodes:
            lines = node.split("\n")
            nav = [lines[0]]
            body = [line for line in lines[1:6] if line.strip()]
            if len(body) >= 2 and set(body[1].strip()) <= set("*=-."):
                nav += ["", body[0], body[1]]
            menu = node.find("\n* Menu:")
            if menu >= 0 and "\0\b[index\0\b]" not in node:
                nav += ["", node[menu + 1:].split(FOOTNOTES)[0].rstrip()]
            out.append("\n".join(nav))
        yield "\n\n".join(out)


def info_index_entries(seed: int) -> list[str]:
    entries = []
    for nodes in info_nodes(seed):
        for node in nodes:
            if "\0\b[index\0\b]" in node:
                entries += [re.sub(r" <\d+>$", "", m.group(1)) for m in INFO_ENTRY.finditer(node)]
    return list(dict.fromkeys(entries))


def man_pages(seed: int) -> list[Path]:
    listed = []
    for name in ("manpages.list", "manpages-dev.list"):
        text = read(DPKG / "info" / name)
        listed += [Path(line) for line in text.split("\n")
                   if line.startswith("/usr/share/man/man") and line.endswith(".gz")]
    return files((p for p in listed if not p.is_symlink()), seed)


def roff_line(line: str) -> str | None:
    """A roff source line as plain text: font macros' arguments joined, other requests
    dropped (None), escapes removed."""
    if line.startswith((".", "'")):
        macro, _, rest = line[1:].partition(" ")
        args = [a or b for a, b in ROFF_ARGS.findall(rest)]
        if macro in ("BR", "RB", "IR", "RI", "BI", "IB"):
            line = "".join(args)
        elif macro in ("B", "I", "SM", "SB"):
            line = " ".join(args)
        else:
            return None
    line = ROFF_FONT.sub("", line).replace("\\-", "-").replace("\\(em", "—")
    line = line.replace("\\(aq", "'").replace("\\ ", " ").replace("\\e", "\\")
    return ROFF_ESCAPE.sub("", line).strip()


def roff_sections(source: str, wanted: tuple[str, ...] = ("NAME", "SEE ALSO")
                  ) -> dict[str, list[str]]:
    """Section heading -> its text lines, for the ``wanted`` .SH sections of a man page."""
    out: dict[str, list[str]] = {}
    current = None
    for line in source.split("\n"):
        if line.startswith(".SH"):
            current = line[3:].strip().strip('"').upper()
            if current in wanted:
                out.setdefault(current, [])
            else:
                current = None
        elif current is not None:
            text = roff_line(line)
            if text:
                out[current].append(text)
    return out


def man_sections(seed: int) -> list[dict[str, list[str]]]:
    return [roff_sections(read(p)) for p in man_pages(seed)]


def see_also(pages: list[dict[str, list[str]]]) -> Iterator[str]:
    for page in pages:
        if page.get("SEE ALSO"):
            yield "SEE ALSO\n" + "\n".join(page["SEE ALSO"])


def name_lines(pages: list[dict[str, list[str]]]) -> list[str]:
    return list(dict.fromkeys(" ".join(p["NAME"]) for p in pages if p.get("NAME")))


def genindex_entries() -> list[str]:
    page = read(PYHTML / "genindex-all.html")
    start = page.find("genindextable")
    text = html_text(page[page.rfind("<", 0, start):page.rfind("</table>") + 8])
    entries = (REFS.sub("", line).strip() for line in text.split("\n"))
    return list(dict.fromkeys(e for e in entries if any(c.isalpha() for c in e) and len(e) > 1))


def dpkg_records(seed: int) -> list[str]:
    records = [r.strip() for r in read(DPKG / "status").split("\n\n") if r.strip()]
    return hash_order(records, seed)


def record_fields(record: str) -> dict[str, str]:
    fields = {}
    for line in record.split("\n"):
        if line and not line[0].isspace() and ":" in line:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


def dpkg_tables(records: list[str]) -> Iterator[str]:
    """`dpkg -l`-style tables of the installed packages, one per first letter of the name."""
    rows = []
    for r in records:
        f = record_fields(r)
        state = f.get("Status", "").split()
        code = {"install": "i", "deinstall": "r", "purge": "p", "hold": "h"}.get(
            state[0] if state else "", "u")
        code += {"installed": "i", "config-files": "c", "unpacked": "U",
                 "half-installed": "H"}.get(state[-1] if state else "", "n")
        rows.append((code, f.get("Package", ""), f.get("Version", ""),
                     f.get("Architecture", ""), f.get("Description", "")))
    rows.sort(key=lambda r: r[1])
    for letter in sorted({r[1][:1] for r in rows}):
        group = [r for r in rows if r[1][:1] == letter]
        w = [max(14, *(len(r[i]) for r in group)) for i in (1, 2, 3)]
        head = ["Desired=Unknown/Install/Remove/Purge/Hold",
                "| Status=Not/Inst/Conf-files/Unpacked/halF-conf/Half-inst/trig-aWait/Trig-pend",
                "|/ Err?=(none)/Reinst-required (Status,Err: uppercase=bad)",
                f"||/ {'Name':{w[0]}} {'Version':{w[1]}} {'Architecture':{w[2]}} Description",
                f"+++-{'=' * w[0]}-{'=' * w[1]}-{'=' * w[2]}-{'=' * 40}"]
        yield "\n".join(head + [f"{c:3} {n:{w[0]}} {v:{w[1]}} {a:{w[2]}} {d}"
                                for c, n, v, a, d in group])


def ls_listing(directory: Path) -> str:
    """`ls -l`-style listing of ``directory`` (dates in UTC, always with the year)."""
    lines, blocks = [], 0
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError:
        return ""
    for e in entries:
        st = e.stat(follow_symlinks=False)
        blocks += st.st_blocks
        try:
            user = pwd.getpwuid(st.st_uid).pw_name
            group = grp.getgrgid(st.st_gid).gr_name
        except KeyError:
            user, group = str(st.st_uid), str(st.st_gid)
        date = time.strftime("%b %e  %Y", time.gmtime(st.st_mtime))
        name = e.name + (f" -> {os.readlink(e.path)}" if stat.S_ISLNK(st.st_mode) else "")
        lines.append(f"{stat.filemode(st.st_mode)} {st.st_nlink:2} {user} {group} "
                     f"{st.st_size:8} {date} {name}")
    return "\n".join([f"{directory}:", f"total {blocks // 2}", *lines])


def log_files() -> list[Path]:
    """The files under /var/log but systemd's binary journals."""
    return sorted(p for p in LOGS.rglob("*") if p.is_file() and not p.is_symlink()
                  and ".journal" not in p.name)


def copyright_files(seed: int) -> list[Path]:
    return files(DOC.glob("*/copyright"), seed)


def static_files(seed: int) -> list[Path]:
    found = [p for root in STATIC if root.is_dir() for ext in ("css", "js")
             for p in root.rglob(f"*.{ext}")]
    return files(found, seed)



