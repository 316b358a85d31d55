"""The ``cluster`` job: fit balanced hierarchical k-means on a sample of an embedding cache,
then assign every document a cluster at every level.

ReadForFit ─► Sample (seed, id) ─► Fit ─► clusters.npz + clusters.json
Read ─► Assign (tree as a path, loaded once) ─► data/ shards (id, n_tokens, cluster_l*)
                                            └─► counts.parquet (rows, tokens per cluster)

Outputs carry one row per document (see :mod:`tamis.pipelines.vectors`).
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.metrics import Metrics

from tamis.pipelines import manifest as mf
from tamis.pipelines.files import filesystem, join, write_atomically
from tamis.pipelines.shards import write_table
from tamis.pipelines.stages import NAMESPACE, DataError, WriteManifest
from tamis.pipelines.vectors import Cache, ReadDocumentVectors
from tamis.selectors.clusters import HierarchicalKMeans
from tamis.selectors.sampling import row_keys

MODEL, DESCRIPTION, COUNTS = "clusters.npz", "clusters.json", "counts.parquet"


@dataclass(frozen=True)
class ClusterSpec:
    out_dir: str
    branching: int = 64
    levels: int = 2
    sample_size: int = 262_144
    niter: int = 20
    balance: float = 1.5
    seed: int = 0

    def model(self) -> HierarchicalKMeans:
        return HierarchicalKMeans(self.branching, self.levels, self.sample_size, self.niter,
                                  self.balance, self.seed)


def assignment_schema(levels: int) -> pa.Schema:
    return pa.schema([pa.field("id", pa.string(), nullable=False),
                      pa.field("n_tokens", pa.int64())]
                     + [pa.field(f"cluster_l{i}", pa.int64()) for i in range(levels)])


def load_model(path: str) -> HierarchicalKMeans:
    fs, inner = filesystem(path)
    with fs.open_input_file(inner) as f:
        return HierarchicalKMeans.load(io.BytesIO(f.read()))


def _sample(item, seed: int):
    _, ids, vectors, _ = item
    keys = row_keys(ids, seed).tolist()
    yield from zip(keys, ids, vectors, strict=True)


def _fit(sample: list, spec: ClusterSpec) -> str:
    rows = sorted(sample, key=lambda s: (s[0], s[1]))
    x = np.stack([r[2] for r in rows]) if rows else np.zeros((0, 1), np.float32)
    try:
        model = spec.model().fit(x)
    except ValueError as exc:
        raise DataError(f"cannot fit the clusters: {exc}") from None
    buffer = io.BytesIO()
    model.save(buffer)
    path = join(spec.out_dir, MODEL)
    write_atomically(path, lambda f: f.write(buffer.getvalue()))
    description = json.dumps(model.describe(), indent=1).encode()
    write_atomically(join(spec.out_dir, DESCRIPTION), lambda f: f.write(description))
    return path


class _Assign(beam.DoFn):
    """A cache shard's documents → an assignment shard, and per-cluster counts."""

    def __init__(self, spec: ClusterSpec) -> None:
        self._spec = spec

    def setup(self) -> None:
        self._path, self._model = None, None
        self._rows = Metrics.counter(NAMESPACE, "docs_assigned")

    def process(self, item, model_path: str):
        if model_path != self._path:
            self._model, self._path = load_model(model_path), model_path
        shard, ids, vectors, tokens = item
        clusters = (self._model.assign(vectors) if len(ids)
                    else np.zeros((0, self._spec.levels), np.int64))
        self._rows.inc(len(ids))
        columns = {"id": ids, "n_tokens": pa.array(tokens, pa.int64())}
        columns.update({f"cluster_l{i}": pa.array(clusters[:, i], pa.int64())
                        for i in range(self._spec.levels)})
        name = shard.replace("\\", "/").rsplit("/", 1)[-1]
        schema = assignment_schema(self._spec.levels)
        entry = write_table(self._spec.out_dir, f"{mf.DATA}/{name}", pa.table(columns), schema)
        yield entry
        for level in range(self._spec.levels):
            n = self._spec.branching ** (level + 1)
            rows = np.bincount(clusters[:, level], minlength=n)
            toks = np.bincount(clusters[:, level], weights=tokens, minlength=n).astype(np.int64)
            yield beam.pvalue.TaggedOutput("counts", (level, rows, toks))


class _SumCounts(beam.CombineFn):
    def create_accumulator(self):
        return {}

    def add_input(self, acc, item):
        level, rows, tokens = item
        if level in acc:
            acc[level] = (acc[level][0] + rows, acc[level][1] + tokens)
        else:
            acc[level] = (rows.copy(), tokens.copy())
        return acc

    def merge_accumulators(self, accs):
        out = {}
        for acc in accs:
            for level, (rows, tokens) in acc.items():
                self.add_input(out, (level, rows, tokens))
        return out

    def extract_output(self, acc):
        return acc


def _write_counts(counts: dict, spec: ClusterSpec) -> str:
    levels, clusters, rows, tokens = [], [], [], []
    for level in sorted(counts):
        r, t = counts[level]
        levels += [level] * len(r)
        clusters += list(range(len(r)))
        rows += r.tolist()
        tokens += t.tolist()
    table = pa.table({"level": pa.array(levels, pa.int32()), "cluster": clusters,
                      "rows": rows, "tokens": tokens})
    write_atomically(join(spec.out_dir, COUNTS), lambda f: pq.write_table(table, f))
    return COUNTS


def read_counts(out_dir: str, level: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows and tokens per cluster of ``level``, from a cluster job's output."""
    fs, inner = filesystem(join(out_dir, COUNTS))
    with fs.open_input_file(inner) as f:
        table = pq.read_table(f)
    table = table.filter(pa.compute.equal(table.column("level"), level)).sort_by("cluster")
    return table.column("rows").to_numpy(), table.column("tokens").to_numpy()


def build(pipeline: beam.Pipeline, cache: Cache, spec: ClusterSpec, header: dict) -> None:
    sample = (
        pipeline
        | "ReadForFit" >> ReadDocumentVectors(cache)
        | "Sample" >> beam.FlatMap(_sample, spec.seed)
        | "TopKeys" >> beam.combiners.Top.Smallest(spec.sample_size, key=lambda s: (s[0], s[1]))
        | "Fit" >> beam.Map(_fit, spec)
    )
    assigned = (pipeline | "Read" >> ReadDocumentVectors(cache)) | "Assign" >> beam.ParDo(
        _Assign(spec), beam.pvalue.AsSingleton(sample)).with_outputs("counts", main="shards")
    counts = (assigned.counts | "SumCounts" >> beam.CombineGlobally(_SumCounts())
              | "WriteCounts" >> beam.Map(_write_counts, spec))
    sides = {"shards": assigned.shards, "counts": counts, "model": sample}
    _ = sides | "WriteManifest" >> WriteManifest(spec.out_dir, _Manifest(cache, spec, header))


class _Manifest:
    def __init__(self, cache: Cache, spec: ClusterSpec, header: dict) -> None:
        self.cache, self.spec, self.header = cache, spec, header

    def __call__(self, shards, counts, model) -> dict:
        shards = sorted(shards, key=lambda e: e["path"])
        fs, inner = filesystem(join(self.spec.out_dir, DESCRIPTION))
        with fs.open_input_stream(inner) as f:
            description = json.loads(f.read())
        rows = sum(e["rows"] for e in shards)
        sizes = description.pop("sizes")
        return {
            **{k: v for k, v in self.header.items() if k != "warnings"},
            "schema_version": mf.SCHEMA_VERSION,
            mf.TIMESTAMP_FIELD: datetime.now(UTC).isoformat(timespec="seconds"),
            "versions": mf.versions(),
            "inputs": [{"path": self.cache.shard_path(e), "rows": e["documents"],
                        "sha256": e["sha256"]} for e in self.cache.shards],
            "embeddings": {"path": self.cache.path, "model": self.cache.model},
            "clusters": {**description, "model": MODEL, "description": DESCRIPTION,
                         "counts": COUNTS,
                         "sample_sizes_top_level": sizes[0]},
            "outputs": {"shards": shards, "rejects": [], "rows": rows,
                        "tokens": sum(e["tokens"] for e in shards),
                        "schema": [{"name": f.name, "type": str(f.type)}
                                   for f in assignment_schema(self.spec.levels)]},
            "accounting": {"rows_in": sum(e["documents"] for e in self.cache.shards),
                           "rows_kept": rows, "rows_dropped": {},
                           "rows_rejected": {}},
            "warnings": list(self.header.get("warnings", [])),
        }
