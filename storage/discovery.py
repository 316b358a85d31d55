"""Finding the files of an input (a file, a folder, a glob, or an earlier tamis output) and
the ones under it that are not read, each with its reason.

Under a folder or a glob every file is read or listed as skipped: files of other formats,
hidden files (names starting with '.' or '_': temporary files, markers) and the outputs of
earlier tamis jobs, which are read only when named as an input themselves. Nothing here
imports Beam.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

import pyarrow.fs as pafs

from tamis.storage import manifest as mf
from tamis.storage import outputs
from tamis.storage.errors import InputError
from tamis.storage.files import GLOB_CHARS, filesystem, glob_regex, split_scheme

PARQUET = (".parquet", ".pq")
JSONL = (".jsonl", ".ndjson", ".json")
#: Compressions a JSONL file may have, by suffix, as pyarrow names them.
COMPRESSIONS = {".gz": "gzip", ".zst": "zstd", ".zstd": "zstd", ".bz2": "bz2"}
#: Compressions tamis does not read, named in the reason a file is skipped.
OTHER_COMPRESSIONS = {".xz": "xz", ".lz4": "lz4", ".zip": "zip", ".7z": "7z", ".br": "brotli",
                      ".lzma": "lzma", ".snappy": "snappy", ".tar": "tar"}

@dataclass(frozen=True)
class Skipped:
    """A file under an input folder that is not read, and why."""

    path: str
    reason: str

    def entry(self) -> dict:
        return {"path": self.path, "reason": self.reason}


def file_format(path: str) -> tuple[str | None, str | None, str]:
    """``(format, compression, why not)`` of a file by its name: format is None when tamis
    does not read it, and ``why not`` says so."""
    lower = path.lower()
    if lower.endswith(PARQUET):
        return "parquet", None, ""
    if lower.endswith(JSONL):
        return "jsonl", None, ""
    stem, dot, ext = lower.rpartition(".")
    suffix = dot + ext
    if suffix in COMPRESSIONS and stem.endswith(JSONL):
        return "jsonl", COMPRESSIONS[suffix], ""
    if suffix in COMPRESSIONS or suffix in OTHER_COMPRESSIONS:
        name = COMPRESSIONS.get(suffix) or OTHER_COMPRESSIONS[suffix]
        if stem.endswith(PARQUET + JSONL) and suffix in OTHER_COMPRESSIONS:
            return None, None, (f"compressed with {name}, which tamis does not read (JSONL may "
                                f"be compressed with gzip, zstd or bz2)")
        return None, None, (f"a {name} file; tamis reads Parquet and JSONL, the latter "
                            f"also compressed with gzip, zstd or bz2 (.jsonl.gz)")
    return None, None, (f"not a Parquet or JSONL file (tamis reads {', '.join(PARQUET + JSONL)}"
                        f", and JSONL compressed with gzip, zstd or bz2)")


def find_inputs(path: str) -> tuple[str, list[str], list[Skipped]]:
    """The files to read for one input (a file, a folder, a glob, or a tamis output folder),
    the root their relative paths start from, and the files under it that are not read.

    Under a folder or a glob, every file is read or skipped with a reason: files of other
    formats, hidden files (names starting with '.' or '_': temporary files, markers), and the
    outputs of earlier tamis jobs (a folder with a tamis manifest), which are read only when
    named as an input themselves (then their shards, by their manifest)."""
    scheme = split_scheme(path)[0] if "://" in path else ""
    try:
        fs, inner = filesystem(path)
    except FileNotFoundError as exc:
        raise InputError(str(exc)) from None
    match = GLOB_CHARS.search(inner)
    if match is None:
        info = fs.get_file_info(inner)
        if info.type == pafs.FileType.File:
            return _with_scheme(scheme, _parent(inner), [inner], [])
        if info.type == pafs.FileType.NotFound:
            raise InputError(f"input {path} does not exist")
        if outputs.is_output(path):
            listed = mf.load_manifest(path).get("outputs", {}).get("shards", [])
            if not listed:
                raise InputError(f"{path}: a tamis output whose manifest lists no shard")
            return _with_scheme(scheme, posixpath.join(inner, mf.DATA),
                                [posixpath.join(inner, e["path"]) for e in listed], [])
        root, regex = inner, None
    else:
        root = _parent(inner[: match.start()] + "x")
        regex = glob_regex(inner)
        if fs.get_file_info(root).type != pafs.FileType.Directory:
            raise InputError(f"input glob {path} matches no file (no folder {root})")
    every = sorted(i.path for i in fs.get_file_info(pafs.FileSelector(root, recursive=True))
                   if i.type == pafs.FileType.File
                   and (regex is None or regex.match(i.path) is not None))
    if not every:
        raise InputError(f"input glob {path} matches no file" if regex is not None
                         else f"input folder {path} holds no file")
    read, skipped = _classify(fs, scheme, root, every)
    if not read:
        what = f"input glob {path} matches" if regex is not None else f"input folder {path} holds"
        reason = f" (skipped {skipped[0].path}: {skipped[0].reason})" if skipped else ""
        raise InputError(f"{what} no Parquet or JSONL file{reason}")
    return _with_scheme(scheme, root, read, skipped)


def _classify(fs, scheme: str, root: str, every: list[str]) -> tuple[list[str], list[Skipped]]:
    """Files under ``root`` to read, and the others with their reasons."""
    earlier = sorted({posixpath.dirname(p) for p in every
                      if posixpath.basename(p) == mf.MANIFEST and posixpath.dirname(p) != root
                      and outputs.is_output(scheme + posixpath.dirname(p) if scheme
                                            and scheme != "file://" else posixpath.dirname(p))})
    read: list[str] = []
    skipped: list[Skipped] = []
    hidden: dict[str, int] = {}
    inside: dict[str, int] = {}
    for p in every:
        folder = next((d for d in earlier if p.startswith(d + "/")), None)
        if folder is not None:
            inside[folder] = inside.get(folder, 0) + 1
            continue
        rel = p[len(root):].lstrip("/").split("/")
        secret = next((i for i, part in enumerate(rel) if part.startswith((".", "_"))), None)
        if secret is not None:
            top = posixpath.join(root, *rel[: secret + 1])
            hidden[top] = hidden.get(top, 0) + 1
            continue
        fmt, _, why = file_format(p)
        if fmt is None:
            skipped.append(Skipped(_show(scheme, p), why))
        else:
            read.append(p)
    for folder, n in inside.items():
        job = mf.load_manifest(_show(scheme, folder)).get("job")
        skipped.append(Skipped(_show(scheme, folder),
                               f"the output of an earlier tamis {job} job ({n} files); name "
                               f"this folder as an input to read its shards"))
    for top, n in hidden.items():
        skipped.append(Skipped(_show(scheme, top), f"hidden: its name starts with '.' or '_' "
                                                   f"({n} file{'s' if n != 1 else ''})"))
    return read, sorted(skipped, key=lambda s: s.path)


def _show(scheme: str, path: str) -> str:
    return scheme + path if scheme and scheme != "file://" else path


def _with_scheme(scheme: str, root: str, files: list[str], skipped: list[Skipped]):
    return _show(scheme, root), [_show(scheme, f) for f in files], skipped


def _parent(path: str) -> str:
    return posixpath.dirname(path) if "/" in path else "."
