"""Reading an embedding cache (the output of ``tamis embed``) as one vector per document.

A document's vector is the L2-normalised mean of its windows' vectors (a cache made with
``mode: document`` already holds exactly that), and its token count the sum of theirs.
"""

from __future__ import annotations

from dataclasses import dataclass

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tamis.pipelines import manifest as mf
from tamis.pipelines.files import filesystem, join
from tamis.pipelines.records import REJECTS_SCHEMA, ROW


class CacheError(ValueError):
    """An embedding cache that is missing, unfinished or does not fit the job."""


@dataclass(frozen=True)
class Cache:
    path: str
    manifest: dict

    @property
    def dim(self) -> int:
        return int(self.manifest["model"]["dim"])

    @property
    def model(self) -> dict:
        return self.manifest["model"]

    @property
    def shards(self) -> list[dict]:
        return self.manifest["outputs"]["shards"]

    def shard_path(self, entry: dict) -> str:
        return join(self.path, entry["path"])

    def by_batch(self) -> dict[tuple[str, int], str]:
        """``(input file, first row) → shard path``: how text batches find their vectors."""
        return {(e["source"], e["first_row"]): self.shard_path(e) for e in self.shards}


def open_cache(path: str) -> Cache:
    try:
        manifest = mf.load_manifest(path)
    except mf.VerifyError:
        raise CacheError(f"{path} is not an embedding cache: no manifest.json (run tamis embed "
                         f"first)") from None
    if manifest.get("job") != "embed":
        raise CacheError(f"{path} holds the output of '{manifest.get('job')}', not of embed")
    return Cache(path, manifest)


def same_model(a: Cache, b: Cache) -> None:
    """Vectors from two caches are comparable only from the same model and settings."""
    keys = ("embedder", "content_hash", "dim", "normalized", "max_seq_length", "window_tokens")
    for key in keys:
        if a.model.get(key) != b.model.get(key):
            raise CacheError(f"{b.path} was embedded with {key} {b.model.get(key)!r}, "
                             f"{a.path} with {a.model.get(key)!r}: embed both the same way")


def document_vectors(table: pa.Table) -> tuple[list[str], np.ndarray, np.ndarray]:
    """``(ids, vectors (n, dim) float32, tokens (n,))``, one per document, in shard order."""
    ids = table.column("id").to_pylist()
    dim = table.schema.field("embedding").type.list_size
    vectors = table.column("embedding").combine_chunks().flatten().to_numpy().reshape(-1, dim)
    tokens = table.column("n_tokens").to_numpy()
    if not ids:
        return [], np.zeros((0, dim), np.float32), np.zeros(0, np.int64)
    # A document starts at each window 0 (rows are in document, then window order), so two
    # documents that share an id stay two.
    starts = np.flatnonzero(table.column("window").to_numpy() == 0)
    means = np.add.reduceat(vectors, starts, axis=0)
    norms = np.linalg.norm(means, axis=1, keepdims=True)
    means = np.divide(means, norms, out=np.zeros_like(means), where=norms > 0)
    return [ids[i] for i in starts], means.astype(np.float32), np.add.reduceat(tokens, starts)


def read_shard(path: str) -> pa.Table:
    fs, inner = filesystem(path)
    with fs.open_input_file(inner) as f:
        return pq.read_table(f, columns=["id", "window", "n_tokens", "embedding"])


def read_documents(path: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    return document_vectors(read_shard(path))


class ReadDocumentVectors(beam.PTransform):
    """Every shard of a cache → ``(shard path, ids, vectors, tokens)``, shards in parallel."""

    def __init__(self, cache: Cache) -> None:
        super().__init__()
        self._paths = [cache.shard_path(e) for e in cache.shards]
        if not self._paths:
            raise CacheError(f"{cache.path} holds no shard")

    def expand(self, pbegin):
        return (
            pbegin
            | "Shards" >> beam.Create(self._paths)
            | "Spread" >> beam.Reshuffle()
            | "Read" >> beam.Map(lambda p: (p, *read_documents(p)))
        )


def batch_vectors(table: pa.Table, rel: str, cache_shards: dict):
    """The vectors of one read batch of text, from the cache shard made from that batch.

    Returns ``(rows, vectors, tokens, rejects)``: the rows of ``table`` the cache has a vector
    for, their vectors and model token counts in row order, and a rejects table
    (``no_embedding``) for the others, or None when there is none.
    """
    first = int(pc.min(table.column(ROW)).as_py())
    shard = cache_shards.get((rel, first))
    if shard is None:  # embed rejected every row of this batch
        return (table.slice(0, 0), np.zeros((0, 0), np.float32), np.zeros(0, np.int64),
                _no_embedding(rel, table))
    ids, vectors, tokens = read_documents(shard)
    index = {i: k for k, i in enumerate(ids)}
    row_ids = table.column("id").to_pylist()
    found = np.array([i in index for i in row_ids], dtype=bool)
    rejects = None
    if not found.all():
        rejects = _no_embedding(rel, table.filter(pa.array(~found)))
        table = table.filter(pa.array(found))
        row_ids = [i for i, f in zip(row_ids, found, strict=True) if f]
    rows = np.array([index[i] for i in row_ids], dtype=np.int64)
    return table, vectors[rows], tokens[rows], rejects


def _no_embedding(rel: str, rows: pa.Table) -> pa.Table:
    n = rows.num_rows
    return pa.table({
        "source": [rel] * n, "row": rows.column(ROW), "id": rows.column("id"),
        "field": ["embedding"] * n, "reason": ["no_embedding"] * n,
        "record": ["(the embedding cache has no vector for this row: embed rejected it)"] * n,
    }, schema=REJECTS_SCHEMA)
