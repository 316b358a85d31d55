"""``tamis cluster`` end to end on LSI embeddings of real demo text."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
from corpora import write_config

from tamis.runners.cli import main
from tamis.storage.cache import open_cache, read_documents
from tamis.storage.clusters import load_model, read_counts

pytestmark = pytest.mark.slow


def test_cluster_assigns_every_document_at_every_level(world):
    root, manifest = world
    assert manifest["accounting"]["rows_in"] == manifest["accounting"]["rows_kept"] == 1200
    table = pq.read_table(root / "clusters" / "data")
    assert np.all(table.column("cluster_l1").to_numpy() // 4 == table.column("cluster_l0"))
    rows, tokens = read_counts(str(root / "clusters"), 1)
    assert len(rows) == 16 and rows.sum() == 1200
    assert tokens.sum() == manifest["outputs"]["tokens"]
    assert manifest["clusters"]["levels"] == 2 and manifest["clusters"]["branching"] == 4
    # the saved tree routes the cached vectors to the same clusters
    model = load_model(str(root / "clusters" / "clusters.npz"))
    cache = open_cache(str(root / "pool-emb"))
    ids, vectors, _ = read_documents(cache.shard_path(cache.shards[0]))
    mine = dict(zip(table.column("id").to_pylist(), table.column("cluster_l1").to_pylist(),
                    strict=True))
    assert [mine[i] for i in ids] == model.assign(vectors)[:, 1].tolist()


def test_bad_cluster_and_crisp_inputs(world, tmp_path, capsys):
    root, _ = world
    config = write_config(tmp_path / "c.yaml", embeddings=str(root / "pool"),
                          output=str(tmp_path / "o"))
    assert main(["cluster", str(config)]) == 2
    assert "is not an embedding cache" in capsys.readouterr().err
    config = write_config(root / "x.yaml", inputs=[str(root / "pool")],
                          embeddings=str(root / "pool-emb"), clusters=str(root / "pool-emb"),
                          output=str(root / "x"), budget={"tokens": 30_000},
                          specialists=[{"embeddings": str(root / "python-emb")}])
    assert main(["crisp", str(config)]) == 2
    assert "holds the output of 'embed', not cluster" in capsys.readouterr().err




def test_a_tree_is_refitted_over_its_own_outputs_with_overwrite(world, tmp_path, capsys):
    root, _ = world
    config = write_config(tmp_path / "c.yaml", embeddings=str(root / "pool-emb"),
                          output=str(tmp_path / "tree"), branching=4, levels=1, niter=3)
    assert main(["cluster", str(config), "--workers", "1"]) == 0
    assert main(["cluster", str(config), "--workers", "1"]) == 2
    assert "is not empty" in capsys.readouterr().err
    assert main(["cluster", str(config), "--workers", "1", "--overwrite",
                 "--set", "niter=4"]) == 0
    assert sorted(p.name for p in (tmp_path / "tree").iterdir()) == [
        "clusters.json", "clusters.npz", "counts.parquet", "data", "manifest.json"]
