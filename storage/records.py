"""Reading one unit of input into clean records and rejects, as Arrow tables.

Every input row comes out exactly once: in the records (all output columns, plus
``n_tokens`` and the internal locator columns ``__src``/``__row``) or in the rejects (with the
field at fault and a reason). What is checked of every row (its id, its JSON, the types of its
columns) is here; what is checked of its content depends on the plan's content kind
(:data:`CONTENT_CHECKS`: text, and audio references). Nothing here imports Beam.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tamis.selectors.tokens import count_tokens
from tamis.storage.errors import DataError
from tamis.storage.files import filesystem, numbered_lines
from tamis.storage.inputs import IN_SAMPLES, IN_WEIGHT, InputFile, InputPlan, Unit, read_chunk

SRC, ROW = "__src", "__row"
BATCH_ROWS = 8192

REJECTS_SCHEMA = pa.schema(
    [
        pa.field("source", pa.string()),  # input file, relative to the inputs' root
        pa.field("row", pa.int64()),  # row (Parquet) or line (JSONL) index, from 0
        pa.field("id", pa.string()),
        pa.field("field", pa.string()),
        pa.field("reason", pa.string()),
        pa.field("record", pa.string()),  # the row as JSON, or the raw line
    ]
)


def hashed_ids(rel: str, rows: np.ndarray) -> list[str]:
    """Stable ids for rows without one: 128-bit BLAKE2b of (relative path, row index), hex."""
    prefix = rel.encode() + b"\x00"
    return [hashlib.blake2b(prefix + str(r).encode(), digest_size=16).hexdigest() for r in rows]


def read_unit(plan: InputPlan, unit: Unit,
              batch_rows: int = BATCH_ROWS) -> Iterator[tuple[pa.Table, pa.Table]]:
    """The records and the rejects of one unit, ``batch_rows`` input rows at a time, so that
    memory does not grow with the size of a row group or a JSONL file."""
    f = plan.files[unit.file]
    if f.format == "jsonl":
        yield from _read_jsonl(plan, unit.file, batch_rows)
        return
    fs, inner = filesystem(f.path)
    start = unit.row_offset
    end = start + (unit.rows or 0)
    try:
        with fs.open_input_file(inner) as handle:
            batches = pq.ParquetFile(handle).iter_batches(
                batch_size=batch_rows, row_groups=[unit.index], use_threads=False)
            for batch in batches:
                table = pa.Table.from_batches([batch])
                rows = np.arange(start, start + table.num_rows, dtype=np.int64)
                start += table.num_rows
                yield _clean(plan, unit.file, table, rows, pre_rejected=[])
    except (OSError, pa.ArrowException) as exc:
        where = f"row group {unit.index} (rows {start}-{end - 1})"
        if plan.on_corrupt == "stop":
            raise DataError(f"{f.path}: {where} cannot be decoded ({_first_line(exc)}); "
                            f"set on_corrupt: skip to reject its rows as unreadable") from None
        # The rows decoded so far are kept; the rest of the row group is rejected by index.
        for first in range(start, end, batch_rows):
            rows = range(first, min(end, first + batch_rows))
            yield _empty(plan), pa.Table.from_pylist(
                [_unreadable(f, r, f"{where}: {_first_line(exc)}") for r in rows],
                schema=REJECTS_SCHEMA)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _unreadable(f: InputFile, row: int, why: str) -> dict:
    return {"source": f.rel, "row": row, "id": None, "field": None, "reason": "unreadable",
            "record": why}


def _empty(plan: InputPlan) -> pa.Table:
    """No records, in the schema :func:`_clean` gives them."""
    table = plan.schema.empty_table().append_column("n_tokens", pa.array([], pa.int64()))
    table = table.append_column(SRC, pa.array([], pa.int32()))
    return table.append_column(ROW, pa.array([], pa.int64()))


def _clean(plan: InputPlan, src: int, table: pa.Table, rows: np.ndarray,
           pre_rejected: list[dict]) -> tuple[pa.Table, pa.Table]:
    f = plan.files[src]
    ids = _ids(plan, f, table, rows)
    reasons: list[tuple[str, str] | None] = [None] * table.num_rows
    if plan.id_column is not None:
        _mark(reasons, pc.is_null(ids), plan.id_column, "null_id")
    check = CONTENT_CHECKS[plan.content.kind]
    table, content, n_tokens = check(plan, f, table, reasons)
    bad = np.array([r is not None for r in reasons], dtype=bool)
    rejects = _rejects(f, table, rows, ids, reasons, bad) if bad.any() else []
    good = pa.array(~bad)
    columns = {"id": pc.filter(ids, good), plan.content_column: pc.filter(content, good)}
    kept = table.filter(good)
    for fld in plan.schema:
        if fld.name in columns:
            continue
        if fld.name in kept.column_names:
            columns[fld.name] = kept.column(fld.name).cast(fld.type)
        else:
            columns[fld.name] = pa.nulls(kept.num_rows, fld.type)
    out = pa.Table.from_pydict(columns, schema=plan.schema)
    out = out.append_column("n_tokens", pa.array(n_tokens(out.column(plan.content_column))))
    for name, carried, kind in (("weight", IN_WEIGHT, pa.float64()),
                                ("n_samples", IN_SAMPLES, pa.int64())):
        if name in kept.column_names:  # the output of an earlier selection
            value = pc.fill_null(kept.column(name).cast(kind), pa.scalar(1, kind))
            out = out.append_column(carried, value)
    out = out.append_column(SRC, pa.array(np.full(out.num_rows, src, dtype=np.int32)))
    out = out.append_column(ROW, pa.array(rows[~bad]))
    return out, pa.Table.from_pylist(pre_rejected + rejects, schema=REJECTS_SCHEMA)


def _check_text(plan: InputPlan, f: InputFile, table: pa.Table, reasons: list):
    """Mark text that is not a string, null, invalid UTF-8 or blank; return the table (bad
    bytes shown as U+FFFD), its text column and how tokens are counted."""
    column = plan.content_column
    text = table.column(column)
    if not f.content_ok:  # a column of lists or structs, say: every row is rejected
        _mark(reasons, pa.array([True] * table.num_rows), column, plan.content.wrong_type)
        return table, pa.nulls(table.num_rows, plan.content.output_type), count_tokens
    text = text.cast(pa.string())
    _mark(reasons, pc.is_null(text), column, "null_text")
    bad_utf8 = _invalid_utf8(text)
    if bad_utf8 is not None:
        _mark(reasons, bad_utf8, column, "invalid_utf8")
        # Rejects show the text decoded with U+FFFD for the bad bytes.
        readable = [None if v is None else v.decode("utf-8", errors="replace")
                    for v in text.cast(pa.binary()).to_pylist()]
        text = pa.chunked_array([pa.array(readable, pa.string())])
        table = table.set_column(table.schema.get_field_index(column), column, text)
    blank = pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(text)), 0)
    _mark(reasons, pc.fill_null(blank, False), column, "empty_text")
    return table, text, count_tokens


def _check_audio(plan: InputPlan, f: InputFile, table: pa.Table, reasons: list):
    """Mark audio references that are of the wrong type (a number where a path or bytes
    belong), null or empty; return the table, its reference column and a size of 0 tokens
    (an audio clip's size is its seconds, known once decoded)."""
    column = plan.content_column
    values = table.column(column)
    want = plan.content.output_type
    fits = (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)
            if pa.types.is_string(want) else
            pa.types.is_binary(values.type) or pa.types.is_large_binary(values.type))
    if not f.content_ok or not (fits or pa.types.is_null(values.type)):
        _mark(reasons, pa.array([True] * table.num_rows), column, plan.content.wrong_type)
        return table, pa.nulls(table.num_rows, want), _no_tokens
    values = values.cast(want)
    _mark(reasons, pc.is_null(values), column, "null_audio")
    empty = pc.equal(pc.binary_length(values), 0)
    _mark(reasons, pc.fill_null(empty, False), column, "empty_audio")
    return table, values, _no_tokens


def _no_tokens(column) -> np.ndarray:
    return np.zeros(len(column), dtype=np.int64)


#: How the content of each kind is checked and measured: ``check(plan, file, table, reasons)``
#: marks bad rows in ``reasons`` and returns ``(table, content column, size function)``.
CONTENT_CHECKS = {"text": _check_text, "audio": _check_audio}


def _invalid_utf8(text: pa.ChunkedArray) -> pa.Array | None:
    """A mask of the texts that are not valid UTF-8, or None when all are (the usual case,
    checked in one pass by Arrow)."""
    try:
        text.validate(full=True)
        return None
    except pa.ArrowInvalid:
        values = text.cast(pa.binary()).to_pylist()
        return pa.array([v is not None and not _decodes(v) for v in values])


def _decodes(value: bytes) -> bool:
    try:
        value.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def _ids(plan: InputPlan, f: InputFile, table: pa.Table, rows: np.ndarray) -> pa.ChunkedArray:
    if plan.id_column is None:
        return pa.chunked_array([pa.array(hashed_ids(f.rel, rows), pa.string())])
    column = table.column(plan.id_column)
    return column.cast(pa.string()) if column.type != pa.string() else column


def _mark(reasons: list, mask, field: str, reason: str) -> None:
    """Record ``reason`` for rows where ``mask`` holds; the first reason found stays."""
    for i in np.flatnonzero(np.asarray(mask.to_numpy(zero_copy_only=False), dtype=bool)):
        if reasons[i] is None:
            reasons[i] = (field, reason)


def _rejects(f, table, rows, ids, reasons, bad) -> list[dict]:
    index = np.flatnonzero(bad)
    picked = table.take(pa.array(index)).to_pylist()
    id_values = ids.take(pa.array(index)).to_pylist()
    return [
        {"source": f.rel, "row": int(rows[i]), "id": rid, "field": reasons[i][0],
         "reason": reasons[i][1], "record": json.dumps(rec, default=str, ensure_ascii=False)}
        for i, rid, rec in zip(index, id_values, picked, strict=True)
    ]


def _read_jsonl(plan: InputPlan, src: int,
                batch_rows: int) -> Iterator[tuple[pa.Table, pa.Table]]:
    """Parse a JSONL file line by line: a line that is not a JSON object is rejected."""
    f = plan.files[src]
    types = {fld.name: fld.type for fld in plan.schema if fld.name != "id"}
    if plan.id_column == "id":  # the output id is text: a number id is taken as its digits
        types["id"] = pa.string()
    types[plan.content_column] = plan.content.output_type
    fs, inner = filesystem(f.path)
    last = -1
    try:
        with fs.open_input_stream(inner, compression=f.compression) as stream:
            lines = numbered_lines(stream, read_chunk(f.compression))
            while chunk := list(itertools.islice(lines, batch_rows)):
                last = chunk[-1][0]
                yield _parse_lines(plan, src, chunk, types)
    except (OSError, pa.ArrowException, EOFError) as exc:
        what = f"{f.compression}-compressed JSONL" if f.compression else "JSONL"
        if plan.on_corrupt == "stop":
            raise DataError(f"{f.path}: cannot be decoded as {what} after line {last + 1} "
                            f"({_first_line(exc)}); set on_corrupt: skip to keep the lines "
                            f"before it") from None
        # The lines after the break cannot be counted: one reject row marks where it is.
        yield _empty(plan), pa.Table.from_pylist(
            [_unreadable(f, last + 1, f"the rest of the file cannot be decoded as {what}: "
                                      f"{_first_line(exc)}")], schema=REJECTS_SCHEMA)


def _parse_lines(plan: InputPlan, src: int, chunk: list[tuple[int, bytes]],
                 types: dict) -> tuple[pa.Table, pa.Table]:
    f = plan.files[src]
    good: list[dict] = []
    rows: list[int] = []
    rejected: list[dict] = []
    for index, raw in chunk:
        value, field, reason = _parse_line(raw, plan.text_column, plan.id_column, types,
                                           plan.content.wrong_type)
        if reason is not None:
            rid = value.get(plan.id_column) if isinstance(value, dict) and plan.id_column else None
            rejected.append({"source": f.rel, "row": index, "id": None if rid is None else str(rid),
                             "field": field, "reason": reason,
                             "record": raw.decode("utf-8", errors="replace")})
            continue
        good.append(value)
        rows.append(index)
    schema = pa.schema([pa.field(n, t) for n, t in types.items()])
    table = pa.Table.from_pylist([{n: g.get(n) for n in types} for g in good], schema=schema)
    return _clean(plan, src, table, np.asarray(rows, dtype=np.int64), rejected)


def _parse_line(raw: bytes, text_column: str, id_column: str | None, types: dict,
                wrong_type: str = "non_string_text") -> tuple[object, str | None, str | None]:
    """``(value, field, reason)``: reason is None when the line is a usable record."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None, None, "invalid_utf8"
    try:
        value = json.loads(line)
    except ValueError:
        return None, None, "invalid_json"
    if not isinstance(value, dict):
        return value, None, "not_an_object"
    if id_column == "id" and isinstance(value.get("id"), int) and not isinstance(
            value["id"], bool):
        value["id"] = str(value["id"])
    text = value.get(text_column)
    if text is not None and not isinstance(text, str):
        return value, text_column, wrong_type
    if text is not None and not _encodes(text):  # a lone surrogate, legal in JSON only
        return value, text_column, "invalid_utf8"
    for name, typ in types.items():
        if value.get(name) is not None and name != text_column:
            try:
                pa.array([value[name]], type=typ)
            except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, UnicodeEncodeError):
                return value, name, "bad_value"
    return value, None, None


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False
