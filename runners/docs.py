"""The key tables of the job pages (``docs/jobs/<job>.md``), written from the configuration
classes: each key's default and meaning is declared once, in code, and the docs follow.

    python -m tamis.runners.docs            # exit 1 and name the pages that are out of date
    python -m tamis.runners.docs --write    # rewrite the tables in place
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import typing
from pathlib import Path
from typing import Any

BEGIN, END = "<!-- keys: generated from the code by python -m tamis.runners.docs -->", \
    "<!-- end of keys -->"


def rows(cls: type, prefix: str = "") -> list[tuple[str, str, str]]:
    """``(key, default, meaning)`` of every key of ``cls``, sections flattened with dots."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        name, (kind, many) = prefix + f.name, _section(hints[f.name])
        if kind is not None:
            doc = f.metadata.get("doc", "")
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                doc = f"required: {doc}" if doc else "required"
            out.append((name, "a list" if many else "section", doc))
            out += rows(kind, name + ("[]." if many else "."))
        else:
            out.append((name, _default(f), f.metadata.get("doc", "")))
    return out


def _section(tp: Any) -> tuple[type | None, bool]:
    """``(the dataclass a key's type is, or its elements are; whether it is a list)``."""
    if dataclasses.is_dataclass(tp):
        return tp, False
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (tuple, list) and args and dataclasses.is_dataclass(args[0]):
        return args[0], True
    return None, False


def _default(f: dataclasses.Field) -> str:
    if f.default_factory is not dataclasses.MISSING:
        return _show(f.default_factory())
    if f.default is dataclasses.MISSING:
        return "required"
    return _show(f.default)


def _show(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"`{value}`" if value else "`\"\"`"
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_show(v).strip("`") for v in value) + "]"
    if isinstance(value, float) and value.is_integer() and abs(value) >= 1000:
        return f"{value:,.0f}"
    if isinstance(value, int) and abs(value) >= 10_000:
        return f"{value:,}"
    return str(value)


def table(cls: type) -> str:
    lines = ["| key | default | meaning |", "| --- | --- | --- |"]
    for name, default, doc in rows(cls):
        lines.append(f"| `{name}` | {default} | {doc.replace('|', chr(92) + '|')} |")
    return "\n".join(lines)


def page_path(job: str, root: Path) -> Path:
    return root / "docs" / "jobs" / f"{job}.md"


def render(text: str, cls: type) -> str:
    """``text`` with its generated block replaced by the table of ``cls``."""
    if BEGIN not in text or END not in text:
        raise ValueError("the page has no generated key table (markers missing)")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{table(cls)}\n{END}{tail}"


def stale(root: Path) -> list[str]:
    """The job pages whose key table differs from the code's."""
    from tamis.runners.jobs import JOBS

    out = []
    for job in JOBS:
        path = page_path(job.name, root)
        if not path.exists() or render(path.read_text(), job.config) != path.read_text():
            out.append(str(path.relative_to(root)))
    return out


def main(argv: list[str] | None = None) -> int:
    from tamis.runners.jobs import JOBS

    parser = argparse.ArgumentParser(description="write the key tables of docs/jobs/*.md")
    parser.add_argument("--root", type=Path, default=Path.cwd())
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args(argv)
    if args.write:
        for job in JOBS:
            path = page_path(job.name, args.root)
            path.write_text(render(path.read_text(), job.config))
        return 0
    out_of_date = stale(args.root)
    for path in out_of_date:
        print(f"{path}: its key table is out of date (python -m tamis.runners.docs --write)")
    return 1 if out_of_date else 0


if __name__ == "__main__":
    sys.exit(main())
