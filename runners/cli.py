"""The ``tamis`` command: one subcommand per job of the registry, ``select``, and ``verify``.

    tamis JOB CONFIG [--set key=value ...] [--runner local|flink|dataflow] [--workers N]
                     [--dry-run] [--overwrite] [-v] [Beam flags ...]
    tamis select CONFIG [same options]      (the job of the config's ``method``)
    tamis verify OUT_DIR

Every problem a user can fix is a :class:`~tamis.storage.errors.TamisError`: the command
prints it in one line and exits 2 (found before any work) or 1 (the job stopped on its data).
``tamis verify`` imports no Beam.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from tamis.storage.errors import DataError, TamisError

logging.getLogger().addHandler(logging.NullHandler())  # Beam's import-time notes stay quiet


def parser() -> argparse.ArgumentParser:
    from tamis.runners.jobs import JOBS, METHODS
    from tamis.runners.profiles import RUNNERS

    top = argparse.ArgumentParser(prog="tamis", description="Curate and select training data.")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    helps = {job.name: (job.summary, job.summary) for job in JOBS}
    methods = "; ".join(f"{name}: {method.summary}" for name, (_, method) in METHODS.items())
    helps["select"] = (f"select with the method the config names ({', '.join(METHODS)})",
                       f"Run the selection job that the config's 'method' key names ({methods})"
                       f"; the other keys are that job's.")
    by_name = {job.name: job for job in JOBS}
    for name, (short, long) in helps.items():
        job = by_name.get(name)
        epilog = (key_list(job.config) if job is not None else
                  "The keys are those of the method's job: tamis METHOD --help lists them "
                  f"({', '.join(sorted({m.name for _, m in METHODS.values()}))}).")
        p = sub.add_parser(name, help=short, description=long, epilog=epilog,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
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


def key_list(config: type) -> str:
    """The configuration keys of a job with their defaults, for ``--help``."""
    from tamis.runners.docs import rows

    found = rows(config)
    width = min(34, max(len(k) for k, _, _ in found) + 2)
    lines = ["configuration keys (default; meaning):"]
    for name, default, doc in found:
        shown = default.replace("`", "")
        text = f"{shown}; {doc}" if doc else shown
        lines.append(f"  {name:<{width}}{text.replace('`', '')}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv[:1] == ["verify"]:
            return verify(argv[1:])
        return run(argv)
    except TamisError as exc:
        suffix = ("; the job stopped before its manifest was written (-v shows Beam's logs)"
                  if isinstance(exc, DataError) else "")
        print(f"tamis: error: {exc}{suffix}", file=sys.stderr)
        return exc.exit_code


def run(argv: list[str]) -> int:
    args, beam_args = parser().parse_known_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", force=True)
    logging.getLogger("apache_beam").setLevel(logging.INFO if args.verbose else logging.ERROR)
    logging.getLogger().handlers[0].addFilter(
        lambda r: args.verbose or r.name.startswith("tamis"))
    from tamis.runners import config as cfg
    from tamis.runners import launch
    from tamis.runners.jobs import BY_NAME, select

    data = cfg.apply_overrides(cfg.read_yaml(args.config), args.set)
    if args.command == "select":
        job, data = select(data)
    else:
        job = BY_NAME[args.command]
    options = launch.Options(args.config, args.runner, args.workers, tuple(beam_args),
                             args.dry_run, args.overwrite, verbose=args.verbose)
    return launch.run(job, data, options)


def verify(argv: list[str]) -> int:
    """``tamis verify OUT_DIR``: Beam-free."""
    from tamis.storage import manifest as mf
    from tamis.storage.errors import ConfigError

    v = argparse.ArgumentParser(prog="tamis verify",
                                description="check an output folder against its manifest")
    v.add_argument("out_dir")
    args, unknown = v.parse_known_args(argv)
    if unknown:
        raise ConfigError(f"unknown option {unknown[0]}")
    try:
        manifest = mf.verify(args.out_dir)
    except mf.VerifyError as exc:
        print(f"tamis verify: FAILED: {exc}", file=sys.stderr)
        return 1
    acc = manifest["accounting"]
    print(f"{args.out_dir}: OK: {len(manifest['outputs']['shards'])} shards, "
          f"{acc['rows_kept']:,} rows kept of {acc['rows_in']:,} "
          f"(dropped {sum(acc['rows_dropped'].values()):,}, "
          f"rejected {sum(acc['rows_rejected'].values()):,}); checksums match")
    return 0


if __name__ == "__main__":
    sys.exit(main())
