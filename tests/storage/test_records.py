from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tamis.storage.errors import InputError
from tamis.storage.inputs import plan_inputs
from tamis.storage.records import REJECTS_SCHEMA, hashed_ids, read_unit


def read_all(plan):
    kept, rejected = [], []
    for unit in plan.units:
        for k, r in read_unit(plan, unit, batch_rows=3):
            kept.append(k)
            rejected.append(r)
    return pa.concat_tables(kept), pa.concat_tables(rejected)


def test_hashed_ids_are_stable_and_distinct():
    ids = hashed_ids("a/b.parquet", [0, 1, 2])
    assert ids == hashed_ids("a/b.parquet", [0, 1, 2])
    assert len(set(ids + hashed_ids("a/c.parquet", [0, 1, 2]))) == 6
    assert ids[0] == "3e902bb9278fe66d3a9103ac3d31cad5"  # golden: ids must never change


def test_every_parquet_row_is_kept_or_rejected_with_a_reason(tmp_path):
    rows = [{"id": "a", "text": "fine text"}, {"id": "b", "text": None},
            {"id": "c", "text": "   \n\t"}, {"id": None, "text": "no id"},
            {"id": "e", "text": ""}, {"id": "f", "text": "also fine"}]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "x.parquet", row_group_size=4)
    plan = plan_inputs([str(tmp_path)], "text")
    kept, rejected = read_all(plan)
    assert kept.column("id").to_pylist() == ["a", "f"]
    assert kept.column("n_tokens").to_pylist() == [2, 2]
    assert rejected.schema == REJECTS_SCHEMA
    got = {(r["row"], r["field"], r["reason"]) for r in rejected.to_pylist()}
    assert got == {(1, "text", "null_text"), (2, "text", "empty_text"), (3, "id", "null_id"),
                   (4, "text", "empty_text")}
    assert json.loads(rejected.to_pylist()[0]["record"])["id"] == "b"


def test_non_string_text_column_rejects_its_rows(tmp_path):
    pq.write_table(pa.table({"text": [1, 2]}), tmp_path / "x.parquet")
    kept, rejected = read_all(plan_inputs([str(tmp_path)], "text"))
    assert kept.num_rows == 0
    assert rejected.column("reason").to_pylist() == ["non_string_text"] * 2


def test_jsonl_lines_of_every_kind(tmp_path):
    lines = [
        b'{"id": 1, "text": "good one", "n": 3}',
        b'{"id": 2, "text": 42}',
        b"not json at all",
        b'["a", "list"]',
        b'{"id": 5, "text": "bad n", "n": "three"}',
        b'{"id": 6, "text": "caf\xe9 latin-1"}',
        b"",
        b'{"id": 8}',
        b'{"id": 9, "text": "good two", "n": 4}',
    ]
    (tmp_path / "x.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    plan = plan_inputs([str(tmp_path / "x.jsonl")], "text")
    kept, rejected = read_all(plan)
    assert kept.column("id").to_pylist() == ["1", "9"]
    assert kept.column("n").to_pylist() == [3, 4]
    got = [(r["row"], r["field"], r["reason"]) for r in rejected.sort_by("row").to_pylist()]
    assert got == [(1, "text", "non_string_text"), (2, None, "invalid_json"),
                   (3, None, "not_an_object"), (4, "n", "bad_value"), (5, None, "invalid_utf8"),
                   (7, "text", "null_text")]
    assert rejected.sort_by("row").column("record").to_pylist()[1] == "not json at all"


def test_invalid_utf8_in_parquet_is_rejected_not_a_crash(tmp_path):
    text = pa.array([b"fine", b"caf\xe9 au lait", None], pa.binary()).view(pa.string())
    pq.write_table(pa.table({"text": text}), tmp_path / "x.parquet")
    kept, rejected = read_all(plan_inputs([str(tmp_path)], "text"))
    assert kept.column("text").to_pylist() == ["fine"]
    assert [(r["row"], r["reason"]) for r in rejected.to_pylist()] == [(1, "invalid_utf8"),
                                                                        (2, "null_text")]
    assert "caf\ufffd au lait" in rejected.to_pylist()[0]["record"]


def test_jsonl_edge_values_are_rejected_one_row_at_a_time(tmp_path):
    lines = [json.dumps({"doc_id": i, "text": f"row {i}", "n": i}) for i in range(4)]
    lines += ['{"doc_id": 4, "text": "bad \\ud800 text", "n": 4}',  # lone surrogate
              json.dumps({"doc_id": 5, "text": "huge", "n": 2**70}),
              json.dumps({"doc_id": "abc", "text": "string id", "n": 6})]
    (tmp_path / "x.jsonl").write_text("\n".join(lines) + "\n")
    plan = plan_inputs([str(tmp_path / "x.jsonl")], "text", id_column="doc_id")
    kept, rejected = read_all(plan)
    assert kept.column("id").to_pylist() == ["0", "1", "2", "3"]
    got = [(r["row"], r["field"], r["reason"]) for r in rejected.sort_by("row").to_pylist()]
    assert got == [(4, "text", "invalid_utf8"), (5, "n", "bad_value"), (6, "doc_id", "bad_value")]


def test_nested_id_or_stratum_columns_are_refused_at_planning(tmp_path):
    pq.write_table(pa.table({"text": ["a"], "id": [[1, 2]]}), tmp_path / "x.parquet")
    with pytest.raises(InputError, match="column 'id' is list<.*>; it must hold single"):
        plan_inputs([str(tmp_path)], "text")
    pq.write_table(pa.table({"text": ["a"], "tags": [["x"]]}), tmp_path / "x.parquet")
    with pytest.raises(InputError, match="column 'tags' is list"):
        plan_inputs([str(tmp_path)], "text", required_columns=["tags"])
