"""Running a job: its prerequisite steps, its plan, a dry run or the pipeline, its progress,
and the summary of what it wrote.

Everything a user can get wrong is found while planning, before any work, and raised as a
:class:`~tamis.storage.errors.TamisError`; a :class:`~tamis.storage.errors.DataError` raised
in a worker comes back, through whichever runner, as one naming its stage.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import posixpath
import re
import shutil
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
from tamis.runners.quiet import QuietWorkers
from tamis.runners.report import dry_run_report, number, reasons
from tamis.storage import manifest as mf
from tamis.storage import outputs
from tamis.storage.errors import DataError, PlanError
from tamis.storage.files import GLOB_CHARS, filesystem, join

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
    verbose: bool = False  # Beam's own log lines shown


def run(job: Job, data: dict, options: Options) -> int:
    """Run ``job`` on configuration ``data``, after the steps its prerequisites ask for."""
    config = cfg.load(job.config, data)  # every key checked before any work
    if job.prerequisites is not None:
        launch = Launch(options.dry_run, lambda out: check_output(out, options.overwrite))
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
    check_overlap(config)
    out = config.output
    with private_tmp(), tempfile.TemporaryDirectory(prefix="tamis-progress-") as progress_dir:
        counted = job.progress is not None and runner == "local" and not options.dry_run
        if options.dry_run:
            context = Context(runner, workers, default_workers(), None)
            plan = job.plan(config, context)
            pipeline = make_pipeline(runner, beam_options)
            try:
                job.build(pipeline, plan)
            finally:
                shutil.rmtree(pipeline.local_tempdir, ignore_errors=True)
            where = f"{runner}, {workers} worker(s)" if runner == "local" else runner
            options.say(dry_run_report(job, options.config_label, cfg.config_hash(config),
                                       out, where, plan, pipeline,
                                       output_state(out, options.overwrite, job)))
            return 0
        in_place = prepare_output(out, options.overwrite,
                                  job.name if job.reuses_output else None)
        staging = None if in_place else outputs.staging_path(out)
        context = Context(runner, workers, default_workers(),
                          progress_dir if counted else None, staging)
        plan = job.plan(config, context)
        for warning in plan.warnings:
            log.warning("warning: %s", warning)
        log.info("tamis %s: %s input rows; runner %s%s", job.name,
                 number(plan.estimates.input_rows), runner,
                 f" ({workers} workers)" if runner == "local" else "")
        start = time.monotonic()
        monitor = None
        if counted:
            monitor = ProgressMonitor(progress_dir, job.progress[0], job.progress[1],
                                      plan.estimates.progress_total,
                                      rows=plan.estimates.progress_rows)
            monitor.start()
        try:
            with QuietWorkers(not options.verbose), make_pipeline(runner,
                                                                   beam_options) as pipeline:
                job.build(pipeline, plan)
            if staging is not None:
                outputs.swap_in(staging, out)
        except BaseException as exc:
            if staging is not None:
                outputs.remove(staging)  # the earlier result, if any, is untouched
            if isinstance(exc, DataError) or not isinstance(exc, Exception):
                raise
            message = data_error(exc)
            if message is None:
                raise
            raise DataError(message) from None
        finally:
            if monitor:
                monitor.stop()
    summarise(out, time.monotonic() - start)
    return 0


@contextlib.contextmanager
def private_tmp():
    """A temporary folder of the run's own for everything below it: Beam's staging and
    requirement caches, its workers' files (they inherit ``TMPDIR``), tamis's progress
    counts. It goes when the run ends, whether it succeeded or failed."""
    folder = tempfile.mkdtemp(prefix="tamis-run-")
    saved_env, saved_module = os.environ.get("TMPDIR"), tempfile.tempdir
    os.environ["TMPDIR"], tempfile.tempdir = folder, folder
    try:
        yield folder
    finally:
        tempfile.tempdir = saved_module
        if saved_env is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = saved_env
        shutil.rmtree(folder, ignore_errors=True)


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


def prepare_output(out: str, overwrite: bool, reusable_job: str | None = None) -> bool:
    """Check that a run may write its result at ``out``; True when it writes in place (a job
    that reuses its outputs, a cache), False when it writes into a staging folder that is
    swapped in once complete. Deletes nothing but a stale staging folder of tamis's."""
    outputs.recover(out)
    outputs.remove(outputs.staging_path(out))
    state = _state(out)
    if reusable_job and not overwrite and state in ("missing", "empty", "unfinished",
                                                    reusable_job):
        if state not in ("missing", "empty"):
            outputs.check_replaceable(out)
            log.info("reusing the %s cache in %s (--overwrite starts afresh)", reusable_job, out)
        return True
    if state in ("missing", "empty"):
        return False
    if not overwrite:
        raise PlanError(f"output folder {out} is not empty; choose another 'output' or pass "
                        f"--overwrite to replace it (the earlier result stays until the new "
                        f"one is complete)")
    outputs.check_replaceable(out)
    return False


def check_output(out: str, overwrite: bool) -> None:
    """Refuse an output folder a run could not replace; changes nothing."""
    state = _state(out)
    if state in ("missing", "empty"):
        return
    if not overwrite:
        raise PlanError(f"output folder {out} is not empty; choose another 'output' or pass "
                        f"--overwrite to replace it")
    outputs.check_replaceable(out)


def output_state(out: str, overwrite: bool, job: Job) -> str:
    """What a run would do with its output folder, for the dry run."""
    state = _state(out)
    if state in ("missing", "empty"):
        return "new"
    if job.reuses_output and not overwrite and state in ("unfinished", job.name):
        return f"reuses the {job.name} outputs already there"
    if not overwrite:
        return "NOT EMPTY: a run stops here (pass --overwrite to replace it)"
    others = outputs.strangers(out)
    if others:
        return f"holds {others[0]}, which tamis did not write: a run refuses to replace it"
    return "replaced once the new result is complete (--overwrite)"


def _state(out: str) -> str:
    """``missing``, ``empty``, ``unfinished`` (no manifest), or the job of its manifest."""
    fs, inner = filesystem(out)
    info = fs.get_file_info(inner)
    if info.type == pafs.FileType.NotFound:
        return "missing"
    if info.type != pafs.FileType.Directory:
        raise PlanError(f"output {out} exists and is not a folder")
    if not fs.get_file_info(pafs.FileSelector(inner)):
        return "empty"
    if not outputs.is_output(out):
        return "unfinished"
    return str(mf.load_manifest(out).get("job"))


#: Configuration keys that name something a job reads.
READ_KEYS = ("inputs", "target", "positives", "embeddings", "positive_embeddings", "clusters",
             "model", "specialists")


def check_overlap(config) -> None:
    """Refuse an output folder equal to, inside or around anything the job reads."""
    out = _comparable(config.output)
    for path in _read_paths(cfg.to_dict(config)):
        read = _comparable(path)
        if read == out or read.startswith(out + "/"):
            raise PlanError(f"output folder {config.output} holds an input ({path}); a job "
                            f"would read its own result: choose another 'output'")
        if out.startswith(read + "/"):
            raise PlanError(f"output folder {config.output} is inside an input ({path}); "
                            f"later jobs would read this result as input: choose an 'output' "
                            f"outside it")


def _read_paths(data, inside: bool = False):
    """The paths under the keys that name something read (``specialists[].inputs``, say);
    other text (a column name, a model's settings) is not a path."""
    if isinstance(data, dict):
        for k, v in data.items():
            if k in READ_KEYS:
                yield from _read_paths(v, inside=True)
    elif isinstance(data, list):
        for v in data:
            yield from _read_paths(v, inside)
    elif inside and isinstance(data, str) and data and not data.startswith("@"):
        yield data


def _comparable(path: str) -> str:
    """A path to compare by prefix: a glob's fixed folder, made absolute and resolved."""
    glob = GLOB_CHARS.search(path)
    if glob is not None:
        path = posixpath.dirname(path[: glob.start()] + "x") or "."
    if "://" in path:
        return path.rstrip("/")
    return os.path.realpath(path).rstrip("/")
