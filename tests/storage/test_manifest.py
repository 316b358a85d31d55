from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from tamis.storage import manifest as mf
from tamis.storage.shards import write_table

SCHEMA = pa.schema([("id", pa.string()), ("n_tokens", pa.int64()), ("weight", pa.float64()),
                    ("n_samples", pa.int64())])


def make_output(out: Path, weights: list[list[float]]) -> dict:
    shards, kept = [], 0
    for s, ws in enumerate(weights):
        table = pa.table({"id": [f"{s}-{i}" for i in range(len(ws))],
                          "n_tokens": [3] * len(ws), "weight": ws, "n_samples": [1] * len(ws)})
        shards.append(write_table(str(out), f"data/part-{s}.parquet", table, SCHEMA))
        kept += len(ws)
    manifest = {"schema_version": mf.SCHEMA_VERSION, "created_at": "now",
                "outputs": {"shards": shards, "rejects": [], "rows": kept, "tokens": 3 * kept},
                "accounting": {"rows_in": kept + 2, "rows_kept": kept,
                               "rows_dropped": {"not_sampled": 2}, "rows_rejected": {}}}
    mf.write_manifest(str(out), manifest)
    return manifest


def test_verify_passes_then_names_the_first_mismatch(tmp_path):
    make_output(tmp_path, [[1.0, 2.0], [0.5]])
    assert mf.verify(str(tmp_path))["accounting"]["rows_kept"] == 3
    (tmp_path / "data" / "stray.parquet").write_bytes(b"x")
    with pytest.raises(mf.VerifyError, match="data/stray.parquet: a file the manifest does not"):
        mf.verify(str(tmp_path))


def test_verify_catches_bad_accounting(tmp_path):
    manifest = make_output(tmp_path, [[1.0]])
    manifest["accounting"]["rows_in"] = 9
    mf.write_manifest(str(tmp_path), manifest)
    with pytest.raises(mf.VerifyError, match=r"rows_in 9 != rows_kept 1 \+ dropped 2"):
        mf.verify(str(tmp_path))


def test_verify_without_manifest(tmp_path):
    with pytest.raises(mf.VerifyError, match="no manifest.json"):
        mf.verify(str(tmp_path))


def test_reader_iterates_and_samples_by_weight(tmp_path):
    make_output(tmp_path, [[1.0, 0.0], [3.0]])
    reader = mf.ManifestReader(str(tmp_path))
    assert len(reader) == 3
    assert [r["id"] for r in reader.records(columns=["id"])] == ["0-0", "0-1", "1-0"]
    draws = reader.sample(4000, seed=1, columns=["id"])
    counts = {i: sum(d["id"] == i for d in draws) for i in ("0-0", "0-1", "1-0")}
    assert counts["0-1"] == 0
    assert abs(counts["1-0"] / 4000 - 0.75) < 0.03
    assert reader.sample(50, seed=1) == reader.sample(50, seed=1)
    with pytest.raises(ValueError, match="by must be"):
        reader.sample(1, by="size")


def test_reader_imports_without_beam():
    code = ("import sys; sys.modules['apache_beam'] = None; "
            "from tamis.storage.manifest import ManifestReader; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "ok", out.stderr


def test_a_corrupt_manifest_is_named_not_a_traceback(tmp_path):
    (tmp_path / "manifest.json").write_text("{half")
    with pytest.raises(mf.VerifyError, match="manifest.json: not a readable manifest"):
        mf.verify(str(tmp_path))
    (tmp_path / "manifest.json").write_text("[1, 2]")
    with pytest.raises(mf.VerifyError, match="not a manifest"):
        mf.load_manifest(str(tmp_path))
