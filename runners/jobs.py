"""The jobs the CLI can run: each turns its configuration into an input plan, the spec of
its pipeline, and the estimates a dry run prints."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import apache_beam as beam
import numpy as np

from tamis.embeddings.sentence import model_info
from tamis.pipelines import cluster, crisp, dsir, embed, quality, relevance, sample
from tamis.pipelines import manifest as mf
from tamis.pipelines.files import join
from tamis.pipelines.inputs import InputPlan, plan_inputs
from tamis.pipelines.vectors import CacheError, open_cache, read_documents, same_model
from tamis.runners.config import (
    ClusterConfig,
    CrispConfig,
    DsirConfig,
    EmbedConfig,
    QualityConfig,
    RelevanceConfig,
    SampleConfig,
    config_hash,
    to_dict,
)
from tamis.selectors import importance as imp
from tamis.selectors.clusters import MAX_LEVELS

SHARD_TARGET_BYTES = 128 << 20
MAX_AUTO_SHARDS = 1024


@dataclass
class Prepared:
    """A job ready to build: everything checked, nothing read beyond footers."""

    plan: InputPlan | None  # None for jobs that read a cache, not text
    spec: Any
    header: dict  # opens the manifest
    estimates: dict = field(default_factory=dict)
    summary: list[str] = field(default_factory=list)  # lines for the dry run


@dataclass(frozen=True)
class Context:
    """Where a job will run: enough to size its workers' threads."""

    runner: str = "local"
    workers: int = 1
    cores: int = 1


@dataclass(frozen=True)
class Job:
    name: str
    help: str
    config: type
    prepare: Callable[[Any, Context], Prepared]
    build: Callable[[beam.Pipeline, Prepared], None]
    reuses_output: bool = False  # a rerun may find its own earlier outputs and keep them
    progress: tuple[str, str] | None = None  # (stage, label) of the long stage
    #: Local workers when --workers is not given (None: one per core).
    local_workers: int | None = None


def header(job: str, config: Any) -> dict:
    return {"job": job, "config": to_dict(config), "config_hash": config_hash(config),
            "seed": config.seed}


def auto_shards(expected_bytes: float) -> int:
    return max(1, min(MAX_AUTO_SHARDS, math.ceil(expected_bytes / SHARD_TARGET_BYTES)))


def prepare_sample(config: SampleConfig, context: Context) -> Prepared:
    plan = plan_inputs(
        config.inputs, config.text_column, config.id_column,
        required_columns=[config.stratify_by] if config.stratify_by else [],
        reserved_columns=sample.ADDED_COLUMNS,
    )
    tokens = plan.estimated_tokens()
    rows = plan.rows
    budget = config.budget
    if budget.unit == "rows":
        fraction = 1.0 if not rows else min(1.0, budget.amount / rows)
    else:
        fraction = 1.0 if not tokens else min(1.0, budget.amount / tokens)
    out_bytes = plan.bytes * fraction
    shards = config.num_shards or auto_shards(out_bytes)
    spec = sample.SampleSpec(
        out_dir=config.output, budget=budget.amount, unit=budget.unit, seed=config.seed,
        stratify_by=config.stratify_by, allocation=config.allocation, num_shards=shards,
    )
    estimates = {
        "input_rows": rows, "input_bytes": plan.bytes, "input_tokens_estimated": tokens,
        "output_fraction": fraction,
        "output_rows_estimated": None if rows is None else round(rows * fraction),
        "output_tokens_estimated": round(tokens * fraction),
        "output_bytes_estimated": round(out_bytes), "num_shards": shards,
    }
    strat = (f", stratified by '{config.stratify_by}' ({config.allocation})"
             if config.stratify_by else "")
    summary = [f"budget: {budget.amount:,} {budget.unit}{strat}, seed {config.seed}"]
    h = header("sample", config)
    h["warnings"] = list(plan.warnings)
    return Prepared(plan, spec, h, estimates, summary)


def build_sample(pipeline: beam.Pipeline, prepared: Prepared) -> None:
    sample.build(pipeline, prepared.plan, prepared.spec, prepared.header)


#: Documents per second, for dry-run estimates when the config gives none: per CPU core on CPU
#: (measured on the demo corpus with benchmarks/embed.py and embed_memory.py, 256-token
#: windows; see BENCHMARKS.md), per GPU on CUDA (not measured: a conservative guess).
DEFAULT_DOCS_PER_SECOND = {("lsi", "cpu"): 1300.0, ("sentence-transformers", "cpu"): 13.5,
                           ("sentence-transformers", "cuda"): 2000.0}


def prepare_embed(config: EmbedConfig, context: Context) -> Prepared:
    plan = plan_inputs(config.inputs, config.text_column, config.id_column)
    m = config.model
    warnings = list(plan.warnings)
    if config.embedder == "sentence-transformers":
        info = model_info(m.name, m.trust_remote_code, m.max_seq_length)
        path, content, dim, seq = info.path, info.content_hash, info.dim, info.max_seq_length
        if config.window_tokens > seq:
            warnings.append(f"window_tokens {config.window_tokens} > the model's max_seq_length "
                            f"{seq}: the model reads only the first {seq} tokens of each window")
    else:
        path, content, dim, seq = None, None, config.lsi.dim, None
    cpu = m.device == "cpu" or config.embedder == "lsi"
    threads = m.threads or (max(1, context.cores // max(1, context.workers)) if cpu else 0)
    spec = embed.EmbedSpec(
        out_dir=config.output, embedder=config.embedder,
        model_name=m.name if config.embedder == "sentence-transformers" else "lsi", model_path=path,
        model_hash=content, dim=dim, max_seq_length=seq, window_tokens=config.window_tokens,
        mode=config.mode, normalize=m.normalize, device=m.device, precision=m.precision,
        batch_size=m.batch_size, threads=threads, max_doc_chars=config.max_doc_chars,
        seed=config.seed, trust_remote_code=m.trust_remote_code, lsi_dim=config.lsi.dim,
        lsi_max_features=config.lsi.max_features, lsi_min_df=config.lsi.min_df,
        lsi_fit_sample=config.lsi.fit_sample, lsi_model=_lsi_model(config),
    )
    device = "cpu" if cpu else "cuda"
    if config.docs_per_second:
        rate = config.docs_per_second
    else:
        rate = DEFAULT_DOCS_PER_SECOND[(config.embedder, device)]
        rate *= context.cores if cpu and context.runner == "local" else 1
    rows = plan.rows
    seconds = None if rows is None else rows / rate
    source = "config" if config.docs_per_second else "default"
    tokens = plan.estimated_tokens()
    windows = max(rows or 0, round(tokens / config.window_tokens))
    estimates = {
        "input_rows": rows, "input_bytes": plan.bytes, "input_tokens_estimated": tokens,
        "output_rows_estimated": rows if config.mode == "document" else windows,
        "output_bytes_estimated": (rows if config.mode == "document" else windows or 0)
        * (4 * dim + 64),
        "output_tokens_estimated": tokens, "num_shards": len(plan.units),
        "docs_per_second": rate, "seconds_estimated": seconds,
        "progress_total": windows,  # progress counts windows (estimated from footers)
    }
    model_line = (f"model: {m.name} ({dim}-d, max_seq_length {seq}, {device}, "
                  f"{spec.effective_precision()}, {content[:19]}...)"
                  if config.embedder == "sentence-transformers"
                  else f"model: LSI ({config.lsi.dim}-d, fitted on {config.lsi.fit_sample:,} docs)")
    summary = [model_line,
               f"windows: {config.window_tokens} tokens, mode {config.mode}, batch {m.batch_size}"
               f", {threads or 'default'} torch thread(s) per worker",
               f"estimated wall time: {_duration(seconds)} at {rate:,.1f} docs/s ({source} rate"
               f"{'' if config.docs_per_second else '; set docs_per_second to calibrate'})"]
    h = header("embed", config)
    h["warnings"] = warnings
    return Prepared(plan, spec, h, estimates, summary)


def _lsi_model(config: EmbedConfig) -> str | None:
    path = config.lsi.model
    if path is None or config.embedder != "lsi":
        return None
    if not os.path.isfile(path) or not os.path.basename(path).startswith("lsi-"):
        raise CacheError(f"lsi.model {path} is not an LSI model that tamis embed fitted "
                         f"(models/lsi-<sha256>.npz in an embedding cache)")
    return os.path.abspath(path)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown (JSONL row counts are not in a footer)"
    minutes, s = divmod(int(round(seconds)), 60)
    h, m = divmod(minutes, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


def build_embed(pipeline: beam.Pipeline, prepared: Prepared) -> None:
    embed.build(pipeline, prepared.plan, prepared.spec, prepared.header)


def prepare_cluster(config: ClusterConfig, context: Context) -> Prepared:
    cache = open_cache(config.embeddings)
    documents = sum(e["documents"] for e in cache.shards)
    if documents < config.branching:
        raise CacheError(f"{cache.path} holds {documents} documents, fewer than branching "
                         f"{config.branching}")
    spec = cluster.ClusterSpec(config.output, config.branching, config.levels,
                               config.sample_size, config.niter, config.balance, config.seed)
    sizes = [config.branching ** (i + 1) for i in range(config.levels)]
    estimates = {"input_rows": documents, "input_bytes": sum(e["bytes"] for e in cache.shards),
                 "input_tokens_estimated": cache.manifest["outputs"]["tokens"],
                 "output_rows_estimated": documents, "output_tokens_estimated":
                 cache.manifest["outputs"]["tokens"], "output_bytes_estimated": documents * 40,
                 "num_shards": len(cache.shards)}
    summary = [f"embeddings: {cache.path} ({documents:,} documents, {cache.dim}-d, "
               f"{cache.model['name']})",
               f"tree: {' x '.join([str(config.branching)] * config.levels)} = "
               f"{sizes[-1]:,} leaves (clusters per level: {', '.join(f'{n:,}' for n in sizes)})"
               f", fitted on {min(config.sample_size, documents):,} documents, balance "
               f"{config.balance}"]
    return Prepared(None, spec, header("cluster", config), estimates, summary)


def build_cluster(pipeline: beam.Pipeline, prepared: Prepared) -> None:
    cache = open_cache(prepared.header["config"]["embeddings"])
    cluster.build(pipeline, cache, prepared.spec, prepared.header)


def prepare_crisp(config: CrispConfig, context: Context) -> Prepared:
    if config.embeddings is None or config.clusters is None or any(
            s.embeddings is None for s in config.specialists):
        raise CacheError("crisp needs its embeddings and clusters (tamis crisp makes them "
                         "on the way; this job alone cannot)")
    plan = plan_inputs(config.inputs, config.text_column, config.id_column,
                       reserved_columns=crisp_columns(MAX_LEVELS))
    pool = open_cache(config.embeddings)
    _check_cache_inputs(plan, pool)
    tree_manifest = _cluster_manifest(config.clusters, pool)
    model = cluster.load_model(join(config.clusters, cluster.MODEL))
    level = model.levels - 1 if config.level is None else config.level
    if not 0 <= level < model.levels:
        raise CacheError(f"level {level} is not a level of the tree in {config.clusters} "
                         f"(levels 0 to {model.levels - 1})")
    n_clusters = model.n_clusters(level)
    pool_rows, pool_tokens = cluster.read_counts(config.clusters, level)
    histograms = [_specialist_histogram(s.embeddings, pool, model, level, config.soft_clusters,
                                        config.soft_temperature)
                  for s in config.specialists]
    target = imp.mix(histograms, [s.weight for s in config.specialists], config.smoothing)
    covered = imp.coverage(target, pool_tokens)
    if covered == 0:
        raise CacheError("no specialist record falls in a cluster the pool has records in: "
                         "nothing to select")
    warnings = list(plan.warnings)
    if covered < 0.999:
        warnings.append(f"{1 - covered:.1%} of the specialist histogram lies in clusters the "
                        f"pool has no record in: that share of the budget cannot be spent")
    budget = float(config.budget.amount)
    eps = config.inject_generic
    total = float(pool_tokens.sum())
    rates = imp.rates(target, pool_tokens, (1 - eps) * budget) + eps * budget / total
    expected = float((imp.expected_draws(rates, config.repetition_cap, config.sampler)
                      * pool_tokens).sum())
    need = rates[target > 0]
    worst = int(np.flatnonzero(target > 0)[int(np.argmax(need))])
    if expected < 0.98 * budget:
        warnings.append(
            f"the budget of {budget:,.0f} tokens needs more than the pool gives under "
            f"repetition_cap {config.repetition_cap}: about {expected:,.0f} tokens "
            f"({expected / budget:.0%}) will be selected; cluster {worst} needs "
            f"{rates[worst]:.1f} draws per record")
    # P(a record of the cluster is drawn at least once)
    drawn = 1.0 - np.exp(-rates) if config.sampler == "poisson" else np.minimum(rates, 1.0)
    fraction = float((drawn * pool_rows).sum() / max(pool_rows.sum(), 1))
    shards = config.num_shards or auto_shards(plan.bytes * fraction)
    spec = crisp.CrispSpec(
        out_dir=config.output, model_path=join(config.clusters, cluster.MODEL),
        levels=model.levels, level=level, rates=tuple(rates.tolist()),
        weights=tuple(imp.weights(target, pool_tokens).tolist()), cap=config.repetition_cap,
        seed=config.seed, sampler=config.sampler, num_shards=shards,
        target=tuple(target.tolist()), pool_tokens=tuple(int(t) for t in pool_tokens),
        cache_shards=pool.by_batch())
    h = header("crisp", config)
    h["warnings"] = warnings
    h["selector"] = {
        "method": "crisp", "sampler": config.sampler, "level": level, "n_clusters": n_clusters,
        "soft_clusters": config.soft_clusters,
        "soft_temperature": config.soft_temperature if config.soft_clusters else None,
        "budget_tokens": int(budget), "expected_tokens": round(expected),
        "expected_max_rate": round(float(need.max()), 3), "repetition_cap": config.repetition_cap,
        "coverage": round(covered, 6), "smoothing": config.smoothing,
        "inject_generic": eps,
        "token_unit": ("words and punctuation" if pool.model["embedder"] == "lsi"
                       else f"{pool.model['name']} tokenizer"),
        "specialists": [{"embeddings": s.embeddings, "weight": s.weight,
                         "documents": int(hh.sum())}
                        for s, hh in zip(config.specialists, histograms, strict=True)],
        "clusters": config.clusters, "cluster_fit": tree_manifest["clusters"]["sample_rows"],
    }
    estimates = {"input_rows": plan.rows, "input_bytes": plan.bytes,
                 "input_tokens_estimated": int(total), "output_rows_estimated":
                 round(fraction * (plan.rows or 0)), "output_tokens_estimated": round(expected),
                 "output_bytes_estimated": round(plan.bytes * fraction), "num_shards": shards}
    summary = [
        f"clusters: level {level} of {config.clusters} ({n_clusters:,} clusters), "
        f"{len(config.specialists)} specialist set(s), {int(sum(h.sum() for h in histograms)):,}"
        f" documents, coverage {covered:.1%}",
        f"budget: {budget:,.0f} tokens (expected {expected:,.0f}); expected draws per record: "
        f"up to {need.max():.2f} (cap {config.repetition_cap}, {config.sampler.replace('_', ' ')}"
        f"); generic share {eps:.1%}",
    ]
    return Prepared(plan, spec, h, estimates, summary)


def crisp_columns(levels: int) -> list[str]:
    return ["n_tokens", "weight", "n_samples", *[f"cluster_l{i}" for i in range(levels)]]


def _check_cache_inputs(plan: InputPlan, cache) -> None:
    """The cache must have been made from these very files (same relative path and size)."""
    known = {i["rel"]: i for i in cache.manifest["inputs"]}
    for f in plan.files:
        entry = known.get(f.rel)
        if entry is None or entry["bytes"] != f.bytes:
            raise CacheError(f"{f.path}: the embedding cache {cache.path} was not made from this "
                             f"file; run tamis embed on the same inputs")


def _cluster_manifest(folder: str, pool) -> dict:
    try:
        manifest = mf.load_manifest(folder)
    except mf.VerifyError:
        raise CacheError(f"{folder}: no clusters there (run tamis cluster first)") from None
    if manifest.get("job") != "cluster":
        raise CacheError(f"{folder} holds the output of '{manifest.get('job')}', not cluster")
    shards = sorted(e["sha256"] for e in pool.shards)
    if sorted(i["sha256"] for i in manifest["inputs"]) != shards:
        raise CacheError(f"the clusters in {folder} were assigned on other embeddings than "
                         f"{pool.path}; run tamis cluster on that cache")
    return manifest


def _specialist_histogram(path: str, pool, model, level: int, soft: int = 0,
                          temperature: float = 0.05) -> np.ndarray:
    """Specialist documents per cluster of ``level``: the cluster each is routed to, or
    (``soft`` > 0) spread over the ``soft`` children of its routed parent most like it."""
    cache = open_cache(path)
    same_model(pool, cache)
    counts = np.zeros(model.n_clusters(level))
    for entry in cache.shards:
        ids, vectors, _ = read_documents(cache.shard_path(entry))
        if not ids:
            continue
        if soft:
            counts += model.soft_counts(vectors, level, soft, temperature)
        else:
            counts += imp.histogram(model.assign(vectors)[:, level], len(counts))
    if counts.sum() == 0:
        raise CacheError(f"specialist set {path} is empty: it holds no document")
    return counts


def build_crisp(pipeline: beam.Pipeline, prepared: Prepared) -> None:
    crisp.build(pipeline, prepared.plan, prepared.spec, prepared.header)


def prepare_relevance(config: RelevanceConfig, context: Context) -> Prepared:
    plan = plan_inputs(config.inputs, config.text_column, config.id_column,
                       reserved_columns=[*sample.ADDED_COLUMNS, relevance.SCORE, relevance.RANK])
    pool = open_cache(config.embeddings)
    _check_cache_inputs(plan, pool)
    documents = 0
    for s in config.specialists:
        cache = open_cache(s.embeddings)
        same_model(pool, cache)
        found = len(relevance.specialist_vectors(s.embeddings))
        if not found:
            raise CacheError(f"specialist set {s.embeddings} is empty: it holds no document")
        documents = max(documents, found)
    total = float(pool.manifest["outputs"]["tokens"])
    budget = int(config.budget.amount)
    fraction = 1.0 if not total else min(1.0, budget / total)
    diverse = config.mmr_lambda is not None
    # documents in the pool: from the footers, or (JSONL) at most the cache's windows
    documents_in_pool = plan.rows or sum(e["rows"] for e in pool.shards)
    candidates = min(total, budget * config.mmr_candidates) / max(total, 1) * documents_in_pool
    if diverse and candidates > config.max_candidates:
        raise CacheError(f"MMR would hold about {candidates:,.0f} candidate records in one "
                         f"worker (max_candidates {config.max_candidates:,}): lower "
                         f"mmr_candidates or the budget, or raise max_candidates")
    shards = config.num_shards or auto_shards(plan.bytes * fraction)
    spec = relevance.RelevanceSpec(
        out_dir=config.output, budget=budget,
        specialists=tuple((s.embeddings, s.weight) for s in config.specialists), k=config.k,
        exact_up_to=config.exact_up_to, nprobe=config.nprobe, mmr_lambda=config.mmr_lambda,
        mmr_candidates=config.mmr_candidates, seed=config.seed, num_shards=shards,
        cache_shards=pool.by_batch())
    h = header("relevance", config)
    h["warnings"] = list(plan.warnings)
    h["selector"] = {
        "method": "relevance", "k": config.k, "budget_tokens": budget,
        "mmr_lambda": config.mmr_lambda,
        "mmr_candidate_tokens": round(budget * config.mmr_candidates) if diverse else None,
        "index": "exact" if documents <= config.exact_up_to else f"ivf (nprobe {config.nprobe})",
        "token_unit": ("words and punctuation" if pool.model["embedder"] == "lsi"
                       else f"{pool.model['name']} tokenizer"),
        "specialists": [{"embeddings": s.embeddings, "weight": s.weight}
                        for s in config.specialists]}
    estimates = {"input_rows": plan.rows, "input_bytes": plan.bytes,
                 "input_tokens_estimated": int(total),
                 "output_rows_estimated": round(fraction * (plan.rows or 0)),
                 "output_tokens_estimated": min(budget, int(total)),
                 "output_bytes_estimated": round(plan.bytes * fraction), "num_shards": shards}
    how = (f"MMR (λ {config.mmr_lambda}) over the most relevant {config.mmr_candidates:g}× "
           f"budget (about {candidates:,.0f} records)" if diverse else "highest relevance first")
    summary = [f"relevance: mean cosine to the {config.k} nearest of {documents:,} specialist "
               f"vectors ({h['selector']['index']}), {len(config.specialists)} set(s)",
               f"budget: {budget:,} tokens, each record at most once; {how}"]
    return Prepared(plan, spec, h, estimates, summary)


def build_relevance(pipeline: beam.Pipeline, prepared: Prepared) -> None:
    relevance.build(pipeline, prepared.plan, prepared.spec, prepared.header)


def prepare_dsir(config: DsirConfig, context: Context) -> Prepared:
    plan = plan_inputs(config.inputs, config.text_column, config.id_column,
                       reserved_columns=[*sample.ADDED_COLUMNS, dsir.SCORE])
    target = plan_inputs(config.target, config.text_column, config.id_column)
    if target.rows == 0:
        raise CacheError(f"the target set {', '.join(config.target)} has no row")
    tokens = plan.estimated_tokens()
    fraction = 1.0 if not tokens else min(1.0, config.budget.amount / tokens)
    shards = config.num_shards or auto_shards(plan.bytes * fraction)
    spec = dsir.DsirSpec(config.output, config.budget.amount, config.seed, config.num_buckets,
                         config.ngrams, config.min_words, shards)
    h = header("dsir", config)
    h["warnings"] = list(plan.warnings) + list(target.warnings)
    h["selector"] = {"target_rows": target.rows}
    estimates = {"input_rows": plan.rows, "input_bytes": plan.bytes,
                 "input_tokens_estimated": tokens,
                 "output_rows_estimated": None if plan.rows is None else round(plan.rows
                                                                               * fraction),
                 "output_tokens_estimated": config.budget.amount,
                 "output_bytes_estimated": round(plan.bytes * fraction), "num_shards": shards}
    grams = "unigrams and bigrams" if config.ngrams == 2 else "unigrams"
    summary = [f"target: {len(target.files)} file(s), {target.rows} rows; word {grams} in "
               f"{config.num_buckets:,} buckets; records under {config.min_words} words "
               f"dropped",
               f"budget: {config.budget.amount:,} tokens, Gumbel top-k, seed {config.seed}"]
    return Prepared(plan, (spec, target), h, estimates, summary)


def build_dsir(pipeline: beam.Pipeline, prepared: Prepared) -> None:
    spec, target = prepared.spec
    dsir.build(pipeline, prepared.plan, target, spec, prepared.header)


def prepare_quality(config: QualityConfig, context: Context) -> Prepared:
    plan = plan_inputs(config.inputs, config.text_column, config.id_column,
                       reserved_columns=[*sample.ADDED_COLUMNS, quality.SCORE])
    positives = None
    caches = {}
    positive_documents = 0
    if config.model is not None:
        if not os.path.isfile(config.model):
            raise CacheError(f"model {config.model} does not exist")
    elif config.classifier == "fasttext":
        positives = plan_inputs(config.positives, config.text_column, config.id_column)
        if positives.rows == 0:
            raise CacheError(f"the positive set {', '.join(config.positives)} has no row")
    if config.classifier == "embedding":
        pool = open_cache(config.embeddings)
        _check_cache_inputs(plan, pool)
        caches = {"pool_cache": config.embeddings, "cache_shards": pool.by_batch()}
        if config.model is None:
            hq = open_cache(config.positive_embeddings)
            same_model(pool, hq)
            found = len(relevance.specialist_vectors(config.positive_embeddings))
            if not found:
                raise CacheError(f"the positive set's cache {config.positive_embeddings} "
                                 f"holds no document")
            caches["positive_cache"] = config.positive_embeddings
            positive_documents = found
    keep = 1.0 if config.annotate_only else (config.keep_top or 1.0)
    shards = config.num_shards or auto_shards(plan.bytes * keep)
    ft = config.fasttext
    spec = quality.QualitySpec(
        config.output, None if config.threshold is not None else config.keep_top,
        # 0 negatives: as many as positives, counted here for cached positives
        config.threshold, config.negatives or positive_documents, config.length_match,
        config.annotate_only,
        config.holdout, config.seed, ft.lr, ft.dim, ft.epoch, ft.word_ngrams, shards,
        stats_rate=min(1.0, 200_000 / max(plan.rows or 1, 1)),
        model_path=None if config.model is None else os.path.abspath(config.model),
        classifier=config.classifier, Cs=tuple(config.logistic.Cs), **caches)
    h = header("quality", config)
    h["warnings"] = list(plan.warnings) + (list(positives.warnings) if positives else [])
    estimates = {"input_rows": plan.rows, "input_bytes": plan.bytes,
                 "input_tokens_estimated": plan.estimated_tokens(),
                 "output_rows_estimated": None if plan.rows is None else round(plan.rows * keep),
                 "output_tokens_estimated": round(plan.estimated_tokens() * keep),
                 "output_bytes_estimated": round(plan.bytes * keep), "num_shards": shards}
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
    if config.classifier == "fasttext":
        how = (f"fastText: lr {ft.lr}, dim {ft.dim}, epoch {ft.epoch}, word n-grams "
               f"{ft.word_ngrams}")
    else:
        how = f"logistic regression on embeddings, C from {list(config.logistic.Cs)}"
    summary = [trained, f"{how}; keep {rule}{' (annotate only)' if config.annotate_only else ''}"]
    return Prepared(plan, (spec, positives), h, estimates, summary)


def build_quality(pipeline: beam.Pipeline, prepared: Prepared) -> None:
    spec, positives = prepared.spec
    quality.build(pipeline, prepared.plan, positives, spec, prepared.header)


JOBS = {
    "sample": Job("sample", "uniform sample to a row or token budget, optionally stratified",
                  SampleConfig, prepare_sample, build_sample),
    "embed": Job("embed", "embed documents (token windows) into a reusable vector cache",
                 EmbedConfig, prepare_embed, build_embed, reuses_output=True,
                 progress=(embed.PROGRESS_STAGE, "embedded windows (total estimated)"),
                 # torch spreads one model call over every core; worker processes would only
                 # split the cores, and each row group is one worker's work
                 local_workers=1),
    "cluster": Job("cluster", "fit a balanced hierarchical k-means tree on an embedding cache "
                   "and assign every document", ClusterConfig, prepare_cluster, build_cluster),
    "crisp": Job("crisp", "clustered importance sampling of a pool to a token budget",
                 CrispConfig, prepare_crisp, build_crisp),
    "dsir": Job("dsir", "DSIR hashed n-gram importance resampling to a token budget",
                DsirConfig, prepare_dsir, build_dsir),
    "relevance": Job("relevance", "the records nearest the specialist sample (kNN cosine), "
                     "optionally diversified by MMR, to a token budget", RelevanceConfig,
                     prepare_relevance, build_relevance),
    "quality": Job("quality", "quality classifier (DCLM fastText, or logistic regression on "
                   "embeddings); keep the top share",
                   QualityConfig, prepare_quality, build_quality),
}

#: ``tamis select``: ``method → (job, the defaults the method sets)``; the config's own keys
#: override those defaults. Without a ``method``, select runs DEFAULT_METHOD: the best or
#: within 4% of the best held-out perplexity in every setting of the narrow-target benchmark
#: (BENCHMARKS.md), and it needs no embedding.
METHODS: dict[str, tuple[str, dict]] = {
    "uniform": ("sample", {}),
    "dsir": ("dsir", {}),
    "crisp": ("crisp", {}),
    "relevance": ("relevance", {}),
    "mmr": ("relevance", {"mmr_lambda": 0.7}),
    # CRISP at the finest level, soft specialist histograms, no repeats before exhaustion
    "hybrid": ("crisp", {"sampler": "without_replacement", "soft_clusters": 8}),
}
DEFAULT_METHOD = "dsir"
