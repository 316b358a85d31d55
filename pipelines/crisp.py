"""The ``crisp`` job: clustered importance sampling of a pool to a token budget.

The histograms, weights and draw rates are small and are computed by the launcher before any
work (see :mod:`tamis.runners.jobs`); the pipeline streams the pool once. Tokens are counted
by the embedding model's tokenizer (the cache's ``n_tokens``), the unit of the histograms and
of the budget.

Read text ─► Draw (vectors from the pool's embedding cache, clusters at every level,
              n_samples ~ Poisson(rate of the cluster), or drawn without replacement inside
              the cluster; either a pure function of (seed, id))
          ─► Write shards (rows drawn at least once) ─► Write manifest
"""

from __future__ import annotations

from dataclasses import dataclass, field

import apache_beam as beam
import numpy as np
import pyarrow as pa
from apache_beam.metrics import Metrics

from tamis.pipelines.cluster import load_model
from tamis.pipelines.inputs import InputPlan
from tamis.pipelines.records import SRC
from tamis.pipelines.stages import (
    NAMESPACE,
    ReadRecords,
    manifest_base,
    selected_schema,
    split_by_shard,
    sum_tally,
    write_outputs,
)
from tamis.pipelines.vectors import batch_vectors
from tamis.selectors import importance as imp

KEY = "__key"


@dataclass(frozen=True)
class CrispSpec:
    out_dir: str
    model_path: str  # the fitted cluster tree
    levels: int
    level: int  # the level the histograms and weights are at
    rates: tuple[float, ...]  # expected draws per record, per cluster of ``level``
    weights: tuple[float, ...]  # importance weight w(c), per cluster of ``level``
    cap: int
    seed: int
    sampler: str = "poisson"  # or "without_replacement"
    num_shards: int = 1
    cache_shards: dict = field(default_factory=dict)  # (input file, first row) → cache shard


def output_schema(plan: InputPlan, levels: int) -> pa.Schema:
    return selected_schema(plan, *(pa.field(f"cluster_l{i}", pa.int64()) for i in range(levels)))


class _Draw(beam.DoFn):
    def __init__(self, plan: InputPlan, spec: CrispSpec) -> None:
        self._plan, self._spec = plan, spec

    def setup(self) -> None:
        self._model = load_model(self._spec.model_path)
        self._rates = np.asarray(self._spec.rates, dtype=np.float64)
        self._weights = np.asarray(self._spec.weights, dtype=np.float64)
        self._kept = Metrics.counter(NAMESPACE, "rows_kept")
        self._draws = Metrics.counter(NAMESPACE, "draws")

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
        self._kept.inc(int(keep.sum()))
        self._draws.inc(int(n.sum()))
        yield beam.pvalue.TaggedOutput("tally", (
            "dropped", "not_sampled", int((~keep).sum()), int(tokens[~keep].sum())))
        yield beam.pvalue.TaggedOutput("stats", _stats(n, tokens, at_level, len(self._rates)))
        if not keep.any():
            return
        kept = table.filter(pa.array(keep))
        k = np.flatnonzero(keep)
        kept = kept.append_column("weight", pa.array(self._weights[at_level[k]]))
        kept = kept.append_column("n_samples", pa.array(n[k]))
        for level in range(spec.levels):
            kept = kept.append_column(f"cluster_l{level}", pa.array(clusters[k, level]))
        yield from split_by_shard(kept, spec.seed, spec.num_shards, KEY)


def _stats(n: np.ndarray, tokens: np.ndarray, clusters: np.ndarray, n_clusters: int) -> dict:
    """Sums a batch contributes: draws, their squares, repeated tokens per cluster, max n."""
    return {"draws": int(n.sum()), "draws_sq": int((n.astype(np.int64) ** 2).sum()),
            "max": int(n.max()) if len(n) else 0,
            "tokens": np.bincount(clusters, weights=n * tokens, minlength=n_clusters)}


def _merge_stats(items: list[dict], n_clusters: int) -> dict:
    out = {"draws": 0, "draws_sq": 0, "max": 0, "tokens": np.zeros(n_clusters)}
    for s in items:
        out["draws"] += s["draws"]
        out["draws_sq"] += s["draws_sq"]
        out["max"] = max(out["max"], s["max"])
        out["tokens"] = out["tokens"] + s["tokens"]
    return out


def build(pipeline: beam.Pipeline, plan: InputPlan, spec: CrispSpec, header: dict) -> None:
    read = pipeline | "ReadRecords" >> ReadRecords(plan)
    drawn = read["records"] | "Draw" >> beam.ParDo(_Draw(plan, spec)).with_outputs(
        "tally", "stats", "rejects", main="kept")
    write_outputs(pipeline, plan, spec.out_dir, output_schema(plan, spec.levels),
                  spec.num_shards, drawn.kept, read["rows_in"], [read["rejects"], drawn.rejects],
                  _Manifest(plan, spec, header), tally=drawn.tally, stats=drawn.stats)


class _Manifest:
    def __init__(self, plan: InputPlan, spec: CrispSpec, header: dict) -> None:
        self.plan, self.spec, self.header = plan, spec, header

    def __call__(self, checksums, rows_in, shards, rejects, tally, stats) -> dict:
        plan, spec = self.plan, self.spec
        base, _ = manifest_base(plan, self.header, checksums, rows_in, shards, rejects)
        shards = base["outputs"]["shards"]
        sums = sum_tally(tally)
        merged = _merge_stats(stats, len(spec.rates))
        target = np.asarray(self.header["selector"]["target"], dtype=np.float64)
        pool = np.asarray(self.header["selector"]["pool_tokens"], dtype=np.float64)
        selected = merged["tokens"]
        kept = sum(e["rows"] for e in shards)
        selector = {k: v for k, v in self.header["selector"].items()
                    if k not in ("target", "pool_tokens")}
        selector.update({
            "selected_rows": kept, "draws": merged["draws"],
            "selected_tokens_with_repeats": int(selected.sum()),
            "max_repetition": merged["max"],
            "effective_sample_size": round(merged["draws"] ** 2 / merged["draws_sq"], 3)
            if merged["draws_sq"] else 0.0,
            "kl_selected_to_target": round(imp.kl_divergence(selected, target), 6)
            if selected.sum() else None,
            "kl_pool_to_target": round(imp.kl_divergence(pool, target), 6),
        })
        base["outputs"].update(rows=kept, tokens=sum(e["tokens"] for e in shards), schema=[
            {"name": f.name, "type": str(f.type)} for f in output_schema(plan, spec.levels)])
        base["accounting"].update(rows_kept=kept, rows_dropped={
            k: v[0] for k, v in sums.get("dropped", {}).items() if v[0]})
        return {
            **base,
            "mixture": {"level": spec.level,
                        "clusters": imp.mixture_report(target, pool, selected, top=50)},
            "selector": selector,
        }
