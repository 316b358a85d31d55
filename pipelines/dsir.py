"""The ``dsir`` job: DSIR-style hashed n-gram importance resampling to a token budget.

ReadTarget ─► bucket counts ─┐
ReadForFit ─► bucket counts ─┴► Fit (log importance ratio per bucket)
key = log w + Gumbel(seed, id) ─► the highest keys up to the budget (:mod:`.topk`, two reads)
Read ─► Select ─► Write shards, manifest

Keys are binned through ``asinh``, a fixed monotone map with relative resolution. Every pass
reads the inputs again rather than holding records: memory stays flat on a local runner.
"""

from __future__ import annotations

from dataclasses import dataclass

import apache_beam as beam
import numpy as np
import pyarrow as pa
from apache_beam.metrics import Metrics

from tamis.pipelines.inputs import InputPlan
from tamis.pipelines.stages import (
    NAMESPACE,
    DataError,
    ReadRecords,
    manifest_base,
    selected_schema,
    split_by_shard,
    sum_tally,
    write_outputs,
)
from tamis.pipelines.topk import ASINH, KEY, in_top, top_by_budget
from tamis.selectors.dsir import HashedNgramSelector, gumbel_keys

SCORE = "dsir_log_weight"


@dataclass(frozen=True)
class DsirSpec:
    out_dir: str
    budget: int  # tokens
    seed: int = 0
    num_buckets: int = 10_000
    ngrams: int = 2
    min_words: int = 100
    num_shards: int = 1

    def selector(self) -> HashedNgramSelector:
        return HashedNgramSelector(self.num_buckets, self.ngrams, min_tokens=self.min_words)


def output_schema(plan: InputPlan) -> pa.Schema:
    return selected_schema(plan, pa.field(SCORE, pa.float64()))


def key_bins(keys: np.ndarray) -> np.ndarray:
    """Bin 0 holds the highest keys; ``-inf`` keys (too short) fall past the last bin."""
    return ASINH.bins(keys)


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
    selector = spec.selector()
    selector.target_probs_ = target / target.sum()
    selector.raw_probs_ = raw / raw.sum()
    return (np.log(selector.target_probs_ + selector.floor)
            - np.log(selector.raw_probs_ + selector.floor))


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
        self._spec = spec

    def setup(self) -> None:
        self._kept = Metrics.counter(NAMESPACE, "rows_kept")

    def process(self, table: pa.Table, cut, taken: set):
        keep = in_top(table, cut, taken, ASINH)
        tokens = table.column("n_tokens").to_numpy()
        short = ~np.isfinite(table.column(KEY).to_numpy())
        for reason, mask in (("too_short", short), ("not_sampled", ~keep & ~short)):
            if mask.any():
                yield beam.pvalue.TaggedOutput(
                    "tally", ("dropped", reason, int(mask.sum()), int(tokens[mask].sum())))
        self._kept.inc(int(keep.sum()))
        if not keep.any():
            return
        kept = table.filter(pa.array(keep))
        kept = kept.append_column("weight", pa.array(np.ones(kept.num_rows)))
        kept = kept.append_column("n_samples", pa.array(np.ones(kept.num_rows, np.int64)))
        yield from split_by_shard(kept, self._spec.seed, self._spec.num_shards, KEY)


def build(pipeline: beam.Pipeline, plan: InputPlan, target: InputPlan, spec: DsirSpec,
          header: dict) -> None:
    text = plan.text_column

    def scored(label: str):
        read = pipeline | f"Read{label}" >> ReadRecords(plan)
        return read, read["records"] | f"Score{label}" >> beam.ParDo(
            _Score(spec, text), beam.pvalue.AsSingleton(log_ratio))

    raw = ((pipeline | "ReadForFit" >> ReadRecords(plan))["records"]
           | "PoolCounts" >> beam.Map(_counts, spec, text)
           | "SumPool" >> beam.CombineGlobally(_Fit()))
    wanted = ((pipeline | "ReadTarget" >> ReadRecords(target))["records"]
              | "TargetCounts" >> beam.Map(_counts, spec, target.text_column)
              | "SumTarget" >> beam.CombineGlobally(_Fit()))
    log_ratio = raw | "Fit" >> beam.Map(_fit, beam.pvalue.AsSingleton(wanted), spec)
    cut, taken = top_by_budget(lambda label: scored(label)[1], spec.budget, ASINH)
    read, keyed = scored("")
    selected = keyed | "Select" >> beam.ParDo(
        _Select(spec), beam.pvalue.AsSingleton(cut), beam.pvalue.AsSingleton(taken)
    ).with_outputs("tally", main="kept")
    write_outputs(pipeline, plan, spec.out_dir, output_schema(plan), spec.num_shards,
                  selected.kept, read["rows_in"], [read["rejects"]],
                  _Manifest(plan, spec, header), tally=selected.tally)


class _Manifest:
    def __init__(self, plan: InputPlan, spec: DsirSpec, header: dict) -> None:
        self.plan, self.spec, self.header = plan, spec, header

    def __call__(self, checksums, rows_in, shards, rejects, tally) -> dict:
        base, _ = manifest_base(self.plan, self.header, checksums, rows_in, shards, rejects)
        shards = base["outputs"]["shards"]
        kept = sum(e["rows"] for e in shards)
        tokens = sum(e["tokens"] for e in shards)
        dropped = {k: v[0] for k, v in sum_tally(tally).get("dropped", {}).items() if v[0]}
        base["outputs"].update(rows=kept, tokens=tokens, schema=[
            {"name": f.name, "type": str(f.type)} for f in output_schema(self.plan)])
        base["accounting"].update(rows_kept=kept, rows_dropped=dropped)
        if tokens < 0.98 * self.spec.budget:
            base["warnings"].append(f"selected {tokens:,} tokens of the {self.spec.budget:,} "
                                    f"asked: the pool has no more rows of {self.spec.min_words}+"
                                    f" words")
        return {**base, "selector": {
            "method": "dsir", "budget_tokens": self.spec.budget, "selected_rows": kept,
            "selected_tokens": tokens, "num_buckets": self.spec.num_buckets,
            "ngrams": self.spec.ngrams, "min_words": self.spec.min_words,
            "max_repetition": 1, **self.header.get("selector", {})}}
