"""Caches made on the way: a job that starts from text (crisp without ``embeddings``,
``clusters`` or a specialist's ``embeddings``) has the ``embed`` and ``cluster`` jobs make
them first, in a work folder (``<output>-work`` unless ``work`` says otherwise).

Those are caches: a rerun embeds nothing new and refits the tree only when the pool's vectors
or the tree settings changed. :func:`embed_and_cluster` is the steps' generator a job's
``prerequisites`` returns (see :class:`~tamis.runners.jobs.base.Step`).
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Generator

from tamis.runners.config import config_hash, load, to_dict
from tamis.runners.jobs.base import Launch, Step
from tamis.runners.jobs.cluster import ClusterConfig
from tamis.storage import manifest as mf
from tamis.storage.cache import open_cache
from tamis.storage.files import join

log = logging.getLogger(__name__)


def needs_work(config) -> bool:
    return (config.embeddings is None or config.clusters is None
            or any(s.embeddings is None for s in config.specialists))


def embed_and_cluster(config, data: dict, launch: Launch) -> Generator[Step, None, dict | None]:
    """Embed the pool and the specialist sets that have no cache, fit the tree if there is
    none; return the job's configuration data with the caches filled in (None: a dry run that
    cannot plan the job until they exist)."""
    if not needs_work(config):
        return data
    if not launch.dry_run:
        launch.check_output(config.output)
    work = config.work or config.output.rstrip("/\\") + "-work"
    data = copy.deepcopy(data)
    settings = to_dict(config.embed)
    if config.embeddings is not None:  # specialists are embedded as the given pool cache was
        made = open_cache(config.embeddings).manifest["config"]
        settings = {k: made.get(k, v) for k, v in settings.items()}
    common = {"text_column": config.text_column, "id_column": config.id_column,
              "seed": config.seed, **settings}
    if config.embeddings is None:
        data["embeddings"] = join(work, "pool-emb")
        yield Step("embed", {**common, "inputs": list(config.inputs),
                             "output": data["embeddings"]})
    pool_ready = finished(data["embeddings"], "embed")
    lsi_model = _lsi_model(data["embeddings"]) if pool_ready else None
    for i, specialist in enumerate(config.specialists):
        if specialist.embeddings is not None:
            continue
        out = join(work, f"specialist-{i}")
        sub = {**common, "inputs": list(specialist.inputs), "output": out}
        if config.embed.embedder == "lsi":
            if lsi_model is None:
                log.info("specialist %d: embedded with the pool's LSI model once it exists", i)
                continue
            sub["lsi"] = {**sub["lsi"], "model": lsi_model}
        yield Step("embed", sub)
        data["specialists"][i] = {"embeddings": out, "weight": specialist.weight}
    if config.clusters is None:
        data["clusters"] = join(work, "clusters")
        tree = {"embeddings": data["embeddings"], "output": data["clusters"],
                "seed": config.seed, **to_dict(config.tree)}
        if not pool_ready:
            log.info("cluster: planned once the pool's embeddings exist")
        elif not _up_to_date(tree):
            yield Step("cluster", tree, overwrite=True)
    ready = finished(data["clusters"], "cluster") and all(
        "embeddings" in s and finished(s["embeddings"], "embed") for s in data["specialists"])
    if launch.dry_run and not ready:
        log.info("planned once the embeddings and clusters above exist")
        return None
    return data


def finished(folder: str, job: str) -> bool:
    try:
        return mf.load_manifest(folder).get("job") == job
    except (mf.VerifyError, ValueError):
        return False


def _lsi_model(cache: str) -> str | None:
    model = mf.load_manifest(cache)["model"]
    artifact = model.get("artifact")
    if artifact is None:
        return None
    return artifact if "://" in artifact or os.path.isabs(artifact) else join(cache, artifact)


def _up_to_date(tree: dict) -> bool:
    """A tree already fitted with these settings on this very cache."""
    if not finished(tree["output"], "cluster"):
        return False
    done = mf.load_manifest(tree["output"])
    cache = mf.load_manifest(tree["embeddings"])
    same_input = (sorted(i["sha256"] for i in done["inputs"])
                  == sorted(s["sha256"] for s in cache["outputs"]["shards"]))
    return same_input and done["config_hash"] == config_hash(load(ClusterConfig, tree))
