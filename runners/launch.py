"""Running a job: its prerequisite steps, its plan, a dry run or the pipeline, its progress,
and the summary of what it wrote.

Everything a user can get wrong is found while planning, before any work, and raised as a
:class:`~tamis.storage.errors.TamisError`; a :class:`~tamis.storage.errors.DataError` raised
in a worker comes back, through whichever runner, as one naming its stage.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

import apache_beam as beam
import pyarrow.fs as pafs

from tamis.pipelines.progress import ProgressMonitor
from tamis.runners import config as cfg
from tamis.runners.jobs import BY_NAME
from tamis.runners.jobs.base import Context, Job, Launch
from tamis.runners.profiles import RunnerError, default_workers, pipeline_options
from tamis.runners.report import dry_run_report, number, reasons
from tamis.storage import clusters as cluster_artifacts
from tamis.storage import manifest as mf
from tamis.storage.errors import DataError, PlanError
from tamis.storage.files import filesystem, join
from tamis.storage.shards import SPILL

log = logging.getLogger("tamis")


@dataclass(frozen=True)
class Options:
    """How the command asked for the job to run."""

    config_label: str  # the configuration file (and step), for messages
    runner: str = "local"
    workers: int | None = None
    beam_args: tuple[str, ...] = ()
    dry_run: bool = False
    overwrite: bool = False
    say: Callable[[str], None] = print  # where the dry run's report goes


def run(job: Job, data: dict, options: Options) -> int:
    """Run ``job`` on configuration ``data``, after the steps its prerequisites ask for."""
    config = cfg.load(job.config, data)  # every key checked before any work
    if job.prerequisites is not None:
        launch = Launch(options.dry_run, lambda out: clear_output(out, options.overwrite))
        steps = job.prerequisites(config, data, launch)
        try:
            step = next(steps)
            while True:
                run_one(BY_NAME[step.job], step.data, dataclasses.replace(
                    options, overwrite=step.overwrite,
                    config_label=f"{options.config_label} ({step.job} step)"))
                step = steps.send(None)
        except StopIteration as done:
            data = done.value
        if data is None:  # a dry run that cannot plan the job before its caches exist
            return 0
    return run_one(job, data, options)


def run_one(job: Job, data: dict, options: Options) -> int:
    config = cfg.load(job.config, data)
    runner = options.runner
    workers = options.workers or job.local_workers or default_workers()
    beam_options = pipeline_options(runner, options.workers or job.local_workers,
                                    options.beam_args)
    with tempfile.TemporaryDirectory(prefix="tamis-progress-") as progress_dir:
        counted = job.progress is not None and runner == "local" and not options.dry_run
        context = Context(runner, workers, default_workers(), progress_dir if counted else None)
        plan = job.plan(config, context)
        if options.dry_run:
            pipeline = make_pipeline(runner, beam_options)
            job.build(pipeline, plan)
            where = f"{runner}, {workers} worker(s)" if runner == "local" else runner
            options.say(dry_run_report(job, options.config_label, cfg.config_hash(config),
                                       config.output, where, plan, pipeline))
            return 0
        clear_output(config.output, options.overwrite, job.name if job.reuses_output else None)
        for warning in plan.warnings:
            log.warning("warning: %s", warning)
        log.info("tamis %s: %s input rows; runner %s%s", job.name,
                 number(plan.estimates.input_rows), runner,
                 f" ({workers} workers)" if runner == "local" else "")
        start = time.monotonic()
        monitor = None
        if counted:
            monitor = ProgressMonitor(progress_dir, job.progress[0], job.progress[1],
                                      plan.estimates.progress_total)
            monitor.start()
        try:
            with make_pipeline(runner, beam_options) as pipeline:
                job.build(pipeline, plan)
        except DataError:
            raise
        except Exception as exc:
            message = data_error(exc)
            if message is None:
                raise
            raise DataError(message) from None
        finally:
            if monitor:
                monitor.stop()
    summarise(config.output, time.monotonic() - start)
    return 0


def summarise(out: str, seconds: float) -> None:
    manifest = mf.load_manifest(out)
    acc = manifest["accounting"]
    log.info("done in %.1fs: kept %s rows (%s tokens) of %s in %d shards; dropped %s; "
             "rejected %s", seconds, number(acc["rows_kept"]),
             number(manifest["outputs"]["tokens"]), number(acc["rows_in"]),
             len(manifest["outputs"]["shards"]), reasons(acc["rows_dropped"]),
             reasons(acc["rows_rejected"]))
    if "stats" in manifest:
        log.info("stats: %s", ", ".join(f"{k} {v:,}" for k, v in manifest["stats"].items()))
    for warning in manifest.get("warnings", []):
        log.warning("warning: %s", warning)
    log.info("shards: %s", join(out, mf.DATA))
    log.info("manifest: %s", join(out, mf.MANIFEST))


#: How a DataError reads once a runner has passed it on, maybe from another process.
_DATA_ERROR = re.compile(r"DataError: (.+?)(?: \[while running '([^']+)'\])?$", re.MULTILINE)
_STAGE = re.compile(r" \[while running '([^']+)'\]$")


def data_error(exc: BaseException) -> str | None:
    """The message of the DataError behind ``exc``, with the stage it stopped in, if any."""
    seen = exc
    while seen is not None:
        if isinstance(seen, DataError):
            text = str(seen)
            stage = _STAGE.search(text)
            return _STAGE.sub("", text) + (f" (in stage {stage.group(1)})" if stage else "")
        found = _DATA_ERROR.search(str(seen))
        if found:
            return found.group(1) + (f" (in stage {found.group(2)})" if found.group(2) else "")
        seen = seen.__cause__ or seen.__context__
    return None


def make_pipeline(runner: str, options) -> beam.Pipeline:
    """A pipeline for ``options``; the runner's own checks (a missing Dataflow project, say)
    become one clear error."""
    try:
        return beam.Pipeline(options=options)
    except ValueError as exc:
        problems = "; ".join(line.strip() for line in str(exc).splitlines()[1:] if line.strip())
        raise RunnerError(f"runner {runner}: {problems or exc}") from None


def clear_output(out: str, overwrite: bool, reusable_job: str | None = None) -> None:
    """Refuse to mix two runs' shards in one folder, unless told to replace the old ones.
    A job that reuses its outputs (a cache) may find its own earlier run there."""
    fs, inner = filesystem(out)
    info = fs.get_file_info(inner)
    if info.type == pafs.FileType.NotFound:
        return
    if info.type != pafs.FileType.Directory:
        raise PlanError(f"output {out} exists and is not a folder")
    entries = fs.get_file_info(pafs.FileSelector(inner))
    if not entries:
        return
    if reusable_job and not overwrite and _earlier_job(out) == reusable_job:
        log.info("reusing the %s cache in %s (--overwrite starts afresh)", reusable_job, out)
        return
    if not overwrite:
        raise PlanError(f"output folder {out} is not empty; choose another 'output' or pass "
                        f"--overwrite to replace its shards and manifest")
    ours = {mf.MANIFEST, mf.DATA, mf.REJECTS, mf.MODELS, SPILL, *cluster_artifacts.ARTIFACTS}
    strangers = [e.base_name for e in entries if e.base_name not in ours]
    if strangers:
        raise PlanError(f"output folder {out} holds files tamis did not write "
                        f"({', '.join(sorted(strangers)[:3])}); refusing to overwrite it")
    for e in entries:
        if e.type == pafs.FileType.Directory:
            fs.delete_dir(e.path)
        else:
            fs.delete_file(e.path)


def _earlier_job(out: str) -> str | None:
    try:
        return mf.load_manifest(out).get("job")
    except (mf.VerifyError, ValueError):
        return None
