"""``tamis quality``: heuristic rules and a quality classifier (DCLM fastText on text, a
logistic regression on the text-quality signals or on document vectors, or a stacked ensemble
of them), trained on a high-quality set against pool negatives; it keeps the top share of the
pool (an exact percentile) or a fixed threshold, or only annotates.

A classifier that reads vectors and has no cache for them has the pool and the positives
embedded on the way (:func:`prerequisites`), in a work folder, as crisp does; LSI is then
fitted on the pool and the positives together.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Literal

from tamis.embeddings.extras import require
from tamis.pipelines import quality as stages
from tamis.pipelines.tail import SELECTION_COLUMNS
from tamis.runners.config import key, to_dict
from tamis.runners.jobs.base import (
    Context,
    Estimates,
    Job,
    Launch,
    Plan,
    Step,
    auto_shards,
    header,
)
from tamis.runners.jobs.checks import check_cache_inputs
from tamis.runners.jobs.compose import finished
from tamis.runners.sections import (
    Common,
    Corpus,
    EmbedSection,
    EnsembleSection,
    FastTextSection,
    FeaturesSection,
    LogisticSection,
    RulesSection,
    Sharded,
)
from tamis.storage import manifest as mf
from tamis.storage.cache import Cache, all_document_vectors, open_cache, same_model
from tamis.storage.errors import ConfigError, ModelError, PlanError
from tamis.storage.files import absolute, exists, join

#: Rows whose score and length the diagnostics keep (a (seed, id) sample beyond this).
DIAGNOSTIC_ROWS = 200_000
#: The model identity a classifier on vectors records, and a cache must match to be scored.
EMBEDDING_KEYS = ("embedder", "name", "content_hash", "dim", "normalized", "max_seq_length",
                  "window_tokens", "mode")
CLASSIFIERS = ("fasttext", "features", "embedding", "ensemble", "none")
SUFFIX = {"fasttext": ".bin"}


@dataclass(frozen=True, kw_only=True)
class QualityConfig(Sharded, Common, Corpus):
    """``tamis quality``: heuristic rules and a quality classifier; keep the top share of the
    pool."""

    classifier: Literal["fasttext", "features", "embedding", "ensemble", "none"] = key(
        "fasttext", "`features`: the text-quality signals; `embedding`: document vectors; "
                    "`ensemble`: several stacked; `none`: rules only")
    rules: RulesSection = key(factory=RulesSection, doc="heuristic rules applied first, each "
                                                        "drop named after the rule")
    positives: tuple[str, ...] = key((), "the high-quality text")
    embeddings: str | None = key(None, "embedding, ensemble: the pool's cache; none: embedded "
                                       "on the way")
    positive_embeddings: str | None = key(None, "the high-quality set's cache; none: "
                                                "`positives` embedded on the way")
    work: str | None = key(None, "where caches made on the way go; none: `<output>-work`")
    embed: EmbedSection = key(factory=EmbedSection, doc="how text is embedded on the way")
    model: str | None = key(None, "a model an earlier quality run trained (models/quality*): "
                                  "score with it, train nothing")
    negatives: int = key(0, "negatives sampled from the pool by (seed, id); 0: as many as "
                            "positives")
    length_match: bool = key(False, "sample negatives with the positives' length distribution")
    keep_top: float | None = key(0.1, "the share kept of the rows that pass the rules, by "
                                      "exact percentile")
    threshold: float | None = key(None, "or a fixed score (then leave keep_top unset)")
    annotate_only: bool = key(False, "add the score (and with rules, the signals), drop nothing")
    signal_columns: bool = key(False, "add the signals and the first failed rule as columns "
                                      "(annotate_only: always)")
    holdout: float = key(0.1, "share of positives and negatives held out to measure accuracy")
    fasttext: FastTextSection = key(factory=FastTextSection, doc="fastText's settings")
    features: FeaturesSection = key(factory=FeaturesSection, doc="the signals classifier's")
    logistic: LogisticSection = key(factory=LogisticSection, doc="the embedding classifier's")
    ensemble: EnsembleSection = key(factory=EnsembleSection, doc="the ensemble's")
    EXCLUSIVE = (("keep_top", "threshold"),)

    @property
    def members(self) -> tuple[str, ...]:
        if self.classifier == "ensemble":
            return tuple(self.ensemble.members)
        return () if self.classifier == "none" else (self.classifier,)

    @property
    def reads_vectors(self) -> bool:
        return "embedding" in self.members

    @property
    def reads_text_positives(self) -> bool:
        return any(m in ("fasttext", "features") for m in self.members)

    def check(self) -> None:
        self._check_ignored()
        if self.classifier == "none":
            if self.rules.set is None:
                raise ConfigError("classifier 'none' filters by rules only: give 'rules.set' "
                                  "(gopher-fineweb2-v1)")
            return
        if self.model is not None:
            wanted = ".bin" if self.classifier == "fasttext" else ".npz"
            if not self.model.endswith(wanted):
                raise ConfigError(f"'model' {self.model}: a {self.classifier} classifier is a "
                                  f"{wanted} file")
        elif self.reads_text_positives and not self.positives:
            raise ConfigError(f"classifier '{self.classifier}' needs 'positives': the "
                              f"high-quality text (or 'model')")
        elif self.reads_vectors and not self.positives and self.positive_embeddings is None:
            raise ConfigError(f"classifier '{self.classifier}' needs 'positives' (the "
                              f"high-quality text) or 'positive_embeddings' (its cache), or "
                              f"'model'")
        if self.threshold is None and (self.keep_top is None or not 0 < self.keep_top <= 1):
            raise ConfigError(f"'keep_top' must be in (0, 1] (or set 'threshold'), got "
                              f"{self.keep_top}")
        if not 0 < self.holdout < 1:
            raise ConfigError(f"'holdout' must be in (0, 1), got {self.holdout}")
        if self.negatives < 0:
            raise ConfigError(f"'negatives' must be >= 0, got {self.negatives}")

    def _check_ignored(self) -> None:
        """A key the chosen classifier would not read is an error, not silently ignored."""
        defaults = QualityConfig.__dataclass_fields__
        uses = {
            "positives": self.model is None and (self.reads_text_positives or (
                self.reads_vectors and self.positive_embeddings is None)),
            "embeddings": self.reads_vectors, "work": self.reads_vectors,
            "embed": self.reads_vectors,
            "positive_embeddings": self.reads_vectors and self.model is None,
            "model": self.classifier != "none",
            "negatives": self.classifier != "none" and self.model is None,
            "length_match": self.classifier != "none" and self.model is None,
            "holdout": self.classifier != "none" and self.model is None,
            "fasttext": "fasttext" in self.members and self.model is None,
            "features": "features" in self.members and self.model is None,
            "logistic": "embedding" in self.members and self.model is None,
            "ensemble": self.classifier == "ensemble",
            "keep_top": self.classifier != "none" and not self.annotate_only,
            "threshold": self.classifier != "none" and not self.annotate_only,
        }
        for name, used in uses.items():
            field = defaults[name]
            default = (field.default_factory() if callable(field.default_factory)
                       else field.default)
            if not used and getattr(self, name) != default:
                raise ConfigError(f"'{name}' is not read {_why(self, name)}: remove it")


def _why(config: QualityConfig, name: str) -> str:
    if config.model is not None and name in ("positives", "positive_embeddings", "negatives",
                                             "length_match", "holdout", "fasttext",
                                             "features", "logistic"):
        return "when 'model' reuses a trained classifier"
    if config.annotate_only and name in ("keep_top", "threshold"):
        return "with annotate_only (nothing is cut)"
    return f"by classifier '{config.classifier}'"


def plan(config: QualityConfig, context: Context) -> Plan[stages.QualitySpec]:
    if "fasttext" in config.members:
        require("fasttext")
    inputs = config.read_plan(reserved_columns=[*SELECTION_COLUMNS, stages.SCORE,
                                                stages.RULE, stages.SIGNAL_COLUMN])
    positives = None
    pool_cache = positive_cache = embedding = None
    cache_shards: dict = {}
    positive_documents = 0
    training = config.classifier != "none" and config.model is None
    if config.model is not None:
        if not exists(config.model):
            raise ModelError(f"model {config.model} does not exist")
        _check_kind(config)
    elif training and config.reads_text_positives:
        positives = config.read_plan(config.positives)
        if positives.rows == 0:
            raise PlanError(f"the positive set {', '.join(config.positives)} has no row")
    if config.reads_vectors:
        if config.embeddings is None:
            raise PlanError("the pool's embedding cache is not made yet (a dry run plans "
                            "quality once the caches exist)")
        pool = open_cache(config.embeddings)
        check_cache_inputs(inputs, pool)
        pool_cache, cache_shards = config.embeddings, pool.by_batch()
        embedding = {k: pool.model.get(k) for k in EMBEDDING_KEYS}
        if config.model is not None:
            _check_embedding(config.model, pool)
        else:
            same_model(pool, open_cache(config.positive_embeddings))
            positive_documents = len(all_document_vectors(config.positive_embeddings))
            if not positive_documents:
                raise PlanError(f"the positive set's cache {config.positive_embeddings} "
                                f"holds no document")
            positive_cache = config.positive_embeddings
    rules = config.rules.rules()
    keep = 1.0 if config.annotate_only or config.classifier == "none" else (
        config.keep_top or 1.0)
    shards = config.num_shards or auto_shards(inputs.bytes * keep)
    warnings = [*inputs.warnings, *(positives.warnings if positives else ())]
    opening = header("quality", config, warnings)
    language = config.rules.language
    members = config.members
    spec = stages.QualitySpec(
        inputs=inputs, out_dir=context.out_dir(config), header=opening, seed=config.seed,
        num_shards=shards, classifier=config.classifier, members=members,
        positives=positives, rules=rules, rule_set=config.rules.set, language=language,
        signal_columns=config.signal_columns or config.annotate_only,
        keep_top=None if config.threshold is not None else config.keep_top,
        threshold=config.threshold,
        # 0 negatives: as many as positives, counted here for cached positives
        negatives=config.negatives or (0 if positives else positive_documents),
        length_match=config.length_match, annotate_only=config.annotate_only,
        holdout=config.holdout, folds=config.ensemble.folds,
        fasttext=config.fasttext.model(config.seed), logistic=config.logistic.model(config.seed),
        features=config.features.model(config.seed, language),
        stats_rate=min(1.0, DIAGNOSTIC_ROWS / max(inputs.rows or 1, 1)),
        model_path=None if config.model is None else absolute(config.model),
        pool_cache=pool_cache, positive_cache=positive_cache, cache_shards=cache_shards,
        embedding=embedding)
    tokens = inputs.estimated_tokens()
    estimates = Estimates(
        input_rows=inputs.rows, input_bytes=inputs.bytes, input_tokens=tokens,
        output_rows=None if inputs.rows is None else round(inputs.rows * keep),
        output_tokens=round(tokens * keep), output_bytes=round(inputs.bytes * keep),
        num_shards=shards)
    return Plan(spec, opening, estimates, inputs,
                _summary(config, positives, positive_documents))


def _check_kind(config: QualityConfig) -> None:
    from tamis.embeddings.classifiers import classifier_kind

    try:
        kind = classifier_kind(config.model)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(f"model {config.model} is not a classifier tamis quality saved "
                         f"({exc})") from None
    if kind != config.classifier:
        raise ConfigError(f"model {config.model} is a {kind} classifier: set classifier: "
                          f"{kind}")


def _check_embedding(path: str, pool: Cache) -> None:
    """A classifier reused on a cache must read vectors embedded as its training data was."""
    from tamis.embeddings.classifiers import load_classifier, trained_on

    try:
        model = load_classifier(path)
        recorded = trained_on(path).get("embedding")
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(f"model {path} is not a classifier tamis quality saved ({exc})") from None
    inner = model.members_["embedding"] if hasattr(model, "members_") else model
    if len(inner.coef_) != pool.dim:
        raise ModelError(f"model {path} reads {len(inner.coef_)}-d vectors; the cache "
                         f"{pool.path} holds {pool.dim}-d ones")
    if recorded:
        for k in EMBEDDING_KEYS:
            if recorded.get(k) != pool.model.get(k):
                raise ModelError(f"model {path} was trained on vectors with {k} "
                                 f"{recorded.get(k)!r}; the cache {pool.path} has "
                                 f"{pool.model.get(k)!r}: embed the pool as its training "
                                 f"data was")


def _summary(config: QualityConfig, positives, positive_documents: int) -> tuple[str, ...]:
    lines = []
    if config.rules.set is not None:
        rules = config.rules.rules()
        lines.append(f"rules: {config.rules.set} ({len(rules)} rules, language "
                     f"{config.rules.language}); each drop named after the first rule failed")
    if config.classifier == "none":
        return (*lines, "classifier: none (rules only)")
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
    how = {"fasttext": f"fastText: lr {ft.lr}, dim {ft.dim}, epoch {ft.epoch}, word n-grams "
                       f"{ft.word_ngrams}, bucket {ft.bucket:,}",
           "features": f"logistic regression on {len(stages.SIGNALS)} text-quality signals, "
                       f"C from {list(config.features.Cs)} by cross-validated log-loss",
           "embedding": f"logistic regression on embeddings, C from "
                        f"{list(config.logistic.Cs)} by cross-validated log-loss"}
    if config.classifier == "ensemble":
        text = (f"ensemble of {', '.join(config.members)}, stacked on {config.ensemble.folds}"
                f"-fold out-of-fold scores; " + "; ".join(how[m] for m in config.members))
    else:
        text = how[config.classifier]
    return (*lines, trained,
            f"{text}; keep {rule}{' (annotate only)' if config.annotate_only else ''}")


def prerequisites(config: QualityConfig, data: dict, launch: Launch):
    """Embed the pool and the positives when a classifier on vectors has no cache of them.
    With LSI, the model is fitted on the pool and the positives together (a model fitted on
    the pool alone places the positives outside its sample, which a classifier learns)."""
    if not config.reads_vectors or config.model is not None and config.embeddings:
        return data
    if config.embeddings is not None and config.positive_embeddings is not None:
        return data
    config.read_plan()  # the inputs are checked before hours of embedding
    if not launch.dry_run:
        launch.check_output(config.output)
    work = config.work or config.output.rstrip("/\\") + "-work"
    data = copy.deepcopy(data)
    settings = to_dict(config.embed)
    if config.embeddings is not None:  # positives are embedded as the given cache was
        made = open_cache(config.embeddings).manifest["config"]
        settings = {k: made.get(k, v) for k, v in settings.items()}
    common = {"text_column": config.text_column, "id_column": config.id_column,
              "seed": config.seed, **settings}
    if config.embeddings is None:
        data["embeddings"] = join(work, "pool-emb")
        pool = {**common, "inputs": list(config.inputs), "output": data["embeddings"]}
        if config.embed.embedder == "lsi" and config.positives and not config.embed.lsi.model:
            pool["lsi"] = {**pool["lsi"], "fit_also": list(config.positives)}
        yield Step("embed", pool)
    if config.positive_embeddings is None and config.model is None:
        out = join(work, "positives-emb")
        sub = {**common, "inputs": list(config.positives), "output": out}
        if settings.get("embedder") == "lsi":
            model = _lsi_artifact(data["embeddings"])
            if model is None:
                if launch.dry_run:
                    return None
                raise PlanError(f"the pool's cache {data['embeddings']} has no LSI model")
            sub["lsi"] = {**sub["lsi"], "model": model, "fit_also": []}
        yield Step("embed", sub)
        data["positive_embeddings"] = out
        if not config.reads_text_positives:  # read now through their cache
            data.pop("positives", None)
    ready = finished(data["embeddings"], "embed") and (
        config.model is not None or finished(data["positive_embeddings"], "embed"))
    if launch.dry_run and not ready:
        return None
    return data


def _lsi_artifact(cache: str) -> str | None:
    if not finished(cache, "embed"):
        return None
    artifact = mf.load_manifest(cache)["model"].get("artifact")
    if artifact is None:
        return None
    return artifact if "://" in artifact or artifact.startswith("/") else join(cache, artifact)


JOB = Job(
    name="quality", summary="heuristic rules and a quality classifier (fastText, signals, "
                            "embeddings or an ensemble); keep the top share",
    config=QualityConfig, plan=plan, stages=stages.build, prerequisites=prerequisites)
