"""``tamis cluster``: a balanced hierarchical k-means tree fitted on a sample of an embedding
cache, and every document's cluster at every level."""

from __future__ import annotations

from dataclasses import dataclass

from tamis.pipelines import cluster as stages
from tamis.runners.config import key
from tamis.runners.jobs.base import Context, Estimates, Job, Plan, header
from tamis.runners.sections import Common, TreeSection
from tamis.storage.cache import open_cache
from tamis.storage.errors import PlanError


@dataclass(frozen=True, kw_only=True)
class ClusterConfig(TreeSection, Common):
    """``tamis cluster``: balanced hierarchical k-means over an embedding cache."""

    embeddings: str = key(doc="an embedding cache (a tamis embed output)")


def plan(config: ClusterConfig, context: Context) -> Plan[stages.ClusterSpec]:
    cache = open_cache(config.embeddings)
    documents = sum(e["documents"] for e in cache.shards)
    if documents < config.branching:
        raise PlanError(f"{cache.path} holds {documents} documents, fewer than branching "
                        f"{config.branching}")
    opening = header("cluster", config)
    spec = stages.ClusterSpec(cache=cache, out_dir=context.out_dir(config), header=opening,
                              tree=config.tree(config.seed))
    sizes = [config.branching ** (i + 1) for i in range(config.levels)]
    tokens = cache.manifest["outputs"]["tokens"]
    estimates = Estimates(
        input_rows=documents, input_bytes=sum(e["bytes"] for e in cache.shards),
        input_tokens=tokens, output_rows=documents, output_tokens=tokens,
        output_bytes=documents * 40, num_shards=len(cache.shards))
    summary = (f"embeddings: {cache.path} ({documents:,} documents, {cache.dim}-d, "
               f"{cache.model['name']})",
               f"tree: {' x '.join([str(config.branching)] * config.levels)} = "
               f"{sizes[-1]:,} leaves (clusters per level: {', '.join(f'{n:,}' for n in sizes)})"
               f", fitted on {min(config.sample_size, documents):,} documents, balance "
               f"{config.balance}")
    return Plan(spec, opening, estimates, None, summary)


JOB = Job(
    name="cluster", summary="fit a balanced hierarchical k-means tree on an embedding cache "
                            "and assign every document",
    config=ClusterConfig, plan=plan, stages=stages.build)
