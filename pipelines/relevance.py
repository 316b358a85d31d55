"""The ``relevance`` job: the pool records most similar to the specialist sample, up to a token
budget, each at most once; optionally diversified by maximal marginal relevance (MMR).

A record's relevance is the mean cosine of its document vector (from the pool's embedding
cache) to its ``k`` nearest specialist vectors, weighted across specialist sets. Every worker
builds the specialist indexes once (``setup``) from the specialist caches. Tokens are the
embedding model's, as in ``crisp``.

relevance only:  key = relevance ─► top by budget (two reads, :mod:`.topk`) ─► Read ─► Select
with MMR:        top by (mmr_candidates × budget) ─► ReadForCandidates ─► candidates (ids,
                 vectors) ─► greedy MMR in one worker ─► picked ─► Read ─► Select
─► Write shards, rejects (rows without a vector: no_embedding), manifest
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
from tamis.pipelines.topk import COSINE, KEY, in_top, top_by_budget
from tamis.selectors.precision import quantize, tie_keys
from tamis.selectors.relevance import NeighbourIndex, knn_relevance, mmr
from tamis.storage.cache import all_document_vectors, batch_vectors
from tamis.storage.inputs import InputPlan
from tamis.storage.records import ROW, SRC

SCORE, RANK, VECTOR = "relevance", "mmr_rank", "__vector"


@dataclass(frozen=True, kw_only=True)
class RelevanceSpec(SelectionSpec):
    budget: int  # model tokens
    specialists: tuple[tuple[str, float], ...]  # (embedding cache, weight)
    k: int
    exact_up_to: int
    nprobe: int
    mmr_lambda: float | None  # None: relevance only
    mmr_candidates: float  # MMR picks among the most relevant (this × budget) tokens
    cache_shards: Mapping[tuple[str, int], str]  # (input file, first row) → cache shard


def output_schema(plan: InputPlan, spec: RelevanceSpec) -> pa.Schema:
    extra = [pa.field(SCORE, pa.float64())]
    if spec.mmr_lambda is not None:
        extra.append(pa.field(RANK, pa.int64()))
    return selected_schema(plan, *extra)


class _Relevance(beam.DoFn):
    """Adds ``relevance`` and the key (the same number) to a batch; swaps ``n_tokens`` for the
    cache's model tokens; with ``vectors``, also the document vectors."""

    def __init__(self, plan: InputPlan, spec: RelevanceSpec, vectors: bool = False) -> None:
        self._plan, self._spec, self._vectors = plan, spec, vectors

    def setup(self) -> None:
        spec = self._spec
        self._indexes = [(NeighbourIndex(all_document_vectors(path), spec.exact_up_to,
                                         spec.nprobe, spec.seed), weight)
                         for path, weight in spec.specialists if weight > 0]
        self._total = sum(w for _, w in self._indexes)

    def process(self, table: pa.Table):
        src = int(table.column(SRC)[0].as_py())
        table, vectors, tokens, missing = batch_vectors(
            table, self._plan.files[src].rel, self._spec.cache_shards)
        if missing is not None:
            yield beam.pvalue.TaggedOutput("rejects", (src, missing))
        if not table.num_rows:
            return
        score = quantize(sum(w * knn_relevance(index, vectors, self._spec.k)
                             for index, w in self._indexes) / self._total)
        table = table.set_column(table.schema.get_field_index("n_tokens"), "n_tokens",
                                 pa.array(np.asarray(tokens, dtype=np.int64)))
        table = table.append_column(SCORE, pa.array(score, pa.float64()))
        table = table.append_column(KEY, pa.array(score, pa.float64()))
        if self._vectors:
            flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).ravel())
            table = table.append_column(VECTOR, pa.FixedSizeListArray.from_arrays(
                flat, vectors.shape[1]))
        yield table


def _candidates(table: pa.Table, cut, taken: set, seed: int):
    """``((-relevance, tie key, id, source, row), tokens, relevance, vector)`` of the
    candidate rows."""
    keep = in_top(table, cut, taken, COSINE)
    if not keep.any():
        return
    rows = table.filter(pa.array(keep))
    dim = rows.schema.field(VECTOR).type.list_size
    vectors = rows.column(VECTOR).combine_chunks().flatten().to_numpy().reshape(-1, dim)
    score = rows.column(SCORE).to_numpy()
    ids = rows.column("id").to_pylist()
    for i, (ident, tie, src, row, tokens) in enumerate(zip(
            ids, tie_keys(ids, seed).tolist(), rows.column(SRC).to_pylist(),
            rows.column(ROW).to_pylist(), rows.column("n_tokens").to_pylist(), strict=True)):
        yield (-float(score[i]), tie, ident, src, row), int(tokens), float(score[i]), vectors[i]


def _pick(candidates: list, spec: RelevanceSpec) -> dict:
    """Greedy MMR over the candidates in key order (equal gains go to the earlier candidate):
    ``(source, row) → pick rank``."""
    candidates = sorted(candidates, key=lambda c: c[0])
    if not candidates:
        return {}
    order = mmr(np.stack([c[3] for c in candidates]), np.array([c[2] for c in candidates]),
                np.array([c[1] for c in candidates]), spec.budget, spec.mmr_lambda)
    return {(candidates[i][0][3], candidates[i][0][4]): rank for rank, i in enumerate(order)}


class _Select(beam.DoFn):
    def __init__(self, spec: RelevanceSpec) -> None:
        self._tail = SelectionTail(spec)

    def setup(self) -> None:
        self._tail.setup()

    def process(self, table: pa.Table, cut, taken: set, picked: dict | None = None):
        if picked is None:
            keep = in_top(table, cut, taken, COSINE)
        else:
            src, row = table.column(SRC).to_pylist(), table.column(ROW).to_pylist()
            keep = np.array([(s, r) in picked for s, r in zip(src, row, strict=True)], bool)
        columns = {}
        if picked is not None and keep.any():
            kept = table.filter(pa.array(keep))
            columns[RANK] = pa.array([picked[(s, r)] for s, r in zip(
                kept.column(SRC).to_pylist(), kept.column(ROW).to_pylist(), strict=True)],
                pa.int64())
        if keep.any():
            score = table.column(SCORE).to_numpy()[keep]
            yield beam.pvalue.TaggedOutput("stats", (float(score.sum()), float(score.min()),
                                                     len(score)))
        yield from self._tail.emit(table, Fate(keep, {"not_selected": ~keep}, columns=columns))


def build(pipeline: beam.Pipeline, spec: RelevanceSpec) -> None:
    plan = spec.inputs

    def scored(label: str, vectors: bool = False):
        read = pipeline | f"Read{label}" >> ReadRecords(plan, census=not label)
        out = read["records"] | f"Score{label}" >> beam.ParDo(
            _Relevance(plan, spec, vectors)).with_outputs("rejects", main="scored")
        return read, out

    diverse = spec.mmr_lambda is not None
    budget = spec.budget * spec.mmr_candidates if diverse else spec.budget
    cut, taken = top_by_budget(lambda label: scored(label)[1].scored, budget, spec.seed,
                               COSINE)
    sides = [beam.pvalue.AsSingleton(cut), beam.pvalue.AsSingleton(taken)]
    if diverse:
        _, keyed = scored("ForCandidates", vectors=True)
        picked = (keyed.scored | "Candidates" >> beam.FlatMap(_candidates, *sides, spec.seed)
                  | "CollectCandidates" >> beam.combiners.ToList()
                  | "MMR" >> beam.Map(_pick, spec))
        sides.append(beam.pvalue.AsSingleton(picked))
    read, keyed = scored("")
    selected = keyed.scored | "Select" >> beam.ParDo(_Select(spec), *sides).with_outputs(
        "tally", "stats", main="kept")
    write_selection(pipeline, spec, output_schema(plan, spec), selected, read["rows_in"],
                    [read["rejects"], keyed.rejects], _Finish(spec), stats=selected.stats)


class _Finish:
    def __init__(self, spec: RelevanceSpec) -> None:
        self.spec = spec

    def __call__(self, base: dict, stats) -> dict:
        tokens, kept = base["outputs"]["tokens"], base["outputs"]["rows"]
        if tokens < 0.98 * self.spec.budget:
            base["warnings"].append(f"selected {tokens:,} tokens of the {self.spec.budget:,} "
                                    f"asked: the pool holds no more")
        total = sum(s[0] for s in stats)
        base["selector"].update({
            **self.spec.header.selector,
            "mean_relevance": round(total / kept, 6) if kept else None,
            "min_relevance": round(min(s[1] for s in stats), 6) if stats else None})
        return base
