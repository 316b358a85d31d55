"""Output folders: what in them is tamis's, where a run writes before its result is complete,
and the swap that puts a complete result in place.

A job writes into a *staging* folder beside its output (``.<name>.tamis-staging``) and the
launcher swaps it in once the manifest is written: until then an earlier result stays whole
and readable, and a run killed half-way leaves the output as it was. Only what tamis wrote is
ever deleted: the files a tamis manifest lists, the artifacts and models tamis names, and
tamis's own temporary names; any other file in an output folder is refused before any work.
Nothing here imports Beam.
"""

from __future__ import annotations

import posixpath
import re
import uuid

import pyarrow.fs as pafs

from tamis.storage import manifest as mf
from tamis.storage.clusters import ARTIFACTS
from tamis.storage.errors import PlanError, VerifyError
from tamis.storage.files import filesystem, split_scheme
from tamis.storage.shards import SPILL

STAGING, OLD = ".tamis-staging", ".tamis-old"
#: Files tamis writes under ``models/`` (quality and bilingual classifiers, LSI fits).
MODEL_NAMES = re.compile(
    r"((quality|bilingual)(-[a-z]+)*\.(bin|npz|json)|lsi-[0-9a-f]{16,64}\.npz)\Z")
TEMPORARY = re.compile(r"\.tmp-[0-9a-f]{32}-")
#: The manifest's lists of files, and the folders they lie in.
LISTED = ("shards", "rejects", "real")
FOLDERS = (mf.DATA, mf.REJECTS, "real")
#: Files of the rephrase job beside its manifest: the mixing manifest, and the journal of
#: answered requests (``journal/<file key>/r<first>-<last>-<uuid>.parquet`` per batch, and a
#: ``done-…json`` record per finished group).
FILES = ("mixture.json",)
JOURNAL = "journal"
JOURNAL_NAMES = re.compile(r"[0-9a-f]{24}/(r\d{10}-\d{10}-[0-9a-f]{32}\.parquet|"
                           r"done-r\d{10}-[0-9a-f]{16}\.json)\Z")


def _sibling(out: str, suffix: str) -> str:
    scheme, path = split_scheme(out)
    parent, name = posixpath.split(path.rstrip("/"))
    return scheme + posixpath.join(parent, f".{name}{suffix}")


def staging_path(out: str) -> str:
    """Where a run into ``out`` writes until its result is complete."""
    return _sibling(out, STAGING)


def is_output(folder: str) -> bool:
    """Whether ``folder`` holds a tamis manifest (an earlier job's output)."""
    fs, inner = filesystem(folder)
    if fs.get_file_info(posixpath.join(inner, mf.MANIFEST)).type != pafs.FileType.File:
        return False
    try:
        manifest = mf.load_manifest(folder)
    except VerifyError:
        return False
    return "job" in manifest and "schema_version" in manifest


def strangers(out: str) -> list[str]:
    """Files under ``out`` that tamis did not write (relative paths, sorted).

    Tamis's are: ``manifest.json`` when it is a tamis manifest, the shards and rejects it
    lists, cluster artifacts, models under ``models/`` by their tamis names, and temporary
    files (``.tmp-*``, the spill folder). With no manifest (a run that did not finish), any
    file of tamis's naming under ``data/`` and ``rejects/`` counts as tamis's too."""
    fs, inner = filesystem(out)
    listed: set[str] = set()
    manifest = None
    if is_output(out):
        manifest = mf.load_manifest(out)
        outputs = manifest.get("outputs", {})
        listed = {e["path"] for group in LISTED for e in outputs.get(group, [])}
    found = []
    for info in fs.get_file_info(pafs.FileSelector(inner, recursive=True)):
        if info.type != pafs.FileType.File:
            continue
        rel = info.path[len(inner):].lstrip("/")
        if not _ours(rel, listed, manifest is not None):
            found.append(rel)
    return sorted(found)


def _ours(rel: str, listed: set[str], has_manifest: bool) -> bool:
    parts = rel.split("/")
    name = parts[-1]
    if TEMPORARY.match(name) or parts[0] == SPILL:
        return True
    if len(parts) == 1:
        return (name == mf.MANIFEST and has_manifest) or name in ARTIFACTS or name in FILES
    if parts[0] == JOURNAL and len(parts) == 3:
        return JOURNAL_NAMES.match(parts[1] + "/" + name) is not None
    if parts[0] == mf.MODELS and len(parts) == 2:
        return MODEL_NAMES.match(name) is not None
    if parts[0] in FOLDERS and len(parts) == 2:
        return rel in listed or (not has_manifest and name.endswith(".parquet"))
    return False


def check_replaceable(out: str) -> None:
    """Refuse to replace ``out`` when it holds a file tamis did not write (named)."""
    others = strangers(out)
    if others:
        more = f" and {len(others) - 1} more" if len(others) > 1 else ""
        raise PlanError(f"output folder {out} holds {others[0]}{more}, which tamis did not "
                        f"write; refusing to replace it (move it, or choose another 'output')")


def remove(folder: str) -> None:
    """Delete a folder of tamis's (a staging or old folder), if it exists."""
    fs, inner = filesystem(folder)
    if fs.get_file_info(inner).type == pafs.FileType.Directory:
        fs.delete_dir(inner)


def swap_in(staging: str, out: str) -> None:
    """Put the complete result in ``staging`` at ``out``; the earlier result there (checked to
    be tamis's when the run started) goes only once the new one is in place.

    A local folder is swapped by two renames. An object store has no folders to rename: the
    earlier manifest goes first, then the earlier files, then the new files are moved in with
    the manifest last, so that a reader never finds a manifest that lists a missing shard."""
    fs, inner = filesystem(out)
    _, staged = filesystem(staging)
    if not isinstance(fs, pafs.LocalFileSystem):
        _swap_files(fs, staged, inner)
        return
    if fs.get_file_info(inner).type == pafs.FileType.NotFound:
        fs.move(staged, inner)
        return
    old = _sibling(out, f"{OLD}-{uuid.uuid4().hex[:12]}")
    _, old_inner = filesystem(old)
    fs.move(inner, old_inner)
    try:
        fs.move(staged, inner)
    except BaseException:
        fs.move(old_inner, inner)  # the earlier result back where it was
        raise
    fs.delete_dir(old_inner)


def _swap_files(fs: pafs.FileSystem, staged: str, inner: str) -> None:
    def files(root: str) -> list[str]:
        selector = pafs.FileSelector(root, recursive=True, allow_not_found=True)
        return sorted(i.path[len(root):].lstrip("/") for i in fs.get_file_info(selector)
                      if i.type == pafs.FileType.File)

    earlier = files(inner)
    for rel in sorted(earlier, key=lambda r: r != mf.MANIFEST):  # the manifest first
        fs.delete_file(posixpath.join(inner, rel))
    for rel in sorted(files(staged), key=lambda r: r == mf.MANIFEST):  # the manifest last
        target = posixpath.join(inner, rel)
        fs.create_dir(posixpath.dirname(target), recursive=True)
        fs.move(posixpath.join(staged, rel), target)
    fs.delete_dir(staged)


def recover(out: str) -> None:
    """Tidy what a run killed during its swap left: an earlier result moved aside comes back
    when ``out`` is missing (the swap did not finish), and goes when ``out`` is there."""
    fs, inner = filesystem(out)
    for old in _leftovers(out):
        _, old_inner = filesystem(old)
        if fs.get_file_info(inner).type == pafs.FileType.NotFound:
            fs.move(old_inner, inner)
        else:
            fs.delete_dir(old_inner)


def _leftovers(out: str) -> list[str]:
    """Old folders of earlier swaps into ``out`` that a kill left behind (full paths)."""
    fs, inner = filesystem(out)
    parent, name = posixpath.split(inner.rstrip("/"))
    selector = pafs.FileSelector(parent or ".", allow_not_found=True)
    prefix = f".{name}{OLD}-"
    scheme = split_scheme(out)[0]
    return sorted(scheme + i.path if scheme and scheme != "file://" else i.path
                  for i in fs.get_file_info(selector)
                  if i.type == pafs.FileType.Directory and i.base_name.startswith(prefix))
