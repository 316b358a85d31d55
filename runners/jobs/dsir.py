"""``tamis dsir``: DSIR importance resampling: hashed word unigrams and bigrams, the log
importance weight against the pool, Gumbel top-k to a token budget."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tamis.pipelines import dsir as stages
from tamis.pipelines.tail import SELECTION_COLUMNS
from tamis.runners.config import defaults_of, key
from tamis.runners.jobs.base import Context, Estimates, Job, Method, Plan, auto_shards, header
from tamis.runners.sections import Budget, Common, Corpus, Sharded
from tamis.selectors.dsir import HashedNgramSelector
from tamis.storage.errors import ConfigError, PlanError

_DSIR = defaults_of(HashedNgramSelector)


@dataclass(frozen=True, kw_only=True)
class DsirConfig(Sharded, Common, Corpus):
    """``tamis dsir``: DSIR-style hashed n-gram importance resampling to a token budget."""

    target: tuple[str, ...] = key(doc="the specialist text (files, folders or globs)")
    budget: Budget = key(doc="`tokens: N`")
    num_buckets: int = key(_DSIR["num_buckets"], "hash buckets of the n-gram features")
    ngrams: Literal[1, 2] = key(_DSIR["ngrams"], "1: words; 2: words and bigrams")
    min_words: int = key(100, "shorter records are dropped as too_short (DSIR's rule)")

    def check(self) -> None:
        if not self.target:
            raise ConfigError("'inputs' and 'target' must each name at least one file")
        self.budget.require_tokens("dsir")
        if self.num_buckets < 1 or self.min_words < 0:
            raise ConfigError("'num_buckets' must be >= 1 and 'min_words' >= 0")


def plan(config: DsirConfig, context: Context) -> Plan[stages.DsirSpec]:
    inputs = config.read_plan(reserved_columns=[*SELECTION_COLUMNS, stages.SCORE])
    target = config.read_plan(config.target)
    if target.rows == 0:
        raise PlanError(f"the target set {', '.join(config.target)} has no row")
    tokens = inputs.estimated_tokens()
    fraction = 1.0 if not tokens else min(1.0, config.budget.amount / tokens)
    shards = config.num_shards or auto_shards(inputs.bytes * fraction)
    opening = header("dsir", config, [*inputs.warnings, *target.warnings],
                     {"target_rows": target.rows})
    spec = stages.DsirSpec(
        inputs=inputs, out_dir=context.out_dir(config), header=opening, seed=config.seed,
        num_shards=shards, target=target, budget=config.budget.amount,
        num_buckets=config.num_buckets, ngrams=config.ngrams, min_words=config.min_words)
    estimates = Estimates(
        input_rows=inputs.rows, input_bytes=inputs.bytes, input_tokens=tokens,
        output_rows=None if inputs.rows is None else round(inputs.rows * fraction),
        output_tokens=config.budget.amount, output_bytes=round(inputs.bytes * fraction),
        num_shards=shards)
    grams = "unigrams and bigrams" if config.ngrams == 2 else "unigrams"
    summary = (f"target: {len(target.files)} file(s), {target.rows} rows; word {grams} in "
               f"{config.num_buckets:,} buckets; records under {config.min_words} words "
               f"dropped",
               f"budget: {config.budget.amount:,} tokens, Gumbel top-k, seed {config.seed}")
    return Plan(spec, opening, estimates, inputs, summary)


JOB = Job(
    name="dsir", summary="DSIR hashed n-gram importance resampling to a token budget",
    config=DsirConfig, plan=plan, stages=stages.build,
    methods=(Method("dsir", "DSIR importance resampling (the dsir job)"),))
