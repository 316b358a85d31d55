"""The ``tamis`` command: one subcommand per job, plus ``verify``.

    tamis sample CONFIG [--set key=value ...] [--runner local|flink|dataflow] [--workers N]
                        [--dry-run] [--overwrite] [Beam flags ...]
    tamis verify OUT_DIR
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import re
import sys
import tempfile
import time
from collections.abc import Sequence

logging.getLogger().addHandler(logging.NullHandler())  # Beam's import-time notes stay quiet

import apache_beam as beam  # noqa: E402

from tamis.embeddings.sentence import ModelError
from tamis.pipelines import manifest as mf
from tamis.pipelines.files import filesystem, join
from tamis.pipelines.inputs import InputError
from tamis.pipelines.progress import ProgressMonitor
from tamis.pipelines.stages import SPILL, DataError
from tamis.pipelines.vectors import CacheError
from tamis.runners import compose
from tamis.runners import config as cfg
from tamis.runners.jobs import DEFAULT_METHOD, JOBS, METHODS, Context, Job, Prepared
from tamis.runners.profiles import RUNNERS, RunnerError, default_workers, pipeline_options

log = logging.getLogger("tamis")


class JobFailed(RuntimeError):
    """A pipeline stopped on its data (a :class:`DataError` raised in a worker)."""


#: How a DataError reads once a runner has passed it on, maybe from another process.
_DATA_ERROR = re.compile(r"DataError: (.+?)(?: \[while running '([^']+)'\])?$", re.MULTILINE)


def data_error(exc: BaseException) -> str | None:
    """The message of the DataError behind ``exc``, with the stage it stopped in, if any."""
    seen = exc
    while seen is not None:
        if isinstance(seen, DataError):
            text = str(seen)
            stage = re.search(r" \[while running '([^']+)'\]$", text)
            return re.sub(r" \[while running '[^']+'\]$", "", text) + (
                f" (in stage {stage.group(1)})" if stage else "")
        found = _DATA_ERROR.search(str(seen))
        if found:
            return found.group(1) + (f" (in stage {found.group(2)})" if found.group(2) else "")
        seen = seen.__cause__ or seen.__context__
    return None


class UsageError(ValueError):
    pass


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="tamis", description="Curate and select training data.")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    helps = {name: (job.help, job.help) for name, job in JOBS.items()}
    helps["select"] = (f"select with the method the config names ({', '.join(METHODS)})",
                       "Run the selection job that the config's 'method' key names: uniform "
                       "(the sample job), dsir, crisp, relevance, mmr (relevance with MMR) or "
                       "hybrid (crisp with soft histograms, drawn without replacement); the "
                       "other keys are that job's.")
    for name, (short, long) in helps.items():
        p = sub.add_parser(name, help=short, description=long)
        p.add_argument("config", help="YAML configuration file")
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a configuration key (dotted, e.g. budget.rows=1000)")
        p.add_argument("--runner", choices=RUNNERS, default="local")
        p.add_argument("--workers", type=int, default=None,
                       help="local runner: worker processes (default: one per core)")
        p.add_argument("--dry-run", action="store_true",
                       help="check and plan from Parquet footers; read no rows, write nothing")
        p.add_argument("--overwrite", action="store_true",
                       help="replace the outputs of an earlier run in the output folder")
        p.add_argument("-v", "--verbose", action="store_true", help="show Beam's own logs")
    v = sub.add_parser("verify", help="check an output folder against its manifest")
    v.add_argument("out_dir")
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args, beam_args = parser().parse_known_args(argv)
    verbose = getattr(args, "verbose", False)
    logging.basicConfig(level=logging.INFO, format="%(message)s", force=True)
    logging.getLogger("apache_beam").setLevel(logging.INFO if verbose else logging.ERROR)
    logging.getLogger().handlers[0].addFilter(lambda r: verbose or r.name.startswith("tamis"))
    try:
        if args.command == "verify":
            if beam_args:
                raise UsageError(f"unknown option {beam_args[0]}")
            return verify(args.out_dir)
        data = cfg.apply_overrides(cfg.read_yaml(args.config), args.set)
        job = JOBS.get(args.command)
        if args.command == "select":
            job, data = select_method(data)
        if job.name == "crisp":
            return compose.run_crisp(data, _runner(args, beam_args), args.dry_run,
                                     lambda out: _clear_output(out, args.overwrite))
        return run_job(job, args, beam_args, data)
    except (cfg.ConfigError, InputError, RunnerError, UsageError, ModelError,
            CacheError) as exc:
        print(f"tamis: error: {exc}", file=sys.stderr)
        return 2
    except JobFailed as exc:
        print(f"tamis: error: {exc}; the job stopped before its manifest was written (-v shows "
              f"Beam's logs)", file=sys.stderr)
        return 1


def verify(out_dir: str) -> int:
    try:
        manifest = mf.verify(out_dir)
    except mf.VerifyError as exc:
        print(f"tamis verify: FAILED: {exc}", file=sys.stderr)
        return 1
    acc = manifest["accounting"]
    print(f"{out_dir}: OK: {len(manifest['outputs']['shards'])} shards, "
          f"{acc['rows_kept']:,} rows kept of {acc['rows_in']:,} "
          f"(dropped {sum(acc['rows_dropped'].values()):,}, "
          f"rejected {sum(acc['rows_rejected'].values()):,}); checksums match")
    return 0


def _runner(args: argparse.Namespace, beam_args: list[str]) -> compose.Run:
    """Runs one job of a composition with the command's runner flags."""

    def run(name: str, data: dict, overwrite: bool) -> int:
        sub = argparse.Namespace(**{**vars(args), "overwrite": args.overwrite or overwrite})
        if name != "crisp":
            sub.overwrite = overwrite
            sub.config = f"{args.config} ({name} step)"
        return run_job(JOBS[name], sub, beam_args, data)

    return run


def select_method(data: dict) -> tuple[Job, dict]:
    """The job of a ``select`` config's ``method``, and the config without that key."""
    data = dict(data)
    method = data.pop("method", DEFAULT_METHOD)
    if method not in METHODS:
        raise cfg.ConfigError(f"'method' must be one of {', '.join(METHODS)}, got {method!r}")
    name, defaults = METHODS[method]
    return JOBS[name], {**defaults, **data}


def run_job(job: Job, args: argparse.Namespace, beam_args: list[str], data: dict) -> int:
    config = cfg.load(job.config, data)
    options = pipeline_options(args.runner, args.workers or job.local_workers, beam_args)
    workers = args.workers or job.local_workers or default_workers()
    prepared = job.prepare(config, Context(args.runner, workers, default_workers()))
    out = config.output
    if args.dry_run:
        pipeline = make_pipeline(args.runner, options)
        job.build(pipeline, prepared)
        print(dry_run_report(job, args, config, prepared, pipeline))
        return 0
    _clear_output(out, args.overwrite, job.name if job.reuses_output else None)
    for warning in prepared.header.get("warnings", []):
        log.warning("warning: %s", warning)
    log.info("tamis %s: %s input rows; runner %s%s", job.name,
             _n(prepared.estimates.get("input_rows")), args.runner,
             f" ({workers} workers)" if args.runner == "local" else "")
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tamis-progress-") as progress_dir:
        monitor = None
        if job.progress and args.runner == "local":
            prepared.spec = dataclasses.replace(prepared.spec, progress_dir=progress_dir)
            total = prepared.estimates.get("progress_total")
            monitor = ProgressMonitor(progress_dir, job.progress[0], job.progress[1], total)
            monitor.start()
        try:
            with make_pipeline(args.runner, options) as pipeline:
                job.build(pipeline, prepared)
        except Exception as exc:
            message = data_error(exc)
            if message is None:
                raise
            raise JobFailed(message) from None
        finally:
            if monitor:
                monitor.stop()
    manifest = mf.load_manifest(out)
    acc = manifest["accounting"]
    log.info("done in %.1fs: kept %s rows (%s tokens) of %s in %d shards; dropped %s; "
             "rejected %s", time.monotonic() - start, _n(acc["rows_kept"]),
             _n(manifest["outputs"]["tokens"]), _n(acc["rows_in"]),
             len(manifest["outputs"]["shards"]), _reasons(acc["rows_dropped"]),
             _reasons(acc["rows_rejected"]))
    if "stats" in manifest:
        log.info("stats: %s", ", ".join(f"{k} {v:,}" for k, v in manifest["stats"].items()))
    for warning in manifest.get("warnings", []):
        log.warning("warning: %s", warning)
    log.info("shards: %s", join(out, mf.DATA))
    log.info("manifest: %s", join(out, mf.MANIFEST))
    return 0


def make_pipeline(runner: str, options) -> beam.Pipeline:
    """A pipeline for ``options``; the runner's own checks (a missing Dataflow project, say)
    become one clear error."""
    try:
        return beam.Pipeline(options=options)
    except ValueError as exc:
        problems = "; ".join(line.strip() for line in str(exc).splitlines()[1:] if line.strip())
        raise RunnerError(f"runner {runner}: {problems or exc}") from None


def _clear_output(out: str, overwrite: bool, reusable_job: str | None = None) -> None:
    """Refuse to mix two runs' shards in one folder, unless told to replace the old ones.
    A job that reuses its outputs (a cache) may find its own earlier run there."""
    import pyarrow.fs as pafs

    fs, inner = filesystem(out)
    info = fs.get_file_info(inner)
    if info.type == pafs.FileType.NotFound:
        return
    if info.type != pafs.FileType.Directory:
        raise UsageError(f"output {out} exists and is not a folder")
    entries = fs.get_file_info(pafs.FileSelector(inner))
    if not entries:
        return
    if reusable_job and not overwrite and _earlier_job(out) == reusable_job:
        log.info("reusing the %s cache in %s (--overwrite starts afresh)", reusable_job, out)
        return
    if not overwrite:
        raise UsageError(f"output folder {out} is not empty; choose another 'output' or pass "
                         f"--overwrite to replace its shards and manifest")
    ours = {mf.MANIFEST, mf.DATA, mf.REJECTS, "models", SPILL}
    strangers = [e.base_name for e in entries if e.base_name not in ours]
    if strangers:
        raise UsageError(f"output folder {out} holds files tamis did not write "
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


def dry_run_report(job: Job, args, config, prepared: Prepared, pipeline: beam.Pipeline) -> str:
    plan, est = prepared.plan, prepared.estimates
    runner = args.runner
    if runner == "local":
        runner += f", {args.workers or job.local_workers or default_workers()} worker(s)"
    lines = [
        f"tamis {job.name}: dry run (reads footers and small artifacts only; writes nothing)",
        f"config: {args.config} ({cfg.config_hash(config)})",
        f"runner: {runner}",
    ]
    if plan is not None:
        lines.append(f"inputs: {len(plan.files)} files, {_n(plan.rows)} rows, "
                     f"{_bytes(plan.bytes)}, ~{_n(est['input_tokens_estimated'])} tokens "
                     f"(estimated)")
        for f in plan.files[:20]:
            groups = sum(1 for u in plan.units if plan.files[u.file] is f)
            lines.append(f"  {f.rel}  {f.format}  {_n(f.rows)} rows  {_bytes(f.bytes)}  "
                         f"{groups} unit(s)")
        if len(plan.files) > 20:
            lines.append(f"  ... and {len(plan.files) - 20} more")
    lines += prepared.summary
    lines.append(
        f"expected output: ~{_n(est['output_rows_estimated'])} rows, "
        f"~{_n(est['output_tokens_estimated'])} tokens, ~{_bytes(est['output_bytes_estimated'])}"
        f" in {est['num_shards']} shard(s) under {join(config.output, mf.DATA)}")
    for warning in prepared.header.get("warnings", []):
        lines.append(f"warning: {warning}")
    lines.append("stages:")
    lines += stage_graph(pipeline)
    return "\n".join(lines)


def stage_graph(pipeline: beam.Pipeline, depth: int = 2) -> list[str]:
    """The labelled steps of ``pipeline``, composites first, ``depth`` levels deep."""
    lines: list[str] = []

    class Visitor(beam.pipeline.PipelineVisitor):
        def _line(self, node, level: int) -> None:
            if 1 <= level <= depth:
                lines.append("  " * level + node.full_label.rsplit("/", 1)[-1])

        def enter_composite_transform(self, node) -> None:
            self._line(node, node.full_label.count("/") + 1 if node.full_label else 0)

        def visit_transform(self, node) -> None:
            self._line(node, node.full_label.count("/") + 1)

    pipeline.visit(Visitor())
    return lines


def _reasons(counts: dict[str, int]) -> str:
    if not counts:
        return "0"
    return ", ".join(f"{n:,} {reason}" for reason, n in sorted(counts.items()))


def _n(value) -> str:
    return "?" if value is None else f"{value:,}"


def _bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


if __name__ == "__main__":
    sys.exit(main())
