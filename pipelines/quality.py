"""The ``quality`` job: heuristic rules, a quality classifier, or both; keep the top k%.

The classifier is the DCLM fastText model on text, a logistic regression on the text-quality
signals (``features``) or on the vectors of an embedding cache (``embedding``), or a stacked
``ensemble`` of them; rules are a named set of thresholds on the signals
(:mod:`tamis.selectors.rules`), each drop named after the first rule failed.

ReadPositives ─┐
ReadForTrain ──┴► negatives (seed, id; optionally length-matched) ─► Train ─► model path
ReadForThreshold ─► Score ─► histogram of the scores of rows passing the rules ─► threshold
Read ─► Score (signals, rules, model) ─► keep or drop with a reason ─► Write shards, manifest

Every pass reads the inputs again instead of holding them. Scores are probabilities rounded to
the grid of :mod:`tamis.selectors.precision`, so the percentile is exact from a histogram of
65,537 counts, at any corpus size, and the same on every CPU.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass

import apache_beam as beam
import numpy as np
import pyarrow as pa

from tamis.embeddings.classifiers import (
    INPUTS,
    MODEL_FILES,
    Ensemble,
    QualityHandler,
)
from tamis.embeddings.fasttext_quality import FastTextQuality
from tamis.pipelines import quality_train as train_items
from tamis.pipelines.read import ReadDocumentVectors, ReadRecords
from tamis.pipelines.tail import (
    Fate,
    SelectionSpec,
    SelectionTail,
    selected_schema,
    write_selection,
)
from tamis.selectors.features import FeatureLogistic
from tamis.selectors.importance import uniforms
from tamis.selectors.precision import STEP, quantize
from tamis.selectors.quality import EmbeddingLogistic
from tamis.selectors.quality_report import (
    classifier_warnings,
    diagnostics,
    score_histogram,
    threshold_from_histogram,
)
from tamis.selectors.rules import Rule, first_failure
from tamis.selectors.signals import SIGNALS, signals
from tamis.storage.cache import batch_vectors, open_cache
from tamis.storage.inputs import InputPlan
from tamis.storage.records import SRC

SCORE = "quality_score"
RULE = "quality_rule"
SIGNAL_COLUMN = "quality_signals"
SIGNALS_TYPE = pa.struct([pa.field(name, pa.float64()) for name in SIGNALS])
#: The column a batch carries between scoring and filtering: signal values (float64 x n).
_SIGNALS = "__signals"
_FAILED = "__failed"


@dataclass(frozen=True, kw_only=True)
class QualitySpec(SelectionSpec):
    classifier: str  # fasttext | features | embedding | ensemble | none (rules only)
    members: tuple[str, ...]  # the ensemble's members (else the classifier alone)
    positives: InputPlan | None  # the high-quality text (None: vectors only, or a reused model)
    rules: tuple[Rule, ...]  # the rules applied before the classifier (empty: none)
    rule_set: str | None
    language: str
    signal_columns: bool  # write the signals and the first failed rule as columns
    keep_top: float | None  # share of the rows passing the rules to keep; None: ``threshold``
    threshold: float | None
    negatives: int  # negatives sampled from the pool
    length_match: bool
    annotate_only: bool
    holdout: float
    folds: int  # the ensemble's out-of-fold folds
    fasttext: FastTextQuality  # unfitted: their settings
    logistic: EmbeddingLogistic
    features: FeatureLogistic
    stats_rate: float  # share of rows (by (seed, id)) in the diagnostics
    model_path: str | None  # a model an earlier quality job trained: train nothing
    pool_cache: str | None  # embedding: the pool's cache and the positives'
    positive_cache: str | None
    cache_shards: Mapping[tuple[str, int], str]  # (input file, first row) → cache shard
    embedding: Mapping | None  # the caches' model, recorded in the saved classifier

    @property
    def scores(self) -> bool:
        return self.classifier != "none"

    @property
    def needs_text(self) -> bool:
        return any(INPUTS[m] == "text" for m in self.members)

    @property
    def needs_vectors(self) -> bool:
        return any(INPUTS[m] == "vectors" for m in self.members)

    @property
    def needs_signals(self) -> bool:
        return bool(self.rules) or self.signal_columns or "features" in self.members

    def member(self, name: str):
        return copy.deepcopy({"fasttext": self.fasttext, "embedding": self.logistic,
                              "features": self.features}[name])

    def model(self):
        """A fresh, unfitted classifier with these settings."""
        if self.classifier == "ensemble":
            return Ensemble({m: self.member(m) for m in self.members}, self.folds, self.seed)
        return self.member(self.classifier)

    @property
    def model_file(self) -> str:
        return MODEL_FILES[self.classifier]


def output_schema(spec: QualitySpec) -> pa.Schema:
    extra = [pa.field(SCORE, pa.float64())] if spec.scores else []
    if spec.signal_columns:
        extra += [pa.field(RULE, pa.string()), pa.field(SIGNAL_COLUMN, SIGNALS_TYPE)]
    return selected_schema(spec.inputs, *extra)


class _Score(beam.DoFn):
    """Adds to a batch its signals and first failed rule (when rules or signal columns ask
    for them) and ``quality_score``: from its text, its vectors in the pool's cache (rows
    without one are rejected, ``no_embedding``), or both."""

    def __init__(self, plan: InputPlan, spec: QualitySpec) -> None:
        self._plan, self._spec = plan, spec

    def setup(self) -> None:
        self._handler, self._model = None, None

    def process(self, table: pa.Table, trained: dict | None = None):
        spec = self._spec
        examples = {}
        if spec.scores and spec.needs_vectors:
            src = int(table.column(SRC)[0].as_py())
            table, vectors, _, missing = batch_vectors(
                table, self._plan.files[src].rel, spec.cache_shards)
            if missing is not None:
                yield beam.pvalue.TaggedOutput("rejects", (src, missing))
            if not table.num_rows:
                return
            examples["vectors"] = vectors
        texts = table.column(self._plan.text_column).to_pylist()
        examples["text"] = texts
        if spec.needs_signals:
            values = signals(texts, spec.language)
            examples["signals"] = values
            failed = first_failure(spec.rules, values) if spec.rules else \
                np.full(len(texts), -1)
            table = table.append_column(_FAILED, pa.array(failed, pa.int64()))
            table = table.append_column(_SIGNALS, pa.FixedSizeListArray.from_arrays(
                pa.array(np.stack([values[n] for n in SIGNALS], 1).ravel()), len(SIGNALS)))
        if spec.scores:
            if self._handler is None or trained["path"] != self._handler.path:
                # the model is known once trained: loaded on the first batch, once per worker
                self._handler = QualityHandler(trained["path"])
                self._model = self._handler.load_model()
            if isinstance(self._model, FeatureLogistic):  # the signals are computed already
                example = examples["signals"]
            elif isinstance(self._model, Ensemble):
                example = examples
            else:
                example = examples[INPUTS[spec.classifier]]
            scores = quantize(self._handler.run_inference([example], self._model)[0])
            table = table.append_column(SCORE, pa.array(scores, pa.float64()))
        yield table


def _histogram(table: pa.Table) -> np.ndarray:
    scores = table.column(SCORE).to_numpy()
    if _FAILED in table.column_names:
        scores = scores[table.column(_FAILED).to_numpy() < 0]
    return score_histogram(scores)


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

    def process(self, table: pa.Table, threshold: float | None):
        spec = self._spec
        n = table.num_rows
        failed = (table.column(_FAILED).to_numpy() if _FAILED in table.column_names
                  else np.full(n, -1))
        values = (table.column(_SIGNALS).combine_chunks().flatten().to_numpy()
                  .reshape(n, len(SIGNALS)) if _SIGNALS in table.column_names else None)
        scores = table.column(SCORE).to_numpy() if spec.scores else np.full(n, np.nan)
        passed = failed < 0
        if spec.annotate_only:
            keep = np.ones(n, bool)
            drops = {}
        else:
            high = scores >= quantize(threshold) if spec.scores else np.ones(n, bool)
            keep = passed & high
            drops = {rule.name: failed == i for i, rule in enumerate(spec.rules)}
            if spec.scores:
                drops["below_quality_threshold"] = passed & ~high
        ids = table.column("id").to_pylist()
        sampled = uniforms(ids, spec.seed + 1) < spec.stats_rate
        yield beam.pvalue.TaggedOutput("stats", (
            scores[sampled].tolist(), table.column("n_tokens").to_numpy()[sampled].tolist(),
            None if values is None else values[sampled].tolist(), keep[sampled].tolist()))
        columns = {}
        kept = table
        if spec.signal_columns:
            names = [None if f < 0 else spec.rules[f].name for f in failed[keep]]
            columns[RULE] = pa.array(names, pa.string())
            columns[SIGNAL_COLUMN] = pa.StructArray.from_arrays(
                [pa.array(values[keep][:, j]) for j in range(len(SIGNALS))],
                fields=list(SIGNALS_TYPE))
        helpers = [c for c in (_FAILED, _SIGNALS) if c in kept.column_names]
        kept = kept.drop_columns(helpers)
        yield from self._tail.emit(kept, Fate(keep, drops, columns=columns))


def _training_sets(pipeline: beam.Pipeline, plan: InputPlan, spec: QualitySpec) -> dict:
    """The pool's candidate negatives and the positives, as text items, vector items or both
    (each small: the candidates are the smallest keys)."""
    positives = spec.positives
    wanted = (spec.negatives or (positives.rows if positives else 0) or 1000) * (
        5 if spec.length_match else 1)
    sets = {}
    if spec.needs_text:
        sets["pool"] = ((pipeline | "ReadForTrain" >> ReadRecords(plan))["records"]
                        | "PoolItems" >> beam.FlatMap(train_items.texts, plan.text_column,
                                                      spec.seed)
                        | "SampleNegatives" >> beam.combiners.Top.Smallest(wanted))
        sets["hq"] = ((pipeline | "ReadPositives" >> ReadRecords(positives))["records"]
                      | "PositiveItems" >> beam.FlatMap(train_items.texts, positives.text_column,
                                                        spec.seed)
                      | "CollectPositives" >> beam.combiners.ToList())
    if spec.needs_vectors:
        sets["pool_vectors"] = (
            pipeline | "ReadVectorsForTrain" >> ReadDocumentVectors(open_cache(spec.pool_cache))
            | "PoolVectorItems" >> beam.FlatMap(train_items.vectors, spec.seed)
            | "SampleNegativeVectors" >> beam.combiners.Top.Smallest(wanted))
        sets["hq_vectors"] = (
            pipeline
            | "ReadPositiveVectors" >> ReadDocumentVectors(open_cache(spec.positive_cache))
            | "PositiveVectorItems" >> beam.FlatMap(train_items.vectors, spec.seed)
            | "CollectPositiveVectors" >> beam.combiners.ToList())
    return sets


def build(pipeline: beam.Pipeline, spec: QualitySpec) -> None:
    plan = spec.inputs
    if not spec.scores:
        trained = pipeline | "Model" >> beam.Create([{}])
    elif spec.model_path:
        trained = pipeline | "Model" >> beam.Create([train_items.reuse(spec)])
    else:
        sets = _training_sets(pipeline, plan, spec)
        first = "pool" if "pool" in sets else "pool_vectors"
        others = {name: beam.pvalue.AsSingleton(sets[name]) for name in sets if name != first}
        if first == "pool":
            trained = sets["pool"] | "Train" >> beam.Map(
                lambda pool, hq, spec, **vec: train_items.train(pool, hq, spec, **vec),
                others.pop("hq"), spec, **others)
        else:
            trained = sets["pool_vectors"] | "Train" >> beam.Map(
                lambda pool_vectors, hq_vectors, spec: train_items.train(
                    None, None, spec, pool_vectors, hq_vectors),
                others["hq_vectors"], spec)
    model = beam.pvalue.AsSingleton(trained)
    if not spec.scores or spec.threshold is not None or spec.annotate_only:
        threshold = pipeline | "Threshold" >> beam.Create([spec.threshold])
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
    write_selection(pipeline, spec, output_schema(spec), filtered, read["rows_in"],
                    [read["rejects"], scored.rejects], _Finish(spec), stats=filtered.stats,
                    trained=trained, threshold=threshold)


def _signal_summary(values: np.ndarray, keep: np.ndarray) -> dict:
    """Quartiles and deciles of each signal among sampled kept and dropped rows."""
    out = {}
    for j, name in enumerate(SIGNALS):
        entry = {}
        for label, mask in (("kept", keep), ("dropped", ~keep)):
            if mask.any():
                q = np.quantile(values[mask, j], [0.1, 0.25, 0.5, 0.75, 0.9])
                entry[label] = [round(float(v), 4) for v in q]
        out[name] = entry
    return out


class _Finish:
    def __init__(self, spec: QualitySpec) -> None:
        self.spec = spec

    def __call__(self, base: dict, stats, trained, threshold) -> dict:
        spec = self.spec
        trained, threshold = trained[0], threshold[0]
        scores = np.concatenate([np.asarray(s[0], float) for s in stats]) if stats else []
        lengths = np.concatenate([np.asarray(s[1], float) for s in stats]) if stats else []
        keep = (np.concatenate([np.asarray(s[3], bool) for s in stats]) if stats
                else np.zeros(0, bool))
        selector = {"method": "quality", "classifier": spec.classifier,
                    "annotate_only": spec.annotate_only,
                    "rules": None if not spec.rules else {
                        "set": spec.rule_set, "language": spec.language,
                        "rules": {r.name: r.describe() for r in spec.rules}}}
        if spec.scores:
            cut = None if spec.annotate_only else threshold
            report = diagnostics(scores, lengths, np.asarray(trained["hq_scores"]),
                                 0.0 if cut is None else cut)
            if cut is None:  # nothing was cut: no threshold, nothing passed or failed it
                report.update(threshold=None, hq_pass_share=None, pool_pass_share=None)
            elif not trained["hq_scores"]:
                report["hq_pass_share"] = None
            selector.update({
                "keep_top": None if spec.annotate_only else spec.keep_top,
                "keep_top_of": "rows passing the rules" if spec.rules else "rows scored",
                "score_step": STEP, "length_match": spec.length_match,
                "positives": trained["positives"], "negatives": trained["negatives"],
                "heldout_accuracy": trained["heldout_accuracy"],
                "heldout_auc": trained["heldout_auc"],
                "heldout_auc_by_member": trained.get("heldout_auc_by_member"),
                "settings": trained.get("settings"),
                "negative_mean_length": None if np.isnan(trained["negative_mean_length"])
                else round(trained["negative_mean_length"], 1),
                "length_unit": "characters" if spec.needs_text else "model tokens",
                "model": spec.model_path or spec.model_file, **report})
        if spec.rules and trained.get("hq_rule_pass") is not None:
            passing = np.asarray(trained["hq_rule_pass"], bool)
            selector["hq_rule_pass_share"] = float(passing.mean()) if passing.size else None
        values = [np.asarray(s[2], float) for s in stats if s[2] is not None and len(s[2])]
        if values:
            selector["signals"] = _signal_summary(np.concatenate(values), keep)
        base["selector"].update(selector)
        if spec.scores:
            cut_keep = None if spec.annotate_only else spec.keep_top
            measured = not trained.get("reused") or trained["heldout_positives"]
            base["warnings"] += classifier_warnings(
                trained["heldout_auc"], trained["heldout_positives"] if measured else None,
                trained["heldout_negatives"], scores, cut_keep, selector["pool_pass_share"])
        return base
