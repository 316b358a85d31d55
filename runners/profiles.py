"""Runner profiles: the Beam ``PipelineOptions`` behind ``--runner local|flink|dataflow``.

``local`` is Beam's DirectRunner (the FnApiRunner) with one worker process per core. With a
single worker it runs in this process, which starts faster and is easier to debug.
``flink`` and ``dataflow`` set the runner and pass every other Beam flag through unchanged
(``--flink_master``, ``--project``, ``--region``, ``--temp_location``, ...).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from apache_beam.options.pipeline_options import PipelineOptions

from tamis.storage.errors import ConfigError

RUNNERS = ("local", "flink", "dataflow")


class RunnerError(ConfigError):
    """A runner name or Beam flag that cannot be used."""


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def pipeline_options(runner: str, workers: int | None, beam_args: Sequence[str]) -> PipelineOptions:
    """Options for ``runner``; an unknown Beam flag in ``beam_args`` is an error."""
    _check_flags(beam_args)
    if runner == "local":
        n = workers or default_workers()
        if n < 1:
            raise RunnerError(f"--workers must be >= 1, got {n}")
        mode = "in_memory" if n == 1 else "multi_processing"
        flags = ["--runner=DirectRunner", f"--direct_num_workers={n}",
                 "--default_sdk_harness_log_level=WARNING",
                 f"--direct_running_mode={mode}"]
    elif runner == "flink":
        flags = ["--runner=FlinkRunner"]
    elif runner == "dataflow":
        flags = ["--runner=DataflowRunner"]
    else:
        raise RunnerError(f"unknown runner {runner!r}; choose one of {', '.join(RUNNERS)}")
    return PipelineOptions([*flags, *beam_args])


def _check_flags(beam_args: Sequence[str]) -> None:
    options = PipelineOptions(list(beam_args))
    known = options.get_all_options(retain_unknown_options=False)
    every = options.get_all_options(retain_unknown_options=True)
    unknown = sorted(set(every) - set(known))
    if unknown:
        raise RunnerError(f"unknown option --{unknown[0]} (neither a tamis nor a Beam option)")
