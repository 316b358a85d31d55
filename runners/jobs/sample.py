"""``tamis sample``: a uniform sample of a corpus to a row or token budget, optionally
stratified; the uniform baseline of the selection methods."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tamis.pipelines import sample as stages
from tamis.pipelines.tail import SELECTION_COLUMNS
from tamis.runners.config import key
from tamis.runners.jobs.base import Context, Estimates, Job, Method, Plan, auto_shards, header
from tamis.runners.sections import Budget, Common, Corpus, Sharded


@dataclass(frozen=True, kw_only=True)
class SampleConfig(Sharded, Common, Corpus):
    """``tamis sample``: a uniform sample of a corpus to a row or token budget."""

    budget: Budget = key(doc="exactly one of `rows: N` or `tokens: N`")
    stratify_by: str | None = key(None, "a column whose values split the budget")
    allocation: Literal["proportional", "equal"] = key(
        "proportional", "`proportional` keeps each stratum's share; `equal` balances strata "
                        "and the `weight` column undoes it")


def plan(config: SampleConfig, context: Context) -> Plan[stages.SampleSpec]:
    inputs = config.read_plan(
        required_columns=[config.stratify_by] if config.stratify_by else [],
        reserved_columns=SELECTION_COLUMNS,
    )
    tokens = inputs.estimated_tokens()
    rows = inputs.rows
    budget = config.budget
    if budget.unit == "rows":
        fraction = 1.0 if not rows else min(1.0, budget.amount / rows)
    else:
        fraction = 1.0 if not tokens else min(1.0, budget.amount / tokens)
    out_bytes = inputs.bytes * fraction
    shards = config.num_shards or auto_shards(out_bytes)
    opening = header("sample", config, inputs.warnings)
    spec = stages.SampleSpec(
        inputs=inputs, out_dir=context.out_dir(config), header=opening, seed=config.seed,
        num_shards=shards, budget=budget.amount, unit=budget.unit,
        stratify_by=config.stratify_by, allocation=config.allocation)
    estimates = Estimates(
        input_rows=rows, input_bytes=inputs.bytes, input_tokens=tokens,
        output_rows=None if rows is None else round(rows * fraction),
        output_tokens=round(tokens * fraction), output_bytes=round(out_bytes), num_shards=shards)
    strat = (f", stratified by '{config.stratify_by}' ({config.allocation})"
             if config.stratify_by else "")
    summary = (f"budget: {budget.amount:,} {budget.unit}{strat}, seed {config.seed}",)
    return Plan(spec, opening, estimates, inputs, summary)


JOB = Job(
    name="sample", summary="uniform sample to a row or token budget, optionally stratified",
    config=SampleConfig, plan=plan, stages=stages.build,
    methods=(Method("uniform", "the sample job: a uniform sample, the baseline"),))
