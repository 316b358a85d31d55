"""The writing stages on Beam's test runner: shards through spill files, rejects, and a
manifest that refuses to lie."""

from __future__ import annotations

import json

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apache_beam.testing import test_pipeline

from tamis.pipelines.write import WriteManifest, WriteRejects, WriteShards
from tamis.storage import manifest as mf
from tamis.storage.records import REJECTS_SCHEMA
from tamis.storage.shards import SPILL

SCHEMA = pa.schema([("id", pa.string()), ("n_tokens", pa.int64()), ("__key", pa.uint64())])


def table(ids: list[str], keys: list[int]) -> pa.Table:
    return pa.table({"id": ids, "n_tokens": [1] * len(ids), "__key": pa.array(keys, pa.uint64())})


def test_shards_are_sorted_complete_and_written_even_when_empty(tmp_path):
    out = str(tmp_path)
    pairs = [(0, table(["b", "a"], [9, 2])), (0, table(["c"], [5])), (2, table(["d"], [1]))]
    with test_pipeline.TestPipeline() as p:
        entries = (p | beam.Create(pairs)
                   | WriteShards(out, SCHEMA.remove(2), 3, ["__key", "id"]))
        _ = entries | beam.Map(lambda e: (tmp_path / "entries.jsonl").open("a").write(
            json.dumps(e) + "\n"))
    written = {e["path"]: e for e in map(json.loads, (tmp_path / "entries.jsonl")
                                         .read_text().splitlines())}
    assert sorted(written) == [f"data/part-0000{i}-of-00003.parquet" for i in range(3)]
    first = pq.read_table(tmp_path / "data" / "part-00000-of-00003.parquet")
    assert first.column("id").to_pylist() == ["a", "c", "b"]  # by key
    assert first.schema.names == ["id", "n_tokens"]  # the sort key is not written
    assert written["data/part-00001-of-00003.parquet"]["rows"] == 0
    assert written["data/part-00002-of-00003.parquet"]["tokens"] == 1
    assert (tmp_path / SPILL).is_dir()  # kept until the manifest is written


def test_rejects_are_one_file_per_input_in_row_order(tmp_path):
    def rejects(rows: list[int]) -> pa.Table:
        return pa.Table.from_pylist([{"source": "a.parquet", "row": r, "id": None,
                                      "field": "text", "reason": "null_text", "record": "{}"}
                                     for r in rows], schema=REJECTS_SCHEMA)

    with test_pipeline.TestPipeline() as p:
        _ = p | beam.Create([(4, rejects([7, 2])), (4, rejects([5]))]) | WriteRejects(
            str(tmp_path))
    got = pq.read_table(tmp_path / "rejects" / "part-00004.parquet")
    assert got.column("row").to_pylist() == [2, 5, 7]


def manifest(kept: int) -> dict:
    return {"schema_version": mf.SCHEMA_VERSION, "outputs": {"shards": [], "rejects": []},
            "accounting": {"rows_in": 5, "rows_kept": kept, "rows_dropped": {"not_sampled": 2},
                           "rows_rejected": {}}}


def test_the_manifest_comes_last_and_removes_the_spill_files(tmp_path):
    (tmp_path / SPILL).mkdir()
    (tmp_path / SPILL / "x.arrow").write_bytes(b"")
    with test_pipeline.TestPipeline() as p:
        side = p | "Side" >> beam.Create([1, 2])
        _ = {"n": side} | WriteManifest(str(tmp_path), lambda n: {**manifest(3), "n": sum(n)})
    assert json.loads((tmp_path / "manifest.json").read_text())["n"] == 3
    assert not (tmp_path / SPILL).exists()


def test_a_manifest_whose_rows_do_not_add_up_is_not_written(tmp_path):
    with pytest.raises(Exception, match="rows were lost"):
        with test_pipeline.TestPipeline() as p:
            side = p | "Side" >> beam.Create([1])
            _ = {"n": side} | WriteManifest(str(tmp_path), lambda n: manifest(2))
    assert not (tmp_path / "manifest.json").exists()
