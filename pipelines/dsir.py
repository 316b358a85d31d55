"""The ``dsir`` job: DSIR-style hashed n-gram importance resampling to a token budget.

ReadTarget ─► bucket counts ─┐
ReadForFit ─► bucket counts ─┴► Fit (log importance ratio per bucket)
key = log w + Gumbel(seed, id) ─► the highest keys up to the budget (:mod:`.topk`, two reads)
Read ─► Select ─► Write shards, manifest

Keys lie on the grid of :mod:`tamis.selectors.precision` and are binned by their binary
exponent and top mantissa bits, an exact monotone map with relative resolution. Every pass
reads the inputs again rather than holding records: memory stays flat on a local runner.
"""

from __future__ import annotations

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
from tamis.pipelines.topk import KEY, RELATIVE, in_top, top_by_budget
from tamis.selectors.dsir import HashedNgramSelector, gumbel_keys
from tamis.storage.errors import DataError
from tamis.storage.inputs import InputPlan

SCORE = "dsir_log_weight"


@dataclass(frozen=True, kw_only=True)
class DsirSpec(SelectionSpec):
    target: InputPlan  # the target (specialist) text
    budget: int  # tokens
    num_buckets: int
    ngrams: int
    min_words: int

    def selector(self) -> HashedNgramSelector:
        return HashedNgramSelector(self.num_buckets, self.ngrams, min_tokens=self.min_words)


def output_schema(plan: InputPlan) -> pa.Schema:
    return selected_schema(plan, pa.field(SCORE, pa.float64()))


def key_bins(keys: np.ndarray) -> np.ndarray:
    """Bin 0 holds the highest keys; ``-inf`` keys (too short) fall past the last bin."""
    return RELATIVE.bins(keys)


def _counts(table: pa.Table, spec: DsirSpec, text_column: str) -> np.ndarray:
    return spec.selector().counts(table.column(text_column).to_pylist())


class _Fit(beam.CombineFn):
    def create_accumulator(self):
        return None

    def add_input(self, acc, counts):
        return counts.copy() if acc is None else acc + counts

    def merge_accumulators(self, accs):
        out = None
        for acc in accs:
            if acc is not None:
                out = acc.copy() if out is None else out + acc
        return out

    def extract_output(self, acc):
        return acc


def _fit(raw: np.ndarray, target: np.ndarray, spec: DsirSpec) -> np.ndarray:
    if raw is None or target is None:
        raise DataError("DSIR needs words in both the pool and the target set")
    try:
        return spec.selector().fit_counts(target, raw).log_ratio_
    except ValueError as exc:
        raise DataError(f"DSIR: {exc}") from None


class _Score(beam.DoFn):
    """Adds the log importance weight and the Gumbel key of every row."""

    def __init__(self, spec: DsirSpec, text_column: str) -> None:
        self._spec, self._text = spec, text_column

    def setup(self) -> None:
        self._selector = self._spec.selector()

    def process(self, table: pa.Table, log_ratio: np.ndarray):
        self._selector.log_ratio_ = log_ratio
        scores = self._selector.score(table.column(self._text).to_pylist())
        keys = gumbel_keys(scores, table.column("id").to_pylist(), self._spec.seed)
        table = table.append_column(SCORE, pa.array(scores))
        yield table.append_column(KEY, pa.array(keys))


class _Select(beam.DoFn):
    def __init__(self, spec: DsirSpec) -> None:
        self._tail = SelectionTail(spec)

    def setup(self) -> None:
        self._tail.setup()

    def process(self, table: pa.Table, cut, taken: set):
        keep = in_top(table, cut, taken, RELATIVE)
        short = ~np.isfinite(table.column(KEY).to_numpy())
        yield from self._tail.emit(table, Fate(
            keep, {"too_short": short, "not_sampled": ~keep & ~short}))


def build(pipeline: beam.Pipeline, spec: DsirSpec) -> None:
    plan, target = spec.inputs, spec.target
    text = plan.text_column

    def scored(label: str):
        read = pipeline | f"Read{label}" >> ReadRecords(plan, census=not label)
        return read, read["records"] | f"Score{label}" >> beam.ParDo(
            _Score(spec, text), beam.pvalue.AsSingleton(log_ratio))

    raw = ((pipeline | "ReadForFit" >> ReadRecords(plan))["records"]
           | "PoolCounts" >> beam.Map(_counts, spec, text)
           | "SumPool" >> beam.CombineGlobally(_Fit()))
    wanted = ((pipeline | "ReadTarget" >> ReadRecords(target))["records"]
              | "TargetCounts" >> beam.Map(_counts, spec, target.text_column)
              | "SumTarget" >> beam.CombineGlobally(_Fit()))
    log_ratio = raw | "Fit" >> beam.Map(_fit, beam.pvalue.AsSingleton(wanted), spec)
    cut, taken = top_by_budget(lambda label: scored(label)[1], spec.budget, spec.seed, RELATIVE)
    read, keyed = scored("")
    selected = keyed | "Select" >> beam.ParDo(
        _Select(spec), beam.pvalue.AsSingleton(cut), beam.pvalue.AsSingleton(taken)
    ).with_outputs("tally", main="kept")
    write_selection(pipeline, spec, output_schema(plan), selected, read["rows_in"],
                    [read["rejects"]], _Finish(spec))


class _Finish:
    def __init__(self, spec: DsirSpec) -> None:
        self.spec = spec

    def __call__(self, base: dict) -> dict:
        spec = self.spec
        tokens = base["outputs"]["tokens"]
        if tokens < 0.98 * spec.budget:
            base["warnings"].append(f"selected {tokens:,} tokens of the {spec.budget:,} "
                                    f"asked: the pool has no more rows of {spec.min_words}+"
                                    f" words")
        base["selector"].update({
            "method": "dsir", "budget_tokens": spec.budget, "num_buckets": spec.num_buckets,
            "ngrams": spec.ngrams, "min_words": spec.min_words,
            **spec.header.selector})
        return base
