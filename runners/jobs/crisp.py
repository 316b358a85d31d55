"""``tamis crisp``: CRISP clustered importance sampling of a pool to a token budget, towards
one or several specialist sets, from the pool's embedding cache and tree.

The histograms, weights and draw rates are small: they are computed here, before any work,
so that problems stop the job early with the numbers. A configuration that leaves out a cache
(the pool's embeddings, its clusters, a specialist's embeddings) has them made first by the
``embed`` and ``cluster`` jobs (:func:`prerequisites`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from tamis.pipelines import crisp as stages
from tamis.pipelines.tail import SELECTION_COLUMNS
from tamis.runners.config import key
from tamis.runners.jobs.base import (
    Context,
    Estimates,
    Job,
    Launch,
    Method,
    Plan,
    auto_shards,
    header,
    token_unit,
)
from tamis.runners.jobs.checks import check_cache_inputs
from tamis.runners.jobs.compose import embed_and_cluster, needs_work
from tamis.runners.sections import (
    Budget,
    Common,
    Corpus,
    EmbedSection,
    Sharded,
    Specialist,
    TreeSection,
    check_weights,
)
from tamis.selectors import importance as imp
from tamis.selectors.clusters import MAX_LEVELS
from tamis.storage import clusters as artifacts
from tamis.storage import manifest as mf
from tamis.storage.cache import Cache, open_cache, read_documents, same_model
from tamis.storage.errors import CacheError, ConfigError, PlanError
from tamis.storage.files import join


@dataclass(frozen=True, kw_only=True)
class CrispConfig(Sharded, Common, Corpus):
    """``tamis crisp``: clustered importance sampling of a pool to a token budget."""

    specialists: tuple[Specialist, ...] = key(
        doc="a list of `{embeddings, weight}` (or `{inputs, weight}`): the target histogram "
            "is Σ weight_t P(c | specialist_t)")
    budget: Budget = key(doc="`tokens: N`, counted by the embedding model's tokenizer")
    embeddings: str | None = key(None, "the pool's embedding cache; none: embedded on the way")
    clusters: str | None = key(None, "a tamis cluster output on that cache; none: fitted here")
    work: str | None = key(None, "where caches made on the way go; none: `<output>-work`")
    embed: EmbedSection = key(factory=EmbedSection, doc="how text is embedded on the way")
    tree: TreeSection = key(factory=TreeSection, doc="how the tree is fitted on the way")
    level: int | None = key(None, "the tree level of the histograms; none: the finest")
    smoothing: float = key(0.0, "additive smoothing of the target histogram")
    repetition_cap: int = key(16, "the most times one record may be drawn")
    sampler: Literal["poisson", "without_replacement"] = key(
        "without_replacement", "records repeat only once their cluster is exhausted; "
                               "`poisson`: the paper's draws with replacement")
    soft_clusters: int = key(0, "k > 0: a specialist document spreads over the k children of "
                                "its routed parent most like it")
    soft_temperature: float = key(0.05, "the spread's temperature: ∝ exp(cosine / it)")
    inject_generic: float = key(0.0, "a share of the budget drawn uniformly from the pool")

    def check(self) -> None:
        if self.soft_clusters < 0 or self.soft_temperature <= 0:
            raise ConfigError(f"'soft_clusters' must be >= 0 and 'soft_temperature' > 0, got "
                              f"{self.soft_clusters} and {self.soft_temperature}")
        if not self.specialists:
            raise ConfigError("'specialists' must name at least one embedding cache")
        self.budget.require_tokens("crisp")
        if self.repetition_cap < 1:
            raise ConfigError(f"'repetition_cap' must be >= 1, got {self.repetition_cap}")
        if not 0 <= self.inject_generic < 1:
            raise ConfigError(f"'inject_generic' must be in [0, 1), got {self.inject_generic}")
        if self.smoothing < 0:
            raise ConfigError(f"'smoothing' must be >= 0, got {self.smoothing}")
        check_weights(self.specialists)


def reserved_columns() -> list[str]:
    return [*SELECTION_COLUMNS, *[f"cluster_l{i}" for i in range(MAX_LEVELS)]]


def plan(config: CrispConfig, context: Context) -> Plan[stages.CrispSpec]:
    if config.embeddings is None or config.clusters is None or any(
            s.embeddings is None for s in config.specialists):
        raise PlanError("crisp needs its embeddings and clusters (tamis crisp makes them "
                        "on the way; this job alone cannot)")
    inputs = config.read_plan(reserved_columns=reserved_columns())
    pool = open_cache(config.embeddings)
    check_cache_inputs(inputs, pool, every=True)
    tree_manifest = _cluster_manifest(config.clusters, pool)
    model = artifacts.load_model(join(config.clusters, artifacts.MODEL))
    level = model.levels - 1 if config.level is None else config.level
    if not 0 <= level < model.levels:
        raise PlanError(f"level {level} is not a level of the tree in {config.clusters} "
                        f"(levels 0 to {model.levels - 1})")
    n_clusters = model.n_clusters(level)
    pool_rows, pool_tokens = artifacts.read_counts(config.clusters, level)
    histograms = [_specialist_histogram(s.embeddings, pool, model, level, config.soft_clusters,
                                        config.soft_temperature)
                  for s in config.specialists]
    target = imp.mix(histograms, [s.weight for s in config.specialists], config.smoothing)
    covered = imp.coverage(target, pool_tokens)
    if covered == 0:
        raise PlanError("no specialist record falls in a cluster the pool has records in: "
                        "nothing to select")
    warnings = list(inputs.warnings)
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
    shards = config.num_shards or auto_shards(inputs.bytes * fraction)
    opening = header("crisp", config, warnings, {
        "method": "crisp", "sampler": config.sampler, "level": level, "n_clusters": n_clusters,
        "soft_clusters": config.soft_clusters,
        "soft_temperature": config.soft_temperature if config.soft_clusters else None,
        "budget_tokens": int(budget), "expected_tokens": round(expected),
        "expected_max_rate": round(float(need.max()), 3), "repetition_cap": config.repetition_cap,
        "coverage": round(covered, 6), "smoothing": config.smoothing,
        "inject_generic": eps, "token_unit": token_unit(pool),
        "specialists": [{"embeddings": s.embeddings, "weight": s.weight,
                         "documents": int(hh.sum())}
                        for s, hh in zip(config.specialists, histograms, strict=True)],
        "clusters": config.clusters, "cluster_fit": tree_manifest["clusters"]["sample_rows"],
    })
    spec = stages.CrispSpec(
        inputs=inputs, out_dir=context.out_dir(config), header=opening, seed=config.seed,
        num_shards=shards, model_path=join(config.clusters, artifacts.MODEL),
        levels=model.levels, level=level, rates=tuple(rates.tolist()),
        weights=tuple(imp.weights(target, pool_tokens).tolist()), cap=config.repetition_cap,
        sampler=config.sampler, target=tuple(target.tolist()),
        pool_tokens=tuple(int(t) for t in pool_tokens), cache_shards=pool.by_batch())
    estimates = Estimates(
        input_rows=inputs.rows, input_bytes=inputs.bytes, input_tokens=int(total),
        output_rows=round(fraction * (inputs.rows or 0)), output_tokens=round(expected),
        output_bytes=round(inputs.bytes * fraction), num_shards=shards)
    summary = (
        f"clusters: level {level} of {config.clusters} ({n_clusters:,} clusters), "
        f"{len(config.specialists)} specialist set(s), {int(sum(h.sum() for h in histograms)):,}"
        f" documents, coverage {covered:.1%}",
        f"budget: {budget:,.0f} tokens (expected {expected:,.0f}); expected draws per record: "
        f"up to {need.max():.2f} (cap {config.repetition_cap}, {config.sampler.replace('_', ' ')}"
        f"); generic share {eps:.1%}",
    )
    return Plan(spec, opening, estimates, inputs, summary)


def _cluster_manifest(folder: str, pool: Cache) -> dict:
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


def _specialist_histogram(path: str, pool: Cache, model, level: int, soft: int = 0,
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
        raise PlanError(f"specialist set {path} is empty: it holds no document")
    return counts


def prerequisites(config: CrispConfig, data: dict, launch: Launch):
    """Embed and cluster what the configuration gives no cache for. Everything crisp can check
    without the caches (its inputs, the level) is checked first, so that a mistake does not
    surface after hours of embedding."""
    if needs_work(config):
        config.read_plan(reserved_columns=reserved_columns())
        if config.clusters is None and config.level is not None and not (
                0 <= config.level < config.tree.levels):
            raise ConfigError(f"'level' {config.level} is not a level of a tree of "
                              f"{config.tree.levels} levels (0 to {config.tree.levels - 1})")
    return (yield from embed_and_cluster(config, data, launch))


JOB = Job(
    name="crisp", summary="clustered importance sampling of a pool to a token budget",
    config=CrispConfig, plan=plan, stages=stages.build, prerequisites=prerequisites,
    methods=(
        Method("crisp", "clustered importance sampling (the crisp job)"),
        # CRISP at the finest level, soft specialist histograms, no repeats before exhaustion
        Method("hybrid", "crisp with soft histograms (8 children), drawn without replacement",
               {"sampler": "without_replacement", "soft_clusters": 8}),
    ))
