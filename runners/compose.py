"""``crisp`` from text: embed the pool and the specialist sets, fit the tree, then sample.

A crisp configuration may name caches (``embeddings``, ``clusters``, ``specialists[].
embeddings``) or leave them out; what is missing is made on the way, by the ``embed`` and
``cluster`` jobs, in a work folder (``<output>-work`` unless ``work`` says otherwise). Those
are caches: a rerun embeds nothing new and refits the tree only when its inputs or settings
changed.
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Callable

from tamis.pipelines import manifest as mf
from tamis.pipelines.files import join
from tamis.pipelines.inputs import plan_inputs
from tamis.runners import config as cfg
from tamis.runners.jobs import crisp_columns
from tamis.selectors.clusters import MAX_LEVELS

log = logging.getLogger(__name__)

#: ``run(job, config data, overwrite) -> exit code``
Run = Callable[[str, dict, bool], int]


def needs_work(config: cfg.CrispConfig) -> bool:
    return (config.embeddings is None or config.clusters is None
            or any(s.embeddings is None for s in config.specialists))


def run_crisp(data: dict, run: Run, dry_run: bool,
              check_output: Callable[[str], None]) -> int:
    """Run the jobs a crisp configuration needs, then crisp itself. Everything crisp can check
    without the caches (its inputs, its output folder, the level) is checked first, so that a
    mistake does not surface after hours of embedding."""
    config = cfg.load(cfg.CrispConfig, data)  # every key checked before any work
    if not needs_work(config):
        return run("crisp", data, False)
    plan_inputs(config.inputs, config.text_column, config.id_column,
                reserved_columns=crisp_columns(MAX_LEVELS))
    if config.clusters is None and config.level is not None and not (
            0 <= config.level < config.tree.levels):
        raise cfg.ConfigError(f"'level' {config.level} is not a level of a tree of "
                              f"{config.tree.levels} levels (0 to {config.tree.levels - 1})")
    if not dry_run:
        check_output(config.output)
    work = config.work or config.output.rstrip("/\\") + "-work"
    data = copy.deepcopy(data)
    settings = cfg.to_dict(config.embed)
    common = {"text_column": config.text_column, "id_column": config.id_column,
              "seed": config.seed, **settings}
    if config.embeddings is None:
        data["embeddings"] = join(work, "pool-emb")
        code = run("embed", {**common, "inputs": list(config.inputs),
                             "output": data["embeddings"]}, False)
        if code:
            return code
    pool_ready = _finished(data["embeddings"], "embed")
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
        code = run("embed", sub, False)
        if code:
            return code
        data["specialists"][i] = {"embeddings": out, "weight": specialist.weight}
    if config.clusters is None:
        data["clusters"] = join(work, "clusters")
        tree = {"embeddings": data["embeddings"], "output": data["clusters"],
                "seed": config.seed, **cfg.to_dict(config.tree)}
        if not pool_ready:
            log.info("cluster: planned once the pool's embeddings exist")
        elif not _up_to_date(tree):
            code = run("cluster", tree, True)
            if code:
                return code
    ready = _finished(data["clusters"], "cluster") and all(
        "embeddings" in s and _finished(s["embeddings"], "embed") for s in data["specialists"])
    if dry_run and not ready:
        log.info("crisp: planned once the embeddings and clusters above exist")
        return 0
    return run("crisp", data, False)


def _finished(folder: str, job: str) -> bool:
    try:
        return mf.load_manifest(folder).get("job") == job
    except (mf.VerifyError, ValueError):
        return False


def _lsi_model(cache: str) -> str | None:
    model = mf.load_manifest(cache)["model"]
    artifact = model.get("artifact")
    if artifact is None:
        return None
    return artifact if os.path.isabs(artifact) else join(cache, artifact)


def _up_to_date(tree: dict) -> bool:
    """A tree already fitted with these settings on this very cache."""
    if not _finished(tree["output"], "cluster"):
        return False
    done = mf.load_manifest(tree["output"])
    cache = mf.load_manifest(tree["embeddings"])
    same_input = (sorted(i["sha256"] for i in done["inputs"])
                  == sorted(s["sha256"] for s in cache["outputs"]["shards"]))
    return same_input and done["config_hash"] == cfg.config_hash(
        cfg.load(cfg.ClusterConfig, tree))
