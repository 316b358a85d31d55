"""The jobs the CLI can run: each turns its configuration into an input plan, the spec of
its pipeline, and the estimates a dry run prints."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import apache_beam as beam
from tamis.pipelines import sample
from tamis.pipelines.inputs import InputPlan, plan_inputs
from tamis.runners.config import SampleConfig, config_hash, to_dict

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
class Job:
    name: str
    help: str
    config: type
    prepare: Callable[[Any], Prepared]
    build: Callable[[beam.Pipeline, Prepared], None]


def header(job: str, config: Any) -> dict:
    return {"job": job, "config": to_dict(config), "config_hash": config_hash(config),
            "seed": config.seed}


def auto_shards(expected_bytes: float) -> int:
    return max(1, min(MAX_AUTO_SHARDS, math.ceil(expected_bytes / SHARD_TARGET_BYTES)))


def prepare_sample(config: SampleConfig) -> Prepared:
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


JOBS = {
    "sample": Job("sample", "uniform sample to a row or token budget, optionally stratified",
                  SampleConfig, prepare_sample, build_sample),
}
