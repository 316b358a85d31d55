"""The jobs the CLI can run: each turns its configuration into an input plan, the spec of
its pipeline, and the estimates a dry run prints."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import apache_beam as beam

from tamis.embeddings.sentence import model_info
from tamis.pipelines import embed, sample
from tamis.pipelines.inputs import InputPlan, plan_inputs
from tamis.runners.config import EmbedConfig, SampleConfig, config_hash, to_dict

SHARD_TARGET_BYTES = 128 << 20
MAX_AUTO_SHARDS = 1024


@dataclass
class Prepared:
    """A job ready to build: everything checked, nothing read beyond footers."""

    plan: InputPlan
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
        out_dir=config.output, embedder=config.embedder, model_name=m.name, model_path=path,
        model_hash=content, dim=dim, max_seq_length=seq, window_tokens=config.window_tokens,
        mode=config.mode, normalize=m.normalize, device=m.device, precision=m.precision,
        batch_size=m.batch_size, threads=threads, max_doc_chars=config.max_doc_chars,
        seed=config.seed, trust_remote_code=m.trust_remote_code, lsi_dim=config.lsi.dim,
        lsi_max_features=config.lsi.max_features, lsi_min_df=config.lsi.min_df,
        lsi_fit_sample=config.lsi.fit_sample,
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


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown (JSONL row counts are not in a footer)"
    minutes, s = divmod(int(round(seconds)), 60)
    h, m = divmod(minutes, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


def build_embed(pipeline: beam.Pipeline, prepared: Prepared) -> None:
    embed.build(pipeline, prepared.plan, prepared.spec, prepared.header)


JOBS = {
    "sample": Job("sample", "uniform sample to a row or token budget, optionally stratified",
                  SampleConfig, prepare_sample, build_sample),
    "embed": Job("embed", "embed documents (token windows) into a reusable vector cache",
                 EmbedConfig, prepare_embed, build_embed, reuses_output=True,
                 progress=(embed.PROGRESS_STAGE, "embedded windows (total estimated)"),
                 # torch spreads one model call over every core; worker processes would only
                 # split the cores, and each row group is one worker's work
                 local_workers=1),
}
