"""Output folders: what is tamis's, the staging folder, and the swap (local and object store)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.fs as pafs

from tamis.storage import outputs


def _result(folder: Path, shard: str = "data/part-00000-of-00001.parquet",
            text: str = "new") -> Path:
    (folder / "data").mkdir(parents=True)
    (folder / shard).write_text(text)
    (folder / "manifest.json").write_text(json.dumps({
        "job": "sample", "schema_version": 1,
        "outputs": {"shards": [{"path": shard}], "rejects": []}}))
    return folder


def test_strangers_are_the_files_tamis_did_not_write(tmp_path):
    out = _result(tmp_path / "out")
    (out / "models").mkdir()
    for name in ("models/quality.bin", "models/lsi-" + "a" * 32 + ".npz", "clusters.npz",
                 ".spill/x.arrow", "data/.tmp-" + "0" * 32 + "-part.parquet"):
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text("ours")
    assert outputs.strangers(str(out)) == []
    for name in ("models/mine.pt", "data/extra.parquet", "notes.txt", "rejects/sub/x.parquet"):
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text("theirs")
    assert outputs.strangers(str(out)) == ["data/extra.parquet", "models/mine.pt", "notes.txt",
                                           "rejects/sub/x.parquet"]


def test_an_unfinished_folder_owns_its_tamis_named_shards_but_no_manifest(tmp_path):
    out = tmp_path / "out"
    (out / "data").mkdir(parents=True)
    (out / "data" / "a-r0000000000-ab.parquet").write_text("half")
    assert outputs.strangers(str(out)) == []
    (out / "manifest.json").write_text("{}")  # not a tamis manifest
    assert outputs.strangers(str(out)) == ["manifest.json"]


def test_the_local_swap_replaces_the_earlier_result_whole(tmp_path):
    out = _result(tmp_path / "out", text="old")
    staging = Path(outputs.staging_path(str(out)))
    assert staging == tmp_path / ".out.tamis-staging"
    _result(staging, shard="data/part-00000-of-00002.parquet")
    outputs.swap_in(str(staging), str(out))
    assert sorted(p.name for p in (out / "data").iterdir()) == ["part-00000-of-00002.parquet"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_an_object_store_swap_moves_the_files_one_by_one(tmp_path, monkeypatch):
    """A file system that is not local (a SubTreeFileSystem stands for gs:// or s3://) has no
    folder rename: the files move one by one, and the earlier ones go."""
    store = pafs.SubTreeFileSystem(str(tmp_path), pafs.LocalFileSystem())
    monkeypatch.setattr(outputs, "filesystem", lambda path: (store, path.removeprefix("mem://")))
    out = _result(tmp_path / "out", text="old")
    _result(tmp_path / ".out.tamis-staging", shard="data/part-00000-of-00002.parquet")
    outputs.swap_in("mem://.out.tamis-staging", "mem://out")
    assert sorted(p.name for p in (out / "data").iterdir()) == ["part-00000-of-00002.parquet"]
    assert json.loads((out / "manifest.json").read_text())["outputs"]["shards"][0]["path"] == (
        "data/part-00000-of-00002.parquet")
    assert not (tmp_path / ".out.tamis-staging").exists()


def test_recover_brings_back_a_result_a_killed_swap_moved_aside(tmp_path):
    aside = _result(tmp_path / ".out.tamis-old-0123456789ab", text="earlier")
    outputs.recover(str(tmp_path / "out"))
    assert not aside.exists()
    assert (tmp_path / "out" / "data" / "part-00000-of-00001.parquet").read_text() == "earlier"
    again = _result(tmp_path / ".out.tamis-old-ba9876543210", text="older")
    outputs.recover(str(tmp_path / "out"))  # the output is there: the old copy goes
    assert not again.exists()
    assert (tmp_path / "out" / "data" / "part-00000-of-00001.parquet").read_text() == "earlier"
