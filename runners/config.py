"""Typed job configurations, loaded from YAML with ``--set key=value`` overrides.

A configuration is a frozen dataclass. :func:`load` checks every key and type and raises
:class:`ConfigError` naming the key (with its dotted path) and what is allowed, before any
work starts.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import hashlib
import json
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration that cannot run: the message names the key and what it allows."""


def read_yaml(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys, "
                          f"got {type(data).__name__}")
    return data


def apply_overrides(data: dict, overrides: Sequence[str]) -> dict:
    """Apply ``key.sub=value`` overrides (values parsed as YAML) to a copy of ``data``."""
    data = copy.deepcopy(data)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected key=value")
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"--set {item!r}: '{part}' is not a section")
            node = child
        node[parts[-1]] = yaml.safe_load(raw) if raw else ""
    return data


def load(cls: type[T], data: Mapping[str, Any], where: str = "") -> T:
    """Build ``cls`` from ``data``, checking keys and types; ``where`` prefixes key names."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where or 'config'}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ConfigError(f"unknown key '{where}{key}'{hint}; allowed: "
                              f"{', '.join(fields)}")
    values = {}
    for name, f in fields.items():
        path = f"{where}{name}"
        if name in data:
            values[name] = _convert(hints[name], data[name], path)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"missing key '{path}'")
    obj = cls(**values)
    check = getattr(obj, "check", None)
    if check is not None:
        check()
    return obj


def _convert(tp: Any, value: Any, path: str) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        errors = []
        for option in options:
            try:
                return _convert(option, value, path)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0])
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"'{path}' must be one of {', '.join(map(repr, args))}, "
                              f"got {value!r}")
        return value
    if origin in (tuple, list) or tp in (tuple, list):
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise ConfigError(f"'{path}' must be a list, got {value!r}")
        item = args[0] if args else Any
        return tuple(_convert(item, v, f"{path}[{i}]") for i, v in enumerate(value))
    if dataclasses.is_dataclass(tp):
        return load(tp, value, f"{path}.")
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"'{path}' must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ConfigError(f"'{path}' must be a whole number, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"'{path}' must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"'{path}' must be text, got {value!r}")
        return value
    raise TypeError(f"unsupported config type {tp!r} at {path}")


def to_dict(config: Any) -> dict:
    """The resolved configuration as plain JSON-ready data (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def config_hash(config: Any) -> str:
    canonical = json.dumps(to_dict(config), sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


@dataclasses.dataclass(frozen=True)
class Budget:
    """Exactly one of ``rows`` or ``tokens``."""

    rows: int | None = None
    tokens: int | None = None

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


@dataclasses.dataclass(frozen=True)
class SampleConfig:
    """``tamis sample``: a uniform sample of a corpus to a row or token budget."""

    inputs: tuple[str, ...]  # files, folders or globs of Parquet / JSONL
    output: str  # output folder: data/ shards, rejects/, manifest.json
    budget: Budget
    text_column: str = "text"
    id_column: str | None = "id"  # used when every input has it; else ids are hashed
    seed: int = 0
    stratify_by: str | None = None  # a column; the budget is split across its values
    allocation: Literal["proportional", "equal"] = "proportional"
    num_shards: int = 0  # 0: one shard per ~128 MB of expected output

    def check(self) -> None:
        if not self.inputs:
            raise ConfigError("'inputs' must name at least one file, folder or glob")
        if self.num_shards < 0:
            raise ConfigError(f"'num_shards' must be >= 0, got {self.num_shards}")


@dataclasses.dataclass(frozen=True)
class ModelSection:
    """A sentence-transformers model: the bundled all-MiniLM-L6-v2, a local folder, or a hub
    id already in the local Hugging Face cache (nothing is downloaded)."""

    name: str = "sentence-transformers/all-MiniLM-L6-v2"
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    precision: Literal["auto", "fp32", "fp16"] = "auto"  # auto: fp16 on CUDA, fp32 on CPU
    max_seq_length: int | None = None  # tokens the model reads per window; None: the model's
    normalize: bool = True  # L2-normalise vectors
    batch_size: int = 64  # windows per model call
    threads: int = 0  # torch threads per worker on CPU; 0: cores / workers
    trust_remote_code: bool = False

    def check(self) -> None:
        if self.batch_size < 1:
            raise ConfigError(f"'model.batch_size' must be >= 1, got {self.batch_size}")
        if self.max_seq_length is not None and self.max_seq_length < 1:
            raise ConfigError(f"'model.max_seq_length' must be >= 1, got {self.max_seq_length}")


@dataclasses.dataclass(frozen=True)
class LsiSection:
    """TF-IDF + truncated SVD fitted on a sample of the corpus."""

    dim: int = 256
    max_features: int = 65536  # vocabulary size
    min_df: int = 2  # a term must be in this many sample documents
    fit_sample: int = 20000  # documents the model is fitted on, chosen by (seed, id)
    model: str | None = None  # an lsi-*.npz an earlier embed fitted: reuse it, fit nothing

    def check(self) -> None:
        for key in ("dim", "max_features", "min_df", "fit_sample"):
            if getattr(self, key) < 1:
                raise ConfigError(f"'lsi.{key}' must be >= 1, got {getattr(self, key)}")


@dataclasses.dataclass(frozen=True)
class EmbedConfig:
    """``tamis embed``: documents → token windows → vectors, in a reusable cache."""

    inputs: tuple[str, ...]
    output: str  # the cache folder; a rerun reuses what it holds
    text_column: str = "text"
    id_column: str | None = "id"
    seed: int = 0
    embedder: Literal["sentence-transformers", "lsi"] = "sentence-transformers"
    model: ModelSection = dataclasses.field(default_factory=ModelSection)
    lsi: LsiSection = dataclasses.field(default_factory=LsiSection)
    window_tokens: int = 1024  # tokens per window, counted with the model's tokenizer
    mode: Literal["windows", "document"] = "windows"  # document: mean of a document's windows
    max_doc_chars: int = 2_000_000  # longer documents are rejected as too_long
    docs_per_second: float | None = None  # for dry-run time estimates; None: a default

    def check(self) -> None:
        if not self.inputs:
            raise ConfigError("'inputs' must name at least one file, folder or glob")
        if self.window_tokens < 1:
            raise ConfigError(f"'window_tokens' must be >= 1, got {self.window_tokens}")
        if self.max_doc_chars < 1:
            raise ConfigError(f"'max_doc_chars' must be >= 1, got {self.max_doc_chars}")
        if self.docs_per_second is not None and self.docs_per_second <= 0:
            raise ConfigError(f"'docs_per_second' must be > 0, got {self.docs_per_second}")


@dataclasses.dataclass(frozen=True)
class ClusterConfig:
    """``tamis cluster``: balanced hierarchical k-means over an embedding cache."""

    embeddings: str  # a folder written by tamis embed
    output: str
    branching: int = 64  # children per node
    levels: int = 2  # 64 x 2 levels = 4,096 leaves; up to 3 levels
    sample_size: int = 262_144  # documents the tree is fitted on, chosen by (seed, id)
    niter: int = 20  # k-means iterations per node
    balance: float = 1.5  # a child holds at most balance / branching of its parent
    seed: int = 0

    def check(self) -> None:
        if not 1 <= self.levels <= 3:
            raise ConfigError(f"'levels' must be 1 to 3, got {self.levels}")
        if self.branching < 2:
            raise ConfigError(f"'branching' must be >= 2, got {self.branching}")
        if self.balance <= 1:
            raise ConfigError(f"'balance' must be > 1, got {self.balance}")
        if self.sample_size < self.branching:
            raise ConfigError(f"'sample_size' ({self.sample_size}) must be >= 'branching' "
                              f"({self.branching})")


@dataclasses.dataclass(frozen=True)
class Specialist:
    """One specialist set: its embedding cache, or its text (embedded on the way), and its
    share of a multi-task target."""

    embeddings: str | None = None
    inputs: tuple[str, ...] = ()
    weight: float = 1.0

    def check(self) -> None:
        if (self.embeddings is None) == (not self.inputs):
            raise ConfigError("each specialist needs exactly one of 'embeddings' (a cache) "
                              "or 'inputs' (text to embed)")


@dataclasses.dataclass(frozen=True)
class EmbedSettings:
    """How ``crisp`` embeds text it is given without a cache (as in ``tamis embed``)."""

    embedder: Literal["sentence-transformers", "lsi"] = "sentence-transformers"
    model: ModelSection = dataclasses.field(default_factory=ModelSection)
    lsi: LsiSection = dataclasses.field(default_factory=LsiSection)
    window_tokens: int = 1024
    mode: Literal["windows", "document"] = "windows"
    max_doc_chars: int = 2_000_000


@dataclasses.dataclass(frozen=True)
class TreeSettings:
    """How ``crisp`` fits the tree when it is given no clusters (as in ``tamis cluster``)."""

    branching: int = 64
    levels: int = 2
    sample_size: int = 262_144
    niter: int = 20
    balance: float = 1.5


@dataclasses.dataclass(frozen=True)
class CrispConfig:
    """``tamis crisp``: clustered importance sampling of a pool to a token budget."""

    inputs: tuple[str, ...]  # the pool's text, as given to tamis embed
    specialists: tuple[Specialist, ...]
    output: str
    budget: Budget
    embeddings: str | None = None  # the pool's embedding cache; None: embedded on the way
    clusters: str | None = None  # a tamis cluster output on that cache; None: fitted here
    work: str | None = None  # where caches made on the way go; None: "<output>-work"
    embed: EmbedSettings = dataclasses.field(default_factory=EmbedSettings)
    tree: TreeSettings = dataclasses.field(default_factory=TreeSettings)
    text_column: str = "text"
    id_column: str | None = "id"
    level: int | None = None  # the tree level of the histograms; None: the finest
    smoothing: float = 0.0  # additive smoothing of the specialist histogram
    repetition_cap: int = 16  # the most times one record may be drawn
    # without_replacement: a cluster's records repeat only once all of them are drawn (the
    # better choice in every benchmark setting); poisson: the paper's draws with replacement
    sampler: Literal["poisson", "without_replacement"] = "without_replacement"
    # 0: a specialist document counts in the cluster it is routed to; k > 0: it spreads over
    # the k children of its routed parent most like it, ∝ exp(cosine / soft_temperature)
    soft_clusters: int = 0
    soft_temperature: float = 0.05
    inject_generic: float = 0.0  # share of the budget drawn uniformly from the whole pool
    seed: int = 0
    num_shards: int = 0

    def check(self) -> None:
        if not self.inputs:
            raise ConfigError("'inputs' must name at least one file, folder or glob")
        if self.soft_clusters < 0 or self.soft_temperature <= 0:
            raise ConfigError(f"'soft_clusters' must be >= 0 and 'soft_temperature' > 0, got "
                              f"{self.soft_clusters} and {self.soft_temperature}")
        if not self.specialists:
            raise ConfigError("'specialists' must name at least one embedding cache")
        if self.budget.unit != "tokens":
            raise ConfigError("'budget' of crisp is in tokens: set budget.tokens")
        if self.repetition_cap < 1:
            raise ConfigError(f"'repetition_cap' must be >= 1, got {self.repetition_cap}")
        if not 0 <= self.inject_generic < 1:
            raise ConfigError(f"'inject_generic' must be in [0, 1), got {self.inject_generic}")
        if self.smoothing < 0:
            raise ConfigError(f"'smoothing' must be >= 0, got {self.smoothing}")
        if any(s.weight < 0 for s in self.specialists) or not any(
                s.weight > 0 for s in self.specialists):
            raise ConfigError("specialist weights must be >= 0 with at least one positive")


@dataclasses.dataclass(frozen=True)
class RelevanceConfig:
    """``tamis relevance``: the pool records most similar to the specialist sample (mean
    cosine to their k nearest specialist vectors), each at most once, up to a token budget;
    optionally diversified by maximal marginal relevance."""

    inputs: tuple[str, ...]  # the pool's text, as given to tamis embed
    embeddings: str  # the pool's embedding cache
    specialists: tuple[Specialist, ...]  # embedding caches (made with the pool's model)
    output: str
    budget: Budget  # tokens of the embedding model, as the cache counts them
    k: int = 10  # specialist neighbours a record's relevance is averaged over
    mmr_lambda: float | None = None  # None: relevance only; in [0, 1]: MMR with this λ
    mmr_candidates: float = 3.0  # MMR picks among the most relevant (this × budget) tokens
    max_candidates: int = 200_000  # MMR holds its candidates in one worker
    exact_up_to: int = 100_000  # specialist vectors searched exactly; beyond: an IVF index
    nprobe: int = 32  # IVF lists visited per query
    text_column: str = "text"
    id_column: str | None = "id"
    seed: int = 0
    num_shards: int = 0

    def check(self) -> None:
        if not self.inputs:
            raise ConfigError("'inputs' must name at least one file, folder or glob")
        if not self.specialists or any(s.embeddings is None for s in self.specialists):
            raise ConfigError("'specialists' must name at least one embedding cache "
                              "('embeddings' of each)")
        if self.budget.unit != "tokens":
            raise ConfigError("'budget' of relevance is in tokens: set budget.tokens")
        if self.k < 1:
            raise ConfigError(f"'k' must be >= 1, got {self.k}")
        if self.mmr_lambda is not None and not 0 <= self.mmr_lambda <= 1:
            raise ConfigError(f"'mmr_lambda' must be in [0, 1], got {self.mmr_lambda}")
        if self.mmr_candidates < 1:
            raise ConfigError(f"'mmr_candidates' must be >= 1, got {self.mmr_candidates}")
        if any(s.weight < 0 for s in self.specialists) or not any(
                s.weight > 0 for s in self.specialists):
            raise ConfigError("specialist weights must be >= 0 with at least one positive")


@dataclasses.dataclass(frozen=True)
class DsirConfig:
    """``tamis dsir``: DSIR-style hashed n-gram importance resampling to a token budget."""

    inputs: tuple[str, ...]  # the pool
    target: tuple[str, ...]  # text of the target (specialist) set
    output: str
    budget: Budget
    text_column: str = "text"
    id_column: str | None = "id"
    seed: int = 0
    num_buckets: int = 10_000
    ngrams: Literal[1, 2] = 2  # words, or words and bigrams
    min_words: int = 100  # shorter records are dropped as too_short (DSIR's rule)
    num_shards: int = 0

    def check(self) -> None:
        if not self.inputs or not self.target:
            raise ConfigError("'inputs' and 'target' must each name at least one file")
        if self.budget.unit != "tokens":
            raise ConfigError("'budget' of dsir is in tokens: set budget.tokens")
        if self.num_buckets < 1 or self.min_words < 0:
            raise ConfigError("'num_buckets' must be >= 1 and 'min_words' >= 0")


@dataclasses.dataclass(frozen=True)
class FastTextSection:
    """fastText settings; the defaults are DCLM's (fastText's own, with word bigrams)."""

    lr: float = 0.1
    dim: int = 100
    epoch: int = 5
    word_ngrams: int = 2


@dataclasses.dataclass(frozen=True)
class LogisticSection:
    """The embedding classifier: L2 logistic regression, ``C`` chosen by held-out accuracy."""

    Cs: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0, 100.0)


@dataclasses.dataclass(frozen=True)
class QualityConfig:
    """``tamis quality``: a quality classifier (fastText on text, or logistic regression on
    cached embeddings); keep the top share of the pool."""

    inputs: tuple[str, ...]  # the pool to filter
    output: str
    classifier: Literal["fasttext", "embedding"] = "fasttext"
    positives: tuple[str, ...] = ()  # fasttext: text of the high-quality set
    embeddings: str | None = None  # embedding: the pool's cache (tamis embed on 'inputs')
    positive_embeddings: str | None = None  # embedding: the high-quality set's cache
    # A model an earlier quality run trained (models/quality.bin or .npz): score, train nothing
    model: str | None = None
    text_column: str = "text"
    id_column: str | None = "id"
    seed: int = 0
    negatives: int = 0  # negatives sampled from the pool by (seed, id); 0: as many as positives
    length_match: bool = False  # sample negatives with the positives' length distribution
    keep_top: float | None = 0.1  # share of the pool kept, by percentile
    threshold: float | None = None  # or a fixed score threshold (then keep_top is ignored)
    annotate_only: bool = False  # add quality_score, drop nothing
    holdout: float = 0.1  # share of positives and negatives held out to measure accuracy
    fasttext: FastTextSection = dataclasses.field(default_factory=FastTextSection)
    logistic: LogisticSection = dataclasses.field(default_factory=LogisticSection)
    num_shards: int = 0

    def check(self) -> None:
        if not self.inputs:
            raise ConfigError("'inputs' must name at least one file, folder or glob")
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
        if not self.logistic.Cs or any(c <= 0 for c in self.logistic.Cs):
            raise ConfigError(f"'logistic.Cs' must be positive numbers, got {self.logistic.Cs}")
        if self.threshold is None and (self.keep_top is None or not 0 < self.keep_top <= 1):
            raise ConfigError(f"'keep_top' must be in (0, 1] (or set 'threshold'), got "
                              f"{self.keep_top}")
        if not 0 < self.holdout < 1:
            raise ConfigError(f"'holdout' must be in (0, 1), got {self.holdout}")
        if self.negatives < 0:
            raise ConfigError(f"'negatives' must be >= 0, got {self.negatives}")
