"""The ``crisp`` job: clustered importance sampling of a pool to a token budget.

The histograms, weights and draw rates are small and are computed by the launcher before any
work (see :mod:`tamis.runners.jobs.crisp`); the pipeline streams the pool once. Tokens are counted
by the embedding model's tokenizer (the cache's ``n_tokens``), the unit of the histograms and
of the budget.

Read text ─► Draw (vectors from the pool's embedding cache, clusters at every level,
              n_samples ~ Poisson(rate of the cluster), or drawn without replacement inside
              the cluster; either a pure function of (seed, id))
          ─► Write shards (rows drawn at least once) ─► Write manifest
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import apache_beam as beam
import numpy as np
import pyarrow as pa

from tamis.pipelines.read import ReadRecords
from tamis.pipelines.tail import (
    Fate,
    SelectionSpec,
    SelectionTail,
    selected_schema,
    write_selection,
)
from tamis.selectors import importance as imp
from tamis.storage.cache import batch_vectors
from tamis.storage.clusters import load_model
from tamis.storage.inputs import InputPlan
from tamis.storage.records import SRC


@dataclass(frozen=True, kw_only=True)
class CrispSpec(SelectionSpec):
    model_path: str  # the fitted cluster tree
    levels: int
    level: int  # the level the histograms and weights are at
    rates: tuple[float, ...]  # expected draws per record, per cluster of ``level``
    weights: tuple[float, ...]  # importance weight w(c), per cluster of ``level``
    cap: int
    sampler: str  # "poisson" or "without_replacement"
    target: tuple[float, ...]  # P(c | target) per cluster of ``level``, for the manifest
    pool_tokens: tuple[int, ...]  # the pool's tokens per cluster of ``level``
    cache_shards: Mapping[tuple[str, int], str]  # (input file, first row) → cache shard


def output_schema(plan: InputPlan, levels: int) -> pa.Schema:
    return selected_schema(plan, *(pa.field(f"cluster_l{i}", pa.int64()) for i in range(levels)))


class _Draw(beam.DoFn):
    def __init__(self, plan: InputPlan, spec: CrispSpec) -> None:
        self._plan, self._spec = plan, spec
        self._tail = SelectionTail(spec)

    def setup(self) -> None:
        self._model = load_model(self._spec.model_path)
        self._rates = np.asarray(self._spec.rates, dtype=np.float64)
        self._weights = np.asarray(self._spec.weights, dtype=np.float64)
        self._tail.setup()

    def process(self, table: pa.Table):
        spec, plan = self._spec, self._plan
        src = int(table.column(SRC)[0].as_py())
        table, vectors, model_tokens, missing = batch_vectors(
            table, plan.files[src].rel, spec.cache_shards)
        if missing is not None:
            yield beam.pvalue.TaggedOutput("rejects", (src, missing))
        if not table.num_rows:
            return
        row_ids = table.column("id").to_pylist()
        clusters = self._model.assign(vectors)
        at_level = clusters[:, spec.level]
        draw = (imp.draw_counts if spec.sampler == "poisson"
                else imp.without_replacement_counts)
        n = draw(row_ids, at_level, self._rates, spec.seed, spec.cap)
        # Tokens as the embedding model counted them: the unit of the cluster histograms.
        tokens = np.asarray(model_tokens, dtype=np.int64)
        table = table.set_column(table.schema.get_field_index("n_tokens"), "n_tokens",
                                 pa.array(tokens))
        keep = n > 0
        yield beam.pvalue.TaggedOutput("stats", _stats(n, tokens, at_level, len(self._rates)))
        yield from self._tail.emit(table, Fate(
            keep, {"not_sampled": ~keep}, weight=self._weights[at_level[keep]],
            n_samples=n[keep],
            columns={f"cluster_l{level}": clusters[keep, level]
                     for level in range(spec.levels)}))


def _stats(n: np.ndarray, tokens: np.ndarray, clusters: np.ndarray, n_clusters: int) -> dict:
    """Sums a batch contributes: draws, their squares, drawn tokens per cluster."""
    return {"draws": int(n.sum()), "draws_sq": int((n.astype(np.int64) ** 2).sum()),
            "tokens": np.bincount(clusters, weights=n * tokens, minlength=n_clusters)}


def _merge_stats(items: list[dict], n_clusters: int) -> dict:
    out = {"draws": 0, "draws_sq": 0, "tokens": np.zeros(n_clusters)}
    for s in items:
        out["draws"] += s["draws"]
        out["draws_sq"] += s["draws_sq"]
        out["tokens"] = out["tokens"] + s["tokens"]
    return out


def build(pipeline: beam.Pipeline, spec: CrispSpec) -> None:
    plan = spec.inputs
    read = pipeline | "ReadRecords" >> ReadRecords(plan, census=True)
    drawn = read["records"] | "Draw" >> beam.ParDo(_Draw(plan, spec)).with_outputs(
        "tally", "stats", "rejects", main="kept")
    write_selection(pipeline, spec, output_schema(plan, spec.levels), drawn, read["rows_in"],
                    [read["rejects"], drawn.rejects], _Finish(spec), stats=drawn.stats)


class _Finish:
    def __init__(self, spec: CrispSpec) -> None:
        self.spec = spec

    def __call__(self, base: dict, stats) -> dict:
        spec = self.spec
        merged = _merge_stats(stats, len(spec.rates))
        target = np.asarray(spec.target, dtype=np.float64)
        pool = np.asarray(spec.pool_tokens, dtype=np.float64)
        selected = merged["tokens"]
        base["selector"].update({
            **spec.header.selector,
            "effective_sample_size": round(merged["draws"] ** 2 / merged["draws_sq"], 3)
            if merged["draws_sq"] else 0.0,
            "kl_selected_to_target": round(imp.kl_divergence(selected, target), 6)
            if selected.sum() else None,
            "kl_pool_to_target": round(imp.kl_divergence(pool, target), 6),
        })
        base["mixture"].update(level=spec.level,
                               clusters=imp.mixture_report(target, pool, selected, top=50))
        return base
