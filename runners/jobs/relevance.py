"""``tamis relevance``: the pool records nearest the specialist sample (mean cosine to their
k nearest specialist vectors), each at most once, to a token budget; optionally diversified by
maximal marginal relevance (MMR)."""

from __future__ import annotations

from dataclasses import dataclass

from tamis.embeddings.extras import require
from tamis.pipelines import relevance as stages
from tamis.pipelines.tail import SELECTION_COLUMNS
from tamis.runners.config import defaults_of, key
from tamis.runners.jobs.base import (
    Context,
    Estimates,
    Job,
    Method,
    Plan,
    auto_shards,
    header,
    token_unit,
)
from tamis.runners.jobs.checks import check_cache_inputs, specialist_documents
from tamis.runners.sections import Budget, Common, Corpus, Sharded, Specialist, check_weights
from tamis.selectors.relevance import NeighbourIndex, knn_relevance, mmr
from tamis.storage.cache import open_cache
from tamis.storage.errors import ConfigError, PlanError

_INDEX = defaults_of(NeighbourIndex)


@dataclass(frozen=True, kw_only=True)
class RelevanceConfig(Sharded, Common, Corpus):
    """``tamis relevance``: the pool records most similar to the specialist sample."""

    embeddings: str = key(doc="the pool's embedding cache (tamis embed on `inputs`)")
    specialists: tuple[Specialist, ...] = key(
        doc="a list of `{embeddings, weight}`: caches made with the pool's model")
    budget: Budget = key(doc="`tokens: N` of the embedding model, as the cache counts them")
    k: int = key(defaults_of(knn_relevance)["k"], "specialist neighbours a record's relevance "
                                                  "is averaged over")
    mmr_lambda: float | None = key(None, "none: relevance only; in [0, 1]: MMR with this λ")
    mmr_candidates: float = key(3.0, "MMR picks among the most relevant (this × budget) "
                                     "tokens")
    max_candidates: int = key(200_000, "MMR holds its candidates in one worker; the launcher "
                                       "refuses more")
    exact_up_to: int = key(_INDEX["exact_up_to"], "specialist vectors searched exactly (FAISS "
                                                  "flat); beyond, an IVF index")
    nprobe: int = key(_INDEX["nprobe"], "IVF lists visited per query")

    def check(self) -> None:
        if not self.specialists or any(s.embeddings is None for s in self.specialists):
            raise ConfigError("'specialists' must name at least one embedding cache "
                              "('embeddings' of each)")
        self.budget.require_tokens("relevance")
        if self.k < 1:
            raise ConfigError(f"'k' must be >= 1, got {self.k}")
        if self.mmr_lambda is not None and not 0 <= self.mmr_lambda <= 1:
            raise ConfigError(f"'mmr_lambda' must be in [0, 1], got {self.mmr_lambda}")
        if self.mmr_candidates < 1:
            raise ConfigError(f"'mmr_candidates' must be >= 1, got {self.mmr_candidates}")
        check_weights(self.specialists)


def plan(config: RelevanceConfig, context: Context) -> Plan[stages.RelevanceSpec]:
    require("faiss")
    inputs = config.read_plan(reserved_columns=[*SELECTION_COLUMNS, stages.SCORE, stages.RANK])
    pool = open_cache(config.embeddings)
    check_cache_inputs(inputs, pool)
    documents = specialist_documents(pool, config.specialists)
    total = float(pool.manifest["outputs"]["tokens"])
    budget = int(config.budget.amount)
    fraction = 1.0 if not total else min(1.0, budget / total)
    diverse = config.mmr_lambda is not None
    # documents in the pool: from the footers, or (JSONL) at most the cache's windows
    documents_in_pool = inputs.rows or sum(e["rows"] for e in pool.shards)
    candidates = min(total, budget * config.mmr_candidates) / max(total, 1) * documents_in_pool
    if diverse and candidates > config.max_candidates:
        raise PlanError(f"MMR would hold about {candidates:,.0f} candidate records in one "
                        f"worker (max_candidates {config.max_candidates:,}): lower "
                        f"mmr_candidates or the budget, or raise max_candidates")
    shards = config.num_shards or auto_shards(inputs.bytes * fraction)
    index = ("exact" if documents <= config.exact_up_to
             else f"ivf (nprobe {config.nprobe})")
    opening = header("relevance", config, inputs.warnings, {
        "method": "relevance", "k": config.k, "budget_tokens": budget,
        "mmr_lambda": config.mmr_lambda,
        "mmr_candidate_tokens": round(budget * config.mmr_candidates) if diverse else None,
        "index": index, "token_unit": token_unit(pool),
        "specialists": [{"embeddings": s.embeddings, "weight": s.weight}
                        for s in config.specialists]})
    spec = stages.RelevanceSpec(
        inputs=inputs, out_dir=context.out_dir(config), header=opening, seed=config.seed,
        num_shards=shards, budget=budget,
        specialists=tuple((s.embeddings, s.weight) for s in config.specialists), k=config.k,
        exact_up_to=config.exact_up_to, nprobe=config.nprobe, mmr_lambda=config.mmr_lambda,
        mmr_candidates=config.mmr_candidates, cache_shards=pool.by_batch())
    estimates = Estimates(
        input_rows=inputs.rows, input_bytes=inputs.bytes, input_tokens=int(total),
        output_rows=round(fraction * (inputs.rows or 0)), output_tokens=min(budget, int(total)),
        output_bytes=round(inputs.bytes * fraction), num_shards=shards)
    how = (f"MMR (λ {config.mmr_lambda}) over the most relevant {config.mmr_candidates:g}× "
           f"budget (about {candidates:,.0f} records)" if diverse else "highest relevance first")
    summary = (f"relevance: mean cosine to the {config.k} nearest of {documents:,} specialist "
               f"vectors ({index}), {len(config.specialists)} set(s)",
               f"budget: {budget:,} tokens, each record at most once; {how}")
    return Plan(spec, opening, estimates, inputs, summary)


JOB = Job(
    name="relevance", summary="the records nearest the specialist sample (kNN cosine), "
                              "optionally diversified by MMR, to a token budget",
    config=RelevanceConfig, plan=plan, stages=stages.build,
    methods=(
        Method("relevance", "the records nearest the specialist sample (the relevance job)"),
        Method("mmr", "relevance diversified by maximal marginal relevance",
               {"mmr_lambda": defaults_of(mmr)["lam"]}),
    ))
