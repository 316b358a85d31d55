"""The ``sample`` job: uniform sampling without replacement to a row or token budget.

Read ─► Key (seed, id) ─► Histogram ─► Fit cut-offs
Read ─► Key ─► rows of each stratum's cut-off bin ─► Resolve
Read ─► Key ─► Select (cut-offs, resolved) ─► Write shards ─► Write manifest

Three reads of the inputs, one per pass; memory holds histograms and the rows of the cut-off
bins, never the corpus (the shuffle before writing holds the selection).
"""

from __future__ import annotations

from dataclasses import dataclass

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tamis.pipelines.read import ReadRecords
from tamis.pipelines.tail import (
    Fate,
    SelectionSpec,
    SelectionTail,
    selected_schema,
    write_selection,
)
from tamis.selectors.sampling import UniformSampler, select_boundary, stratum_weights
from tamis.storage.inputs import InputPlan
from tamis.storage.records import ROW, SRC

KEY, STRATUM = "__key", "__stratum"
ALL = "all"
NULL_STRATUM = "__null__"


#: Key bins of the histogram pass: its cut-off bin holds about 1/4,096 of a stratum's rows.
BIN_BITS = 12


@dataclass(frozen=True, kw_only=True)
class SampleSpec(SelectionSpec):
    budget: int
    unit: str  # rows | tokens
    stratify_by: str | None
    allocation: str  # proportional | equal

    def sampler(self) -> UniformSampler:
        return UniformSampler(self.budget, self.unit, self.seed, self.allocation, BIN_BITS)


def output_schema(plan: InputPlan) -> pa.Schema:
    return selected_schema(plan)


def _add_keys(table: pa.Table, spec: SampleSpec) -> pa.Table:
    keys = spec.sampler().keys(table.column("id").to_pylist())
    table = table.append_column(KEY, pa.array(keys, pa.uint64()))
    if spec.stratify_by is None:
        strata = pa.array([ALL] * table.num_rows, pa.string())
    else:
        strata = pc.fill_null(table.column(spec.stratify_by).cast(pa.string()), NULL_STRATUM)
    return table.append_column(STRATUM, strata)


def _histograms(table: pa.Table, spec: SampleSpec) -> dict:
    sampler = spec.sampler()
    keys = table.column(KEY).to_numpy()
    tokens = table.column("n_tokens").to_numpy()
    strata = np.asarray(table.column(STRATUM).to_pylist(), dtype=object)
    return {s: sampler.histogram(keys[strata == s], tokens[strata == s]) for s in set(strata)}


class _SumHistograms(beam.CombineFn):
    def create_accumulator(self):
        return {}

    def add_input(self, acc, item):
        for stratum, hist in item.items():
            acc[stratum] = acc[stratum] + hist if stratum in acc else hist.copy()
        return acc

    def merge_accumulators(self, accs):
        out: dict = {}
        for acc in accs:
            self.add_input(out, acc)
        return out

    def extract_output(self, acc):
        return acc


def _fit(histograms: dict, spec: SampleSpec) -> UniformSampler:
    return spec.sampler().fit(histograms)


def _boundary_rows(table: pa.Table, sampler: UniformSampler):
    """Rows in their stratum's cut-off bin: ``(stratum, (key, id, src, row), tokens)``."""
    bins = table.column(KEY).to_numpy() >> np.uint64(64 - sampler.bin_bits)
    strata = table.column(STRATUM).to_pylist()
    cut = np.array([sampler.cutoffs_[s].bin for s in strata], dtype=np.int64)
    hit = np.flatnonzero(bins.astype(np.int64) == cut)
    if hit.size == 0:
        return
    part = table.take(pa.array(hit))
    yield from (
        (s, (int(k), i, int(src), int(r)), int(t))
        for s, k, i, src, r, t in zip(
            part.column(STRATUM).to_pylist(), part.column(KEY).to_pylist(),
            part.column("id").to_pylist(), part.column(SRC).to_pylist(),
            part.column(ROW).to_pylist(), part.column("n_tokens").to_pylist(), strict=True)
    )


def _resolve(candidates: list, sampler: UniformSampler) -> dict:
    """Which cut-off rows are taken, what each stratum got, and each stratum's weight.

    Returns ``taken`` ({stratum: {(src, row)}}), ``selected`` (rows and tokens per stratum,
    in ``sampler.strata_`` order) and ``weights`` (per stratum, same order).
    """
    by_stratum: dict[str, list] = {s: [] for s in sampler.strata_}
    for stratum, locator, tokens in candidates:
        by_stratum[stratum].append((locator, tokens))
    taken: dict[str, set] = {}
    selected = np.zeros((len(sampler.strata_), 2), dtype=np.int64)
    for i, s in enumerate(sampler.strata_):
        rows = by_stratum[s]
        cut = sampler.cutoffs_[s]
        amounts = [t for _, t in rows] if sampler.unit == "tokens" else [1] * len(rows)
        mask = select_boundary([loc for loc, _ in rows], amounts, cut.remaining)
        chosen = [(loc, t) for (loc, t), m in zip(rows, mask, strict=True) if m]
        taken[s] = {(loc[2], loc[3]) for loc, _ in chosen}
        before = sampler.histograms_[i, :, : cut.bin].sum(axis=1)
        selected[i] = before + np.array([len(chosen), sum(t for _, t in chosen)])
    unit = 0 if sampler.unit == "rows" else 1
    pool = sampler.histograms_[:, unit, :].sum(axis=1)
    weights = stratum_weights(pool, selected[:, unit]) if len(pool) else np.zeros(0)
    return {"taken": taken, "selected": selected.tolist(), "weights": weights.tolist()}


class _Select(beam.DoFn):
    def __init__(self, spec: SampleSpec) -> None:
        self._spec = spec
        self._tail = SelectionTail(spec)

    def setup(self) -> None:
        self._tail.setup()

    def process(self, table: pa.Table, sampler: UniformSampler, resolved: dict):
        strata = table.column(STRATUM).to_pylist()
        index = {s: i for i, s in enumerate(sampler.strata_)}
        rows_of = np.array([index[s] for s in strata], dtype=np.int64)
        cut = np.array([sampler.cutoffs_[s].bin for s in strata], dtype=np.int64)
        keys = table.column(KEY).to_numpy()
        bins = (keys >> np.uint64(64 - sampler.bin_bits)).astype(np.int64)
        keep = bins < cut
        src, row = table.column(SRC).to_numpy(), table.column(ROW).to_numpy()
        for i in np.flatnonzero(bins == cut):
            keep[i] = (int(src[i]), int(row[i])) in resolved["taken"][strata[i]]
        weights = np.asarray(resolved["weights"], dtype=np.float64)
        yield from self._tail.emit(table, Fate(
            keep, {"not_sampled": ~keep},
            weight=weights[rows_of[keep]] if len(weights) else 1.0))


class SampleUniform(beam.PTransform):
    """A uniform sample without replacement of an input plan, per stratum, to a budget.

    Applied to the pipeline, it reads the inputs once per pass (histogram, cut-off bin,
    selection) rather than keeping records between passes: a local runner would otherwise hold
    the whole corpus in memory. Returns ``selected`` (its ``kept`` ``(shard, table)`` pairs and
    ``tally``), ``sampler``, ``resolved``, and the main read's ``rows_in`` and ``rejects``.
    """

    def __init__(self, spec: SampleSpec) -> None:
        super().__init__()
        if spec.unit not in ("rows", "tokens"):
            raise ValueError(f"unit must be 'rows' or 'tokens', got {spec.unit!r}")
        if spec.budget <= 0:
            raise ValueError(f"budget must be positive, got {spec.budget}")
        self._plan, self._spec = spec.inputs, spec

    def _keyed(self, pbegin, label: str):
        read = pbegin | f"Read{label}" >> ReadRecords(self._plan, census=not label)
        return read, read["records"] | f"Key{label}" >> beam.Map(_add_keys, self._spec)

    def expand(self, pbegin):
        spec = self._spec
        _, keyed = self._keyed(pbegin, "ForHistogram")
        sampler = (
            keyed
            | "Histogram" >> beam.Map(_histograms, spec)
            | "SumHistograms" >> beam.CombineGlobally(_SumHistograms())
            | "Fit" >> beam.Map(_fit, spec)
        )
        fitted = beam.pvalue.AsSingleton(sampler)
        _, keyed = self._keyed(pbegin, "ForBoundary")
        resolved = (
            keyed
            | "Boundary" >> beam.FlatMap(_boundary_rows, fitted)
            | "CollectBoundary" >> beam.combiners.ToList()
            | "Resolve" >> beam.Map(_resolve, fitted)
        )
        read, keyed = self._keyed(pbegin, "")
        out = keyed | "Select" >> beam.ParDo(
            _Select(spec), fitted, beam.pvalue.AsSingleton(resolved)).with_outputs(
            "tally", main="kept")
        return {"selected": out, "sampler": sampler, "resolved": resolved,
                "rows_in": read["rows_in"], "rejects": read["rejects"]}


def build(pipeline: beam.Pipeline, spec: SampleSpec) -> None:
    """Add the whole ``sample`` job to ``pipeline``."""
    sample = pipeline | "SampleUniform" >> SampleUniform(spec)
    write_selection(pipeline, spec, output_schema(spec.inputs), sample["selected"],
                    sample["rows_in"], [sample["rejects"]], _Finish(spec),
                    sampler=sample["sampler"], resolved=sample["resolved"])


class _Finish:
    """The sample job's own manifest sections (a picklable callable)."""

    def __init__(self, spec: SampleSpec) -> None:
        self.spec = spec

    def __call__(self, base: dict, sampler, resolved) -> dict:
        spec = self.spec
        sampler, resolved = sampler[0], resolved[0]
        base["mixture"]["by_stratum"] = _strata(sampler, resolved, spec.unit)
        pool_rows = int(sampler.pool_rows_.sum()) if len(sampler.strata_) else 0
        pool_tokens = int(sampler.pool_tokens_.sum()) if len(sampler.strata_) else 0
        pool = pool_rows if spec.unit == "rows" else pool_tokens
        if spec.budget > pool:
            base["warnings"].append(f"the budget ({spec.budget} {spec.unit}) exceeds the "
                                    f"pool's {pool} {spec.unit}: every valid row was kept")
        base["selector"].update({
            "method": "uniform", "unit": spec.unit, "budget": spec.budget,
            "allocation": spec.allocation, "stratify_by": spec.stratify_by,
            "pool_rows": pool_rows, "pool_tokens": pool_tokens})
        return base


def _strata(sampler: UniformSampler, resolved: dict, unit: str) -> dict:
    """Per stratum: pool and selected rows and tokens; shares in the budget's unit."""
    out = {}
    pool_rows, pool_tokens = sampler.pool_rows_, sampler.pool_tokens_
    chosen = np.asarray(resolved["selected"], dtype=np.int64).reshape(-1, 2)
    u = 0 if unit == "rows" else 1
    pool = pool_rows if u == 0 else pool_tokens
    for i, s in enumerate(sampler.strata_):
        out[s] = {
            "pool_rows": int(pool_rows[i]), "pool_tokens": int(pool_tokens[i]),
            "selected_rows": int(chosen[i, 0]), "selected_tokens": int(chosen[i, 1]),
            "pool_share": _share(pool, i), "selected_share": _share(chosen[:, u], i),
            "weight": resolved["weights"][i],
        }
    return out


def _share(values: np.ndarray, i: int) -> float:
    total = float(np.sum(values))
    return round(float(values[i]) / total, 6) if total else 0.0
