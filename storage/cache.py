"""The embedding cache (the output of ``tamis embed``): writing its shards, and reading it
as one vector per document.

A shard holds one read batch of an input file: ``id``, ``window``, ``token_start``,
``token_end``, ``n_tokens`` and ``embedding`` (``fixed_size_list<float32>[dim]``), windows in
row order. A document's vector is the L2-normalised mean of its windows' vectors (a cache made
with ``mode: document`` already holds exactly that), and its token count the sum of theirs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from tamis.storage import manifest as mf
from tamis.storage.errors import CacheError
from tamis.storage.files import filesystem, join, sha256_file, write_atomically
from tamis.storage.records import REJECTS_SCHEMA, ROW


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


def all_document_vectors(path: str) -> np.ndarray:
    """Every document vector of the cache at ``path``, shape (n, dim), float32 (a specialist
    set, small enough to hold)."""
    cache = open_cache(path)
    parts = [read_documents(cache.shard_path(e))[1] for e in cache.shards]
    parts = [p for p in parts if len(p)]
    return np.concatenate(parts) if parts else np.zeros((0, cache.dim), np.float32)


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


def embed_schema(dim: int) -> pa.Schema:
    return pa.schema([
        pa.field("id", pa.string(), nullable=False),
        pa.field("window", pa.int32()),  # index of the window in its document, from 0
        pa.field("token_start", pa.int32()),  # the window's tokens are [start, end)
        pa.field("token_end", pa.int32()),
        pa.field("n_tokens", pa.int64()),
        pa.field("embedding", pa.list_(pa.float32(), dim)),
    ])


def cache_shard_name(rel: str, checksum: str, first_row: int, key: str) -> str:
    """A cache shard's name: the input file, its checksum, the batch's first row and the
    embedding settings' key, so that a rerun finds the shards it can reuse."""
    stem = rel.replace("/", "__").rsplit(".", 1)[0]
    digest = hashlib.sha256(f"{rel}\0{checksum}\0{first_row}\0{key}".encode()).hexdigest()
    return f"{stem}-r{first_row:010d}-{digest[:16]}.parquet"


def exists(path: str) -> bool:
    fs, inner = filesystem(path)
    return fs.get_file_info(inner).type == pafs.FileType.File


def cached_ids(path: str) -> set[str]:
    fs, inner = filesystem(path)
    with fs.open_input_file(inner) as f:
        return set(pq.read_table(f, columns=["id"]).column("id").to_pylist())


def mean_per_document(table: pa.Table, normalize: bool) -> pa.Table:
    """One row per document: the mean of its window vectors (re-normalised), its whole span."""
    ids = table.column("id").to_pylist()
    rows = table.column(ROW).to_numpy()
    dim = table.schema.field("embedding").type.list_size
    vectors = table.column("embedding").combine_chunks().flatten().to_numpy().reshape(-1, dim)
    starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
    sums = np.add.reduceat(vectors, starts, axis=0)
    counts = np.diff(np.r_[starts, len(rows)])
    means = (sums / counts[:, None]).astype(np.float32)
    if normalize:
        means /= np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-12)
    tokens = np.add.reduceat(table.column("n_tokens").to_numpy(), starts)
    return pa.table({
        "id": [ids[i] for i in starts], "window": pa.array(np.zeros(len(starts)), pa.int32()),
        "token_start": pa.array(np.zeros(len(starts)), pa.int32()),
        "token_end": pa.array(tokens, pa.int32()), "n_tokens": pa.array(tokens, pa.int64()),
        "embedding": pa.FixedSizeListArray.from_arrays(pa.array(means.reshape(-1)), dim),
    })


def write_cache_shard(out_dir: str, shard: str, table: pa.Table, mode: str,
                      normalize: bool) -> dict:
    """Write one cache shard (windows in row, then window order; ``mode`` ``document``: one
    mean vector per document) and return its manifest entry."""
    table = table.sort_by([(ROW, "ascending"), ("window", "ascending")])
    if mode == "document":
        table = mean_per_document(table, normalize)
    dim = table.schema.field("embedding").type.list_size
    schema = embed_schema(dim)
    table = table.select(schema.names).cast(schema)
    path = join(out_dir, mf.DATA, shard)
    size, digest = write_atomically(path, lambda f: pq.write_table(
        table, f, compression="zstd", row_group_size=65536))
    return cache_entry(shard, table, size, digest)


def describe_shard(out_dir: str, shard: str) -> dict:
    """The manifest entry of a cache shard already on disk."""
    fs, inner = filesystem(join(out_dir, mf.DATA, shard))
    with fs.open_input_file(inner) as f:
        table = pq.read_table(f, columns=["window", "n_tokens", "embedding"])
    return cache_entry(shard, table, fs.get_file_info(inner).size, sha256_file(fs, inner))


def cache_entry(shard: str, table: pa.Table, size: int, digest: str) -> dict:
    return {"path": f"{mf.DATA}/{shard}", "rows": table.num_rows, "bytes": size,
            "sha256": digest, "tokens": int(pc.sum(table.column("n_tokens")).as_py() or 0),
            "documents": int(pc.sum(pc.equal(table.column("window"), 0)).as_py() or 0),
            "dim": table.schema.field("embedding").type.list_size, "reused": False}


def remove_stale(out_dir: str, keep: set[str]) -> None:
    """Cache shards of inputs or settings that this run no longer has."""
    fs, inner = filesystem(join(out_dir, mf.DATA))
    selector = pafs.FileSelector(inner, allow_not_found=True)
    for info in fs.get_file_info(selector):
        if info.type == pafs.FileType.File and f"{mf.DATA}/{info.base_name}" not in keep:
            fs.delete_file(info.path)
