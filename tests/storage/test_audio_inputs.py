"""Audio manifests through the modality-neutral input layer: a column of paths (Parquet or
JSONL) or of bytes (Parquet), every row read or rejected with the file, row and reason."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq

from tamis.storage.inputs import AUDIO_BYTES, AUDIO_PATH, plan_inputs
from tamis.storage.records import read_unit


def _read(plan):
    kept, rejects = [], []
    for unit in plan.units:
        for records, bad in read_unit(plan, unit):
            kept += records.to_pylist()
            rejects += bad.to_pylist()
    return kept, rejects


def test_paths_in_parquet_and_jsonl(tmp_path):
    pq.write_table(pa.table({"id": ["a", "b", "c", "d"],
                             "audio": ["clips/a.wav", None, "", "/abs/d.flac"],
                             "duration": [1.5, 2.0, 3.0, 4.0]}), tmp_path / "m.parquet")
    lines = [{"id": "e", "audio": "e.wav", "duration": 1.0}, {"id": "f", "audio": 7}]
    (tmp_path / "m.jsonl").write_text("\n".join(json.dumps(x) for x in lines))
    plan = plan_inputs([str(tmp_path / "m.parquet")], "audio", content=AUDIO_PATH)
    kept, rejects = _read(plan)
    assert [(r["id"], r["audio"], r["n_tokens"]) for r in kept] == [
        ("a", "clips/a.wav", 0), ("d", "/abs/d.flac", 0)]
    assert [(r["row"], r["field"], r["reason"]) for r in rejects] == [
        (1, "audio", "null_audio"), (2, "audio", "empty_audio")]
    plan = plan_inputs([str(tmp_path / "m.jsonl")], "audio", content=AUDIO_PATH)
    kept, rejects = _read(plan)
    assert [r["id"] for r in kept] == ["e"]
    assert [(r["row"], r["reason"]) for r in rejects] == [(1, "non_audio_reference")]


def test_bytes_in_parquet_and_the_wrong_type(tmp_path):
    pq.write_table(pa.table({"id": ["a", "b"], "audio": pa.array([b"RIFF....", b""],
                                                                 pa.binary())}),
                   tmp_path / "bytes.parquet")
    plan = plan_inputs([str(tmp_path / "bytes.parquet")], "audio", content=AUDIO_BYTES)
    kept, rejects = _read(plan)
    assert [(r["id"], r["audio"]) for r in kept] == [("a", b"RIFF....")]
    assert [r["reason"] for r in rejects] == ["empty_audio"]
    plan = plan_inputs([str(tmp_path / "bytes.parquet")], "audio", content=AUDIO_PATH)
    kept, rejects = _read(plan)
    assert not kept and {r["reason"] for r in rejects} == {"non_audio_reference"}
    assert plan.warnings  # the plan says the column is not what the content needs
