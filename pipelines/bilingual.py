"""The ``bilingual`` job: language identification, per-language thresholds, a quality filter
learned from the base language (English) alone, the foreign share inside documents, and the
target languages' share of the training tokens.

ReadPositives, ReadNegatives (or the pool's base-language rows) ─► Train ─► model path
ReadForLanguages ─► Identify ─► language-score histograms ─► minimum score per language
ReadForScores ─► Identify, foreign share, gates ─► Score the rows that pass ─► annotations
    spilled per batch; quality histograms (rows, tokens) per language ─► cut-offs, weights
ReadRecords ─► annotations of the batch ─► keep, or drop with a reason ─► shards, manifest

Each row's fate, in order: ``no_letters``, ``short_text`` (too little text to identify),
``other_language``, ``low_language_score``, ``wrong_language`` (too much of it in another
language), ``mojibake`` (text decoded with the wrong code page), ``below_quality_threshold``
(under its language's cut-off). Every cut-off comes from integer histograms of grid scores,
so it is exact and the same on any worker count.
The language-score pass runs only when a minimum score is derived from the corpus.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import apache_beam as beam
import numpy as np
import pyarrow as pa

from tamis.embeddings.classifiers import load_classifier
from tamis.embeddings.langid import LanguageIdentifier
from tamis.pipelines import bilingual_outputs as outputs
from tamis.pipelines import bilingual_train as training
from tamis.pipelines.read import ReadRecords
from tamis.pipelines.tail import Fate, SelectionSpec, SelectionTail, write_selection
from tamis.selectors import bilingual as mixing
from tamis.selectors.features import FeatureLogistic
from tamis.selectors.languages import min_score_from_histogram, mojibake_shares
from tamis.selectors.precision import STEP, quantize
from tamis.selectors.quality import EmbeddingLogistic
from tamis.selectors.quality_report import score_histogram
from tamis.selectors.sampling import row_keys
from tamis.storage.inputs import InputPlan

#: Fates before the quality score, in the order they are tested (0: passes).
GATES = ("no_letters", "short_text", "other_language", "low_language_score", "wrong_language",
         "mojibake")
BELOW = "below_quality_threshold"
NOT_IDENTIFIED = ("none", "short")


@dataclass(frozen=True, kw_only=True)
class BilingualSpec(SelectionSpec):
    languages: tuple[str, ...]  # the languages kept (empty: every language identified)
    base_language: str  # what the classifier learns from; weight 1 in the mixture
    positives: InputPlan | None  # None: no classifier, or a reused model
    negatives: InputPlan | None  # None: the pool's base-language rows
    n_negatives: int
    length_match: bool
    holdout: float
    classifier: str  # features | embedding | ensemble | none
    members: tuple[str, ...]
    folds: int
    features: FeatureLogistic  # unfitted: their settings
    logistic: EmbeddingLogistic
    encoder: str
    lid_path: str | None
    alternatives: int
    min_letters: int
    min_scores: Mapping[str, float]  # fixed minimum language scores, per language
    default_min_score: float | None  # for the others; None: derived from the corpus
    min_score_bounds: tuple[float, float]
    foreign_unit: str
    foreign_min_score: float
    max_foreign_share: float | None
    max_mojibake_share: float | None
    keep_top: Mapping[str, float | None]  # per language, "*" for the others
    threshold: Mapping[str, float | None]
    target_share: float | None
    shares: Mapping[str, float]
    max_passes: float
    cap_passes: bool
    annotate_only: bool
    spill_dir: str
    model_path: str | None = None
    stats: dict = field(default_factory=dict)

    @property
    def scores(self) -> bool:
        return self.classifier != "none"

    @property
    def derives_min_score(self) -> bool:
        return self.default_min_score is None

    def identifier(self) -> LanguageIdentifier:
        return LanguageIdentifier(self.lid_path, k=self.alternatives, min_letters=self.min_letters)

    def cut_setting(self, mapping: Mapping, language: str):
        return mapping.get(language, mapping.get("*"))


def _wanted(spec: BilingualSpec, language: str) -> bool:
    return language not in NOT_IDENTIFIED and (not spec.languages or language in spec.languages)


class _Identify(beam.DoFn):
    """Pass 1: a histogram of language scores per wanted language."""

    def __init__(self, spec: BilingualSpec) -> None:
        self._spec = spec

    def setup(self) -> None:
        self._lid = self._spec.identifier()

    def process(self, table: pa.Table):
        found = self._lid.identify(table.column(self._spec.inputs.text_column).to_pylist())
        languages = np.array(found.language, dtype=object)
        out = {}
        for lang in np.unique(languages):
            if _wanted(self._spec, lang):
                out[lang] = score_histogram(found.score[languages == lang])
        yield out


def language_cuts(histograms: dict, spec: BilingualSpec) -> dict:
    """The minimum language score of each language: fixed, or FineWeb-2's clamp(median − σ)
    of the corpus's own scores for that language."""
    low, high = spec.min_score_bounds
    cuts = {}
    for lang in sorted(set(histograms) | set(spec.min_scores)):
        if lang in spec.min_scores:
            cuts[lang] = {"min_score": float(spec.min_scores[lang]), "how": "configured"}
        elif spec.default_min_score is not None:
            cuts[lang] = {"min_score": float(spec.default_min_score), "how": "configured"}
        elif int(np.sum(histograms[lang])):
            cuts[lang] = {"min_score": min_score_from_histogram(histograms[lang], STEP, low,
                                                                high),
                          "how": f"clamp(median - std, {low:g}, {high:g}) of the corpus"}
    return {"cuts": cuts, "histograms": {k: v for k, v in histograms.items()}}


def _min_score(cuts: dict, spec: BilingualSpec, lang: str) -> float:
    entry = cuts["cuts"].get(lang)
    if entry is not None:
        return entry["min_score"]
    if spec.default_min_score is not None:
        return spec.default_min_score
    return spec.min_score_bounds[0]


class _Annotate(beam.DoFn):
    """Pass 2: each row's language, alternatives, foreign share and gate; the quality score of
    the rows that pass the gates. The annotations go to a spill file per batch (the last pass
    reads them instead of scoring again); rows and tokens per score cell, per language, come
    out for the cut-offs."""

    def __init__(self, spec: BilingualSpec) -> None:
        self._spec = spec

    def setup(self) -> None:
        self._lid = self._spec.identifier()
        self._model = self._encoder = self._path = None

    def _load(self, trained: dict) -> None:
        if self._spec.scores and self._path != trained["path"]:
            self._model, self._path = load_classifier(trained["path"]), trained["path"]
            if "embedding" in self._spec.members and self._encoder is None:
                self._encoder = training.encoder_of(self._spec)

    def process(self, table: pa.Table, trained: dict, cuts: dict):
        spec = self._spec
        self._load(trained)
        texts = table.column(spec.inputs.text_column).to_pylist()
        found = self._lid.identify(texts)
        languages = list(found.language)
        foreign = self._lid.foreign_shares(texts, languages, spec.foreign_unit,
                                           spec.foreign_min_score)
        broken = quantize(mojibake_shares(texts))
        gate = np.zeros(len(texts), dtype=np.int8)
        for i, lang in enumerate(languages):
            if lang == "none":
                gate[i] = 1
            elif lang == "short":
                gate[i] = 2
            elif spec.languages and lang not in spec.languages:
                gate[i] = 3
            elif found.score[i] < quantize(_min_score(cuts, spec, lang)):
                gate[i] = 4
            elif spec.max_foreign_share is not None and foreign[i] > spec.max_foreign_share:
                gate[i] = 5
            elif spec.max_mojibake_share is not None and broken[i] > spec.max_mojibake_share:
                gate[i] = 6
        quality = np.full(len(texts), np.nan)
        tokens = table.column("n_tokens").to_numpy()
        histograms = {}
        for lang in sorted(set(languages)):
            rows = np.flatnonzero((np.array(languages, dtype=object) == lang) & (gate == 0))
            if not len(rows):
                continue
            if spec.scores:
                chosen = [texts[i] for i in rows]
                vectors = self._encoder.encode(chosen) if self._encoder is not None else None
                quality[rows] = training.score(self._model, lang, chosen, vectors)
                cells = np.clip(np.rint(quality[rows] / STEP).astype(np.int64), 0,
                                len(mixing.empty_histogram()) - 1)
            else:
                cells = np.full(len(rows), len(mixing.empty_histogram()) - 1)
            size = len(mixing.empty_histogram())
            histograms[lang] = (np.bincount(cells, minlength=size).astype(np.int64),
                                np.bincount(cells, weights=tokens[rows], minlength=size)
                                .astype(np.int64))
        annotations = outputs.annotation_table(table, found, foreign, broken, gate, quality)
        outputs.write_spill(spec.spill_dir, table, annotations)
        yield {lang: np.stack(pair) for lang, pair in histograms.items()}


def decisions(histograms: dict, spec: BilingualSpec, cuts: dict) -> dict:
    """Per language: the quality cut-off, the rows and tokens above it; then the weights."""
    out = {}
    for lang in sorted(histograms):
        counts, tokens = histograms[lang][0], histograms[lang][1]
        if spec.scores and not spec.annotate_only:
            cut = mixing.quality_cut(counts, spec.cut_setting(spec.keep_top, lang),
                                     spec.cut_setting(spec.threshold, lang))
        else:
            cut = 0.0
        out[lang] = {"quality_cut": cut, "rows_passing_gates": int(counts.sum()),
                     "rows_above_cut": mixing.rows_at_or_above(counts, cut),
                     "tokens_above_cut": mixing.tokens_at_or_above(tokens, cut),
                     "score_quantiles": mixing.quantiles_from_histogram(counts)
                     if spec.scores else None,
                     "score_mean": mixing.mean_from_histogram(counts) if spec.scores else None}
    base = out.get(spec.base_language, {}).get("tokens_above_cut", 0)
    targets = {lang: v["tokens_above_cut"] for lang, v in out.items()
               if lang != spec.base_language}
    if spec.target_share is None and not spec.shares:
        mix = None
    else:
        mix = mixing.mixing_weights(base, targets, spec.target_share, spec.shares or None,
                                    spec.max_passes, spec.cap_passes)
    return {"languages": out, "mixing": mix, "min_scores": cuts["cuts"],
            "language_score_quantiles": {
                lang: mixing.quantiles_from_histogram(h)
                for lang, h in sorted(cuts["histograms"].items())}}


class _Decide(beam.DoFn):
    """Pass 3: each batch's annotations, its fates and weights, through the selection tail."""

    def __init__(self, spec: BilingualSpec) -> None:
        self._spec = spec
        self._tail = SelectionTail(spec)

    def setup(self) -> None:
        self._tail.setup()

    def process(self, table: pa.Table, decided: dict):
        spec = self._spec
        notes = outputs.read_spill(spec.spill_dir, table)
        gate = notes.column(outputs.GATE).to_numpy()
        languages = notes.column("language").to_pylist()
        quality = notes.column(outputs.SCORE).to_numpy(zero_copy_only=False)
        n = table.num_rows
        cut = np.array([decided["languages"].get(lang, {}).get("quality_cut", 1.0)
                        for lang in languages])
        passed = gate == 0
        high = passed & ~(quality < quantize(cut)) if spec.scores else passed
        drops = {reason: gate == i + 1 for i, reason in enumerate(GATES)}
        drops[BELOW] = passed & ~high
        if spec.annotate_only:
            keep, fates = np.ones(n, bool), {}
        else:
            keep, fates = high, drops
        weights = np.ones(n)
        mix = decided["mixing"]
        if mix is not None:
            weights = np.array([mix["weights"].get(lang, 1.0) for lang in languages])
        tokens = table.column("n_tokens").to_numpy()
        lang_array = np.array(languages, dtype=object)
        for lang in sorted(set(languages)):
            mine = lang_array == lang
            for reason, mask in (("kept", keep), *drops.items()):
                hit = mine & (mask if reason == "kept" else mask & ~keep)
                if hit.any():
                    yield beam.pvalue.TaggedOutput(
                        "languages", (lang, reason, int(hit.sum()), int(tokens[hit].sum())))
        columns = outputs.output_columns(notes, keep, drops if spec.annotate_only else None)
        fate = Fate(keep, fates, weight=weights[keep], columns=columns)
        yield from self._tail.emit(table, fate)


class _Items(beam.DoFn):
    """Training items ``(key, id, text, None, characters)``; with ``identify``, of the rows
    identified as the base language only (negatives taken from the pool)."""

    def __init__(self, spec: BilingualSpec, identify: bool) -> None:
        self._spec, self._identify = spec, identify

    def setup(self) -> None:
        self._lid = self._spec.identifier() if self._identify else None

    def process(self, table: pa.Table, column: str):
        texts = table.column(column).to_pylist()
        ids = table.column("id").to_pylist()
        if self._lid is not None:
            base = self._spec.base_language
            keep = [lang == base for lang in self._lid.identify(texts).language]
            texts = [t for t, k in zip(texts, keep, strict=True) if k]
            ids = [i for i, k in zip(ids, keep, strict=True) if k]
        for k, i, t in zip(row_keys(ids, self._spec.seed).tolist(), ids, texts, strict=True):
            yield k, i, t, None, len(t)


def _train(pipeline: beam.Pipeline, spec: BilingualSpec):
    if not spec.scores:
        return pipeline | "Model" >> beam.Create([{"path": None}])
    if spec.model_path is not None:
        return pipeline | "Model" >> beam.Create([{"path": spec.model_path, "reused": True}])
    # JSONL positives are not counted before reading: room for 20,000 of them
    wanted = (spec.n_negatives or spec.positives.rows or 20_000) * (
        5 if spec.length_match else 1)
    source = spec.negatives or spec.inputs
    negatives = ((pipeline | "ReadNegatives" >> ReadRecords(source))["records"]
                 | "NegativeItems" >> beam.ParDo(_Items(spec, spec.negatives is None),
                                                source.text_column)
                 | "SampleNegatives" >> beam.combiners.Top.Smallest(wanted))
    positives = ((pipeline | "ReadPositives" >> ReadRecords(spec.positives))["records"]
                 | "PositiveItems" >> beam.ParDo(_Items(spec, False), spec.positives.text_column)
                 | "CollectPositives" >> beam.combiners.ToList())
    return negatives | "Train" >> beam.Map(training.train, beam.pvalue.AsSingleton(positives),
                                           spec)


def build(pipeline: beam.Pipeline, spec: BilingualSpec) -> None:
    plan = spec.inputs
    trained = _train(pipeline, spec)
    if spec.derives_min_score:
        histograms = ((pipeline | "ReadForLanguages" >> ReadRecords(plan))["records"]
                      | "Identify" >> beam.ParDo(_Identify(spec))
                      | "LanguageHistograms" >> beam.CombineGlobally(outputs.MergeHistograms()))
    else:
        histograms = pipeline | "LanguageHistograms" >> beam.Create([{}])
    cuts = histograms | "MinimumScores" >> beam.Map(language_cuts, spec)
    decided = ((pipeline | "ReadForScores" >> ReadRecords(plan))["records"]
               | "Annotate" >> beam.ParDo(_Annotate(spec), beam.pvalue.AsSingleton(trained),
                                          beam.pvalue.AsSingleton(cuts))
               | "QualityHistograms" >> beam.CombineGlobally(outputs.MergeHistograms())
               | "Decide" >> beam.Map(decisions, spec, beam.pvalue.AsSingleton(cuts)))
    read = pipeline | "ReadRecords" >> ReadRecords(plan, census=True)
    selected = read["records"] | "Filter" >> beam.ParDo(
        _Decide(spec), beam.pvalue.AsSingleton(decided)).with_outputs(
        "tally", "languages", main="kept")
    write_selection(pipeline, spec, outputs.output_schema(spec), selected, read["rows_in"],
                    [read["rejects"]], outputs.Finish(spec), languages=selected.languages,
                    trained=trained, decided=decided)
