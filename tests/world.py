"""A small world of real text and its caches, shared by the job tests that read caches:
a 1,200-document pool (4 domains) embedded with LSI, two specialist sets embedded with the
pool's model, and a 4 x 4 tree."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from corpora import write_config

from tamis.runners.cli import main
from tamis.storage.cache import open_cache, read_documents

DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo"


def run(*argv) -> None:
    assert main([str(a) for a in argv]) == 0


def run_manifest(config: Path, *flags) -> dict:
    run(*flags[:1], config, *flags[1:])
    out = Path(json.loads(config.read_text())["output"])
    run("verify", out)
    return json.loads((out / "manifest.json").read_text())


def build_world(root: Path) -> tuple[Path, dict]:
    """The pool, its LSI cache, the specialist caches and the tree, under ``root``; returns
    ``root`` and the cluster job's manifest."""
    table = pq.read_table(DEMO / "corpus" / "part-00001.parquet")
    table = table.take(pa.array(range(0, 2400, 2)))  # every domain (rows are sorted by id)
    (root / "pool").mkdir()
    pq.write_table(table.slice(0, 600), root / "pool" / "a.parquet", row_group_size=300)
    pq.write_table(table.slice(600), root / "pool" / "b.parquet", row_group_size=300)
    python = pq.read_table(DEMO / "specialist" / "python_docs.parquet").slice(0, 60)
    pq.write_table(python, root / "python.parquet")
    rest = pq.read_table(DEMO / "corpus" / "part-00002.parquet")
    bible = rest.filter(pc.equal(rest.column("domain"), "bible")).slice(0, 60)
    pq.write_table(bible, root / "bible.parquet")
    pool = write_config(root / "pool.yaml", inputs=[str(root / "pool")],
                        output=str(root / "pool-emb"), embedder="lsi",
                        lsi={"dim": 32, "fit_sample": 1200})
    run("embed", pool, "--workers", "1")
    model = next((root / "pool-emb" / "models").glob("lsi-*.npz"))
    for name in ("python", "bible"):
        spec = write_config(root / f"{name}.yaml", inputs=[str(root / f"{name}.parquet")],
                            output=str(root / f"{name}-emb"), embedder="lsi",
                            lsi={"dim": 32, "model": str(model)})
        run("embed", spec, "--workers", "1")
    clusters = write_config(root / "cluster.yaml", embeddings=str(root / "pool-emb"),
                            output=str(root / "clusters"), branching=4, levels=2, niter=10)
    return root, run_manifest(clusters, "cluster", "--workers", "1")


def shares(table: pa.Table) -> dict[str, float]:
    """Share of selected tokens (with repeats) per domain."""
    amount: dict[str, float] = {}
    for d, n, t in zip(table.column("domain").to_pylist(), table.column("n_samples").to_pylist(),
                       table.column("n_tokens").to_pylist(), strict=True):
        amount[d] = amount.get(d, 0) + n * t
    total = sum(amount.values())
    return {d: v / total for d, v in amount.items()}


def cache_documents(path: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    cache = open_cache(str(path))
    parts = [read_documents(cache.shard_path(e)) for e in cache.shards]
    return ([i for p in parts for i in p[0]], np.concatenate([p[1] for p in parts]),
            np.concatenate([p[2] for p in parts]))
