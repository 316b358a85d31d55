"""Inputs real corpora have: compressed, empty, nested, corrupt, duplicated, mixed with other
files and with earlier outputs. Each case runs ``tamis sample`` and states its outcome: the
job runs (and the manifest says what was read, skipped or rejected, rows counted without
tamis), or it stops with one line naming the file."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from reliability.faults import (
    balanced,
    corrupt_page,
    demo_rows,
    independent_rows,
    manifest,
    sample_config,
)

from tamis.storage.manifest import verify


def _jsonl(rows: pa.Table) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in rows.to_pylist())


def _arrow_compress(data: bytes, codec: str) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.CompressedOutputStream(sink, codec) as out:
        out.write(data)
    return sink.getvalue().to_pybytes()


def _extra_rows(n: int = 30) -> pa.Table:
    table = demo_rows(n, start=1000)
    return table.set_column(0, "id", pa.array([f"x-{i}" for i in range(n)]))


def _ok(tmp_path, cli, pool, *extra_inputs, **keys):
    cfg = sample_config(tmp_path, [pool, *extra_inputs], **keys)
    code, _, err = cli("sample", cfg, "--workers", "1")
    assert code == 0, err
    out = tmp_path / "out"
    verify(str(out))
    m = manifest(out)
    assert balanced(m["accounting"])
    return m, err


@pytest.mark.parametrize("suffix,compress", [
    (".jsonl.gz", gzip.compress), (".jsonl.zst", lambda b: _arrow_compress(b, "zstd")),
    (".ndjson.bz2", bz2.compress)])
def test_compressed_jsonl_beside_parquet_is_read(tmp_path, cli, pool, suffix, compress):
    (pool / f"more{suffix}").write_bytes(compress(_jsonl(_extra_rows())))
    m, _ = _ok(tmp_path, cli, pool)
    assert m["accounting"]["rows_in"] == 270 == independent_rows(
        [pool / "a.parquet", pool / "b.parquet"]) + 30
    assert [i["rel"] for i in m["inputs"]] == ["a.parquet", "b.parquet", f"more{suffix}"]
    assert m["skipped"] == []


def test_a_folder_of_only_gzip_jsonl_is_read(tmp_path, cli):
    folder = tmp_path / "gz"
    folder.mkdir()
    (folder / "a.jsonl.gz").write_bytes(gzip.compress(_jsonl(demo_rows(150))))
    m, _ = _ok(tmp_path, cli, folder)
    assert m["accounting"]["rows_in"] == 150


def test_an_unread_compression_is_skipped_and_named(tmp_path, cli, pool):
    (pool / "more.jsonl.xz").write_bytes(lzma.compress(_jsonl(_extra_rows())))
    m, err = _ok(tmp_path, cli, pool)
    assert m["accounting"]["rows_in"] == 240
    [skipped] = m["skipped"]
    assert skipped["path"].endswith("more.jsonl.xz") and "xz" in skipped["reason"]
    assert "not read under the inputs" in err and "more.jsonl.xz" in err


def test_a_folder_of_only_unread_compression_is_refused_naming_it(tmp_path, cli):
    folder = tmp_path / "xz"
    folder.mkdir()
    (folder / "a.jsonl.xz").write_bytes(lzma.compress(_jsonl(demo_rows(10))))
    code, _, err = cli("sample", sample_config(tmp_path, [folder]))
    assert code == 2 and "compressed with xz" in err and "gzip, zstd or bz2" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("name,content", [
    ("empty.jsonl", b""), ("blank.jsonl", b"\n  \n\n"), ("empty.parquet", b"")])
def test_an_empty_file_is_zero_rows(tmp_path, cli, pool, name, content):
    (pool / name).write_bytes(content)
    m, _ = _ok(tmp_path, cli, pool)
    assert m["accounting"]["rows_in"] == 240
    assert {i["rel"]: i["rows"] for i in m["inputs"]}[name] == 0


def test_only_empty_files_stop_with_one_line(tmp_path, cli):
    folder = tmp_path / "empty"
    folder.mkdir()
    (folder / "a.jsonl").write_bytes(b"")
    code, _, err = cli("sample", sample_config(tmp_path, [folder]))
    assert code == 2 and "every input file is empty" in err


@pytest.mark.parametrize("kind", ["list", "struct"])
def test_a_nested_text_column_is_rejected_row_by_row(tmp_path, cli, pool, kind):
    texts = demo_rows(20, start=900).column("text").to_pylist()
    values = ([[t] for t in texts] if kind == "list" else [{"body": t} for t in texts])
    pq.write_table(pa.table({"id": [f"n-{i}" for i in range(20)], "text": values,
                             "domain": ["nested"] * 20}), pool / "nested.parquet")
    m, err = _ok(tmp_path, cli, pool)
    assert m["accounting"]["rows_rejected"] == {"non_string_text": 20}
    assert "will be rejected as non_string_text" in err


def test_a_corrupt_page_stops_with_the_file_and_row_group(tmp_path, cli, pool):
    pq.write_table(demo_rows(60, start=500), pool / "bad.parquet", compression="snappy")
    corrupt_page(pool / "bad.parquet")
    code, _, err = cli("sample", sample_config(tmp_path, [pool]), "--workers", "1")
    assert code == 1
    line = err.strip().splitlines()[-1]
    assert "bad.parquet: row group 0 (rows 0-59) cannot be decoded" in line
    assert "on_corrupt: skip" in line
    assert not (tmp_path / "out").exists()  # nothing half-written where a result would be


def test_a_corrupt_page_is_rejected_as_unreadable_when_asked(tmp_path, cli, pool):
    pq.write_table(demo_rows(60, start=500), pool / "bad.parquet", compression="snappy")
    corrupt_page(pool / "bad.parquet")
    m, err = _ok(tmp_path, cli, pool, on_corrupt="skip")
    assert m["accounting"]["rows_in"] == 300
    assert m["accounting"]["rows_rejected"] == {"unreadable": 60}
    assert "could not be decoded" in err
    rejects = pq.read_table(tmp_path / "out" / "rejects" / "part-00002.parquet")
    assert rejects.column("row").to_pylist() == list(range(60))


def test_a_truncated_gzip_stops_or_keeps_what_came_before(tmp_path, cli, pool):
    data = gzip.compress(_jsonl(_extra_rows(200)))
    (pool / "cut.jsonl.gz").write_bytes(data[: len(data) // 2])
    code, _, err = cli("sample", sample_config(tmp_path, [pool]), "--workers", "1")
    assert code == 2  # found while planning, from the file's first lines
    assert "cut.jsonl.gz: not readable as gzip-compressed JSONL (Truncated" in err
    m, _ = _ok(tmp_path, cli, pool, on_corrupt="skip")
    assert m["accounting"]["rows_rejected"] == {"unreadable": 1}  # where it broke
    assert 240 < m["accounting"]["rows_in"] < 440


def test_a_file_that_is_not_parquet_stops_naming_it(tmp_path, cli, pool):
    (pool / "fake.parquet").write_text("not parquet at all")
    code, _, err = cli("sample", sample_config(tmp_path, [pool]))
    assert code == 2 and "fake.parquet: not a readable Parquet file" in err


def test_duplicate_ids_across_files_are_counted_and_kept_by_default(tmp_path, cli, pool):
    copies = pq.read_table(pool / "a.parquet").slice(0, 25)
    pq.write_table(copies, pool / "copies.parquet")
    m, err = _ok(tmp_path, cli, pool)
    assert m["duplicate_ids"] == {"rows": 25, "exact": True, "policy": "keep"}
    assert "25 rows repeat an id" in err
    assert any("repeat an id" in w for w in m["warnings"])


def test_duplicate_ids_rejected_keep_the_first_copy(tmp_path, cli, pool):
    copies = pq.read_table(pool / "a.parquet").slice(0, 25)
    pq.write_table(copies, pool / "z-copies.parquet")
    m, _ = _ok(tmp_path, cli, pool, on_duplicate_id="reject")
    assert m["accounting"]["rows_rejected"] == {"duplicate_id": 25}
    rejects = pq.read_table(tmp_path / "out" / "rejects" / "part-00002.parquet")
    assert set(rejects.column("source").to_pylist()) == {"z-copies.parquet"}  # the later file
    kept = pq.read_table(tmp_path / "out" / "data").column("id").to_pylist()
    assert len(kept) == len(set(kept))


def test_duplicate_ids_stop_the_job_when_asked(tmp_path, cli, pool):
    pq.write_table(pq.read_table(pool / "a.parquet").slice(0, 3), pool / "copies.parquet")
    code, _, err = cli("sample", sample_config(tmp_path, [pool], on_duplicate_id="stop"),
                       "--workers", "1")
    assert code == 1 and "3 rows repeat an id seen before" in err
    assert not (tmp_path / "out").exists()


def test_other_files_and_hidden_files_are_listed_as_skipped(tmp_path, cli, pool):
    (pool / "README.md").write_text("about this corpus")
    (pool / "_SUCCESS").write_text("")
    (pool / ".cache").mkdir()
    (pool / ".cache" / "x.parquet").write_bytes(b"junk")
    m, _ = _ok(tmp_path, cli, pool)
    reasons = {Path(s["path"]).name: s["reason"] for s in m["skipped"]}
    assert set(reasons) == {"README.md", "_SUCCESS", ".cache"}
    assert "not a Parquet or JSONL file" in reasons["README.md"]
    assert "hidden" in reasons["_SUCCESS"] and "1 file" in reasons[".cache"]


def test_an_earlier_output_under_an_input_folder_is_skipped(tmp_path, cli, pool):
    first = sample_config(tmp_path, [pool], output=str(tmp_path / "first"))
    assert cli("sample", first, "--workers", "1")[0] == 0
    (tmp_path / "first").rename(pool / "first")  # moved under the corpus by hand
    m, _ = _ok(tmp_path, cli, pool)
    assert m["accounting"]["rows_in"] == 240
    [skipped] = m["skipped"]
    assert skipped["path"].endswith("first") and "earlier tamis sample job" in skipped["reason"]


def test_an_output_folder_is_read_as_input_by_its_manifest(tmp_path, cli, pool):
    first = sample_config(tmp_path, [pool], output=str(tmp_path / "first"))
    assert cli("sample", first, "--workers", "1")[0] == 0
    (tmp_path / "sample.yaml").unlink()
    cfg = sample_config(tmp_path, [tmp_path / "first"], budget={"rows": 40})
    code, _, err = cli("sample", cfg, "--workers", "1")
    assert code == 0, err
    m = manifest(tmp_path / "out")
    assert m["accounting"]["rows_in"] == 100 and m["accounting"]["rows_kept"] == 40
    assert [i["rel"] for i in m["inputs"]] == ["part-00000-of-00001.parquet"]


@pytest.mark.parametrize("line,reason", [
    (b'{"id": "j1", "text": "\\ud800 lone"}', "invalid_utf8"),
    (b"not json", "invalid_json"),
    (b"[1, 2]", "not_an_object"),
    (b'{"id": "j2", "text": null}', "null_text"),
    (b'{"id": "j3", "text": "   "}', "empty_text"),
    (b'{"id": "j4", "text": 42}', "non_string_text"),
    (b'{"id": null, "text": "fine text"}', "null_id"),
    (b'{"id": "j5", "text": "x\xff\xfe"}', "invalid_utf8"),
])
def test_bad_jsonl_lines_are_rejected_with_their_reason(tmp_path, cli, pool, line, reason):
    good = _jsonl(_extra_rows(5))
    (pool / "mixed.jsonl").write_bytes(good + line + b"\n")
    m, _ = _ok(tmp_path, cli, pool)
    assert m["accounting"]["rows_rejected"] == {reason: 1}
    assert m["accounting"]["rows_in"] == 246 == independent_rows(
        [pool / "a.parquet", pool / "b.parquet", pool / "mixed.jsonl"])


@pytest.mark.parametrize("setup,message", [
    ("missing_text", "no column 'text'"),
    ("some_ids", "no column 'id' while other inputs have one"),
    ("reserved", "column 'weight' is string"),
    ("nested_id", "column 'id' is list"),
])
def test_inputs_a_job_cannot_read_stop_with_one_line(tmp_path, cli, pool, setup, message):
    rows = demo_rows(10, start=700)
    if setup == "missing_text":
        table = rows.rename_columns(["id", "body", "domain"])
    elif setup == "some_ids":
        table = rows.drop_columns(["id"])
    elif setup == "reserved":
        table = rows.append_column("weight", pa.array(["heavy"] * 10))
    else:
        table = rows.set_column(0, "id", pa.array([[i] for i in range(10)]))
    pq.write_table(table, pool / "odd.parquet")
    code, _, err = cli("sample", sample_config(tmp_path, [pool]))
    assert code == 2 and "odd.parquet" in err and message in err
    assert len(err.strip().splitlines()) == 1


def test_a_missing_input_stops_with_one_line(tmp_path, cli):
    code, _, err = cli("sample", sample_config(tmp_path, [tmp_path / "nowhere"]))
    assert code == 2 and "nowhere does not exist" in err
