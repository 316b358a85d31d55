"""What a job is to the launcher: its configuration, the plan it makes before any work, and
the hook that adds its Beam stages.

A job module (``runners/jobs/<job>.py``) defines its configuration dataclass, a ``plan``
function (every check that needs no work, the typed spec of its pipeline, the estimates a dry
run prints) and one :class:`Job` value, listed once in :mod:`tamis.runners.jobs`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from tamis.pipelines.progress import clock
from tamis.runners.config import config_hash, to_dict
from tamis.storage.inputs import InputPlan
from tamis.storage.manifest import Header

SHARD_TARGET_BYTES = 128 << 20
MAX_AUTO_SHARDS = 1024

S = TypeVar("S")


@dataclass(frozen=True)
class Context:
    """Where a job will run: enough to size its workers and to count its progress."""

    runner: str = "local"
    workers: int = 1
    cores: int = 1
    progress_dir: str | None = None  # where workers count progress (local runner); None: not
    output: str | None = None  # where the job writes (a staging folder); None: its output

    def out_dir(self, config) -> str:
        """The folder a job's stages write into: its staging folder while it runs."""
        return self.output or config.output


@dataclass(frozen=True)
class Estimates:
    """What a dry run says a job will read and write (from footers and small artifacts)."""

    input_rows: int | None
    input_bytes: int
    input_tokens: int
    output_rows: int | None
    output_tokens: int | None
    output_bytes: int
    num_shards: int
    docs_per_second: float | None = None
    seconds: float | None = None
    progress_total: int | None = None  # the long stage's units, for the progress display
    progress_rows: int | None = None  # rows the units are made from: refines the total


@dataclass(frozen=True)
class Plan(Generic[S]):
    """A job ready to build: everything checked, nothing read beyond footers and artifacts.

    ``spec`` is everything its pipeline needs; nothing changes it after planning."""

    spec: S
    header: Header
    estimates: Estimates
    inputs: InputPlan | None = None  # the main inputs, listed by the dry run
    summary: tuple[str, ...] = ()  # lines for the dry run

    @property
    def warnings(self) -> tuple[str, ...]:
        return self.header.warnings


@dataclass(frozen=True)
class Method:
    """A ``tamis select`` method served by a job: the keys it sets before the config's own."""

    name: str
    summary: str
    defaults: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Step:
    """A job to run before the one asked for (crisp from text: embed, then cluster).

    ``overwrite`` lets the step replace its own earlier output (a tree refitted)."""

    job: str
    data: dict
    overwrite: bool = False


@dataclass(frozen=True)
class Launch:
    """What a job's prerequisites may ask of the launcher before any step runs."""

    dry_run: bool
    check_output: Callable[[str], None]  # refuses an output folder that is in use


#: ``prerequisites(config, data, launch)``: yields the steps to run first, one at a time (each
#: runs before the generator resumes), and returns the configuration data of the job itself,
#: or None when a dry run cannot plan it yet.
Prerequisites = Callable[[Any, dict, Launch], Generator[Step, None, dict | None]]


@dataclass(frozen=True)
class Job:
    """One job of the registry."""

    name: str
    summary: str
    config: type
    plan: Callable[[Any, Context], Plan]
    stages: Callable[[Any, Any], None]  # ``pipelines.<job>.build(pipeline, spec)``
    methods: tuple[Method, ...] = ()
    prerequisites: Prerequisites | None = None
    reuses_output: bool = False  # a rerun may find its own earlier outputs and keep them
    progress: tuple[str, str] | None = None  # (stage, label) of the long stage
    local_workers: int | None = None  # local workers when --workers is not given (None: cores)

    def build(self, pipeline, plan: Plan) -> None:
        """Add the job's stages to ``pipeline``."""
        self.stages(pipeline, plan.spec)


def header(job: str, config: Any, warnings=(), selector: Mapping | None = None) -> Header:
    return Header(job, to_dict(config), config_hash(config), config.seed, tuple(warnings),
                  dict(selector or {}))


def auto_shards(expected_bytes: float) -> int:
    return max(1, min(MAX_AUTO_SHARDS, math.ceil(expected_bytes / SHARD_TARGET_BYTES)))


def token_unit(cache) -> str:
    """What a token is in an embedding cache's counts."""
    return ("words and punctuation" if cache.model["embedder"] == "lsi"
            else f"{cache.model['name']} tokenizer")


def duration(seconds: float | None) -> str:
    """A wall time estimate as ``1h05m`` or ``4m30s``."""
    if seconds is None:
        return "unknown (JSONL row counts are not in a footer)"
    return clock(seconds)
