"""The ``quality`` job: train a quality classifier, score the pool, keep the top k%.

The classifier is the DCLM fastText model on text, or a logistic regression on the vectors of
an embedding cache (``tamis embed`` on the pool and on the high-quality set).

ReadPositives ─┐
ReadForTrain ──┴► negatives (seed, id; optionally length-matched) ─► Train ─► model path
ReadForThreshold ─► Score ─► histogram of scores on the grid ─► threshold (exact percentile)
Read ─► Score ─► keep score >= threshold (or annotate only) ─► Write shards, manifest

Every pass reads the inputs again instead of holding them. Scores are probabilities rounded to
the grid of :mod:`tamis.selectors.precision`, so the percentile is exact from a histogram of
65,537 counts, at any corpus size, and the same on every CPU.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass

import apache_beam as beam
import numpy as np
import pyarrow as pa

from tamis.embeddings.classifiers import QualityHandler, save_classifier
from tamis.embeddings.fasttext_quality import CC, HQ, FastTextQuality
from tamis.pipelines.read import ReadDocumentVectors, ReadRecords
from tamis.pipelines.tail import (
    Fate,
    SelectionSpec,
    SelectionTail,
    selected_schema,
    write_selection,
)
from tamis.selectors.importance import uniforms
from tamis.selectors.precision import STEP, quantize
from tamis.selectors.quality import (
    EmbeddingLogistic,
    accuracy,
    auc,
    classifier_warnings,
    diagnostics,
    holdout_mask,
    length_matched,
    score_histogram,
    threshold_from_histogram,
)
from tamis.selectors.sampling import row_keys
from tamis.storage.cache import batch_vectors, open_cache
from tamis.storage.errors import DataError
from tamis.storage.files import filesystem, join, write_atomically
from tamis.storage.inputs import InputPlan
from tamis.storage.records import SRC

SCORE = "quality_score"
MODELS = {"fasttext": "models/quality.bin", "embedding": "models/quality.npz"}


@dataclass(frozen=True, kw_only=True)
class QualitySpec(SelectionSpec):
    classifier: str  # "fasttext" on text, or "embedding": logistic regression on vectors
    positives: InputPlan | None  # fasttext: the high-quality text (None: a model is reused)
    keep_top: float | None  # share of the pool to keep; None: use ``threshold``
    threshold: float | None
    negatives: int  # negatives sampled from the pool
    length_match: bool
    annotate_only: bool
    holdout: float
    fasttext: FastTextQuality  # unfitted: its settings
    logistic: EmbeddingLogistic  # unfitted: its settings
    stats_rate: float  # share of rows (by (seed, id)) in the score-length diagnostics
    model_path: str | None  # a model an earlier quality job trained: train nothing
    pool_cache: str | None  # embedding: the pool's cache and the positives'
    positive_cache: str | None
    cache_shards: Mapping[tuple[str, int], str]  # (input file, first row) → cache shard

    def model(self) -> FastTextQuality | EmbeddingLogistic:
        """A fresh, unfitted classifier with these settings."""
        return copy.deepcopy(self.logistic if self.classifier == "embedding" else self.fasttext)

    @property
    def model_file(self) -> str:
        return MODELS[self.classifier]


def output_schema(plan: InputPlan) -> pa.Schema:
    return selected_schema(plan, pa.field(SCORE, pa.float64()))


def _texts(table: pa.Table, column: str, seed: int):
    """``(key, id, text)`` per row: what fastText trains on."""
    keys = row_keys(table.column("id").to_pylist(), seed).tolist()
    yield from zip(keys, table.column("id").to_pylist(), table.column(column).to_pylist(),
                   strict=True)


def _vectors(item, seed: int):
    """``(key, id, model tokens, vector bytes)`` per document of a cache shard."""
    _, ids, vectors, tokens = item
    yield from zip(row_keys(ids, seed).tolist(), ids, tokens.tolist(),
                   [v.tobytes() for v in vectors], strict=True)


def _length(item) -> float:
    """Characters of a text, or model tokens of a cached document."""
    return len(item[2]) if isinstance(item[2], str) else item[2]


def _features(items: list, mask: np.ndarray):
    """What the classifier reads, for the items where ``mask`` holds."""
    chosen = [item for item, m in zip(items, mask, strict=True) if m]
    if chosen and isinstance(chosen[0][2], str):
        return [item[2] for item in chosen]
    return np.stack([np.frombuffer(item[3], np.float32) for item in chosen]) if chosen else []


def _train(candidates: list, positives: list, spec: QualitySpec) -> dict:
    """Choose the negatives, measure held-out accuracy, train on everything, save."""
    positives = sorted(positives)
    candidates = sorted(candidates)
    n = spec.negatives or len(positives)
    if spec.length_match and positives and candidates:
        pick = length_matched(np.array([_length(p) for p in positives]),
                              np.array([_length(c) for c in candidates]),
                              [c[1] for c in candidates], n, spec.seed)
        negatives = [candidates[i] for i in pick]
    else:
        negatives = candidates[:n]
    if not positives or not negatives:
        raise DataError(f"quality needs positives and negatives, got {len(positives)} and "
                        f"{len(negatives)} (after rejecting empty and invalid texts)")
    held_p = holdout_mask([p[1] for p in positives], spec.holdout, spec.seed)
    held_n = holdout_mask([c[1] for c in negatives], spec.holdout, spec.seed)
    every_p, every_n = np.ones(len(positives), bool), np.ones(len(negatives), bool)
    trial = spec.model().fit(_features(positives, ~held_p), _features(negatives, ~held_n))
    labels = np.r_[np.ones(int(held_p.sum())), np.zeros(int(held_n.sum()))]
    held = _features(positives + negatives, np.r_[held_p, held_n])
    held_scores = trial.score(held) if len(held) else np.zeros(0)
    held_accuracy = accuracy(held_scores, labels) if len(held) else None
    held_auc = auc(held_scores, labels) if len(held) else None
    model = spec.model().fit(_features(positives, every_p), _features(negatives, every_n))
    path = join(spec.out_dir, spec.model_file)
    save_classifier(model, path)
    about = {"classifier": spec.classifier, "heldout_accuracy": held_accuracy,
             "heldout_auc": held_auc, "heldout_positives": int(held_p.sum()),
             "heldout_negatives": int(held_n.sum()),
             "holdout": spec.holdout, "heldout_documents": int(len(labels)),
             "positives": len(positives), "negatives": len(negatives),
             "length_match": spec.length_match, "seed": spec.seed}
    if spec.classifier == "fasttext":
        ft = spec.fasttext
        about["fasttext"] = {"lr": ft.lr, "dim": ft.dim, "epoch": ft.epoch,
                             "word_ngrams": ft.word_ngrams, "labels": [HQ, CC]}
    else:
        about["logistic"] = {"C": model.C_, "Cs": list(spec.logistic.Cs)}
    text = json.dumps(about, indent=1).encode()
    write_atomically(_description(path), lambda f: f.write(text))
    return {"path": path, "heldout_accuracy": held_accuracy, "heldout_auc": held_auc,
            "heldout_positives": int(held_p.sum()), "heldout_negatives": int(held_n.sum()),
            "positives": len(positives),
            "negatives": len(negatives),
            "hq_scores": quantize(model.score(_features(positives, every_p))).tolist(),
            "negative_mean_length": float(np.mean([_length(c) for c in negatives]))}


def _description(model_path: str) -> str:
    """``models/quality.json`` beside ``models/quality.bin`` or ``.npz``."""
    return model_path.rsplit(".", 1)[0] + ".json"


def _reuse(spec: QualitySpec) -> dict:
    """A trained model from an earlier run, with the figures its description gives."""
    about = {}
    fs, inner = filesystem(_description(spec.model_path))
    try:
        with fs.open_input_stream(inner) as f:
            about = json.loads(f.read())
    except (FileNotFoundError, OSError, ValueError):
        pass
    return {"path": spec.model_path, "heldout_accuracy": about.get("heldout_accuracy"),
            "heldout_auc": about.get("heldout_auc"), "reused": True,
            "heldout_positives": about.get("heldout_positives", 0),
            "heldout_negatives": about.get("heldout_negatives", 0),
            "positives": about.get("positives", 0), "negatives": about.get("negatives", 0),
            "hq_scores": [], "negative_mean_length": float("nan")}


class _Score(beam.DoFn):
    """Adds ``quality_score`` to a batch: fastText on its text, or the logistic regression on
    its vectors from the pool's cache (rows without a vector are rejected, ``no_embedding``)."""

    def __init__(self, plan: InputPlan, spec: QualitySpec) -> None:
        self._plan, self._spec = plan, spec

    def setup(self) -> None:
        self._handler, self._model = None, None

    def process(self, table: pa.Table, trained: dict):
        if self._handler is None or trained["path"] != self._handler.path:
            # the model is known once trained: loaded on the first batch, once per worker
            self._handler = QualityHandler(trained["path"])
            self._model = self._handler.load_model()
        if self._spec.classifier == "fasttext":
            texts = table.column(self._plan.text_column).to_pylist()
            scores = quantize(self._handler.run_inference([texts], self._model)[0])
        else:
            src = int(table.column(SRC)[0].as_py())
            table, vectors, _, missing = batch_vectors(
                table, self._plan.files[src].rel, self._spec.cache_shards)
            if missing is not None:
                yield beam.pvalue.TaggedOutput("rejects", (src, missing))
            if not table.num_rows:
                return
            scores = quantize(self._handler.run_inference([vectors], self._model)[0])
        yield table.append_column(SCORE, pa.array(scores, pa.float64()))


def _histogram(table: pa.Table) -> np.ndarray:
    return score_histogram(table.column(SCORE).to_numpy())


def _threshold(counts, spec: QualitySpec) -> float:
    if spec.threshold is not None:
        return float(spec.threshold)
    if not isinstance(counts, np.ndarray):  # no row was scored
        return 1.0
    return threshold_from_histogram(counts, spec.keep_top)


class _Filter(beam.DoFn):
    def __init__(self, spec: QualitySpec) -> None:
        self._spec = spec
        self._tail = SelectionTail(spec)

    def setup(self) -> None:
        self._tail.setup()

    def process(self, table: pa.Table, threshold: float):
        scores = table.column(SCORE).to_numpy()
        tokens = table.column("n_tokens").to_numpy()
        keep = (np.ones(len(scores), bool) if self._spec.annotate_only
                else scores >= quantize(threshold))
        ids = table.column("id").to_pylist()
        sampled = uniforms(ids, self._spec.seed + 1) < self._spec.stats_rate
        yield beam.pvalue.TaggedOutput("stats", (scores[sampled].tolist(),
                                                 tokens[sampled].tolist()))
        yield from self._tail.emit(table, Fate(keep, {"below_quality_threshold": ~keep}))


def _training_sets(pipeline: beam.Pipeline, plan: InputPlan, positives: InputPlan | None,
                   spec: QualitySpec):
    """``(pool candidates, positives)`` as ``(key, id, …)`` items, both small."""
    wanted = (spec.negatives or (positives.rows if positives else 0) or 1000) * (
        5 if spec.length_match else 1)
    if spec.classifier == "fasttext":
        pool = ((pipeline | "ReadForTrain" >> ReadRecords(plan))["records"]
                | "PoolItems" >> beam.FlatMap(_texts, plan.text_column, spec.seed))
        hq = ((pipeline | "ReadPositives" >> ReadRecords(positives))["records"]
              | "PositiveItems" >> beam.FlatMap(_texts, positives.text_column, spec.seed))
    else:
        pool = (pipeline | "ReadForTrain" >> ReadDocumentVectors(open_cache(spec.pool_cache))
                | "PoolItems" >> beam.FlatMap(_vectors, spec.seed))
        hq = (pipeline | "ReadPositives" >> ReadDocumentVectors(open_cache(spec.positive_cache))
              | "PositiveItems" >> beam.FlatMap(_vectors, spec.seed))
    return (pool | "SampleNegatives" >> beam.combiners.Top.Smallest(wanted),
            hq | "CollectPositives" >> beam.combiners.ToList())


def build(pipeline: beam.Pipeline, spec: QualitySpec) -> None:
    plan, positives = spec.inputs, spec.positives
    if spec.model_path:
        trained = pipeline | "Model" >> beam.Create([_reuse(spec)])
    else:
        candidates, hq = _training_sets(pipeline, plan, positives, spec)
        trained = candidates | "Train" >> beam.Map(_train, beam.pvalue.AsSingleton(hq), spec)
    model = beam.pvalue.AsSingleton(trained)
    if spec.threshold is not None or spec.annotate_only:  # no pass to find a percentile
        threshold = pipeline | "Threshold" >> beam.Create([spec.threshold or 0.0])
    else:
        threshold = (((pipeline | "ReadForThreshold" >> ReadRecords(plan))["records"]
                      | "ScoreForThreshold" >> beam.ParDo(_Score(plan, spec), model)
                      .with_outputs("rejects", main="scored")).scored
                     | "ScoreHistogram" >> beam.Map(_histogram)
                     | "SumHistograms" >> beam.CombineGlobally(sum)
                     | "Threshold" >> beam.Map(_threshold, spec))
    read = pipeline | "ReadRecords" >> ReadRecords(plan, census=True)
    scored = read["records"] | "Score" >> beam.ParDo(_Score(plan, spec), model).with_outputs(
        "rejects", main="scored")
    filtered = (scored.scored
                | "Filter" >> beam.ParDo(_Filter(spec), beam.pvalue.AsSingleton(threshold))
                .with_outputs("tally", "stats", main="kept"))
    write_selection(pipeline, spec, output_schema(plan), filtered, read["rows_in"],
                    [read["rejects"], scored.rejects], _Finish(spec), stats=filtered.stats,
                    trained=trained, threshold=threshold)


class _Finish:
    def __init__(self, spec: QualitySpec) -> None:
        self.spec = spec

    def __call__(self, base: dict, stats, trained, threshold) -> dict:
        trained, threshold = trained[0], threshold[0]
        scores = np.concatenate([np.asarray(s, float) for s, _ in stats]) if stats else []
        lengths = np.concatenate([np.asarray(n, float) for _, n in stats]) if stats else []
        report = diagnostics(scores, lengths, np.asarray(trained["hq_scores"]), threshold)
        base["selector"].update({
            "method": "quality", "classifier": self.spec.classifier,
            "keep_top": self.spec.keep_top,
            "threshold": threshold, "score_step": STEP,
            "annotate_only": self.spec.annotate_only, "length_match": self.spec.length_match,
            "positives": trained["positives"], "negatives": trained["negatives"],
            "heldout_accuracy": trained["heldout_accuracy"],
            "heldout_auc": trained["heldout_auc"],
            "negative_mean_length": None if np.isnan(trained["negative_mean_length"])
            else round(trained["negative_mean_length"], 1),
            "length_unit": "characters" if self.spec.classifier == "fasttext"
            else "model tokens",
            "model": self.spec.model_path or self.spec.model_file, **report})
        keep = None if self.spec.annotate_only else self.spec.keep_top
        measured = not trained.get("reused") or trained["heldout_positives"]
        base["warnings"] += classifier_warnings(
            trained["heldout_auc"], trained["heldout_positives"] if measured else None,
            trained["heldout_negatives"], scores, keep, report["pool_pass_share"])
        return base
