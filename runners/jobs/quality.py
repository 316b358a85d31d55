"""``tamis quality``: a quality classifier, DCLM fastText on text or logistic regression on
cached embeddings, trained on a high-quality set against pool negatives; it scores the pool
and keeps the top share (an exact percentile) or a fixed threshold, or only annotates."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tamis.embeddings.extras import require
from tamis.pipelines import quality as stages
from tamis.pipelines.tail import SELECTION_COLUMNS
from tamis.runners.config import key
from tamis.runners.jobs.base import Context, Estimates, Job, Plan, auto_shards, header
from tamis.runners.jobs.checks import check_cache_inputs
from tamis.runners.sections import Common, Corpus, FastTextSection, LogisticSection, Sharded
from tamis.storage.cache import Cache, all_document_vectors, open_cache, same_model
from tamis.storage.errors import ConfigError, ModelError, PlanError
from tamis.storage.files import absolute, exists

#: Rows whose score and length the diagnostics keep (a (seed, id) sample beyond this).
DIAGNOSTIC_ROWS = 200_000


@dataclass(frozen=True, kw_only=True)
class QualityConfig(Sharded, Common, Corpus):
    """``tamis quality``: a quality classifier (fastText on text, or logistic regression on
    cached embeddings); keep the top share of the pool."""

    classifier: Literal["fasttext", "embedding"] = key(
        "fasttext", "or `embedding`: logistic regression on cached document vectors")
    positives: tuple[str, ...] = key((), "fasttext: the high-quality text")
    embeddings: str | None = key(None, "embedding: the pool's cache (tamis embed on `inputs`)")
    positive_embeddings: str | None = key(None, "embedding: the high-quality set's cache")
    model: str | None = key(None, "a model an earlier quality run trained (models/quality.bin "
                                  "or .npz): score with it, train nothing")
    negatives: int = key(0, "negatives sampled from the pool by (seed, id); 0: as many as "
                            "positives")
    length_match: bool = key(False, "sample negatives with the positives' length distribution")
    keep_top: float | None = key(0.1, "the share of the pool kept, by exact percentile")
    threshold: float | None = key(None, "or a fixed score (then leave keep_top unset)")
    annotate_only: bool = key(False, "add quality_score, drop nothing")
    holdout: float = key(0.1, "share of positives and negatives held out to measure accuracy")
    fasttext: FastTextSection = key(factory=FastTextSection, doc="fastText's settings")
    logistic: LogisticSection = key(factory=LogisticSection, doc="the embedding classifier's")
    EXCLUSIVE = (("keep_top", "threshold"),)

    def check(self) -> None:
        if self.classifier == "fasttext":
            if not self.positives and self.model is None:
                raise ConfigError("'positives' must name the high-quality text (or give "
                                  "'model')")
            if self.model is not None and not self.model.endswith(".bin"):
                raise ConfigError(f"'model' {self.model}: a fastText model is a .bin file "
                                  f"(an .npz model needs classifier: embedding)")
        else:
            if self.embeddings is None:
                raise ConfigError("classifier 'embedding' needs 'embeddings': the pool's "
                                  "embedding cache")
            if self.positive_embeddings is None and self.model is None:
                raise ConfigError("classifier 'embedding' needs 'positive_embeddings' (the "
                                  "high-quality set's cache) or 'model'")
            if self.model is not None and not self.model.endswith(".npz"):
                raise ConfigError(f"'model' {self.model}: an embedding classifier is an .npz "
                                  f"file (a .bin model needs classifier: fasttext)")
        if self.threshold is None and (self.keep_top is None or not 0 < self.keep_top <= 1):
            raise ConfigError(f"'keep_top' must be in (0, 1] (or set 'threshold'), got "
                              f"{self.keep_top}")
        if not 0 < self.holdout < 1:
            raise ConfigError(f"'holdout' must be in (0, 1), got {self.holdout}")
        if self.negatives < 0:
            raise ConfigError(f"'negatives' must be >= 0, got {self.negatives}")


def plan(config: QualityConfig, context: Context) -> Plan[stages.QualitySpec]:
    if config.classifier == "fasttext":
        require("fasttext")
    inputs = config.read_plan(reserved_columns=[*SELECTION_COLUMNS, stages.SCORE])
    positives = None
    pool_cache = positive_cache = None
    cache_shards: dict = {}
    positive_documents = 0
    if config.model is not None:
        if not exists(config.model):
            raise ModelError(f"model {config.model} does not exist")
    elif config.classifier == "fasttext":
        positives = config.read_plan(config.positives)
        if positives.rows == 0:
            raise PlanError(f"the positive set {', '.join(config.positives)} has no row")
    if config.classifier == "embedding":
        pool = open_cache(config.embeddings)
        check_cache_inputs(inputs, pool)
        pool_cache, cache_shards = config.embeddings, pool.by_batch()
        if config.model is not None:
            _check_dimension(config.model, pool)
        else:
            same_model(pool, open_cache(config.positive_embeddings))
            positive_documents = len(all_document_vectors(config.positive_embeddings))
            if not positive_documents:
                raise PlanError(f"the positive set's cache {config.positive_embeddings} "
                                f"holds no document")
            positive_cache = config.positive_embeddings
    keep = 1.0 if config.annotate_only else (config.keep_top or 1.0)
    shards = config.num_shards or auto_shards(inputs.bytes * keep)
    warnings = [*inputs.warnings, *(positives.warnings if positives else ())]
    opening = header("quality", config, warnings)
    spec = stages.QualitySpec(
        inputs=inputs, out_dir=context.out_dir(config), header=opening, seed=config.seed,
        num_shards=shards, classifier=config.classifier, positives=positives,
        keep_top=None if config.threshold is not None else config.keep_top,
        threshold=config.threshold,
        # 0 negatives: as many as positives, counted here for cached positives
        negatives=config.negatives or positive_documents, length_match=config.length_match,
        annotate_only=config.annotate_only, holdout=config.holdout,
        fasttext=config.fasttext.model(config.seed), logistic=config.logistic.model(config.seed),
        stats_rate=min(1.0, DIAGNOSTIC_ROWS / max(inputs.rows or 1, 1)),
        model_path=None if config.model is None else absolute(config.model),
        pool_cache=pool_cache, positive_cache=positive_cache, cache_shards=cache_shards)
    tokens = inputs.estimated_tokens()
    estimates = Estimates(
        input_rows=inputs.rows, input_bytes=inputs.bytes, input_tokens=tokens,
        output_rows=None if inputs.rows is None else round(inputs.rows * keep),
        output_tokens=round(tokens * keep), output_bytes=round(inputs.bytes * keep),
        num_shards=shards)
    return Plan(spec, opening, estimates, inputs,
                _summary(config, positives, positive_documents))


def _check_dimension(path: str, pool: Cache) -> None:
    """A logistic model reused on a cache must read vectors of the cache's dimension."""
    from tamis.embeddings.classifiers import load_classifier

    try:
        model = load_classifier(path)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(f"model {path} is not a classifier tamis quality saved ({exc})") from None
    if len(model.coef_) != pool.dim:
        raise ModelError(f"model {path} reads {len(model.coef_)}-d vectors; the cache "
                         f"{pool.path} holds {pool.dim}-d ones")


def _summary(config: QualityConfig, positives, positive_documents: int) -> tuple[str, ...]:
    rule = (f"score >= {config.threshold}" if config.threshold is not None
            else f"top {config.keep_top:.1%} by exact percentile")
    matched = ", length-matched" if config.length_match else ""
    if config.model is not None:
        trained = f"model: {config.model} (trained earlier)"
    elif positives is not None:
        trained = (f"positives: {positives.rows} rows; negatives: "
                   f"{config.negatives or positives.rows} sampled from the pool{matched}")
    else:
        trained = (f"positives: the {positive_documents} documents of "
                   f"{config.positive_embeddings}; negatives: "
                   f"{config.negatives or positive_documents} sampled from {config.embeddings}"
                   f"{matched}")
    ft = config.fasttext
    if config.classifier == "fasttext":
        how = (f"fastText: lr {ft.lr}, dim {ft.dim}, epoch {ft.epoch}, word n-grams "
               f"{ft.word_ngrams}")
    else:
        how = f"logistic regression on embeddings, C from {list(config.logistic.Cs)}"
    return trained, f"{how}; keep {rule}{' (annotate only)' if config.annotate_only else ''}"


JOB = Job(
    name="quality", summary="quality classifier (DCLM fastText, or logistic regression on "
                            "embeddings); keep the top share",
    config=QualityConfig, plan=plan, stages=stages.build)
