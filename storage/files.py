"""File-system helpers over ``pyarrow.fs``: globbing, checksums and all-or-nothing writes.

Paths may be local (``data/corpus``) or URIs that pyarrow understands (``gs://b/x``,
``s3://b/x``). Nothing here imports Beam, so the manifest reader can use it on a trainer.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import uuid
from collections.abc import Callable, Iterator
from typing import BinaryIO

import pyarrow as pa
import pyarrow.fs as pafs

GLOB_CHARS = re.compile(r"[*?\[]")
CHUNK = 8 << 20


def filesystem(path: str) -> tuple[pafs.FileSystem, str]:
    """The file system holding ``path`` and the path inside it (absolute for local files).
    Raises ``FileNotFoundError`` naming a URI whose scheme pyarrow does not know."""
    if "://" in path:
        try:
            return pafs.FileSystem.from_uri(path)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise FileNotFoundError(f"{path}: not a file system tamis can read ({exc})") from None
    return pafs.LocalFileSystem(), os.path.abspath(path)


def absolute(path: str) -> str:
    """A local path made absolute; a URI as it is."""
    return path if "://" in path else os.path.abspath(path)


def split_scheme(path: str) -> tuple[str, str]:
    """``("s3://", "bucket/key")`` of a URI, ``("", path)`` of a local path."""
    if "://" in path:
        scheme, rest = path.split("://", 1)
        return scheme + "://", rest
    return "", path


def exists(path: str) -> bool:
    """Whether ``path`` (local or a URI) is a file."""
    try:
        fs, inner = filesystem(path)
    except FileNotFoundError:
        return False
    return fs.get_file_info(inner).type == pafs.FileType.File


def join(base: str, *parts: str) -> str:
    return posixpath.join(base, *parts) if "://" in base else os.path.join(base, *parts)


def glob_regex(pattern: str) -> re.Pattern[str]:
    """Shell-style pattern to a regex: ``*`` and ``?`` stay inside a folder, ``**/`` spans any."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def expand(path: str, suffixes: tuple[str, ...]) -> tuple[str, list[str]]:
    """The files that ``path`` names, sorted, and the root their relative paths start from.

    ``path`` is a file, a folder (every file below it whose name ends in one of ``suffixes``)
    or a glob. Raises ``FileNotFoundError`` with the path when nothing matches. Paths come
    back as ``path`` gave them: URIs keep their scheme.
    """
    scheme = split_scheme(path)[0] if "://" in path else ""
    root, found = _expand(path, suffixes)
    if scheme and scheme != "file://":
        return scheme + root, [scheme + f for f in found]
    return root, found


def _expand(path: str, suffixes: tuple[str, ...]) -> tuple[str, list[str]]:
    fs, inner = filesystem(path)
    match = GLOB_CHARS.search(inner)
    if match is None:
        info = fs.get_file_info(inner)
        if info.type == pafs.FileType.File:
            return _parent(inner), [inner]
        if info.type == pafs.FileType.Directory:
            found = _list(fs, inner, lambda p: p.endswith(suffixes))
            if not found:
                raise FileNotFoundError(
                    f"input folder {path} holds no {'/'.join(suffixes)} file"
                )
            return inner, found
        raise FileNotFoundError(f"input {path} does not exist")
    root = _parent(inner[: match.start()] + "x")
    regex = glob_regex(inner)
    if fs.get_file_info(root).type != pafs.FileType.Directory:
        raise FileNotFoundError(f"input glob {path} matches no file (no folder {root})")
    found = _list(fs, root, lambda p: regex.match(p) is not None)
    if not found:
        raise FileNotFoundError(f"input glob {path} matches no file")
    return root, found


def _parent(path: str) -> str:
    return posixpath.dirname(path) if "/" in path else "."


def _list(fs: pafs.FileSystem, root: str, keep: Callable[[str], bool]) -> list[str]:
    selector = pafs.FileSelector(root, recursive=True)
    return sorted(
        i.path
        for i in fs.get_file_info(selector)
        if i.type == pafs.FileType.File and keep(i.path) and not _hidden(i.path, root)
    )


def _hidden(path: str, root: str) -> bool:
    """Files or folders starting with '.' or '_' below the root (temporary shards, markers)."""
    rel = path[len(root) :].lstrip("/")
    return any(part.startswith((".", "_")) for part in rel.split("/"))


def sha256_file(fs: pafs.FileSystem, path: str) -> str:
    digest = hashlib.sha256()
    with fs.open_input_stream(path, compression=None) as f:  # the bytes as stored
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class HashingWriter:
    """A write-only file object that hashes and counts what passes through it."""

    def __init__(self, sink: BinaryIO) -> None:
        self._sink = sink
        self.digest = hashlib.sha256()
        self.bytes = 0

    def write(self, data: bytes) -> int:
        view = memoryview(data)
        self.digest.update(view)
        self.bytes += view.nbytes
        self._sink.write(data)
        return view.nbytes

    def flush(self) -> None:
        self._sink.flush()

    @property
    def closed(self) -> bool:
        return False

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def tell(self) -> int:
        return self.bytes


def write_atomically(path: str, write: Callable[[HashingWriter], None]) -> tuple[int, str]:
    """Write ``path`` through ``write`` under a temporary name, then rename it into place.

    A reader never sees a partial file. Returns ``(bytes, sha256)`` of what was written.
    """
    fs, inner = filesystem(path)
    fs.create_dir(_parent(inner), recursive=True)
    tmp = join(_parent(inner), f".tmp-{uuid.uuid4().hex}-{posixpath.basename(inner)}")
    try:
        with fs.open_output_stream(tmp) as sink:
            out = HashingWriter(sink)
            write(out)
        fs.move(tmp, inner)
    except BaseException:
        if fs.get_file_info(tmp).type == pafs.FileType.File:
            fs.delete_file(tmp)
        raise
    return out.bytes, out.digest.hexdigest()


def numbered_lines(stream, chunk_bytes: int = 1 << 20) -> Iterator[tuple[int, bytes]]:
    """``(index, line)`` for each non-blank line of a binary stream, read ``chunk_bytes`` at a
    time (a compressed stream that breaks loses at most that much before the break);
    indices count blank lines too, so they are line numbers from 0."""
    buffer, index = b"", 0
    while chunk := stream.read(chunk_bytes):
        buffer += chunk
        *complete, buffer = buffer.split(b"\n")
        for line in complete:
            if line.strip():
                yield index, line
            index += 1
    if buffer.strip():
        yield index, buffer
