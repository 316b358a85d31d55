"""The ``quality`` job: train the DCLM fastText classifier, score the pool, keep the top k%.

ReadPositives ─┐
ReadForTrain ──┴► negatives (seed, id; optionally length-matched) ─► Train ─► model path
ReadForThreshold ─► Score ─► scores (exact) or ApproximateQuantiles ─► threshold
Read ─► Score ─► keep score >= threshold (or annotate only) ─► Write shards, manifest

Every pass reads the inputs again instead of holding them; the exact threshold holds one
float per row, the approximate one a few thousand.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass

import apache_beam as beam
import numpy as np
import pyarrow as pa
from apache_beam.metrics import Metrics

from tamis.embeddings.fasttext_quality import FastTextQuality
from tamis.pipelines.files import filesystem, join, write_atomically
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
from tamis.selectors.importance import uniforms
from tamis.selectors.quality import (
    accuracy,
    diagnostics,
    holdout_mask,
    length_matched,
    top_fraction_threshold,
)
from tamis.selectors.sampling import row_keys

KEY, SCORE = "__key", "quality_score"
MODEL = "models/quality.bin"
QUANTILES = 10_000


@dataclass(frozen=True)
class QualitySpec:
    out_dir: str
    keep_top: float | None = 0.1  # share of the pool to keep; None: use ``threshold``
    threshold: float | None = None
    negatives: int = 0  # negatives sampled from the pool; 0: as many as positives
    length_match: bool = False
    exact: bool = True  # exact percentile; False: Beam's approximate quantiles
    annotate_only: bool = False
    holdout: float = 0.1
    seed: int = 0
    lr: float = 0.1
    dim: int = 100
    epoch: int = 5
    word_ngrams: int = 2
    num_shards: int = 1
    stats_rate: float = 1.0  # share of rows (by (seed, id)) in the score-length diagnostics
    model_path: str | None = None  # a model an earlier quality job trained: train nothing

    def model(self) -> FastTextQuality:
        return FastTextQuality(self.lr, self.dim, self.epoch, self.word_ngrams, seed=self.seed)


def output_schema(plan: InputPlan) -> pa.Schema:
    return selected_schema(plan, pa.field(SCORE, pa.float64()))


def _texts(table: pa.Table, column: str, seed: int):
    keys = row_keys(table.column("id").to_pylist(), seed).tolist()
    yield from zip(keys, table.column("id").to_pylist(), table.column(column).to_pylist(),
                   strict=True)


def _train(candidates: list, positives: list, spec: QualitySpec) -> dict:
    """Choose the negatives, measure held-out accuracy, train on everything, save."""
    positives = sorted(positives)
    candidates = sorted(candidates)
    n = spec.negatives or len(positives)
    if spec.length_match:
        pick = length_matched(np.array([len(p[2]) for p in positives]),
                              np.array([len(c[2]) for c in candidates]),
                              [c[1] for c in candidates], n, spec.seed)
        negatives = [candidates[i] for i in pick]
    else:
        negatives = candidates[:n]
    if not positives or not negatives:
        raise ValueError(f"quality needs positives and negatives, got {len(positives)} and "
                         f"{len(negatives)}")
    held_p = holdout_mask([p[1] for p in positives], spec.holdout, spec.seed)
    held_n = holdout_mask([c[1] for c in negatives], spec.holdout, spec.seed)
    trial = spec.model().fit([p[2] for p, h in zip(positives, held_p, strict=True) if not h],
                             [c[2] for c, h in zip(negatives, held_n, strict=True) if not h])
    texts = ([p[2] for p, h in zip(positives, held_p, strict=True) if h]
             + [c[2] for c, h in zip(negatives, held_n, strict=True) if h])
    labels = np.r_[np.ones(int(held_p.sum())), np.zeros(int(held_n.sum()))]
    held_accuracy = accuracy(trial.score(texts), labels)
    model = spec.model().fit([p[2] for p in positives], [c[2] for c in negatives])
    path = join(spec.out_dir, MODEL)
    _save(model, path)
    return {"path": path, "heldout_accuracy": held_accuracy, "positives": len(positives),
            "negatives": len(negatives), "hq_scores": model.score([p[2] for p in positives])
            .tolist(), "negative_mean_chars": float(np.mean([len(c[2]) for c in negatives]))}


def _reuse(spec: QualitySpec, hq) -> dict:
    """A trained model from an earlier run; its training figures are not known here."""
    return {"path": spec.model_path, "heldout_accuracy": None, "positives": 0,
            "negatives": 0, "hq_scores": [], "negative_mean_chars": float("nan")}


def _save(model: FastTextQuality, path: str) -> None:
    """fastText writes models to local paths only: save beside the target and rename (all or
    nothing), or save locally and copy to a remote file system."""
    if "://" not in path:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        tmp = f"{path}.tmp-{os.getpid()}"
        model.save(tmp)
        os.replace(tmp, path)
        return
    with tempfile.TemporaryDirectory() as folder:
        local = os.path.join(folder, "m.bin")
        model.save(local)

        def copy(sink) -> None:
            with open(local, "rb") as src:
                while chunk := src.read(1 << 24):
                    sink.write(chunk)

        write_atomically(path, copy)


def _load(path: str) -> FastTextQuality:
    """fastText reads models from local paths only: a remote model is copied first."""
    if "://" not in path:
        return FastTextQuality.load(path)
    fs, inner = filesystem(path)
    with tempfile.TemporaryDirectory() as tmp:
        local = os.path.join(tmp, "m.bin")
        with fs.open_input_stream(inner) as src, open(local, "wb") as dst:
            while chunk := src.read(1 << 24):
                dst.write(chunk)
        return FastTextQuality.load(local)


class _Score(beam.DoFn):
    def __init__(self, text_column: str) -> None:
        self._text = text_column

    def setup(self) -> None:
        self._path, self._model = None, None

    def process(self, table: pa.Table, trained: dict):
        if trained["path"] != self._path:
            self._model, self._path = _load(trained["path"]), trained["path"]
        scores = self._model.score(table.column(self._text).to_pylist())
        yield table.append_column(SCORE, pa.array(scores))


def _threshold(values, spec: QualitySpec) -> float:
    if spec.threshold is not None:
        return float(spec.threshold)
    if spec.exact:
        return top_fraction_threshold(np.asarray(values, dtype=np.float64), spec.keep_top)
    quantiles = values  # QUANTILES + 1 cut points, ascending
    index = int(round((1.0 - spec.keep_top) * QUANTILES))
    return float(quantiles[min(max(index, 0), QUANTILES)])


class _Filter(beam.DoFn):
    def __init__(self, spec: QualitySpec) -> None:
        self._spec = spec

    def setup(self) -> None:
        self._kept = Metrics.counter(NAMESPACE, "rows_kept")

    def process(self, table: pa.Table, threshold: float):
        scores = table.column(SCORE).to_numpy()
        tokens = table.column("n_tokens").to_numpy()
        keep = np.ones(len(scores), bool) if self._spec.annotate_only else scores >= threshold
        if (~keep).any():
            yield beam.pvalue.TaggedOutput("tally", ("dropped", "below_quality_threshold",
                                                     int((~keep).sum()),
                                                     int(tokens[~keep].sum())))
        ids = table.column("id").to_pylist()
        sampled = uniforms(ids, self._spec.seed + 1) < self._spec.stats_rate
        yield beam.pvalue.TaggedOutput("stats", (scores[sampled].tolist(),
                                                 tokens[sampled].tolist()))
        self._kept.inc(int(keep.sum()))
        if not keep.any():
            return
        kept = table.filter(pa.array(keep))
        kept = kept.append_column("weight", pa.array(np.ones(kept.num_rows)))
        kept = kept.append_column("n_samples", pa.array(np.ones(kept.num_rows, np.int64)))
        yield from split_by_shard(kept, self._spec.seed, self._spec.num_shards, KEY)


def build(pipeline: beam.Pipeline, plan: InputPlan, positives: InputPlan | None,
          spec: QualitySpec, header: dict) -> None:
    text = plan.text_column
    if not spec.model_path:
        wanted = (spec.negatives or positives.rows or 1000) * (5 if spec.length_match else 1)
        candidates = ((pipeline | "ReadForTrain" >> ReadRecords(plan))["records"]
                      | "PoolTexts" >> beam.FlatMap(_texts, text, spec.seed)
                      | "SampleNegatives" >> beam.combiners.Top.Smallest(wanted))
        hq = ((pipeline | "ReadPositives" >> ReadRecords(positives))["records"]
              | "PositiveTexts" >> beam.FlatMap(_texts, positives.text_column, spec.seed)
              | "CollectPositives" >> beam.combiners.ToList())
    else:
        hq = None
    if spec.model_path:
        trained = pipeline | "Model" >> beam.Create([_reuse(spec, hq)])
    else:
        trained = candidates | "Train" >> beam.Map(_train, beam.pvalue.AsSingleton(hq), spec)
    model = beam.pvalue.AsSingleton(trained)
    if spec.threshold is not None or spec.annotate_only:  # no pass to find a percentile
        threshold = pipeline | "Threshold" >> beam.Create([spec.threshold or 0.0])
    else:
        scores = (((pipeline | "ReadForThreshold" >> ReadRecords(plan))["records"]
                   | "ScoreForThreshold" >> beam.ParDo(_Score(text), model))
                  | "Scores" >> beam.FlatMap(lambda t: t.column(SCORE).to_pylist()))
        if spec.exact:
            cut = scores | "AllScores" >> beam.combiners.ToList()
        else:
            cut = scores | "Quantiles" >> beam.ApproximateQuantiles.Globally(QUANTILES + 1)
        threshold = cut | "Threshold" >> beam.Map(_threshold, spec)
    read = pipeline | "ReadRecords" >> ReadRecords(plan)
    filtered = (read["records"] | "Score" >> beam.ParDo(_Score(text), model)
                | "Filter" >> beam.ParDo(_Filter(spec), beam.pvalue.AsSingleton(threshold))
                .with_outputs("tally", "stats", main="kept"))
    shards = filtered.kept | "WriteShards" >> WriteShards(
        spec.out_dir, output_schema(plan), spec.num_shards, [KEY, "id", SRC, ROW])
    rejects = read["rejects"] | "WriteRejects" >> WriteRejects(spec.out_dir)
    checksums = pipeline | "ChecksumInputs" >> ChecksumInputs(plan)
    sides = {"checksums": checksums, "rows_in": read["rows_in"], "shards": shards,
             "rejects": rejects, "tally": filtered.tally, "stats": filtered.stats,
             "trained": trained, "threshold": threshold}
    _ = sides | "WriteManifest" >> WriteManifest(spec.out_dir, _Manifest(plan, spec, header))


class _Manifest:
    def __init__(self, plan: InputPlan, spec: QualitySpec, header: dict) -> None:
        self.plan, self.spec, self.header = plan, spec, header

    def __call__(self, checksums, rows_in, shards, rejects, tally, stats, trained,
                 threshold) -> dict:
        base, _ = manifest_base(self.plan, self.header, checksums, rows_in, shards, rejects)
        trained, threshold = trained[0], threshold[0]
        kept = sum(e["rows"] for e in base["outputs"]["shards"])
        dropped = {k: v[0] for k, v in sum_tally(tally).get("dropped", {}).items() if v[0]}
        base["outputs"].update(rows=kept, tokens=sum(e["tokens"] for e in
                                                      base["outputs"]["shards"]),
                               schema=[{"name": f.name, "type": str(f.type)}
                                       for f in output_schema(self.plan)])
        base["accounting"].update(rows_kept=kept, rows_dropped=dropped)
        scores = np.concatenate([np.asarray(s, float) for s, _ in stats]) if stats else []
        lengths = np.concatenate([np.asarray(n, float) for _, n in stats]) if stats else []
        report = diagnostics(scores, lengths, np.asarray(trained["hq_scores"]), threshold)
        return {**base, "selector": {
            "method": "quality", "classifier": "fasttext", "keep_top": self.spec.keep_top,
            "threshold": threshold, "exact_threshold": self.spec.exact,
            "annotate_only": self.spec.annotate_only, "length_match": self.spec.length_match,
            "positives": trained["positives"], "negatives": trained["negatives"],
            "heldout_accuracy": trained["heldout_accuracy"],
            "negative_mean_chars": None if np.isnan(trained["negative_mean_chars"])
            else round(trained["negative_mean_chars"], 1),
            "model": self.spec.model_path or MODEL, **report}}
