"""Planning the read of a corpus from Parquet footers (and JSONL heads), before any work.

:func:`plan_inputs` finds the files, reads only what it must (Parquet footers; the first lines
of a JSONL file), checks that the columns a job needs are there, and splits the work into
units (one Parquet row group, or one JSONL file). Every problem it finds is a
:class:`InputError` that names the file and the field.

Planning is the same for every modality: a plan has one *content* column, described by a
:class:`Content` (:data:`TEXT` today: a string column whose rows of another type are rejected);
how a content's rows are checked when read lives in :mod:`tamis.storage.records`.
"""

from __future__ import annotations

import itertools
import json
import os
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from tamis.selectors.tokens import estimate_tokens
from tamis.storage import manifest as mf
from tamis.storage import outputs
from tamis.storage.errors import InputError
from tamis.storage.files import GLOB_CHARS, filesystem, glob_regex, numbered_lines, split_scheme

PARQUET = (".parquet", ".pq")
JSONL = (".jsonl", ".ndjson", ".json")
#: Compressions a JSONL file may have, by suffix, as pyarrow names them.
COMPRESSIONS = {".gz": "gzip", ".zst": "zstd", ".zstd": "zstd", ".bz2": "bz2"}
#: Compressions tamis does not read, named in the reason a file is skipped.
OTHER_COMPRESSIONS = {".xz": "xz", ".lz4": "lz4", ".zip": "zip", ".7z": "7z", ".br": "brotli",
                      ".lzma": "lzma", ".snappy": "snappy", ".tar": "tar"}
JSONL_SCHEMA_LINES = 1000
STRING_TYPES = (pa.string(), pa.large_string(), pa.string_view())


@dataclass(frozen=True)
class Content:
    """What a plan's content column holds."""

    kind: str  # "text"
    types: tuple[pa.DataType, ...]  # the Arrow types it may have in a Parquet file
    wrong_type: str  # the reject reason of the rows of a file whose column has another type
    output_type: pa.DataType  # its type in the plan's schema


TEXT = Content("text", STRING_TYPES, "non_string_text", pa.string())


@dataclass(frozen=True)
class InputFile:
    path: str  # as the file system names it
    rel: str  # relative to the common root of all inputs; ids are hashed from it
    format: str  # "parquet" | "jsonl"
    bytes: int
    rows: int | None  # None for JSONL: unknown until read
    content_bytes: int | None  # uncompressed bytes of the content column (Parquet)
    content_ok: bool = True  # the column has a type the content may have
    compression: str | None = None  # of a JSONL file: "gzip", "zstd", "bz2"


@dataclass(frozen=True)
class Skipped:
    """A file under an input folder that is not read, and why."""

    path: str
    reason: str

    def entry(self) -> dict:
        return {"path": self.path, "reason": self.reason}


@dataclass(frozen=True)
class Unit:
    """One piece of read work: a Parquet row group or a whole JSONL file."""

    file: int  # index into InputPlan.files
    index: int  # row group, or 0
    row_offset: int  # index of the unit's first row in its file
    rows: int | None


@dataclass(frozen=True)
class InputPlan:
    files: tuple[InputFile, ...]
    units: tuple[Unit, ...]
    schema: pa.Schema  # output columns from the inputs: id and the content first
    content_column: str
    id_column: str | None  # present in every file, else None and ids are hashed
    warnings: tuple[str, ...] = field(default=())
    content: Content = TEXT
    skipped: tuple[Skipped, ...] = field(default=())
    on_corrupt: str = "stop"  # "stop" | "skip": what reading does with undecodable data
    on_duplicate_id: str = "keep"  # "keep" | "reject" | "stop": ids seen more than once

    @property
    def text_column(self) -> str:
        """The content column of a text plan."""
        return self.content_column

    @property
    def rows(self) -> int | None:
        counts = [f.rows for f in self.files]
        return None if None in counts else sum(counts)

    @property
    def bytes(self) -> int:
        return sum(f.bytes for f in self.files)

    def estimated_tokens(self) -> int:
        """Tokens estimated from footers; a JSONL file counts its whole size as text."""
        return sum(estimate_tokens(f.content_bytes if f.content_bytes is not None else f.bytes)
                   for f in self.files)


def _format(path: str) -> tuple[str | None, str | None, str]:
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


def _parquet_footer(path: str) -> pq.FileMetaData:
    fs, inner = filesystem(path)
    try:
        with fs.open_input_file(inner) as f:
            return pq.ParquetFile(f).metadata
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{path}: not a readable Parquet file ({exc})") from None


def _jsonl_schema(path: str, compression: str | None, on_corrupt: str = "stop") -> pa.Schema:
    """Column types from the first lines of a JSONL file (later lines that differ are rejected)."""
    fs, inner = filesystem(path)
    rows = []
    try:
        with fs.open_input_stream(inner, compression=compression) as f:
            lines = numbered_lines(f, read_chunk(compression))
            for _, raw in itertools.islice(lines, JSONL_SCHEMA_LINES):
                try:
                    value = json.loads(raw)
                except ValueError:
                    continue
                if isinstance(value, dict):
                    rows.append(value)
    except (OSError, pa.ArrowException, EOFError) as exc:
        if not (rows and on_corrupt == "skip"):  # with skip, reading rejects where it breaks
            what = f"{compression}-compressed JSONL" if compression else "JSONL"
            raise InputError(f"{path}: not readable as {what} ({exc}); with on_corrupt: skip "
                             f"the lines before the break are read") from None
    names = list(dict.fromkeys(k for row in rows for k in row))
    return pa.schema([pa.field(n, _column_type([r.get(n) for r in rows])) for n in names])


def read_chunk(compression: str | None) -> int:
    """Bytes read at a time from a JSONL file: a compressed stream that breaks loses what the
    read in progress held, so it is read in small pieces."""
    return 1 << 14 if compression else 1 << 20


def _column_type(values: list) -> pa.DataType:
    """The Arrow type of a JSON column; with mixed types, that of the most common one (rows
    of the other types are then rejected as bad values)."""
    present = [v for v in values if v is not None]
    try:
        return pa.array(present).type if present else pa.null()
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, UnicodeEncodeError):
        kinds = [type(v) for v in present]
        common = max(set(kinds), key=lambda k: (kinds.count(k), k.__name__))
        simple = {int: pa.int64(), float: pa.float64(), str: pa.string(), bool: pa.bool_()}
        if common in simple:  # e.g. one integer too large for int64 among ordinary ones
            return simple[common]
        try:
            return pa.array([v for v in present if type(v) is common]).type
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, UnicodeEncodeError):
            return pa.string()


#: Columns of an earlier tamis selection that a job reads in place of writing them twice:
#: ``n_tokens`` is counted again; a row's output ``weight`` and ``n_samples`` are its input's
#: times this job's, so selections compose (e.g. quality filtering a crisp output).
CARRIED = ("n_tokens", "weight", "n_samples")
IN_WEIGHT, IN_SAMPLES = "__in_weight", "__in_n_samples"


def plan_inputs(
    paths: Sequence[str],
    content_column: str,
    id_column: str | None = "id",
    required_columns: Sequence[str] = (),
    reserved_columns: Sequence[str] = (),
    content: Content = TEXT,
    on_corrupt: str = "stop",
    on_duplicate_id: str = "keep",
) -> InputPlan:
    """Find and check the inputs of a job; raise :class:`InputError` on the first problem.

    ``content_column`` holds the records' content (their text); ``required_columns`` must be
    in every file (a stratification column, say); ``reserved_columns`` are columns the job adds
    and an input must not already have.
    """
    if id_column is not None and id_column != "id":
        reserved_columns = [*reserved_columns, "id"]
    if not paths:
        raise InputError("no input given: set 'inputs' to one or more files, folders or globs")
    found: list[tuple[str, str]] = []
    skipped: list[Skipped] = []
    for p in paths:
        root, files, passed = find_inputs(p)
        found.extend((root, f) for f in files)
        skipped.extend(passed)
    if not found:
        raise InputError(f"no Parquet or JSONL file in the inputs ({', '.join(paths)})"
                         + (f"; skipped {skipped[0].path}: {skipped[0].reason}" if skipped
                            else ""))
    schemes = {split_scheme(root)[0] for root, _ in found}
    if len(schemes) > 1:
        raise InputError(f"inputs on several file systems ({', '.join(sorted(schemes))}); give "
                         f"them from one")
    common = posixpath.commonpath([split_scheme(r)[1] for r, _ in found]) if found else "."
    files, schemas, units, warnings = [], [], [], []
    # Sorted and unique: the order in which inputs are listed changes nothing downstream.
    for path in sorted({path for _, path in found}):
        fmt, compression, why = _format(path)
        if fmt is None:
            raise InputError(f"{path}: {why}")
        fs, inner = filesystem(path)
        size = fs.get_file_info(inner).size
        rel = posixpath.relpath(split_scheme(path)[1], common)
        index = len(files)
        if size == 0:  # an empty file holds no rows, whatever its format
            files.append(InputFile(path, rel, fmt, 0, 0, 0, True, compression))
            schemas.append(None)
            continue
        if fmt == "parquet":
            meta = _parquet_footer(path)
            schema = meta.schema.to_arrow_schema()
        else:
            meta, schema = None, _jsonl_schema(path, compression, on_corrupt)
        if fmt == "jsonl" and not schema.names:  # no JSON object in its first lines
            units.append(Unit(index, 0, 0, None))
            files.append(InputFile(path, rel, fmt, size, None, None, True, compression))
            schemas.append(None)
            continue
        _check_columns(path, schema, content_column, required_columns, reserved_columns, fmt,
                       id_column)
        content_ok = fmt == "jsonl" or schema.field(content_column).type in content.types
        if not content_ok:
            warnings.append(
                f"{path}: column '{content_column}' is {schema.field(content_column).type}, "
                f"not {content.kind}: its rows will be rejected as {content.wrong_type}"
            )
        if meta is not None:
            offset, content_bytes = 0, 0
            for g in range(meta.num_row_groups):
                group = meta.row_group(g)
                units.append(Unit(index, g, offset, group.num_rows))
                offset += group.num_rows
                content_bytes += _column_bytes(group, content_column)
            files.append(InputFile(path, rel, fmt, size, meta.num_rows, content_bytes,
                                   content_ok))
        else:
            units.append(Unit(index, 0, 0, None))
            files.append(InputFile(path, rel, fmt, size, None, None, content_ok, compression))
        schemas.append(schema)
    known = [s for s in schemas if s is not None]
    if not known:
        first = next((f for f in files if f.bytes), None)
        if first is None:
            raise InputError(f"every input file is empty ({', '.join(f.path for f in files[:3])})")
        raise InputError(f"{first.path}: no JSON object in its first lines")
    for f, schema in zip(files, schemas, strict=True):
        if schema is None and f.bytes and len(known) and f.format == "jsonl":
            warnings.append(f"{f.path}: no JSON object in its first {JSONL_SCHEMA_LINES} "
                            f"lines: its lines will be rejected if they are not objects")
    has_id = id_column is not None and all(id_column in s.names for s in known)
    if id_column is not None and not has_id and any(id_column in s.names for s in known):
        missing = next(f.path for f, s in zip(files, schemas, strict=True)
                       if s is not None and id_column not in s.names)
        raise InputError(f"{missing}: no column '{id_column}' while other inputs have one; "
                         f"give every input ids, or none (they are then hashed from path and row)")
    if skipped:
        more = f" and {len(skipped) - 1} more" if len(skipped) > 1 else ""
        warnings.append(f"not read under the inputs: {skipped[0].path} ({skipped[0].reason})"
                        f"{more}; the manifest lists them under 'skipped'")
    schema = _unify(files, known, content_column, content)
    return InputPlan(tuple(files), tuple(units), schema, content_column,
                     id_column if has_id else None, tuple(warnings), content, tuple(skipped),
                     on_corrupt, on_duplicate_id)


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
        fmt, _, why = _format(p)
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


def _column_bytes(group: pq.RowGroupMetaData, name: str) -> int:
    total = 0
    for c in range(group.num_columns):
        column = group.column(c)
        if column.path_in_schema == name or column.path_in_schema.startswith(name + "."):
            total += column.total_uncompressed_size
    return total


def _check_columns(path, schema, content_column, required, reserved, fmt,
                   id_column=None) -> None:
    names = schema.names
    for column in [content_column, *required]:
        if column not in names:
            if fmt == "jsonl" and not names:
                raise InputError(f"{path}: no JSON object in its first lines")
            raise InputError(f"{path}: no column '{column}' (columns: {', '.join(names)})")
    for column in [*required, id_column]:
        if column in names and pa.types.is_nested(schema.field(column).type):
            raise InputError(f"{path}: column '{column}' is {schema.field(column).type}; it "
                             f"must hold single values (text, numbers)")
    for column in reserved:
        if column in names and column not in CARRIED:
            raise InputError(f"{path}: has a column '{column}', which this job writes; "
                             f"rename it in the input")
    for column in ("weight", "n_samples"):
        if column in names and not (pa.types.is_integer(schema.field(column).type)
                                    or pa.types.is_floating(schema.field(column).type)):
            raise InputError(f"{path}: column '{column}' is {schema.field(column).type}; a "
                             f"'{column}' column is read as an earlier selection's and must "
                             f"be a number (rename it otherwise)")


def _unify(files, schemas, content_column, content: Content) -> pa.Schema:
    """One output schema: ``id`` and the content first, then the other columns in order of
    first appearance, their types promoted across files."""
    others = []
    for schema in schemas:
        keep = [f for f in schema if f.name not in (content_column, "id", *CARRIED)]
        others.append(pa.schema(keep))
    try:
        merged = pa.unify_schemas(others, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise InputError(f"inputs disagree on a column's type ({exc}); files: "
                         f"{', '.join(os.path.basename(f.path) for f in files[:5])}") from None
    head = [pa.field("id", pa.string(), nullable=False),
            pa.field(content_column, content.output_type)]
    return pa.schema(head + list(merged))
