"""The ``dsir`` job: DSIR-style hashed n-gram importance resampling to a token budget.

ReadTarget ─► bucket counts ─┐
ReadForFit ─► bucket counts ─┴► Fit (log importance ratio per bucket)
ReadForHistogram ─► key = log w + Gumbel(seed, id) ─► tokens per key bin ─► cut-off bin
ReadForBoundary ─► rows of the cut-off bin ─► Resolve
Read ─► Select (bins above the cut-off, and the resolved rows) ─► Write shards, manifest

Keys are binned through ``asinh``, a fixed monotone map with relative resolution, so no pass
is needed to find their range; the highest keys are taken until the budget is spent. Every
pass reads the inputs again rather than holding records: memory stays flat on a local runner.
"""

from __future__ import annotations

from dataclasses import dataclass

import apache_beam as beam
import numpy as np
import pyarrow as pa
from apache_beam.metrics import Metrics

from tamis.pipelines.inputs import InputPlan
from tamis.pipelines.records import ROW, SRC
from tamis.pipelines.stages import (
    NAMESPACE,
    ChecksumInputs,
    ReadRecords,
    WriteManifest,
    WriteRejects,
    WriteShards,
    manifest_base,
    selected_schema,
    split_by_shard,
    sum_tally,
)
from tamis.selectors.dsir import HashedNgramSelector, gumbel_keys
from tamis.selectors.sampling import cutoff, select_boundary

KEY, SCORE = "__key", "dsir_log_weight"
BIN_BITS = 16
SPAN = 24.0  # asinh(key) is binned over [-SPAN, SPAN]: |key| up to ~1e10


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
    n = 1 << BIN_BITS
    z = (SPAN - np.arcsinh(np.clip(keys, -1e10, 1e10))) / (2 * SPAN) * n
    bins = np.clip(np.floor(z), 0, n - 1).astype(np.int64)
    return np.where(np.isfinite(keys), bins, n)


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
        raise ValueError("DSIR needs words in both the pool and the target set")
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


def _histogram(table: pa.Table) -> np.ndarray:
    bins = key_bins(table.column(KEY).to_numpy())
    tokens = table.column("n_tokens").to_numpy()
    return np.bincount(bins, weights=tokens, minlength=(1 << BIN_BITS) + 1).astype(np.int64)


def _cut(hist, spec: DsirSpec):
    if not isinstance(hist, np.ndarray):  # no record at all
        hist = np.zeros((1 << BIN_BITS) + 1, dtype=np.int64)
    return cutoff(hist[: 1 << BIN_BITS], spec.budget)


def _boundary(table: pa.Table, cut):
    if cut.bin >= 1 << BIN_BITS:  # the budget takes every eligible row: no cut-off bin
        return
    bins = key_bins(table.column(KEY).to_numpy())
    for i in np.flatnonzero(bins == cut.bin):
        yield ((-float(table.column(KEY)[i].as_py()), table.column("id")[i].as_py(),
                int(table.column(SRC)[i].as_py()), int(table.column(ROW)[i].as_py())),
               int(table.column("n_tokens")[i].as_py()))


def _resolve(candidates: list, cut) -> set:
    mask = select_boundary([c for c, _ in candidates], [t for _, t in candidates], cut.remaining)
    return {(c[2], c[3]) for (c, _), m in zip(candidates, mask, strict=True) if m}


class _Select(beam.DoFn):
    def __init__(self, spec: DsirSpec) -> None:
        self._spec = spec

    def setup(self) -> None:
        self._kept = Metrics.counter(NAMESPACE, "rows_kept")

    def process(self, table: pa.Table, cut, taken: set):
        bins = key_bins(table.column(KEY).to_numpy())
        keep = bins < cut.bin
        src, row = table.column(SRC).to_numpy(), table.column(ROW).to_numpy()
        edge = np.flatnonzero(bins == cut.bin) if cut.bin < 1 << BIN_BITS else []
        for i in edge:
            keep[i] = (int(src[i]), int(row[i])) in taken
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
    _, keyed = scored("ForHistogram")
    cut = (keyed | "Histogram" >> beam.Map(_histogram)
           | "SumHistogram" >> beam.CombineGlobally(sum)
           | "CutOff" >> beam.Map(_cut, spec))
    _, keyed = scored("ForBoundary")
    taken = (keyed | "Boundary" >> beam.FlatMap(_boundary, beam.pvalue.AsSingleton(cut))
             | "CollectBoundary" >> beam.combiners.ToList()
             | "Resolve" >> beam.Map(_resolve, beam.pvalue.AsSingleton(cut)))
    read, keyed = scored("")
    selected = keyed | "Select" >> beam.ParDo(
        _Select(spec), beam.pvalue.AsSingleton(cut), beam.pvalue.AsSingleton(taken)
    ).with_outputs("tally", main="kept")
    shards = selected.kept | "WriteShards" >> WriteShards(
        spec.out_dir, output_schema(plan), spec.num_shards, [KEY, "id", SRC, ROW])
    rejects = read["rejects"] | "WriteRejects" >> WriteRejects(spec.out_dir)
    checksums = pipeline | "ChecksumInputs" >> ChecksumInputs(plan)
    sides = {"checksums": checksums, "rows_in": read["rows_in"], "shards": shards,
             "rejects": rejects, "tally": selected.tally}
    _ = sides | "WriteManifest" >> WriteManifest(spec.out_dir, _Manifest(plan, spec, header))


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
