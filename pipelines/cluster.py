"""The ``cluster`` job: fit balanced hierarchical k-means on a sample of an embedding cache,
then assign every document a cluster at every level.

ReadForFit ─► Sample (seed, id) ─► Fit ─► clusters.npz + clusters.json
Read ─► Assign (tree as a path, loaded once) ─► data/ shards (id, n_tokens, cluster_l*)
                                            └─► counts.parquet (rows, tokens per cluster)

Outputs carry one row per document (see :mod:`tamis.storage.clusters`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import apache_beam as beam
import numpy as np
import pyarrow as pa
from apache_beam.metrics import Metrics

from tamis.pipelines.read import NAMESPACE, ReadDocumentVectors
from tamis.pipelines.write import WriteManifest
from tamis.selectors.clusters import HierarchicalKMeans
from tamis.selectors.sampling import row_keys
from tamis.storage import clusters as artifacts
from tamis.storage import manifest as mf
from tamis.storage.cache import Cache
from tamis.storage.errors import DataError
from tamis.storage.shards import write_table


@dataclass(frozen=True, kw_only=True)
class ClusterSpec:
    cache: Cache  # the embedding cache to fit on and assign
    out_dir: str
    header: mf.Header
    tree: HierarchicalKMeans  # unfitted: its settings

    @property
    def levels(self) -> int:
        return self.tree.levels


def _sample(item, seed: int):
    _, ids, vectors, _ = item
    keys = row_keys(ids, seed).tolist()
    yield from zip(keys, ids, vectors, strict=True)


def _fit(sample: list, spec: ClusterSpec) -> str:
    rows = sorted(sample, key=lambda s: (s[0], s[1]))
    x = np.stack([r[2] for r in rows]) if rows else np.zeros((0, 1), np.float32)
    t = spec.tree
    try:
        model = HierarchicalKMeans(t.branching, t.levels, t.sample_size, t.niter, t.balance,
                                   t.seed).fit(x)
    except ValueError as exc:
        raise DataError(f"cannot fit the clusters: {exc}") from None
    return artifacts.save_model(spec.out_dir, model)


class _Assign(beam.DoFn):
    """A cache shard's documents → an assignment shard, and per-cluster counts."""

    def __init__(self, spec: ClusterSpec) -> None:
        self._spec = spec

    def setup(self) -> None:
        self._path, self._model = None, None
        self._rows = Metrics.counter(NAMESPACE, "docs_assigned")

    def process(self, item, model_path: str):
        if model_path != self._path:
            self._model, self._path = artifacts.load_model(model_path), model_path
        shard, ids, vectors, tokens = item
        levels, branching = self._spec.levels, self._spec.tree.branching
        clusters = (self._model.assign(vectors) if len(ids)
                    else np.zeros((0, levels), np.int64))
        self._rows.inc(len(ids))
        columns = {"id": ids, "n_tokens": pa.array(tokens, pa.int64())}
        columns.update({f"cluster_l{i}": pa.array(clusters[:, i], pa.int64())
                        for i in range(levels)})
        name = shard.replace("\\", "/").rsplit("/", 1)[-1]
        schema = artifacts.assignment_schema(levels)
        entry = write_table(self._spec.out_dir, f"{mf.DATA}/{name}", pa.table(columns), schema)
        yield entry
        for level in range(levels):
            n = branching ** (level + 1)
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


def build(pipeline: beam.Pipeline, spec: ClusterSpec) -> None:
    cache = spec.cache
    sample = (
        pipeline
        | "ReadForFit" >> ReadDocumentVectors(cache)
        | "Sample" >> beam.FlatMap(_sample, spec.tree.seed)
        | "TopKeys" >> beam.combiners.Top.Smallest(spec.tree.sample_size,
                                                   key=lambda s: (s[0], s[1]))
        | "Fit" >> beam.Map(_fit, spec)
    )
    assigned = (pipeline | "Read" >> ReadDocumentVectors(cache)) | "Assign" >> beam.ParDo(
        _Assign(spec), beam.pvalue.AsSingleton(sample)).with_outputs("counts", main="shards")
    counts = (assigned.counts | "SumCounts" >> beam.CombineGlobally(_SumCounts())
              | "WriteCounts" >> beam.Map(lambda c: artifacts.write_counts(spec.out_dir, c)))
    sides = {"shards": assigned.shards, "counts": counts, "model": sample}
    _ = sides | "WriteManifest" >> WriteManifest(spec.out_dir, _Manifest(spec))


class _Manifest:
    def __init__(self, spec: ClusterSpec) -> None:
        self.spec = spec

    def __call__(self, shards, counts, model) -> dict:
        spec, cache = self.spec, self.spec.cache
        shards = sorted(shards, key=lambda e: e["path"])
        description = artifacts.read_description(spec.out_dir)
        rows = sum(e["rows"] for e in shards)
        sizes = description.pop("sizes")
        return {
            **spec.header.opening(),
            "schema_version": mf.SCHEMA_VERSION,
            mf.TIMESTAMP_FIELD: datetime.now(UTC).isoformat(timespec="seconds"),
            "versions": mf.versions(),
            "inputs": [{"path": cache.shard_path(e), "rows": e["documents"],
                        "sha256": e["sha256"]} for e in cache.shards],
            "embeddings": {"path": cache.path, "model": cache.model},
            "clusters": {**description, "model": artifacts.MODEL,
                         "description": artifacts.DESCRIPTION, "counts": artifacts.COUNTS,
                         "sample_sizes_top_level": sizes[0]},
            "outputs": {"shards": shards, "rejects": [], "rows": rows,
                        "tokens": sum(e["tokens"] for e in shards),
                        "schema": [{"name": f.name, "type": str(f.type)}
                                   for f in artifacts.assignment_schema(spec.levels)]},
            "accounting": {"rows_in": sum(e["documents"] for e in cache.shards),
                           "rows_kept": rows, "rows_dropped": {},
                           "rows_rejected": {}},
            "warnings": list(spec.header.warnings),
        }
