"""Planning the read of a corpus from Parquet footers (and JSONL heads), before any work.

:func:`plan_inputs` finds the files (:mod:`tamis.storage.discovery`), reads only what it
must (Parquet footers; the first lines of a JSONL file), checks that the columns a job needs
are there, and splits the work into units (one Parquet row group, or one JSONL file). Every
problem it finds is a :class:`InputError` that names the file and the field.

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
import pyarrow.parquet as pq

from tamis.selectors.tokens import estimate_tokens
from tamis.storage.discovery import Skipped, file_format, find_inputs
from tamis.storage.errors import InputError
from tamis.storage.files import filesystem, numbered_lines, split_scheme

JSONL_SCHEMA_LINES = 1000
STRING_TYPES = (pa.string(), pa.large_string(), pa.string_view())


@dataclass(frozen=True)
class Content:
    """What a plan's content column holds."""

    kind: str  # "text" | "audio"
    types: tuple[pa.DataType, ...]  # the Arrow types it may have in a Parquet file
    wrong_type: str  # the reject reason of the rows of a file whose column has another type
    output_type: pa.DataType  # its type in the plan's schema


TEXT = Content("text", STRING_TYPES, "non_string_text", pa.string())
#: Audio clips by reference: a path (or URI) to an audio file, relative paths read against
#: the manifest's folder; or the file's bytes inside the table (Parquet).
AUDIO_PATH = Content("audio", STRING_TYPES, "non_audio_reference", pa.string())
AUDIO_BYTES = Content("audio", (pa.binary(), pa.large_binary()), "non_audio_reference",
                      pa.binary())


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
        fmt, compression, why = file_format(path)
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
