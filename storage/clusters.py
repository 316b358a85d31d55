"""The artifacts of ``tamis cluster``: the fitted tree, its description, the counts per
cluster, and the schema of its assignment shards. Read by crisp's launcher, by its workers and
by anyone who wants the clusters, without Beam.

An output folder holds::

    clusters.npz      centroids and child counts per level (NumPy, no pickle)
    clusters.json     levels, branching, sample size, seed, inertia, sample sizes per cluster
    counts.parquet    rows and tokens per cluster and level, over the whole cache
    data/*.parquet    one assignment shard per cache shard: id, n_tokens, cluster_l0, ...
"""

from __future__ import annotations

import io
import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tamis.selectors.clusters import HierarchicalKMeans
from tamis.storage.files import filesystem, join, write_atomically

MODEL, DESCRIPTION, COUNTS = "clusters.npz", "clusters.json", "counts.parquet"
#: What a cluster output holds beside its manifest and shards.
ARTIFACTS = (MODEL, DESCRIPTION, COUNTS)


def assignment_schema(levels: int) -> pa.Schema:
    return pa.schema([pa.field("id", pa.string(), nullable=False),
                      pa.field("n_tokens", pa.int64())]
                     + [pa.field(f"cluster_l{i}", pa.int64()) for i in range(levels)])


def save_model(out_dir: str, model: HierarchicalKMeans) -> str:
    """Write the tree and its description; return the tree's path."""
    buffer = io.BytesIO()
    model.save(buffer)
    path = join(out_dir, MODEL)
    write_atomically(path, lambda f: f.write(buffer.getvalue()))
    description = json.dumps(model.describe(), indent=1).encode()
    write_atomically(join(out_dir, DESCRIPTION), lambda f: f.write(description))
    return path


def load_model(path: str) -> HierarchicalKMeans:
    fs, inner = filesystem(path)
    with fs.open_input_file(inner) as f:
        return HierarchicalKMeans.load(io.BytesIO(f.read()))


def read_description(out_dir: str) -> dict:
    fs, inner = filesystem(join(out_dir, DESCRIPTION))
    with fs.open_input_stream(inner) as f:
        return json.loads(f.read())


def write_counts(out_dir: str, counts: dict) -> str:
    """``counts``: ``{level: (rows per cluster, tokens per cluster)}``."""
    levels, clusters, rows, tokens = [], [], [], []
    for level in sorted(counts):
        r, t = counts[level]
        levels += [level] * len(r)
        clusters += list(range(len(r)))
        rows += r.tolist()
        tokens += t.tolist()
    table = pa.table({"level": pa.array(levels, pa.int32()), "cluster": clusters,
                      "rows": rows, "tokens": tokens})
    write_atomically(join(out_dir, COUNTS), lambda f: pq.write_table(table, f))
    return COUNTS


def read_counts(out_dir: str, level: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows and tokens per cluster of ``level``, from a cluster job's output."""
    fs, inner = filesystem(join(out_dir, COUNTS))
    with fs.open_input_file(inner) as f:
        table = pq.read_table(f)
    table = table.filter(pc.equal(table.column("level"), level)).sort_by("cluster")
    return table.column("rows").to_numpy(), table.column("tokens").to_numpy()
