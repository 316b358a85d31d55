"""The registry: every job tamis runs, in the order the CLI lists them, and the methods of
``tamis select``.

Adding a job is a module here (its configuration, plan and :class:`~.base.Job`), its Beam
stages in ``pipelines/<job>.py``, and one line in :data:`JOBS`; the CLI, its help and
``select``'s methods come from this list (docs/architecture.md has the checklist).
"""

from __future__ import annotations

from tamis.runners.jobs import (
    bilingual,
    cluster,
    crisp,
    dsir,
    embed,
    quality,
    relevance,
    rephrase,
    sample,
)
from tamis.runners.jobs.base import Job, Method

JOBS: tuple[Job, ...] = (
    sample.JOB,
    embed.JOB,
    cluster.JOB,
    crisp.JOB,
    dsir.JOB,
    relevance.JOB,
    quality.JOB,
    bilingual.JOB,
    rephrase.JOB,
)
BY_NAME: dict[str, Job] = {job.name: job for job in JOBS}

#: ``tamis select``'s methods, each with the job that serves it.
METHODS: dict[str, tuple[Job, Method]] = {
    method.name: (job, method) for job in JOBS for method in job.methods}

#: The method ``tamis select`` runs when the config names none: the best or within 4% of the
#: best held-out perplexity in every setting of the narrow-target benchmark (BENCHMARKS.md),
#: and it needs no embedding.
DEFAULT_METHOD = "dsir"


def select(data: dict) -> tuple[Job, dict]:
    """The job of a ``select`` configuration's ``method``, and its configuration: the method's
    defaults, then the configuration's own keys (without ``method``)."""
    from tamis.storage.errors import ConfigError

    data = dict(data)
    name = data.pop("method", DEFAULT_METHOD)
    if not isinstance(name, str) or name not in METHODS:
        raise ConfigError(f"'method' must be one of {', '.join(METHODS)}, got {name!r}")
    job, method = METHODS[name]
    return job, {**method.defaults, **data}
